/**
 * The resolver's query pipeline (CoreDNS's plugin chain is the model, without a registry):
 *
 *   scan → ACL → sanity (opcode, class, EDNS version) → route (local data | local-only |
 *   domain-needed / bogus-priv | forward group) → cache → merge in-flight → forward → cache store
 *   → reply (ID, name case, RD patched; truncated with TC when larger than the client takes)
 *
 * The routing decision of a question never changes between reloads, so it is memoised per
 * question key together with the pre-assembled local answer: a local hit is one Map lookup, a
 * copy and three patches. State swaps (reload) replace the whole `Tables` object at once.
 */
import type { DnsHandler, QueryContext, Reply } from '../dns/handler.js';
import {
  clientUdpLimit, copyQuestionCase, errorResponse, formErr, nameToString, opcode, QueryInfo, questionKey,
  Rcode, scanMessage, u16, writeId, writeOpt, HEADER_LEN,
} from '../dns/wire.js';
import { assembleResponse, typeName, rcodeName } from '../dns/message.js';
import type { LocalData } from './local.js';
import { isPrivateReverse } from './local.js';
import { PacketCache } from './cache.js';
import type { UpstreamGroup } from './upstreams.js';
import { Forwarder, type ForwardCallback, type ForwardOutcome } from './forwarder.js';
import { SuffixFilter } from '../dns/suffix-filter.js';
import { KeyTable } from '../util/key-table.js';
import { copyBytes } from '../util/udp-batch.js';
import type { Acl } from './acl.js';

export interface Route {
  /** Forward group for this domain; null = no upstream (answer NXDOMAIN/REFUSED locally). */
  group: UpstreamGroup | null;
  /** The domain of the forward rule that matched ('' for the default group). */
  domain: string;
}

/** Everything that a reload replaces at once. */
export interface Tables {
  local: LocalData;
  /** Default group and per-domain groups (most specific wins). */
  defaultGroup: UpstreamGroup;
  forward: Map<string, UpstreamGroup>;
  domainNeeded: boolean;
  bogusPriv: boolean;
  acl: Acl;
  maxInflight: number;
}

type Memo =
  /** `keep`: the name is in the local data (memoised at once; the set is bounded by the data). */
  | { kind: 'local'; wire: Buffer; keep: boolean }
  | { kind: 'forward'; group: UpstreamGroup };

/** A client waiting for a forwarded question (pooled). */
interface Waiter {
  head: Buffer; // the client's header + question (ID, case, RD) in head[0, headLen)
  headLen: number;
  nameEnd: number;
  limit: number; // max response size for this client (UDP limit or 65535)
  edns: boolean;
  dnssecOk: boolean;
  reply: Reply | null;
  ctx: QueryContext | null;
  started: number;
}

/**
 * A question in flight upstream and the clients waiting for it (pooled; it is the forwarder's
 * callback object, so a forwarded query makes no closure).
 */
class Inflight implements ForwardCallback {
  key = '';
  readonly waiters: Waiter[] = [];
  n = 0;
  constructor(private readonly r: Resolver) {}
  forwarded(o: ForwardOutcome): void { this.r.onForwarded(this, o); }
}

export type Source = 'local' | 'cache' | 'stale' | 'upstream' | 'refused' | 'servfail' | 'formerr' | 'dropped';

export interface QueryLogEntry {
  client: string;
  name: string;
  type: string;
  rcode: string;
  source: Source;
  upstream?: string;
  ms: number;
  transport: 'udp' | 'tcp';
}

export interface ResolverStats {
  queries: number;
  bySource: Record<Source, number>;
  byRcode: Record<string, number>;
  /** Queries per QTYPE (index = type; 256 = any type above 255). Read via typeCounts(). */
  byTypeCode: Uint32Array;
  aclDrops: number;
  inflightRefused: number;
  inflight: number;
}

const MEMO_MAX = 200_000;
/**
 * Clients that may wait on in-flight questions, per max_inflight (1024 → 16384 clients, ~10 MB
 * at most). dnsmasq bounds the clients it attaches to forwarded queries by dns-forward-max too.
 */
const WAITERS_PER_INFLIGHT = 16;

