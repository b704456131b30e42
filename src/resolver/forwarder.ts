/**
 * The forwarding shell: sends a query to an upstream group and delivers exactly one outcome.
 *
 * Safety, after dnsmasq's DNSpooq CVEs: every upstream query gets a random ID and goes out of a
 * socket picked at random from a pool of sockets bound to kernel-chosen random ports, replaced
 * after a number of uses; an answer counts only if it comes from the queried server's address and
 * port and matches the ID and the question (anything else is dropped and counted). A TC answer is
 * retried over TCP to the same server. SERVFAIL/REFUSED moves on to the next server. Callers merge
 * identical questions before calling (one upstream query per distinct question in flight).
 *
 * The per-query path, the same way as the balancer's (src/balancer/dns-proxy.ts), because with
 * Node's dgram and two Node timers per query the resolver spent ~20 µs more user-space CPU per
 * forwarded query than dnsmasq, and its young-generation garbage (an ArrayBuffer, a Buffer and an
 * rinfo per datagram received, a Timeout object per deadline, closures) gave a p99 several times
 * dnsmasq's at 10k q/s:
 *  - upstream sockets are the batched native sockets the listeners use (util/udp-batch.ts) where
 *    the addon is built: queries forwarded during a listener's batch leave in one sendmmsg per
 *    upstream socket right after it, an upstream socket's answers arrive with one recvmmsg and one
 *    JS call, and the replies they make leave the listener in one sendmmsg; addresses are compared
 *    as words, never formatted. An answer larger than a receive slot (4 KB) is asked again over
 *    TCP, as a TC answer is. Node's dgram remains the fallback (`udp_io: dgram`, no addon, an IPv6
 *    upstream with a zone index, which the batched socket cannot address);
 *  - jobs and attempts are pooled objects with a generation; their deadlines (attempt and total)
 *    sit in two FIFOs swept by one timer armed for the earliest (util/gen-fifo.ts); IDs come from
 *    an IdTable per socket (dns/id-table.ts) instead of a Map.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { isIP } from 'node:net';
import {
  HEADER_LEN, isResponse, isTruncated, rcodeOf, readId, sameQuestion, TcpFramer, tcpFrame, writeId, Rcode,
} from '../dns/wire.js';
import { IdTable, randomId16 } from '../dns/id-table.js';
import { GenFifo } from '../util/gen-fifo.js';
import { BatchUdpSocket, copyBytes, formatWords, META, parseIp, useBatchUdp } from '../util/udp-batch.js';
import type { Server, UpstreamGroup } from './upstreams.js';
import { literalLookup } from '../util/net.js';

/**
 * How a forwarded query ended. An answer's bytes are resp[0, len) and are valid **during the
 * callback only** (on the batched path they are the socket's receive slot, not a copy): keep a
 * copy to keep them. lastResp (the last SERVFAIL/REFUSED seen) is the caller's.
 */
export type ForwardOutcome =
  | { ok: true; resp: Buffer; len: number; server: Server; rttMs: number; tcp: boolean }
  | { ok: false; reason: 'timeout' | 'failed'; lastResp?: Buffer; server?: Server };

/** A callback object (the resolver's pooled in-flight entry): no closure per forwarded query. */
export interface ForwardCallback {
  forwarded(o: ForwardOutcome): void;
}

export interface ForwarderOptions {
  timeoutMs: number;
  totalTimeoutMs: number;
  /** Sockets per address family in the random-port pool. */
  poolSize?: number;
  /** Upstream queries one socket carries before it is replaced by a fresh random port. */
  socketUses?: number;
  now?: () => number;
  /** Upstream UDP on the batched native sockets or on Node's dgram; default: as the listeners. */
  io?: 'batch' | 'dgram';
  /** Warnings (a socket that cannot be opened); the forwarder sends at most one per 10 s. */
  warn?: (msg: string) => void;
}

export interface ForwarderStats {
  sent: number;
  answers: number;
  timeouts: number;
  tcpRetries: number;
  /** Datagrams dropped: wrong source address/port, unknown ID, wrong question, not a response. */
  rejected: number;
  /** Upstream queries not sent because no socket could be opened (EMFILE, ENOBUFS, …). */
  socketErrors: number;
}

const EMPTY = Buffer.alloc(0);
const NO_SERVER: Server = { host: '', port: 0, label: '' };

/** Receive slots of an upstream socket, and their size: larger answers are asked again over TCP. */
const UP_SLOTS = 16;
const UP_SLOT_SIZE = 4096;

