/**
 * Where a balancer's latency goes, from a loopback capture (`tcpdump -i lo -w FILE`) of DNS over
 * UDP through it: each client query is followed to its forward, the backend's answer and the
 * answer to the client, and the time splits into ingress (query in → forward out), backend
 * (forward → backend answer) and egress (backend answer → answer out). With stalls in the run
 * (`bench/balancer.ts --stall`, or this VM's own), a gap in the balancer's output longer than
 * `gapMs` is a stall, and the report says how the balancer caught up after each one: how late
 * the answers that had waited in its sockets went out, how bad the worst query that arrived
 * during the stall was, and whether the backends answered that backlog in the order it arrived.
 *
 * Usage: node dist/bench/segments.js FILE.pcap BALANCER_PORT [--gap MS]
 * (bench/balancer.ts --capture DIR writes such files and prints this report for each balancer.)
 *
 * Classic little-endian pcap (what tcpdump writes here), IPv4/UDP; other packets are skipped. A
 * forward is matched to the oldest unforwarded client query with the same question name, as the
 * bench's query file repeats each name only seconds apart; answers are matched by ports and ID.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

interface Pkt { t: number; sport: number; dport: number; id: number; qr: boolean; name: string }
/** One client query: arrival, forward, backend answer, answer out (seconds, capture clock). */
export interface Trace { t0: number; t1?: number; t2?: number; t3?: number; name: string }

/** The UDP/DNS packets of a classic pcap, in capture order. */
export function readPcap(buf: Buffer): Pkt[] {
  if (buf.length < 24) throw new Error('not a pcap file (shorter than its header)');
  const magic = buf.readUInt32LE(0);
  if (magic !== 0xa1b2c3d4 && magic !== 0xa1b23c4d) throw new Error('not a little-endian classic pcap file (pcapng? write with tcpdump -w)');
  const nsec = magic === 0xa1b23c4d;
  const link = buf.readUInt32LE(20);
  const l2 = link === 1 ? 14 : link === 113 ? 16 : link === 276 ? 20 : link === 0 ? 4 : link === 101 || link === 12 ? 0 : -1;
  if (l2 < 0) throw new Error(`link type ${link} not supported (capture on lo or an Ethernet device)`);
  const out: Pkt[] = [];
  for (let off = 24; off + 16 <= buf.length;) {
    const t = buf.readUInt32LE(off) + buf.readUInt32LE(off + 4) / (nsec ? 1e9 : 1e6);
    const incl = buf.readUInt32LE(off + 8);
    const p = off + 16, end = Math.min(buf.length, p + incl);
    off = p + incl;
    const ip = p + l2;
    if (ip + 20 > end || buf[ip]! >> 4 !== 4 || buf[ip + 9] !== 17) continue;
    const u = ip + (buf[ip]! & 15) * 4, d = u + 8;
    if (d + 12 > end) continue;
    const labels: string[] = [];
    let q = d + 12;
    while (q < end && buf[q]! > 0 && buf[q]! < 64 && q + 1 + buf[q]! <= end) { labels.push(buf.toString('latin1', q + 1, q + 1 + buf[q]!)); q += 1 + buf[q]!; }
    out.push({ t, sport: buf.readUInt16BE(u), dport: buf.readUInt16BE(u + 2), id: buf.readUInt16BE(d), qr: (buf[d + 2]! & 0x80) !== 0, name: labels.join('.').toLowerCase() });
  }
  return out;
}

