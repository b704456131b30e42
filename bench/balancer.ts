/**
 * Balancer benchmark: nginx stream vs hadns (DNS mode, without and with the frontend cache)
 * vs dnsdist, each in front of the same two dnsmasq backends, in one run, reported as ratios
 * to nginx. Not a test.
 *
 * - backends: two dnsmasq answering *.bench.test locally (--address), pinned with dnsperf to
 *   the client core (or where --backend-cpus puts them);
 * - every balancer is pinned to the server core (taskset), nginx with the
 *   article's stream config (ports adapted, worker_processes 1: one core each);
 * - max throughput: dnsperf, 10k distinct names, -q outstanding, -l seconds;
 * - all balancers are started first and measured in turn, round after round (nginx, hadns,
 *   hadns + cache, dnsdist, nginx, …), so that the VM's noise, which drifts over tens of
 *   seconds, falls on all of them alike;
 * - latency at a fixed rate (--rate, below every balancer's max): dnsperf -v per-query
 *   latencies → p50/p99 over --rounds runs merged, and the median over rounds of p99 / nginx's
 *   p99 in the same round;
 * - CPU per query at that fixed rate: the balancer's utime+stime (with its child processes: nginx's
 *   worker) from /proc around those runs. With two cores, dnsperf and both dnsmasq backends share
 *   the client core and saturate it near 40k q/s whatever the balancer, so max q/s measures the
 *   client side; 1e6 / (µs per query) is what the balancer itself could carry on its core;
 * - the run-queue wait of each balancer's busiest thread per query at that rate (per-round line,
 *   /proc schedstat): time it was ready to run but another thread had its core;
 * - the bench itself runs on the client core (it reads dnsperf's per-query output);
 * - each backend's CPU per query at that rate, measured the same way: a backend on the
 *   balancer's core (--backend-cpus) shows there what the balancer's footprint costs it.
 * Usage (after `npm run build`, as root or with nginx/dnsdist/dnsmasq/dnsperf installed):
 *   node dist/bench/balancer.js [--duration 8] [--rate 10000] [--server-cpu 1] [--client-cpu 0]
 *        [--rounds 5] [--cpu-quota 0.3] [--only REGEX] [--relay-off-too] [--forwarding-off-too] [--book-now-too] [--sockets-too N,…]
 * --sockets-too N,… adds hadns with udp.sockets_per_backend N (1 by default) for each N;
 * --relay-off-too adds hadns without the reply relay (HADNS_REPLY_RELAY=0: every backend answer
 * through JS) to the same interleaved rounds, to measure what the relay is worth;
 * --forwarding-off-too likewise without query forwarding (HADNS_FORWARD=0: every query through JS
 * before it is sent); --book-now-too likewise with forwarded queries booked by JS in the wake-up
 * that forwarded them (HADNS_FORWARD_BOOK=now) rather than after the loop has served every ready
 * socket.
 * --realtime-too PRIO adds nginx under `chrt -r PRIO` and hadns with node.realtime_priority PRIO
 * (HADNS_REALTIME_PRIORITY for bench/balancer-server.ts): the event loops at SCHED_RR, like for
 * like, so that each compares with itself and with the other at real-time priority (needs root).
 * --env-too 'HADNS_A=1,HADNS_B=x' likewise adds a hadns with that environment (e.g. libuv's
 * double poll kept and bookings made whole: HADNS_LOOP_IDLE_TIME=1,HADNS_FORWARD_BOOK=whole).
 * hadns runs with the daemon's Node flags (src/util/node-flags.ts, as bin/hadns passes them).
 * --node-flags-too='--max-semi-space-size=32 …' (with =: the value starts with a dash) likewise
 * adds a hadns whose Node runs with those flags after the daemon's (V8's heap and GC settings;
 * docs/balancer-p99.md); a later flag wins, so --node-flags-too=--memory-reducer is hadns with
 * V8's memory reducer back on.
 * --burst-first S: before each fixed-rate round, S seconds of saturating load on the same
 * balancer (not measured), so that each round is "steady load after a burst", for every
 * balancer alike; with long rounds (--duration 40) that shows what a runtime does after a burst
 * (V8's memory reducer: docs/balancer-p99.md). The per-round lines and the table then also give
 * p99.9, the slowest query and the queries over 5 ms.
 * --stall MS/EVERY stops the measured balancer (its whole process tree) for MS ms every EVERY ms
 * during each fixed-rate round (bench/stall.ts, on the client core): the same stalls for every
 * balancer, so the p99 columns then compare how each catches up after losing its core, which
 * this VM's own stalls decide too but at random. --stall-by spin takes the balancer's core instead
 * (a real-time busy loop pinned to it, bench/stall.ts --spin; needs root): closer to what this
 * VM's stalls are than stopping the process, whose SIGCONT wakes every thread of it.
 * --varied-names: names of many lengths (a first label of 1-30 letters), so that queries and
 * answers come in many sizes (UDP GSO forms runs of one size only); default nN.bench.test.
 * --backend-cpus A,B pins the two dnsmasq backends to those CPUs (default: both on the client's);
 * 1,0 is the article's node: one resolver on the balancer's own core.
 * --ref-forwarder adds bench/ref-forwarder.c, a minimal batched forwarder in C (ID swap only: no
 * checks, retries or health), as the floor of what hadns's design costs without Node and JS;
 * --ref-work NS adds it twice more, spending NS ns of CPU per query inline after each batch (where
 * hadns's JS books today) and in a second thread (where a native fast path would leave it);
 * --ref-sockets N adds it with N sockets per backend, the next one per batch, as hadns does.
 * --ref-pause US/N adds it pausing US µs once every N forwarded queries (a stand-in for the
 * young-generation collections an allocating per-query path triggers by volume).
 * --ref-touch B[@KIB],… adds it once per item, writing B bytes per query in random cache lines
 * of a KIB KiB buffer (default 64 MiB): the memory footprint of bookkeeping, which --ref-work's
 * busy loop does not have.
 * --ref-on-loop JS,… adds it once per item built as a Node addon and driven by Node's libuv loop
 * (bench/ref-on-loop.ts), JS one of: none (no JS), call (an empty JS call per batch), work:N (N
 * rounds of booking-like JS per forwarded query, no garbage), work:N:alloc (the same, allocating),
 * thread (off the loop: the floor's own epoll loop in a thread of the otherwise idle process),
 * thread:N (the same, with JS on a 10 ms timer doing N rounds for each of 100 queries).
 * --ref-timeout MS adds it waiting in epoll_wait with a timeout of MS ms (Node's loop passes the
 * next timer's, so every blocking wait arms a kernel timer) instead of none.
 * --ref-batch N,… adds it once per item reading at most N datagrams per wake-up and socket
 * (recvmmsg's vlen; the floor's default, like hadns's, is 64): 1 is nginx's way, one datagram per
 * event, with the backends' answers served in between.
 * --node-too adds hadns as the article's node runs it (examples/article): one daemon whose first
 * backend is its own resolver (`local`, answering bench.test like the dnsmasq it stands for) and
 * whose second is the second dnsmasq, the peer's: with --backend-cpus 1,0 that is nginx + dnsmasq
 * on one core against hadns alone on it.
 * --capture DIR records each balancer's first fixed-rate round with tcpdump on lo (DIR/NAME.pcap)
 * and prints where its latency went (bench/segments.ts): ingress, backend, egress, and per stall
 * how it caught up.
 * Prints a markdown table on stdout; progress on stderr.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, rmdirSync, writeFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs, pinBenchToClientCpu } from './args.js';
import { signTest } from './pool.js';
import net from 'node:net';
import { once } from 'node:events';
import { freePort } from '../src/util/net.js';
import { probeDns } from '../src/node/health.js';
import { analyze, formatReport, readPcap } from './segments.js';
import { DAEMON_NODE_FLAGS } from '../src/util/node-flags.js';

const here = dirname(fileURLToPath(import.meta.url));
const isTs = import.meta.url.endsWith('.ts');
const root = join(here, isTs ? '..' : '../..');
const o = benchArgs({
  duration: { type: 'string', default: '8' },
  rate: { type: 'string', default: '10000' },
  'server-cpu': { type: 'string', default: '1' },
  'client-cpu': { type: 'string', default: '0' },
  'backend-cpus': { type: 'string', default: '' },
  only: { type: 'string', default: '' },
  rounds: { type: 'string', default: '5' },
  'cpu-quota': { type: 'string', default: '0' },
  'relay-off-too': { type: 'boolean', default: false },
  'forwarding-off-too': { type: 'boolean', default: false },
  'book-now-too': { type: 'boolean', default: false },
  'sockets-too': { type: 'string', default: '' },
  stall: { type: 'string', default: '' },
  'stall-by': { type: 'string', default: 'stop' },
  'env-too': { type: 'string', default: '' },
  'realtime-too': { type: 'string', default: '' },
  capture: { type: 'string', default: '' },
  'ref-forwarder': { type: 'boolean', default: false },
  'ref-work': { type: 'string', default: '0' },
  'ref-sockets': { type: 'string', default: '1' },
  'ref-pause': { type: 'string' },
  'ref-touch': { type: 'string', default: '' },
  'ref-timeout': { type: 'string' },
  'ref-on-loop': { type: 'string', default: '' },
  'ref-batch': { type: 'string', default: '' },
  'node-flags-too': { type: 'string', default: '' },
  'node-too': { type: 'boolean', default: false },
  'burst-first': { type: 'string', default: '0' },
  'varied-names': { type: 'boolean', default: false },
}, `usage: node dist/bench/balancer.js [--duration 8] [--rate 10000] [--server-cpu 1] [--client-cpu 0] [--varied-names]
       [--rounds 5] [--cpu-quota 0.3] [--only REGEX] [--relay-off-too] [--forwarding-off-too] [--book-now-too] [--sockets-too N,…]
       [--stall MS/EVERY] [--stall-by stop|spin] [--env-too 'NAME=VALUE,…[;…]'] [--realtime-too PRIO] [--capture DIR] [--backend-cpus A,B]
       [--ref-forwarder [--ref-work NS] [--ref-sockets N] [--ref-pause US/N] [--ref-touch B[@KIB],…] [--ref-timeout MS] [--ref-batch N,…] [--ref-on-loop JS,…]] [--node-flags-too='--flag …'] [--node-too]
       [--burst-first S]`);
const DURATION = Number(o.duration);
const BURST = Number(o['burst-first']);
if (!(BURST >= 0)) { process.stderr.write(`--burst-first wants seconds, not ${o['burst-first']}\n`); process.exit(2); }
const RATE = Number(o.rate);
const SCPU = o['server-cpu']!;
const CCPU = o['client-cpu']!;
/** --backend-cpus A,B: the CPU of each dnsmasq backend (default: both on the client's). */
const BCPUS = o['backend-cpus'] ? o['backend-cpus'].split(',') : [CCPU, CCPU];
if (BCPUS.length !== 2 || !BCPUS.every((c) => /^\d+$/.test(c))) {
  process.stderr.write(`--backend-cpus wants two CPU numbers, A,B (e.g. 1,0), not ${o['backend-cpus']}\n`);
  process.exit(2);
}
const ROUNDS = Number(o.rounds);
/** --stall MS/EVERY: in the fixed-rate rounds, the balancer is stopped MS ms every EVERY ms (bench/stall.ts). */
const STALL = /^(\d+(?:\.\d+)?)\/(\d+(?:\.\d+)?)$/.exec(o.stall ?? '');
if (o.stall && (!STALL || !(Number(STALL[1]) > 0 && Number(STALL[2]) > Number(STALL[1])))) {
  process.stderr.write(`--stall wants MS/EVERY with 0 < MS < EVERY (e.g. 3/50), not ${o.stall}\n`);
  process.exit(2);
}
/** --stall-by: `stop` the balancer's processes (SIGSTOP) or take its core with a real-time `spin`. */
const SPIN = o['stall-by'] === 'spin';
if (o['stall-by'] !== 'stop' && !SPIN) {
  process.stderr.write(`--stall-by wants stop or spin, not ${o['stall-by']}\n`);
  process.exit(2);
}
if (SPIN && (process.getuid?.() !== 0 || spawnSync('which', ['chrt']).status !== 0)) {
  process.stderr.write('--stall-by spin needs root and chrt (a real-time priority on the balancer\'s core)\n');
  process.exit(2);
}
/** --env-too NAME=VALUE,…[;NAME=VALUE,…]: one more hadns (no cache) per `;`-separated
 *  environment, in the same rounds. */
