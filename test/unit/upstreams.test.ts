import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UpstreamGroup, parseResolvConf, type Server } from '../../src/resolver/upstreams.js';

const S = (n: number): Server[] => Array.from({ length: n }, (_, i) => ({ host: `192.0.2.${i + 1}`, port: 53, label: `s${i}` }));

test('strict-order follows the list and moves repeatedly failing servers last', () => {
  const g = new UpstreamGroup(S(3), 'strict-order');
  assert.deepEqual(g.plan(0), { first: [0], rest: [1, 2] });
  g.failure(0); g.failure(0);
  assert.deepEqual(g.plan(0).first, [0], 'two failures: still first');
  g.failure(0);
  assert.deepEqual(g.plan(0), { first: [1], rest: [2, 0] });
  g.success(0, 5, 0);
  assert.deepEqual(g.plan(0).first, [0], 'back in front once it answers');
});

test('all-servers asks everyone at once', () => {
  assert.deepEqual(new UpstreamGroup(S(3), 'all-servers').plan(0), { first: [0, 1, 2], rest: [] });
});

test('fastest prefers the last good / fastest server and probes all now and then', () => {
  const g = new UpstreamGroup(S(3), 'fastest', { probeEvery: 10, probeIntervalMs: 1e9 });
  g.success(2, 5, 0); g.success(0, 40, 0); g.success(1, 30, 0);
  // 2 is clearly faster than the others: it stays preferred.
  const plans = Array.from({ length: 20 }, (_, i) => g.plan(1 + i));
  const probes = plans.filter((p) => p.first.length === 3).length;
  assert.equal(probes, 2, 'one probe every 10 queries');
  for (const p of plans.filter((x) => x.first.length === 1)) assert.deepEqual(p.first, [2]);
  // The preferred server fails: the next fastest takes over.
  g.failure(2);
  let p = g.plan(100);
  if (p.first.length === 3) p = g.plan(101); // that one was the periodic probe
  assert.equal(p.first.length, 1);
  assert.equal(p.first[0], 1);
  assert.ok(p.rest.includes(2));
});

test('fastest re-probes after the interval even with little traffic', () => {
  const g = new UpstreamGroup(S(2), 'fastest', { probeEvery: 1000, probeIntervalMs: 20_000 });
  assert.equal(g.plan(0).first.length, 2, 'first query at t=0 probes (nothing known)');
  assert.equal(g.plan(1000).first.length, 1);
  assert.equal(g.plan(25_000).first.length, 2);
});

test('resolv.conf parsing keeps nameserver lines only', () => {
  assert.deepEqual(parseResolvConf('# c\nsearch x\nnameserver 114.114.114.114\nnameserver fe80::1%eth0\n options ndots:2\n  nameserver 8.8.8.8 ; x\n'),
    ['114.114.114.114', 'fe80::1', '8.8.8.8']);
});