export class Resolver implements DnsHandler {
  private tables: Tables;
  private memo = new Map<string, Memo>();
  private forwardMemos = new Map<UpstreamGroup, Memo>();
  /** Skips the walk over conditional-forwarding domains for names none of them can match. */
  private forwardFilter: SuffixFilter;
  private readonly inflight = new KeyTable<Inflight>();
  private readonly freeInflight: Inflight[] = [];
  private readonly freeWaiters: Waiter[] = [];
  /** Clients waiting on in-flight questions (merged ones included), bounded by WAITERS_PER_INFLIGHT × max_inflight. */
  private waiting = 0;
  private readonly info = new QueryInfo();
  private readonly out = Buffer.allocUnsafe(65535 + 2);
  readonly cache: PacketCache;
  readonly forwarder: Forwarder;
  readonly stats: ResolverStats = {
    queries: 0,
    bySource: { local: 0, cache: 0, stale: 0, upstream: 0, refused: 0, servfail: 0, formerr: 0, dropped: 0 },
    byRcode: {}, byTypeCode: new Uint32Array(257), aclDrops: 0, inflightRefused: 0, inflight: 0,
  };
  /** Query log sink (set when query logging is on). */
  queryLog: ((e: QueryLogEntry) => void) | null = null;
  /** Throttled warnings (in-flight limit etc.). */
  warn: (msg: string) => void = () => {};
  private lastInflightWarn = 0;

  constructor(tables: Tables, cache: PacketCache, forwarder: Forwarder) {
    this.tables = tables;
    this.forwardFilter = new SuffixFilter(tables.forward.keys());
    this.cache = cache;
    this.forwarder = forwarder;
  }

  /** Atomic swap of everything a reload changes. */
  setTables(t: Tables): void {
    this.tables = t;
    this.memo = new Map();
    this.forwardMemos = new Map();
    this.forwardFilter = new SuffixFilter(t.forward.keys());
  }

  get current(): Tables { return this.tables; }

  /**
   * Fault injection for the lab (resolver-dead): when set, queries are swallowed as by a hung
   * resolver — reply is never called, so callers see a timeout, not a deliberate drop.
   */
  dead = false;

  handle(msg: Buffer, ctx: QueryContext, reply: Reply, len = msg.length): void {
    if (this.dead) return;
    const t0 = this.queryLog ? performance.now() : 0;
    const info = this.info;
    const tables = this.tables;
    this.stats.queries++;
    if (!tables.acl.allows(ctx.clientAddress)) {
      this.stats.aclDrops++;
      this.count('dropped');
      reply(this.out, 0);
      return;
    }
    const rc = scanMessage(msg, len, info);
    if (rc < 0 || (msg[2] & 0x80) !== 0) {
      // Garbage or a response sent to us: FORMERR when there is a query header to answer, else drop.
      if (len >= HEADER_LEN && (msg[2] & 0x80) === 0) {
        this.count('formerr');
        reply(this.out, formErr(msg, len, this.out));
      } else {
        this.count('dropped');
        reply(this.out, 0);
      }
      return;
    }
    if (opcode(msg) !== 0) { this.finishError(msg, ctx, reply, Rcode.NOTIMP, 'refused', t0); return; }
    if (info.ednsVersion > 0) {
      // BADVERS (RFC 6891): extended rcode 1, header rcode 0.
      let n = errorResponse(msg, info, 0, this.out);
      writeOpt(this.out, n - 11, info.dnssecOk, 1);
      this.count('refused');
      reply(this.out, n);
      return;
    }
    if (info.qclass !== 1 && info.qclass !== 255) { this.finishError(msg, ctx, reply, Rcode.REFUSED, 'refused', t0); return; }
    if (info.qtype === 251 || info.qtype === 252) { this.finishError(msg, ctx, reply, Rcode.REFUSED, 'refused', t0); return; }

    this.stats.byTypeCode[info.qtype < 256 ? info.qtype : 256]++;
    const key = questionKey(msg, info);
    let memo = this.memo.get(key);
    const routed = memo === undefined;
    if (memo === undefined) {
      memo = this.route(msg, info, tables);
      if (memo.kind === 'local' && memo.keep) this.remember(key, memo);
    }
    if (memo.kind === 'local') {
      const n = this.patchInto(memo.wire, msg, info, ctx);
      this.count('local');
      this.countRcode(this.out[3] & 0x0f);
      reply(this.out, n);
      if (this.queryLog) this.log(msg, info, ctx, 'local', t0);
      return;
    }
    // Cache
    const hit = this.cache.lookup(key, msg, info, Date.now(), this.out);
    if (hit > 0) {
      if (routed) this.remember(key, memo);
      const n = this.limitSize(this.out, hit, info, ctx);
      this.count('cache');
      this.countRcode(this.out[3] & 0x0f);
      reply(this.out, n);
      if (this.queryLog) this.log(msg, info, ctx, 'cache', t0);
      return;
    }
    this.forward(key, msg, len, info, ctx, reply, memo.group, t0);
  }

