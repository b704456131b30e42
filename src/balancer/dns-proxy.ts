/**
 * DNS-aware balancing (thin shell over policy.ts and health.ts).
 *
 * nginx balances UDP per *session*: a client's source port is pinned to a backend socket for
 * `proxy_timeout`, a lost datagram is never retried, and the session table (worker_connections)
 * caps throughput. Here every query stands alone:
 *
 *  - it is forwarded with a fresh random 16-bit ID over one of a few connected UDP sockets per
 *    backend (TCP clients: pipelined TCP connections per backend), and the answer is matched
 *    by socket (= backend address, the kernel filters connected sockets), ID and question;
 *  - an attempt that outlives the backend's adaptive timeout (latency EWMA, health.ts) is
 *    *hedged*: the query goes to another backend while the first attempt stays registered, and
 *    whichever answer comes first is sent — the client sees exactly one answer;
 *  - SERVFAIL / REFUSED are retried on another backend (the bad answer is kept as a fallback);
 *  - an attempt unanswered after `query_max` counts as a failure for passive health
 *    (max_fails / fail_timeout); ICMP port-unreachable on a backend socket counts at once and
 *    re-sends that backend's in-flight queries elsewhere;
 *  - active probes keep running without traffic; all down → fail open (policy.ts);
 *  - TC answers pass through unchanged so clients retry over TCP;
 *  - a `local` backend is a DnsHandler in the same process: a function call, no socket.
 *
 * Timeouts use two FIFOs per backend (soft: hedge, hard: give up) and one for query deadlines,
 * swept by one timer that runs only while work is in flight; Query/Attempt objects are pooled,
 * so the per-packet path allocates only what Node's dgram does (the received Buffer and rinfo).
 */
import type dgram from 'node:dgram';
import net from 'node:net';
import type { DnsHandler, QueryContext } from '../dns/handler.js';
import { buildQuery } from '../dns/message.js';
import {
  clientUdpLimit, errorResponse, formErr, isResponse, QueryInfo, questionKey, Rcode, rcodeOf, readId,
  sameQuestion, scanMessage, TcpFramer, tcpFrame, writeId, HEADER_LEN,
} from '../dns/wire.js';
import { PacketCache } from '../resolver/cache.js';
import { monotonicClock, type Clock } from '../util/clock.js';
import type { ListenAddress, ServiceConfig } from './config.js';
import { BackendHealth } from './health.js';
import { createPolicy, hashString, type Policy, type PoolMember } from './policy.js';
import { bindUdp, closeServer, connectUdp, formatHostPort, isWildcard, listenTcp, type BalancerLog, type Bound } from './sockets.js';
import { GenFifo } from '../util/gen-fifo.js';
import { splitHostPort } from './config.js';
import { BatchUdpSocket, batchSeq, copyBytes, formatWords, ForwardThread, META, useBatchUdp, type ForwardThreadStats } from '../util/udp-batch.js';
import { DnsTcpConn } from '../dns/tcp-conn.js';
import { IdTable } from '../dns/id-table.js';
import { CLAIMED, IDLE, OWNED, RELAY_QUERIES, RelayTables, relayWanted } from './relay.js';

/** A UDP listener: Node's dgram, or a batched native socket (util/udp-batch.ts, the fast path). */
type UdpListener = dgram.Socket | BatchUdpSocket;

/** Budget for all attempts of one query when next_upstream.timeout is 0: under a client's 1 s retry. */
export const DEFAULT_QUERY_BUDGET_MS = 900;
/** Bound on queries in flight per service; beyond it new queries are dropped (counted). */
export const MAX_LIVE_QUERIES = 100_000;
/** IDs in use per upstream socket before another socket is preferred (of 65536). */
const MAX_IDS_PER_SOCKET = 30_000;
/** Queries in flight per TCP client connection before reading from it pauses. */
const MAX_TCP_CLIENT_OUTSTANDING = 64;
/** Re-check interval while queries are live but no attempt has a deadline (rare: between states). */
const IDLE_TICK_MS = 50;
/** Whether a burst's forwarded queries are booked in chunks (onBook); HADNS_FORWARD_BOOK=whole: at once. */
const BOOK_CHUNKS = process.env.HADNS_FORWARD_BOOK !== 'whole';
/** Forwarding tickets kept ready per service: one full receive batch (a power of two: a ring). */
const TICKETS = 64;
/**
 * HADNS_FORWARD_THREAD=1 (experimental, #3): the addon serves the service's forwarding listeners
 * and relay sockets in a thread of its own (native/udp_batch.c, "The forwarding thread"); JS
 * books and refills when the thread wakes it and every THREAD_TICK_MS, so it keeps more tickets
 * ready (THREAD_TICKETS: 5 ms at 50k q/s).
 */
function forwardThreadWanted(): boolean { return process.env.HADNS_FORWARD_THREAD === '1'; }
const THREAD_TICKETS = 256;
const THREAD_TICK_MS = 5;
/** Ints per ticket, and bytes of a ticket's arena slot (native/udp_batch.c: TW, ARENA_SLOT). */
const TW = 16;
/** The ticket ring's header: its three cursors (native/udp_batch.c: THDR, T_PROD, T_USED, T_BOOKED). */
const THDR = 4, T_PROD = 0, T_USED = 1, T_BOOKED = 2, T_GEN = 3;
/** A ticket's len (-1: voided by the addon, drawn before the generation changed) and generation. */
const TK_LEN = 4, TK_GEN = 13;
const ARENA_SLOT = 512;

/**
 * Query forwarding (native/udp_batch.c, "Query forwarding"): the next backends, chosen ahead by
 * the policy, each with a pooled Query and, for a remote backend, an Attempt holding a reserved
 * upstream ID on one of its sockets. The addon takes the next ticket for a plain query, sends it
 * at once, and leaves the query's address, length and send time in the ticket and its bytes in
 * the ticket's arena slot; book() later does in JS what begin() and dispatch() would have done,
 * for every ticket used since it last ran. JS books at its next entry of any kind (takeRelayed)
 * or, when it has no other reason to run, when the addon calls it: after the event loop has
 * served every ready socket (the relay's answers first), or at once when few tickets are left.
 * A ticket for a `local` backend (socket -1) is taken too, so that the policy's sequence is
 * kept, and its query is then sent to that backend by book().
 */
class Forwarding {
  /** A ring: [produced (JS), used (the addon), booked (JS), generation (JS), then per ticket TW
   *  ints: qidx, qgen, socket registry index (-1: local), upstream ID, and, filled in by the
   *  addon: len, family, port, a0..a3, question end, listener index; then the generation it was
   *  drawn in]. Ticket c (an int32 cursor) is slot c & (cap - 1); each cursor has one writer, and
   *  the addon's is read with Atomics (it may be a thread). */
  readonly tickets: Int32Array;
  /** Send time per ticket (this proxy's clock, ms). */
  readonly times: Float64Array;
  readonly arena: Buffer;
  /** One view per arena slot, made once (the query's bytes are its first `len`). */
  readonly views: Buffer[];
  readonly q: (Query | null)[];
  readonly a: (Attempt | null)[];
  readonly b: Int32Array;
  /** The forwarding thread serving the listeners, or null: the loop does. */
  thread: ForwardThread | null = null;
  tick: NodeJS.Timeout | null = null;
  /** Tickets in the ring (a power of two). */
  readonly cap: number;

