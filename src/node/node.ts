/**
 * A hadns node: builds the services the config asks for, and owns their lifecycle
 * (start, reload on SIGHUP, graceful stop). Only node/ joins services together, and it is the
 * one implementation of NodeView that operators' tools read.
 */
import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config, LocalRecordConfig } from '../config/schema.js';
import { ResolverService } from '../resolver/service.js';
import type { BoundAddress } from '../resolver/listeners.js';
import { startBalancer, type Balancer } from '../balancer/service.js';
import { dropLoopIdleTime, setUdpIoMode, udpIoStatus, useBatchUdp } from '../util/udp-batch.js';
import { realtimeStatus, setHelperThreads, setRealtime } from '../util/threads.js';
import { RecordStore, recordId, type StoredRecord } from '../resolver/record-store.js';
import type { LocalRecordView, NodeEvent, NodeStatus, NodeView, ResolverView } from './view.js';
import { spawnVrrpEngine, type VrrpSupervisor } from '../vrrp/supervisor.js';
import type { FromEngine } from '../vrrp/messages.js';
import type { InstanceStatus } from '../vrrp/engine.js';
import { HEALTH_DOMAIN } from '../resolver/local.js';
import { Hysteresis, probeDns } from './health.js';
import { PeerSync, sanitizeRemote } from './sync.js';
import { loadToken } from '../observe/auth.js';

/** Name of the node's own health report in the VRRP engine's tracking. */
const HEALTH_TRACK = 'hadns-dns-health';

