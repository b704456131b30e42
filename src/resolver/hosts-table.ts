/**
 * Hosts-file data in typed arrays. Block lists in hosts format run to hundreds of thousands of
 * lines: kept as one RR object, name record and reverse name per line, a 200k-line file took
 * ~157 MB of heap and 1.5 s to build (dnsmasq holds it in ~24 MB); kept in JS maps of strings,
 * still 33 MB, and its build filled the young generation so that every scavenge of a reload
 * copied megabytes (8–16 ms pauses every 40 ms while queries waited).
 *
 * Here names are lower-case bytes in one buffer (an ancestor is a suffix of a name already there
 * and takes no bytes), found through open-addressing hash tables of ids; a name points to a list
 * of address ids, an address to the first name seen for it (its PTR). Nothing per line lives on
 * the JS heap, so the garbage collector has nothing to copy or mark. RRs are made when a question
 * is first routed (the resolver memoises that answer, so once per name and reload, not per query).
 * Written by hand: no library offers a compact string-keyed table for this.
 * Pure: no I/O; the service reads the files and hands their bytes to `addText`.
 */
import { scanHosts, formatIPv4, formatIPv6, type HostsLine } from './hosts.js';
import type { Diagnostic } from '../config/diagnostics.js';

const V4_SUFFIX = '.in-addr.arpa';
const V6_SUFFIX = '.ip6.arpa';
const V4_SUFFIX_BYTES = Buffer.from(V4_SUFFIX, 'latin1');
const V6_SUFFIX_BYTES = Buffer.from(V6_SUFFIX, 'latin1');
/** nFlags bit: the name is a proper ancestor of another (empty non-terminal when it has no data). */
const ANCESTOR = 1;
const FNV_OFFSET = 0x811c9dc5, FNV_PRIME = 0x01000193;

const lower = (c: number) => (c >= 65 && c <= 90 ? c | 0x20 : c);

/** FNV-1a of src[s, e) in lower case (the same as findName's over a lower-case string). */
function hashLower(src: Uint8Array, s: number, e: number): number {
  let h = FNV_OFFSET;
  for (let i = s; i < e; i++) h = Math.imul(h ^ lower(src[i]), FNV_PRIME);
  return h;
}

function grownI32(a: Int32Array, min: number): Int32Array { const b = new Int32Array(Math.max(min, a.length * 2)); b.set(a); return b; }
function grownU8(a: Uint8Array, min: number): Uint8Array { const b = new Uint8Array(Math.max(min, a.length * 2)); b.set(a); return b; }
function grownU32(a: Uint32Array, min: number): Uint32Array { const b = new Uint32Array(Math.max(min, a.length * 2)); b.set(a); return b; }

export class HostsTable {
  // Names: bytes[nOff[id], nOff[id] + nLen[id]), lower case; nHead: first pair or -1.
  private bytes: Uint8Array = new Uint8Array(1 << 16);
  private bytesUsed = 0;
  private nOff: Int32Array = new Int32Array(1024);
  private nLen: Uint8Array = new Uint8Array(1024);
  private nHead: Int32Array = new Int32Array(1024);
  private nFlags: Uint8Array = new Uint8Array(1024);
  /** Each name's hash, so that growing the slots does not hash every name again. */
  private nHash: Uint32Array = new Uint32Array(1024);
  private nCount = 0;
  private withAddresses = 0;
  /** Open addressing: id + 1, 0 for free (so fresh slots are untouched zero pages). */
  private nSlots: Int32Array = new Int32Array(2048);
  // A name's addresses, in file order: pairs (address id, next pair or -1).
  private pAddr: Int32Array = new Int32Array(1024);
  private pNext: Int32Array = new Int32Array(1024);
  private pCount = 0;
  // Addresses: aFam 4|6; aVal the IPv4 number or the IPv6 ordinal in v6 (16 bytes each);
  // aName the first name seen for it.
  private aFam: Uint8Array = new Uint8Array(1024);
  private aVal: Uint32Array = new Uint32Array(1024);
  private aName: Int32Array = new Int32Array(1024);
  private aCount = 0;
  private v6: Uint8Array = new Uint8Array(16 * 256);
  private v6Count = 0;
  private aSlots: Int32Array = new Int32Array(2048);
  private readonly scratch6 = new Uint8Array(16);
  /** A reverse name being written (the longest: 31 nibbles and ".ip6.arpa"). */
  private readonly scratchName = new Uint8Array(80);

