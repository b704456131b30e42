import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../src/util/clock.js';
import {
  initialState, step, skewTimeMs, masterDownIntervalMs, effectivePriority,
  type FsmConfig, type FsmState, type FsmEvent, type FsmAction,
} from '../../src/vrrp/fsm.js';

const cfg = (o: Partial<FsmConfig> = {}): FsmConfig => ({
  version: 3, priority: 100, intervalMs: 1000, preempt: true, preemptDelayMs: 0, primaryAddress: '192.0.2.10', ...o,
});

/** Drives one FSM from a given state, returning the new state and its actions. */
function at(s: FsmState, ev: FsmEvent, now: number) { return step(s, ev, now); }
function types(a: FsmAction[]): string[] { return a.map((x) => x.type === 'armTimer' || x.type === 'cancelTimer' ? `${x.type}:${x.kind}` : x.type === 'notify' ? `notify:${x.state}` : x.type === 'sendAdvert' ? `sendAdvert:${x.priority}` : x.type); }
function backup(c = cfg(), now = 0): FsmState { return at(initialState(c), { type: 'startup' }, now).state; }
function master(c = cfg(), now = 0): FsmState {
  const b = backup(c, now);
  return at(b, { type: 'timer', kind: 'masterDown' }, b.masterDownAt!).state;
}

describe('timers', () => {
  test('Skew_Time and Master_Down_Interval: v2 and v3 formulas differ', () => {
    assert.equal(skewTimeMs(2, 100, 1000), (156 * 1000) / 256);
    assert.equal(skewTimeMs(2, 100, 3000), (156 * 1000) / 256, 'v2 skew ignores the interval');
    assert.equal(skewTimeMs(3, 100, 3000), (156 * 3000) / 256, 'v3 skew scales with the interval');
    assert.equal(masterDownIntervalMs(3, 200, 100), 300 + (56 * 100) / 256);
    assert.equal(masterDownIntervalMs(2, 150, 1000), 3000 + (106 * 1000) / 256);
  });
});

describe('RFC 5798 §6.4.1 Initialize', () => {
  test('startup with priority 255 → Master: advert, GARP, Adver_Timer', () => {
    const r = at(initialState(cfg({ priority: 255 })), { type: 'startup' }, 5);
    assert.equal(r.state.state, 'MASTER');
    assert.deepEqual(types(r.actions), ['cancelTimer:masterDown', 'sendAdvert:255', 'addVips', 'garp', 'armTimer:adver', 'notify:MASTER']);
    assert.equal(r.state.adverAt, 1005);
  });
  test('startup with priority < 255 → Backup with Master_Down_Timer', () => {
    const r = at(initialState(cfg()), { type: 'startup' }, 0);
    assert.equal(r.state.state, 'BACKUP');
    assert.deepEqual(r.actions[0], { type: 'armTimer', kind: 'masterDown', at: masterDownIntervalMs(3, 100, 1000) });
    assert.deepEqual(types(r.actions), ['armTimer:masterDown', 'notify:BACKUP']);
  });
  test('adverts and timers are ignored in Initialize', () => {
    const s = initialState(cfg());
    assert.deepEqual(at(s, { type: 'advert', src: '192.0.2.1', priority: 200, intervalMs: 1000 }, 0).actions, []);
    assert.deepEqual(at(s, { type: 'timer', kind: 'masterDown' }, 9999).actions, []);
  });
});