export const VERSION: string = (() => {
  try { return JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')).version; } catch { return 'unknown'; }
})();

const EVENTS_MAX = 500;

function toLocal(r: StoredRecord): LocalRecordConfig {
  return { name: r.name, type: r.type as LocalRecordConfig['type'], value: r.value, ...(r.ttl !== undefined ? { ttl: r.ttl } : {}) };
}

export class HadnsNode implements NodeView {
  resolver: ResolverService | null = null;
  balancer: Balancer | null = null;
  vrrp: VrrpSupervisor | null = null;
  /** Latest VRRP state per instance, from the engine's events. */
  private readonly vrrpStates = new Map<string, { state: string; priority: number; since: number; transitions: number }>();
  private vrrpStatus: InstanceStatus[] = [];
  /** VIPs (addresses without prefix) this node holds now. */
  private readonly held = new Set<string>();
  private health: Hysteresis | null = null;
  private healthTimer: NodeJS.Timeout | null = null;
  private healthDetail = 'not checked yet';
  private stopping = false;
  private sync: PeerSync | null = null;
  /** VIP listeners were bound at start (ip_nonlocal_bind): VRRP changes need no (re)binding. */
  private vipsPrebound = false;
  private config: Config;
  private readonly eventRing: NodeEvent[] = [];
  private readonly listeners = new Set<(e: NodeEvent) => void>();
  private readonly startedAt = Date.now();
  readonly store: RecordStore;

  private constructor(config: Config, private readonly log: Logger) {
    this.config = config;
    const dir = config.node.state_dir;
    this.store = new RecordStore(dir ? join(dir, 'records.json') : null, config.node.name);
  }

  get name(): string { return this.config.node.name; }

  static async start(config: Config, log: Logger): Promise<HadnsNode> {
    const node = new HadnsNode(config, log);
    try {
      node.store.load();
    } catch (e) {
      // Never overwrite a store we could not read: refuse to start instead of losing records.
      throw new Error(`cannot read the record store ${node.store.file}: ${(e as Error).message}`);
    }
    try {
      if (!process.env.HADNS_UDP_IO) setUdpIoMode(config.node.udp_io);
      if (config.resolver || config.balancer) log.info({ udp_io: useBatchUdp() ? 'native' : 'dgram' }, 'UDP I/O of the DNS path');
      // One epoll_pwait per wake-up instead of two (udp-batch.ts).
      if ((config.resolver || config.balancer) && !dropLoopIdleTime()) log.debug('event loop: libuv\'s idle-time accounting left on');
      const ht = setHelperThreads(config.node.helper_threads);
      if (ht.error) log.warn({ error: ht.error }, 'helper threads: cannot lower their scheduling priority');
      else if (ht.mode === 'idle') log.debug({ sched_idle: ht.idle, nice19: ht.niced }, 'helper threads moved out of the event loop\'s way');
      if (config.node.realtime_priority > 0) {
        const rt = setRealtime(config.node.realtime_priority);
        if (rt.error) log.warn({ error: rt.error, realtime_priority: rt.requested }, 'event loop: real-time scheduling not applied; running with normal scheduling');
        else {
          log.info({ realtime_priority: rt.applied, policy: 'SCHED_RR' }, 'event loop: real-time scheduling');
          if (rt.rtRuntimeUs === -1) log.warn('kernel.sched_rt_runtime_us is -1: nothing limits a real-time thread, a saturated daemon can keep every other task off its core');
        }
      }
      if (config.resolver) {
        node.resolver = await ResolverService.start(config.resolver, log.child({ svc: 'resolver' }), node.store.list().map(toLocal));
      }
      if (config.balancer && config.balancer.services.length) {
        node.balancer = await node.startBalancer(config);
        await node.prebindVips(config);
      }
      if (config.vrrp && config.vrrp.instances.length) await node.startVrrp(config);
    } catch (e) {
      await node.stop();
      throw e;
    }
    if (config.node.peers.length) {
      let token: string | null = null;
      try { token = loadToken(config.api); } catch (e) { log.warn({ error: (e as Error).message }, 'cannot read the API token: record sync disabled'); }
      node.sync = new PeerSync(config.node.name, config.node.peers, token, node.store, (recs) => node.mergeRecords(recs), log.child({ svc: 'sync' }));
      node.sync.start();
    }
    if (!node.resolver && !node.balancer) log.warn('no service configured: nothing to do');
    node.event('start', `node ${config.node.name} started`);
    log.info({ node: config.node.name }, 'ready');
    return node;
  }

  private async startBalancer(config: Config): Promise<Balancer> {
    const base = this.log.child({ svc: 'balancer' });
    // Backend health changes also go on the node's event timeline (console, /api/v1/events).
    const onState = (o: unknown, msg?: string) => {
      const x = o as { backend?: string; state?: string; service?: string } | null;
      if (x && x.backend && x.state && msg) this.event('health', `${x.service ?? 'balancer'}: ${msg}`, { backend: x.backend, state: x.state });
    };
    const log = {
      info: (o: unknown, m?: string) => { base.info(o as object, m); onState(o, m); },
      warn: (o: unknown, m?: string) => { base.warn(o as object, m); onState(o, m); },
      error: (o: unknown, m?: string) => base.error(o as object, m),
      debug: (o: unknown, m?: string) => base.debug(o as object, m),
    };
    const bal = await startBalancer(config.balancer!, { log, localHandler: this.resolver?.resolver, floating: floatingAddresses(config) });
    base.info({ addresses: bal.addresses().map((b) => `${b.service} ${b.proto}://${b.address.includes(':') ? `[${b.address}]` : b.address}:${b.port}`) }, 'balancer listening');
    return bal;
  }

  // ---- VRRP: the engine runs in its own process; the node follows its state ----

  private async startVrrp(config: Config): Promise<void> {
    const log = this.log.child({ svc: 'vrrp' });
    const sup = spawnVrrpEngine(config.vrrp!, (m) => this.onVrrp(m, log));
    this.vrrp = sup;
    sup.child.on('exit', (code, sig) => {
      if (this.stopping) return;
      // The engine died: we cannot tell who holds the VIPs any more. Release ours (the engine's
      // exit path removes the addresses) and say so loudly.
      log.error({ code, signal: sig }, 'VRRP engine exited unexpectedly: releasing VIP listeners');
      this.event('vrrp', `VRRP engine exited (${sig ?? code})`);
      for (const a of [...this.held]) void this.releaseVip(a);
    });
    this.vrrpStatus = await sup.ready;
    log.info({ instances: this.vrrpStatus.map((i) => `${i.name}:${i.state}`) }, 'vrrp started');
    this.startHealth(config);
  }

  private onVrrp(m: FromEngine, log: Logger): void {
    if (m.type === 'log') {
      log[m.level]({ instance: m.instance }, m.msg);
      return;
    }
    if (m.type !== 'state') return;
    const prevSt = this.vrrpStates.get(m.instance);
    this.vrrpStates.set(m.instance, { state: m.state, priority: m.priority, since: m.wallMs, transitions: (prevSt?.transitions ?? 0) + 1 });
    log.info({ instance: m.instance, state: m.state, prev: m.prev, priority: m.priority }, 'vrrp state');
    this.event('vrrp', `${m.instance}: ${m.prev} → ${m.state}`, { instance: m.instance, state: m.state, priority: m.priority });
    const inst = this.config.vrrp?.instances.find((i) => i.name === m.instance);
    if (!inst) return;
    for (const v of inst.virtual_addresses) {
      const addr = v.address.split('/')[0];
      if (m.state === 'MASTER') void this.holdVip(addr);
      else void this.releaseVip(addr);
    }
  }

  /**
   * With ip_nonlocal_bind the balancer can bind VIP listeners before the VIP is here: then there is
   * no window between the VIP arriving (and its gratuitous ARP going out) and a socket listening.
   */
  private async prebindVips(config: Config): Promise<void> {
    const vips = floatingAddresses(config);
    if (!vips.length || !this.balancer || config.node.nonlocal_bind === 'off') return;
    const families = new Set(vips.map((v) => (v.includes(':') ? 'ipv6' : 'ipv4')));
    for (const fam of families) {
      const path = `/proc/sys/net/${fam}/ip_nonlocal_bind`;
      let cur = '';
      try { cur = readFileSync(path, 'utf8').trim(); } catch { /* no such sysctl */ }
      if (cur === '1') continue;
      try {
        writeFileSync(path, '1');
        this.log.info({ sysctl: `net.${fam}.ip_nonlocal_bind`, value: 1 }, 'enabled non-local bind in this network namespace (VIP listeners bound before the VIP arrives)');
      } catch (e) {
        const msg = `cannot enable net.${fam}.ip_nonlocal_bind: ${(e as Error).message}`;
        if (config.node.nonlocal_bind === 'on') throw new Error(msg);
        this.log.info({ reason: msg }, 'VIP listeners will be bound when the VIP arrives');
        return;
      }
    }
    for (const v of vips) await this.balancer.attach(v);
    this.vipsPrebound = true;
  }

  /** Binds listeners on a VIP that just arrived. The engine adds the address asynchronously, so retry briefly. */
  private async holdVip(addr: string): Promise<void> {
    this.held.add(addr);
    if (!this.balancer || this.vipsPrebound) return;
    const deadline = Date.now() + 3000;
    for (;;) {
      if (!this.held.has(addr) || this.stopping) return;
      try {
        await this.balancer.attach(addr);
        return;
      } catch (e) {
        if (Date.now() > deadline) {
          this.log.error({ address: addr, error: (e as Error).message }, 'cannot bind the VIP listeners');
          this.event('health', `cannot bind listeners on ${addr}: ${(e as Error).message}`);
          return;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  private async releaseVip(addr: string): Promise<void> {
    this.held.delete(addr);
    if (this.balancer && !this.vipsPrebound) await this.balancer.detach(addr).catch(() => undefined);
  }

  /** Periodic self-check; the result is reported to the VRRP engine as a tracked health item. */
  private startHealth(config: Config): void {
    const h = config.node.health;
    this.health = new Hysteresis(true, h.rise, h.fall);
    const weight = h.weight;
    this.vrrp?.track(HEALTH_TRACK, true, weight);
    let busy = false;
    this.healthTimer = setInterval(() => {
      if (busy || this.stopping) return;
      busy = true;
      this.checkHealth(Math.max(100, Math.min(1000, h.interval * 500))).then((r) => {
        busy = false;
        this.healthDetail = r.detail;
        if (this.health!.push(r.ok)) {
          const up = this.health!.up;
          this.log[up ? 'info' : 'warn']({ detail: r.detail }, up ? 'node healthy again' : 'node cannot serve DNS: giving up VIPs');
          this.event('health', up ? 'healthy again' : `unhealthy: ${r.detail}`);
        }
        this.vrrp?.track(HEALTH_TRACK, this.health!.up, weight);
      }, () => { busy = false; });
    }, h.interval * 1000);
  }

  /** Can this node serve DNS now? Its resolver answers on its socket; its DNS balancer has a live backend. */
  async checkHealth(timeoutMs = 500): Promise<{ ok: boolean; detail: string }> {
    if (this.resolver) {
      const udp = this.resolver.addresses().find((a) => a.proto === 'udp');
      if (!udp) return { ok: false, detail: 'resolver has no UDP listener' };
      if (!(await probeDns(udp.address, udp.port, `probe.${HEALTH_DOMAIN}`, timeoutMs))) return { ok: false, detail: 'resolver does not answer' };
    }
    if (this.balancer) {
      for (const svc of this.balancer.stats().services) {
        if (svc.mode !== 'dns') continue;
        const backends = (svc as { backends?: { state: string }[] }).backends ?? [];
        if (backends.length && !backends.some((b) => b.state === 'up')) return { ok: false, detail: `balancer ${svc.name}: no healthy backend` };
      }
    }
    return { ok: true, detail: 'ok' };
  }

  addresses(): BoundAddress[] {
    return [...(this.resolver ? this.resolver.addresses() : []), ...(this.balancer ? this.balancer.addresses() : [])];
  }

  event(kind: NodeEvent['kind'], message: string, data?: Record<string, unknown>): void {
    const e: NodeEvent = { time: Date.now(), kind, message, ...(data ? { data } : {}) };
    if (this.eventRing.length >= EVENTS_MAX) this.eventRing.shift();
    this.eventRing.push(e);
    for (const fn of this.listeners) { try { fn(e); } catch { /* a broken subscriber must not hurt the node */ } }
  }

  /** Applies a new, already validated config; on failure the old one keeps serving. */
  async reload(config: Config): Promise<void> {
    try {
      if (config.resolver && this.resolver) await this.resolver.reload(config.resolver);
      else if (config.resolver && !this.resolver) this.resolver = await ResolverService.start(config.resolver, this.log.child({ svc: 'resolver' }), this.store.list().map(toLocal));
      else if (!config.resolver && this.resolver) { await this.resolver.close(); this.resolver = null; }
      if (JSON.stringify(config.vrrp ?? null) !== JSON.stringify(this.config.vrrp ?? null)) {
        // Restarting the engine would be a failover of its own: changes apply at the next restart.
        this.log.warn('vrrp: configuration changes take effect at the next restart (a reload never moves VIPs)');
        this.event('reload', 'vrrp changes are not applied by a reload; restart to apply');
      }
      // The balancer restarts on a change of its section (its state is health, rebuilt in seconds).
      if (JSON.stringify(config.balancer ?? null) !== JSON.stringify(this.config.balancer ?? null)) {
        const next = config.balancer && config.balancer.services.length ? await this.startBalancerReplacing(config) : null;
        if (!next && this.balancer) { await this.balancer.close(); }
        this.balancer = next;
      }
    } catch (e) {
      this.event('reload-failed', (e as Error).message);
      throw e;
    }
    this.config = config;
    this.event('reload', 'configuration reloaded');
  }

  /** Closes the old balancer first (same ports), then starts the new one; on failure the old config is restored. */
  private async startBalancerReplacing(config: Config): Promise<Balancer> {
    const old = this.balancer;
    if (old) await old.close();
    this.balancer = null;
    try {
      const bal = await this.startBalancer(config);
      for (const a of (this.vipsPrebound ? floatingAddresses(config) : [...this.held])) await bal.attach(a).catch((e) => this.log.error({ address: a, error: (e as Error).message }, 'cannot bind the VIP listeners'));
      return bal;
    } catch (e) {
      if (old && this.config.balancer) this.balancer = await this.startBalancer(this.config).catch(() => null);
      throw e;
    }
  }

  /** Reports a config error seen at reload time (the CLI calls this). */
  configError(message: string): void { this.event('config-error', message); }

  get current(): Config { return this.config; }

  // ---- NodeView ----

  ready(): boolean {
    return (this.resolver !== null && this.resolver.addresses().length > 0) || (this.balancer !== null && this.balancer.addresses().length > 0);
  }

  status(): NodeStatus {
    return {
      node: this.name, version: VERSION, startedAt: this.startedAt, uptimeSec: Math.round((Date.now() - this.startedAt) / 1000),
      ready: this.ready(), resolver: this.resolverView(),
      ...(this.balancer ? { balancer: this.balancer.stats() } : {}),
      ...(this.vrrp ? { vrrp: this.vrrpView() } : {}),
      health: { ok: this.health ? this.health.up : true, detail: this.healthDetail },
      udpIo: udpIoStatus(),
      scheduling: realtimeStatus(),
      ...(this.sync ? { peer: this.sync.status() } : {}),
    };
  }

  private vrrpView(): unknown {
    const insts = this.config.vrrp?.instances ?? [];
    return {
      held: [...this.held],
      instances: insts.map((i) => {
        const st = this.vrrpStates.get(i.name);
        const live = this.vrrpStatus.find((x) => x.name === i.name);
        return {
          name: i.name, vrid: i.vrid, interface: i.interface, configuredPriority: i.priority,
          state: st?.state ?? live?.state ?? 'INIT', priority: st?.priority ?? live?.effectivePriority ?? i.priority,
          since: st?.since ?? null, transitions: st?.transitions ?? 0, master: live?.master ?? null,
          vips: i.virtual_addresses.map((v) => v.address),
        };
      }),
    };
  }

  private resolverView(): ResolverView | null {
    const svc = this.resolver;
    if (!svc) return null;
    const r = svc.resolver;
    const t = r.current;
    const upstreams: ResolverView['upstreams'] = [];
    const groups = new Map<string, typeof t.defaultGroup>([['', t.defaultGroup], ...t.forward]);
    for (const [domain, g] of groups) {
      if (domain !== '' && g === t.defaultGroup) continue;
      g.servers.forEach((s, i) => upstreams.push({
        label: s.label, group: domain, srttMs: Math.round(g.state[i].srtt * 10) / 10, failures: g.state[i].failures,
        sent: g.state[i].sent, answered: g.state[i].answered, rtt: g.state[i].rtt.view(),
      }));
    }
    return {
      listen: svc.addresses().map(listenerName),
      byListener: Object.fromEntries(svc.addresses().map((b) => [listenerName(b), b.queries ?? 0])),
      queries: r.stats.queries, bySource: { ...r.stats.bySource }, byRcode: { ...r.stats.byRcode }, byType: r.typeCounts(),
      aclDrops: r.stats.aclDrops, inflight: r.stats.inflight, inflightRefused: r.stats.inflightRefused,
      localNames: t.local.size, cache: { ...r.cache.stats, entries: r.cache.size }, forwarder: { ...r.forwarder.stats }, upstreams,
    };
  }

  events(limit = 100): NodeEvent[] { return this.eventRing.slice(-limit); }

  onEvent(fn: (e: NodeEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  queries(limit = 100, filter?: string): unknown[] {
    const all = this.resolver?.recentQueries ?? [];
    const f = filter?.toLowerCase();
    const sel = f ? all.filter((q) => `${q.client} ${q.name} ${q.type} ${q.rcode} ${q.source}`.toLowerCase().includes(f)) : all;
    return sel.slice(-limit);
  }

  /** Merges records from a peer (LWW per record) and applies them when anything changed. */
  private async mergeRecords(records: StoredRecord[]): Promise<number> {
    const changed = this.store.merge(records);
    if (changed) {
      await this.applyRecords();
      this.event('sync', `${changed} record change(s) from a peer applied`);
    }
    return changed;
  }

  private async applyRecords(): Promise<void> {
    if (this.resolver) await this.resolver.setApiRecords(this.store.list().map(toLocal));
  }

  private view(r: { name: string; type: string; value: string | string[]; ttl?: number }, origin: LocalRecordView['origin']): LocalRecordView {
    return { id: recordId(r), name: r.name, type: r.type, value: r.value, ...(r.ttl !== undefined ? { ttl: r.ttl } : {}), origin };
  }

  readonly records = {
    list: (): LocalRecordView[] => [
      ...(this.config.resolver?.records ?? []).map((r) => this.view(r, 'config')),
      ...this.store.list().map((r) => this.view(r, 'api')),
    ],
    add: async (r: { name: string; type: string; value: string | string[]; ttl?: number }): Promise<LocalRecordView> => {
      if (!this.store.file) this.log.warn('node.state_dir is not set: records added through the API are kept in memory only');
      const rec = this.store.add(r);
      await this.applyRecords();
      this.event('records', `record added: ${rec.name} ${rec.type}`, { id: recordId(rec) });
      this.sync?.kick();
      return this.view(rec, 'api');
    },
    remove: async (id: string): Promise<boolean> => {
      const ok = this.store.remove(id);
      if (ok) { await this.applyRecords(); this.event('records', `record removed: ${id}`, { id }); this.sync?.kick(); }
      return ok;
    },
    update: async (id: string, r: { name: string; type: string; value: string | string[]; ttl?: number }): Promise<LocalRecordView> => {
      if (!this.store.list().some((x) => recordId(x) === id)) throw new Error(`no API record ${id}`);
      const rec = this.store.add(r); // validates before anything is removed
      if (recordId(rec) !== id) this.store.remove(id);
      await this.applyRecords();
      this.event('records', `record changed: ${id} → ${recordId(rec)}`, { id: recordId(rec) });
      this.sync?.kick();
      return this.view(rec, 'api');
    },
    exchange: async (from: string, records: unknown): Promise<{ node: string; records: unknown[] }> => {
      const remote = sanitizeRemote(records);
      const changed = await this.mergeRecords(remote);
      if (changed) this.log.info({ peer: from, changed }, 'records synced from peer');
      return { node: this.name, records: this.store.all() };
    },
  };

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.healthTimer) clearInterval(this.healthTimer);
    this.sync?.stop();
    // Hand the VIPs over first (priority-0 adverts: the backup takes over after its skew time),
    // then close the sockets: a query in flight during the handover still gets its answer.
    if (this.vrrp) { await this.vrrp.stop(); this.vrrp = null; }
    if (this.balancer) await this.balancer.close();
    this.balancer = null;
    if (this.resolver) await this.resolver.close();
    this.resolver = null;
    this.event('stop', 'node stopped');
  }
}

/** Every VIP (address without prefix) of the config's VRRP instances. */
export function floatingAddresses(config: Config): string[] {
  return (config.vrrp?.instances ?? []).flatMap((i) => i.virtual_addresses.map((v) => v.address.split('/')[0]));
}

function listenerName(b: BoundAddress): string {
  return `${b.proto}://${b.address.includes(':') ? `[${b.address}]` : b.address}:${b.port}`;
}
