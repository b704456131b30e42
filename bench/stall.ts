/**
 * Stall injector for `bench/balancer.ts --stall MS/EVERY`, in one of two ways:
 * - stop (default): stops the given processes (SIGSTOP) for MS milliseconds every EVERY
 *   milliseconds, for SECONDS seconds, then exits. A stall is a futex wait (Atomics.wait), so it
 *   keeps its length (±0.1 ms); the gaps between stalls are timers (±1 ms). Whatever happens,
 *   every process is sent SIGCONT before this one exits.
 * - spin (`--spin`): takes the core it runs on instead, busy-waiting MS ms every EVERY ms. Run
 *   pinned to the balancer's core at a real-time priority, it is what this VM's own stalls look
 *   like to a balancer: its threads are not stopped and woken (SIGCONT wakes every thread of a
 *   Node process, 11 of them), its core is simply gone. The bench starts it at the normal
 *   priority, waits for its "ready" line, raises it (chrt) and then writes a line to its stdin:
 *   Node's start-up must not itself take the balancer's core at a real-time priority.
 * Why: this VM takes a balancer's core away now and then for 0.5–5 ms (a host agent, the
 * kernel's DAMON thread), and how a balancer catches up afterwards decides its p99; but those
 * stalls come at random and differ from round to round. Injected stalls are the same for every
 * balancer, so the p99 they cause compares the catching-up itself.
 * Usage: node dist/bench/stall.js MS EVERY SECONDS PID...   (run by bench/balancer.ts)
 *        node dist/bench/stall.js --spin MS EVERY SECONDS
 * Prints the number of stalls made when done.
 */
const args = process.argv.slice(2);
const spin = args[0] === '--spin';
const [ms, every, secs, ...pids] = (spin ? args.slice(1) : args).map(Number);
const USAGE = 'usage: node dist/bench/stall.js MS EVERY SECONDS PID...  |  --spin MS EVERY SECONDS  (0 < MS < EVERY)\n';
if (!(ms! > 0 && every! > ms! && secs! > 0 && (spin ? pids.length === 0
  : pids.length > 0 && pids.every((p) => Number.isInteger(p) && p > 1)))) {
  process.stderr.write(USAGE);
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
if (spin) {
  // From "go" to the end nothing but the schedule runs: the gaps are futex waits too, so a spin
  // starts within ~0.1 ms of its time. No signal handlers: the loop never yields to run them,
  // and nothing is stopped that a signal's default action (exit) would leave so.
  process.stdout.write('ready\n');
  let started = false;
  process.stdin.once('end', () => {
    if (!started) { process.stderr.write('stall.js --spin: stdin closed before go\n'); process.exit(1); }
  });
  process.stdin.once('data', () => {
    started = true;
    process.stdin.pause();
    const end = performance.now() + secs! * 1000;
    while (performance.now() + every! - ms! < end) {
      Atomics.wait(cell, 0, 0, every! - ms!);
      const until = performance.now() + ms!;
      while (performance.now() < until) { /* the core is taken */ }
      stalls++;
    }
    finish(0);
  });
} else {
  // Between stalls the event loop is free, so a signal ends the run at once; a stall itself is a
  // futex wait (exact, no CPU burnt) after which the targets are continued before anything else.
  for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(s, () => finish(1));
  const end = performance.now() + secs! * 1000;
  const next = (): void => {
    if (performance.now() >= end) { finish(0); return; }
    setTimeout(() => {
      signal('SIGSTOP');
      try { Atomics.wait(cell, 0, 0, ms!); } finally { signal('SIGCONT'); }
      stalls++;
      next();
    }, every! - ms!);
  };
  next();
}