describe('RFC 5798 §6.4.2 Backup', () => {
  test('Shutdown → cancel Master_Down_Timer, Initialize', () => {
    const r = at(backup(), { type: 'shutdown' }, 10);
    assert.equal(r.state.state, 'INIT');
    assert.deepEqual(types(r.actions), ['cancelTimer:masterDown', 'notify:STOP']);
  });
  test('Master_Down_Timer fires → advert, GARP, Adver_Timer, Master', () => {
    const b = backup();
    const r = at(b, { type: 'timer', kind: 'masterDown' }, b.masterDownAt!);
    assert.equal(r.state.state, 'MASTER');
    assert.deepEqual(types(r.actions), ['cancelTimer:masterDown', 'sendAdvert:100', 'addVips', 'garp', 'armTimer:adver', 'notify:MASTER']);
  });
  test('a stale Master_Down_Timer (re-armed later) is ignored', () => {
    let s = backup();
    s = at(s, { type: 'advert', src: '192.0.2.1', priority: 200, intervalMs: 1000 }, 2000).state;
    const r = at(s, { type: 'timer', kind: 'masterDown' }, 3700);
    assert.equal(r.state.state, 'BACKUP');
    assert.deepEqual(r.actions, []);
  });
  test('advert with priority 0 → Master_Down_Timer = Skew_Time', () => {
    const r = at(backup(), { type: 'advert', src: '192.0.2.1', priority: 0, intervalMs: 1000 }, 1000);
    assert.deepEqual(r.actions, [{ type: 'armTimer', kind: 'masterDown', at: 1000 + skewTimeMs(3, 100, 1000) }]);
  });
  test('advert with priority ≥ local → reset Master_Down_Timer, v3 learns Master_Adver_Interval', () => {
    const r = at(backup(), { type: 'advert', src: '192.0.2.1', priority: 150, intervalMs: 200 }, 1000);
    assert.equal(r.state.masterAdverIntervalMs, 200);
    assert.deepEqual(r.actions, [{ type: 'armTimer', kind: 'masterDown', at: 1000 + masterDownIntervalMs(3, 100, 200) }]);
    assert.equal(r.state.masterAddress, '192.0.2.1');
  });
  test('v2 keeps its own interval (mismatches are dropped before the FSM)', () => {
    const r = at(backup(cfg({ version: 2 })), { type: 'advert', src: '192.0.2.1', priority: 150, intervalMs: 3000 }, 0);
    assert.equal(r.state.masterAdverIntervalMs, 1000);
  });
  test('Preempt_Mode false: a lower-priority advert still resets the timer', () => {
    const r = at(backup(cfg({ preempt: false })), { type: 'advert', src: '192.0.2.1', priority: 50, intervalMs: 1000 }, 1000);
    assert.equal(types(r.actions).join(), 'armTimer:masterDown');
  });
  test('Preempt_Mode true: a lower-priority advert is discarded', () => {
    const r = at(backup(), { type: 'advert', src: '192.0.2.1', priority: 50, intervalMs: 1000 }, 1000);
    assert.deepEqual(r.actions, []);
  });
  test('preempt_delay: a lower-priority master is tolerated for the delay, then discarded', () => {
    let s = backup(cfg({ preemptDelayMs: 5000 }));
    let r = at(s, { type: 'advert', src: '192.0.2.1', priority: 50, intervalMs: 1000 }, 1000);
    assert.equal(types(r.actions).join(), 'armTimer:masterDown');
    s = r.state;
    r = at(s, { type: 'advert', src: '192.0.2.1', priority: 50, intervalMs: 1000 }, 5999);
    assert.equal(r.actions.length, 1);
    r = at(r.state, { type: 'advert', src: '192.0.2.1', priority: 50, intervalMs: 1000 }, 6000);
    assert.deepEqual(r.actions, []);
  });
});

describe('RFC 5798 §6.4.3 Master', () => {
  test('Shutdown → cancel Adver_Timer, advert with priority 0, remove VIPs, Initialize', () => {
    const r = at(master(), { type: 'shutdown' }, 9000);
    assert.equal(r.state.state, 'INIT');
    assert.deepEqual(types(r.actions), ['cancelTimer:adver', 'sendAdvert:0', 'removeVips', 'notify:STOP']);
  });
  test('Adver_Timer fires → advert, reset Adver_Timer', () => {
    const m = master();
    const r = at(m, { type: 'timer', kind: 'adver' }, m.adverAt!);
    assert.deepEqual(r.actions, [{ type: 'sendAdvert', priority: 100 }, { type: 'armTimer', kind: 'adver', at: m.adverAt! + 1000 }]);
  });
  test('advert with priority 0 → advert at once, reset Adver_Timer', () => {
    const r = at(master(), { type: 'advert', src: '192.0.2.1', priority: 0, intervalMs: 1000 }, 4000);
    assert.deepEqual(r.actions, [{ type: 'sendAdvert', priority: 100 }, { type: 'armTimer', kind: 'adver', at: 5000 }]);
  });
  test('advert with higher priority → Backup (v3 learns interval), VIPs removed', () => {
    const r = at(master(), { type: 'advert', src: '192.0.2.1', priority: 101, intervalMs: 300 }, 4000);
    assert.equal(r.state.state, 'BACKUP');
    assert.equal(r.state.masterAdverIntervalMs, 300);
    assert.deepEqual(types(r.actions), ['cancelTimer:adver', 'removeVips', 'armTimer:masterDown', 'notify:BACKUP']);
  });
  test('equal priority: the higher primary address wins', () => {
    const m = master(cfg({ primaryAddress: '192.0.2.10' }));
    const lose = at(m, { type: 'advert', src: '192.0.2.11', priority: 100, intervalMs: 1000 }, 4000);
    assert.equal(lose.state.state, 'BACKUP');
    const win = at(m, { type: 'advert', src: '192.0.2.9', priority: 100, intervalMs: 1000 }, 4000);
    assert.equal(win.state.state, 'MASTER');
    assert.deepEqual(types(win.actions), ['sendAdvert:100', 'armTimer:adver', 'garp']);
  });
  test('advert with lower priority → answer at once (+GARP), stay Master', () => {
    const r = at(master(), { type: 'advert', src: '192.0.2.99', priority: 99, intervalMs: 1000 }, 4000);
    assert.equal(r.state.state, 'MASTER');
    assert.deepEqual(types(r.actions), ['sendAdvert:100', 'armTimer:adver', 'garp']);
  });
});