  /** `threaded`: a forwarding thread is wanted (HADNS_FORWARD_THREAD=1 when the service started). */
  constructor(readonly threaded: boolean) {
    const cap = this.cap = threaded ? THREAD_TICKETS : TICKETS;
    this.tickets = new Int32Array(THDR + cap * TW);
    this.times = new Float64Array(cap);
    this.arena = Buffer.alloc(cap * ARENA_SLOT);
    this.views = Array.from({ length: cap }, (_, k) => this.arena.subarray(k * ARENA_SLOT, (k + 1) * ARENA_SLOT));
    this.q = new Array<Query | null>(cap).fill(null);
    this.a = new Array<Attempt | null>(cap).fill(null);
    this.b = new Int32Array(cap);
  }
  booking = false;
  /** A backend changed state while booking: the tickets are re-drawn at the next refill. */
  recall = false;
  /** The listeners by registry index (a ticket names its listener so). */
  readonly listeners = new Map<number, BatchUdpSocket>();
  /** Tickets the addon used that wait for book(). */
  unbooked(): number { return (Atomics.load(this.tickets, T_USED) - this.tickets[T_BOOKED]!) | 0; }
  /** Tickets drawn and not used yet. */
  left(): number { return (this.tickets[T_PROD]! - Atomics.load(this.tickets, T_USED)) | 0; }
}

interface Channel {
  readonly ids: IdTable<Attempt>;
  readonly backend: DnsBackend;
  /** The reply relay's route table for this socket (relay.ts), or null: every answer through JS. */
  readonly route: Int32Array | null;
  send(msg: Buffer, len: number): void;
}

class Query {
  gen = 0;
  /** Index in the proxy's pool (names the query in the reply relay's tables). */
  constructor(readonly idx: number) {}
  /** The query's bytes, [0, len): the client's datagram copied into `own`. */
  msg!: Buffer;
  /**
   * Owned by this pooled Query and reused: copying into it allocates nothing per query (a
   * Buffer.from per query came from 8 KiB pool slabs that in-flight queries kept alive into the
   * old generation, whose collections then showed in the p99).
   */
  own = Buffer.allocUnsafeSlow(512);
  len = 0;
  clientId = 0;
  questionEnd = 0;
  udpLimit = 512;
  listener: dgram.Socket | null = null;
  /** Batched listener and the client's address as words (no string on the reply path). */
  blistener: BatchUdpSocket | null = null;
  fam = 0;
  a0 = 0;
  a1 = 0;
  a2 = 0;
  a3 = 0;
  addr = '';
  port = 0;
  tcp: DnsTcpConn | null = null;
  start = 0;
  tried = 0;
  tries = 0;
  /** Attempts of this query still registered (waiting for an answer). */
  live = 0;
  key = 0;
  cacheKey: string | null = null;
  /** A SERVFAIL/REFUSED answer kept while a retry runs: sent if nothing better comes. */
  fallback: Buffer | null = null;
}

class Attempt {
  gen = 0;
  /** Reserved by a forwarding ticket and not used yet: its ID is taken, no query is behind it. */
  ticket = false;
  q: Query | null = null;
  qgen = 0;
  backend!: DnsBackend;
  chan: Channel | null = null;
  id = 0;
  sentAt = 0;
}

class UdpChannel implements Channel {
  readonly ids = new IdTable<Attempt>();
  route: Int32Array | null = null;
  constructor(readonly backend: DnsBackend, readonly sock: dgram.Socket | BatchUdpSocket) {}
  send(msg: Buffer, len: number): void {
    if (this.sock instanceof BatchUdpSocket) this.sock.sendConnected(msg, len);
    else if (len === msg.length) this.sock.send(msg);
    else this.sock.send(msg, 0, len);
  }
}

class TcpChannel implements Channel {
  readonly ids = new IdTable<Attempt>();
  readonly route = null;
  dead = false;
  answered = 0;
  readonly framer: TcpFramer;
  constructor(readonly backend: DnsBackend, readonly sock: net.Socket, onMsg: (ch: TcpChannel, m: Buffer) => void) {
    this.framer = new TcpFramer((m) => { this.answered++; onMsg(this, m); });
  }
  send(msg: Buffer, len: number): void { this.sock.write(tcpFrame(msg, len)); }
}

export interface BackendStats {
  address: string;
  state: 'up' | 'down';
  weight: number;
  backup: boolean;
  down: boolean;
  queries: number;
  answers: number;
  /** Attempts hedged to another backend after the adaptive timeout. */
  hedged: number;
  /** Attempts never answered within query_max. */
  timeouts: number;
  errors: number;
  servfail: number;
  outstanding: number;
  latencyMs: number;
  timeoutMs: number;
  probesOk: number;
  probesFailed: number;
}

export class DnsBackend implements PoolMember {
  readonly id: string;
  readonly local: boolean;
  readonly host: string;
  readonly port: number;
  active = 0;
  readonly udp: UdpChannel[] = [];
  private nextUdp = 0;
  readonly tcp: TcpChannel[] = [];
  readonly soft = new GenFifo<Attempt>();
  readonly hard = new GenFifo<Attempt>();
  readonly health: BackendHealth;
  probeSock: dgram.Socket | null = null;
  probeId = -1;
  probeSentAt = 0;
  probeTimer: NodeJS.Timeout | null = null;
  probeTimeout: NodeJS.Timeout | null = null;
  stats = { queries: 0, answers: 0, hedged: 0, timeouts: 0, errors: 0, servfail: 0, probesOk: 0, probesFailed: 0 };

  constructor(readonly index: number, readonly cfg: ServiceConfig['pool']['backends'][number], svc: ServiceConfig) {
    this.id = cfg.address;
    this.local = cfg.address === 'local';
    if (this.local) { this.host = ''; this.port = 0; } else {
      const hp = splitHostPort(cfg.address);
      this.host = hp.host; this.port = hp.port;
    }
    this.health = new BackendHealth({
      passive: { maxFails: cfg.max_fails, failTimeoutMs: cfg.fail_timeout },
      active: { rise: svc.health_check.rise, fall: svc.health_check.fall },
      timeout: { initialMs: svc.timeouts.query_initial, minMs: svc.timeouts.query_min, maxMs: svc.timeouts.query_max },
    });
  }
  get weight(): number { return this.cfg.weight; }
  get backup(): boolean { return this.cfg.backup; }
  get down(): boolean { return this.cfg.down; }
  get latencyMs(): number { return this.health.latency.srtt; }
  available(now: number): boolean { return this.health.available(now); }

  private lastBatch = -1;
  /**
   * Round-robin over the UDP sockets, skipping one whose ID space is getting crowded. With
   * batched sockets the turn advances once per received batch, not per query: the queries of one
   * batch then leave in one sendmmsg instead of one per socket (source ports still rotate).
   */
  pickUdp(): UdpChannel | null {
    const seq = batchSeq();
    if (seq >= 0 && seq === this.lastBatch) {
      const ch = this.udp[this.nextUdp];
      if (ch !== undefined && ch.ids.size < MAX_IDS_PER_SOCKET) return ch;
    }
    this.lastBatch = seq;
    for (let k = 0; k < this.udp.length; k++) {
      this.nextUdp = this.nextUdp + 1 >= this.udp.length ? 0 : this.nextUdp + 1;
      const ch = this.udp[this.nextUdp];
      if (ch.ids.size < MAX_IDS_PER_SOCKET) return ch;
    }
    return null;
  }
}

export interface DnsProxyOptions {
  service: ServiceConfig;
  listeners: ListenAddress[];
  log: BalancerLog;
  clock?: Clock;
  localHandler?: DnsHandler;
  random?: () => number;
  /**
   * Floating addresses (VIPs): listeners on them are bound only while this node holds the
   * address (attach/detach), and a UDP wildcard listener gets a VIP-specific sibling socket so
   * that answers leave from the VIP (what the article needed a DNAT rule for).
   */
  floating?: readonly string[];
}

