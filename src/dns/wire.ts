/**
 * Hand-written DNS wire scanning for the hot path.
 *
 * dns-packet (see message.ts) decodes whole messages into objects; that is right for the slow
 * path (local answer synthesis, logging, cache admission) but far too costly per packet. The
 * functions here read only what routing a query needs — header, the single question, the OPT
 * record — and patch responses in place (ID, name case, TTLs). No library covers this, so it is
 * written by hand, with bounds checks on every read: a malformed packet returns an error code,
 * never throws.
 */

export const HEADER_LEN = 12;
export const MAX_UDP_NO_EDNS = 512;
/** The EDNS UDP payload size we advertise (DNS flag day 2020). */
export const EDNS_ADVERTISED = 1232;

export const enum Rcode {
  NOERROR = 0,
  FORMERR = 1,
  SERVFAIL = 2,
  NXDOMAIN = 3,
  NOTIMP = 4,
  REFUSED = 5,
}

export const enum QType {
  A = 1, NS = 2, CNAME = 5, SOA = 6, PTR = 12, MX = 15, TXT = 16, AAAA = 28, SRV = 33, OPT = 41, ANY = 255,
}

export function readId(buf: Uint8Array): number { return (buf[0] << 8) | buf[1]; }
export function writeId(buf: Uint8Array, id: number): void { buf[0] = (id >>> 8) & 0xff; buf[1] = id & 0xff; }
export function isResponse(buf: Uint8Array): boolean { return (buf[2] & 0x80) !== 0; }
export function opcode(buf: Uint8Array): number { return (buf[2] >>> 3) & 0x0f; }
export function isTruncated(buf: Uint8Array): boolean { return (buf[2] & 0x02) !== 0; }
export function rcodeOf(buf: Uint8Array): number { return buf[3] & 0x0f; }
export function u16(buf: Uint8Array, off: number): number { return (buf[off] << 8) | buf[off + 1]; }
export function u32(buf: Uint8Array, off: number): number {
  return ((buf[off] << 24) >>> 0) + ((buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]);
}
function w16(buf: Uint8Array, off: number, v: number): void { buf[off] = (v >>> 8) & 0xff; buf[off + 1] = v & 0xff; }
function w32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = (v >>> 24) & 0xff; buf[off + 1] = (v >>> 16) & 0xff; buf[off + 2] = (v >>> 8) & 0xff; buf[off + 3] = v & 0xff;
}

/**
 * What a scan of a query learns. One instance is reused per socket (no allocation per packet):
 * callers must copy what they keep.
 */
export class QueryInfo {
  id = 0;
  /** Offset just past the question's QNAME (QNAME spans [12, nameEnd)). */
  nameEnd = 0;
  /** Offset just past the question (QTYPE, QCLASS). */
  questionEnd = 0;
  qtype = 0;
  qclass = 0;
  /** Whether the message carries an OPT record. */
  edns = false;
  /** EDNS UDP payload size the sender accepts (512 without EDNS). */
  udpSize = MAX_UDP_NO_EDNS;
  /** DNSSEC OK bit. */
  dnssecOk = false;
  /** Checking Disabled bit in the header. */
  cd = false;
  rd = false;
  /** Offset of the OPT RR (its owner name byte), or -1. */
  optOffset = -1;
  /** EDNS version (0 supported); -1 without EDNS. */
  ednsVersion = -1;
}

/** Scan errors (negative so a caller can test `< 0`). */
export const enum ScanError {
  SHORT = -1,
  NOT_ONE_QUESTION = -2,
  BAD_NAME = -3,
  BAD_RECORD = -4,
}

/**
 * Returns the offset just past an uncompressed name starting at `off`, or a negative error.
 * Questions in queries never use compression (a pointer there is FORMERR, as in dnsmasq).
 */
export function scanPlainName(buf: Uint8Array, off: number, end: number): number {
  let total = 0;
  for (;;) {
    if (off >= end) return ScanError.SHORT;
    const len = buf[off];
    if (len === 0) return off + 1;
    if (len > 63) return ScanError.BAD_NAME; // compression pointer or reserved label type
    total += len + 1;
    if (total > 254) return ScanError.BAD_NAME;
    off += len + 1;
  }
}

