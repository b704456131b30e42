/**
 * Hosts-file parsing (the format of /etc/hosts and dnsmasq's addn-hosts): `ADDRESS NAME [NAME…]`,
 * `#` comments, IPv4 and IPv6. Pure: takes bytes (or text), hands over entries and per-line
 * problems, and never gives up on the whole file because of one bad line.
 */
import { isIP } from 'node:net';
import type { Diagnostic } from '../config/diagnostics.js';
import { formatIp6 } from '../util/udp-batch.js';

export interface HostsEntry {
  address: string;
  family: 4 | 6;
  /** Lower-case names, the first being the canonical one (used for PTR). */
  names: string[];
  file: string;
  line: number;
}

/**
 * A good hosts line as the scanner hands it over: views into scratch space that the next line
 * reuses, so a sink copies what it keeps.
 */
export interface HostsLine {
  family: 4 | 6;
  /** The IPv4 address as a number (family 4). */
  v4: number;
  /** The IPv6 address, 16 bytes (family 6). */
  v6: Uint8Array;
  /** Names: checked byte ranges [start[i], end[i]) of the scanned buffer, a trailing dot left out; not lower-cased. */
  start: Int32Array;
  end: Int32Array;
  count: number;
  line: number;
}

export type HostsSink = (buf: Uint8Array, line: HostsLine) => void;

const C = { TAB: 9, LF: 10, CR: 13, SPACE: 32, HASH: 35, DASH: 45, DOT: 46, COLON: 58 } as const;

function isSpace(c: number): boolean { return c === C.SPACE || (c >= C.TAB && c <= C.CR && c !== C.LF); }
function isLabelEdge(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
}

/** End of a good name in buf[s, e) without its one trailing dot, or -1 (letters, digits, _ - .; 253 at most). */
function nameEnd(buf: Uint8Array, s: number, e: number): number {
  if (e - s > 253) return -1;
  const end = e > s && buf[e - 1] === C.DOT ? e - 1 : e;
  if (end === s || !isLabelEdge(buf[s]) || !isLabelEdge(buf[end - 1])) return -1;
  for (let i = s + 1; i < end - 1; i++) {
    const c = buf[i];
    if (!isLabelEdge(c) && c !== C.DASH && c !== C.DOT) return -1;
  }
  return end;
}

/** A dotted IPv4 address in buf[s, e) as a number (no leading zeros, as net.isIP), or -1. */
function ipv4At(buf: Uint8Array, s: number, e: number): number {
  let n = 0, octet = 0, digits = 0, dots = 0;
  for (let i = s; i < e; i++) {
    const c = buf[i];
    if (c === C.DOT) {
      if (digits === 0 || dots === 3) return -1;
      n = n * 256 + octet; octet = 0; digits = 0; dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return -1;
      octet = octet * 10 + c - 48;
      if (++digits > 3 || octet > 255) return -1;
    } else {
      return -1;
    }
  }
  return dots === 3 && digits > 0 ? n * 256 + octet : -1;
}

const decoder = new TextDecoder();
const text = (buf: Uint8Array, s: number, e: number) => decoder.decode(buf.subarray(s, e));

/**
 * Scans hosts lines in buf[from, to) (UTF-8 or ASCII bytes), handing each good line to `sink`
 * and each problem to `diagnostics`. Works on bytes and allocates nothing for a good IPv4 line,
 * so a block list of 200k lines is read without filling the young generation; written by hand
 * for that reason (a line-by-line string split made ~20 garbage objects a line).
 * `firstLine`: the line number of the line at `from` (a slice of a larger file).
 */