export interface DnsServiceStats {
  name: string;
  mode: 'dns';
  queries: number;
  answers: number;
  /** Answers served from the frontend cache. */
  cacheHits: number;
  /** Backend answers the reply relay sent on to clients without entering JS (included in answers). */
  relayed: number;
  /** Queries the addon forwarded on a ticket before JS saw them (included in queries). */
  forwarded: number;
  /** Extra attempts (hedges after timeouts, retries after SERVFAIL/REFUSED/errors). */
  retries: number;
  /** SERVFAIL sent by the balancer itself (every attempt failed or the budget ran out). */
  servfail: number;
  formerr: number;
  dropped: number;
  /** Answers from backends that matched no query in flight (late, spoofed, wrong question). */
  stray: number;
  live: number;
  backends: BackendStats[];
  /** HADNS_FORWARD_THREAD=1: what the forwarding thread did (absent without one). */
  forwardThread?: ForwardThreadStats;
}

export class DnsProxy {
  readonly name: string;
  readonly backends: DnsBackend[];
  private readonly policy: Policy;
  private readonly clock: Clock;
  private readonly log: BalancerLog;
  private readonly svc: ServiceConfig;
  private readonly info = new QueryInfo();
  private readonly scratch = Buffer.allocUnsafe(65536);
  private readonly qPool: Query[] = [];
  /** Every Query ever made, by idx (the relay's completions name them so). */
  private readonly queries: Query[] = [];
  /** The reply relay (relay.ts): plain backend answers go to clients from the addon. */
  private relay: RelayTables | null = null;
  private readonly relayChans: UdpChannel[] = [];
  /** Query forwarding (Forwarding), or null: every query through JS. */
  private fwd: Forwarding | null = null;
  private readonly onBatchEnd = (): void => { if (this.fwd !== null) this.refill(); };
  /**
   * The addon's call to book forwarded queries: `max` > 0 (its check phase) books at most that
   * many, oldest first, and returns how many are left, so that a burst's bookkeeping runs in
   * chunks with the loop's I/O in between (answers that came back are relayed first); the last
   * chunk, or `max` 0, also drains the relay's ring and draws new tickets. Tickets are drawn
   * only once all used ones are booked, so chunks stop while fewer than half are left: the
   * next burst must find tickets, or it takes the JS path.
   */
  private readonly onBook = (max: number): number => {
    const f = this.fwd;
    if (f !== null && max > 0 && BOOK_CHUNKS && !f.booking && f.left() >= f.cap / 2 && f.unbooked() > max) {
      this.book(max);
      return f.unbooked();
    }
    this.takeRelayed();
    this.refill();
    return 0;
  };
  private readonly aPool: Attempt[] = [];
  private readonly deadlines = new GenFifo<Query>();
  private readonly udpListeners: UdpListener[] = [];
  /** The UDP listener (and batch slot) of the query being accepted: where FORMERR / cache hits go. */
  private curBatch: BatchUdpSocket | null = null;
  private curSlot = 0;
  private curDgram: dgram.Socket | null = null;
  private readonly tcpServers: net.Server[] = [];
  private readonly clients = new Set<DnsTcpConn>();
  private bound: Bound[] = [];
  private readonly cache: PacketCache | null;
  private readonly useHash: boolean;
  private readonly maxTries: number;
  private readonly budget: number;
  private readonly hardMs: number;
  /** The deadline timer: armed for the earliest deadline in flight (see tick()). */
  private timer: NodeJS.Timeout | null = null;
  /** When `timer` fires (clock ms; Infinity when none is armed). */
  private timerAt = Infinity;
  private readonly onTimer = (): void => { this.timer = null; this.timerAt = Infinity; this.tick(); };
  private liveQueries = 0;
  private liveAttempts = 0;
  private closed = false;
  private readonly probeMsg: Buffer;
  private readonly stat = { queries: 0, answers: 0, relayed: 0, forwarded: 0, cacheHits: 0, retries: 0, servfail: 0, formerr: 0, dropped: 0, stray: 0 };

  constructor(private readonly opts: DnsProxyOptions) {
    this.svc = opts.service;
    this.name = this.svc.name;
    this.clock = opts.clock ?? monotonicClock;
    this.log = opts.log;
    this.backends = this.svc.pool.backends.map((b, i) => new DnsBackend(i, b, this.svc));
    if (this.backends.some((b) => b.local) && !opts.localHandler) {
      throw new Error(`balancer service ${this.name}: backend "local" needs the in-process resolver`);
    }
    this.policy = createPolicy(this.svc.pool.policy, this.backends, opts.random);
    this.useHash = this.svc.pool.policy === 'hash';
    const nu = this.svc.next_upstream;
    this.maxTries = !nu.enabled ? 1 : nu.tries === 0 ? this.backends.length : nu.tries;
    this.budget = nu.timeout > 0 ? nu.timeout : DEFAULT_QUERY_BUDGET_MS;
    this.hardMs = this.svc.timeouts.query_max;
    // Hook: the frontend cache is the resolver's packet cache (src/resolver/cache.ts).
    this.cache = this.svc.cache.enabled ? new PacketCache({
      maxEntries: this.svc.cache.size, maxBytes: this.svc.cache.size * 2048, minTtl: 0, maxTtl: 86_400,
      negTtl: 0, negMaxTtl: 3600, staleMaxAge: 0, staleTtl: 0,
    }) : null;
    this.probeMsg = buildQuery(this.svc.health_check.name, this.svc.health_check.type, { id: 0, rd: true });
  }

  async start(): Promise<Bound[]> {
    try {
      const batch = useBatchUdp();
      // The relay answers from the upstream sockets' wake-ups; the cache must see every answer.
      if (batch && !this.cache && relayWanted(this.clock)) {
        this.relay = new RelayTables();
        // Tickets are drawn ahead: only a policy whose picks do not depend on the query or on
        // the load of the moment (round-robin) keeps its meaning when picked 64 queries early.
        if (this.svc.pool.policy === 'round-robin' && process.env.HADNS_FORWARD !== '0'
          && this.backends.some((b) => !b.local)) this.fwd = new Forwarding(forwardThreadWanted());
      }
      for (const b of this.backends) {
        if (b.local) continue;
        for (let i = 0; i < this.svc.udp.sockets_per_backend; i++) {
          if (batch) {
            const sock = BatchUdpSocket.connect(b.host, b.port);
            const ch = new UdpChannel(b, sock);
            sock.onSlot = (m, len) => this.onUpstreamAnswer(ch, m, len);
            sock.onError = (errno) => this.onUpstreamError(b, new Error(`socket error ${errno}`));
            sock.onException = (e) => this.log.error({ service: this.name, err: String(e) }, 'balancer: error handling an answer');
            if (this.relay) {
              ch.route = RelayTables.newRoute();
              sock.enableRelay(ch.route, this.relay.claim, this.relay.ring, this.relayChans.length);
              this.relayChans.push(ch);
            }
            sock.start();
            b.udp.push(ch);
            continue;
          }
          const sock = await connectUdp(b.host, b.port);
          const ch = new UdpChannel(b, sock);
          sock.on('message', (m) => this.onUpstreamAnswer(ch, m, m.length));
          sock.on('error', (e) => this.onUpstreamError(b, e));
          b.udp.push(ch);
        }
      }
      // Port 0 with UDP and TCP on one address: both get the same port (the kernel picks it for
      // UDP; if that port is taken for TCP, both are tried again).
      const floating = new Set(this.opts.floating ?? []);
      const ls = this.opts.listeners.filter((l) => !floating.has(l.address));
      while (ls.length) {
        const l = ls.shift()!;
        const j = l.port === 0 ? ls.findIndex((o) => o.port === 0 && o.address === l.address && o.proto !== l.proto) : -1;
        if (j < 0) { await this.bindOne(l, l.port); continue; }
        const other = ls.splice(j, 1)[0];
        const udpL = l.proto === 'udp' ? l : other;
        const tcpL = l.proto === 'udp' ? other : l;
        for (let attempt = 0; ; attempt++) {
          const port = await this.bindOne(udpL, 0);
          try { await this.bindOne(tcpL, port); break; } catch (e) {
            const sock = this.udpListeners.pop()!;
            this.bound.pop();
            sock.close();
            if (attempt >= 20) throw e;
          }
        }
      }
      if (this.svc.health_check.enabled) for (const b of this.backends) await this.startProbes(b);
      this.refill();
      this.restartThread();
    } catch (e) {
      await this.close();
      throw e;
    }
    this.log.info({ service: this.name, mode: 'dns', listen: this.bound, backends: this.backends.map((b) => b.id) }, 'balancer service started');
    return this.bound;
  }

