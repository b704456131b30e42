/**
 * The lab's client load: a steady stream of UDP DNS queries to the VIP, one try per query with a
 * fixed timeout (a stub resolver with `attempts:1`), and the accounting of what came back.
 *
 * Two halves:
 *  - a pure core (LoadAccount, bucketize, outages, summarize) over query records, unit-tested;
 *  - a thin sender (runLoad) that this file runs when executed as a program, inside the client
 *    namespace: `ip netns exec NS node dist/src/lab/load.js --target 10.77.0.10:53 --rate 200
 *    --duration 10 --timeout 1000`. It is bounded in count and time and stops by itself; it prints
 *    progress lines and one final `result` line (JSON) on stdout.
 *
 * Times are CLOCK_MONOTONIC milliseconds (process.hrtime), which is one clock for every process
 * of the machine, so the lab process can line the client's records up with its own fault times.
 */
import dgram from 'node:dgram';
import { buildQuery } from '../dns/message.js';

/** Monotonic milliseconds, comparable across processes on one machine. */
export function monoMs(): number { return Number(process.hrtime.bigint()) / 1e6; }

/**
 * o: answered (NOERROR with data); e: answered with an error (SERVFAIL, REFUSED, empty);
 * t: no answer within the timeout (including answers from a wrong source address, which a real
 * client drops — e.g. a reply from the node's own address instead of the VIP); p: still pending.
 */
export type Outcome = 'o' | 'e' | 't' | 'p';

export interface LoadResult {
  /** Monotonic ms when query 0 was due. */
  t0: number;
  timeoutMs: number;
  rate: number;
  /** Per query: send time, ms after t0 (0.1 ms precision). */
  sentAt: number[];
  /** Per query: one Outcome character. */
  outcome: string;
  /** Per answered query: round-trip ms (−1 when not answered). */
  rtt: number[];
  /** Replies that came from another source than the target (dropped, as a real client does). */
  wrongSource: number;
  /** Replies that arrived after the query had already timed out. */
  late: number;
}

/** The pure accounting core: what was sent when, and what happened to it. */
export class LoadAccount {
  readonly sentAt: number[] = [];
  private readonly out: Outcome[] = [];
  readonly rtt: number[] = [];
  wrongSource = 0;
  late = 0;
  /** Pending sequence numbers in send order (timeouts expire in this order). */
  private readonly pending: number[] = [];
  private head = 0;

  constructor(readonly t0: number, readonly timeoutMs: number, readonly rate: number) {}

  /** Records query `seq` (must be the next number) sent at monotonic `t`. */
  sent(t: number): number {
    const seq = this.sentAt.length;
    this.sentAt.push(t);
    this.out.push('p');
    this.rtt.push(-1);
    this.pending.push(seq);
    return seq;
  }

  /** An answer for `seq` at `t`: counted only if it is still pending and in time. */
  answered(seq: number, t: number, good: boolean): boolean {
    if (seq < 0 || seq >= this.out.length) return false;
    if (this.out[seq] !== 'p' || t - this.sentAt[seq]! > this.timeoutMs) { this.late++; return false; }
    this.out[seq] = good ? 'o' : 'e';
    this.rtt[seq] = t - this.sentAt[seq]!;
    return true;
  }

  /** Marks every query older than the timeout as lost; returns how many are still pending. */
  expire(now: number): number {
    while (this.head < this.pending.length) {
      const seq = this.pending[this.head]!;
      if (this.out[seq] !== 'p') { this.head++; continue; }
      if (now - this.sentAt[seq]! < this.timeoutMs) break;
      this.out[seq] = 't';
      this.head++;
    }
    return this.pending.length - this.head;
  }

  outcome(seq: number): Outcome { return this.out[seq]!; }
  get count(): number { return this.sentAt.length; }

