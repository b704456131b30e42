/**
 * Timing integrity: a busy DNS data plane must never delay VRRP adverts. The master's resolver
 * (same hadns process as its balancer; the VRRP engine runs in its own child process) is
 * saturated by dnsperf from the client namespace while the backup's namespace captures the
 * master's adverts on the wire. Asserted: the advert intervals stay within 10% of the configured
 * interval (p90; p99 and the worst gap are printed), no gap comes near Master_Down_Interval, and
 * no spurious failover happens (A stays MASTER, B stays BACKUP, the VIP never moves).
 *
 * The CI run lasts LOAD_S seconds (default 20); the 10-minute soak is the same test with
 * HADNS_SOAK_SECONDS=600.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Lab, isRoot } from '../../src/lab/lab.js';
import { ADDR, ADVERT_INT, HOSTS, PRIORITY, RESOLVER_PORT } from '../../src/lab/plan.js';

const skip = isRoot() ? false : 'needs root (network namespaces, veth, a bridge)';
const LOAD_S = Number(process.env.HADNS_SOAK_SECONDS ?? 20);
const INTERVAL_MS = ADVERT_INT * 1000;

let lab: Lab | null = null;
const children: ChildProcess[] = [];

before(async () => {
  if (skip) return;
  lab = Lab.create();
  await lab.up(() => undefined, 30_000);
  await lab.waitSteady(15_000);
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.pid) try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ }
  if (lab) await lab.down(() => undefined);
});

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

test(`VRRP adverts keep time while dnsperf saturates the master's resolver (${LOAD_S} s)`, { skip, timeout: (LOAD_S + 60) * 1000 }, async (t) => {
  const l = lab!;
  // Capture the master's adverts where the backup receives them.
  const cap = spawn('ip', ['netns', 'exec', l.ns('b'), 'tcpdump', '-i', 'eth0', '-n', '-l', '-tt', '--immediate-mode', `ip proto 112 and src host ${ADDR.a}`],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(cap);
  const stamps: number[] = [];
  createInterface({ input: cap.stdout! }).on('line', (line) => {
    const ts = Number(line.split(' ')[0]);
    if (Number.isFinite(ts)) stamps.push(ts * 1000);
  });
  // tcpdump says "listening on" on stderr once the capture runs.
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('tcpdump did not start')), 10_000);
    cap.stderr!.on('data', (d: Buffer) => { if (/listening on/.test(d.toString())) { clearTimeout(timer); resolve(); } });
  });

  const queries = join(l.dir, 'dnsperf-queries.txt');
  writeFileSync(queries, HOSTS.map(([, n]) => `${n} A`).join('\n') + '\n');
  const logLinesBefore = { a: l.nodeLog('a').length, b: l.nodeLog('b').length };
  const perf = spawn('ip', ['netns', 'exec', l.ns('client'), 'dnsperf', '-s', ADDR.a, '-p', String(RESOLVER_PORT), '-d', queries, '-l', String(LOAD_S), '-q', '500', '-c', '4'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(perf);
  let perfOut = '';
  perf.stdout!.on('data', (d: Buffer) => { perfOut += d.toString(); });
  const watch = l.watchVip(50);
  await new Promise<void>((resolve) => perf.on('exit', () => resolve()));
  const vip = await watch.stop();
  cap.kill('SIGTERM');

  const qps = Number(/Queries per second:\s+([\d.]+)/.exec(perfOut)?.[1] ?? NaN);
  assert.ok(qps > 1000, `dnsperf loaded the resolver (got ${qps} q/s):\n${perfOut}`);

  // Intervals between consecutive adverts, only those inside the load window.
  const gaps: number[] = [];
  for (let i = 1; i < stamps.length; i++) gaps.push(stamps[i]! - stamps[i - 1]!);
  assert.ok(gaps.length > (LOAD_S * 1000 / INTERVAL_MS) * 0.8, `adverts captured: ${gaps.length + 1}`);
  const dev = gaps.map((g) => Math.abs(g - INTERVAL_MS)).sort((a, b) => a - b);
  const p90 = pct(dev, 90), p99 = pct(dev, 99), worstGap = Math.max(...gaps);
  const masterDown = 3 * INTERVAL_MS + ((256 - PRIORITY.b) * INTERVAL_MS) / 256;
  t.diagnostic(`resolver under load: ${qps.toFixed(0)} q/s from dnsperf; ${gaps.length + 1} adverts every ${INTERVAL_MS} ms: `
    + `deviation p90 ${p90.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms; worst gap ${worstGap.toFixed(1)} ms (Master_Down_Interval ${masterDown.toFixed(0)} ms)`);
  assert.ok(p90 <= INTERVAL_MS * 0.1, `p90 jitter ${p90.toFixed(2)} ms > 10% of ${INTERVAL_MS} ms`);
  // At most 0.6 of Master_Down_Interval (65 ms at 30 ms adverts): twice the worst gap seen since
  // the gratuitous ARPs stopped opening a packet socket per frame (31 ms at 88k q/s). Before that
  // fix the burst the master sends 5 s after taking over (garp master_delay) closed five packet
  // sockets, each close waiting for an RCU grace period, and stalled the engine 70-107 ms once per
  // run on the twentieth session's VM (docs/vrrp.md, "Under load"); this check catches that again.
  assert.ok(worstGap < masterDown * 0.6, `worst gap ${worstGap.toFixed(1)} ms is close to Master_Down_Interval ${masterDown} ms`);

  // No spurious failover: no VRRP transition logged by either node during the run, VIP on A only.
  const transitions = (['a', 'b'] as const).flatMap((n) => l.nodeLog(n).slice(logLinesBefore[n]).filter((o) => o.msg === 'vrrp state').map((o) => `${n}: ${o.prev} → ${o.state}`));
  assert.deepEqual(transitions, [], 'no VRRP transition under load');
  assert.ok(vip.length > 0 && vip.every((s) => s.a && !s.b), 'the VIP stayed on node-a alone');
});
