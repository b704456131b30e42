/**
 * The VRRP engine: runs one pure FSM (fsm.ts) per configured instance with real timers, raw
 * sockets (transport.ts), VIPs (vip.ts), tracking and notify hooks. It is the thin shell: every
 * decision is the FSM's; this file only turns actions into I/O and I/O into events.
 *
 * It is meant to run in its own process (main.ts, started by supervisor.ts) so a busy DNS event
 * loop can never delay an advert; it reports state changes as EngineEvents and takes health reports
 * (external tracks) in.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Clock } from '../util/clock.js';
import { monotonicClock } from '../util/clock.js';
import { encodeAdvert, type VrrpAdvert } from './packet.js';
import { initialState, step, effectivePriority, type FsmEvent, type FsmState, type NotifyState, type TimerKind, type VrrpState } from './fsm.js';
import { checkAdvert, type DropReason, type ReceivePolicy, type Received } from './receive.js';
import { buildHmacTrailer, SequenceGenerator } from './auth.js';
import { VrrpTransport, type TransportStats } from './transport.js';
import { addVip, removeVip, toVip, announceFrame, interfaceMac, runIp, type IpRunner, type Vip } from './vip.js';
import { loadRawAddon, type RawAddon } from './native.js';
import { instanceFamily, type VrrpInstanceConfig, type VrrpScriptConfig, type VrrpSection } from './config.js';

export type EngineEvent =
  | { type: 'state'; instance: string; state: NotifyState; prev: VrrpState; priority: number; wallMs: number; monoMs: number }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; instance?: string; msg: string };

export interface InstanceStatus {
  name: string;
  state: VrrpState;
  priority: number;
  effectivePriority: number;
  master?: string;
  src: string;
  stats: TransportStats;
  drops: Partial<Record<DropReason, number>>;
}

export interface EngineOptions {
  onEvent: (e: EngineEvent) => void;
  clock?: Clock;
  wallClock?: () => number;
  addon?: RawAddon;
  ip?: IpRunner;
  /** How often interface state is read from /sys (ms). */
  linkPollMs?: number;
}

/** Interface operational state from sysfs: up, or down / absent. */
export function linkUp(dev: string): boolean {
  try {
    const s = readFileSync(`/sys/class/net/${dev}/operstate`, 'utf8').trim();
    return s === 'up' || s === 'unknown';
  } catch {
    return false;
  }
}

/** Runs a shell command, resolving with its success; killed after `timeoutMs`. */
function runShell(cmd: string, args: string[] = [], timeoutMs = 0): Promise<boolean> {
  return new Promise((resolve) => {
    const p = spawn('/bin/sh', ['-c', cmd + (args.length ? ' "$@"' : ''), 'sh', ...args], { stdio: 'ignore' });
    let t: NodeJS.Timeout | undefined;
    if (timeoutMs > 0) t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', () => { if (t) clearTimeout(t); resolve(false); });
    p.on('exit', (code) => { if (t) clearTimeout(t); resolve(code === 0); });
  });
}

/** Linux neigh/default/locktime (1 s): ARP updates closer together than this are ignored. */
const ARP_LOCKTIME_MS = 1000;

class InstanceRunner {
  fsm: FsmState;
  readonly transport: VrrpTransport;
  readonly vips: Vip[];
  readonly drops: Partial<Record<DropReason, number>> = {};
  private readonly timers = new Map<TimerKind, NodeJS.Timeout>();
  private garpTimers: NodeJS.Timeout[] = [];
  private readonly seq = new SequenceGenerator();
  private readonly lastSeq = new Map<string, bigint>();
  private readonly policy: ReceivePolicy;
  /** VIP changes and announcements, in order. */
  private ops: Promise<void> = Promise.resolve();
  /** Notify hooks, in order, apart from ops so a slow hook cannot delay a VIP. */
  private hooks: Promise<void> = Promise.resolve();
  private readonly family: 4 | 6;

