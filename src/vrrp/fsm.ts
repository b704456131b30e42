/**
 * The VRRP state machine (RFC 5798 §6.4 / RFC 9568 §6.4, RFC 3768 for v2) as a pure function:
 *
 *     step(state, event, now) → { state, actions }
 *
 * No sockets, no timers, no clock: the shell (engine.ts) feeds events (startup, shutdown, a
 * validated advert, a timer firing, interface/track changes) with the current monotonic time in
 * ms, and executes the returned actions (send an advert, arm/cancel a timer, add/remove VIPs,
 * gratuitous ARP, notify). FRR's vrrpd is the model: an explicit event-driven FSM apart from I/O.
 *
 * Beyond the RFC table (each documented where it happens):
 *  - a master that hears a lower-priority advert answers at once (keepalived does the same), so a
 *    healed split brain or a preempting node settles within one round trip;
 *  - preempt_delay (keepalived): a preempting backup keeps accepting a lower-priority master for
 *    preempt_delay after it first sees one;
 *  - FAULT (keepalived/FRR): interface down or a weight-0 tracked check failing;
 *  - tracking weights move the effective priority (keepalived semantics: a positive weight is
 *    added while the check succeeds, a negative one while it fails), clamped to 1..254; the address
 *    owner (255) is never adjusted.
 */
import { compareAddresses, PRIORITY_OWNER, PRIORITY_STOP } from './packet.js';

export type VrrpState = 'INIT' | 'BACKUP' | 'MASTER' | 'FAULT';
export type TimerKind = 'adver' | 'masterDown';
export type NotifyState = 'MASTER' | 'BACKUP' | 'FAULT' | 'STOP';

export interface FsmConfig {
  version: 2 | 3;
  /** Configured (base) priority 1..255. */
  priority: number;
  /** Own Advertisement_Interval in ms. */
  intervalMs: number;
  /** Preempt_Mode; keepalived's default is true. */
  preempt: boolean;
  /** keepalived's preempt_delay in ms (0 = none). */
  preemptDelayMs: number;
  /** Primary address of this router on the link (the advert source), for equal-priority tie-breaks. */
  primaryAddress: string;
}

export interface Track { up: boolean; weight: number }

export interface FsmState {
  readonly cfg: FsmConfig;
  readonly state: VrrpState;
  /** Master_Adver_Interval: v3 learns it from the master's adverts; v2 uses its own. */
  readonly masterAdverIntervalMs: number;
  readonly adverAt?: number;
  readonly masterDownAt?: number;
  /** End of the preempt_delay window, once a lower-priority master was seen. */
  readonly preemptAt?: number;
  readonly interfaceUp: boolean;
  readonly tracks: Readonly<Record<string, Track>>;
  /** Address of the current master as last heard (undefined when we are master or unknown). */
  readonly masterAddress?: string;
  /** Whether startup happened and no shutdown since. */
  readonly running: boolean;
}

export type FsmEvent =
  | { type: 'startup' }
  | { type: 'shutdown' }
  /** A received advert that already passed validation (VRID, auth, checksum, TTL, peers). */
  | { type: 'advert'; src: string; priority: number; intervalMs: number }
  | { type: 'timer'; kind: TimerKind }
  | { type: 'interface'; up: boolean }
  /** A tracked interface or script changed; weight 0 means "failing forces FAULT". */
  | { type: 'track'; name: string; up: boolean; weight: number };

export type GarpReason = 'become-master' | 'lower-priority-advert';

export type FsmAction =
  | { type: 'sendAdvert'; priority: number }
  | { type: 'armTimer'; kind: TimerKind; at: number }
  | { type: 'cancelTimer'; kind: TimerKind }
  | { type: 'addVips' }
  | { type: 'removeVips' }
  | { type: 'garp'; reason: GarpReason }
  | { type: 'notify'; state: NotifyState; prev: VrrpState; priority: number };

export interface StepResult { state: FsmState; actions: FsmAction[] }

/** Timers may fire a hair early (fractional monotonic clocks); accept within this slack. */
const TIMER_SLACK_MS = 1;

export function initialState(cfg: FsmConfig): FsmState {
  if (!Number.isInteger(cfg.priority) || cfg.priority < 1 || cfg.priority > 255) throw new Error(`priority ${cfg.priority} out of 1..255`);
  if (!(cfg.intervalMs > 0)) throw new Error('interval must be positive');
  return { cfg, state: 'INIT', masterAdverIntervalMs: cfg.intervalMs, interfaceUp: true, tracks: {}, running: false };
}

/** Effective priority: base plus tracking weights, clamped to 1..254; the owner (255) stays 255. */
export function effectivePriority(s: FsmState): number {
  const base = s.cfg.priority;
  if (base === PRIORITY_OWNER) return PRIORITY_OWNER;
  let p = base;
  for (const t of Object.values(s.tracks)) {
    if (t.weight > 0 && t.up) p += t.weight;
    else if (t.weight < 0 && !t.up) p += t.weight;
  }
  return Math.min(254, Math.max(1, p));
}

