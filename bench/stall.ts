/**
 * Stall injector for `bench/balancer.ts --stall MS/EVERY`: stops the given processes (SIGSTOP)
 * for MS milliseconds every EVERY milliseconds, for SECONDS seconds, then exits. This VM takes a
 * balancer's core away now and then for 0.5–5 ms (a host agent, the kernel's DAMON thread), and
 * how a balancer catches up afterwards decides its p99; but those stalls come at random and
 * differ from round to round. Injected stalls are the same for every balancer, so the p99 they
 * cause compares the catching-up itself. A stall is a futex wait (Atomics.wait), so it keeps
 * its length (±0.1 ms); the gaps between stalls are timers (±1 ms).
 * Usage: node dist/bench/stall.js MS EVERY SECONDS PID...   (run by bench/balancer.ts)
 * Whatever happens, every process is sent SIGCONT before this one exits.
 */
const [ms, every, secs, ...pids] = process.argv.slice(2).map(Number);
if (!(ms! > 0 && every! > ms! && secs! > 0 && pids.length && pids.every((p) => Number.isInteger(p) && p > 1))) {
  process.stderr.write('usage: node dist/bench/stall.js MS EVERY SECONDS PID...  (0 < MS < EVERY)\n');
  process.exit(2);
}
const cell = new Int32Array(new SharedArrayBuffer(4));
const signal = (sig: NodeJS.Signals): void => {
  for (const p of pids) try { process.kill(p, sig); } catch { /* gone */ }
};
let stalls = 0;
function finish(code: number): void {
  signal('SIGCONT');
  if (code === 0) process.stdout.write(`${stalls}\n`);
  process.exit(code);
}
// Between stalls the event loop is free, so a signal ends the run at once; a stall itself is a
// futex wait (exact, no CPU burnt) after which the targets are continued before anything else.
for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(s, () => finish(1));
const end = performance.now() + secs! * 1000;
function next(): void {
  if (performance.now() >= end) { finish(0); return; }
  setTimeout(() => {
    signal('SIGSTOP');
    try { Atomics.wait(cell, 0, 0, ms!); } finally { signal('SIGCONT'); }
    stalls++;
    next();
  }, every! - ms!);
}
next();