/** Where a server is, parsed once: the words the batched socket sends to and compares with. */
interface Target {
  family: 4 | 6;
  /** As dgram reports a sender (IPv6 in RFC 5952 form). */
  host: string;
  port: number;
  a0: number; a1: number; a2: number; a3: number;
  /** Batched native socket (else dgram). */
  batch: boolean;
}

interface UpSock {
  bs: BatchUdpSocket | null;
  dg: dgram.Socket | null;
  pending: IdTable<Attempt>;
  uses: number;
  retiring: boolean;
  closed: boolean;
}

interface Attempt {
  /** Bumped when the attempt goes back to the pool: a deadline or callback of an older use is void. */
  gen: number;
  job: Job | null;
  server: number;
  target: Target | null;
  sock: UpSock | null;
  id: number;
  sentAt: number;
  done: boolean;
}

interface Job {
  gen: number;
  /** The client's query (copied; each attempt writes its own ID into it before it is sent). */
  query: Buffer;
  len: number;
  questionEnd: number;
  group: UpstreamGroup | null;
  /** Servers in the order to ask them (the group's order()), and the next one to ask. */
  order: number[];
  orderLen: number;
  nextAt: number;
  attempts: Attempt[];
  nAttempts: number;
  outstanding: number;
  finished: boolean;
  /** The attempt whose timeout counts (the last one sent). */
  latest: Attempt | null;
  start: number;
  lastResp: Buffer | null;
  lastServer: Server | null;
  cb: ((o: ForwardOutcome) => void) | ForwardCallback | null;
}

export class Forwarder {
  /** Upstream sockets: [IPv4 batched, IPv4 dgram, IPv6 batched, IPv6 dgram]. */
  private readonly pools: UpSock[][] = [[], [], [], []];
  readonly stats: ForwarderStats = { sent: 0, answers: 0, timeouts: 0, tcpRetries: 0, rejected: 0, socketErrors: 0 };
  private lastWarn = -Infinity;
  private closed = false;
  private readonly now: () => number;
  private readonly batch: boolean;
  private readonly tcpSockets = new Set<net.Socket>();
  private readonly targets = new WeakMap<Server, Target>();
  private readonly freeJobs: Job[] = [];
  private readonly freeAttempts: Attempt[] = [];
  /** Attempts in send order (their timeouts are sentAt + timeoutMs) and jobs in start order. */
  private readonly attemptQ = new GenFifo<Attempt>();
  private readonly jobQ = new GenFifo<Job>();
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  /** The answered outcome, refilled for each answer (it is valid during the callback only). */
  private readonly answered: ForwardOutcome & { ok: true } = { ok: true, resp: EMPTY, len: 0, server: NO_SERVER, rttMs: 0, tcp: false };

  constructor(readonly opts: ForwarderOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.batch = opts.io === 'batch' ? true : opts.io === 'dgram' ? false : useBatchUdp();
  }

  /** Upstream attempts waiting for an answer on a socket (tests). */
  get inFlight(): number {
    let n = 0;
    for (const pool of this.pools) for (const us of pool) if (us) n += us.pending.size;
    return n;
  }

  /** Forwards query[0, len) (copied before this returns); `cb` gets exactly one outcome. */
  forward(query: Buffer, questionEnd: number, group: UpstreamGroup, cb: ((o: ForwardOutcome) => void) | ForwardCallback, len = query.length): void {
    if (group.servers.length === 0) {
      const o: ForwardOutcome = { ok: false, reason: 'failed' };
      if (typeof cb === 'function') cb(o); else cb.forwarded(o);
      return;
    }
    const now = this.now();
    const job = this.takeJob(query, len);
    const first = group.order(Date.now(), job.order);
    job.orderLen = group.servers.length;
    job.nextAt = first;
    job.questionEnd = questionEnd;
    job.group = group;
    job.start = now;
    job.cb = cb;
    this.jobQ.push(job);
    this.due(now + this.opts.totalTimeoutMs, now);
    for (let k = 0; k < first; k++) this.send(job, job.order[k]!, now);
    // Not one of them could be sent (no socket): the rest of the plan, or SERVFAIL now.
    if (job.outstanding === 0) this.next(job, now);
  }

  // ---------------------------------------------------------------- pools

  private takeJob(query: Buffer, len: number): Job {
    let job = this.freeJobs.pop();
    if (job === undefined) {
      job = {
        gen: 0, query: Buffer.allocUnsafe(Math.max(512, len)), len: 0, questionEnd: 0, group: null,
        order: [], orderLen: 0, nextAt: 0,
        attempts: [], nAttempts: 0, outstanding: 0, finished: false, latest: null, start: 0,
        lastResp: null, lastServer: null, cb: null,
      };
    } else if (job.query.length < len) {
      job.query = Buffer.allocUnsafe(len);
    }
    copyBytes(query, len, job.query, 0);
    job.len = len;
    return job;
  }

