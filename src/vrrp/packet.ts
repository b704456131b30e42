/**
 * VRRP advertisement codec: VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798 / RFC 9568), IPv4 and IPv6.
 *
 * Pure: no sockets, no clock. Hand-written because no npm package covers VRRP (the wire format is
 * 8 bytes of header, the address list and, for v2, 8 bytes of authentication data).
 *
 * `decodeAdvert` never throws: garbage yields `{ ok: false, error }` so the transport can count and
 * drop it. Intervals are carried in milliseconds in the decoded form; the wire unit is seconds (v2,
 * 8 bits) or centiseconds (v3, 12 bits) and `encodeAdvert` refuses intervals the wire cannot carry.
 */
import { isIPv4, isIPv6 } from 'node:net';

export const VRRP_PROTOCOL = 112;
export const VRRP_MCAST_V4 = '224.0.0.18';
export const VRRP_MCAST_V6 = 'ff02::12';
export const VRRP_TTL = 255;
export const VRRP_TYPE_ADVERTISEMENT = 1;
/** Priority 0: the master is resigning (clean shutdown); 255: the address owner. */
export const PRIORITY_STOP = 0;
export const PRIORITY_OWNER = 255;

export type VrrpVersion = 2 | 3;
export type Family = 4 | 6;

/** v2 authentication. `ah` (type 2) is decoded so it can be reported, never produced. */
export type V2Auth =
  | { type: 'none' }
  | { type: 'pass'; password: string }
  | { type: 'ah' };

export interface VrrpAdvert {
  version: VrrpVersion;
  family: Family;
  vrid: number;
  priority: number;
  /** Advertisement interval in ms (v2: multiple of 1000, 1..255 s; v3: multiple of 10, 10..40950 ms). */
  intervalMs: number;
  /** Virtual addresses in textual form; all IPv4 for family 4, all IPv6 for family 6. */
  addresses: string[];
  /** v2 only; v3 has no authentication field. */
  auth?: V2Auth;
}

/** Addresses of the IP header around the advert: the v3 checksum covers them (pseudo-header). */
export interface IpContext {
  src: string;
  dst: string;
}

/** Which checksum form a v3 IPv4 packet used; v2 and IPv6 have only one form. */
export type ChecksumForm = 'v2' | 'pseudo' | 'no-pseudo';

export type DecodeResult =
  | { ok: true; advert: VrrpAdvert; checksumForm: ChecksumForm; /** bytes after the standard advert */ trailer: Buffer }
  | { ok: false; error: string };

const V2_AUTH_LEN = 8;

// ---------------------------------------------------------------- checksum

/** RFC 1071 one's-complement sum of 16-bit words, not yet folded/inverted. */
function sum16(buf: Uint8Array, acc = 0): number {
  let s = acc;
  const n = buf.length & ~1;
  for (let i = 0; i < n; i += 2) s += (buf[i]! << 8) | buf[i + 1]!;
  if (buf.length & 1) s += buf[buf.length - 1]! << 8;
  return s;
}

