/**
 * Hosts-file data kept as compactly as a lookup table allows. Block lists in hosts format run to
 * hundreds of thousands of lines; one RR object, name record and reverse name per line made a
 * 200k-line file cost ~157 MB of heap (dnsmasq holds it in ~24 MB). Here a line costs a map entry
 * per name (name → its address string, or the few addresses it has), one per address (reverse key
 * → first name) and the ancestors of its names; RRs are made when a question is first routed (the
 * resolver memoises that answer, so a name's RRs are made once per reload, not per query).
 * Pure: no I/O; the service reads the files and feeds `add`.
 */
import { expandIPv6 } from './hosts.js';
import type { Diagnostic } from '../config/diagnostics.js';

const V4_SUFFIX = '.in-addr.arpa';
const V6_SUFFIX = '.ip6.arpa';

export class HostsTable {
  /** Name → its address, or its addresses in file order when it has more than one. */
  private readonly byName = new Map<string, string | string[]>();
  /** Reverse key (IPv4 dotted, IPv6 32 hex digits) → the first name seen for that address. */
  private readonly byKey = new Map<string, string>();
  /** Proper ancestors of the names (empty non-terminals: NODATA, not NXDOMAIN). */
  private readonly ancestors = new Set<string>();
  /** Reverse keys, for the empty non-terminals of the reverse tree (sorted by seal()). */
  private v4 = new Uint32Array(1024);
  private v4Count = 0;
  private v6: string[] = [];
  /** Hosts paths (as configured) → their stamp when read, for the file watcher. */
  readonly stamps = new Map<string, string>();
  /** Problems found in the files (bad lines, unreadable files). */
  readonly diagnostics: Diagnostic[] = [];

  /** A table of parsed entries, sealed (tests and tools). */
  static from(entries: Iterable<{ address: string; family: 4 | 6; names: string[] }>): HostsTable {
    const t = new HostsTable();
    for (const e of entries) t.add(e.address, e.family, e.names);
    t.seal();
    return t;
  }

  /** One hosts line. The first name seen for an address is its PTR name (dnsmasq does the same). */
  add(address: string, family: 4 | 6, names: string[]): void {
    for (const name of names) {
      const cur = this.byName.get(name);
      if (cur === undefined) {
        this.byName.set(name, address);
        for (let i = name.indexOf('.'); i >= 0; i = name.indexOf('.', i + 1)) this.ancestors.add(name.slice(i + 1));
      } else if (typeof cur === 'string') {
        // Duplicate lines collapse into one address.
        if (cur !== address) this.byName.set(name, [cur, address]);
      } else if (!cur.includes(address)) {
        cur.push(address);
      }
    }
    const key = family === 4 ? address : expandIPv6(address);
    if (this.byKey.has(key)) return;
    this.byKey.set(key, names[0]);
    if (family === 6) { this.v6.push(key); return; }
    if (this.v4Count === this.v4.length) { const grown = new Uint32Array(this.v4.length * 2); grown.set(this.v4); this.v4 = grown; }
    this.v4[this.v4Count++] = ipv4Number(address);
  }

  /** Done adding: sorts the reverse keys. */
  seal(): void {
    this.v4 = this.v4.slice(0, this.v4Count).sort();
    this.v6.sort();
  }

  /** Names and reverse names held. */
  get size(): number { return this.byName.size + this.byKey.size; }

  /** The addresses of a lower-case name (IPv6 ones contain ':'), or undefined. */
  addresses(name: string): string | readonly string[] | undefined { return this.byName.get(name); }

  /** The PTR name of a reverse name (…in-addr.arpa / …ip6.arpa), or undefined. */
  ptrName(name: string): string | undefined {
    const key = reverseKey(name);
    return key === null ? undefined : this.byKey.get(key);
  }

  /** True when `name` is a proper ancestor of a name here, forward or reverse. */
  hasBelow(name: string): boolean {
    if (this.ancestors.has(name)) return true;
    if (name === 'arpa') return this.v4Count > 0 || this.v6.length > 0;
    if (name === 'in-addr.arpa') return this.v4Count > 0;
    if (name === 'ip6.arpa') return this.v6.length > 0;
    if (name.endsWith(V4_SUFFIX)) {
      const labels = name.slice(0, -V4_SUFFIX.length).split('.');
      if (labels.length > 3) return false;
      let lo = 0;
      for (let i = labels.length - 1; i >= 0; i--) {
        const v = Number(labels[i]);
        if (!(v >= 0 && v <= 255) || String(v) !== labels[i]) return false;
        lo = lo * 256 + v;
      }
      const span = 256 ** (4 - labels.length);
      lo *= span;
      const i = lowerBound(this.v4, lo);
      return i < this.v4Count && this.v4[i] < lo + span;
    }
    if (name.endsWith(V6_SUFFIX)) {
      const labels = name.slice(0, -V6_SUFFIX.length).split('.');
      if (labels.length > 31) return false;
      let prefix = '';
      for (let i = labels.length - 1; i >= 0; i--) {
        if (!/^[0-9a-f]$/.test(labels[i])) return false;
        prefix += labels[i];
      }
      const i = lowerBound(this.v6, prefix);
      return i < this.v6.length && this.v6[i].startsWith(prefix);
    }
    return false;
  }
}

/** A valid dotted IPv4 address as a number. */
function ipv4Number(a: string): number {
  let n = 0, octet = 0;
  for (let i = 0; i < a.length; i++) {
    const c = a.charCodeAt(i);
    if (c === 46) { n = n * 256 + octet; octet = 0; } else octet = octet * 10 + c - 48;
  }
  return n * 256 + octet;
}

/** The reverse key of a complete reverse name, or null (a label with a leading zero is no match). */
function reverseKey(name: string): string | null {
  if (name.endsWith(V4_SUFFIX)) {
    const labels = name.slice(0, -V4_SUFFIX.length).split('.');
    if (labels.length !== 4) return null;
    for (const l of labels) { const v = Number(l); if (!(v >= 0 && v <= 255) || String(v) !== l) return null; }
    return `${labels[3]}.${labels[2]}.${labels[1]}.${labels[0]}`;
  }
  if (name.endsWith(V6_SUFFIX)) {
    const labels = name.slice(0, -V6_SUFFIX.length).split('.');
    if (labels.length !== 32) return null;
    let key = '';
    for (let i = 31; i >= 0; i--) { if (!/^[0-9a-f]$/.test(labels[i])) return null; key += labels[i]; }
    return key;
  }
  return null;
}

function lowerBound<T extends number | string>(a: ArrayLike<T>, x: T): number {
  let lo = 0, hi = a.length;
  while (lo < hi) { const m = (lo + hi) >>> 1; if (a[m] < x) lo = m + 1; else hi = m; }
  return lo;
}