  /**
   * Memoises a routing decision. Only for questions that come back: names in the local data (a
   * set the data bounds) and forwarded questions once the cache answers them. Memoising every
   * question, a flood of unique names (random subdomains, or plain traffic to many names) filled
   * the memo with 200k entries the garbage collector kept promoting and marking: at 10k q/s of
   * unique forwarded names, 2–3% of queries took over 5 ms (0.2–0.7% without).
   */
  private remember(key: string, memo: Memo): void {
    if (this.memo.size >= MEMO_MAX) this.memo.clear();
    this.memo.set(key, memo);
  }

  /** Questions whose routing is memoised (tests, status). */
  get memoSize(): number { return this.memo.size; }

  /** Decides how a question is answered; pure given the tables. */
  private route(msg: Buffer, info: QueryInfo, t: Tables): Memo {
    const name = nameToString(msg, HEADER_LEN, info.nameEnd);
    const local = t.local.lookup(name, info.qtype);
    if (local) {
      const rcode = local.kind === 'nxdomain' ? Rcode.NXDOMAIN : Rcode.NOERROR;
      const answers = local.kind === 'answer' ? local.answers : [];
      return { kind: 'local', wire: assembleResponse(msg, info, name, rcode, true, answers), keep: t.local.holds(name) };
    }
    // As dnsmasq: bogus-priv answers as the authority for private reverse zones (AA), while a
    // domain-needed refusal to forward a dotless name is not authoritative.
    if (t.bogusPriv && isPrivateReverse(name)) {
      return { kind: 'local', wire: assembleResponse(msg, info, name, Rcode.NXDOMAIN, true, []), keep: false };
    }
    if (t.domainNeeded && name !== '' && !name.includes('.')) {
      return { kind: 'local', wire: assembleResponse(msg, info, name, Rcode.NXDOMAIN, false, []), keep: false };
    }
    // Conditional forwarding: the most specific domain wins.
    let n = name;
    if (this.forwardFilter.mayMatch(name)) for (;;) {
      const g = t.forward.get(n);
      if (g) return this.forwardMemo(g);
      if (n === '') break;
      const i = n.indexOf('.');
      n = i < 0 ? '' : n.slice(i + 1);
    }
    return this.forwardMemo(t.defaultGroup);
  }

  /** One routing decision object per upstream group (the decision is the same for all its names). */
  private forwardMemo(group: UpstreamGroup): Memo {
    let m = this.forwardMemos.get(group);
    if (m === undefined) this.forwardMemos.set(group, m = { kind: 'forward', group });
    return m;
  }

  /** Copies a pre-built response for this query: ID, name case and RD from the query. */
  private patchInto(wire: Buffer, query: Buffer, info: QueryInfo, ctx: QueryContext): number {
    const out = this.out;
    wire.copy(out);
    writeId(out, info.id);
    copyQuestionCase(out, query, info.nameEnd);
    out[2] = (out[2] & 0xfe) | (query[2] & 0x01);
    out[3] = (out[3] & 0xef) | (query[3] & 0x10);
    return this.limitSize(out, wire.length, info, ctx);
  }

  /** Truncates (header + question + OPT, TC set) when the response is larger than the client takes. */
  private limitSize(out: Buffer, len: number, info: QueryInfo, ctx: QueryContext): number {
    const limit = ctx.transport === 'tcp' ? 65535 : (ctx.maxSize ?? clientUdpLimit(info));
    if (len <= limit) return len;
    return truncateInPlace(out, info);
  }

