/**
 * Hosts-file parsing (the format of /etc/hosts and dnsmasq's addn-hosts): `ADDRESS NAME [NAME…]`,
 * `#` comments, IPv4 and IPv6. Pure: takes text, returns entries and per-line problems, and never
 * gives up on the whole file because of one bad line.
 */
import { isIP } from 'node:net';
import type { Diagnostic } from '../config/diagnostics.js';

export interface HostsEntry {
  address: string;
  family: 4 | 6;
  /** Lower-case names, the first being the canonical one (used for PTR). */
  names: string[];
  file: string;
  line: number;
}

const NAME_RE = /^[A-Za-z0-9_]([A-Za-z0-9_\-.]*[A-Za-z0-9_])?\.?$/;

/** Receives each good hosts line: its address (IPv6 lower-cased), family and lower-case names. */
export type HostsSink = (address: string, family: 4 | 6, names: string[], line: number) => void;

/**
 * Scans hosts text line by line, handing each good line to `sink` and each problem to
 * `diagnostics`; nothing per line is kept here, so a large file costs only what the sink keeps.
 * `firstLine`: the line number of `text`'s first line (a slice of a larger file).
 */
export function scanHosts(text: string, file: string, firstLine: number, sink: HostsSink, diagnostics: Diagnostic[]): void {
  let lineNo = firstLine - 1;
  let start = 0;
  const n = text.length;
  while (start <= n) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = n;
    lineNo++;
    let line = text.slice(start, end);
    start = end + 1;
    const hash = line.indexOf('#');
    if (hash >= 0) line = line.slice(0, hash);
    line = line.trim();
    if (line === '') { if (end === n) break; continue; }
    const fields = line.split(/\s+/);
    let address = fields[0];
    const family = isIP(address);
    if (family === 0) {
      diagnostics.push({ file, line: lineNo, severity: 'warning', message: `bad address "${address}": line ignored` });
    } else if (address.includes('%')) {
      // A zone index (fe80::1%eth0) has no meaning in a DNS answer, and the address without it
      // would be a different host's on another link.
      diagnostics.push({ file, line: lineNo, severity: 'warning', message: `address "${address}" has a zone index: line ignored` });
    } else if (fields.length < 2) {
      diagnostics.push({ file, line: lineNo, severity: 'warning', message: `no name after "${address}": line ignored` });
    } else {
      if (family === 6) address = address.toLowerCase();
      const names: string[] = [];
      for (let i = 1; i < fields.length; i++) {
        const raw = fields[i];
        if (!NAME_RE.test(raw) || raw.length > 253) {
          diagnostics.push({ file, line: lineNo, severity: 'warning', message: `bad name "${raw}" ignored` });
          continue;
        }
        names.push(raw.toLowerCase().replace(/\.$/, ''));
      }
      if (names.length) sink(address, family as 4 | 6, names, lineNo);
    }
    if (end === n) break;
  }
}

/** The same, collecting the entries (tests and tools; the resolver feeds a HostsTable instead). */
export function parseHosts(text: string, file: string, firstLine = 1): { entries: HostsEntry[]; diagnostics: Diagnostic[] } {
  const entries: HostsEntry[] = [];
  const diagnostics: Diagnostic[] = [];
  scanHosts(text, file, firstLine, (address, family, names, line) => { entries.push({ address, family, names, file, line }); }, diagnostics);
  return { entries, diagnostics };
}

/** The reverse-lookup name of an address (in-addr.arpa / ip6.arpa). */
export function reverseName(address: string): string {
  if (isIP(address) === 4) return address.split('.').reverse().join('.') + '.in-addr.arpa';
  return expandIPv6(address).split('').reverse().join('.') + '.ip6.arpa';
}

/** 32 hex digits of an IPv6 address, no colons. */
export function expandIPv6(address: string): string {
  let a = address.toLowerCase();
  // Embedded IPv4 (::ffff:1.2.3.4)
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (v4) {
    const p = v4[1].split('.').map(Number);
    a = a.slice(0, -v4[1].length) + ((p[0] << 8) | p[1]).toString(16) + ':' + ((p[2] << 8) | p[3]).toString(16);
  }
  const [head, tail] = a.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail ? tail.split(':') : [];
  const fill = tail !== undefined ? new Array(8 - h.length - t.length).fill('0') : [];
  return [...h, ...fill, ...t].map((g) => g.padStart(4, '0')).join('');
}

/** Address from a reverse name, or null when it isn't a complete one. */
export function addressFromReverse(name: string): string | null {
  const n = name.toLowerCase();
  if (n.endsWith('.in-addr.arpa')) {
    const parts = n.slice(0, -'.in-addr.arpa'.length).split('.');
    if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return null;
    return parts.reverse().join('.');
  }
  if (n.endsWith('.ip6.arpa')) {
    const nib = n.slice(0, -'.ip6.arpa'.length).split('.');
    if (nib.length !== 32 || nib.some((x) => !/^[0-9a-f]$/.test(x))) return null;
    const hex = nib.reverse().join('');
    const groups: string[] = [];
    for (let i = 0; i < 32; i += 4) groups.push(hex.slice(i, i + 4).replace(/^0+(?=.)/, ''));
    return groups.join(':');
  }
  return null;
}