function fold(s: number): number {
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

/** Internet checksum of `buf` (with its checksum field zeroed by the caller) plus an optional prefix. */
export function internetChecksum(buf: Uint8Array, prefix?: Uint8Array): number {
  const s = sum16(buf, prefix ? sum16(prefix) : 0);
  return (~fold(s)) & 0xffff;
}

/** IPv4 / IPv6 pseudo-header for upper-layer checksums (RFC 768 layout / RFC 8200 §8.1). */
export function pseudoHeader(family: Family, src: string, dst: string, length: number): Buffer {
  if (family === 4) {
    const b = Buffer.alloc(12);
    ipToBytes(src, 4).copy(b, 0);
    ipToBytes(dst, 4).copy(b, 4);
    b[9] = VRRP_PROTOCOL;
    b.writeUInt16BE(length, 10);
    return b;
  }
  const b = Buffer.alloc(40);
  ipToBytes(src, 6).copy(b, 0);
  ipToBytes(dst, 6).copy(b, 16);
  b.writeUInt32BE(length, 32);
  b[39] = VRRP_PROTOCOL;
  return b;
}

// ---------------------------------------------------------------- addresses

/** Textual IP → bytes. Throws on invalid input (callers validate first). */
export function ipToBytes(ip: string, family: Family): Buffer {
  if (family === 4) {
    if (!isIPv4(ip)) throw new Error(`not an IPv4 address: ${ip}`);
    return Buffer.from(ip.split('.').map((x) => Number(x)));
  }
  if (!isIPv6(ip)) throw new Error(`not an IPv6 address: ${ip}`);
  let addr = ip;
  // IPv4-suffixed form (::ffff:1.2.3.4) → two hex groups.
  const m = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(addr);
  if (m) {
    const v4 = m[2]!.split('.').map(Number);
    addr = `${m[1]}${((v4[0]! << 8) | v4[1]!).toString(16)}:${((v4[2]! << 8) | v4[3]!).toString(16)}`;
  }
  const [head, tail] = addr.includes('::') ? addr.split('::') as [string, string] : [addr, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

/** Bytes → textual IP (IPv6 compressed per RFC 5952). */
export function bytesToIp(b: Uint8Array, family: Family): string {
  if (family === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((b[i]! << 8) | b[i + 1]!);
  // Longest run of ≥2 zero groups becomes "::" (first one wins on ties).
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** Compare two addresses of one family as unsigned big-endian integers (RFC tie-break). */
export function compareAddresses(a: string, b: string): number {
  const fam: Family = isIPv4(a) ? 4 : 6;
  return Buffer.compare(ipToBytes(a, fam), ipToBytes(b, fam));
}

// ---------------------------------------------------------------- encode

export interface EncodeOptions {
  /** Needed for v3 (pseudo-header). Ignored for v2. */
  ip?: IpContext;
  /** v3 IPv4 only: 'pseudo' (keepalived, the default) or 'no-pseudo'. */
  checksumForm?: 'pseudo' | 'no-pseudo';
}

/** Pads/validates a v2 PASS password: exactly 8 bytes on the wire, NUL-padded, longer is an error. */
export function passwordBytes(password: string): Buffer {
  const raw = Buffer.from(password, 'utf8');
  if (raw.length > V2_AUTH_LEN) throw new Error(`PASS password longer than ${V2_AUTH_LEN} bytes`);
  const b = Buffer.alloc(V2_AUTH_LEN);
  raw.copy(b);
  return b;
}

/** Validates an advert; returns an error string or undefined. */
export function validateAdvert(a: VrrpAdvert): string | undefined {
  if (a.version !== 2 && a.version !== 3) return `bad version ${String(a.version)}`;
  if (a.family !== 4 && a.family !== 6) return `bad family ${String(a.family)}`;
  if (a.version === 2 && a.family === 6) return 'VRRPv2 is IPv4 only';
  if (!Number.isInteger(a.vrid) || a.vrid < 1 || a.vrid > 255) return `VRID ${a.vrid} out of 1..255`;
  if (!Number.isInteger(a.priority) || a.priority < 0 || a.priority > 255) return `priority ${a.priority} out of 0..255`;
  if (a.addresses.length > 255) return 'more than 255 addresses';
  for (const ip of a.addresses) {
    if (a.family === 4 ? !isIPv4(ip) : !isIPv6(ip)) return `address ${ip} is not IPv${a.family}`;
  }
  if (a.version === 2) {
    if (a.intervalMs % 1000 !== 0 || a.intervalMs < 1000 || a.intervalMs > 255_000) return `v2 interval ${a.intervalMs} ms is not 1..255 whole seconds`;
  } else if (a.intervalMs % 10 !== 0 || a.intervalMs < 10 || a.intervalMs > 4095 * 10) {
    return `v3 interval ${a.intervalMs} ms is not 1..4095 centiseconds`;
  }
  if (a.version === 3 && a.auth && a.auth.type !== 'none') return 'VRRPv3 has no authentication field';
  if (a.auth?.type === 'pass' && Buffer.byteLength(a.auth.password) > V2_AUTH_LEN) return 'PASS password longer than 8 bytes';
  if (a.auth?.type === 'ah') return 'AH authentication is not supported for sending';
  return undefined;
}

/** Encodes the VRRP message (the IP payload). Throws on an invalid advert (a programming error). */
export function encodeAdvert(a: VrrpAdvert, opts: EncodeOptions = {}): Buffer {
  const err = validateAdvert(a);
  if (err) throw new Error(err);
  const alen = a.family === 4 ? 4 : 16;
  const len = 8 + a.addresses.length * alen + (a.version === 2 ? V2_AUTH_LEN : 0);
  const b = Buffer.alloc(len);
  b[0] = (a.version << 4) | VRRP_TYPE_ADVERTISEMENT;
  b[1] = a.vrid;
  b[2] = a.priority;
  b[3] = a.addresses.length;
  if (a.version === 2) {
    const auth = a.auth ?? { type: 'none' };
    b[4] = auth.type === 'pass' ? 1 : 0;
    b[5] = a.intervalMs / 1000;
  } else {
    b.writeUInt16BE((a.intervalMs / 10) & 0x0fff, 4);
  }
  a.addresses.forEach((ip, i) => ipToBytes(ip, a.family).copy(b, 8 + i * alen));
  if (a.version === 2 && a.auth?.type === 'pass') passwordBytes(a.auth.password).copy(b, 8 + a.addresses.length * alen);
  let prefix: Buffer | undefined;
  if (a.version === 3 && !(a.family === 4 && opts.checksumForm === 'no-pseudo')) {
    if (!opts.ip) throw new Error('VRRPv3 checksum needs the IP source and destination');
    prefix = pseudoHeader(a.family, opts.ip.src, opts.ip.dst, len);
  }
  b.writeUInt16BE(internetChecksum(b, prefix), 6);
  return b;
}

// ---------------------------------------------------------------- decode

export interface DecodeOptions {
  family: Family;
  /** Source/destination from the IP header; required to check v3 checksums. */
  ip?: IpContext;
}

function fail(error: string): DecodeResult { return { ok: false, error }; }

/**
 * Decodes a VRRP message (IP payload). Bytes past the standard message are returned as `trailer`
 * (hadns's HMAC trailer lives there; see auth.ts). The v2 checksum covers the standard message only.
 */
export function decodeAdvert(buf: Uint8Array, opts: DecodeOptions): DecodeResult {
  try {
    return decodeUnsafe(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength), opts);
  } catch (e) {
    // Defensive: decoding is bounds-checked, but garbage must never escape as an exception.
    return fail(`malformed advert: ${(e as Error).message}`);
  }
}

function decodeUnsafe(b: Buffer, opts: DecodeOptions): DecodeResult {
  if (b.length < 8) return fail(`too short: ${b.length} bytes`);
  const version = b[0]! >> 4;
  const type = b[0]! & 0x0f;
  if (version !== 2 && version !== 3) return fail(`unsupported version ${version}`);
  if (type !== VRRP_TYPE_ADVERTISEMENT) return fail(`unknown type ${type}`);
  const family = opts.family;
  if (version === 2 && family === 6) return fail('VRRPv2 over IPv6');
  const vrid = b[1]!;
  if (vrid === 0) return fail('VRID 0');
  const priority = b[2]!;
  const count = b[3]!;
  const alen = family === 4 ? 4 : 16;
  const stdLen = 8 + count * alen + (version === 2 ? V2_AUTH_LEN : 0);
  if (b.length < stdLen) return fail(`truncated: ${b.length} bytes, count ${count} needs ${stdLen}`);
  const std = Buffer.from(b.subarray(0, stdLen));
  const trailer = Buffer.from(b.subarray(stdLen));
  const wire = std.readUInt16BE(6);
  std.writeUInt16BE(0, 6);

  let checksumForm: ChecksumForm;
  if (version === 2) {
    if (internetChecksum(std) !== wire) return fail('bad checksum');
    checksumForm = 'v2';
  } else {
    if (!opts.ip) return fail('VRRPv3 checksum needs the IP source and destination');
    const withPseudo = internetChecksum(std, pseudoHeader(family, opts.ip.src, opts.ip.dst, stdLen));
    if (withPseudo === wire) checksumForm = 'pseudo';
    else if (family === 4 && internetChecksum(std) === wire) checksumForm = 'no-pseudo';
    else return fail('bad checksum');
  }

  const addresses: string[] = [];
  for (let i = 0; i < count; i++) addresses.push(bytesToIp(std.subarray(8 + i * alen, 8 + (i + 1) * alen), family));

  let intervalMs: number;
  let auth: V2Auth | undefined;
  if (version === 2) {
    const secs = std[5]!;
    if (secs === 0) return fail('advertisement interval 0');
    intervalMs = secs * 1000;
    const at = std[4]!;
    const data = std.subarray(8 + count * 4, stdLen);
    if (at === 0) auth = { type: 'none' };
    else if (at === 1) {
      const nul = data.indexOf(0);
      auth = { type: 'pass', password: data.subarray(0, nul < 0 ? V2_AUTH_LEN : nul).toString('utf8') };
    } else if (at === 2) auth = { type: 'ah' };
    else return fail(`unknown auth type ${at}`);
  } else {
    const cs = std.readUInt16BE(4) & 0x0fff;
    if (cs === 0) return fail('advertisement interval 0');
    intervalMs = cs * 10;
  }
  const advert: VrrpAdvert = { version, family, vrid, priority, intervalMs, addresses };
  if (auth) advert.auth = auth;
  return { ok: true, advert, checksumForm, trailer };
}

/** Raw v2 PASS auth bytes of a message (for exact 8-byte comparison, NUL padding included). */
export function v2AuthData(buf: Uint8Array): Buffer | undefined {
  if (buf.length < 8 || buf[0]! >> 4 !== 2) return undefined;
  const off = 8 + buf[3]! * 4;
  if (buf.length < off + V2_AUTH_LEN) return undefined;
  return Buffer.from(buf.subarray(off, off + V2_AUTH_LEN));
}

// ---------------------------------------------------------------- IPv4 header

export interface Ipv4Packet {
  src: string;
  dst: string;
  ttl: number;
  protocol: number;
  payload: Buffer;
}

/**
 * Parses an IPv4 datagram as a raw IPv4 socket delivers it (header included). Returns an error
 * string on garbage. IPv6 raw sockets never deliver the header (hop limit comes from a cmsg).
 */
export function parseIpv4(buf: Uint8Array): { ok: true; packet: Ipv4Packet } | { ok: false; error: string } {
  if (buf.length < 20) return { ok: false, error: 'IPv4 header too short' };
  if (buf[0]! >> 4 !== 4) return { ok: false, error: 'not IPv4' };
  const ihl = (buf[0]! & 0x0f) * 4;
  if (ihl < 20 || buf.length < ihl) return { ok: false, error: 'bad IPv4 header length' };
  const total = (buf[2]! << 8) | buf[3]!;
  const end = total >= ihl && total <= buf.length ? total : buf.length;
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return {
    ok: true,
    packet: {
      ttl: b[8]!,
      protocol: b[9]!,
      src: bytesToIp(b.subarray(12, 16), 4),
      dst: bytesToIp(b.subarray(16, 20), 4),
      payload: b.subarray(ihl, end),
    },
  };
}