/** Client queries through the balancer on `front`, each with whatever of its path was seen. */
export function traces(pk: Pkt[], front: number): Trace[] {
  const byClient = new Map<string, Trace>(), byForward = new Map<string, Trace>(), unforwarded = new Map<string, Trace[]>();
  const all: Trace[] = [];
  for (const x of pk) {
    if (x.dport === front && !x.qr) {
      const r: Trace = { t0: x.t, name: x.name };
      all.push(r);
      byClient.set(`${x.sport}:${x.id}`, r);
      const l = unforwarded.get(x.name);
      if (l) l.push(r); else unforwarded.set(x.name, [r]);
    } else if (x.sport === front && x.qr) {
      const r = byClient.get(`${x.dport}:${x.id}`);
      if (r && r.t3 === undefined) { r.t3 = x.t; byClient.delete(`${x.dport}:${x.id}`); }
    } else if (!x.qr && x.sport !== front) {
      const r = unforwarded.get(x.name)?.shift();
      if (r) { r.t1 = x.t; byForward.set(`${x.dport}:${x.sport}:${x.id}`, r); }
    } else if (x.qr && x.dport !== front) {
      const k = `${x.sport}:${x.dport}:${x.id}`;
      const r = byForward.get(k);
      if (r) { r.t2 = x.t; byForward.delete(k); }
    }
  }
  return all;
}

export interface StallReport {
  stalls: number;
  /** Medians over the stalls, ms after the stall's end (the balancer's first output). */
  waitingOutMs: number;
  /** Median over stalls of the worst total latency of a query that arrived during the stall. */
  worstArrivedMs: number;
  /** Median over stalls of the length of the output gap. */
  gapMs: number;
  /** Share of pairs of queries that arrived during a stall whose backend answers came in the other order. */
  inversions: number;
  /** Median over stalls of the backends' pace on that backlog: µs between its first and last backend answer per answer. */
  backendPaceUs: number;
  /** For the k-th oldest query that arrived during a stall (k = 1..OLDEST), the median over stalls of
   *  when its answer went out, µs after the stall's end: the p99 is made of these. */
  oldestOutUs: number[];
}

/** How many of each stall's oldest arrivals `oldestOutUs` follows. */
const OLDEST = 4;

export interface Report {
  answered: number;
  /** Queries whose whole path was matched. */
  complete: number;
  /** p50/p90/p99 in ms of total, ingress, backend, egress. */
  pct: Record<'total' | 'ingress' | 'backend' | 'egress', [number, number, number]>;
  /** Mean segments (ms) over the slowest 1% by total. */
  slowest: { ingress: number; backend: number; egress: number };
  stall: StallReport;
}

const quantile = (a: number[], q: number): number => (a.length ? a[Math.min(a.length - 1, Math.floor(a.length * q))]! : NaN);
const median = (a: number[]): number => quantile([...a].sort((x, y) => x - y), 0.5);

