/**
 * Resolver benchmark: hadns and dnsmasq side by side on loopback in one run, same dnsmasq.conf,
 * same hosts file, same upstream (a fast responder in its own process).
 *
 * Paths: local (names from the hosts file), cache hits (a small set of upstream names, warmed first),
 * cache misses (every name new, forwarded to the upstream). Each with a 10k- and a 50k-name hosts file.
 * For each: maximum throughput (dnsperf, q/s) and server CPU per query at a fixed rate (utime+stime
 * from /proc/PID/stat around the run), which stays meaningful when dnsperf itself is the bottleneck,
 * with the p50/p99 latency of that fixed-rate run (dnsperf -v, every query's latency).
 *
 * Servers run pinned to one core, dnsperf, the upstream and this process to another (taskset).
 * Not a test. Usage (after `npm run build`):
 *   node dist/bench/resolver.js [--duration 8] [--sizes 10000,50000] [--paths local,hit,miss]
 *        [--rate-local 20000] [--rate-hit 20000] [--rate-miss 1000] [--server-cpu 0] [--client-cpu 1]
 *        [--upstream-ttl 3600]
 * Prints a markdown table on stdout; progress on stderr.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs, pinBenchToClientCpu } from './args.js';
import net from 'node:net';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { freePort } from '../src/util/net.js';
import { probeDns } from '../src/node/health.js';

const here = dirname(fileURLToPath(import.meta.url));
const isTs = import.meta.url.endsWith('.ts');
const root = join(here, isTs ? '..' : '../..');
const DNSMASQ = '/usr/sbin/dnsmasq';
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

const o = benchArgs({
  duration: { type: 'string', default: '8' },
  sizes: { type: 'string', default: '10000,50000' },
  paths: { type: 'string', default: 'local,hit,miss' },
  'rate-local': { type: 'string', default: '20000' },
  'rate-hit': { type: 'string', default: '20000' },
  'rate-miss': { type: 'string', default: '1000' },
  'server-cpu': { type: 'string', default: '0' },
  'client-cpu': { type: 'string', default: '1' },
  'upstream-ttl': { type: 'string', default: '3600' },
}, `usage: node dist/bench/resolver.js [--duration 8] [--sizes 10000,50000] [--paths local,hit,miss]
       [--rate-local 20000] [--rate-hit 20000] [--rate-miss 1000] [--server-cpu 0] [--client-cpu 1]
       [--upstream-ttl 3600]   (0: nothing the upstream says is cached; the hit path then misses too)`);
const DURATION = Number(o.duration);
const SIZES = o.sizes!.split(',').map(Number);
const PATHS = o.paths!.split(',') as Path[];
const RATE: Record<Path, number> = { local: Number(o['rate-local']), hit: Number(o['rate-hit']), miss: Number(o['rate-miss']) };
type Path = 'local' | 'hit' | 'miss';
type Server = 'dnsmasq' | 'hadns';
const log = (s: string) => process.stderr.write(s + '\n');

// ---------- helpers ----------


/** A minimal A query; resolves when any reply arrives. */

async function waitServing(port: number, p: ChildProcess, what: string): Promise<void> {
  const deadline = Date.now() + 20000;
  while (Date.now() < deadline) {
    if (p.exitCode !== null) throw new Error(`${what} exited (${p.exitCode})`);
    if (await probeDns('127.0.0.1', port, 'h0.bench.test', 300)) return;
  }
  throw new Error(`${what} not answering on ${port}`);
}

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15 of the full line)
}

async function stop(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null || !p.pid) return;
  const e = once(p, 'exit');
  process.kill(p.pid, 'SIGTERM');
  const t = setTimeout(() => { if (p.exitCode === null && p.pid) process.kill(p.pid, 'SIGKILL'); }, 5000);
  await e; clearTimeout(t);
}