/** True when the interface is down or a weight-0 check fails. */
export function isFaulted(s: FsmState): boolean {
  if (!s.interfaceUp) return true;
  return Object.values(s.tracks).some((t) => t.weight === 0 && !t.up);
}

/** Skew_Time in ms. v2 (RFC 3768): (256−prio)/256 s. v3 (RFC 5798): ((256−prio)×Master_Adver_Interval)/256. */
export function skewTimeMs(version: 2 | 3, priority: number, masterAdverIntervalMs: number): number {
  return version === 2 ? ((256 - priority) * 1000) / 256 : ((256 - priority) * masterAdverIntervalMs) / 256;
}

/** Master_Down_Interval in ms: 3 × Master_Adver_Interval + Skew_Time. */
export function masterDownIntervalMs(version: 2 | 3, priority: number, masterAdverIntervalMs: number): number {
  return 3 * masterAdverIntervalMs + skewTimeMs(version, priority, masterAdverIntervalMs);
}

// ------------------------------------------------------------------ transitions

function toMaster(s: FsmState, now: number, acts: FsmAction[]): FsmState {
  const prio = effectivePriority(s);
  acts.push(
    { type: 'cancelTimer', kind: 'masterDown' },
    { type: 'sendAdvert', priority: prio },
    { type: 'addVips' },
    { type: 'garp', reason: 'become-master' },
    { type: 'armTimer', kind: 'adver', at: now + s.cfg.intervalMs },
    { type: 'notify', state: 'MASTER', prev: s.state, priority: prio },
  );
  return {
    ...s, state: 'MASTER', adverAt: now + s.cfg.intervalMs, masterDownAt: undefined, preemptAt: undefined,
    masterAddress: undefined, masterAdverIntervalMs: s.cfg.intervalMs,
  };
}

function toBackup(s: FsmState, now: number, acts: FsmAction[], masterIntervalMs: number, masterAddress?: string): FsmState {
  const prio = effectivePriority(s);
  const at = now + masterDownIntervalMs(s.cfg.version, prio, masterIntervalMs);
  if (s.state === 'MASTER') acts.push({ type: 'cancelTimer', kind: 'adver' }, { type: 'removeVips' });
  acts.push({ type: 'armTimer', kind: 'masterDown', at });
  acts.push({ type: 'notify', state: 'BACKUP', prev: s.state, priority: prio });
  return { ...s, state: 'BACKUP', adverAt: undefined, masterDownAt: at, masterAdverIntervalMs: masterIntervalMs, masterAddress };
}

function toFault(s: FsmState, acts: FsmAction[]): FsmState {
  if (s.state === 'MASTER') {
    acts.push({ type: 'cancelTimer', kind: 'adver' });
    // Resign politely when the link still works (a failed weight-0 check), so the backup takes
    // over after Skew_Time instead of Master_Down_Interval.
    if (s.interfaceUp) acts.push({ type: 'sendAdvert', priority: PRIORITY_STOP });
    acts.push({ type: 'removeVips' });
  }
  if (s.state === 'BACKUP') acts.push({ type: 'cancelTimer', kind: 'masterDown' });
  acts.push({ type: 'notify', state: 'FAULT', prev: s.state, priority: effectivePriority(s) });
  return { ...s, state: 'FAULT', adverAt: undefined, masterDownAt: undefined, preemptAt: undefined, masterAddress: undefined };
}

/** Initialize → Master (owner) or Backup (RFC 6.4.1), or FAULT when a fault is present. */
function start(s: FsmState, now: number, acts: FsmAction[]): FsmState {
  if (isFaulted(s)) return toFault(s, acts);
  if (effectivePriority(s) === PRIORITY_OWNER) return toMaster(s, now, acts);
  return toBackup(s, now, acts, s.cfg.intervalMs);
}

function timerDue(deadline: number | undefined, now: number): boolean {
  return deadline !== undefined && now + TIMER_SLACK_MS >= deadline;
}

