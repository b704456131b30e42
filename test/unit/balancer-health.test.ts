import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ActiveHealth, BackendHealth, LatencyEstimator, PassiveHealth } from '../../src/balancer/health.js';
import { FakeClock } from '../../src/util/clock.js';

test('passive: max_fails within fail_timeout trips for fail_timeout, then one trial', () => {
  const c = new FakeClock(1000);
  const p = new PassiveHealth({ maxFails: 2, failTimeoutMs: 10_000 });
  assert.equal(p.failure(c.now()), false);
  assert.equal(p.available(c.now()), true);
  assert.equal(p.failure(c.now()), true, 'second failure trips');
  assert.equal(p.available(c.now()), false);
  c.advance(9_999);
  assert.equal(p.available(c.now()), false);
  c.advance(1);
  assert.equal(p.available(c.now()), true, 'trial after fail_timeout');
  assert.equal(p.failure(c.now()), true, 'a failed trial takes it out again at once');
  assert.equal(p.available(c.now()), false);
  c.advance(10_000);
  assert.equal(p.success(c.now()), true, 'a good trial brings it back');
  assert.equal(p.available(c.now()), true);
  assert.equal(p.failure(c.now()), false, 'counting starts over');
});

test('passive: failures spread wider than fail_timeout do not trip; max_fails 0 disables', () => {
  const c = new FakeClock();
  const p = new PassiveHealth({ maxFails: 2, failTimeoutMs: 1000 });
  p.failure(c.now()); c.advance(1500);
  assert.equal(p.failure(c.now()), false);
  const off = new PassiveHealth({ maxFails: 0, failTimeoutMs: 1000 });
  for (let i = 0; i < 100; i++) off.failure(0);
  assert.equal(off.available(0), true);
});

test('passive: a success between failures resets the count', () => {
  const p = new PassiveHealth({ maxFails: 2, failTimeoutMs: 1000 });
  p.failure(0); p.success(1); assert.equal(p.failure(2), false);
});

test('active: fall consecutive failures down, rise consecutive successes up', () => {
  const a = new ActiveHealth({ rise: 2, fall: 3 });
  assert.equal(a.up, true);
  a.result(false); a.result(false); a.result(true); a.result(false); a.result(false);
  assert.equal(a.up, true, 'a success in between resets the fall run');
  assert.equal(a.result(false), true);
  assert.equal(a.up, false);
  a.result(true); assert.equal(a.up, false);
  assert.equal(a.result(true), true);
  assert.equal(a.up, true);
});

test('adaptive timeout: follows the EWMA, clamped, backs off on timeouts', () => {
  const l = new LatencyEstimator({ initialMs: 200, minMs: 20, maxMs: 500 });
  assert.equal(l.timeout(), 200);
  for (let i = 0; i < 50; i++) l.sample(1);
  assert.equal(l.timeout(), 20, 'fast backend: floor');
  for (let i = 0; i < 100; i++) l.sample(80);
  const t = l.timeout();
  assert.ok(t >= 80 && t < 120, `slow backend: ~srtt (${t})`);
  l.timedOut(); l.timedOut();
  assert.ok(l.timeout() >= 4 * 80 && l.timeout() <= 500);
  for (let i = 0; i < 20; i++) l.timedOut();
  assert.equal(l.timeout(), 500, 'never above max');
  l.sample(80);
  assert.ok(l.timeout() < 200, 'a sample ends the back-off');
});

test('combined: down by probes or passive trip; a good probe ends a passive trip', () => {
  const c = new FakeClock();
  const h = new BackendHealth({
    passive: { maxFails: 1, failTimeoutMs: 10_000 }, active: { rise: 1, fall: 2 }, timeout: { initialMs: 100, minMs: 10, maxMs: 400 },
  });
  assert.equal(h.state(c.now()), 'up');
  h.failure(c.now(), true);
  assert.equal(h.state(c.now()), 'down');
  c.advance(50);
  h.probe(c.now(), true, 1);
  assert.equal(h.state(c.now()), 'up');
  h.probe(c.now(), false, 0); h.probe(c.now(), false, 0);
  assert.equal(h.state(c.now()), 'down');
  assert.equal(h.changedAt, 50);
});