const ENV_TOO: { label: string; env: Record<string, string> }[] = [];
for (const variant of (o['env-too'] ?? '').split(';').map((v) => v.trim()).filter(Boolean)) {
  const env: Record<string, string> = {};
  for (const kv of variant.split(',').filter(Boolean)) {
    const m = /^(HADNS_[A-Z_]+)=(.*)$/.exec(kv.trim());
    if (!m) { process.stderr.write(`--env-too wants HADNS_NAME=VALUE,…[;…] not ${kv}\n`); process.exit(2); }
    env[m[1]!] = m[2]!;
  }
  ENV_TOO.push({ label: variant, env });
}
/** --realtime-too PRIO: nginx and hadns once more each, their event loops at SCHED_RR PRIO. */
if (o['realtime-too'] && !(/^\d+$/.test(o['realtime-too']) && Number(o['realtime-too']) >= 1 && Number(o['realtime-too']) <= 99)) {
  process.stderr.write(`--realtime-too wants a real-time priority 1-99, not ${o['realtime-too']}\n`);
  process.exit(2);
}
/** --ref-work NS: with --ref-forwarder, two more variants spending NS ns per query inline / in a thread. */
if (!/^\d+$/.test(o['ref-work'] ?? '') || (Number(o['ref-work']) > 0 && !o['ref-forwarder'])) {
  process.stderr.write(`--ref-work wants a whole number of ns, with --ref-forwarder, not ${o['ref-work']}\n`);
  process.exit(2);
}
/** --ref-sockets N: with --ref-forwarder, one more variant with N sockets per backend (as hadns has 4). */
if (!/^[1-4]$/.test(o['ref-sockets'] ?? '') || (Number(o['ref-sockets']) > 1 && !o['ref-forwarder'])) {
  process.stderr.write(`--ref-sockets wants 1 to 4, with --ref-forwarder, not ${o['ref-sockets']}\n`);
  process.exit(2);
}
/** --ref-pause US/N: with --ref-forwarder, one more variant that pauses US µs every N queries. */
const REF_PAUSE = /^(\d+)\/(\d+)$/.exec(o['ref-pause'] ?? '0/0') ?? [];
if (REF_PAUSE.length === 0 || (o['ref-pause'] !== undefined && (!o['ref-forwarder'] || REF_PAUSE[1] === '0' || REF_PAUSE[2] === '0'))) {
  process.stderr.write(`--ref-pause wants US/N (both > 0), with --ref-forwarder, not ${o['ref-pause']}\n`);
  process.exit(2);
}
/** --ref-touch B[@KIB],…: with --ref-forwarder, a variant per item writing B bytes per query in random cache lines. */
const REF_TOUCH = (o['ref-touch'] ?? '').split(',').filter(Boolean).map((x) => /^(\d+)(?:@(\d+))?$/.exec(x));
if (REF_TOUCH.some((m) => m === null || Number(m[1]) < 64 || (m[2] !== undefined && (Number(m[2]) < 1 || Number(m[2]) > 1048576)))
  || (REF_TOUCH.length > 0 && !o['ref-forwarder'])) {
  process.stderr.write(`--ref-touch wants BYTES[@KIB],… (bytes ≥ 64, 1–1048576 KiB), with --ref-forwarder, not ${o['ref-touch']}\n`);
  process.exit(2);
}
/** --ref-timeout MS: with --ref-forwarder, one more variant waiting in epoll_wait with that timeout. */
if (o['ref-timeout'] !== undefined && (!/^\d+$/.test(o['ref-timeout']) || Number(o['ref-timeout']) > 60000 || !o['ref-forwarder'])) {
  process.stderr.write(`--ref-timeout wants 0 to 60000 ms, with --ref-forwarder, not ${o['ref-timeout']}\n`);
  process.exit(2);
}
/** --ref-batch N,…: with --ref-forwarder, the floor once per read size (datagrams per recvmmsg). */
const REF_BATCH = (o['ref-batch'] ?? '').split(',').filter(Boolean);
if (REF_BATCH.some((b) => !/^\d+$/.test(b) || Number(b) < 1 || Number(b) > 64) || (REF_BATCH.length > 0 && !o['ref-forwarder'])) {
  process.stderr.write(`--ref-batch wants 1 to 64 datagrams per read,…, with --ref-forwarder, not ${o['ref-batch']}\n`);
  process.exit(2);
}
/** --ref-on-loop JS,…: with --ref-forwarder, the floor on Node's loop, once per JS mode. */
const REF_ON_LOOP = (o['ref-on-loop'] ?? '').split(',').filter(Boolean);
if (REF_ON_LOOP.some((x) => !/^(none|call|thread(:\d+)?|work:\d+(:alloc)?)$/.test(x)) || (REF_ON_LOOP.length > 0 && !o['ref-forwarder'])) {
  process.stderr.write(`--ref-on-loop wants none|call|thread|thread:N|work:N|work:N:alloc,…, with --ref-forwarder, not ${o['ref-on-loop']}\n`);
  process.exit(2);
}
/** --node-flags-too '--a --b=1': one more hadns (no cache) in the same rounds, Node started with those flags. */
const NODE_FLAGS_TOO = (o['node-flags-too'] ?? '').split(/\s+/).filter(Boolean);
for (const f of NODE_FLAGS_TOO) {
  if (!/^--[a-z0-9-]+(=[\w.-]+)?$/.test(f)) { process.stderr.write(`--node-flags-too wants Node/V8 flags like --max-semi-space-size=32, not ${f}\n`); process.exit(2); }
}
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** A process and its descendants (nginx: master + worker) with their utime+stime in clock ticks. */
function processTree(root: number): Map<number, number> {
  const parent = new Map<number, number>();
  const ticks = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(d), Number(f[1]));
      ticks.set(Number(d), Number(f[11]) + Number(f[12]));
    } catch { /* gone */ }
  }
  const tree = new Map<number, number>();
  for (const [pid, t] of ticks) {
    for (let p: number | undefined = pid; p !== undefined && p > 1; p = parent.get(p)) {
      if (p === root) { tree.set(pid, t); break; }
    }
  }
  return tree;
}