export function step(s: FsmState, ev: FsmEvent, now: number): StepResult {
  const acts: FsmAction[] = [];
  const out = (state: FsmState): StepResult => ({ state, actions: acts });

  switch (ev.type) {
    case 'startup':
      if (s.running) return out(s);
      return out(start({ ...s, running: true }, now, acts));

    case 'shutdown': {
      if (!s.running) return out(s);
      if (s.state === 'MASTER') {
        // RFC 6.4.3: cancel Adver_Timer, send an advert with priority 0, → Initialize.
        acts.push({ type: 'cancelTimer', kind: 'adver' }, { type: 'sendAdvert', priority: PRIORITY_STOP }, { type: 'removeVips' });
      } else if (s.state === 'BACKUP') {
        acts.push({ type: 'cancelTimer', kind: 'masterDown' });
      }
      acts.push({ type: 'notify', state: 'STOP', prev: s.state, priority: effectivePriority(s) });
      return out({ ...s, state: 'INIT', running: false, adverAt: undefined, masterDownAt: undefined, preemptAt: undefined, masterAddress: undefined });
    }

    case 'interface':
    case 'track': {
      const before = s;
      const next: FsmState = ev.type === 'interface'
        ? { ...s, interfaceUp: ev.up }
        : { ...s, tracks: { ...s.tracks, [ev.name]: { up: ev.up, weight: ev.weight } } };
      if (!s.running) return out(next);
      const wasFault = s.state === 'FAULT';
      const nowFault = isFaulted(next);
      if (!wasFault && nowFault) return out(toFault(next, acts));
      if (wasFault && !nowFault) return out(start(next, now, acts));
      if (wasFault) return out(next);
      const p0 = effectivePriority(before), p1 = effectivePriority(next);
      if (p0 !== p1 && next.state === 'MASTER') {
        // Announce the new priority at once rather than at the next interval: a preempting backup
        // then starts its Master_Down countdown one interval earlier.
        acts.push({ type: 'sendAdvert', priority: p1 }, { type: 'armTimer', kind: 'adver', at: now + s.cfg.intervalMs });
        return out({ ...next, adverAt: now + s.cfg.intervalMs });
      }
      return out(next);
    }

    case 'timer': {
      if (ev.kind === 'adver') {
        if (s.state !== 'MASTER' || !timerDue(s.adverAt, now)) return out(s); // stale timer
        acts.push({ type: 'sendAdvert', priority: effectivePriority(s) }, { type: 'armTimer', kind: 'adver', at: now + s.cfg.intervalMs });
        return out({ ...s, adverAt: now + s.cfg.intervalMs });
      }
      if (s.state !== 'BACKUP' || !timerDue(s.masterDownAt, now)) return out(s);
      // RFC 6.4.2: Master_Down_Timer fired → send advert, GARP, → Master.
      return out(toMaster(s, now, acts));
    }

    case 'advert': {
      const local = effectivePriority(s);
      if (s.state === 'BACKUP') {
        if (ev.priority === PRIORITY_STOP) {
          // The master resigned: take over after Skew_Time only.
          const at = now + skewTimeMs(s.cfg.version, local, s.masterAdverIntervalMs);
          acts.push({ type: 'armTimer', kind: 'masterDown', at });
          return out({ ...s, masterDownAt: at });
        }
        let preemptAt = s.preemptAt;
        let accept = !s.cfg.preempt || ev.priority >= local;
        if (!accept && s.cfg.preemptDelayMs > 0) {
          // keepalived's preempt_delay: tolerate a lower-priority master for a while first.
          preemptAt ??= now + s.cfg.preemptDelayMs;
          accept = now < preemptAt;
        }
        if (!accept) return out({ ...s, preemptAt }); // discard: Master_Down_Timer will preempt
        // v3 learns the master's interval; v2 requires it equal (checked before the FSM).
        const mai = s.cfg.version === 3 ? ev.intervalMs : s.cfg.intervalMs;
        const at = now + masterDownIntervalMs(s.cfg.version, local, mai);
        acts.push({ type: 'armTimer', kind: 'masterDown', at });
        if (ev.priority >= local) preemptAt = undefined;
        return out({ ...s, masterDownAt: at, masterAdverIntervalMs: mai, masterAddress: ev.src, preemptAt });
      }
      if (s.state === 'MASTER') {
        if (ev.priority === PRIORITY_STOP) {
          // Another master resigned (e.g. after a split brain): assert ourselves at once.
          acts.push({ type: 'sendAdvert', priority: local }, { type: 'armTimer', kind: 'adver', at: now + s.cfg.intervalMs });
          return out({ ...s, adverAt: now + s.cfg.intervalMs });
        }
        const theyWin = ev.priority > local || (ev.priority === local && compareAddresses(ev.src, s.cfg.primaryAddress) > 0);
        if (theyWin) {
          const mai = s.cfg.version === 3 ? ev.intervalMs : s.cfg.intervalMs;
          return out(toBackup(s, now, acts, mai, ev.src));
        }
        // We win: answer at once so the other side steps down within a round trip, and refresh
        // neighbours' ARP caches in case the other master had claimed the VIP.
        acts.push(
          { type: 'sendAdvert', priority: local },
          { type: 'armTimer', kind: 'adver', at: now + s.cfg.intervalMs },
          { type: 'garp', reason: 'lower-priority-advert' },
        );
        return out({ ...s, adverAt: now + s.cfg.intervalMs });
      }
      return out(s); // INIT / FAULT ignore adverts
    }
  }
}

/** Convenience for tests and the shell: folds events over time. */
export function run(s: FsmState, events: Array<[number, FsmEvent]>): StepResult {
  let st = s;
  const all: FsmAction[] = [];
  for (const [t, e] of events) {
    const r = step(st, e, t);
    st = r.state;
    all.push(...r.actions);
  }
  return { state: st, actions: all };
}