  private takeAttempt(): Attempt {
    return this.freeAttempts.pop()
      ?? { gen: 0, job: null, server: 0, target: null, sock: null, id: 0, sentAt: 0, done: false };
  }

  /** Returns a finished job and its attempts to the pools; their queued deadlines become void. */
  private recycle(job: Job): void {
    for (let k = 0; k < job.nAttempts; k++) {
      const a = job.attempts[k]!;
      job.attempts[k] = undefined as unknown as Attempt;
      a.gen++;
      a.job = null;
      a.target = null;
      this.freeAttempts.push(a);
    }
    job.nAttempts = 0;
    job.gen++;
    job.group = null;
    job.orderLen = 0;
    job.latest = null;
    job.lastResp = null;
    job.lastServer = null;
    job.cb = null;
    job.outstanding = 0;
    job.finished = false;
    this.freeJobs.push(job);
  }

  private target(server: Server): Target {
    let t = this.targets.get(server);
    if (t === undefined) {
      const family = isIP(server.host) === 6 ? 6 : 4;
      const w = parseIp(server.host) ?? [0, 0, 0, 0];
      t = {
        // As Node formats a sender's address (RFC 5952), from the words; a zone index stays as written.
        family, host: server.host.includes('%') ? server.host : formatWords(family, w[0], w[1], w[2], w[3]),
        port: server.port, a0: w[0], a1: w[1], a2: w[2], a3: w[3],
        batch: this.batch && !server.host.includes('%'),
      };
      this.targets.set(server, t);
    }
    return t;
  }

  private socket(t: Target): UpSock {
    const pool = this.pools[(t.family === 6 ? 2 : 0) + (t.batch ? 0 : 1)]!;
    const size = this.opts.poolSize ?? 16;
    const slot = randomId16() % size;
    let us: UpSock | undefined = pool[slot];
    if (us && us.uses >= (this.opts.socketUses ?? 1000)) {
      us.retiring = true;
      if (us.pending.size === 0) this.closeSock(us);
      us = undefined;
    }
    if (!us) {
      us = t.batch ? this.openBatch(t.family) : this.openDgram(t.family);
      pool[slot] = us;
    }
    return us;
  }

  private openBatch(family: 4 | 6): UpSock {
    // Kernel-chosen ephemeral port: random on Linux.
    const bs = BatchUdpSocket.bind(family === 6 ? '::' : '0.0.0.0', 0, { slots: UP_SLOTS, slotSize: UP_SLOT_SIZE, transient: true });
    const us: UpSock = { bs, dg: null, pending: new IdTable<Attempt>(), uses: 0, retiring: false, closed: false };
    bs.onSlot = (buf, len, _addr, _port, slot) => this.onBatchAnswer(us, buf, len, slot);
    bs.onTruncated = (buf, slot) => this.onBatchAnswer(us, buf, -1, slot);
    // ICMP errors are not reported on an unconnected socket: they surface as timeouts.
    bs.start();
    return us;
  }

  private openDgram(family: 4 | 6): UpSock {
    const sock = dgram.createSocket({ type: family === 4 ? 'udp4' : 'udp6', lookup: literalLookup });
    const us: UpSock = { bs: null, dg: sock, pending: new IdTable<Attempt>(), uses: 0, retiring: false, closed: false };
    sock.on('message', (msg, rinfo) => this.onDgramAnswer(us, msg, rinfo));
    sock.on('error', () => { /* ICMP errors surface as timeouts of the attempts */ });
    sock.bind(0);
    sock.unref();
    return us;
  }

  private closeSock(us: UpSock): void {
    if (us.closed) return;
    us.closed = true;
    try { us.bs?.close(); us.dg?.close(); } catch { /* already closed */ }
  }

  // ---------------------------------------------------------------- sending