/** Skips a possibly compressed name; returns the offset just past it within this record. */
export function skipName(buf: Uint8Array, off: number, end: number): number {
  for (;;) {
    if (off >= end) return ScanError.SHORT;
    const len = buf[off];
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) return off + 2 <= end ? off + 2 : ScanError.SHORT;
    if (len > 63) return ScanError.BAD_NAME;
    off += len + 1;
  }
}

/**
 * Scans a message with exactly one question: header, question and (if present) OPT.
 * Fills `info` and returns 0, or a negative ScanError.
 */
export function scanMessage(buf: Uint8Array, len: number, info: QueryInfo): number {
  if (len < HEADER_LEN) return ScanError.SHORT;
  info.id = (buf[0] << 8) | buf[1];
  info.rd = (buf[2] & 0x01) !== 0;
  info.cd = (buf[3] & 0x10) !== 0;
  if (u16(buf, 4) !== 1) return ScanError.NOT_ONE_QUESTION;
  const nameEnd = scanPlainName(buf, HEADER_LEN, len);
  if (nameEnd < 0) return nameEnd;
  if (nameEnd + 4 > len) return ScanError.SHORT;
  info.nameEnd = nameEnd;
  info.qtype = u16(buf, nameEnd);
  info.qclass = u16(buf, nameEnd + 2);
  info.questionEnd = nameEnd + 4;
  info.edns = false;
  info.udpSize = MAX_UDP_NO_EDNS;
  info.dnssecOk = false;
  info.optOffset = -1;
  info.ednsVersion = -1;
  const rrs = u16(buf, 6) + u16(buf, 8) + u16(buf, 10);
  if (rrs === 0) return 0;
  const arStart = u16(buf, 6) + u16(buf, 8);
  let off = info.questionEnd;
  for (let i = 0; i < rrs; i++) {
    const start = off;
    off = skipName(buf, off, len);
    if (off < 0) return off;
    if (off + 10 > len) return ScanError.BAD_RECORD;
    const type = u16(buf, off);
    const rdlen = u16(buf, off + 8);
    if (type === QType.OPT && i >= arStart) {
      if (info.edns) return ScanError.BAD_RECORD; // two OPT records: FORMERR (RFC 6891 6.1.1)
      info.edns = true;
      info.optOffset = start;
      const size = u16(buf, off + 2);
      info.udpSize = size < MAX_UDP_NO_EDNS ? MAX_UDP_NO_EDNS : size;
      info.ednsVersion = buf[off + 5];
      info.dnssecOk = (buf[off + 6] & 0x80) !== 0;
    }
    off += 10 + rdlen;
    if (off > len) return ScanError.BAD_RECORD;
  }
  return 0;
}

/**
 * Cache / in-flight key of a question: lower-cased wire QNAME, QTYPE, QCLASS and the flags that
 * change the answer (EDNS present, DO, CD) — what dnsdist keys its packet cache on.
 * ASCII-only lower-casing (DNS names are case-insensitive only in ASCII).
 */
const keyScratch = Buffer.allocUnsafe(512);
export function questionKey(buf: Uint8Array, info: QueryInfo): string {
  const n = info.questionEnd - HEADER_LEN;
  for (let i = 0; i < n; i++) {
    const c = buf[HEADER_LEN + i];
    keyScratch[i] = c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
  }
  keyScratch[n] = (info.edns ? 1 : 0) | (info.dnssecOk ? 2 : 0) | (info.cd ? 4 : 0);
  return keyScratch.toString('latin1', 0, n + 1);
}

/**
 * The question name in presentation form (lower-case, no trailing dot; "" for the root). Written
 * into a scratch buffer and decoded once: appending a character at a time made a string per
 * character (~500 bytes of garbage for a 20-character name, on every routed query).
 */