describe('FAULT and tracking', () => {
  test('interface down: Master → FAULT without sending (link is gone); up again → Backup', () => {
    let r = at(master(), { type: 'interface', up: false }, 5000);
    assert.equal(r.state.state, 'FAULT');
    assert.deepEqual(types(r.actions), ['cancelTimer:adver', 'removeVips', 'notify:FAULT']);
    assert.deepEqual(at(r.state, { type: 'advert', src: '192.0.2.1', priority: 1, intervalMs: 1000 }, 5100).actions, []);
    r = at(r.state, { type: 'interface', up: true }, 6000);
    assert.equal(r.state.state, 'BACKUP');
  });
  test('a weight-0 tracked check failing: Master resigns with priority 0 and enters FAULT', () => {
    const r = at(master(), { type: 'track', name: 'chk', up: false, weight: 0 }, 5000);
    assert.equal(r.state.state, 'FAULT');
    assert.deepEqual(types(r.actions), ['cancelTimer:adver', 'sendAdvert:0', 'removeVips', 'notify:FAULT']);
  });
  test('starting while faulted → FAULT; owner recovers straight to Master', () => {
    let s = initialState(cfg({ priority: 255 }));
    s = at(s, { type: 'interface', up: false }, 0).state;
    let r = at(s, { type: 'startup' }, 0);
    assert.equal(r.state.state, 'FAULT');
    r = at(r.state, { type: 'interface', up: true }, 10);
    assert.equal(r.state.state, 'MASTER');
  });
  test('weights: +w while up, −w while down, clamped to 1..254; owner untouched; master re-advertises', () => {
    let s = master(cfg({ priority: 100 }));
    let r = at(s, { type: 'track', name: 'a', up: false, weight: -60 }, 5000);
    assert.equal(effectivePriority(r.state), 40);
    assert.deepEqual(r.actions[0], { type: 'sendAdvert', priority: 40 });
    r = at(r.state, { type: 'track', name: 'b', up: false, weight: -60 }, 5001);
    assert.equal(effectivePriority(r.state), 1);
    r = at(r.state, { type: 'track', name: 'c', up: true, weight: 250 }, 5002);
    assert.equal(effectivePriority(r.state), 230);
    s = at(initialState(cfg({ priority: 255 })), { type: 'track', name: 'a', up: false, weight: -50 }, 0).state;
    assert.equal(effectivePriority(s), 255);
  });
});

// ------------------------------------------------------------------ a simulated LAN of FSMs