interface PerfResult { qps: number; completed: number; lost: number; p50: number; p99: number }
/** `-v` among args: every query's latency is read, giving p50 and p99 (ms). */
function dnsperf(port: number, file: string, args: string[]): PerfResult {
  const r = spawnSync('taskset', ['-c', o['client-cpu']!, 'dnsperf', '-s', '127.0.0.1', '-p', String(port), '-d', file, '-t', '2', ...args],
    { encoding: 'utf8', maxBuffer: 1 << 27 });
  const out = r.stdout ?? '';
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
  const lat: number[] = [];
  if (args.includes('-v')) {
    // "> NOERROR name A 0.000123": the last field is the latency in seconds.
    for (const line of out.split('\n')) {
      if (!line.startsWith('> ')) continue;
      const ms = Number(line.slice(line.lastIndexOf(' ') + 1)) * 1000;
      if (Number.isFinite(ms)) lat.push(ms);
    }
    lat.sort((a, b) => a - b);
  }
  const at = (q: number) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(lat.length * q))] : NaN);
  const res = {
    qps: num(/Queries per second:\s+([\d.]+)/), completed: num(/Queries completed:\s+(\d+)/), lost: num(/Queries lost:\s+(\d+)/),
    p50: at(0.5), p99: at(0.99),
  };
  if (Number.isNaN(res.qps)) throw new Error(`dnsperf failed: ${r.stderr || out}`);
  return res;
}

// ---------- data ----------

function writeHosts(path: string, n: number): void {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) lines.push(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255} h${i}.bench.test`);
  writeFileSync(path, lines.join('\n') + '\n', { mode: 0o644 });
}
function writeQueries(path: string, names: Iterable<string>): void {
  const out: string[] = [];
  for (const n of names) out.push(`${n} A`);
  writeFileSync(path, out.join('\n') + '\n', { mode: 0o644 });
}
function* randomLocal(n: number, count: number): Generator<string> {
  for (let i = 0; i < count; i++) yield `h${Math.floor(Math.random() * n)}.bench.test`;
}
function* range(prefix: string, count: number): Generator<string> {
  for (let i = 0; i < count; i++) yield `${prefix}${i}.miss.bench.example`;
}

function conf(port: number, upstream: number, hosts: string): string {
  return [
    `port=${port}`, 'listen-address=127.0.0.1', 'bind-interfaces', 'no-resolv', 'no-hosts',
    `server=127.0.0.1#${upstream}`, `addn-hosts=${hosts}`,
    // Same cache size for both, big enough for the hit set (dnsmasq's default of 150 is not).
    'cache-size=10000', 'dns-forward-max=1000',
  ].join('\n') + '\n';
}

// ---------- main ----------

interface Row {
  path: Path; size: number; qps: Record<Server, number>; usq: Record<Server, number>; lost: Record<Server, number>;
  p50: Record<Server, number>; p99: Record<Server, number>;
}

