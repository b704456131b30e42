/**
 * Local data: hosts files, inline records, wildcard domains and local-only domains, as one
 * immutable lookup table built at start and on every reload (then swapped atomically).
 * Pure: no I/O here; the service reads the files and hands over their text.
 *
 * Answers follow DNS semantics: a name that exists with other types gives NODATA (NOERROR, empty),
 * a name that does not exist under a local domain gives NXDOMAIN; names that are not ours give
 * `null` and go on to the cache and upstreams. Local data always wins over cache and upstream.
 */
import { isIP } from 'node:net';
import type { RecordType } from 'dns-packet';
import type { RR } from '../dns/message.js';
import type { LocalRecordConfig, ResolverConfig } from '../config/schema.js';
import type { Diagnostic } from '../config/diagnostics.js';
import { reverseName, type HostsEntry } from './hosts.js';
import { recordData } from '../dns/records.js';

/** Domain answered locally (NXDOMAIN) by every resolver, for health probes. */
export const HEALTH_DOMAIN = 'hadns.invalid';

export type LocalAnswer =
  | { kind: 'answer'; answers: RR[] }
  | { kind: 'nodata' }
  | { kind: 'nxdomain' };

interface NameData {
  rrs: RR[];
  cname?: RR;
}

const T_A = 1, T_AAAA = 28, T_CNAME = 5, T_ANY = 255;
const TYPE_OF: Record<string, number> = { A: 1, AAAA: 28, CNAME: 5, TXT: 16, MX: 15, SRV: 33, PTR: 12 };

import { lowerName } from '../dns/records.js';

export interface LocalSources {
  records: LocalRecordConfig[];
  hosts: HostsEntry[];
  wildcards: ResolverConfig['wildcards'];
  localDomains: string[];
  localTtl: number;
}

export class LocalData {
  private readonly names = new Map<string, NameData>();
  private readonly wildcards = new Map<string, { a: string[]; aaaa: string[]; nx: boolean }>();
  private readonly localDomains = new Set<string>();
  /** Every proper ancestor of a local name (empty non-terminals answer NODATA, not NXDOMAIN). */
  private readonly ancestors = new Set<string>();
  readonly diagnostics: Diagnostic[] = [];
  private readonly ttl: number;

  /** Builds the table at once (`building` is the same in slices). */
  constructor(src: LocalSources, empty = false) {
    this.ttl = src.localTtl;
    if (!empty) for (const _ of this.fill(src, Infinity)) { /* one step */ }
  }

  /**
   * Builds the table, yielding after every `slice` hosts entries, so that a large file is loaded
   * between other work (`yield* LocalData.building(src, n)` gives the table).
   */
  static *building(src: LocalSources, slice: number): Generator<void, LocalData> {
    const local = new LocalData(src, true);
    yield* local.fill(src, slice);
    return local;
  }

  /** Names in the table (hosts names, their PTR names, records). */
  get size(): number { return this.names.size; }

  private *fill(src: LocalSources, slice: number): Generator<void, void> {
    const ttl = this.ttl;
    let k = 0;
    for (const h of src.hosts) {
      if (++k % slice === 0) yield;
      for (const name of h.names) {
        this.add({ name, type: h.family === 4 ? 'A' : 'AAAA', ttl, data: h.address });
      }
      // PTR: the first name seen for an address is canonical (dnsmasq does the same).
      const rev = reverseName(h.address);
      if (!this.names.get(rev)?.rrs.some((r) => r.type === 'PTR')) {
        this.add({ name: rev, type: 'PTR', ttl, data: h.names[0] });
      }
    }
    for (const r of src.records) {
      try {
        const name = lowerName(r.name);
        const data = recordData(r.type, r.value);
        this.add({ name, type: r.type as RecordType, ttl: r.ttl ?? ttl, data });
      } catch (e) {
        this.diagnostics.push({ file: '<config>', line: 1, severity: 'error', message: `record ${r.name} ${r.type}: ${(e as Error).message}` });
      }
    }
    for (const w of src.wildcards) {
      const d = lowerName(w.domain);
      const cur = this.wildcards.get(d) ?? { a: [], aaaa: [], nx: false };
      if (w.addresses.length === 0) cur.nx = true;
      for (const a of w.addresses) (isIP(a) === 4 ? cur.a : cur.aaaa).push(isIP(a) === 6 ? a.toLowerCase() : a);
      this.wildcards.set(d, cur);
    }
    for (const d of src.localDomains) this.localDomains.add(lowerName(d));
    // Reserved (RFC 2606 .invalid): the node's health probe asks here and gets a local NXDOMAIN,
    // so the check proves the socket and the pipeline without depending on any upstream.
    this.localDomains.add(HEALTH_DOMAIN);
  }