  addresses(): Bound[] { return this.bound.slice(); }

  /** Floating address → the sockets bound for it while held. */
  private readonly attached = new Map<string, { udp: UdpListener[]; tcp: net.Server[] }>();

  /** This node now holds `address`: bind its listeners (and UDP siblings of wildcard listeners). */
  async attach(address: string): Promise<void> {
    if (this.closed || this.attached.has(address)) return;
    const v6 = address.includes(':');
    const want: ListenAddress[] = [];
    for (const l of this.opts.listeners) {
      if (l.address === address) want.push(l);
      else if (l.proto === 'udp' && isWildcard(l.address) && (l.address === '::') === v6) want.push({ ...l, address });
    }
    const entry = { udp: [] as UdpListener[], tcp: [] as net.Server[] };
    this.attached.set(address, entry);
    try {
      for (const l of want) {
        const nu = this.udpListeners.length, nt = this.tcpServers.length;
        await this.bindOne(l, l.port);
        entry.udp.push(...this.udpListeners.slice(nu));
        entry.tcp.push(...this.tcpServers.slice(nt));
      }
    } catch (e) {
      await this.detach(address); // all or nothing, so a retry starts clean
      throw e;
    }
    this.restartThread();
    this.log.info({ service: this.name, address, sockets: entry.udp.length + entry.tcp.length }, 'balancer bound floating address');
  }

  /** This node gave `address` away: close its sockets (in-flight answers to them are dropped). */
  async detach(address: string): Promise<void> {
    const entry = this.attached.get(address);
    if (!entry) return;
    this.attached.delete(address);
    for (const s of entry.udp) {
      const i = this.udpListeners.indexOf(s);
      if (i >= 0) this.udpListeners.splice(i, 1);
      s.close();
    }
    for (const t of entry.tcp) {
      const i = this.tcpServers.indexOf(t);
      if (i >= 0) this.tcpServers.splice(i, 1);
    }
    this.bound = this.bound.filter((b) => b.address !== address);
    this.restartThread(); // (closing a listener it served stopped it)
    await Promise.all(entry.tcp.map(closeServer));
    this.log.info({ service: this.name, address }, 'balancer released floating address');
  }

  /** Binds one listener; returns the bound port. */
  private async bindOne(l: ListenAddress, port: number): Promise<number> {
    if (l.proto === 'udp') {
      const sibling = (this.opts.floating?.length ?? 0) > 0
        && (isWildcard(l.address) || this.opts.listeners.some((o) => o.proto === 'udp' && o.port === l.port && isWildcard(o.address)));
      if (useBatchUdp()) {
        // Throws "cannot listen on udp HOST:PORT: reason", as bindUdp does.
        const sock = BatchUdpSocket.bind(l.address, port, { reuseAddr: sibling, reusePort: l.reuseport });
        sock.onSlot = (m, len, addr, p, slot) => this.onBatchQuery(sock, m, len, addr, p, slot);
        sock.onException = (e) => this.log.error({ service: this.name, err: String(e) }, 'balancer: error handling a query');
        if (this.fwd !== null) {
          sock.enableForward(this.fwd.tickets, this.fwd.times, this.fwd.arena, this.onBook, process.env.HADNS_FORWARD_BOOK === 'now',
            process.env.HADNS_FORWARD_INTERLEAVE !== '0', process.env.HADNS_FORWARD_BLOCKS !== '0');
          this.fwd.listeners.set(sock.index, sock);
          sock.onBatchEnd = this.onBatchEnd;
        }
        sock.start();
        this.udpListeners.push(sock);
        this.bound.push({ proto: 'udp', address: sock.address, port: sock.port });
        return sock.port;
      }
      const sock = await bindUdp(l.address, port, l.reuseport, sibling);
      sock.on('message', (m, r) => this.onUdpQuery(sock, m, r));
      this.udpListeners.push(sock);
      const a = sock.address();
      this.bound.push({ proto: 'udp', address: a.address, port: a.port });
      return a.port;
    }
    const srv = await listenTcp(l.address, port, (c) => this.onTcpClient(c), this.svc.tcp.max_connections);
    this.tcpServers.push(srv);
    const a = srv.address() as net.AddressInfo;
    this.bound.push({ proto: 'tcp', address: a.address, port: a.port });
    return a.port;
  }

  // ---------------------------------------------------------------- client side

  private onUdpQuery(listener: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    this.stat.queries++;
    if (msg.length < HEADER_LEN || isResponse(msg)) { this.stat.dropped++; return; }
    this.curBatch = null;
    this.curDgram = listener;
    const q = this.accept(msg, msg.length, rinfo.address, rinfo.port);
    if (q === null) return;
    q.listener = listener;
    this.begin(q);
  }

  /**
   * The fast path: a query from a batched listener, the first `len` bytes of the slot `msg`
   * (valid during this call only).
   */
  private onBatchQuery(listener: BatchUdpSocket, msg: Buffer, len: number, addr: string, port: number, slot: number): void {
    this.takeRelayed();
    this.stat.queries++;
    if (len < HEADER_LEN || isResponse(msg)) { this.stat.dropped++; return; }
    this.curBatch = listener;
    this.curSlot = slot;
    this.curDgram = null;
    const q = this.accept(msg, len, addr, port);
    if (q === null) return;
    q.blistener = listener;
    const meta = listener.inMeta, m = slot * META;
    q.fam = meta[m + 1]; q.a0 = meta[m + 3]; q.a1 = meta[m + 4]; q.a2 = meta[m + 5]; q.a3 = meta[m + 6];
    this.begin(q);
  }

  /**
   * Books the tickets the addon used since the last call (see Forwarding), oldest first: all of
   * them, or at most `max`.
   */
  private book(max = Infinity): void {
    const f = this.fwd;
    if (f === null || f.booking) return;
    let n = Math.min(f.unbooked(), max);
    if (n <= 0) return;
    const t = f.tickets;
    let c = t[T_BOOKED]!;
    f.booking = true;
    try {
      for (; n > 0; n--) {
        const k = c & (f.cap - 1);
        c = (c + 1) | 0; // counted as booked before it is: a ticket whose booking threw is not booked twice
        this.bookOne(f, k);
      }
    } finally {
      Atomics.store(t, T_BOOKED, c);
      f.booking = false;
    }
  }

