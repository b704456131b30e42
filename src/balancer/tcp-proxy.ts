/**
 * Generic TCP proxy (any stream service: the article's first example balances a web server).
 *
 *  - next upstream: a backend that refuses, resets or does not accept within
 *    `timeouts.connect` is counted as failed (passive health) and the next one is tried,
 *    within `next_upstream.tries` and `next_upstream.timeout`;
 *  - the client's bytes wait in its socket (not read) until a backend is connected, and
 *    `pipe()` moves data with backpressure both ways: a slow side pauses the other, nothing is
 *    buffered without bound;
 *  - half-close: both sockets allow half-open, so a client's FIN is passed on as a FIN to the
 *    backend while the answer still flows back (and the other way round);
 *  - `timeouts.proxy` closes a connection idle in both directions; `tcp.max_connections`
 *    bounds concurrent clients per listener;
 *  - an optional PROXY protocol v1/v2 header tells the backend the real client address.
 */
import net from 'node:net';
import { monotonicClock, type Clock } from '../util/clock.js';
import type { ListenAddress, ServiceConfig } from './config.js';
import { createPolicy, hashString, type Policy } from './policy.js';
import { proxyV1, proxyV2 } from './proxy-protocol.js';
import { closeServer, listenTcp, type BalancerLog, type Bound } from './sockets.js';
import { L4Backend } from './udp-proxy.js';

export interface TcpServiceStats {
  name: string;
  mode: 'tcp';
  connections: number;
  accepted: number;
  rejected: number;
  /** Connection attempts that moved on to another backend. */
  nextUpstream: number;
  /** Clients closed because no backend could be reached. */
  failed: number;
  bytesIn: number;
  bytesOut: number;
  backends: { address: string; state: 'up' | 'down'; weight: number; active: number; connections: number; failures: number }[];
}

export interface TcpProxyOptions {
  service: ServiceConfig;
  listeners: ListenAddress[];
  log: BalancerLog;
  clock?: Clock;
  random?: () => number;
  /** Floating addresses (VIPs): listeners on them are bound only while held (attach/detach). */
  floating?: readonly string[];
}

export class TcpProxy {
  readonly name: string;
  readonly backends: L4Backend[];
  private readonly policy: Policy;
  private readonly clock: Clock;
  private readonly servers: net.Server[] = [];
  private readonly conns = new Set<net.Socket>();
  private bound: Bound[] = [];
  private readonly attached = new Map<string, net.Server[]>();
  private readonly svc: ServiceConfig;
  private readonly st = { accepted: 0, rejected: 0, nextUpstream: 0, failed: 0, bytesIn: 0, bytesOut: 0 };
  private closing = false;

  constructor(private readonly opts: TcpProxyOptions) {
    this.svc = opts.service;
    this.name = this.svc.name;
    this.clock = opts.clock ?? monotonicClock;
    this.backends = this.svc.pool.backends.map((b, i) => new L4Backend(i, b, this.svc));
    this.policy = createPolicy(this.svc.pool.policy, this.backends, opts.random);
  }

  async start(): Promise<Bound[]> {
    try {
      const floating = new Set(this.opts.floating ?? []);
      for (const l of this.opts.listeners) if (!floating.has(l.address)) await this.listenOne(l);
    } catch (e) { await this.close(); throw e; }
    this.opts.log.info({ service: this.name, mode: 'tcp', listen: this.bound, backends: this.backends.map((b) => b.id) }, 'balancer service started');
    return this.bound;
  }

  addresses(): Bound[] { return this.bound.slice(); }

  private async listenOne(l: ListenAddress): Promise<net.Server> {
    const srv = await listenTcp(l.address, l.port, (c) => this.onClient(c), this.svc.tcp.max_connections);
    srv.on('drop', () => { this.st.rejected++; });
    this.servers.push(srv);
    const a = srv.address() as net.AddressInfo;
    this.bound.push({ proto: 'tcp', address: a.address, port: a.port });
    return srv;
  }

  /** This node now holds `address`: listen on it. (TCP on a wildcard already answers from it.) */
  async attach(address: string): Promise<void> {
    if (this.closing || this.attached.has(address)) return;
    const list: net.Server[] = [];
    this.attached.set(address, list);
    try {
      for (const l of this.opts.listeners) if (l.address === address) list.push(await this.listenOne(l));
    } catch (e) {
      await this.detach(address); // all or nothing, so a retry starts clean
      throw e;
    }
  }

