/**
 * Pools the per-round p99 comparisons of several bench/balancer.ts runs (docs/balancer-p99.md,
 * "How it is measured"). One run's rounds share that hour of this VM's noise, so its own sign
 * test overstates what it shows; the comparison that decides is over many runs.
 *
 * Usage: node dist/bench/pool.js [--a NAME] [--b NAME] LOG…
 *   LOG: what bench/balancer.ts printed on stderr (its `NAME: round i/n at … p99 X ms …` lines).
 *   NAME: a balancer's name as in those lines; --a defaults to "hadns DNS mode", --b to
 *   "nginx stream (article config)". Prints, per log and pooled, the rounds where both ran, how
 *   many of them had A's p99 at or under B's, the two-sided sign test, the median of A / B and
 *   a 95% bootstrap interval of that median (pooled line only).
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
// The fuzz tests' seeded PRNG (mulberry32), so that a pooled line repeats exactly.
import { prng } from '../test/helpers/fuzz.js';

/**
 * Two-sided sign test: the chance of a split at least as uneven as k of n rounds if each round
 * were a coin toss (the two p99s equal but for noise). Small p: the gap is real. Summed in log
 * space, so that pooled runs of thousands of rounds do not overflow.
 */
export function signTest(k: number, n: number): number {
  if (n <= 0) return 1;
  const m = Math.min(k, n - k);
  let logC = 0; // log C(n, i)
  let tail = 0;
  const log2n = n * Math.LN2;
  for (let i = 0; i <= m; i++) {
    tail += Math.exp(logC - log2n);
    logC += Math.log((n - i) / (i + 1));
  }
  return Math.min(1, 2 * tail);
}

/** The median (the mean of the middle two for an even count); NaN when empty. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

/** 95% percentile-bootstrap interval of the median of xs; `random` in [0, 1) (injected for tests). */
export function bootstrapMedian(xs: readonly number[], random: () => number, draws = 4000): [number, number] {
  if (xs.length === 0) return [NaN, NaN];
  const meds: number[] = [];
  const sample = new Array<number>(xs.length);
  for (let d = 0; d < draws; d++) {
    for (let i = 0; i < xs.length; i++) sample[i] = xs[Math.floor(random() * xs.length)]!;
    meds.push(median(sample));
  }
  meds.sort((a, b) => a - b);
  return [meds[Math.floor(draws * 0.025)]!, meds[Math.ceil(draws * 0.975) - 1]!];
}

/** Per balancer name, round number → p99 (ms), from a bench log. */
export function parseRounds(text: string): Map<string, Map<number, number>> {
  const out = new Map<string, Map<number, number>>();
  for (const line of text.split('\n')) {
    const m = /^(.+?): round (\d+)\/\d+ at .* p99 ([\d.]+) ms/.exec(line);
    if (!m) continue;
    let byRound = out.get(m[1]!);
    if (!byRound) out.set(m[1]!, (byRound = new Map()));
    byRound.set(Number(m[2]), Number(m[3]));
  }
  return out;
}

/** A's p99 over B's, for each round of the log both ran (in round order). */
export function ratios(rounds: Map<string, Map<number, number>>, a: string, b: string): number[] {
  const ra = rounds.get(a), rb = rounds.get(b);
  if (!ra || !rb) return [];
  const out: number[] = [];
  for (const [i, pa] of [...ra].sort((x, y) => x[0] - y[0])) {
    const pb = rb.get(i);
    if (pb !== undefined && pb > 0) out.push(pa / pb);
  }
  return out;
}

export interface Summary { rounds: number; atOrUnder: number; p: number; median: number }

export function summarise(r: readonly number[]): Summary {
  const k = r.filter((x) => x <= 1).length;
  return { rounds: r.length, atOrUnder: k, p: signTest(k, r.length), median: median(r) };
}

function main(argv: string[]): number {
  let a = 'hadns DNS mode', b = 'nginx stream (article config)';
  const logs: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--a' && i + 1 < argv.length) a = argv[++i]!;
    else if (argv[i] === '--b' && i + 1 < argv.length) b = argv[++i]!;
    else if (argv[i]!.startsWith('--')) { process.stderr.write(`pool: unknown option ${argv[i]}\n`); return 2; }
    else logs.push(argv[i]!);
  }
  if (logs.length === 0) {
    process.stderr.write('usage: node dist/bench/pool.js [--a NAME] [--b NAME] LOG…\n');
    return 2;
  }
  const fmt = (s: Summary): string =>
    `${s.rounds} rounds, ${s.atOrUnder} at or under, sign test p ${s.p.toPrecision(2)}, median ${s.median.toFixed(3)}×`;
  const all: number[] = [];
  for (const f of logs) {
    let text: string;
    try { text = readFileSync(f, 'utf8'); } catch (e) { process.stderr.write(`pool: ${f}: ${(e as Error).message}\n`); return 2; }
    const r = ratios(parseRounds(text), a, b);
    console.log(`${f}: ${r.length ? fmt(summarise(r)) : `no rounds with both "${a}" and "${b}"`}`);
    all.push(...r);
  }
  if (all.length === 0) return 1;
  const [lo, hi] = bootstrapMedian(all, prng(1));
  console.log(`pooled, ${a} / ${b}: ${fmt(summarise(all))} (95% ${lo.toFixed(3)}–${hi.toFixed(3)})`);
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) process.exitCode = main(process.argv.slice(2));