  constructor(readonly cfg: VrrpInstanceConfig, private readonly eng: VrrpEngine) {
    this.family = instanceFamily(cfg);
    this.vips = cfg.virtual_addresses.map((v) => toVip(v, cfg.interface));
    this.transport = new VrrpTransport({ family: this.family, ifname: cfg.interface, peers: cfg.unicast_peers, srcAddr: cfg.unicast_src_ip }, eng.addon);
    this.fsm = initialState({
      version: cfg.version, priority: cfg.priority, intervalMs: Math.round(cfg.advert_int * 1000),
      preempt: cfg.preempt, preemptDelayMs: cfg.preempt_delay * 1000, primaryAddress: this.transport.src,
    });
    const a = cfg.auth;
    this.policy = {
      version: cfg.version, family: this.family, vrid: cfg.vrid, intervalMs: this.fsm.cfg.intervalMs,
      ownAddresses: [this.transport.src], peers: cfg.unicast_peers,
      auth: a.type === 'hmac' ? { type: 'hmac', key: { key: a.key, keyId: a.key_id }, maxClockSkewMs: a.max_clock_skew * 1000 } : a,
    };
  }

  log(level: 'info' | 'warn' | 'error', msg: string): void {
    this.eng.opts.onEvent({ type: 'log', level, instance: this.cfg.name, msg });
  }

  async start(): Promise<void> {
    // Copies left by a crash (or a previous run killed with SIGKILL) would answer ARP for an
    // address this node does not own: remove them before electing.
    for (const v of this.vips) await removeVip(v, this.eng.ip);
    this.transport.start((r) => this.onReceive(r));
    this.dispatch({ type: 'startup' });
  }

  onReceive(r: Received): void {
    const v = checkAdvert(this.policy, r, this.vips.map((x) => x.address), this.lastSeq.get(r.src), this.eng.wall());
    if (!v.ok) {
      if (v.reason === 'vrid' || v.reason === 'own') return; // other instances on the link; our own loop
      const n = (this.drops[v.reason] = (this.drops[v.reason] ?? 0) + 1);
      if (n === 1 || n % 100 === 0) this.log('warn', `dropped advert from ${r.src}: ${v.detail} (${n} so far)`);
      return;
    }
    if (v.hmacSeq !== undefined) this.lastSeq.set(r.src, v.hmacSeq);
    // A resigning master lets go as soon as someone else is master.
    if (this.lingering?.untilNewMaster && v.advert.priority > 0) this.lingering.done();
    if (v.addressMismatch && !this.warnedMismatch) {
      this.warnedMismatch = true;
      this.log('warn', `advert from ${r.src} lists other virtual addresses: ${v.advert.addresses.join(',')}`);
    }
    this.dispatch({ type: 'advert', src: r.src, priority: v.advert.priority, intervalMs: v.advert.intervalMs });
  }
  private warnedMismatch = false;

  /**
   * Handover without a gap. A master that resigns (stop, FAULT with a working link) keeps its
   * VIPs — and the node its listeners — until the new master's first advert is heard (it sends
   * its gratuitous ARP at the same moment), at most two advert intervals; one that steps down to
   * a higher-priority master keeps them for a short moment so queries already on their way are
   * answered. Two holders overlap for less than one advert interval, never longer.
   */
  private lingerFor(prev: FsmState, next: FsmState): { ms: number; untilNewMaster: boolean } {
    if (prev.state !== 'MASTER') return { ms: 0, untilNewMaster: false };
    const interval = prev.cfg.intervalMs;
    if (next.state === 'BACKUP') return { ms: Math.min(interval, 100), untilNewMaster: false };
    if (next.state === 'FAULT' && !next.interfaceUp) return { ms: 0, untilNewMaster: false };
    return { ms: 2 * interval, untilNewMaster: true };
  }

  private lingering: { done: () => void; untilNewMaster: boolean } | null = null;

