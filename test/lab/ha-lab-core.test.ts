/**
 * The lab's pure cores (no root needed): load accounting, outages and buckets, VIP overlap
 * analysis, a matrix row, and the generated node configs validated by the real schema.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LoadAccount, bucketize, outages, queries, summarize, type LoadResult } from '../../src/lab/load.js';
import { analyzeRow, holderChanges, overlaps, type VipSample } from '../../src/lab/analysis.js';
import { ADDR, faultTarget, hasAddress, labNames, nodeConfig, parseNode } from '../../src/lab/plan.js';
import { configSchema } from '../../src/config/schema.js';
import { zoneAnswer } from '../../src/lab/upstream.js';
import { buildQuery } from '../../src/dns/message.js';
import dnsPacket from 'dns-packet';

/** A result with one query every 5 ms from t0 = 1000; `lost(i)` says which fail. */
function synth(n: number, lost: (i: number) => boolean): LoadResult {
  const acc = new LoadAccount(1000, 1000, 200);
  for (let i = 0; i < n; i++) acc.sent(1000 + i * 5);
  for (let i = 0; i < n; i++) if (!lost(i)) acc.answered(i, 1000 + i * 5 + 2, true);
  acc.expire(1000 + n * 5 + 1000);
  return acc.result();
}

test('LoadAccount: answered in time, late answers ignored, timeouts expire in order', () => {
  const acc = new LoadAccount(0, 1000, 200);
  acc.sent(0); acc.sent(5); acc.sent(10);
  assert.equal(acc.answered(0, 3, true), true);
  assert.equal(acc.answered(0, 4, true), false, 'a duplicate does not count twice');
  assert.equal(acc.expire(999), 2);
  assert.equal(acc.expire(1006), 1);
  assert.equal(acc.outcome(1), 't');
  assert.equal(acc.answered(1, 1100, true), false, 'after the timeout it stays lost');
  assert.equal(acc.answered(2, 900, false), true);
  assert.deepEqual(acc.counts(), { sent: 3, ok: 1, error: 1, timeout: 1, pending: 0 });
  assert.equal(acc.late, 2, 'the duplicate and the late answer');
});

test('outages and buckets: one run of lost queries is one outage, from first lost to next answered', () => {
  const r = synth(200, (i) => i >= 50 && i < 70);
  const qs = queries(r);
  const outs = outages(qs);
  assert.equal(outs.length, 1);
  assert.equal(outs[0]!.lost, 20);
  assert.equal(outs[0]!.end - outs[0]!.start, 100);
  assert.equal(outs[0]!.open, false);
  const b = bucketize(qs, 1000, 100);
  assert.equal(b.length, 10);
  assert.deepEqual(b.map((x) => x.lost), [0, 0, 10, 10, 0, 0, 0, 0, 0, 0]);
  const s = summarize(qs, 1000 + 200, 1000 + 400);
  assert.equal(s.sent, 40);
  assert.equal(s.lost, 20);
  assert.equal(s.longestOutageMs, 100);
  // An outage still running at the end is open.
  assert.equal(outages(queries(synth(10, (i) => i >= 8))).at(-1)!.open, true);
});

test('VIP samples: holder changes and overlaps after a time', () => {
  const s: VipSample[] = [
    { t: 0, a: true, b: false }, { t: 50, a: true, b: true }, { t: 100, a: true, b: true }, { t: 150, a: true, b: false },
    { t: 200, a: false, b: false }, { t: 250, a: false, b: true }, { t: 300, a: true, b: true }, { t: 350, a: true, b: false },
  ];
  assert.deepEqual(holderChanges(s).map((c) => `${c.holder}@${c.t}`), ['a@0', 'both@50', 'a@150', 'none@200', 'b@250', 'both@300', 'a@350']);
  assert.deepEqual(overlaps(s), [{ start: 50, end: 150, open: false }, { start: 300, end: 350, open: false }]);
  assert.deepEqual(overlaps(s, 120), [{ start: 300, end: 350, open: false }]);
});

test('analyzeRow: losses split at fault and heal; targets checked', () => {
  // Fault at 1500 (query 100), heal at 2500 (query 300); 30 lost after the fault, 2 after the heal.
  const load = synth(600, (i) => (i >= 100 && i < 130) || i === 400 || i === 401);
  const samples: VipSample[] = [{ t: 1000, a: true, b: false }, { t: 1700, a: false, b: true }, { t: 2600, a: true, b: true }, { t: 2700, a: true, b: false }];
  const row = analyzeRow({ fault: 'kill', target: 'a', load, samples, faultAt: 1500, healAt: 2500, targets: { recoveryMs: 1000, maxLost: 30, lostAfterHeal: 0, overlapMs: 250 } });
  assert.equal(row.windowSent, 200);
  assert.equal(row.lostDuringFault, 30);
  assert.equal(row.recoveryMs, 150);
  assert.equal(row.lostAfterHeal, 2);
  assert.equal(row.maxOverlapAfterHealMs, 100);
  assert.equal(row.vipMovedMs, 200);
  assert.equal(row.pass, false);
  assert.deepEqual(row.failures, ['2 lost after healing']);
});

test('plan: names are unique per id, node configs pass the real schema', () => {
  const n = labNames('ab12');
  assert.equal(n.ns.a, 'hlab12-a');
  assert.ok(Object.values(n.ns).every((x) => x.length <= 15));
  assert.throws(() => labNames('../x'));
  for (const node of ['a', 'b'] as const) {
    const cfg = configSchema.parse(nodeConfig(node, { stateDir: '/tmp/x', hostsPath: '/tmp/hosts', token: 'x'.repeat(32) }));
    assert.equal(cfg.vrrp!.instances[0]!.version, 3);
    assert.deepEqual(cfg.vrrp!.instances[0]!.unicast_peers, [node === 'a' ? ADDR.b : ADDR.a]);
  }
  assert.equal(parseNode('node-b'), 'b');
  assert.equal(parseNode('c'), null);
  assert.equal(faultTarget('a', 'backup-dead'), 'b');
  assert.ok(hasAddress('2: eth0    inet 10.77.0.10/24 scope global secondary eth0:0', ADDR.vip));
  assert.ok(!hasAddress('2: eth0    inet 10.77.0.100/24 scope global eth0', ADDR.vip));
});

test('fake upstream: zone names answer, others NXDOMAIN with an SOA', () => {
  const a = dnsPacket.decode(zoneAnswer(buildQuery('n3.up.test', 'A', { id: 7 }))!);
  assert.equal(a.id, 7);
  assert.deepEqual(a.answers!.map((x) => (x as { data: string }).data), ['10.77.2.4']);
  const nx = dnsPacket.decode(zoneAnswer(buildQuery('nope.example', 'A'))!);
  assert.equal((nx.flags ?? 0) & 0xf, 3, 'NXDOMAIN');
  assert.equal(nx.authorities![0]!.type, 'SOA');
});