export function analyze(pk: Pkt[], front: number, gapMs = 2.5): Report {
  const all = traces(pk, front);
  const done = all.filter((r) => r.t1 !== undefined && r.t2 !== undefined && r.t3 !== undefined) as Required<Trace>[];
  const seg = (f: (r: Required<Trace>) => number): [number, number, number] => {
    const a = done.map(f).sort((x, y) => x - y);
    return [quantile(a, 0.5) * 1e3, quantile(a, 0.9) * 1e3, quantile(a, 0.99) * 1e3];
  };
  const byTotal = [...done].sort((a, b) => (b.t3 - b.t0) - (a.t3 - a.t0)).slice(0, Math.max(1, Math.ceil(done.length / 100)));
  const mean = (f: (r: Required<Trace>) => number): number => (byTotal.length ? byTotal.reduce((s, r) => s + f(r), 0) / byTotal.length * 1e3 : NaN);
  // Stalls: gaps in what the balancer sends (forwards and answers).
  const outs = pk.filter((x) => (x.sport === front && x.qr) || (!x.qr && x.sport !== front && x.dport !== front)).map((x) => x.t);
  const stalls: [number, number][] = [];
  for (let i = 1; i < outs.length; i++) if (outs[i]! - outs[i - 1]! > gapMs / 1e3) stalls.push([outs[i - 1]!, outs[i]!]);
  const byArrival = [...done].sort((a, b) => a.t0 - b.t0);
  const waiting: number[] = [], worst: number[] = [], gaps: number[] = [], pace: number[] = [];
  const oldest: number[][] = Array.from({ length: OLDEST }, () => []);
  let pairs = 0, inverted = 0, j = 0;
  for (const [s, e] of stalls) {
    while (j < byArrival.length && byArrival[j]!.t0 < s) j++;
    const arrived: Required<Trace>[] = [];
    for (let k = j; k < byArrival.length && byArrival[k]!.t0 <= e; k++) arrived.push(byArrival[k]!);
    if (arrived.length < 2) continue;
    gaps.push((e - s) * 1e3);
    worst.push(Math.max(...arrived.map((r) => r.t3 - r.t0)) * 1e3);
    for (let k = 0; k < OLDEST && k < arrived.length; k++) oldest[k]!.push((arrived[k]!.t3 - e) * 1e6);
    const held = done.filter((r) => r.t0 < s && r.t2 >= s && r.t2 <= e);
    if (held.length) waiting.push((Math.max(...held.map((r) => r.t3)) - e) * 1e3);
    const t2s = arrived.map((r) => r.t2);
    pace.push((Math.max(...t2s) - Math.min(...t2s)) / (arrived.length - 1) * 1e6);
    for (let a = 0; a < arrived.length; a++) {
      for (let b = a + 1; b < arrived.length; b++) { pairs++; if (arrived[a]!.t2 > arrived[b]!.t2) inverted++; }
    }
  }
  return {
    answered: all.filter((r) => r.t3 !== undefined).length,
    complete: done.length,
    pct: { total: seg((r) => r.t3 - r.t0), ingress: seg((r) => r.t1 - r.t0), backend: seg((r) => r.t2 - r.t1), egress: seg((r) => r.t3 - r.t2) },
    slowest: { ingress: mean((r) => r.t1 - r.t0), backend: mean((r) => r.t2 - r.t1), egress: mean((r) => r.t3 - r.t2) },
    stall: { stalls: gaps.length, waitingOutMs: median(waiting), worstArrivedMs: median(worst), gapMs: median(gaps), inversions: pairs ? inverted / pairs : NaN, backendPaceUs: median(pace),
      oldestOutUs: oldest.filter((a) => a.length).map(median) },
  };
}

export function formatReport(r: Report): string {
  const f = (v: number): string => v.toFixed(3);
  const row = (k: keyof Report['pct']): string => `  ${k.padEnd(8)} p50 ${f(r.pct[k][0])}  p90 ${f(r.pct[k][1])}  p99 ${f(r.pct[k][2])} ms`;
  const s = r.stall;
  return [
    `answered ${r.answered}, whole path seen for ${r.complete}`,
    row('total'), row('ingress'), row('backend'), row('egress'),
    `  slowest 1%, mean ms: ingress ${f(r.slowest.ingress)}  backend ${f(r.slowest.backend)}  egress ${f(r.slowest.egress)}`,
    s.stalls === 0 ? '  no output gaps (stalls)'
      : `  ${s.stalls} stalls (median gap ${f(s.gapMs)} ms): answers that waited in the balancer out ${f(s.waitingOutMs)} ms after it; `
        + `worst query that arrived in one ${f(s.worstArrivedMs)} ms; backends answered that backlog at ${s.backendPaceUs.toFixed(0)} µs per answer, `
        + `out of order in ${(100 * s.inversions).toFixed(0)}% of pairs; its ${s.oldestOutUs.length} oldest answered `
        + `${s.oldestOutUs.map((v) => v.toFixed(0)).join(' / ')} µs after it`,
  ].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [file, port] = process.argv.slice(2);
  const gi = process.argv.indexOf('--gap');
  const gap = gi > 0 ? Number(process.argv[gi + 1]) : 2.5;
  if (!file || !(Number(port) > 0 && Number(port) < 65536) || !(gap > 0)) {
    process.stderr.write('usage: node dist/bench/segments.js FILE.pcap BALANCER_PORT [--gap MS]\n');
    process.exit(2);
  }
  try {
    console.log(formatReport(analyze(readPcap(readFileSync(file)), Number(port), gap)));
  } catch (e) {
    process.stderr.write(`${file}: ${(e as Error).message}\n`);
    process.exit(1);
  }
}