async function main(): Promise<void> {
  pinBenchToClientCpu(o['client-cpu']!);
  if (!existsSync(DNSMASQ)) throw new Error('dnsmasq missing: apt-get install dnsmasq-base');
  const dir = mkdtempSync(join(tmpdir(), 'hadns-bench-'));
  chmodSync(dir, 0o755); // dnsmasq drops privileges before reading the hosts file
  const procs: ChildProcess[] = [];
  const rows: Row[] = [];
  try {
    // The upstream shares the client core: it must not steal the server's core.
    const upScript = join(here, isTs ? 'resolver-upstream.ts' : 'resolver-upstream.js');
    const up = spawn('taskset', ['-c', o['client-cpu']!, process.execPath, ...(isTs ? ['--import', 'tsx'] : []), upScript],
      { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, TTL: o['upstream-ttl'] } });
    procs.push(up);
    const first = await once(createInterface({ input: up.stdout! }), 'line');
    const upPort = (JSON.parse(String(first[0])) as { port: number }).port;
    log(`upstream on ${upPort}`);

    const hitFile = join(dir, 'hit.txt');
    writeQueries(hitFile, Array.from({ length: 200 }, (_, i) => `c${i}.hit.bench.example`));
    let missRun = 0;

    for (const size of SIZES) {
      const hosts = join(dir, `hosts-${size}`);
      writeHosts(hosts, size);
      const localFile = join(dir, `local-${size}.txt`);
      writeQueries(localFile, randomLocal(size, 100000));
      const ports: Record<Server, number> = { dnsmasq: await freePort(), hadns: await freePort() };
      for (const s of ['dnsmasq', 'hadns'] as Server[]) writeFileSync(join(dir, `${s}.conf`), conf(ports[s], upPort, hosts), { mode: 0o644 });
      const cpu = o['server-cpu']!;
      const dm = spawn('taskset', ['-c', cpu, DNSMASQ, '-k', `--conf-file=${join(dir, 'dnsmasq.conf')}`, '--pid-file=', '--log-facility=/dev/null'], { stdio: 'ignore' });
      const hd = spawn('taskset', ['-c', cpu, process.execPath, join(root, 'bin', 'hadns'), 'start', '--dnsmasq', join(dir, 'hadns.conf')],
        { stdio: ['ignore', 'ignore', 'ignore'], env: { ...process.env, HADNS_LOG_LEVEL: 'warn' } });
      procs.push(dm, hd);
      await Promise.all([waitServing(ports.dnsmasq, dm, 'dnsmasq'), waitServing(ports.hadns, hd, 'hadns')]);
      // taskset execs the program, so the PID is the server's own.
      const pid: Record<Server, number> = { dnsmasq: dm.pid!, hadns: hd.pid! };

      for (const path of PATHS) {
        const row: Row = {
          path, size, qps: { dnsmasq: 0, hadns: 0 }, usq: { dnsmasq: 0, hadns: 0 }, lost: { dnsmasq: 0, hadns: 0 },
          p50: { dnsmasq: 0, hadns: 0 }, p99: { dnsmasq: 0, hadns: 0 },
        };
        for (const s of ['dnsmasq', 'hadns'] as Server[]) {
          const fileFor = (): string => {
            if (path === 'local') return localFile;
            if (path === 'hit') return hitFile;
            // Fresh names every run so nothing is cached (enough for the run at any plausible rate).
            const f = join(dir, `miss-${missRun}.txt`);
            writeQueries(f, range(`r${missRun++}-`, 400000));
            return f;
          };
          if (path === 'hit') dnsperf(ports[s], hitFile, ['-n', '2', '-q', '50']); // warm the cache
          const max = dnsperf(ports[s], fileFor(), ['-l', String(DURATION), '-q', path === 'miss' ? '200' : '500']);
          const before = cpuTicks(pid[s]);
          const fixed = dnsperf(ports[s], fileFor(), ['-l', String(DURATION), '-Q', String(RATE[path]), '-q', '500', '-v']);
          const ticks = cpuTicks(pid[s]) - before;
          row.qps[s] = max.qps;
          row.lost[s] = max.lost;
          row.usq[s] = fixed.completed ? (ticks * 1e6 / CLK_TCK) / fixed.completed : NaN;
          row.p50[s] = fixed.p50;
          row.p99[s] = fixed.p99;
          log(`${path} ${size} ${s}: ${max.qps.toFixed(0)} q/s (lost ${max.lost}), ${row.usq[s].toFixed(1)} µs/q at ${RATE[path]} q/s, p50 ${fixed.p50.toFixed(2)} ms, p99 ${fixed.p99.toFixed(2)} ms`);
        }
        rows.push(row);
      }
      await Promise.all([stop(dm), stop(hd)]);
    }
  } finally {
    await Promise.all(procs.map((p) => stop(p)));
    rmSync(dir, { recursive: true, force: true });
  }

  const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : '–');
  const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '–');
  const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '–');
  const lines = [
    `Resolver benchmark: ${DURATION} s per run, servers on CPU ${o['server-cpu']}, dnsperf and upstream on CPU ${o['client-cpu']}, upstream TTL ${o['upstream-ttl']}.`,
    '',
    '| path | hosts names | dnsmasq q/s | hadns q/s | hadns / dnsmasq | CPU rate q/s | dnsmasq µs/q | hadns µs/q | dnsmasq / hadns CPU | p50 ms dnsmasq / hadns | p99 ms dnsmasq / hadns |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map((r) => `| ${r.path} | ${r.size} | ${f0(r.qps.dnsmasq)} | ${f0(r.qps.hadns)} | ${f2(r.qps.hadns / r.qps.dnsmasq)} | ${RATE[r.path]} | ${f1(r.usq.dnsmasq)} | ${f1(r.usq.hadns)} | ${f2(r.usq.dnsmasq / r.usq.hadns)} | ${f2(r.p50.dnsmasq)} / ${f2(r.p50.hadns)} | ${f2(r.p99.dnsmasq)} / ${f2(r.p99.hadns)} |`),
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((e) => { console.error(e); process.exit(1); });
