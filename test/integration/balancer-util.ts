/**
 * Helpers for the balancer integration tests: a bounded-concurrency UDP load generator that
 * matches answers by ID (one socket, so it also exercises many queries per client port), and
 * a small stub DnsHandler. Loopback only; every socket is closed before the promise resolves.
 */
import dgram from 'node:dgram';
import { buildQuery } from '../../src/dns/message.js';
import { errorResponse, QueryInfo, rcodeOf, readId, scanMessage, isTruncated } from '../../src/dns/wire.js';
import type { DnsHandler, QueryContext, Reply } from '../../src/dns/handler.js';

export interface LoadResult {
  sent: number;
  answered: number;
  /** No answer within timeoutMs (a client would have retried or failed). */
  lost: number;
  rcodes: Record<number, number>;
  truncated: number;
  maxLatencyMs: number;
}

export interface LoadOptions {
  n: number;
  concurrency?: number;
  timeoutMs?: number;
  name?: (i: number) => string;
  /** Called after each answer with the number answered so far (for mid-load faults). */
  onAnswer?: (answered: number) => void;
  host?: string;
}

export function loadUdp(port: number, o: LoadOptions): Promise<LoadResult> {
  const conc = o.concurrency ?? 50;
  const timeoutMs = o.timeoutMs ?? 1000;
  const name = o.name ?? ((i: number) => `q${i}.test`);
  const sock = dgram.createSocket('udp4');
  const res: LoadResult = { sent: 0, answered: 0, lost: 0, rcodes: {}, truncated: 0, maxLatencyMs: 0 };
  const inflight = new Map<number, { sentAt: number; timer: NodeJS.Timeout }>();
  let nextId = 1;
  return new Promise((resolve) => {
    const finishIfDone = (): void => {
      if (res.answered + res.lost === o.n) { sock.close(); resolve(res); }
    };
    const sendOne = (): void => {
      if (res.sent >= o.n) return;
      const i = res.sent++;
      const id = nextId; nextId = (nextId % 65535) + 1;
      const msg = buildQuery(name(i), 'A', { id });
      const timer = setTimeout(() => { inflight.delete(id); res.lost++; sendOne(); finishIfDone(); }, timeoutMs);
      inflight.set(id, { sentAt: performance.now(), timer });
      sock.send(msg, port, o.host ?? '127.0.0.1');
    };
    sock.on('message', (m) => {
      const id = readId(m);
      const e = inflight.get(id);
      if (!e) return;
      clearTimeout(e.timer);
      inflight.delete(id);
      res.answered++;
      const rc = rcodeOf(m);
      res.rcodes[rc] = (res.rcodes[rc] ?? 0) + 1;
      if (isTruncated(m)) res.truncated++;
      const lat = performance.now() - e.sentAt;
      if (lat > res.maxLatencyMs) res.maxLatencyMs = lat;
      o.onAnswer?.(res.answered);
      sendOne();
      finishIfDone();
    });
    sock.bind(0, '127.0.0.1', () => { for (let k = 0; k < conc; k++) sendOne(); });
  });
}

/** A DnsHandler standing in for the in-process resolver: answers REFUSED-free NOERROR with no records, marking AA. */
export class StubHandler implements DnsHandler {
  calls = 0;
  last: QueryContext | null = null;
  private readonly info = new QueryInfo();
  private readonly out = Buffer.alloc(4096);
  handle(msg: Buffer, ctx: QueryContext, reply: Reply): void {
    this.calls++;
    this.last = ctx;
    if (scanMessage(msg, msg.length, this.info) < 0) { reply(this.out, 0); return; }
    const n = errorResponse(msg, this.info, 0, this.out);
    this.out[2] |= 0x04; // AA: marks "answered locally"
    reply(this.out, n); // the buffer is reused: the balancer must copy
  }
}

export function query(name: string, type = 'A', id?: number): Buffer { return buildQuery(name, type, { id }); }
