/**
 * Local data: hosts files, inline records, wildcard domains and local-only domains, as one
 * immutable lookup table built at start and on every reload (then swapped atomically). The hosts
 * part is a HostsTable of its own (compact, built in slices, and kept when only records change);
 * records, wildcards and local domains are few and built here at once.
 * Pure: no I/O here; the service reads the files and hands over their data.
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
import { HostsTable } from './hosts-table.js';
import { SuffixFilter } from '../dns/suffix-filter.js';
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
  hosts: HostsTable;
  wildcards: ResolverConfig['wildcards'];
  localDomains: string[];
  localTtl: number;
}

export class LocalData {
  private readonly names = new Map<string, NameData>();
  private readonly wildcards = new Map<string, { a: string[]; aaaa: string[]; nx: boolean }>();
  private readonly localDomains = new Set<string>();
  /** Skips the suffix walks over wildcards and local-only domains for names none can match. */
  private readonly wildcardFilter: SuffixFilter;
  private readonly localOnlyFilter: SuffixFilter;
  /** Every proper ancestor of a local name (empty non-terminals answer NODATA, not NXDOMAIN). */
  private readonly ancestors = new Set<string>();
  readonly diagnostics: Diagnostic[] = [];
  private readonly ttl: number;
  /** The hosts files' data (shared with the next tables when only records change). */
  readonly hosts: HostsTable;

  constructor(src: LocalSources) {
    this.ttl = src.localTtl;
    this.hosts = src.hosts;
    const ttl = this.ttl;
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
    this.wildcardFilter = new SuffixFilter(this.wildcards.keys());
    this.localOnlyFilter = new SuffixFilter(this.localDomains);
  }

  /** Names in the table (hosts names, their PTR names, records). */
  get size(): number { return this.names.size + this.hosts.size; }

  /**
   * A name's data: the hosts files' A/AAAA (or PTR) first, then the records' (duplicates of a
   * hosts RR left out), as when both went into one table in that order.
   */
  private nameData(name: string): NameData | undefined {
    const rec = this.names.get(name);
    const h = this.hostsRrs(name);
    if (h === null) return rec;
    if (rec === undefined) return { rrs: h };
    for (const rr of rec.rrs) if (!h.some((x) => sameRr(x, rr))) h.push(rr);
    return { rrs: h, cname: rec.cname };
  }

  private hostsRrs(name: string): RR[] | null {
    const ttl = this.ttl;
    let out: RR[] | null = null;
    const a = this.hosts.addresses(name);
    if (a !== undefined) {
      out = [];
      for (const data of typeof a === 'string' ? [a] : a) out.push({ name, type: data.includes(':') ? 'AAAA' : 'A', ttl, data } as RR);
    }
    if (name.endsWith('.arpa')) {
      const ptr = this.hosts.ptrName(name);
      if (ptr !== undefined) (out ??= []).push({ name, type: 'PTR', ttl, data: ptr } as RR);
    }
    return out;
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
    // The same record twice collapses into one RR.
    if (nd.rrs.some((x) => sameRr(x, rr))) return;
    nd.rrs.push(rr);
  }

  /**
   * True when `name` itself is in the local data, or above a name there: a set the data bounds,
   * unlike the names a wildcard or local-only domain answers for (any name below them).
   */
  holds(name: string): boolean {
    return this.names.has(name) || this.ancestors.has(name) || this.hosts.has(name)
      || (name.endsWith('.arpa') && this.hosts.ptrName(name) !== undefined);
  }

  /** True when `name` is at or below a local-only domain (never forwarded). */
  isLocalOnly(name: string): boolean {
    if (!this.localOnlyFilter.mayMatch(name)) return false;
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
    const nd = this.nameData(name);
    if (nd) return this.answerFrom(name, nd, qtype);
    // Wildcard domains: the most specific matching domain wins.
    let n = name;
    if (this.wildcardFilter.mayMatch(name)) for (;;) {
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
    if (this.ancestors.has(name) || this.hosts.hasBelow(name)) return { kind: 'nodata' };
    if (this.isLocalOnly(name)) return { kind: 'nxdomain' };
    return null;
  }

  private answerFrom(name: string, nd: NameData, qtype: number): LocalAnswer {
    if (nd.cname && qtype !== T_CNAME) {
      // Follow the chain through local data (bounded); what is not local ends the chain.
      const answers: RR[] = [nd.cname];
      let target = nd.cname.data as string;
      for (let hops = 0; hops < 8; hops++) {
        const t = this.nameData(target);
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

function sameRr(a: RR, b: RR): boolean {
  return a.type === b.type && (a.data === b.data || JSON.stringify(a.data) === JSON.stringify(b.data));
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