  /**
   * The query the addon forwarded on ticket `k` (or, for a local ticket, left to us with that
   * backend): what accept(), begin() and dispatch() do, without the send.
   */
  private bookOne(f: Forwarding, k: number): void {
    const t = f.tickets, o = THDR + k * TW;
    if (t[o + TK_LEN] === -1) { this.recycleTicket(f, k); return; } // voided: drawn for an old state
    const len = t[o + 4], fam = t[o + 5], port = t[o + 6], qe = t[o + 11];
    const a0 = t[o + 7], a1 = t[o + 8], a2 = t[o + 9], a3 = t[o + 10];
    const listener = f.listeners.get(t[o + 12]) ?? null;
    const msg = f.views[k];
    listener?.countRelayed(1, 0);
    const q = f.q[k], a = f.a[k];
    f.q[k] = null;
    f.a[k] = null;
    this.stat.queries++;
    const info = this.info;
    if (q === null || a === null) { // a local ticket: the usual path, to the backend the policy chose then
      this.curBatch = null; // (a plain query: no FORMERR; no cache with forwarding: nothing replies from here)
      this.curDgram = null;
      const lq = this.accept(msg, len, formatWords(fam, a0, a1, a2, a3), port);
      if (lq === null) return;
      lq.blistener = listener;
      lq.fam = fam; lq.a0 = a0; lq.a1 = a1; lq.a2 = a2; lq.a3 = a3;
      this.begin(lq, f.b[k]);
      return;
    }
    this.stat.forwarded++;
    // The addon's plain-query test is stricter than the scanner's, so this cannot fail; but a
    // query already sent is kept track of whatever happens.
    if (scanMessage(msg, len, info) < 0) {
      this.log.error({ service: this.name, len }, 'balancer: the addon forwarded a query the scanner refuses (a bug)');
      info.id = readId(msg); info.questionEnd = qe; info.edns = false; info.udpSize = 512; info.optOffset = -1;
    }
    const sent = f.times[k]!;
    if (this.relay !== null && q.idx < RELAY_QUERIES && Atomics.load(this.relay.claim, q.idx) === CLAIMED) {
      // Answered by the relay before it was booked (nearly every query with a forwarding thread,
      // whose JS books every few ms): only what onRelayed undoes, without the copy kept for
      // retries, the deadlines or the timer. Its completion is in the ring, drained after this.
      q.blistener = listener;
      q.start = sent;
      this.liveQueries++;
      a.ticket = false;
      a.q = q; a.qgen = q.gen; a.sentAt = sent;
      a.backend.active++;
      a.backend.stats.queries++;
      this.liveAttempts++;
      ((a.chan as UdpChannel).sock as BatchUdpSocket).countRelayed(0, 1);
      return;
    }
    // The address as text only if something asks (clientAddr): a forwarded query seldom needs it.
    this.initQuery(q, msg, len, info, '', port, null, null);
    q.blistener = listener;
    q.fam = fam; q.a0 = a0; q.a1 = a1; q.a2 = a2; q.a3 = a3;
    this.started(q, sent);
    a.ticket = false;
    this.register(a, q, a.backend, sent);
    writeId(q.msg, a.id); // as it was sent; a retry writes its own
    ((a.chan as UdpChannel).sock as BatchUdpSocket).countRelayed(0, 1);
  }

  /** Tops the forwarding tickets up from the policy (after a recall: all of them anew). */
  private refill(): void {
    const f = this.fwd;
    if (f === null || this.closed) return;
    this.book();
    const t = f.tickets;
    let c = t[T_PROD]!;
    if (f.recall) {
      // The tickets not used yet are voided by the addon when their turn comes (it may be taking
      // them right now, from a thread) and recycled when booked; new ones follow as they free up.
      f.recall = false;
      Atomics.store(t, T_GEN, (t[T_GEN]! + 1) | 0);
    }
    const end = (t[T_BOOKED]! + f.cap) | 0; // book() above booked all: booked = used
    if (c === end) return;
    const now = this.clock.now();
    for (; c !== end; c = (c + 1) | 0) {
      const i = this.policy.pick(now, 0, 0);
      if (i < 0) break;
      const b = this.backends[i];
      const n = c & (f.cap - 1), o = THDR + n * TW;
      t[o + TK_LEN] = 0;
      t[o + TK_GEN] = t[T_GEN]!;
      if (b.local) {
        f.b[n] = i;
        t[o] = -1; t[o + 1] = -1; t[o + 2] = -1; t[o + 3] = -1;
        continue;
      }
      const ch = b.pickUdp();
      if (ch === null || ch.route === null || !(ch.sock instanceof BatchUdpSocket) || ch.sock.index < 0) break;
      const q = this.newQuery();
      if (q.idx >= RELAY_QUERIES) { this.qPool.push(q); break; }
      const a = this.aPool.pop() ?? new Attempt();
      a.ticket = true;
      a.q = null;
      a.backend = b;
      a.chan = ch;
      a.id = ch.ids.add(a);
      f.q[n] = q;
      f.a[n] = a;
      t[o] = q.idx; t[o + 1] = q.gen; t[o + 2] = ch.sock.index; t[o + 3] = a.id;
    }
    Atomics.store(t, T_PROD, c); // the tickets' fields first, then the cursor that gives them
  }

  /** Gives back the query and attempt a ticket held (a voided ticket). */
  private recycleTicket(f: Forwarding, k: number): void {
    const a = f.a[k];
    if (a !== null) {
      a.chan!.ids.delete(a.id);
      a.ticket = false;
      a.chan = null;
      a.gen++;
      this.aPool.push(a);
    }
    const q = f.q[k];
    if (q !== null) this.qPool.push(q);
    f.a[k] = null;
    f.q[k] = null;
  }

  /**
   * HADNS_FORWARD_THREAD=1: (re)starts the forwarding thread over the service's current
   * forwarding listeners and relay sockets (after start, and when floating addresses come and go).
   */
  private restartThread(): void {
    const f = this.fwd;
    // (A local backend's turn needs JS at once: such a pool keeps the loop.)
    if (f === null || !f.threaded || this.closed || this.backends.some((b) => b.local)) return;
    this.stopThread();
    const socks: BatchUdpSocket[] = [];
    for (const l of this.udpListeners) if (l instanceof BatchUdpSocket) socks.push(l);
    for (const ch of this.relayChans) if (ch.sock instanceof BatchUdpSocket) socks.push(ch.sock);
    if (socks.length === 0) return;
    f.thread = ForwardThread.start(socks, this.onThreadWake, Number(process.env.HADNS_FORWARD_THREAD_SLICE_US ?? 0) || 0);
    f.tick = setInterval(this.onThreadWake, THREAD_TICK_MS);
    f.tick.unref();
  }

  private stopThread(): void {
    const f = this.fwd;
    if (f === null) return;
    if (f.tick !== null) clearInterval(f.tick);
    f.tick = null;
    f.thread?.stop();
  }

  /** The forwarding thread handed something to JS, ran low on tickets, or the tick came. */
  private readonly onThreadWake = (): void => {
    if (this.closed) return;
    this.takeRelayed();
    this.refill();
  };

  private onTcpClient(sock: net.Socket): void {
    const addr = sock.remoteAddress ?? '';
    const port = sock.remotePort ?? 0;
    const c = new DnsTcpConn(sock, MAX_TCP_CLIENT_OUTSTANDING, this.svc.tcp.idle, (msg) => {
      this.stat.queries++;
      if (msg.length < HEADER_LEN || isResponse(msg)) { this.stat.dropped++; return; }
      const q = this.accept(msg, msg.length, addr, port, c);
      if (q === null) return;
      q.tcp = c;
      c.began();
      this.begin(q);
    }, () => this.clients.delete(c));
    this.clients.add(c);
  }

  /**
   * Scans a query; answers FORMERR / cache hits / overload directly (returning null) or returns
   * a pooled Query holding the message (the first `len` bytes of `msg`).
   */
  private accept(msg: Buffer, len: number, addr: string, port: number, tcp: DnsTcpConn | null = null): Query | null {
    const info = this.info;
    if (scanMessage(msg, len, info) < 0) {
      this.stat.formerr++;
      const out = Buffer.allocUnsafe(HEADER_LEN);
      const n = formErr(msg, len, out);
      this.sendRaw(out, n, addr, port, tcp);
      return null;
    }
    let cacheKey: string | null = null;
    if (this.cache) {
      cacheKey = questionKey(msg, info);
      const n = this.cache.lookup(cacheKey, msg, info, this.clock.now(), this.scratch);
      if (n > 0 && (tcp || n <= clientUdpLimit(info))) {
        this.stat.cacheHits++;
        this.stat.answers++;
        this.sendRaw(this.scratch, n, addr, port, tcp);
        return null;
      }
    }
    if (this.liveQueries >= MAX_LIVE_QUERIES) { this.stat.dropped++; return null; }
    const q = this.newQuery();
    this.initQuery(q, msg, len, info, addr, port, tcp, cacheKey);
    return q;
  }