const nameScratch = Buffer.allocUnsafe(1024); // 255 wire bytes, each at most 4 ("\ddd")
export function nameToString(buf: Uint8Array, off: number, end: number, lower = true): string {
  const out = nameScratch;
  let n = 0;
  for (;;) {
    if (off >= end) break;
    const len = buf[off];
    if (len === 0 || len > 63 || off + len + 1 > end || n + 4 * len + 1 > out.length) break;
    if (n > 0) out[n++] = 0x2e;
    for (let i = 1; i <= len; i++) {
      let c = buf[off + i];
      if (lower && c >= 0x41 && c <= 0x5a) c |= 0x20;
      // Escape what would be ambiguous in presentation form.
      if (c === 0x2e || c === 0x5c) { out[n++] = 0x5c; out[n++] = c; }
      else if (c < 0x21 || c > 0x7e) {
        out[n++] = 0x5c;
        out[n++] = 0x30 + ((c / 100) | 0);
        out[n++] = 0x30 + (((c / 10) | 0) % 10);
        out[n++] = 0x30 + (c % 10);
      } else out[n++] = c;
    }
    off += len + 1;
  }
  return n === 0 ? '' : out.toString('latin1', 0, n);
}

/** Copies the question name's bytes (thus its letter case) from a query into a response. */
export function copyQuestionCase(dst: Uint8Array, src: Uint8Array, nameEnd: number): void {
  for (let i = HEADER_LEN; i < nameEnd; i++) dst[i] = src[i];
}

/** True when two messages carry the same question (case-insensitive name, type, class). */
export function sameQuestion(a: Uint8Array, aLen: number, b: Uint8Array, questionEnd: number): boolean {
  if (aLen < questionEnd || u16(a, 4) !== 1) return false;
  for (let i = HEADER_LEN; i < questionEnd; i++) {
    let x = a[i];
    let y = b[i];
    if (x !== y) {
      if (x >= 0x41 && x <= 0x5a) x |= 0x20;
      if (y >= 0x41 && y <= 0x5a) y |= 0x20;
      if (x !== y) return false;
    }
  }
  return true;
}

/** What walkTtls does to each TTL. */
const TTL_READ = 0, TTL_AGE = 1, TTL_SET = 2, TTL_CLAMP = 3;

/**
 * Visits the TTL of every resource record after the question (OPT excluded): reads it, ages it
 * by `x` seconds (floor 0), sets it to `x`, or clamps it into [x, y]. Returns the smallest TTL
 * as it was (-1: no records), or -2 for a malformed message. One function with an operation
 * code rather than a walker taking a callback: a callback that closes over its arguments was a
 * closure and a context per call, on every cache hit and forwarded answer.
 */
function walkTtls(buf: Uint8Array, len: number, op: number, x: number, y: number): number {
  if (len < HEADER_LEN) return -2;
  const qd = u16(buf, 4);
  let off = HEADER_LEN;
  for (let i = 0; i < qd; i++) {
    off = skipName(buf, off, len);
    if (off < 0 || off + 4 > len) return -2;
    off += 4;
  }
  let min = -1;
  const rrs = u16(buf, 6) + u16(buf, 8) + u16(buf, 10);
  for (let i = 0; i < rrs; i++) {
    off = skipName(buf, off, len);
    if (off < 0 || off + 10 > len) return -2;
    if (u16(buf, off) !== QType.OPT) {
      const t = off + 4;
      const v = u32(buf, t);
      if (min < 0 || v < min) min = v;
      if (op === TTL_AGE) w32(buf, t, v - x > 0 ? v - x : 0);
      else if (op === TTL_SET) w32(buf, t, x);
      else if (op === TTL_CLAMP) { if (v < x) w32(buf, t, x); else if (v > y) w32(buf, t, y); }
    }
    off += 10 + u16(buf, off + 8);
    if (off > len) return -2;
  }
  return min;
}

/** Smallest TTL of all records (OPT excluded); -1 when there are none or the message is bad. */
export function minTtl(buf: Uint8Array, len: number): number {
  const m = walkTtls(buf, len, TTL_READ, 0, 0);
  return m < 0 ? -1 : m;
}

