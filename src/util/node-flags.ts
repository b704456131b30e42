/**
 * The V8 flags the daemon runs with. They have to be on Node's command line: V8 reads them when
 * it sets the heap up, and `v8.setFlagsFromString()` later does not take them back (checked for
 * this one: with it set at start-up the reducer still ran). `bin/hadns`'s first line passes them
 * (`#!/usr/bin/env -S node …`, so the installed command and the systemd unit get them), the bench
 * and the tests' daemon helper spawn Node with them, and `hadns start` warns when they are missing
 * (say, `node bin/hadns start`). test/unit/node-flags.test.ts keeps bin/hadns and this list equal.
 *
 * `--no-memory-reducer`: V8's memory reducer shrinks the heap once the mutator looks idle after a
 * full GC, with up to three more full (compacting) collections. A DNS server at 10k q/s allocates
 * little enough (~1 MB/s) to look idle, so after any full GC (a traffic burst, the cache growing)
 * the reducer ran two compacting collections 0.6 s apart in the middle of the load: 5–16 ms
 * pauses, and in 40 s at 10k q/s after a 3 s burst 289–464 queries over 5 ms (slowest 22–27 ms)
 * in each of seven runs, against 0–93 (slowest 4.6–9.8 ms) in six runs without it
 * (docs/balancer-p99.md, fifteenth session). The price is memory: the heap keeps what the burst made it grow to
 * (~28 MB committed instead of ~12 MB here); full GCs still happen when the old generation fills.
 */

export const DAEMON_NODE_FLAGS: readonly string[] = ['--no-memory-reducer'];

/** The daemon's flags not on this process's command line (empty when it runs as intended). */
export function missingDaemonFlags(execArgv: readonly string[] = process.execArgv): string[] {
  return DAEMON_NODE_FLAGS.filter((f) => !execArgv.includes(f));
}

/** The shebang `bin/hadns` must start with so that the installed command runs with the flags. */
export function launcherShebang(): string {
  return `#!/usr/bin/env -S node ${DAEMON_NODE_FLAGS.join(' ')}`;
}
