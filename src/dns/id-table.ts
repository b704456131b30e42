/**
 * The in-flight table of one upstream socket: 16-bit DNS message ID → pending entry.
 *
 * Written by hand because it sits on the per-query path and a Map did not fit it: a Map that
 * sees a set and a delete per query keeps rehashing (deleted entries count until the table is
 * rebuilt), which allocated a new backing table every few hundred queries.
 *
 * The trick: we choose the IDs. The table has a power-of-two number of slots and an entry lives
 * in slot `id & mask`; `add` draws a random ID and walks forward to the first ID whose slot is
 * free. So there are no collisions and no probing on lookup: `get` is one array read and one
 * compare. Growing doubles the slots; two IDs with different low bits still differ in one more
 * bit, so every entry keeps a slot of its own. It is kept at most half full, so an ID is drawn
 * from at least half of the 65536 values, as random as the Map-and-retry it replaces.
 */
import { randomFillSync } from 'node:crypto';

/*
 * IDs come from the OS CSPRNG, drawn in bulk: one getrandom per 4096 IDs and nothing allocated
 * per draw. Math.random (xorshift128+) is predictable from a few of its outputs, which would hand
 * an off-path spoofer the next IDs, and its double result is a heap number per call when the
 * caller is not inlined.
 */
const ID_POOL = new Uint16Array(4096);
let idPoolAt = ID_POOL.length;

/** A uniformly random 16-bit value from the OS CSPRNG. */
export function randomId16(): number {
  if (idPoolAt === ID_POOL.length) {
    randomFillSync(ID_POOL);
    idPoolAt = 0;
  }
  return ID_POOL[idPoolAt++]!;
}

export class IdTable<T> {
  private vals: (T | null)[];
  private ids: Uint16Array;
  private mask: number;
  private n = 0;

  constructor(initialSlots = 64) {
    let cap = 16;
    while (cap < initialSlots && cap < 65536) cap *= 2;
    this.vals = new Array<T | null>(cap).fill(null);
    this.ids = new Uint16Array(cap);
    this.mask = cap - 1;
  }

  /** Entries in flight. */
  get size(): number { return this.n; }

  /**
   * Registers `v` under a fresh random ID and returns the ID. The caller keeps `size` well under
   * 32768 (the table never fills more than half of the ID space). `draw` (16 bits) is for tests.
   */
  add(v: T, draw: number = randomId16()): number {
    if (this.n * 2 >= this.mask + 1 && this.mask < 65535) this.grow();
    if (this.n >= 32768) throw new RangeError('IdTable: more than 32768 IDs in flight');
    let id = draw & 0xffff;
    while (this.vals[id & this.mask] !== null) id = (id + 1) & 0xffff;
    const s = id & this.mask;
    this.vals[s] = v;
    this.ids[s] = id;
    this.n++;
    return id;
  }

  /** The entry registered under `id`, or undefined (a stray or late answer). */
  get(id: number): T | undefined {
    const s = id & this.mask;
    const v = this.vals[s];
    return v !== null && this.ids[s] === id ? v : undefined;
  }

  /** Removes `id` if it is registered; true when it was. */
  delete(id: number): boolean {
    const s = id & this.mask;
    if (this.vals[s] === null || this.ids[s] !== id) return false;
    this.vals[s] = null;
    this.n--;
    return true;
  }

  /** A snapshot of the entries (for a channel that died: its queries go elsewhere). */
  values(): T[] {
    const out: T[] = [];
    for (const v of this.vals) if (v !== null) out.push(v);
    return out;
  }

  private grow(): void {
    const cap = (this.mask + 1) * 2;
    const vals = new Array<T | null>(cap).fill(null);
    const ids = new Uint16Array(cap);
    const mask = cap - 1;
    for (let s = 0; s <= this.mask; s++) {
      const v = this.vals[s];
      if (v === null) continue;
      const id = this.ids[s]!;
      vals[id & mask] = v;
      ids[id & mask] = id;
    }
    this.vals = vals;
    this.ids = ids;
    this.mask = mask;
  }
}
