import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyTable } from '../../src/util/key-table.js';
import { SuffixFilter } from '../../src/dns/suffix-filter.js';

/** A tiny seeded PRNG so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32; };
}

test('KeyTable agrees with a Map over random sets, deletes and lookups (growth, wrap-around, backward shift)', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const r = rng(seed);
    const t = new KeyTable<number>(16);
    const m = new Map<string, number>();
    // Few distinct keys relative to operations: long probe chains, many deletes in the middle of them.
    const universe = 8 + Math.floor(r() * 300);
    for (let op = 0; op < 5000; op++) {
      const k = `k${Math.floor(r() * universe)}.example`;
      const x = r();
      if (x < 0.45) { t.set(k, op); m.set(k, op); }
      else if (x < 0.8) assert.equal(t.delete(k), m.delete(k), `seed ${seed} op ${op}: delete ${k}`);
      else assert.equal(t.get(k), m.get(k), `seed ${seed} op ${op}: get ${k}`);
      assert.equal(t.size, m.size);
    }
    for (let i = 0; i < universe; i++) {
      const k = `k${i}.example`;
      assert.equal(t.get(k), m.get(k), `seed ${seed}: final ${k}`);
      assert.equal(t.has(k), m.has(k));
    }
    t.clear();
    assert.equal(t.size, 0);
    assert.equal(t.get('k1.example'), undefined);
  }
});

test('KeyTable: a table that has grown allocates nothing more for the same number of entries', () => {
  const t = new KeyTable<number>(16);
  for (let i = 0; i < 100; i++) t.set(`q${i}`, i);
  for (let i = 0; i < 100; i++) t.delete(`q${i}`);
  const before = (t as unknown as { keys: unknown[] }).keys;
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 100; i++) t.set(`r${round}.${i}`, i);
    for (let i = 0; i < 100; i++) assert.ok(t.delete(`r${round}.${i}`));
  }
  assert.equal((t as unknown as { keys: unknown[] }).keys, before, 'same slot array: no rehash, no regrowth');
  assert.equal(t.size, 0);
});

test('SuffixFilter says no only where no domain can be a suffix', () => {
  const f = new SuffixFilter(['corp.example', 'lan', 'hadns.invalid']);
  for (const yes of ['corp.example', 'a.corp.example', 'x.example', 'lan', 'pc.lan', 'hadns.invalid', 'x.invalid']) {
    assert.equal(f.mayMatch(yes), true, yes);
  }
  for (const no of ['example.com', 'plan', 'xlan', 'a.test', '', 'invalid.x']) assert.equal(f.mayMatch(no), false, no);
  // The root matches everything; so does a long list of top labels (testing them costs more).
  assert.equal(new SuffixFilter(['lan', '']).mayMatch('a.test'), true);
  assert.equal(new SuffixFilter(Array.from({ length: 17 }, (_, i) => `d.t${i}`)).mayMatch('a.test'), true);
  assert.equal(new SuffixFilter([]).mayMatch('a.test'), false);
});