  private waitLinger(ms: number, untilNewMaster: boolean): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => { this.lingering = null; resolve(); }, ms);
      this.lingering = { untilNewMaster, done: () => { clearTimeout(t); this.lingering = null; resolve(); } };
    });
  }

  dispatch(ev: FsmEvent): void {
    const now = this.eng.clock.now();
    const prev = this.fsm;
    const r = step(this.fsm, ev, now);
    this.fsm = r.state;
    // A master that steps down because it heard a higher-priority master (a split brain that
    // healed) sends one last advert at its own priority: the winner then hears a lower-priority
    // advert, answers at once and re-announces the VIPs with gratuitous ARP/NA. Without it, when
    // the winner's advert happens to arrive first, the winner never learns of the contention and
    // clients keep the loser's MAC for the VIP (seen in the fault matrix: every query lost after
    // healing a partition).
    if (prev.state === 'MASTER' && r.state.state === 'BACKUP' && ev.type === 'advert') this.sendAdvert(effectivePriority(prev));
    // Becoming master: the first advert waits for the addresses to be in place, or the old master
    // could step down and drop the VIP before we can answer for it (advert, add and GARP are
    // queued on ops in that order once the add is queued first).
    const afterAdd = r.actions.some((x) => x.type === 'addVips');
    if (afterAdd) {
      const i = r.actions.findIndex((x) => x.type === 'addVips');
      const j = r.actions.findIndex((x) => x.type === 'sendAdvert');
      if (j >= 0 && j < i) r.actions.push(...r.actions.splice(j, 1)); // advert after the add
    }
    for (const a of r.actions) {
      switch (a.type) {
        case 'sendAdvert': {
          const prio = a.priority;
          if (afterAdd) this.ops = this.ops.then(() => { if (this.fsm.state === 'MASTER') this.sendAdvert(prio); });
          else this.sendAdvert(prio);
          break;
        }
        case 'armTimer': this.arm(a.kind, a.at); break;
        case 'cancelTimer': this.cancel(a.kind); break;
        case 'addVips':
          this.ops = this.ops.then(async () => {
            for (const v of this.vips) {
              const res = await addVip(v, this.eng.ip);
              if (!res.ok) this.log('error', `adding ${v.address}/${v.prefix} on ${v.dev}: ${res.error}`);
            }
          });
          break;
        case 'removeVips': {
          this.cancelGarp();
          const linger = this.lingerFor(prev, this.fsm);
          this.ops = this.ops.then(async () => {
            if (linger.ms > 0) await this.waitLinger(linger.ms, linger.untilNewMaster);
            for (const v of this.vips) {
              const res = await removeVip(v, this.eng.ip);
              if (!res.ok) this.log('error', `removing ${v.address}/${v.prefix} from ${v.dev}: ${res.error}`);
            }
          });
          break;
        }
        // After the addresses are in place (ops is ordered): an announcement for an address the
        // kernel does not have yet would draw traffic that it drops.
        case 'garp': { const reason = a.reason; this.ops = this.ops.then(() => { if (this.fsm.state === 'MASTER') this.scheduleGarp(reason); }); break; }
        case 'notify': this.notify(a.state, a.prev, a.priority); break;
      }
    }
  }

  private sendAdvert(priority: number): void {
    const advert: VrrpAdvert = {
      version: this.cfg.version, family: this.family, vrid: this.cfg.vrid, priority,
      intervalMs: this.fsm.cfg.intervalMs, addresses: this.vips.map((v) => v.address),
    };
    if (this.cfg.version === 2) advert.auth = this.cfg.auth.type === 'pass' ? { type: 'pass', password: this.cfg.auth.password } : { type: 'none' };
    const src = this.transport.src;
    const auth = this.cfg.auth;
    const trailerSeq = auth.type === 'hmac' ? this.seq.next(this.eng.wall()) : undefined;
    this.transport.send((dst) => {
      const std = encodeAdvert(advert, { ip: { src, dst } });
      if (auth.type !== 'hmac') return std;
      return Buffer.concat([std, buildHmacTrailer({ key: auth.key, keyId: auth.key_id }, src, std, trailerSeq!)]);
    });
  }

  private arm(kind: TimerKind, at: number): void {
    this.cancel(kind);
    // Node measures timers against the loop's cached, whole-millisecond time, so a timeout can fire
    // a little before `at` by the monotonic clock. The FSM would ignore that as a stale timer and
    // nothing would re-arm it (a master that stops advertising), so wait out the remainder here.
    const fire = () => {
      const rest = at - this.eng.clock.now();
      if (rest > 0) { this.timers.set(kind, setTimeout(fire, Math.max(1, rest))); return; }
      this.timers.delete(kind);
      this.dispatch({ type: 'timer', kind });
    };
    this.timers.set(kind, setTimeout(fire, Math.max(0, at - this.eng.clock.now())));
  }

  private cancel(kind: TimerKind): void {
    const t = this.timers.get(kind);
    if (t) clearTimeout(t);
    this.timers.delete(kind);
  }

  private cancelGarp(): void {
    for (const t of this.garpTimers) clearTimeout(t);
    this.garpTimers = [];
  }

  private burst(repeat: number): void {
    const g = this.cfg.garp;
    this.ops = this.ops.then(async () => {
      if (this.fsm.state !== 'MASTER') return;
      for (let i = 0; i < repeat; i++) {
        for (const v of this.vips) {
          try {
            this.eng.addon.sendFrame(v.dev, announceFrame(interfaceMac(v.dev), v));
          } catch (e) {
            this.log('warn', `gratuitous ${v.family === 4 ? 'ARP' : 'NA'} for ${v.address} on ${v.dev}: ${(e as Error).message}`);
          }
        }
        if (g.interval > 0 && i + 1 < repeat) await new Promise((r) => setTimeout(r, g.interval * 1000));
      }
    });
  }

  private scheduleGarp(reason: 'become-master' | 'lower-priority-advert'): void {
    const g = this.cfg.garp;
    if (reason === 'lower-priority-advert') {
      if (g.lower_prio_repeat > 0) {
        this.burst(g.lower_prio_repeat);
        // After a split brain heals, the other master's own announcements may have reached the
        // clients less than a second ago, and Linux ignores an ARP update within `locktime`
        // (1 s by default) of the previous one: announce again once that has passed, or clients
        // keep sending to a node that no longer has the VIP (seen in the fault matrix).
        this.garpTimers.push(setTimeout(() => { if (this.fsm.state === 'MASTER') this.burst(g.lower_prio_repeat); }, ARP_LOCKTIME_MS + 100));
      }
      return;
    }
    this.cancelGarp();
    this.burst(g.master_repeat);
    if (g.master_delay > 0) this.garpTimers.push(setTimeout(() => this.burst(g.master_repeat), g.master_delay * 1000));
    if (g.master_refresh > 0) this.garpTimers.push(setInterval(() => this.burst(g.master_refresh_repeat), g.master_refresh * 1000));
  }

  private notify(state: NotifyState, prev: VrrpState, priority: number): void {
    this.eng.opts.onEvent({ type: 'state', instance: this.cfg.name, state, prev, priority, wallMs: this.eng.wall(), monoMs: this.eng.clock.now() });
    const n = this.cfg.notify;
    const specific = { MASTER: n.master, BACKUP: n.backup, FAULT: n.fault, STOP: n.stop }[state];
    this.hooks = this.hooks.then(async () => {
      if (specific) await runShell(specific);
      if (n.any) await runShell(n.any, ['INSTANCE', this.cfg.name, state, String(priority)]);
    });
  }

  status(): InstanceStatus {
    return {
      name: this.cfg.name, state: this.fsm.state, priority: this.cfg.priority, effectivePriority: effectivePriority(this.fsm),
      master: this.fsm.state === 'MASTER' ? this.transport.src : this.fsm.masterAddress, src: this.transport.src,
      stats: { ...this.transport.stats }, drops: { ...this.drops },
    };
  }

  /** Graceful stop: priority-0 advert when master, VIPs removed, hooks finished. */
  async stop(): Promise<void> {
    this.dispatch({ type: 'shutdown' });
    for (const k of [...this.timers.keys()]) this.cancel(k);
    this.cancelGarp();
    await this.ops;
    // Belt and braces: whatever state we were in, leave no VIP behind.
    for (const v of this.vips) await removeVip(v, this.eng.ip);
    await this.hooks;
    this.transport.close();
  }

  /** Last resort on a fatal error: no awaiting. */
  closeNow(): void {
    for (const k of [...this.timers.keys()]) this.cancel(k);
    this.cancelGarp();
    this.transport.close();
  }
}