  private takeWaiter(msg: Buffer, info: QueryInfo, ctx: QueryContext, reply: Reply, t0: number): Waiter {
    let w = this.freeWaiters.pop();
    const qEnd = info.questionEnd;
    if (w === undefined) {
      w = { head: Buffer.allocUnsafe(Math.max(512, qEnd)), headLen: 0, nameEnd: 0, limit: 0, edns: false, dnssecOk: false, reply: null, ctx: null, started: 0 };
    } else if (w.head.length < qEnd) {
      w.head = Buffer.allocUnsafe(qEnd);
    }
    copyBytes(msg, qEnd, w.head, 0);
    w.headLen = qEnd;
    w.nameEnd = info.nameEnd;
    w.limit = ctx.transport === 'tcp' ? 65535 : (ctx.maxSize ?? clientUdpLimit(info));
    w.edns = info.edns;
    w.dnssecOk = info.dnssecOk;
    w.reply = reply;
    w.ctx = ctx;
    w.started = t0 || performance.now();
    this.waiting++;
    return w;
  }

  /** Answers went out: the entry and its waiters go back to their pools. */
  private release(entry: Inflight): void {
    for (let i = 0; i < entry.n; i++) {
      const w = entry.waiters[i]!;
      entry.waiters[i] = undefined as unknown as Waiter;
      w.reply = null;
      w.ctx = null;
      this.freeWaiters.push(w);
    }
    this.waiting -= entry.n;
    entry.n = 0;
    entry.key = '';
    this.freeInflight.push(entry);
  }

  private forward(key: string, msg: Buffer, len: number, info: QueryInfo, ctx: QueryContext, reply: Reply, group: UpstreamGroup | null, t0: number): void {
    const existing = this.inflight.get(key);
    if (existing && this.waiting < WAITERS_PER_INFLIGHT * this.tables.maxInflight) {
      // Merged: one upstream query per question.
      existing.waiters[existing.n++] = this.takeWaiter(msg, info, ctx, reply, t0);
      return;
    }
    if (!group || group.servers.length === 0) {
      const entry = this.freeInflight.pop() ?? new Inflight(this);
      entry.waiters[entry.n++] = this.takeWaiter(msg, info, ctx, reply, t0);
      this.answerFailure(key, entry, null);
      this.release(entry);
      return;
    }
    if (existing || this.inflight.size >= this.tables.maxInflight) {
      // Full: too many questions in flight, or too many clients waiting on them (a flood of one
      // question to a slow upstream would otherwise hold a waiter per query until it answers).
      this.stats.inflightRefused++;
      const now = Date.now();
      if (now - this.lastInflightWarn > 10_000) {
        this.lastInflightWarn = now;
        this.warn(`in-flight upstream limit reached (${this.tables.maxInflight} questions, `
          + `${WAITERS_PER_INFLIGHT * this.tables.maxInflight} waiting clients): answering REFUSED`);
      }
      this.finishError(msg, ctx, reply, Rcode.REFUSED, 'refused', t0);
      return;
    }
    const entry = this.freeInflight.pop() ?? new Inflight(this);
    entry.key = key;
    entry.waiters[entry.n++] = this.takeWaiter(msg, info, ctx, reply, t0);
    this.inflight.set(key, entry);
    this.stats.inflight = this.inflight.size;
    // The forwarder copies the query (msg may be a listener's receive slot) and writes its own IDs.
    this.forwarder.forward(msg, info.questionEnd, group, entry, len);
  }

  /** The forwarder's outcome for an in-flight question (its bytes are valid during this call only). */
  onForwarded(entry: Inflight, o: ForwardOutcome): void {
    this.inflight.delete(entry.key);
    this.stats.inflight = this.inflight.size;
    if (o.ok) {
      this.cache.store(entry.key, o.resp, o.len, Date.now());
      this.deliver(entry, o.resp, o.len, 'upstream', o.server.label);
    } else {
      this.answerFailure(entry.key, entry, o.lastResp ?? null);
    }
    this.release(entry);
  }