/** For negative answers: the SOA MINIMUM of the authority section's SOA (min'd with its TTL), or -1. */
export function negativeTtl(buf: Uint8Array, len: number): number {
  const an = u16(buf, 6);
  const ns = u16(buf, 8);
  let off = HEADER_LEN;
  const qd = u16(buf, 4);
  for (let i = 0; i < qd; i++) {
    off = skipName(buf, off, len);
    if (off < 0 || off + 4 > len) return -1;
    off += 4;
  }
  for (let i = 0; i < an + ns; i++) {
    off = skipName(buf, off, len);
    if (off < 0 || off + 10 > len) return -1;
    const type = u16(buf, off);
    const ttl = u32(buf, off + 4);
    const rdlen = u16(buf, off + 8);
    const rdata = off + 10;
    off = rdata + rdlen;
    if (off > len) return -1;
    if (i >= an && type === QType.SOA) {
      // RDATA: MNAME, RNAME, SERIAL, REFRESH, RETRY, EXPIRE, MINIMUM
      let p = skipName(buf, rdata, off);
      if (p < 0) return -1;
      p = skipName(buf, p, off);
      if (p < 0 || p + 20 > off) return -1;
      const minimum = u32(buf, p + 16);
      return minimum < ttl ? minimum : ttl;
    }
  }
  return -1;
}

/**
 * Rewrites every TTL (OPT excluded) as `max(0, ttl - elapsed)`, or sets them all to `fixed`
 * when given. In place; the caller owns `buf`. False for a malformed message (records before
 * the fault are already rewritten).
 */
export function ageTtls(buf: Uint8Array, len: number, elapsedSec: number, fixed = -1): boolean {
  return fixed >= 0 ? walkTtls(buf, len, TTL_SET, fixed, 0) !== -2 : walkTtls(buf, len, TTL_AGE, elapsedSec, 0) !== -2;
}

/** Clamps TTLs into [min, max] in place (used when a response enters the cache). */
export function clampTtls(buf: Uint8Array, len: number, min: number, max: number): boolean {
  return walkTtls(buf, len, TTL_CLAMP, min, max) !== -2;
}

/** Sets QR, copies RD from the query, sets RA, and sets the RCODE. */
export function setResponseFlags(resp: Uint8Array, query: Uint8Array, rcode: number, aa = false): void {
  resp[2] = 0x80 | (query[2] & 0x79) | (aa ? 0x04 : 0); // QR, opcode and RD from the query
  resp[3] = 0x80 | (query[3] & 0x10) | (rcode & 0x0f); // RA, CD echoed, rcode
}

/** Writes an OPT RR advertising our payload size at `off`; returns the new end. */
export function writeOpt(buf: Uint8Array, off: number, dnssecOk: boolean, extRcode = 0): number {
  buf[off] = 0; // root owner
  w16(buf, off + 1, QType.OPT);
  w16(buf, off + 3, EDNS_ADVERTISED);
  buf[off + 5] = extRcode; buf[off + 6] = 0; // ext rcode, version 0
  buf[off + 7] = dnssecOk ? 0x80 : 0; buf[off + 8] = 0;
  w16(buf, off + 9, 0); // rdlen
  return off + 11;
}

/**
 * Builds a header+question response with the given rcode (and an OPT when the query had one)
 * into `out`; returns its length. Used for REFUSED, SERVFAIL, NOTIMP, TC-only replies.
 */
export function errorResponse(query: Uint8Array, info: QueryInfo, rcode: number, out: Uint8Array, tc = false): number {
  const qEnd = info.questionEnd;
  for (let i = 0; i < qEnd; i++) out[i] = query[i];
  setResponseFlags(out, query, rcode);
  if (tc) out[2] |= 0x02;
  w16(out, 4, 1); w16(out, 6, 0); w16(out, 8, 0);
  let end = qEnd;
  if (info.edns) {
    w16(out, 10, 1);
    end = writeOpt(out, qEnd, info.dnssecOk);
  } else {
    w16(out, 10, 0);
  }
  return end;
}