  counts(): { sent: number; ok: number; error: number; timeout: number; pending: number } {
    const c = { sent: this.out.length, ok: 0, error: 0, timeout: 0, pending: 0 };
    for (const o of this.out) {
      if (o === 'o') c.ok++; else if (o === 'e') c.error++; else if (o === 't') c.timeout++; else c.pending++;
    }
    return c;
  }

  result(): LoadResult {
    return {
      t0: this.t0, timeoutMs: this.timeoutMs, rate: this.rate,
      sentAt: this.sentAt.map((t) => Math.round((t - this.t0) * 10) / 10),
      outcome: this.out.join(''),
      rtt: this.rtt.map((r) => (r < 0 ? -1 : Math.round(r * 10) / 10)),
      wrongSource: this.wrongSource, late: this.late,
    };
  }
}

// ---------------------------------------------------------------- analysis (pure)

/** One query of a result, with absolute (monotonic) send time. */
export interface Q { t: number; o: Outcome; rtt: number }

export function queries(r: LoadResult): Q[] {
  return r.sentAt.map((s, i) => ({ t: r.t0 + s, o: r.outcome[i] as Outcome, rtt: r.rtt[i]! }));
}

export const isLost = (q: Q): boolean => q.o !== 'o';

export interface Bucket { start: number; sent: number; ok: number; lost: number }

/** Queries per fixed-width bucket of send time, from `from` (monotonic ms) on. */
export function bucketize(qs: Q[], from: number, widthMs: number, to = Infinity): Bucket[] {
  const out: Bucket[] = [];
  for (const q of qs) {
    if (q.t < from || q.t >= to) continue;
    const i = Math.floor((q.t - from) / widthMs);
    while (out.length <= i) out.push({ start: from + out.length * widthMs, sent: 0, ok: 0, lost: 0 });
    const b = out[i]!;
    b.sent++;
    if (isLost(q)) b.lost++; else b.ok++;
  }
  return out;
}

export interface Outage {
  /** Send time of the first lost query of the run. */
  start: number;
  /** Send time of the next answered query (or the last query's time when none followed). */
  end: number;
  lost: number;
  /** No answered query followed: the outage lasted at least until the load ended. */
  open: boolean;
}

/** Runs of consecutive lost queries (in send order): how long the service was dark as a client saw it. */
export function outages(qs: Q[]): Outage[] {
  const out: Outage[] = [];
  let cur: Outage | null = null;
  for (const q of qs) {
    if (isLost(q)) {
      if (!cur) cur = { start: q.t, end: q.t, lost: 0, open: true };
      cur.lost++;
      cur.end = q.t;
    } else if (cur) {
      cur.end = q.t;
      cur.open = false;
      out.push(cur);
      cur = null;
    }
  }
  if (cur) out.push(cur);
  return out;
}

export interface WindowSummary { sent: number; ok: number; lost: number; lostPct: number; longestOutageMs: number; outageOpen: boolean }

/** Totals over queries sent in [from, to). */
export function summarize(qs: Q[], from = -Infinity, to = Infinity): WindowSummary {
  const sel = qs.filter((q) => q.t >= from && q.t < to);
  const lost = sel.filter(isLost).length;
  const outs = outages(sel);
  const longest = outs.reduce<Outage | null>((m, o) => (!m || o.end - o.start > m.end - m.start ? o : m), null);
  return {
    sent: sel.length, ok: sel.length - lost, lost,
    lostPct: sel.length ? (100 * lost) / sel.length : 0,
    longestOutageMs: longest ? longest.end - longest.start : 0,
    outageOpen: longest?.open ?? false,
  };
}

// ---------------------------------------------------------------- the sender (shell)

export interface LoadOptions {
  host: string;
  port: number;
  rate: number;
  durationMs: number;
  timeoutMs: number;
  names: readonly string[];
  /** Called about once a second with the running counts. */
  onProgress?: (c: ReturnType<LoadAccount['counts']>, now: number) => void;
}

