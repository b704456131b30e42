/**
 * Slow-path DNS message building and decoding, on top of dns-packet.
 *
 * dns-packet encodes RDATA well but never compresses names; for answers we assemble the
 * message ourselves so that owner names equal to the question are a pointer to it (offset 12).
 * That keeps answers small and makes the client's letter case (patched into the question) show
 * in every answer that names it, as dnsmasq does.
 */
import dnsPacket from 'dns-packet';
import type { Packet, RecordType } from 'dns-packet';
import { encodeName, errorResponse, HEADER_LEN, QueryInfo, setResponseFlags, writeOpt } from './wire.js';

export interface RR {
  /** Owner name, presentation form, lower-case, no trailing dot. */
  name: string;
  type: RecordType;
  ttl: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  data: any;
}

const TYPE_CODES: Record<string, number> = {
  A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, ANY: 255,
  CAA: 257, DS: 43, DNSKEY: 48, RRSIG: 46, NSEC: 47, HTTPS: 65, SVCB: 64, NAPTR: 35,
};
const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(TYPE_CODES).map(([k, v]) => [v, k]));

export function typeCode(name: string): number | undefined {
  const up = name.toUpperCase();
  if (up in TYPE_CODES) return TYPE_CODES[up];
  const m = /^TYPE(\d+)$/.exec(up);
  return m ? Number(m[1]) : undefined;
}
export function typeName(code: number): string { return TYPE_NAMES[code] ?? `TYPE${code}`; }

/** RRs keep the record's 2-byte RDLENGTH prefix in dns-packet's record codecs. */
function encodeRdata(rr: RR): Buffer {
  // `record` exists at run time but is missing from @types/dns-packet.
  const codec = (dnsPacket as unknown as { record(t: string): { encode(d: unknown): Buffer } }).record(rr.type);
  return codec.encode(rr.data);
}

/**
 * Assembles a response to `query` (whose question ends at info.questionEnd): header and question
 * copied from the query (so ID and name case are the client's), then the given sections, then an
 * OPT if the query had EDNS. `qname` is the question name in lower-case presentation form.
 */
export function assembleResponse(
  query: Uint8Array, info: QueryInfo, qname: string, rcode: number, aa: boolean,
  answers: readonly RR[], authority: readonly RR[] = [],
): Buffer {
  const parts: Buffer[] = [];
  const head = Buffer.alloc(info.questionEnd);
  for (let i = 0; i < info.questionEnd; i++) head[i] = query[i];
  setResponseFlags(head, query, rcode, aa);
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(answers.length, 6);
  head.writeUInt16BE(authority.length, 8);
  head.writeUInt16BE(info.edns ? 1 : 0, 10);
  parts.push(head);
  for (const rr of [...answers, ...authority]) {
    const owner = rr.name === qname ? Buffer.from([0xc0, HEADER_LEN]) : encodeName(rr.name);
    const fixed = Buffer.alloc(8);
    fixed.writeUInt16BE(typeCode(rr.type) ?? 0, 0);
    fixed.writeUInt16BE(1, 2); // IN
    fixed.writeUInt32BE(rr.ttl >>> 0, 4);
    parts.push(owner, fixed, encodeRdata(rr));
  }
  if (info.edns) {
    const opt = Buffer.alloc(11);
    writeOpt(opt, 0, info.dnssecOk);
    parts.push(opt);
  }
  return Buffer.concat(parts);
}

/** A response with only header + question (+ OPT): for NXDOMAIN/NODATA/REFUSED/SERVFAIL. */
export function emptyResponse(query: Uint8Array, info: QueryInfo, rcode: number): Buffer {
  const out = Buffer.alloc(info.questionEnd + 11);
  const n = errorResponse(query, info, rcode, out);
  return out.subarray(0, n);
}

export interface QueryOptions {
  id?: number;
  rd?: boolean;
  edns?: boolean;
  udpSize?: number;
  dnssecOk?: boolean;
  cd?: boolean;
}

/** Builds a query message (for tests, health probes and the CLI). */
export function buildQuery(name: string, type: string, opts: QueryOptions = {}): Buffer {
  const packet: Packet = {
    type: 'query',
    id: opts.id ?? Math.floor(Math.random() * 65536),
    flags: (opts.rd === false ? 0 : dnsPacket.RECURSION_DESIRED) | (opts.cd ? dnsPacket.CHECKING_DISABLED : 0),
    questions: [{ type: type.toUpperCase() as RecordType, name, class: 'IN' }],
  };
  if (opts.edns || opts.dnssecOk || opts.udpSize) {
    packet.additionals = [{
      type: 'OPT', name: '.', udpPayloadSize: opts.udpSize ?? 1232,
      flags: opts.dnssecOk ? dnsPacket.DNSSEC_OK : 0,
    } as never];
  }
  return dnsPacket.encode(packet);
}

export type Decoded = ReturnType<typeof dnsPacket.decode>;

/** Full decode (slow path). Throws on a malformed message. */
export function decode(buf: Uint8Array): Decoded {
  return dnsPacket.decode(Buffer.isBuffer(buf) ? buf : Buffer.from(buf));
}

export function encode(packet: Packet): Buffer {
  return dnsPacket.encode(packet);
}

export const RCODE_NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];
export function rcodeName(rcode: number): string { return RCODE_NAMES[rcode] ?? `RCODE${rcode}`; }