  private newQuery(): Query {
    let q = this.qPool.pop();
    if (q === undefined) {
      q = new Query(this.queries.length);
      this.queries.push(q);
    }
    return q;
  }

  /** Sets a pooled query up for the scanned message `msg[0, len)` from addr:port. */
  private initQuery(q: Query, msg: Buffer, len: number, info: QueryInfo, addr: string, port: number, tcp: DnsTcpConn | null, cacheKey: string | null): void {
    // Copied: retries need it after the datagram's buffer (a batch slot) has been reused.
    if (len > q.own.length) q.own = Buffer.allocUnsafeSlow(len);
    copyBytes(msg, len, q.own, 0);
    q.msg = q.own;
    q.len = len;
    // A UDP client never gets more than 4096 bytes from us (clientUdpLimit), so backends are not
    // asked for more either: a larger answer would not fit a batched socket's slot, and a
    // compliant backend now answers TC instead, which the client follows over TCP.
    if (tcp === null && info.edns && info.udpSize > 4096 && info.optOffset >= 0) {
      q.own[info.optOffset + 3] = 0x10;
      q.own[info.optOffset + 4] = 0x00;
    }
    q.clientId = info.id;
    q.questionEnd = info.questionEnd;
    q.udpLimit = clientUdpLimit(info);
    q.addr = addr;
    q.fam = 0; // set by the batched paths after this; clientAddr() formats from it when addr is ''
    q.port = port;
    q.tcp = null;
    q.listener = null;
    q.blistener = null;
    q.tried = 0;
    q.tries = 0;
    q.live = 0;
    q.fallback = null;
    q.cacheKey = cacheKey;
    q.key = this.useHash ? hashString(addr) : 0;
  }

  /**
   * Replies the balancer makes itself while accepting (FORMERR, cache hits), from the receiving
   * listener. `buf` may be reused after this returns: the TCP frame and the batch slot are copies,
   * and only dgram (which may send later) needs one made here.
   */
  private sendRaw(buf: Buffer, len: number, addr: string, port: number, tcp: DnsTcpConn | null): void {
    if (tcp) { tcp.write(buf, len); return; }
    if (this.curBatch) { this.curBatch.sendReply(this.curSlot, buf, len); return; }
    const l = this.curDgram;
    if (l) try { l.send(Buffer.from(buf.subarray(0, len)), port, addr); } catch { /* listener closed (VIP released) */ }
  }

  /** Starts a query; `backend` is the one a forwarding ticket chose, or -1: the policy picks. */
  private begin(q: Query, backend = -1): void {
    if (this.relay !== null && q.idx < RELAY_QUERIES) Atomics.store(this.relay.claim, q.idx, q.gen);
    const now = this.clock.now();
    this.started(q, now);
    if (!this.dispatch(q, now, backend)) this.fail(q);
  }

  /** A query is live from `now`: its budget runs. */
  private started(q: Query, now: number): void {
    q.start = now;
    this.liveQueries++;
    this.deadlines.push(q);
  }

  /** Attempt `a` of query `q` goes to backend `b` at `now`: counted, and its deadlines queued. */
  private register(a: Attempt, q: Query, b: DnsBackend, now: number): void {
    a.q = q;
    a.qgen = q.gen;
    a.backend = b;
    a.sentAt = now;
    q.tried |= 1 << b.index;
    if (q.tries > 0) this.stat.retries++;
    q.tries++;
    q.live++;
    b.active++;
    b.stats.queries++;
    this.liveAttempts++;
    b.soft.push(a);
    b.hard.push(a);
    // Its hedge deadline comes first of its deadlines (timeout ≤ query_max ≤ the budget).
    const due = now + b.health.latency.timeout();
    if (due < this.timerAt) this.arm(due, now);
  }

  /** Sends the query to one more backend; false when none is left (tries, budget, backends). */
  private dispatch(q: Query, now: number = this.clock.now(), backend = -1): boolean {
    if (q.tries >= this.maxTries) return false;
    if (q.tries > 0 && now - q.start >= this.budget) return false;
    const i = backend >= 0 ? backend : this.policy.pick(now, q.key, q.tried);
    if (i < 0) return false;
    const b = this.backends[i];
    const a = this.aPool.pop() ?? new Attempt();
    a.chan = null;
    this.register(a, q, b, now);
    if (b.local) { this.callLocal(a, q); return true; }
    let ch: Channel | null;
    if (q.tcp) ch = this.pickTcp(b);
    else ch = b.pickUdp();
    if (ch === null) { this.attemptFailed(a, false); return true; }
    const id = ch.ids.add(a);
    a.id = id;
    a.chan = ch;
    const route = ch.route;
    if (route !== null && q.blistener !== null && q.idx < RELAY_QUERIES && q.blistener.index >= 0) {
      RelayTables.write(route, id, q.idx, q.gen, q.blistener.index, q.fam, q.port, q.a0, q.a1, q.a2, q.a3, q.clientId, q.questionEnd);
    }
    writeId(q.msg, id);
    ch.send(q.msg, q.len);
    return true;
  }

  private callLocal(a: Attempt, q: Query): void {
    const gen = a.gen;
    writeId(q.msg, q.clientId);
    const ctx: QueryContext = {
      clientAddress: this.clientAddr(q), clientPort: q.port, transport: q.tcp ? 'tcp' : 'udp', maxSize: q.tcp ? 65535 : q.udpLimit,
    };
    // A closure per local query: the DnsHandler contract gives the reply no other context.
    this.opts.localHandler!.handle(q.msg, ctx, (resp, len) => this.onLocalReply(a, gen, resp, len), q.len);
  }

  /** The client's address as text (a forwarded query is booked without it: made when asked). */
  private clientAddr(q: Query): string {
    if (q.addr === '' && q.fam !== 0) q.addr = formatWords(q.fam, q.a0, q.a1, q.a2, q.a3);
    return q.addr;
  }

  private onLocalReply(a: Attempt, gen: number, resp: Uint8Array, len: number): void {
    if (a.gen !== gen) return; // expired or closed meanwhile
    const b = a.backend;
    const now = this.clock.now();
    if (len === 0) {
      // The resolver dropped the query on purpose: so do we.
      const q = this.liveQuery(a);
      this.releaseAttempt(a);
      if (q && this.own(q)) this.finish(q);
      return;
    }
    const copy = Buffer.allocUnsafe(len);
    copy.set(resp.subarray(0, len));
    b.stats.answers++;
    if (b.health.success(now, now - a.sentAt)) this.logState(b, now);
    const q = this.liveQuery(a);
    this.releaseAttempt(a);
    if (q) this.answer(q, b, copy, copy.length);
  }

  // ---------------------------------------------------------------- backend side

  /** An answer from a backend: the first `len` bytes of `msg` (a batch slot: valid during this call). */
  private onUpstreamAnswer(ch: Channel, msg: Buffer, len: number): void {
    this.takeRelayed();
    const b = ch.backend;
    if (len < HEADER_LEN || !isResponse(msg)) { this.stat.stray++; return; }
    const a = ch.ids.get(readId(msg));
    if (a === undefined || a.ticket) { this.stat.stray++; return; }
    const q = this.liveQuery(a);
    // Wrong question for this ID: not our answer (spoofing attempt or a confused server).
    if (q !== null && !sameQuestion(msg, len, q.msg, q.questionEnd)) { this.stat.stray++; return; }
    const now = this.clock.now();
    b.stats.answers++;
    if (b.health.success(now, now - a.sentAt)) this.logState(b, now);
    this.releaseAttempt(a);
    if (q !== null) this.answer(q, b, msg, len);
  }

