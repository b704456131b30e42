/**
 * Generic UDP proxy (any datagram service; DNS uses dns-proxy.ts instead) — nginx stream's
 * UDP model, with its failure modes fixed:
 *
 *  - a session is keyed by client address:port and owns one connected socket to its backend
 *    (that socket's port is how replies find the client — there is no other way for opaque
 *    datagrams), so sessions cost file descriptors;
 *  - it ends after `proxy` idle time or once the expected responses (`udp.responses` per
 *    client datagram, nginx `proxy_responses`) have come back;
 *  - the table is bounded (`udp.max_sessions`): when full, the least recently used session is
 *    closed to make room. nginx refuses new sessions instead (worker_connections), which is what
 *    turned a 20 s proxy_timeout into an 87% loss at 200 q/s. A flood of fresh source ports thus
 *    costs at most max_sessions sockets and recycles old ones;
 *  - an ICMP error before any reply moves the session to the next backend and re-sends the
 *    last datagram (next upstream), and counts as a failure for passive health.
 *
 * The Map keeps sessions in last-activity order (re-inserted on activity), so expiry sweeps
 * and LRU eviction both work from its front.
 */
import type dgram from 'node:dgram';
import { isIP } from 'node:net';
import dgramMod from 'node:dgram';
import { monotonicClock, type Clock } from '../util/clock.js';
import type { ListenAddress, ServiceConfig } from './config.js';
import { splitHostPort } from './config.js';
import { BackendHealth } from './health.js';
import { createPolicy, hashString, type Policy, type PoolMember } from './policy.js';
import { bindUdp, type BalancerLog, type Bound } from './sockets.js';

/** Datagrams a session buffers while its backend socket is being set up. */
const MAX_QUEUED = 16;

export class L4Backend implements PoolMember {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  active = 0;
  readonly health: BackendHealth;
  stats = { sessions: 0, failures: 0 };
  constructor(readonly index: number, readonly cfg: ServiceConfig['pool']['backends'][number], svc: ServiceConfig) {
    this.id = cfg.address;
    const hp = splitHostPort(cfg.address);
    this.host = hp.host; this.port = hp.port;
    this.health = new BackendHealth({
      passive: { maxFails: cfg.max_fails, failTimeoutMs: cfg.fail_timeout },
      // generic services have no active probes: active state stays up
      active: { rise: 1, fall: 1 },
      timeout: { initialMs: svc.timeouts.connect, minMs: 1, maxMs: svc.timeouts.connect },
    });
  }
  get weight(): number { return this.cfg.weight; }
  get backup(): boolean { return this.cfg.backup; }
  get down(): boolean { return this.cfg.down; }
  get latencyMs(): number { return this.health.latency.srtt; }
  available(now: number): boolean { return this.health.available(now); }
}

class Session {
  sock: dgram.Socket | null = null;
  backend!: L4Backend;
  lastActive = 0;
  requests = 0;
  responses = 0;
  tried = 0;
  ready = false;
  closed = false;
  queue: Buffer[] = [];
  last: Buffer | null = null;
  constructor(readonly key: string, readonly listener: dgram.Socket, readonly addr: string, readonly port: number) {}
}

export interface UdpServiceStats {
  name: string;
  mode: 'udp';
  sessions: number;
  created: number;
  expired: number;
  /** Sessions closed early because the table was full. */
  evicted: number;
  completed: number;
  datagramsIn: number;
  datagramsOut: number;
  dropped: number;
  backends: { address: string; state: 'up' | 'down'; weight: number; sessions: number; active: number; failures: number }[];
}

export interface UdpProxyOptions {
  service: ServiceConfig;
  listeners: ListenAddress[];
  log: BalancerLog;
  clock?: Clock;
  random?: () => number;
}

export class UdpProxy {
  readonly name: string;
  readonly backends: L4Backend[];
  private readonly policy: Policy;
  private readonly clock: Clock;
  private readonly sessions = new Map<string, Session>();
  private readonly listeners: dgram.Socket[] = [];
  private readonly bound: Bound[] = [];
  private sweeper: NodeJS.Timeout | null = null;
  private readonly st = { created: 0, expired: 0, evicted: 0, completed: 0, datagramsIn: 0, datagramsOut: 0, dropped: 0 };
  private readonly svc: ServiceConfig;

  constructor(private readonly opts: UdpProxyOptions) {
    this.svc = opts.service;
    this.name = this.svc.name;
    this.clock = opts.clock ?? monotonicClock;
    this.backends = this.svc.pool.backends.map((b, i) => new L4Backend(i, b, this.svc));
    this.policy = createPolicy(this.svc.pool.policy, this.backends, opts.random);
  }

  async start(): Promise<Bound[]> {
    try {
      for (const l of this.opts.listeners) {
        const sock = await bindUdp(l.address, l.port, l.reuseport);
        sock.on('message', (m, r) => this.onClient(sock, m, r));
        this.listeners.push(sock);
        const a = sock.address();
        this.bound.push({ proto: 'udp', address: a.address, port: a.port });
      }
    } catch (e) { await this.close(); throw e; }
    const period = Math.max(10, Math.min(1000, Math.floor(this.svc.timeouts.proxy / 4)));
    this.sweeper = setInterval(() => this.sweep(), period);
    this.sweeper.unref();
    this.opts.log.info({ service: this.name, mode: 'udp', listen: this.bound, backends: this.backends.map((b) => b.id) }, 'balancer service started');
    return this.bound;
  }