/**
 * Per thread of process tree `root` ("pid/tid"): [ns run, ns waited runnable] from
 * /proc/…/schedstat; two snapshots give a round's run-queue wait (busiestWait).
 */
function threadSched(root: number): Map<string, [number, number]> {
  const m = new Map<string, [number, number]>();
  for (const pid of processTree(root).keys()) {
    let ts: string[] = [];
    try { ts = readdirSync(`/proc/${pid}/task`); } catch { continue; }
    for (const t of ts) {
      try {
        const f = readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').trim().split(' ').map(Number);
        m.set(`${pid}/${t}`, [f[0]!, f[1]!]);
      } catch { /* gone */ }
    }
  }
  return m;
}
/** ns the busiest thread (most run between the snapshots: an event loop, nginx's worker) waited runnable. */
function busiestWait(before: Map<string, [number, number]>, after: Map<string, [number, number]>): number {
  let run = -1, wait = NaN;
  for (const [k, v] of after) {
    const a = before.get(k) ?? [0, 0];
    if (v[0] - a[0] > run) { run = v[0] - a[0]; wait = v[1] - a[1]; }
  }
  return wait;
}
function treeTicks(root: number): number {
  let sum = 0;
  for (const t of processTree(root).values()) sum += t;
  return sum;
}

/**
 * --cpu-quota F: every balancer gets the same F of its core (cgroup v1 CFS quota), so
 * that it, not the client core, is the bottleneck: max q/s then is throughput per unit of CPU.
 */