/** FORMERR for something we could not even scan: echo the ID and flags, no question. */
export function formErr(query: Uint8Array, len: number, out: Uint8Array): number {
  if (len < 2) return 0;
  out[0] = query[0]; out[1] = query[1];
  out[2] = 0x80 | ((len > 2 ? query[2] : 0) & 0x79);
  out[3] = 0x80 | Rcode.FORMERR;
  for (let i = 4; i < 12; i++) out[i] = 0;
  return HEADER_LEN;
}

/** Max UDP response size for a client: its EDNS size (capped at 4096) or 512. */
export function clientUdpLimit(info: QueryInfo): number {
  if (!info.edns) return MAX_UDP_NO_EDNS;
  return info.udpSize > 4096 ? 4096 : info.udpSize;
}

/**
 * Incremental parser for DNS over TCP (RFC 1035 4.2.2 / RFC 7766): 2-byte length prefix,
 * several messages per connection, messages split across segments. Bounded: a length of 0 is
 * a protocol error, and at most one message (≤ 65535 bytes) is buffered.
 */
export class TcpFramer {
  /** The length prefix while it is split across chunks. */
  private readonly head = Buffer.alloc(2);
  private headLen = 0;
  /** The message being assembled, allocated once its length is known, and how much of it came. */
  private frame: Buffer | null = null;
  private fill = 0;
  /** Messages delivered so far (FrameDeadline uses it to tell a finished message from progress). */
  completed = 0;
  constructor(private readonly onMessage: (msg: Buffer) => void) {}
  /**
   * Returns false when the stream is broken (caller closes the connection). Whole messages in a
   * chunk are passed as views of it; a split one is copied once into a buffer of its announced
   * size, so a message dripped a byte at a time costs linear work, not a concat per byte.
   */
  push(chunk: Buffer): boolean {
    let off = 0;
    const end = chunk.length;
    while (off < end) {
      if (this.frame === null) {
        // The length prefix: straight from the chunk, or a byte at a time when it is split.
        let n: number;
        if (this.headLen === 0 && end - off >= 2) {
          n = (chunk[off]! << 8) | chunk[off + 1]!;
          off += 2;
        } else {
          this.head[this.headLen++] = chunk[off++]!;
          if (this.headLen < 2) continue;
          n = (this.head[0]! << 8) | this.head[1]!;
          this.headLen = 0;
        }
        if (n === 0) return false;
        if (end - off >= n) { // whole in this chunk: a view, no copy
          const msg = chunk.subarray(off, off + n);
          off += n;
          this.deliver(msg);
          continue;
        }
        this.frame = Buffer.allocUnsafe(n);
        this.fill = 0;
        continue;
      }
      const take = Math.min(this.frame.length - this.fill, end - off);
      chunk.copy(this.frame, this.fill, off, off + take);
      this.fill += take;
      off += take;
      if (this.fill === this.frame.length) {
        const msg = this.frame;
        this.frame = null;
        this.deliver(msg);
      }
    }
    return true;
  }
  private deliver(msg: Buffer): void {
    this.completed++;
    this.onMessage(msg);
  }
  /** Bytes of an unfinished message held (its length prefix included). */
  get pending(): number { return this.frame !== null ? 2 + this.fill : this.headLen; }
}

/** Prefixes a message with its 2-byte length for TCP. */
export function tcpFrame(msg: Uint8Array, len = msg.length): Buffer {
  const out = Buffer.allocUnsafe(len + 2);
  out[0] = (len >>> 8) & 0xff; out[1] = len & 0xff;
  out.set(msg.subarray(0, len), 2);
  return out;
}

/** Encodes a presentation-form name ("www.example.com") to wire form. Throws on invalid names. */
export function encodeName(name: string): Buffer {
  const n = name.endsWith('.') ? name.slice(0, -1) : name;
  if (n === '') return Buffer.from([0]);
  const labels = n.split('.');
  const parts: number[] = [];
  for (const l of labels) {
    const b = Buffer.from(l, 'latin1');
    if (b.length === 0 || b.length > 63) throw new Error(`invalid DNS name: ${name}`);
    parts.push(b.length, ...b);
  }
  parts.push(0);
  if (parts.length > 255) throw new Error(`DNS name too long: ${name}`);
  return Buffer.from(parts);
}