/** One script (keepalived vrrp_script) shared by the instances that track it; rise/fall applied. */
class ScriptTracker {
  up: boolean | undefined;
  private okRun = 0;
  private badRun = 0;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  constructor(readonly name: string, readonly cfg: VrrpScriptConfig, private readonly onChange: (up: boolean) => void) {}
  start(): void { void this.loop(); }
  private async loop(): Promise<void> {
    if (this.stopped) return;
    const timeout = (this.cfg.timeout || this.cfg.interval) * 1000;
    const ok = await runShell(this.cfg.script, [], timeout);
    if (this.stopped) return;
    if (ok) { this.okRun++; this.badRun = 0; } else { this.badRun++; this.okRun = 0; }
    // The first result counts at once (keepalived waits rise/fall from an "init" state too, but
    // an unknown check must not hold a node out of the election for rise × interval).
    if (this.up === undefined) { this.up = ok; this.onChange(ok); }
    else if (!this.up && this.okRun >= this.cfg.rise) { this.up = true; this.onChange(true); }
    else if (this.up && this.badRun >= this.cfg.fall) { this.up = false; this.onChange(false); }
    this.timer = setTimeout(() => void this.loop(), this.cfg.interval * 1000);
  }
  stop(): void { this.stopped = true; if (this.timer) clearTimeout(this.timer); }
}

