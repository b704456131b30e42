/**
 * bench/pool.ts: the pooled per-round comparison docs/balancer-p99.md uses (sign test, median,
 * bootstrap interval, the bench log's round lines).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bootstrapMedian, median, parseRounds, ratios, signTest, summarise } from '../../bench/pool.js';
import { prng as seeded } from '../helpers/fuzz.js';

test('sign test: exact small cases, and no overflow for thousands of rounds', () => {
  assert.equal(signTest(0, 10), 2 / 1024);
  assert.equal(signTest(10, 10), 2 / 1024);
  assert.equal(signTest(5, 10), 1);
  assert.ok(Math.abs(signTest(2, 10) - (2 * (1 + 10 + 45)) / 1024) < 1e-12);
  assert.ok(Math.abs(signTest(153, 381) - 1.433e-4) < 1e-6, String(signTest(153, 381)));
  const big = signTest(1400, 3000);
  assert.ok(Number.isFinite(big) && big > 0 && big < 0.001, String(big));
  assert.equal(signTest(0, 0), 1);
});

test('median: odd, even, empty', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});

test('bootstrap interval: repeatable with a seed, around the median, narrower with more rounds', () => {
  const rnd = seeded(7);
  const xs = Array.from({ length: 200 }, () => 0.8 + 0.4 * rnd());
  const [lo, hi] = bootstrapMedian(xs, seeded(1));
  assert.deepEqual(bootstrapMedian(xs, seeded(1)), [lo, hi]);
  assert.ok(lo <= median(xs) && median(xs) <= hi, `${lo} ≤ ${median(xs)} ≤ ${hi}`);
  const [lo2, hi2] = bootstrapMedian(xs.slice(0, 20), seeded(1));
  assert.ok(hi2 - lo2 > hi - lo, 'twenty rounds say less than two hundred');
});

const LOG = [
  'backends: dnsmasq on 1, 2 (cpu 0, 0); balancers on cpu 1; dnsperf on cpu 0',
  'nginx stream (article config): round 1/3 at 10000 q/s: p50 0.143 ms p99 1.000 ms lost 0 not NOERROR 0 run-queue wait 1.06 µs/query',
  'hadns DNS mode: round 1/3 at 10000 q/s: p50 0.152 ms p99 1.500 ms lost 0 not NOERROR 0',
  'hadns DNS mode, HADNS_X=1: round 1/3 at 10000 q/s: p50 0.1 ms p99 0.900 ms lost 0 not NOERROR 0',
  'nginx stream (article config): round 2/3 at 10000 q/s: p50 0.132 ms p99 2.000 ms lost 0',
  'hadns DNS mode: round 2/3 at 10000 q/s: p50 0.132 ms p99 1.000 ms lost 0',
  'hadns DNS mode: round 3/3 at 10000 q/s: p50 0.132 ms p99 9.000 ms lost 0', // nginx has no round 3
  '| hadns DNS mode | 35462 | 0.86× | … |',
].join('\n');

test('bench log: rounds by name (names with commas and parentheses), paired only where both ran', () => {
  const r = parseRounds(LOG);
  assert.deepEqual([...r.keys()], ['nginx stream (article config)', 'hadns DNS mode', 'hadns DNS mode, HADNS_X=1']);
  assert.deepEqual(ratios(r, 'hadns DNS mode', 'nginx stream (article config)'), [1.5, 0.5]);
  assert.deepEqual(ratios(r, 'hadns DNS mode', 'nobody'), []);
  assert.deepEqual(summarise([1.5, 0.5]), { rounds: 2, atOrUnder: 1, p: 1, median: 1 });
});

test('pool CLI: per log and pooled lines; bad input exits 2', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hadns-pool-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const a = join(dir, 'a.log'), b = join(dir, 'b.log');
  writeFileSync(a, LOG);
  writeFileSync(b, LOG.replace('p99 1.500 ms', 'p99 0.800 ms'));
  const cli = fileURLToPath(new URL('../../bench/pool.js', import.meta.url));
  const r = spawnSync(process.execPath, [cli, a, b], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /a\.log: 2 rounds, 1 at or under, sign test p 1\.0, median 1\.000×/);
  assert.match(r.stdout, /b\.log: 2 rounds, 2 at or under/);
  assert.match(r.stdout, /pooled, hadns DNS mode \/ nginx stream \(article config\): 4 rounds, 3 at or under/);
  const x = spawnSync(process.execPath, [cli, '--a', 'hadns DNS mode, HADNS_X=1', a], { encoding: 'utf8' });
  assert.match(x.stdout, /1 rounds, 1 at or under, sign test p 1\.0, median 0\.900×/);
  for (const args of [[], ['--bogus', a], [join(dir, 'missing.log')]]) {
    const e = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
    assert.equal(e.status, 2, `${args.join(' ')}: ${e.stderr}`);
  }
});