  /** This node gave `address` away: stop listening on it (established connections stay). */
  async detach(address: string): Promise<void> {
    const list = this.attached.get(address);
    if (!list) return;
    this.attached.delete(address);
    for (const srv of list) { const i = this.servers.indexOf(srv); if (i >= 0) this.servers.splice(i, 1); }
    this.bound = this.bound.filter((b) => b.address !== address);
    await Promise.all(list.map(closeServer));
  }

  private onClient(client: net.Socket): void {
    if (this.closing) { client.destroy(); return; }
    this.st.accepted++;
    this.conns.add(client);
    client.pause();
    client.on('error', () => { /* reset by peer: 'close' cleans up */ });
    client.on('close', () => this.conns.delete(client));
    const start = this.clock.now();
    this.tryBackend(client, start, 0, 0);
  }

  private tryBackend(client: net.Socket, start: number, tried: number, tries: number): void {
    if (client.destroyed) return;
    const now = this.clock.now();
    const nu = this.svc.next_upstream;
    const maxTries = !nu.enabled ? 1 : nu.tries === 0 ? this.backends.length : nu.tries;
    const i = tries < maxTries && (tries === 0 || nu.timeout === 0 || now - start < nu.timeout)
      ? this.policy.pick(now, this.svc.pool.policy === 'hash' ? hashString(client.remoteAddress ?? '') : 0, tried)
      : -1;
    if (i < 0) { this.st.failed++; client.destroy(); return; }
    if (tries > 0) this.st.nextUpstream++;
    const b = this.backends[i];
    b.active++;
    b.stats.sessions++;
    const up = net.connect({ host: b.host, port: b.port, allowHalfOpen: true, noDelay: true });
    let connected = false;
    let released = false;
    const release = (): void => { if (!released) { released = true; b.active--; } };
    up.setTimeout(this.svc.timeouts.connect);
    const failConnect = (): void => {
      if (connected) return;
      connected = true; // once
      up.destroy();
      release();
      b.stats.failures++;
      b.health.failure(this.clock.now(), false);
      this.tryBackend(client, start, tried | (1 << i), tries + 1);
    };
    up.once('timeout', failConnect);
    up.once('error', failConnect);
    up.once('connect', () => {
      if (connected) return;
      connected = true;
      up.removeListener('timeout', failConnect);
      up.removeListener('error', failConnect);
      const t = this.clock.now();
      b.health.success(t, t - start);
      if (client.destroyed) { up.destroy(); release(); return; }
      this.splice(client, up, release);
    });
  }

  /** Connects the two sockets with backpressure and half-close, plus the idle timeout. */
  private splice(client: net.Socket, up: net.Socket, release: () => void): void {
    const pp = this.svc.tcp.proxy_protocol;
    if (pp !== 'off') {
      const ends = {
        srcAddress: client.remoteAddress ?? '', srcPort: client.remotePort ?? 0,
        dstAddress: client.localAddress ?? '', dstPort: client.localPort ?? 0,
      };
      up.write(pp === 'v1' ? proxyV1(ends) : proxyV2(ends));
    }
    const idle = this.svc.timeouts.proxy;
    let lastActive = this.clock.now();
    client.on('data', (d: Buffer) => { this.st.bytesIn += d.length; lastActive = this.clock.now(); });
    up.on('data', (d: Buffer) => { this.st.bytesOut += d.length; lastActive = this.clock.now(); });
    // Idle means neither side moved: one socket timer would fire while the other is busy.
    const onIdle = (): void => {
      if (this.clock.now() - lastActive >= idle) { client.destroy(); up.destroy(); }
    };
    client.setTimeout(idle, onIdle);
    up.setTimeout(idle, onIdle);
    client.pipe(up);
    up.pipe(client);
    client.resume();
    // Errors and aborts tear down both sides; a clean close (FIN both ways, writes flushed)
    // destroys each socket by itself (autoDestroy), so only the unfinished side is destroyed.
    up.on('error', () => client.destroy());
    client.on('error', () => up.destroy());
    up.on('close', () => { release(); if (!client.writableEnded) client.destroy(); });
    client.on('close', () => { if (!up.writableEnded) up.destroy(); });
  }

  stats(): TcpServiceStats {
    const now = this.clock.now();
    return {
      name: this.name, mode: 'tcp', connections: this.conns.size, ...this.st,
      backends: this.backends.map((b) => ({
        address: b.id, state: b.down ? 'down' : b.health.state(now), weight: b.weight, active: b.active, connections: b.stats.sessions, failures: b.stats.failures,
      })),
    };
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const c of this.conns) c.destroy();
    await Promise.all(this.servers.map(closeServer));
    this.servers.length = 0;
  }
}