export class VrrpEngine {
  readonly clock: Clock;
  readonly wall: () => number;
  readonly addon: RawAddon;
  readonly ip: IpRunner;
  private runners: InstanceRunner[] = [];
  private scripts: ScriptTracker[] = [];
  private linkTimer?: NodeJS.Timeout;
  private linkState = new Map<string, boolean>();
  private started = false;

  constructor(readonly section: VrrpSection, readonly opts: EngineOptions) {
    this.clock = opts.clock ?? monotonicClock;
    this.wall = opts.wallClock ?? Date.now;
    this.addon = opts.addon ?? loadRawAddon();
    this.ip = opts.ip ?? runIp;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    for (const inst of this.section.instances) this.runners.push(new InstanceRunner(inst, this));
    // Interfaces are read before the election so a node whose link is down starts in FAULT.
    this.pollLinks(true);
    for (const r of this.runners) await r.start();
    this.linkTimer = setInterval(() => this.pollLinks(false), this.opts.linkPollMs ?? 100);
    for (const [name, sc] of Object.entries(this.section.scripts)) {
      const users = this.runners.flatMap((r) => r.cfg.track_scripts.filter((t) => t.name === name).map((t) => ({ r, weight: t.weight ?? sc.weight })));
      if (!users.length) continue;
      const t = new ScriptTracker(name, sc, (up) => {
        this.opts.onEvent({ type: 'log', level: up ? 'info' : 'warn', msg: `script ${name} ${up ? 'succeeded' : 'failed'}` });
        for (const u of users) u.r.dispatch({ type: 'track', name: `script:${name}`, up, weight: u.weight });
      });
      this.scripts.push(t);
      t.start();
    }
  }

  private pollLinks(initial: boolean): void {
    for (const r of this.runners) {
      const devs = [{ dev: r.cfg.interface, own: true, weight: 0 }, ...r.cfg.track_interfaces.map((t) => ({ dev: t.name, own: false, weight: t.weight }))];
      for (const d of devs) {
        const up = linkUp(d.dev);
        const key = `${r.cfg.name}/${d.own ? '' : 'track:'}${d.dev}`;
        const before = this.linkState.get(key);
        if (before === up && !initial) continue;
        if (before === undefined && up && d.own && !initial) continue;
        this.linkState.set(key, up);
        if (before !== undefined || !up || !d.own) {
          if (before !== undefined && before !== up) r.log(up ? 'info' : 'warn', `interface ${d.dev} ${up ? 'up' : 'down'}`);
          r.dispatch(d.own ? { type: 'interface', up } : { type: 'track', name: `if:${d.dev}`, up, weight: d.weight });
        }
      }
    }
  }

  /** External health (e.g. the DNS services from node/): moves priority or forces FAULT. */
  setTrack(name: string, up: boolean, weight: number, instance?: string): void {
    for (const r of this.runners) if (!instance || r.cfg.name === instance) r.dispatch({ type: 'track', name: `ext:${name}`, up, weight });
  }

  status(): InstanceStatus[] { return this.runners.map((r) => r.status()); }

  async stop(): Promise<void> {
    if (this.linkTimer) clearInterval(this.linkTimer);
    for (const s of this.scripts) s.stop();
    await Promise.all(this.runners.map((r) => r.stop()));
    this.runners = [];
  }
}
