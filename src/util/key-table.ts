/**
 * A string-keyed table for entries that come and go once per query (the resolver's in-flight
 * questions). Hand-written because a Map does not fit that use: a long-lived Map sits in V8's old
 * generation, and every time a set-and-delete-per-query workload makes it rehash (deleted
 * entries fill its table, or it shrinks after a burst), V8 allocates the new backing table in the
 * old generation as well. At 10k forwarded queries a second that was ~1 MB of old-generation
 * garbage a second, and a full collection every ~20 s that held the resolver for 20–30 ms.
 *
 * Open addressing with linear probing and backward-shift deletion (no tombstones), kept at most
 * half full; it doubles when needed and never shrinks, so once it has grown to the peak number of
 * entries nothing is allocated. Hashes are FNV-1a over the key's UTF-16 code units with a random
 * seed per table, so crafted keys cannot be aimed at one probe chain; callers bound the number of
 * entries anyway (resolver.max_inflight).
 */
import { randomInt } from 'node:crypto';

const FNV_PRIME = 0x01000193;

export class KeyTable<V> {
  private keys: (string | null)[];
  private vals: (V | null)[];
  private hashes: Int32Array;
  private mask: number;
  private n = 0;
  private readonly seed = randomInt(0x7fffffff);

  constructor(initialSlots = 64) {
    let cap = 16;
    while (cap < initialSlots) cap *= 2;
    this.keys = new Array<string | null>(cap).fill(null);
    this.vals = new Array<V | null>(cap).fill(null);
    this.hashes = new Int32Array(cap);
    this.mask = cap - 1;
  }

  get size(): number { return this.n; }

  private hash(key: string): number {
    let h = 0x811c9dc5 ^ this.seed;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), FNV_PRIME);
    return h ^ (h >>> 15);
  }

  /** The slot holding `key`, or -1. */
  private find(key: string, h: number): number {
    const mask = this.mask, keys = this.keys, hashes = this.hashes;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const k = keys[i];
      if (k === null) return -1;
      if (hashes[i] === h && k === key) return i;
    }
  }

  get(key: string): V | undefined {
    const i = this.find(key, this.hash(key));
    return i < 0 ? undefined : this.vals[i]!;
  }

  has(key: string): boolean { return this.find(key, this.hash(key)) >= 0; }

  /** Adds or replaces the entry for `key`. */
  set(key: string, v: V): void {
    const h = this.hash(key);
    const at = this.find(key, h);
    if (at >= 0) { this.vals[at] = v; return; }
    if ((this.n + 1) * 2 > this.mask + 1) this.grow();
    this.place(key, v, h);
    this.n++;
  }

  private place(key: string, v: V, h: number): void {
    const mask = this.mask;
    let i = h & mask;
    while (this.keys[i] !== null) i = (i + 1) & mask;
    this.keys[i] = key;
    this.vals[i] = v;
    this.hashes[i] = h;
  }

  /** Removes `key`; true when it was there. */
  delete(key: string): boolean {
    let i = this.find(key, this.hash(key));
    if (i < 0) return false;
    const mask = this.mask, keys = this.keys, vals = this.vals, hashes = this.hashes;
    // Backward shift: move later entries of the probe chain into the hole when that brings them
    // no further from their home slot, so that lookups never need tombstones.
    for (let j = (i + 1) & mask; keys[j] !== null; j = (j + 1) & mask) {
      const home = hashes[j]! & mask;
      const between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
      if (between) continue;
      keys[i] = keys[j]!; vals[i] = vals[j]!; hashes[i] = hashes[j]!;
      i = j;
    }
    keys[i] = null;
    vals[i] = null;
    this.n--;
    return true;
  }

  clear(): void {
    this.keys.fill(null);
    this.vals.fill(null);
    this.n = 0;
  }

  private grow(): void {
    const oldKeys = this.keys, oldVals = this.vals, oldHashes = this.hashes;
    const cap = (this.mask + 1) * 2;
    this.keys = new Array<string | null>(cap).fill(null);
    this.vals = new Array<V | null>(cap).fill(null);
    this.hashes = new Int32Array(cap);
    this.mask = cap - 1;
    for (let i = 0; i < oldKeys.length; i++) {
      const k = oldKeys[i];
      if (k !== null) this.place(k, oldVals[i]!, oldHashes[i]!);
    }
  }
}