  /** Every upstream failed: serve stale if allowed, else SERVFAIL (or the last failure seen). */
  private answerFailure(key: string, entry: Inflight, lastResp: Buffer | null): void {
    const info = this.info;
    for (let i = 0; i < entry.n; i++) {
      const w = entry.waiters[i]!;
      // Rebuild a QueryInfo for this waiter from its saved head (header + question).
      info.id = u16(w.head, 0);
      info.nameEnd = w.nameEnd;
      info.questionEnd = w.headLen;
      info.edns = w.edns;
      info.dnssecOk = w.dnssecOk;
      const stale = this.cache.lookupStale(key, w.head, info, Date.now(), this.out);
      if (stale > 0) {
        const n = stale <= w.limit ? stale : truncateInPlace(this.out, info);
        this.count('stale');
        this.countRcode(this.out[3] & 0x0f);
        w.reply!(this.out, n);
        this.logWaiter(w, 'stale', this.out[3] & 0x0f);
        continue;
      }
      const rcode = lastResp && lastResp.length >= HEADER_LEN ? (lastResp[3] & 0x0f) : Rcode.SERVFAIL;
      const n = errorResponse(w.head, info, rcode, this.out);
      this.count('servfail');
      this.countRcode(rcode);
      w.reply!(this.out, n);
      this.logWaiter(w, 'servfail', rcode);
    }
  }

  private deliver(entry: Inflight, resp: Buffer, len: number, source: Source, upstream: string): void {
    const out = this.out;
    const info = this.info;
    for (let i = 0; i < entry.n; i++) {
      const w = entry.waiters[i]!;
      copyBytes(resp, len, out, 0);
      out[0] = w.head[0]; out[1] = w.head[1];
      copyQuestionCase(out, w.head, w.nameEnd);
      out[2] = (out[2] & 0xfe) | (w.head[2] & 0x01);
      let n = len;
      if (n > w.limit) {
        info.questionEnd = w.headLen;
        info.edns = w.edns;
        info.dnssecOk = w.dnssecOk;
        n = truncateInPlace(out, info);
      }
      this.count(source);
      this.countRcode(out[3] & 0x0f);
      w.reply!(out, n);
      this.logWaiter(w, source, out[3] & 0x0f, upstream);
    }
  }

  private finishError(msg: Buffer, ctx: QueryContext, reply: Reply, rcode: number, source: Source, t0: number): void {
    const n = errorResponse(msg, this.info, rcode, this.out);
    this.count(source);
    this.countRcode(rcode);
    reply(this.out, n);
    if (this.queryLog) this.log(msg, this.info, ctx, source, t0);
  }

  private count(s: Source): void { this.stats.bySource[s]++; }
  private countRcode(rc: number): void {
    const k = rcodeName(rc);
    this.stats.byRcode[k] = (this.stats.byRcode[k] ?? 0) + 1;
  }

  private log(msg: Buffer, info: QueryInfo, ctx: QueryContext, source: Source, t0: number, upstream?: string): void {
    this.queryLog?.({
      client: ctx.clientAddress, name: nameToString(msg, HEADER_LEN, info.nameEnd, false), type: typeName(info.qtype),
      rcode: rcodeName(this.out[3] & 0x0f), source, upstream, ms: Math.round((performance.now() - t0) * 1000) / 1000,
      transport: ctx.transport,
    });
  }

  private logWaiter(w: Waiter, source: Source, rcode: number, upstream?: string): void {
    if (!this.queryLog) return;
    const qtype = u16(w.head, w.nameEnd);
    this.queryLog({
      client: w.ctx!.clientAddress, name: nameToString(w.head, HEADER_LEN, w.nameEnd, false), type: typeName(qtype),
      rcode: rcodeName(rcode), source, upstream, ms: Math.round((performance.now() - w.started) * 1000) / 1000,
      transport: w.ctx!.transport,
    });
  }

  /** Query counts by type name (for metrics and status). */
  typeCounts(): Record<string, number> {
    const out: Record<string, number> = {};
    const c = this.stats.byTypeCode;
    for (let i = 0; i < 257; i++) if (c[i]) out[i === 256 ? 'OTHER' : typeName(i)] = c[i];
    return out;
  }

  close(): void {
    this.forwarder.close();
  }
}

/**
 * Cuts a response down to header + question (+ OPT) with TC set, in place, so the client retries
 * over TCP (RFC 1035 / RFC 7766). Returns the new length.
 */
export function truncateInPlace(out: Buffer, info: QueryInfo): number {
  out[2] |= 0x02;
  out[6] = 0; out[7] = 0; out[8] = 0; out[9] = 0;
  if (info.edns) {
    out[10] = 0; out[11] = 1;
    return writeOpt(out, info.questionEnd, info.dnssecOk);
  }
  out[10] = 0; out[11] = 0;
  return info.questionEnd;
}