const QUOTA = Number(o['cpu-quota']);
const CGROUP = `/sys/fs/cgroup/cpu/hadns-bench-${process.pid}`;
const cgroups: string[] = [];
/** Moves balancer `root` (and its children) into a cgroup of its own, `i`, with the quota. */
function limitCpu(root: number, i: number): void {
  if (!(QUOTA > 0)) return;
  const CG = `${CGROUP}-${i}`;
  if (!existsSync(CG)) {
    mkdirSync(CG);
    cgroups.push(CG);
    // The kernel's smallest quota is 1 ms: the period is 1 ms / F (3.3 ms for 0.3), short enough
    // that the queries arriving while a balancer is throttled fit its socket buffer.
    writeFileSync(`${CG}/cpu.cfs_period_us`, String(Math.round(1000 / QUOTA)));
    writeFileSync(`${CG}/cpu.cfs_quota_us`, '1000');
  }
  for (const pid of processTree(root).keys()) {
    writeFileSync(`${CG}/cgroup.procs`, String(pid));
    let cg = '';
    try { cg = readFileSync(`/proc/${pid}/cgroup`, 'utf8'); } catch { continue; /* gone */ }
    if (!cg.includes(`/hadns-bench-${process.pid}-${i}\n`)) log(`process ${pid} is not in ${CG} after the move: its CPU is not limited`);
  }
}
const log = (s: string) => process.stderr.write(s + '\n');
const NGINX = '/usr/sbin/nginx';
const STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';
const DNSDIST = '/usr/bin/dnsdist';