  private answer(q: Query, b: DnsBackend, msg: Buffer, len: number): void {
    const rc = rcodeOf(msg);
    if (rc === Rcode.SERVFAIL || rc === Rcode.REFUSED) {
      b.stats.servfail++;
      const retry = rc === Rcode.SERVFAIL ? this.svc.next_upstream.on_servfail : this.svc.next_upstream.on_refused;
      // Copied: an answer from a batched socket is a view of a slot the next batch reuses.
      if (retry && this.dispatch(q)) { q.fallback = Buffer.from(msg.subarray(0, len)); return; }
      if (q.live > 0) { q.fallback = Buffer.from(msg.subarray(0, len)); return; } // another attempt may still bring a real answer
    }
    this.complete(q, msg, len);
  }

  /**
   * Takes query `q` from the relay before JS answers or drops it: false when the relay answered
   * it meanwhile (possible once the addon runs beside JS; JS then finishes it from the ring).
   */
  private own(q: Query): boolean {
    if (this.relay === null || q.idx >= RELAY_QUERIES) return true;
    const v = Atomics.compareExchange(this.relay.claim, q.idx, q.gen, OWNED);
    return v === q.gen || v === OWNED;
  }

  /** Sends the one answer the client gets and retires the query. */
  private complete(q: Query, msg: Buffer, len: number): void {
    if (!this.own(q)) return;
    writeId(msg, q.clientId);
    if (this.cache && q.cacheKey !== null) this.cache.store(q.cacheKey, msg, len, this.clock.now());
    if (q.tcp) {
      q.tcp.write(msg, len);
    } else if (q.blistener) {
      q.blistener.sendWords(msg, len, q.fam, q.port, q.a0, q.a1, q.a2, q.a3);
    } else if (q.listener) {
      try {
        if (len === msg.length) q.listener.send(msg, q.port, q.addr);
        else q.listener.send(msg, 0, len, q.port, q.addr);
      } catch { /* the listener was closed meanwhile (VIP released): the client retries at the new holder */ }
    }
    this.stat.answers++;
    this.finish(q);
  }

  /** Every attempt failed or the budget ran out: the fallback answer, else SERVFAIL. */
  private fail(q: Query): void {
    if (!this.own(q)) return;
    if (q.fallback) { this.complete(q, q.fallback, q.fallback.length); return; }
    this.stat.servfail++;
    writeId(q.msg, q.clientId);
    const info = this.info;
    if (scanMessage(q.msg, q.len, info) < 0) { this.finish(q); return; }
    const out = Buffer.allocUnsafe(q.questionEnd + 11);
    const n = errorResponse(q.msg, info, Rcode.SERVFAIL, out);
    this.complete(q, out, n);
    this.stat.answers--; // counted as servfail, not as a backend answer
  }

  private finish(q: Query): void {
    if (q.tcp !== null) q.tcp.finished();
    q.gen = (q.gen + 1) & 0x3fffffff; // stays a positive int32: the relay's claim table holds it
    if (this.relay !== null && q.idx < RELAY_QUERIES) Atomics.store(this.relay.claim, q.idx, IDLE);
    q.fallback = null;
    q.tcp = null;
    q.listener = null;
    q.blistener = null;
    this.liveQueries--;
    this.qPool.push(q);
  }

  /** The attempt's query while it still waits for an answer (not answered, not claimed by the relay). */
  private liveQuery(a: Attempt): Query | null {
    const q = a.q;
    if (q === null || q.gen !== a.qgen) return null;
    return this.relay !== null && q.idx < RELAY_QUERIES && this.relay.claim[q.idx] === CLAIMED ? null : q;
  }

  /** Finishes the queries the relay answered since JS last ran (cheap when there are none). */
  private takeRelayed(): void {
    if (this.fwd !== null && this.fwd.unbooked() > 0) this.book(); // before their answers
    if (this.relay !== null && this.relay.pending()) this.relay.drain(this.onRelayed);
  }

  /**
   * A query the relay answered (from its completion ring): the bookkeeping onUpstreamAnswer and
   * complete() do for an answer that came through JS.
   */
  private readonly onRelayed = (tag: number, id: number, qidx: number, qgen: number, t: number): void => {
    const q = this.queries[qidx];
    if (q === undefined || q.gen !== qgen) return; // cannot happen: JS does not finish a claimed query
    const ch = this.relayChans[tag];
    const a = ch?.ids.get(id);
    if (a !== undefined && a.q === q && a.qgen === qgen) {
      const b = a.backend;
      b.stats.answers++;
      if (b.health.success(t, Math.max(0, t - a.sentAt))) this.logState(b, t);
      this.releaseAttempt(a);
    }
    (ch?.sock as BatchUdpSocket | undefined)?.countRelayed(1, 0);
    q.blistener?.countRelayed(0, 1);
    this.stat.answers++;
    this.stat.relayed++;
    this.finish(q);
  };

  /** Unregisters an attempt (answered, expired or its channel died) and recycles it. */
  private releaseAttempt(a: Attempt): void {
    if (a.chan) {
      a.chan.ids.delete(a.id);
      // A released attempt's answer is a stray for JS: the relay must not take it either.
      if (a.chan.route !== null) RelayTables.forget(a.chan.route, a.id);
    }
    const q = this.liveQuery(a);
    if (q) q.live--;
    a.backend.active--;
    this.liveAttempts--;
    a.gen++;
    a.q = null;
    a.chan = null;
    this.aPool.push(a);
  }

  /** An attempt is known failed without waiting (socket error, no channel, connection lost). */
  private attemptFailed(a: Attempt, countFailure: boolean): void {
    const b = a.backend;
    const now = this.clock.now();
    b.stats.errors++;
    if (countFailure && b.health.failure(now, false)) this.logState(b, now);
    const q = this.liveQuery(a);
    this.releaseAttempt(a);
    if (q && q.live === 0 && !this.dispatch(q)) this.fail(q);
  }

  private onUpstreamError(b: DnsBackend, e: Error): void {
    // ICMP port unreachable on a connected socket: the backend process is gone. Count it and
    // hedge everything in flight to it now instead of waiting for the timeout.
    const now = this.clock.now();
    b.stats.errors++;
    if (b.health.failure(now, false)) this.logState(b, now);
    this.log.debug({ service: this.name, backend: b.id, err: e.message }, 'backend socket error');
    for (let a = b.soft.peek(); a !== undefined; a = b.soft.peek()) {
      b.soft.shift();
      const q = this.liveQuery(a);
      if (q && this.dispatch(q)) b.stats.hedged++;
    }
  }

  private pickTcp(b: DnsBackend): TcpChannel | null {
    let best: TcpChannel | null = null;
    for (const ch of b.tcp) if (!ch.dead && (best === null || ch.ids.size < best.ids.size)) best = ch;
    if (best !== null && (best.ids.size === 0 || b.tcp.length >= this.svc.tcp.connections_per_backend)) {
      return best.ids.size < MAX_IDS_PER_SOCKET ? best : null;
    }
    const sock = net.connect({ host: b.host, port: b.port, noDelay: true });
    const ch = new TcpChannel(b, sock, (c, m) => this.onUpstreamAnswer(c, m, m.length));
    b.tcp.push(ch);
    sock.setTimeout(this.svc.timeouts.connect);
    sock.once('connect', () => sock.setTimeout(this.svc.tcp.idle));
    // Connect timeout, or idle with nothing in flight. A stalled connection with queries in
    // flight is left to the per-attempt timeouts (which hedge elsewhere).
    sock.on('timeout', () => { if (sock.connecting || ch.ids.size === 0) sock.destroy(); });
    sock.on('data', (chunk) => { if (!ch.framer.push(chunk)) sock.destroy(); });
    sock.on('error', () => { /* handled on close */ });
    sock.on('close', () => this.onTcpUpstreamClosed(ch));
    return ch;
  }

