import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createPolicy, hashString, ConsistentHash, SmoothRoundRobin, Tier, type PoolMember, type PolicyName,
} from '../../src/balancer/policy.js';
import { prng } from '../helpers/fuzz.js';

class M implements PoolMember {
  active = 0;
  latencyMs = 0;
  up = true;
  constructor(readonly id: string, readonly weight = 1, readonly backup = false, readonly down = false) {}
  available(): boolean { return this.up; }
}

/** Deterministic PRNG so statistical tests never flake. */
const rng = prng;

function counts(name: PolicyName, ms: M[], n: number, key?: (i: number) => number): number[] {
  const p = createPolicy(name, ms, rng(42));
  const c = ms.map(() => 0);
  for (let i = 0; i < n; i++) c[p.pick(0, key ? key(i) : 0, 0)]++;
  return c;
}

test('smooth weighted round-robin: nginx order for 5,1,1 and exact shares', () => {
  const ms = [new M('a', 5), new M('b', 1), new M('c', 1)];
  const p = new SmoothRoundRobin(ms);
  const seq = Array.from({ length: 7 }, () => 'abc'[p.pick(0, 0, 0)]).join('');
  assert.equal(seq, 'aabacaa');
  assert.deepEqual(counts('round-robin', ms, 7000), [5000, 1000, 1000]);
});

for (const name of ['round-robin', 'least-conn', 'random-two', 'hash'] as PolicyName[]) {
  test(`${name}: weights 3:1 respected within ±5% over 10k picks`, () => {
    const ms = [new M('10.0.0.1:53', 3), new M('10.0.0.2:53', 1)];
    const c = counts(name, ms, 10000, (i) => hashString(`192.0.2.${i % 250}:${1000 + i}`));
    const share = c[0] / 10000;
    assert.ok(Math.abs(share - 0.75) <= 0.05 * 0.75, `share ${share}`);
  });
}

test('backup used only when every primary is unavailable; down never; fail-open otherwise', () => {
  const a = new M('a'); const b = new M('b'); const bk = new M('bk', 1, true); const dn = new M('dn', 1, false, true);
  const p = createPolicy('round-robin', [a, b, bk, dn]);
  for (let i = 0; i < 10; i++) assert.ok([0, 1].includes(p.pick(0, 0, 0)));
  a.up = false; b.up = false;
  assert.equal(p.pick(0, 0, 0), 2);
  assert.equal(p.lastTier, Tier.BACKUP);
  bk.up = false;
  const i = p.pick(0, 0, 0);
  assert.ok([0, 1, 2].includes(i), 'fails open to a non-down member');
  assert.equal(p.lastTier, Tier.ANY);
  assert.equal(p.pick(0, 0, 0b111), -1, 'only the down member left: none');
});

test('exclude mask skips tried members (retry goes elsewhere)', () => {
  const ms = [new M('a'), new M('b'), new M('c')];
  for (const name of ['round-robin', 'least-conn', 'hash', 'random-two', 'least-outstanding', 'fastest'] as PolicyName[]) {
    const p = createPolicy(name, ms, rng(1));
    for (let k = 0; k < 50; k++) {
      const first = p.pick(0, k * 7919, 0);
      const second = p.pick(0, k * 7919, 1 << first);
      assert.notEqual(second, first, name);
      assert.ok(second >= 0);
    }
  }
});

test('least-conn prefers the member with fewest active per weight', () => {
  const ms = [new M('a', 1), new M('b', 2)];
  const p = createPolicy('least-conn', ms);
  ms[0].active = 1; ms[1].active = 3; // 1/1 < 3/2
  assert.equal(p.pick(0, 0, 0), 0);
  ms[1].active = 1; // 1/1 > 1/2
  assert.equal(p.pick(0, 0, 0), 1);
});

test('consistent hash: stable per client; removing a member moves only its clients', () => {
  const ms = [new M('a:53'), new M('b:53'), new M('c:53')];
  const p = new ConsistentHash(ms);
  const keys = Array.from({ length: 3000 }, (_, i) => hashString(`198.51.100.${i % 256}#${i}`));
  const before = keys.map((k) => p.pick(0, k, 0));
  assert.deepEqual(keys.map((k) => p.pick(0, k, 0)), before, 'same client, same member');
  const share = [0, 1, 2].map((i) => before.filter((x) => x === i).length / keys.length);
  for (const s of share) assert.ok(s > 0.25 && s < 0.42, `share ${s}`);
  ms[1].up = false;
  const after = keys.map((k) => p.pick(0, k, 0));
  for (let i = 0; i < keys.length; i++) {
    if (before[i] !== 1) assert.equal(after[i], before[i], 'clients of healthy members stay');
    else assert.notEqual(after[i], 1);
  }
});

test('random-two picks the less loaded of two', () => {
  const ms = [new M('a'), new M('b')];
  ms[0].active = 10;
  const c = counts('random-two', ms, 1000);
  assert.equal(c[1], 1000);
});

test('least-outstanding: fewest in flight, ties by latency', () => {
  const ms = [new M('a'), new M('b'), new M('c')];
  const p = createPolicy('least-outstanding', ms);
  ms[0].active = 2; ms[1].active = 1; ms[2].active = 1;
  ms[1].latencyMs = 5; ms[2].latencyMs = 1;
  assert.equal(p.pick(0, 0, 0), 2);
});

test('fastest: share follows weight / latency', () => {
  const ms = [new M('a'), new M('b')];
  ms[0].latencyMs = 1; ms[1].latencyMs = 3;
  const c = counts('fastest', ms, 10000);
  assert.ok(Math.abs(c[0] / 10000 - 0.75) < 0.0375, `share ${c[0]}`);
});

test('more than 32 backends is refused', () => {
  assert.throws(() => createPolicy('round-robin', Array.from({ length: 33 }, (_, i) => new M(String(i)))), /32/);
});
