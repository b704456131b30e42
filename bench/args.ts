/**
 * Command-line options for the benchmarks: node's parseArgs, plus `--help` and a one-line
 * error (with the usage) for an unknown or malformed option instead of a stack trace.
 */
import { spawnSync } from 'node:child_process';
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

export function benchArgs<T extends Options>(options: T, usage: string): ReturnType<typeof parseArgs<{ options: T }>>['values'] {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  try {
    return parseArgs({ options }).values;
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${usage}\n`);
    process.exit(2);
  }
}

/**
 * Pins this process (all its threads) to `cpu`, the client's core. A bench reads dnsperf's
 * per-query output (-v: about a quarter of a core at 10k q/s); unpinned, the scheduler ran it on
 * the measured server's core (perf sched, eighteenth session), taking the core from it.
 */
export function pinBenchToClientCpu(cpu: string): void {
  spawnSync('taskset', ['-a', '-p', '-c', cpu, String(process.pid)], { stdio: 'ignore' });
}