  private onTcpUpstreamClosed(ch: TcpChannel): void {
    ch.dead = true;
    const b = ch.backend;
    const i = b.tcp.indexOf(ch);
    if (i >= 0) b.tcp.splice(i, 1);
    if (this.closed) return;
    // Queries still waiting on it go elsewhere; the backend is blamed only if it never answered.
    const waiting = [...ch.ids.values()];
    for (const a of waiting) this.attemptFailed(a, ch.answered === 0);
  }

  // ---------------------------------------------------------------- timers

  /**
   * Arms the deadline timer for `due`. One timer at the earliest deadline in flight, not a fixed
   * tick: at 10k q/s a 5 ms interval cost ~1 µs of CPU per query (3% of the balancer's CPU) to
   * find nothing due, because almost every attempt is answered long before its deadline.
   */
  private arm(due: number, now: number): void {
    if (this.closed) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timerAt = due;
    this.timer = setTimeout(this.onTimer, Math.max(0, Math.ceil(due - now)));
  }

  private tick(): void {
    this.takeRelayed();
    const now = this.clock.now();
    for (const b of this.backends) {
      // Hedge: attempts older than the backend's adaptive timeout get a second backend.
      const t = b.health.latency.timeout();
      let hedgedHere = false;
      for (let a = b.soft.peek(); a !== undefined && now - a.sentAt >= t; a = b.soft.peek()) {
        b.soft.shift();
        const q = this.liveQuery(a);
        if (q === null) continue;
        b.stats.hedged++;
        hedgedHere = true;
        this.dispatch(q);
      }
      if (hedgedHere) b.health.latency.timedOut();
      // Give up: attempts unanswered after query_max are failures for passive health.
      for (let a = b.hard.peek(); a !== undefined && now - a.sentAt >= this.hardMs; a = b.hard.peek()) {
        b.hard.shift();
        b.stats.timeouts++;
        if (b.health.failure(now, true)) this.logState(b, now);
        const q = this.liveQuery(a);
        this.releaseAttempt(a);
        if (q && q.live === 0 && !this.dispatch(q)) this.fail(q);
      }
    }
    for (let q = this.deadlines.peek(); q !== undefined && now - q.start >= this.budget; q = this.deadlines.peek()) {
      this.deadlines.shift();
      this.fail(q);
    }
    if (this.liveAttempts === 0 && this.liveQueries === 0) {
      for (const b of this.backends) { b.soft.clear(); b.hard.clear(); }
      this.deadlines.clear();
      return;
    }
    // Next: the earliest deadline among the heads (dead entries were skipped by peek).
    let next = Infinity;
    for (const b of this.backends) {
      const s = b.soft.peek();
      if (s !== undefined) next = Math.min(next, s.sentAt + b.health.latency.timeout());
      const h = b.hard.peek();
      if (h !== undefined) next = Math.min(next, h.sentAt + this.hardMs);
    }
    const q = this.deadlines.peek();
    if (q !== undefined) next = Math.min(next, q.start + this.budget);
    // Live but nothing queued (a relayed query not yet taken, a local call in progress): look again soon.
    if (next === Infinity) next = now + IDLE_TICK_MS;
    if (next < this.timerAt) this.arm(next, now);
  }

  // ---------------------------------------------------------------- active health

  private async startProbes(b: DnsBackend): Promise<void> {
    const hc = this.svc.health_check;
    if (!b.local) {
      const sock = await connectUdp(b.host, b.port);
      b.probeSock = sock;
      sock.on('message', (m) => {
        if (m.length < HEADER_LEN || !isResponse(m) || readId(m) !== b.probeId) return;
        b.probeId = -1;
        this.probeResult(b, this.probeOk(rcodeOf(m)));
      });
      sock.on('error', () => { if (b.probeId >= 0) { b.probeId = -1; this.probeResult(b, false); } });
    }
    const send = (): void => this.sendProbe(b);
    b.probeTimer = setInterval(send, hc.interval);
    b.probeTimer.unref();
    send();
  }

  private probeOk(rc: number): boolean {
    if (rc === Rcode.SERVFAIL) return false;
    if (this.svc.health_check.must_resolve && (rc === Rcode.NXDOMAIN || rc === Rcode.REFUSED)) return false;
    return true;
  }

  private sendProbe(b: DnsBackend): void {
    if (this.closed) return;
    if (b.probeId >= 0) { b.probeId = -1; this.probeResult(b, false); }
    const id = (Math.random() * 65536) | 0;
    b.probeId = id;
    b.probeSentAt = this.clock.now();
    const msg = Buffer.from(this.probeMsg);
    writeId(msg, id);
    if (b.probeTimeout) clearTimeout(b.probeTimeout);
    b.probeTimeout = setTimeout(() => {
      if (b.probeId === id) { b.probeId = -1; this.probeResult(b, false); }
    }, this.svc.health_check.timeout);
    b.probeTimeout.unref();
    if (b.local) {
      const ctx: QueryContext = { clientAddress: '127.0.0.1', clientPort: 0, transport: 'udp', maxSize: 1232 };
      this.opts.localHandler!.handle(msg, ctx, (resp, len) => {
        if (b.probeId !== id || len < HEADER_LEN) return;
        b.probeId = -1;
        this.probeResult(b, this.probeOk(rcodeOf(resp)));
      });
    } else {
      b.probeSock!.send(msg);
    }
  }

  private probeResult(b: DnsBackend, ok: boolean): void {
    const now = this.clock.now();
    if (ok) b.stats.probesOk++; else b.stats.probesFailed++;
    if (b.health.probe(now, ok, now - b.probeSentAt)) this.logState(b, now);
  }

  private logState(b: DnsBackend, now: number): void {
    if (this.fwd !== null) {
      // Tickets drawn for the old state are re-drawn: now, or, when this comes from booking a
      // ticket (a local backend answering at once), at the next refill: book() is still
      // reading the used tickets that a refill would overwrite.
      this.fwd.recall = true;
      if (!this.fwd.booking) this.refill();
    }
    const state = b.health.state(now);
    const fn = state === 'up' ? this.log.info : this.log.warn;
    fn.call(this.log, { service: this.name, backend: b.id, state }, `backend ${b.id} is ${state}`);
  }

  // ---------------------------------------------------------------- status, close

  stats(): DnsServiceStats {
    this.takeRelayed();
    const now = this.clock.now();
    return {
      name: this.name, mode: 'dns', ...this.stat, live: this.liveQueries,
      ...(this.fwd?.thread ? { forwardThread: this.fwd.thread.stats() } : {}),
      backends: this.backends.map((b) => ({
        address: b.id, state: b.down ? 'down' : b.health.state(now), weight: b.weight, backup: b.backup, down: b.down,
        ...b.stats, outstanding: b.active, latencyMs: b.health.latency.srtt, timeoutMs: b.health.latency.timeout(), latency: b.health.histogram.view(),
      })),
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopThread();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Infinity;
    for (const b of this.backends) {
      if (b.probeTimer) clearInterval(b.probeTimer);
      if (b.probeTimeout) clearTimeout(b.probeTimeout);
      b.probeSock?.close();
      for (const ch of b.udp) ch.sock.close();
      for (const ch of b.tcp) ch.sock.destroy();
      b.udp.length = 0;
    }
    for (const s of this.udpListeners) s.close();
    for (const c of this.clients) c.sock.destroy();
    await Promise.all(this.tcpServers.map(closeServer));
  }
}

export { formatHostPort };
