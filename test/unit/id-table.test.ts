import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IdTable, randomId16 } from '../../src/dns/id-table.js';
import { GenFifo } from '../../src/util/gen-fifo.js';

test('IdTable: IDs are unique while in flight and map back to their entries', () => {
  const t = new IdTable<{ n: number }>();
  const live = new Map<number, { n: number }>();
  for (let n = 0; n < 20_000; n++) {
    const v = { n };
    const id = t.add(v);
    assert.ok(id >= 0 && id <= 0xffff);
    assert.equal(live.has(id), false, `id ${id} handed out twice`);
    live.set(id, v);
  }
  assert.equal(t.size, 20_000);
  for (const [id, v] of live) assert.equal(t.get(id), v);
  assert.equal(t.values().length, 20_000);
});

test('IdTable: entries survive growth; delete frees an ID; a stray ID finds nothing', () => {
  const t = new IdTable<string>(16);
  const ids: number[] = [];
  for (let i = 0; i < 100; i++) ids.push(t.add(`v${i}`));
  ids.forEach((id, i) => assert.equal(t.get(id), `v${i}`));
  assert.equal(t.delete(ids[5]!), true);
  assert.equal(t.delete(ids[5]!), false);
  assert.equal(t.get(ids[5]!), undefined);
  assert.equal(t.size, 99);
  // An ID that shares the slot of a live one but differs in the high bits is not a match.
  const other = ids[6]! ^ 0x8000;
  if (!ids.includes(other)) assert.equal(t.get(other), undefined);
});

test('IdTable: the same random draw walks to a free ID, not a used one', () => {
  const t = new IdTable<number>(16);
  const a = t.add(1, 0x8000);
  const b = t.add(2, 0x8000);
  assert.equal(a, 0x8000);
  assert.notEqual(b, a);
  assert.equal(t.get(a), 1);
  assert.equal(t.get(b), 2);
});

test('IdTable: draws are spread over the ID space (not a counter)', () => {
  const t = new IdTable<number>();
  const buckets = new Array<number>(16).fill(0);
  for (let i = 0; i < 4000; i++) { const id = t.add(i); buckets[id >> 12]!++; t.delete(id); }
  for (const b of buckets) assert.ok(b > 150 && b < 350, `bucket count ${b} of 4000 over 16`);
});

test('randomId16: 16-bit values, spread, across refills of its pool', () => {
  const buckets = new Array<number>(16).fill(0);
  const seen = new Set<number>();
  for (let i = 0; i < 10_000; i++) { // the pool holds 4096: two refills
    const v = randomId16();
    assert.ok(Number.isInteger(v) && v >= 0 && v <= 0xffff, `draw ${v}`);
    buckets[v >> 12]!++;
    seen.add(v);
  }
  for (const b of buckets) assert.ok(b > 450 && b < 800, `bucket count ${b} of 10000 over 16`);
  assert.ok(seen.size > 9000, `${seen.size} distinct of 10000`); // ~9270 expected; a repeating pool gives 4096
});

test('IdTable: refuses more than half of the ID space in flight', () => {
  const t = new IdTable<number>();
  for (let i = 0; i < 32768; i++) t.add(i);
  assert.throws(() => t.add(0), /more than 32768/);
  assert.equal(t.size, 32768);
});

test('GenFifo: order kept across growth and wrap-around; stale entries skipped', () => {
  const f = new GenFifo<{ gen: number; n: number }>();
  const model: { gen: number; n: number }[] = [];
  let n = 0;
  // Interleave pushes and shifts so the ring wraps before and after it grows (64 → 128 → 256).
  for (let round = 0; round < 8; round++) {
    for (let k = 0; k < 50; k++) { const it = { gen: 0, n: n++ }; f.push(it); model.push(it); }
    for (let k = 0; k < 30; k++) { assert.equal(f.peek(), model.shift()); f.shift(); }
    assert.equal(f.length, model.length);
  }
  // Entries whose item moved to another generation are skipped by peek.
  const head = f.peek()!;
  head.gen++;
  assert.equal(f.peek(), model[1]);
  assert.equal(f.length, model.length - 1);
  f.clear();
  assert.equal(f.length, 0);
  assert.equal(f.peek(), undefined);
  f.push(model[5]!);
  assert.equal(f.peek(), model[5]);
});

test('GenFifo: expired prefix in time order, the way the balancer uses it', () => {
  const f = new GenFifo<{ gen: number; t: number }>();
  for (let t = 0; t < 1000; t++) f.push({ gen: 0, t });
  let popped = 0;
  for (let a = f.peek(); a !== undefined && a.t < 600; a = f.peek()) { f.shift(); popped++; }
  assert.equal(popped, 600);
  assert.equal(f.peek()!.t, 600);
  assert.equal(f.length, 400);
});