  /**
   * Sends the job's query to server i; false when no socket could be opened (out of file
   * descriptors, say): that server then counts as failed for this query, and the caller moves on
   * instead of waiting for a timeout.
   */
  private send(job: Job, i: number, now: number): boolean {
    const server = job.group!.servers[i]!;
    const t = this.target(server);
    let us: UpSock;
    try {
      us = this.socket(t);
    } catch (e) {
      this.stats.socketErrors++;
      if (now - this.lastWarn >= 10_000) {
        this.lastWarn = now;
        this.opts.warn?.(`cannot open an upstream socket: ${(e as Error).message}`);
      }
      job.group!.failure(i);
      return false;
    }
    const a = this.takeAttempt();
    a.job = job; a.server = i; a.target = t; a.sock = us; a.sentAt = now; a.done = false;
    a.id = us.pending.add(a);
    us.uses++;
    job.attempts[job.nAttempts++] = a;
    job.outstanding++;
    job.latest = a;
    job.group!.sent(i);
    this.stats.sent++;
    this.attemptQ.push(a);
    this.due(now + this.opts.timeoutMs, now);
    if (us.bs !== null) {
      // sendWords copies the datagram (into the socket's out slot, or sends it at once).
      writeId(job.query, a.id);
      us.bs.sendWords(job.query, job.len, t.family, t.port, t.a0, t.a1, t.a2, t.a3);
      return true;
    }
    const msg = Buffer.allocUnsafe(job.len);
    job.query.copy(msg, 0, 0, job.len);
    writeId(msg, a.id);
    const gen = a.gen;
    us.dg!.send(msg, t.port, t.host, (err) => {
      if (err && a.gen === gen && !a.done) this.attemptFailed(a, null);
    });
    return true;
  }

  // ---------------------------------------------------------------- answers

  /** An answer on a batched socket; len -1: larger than a slot (buf holds its first 4 KB). */
  /** An answer on a batched socket; len -1: larger than a slot (buf holds its first 4 KB). */
  private onBatchAnswer(us: UpSock, buf: Buffer, len: number, slot: number): void {
    const a = this.attemptFor(us, buf, len < 0 ? buf.length : len);
    if (a === undefined) return;
    const t = a.target!, meta = us.bs!.inMeta, m = slot * META;
    if (meta[m + 2] !== t.port || meta[m + 1] !== t.family || meta[m + 3] !== t.a0
      || (t.family === 6 && (meta[m + 4] !== t.a1 || meta[m + 5] !== t.a2 || meta[m + 6] !== t.a3))) {
      this.stats.rejected++; // spoofed: ignore, keep waiting for the real answer
      return;
    }
    // The slot itself, not a copy: valid during the callback (closing a retired socket hands its
    // buffers to the next one, which receives nothing into them before this call returns).
    this.answer(a, buf, len);
  }

  private onDgramAnswer(us: UpSock, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const a = this.attemptFor(us, msg, msg.length);
    if (a === undefined) return;
    if (rinfo.port !== a.target!.port || rinfo.address !== a.target!.host) { this.stats.rejected++; return; }
    this.answer(a, msg, msg.length);
  }

  /**
   * The attempt a datagram buf[0, n) answers, by ID and question; undefined (counted as
   * rejected) for anything else. The caller checks the sender.
   */
  private attemptFor(us: UpSock, buf: Buffer, n: number): Attempt | undefined {
    if (n < HEADER_LEN || !isResponse(buf)) { this.stats.rejected++; return undefined; }
    const a = us.pending.get(readId(buf));
    if (a === undefined || !sameQuestion(buf, n, a.job!.query, a.job!.questionEnd)) {
      this.stats.rejected++; // a stray, late or confused answer: keep waiting for the real one
      return undefined;
    }
    return a;
  }

  /** A matched answer (len -1: too large for a receive slot): asked again over TCP if cut short. */
  private answer(a: Attempt, buf: Buffer, len: number): void {
    this.release(a);
    if (len < 0 || isTruncated(buf)) this.tcpRetry(a);
    else this.onAnswer(a, buf, len, false);
  }

  /** Takes the attempt's ID off its socket (late answers are strays from now on). */
  private release(a: Attempt): void {
    const us = a.sock;
    if (us === null) return;
    us.pending.delete(a.id);
    if (us.retiring && us.pending.size === 0) this.closeSock(us);
    a.sock = null;
  }

  private onAnswer(a: Attempt, msg: Buffer, len: number, tcp: boolean): void {
    const job = a.job!;
    a.done = true;
    job.outstanding--;
    if (job.finished) return;
    const rc = rcodeOf(msg);
    if (rc === Rcode.SERVFAIL || rc === Rcode.REFUSED) {
      this.attemptFailed(a, msg, len, true);
      return;
    }
    const rtt = this.now() - a.sentAt;
    const group = job.group!;
    group.success(a.server, rtt, Date.now());
    this.stats.answers++;
    const o = this.answered;
    o.resp = msg; o.len = len; o.server = group.servers[a.server]!; o.rttMs = rtt; o.tcp = tcp;
    this.finish(job, o);
    o.resp = EMPTY;
  }