/** Hard bounds: the load stops by itself whatever it is asked. */
export const MAX_RATE = 5000;
export const MAX_DURATION_MS = 600_000;

/**
 * Sends `rate` queries per second for `durationMs` on one unconnected UDP socket (so replies from a
 * wrong source are seen and dropped), waits `timeoutMs` for the last ones, and returns the result.
 * Query IDs are the sequence number mod 65536: unique among the queries in flight.
 */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const rate = Math.min(Math.max(o.rate, 1), MAX_RATE);
  const duration = Math.min(Math.max(o.durationMs, 0), MAX_DURATION_MS);
  const total = Math.max(1, Math.round((rate * duration) / 1000));
  const interval = 1000 / rate;
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, () => r()));
  const t0 = monoMs() + 5;
  const acc = new LoadAccount(t0, o.timeoutMs, rate);
  const ids = new Map<number, number>(); // id → seq
  const templates = o.names.map((n) => buildQuery(n, 'A', { id: 0, rd: true }));

  sock.on('message', (m, rinfo) => {
    const now = monoMs();
    if (m.length < 12) return;
    if (rinfo.address !== o.host || rinfo.port !== o.port) { acc.wrongSource++; return; }
    const id = m.readUInt16BE(0);
    const seq = ids.get(id);
    if (seq === undefined) { acc.late++; return; }
    ids.delete(id);
    const rcode = m[3]! & 0x0f;
    const ancount = m.readUInt16BE(6);
    acc.answered(seq, now, rcode === 0 && ancount > 0);
  });
  sock.on('error', () => { /* ICMP errors surface here on some kernels: the query simply times out */ });

  let lastProgress = t0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = monoMs();
      while (acc.count < total && t0 + acc.count * interval <= now) {
        const seq = acc.sent(monoMs());
        const id = seq & 0xffff;
        ids.set(id, seq);
        const q = Buffer.from(templates[seq % templates.length]!);
        q.writeUInt16BE(id, 0);
        sock.send(q, o.port, o.host);
      }
      const before = acc.counts().timeout;
      acc.expire(now);
      // Forget IDs of expired queries so a very late reply is not matched to a reused ID.
      if (acc.counts().timeout !== before) for (const [id, s] of ids) if (acc.outcome(s) === 't') ids.delete(id);
      if (o.onProgress && now - lastProgress >= 1000) { lastProgress = now; o.onProgress(acc.counts(), now); }
      if (acc.count >= total && acc.expire(now) === 0) { resolve(); return; }
      const next = acc.count < total ? t0 + acc.count * interval : now + 10;
      setTimeout(tick, Math.max(0, Math.min(next - monoMs(), 10)));
    };
    setTimeout(tick, Math.max(0, t0 - monoMs()));
  });
  sock.close();
  return acc.result();
}

function arg(args: string[], name: string, dflt?: string): string {
  const i = args.indexOf(name);
  const v = i >= 0 ? args[i + 1] : dflt;
  if (v === undefined) throw new Error(`missing ${name}`);
  return v;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const [host, port] = arg(args, '--target').split(':');
  const names = arg(args, '--names', 'www.lab.test').split(',').filter(Boolean);
  const res = await runLoad({
    host: host!, port: Number(port ?? 53),
    rate: Number(arg(args, '--rate', '200')),
    durationMs: Number(arg(args, '--duration', '10')) * 1000,
    timeoutMs: Number(arg(args, '--timeout', '1000')),
    names,
    onProgress: (c, now) => process.stdout.write(JSON.stringify({ type: 'progress', now, ...c }) + '\n'),
  });
  process.stdout.write(JSON.stringify({ type: 'result', ...res }) + '\n');
}

if (process.argv[1] && /load\.js$/.test(process.argv[1])) {
  // The parent going away ends the load too (it is bounded anyway).
  process.on('SIGTERM', () => process.exit(0));
  await main();
}