  addresses(): Bound[] { return this.bound.slice(); }

  private onClient(listener: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    this.st.datagramsIn++;
    const key = `${rinfo.address}|${rinfo.port}|${this.listeners.indexOf(listener)}`;
    let s = this.sessions.get(key);
    const now = this.clock.now();
    if (s === undefined) {
      if (this.sessions.size >= this.svc.udp.max_sessions) {
        const oldest = this.sessions.values().next().value as Session;
        this.st.evicted++;
        this.closeSession(oldest);
      }
      s = new Session(key, listener, rinfo.address, rinfo.port);
      if (!this.connect(s, now)) { this.st.dropped++; return; }
      this.sessions.set(key, s);
      this.st.created++;
    } else {
      // keep the Map in last-activity order
      this.sessions.delete(key);
      this.sessions.set(key, s);
    }
    s.lastActive = now;
    s.requests++;
    s.last = msg;
    if (s.ready) s.sock!.send(msg);
    else if (s.queue.length < MAX_QUEUED) s.queue.push(msg);
    else this.st.dropped++;
  }

  /** Picks a backend for the session and opens its socket; false when no backend is usable. */
  private connect(s: Session, now: number): boolean {
    const i = this.policy.pick(now, this.svc.pool.policy === 'hash' ? hashString(s.addr) : 0, s.tried);
    if (i < 0) return false;
    const b = this.backends[i];
    s.tried |= 1 << i;
    s.backend = b;
    s.ready = false;
    b.active++;
    b.stats.sessions++;
    const sock = dgramMod.createSocket(isIP(b.host) === 6 ? 'udp6' : 'udp4');
    s.sock = sock;
    sock.on('message', (m) => this.onBackend(s, sock, m));
    sock.on('error', () => this.onBackendError(s, sock));
    sock.connect(b.port, b.host, () => {
      if (s.closed || s.sock !== sock) return;
      s.ready = true;
      for (const m of s.queue) sock.send(m);
      s.queue.length = 0;
    });
    return true;
  }

  private onBackend(s: Session, sock: dgram.Socket, m: Buffer): void {
    if (s.closed || s.sock !== sock) return;
    const now = this.clock.now();
    if (s.responses === 0) s.backend.health.success(now, now - s.lastActive);
    s.responses++;
    s.lastActive = now;
    this.st.datagramsOut++;
    s.listener.send(m, s.port, s.addr);
    const expect = this.svc.udp.responses;
    if (expect > 0 && s.responses >= expect * s.requests) { this.st.completed++; this.closeSession(s); }
    else { this.sessions.delete(s.key); this.sessions.set(s.key, s); }
  }

  private onBackendError(s: Session, sock: dgram.Socket): void {
    if (s.closed || s.sock !== sock) return;
    const now = this.clock.now();
    const b = s.backend;
    b.stats.failures++;
    b.health.failure(now, false);
    // Before any reply, move the session to another backend and re-send (next upstream).
    const nu = this.svc.next_upstream;
    const tries = nu.tries === 0 ? this.backends.length : nu.tries;
    this.releaseSocket(s);
    if (s.responses === 0 && nu.enabled && countBits(s.tried) < tries && this.connect(s, now)) {
      if (s.last) s.queue.push(s.last);
      return;
    }
    this.closeSession(s);
  }

  private releaseSocket(s: Session): void {
    if (s.sock) {
      s.backend.active--;
      try { s.sock.close(); } catch { /* closed */ }
      s.sock = null;
    }
    s.ready = false;
  }

  private closeSession(s: Session): void {
    if (s.closed) return;
    s.closed = true;
    this.releaseSocket(s);
    this.sessions.delete(s.key);
  }

  /** Closes sessions idle for longer than proxy_timeout (the Map's front is the least recent). */
  private sweep(): void {
    const now = this.clock.now();
    const limit = this.svc.timeouts.proxy;
    for (const s of this.sessions.values()) {
      if (now - s.lastActive < limit) break;
      this.st.expired++;
      // Expected replies that never came: the backend failed this session.
      if (this.svc.udp.responses > 0 && s.responses < s.requests * this.svc.udp.responses) {
        s.backend.stats.failures++;
        s.backend.health.failure(now, true);
      }
      this.closeSession(s);
    }
  }

  stats(): UdpServiceStats {
    const now = this.clock.now();
    return {
      name: this.name, mode: 'udp', sessions: this.sessions.size, ...this.st,
      backends: this.backends.map((b) => ({
        address: b.id, state: b.down ? 'down' : b.health.state(now), weight: b.weight, sessions: b.stats.sessions, active: b.active, failures: b.stats.failures,
      })),
    };
  }

  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    for (const s of [...this.sessions.values()]) this.closeSession(s);
    for (const l of this.listeners) l.close();
    this.listeners.length = 0;
  }
}

function countBits(x: number): number {
  let n = 0;
  for (let v = x >>> 0; v; v &= v - 1) n++;
  return n;
}
