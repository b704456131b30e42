/**
 * The VRRP state machine under arbitrary event sequences (fast-check): adverts with any priority,
 * interval and source (peers that lie or misbehave included), timers on time, early, late or stale,
 * interface and tracking flaps, startup and shutdown in any order. After every step:
 * - the VIPs are held (by the addVips/removeVips actions so far) exactly while in MASTER;
 * - MASTER has an Adver_Timer, BACKUP a Master_Down_Timer, and no timer is armed in the past;
 * - every state change is announced by exactly one notify naming the old state, and only a change is;
 * - adverts are sent only by a router that is, or was just, MASTER;
 * - nothing throws.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { initialState, step, type FsmConfig, type FsmEvent, type FsmState } from '../../src/vrrp/fsm.js';

const OWN = '192.0.2.10';
const event: fc.Arbitrary<{ dt: number; ev: FsmEvent | 'due-timer' }> = fc.record({
  dt: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 4000 })),
  ev: fc.oneof(
    { weight: 1, arbitrary: fc.constant<FsmEvent>({ type: 'startup' }) },
    { weight: 1, arbitrary: fc.constant<FsmEvent>({ type: 'shutdown' }) },
    {
      weight: 6,
      arbitrary: fc.record({
        type: fc.constant('advert' as const),
        src: fc.constantFrom('192.0.2.1', '192.0.2.200', OWN, '198.51.100.7'),
        priority: fc.oneof(fc.constantFrom(0, 1, 99, 100, 101, 254, 255), fc.integer({ min: 0, max: 255 })),
        intervalMs: fc.oneof(fc.constantFrom(10, 1000), fc.integer({ min: 10, max: 40_950 })),
      }),
    },
    { weight: 4, arbitrary: fc.constantFrom<FsmEvent>({ type: 'timer', kind: 'adver' }, { type: 'timer', kind: 'masterDown' }) },
    { weight: 4, arbitrary: fc.constant<'due-timer'>('due-timer') },
    { weight: 2, arbitrary: fc.boolean().map((up): FsmEvent => ({ type: 'interface', up })) },
    {
      weight: 2,
      arbitrary: fc.record({ type: fc.constant('track' as const), name: fc.constantFrom('chk', 'if'), up: fc.boolean(), weight: fc.integer({ min: -60, max: 60 }) }),
    },
  ),
});

const config: fc.Arbitrary<FsmConfig> = fc.record({
  version: fc.constantFrom(2 as const, 3 as const),
  priority: fc.constantFrom(1, 50, 100, 150, 254, 255),
  intervalMs: fc.constantFrom(30, 1000),
  preempt: fc.boolean(),
  preemptDelayMs: fc.constantFrom(0, 500),
  primaryAddress: fc.constant(OWN),
});

test('VRRP FSM: VIPs held exactly in MASTER, timers consistent, one notify per change, no throw', () => {
  fc.assert(fc.property(config, fc.array(event, { maxLength: 60 }), (cfg, events) => {
    let s: FsmState = initialState(cfg);
    let now = 0;
    let vips = false;
    for (const { dt, ev } of events) {
      now += dt;
      let e: FsmEvent;
      if (ev === 'due-timer') {
        // The timer the state has armed, fired at its time (the common case random events rarely hit).
        const kind = s.state === 'MASTER' ? 'adver' : 'masterDown';
        const at = kind === 'adver' ? s.adverAt : s.masterDownAt;
        if (at !== undefined && at > now) now = at;
        e = { type: 'timer', kind };
      } else e = ev;
      const prev = s.state;
      const r = step(s, e, now);
      s = r.state;
      for (const a of r.actions) {
        if (a.type === 'addVips') vips = true;
        if (a.type === 'removeVips') vips = false;
        if (a.type === 'armTimer') assert.ok(a.at >= now, `timer armed in the past: ${a.at} < ${now}`);
        if (a.type === 'sendAdvert') assert.ok(prev === 'MASTER' || s.state === 'MASTER', `advert sent in ${prev} → ${s.state}`);
      }
      assert.equal(vips, s.state === 'MASTER', `VIPs ${vips ? 'held' : 'not held'} in ${s.state} after ${JSON.stringify(e)}`);
      if (s.state === 'MASTER') assert.notEqual(s.adverAt, undefined, 'MASTER without Adver_Timer');
      if (s.state === 'BACKUP') assert.notEqual(s.masterDownAt, undefined, 'BACKUP without Master_Down_Timer');
      const notes = r.actions.filter((a) => a.type === 'notify');
      if (s.state !== prev) {
        assert.equal(notes.length, 1, `${prev} → ${s.state} announced ${notes.length} times`);
        const n = notes[0]!;
        assert.ok(n.type === 'notify' && n.prev === prev && n.state === (s.state === 'INIT' ? 'STOP' : s.state), `notify ${JSON.stringify(n)} for ${prev} → ${s.state}`);
      } else {
        assert.equal(notes.length, 0, `notify without a change (${prev}) after ${JSON.stringify(e)}`);
      }
    }
  }), { numRuns: 2000, seed: Number(process.env.HADNS_FUZZ_SEED ?? 42) });
});