  private add(rr: RR): void {
    let nd = this.names.get(rr.name);
    if (!nd) {
      nd = { rrs: [] };
      this.names.set(rr.name, nd);
      let n = rr.name;
      for (let i = n.indexOf('.'); i >= 0; i = n.indexOf('.')) { n = n.slice(i + 1); this.ancestors.add(n); }
    }
    if (rr.type === 'CNAME') {
      if (nd.cname) { this.diagnostics.push({ file: '<config>', line: 1, severity: 'warning', message: `${rr.name}: more than one CNAME, first kept` }); return; }
      nd.cname = rr;
      return;
    }
    // Duplicate A/AAAA from several hosts lines collapse into one RR.
    if (nd.rrs.some((x) => x.type === rr.type && JSON.stringify(x.data) === JSON.stringify(rr.data))) return;
    nd.rrs.push(rr);
  }

  /** True when `name` is at or below a local-only domain (never forwarded). */
  isLocalOnly(name: string): boolean {
    let n = name;
    for (;;) {
      if (this.localDomains.has(n)) return true;
      const i = n.indexOf('.');
      if (i < 0) return false;
      n = n.slice(i + 1);
    }
  }

  /** Looks up a lower-case name (no trailing dot) and numeric qtype. */
  lookup(name: string, qtype: number): LocalAnswer | null {
    const nd = this.names.get(name);
    if (nd) return this.answerFrom(name, nd, qtype);
    // Wildcard domains: the most specific matching domain wins.
    let n = name;
    for (;;) {
      const w = this.wildcards.get(n);
      if (w) {
        if (w.nx) return { kind: 'nxdomain' };
        const ttl = this.ttl;
        const addrs = qtype === T_A ? w.a : qtype === T_AAAA ? w.aaaa : null;
        if (addrs && addrs.length) {
          return { kind: 'answer', answers: addrs.map((a) => ({ name, type: qtype === T_A ? 'A' : 'AAAA', ttl, data: a }) as RR) };
        }
        if (qtype === T_ANY) {
          const all: RR[] = [...w.a.map((a) => ({ name, type: 'A', ttl, data: a }) as RR), ...w.aaaa.map((a) => ({ name, type: 'AAAA', ttl, data: a }) as RR)];
          if (all.length) return { kind: 'answer', answers: all };
        }
        // The other family has addresses (or another type was asked): the name exists → NODATA.
        if (w.a.length || w.aaaa.length) return { kind: 'nodata' };
        break;
      }
      const i = n.indexOf('.');
      if (i < 0) break;
      n = n.slice(i + 1);
    }
    if (this.ancestors.has(name)) return { kind: 'nodata' };
    if (this.isLocalOnly(name)) return { kind: 'nxdomain' };
    return null;
  }

  private answerFrom(name: string, nd: NameData, qtype: number): LocalAnswer {
    if (nd.cname && qtype !== T_CNAME) {
      // Follow the chain through local data (bounded); what is not local ends the chain.
      const answers: RR[] = [nd.cname];
      let target = nd.cname.data as string;
      for (let hops = 0; hops < 8; hops++) {
        const t = this.names.get(target);
        if (!t) break;
        if (t.cname) { answers.push(t.cname); target = t.cname.data as string; continue; }
        for (const rr of t.rrs) if (qtype === T_ANY || TYPE_OF[rr.type] === qtype) answers.push(rr);
        break;
      }
      return { kind: 'answer', answers };
    }
    if (qtype === T_CNAME && nd.cname) return { kind: 'answer', answers: [nd.cname] };
    const out = qtype === T_ANY ? nd.rrs.slice() : nd.rrs.filter((rr) => TYPE_OF[rr.type] === qtype);
    if (out.length) return { kind: 'answer', answers: out };
    return { kind: 'nodata' };
  }

}

/** Private ranges whose reverse lookups bogus-priv keeps local (RFC 1918, link-local, ULA, loopback). */
export function isPrivateReverse(name: string): boolean {
  const n = name.toLowerCase();
  if (n.endsWith('.in-addr.arpa')) {
    const p = n.slice(0, -'.in-addr.arpa'.length).split('.').reverse().map(Number);
    if (p.length === 0 || p.some((x) => Number.isNaN(x))) return false;
    if (p[0] === 10 || p[0] === 127) return true;
    if (p[0] === 192 && p[1] === 168) return true;
    if (p[0] === 172 && p[1] !== undefined && p[1] >= 16 && p[1] <= 31) return true;
    if (p[0] === 169 && p[1] === 254) return true;
    return false;
  }
  if (n.endsWith('.ip6.arpa')) {
    const nib = n.slice(0, -'.ip6.arpa'.length).split('.').reverse().join('');
    return nib.startsWith('fd') || nib.startsWith('fc') || nib.startsWith('fe8') || nib.startsWith('fe9')
      || nib.startsWith('fea') || nib.startsWith('feb') || nib === '0'.repeat(31) + '1';
  }
  return false;
}

