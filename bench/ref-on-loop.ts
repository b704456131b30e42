/**
 * The C floor (bench/ref-forwarder.c built with -DREF_NAPI as a Node addon) driven by this
 * process's libuv loop, for bench/balancer.ts --ref-on-loop: the step between the floor as a
 * program of its own and hadns, which docs/balancer-p99.md measures in parts (Node's loop; a JS
 * call per received batch; JS work in that call, with or without garbage).
 *
 * Usage: node dist/bench/ref-on-loop.js ADDON [--js none|call|work:N|work:N:alloc|thread] -- FORWARDER_ARGS…
 *   none: no JS per batch; call: an empty JS function per batch that forwarded queries;
 *   thread: not on the loop at all, the floor's own epoll loop in a thread of this process;
 *   thread:N: the same, with JS on a 10 ms timer doing N rounds for each of 100 queries;
 *   work:N: N rounds per forwarded query of booking-like JS (pooled objects, a random-ID table, an
 *   EWMA, a ring of records) that allocates nothing; work:N:alloc: the same with an address string
 *   and a fresh record per round, as per-query JS that allocates does.
 * Prints "ready" once bound; on SIGTERM prints "js calls N" and exits.
 */
import { createRequire } from 'node:module';

const argv = process.argv.slice(2);
const addon = argv.shift();
let js = 'none';
while (argv.length > 0 && argv[0] !== '--') {
  const a = argv.shift()!;
  if (a === '--js' && argv.length > 0) js = argv.shift()!;
  else fail(`unknown argument ${a}`);
}
argv.shift(); // --
const m = /^(none|call|thread(?::(\d+))?|work:(\d+)(:alloc)?)$/.exec(js);
if (!addon || !m) fail(`usage: ref-on-loop ADDON [--js none|call|work:N|work:N:alloc|thread|thread:N] -- FORWARDER_ARGS… (not --js ${js})`);
const THREAD = m![1]!.startsWith('thread');
const REPS = Number(m![2] ?? m![3] ?? 0), ALLOC = m![4] !== undefined;

function fail(msg: string): never {
  process.stderr.write(`ref-on-loop: ${msg}\n`);
  process.exit(2);
}

// Booking-like state: pooled query objects, a table by random ID, an estimator, a ring of records.
const POOL = 512, RING = 64;
class Q { gen = 0; port = 0; addr = ''; live = 0; readonly msg = new Uint8Array(64); constructor(readonly idx: number) {} }
const pool: Q[] = Array.from({ length: POOL }, (_, i) => new Q(i));
const table: (Q | null)[] = new Array<Q | null>(1024).fill(null);
const ids = new Uint16Array(1024);
const sent = new Float64Array(POOL), est = new Float64Array(3), clock = new Float64Array(1);
const ADDRS = Array.from({ length: 256 }, (_, i) => `127.0.0.${i}`);
const recs = Array.from({ length: RING }, () => ({ id: 0, t: 0 }));
let ring: { id: number; t: number }[] = [];
let ri = 0, seed = 1, calls = 0;

function round(): void {
  const q = pool.pop()!;
  q.gen++;
  q.addr = ALLOC ? `127.0.0.${q.gen & 255}` : ADDRS[q.gen & 255]!;
  q.port = (q.gen * 7919) & 65535;
  sent[q.idx] = (clock[0]! += 0.001);
  for (let k = 0; k < 24; k++) q.msg[k] = (q.gen + k) & 255;
  seed = (Math.imul(seed, 1664525) + 1013904223) | 0;
  const id = seed >>> 16;
  table[id & 1023] = q;
  ids[id & 1023] = id;
  const got = ids[id & 1023] === id ? table[id & 1023]! : q;
  const d = clock[0]! + 0.0005 - sent[got.idx]!;
  est[1]! += (Math.abs(est[0]! - d) - est[1]!) / 4;
  est[0]! += (d - est[0]!) / 8;
  est[2]!++;
  if (ALLOC) {
    ring.push({ id, t: d });
    if (ring.length >= RING) ring = [];
  } else {
    const r = recs[ri]!;
    r.id = id;
    r.t = d;
    ri = (ri + 1) % RING;
  }
  table[id & 1023] = null;
  pool.push(got);
}

const cb = m![1] === 'none' || THREAD ? null : (n: number): void => {
  calls++;
  for (let k = 0; k < n * REPS; k++) round();
};
const fwd = createRequire(import.meta.url)(addon!) as {
  start: (cb: ((n: number) => void) | null, ...args: string[]) => void;
  startThread: (...args: string[]) => void;
};
try {
  if (THREAD) {
    fwd.startThread(...argv);
    // Nothing else keeps Node's loop (and so the process) alive. thread:N: every 10 ms, the JS a
    // forwarding thread's owner would run on a timer for 100 queries' aggregates (N rounds each),
    // on the same core as the thread.
    const tick = (): void => { calls++; for (let k = 0; k < 100 * REPS; k++) round(); };
    if (REPS > 0) tick(); // once at once, so that a short run has counted one
    setInterval(REPS > 0 ? tick : () => {}, REPS > 0 ? 10 : 3600_000);
  }
  else fwd.start(cb, ...argv);
} catch (e) {
  fail((e as Error).message);
}
process.on('SIGTERM', () => {
  process.stdout.write(`js calls ${calls}\n`, () => process.exit(0));
});
process.stdout.write('ready\n');