  private attemptFailed(a: Attempt, resp: Buffer | null, len = 0, counted = false): void {
    const job = a.job!;
    if (!counted) { a.done = true; job.outstanding--; this.release(a); }
    job.group!.failure(a.server);
    if (resp) {
      // Kept beyond this call (the answer if nobody does better): a copy of its bytes.
      const copy = Buffer.allocUnsafe(len);
      copyBytes(resp, len, copy, 0);
      job.lastResp = copy;
      job.lastServer = job.group!.servers[a.server]!;
    }
    if (job.finished) return;
    // Move on at once rather than waiting for the attempt's timeout.
    this.next(job, this.now());
  }

  /** Asks the next server of the plan, or gives up when none is left and nobody is pending. */
  private next(job: Job, now: number): void {
    while (job.nextAt < job.orderLen) if (this.send(job, job.order[job.nextAt++]!, now)) return;
    if (job.outstanding === 0) this.finish(job, null);
  }

  private tcpRetry(a: Attempt): void {
    this.stats.tcpRetries++;
    const job = a.job!;
    const t = a.target!;
    const gen = a.gen;
    const id = randomId16();
    const q = Buffer.allocUnsafe(job.len);
    job.query.copy(q, 0, 0, job.len);
    writeId(q, id);
    const sock = net.connect({ host: t.host, port: t.port });
    this.tcpSockets.add(sock);
    let settled = false;
    const done = (resp: Buffer | null) => {
      if (settled) return;
      settled = true;
      sock.destroy();
      this.tcpSockets.delete(sock);
      if (a.gen !== gen) return; // the query finished (total timeout) while this was under way
      if (resp) this.onAnswer(a, resp, resp.length, true);
      else if (!a.done) this.attemptFailed(a, null);
    };
    sock.setTimeout(this.opts.timeoutMs, () => done(null));
    sock.setNoDelay(true);
    const framer = new TcpFramer((m) => {
      if (a.gen === gen && m.length >= HEADER_LEN && isResponse(m) && readId(m) === id
        && sameQuestion(m, m.length, job.query, job.questionEnd)) {
        done(Buffer.from(m));
      }
    });
    sock.on('data', (chunk) => { if (!framer.push(chunk)) done(null); });
    sock.on('error', () => done(null));
    sock.on('close', () => done(null));
    sock.on('connect', () => sock.write(tcpFrame(q)));
  }

  private finish(job: Job, outcome: ForwardOutcome | null): void {
    if (job.finished) return;
    job.finished = true;
    for (let k = 0; k < job.nAttempts; k++) this.release(job.attempts[k]!);
    const cb = job.cb!;
    const o = outcome ?? (job.lastResp
      ? { ok: false as const, reason: 'failed' as const, lastResp: job.lastResp, server: job.lastServer ?? undefined }
      : { ok: false as const, reason: 'timeout' as const });
    this.recycle(job);
    if (typeof cb === 'function') cb(o); else cb.forwarded(o);
  }

  // ---------------------------------------------------------------- deadlines

  /** Makes sure the timer fires by `at`. One timer at the earliest deadline, not two per query. */
  private due(at: number, now: number): void {
    if (at >= this.timerAt || this.closed) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(this.onTimer, Math.max(0, Math.ceil(at - now)));
  }

  private readonly onTimer = (): void => {
    this.timer = null;
    this.timerAt = Infinity;
    const now = this.now();
    const attemptMs = this.opts.timeoutMs, totalMs = this.opts.totalTimeoutMs;
    for (let a = this.attemptQ.peek(); a !== undefined && now - a.sentAt >= attemptMs; a = this.attemptQ.peek()) {
      this.attemptQ.shift();
      const job = a.job;
      // Only the last attempt sent times the job out (a newer one restarted the clock).
      if (job === null || job.finished || job.latest !== a) continue;
      // Everyone asked so far is late: count it against them, keep listening (a late answer is
      // still good), and ask the next server.
      for (let k = 0; k < job.nAttempts; k++) {
        const x = job.attempts[k]!;
        if (!x.done) { job.group!.failure(x.server); this.stats.timeouts++; }
      }
      this.next(job, now);
    }
    for (let j = this.jobQ.peek(); j !== undefined && now - j.start >= totalMs; j = this.jobQ.peek()) {
      this.jobQ.shift();
      this.finish(j, null);
    }
    const a = this.attemptQ.peek(), j = this.jobQ.peek();
    const next = Math.min(a !== undefined ? a.sentAt + attemptMs : Infinity, j !== undefined ? j.start + totalMs : Infinity);
    if (next !== Infinity) this.due(next, this.now());
  };

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    for (const pool of this.pools) for (const us of pool) if (us) this.closeSock(us);
    for (const s of this.tcpSockets) s.destroy();
  }
}