  /** Hosts paths (as configured) → their stamp when read, for the file watcher. */
  readonly stamps = new Map<string, string>();
  /** Problems found in the files (bad lines, unreadable files). */
  readonly diagnostics: Diagnostic[] = [];

  /** A table of parsed entries (tests and tools). */
  static from(entries: Iterable<{ address: string; names: string[] }>): HostsTable {
    const t = new HostsTable();
    for (const e of entries) {
      const line = Buffer.from(`${e.address} ${e.names.join(' ')}`, 'latin1');
      t.addText(line, 0, line.length, '<entries>', 1);
    }
    return t;
  }

  /** Hosts lines in buf[from, to); `firstLine` is the number of the line at `from`. */
  addText(buf: Uint8Array, from: number, to: number, file: string, firstLine: number): void {
    scanHosts(buf, from, to, file, firstLine, this.addLine, this.diagnostics);
  }

  /** One line. The first name seen for an address is its PTR name (dnsmasq does the same). */
  private readonly addLine = (buf: Uint8Array, l: HostsLine): void => {
    const a = this.internAddress(l);
    for (let k = 0; k < l.count; k++) {
      const id = this.internName(buf, l.start[k], l.end[k]);
      if (k === 0 && this.aName[a] < 0) this.aName[a] = id;
      this.addPair(id, a);
    }
  };

  /**
   * Makes room for about `lines` more lines at once, before a file is added: growing by doubling
   * as lines come would copy every array and rehash every slot several times over, each time in
   * one go (a 16 ms pause at 130k lines). Room never written costs address space only. Fresh
   * memory is slow to fault in on this VM (~12 µs a page), and hash slots are written all over,
   * so new slot arrays are faulted in here, a piece per yield, rather than by the first slices
   * of lines (which then took 20–30 ms).
   */
  *reserving(lines: number): Generator<void, void> {
    // Most lines have one name: room for a quarter more (aliases, ancestors, reverse parents);
    // a file with more grows the arrays as it is added.
    const more = lines + (lines >> 2) + 1024;
    const names = this.nCount + more, pairs = this.pCount + more, addrs = this.aCount + lines + 1024;
    // One array a step: allocating them all in one step took up to 30 ms here.
    if (names > this.nOff.length) {
      this.nOff = grownI32(this.nOff, names); yield;
      this.nHead = grownI32(this.nHead, names); yield;
      this.nHash = grownU32(this.nHash, names); yield;
      this.nLen = grownU8(this.nLen, names); this.nFlags = grownU8(this.nFlags, names); yield;
    }
    if (this.bytesUsed + 16 * lines > this.bytes.length) { this.bytes = grownU8(this.bytes, this.bytesUsed + 16 * lines); yield; }
    if (pairs > this.pAddr.length) { this.pAddr = grownI32(this.pAddr, pairs); yield; this.pNext = grownI32(this.pNext, pairs); yield; }
    if (addrs > this.aFam.length) {
      this.aVal = grownU32(this.aVal, addrs); yield;
      this.aName = grownI32(this.aName, addrs); this.aFam = grownU8(this.aFam, addrs); yield;
    }
    if (2 * names > this.nSlots.length) { const slots = yield* faultedIn(slotsFor(2 * names)); this.rehashNames(slots); }
    if (2 * addrs > this.aSlots.length) { const slots = yield* faultedIn(slotsFor(2 * addrs)); this.rehashAddresses(slots); }
  }

  /** The same at once (tests and tools). */
  reserve(lines: number): void {
    for (const _ of this.reserving(lines)) { /* no turns to give */ }
  }

  /** Names with addresses and reverse names held. */
  get size(): number { return this.withAddresses + this.aCount; }