/** Several routers on one simulated link, an injected FakeClock and a timer queue; zero-delay delivery. */
class Lan {
  readonly clock = new FakeClock(0);
  readonly nodes = new Map<string, { s: FsmState; timers: Map<string, number>; vips: boolean; log: string[] }>();
  /** Pairs that cannot hear each other (partition). */
  cut = new Set<string>();
  add(c: FsmConfig) { this.nodes.set(c.primaryAddress, { s: initialState(c), timers: new Map(), vips: false, log: [] }); }
  private queue: Array<[string, FsmEvent]> = [];
  /** Delivers an event, then every advert it caused (in order, same instant: zero link delay). */
  ev(addr: string, e: FsmEvent) {
    this.queue.push([addr, e]);
    if (this.queue.length > 1) return;
    for (let guard = 0; this.queue.length; guard++) {
      assert.ok(guard < 1000, 'advert storm');
      const [a, ev] = this.queue[0]!;
      this.deliver(a, ev);
      this.queue.shift();
    }
  }
  private deliver(addr: string, e: FsmEvent) {
    const n = this.nodes.get(addr);
    if (!n) return;
    const r = step(n.s, e, this.clock.now());
    n.s = r.state;
    for (const a of r.actions) {
      if (a.type === 'armTimer') n.timers.set(a.kind, a.at);
      else if (a.type === 'cancelTimer') n.timers.delete(a.kind);
      else if (a.type === 'addVips') n.vips = true;
      else if (a.type === 'removeVips') n.vips = false;
      else if (a.type === 'notify') n.log.push(`${this.clock.now().toFixed(1)}:${a.state}`);
      else if (a.type === 'sendAdvert') {
        for (const [other] of this.nodes) {
          if (other === addr || this.cut.has(`${addr}|${other}`) || this.cut.has(`${other}|${addr}`)) continue;
          this.queue.push([other, { type: 'advert', src: addr, priority: a.priority, intervalMs: n.s.cfg.intervalMs }]);
        }
      }
    }
  }
  /** Runs timers in order until `until`. */
  runUntil(until: number) {
    for (let guard = 0; ; guard++) {
      assert.ok(guard < 100_000, 'timer storm');
      let next: [string, string, number] | undefined;
      for (const [addr, n] of this.nodes) for (const [k, t] of n.timers) if (!next || t < next[2]) next = [addr, k, t];
      if (!next || next[2] > until) break;
      this.clock.t = Math.max(this.clock.t, next[2]);
      this.nodes.get(next[0])!.timers.delete(next[1]);
      this.ev(next[0], { type: 'timer', kind: next[1] as 'adver' | 'masterDown' });
    }
    this.clock.t = until;
  }
  masters(): string[] { return [...this.nodes].filter(([, n]) => n.s.state === 'MASTER').map(([a]) => a); }
  holders(): string[] { return [...this.nodes].filter(([, n]) => n.vips).map(([a]) => a); }
}