/** Compiles bench/ref-forwarder.c into dir (cc, as the native addon needs anyway); the binary's path. */
function buildRefForwarder(dir: string, addon = false): string {
  const src = join(root, 'bench/ref-forwarder.c'), bin = join(dir, addon ? 'ref-forwarder.node' : 'ref-forwarder');
  const args = ['-O2', '-Wall', '-pthread', '-o', bin, src];
  if (addon) {
    // Node's headers, where native/build.mjs finds them (Debian's nodejs: /usr/include/node).
    const inc = [join(dirname(process.execPath), '..'), '/usr', '/usr/local'].map((p) => join(p, 'include', 'node'))
      .find((d) => existsSync(join(d, 'node_api.h')));
    if (!inc) throw new Error('--ref-on-loop needs Node\'s headers (node_api.h) to build the addon');
    args.unshift('-shared', '-fPIC', '-DREF_NAPI', `-I${inc}`);
  }
  const r = spawnSync('cc', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cannot build ${src}: ${r.error?.message ?? r.stderr}`);
  return bin;
}

async function waitAnswering(port: number, what: string, p: ChildProcess): Promise<void> {
  const t0 = Date.now();
  while (!(await probeDns('127.0.0.1', port, 'n1.bench.test', 300))) {
    if (p.exitCode !== null) throw new Error(`${what} exited (${p.exitCode})`);
    if (Date.now() - t0 > 10_000) throw new Error(`${what} not answering on ${port}`);
  }
}

/**
 * The 10k names dnsperf asks for: nN.bench.test, mostly of one length (n1000…n9999); with
 * --varied-names each gets a first label of 1–30 letters (a fixed pseudo-random sequence), so
 * that queries and answers come in many sizes, as real traffic does (UDP GSO forms runs only of
 * one size: docs/balancer.md, "UDP GSO").
 */
function queryNames(varied: boolean): string[] {
  let x = 0x2545f491;
  const next = () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return x >>> 0; };
  return Array.from({ length: 10_000 }, (_, i) => {
    if (!varied) return `n${i}.bench.test`;
    const len = 1 + (next() % 30);
    let label = '';
    for (let j = 0; j < len; j++) label += String.fromCharCode(97 + (next() % 26));
    return `${label}.n${i}.bench.test`;
  });
}

const children: ChildProcess[] = [];
function run(cpu: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const p = spawn('taskset', ['-c', cpu, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  p.stdout!.resume();
  let err = '';
  p.stderr!.on('data', (d) => { err += d; if (err.length > 10_000) err = err.slice(-5000); });
  (p as ChildProcess & { errText: () => string }).errText = () => err;
  children.push(p);
  return p;
}
async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const done = once(p, 'exit');
  p.kill('SIGTERM'); // by PID: our own child (taskset execs the command, so the PID is the server's)
  await done;
  // hadns's server reports its UDP GSO counts at exit (bench/balancer-server.ts): to the progress.
  const lines = (p as ChildProcess & { errText?: () => string }).errText?.().split('\n') ?? [];
  const gso = lines.find((l) => l.startsWith('gso '));
  if (gso) process.stderr.write(`  ${gso}\n`);
  if (process.env.HADNS_BENCH_STATS) for (const l of lines.filter((x) => x.startsWith('{'))) process.stderr.write(`  ${l.slice(0, 600)}\n`);
}
process.on('exit', () => { for (const c of children) if (c.exitCode === null) c.kill('SIGKILL'); });

/**
 * Starts bench/stall.ts for one round; resolves once it runs, with `done`, which resolves when
 * it has exited. `stop`: on the client core against a balancer's process tree (nginx: master and
 * worker), every process continued again here (SIGCONT, in case the injector died between its
 * signals). `spin`: pinned to the balancer's core, started at the normal priority and raised to a
 * real-time one once Node is up (its start-up must not take the balancer's core that way).
 */
async function injectStalls(balancer: number): Promise<{ done: Promise<void> }> {
  const script = join(root, isTs ? 'bench/stall.ts' : 'dist/bench/stall.js');
  const node = [process.execPath, ...(isTs ? ['--import', 'tsx'] : []), script];
  if (SPIN) {
    const p = spawn('taskset', ['-c', SCPU, ...node, '--spin', STALL![1]!, STALL![2]!, String(DURATION)], { stdio: ['pipe', 'pipe', 'ignore'] });
    children.push(p);
    const done = once(p, 'exit').then(() => undefined);
    await waitForOutput(p, p.stdout!, /^ready$/m, 'the spinner');
    const rt = spawnSync('chrt', ['-f', '-p', '50', String(p.pid)], { encoding: 'utf8' });
    if (rt.status !== 0) { p.kill('SIGKILL'); throw new Error(`chrt on the spinner: ${rt.stderr.trim()}`); }
    p.stdin!.end('go\n');
    return { done };
  }
  const pids = [...processTree(balancer).keys()];
  // As root, at a real-time priority: the SIGCONT must not wait for dnsperf or the backends,
  // which share the client core, or a stall grows past its length (seen: p99 rounds of 12–43 ms).
  const cmd = ['taskset', '-c', CCPU, ...node, STALL![1]!, STALL![2]!, String(DURATION), ...pids.map(String)];
  const rt = process.getuid?.() === 0 && spawnSync('which', ['chrt']).status === 0;
  const p = spawn(rt ? 'chrt' : cmd[0]!, rt ? ['-f', '50', ...cmd] : cmd.slice(1), { stdio: 'ignore' });
  children.push(p);
  return {
    done: new Promise((resolve) => p.once('exit', () => {
      for (const pid of pids) try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ }
      resolve();
    })),
  };
}

/** Resolves once `stream` of child `p` has printed something matching `re`; rejects if `p` exits first. */
function waitForOutput(p: ChildProcess, stream: NodeJS.ReadableStream, re: RegExp, what: string): Promise<void> {
  let out = '';
  return new Promise<void>((resolve, reject) => {
    stream.on('data', (d) => { out += d; if (re.test(out)) resolve(); });
    p.once('exit', (code) => reject(new Error(`${what} exited (${code}) before it was ready: ${out.trim()}`)));
  });
}

/**
 * --capture: tcpdump on lo (client core) for the balancer's port and the backends' ports, into
 * `file`; resolves once it is listening. Stopped by PID (SIGINT, so it flushes).
 */
async function startCapture(file: string, ports: number[]): Promise<ChildProcess> {
  const filter = `udp and (${ports.map((p) => `port ${p}`).join(' or ')})`;
  const p = spawn('taskset', ['-c', CCPU, 'tcpdump', '-i', 'lo', '-n', '-B', '32768', '-w', file, filter], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(p);
  await waitForOutput(p, p.stderr!, /listening on/, 'tcpdump');
  return p;
}

/** `failed`: answers other than NOERROR (a balancer that gives up answers SERVFAIL rather than nothing). */
interface PerfResult { qps: number; lost: number; failed: number; sent: number; avgMs: number; p50?: number; p99?: number; p999?: number; max?: number; over5?: number; latencies?: number[] }

function dnsperf(port: number, file: string, extra: string[], verbose = false, seconds = DURATION): PerfResult {
  const args = ['-c', CCPU, 'dnsperf', '-s', '127.0.0.1', '-p', String(port), '-d', file, '-l', String(seconds), '-c', '8', '-q', '500', '-t', '2', ...extra];
  if (verbose) args.push('-v');
  const r = spawnSync('taskset', args, { encoding: 'utf8', maxBuffer: 1 << 30 });
  const out = r.stdout;
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
  const res: PerfResult = {
    qps: num(/Queries per second:\s+([\d.]+)/),
    sent: num(/Queries sent:\s+(\d+)/),
    lost: num(/Queries lost:\s+(\d+)/),
    avgMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
    // "Response codes:       NOERROR 99811 (99.99%), SERVFAIL 12 (0.01%)"
    failed: [...(/Response codes:\s+(.*)/.exec(out)?.[1] ?? '').matchAll(/([A-Z]+) (\d+)/g)]
      .filter((m) => m[1] !== 'NOERROR').reduce((a, m) => a + Number(m[2]), 0),
  };
  if (verbose) {
    // verbose lines: "> NOERROR n1.bench.test A 0.000123"
    const lat: number[] = [];
    for (const m of out.matchAll(/^> \S+ \S+ \S+ ([\d.]+)$/gm)) lat.push(Number(m[1]) * 1000);
    res.latencies = lat;
    lat.sort((a, b) => a - b);
    if (lat.length) {
      res.p50 = lat[Math.floor(lat.length * 0.5)]; res.p99 = lat[Math.floor(lat.length * 0.99)];
      res.p999 = lat[Math.floor(lat.length * 0.999)]; res.max = lat[lat.length - 1];
      res.over5 = lat.filter((v) => v > 5).length;
    }
  }
  if (!Number.isFinite(res.qps)) throw new Error(`dnsperf failed: ${r.stderr || out}`);
  return res;
}

async function main(): Promise<void> {
  for (const bin of ['dnsperf', 'dnsmasq', 'taskset']) {
    if (spawnSync('which', [bin]).status !== 0) throw new Error(`${bin} is required (apt-get install -y dnsperf dnsmasq-base util-linux)`);
  }
  pinBenchToClientCpu(CCPU); // perf sched: unpinned, ~260 ms a second on the balancers' core
  if (o.capture) {
    if (spawnSync('which', ['tcpdump']).status !== 0) throw new Error('--capture needs tcpdump (apt-get install -y tcpdump)');
    mkdirSync(o.capture, { recursive: true });
  }
  const dir = mkdtempSync(join(tmpdir(), 'hadns-bal-bench-'));
  try {
    const qfile = join(dir, 'queries.txt');
    writeFileSync(qfile, queryNames(o['varied-names'] === true).map((n) => `${n} A`).join('\n') + '\n');
    // two dnsmasq backends, on the client core unless --backend-cpus says otherwise
    const bports = [await freePort(), await freePort()];
    const backends = bports.map((p, i) => run(BCPUS[i]!, '/usr/sbin/dnsmasq', [
      '-k', '--conf-file=/dev/null', `--port=${p}`, '--listen-address=127.0.0.1', '--bind-interfaces', '--no-resolv', '--no-hosts',
      '--address=/bench.test/192.0.2.1', '--local-ttl=300', '--pid-file=', '--log-facility=/dev/null', '--user=root', '--dns-forward-max=10000',
    ]));
    for (const [i, b] of backends.entries()) await waitAnswering(bports[i], 'dnsmasq', b);
    log(`backends: dnsmasq on ${bports.join(', ')} (cpu ${BCPUS.join(', ')}); balancers on cpu ${SCPU}; dnsperf on cpu ${CCPU}`);

    const targets: { name: string; start: () => Promise<{ p: ChildProcess; port: number }> }[] = [];
    if (existsSync(NGINX) && existsSync(STREAM_MODULE)) {
      // --realtime-too: the same nginx under `chrt -r` (SCHED_RR, inherited by its worker), as
      // hadns's node.realtime_priority runs its event loop: like for like.
      const nginx = (name: string, rt: string) => targets.push({ name, start: async () => {
        const port = await freePort();
        const pre = join(dir, rt ? 'nginx-rt' : 'nginx'); mkdirSync(join(pre, 'logs'), { recursive: true });
        writeFileSync(join(pre, 'nginx.conf'), `load_module ${STREAM_MODULE};\ndaemon off;\npid ${pre}/nginx.pid;\nerror_log ${pre}/logs/error.log;\n`
          + `worker_processes 1;\nevents { worker_connections 1024; }\nstream {\nupstream dns {\nserver 127.0.0.1:${bports[0]} weight=1;\nserver 127.0.0.1:${bports[1]} weight=1;\n}\n`
          + `server {\nlisten 127.0.0.1:${port} udp;\nproxy_connect_timeout 1s;\nproxy_timeout 20s;\nproxy_pass dns;\n}\n}\n`);
        const args = ['-p', pre, '-c', join(pre, 'nginx.conf')];
        const p = rt ? run(SCPU, 'chrt', ['-r', rt, NGINX, ...args]) : run(SCPU, NGINX, args);
        await waitAnswering(port, 'nginx', p);
        return { p, port };
      } });
      nginx('nginx stream (article config)', '');
      if (o['realtime-too']) nginx(`nginx stream (article config), realtime ${o['realtime-too']}`, o['realtime-too']);
    } else log('nginx with the stream module not installed: skipped (apt-get install -y nginx-light libnginx-mod-stream)');
    const hadns = (cache: boolean, relay = true, extra: NodeJS.ProcessEnv = {}, nodeFlags: string[] = [], sockets = 0) => async () => {
      const port = await freePort();
      const cfg = join(dir, `hadns-${cache}-${relay}-${port}.json`);
      writeFileSync(cfg, JSON.stringify({ services: [{
        name: 'dns', mode: 'dns', listen: [`udp://127.0.0.1:${port}`],
        pool: { backends: bports.map((b) => ({ address: `127.0.0.1:${b}` })) },
        health_check: { name: 'n1.bench.test' }, cache: { enabled: cache, size: 20_000 },
        ...(sockets > 0 ? { udp: { sockets_per_backend: sockets } } : {}),
      }] }));
      const p = run(SCPU, process.execPath, [...DAEMON_NODE_FLAGS, ...nodeFlags, join(root, 'dist/bench/balancer-server.js'), cfg],
        relay ? { ...process.env, ...extra } : { ...process.env, ...extra, HADNS_REPLY_RELAY: '0' });
      await waitAnswering(port, 'hadns', p);
      return { p, port };
    };
    targets.push({ name: 'hadns DNS mode', start: hadns(false) });
    if (o['relay-off-too']) targets.push({ name: 'hadns DNS mode, relay off', start: hadns(false, false) });
    if (o['book-now-too']) targets.push({ name: 'hadns DNS mode, booking per wake-up', start: hadns(false, true, { HADNS_FORWARD_BOOK: 'now' }) });
    if (o['forwarding-off-too']) targets.push({ name: 'hadns DNS mode, forwarding off', start: hadns(false, true, { HADNS_FORWARD: '0' }) });
    if (o['realtime-too']) targets.push({ name: `hadns DNS mode, realtime ${o['realtime-too']}`, start: hadns(false, true, { HADNS_REALTIME_PRIORITY: o['realtime-too'] }) });
    // --sockets-too N,…: hadns again with udp.sockets_per_backend N (the default is 1).
    for (const n of (o['sockets-too'] ?? '').split(',').filter(Boolean).map(Number)) {
      targets.push({ name: `hadns DNS mode, ${n} sockets per backend`, start: hadns(false, true, {}, [], n) });
    }
    for (const v of ENV_TOO) targets.push({ name: `hadns DNS mode, ${v.label}`, start: hadns(false, true, v.env) });
    if (NODE_FLAGS_TOO.length > 0) targets.push({ name: `hadns DNS mode, node ${NODE_FLAGS_TOO.join(' ')}`, start: hadns(false, true, {}, NODE_FLAGS_TOO) });
    if (o['node-too']) {
      // The article's node as hadns runs it (examples/article): one daemon, its own resolver as
      // the first backend (`local`, answering bench.test as the first dnsmasq does), the second
      // dnsmasq as the peer's. Compared with nginx in front of the first dnsmasq (same core with
      // --backend-cpus 1,0), this is the deployment against the deployment; its CPU column
      // includes the resolver's work.
      const node = (name: string, rt: number) => targets.push({ name, start: async () => {
        const port = await freePort(), rport = await freePort();
        const cfg = join(dir, `hadns-node-${rt}.yaml`); // JSON is YAML
        writeFileSync(cfg, JSON.stringify({
          log: { level: 'error' }, node: { realtime_priority: rt },
          resolver: {
            listen: [`127.0.0.1:${rport}`], local_ttl: 300, upstreams: { servers: [] },
            wildcards: [{ domain: 'bench.test', addresses: ['192.0.2.1'] }],
          },
          balancer: { services: [{
            name: 'dns', mode: 'dns', listen: [`udp://127.0.0.1:${port}`],
            pool: { backends: [{ address: 'local' }, { address: `127.0.0.1:${bports[1]}` }] },
            health_check: { name: 'n1.bench.test' },
          }] },
        }));
        const p = run(SCPU, process.execPath, [...DAEMON_NODE_FLAGS, join(root, 'bin/hadns'), 'start', '--config', cfg]);
        await waitAnswering(port, 'hadns node', p);
        return { p, port };
      } });
      node('hadns node (local resolver + 2nd backend)', 0);
      if (o['realtime-too']) node(`hadns node (local resolver + 2nd backend), realtime ${o['realtime-too']}`, Number(o['realtime-too']));
    }
    targets.push({ name: 'hadns DNS mode + cache', start: hadns(true) });
    if (existsSync(DNSDIST)) {
      targets.push({ name: 'dnsdist (no cache)', start: async () => {
        const port = await freePort();
        const conf = join(dir, 'dnsdist.conf');
        writeFileSync(conf, `setLocal('127.0.0.1:${port}')\nsetSecurityPollSuffix('')\nsetServerPolicy(roundrobin)\n`
          + bports.map((b) => `newServer({address='127.0.0.1:${b}', healthCheckMode='lazy'})`).join('\n') + '\n');
        const p = run(SCPU, DNSDIST, ['--supervised', '--disable-syslog', '-C', conf]);
        await waitAnswering(port, 'dnsdist', p);
        return { p, port };
      } });
    } else log('dnsdist not installed: skipped');

    if (o['ref-forwarder']) {
      const bin = buildRefForwarder(dir);
      const variants: [string, string[]][] = [['C reference forwarder', []]];
      const ns = Number(o['ref-work']), per = Number(o['ref-sockets']);
      if (per > 1) variants.push([`C reference forwarder, ${per} sockets per backend`, ['--sockets', String(per)]]);
      if (o['ref-timeout'] !== undefined) {
        variants.push([`C reference forwarder, epoll timeout ${o['ref-timeout']} ms`, ['--epoll-timeout', o['ref-timeout']]]);
      }
      for (const b of REF_BATCH) variants.push([`C reference forwarder, ${b} datagram${b === '1' ? '' : 's'} per read`, ['--batch', b]]);
      for (const m of REF_TOUCH) {
        const span = m![2] ?? '65536';
        variants.push([`C reference forwarder, ${m![1]} B/query in random cache lines of ${span} KiB`, ['--touch-bytes', m![1]!, '--touch-span', span]]);
      }
      if (o['ref-pause'] !== undefined) {
        variants.push([`C reference forwarder, ${REF_PAUSE[1]} µs pause every ${REF_PAUSE[2]} queries`,
          ['--pause-us', REF_PAUSE[1]!, '--pause-after', REF_PAUSE[2]!]]);
      }
      if (ns > 0) {
        variants.push([`C reference forwarder, ${ns} ns/query inline`, ['--work-ns', String(ns), '--work-in', 'inline']]);
        variants.push([`C reference forwarder, ${ns} ns/query in a thread`, ['--work-ns', String(ns), '--work-in', 'thread']]);
      }
      const addon = REF_ON_LOOP.length > 0 ? buildRefForwarder(dir, true) : '';
      for (const js of REF_ON_LOOP) {
        const name = js === 'thread' ? 'C reference forwarder in a thread of a Node process'
          : js.startsWith('thread:') ? `C reference forwarder in a thread of a Node process, JS ${js.slice(7)} rounds/query every 10 ms`
          : `C reference forwarder on Node's loop, JS ${js}`;
        targets.push({ name, start: async () => {
          const port = await freePort();
          const p = run(SCPU, process.execPath, [join(root, 'dist/bench/ref-on-loop.js'), addon, '--js', js, '--', String(port), ...bports.map(String)]);
          await waitAnswering(port, 'ref-on-loop', p);
          return { p, port };
        } });
      }
      for (const [name, args] of variants) {
        targets.push({ name, start: async () => {
          const port = await freePort();
          const p = run(SCPU, bin, [...args, String(port), ...bports.map(String)]);
          await waitAnswering(port, 'ref-forwarder', p);
          return { p, port };
        } });
      }
    }
    // All balancers run side by side (each idle while another is measured) and the rounds
    // interleave: nginx, hadns, hadns + cache, dnsdist, then again. This VM's background noise
    // comes and goes over tens of seconds; back-to-back blocks per balancer turned it into a bias.
    const live: { name: string; p: ChildProcess; port: number; max?: PerfResult; usAtMax: number; runs: PerfResult[]; ticks: number; bticks: number[] }[] = [];
    for (const [i, t] of targets.entries()) {
      if (o.only && !new RegExp(o.only).test(t.name)) continue;
      log(`${t.name}: starting`);
      const { p, port } = await t.start();
      limitCpu(p.pid!, i);
      dnsperf(port, qfile, ['-n', '1']); // warm (and, with a cache, fill it)
      live.push({ name: t.name, p, port, usAtMax: NaN, runs: [], ticks: 0, bticks: backends.map(() => 0) });
    }
    for (const x of live) {
      limitCpu(x.p.pid!, targets.findIndex((t) => t.name === x.name)); // again: a child forked since is moved too
      const m0 = treeTicks(x.p.pid!);
      x.max = dnsperf(x.port, qfile, []);
      x.usAtMax = ((treeTicks(x.p.pid!) - m0) / CLK_TCK) * 1e6 / (x.max.sent - x.max.lost);
      log(`${x.name}: max ${x.max.qps.toFixed(0)} q/s, lost ${x.max.lost}/${x.max.sent}, not NOERROR ${x.max.failed}, ${x.usAtMax.toFixed(1)} µs CPU/query`);
    }
    // Under a CPU quota the fixed rate may exceed what a balancer gets: latency is measured without one.
    for (let r = 0; r < (QUOTA > 0 ? 0 : ROUNDS); r++) {
      for (const x of live) {
        if (BURST > 0) dnsperf(x.port, qfile, [], false, BURST);
        const t0 = treeTicks(x.p.pid!), b0 = backends.map((b) => treeTicks(b.pid!));
        const pcap = o.capture && r === 0 ? join(o.capture, `${x.name.replace(/[^\w.-]+/g, '_')}.pcap`) : '';
        const cap = pcap ? await startCapture(pcap, [x.port, ...bports]) : null;
        const stalls = STALL ? await injectStalls(x.p.pid!) : null;
        const s0 = threadSched(x.p.pid!);
        const run = dnsperf(x.port, qfile, ['-Q', String(RATE)], true);
        const waitUs = busiestWait(s0, threadSched(x.p.pid!)) / 1e3 / Math.max(1, run.sent - run.lost);
        if (stalls) await stalls.done;
        if (cap) {
          const exited = once(cap, 'exit');
          cap.kill('SIGINT');
          await exited;
          log(`${x.name}: capture ${pcap}\n${formatReport(analyze(readPcap(readFileSync(pcap)), x.port))}`);
        }
        x.ticks += treeTicks(x.p.pid!) - t0;
        for (const [k, b] of backends.entries()) x.bticks[k]! += treeTicks(b.pid!) - b0[k]!;
        x.runs.push(run);
        log(`${x.name}: round ${r + 1}/${ROUNDS} at ${RATE} q/s: p50 ${run.p50?.toFixed(3)} ms p99 ${run.p99?.toFixed(3)} ms`
          + `${BURST > 0 ? ` p99.9 ${run.p999?.toFixed(3)} ms max ${run.max?.toFixed(2)} ms over 5 ms ${run.over5}` : ''} lost ${run.lost} not NOERROR ${run.failed}`
          + ` run-queue wait ${waitUs.toFixed(2)} µs/query`);
      }
    }
    const rows = live.map((x) => {
      const runs = x.runs;
      const answered = runs.reduce((a, y) => a + y.sent - y.lost, 0);
      const lat = runs.flatMap((y) => y.latencies ?? []).sort((a, b) => a - b);
      const fixed: PerfResult = {
        qps: runs.reduce((a, y) => a + y.qps, 0) / Math.max(1, runs.length), sent: runs.reduce((a, y) => a + y.sent, 0),
        lost: runs.reduce((a, y) => a + y.lost, 0), failed: runs.reduce((a, y) => a + y.failed, 0), avgMs: NaN,
        p50: lat[Math.floor(lat.length * 0.5)], p99: lat[Math.floor(lat.length * 0.99)],
        p999: lat[Math.floor(lat.length * 0.999)], max: lat[lat.length - 1], over5: runs.reduce((a, y) => a + (y.over5 ?? 0), 0),
      };
      return { name: x.name, max: x.max!, fixed, runs, usPerQuery: (x.ticks / CLK_TCK) * 1e6 / answered,
        backendUs: x.bticks.map((t) => (t / CLK_TCK) * 1e6 / answered), usAtMax: x.usAtMax };
    });
    for (const x of live) await stop(x.p);
    for (const b of backends) await stop(b);
    const base = rows.find((r) => r.name.startsWith('nginx'));
    const ratio = (v: number, b?: number) => (b ? `${(v / b).toFixed(2)}×` : '–');
    if (QUOTA > 0) {
      // The core a balancer used at its max (q/s × CPU per query): a row over the quota measured
      // a balancer the quota did not hold (seen once for nginx: 0.68 of a core), not comparable.
      const used = (r: (typeof rows)[number]) => r.max.qps * r.usAtMax / 1e6;
      console.log(`| balancer (${QUOTA} of a core) | max q/s | vs nginx | lost / not NOERROR at max | CPU µs/query at max | core used |`);
      console.log('|---|---:|---:|---:|---:|---:|');
      for (const r of rows) {
        const u = used(r), over = u > QUOTA * 1.2;
        console.log(`| ${r.name} | ${r.max.qps.toFixed(0)} | ${ratio(r.max.qps, base?.max.qps)} | ${r.max.lost} / ${r.max.failed} of ${r.max.sent} | ${r.usAtMax.toFixed(1)} | ${u.toFixed(2)}${over ? ' (over the quota: not comparable)' : ''} |`);
        if (over) log(`${r.name}: used ${u.toFixed(2)} of a core against a quota of ${QUOTA}: this round does not count`);
      }
      return;
    }
    // Per round: this balancer's p99 over nginx's p99 of the same round (adjacent in time).
    const roundRatios = (r: (typeof rows)[number]): string => {
      if (!base || r === base) return '–';
      const q = r.runs.map((x, k) => (x.p99 ?? NaN) / (base.runs[k]?.p99 ?? NaN)).filter(Number.isFinite).sort((a, b) => a - b);
      if (!q.length) return '–';
      const med = q[Math.floor(q.length / 2)]!;
      const k = q.filter((v) => v <= 1).length;
      return `${med.toFixed(2)}× (${k}/${q.length} ≤ 1, sign test p ${signTest(k, q.length).toFixed(3)})`;
    };
    const at = `@${RATE} q/s${STALL ? `, ${SPIN ? 'core taken' : 'stopped'} ${STALL[1]} ms every ${STALL[2]} ms` : ''}`;
    // After a burst (--burst-first) the rare long pauses matter: p99.9, the slowest query, and
    // the queries over 5 ms (summed over rounds) as well.
    const tailHead = BURST > 0 ? ` p99.9 ${at} | slowest | queries over 5 ms |` : '';
    const tail = (r: (typeof rows)[number]) => (BURST > 0 ? ` ${r.fixed.p999?.toFixed(3)} ms | ${r.fixed.max?.toFixed(2)} ms | ${r.fixed.over5} |` : '');
    console.log(`| balancer (1 core) | max q/s | vs nginx | lost / not NOERROR at max | CPU µs/query at max | q/s per core (1e6/µs) vs nginx | CPU µs/query ${at} | backends' CPU µs/query ${at} (cpu ${BCPUS.join(' / ')}) | p50 ${at} | p99 ${at} | p99 vs nginx | p99 vs nginx per round: median |${tailHead}`);
    console.log(`|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|${BURST > 0 ? '---:|---:|---:|' : ''}`);
    for (const r of rows) {
      console.log(`| ${r.name} | ${r.max.qps.toFixed(0)} | ${ratio(r.max.qps, base?.max.qps)} | ${r.max.lost} / ${r.max.failed} of ${r.max.sent} | ${r.usAtMax.toFixed(1)} | ${(1e6 / r.usAtMax).toFixed(0)} (${ratio(base?.usAtMax ?? NaN, r.usAtMax)}) | ${r.usPerQuery.toFixed(1)} | ${r.backendUs.map((u) => u.toFixed(1)).join(' / ')} | ${r.fixed.p50?.toFixed(3)} ms | ${r.fixed.p99?.toFixed(3)} ms | ${ratio(r.fixed.p99 ?? NaN, base?.fixed.p99)} | ${roundRatios(r)} |${tail(r)}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    for (const cg of cgroups) try { rmdirSync(cg); } catch (e) { log(`cannot remove ${cg}: ${(e as Error).message}`); }
  }
}

main().catch((e) => { log(String(e?.stack ?? e)); process.exitCode = 1; }).finally(async () => {
  for (const c of children) await stop(c);
});
