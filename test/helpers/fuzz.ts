/**
 * Helpers for the fuzz tests: a seeded PRNG (so a failure can be replayed by its seed), random
 * bytes, the menu of lies a hostile DNS server tells under a query's ID, a message's question
 * section for comparing an answer with its query, and a hostile DNS-over-TCP client.
 */
import net from 'node:net';
import { once } from 'node:events';
import { buildQuery } from '../../src/dns/message.js';
import { tcpFrame } from '../../src/dns/wire.js';

/** mulberry32: small, fast, deterministic; a float in [0, 1) per call. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomBytes(rnd: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rnd() * 256);
  return b;
}

/**
 * What a lying server sends instead of the honest answer `good` (whose first two bytes are the
 * query's ID): nothing, the truth (sometimes twice), or a lie — flipped bits after the ID (counts,
 * names, TTLs, RDATA lengths), a truncation anywhere, random bytes under the ID, any RCODE,
 * trailing junk, or a wrong ID. `lied` says whether the datagrams differ from the truth.
 */
export function lie(good: Buffer, rnd: () => number): { out: Buffer[]; lied: boolean } {
  const x = rnd();
  if (x < 0.2) return { out: rnd() < 0.3 ? [good, good] : [good], lied: false };
  if (x < 0.45) {
    const b = Buffer.from(good);
    for (let k = 1 + Math.floor(rnd() * 4); k > 0; k--) b[2 + Math.floor(rnd() * (b.length - 2))]! ^= 1 << Math.floor(rnd() * 8);
    return { out: [b], lied: true };
  }
  if (x < 0.6) return { out: [good.subarray(0, Math.floor(rnd() * good.length))], lied: true };
  if (x < 0.68) {
    const b = randomBytes(rnd, 2 + Math.floor(rnd() * 600));
    good.copy(b, 0, 0, 2);
    return { out: [b], lied: true };
  }
  if (x < 0.78) {
    const b = Buffer.from(good);
    b[3] = (b[3]! & 0xf0) | Math.floor(rnd() * 16); // SERVFAIL and REFUSED included
    return { out: [b], lied: true };
  }
  if (x < 0.86) return { out: [Buffer.concat([good, randomBytes(rnd, 1 + Math.floor(rnd() * 200))])], lied: true };
  if (x < 0.92) {
    const b = Buffer.from(good);
    b.writeUInt16BE((good.readUInt16BE(0) + 1 + Math.floor(rnd() * 65534)) & 0xffff, 0);
    return { out: [b], lied: true };
  }
  return { out: [], lied: true }; // silence
}

/**
 * The question section (byte 12 to the end of QCLASS) as a string, or null when it does not
 * parse; `fold` lower-cases it (for comparisons where a 0x20-style case change is fine).
 */
export function questionOf(m: Uint8Array, fold = false): string | null {
  let o = 12;
  while (o < m.length && m[o] !== 0) {
    if ((m[o]! & 0xc0) !== 0) return null;
    o += m[o]! + 1;
  }
  if (o + 5 > m.length) return null;
  const s = Buffer.from(m.buffer, m.byteOffset + 12, o + 5 - 12).toString('latin1');
  return fold ? s.toLowerCase() : s;
}

/** `p`, or a rejection naming `what` if it has not settled within `ms`. */
export function within<T>(p: Promise<T>, what: string, ms = 3000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<T>((_, rej) => { timer = setTimeout(() => rej(new Error(`timed out: ${what}`)), ms); });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** A connected TCP client to 127.0.0.1:`port`, kept in `conns` for the caller to destroy. */
export async function tcpClient(port: number, conns: net.Socket[]): Promise<net.Socket> {
  const c = net.connect(port, '127.0.0.1');
  c.on('error', () => {});
  conns.push(c);
  await once(c, 'connect');
  return c;
}

/**
 * Abuses a DNS-over-TCP listener the ways a broken or hostile client does: random bytes (a random
 * length prefix, then whatever), empty and one-byte frames, a frame of garbage, a frame that
 * promises 65535 bytes and is abandoned, and a real query sent one byte at a time. Resolves with
 * the answer to that last one (ID 77), which must come.
 */
export async function abuseTcp(port: number, rnd: () => number, conns: net.Socket[]): Promise<Buffer> {
  (await tcpClient(port, conns)).write(randomBytes(rnd, 3000));
  (await tcpClient(port, conns)).write(Buffer.from([0, 0, 0, 0, 0, 1, 0xff]));
  (await tcpClient(port, conns)).write(tcpFrame(randomBytes(rnd, 40)));
  const abandoned = await tcpClient(port, conns);
  abandoned.write(Buffer.from([0xff, 0xff, 1, 2, 3]));
  abandoned.destroy();
  const slow = await tcpClient(port, conns);
  const answer = once(slow, 'data');
  for (const byte of tcpFrame(buildQuery('slow.fuzz.test', 'A', { id: 77 }))) {
    slow.write(Buffer.from([byte]));
    await new Promise((r) => setTimeout(r, 1));
  }
  const [m] = (await within(answer, 'the answer to a query sent a byte at a time')) as [Buffer];
  return m;
}
