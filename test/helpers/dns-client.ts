/**
 * A small DNS client for tests: UDP with a timeout, TCP with pipelining. Loopback only.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { isIP } from 'node:net';
import dnsPacket from 'dns-packet';
import { buildQuery, type QueryOptions } from '../../src/dns/message.js';
import { TcpFramer, tcpFrame } from '../../src/dns/wire.js';

export type Resp = ReturnType<typeof dnsPacket.decode> & { rcode?: string; raw: Buffer };

export function decodeResp(raw: Buffer): Resp {
  return Object.assign(dnsPacket.decode(raw), { raw }) as Resp;
}

/** Sends raw bytes over UDP; resolves with the raw answer or null after timeoutMs. */
export function udpRaw(port: number, msg: Buffer, timeoutMs = 2000, host = '127.0.0.1'): Promise<Buffer | null> {
  const sock = dgram.createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
  return new Promise((resolve) => {
    const t = setTimeout(() => { sock.close(); resolve(null); }, timeoutMs);
    sock.on('message', (m) => { clearTimeout(t); sock.close(); resolve(m); });
    sock.on('error', () => { clearTimeout(t); sock.close(); resolve(null); });
    sock.send(msg, port, host);
  });
}

export async function udpQuery(port: number, name: string, type = 'A', opts: QueryOptions & { timeoutMs?: number; host?: string } = {}): Promise<Resp | null> {
  const raw = await udpRaw(port, buildQuery(name, type, opts), opts.timeoutMs ?? 2000, opts.host);
  return raw ? decodeResp(raw) : null;
}

/** Sends several queries on one TCP connection (pipelined) and collects the answers by ID. */
/**
 * Sends `queries` on one TCP connection and resolves with the answers once all came. With
 * `halfClose` the client shuts its side right after the queries (as some clients do) and the
 * promise resolves only once the server has closed its side as well.
 */
export function tcpQueries(port: number, queries: Buffer[], timeoutMs = 3000, host = '127.0.0.1', halfClose = false): Promise<Resp[]> {
  return new Promise((resolve, reject) => {
    const got: Resp[] = [];
    const c = net.connect({ port, host });
    const t = setTimeout(() => { c.destroy(); reject(new Error(`TCP: ${got.length}/${queries.length} answers before timeout`)); }, timeoutMs);
    const f = new TcpFramer((m) => {
      got.push(decodeResp(Buffer.from(m)));
      if (got.length === queries.length && !halfClose) { clearTimeout(t); c.end(); resolve(got); }
    });
    c.on('data', (d) => f.push(d));
    c.on('end', () => {
      if (!halfClose) return;
      clearTimeout(t);
      if (got.length === queries.length) resolve(got);
      else reject(new Error(`TCP: the server closed after ${got.length}/${queries.length} answers`));
    });
    c.on('error', (e) => { clearTimeout(t); reject(e); });
    c.on('connect', () => {
      const all = Buffer.concat(queries.map((q) => tcpFrame(q)));
      if (halfClose) c.end(all); else c.write(all);
    });
  });
}

/** Polls `fn` until it returns a truthy value or the deadline passes. */
export async function until<T>(fn: () => Promise<T> | T, timeoutMs = 5000, stepMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('condition not met before deadline');
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Answers as "TYPE data" strings (TXT strings decoded, objects as JSON) for easy assertions. */
export function answersOf(r: Resp | null): string[] {
  return (r?.answers ?? []).map((a) => {
    const d = (a as { data: unknown }).data;
    if (typeof d === 'string') return `${a.type} ${d}`;
    if (Array.isArray(d)) return `${a.type} ${JSON.stringify(d.map((x) => (Buffer.isBuffer(x) ? x.toString() : x)))}`;
    return `${a.type} ${JSON.stringify(d)}`;
  });
}