export function scanHosts(buf: Uint8Array, from: number, to: number, file: string, firstLine: number, sink: HostsSink, diagnostics: Diagnostic[]): void {
  const line: HostsLine = { family: 4, v4: 0, v6: new Uint8Array(16), start: new Int32Array(16), end: new Int32Array(16), count: 0, line: 0 };
  let tokS: Int32Array = new Int32Array(16), tokE: Int32Array = new Int32Array(16);
  let lineNo = firstLine - 1;
  let p = from;
  while (p < to) {
    lineNo++;
    // Tokens up to the end of the line or a comment.
    let n = 0, i = p, tok = -1, comment = false;
    for (; i < to; i++) {
      const c = buf[i];
      if (c === C.LF) break;
      if (comment) continue;
      if (c === C.HASH || isSpace(c)) {
        if (tok >= 0) {
          if (n === tokS.length) { tokS = grow(tokS); tokE = grow(tokE); }
          tokS[n] = tok; tokE[n++] = i; tok = -1;
        }
        if (c === C.HASH) comment = true;
      } else if (tok < 0) {
        tok = i;
      }
    }
    if (tok >= 0) {
      if (n === tokS.length) { tokS = grow(tokS); tokE = grow(tokE); }
      tokS[n] = tok; tokE[n++] = i;
    }
    p = i + 1;
    if (n === 0) continue;
    const aS = tokS[0], aE = tokE[0];
    let colon = false;
    for (let k = aS; k < aE; k++) if (buf[k] === C.COLON) { colon = true; break; }
    if (colon) {
      const address = text(buf, aS, aE);
      if (isIP(address) !== 6) {
        diagnostics.push({ file, line: lineNo, severity: 'warning', message: `bad address "${address}": line ignored` });
        continue;
      }
      if (address.includes('%')) {
        // A zone index (fe80::1%eth0) has no meaning in a DNS answer, and the address without it
        // would be a different host's on another link.
        diagnostics.push({ file, line: lineNo, severity: 'warning', message: `address "${address}" has a zone index: line ignored` });
        continue;
      }
      const hex = expandIPv6(address);
      for (let k = 0; k < 16; k++) line.v6[k] = parseInt(hex.slice(2 * k, 2 * k + 2), 16);
      line.family = 6;
    } else {
      const v4 = ipv4At(buf, aS, aE);
      if (v4 < 0) {
        diagnostics.push({ file, line: lineNo, severity: 'warning', message: `bad address "${text(buf, aS, aE)}": line ignored` });
        continue;
      }
      line.v4 = v4;
      line.family = 4;
    }
    if (n < 2) {
      diagnostics.push({ file, line: lineNo, severity: 'warning', message: `no name after "${text(buf, aS, aE)}": line ignored` });
      continue;
    }
    if (line.start.length < n) { line.start = new Int32Array(tokS.length); line.end = new Int32Array(tokS.length); }
    let count = 0;
    for (let t = 1; t < n; t++) {
      const e = nameEnd(buf, tokS[t], tokE[t]);
      if (e < 0) {
        diagnostics.push({ file, line: lineNo, severity: 'warning', message: `bad name "${text(buf, tokS[t], tokE[t])}" ignored` });
        continue;
      }
      line.start[count] = tokS[t]; line.end[count++] = e;
    }
    if (count === 0) continue;
    line.count = count;
    line.line = lineNo;
    sink(buf, line);
  }
}

function grow(a: Int32Array): Int32Array { const b = new Int32Array(a.length * 2); b.set(a); return b; }

/** An IPv4 address from its number. */
export function formatIPv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** An IPv6 address from 16 bytes at `off`, as Node prints addresses (udp-batch's formatIp6, RFC 5952). */
export function formatIPv6(b: Uint8Array, off = 0): string {
  const word = (k: number) => ((b[off + k] << 24) | (b[off + k + 1] << 16) | (b[off + k + 2] << 8) | b[off + k + 3]) >>> 0;
  return formatIp6(word(0), word(4), word(8), word(12));
}

/** The same, collecting the entries (tests and tools; the resolver feeds a HostsTable instead). */
export function parseHosts(text: string, file: string, firstLine = 1): { entries: HostsEntry[]; diagnostics: Diagnostic[] } {
  const entries: HostsEntry[] = [];
  const diagnostics: Diagnostic[] = [];
  const buf = Buffer.from(text, 'utf8');
  const from = buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0; // a byte-order mark
  scanHosts(buf, from, buf.length, file, firstLine, (b, l) => {
    const names: string[] = [];
    for (let k = 0; k < l.count; k++) names.push(buf.toString('latin1', l.start[k], l.end[k]).toLowerCase());
    entries.push({ address: l.family === 4 ? formatIPv4(l.v4) : formatIPv6(l.v6), family: l.family, names, file, line: l.line });
  }, diagnostics);
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