describe('scenarios (simulated link, fake clock)', () => {
  test('simultaneous start, different priorities: the higher one wins after its shorter skew', () => {
    const lan = new Lan();
    lan.add(cfg({ primaryAddress: '192.0.2.237', priority: 150 }));
    lan.add(cfg({ primaryAddress: '192.0.2.50', priority: 100 }));
    lan.ev('192.0.2.237', { type: 'startup' });
    lan.ev('192.0.2.50', { type: 'startup' });
    lan.runUntil(20_000);
    assert.deepEqual(lan.masters(), ['192.0.2.237']);
    assert.deepEqual(lan.holders(), ['192.0.2.237']);
    assert.equal(lan.nodes.get('192.0.2.50')!.log.join(), '0.0:BACKUP', 'the backup never flapped');
    assert.equal(lan.nodes.get('192.0.2.237')!.log.join(), `0.0:BACKUP,${masterDownIntervalMs(3, 150, 1000).toFixed(1)}:MASTER`);
  });
  test('simultaneous start, equal priorities: both claim, the higher address keeps it', () => {
    const lan = new Lan();
    lan.add(cfg({ primaryAddress: '192.0.2.1' }));
    lan.add(cfg({ primaryAddress: '192.0.2.2' }));
    // Partitioned at start so both time out at the same instant, then the link comes up.
    lan.cut.add('192.0.2.1|192.0.2.2');
    lan.ev('192.0.2.1', { type: 'startup' });
    lan.ev('192.0.2.2', { type: 'startup' });
    lan.runUntil(3700);
    assert.equal(lan.masters().length, 2);
    lan.cut.clear();
    lan.runUntil(10_000);
    assert.deepEqual(lan.masters(), ['192.0.2.2']);
  });
  test('preemption: a higher-priority router joining later takes over after Master_Down_Interval', () => {
    const lan = new Lan();
    lan.add(cfg({ primaryAddress: '192.0.2.50', priority: 100 }));
    lan.add(cfg({ primaryAddress: '192.0.2.237', priority: 150 }));
    lan.ev('192.0.2.50', { type: 'startup' });
    lan.runUntil(10_000);
    assert.deepEqual(lan.masters(), ['192.0.2.50']);
    lan.ev('192.0.2.237', { type: 'startup' });
    lan.runUntil(20_000);
    assert.deepEqual(lan.masters(), ['192.0.2.237']);
    assert.deepEqual(lan.holders(), ['192.0.2.237']);
    const takeover = Number(lan.nodes.get('192.0.2.237')!.log.at(-1)!.split(':')[0]);
    assert.ok(takeover <= 10_000 + masterDownIntervalMs(3, 150, 1000) + 0.1, String(lan.nodes.get('192.0.2.237')!.log));
  });
  test('nopreempt: a higher-priority router returning does not take the VIP back', () => {
    const lan = new Lan();
    lan.add(cfg({ primaryAddress: '192.0.2.50', priority: 100, preempt: false }));
    lan.add(cfg({ primaryAddress: '192.0.2.237', priority: 150, preempt: false }));
    lan.ev('192.0.2.50', { type: 'startup' });
    lan.runUntil(10_000);
    lan.ev('192.0.2.237', { type: 'startup' });
    lan.runUntil(30_000);
    assert.deepEqual(lan.masters(), ['192.0.2.50']);
  });
  test('priority-0 resignation: the backup takes over after Skew_Time, not Master_Down_Interval', () => {
    const lan = new Lan();
    lan.add(cfg({ primaryAddress: '192.0.2.237', priority: 150 }));
    lan.add(cfg({ primaryAddress: '192.0.2.50', priority: 100 }));
    lan.ev('192.0.2.237', { type: 'startup' });
    lan.ev('192.0.2.50', { type: 'startup' });
    lan.runUntil(10_000);
    lan.ev('192.0.2.237', { type: 'shutdown' });
    assert.deepEqual(lan.holders(), []);
    lan.runUntil(10_000 + skewTimeMs(3, 100, 1000) - 1);
    assert.deepEqual(lan.masters(), []);
    lan.runUntil(10_000 + skewTimeMs(3, 100, 1000) + 1);
    assert.deepEqual(lan.masters(), ['192.0.2.50']);
  });
  test('silent master death: the backup takes over after Master_Down_Interval', () => {
    const lan = new Lan();
    lan.add(cfg({ primaryAddress: '192.0.2.237', priority: 150, intervalMs: 200 }));
    lan.add(cfg({ primaryAddress: '192.0.2.50', priority: 100, intervalMs: 200 }));
    lan.ev('192.0.2.237', { type: 'startup' });
    lan.ev('192.0.2.50', { type: 'startup' });
    lan.runUntil(5000);
    lan.nodes.delete('192.0.2.237');
    lan.runUntil(5000 + masterDownIntervalMs(3, 100, 200) + 1);
    assert.deepEqual(lan.masters(), ['192.0.2.50']);
    assert.ok(masterDownIntervalMs(3, 100, 200) < 1000, 'sub-second advert interval → failover < 1 s');
  });
  test('split brain heals: after a partition ends, exactly one master within one round trip', () => {
    const lan = new Lan();
    lan.add(cfg({ primaryAddress: '192.0.2.237', priority: 150 }));
    lan.add(cfg({ primaryAddress: '192.0.2.50', priority: 100 }));
    lan.ev('192.0.2.237', { type: 'startup' });
    lan.ev('192.0.2.50', { type: 'startup' });
    lan.runUntil(10_000);
    lan.cut.add('192.0.2.237|192.0.2.50');
    lan.runUntil(20_000);
    assert.equal(lan.masters().length, 2, 'split brain during the partition');
    lan.cut.clear();
    // Whichever sends first after healing settles it: the lower one steps down, or the higher
    // one answers the lower one's advert at once.
    lan.runUntil(21_000);
    assert.deepEqual(lan.masters(), ['192.0.2.237']);
    assert.deepEqual(lan.holders(), ['192.0.2.237']);
  });
  test('tracking: a failing negative-weight check on the master lets a preempting backup take over', () => {
    const lan = new Lan();
    lan.add(cfg({ primaryAddress: '192.0.2.237', priority: 150 }));
    lan.add(cfg({ primaryAddress: '192.0.2.50', priority: 100 }));
    lan.ev('192.0.2.237', { type: 'startup' });
    lan.ev('192.0.2.50', { type: 'startup' });
    lan.runUntil(10_000);
    lan.ev('192.0.2.237', { type: 'track', name: 'dns', up: false, weight: -60 });
    lan.runUntil(10_000 + masterDownIntervalMs(3, 100, 1000) + 1);
    assert.deepEqual(lan.masters(), ['192.0.2.50']);
    lan.ev('192.0.2.237', { type: 'track', name: 'dns', up: true, weight: -60 });
    lan.runUntil(30_000);
    assert.deepEqual(lan.masters(), ['192.0.2.237'], 'preempts back once healthy');
  });
});
