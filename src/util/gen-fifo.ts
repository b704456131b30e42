/**
 * Deadline queues for the DNS paths (the balancer's attempts and queries, the resolver's
 * forwarded queries): pooled items enter in time order and are dropped lazily once they move on.
 */

/**
 * FIFO of (item, generation) pairs with lazy deletion: an entry whose item has moved on to
 * another generation (answered, recycled) is skipped when it reaches the head. Items enter in
 * time order, so "expired" is always a prefix. A ring that doubles when full and never shrinks:
 * once it has grown to the peak number of entries, push and shift allocate nothing (an array
 * with push/splice reallocated its backing store every few thousand queries, and those stores
 * lived long enough to be promoted, which fed the old generation's collections).
 */
export class GenFifo<T extends { gen: number }> {
  private items: (T | undefined)[] = new Array<T | undefined>(64).fill(undefined);
  private gens = new Float64Array(64);
  private mask = 63;
  private head = 0;
  private n = 0;
  push(item: T): void {
    if (this.n > this.mask) this.grow();
    const i = (this.head + this.n) & this.mask;
    this.items[i] = item;
    this.gens[i] = item.gen;
    this.n++;
  }
  /** The live head item (skipping dead entries), or undefined. */
  peek(): T | undefined {
    while (this.n > 0) {
      const it = this.items[this.head]!;
      if (it.gen === this.gens[this.head]) return it;
      this.shift();
    }
    return undefined;
  }
  /** Drops the head entry (live or not). */
  shift(): void {
    if (this.n === 0) return;
    this.items[this.head] = undefined;
    this.head = (this.head + 1) & this.mask;
    this.n--;
  }
  get length(): number { return this.n; }
  clear(): void {
    while (this.n > 0) this.shift();
    this.head = 0;
  }
  private grow(): void {
    const cap = (this.mask + 1) * 2;
    const items = new Array<T | undefined>(cap).fill(undefined);
    const gens = new Float64Array(cap);
    for (let k = 0; k < this.n; k++) {
      const i = (this.head + k) & this.mask;
      items[k] = this.items[i];
      gens[k] = this.gens[i]!;
    }
    this.items = items;
    this.gens = gens;
    this.mask = cap - 1;
    this.head = 0;
  }
}