  /** Bytes of the arrays in use (logged; room reserved and never written is not counted: it is not resident). */
  get footprint(): number {
    return this.bytesUsed + 14 * this.nCount + 8 * this.pCount + 9 * this.aCount + 16 * this.v6Count
      + 4 * (this.nSlots.length + this.aSlots.length);
  }

  /** The addresses of a lower-case name (IPv6 ones contain ':'), or undefined. */
  addresses(name: string): string | string[] | undefined {
    const id = this.findName(name);
    if (id < 0 || this.nHead[id] < 0) return undefined;
    const p = this.nHead[id];
    if (this.pNext[p] < 0) return this.formatAddress(this.pAddr[p]);
    const out: string[] = [];
    for (let q = p; q >= 0; q = this.pNext[q]) out.push(this.formatAddress(this.pAddr[q]));
    return out;
  }

  /** True when the name is here: with addresses, or as an ancestor of one (forward or reverse). */
  has(name: string): boolean { return this.findName(name) >= 0; }

  /** The PTR name of a reverse name (…in-addr.arpa / …ip6.arpa), or undefined. */
  ptrName(name: string): string | undefined {
    let a = -1;
    if (name.endsWith(V4_SUFFIX)) {
      const labels = name.slice(0, -V4_SUFFIX.length).split('.');
      if (labels.length !== 4) return undefined;
      let v = 0;
      for (let i = 3; i >= 0; i--) { const o = octet(labels[i]); if (o < 0) return undefined; v = v * 256 + o; }
      a = this.findAddress(4, v, null);
    } else if (name.endsWith(V6_SUFFIX)) {
      const labels = name.slice(0, -V6_SUFFIX.length).split('.');
      if (labels.length !== 32) return undefined;
      const b = this.scratch6;
      for (let i = 0; i < 16; i++) {
        const hi = nibble(labels[31 - 2 * i]), lo = nibble(labels[30 - 2 * i]);
        if (hi < 0 || lo < 0) return undefined;
        b[i] = (hi << 4) | lo;
      }
      a = this.findAddress(6, 0, b);
    }
    if (a < 0) return undefined;
    const id = this.aName[a];
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset + this.nOff[id], this.nLen[id]).toString('latin1');
  }

  /**
   * True when `name` is a proper ancestor of a name here, forward or reverse (the reverse tree's
   * inner names, down to the parent of each address's reverse name, are names here too).
   */
  hasBelow(name: string): boolean {
    const id = this.findName(name);
    return id >= 0 && (this.nFlags[id] & ANCESTOR) !== 0;
  }

  private formatAddress(a: number): string {
    return this.aFam[a] === 4 ? formatIPv4(this.aVal[a]) : formatIPv6(this.v6, 16 * this.aVal[a]);
  }

  // --- names ---

  /** The id of a lower-case name, or -1. */
  private findName(name: string): number {
    let h = FNV_OFFSET;
    for (let i = 0; i < name.length; i++) {
      const c = name.charCodeAt(i);
      if (c > 127) return -1;
      h = Math.imul(h ^ c, FNV_PRIME);
    }
    const mask = this.nSlots.length - 1;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const id = this.nSlots[i] - 1;
      if (id < 0) return -1;
      if (this.nLen[id] !== name.length) continue;
      const off = this.nOff[id];
      let k = 0;
      while (k < name.length && this.bytes[off + k] === name.charCodeAt(k)) k++;
      if (k === name.length) return id;
    }
  }

  /**
   * Looks a name src[s, s + len) up (compared in lower case) with its hash: its id, or where it
   * would go as -1 - slot.
   */
  private probe(src: Uint8Array, s: number, len: number, h: number): number {
    const mask = this.nSlots.length - 1;
    for (let slot = h & mask; ; slot = (slot + 1) & mask) {
      const id = this.nSlots[slot] - 1;
      if (id < 0) return -1 - slot;
      if (this.nLen[id] !== len) continue;
      const off = this.nOff[id];
      let k = 0;
      while (k < len && this.bytes[off + k] === lower(src[s + k])) k++;
      if (k === len) return id;
    }
  }

  /** The id of the name in buf[s, e) (any case), added with its ancestors if new. */
  private internName(buf: Uint8Array, s: number, e: number): number {
    const len = e - s;
    const h = hashLower(buf, s, e);
    const found = this.probe(buf, s, len, h);
    if (found >= 0) return found;
    if (this.bytesUsed + len > this.bytes.length) this.bytes = grownU8(this.bytes, this.bytesUsed + len);
    const off = this.bytesUsed;
    for (let k = 0; k < len; k++) this.bytes[off + k] = lower(buf[s + k]);
    this.bytesUsed += len;
    const id = this.newName(off, len, -1 - found, h);
    // Ancestors are suffixes of these bytes, added referring to them; one already known has its
    // own ancestors known.
    for (let k = off; k < off + len; k++) {
      if (this.bytes[k] !== 46) continue;
      const hs = hashLower(this.bytes, k + 1, off + len);
      let a = this.probe(this.bytes, k + 1, off + len - k - 1, hs);
      const known = a >= 0;
      if (!known) a = this.newName(k + 1, off + len - k - 1, -1 - a, hs);
      this.nFlags[a] |= ANCESTOR;
      if (known) break;
    }
    return id;
  }

  private newName(off: number, len: number, slot: number, hash: number): number {
    const id = this.nCount++;
    if (id === this.nOff.length) {
      this.nOff = grownI32(this.nOff, id + 1); this.nHead = grownI32(this.nHead, id + 1);
      this.nLen = grownU8(this.nLen, id + 1); this.nFlags = grownU8(this.nFlags, id + 1);
      this.nHash = grownU32(this.nHash, id + 1);
    }
    this.nOff[id] = off; this.nLen[id] = len; this.nHead[id] = -1; this.nFlags[id] = 0; this.nHash[id] = hash;
    this.nSlots[slot] = id + 1;
    if (2 * this.nCount > this.nSlots.length) this.rehashNames();
    return id;
  }

  /** Moves the names to new (empty, larger) slots: twice as many by default. */
  private rehashNames(slots: Int32Array = new Int32Array(2 * this.nSlots.length)): void {
    const mask = slots.length - 1;
    for (let id = 0; id < this.nCount; id++) {
      let slot = this.nHash[id] & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = id + 1;
    }
    this.nSlots = slots;
  }

  private addPair(id: number, a: number): void {
    let last = -1;
    for (let p = this.nHead[id]; p >= 0; p = this.pNext[p]) {
      if (this.pAddr[p] === a) return; // duplicate lines collapse into one address
      last = p;
    }
    const p = this.pCount++;
    if (p === this.pAddr.length) { this.pAddr = grownI32(this.pAddr, p + 1); this.pNext = grownI32(this.pNext, p + 1); }
    this.pAddr[p] = a; this.pNext[p] = -1;
    if (last < 0) { this.nHead[id] = p; this.withAddresses++; } else this.pNext[last] = p;
  }

  // --- addresses ---

  private hashAddress(family: 4 | 6, v4: number, v6: Uint8Array | null, off: number): number {
    if (family === 4) return Math.imul(v4 ^ (v4 >>> 16), 0x45d9f3b) ^ 4;
    let h = FNV_OFFSET;
    for (let i = 0; i < 16; i++) h = Math.imul(h ^ v6![off + i], FNV_PRIME);
    return h;
  }

  private sameAddress(a: number, family: 4 | 6, v4: number, v6: Uint8Array | null, off: number): boolean {
    if (this.aFam[a] !== family) return false;
    if (family === 4) return this.aVal[a] === v4;
    const base = 16 * this.aVal[a];
    for (let i = 0; i < 16; i++) if (this.v6[base + i] !== v6![off + i]) return false;
    return true;
  }

  private findAddress(family: 4 | 6, v4: number, v6: Uint8Array | null): number {
    const mask = this.aSlots.length - 1;
    for (let slot = this.hashAddress(family, v4, v6, 0) & mask; ; slot = (slot + 1) & mask) {
      const a = this.aSlots[slot] - 1;
      if (a < 0) return -1;
      if (this.sameAddress(a, family, v4, v6, 0)) return a;
    }
  }

  private internAddress(l: HostsLine): number {
    const v6 = l.family === 6 ? l.v6 : null;
    const mask = this.aSlots.length - 1;
    let slot = this.hashAddress(l.family, l.v4, v6, 0) & mask;
    for (; ; slot = (slot + 1) & mask) {
      const a = this.aSlots[slot] - 1;
      if (a < 0) break;
      if (this.sameAddress(a, l.family, l.v4, v6, 0)) return a;
    }
    const a = this.aCount++;
    if (a === this.aFam.length) {
      this.aFam = grownU8(this.aFam, a + 1); this.aVal = grownU32(this.aVal, a + 1); this.aName = grownI32(this.aName, a + 1);
    }
    this.aFam[a] = l.family;
    this.aName[a] = -1;
    if (l.family === 4) {
      this.aVal[a] = l.v4;
    } else {
      if (16 * (this.v6Count + 1) > this.v6.length) this.v6 = grownU8(this.v6, 16 * (this.v6Count + 1));
      this.v6.set(l.v6, 16 * this.v6Count);
      this.aVal[a] = this.v6Count++;
    }
    this.aSlots[slot] = a + 1;
    if (2 * this.aCount > this.aSlots.length) this.rehashAddresses();
    this.addReverseParent(l);
    return a;
  }

  /**
   * The parent of a new address's reverse name (c.b.a.in-addr.arpa for a.b.c.d), as a name
   * marked ancestor, with its own ancestors up to arpa: the reverse tree's inner names exist.
   */
  private addReverseParent(l: HostsLine): void {
    const out = this.scratchName;
    let n = 0;
    if (l.family === 4) {
      n = putOctet(out, n, (l.v4 >>> 8) & 255); out[n++] = 46;
      n = putOctet(out, n, (l.v4 >>> 16) & 255); out[n++] = 46;
      n = putOctet(out, n, l.v4 >>> 24);
      out.set(V4_SUFFIX_BYTES, n); n += V4_SUFFIX_BYTES.length;
    } else {
      for (let k = 30; k >= 0; k--) {
        const v = k & 1 ? l.v6[k >> 1] & 15 : l.v6[k >> 1] >> 4;
        out[n++] = v < 10 ? 48 + v : 87 + v;
        if (k > 0) out[n++] = 46;
      }
      out.set(V6_SUFFIX_BYTES, n); n += V6_SUFFIX_BYTES.length;
    }
    const id = this.internName(out, 0, n);
    this.nFlags[id] |= ANCESTOR;
  }

  private rehashAddresses(slots: Int32Array = new Int32Array(2 * this.aSlots.length)): void {
    const mask = slots.length - 1;
    for (let a = 0; a < this.aCount; a++) {
      const six = this.aFam[a] === 6;
      let slot = this.hashAddress(six ? 6 : 4, this.aVal[a], six ? this.v6 : null, six ? 16 * this.aVal[a] : 0) & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = a + 1;
    }
    this.aSlots = slots;
  }
}

/** Empty slots, a power of two ≥ min. */
function slotsFor(min: number): Int32Array {
  let size = 2048;
  while (size < min) size *= 2;
  return new Int32Array(size);
}

/** Writes a fresh array 256 KB at a time, yielding in between, so its pages are faulted in. */
function* faultedIn(a: Int32Array): Generator<void, Int32Array> {
  const step = 1 << 16;
  for (let at = 0; at < a.length; at += step) { a.fill(0, at, at + step); yield; }
  return a;
}

/** Writes 0–255 in decimal at out[n]; gives the new end. */
function putOctet(out: Uint8Array, n: number, v: number): number {
  if (v >= 100) out[n++] = 48 + Math.floor(v / 100);
  if (v >= 10) out[n++] = 48 + (Math.floor(v / 10) % 10);
  out[n++] = 48 + (v % 10);
  return n;
}

/** A decimal octet label (no leading zero: "01" is another name than "1"), or -1. */
function octet(label: string): number {
  const v = Number(label);
  return v >= 0 && v <= 255 && String(v) === label ? v : -1;
}

/** A one-hex-digit label (lower case), or -1. */
function nibble(label: string): number {
  if (label.length !== 1) return -1;
  const c = label.charCodeAt(0);
  return c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1;
}
