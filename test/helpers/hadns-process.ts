/**
 * Runs bin/hadns as a real child process for CLI tests: waits for log lines by predicate (no
 * sleeps), exposes the bound addresses from the "listening" line, and always kills by PID.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DAEMON_NODE_FLAGS } from '../../src/util/node-flags.js';

export const HADNS = fileURLToPath(new URL('../../../bin/hadns', import.meta.url));

export interface LogLine { level: number; msg: string; [k: string]: unknown }

export class HadnsProcess {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  stderr = '';
  private waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  readonly exited: Promise<number | null>;

  /**
   * `launch`: how the daemon is started. `node+flags` (default) as bin/hadns's first line starts
   * it, but with this Node; `node` without the daemon's flags (`node bin/hadns …`); `direct` runs
   * bin/hadns itself, so its `#!/usr/bin/env -S node …` line (and the `node` in PATH) is used.
   */
  constructor(args: string[], env: NodeJS.ProcessEnv = {}, launch: 'node+flags' | 'node' | 'direct' = 'node+flags', prefix: string[] = []) {
    const [cmd, argv] = launch === 'direct' ? [HADNS, args] : [process.execPath, [...(launch === 'node' ? [] : DAEMON_NODE_FLAGS), HADNS, ...args]];
    // `prefix`: a command that execs the daemon (e.g. setpriv), so that the child's PID stays the daemon's.
    this.child = prefix.length > 0
      ? spawn(prefix[0]!, [...prefix.slice(1), cmd, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
      : spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let buf = '';
    this.child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let parsed: LogLine;
        try { parsed = JSON.parse(line); } catch { parsed = { level: 0, msg: line }; }
        this.lines.push(parsed);
        this.waiters = this.waiters.filter((w) => { if (w.pred(parsed)) { w.resolve(parsed); return false; } return true; });
      }
    });
    this.exited = new Promise((r) => this.child.on('exit', (code) => r(code)));
  }

  /** Resolves with the first log line (past or future) matching `pred`. */
  waitFor(pred: (l: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> {
    const seen = this.lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no matching log line in ${timeoutMs} ms; stderr:\n${this.stderr}`)), timeoutMs);
      this.waiters.push({ pred, resolve: (l) => { clearTimeout(t); resolve(l); } });
    });
  }

  /** Waits for the given message to appear `n` times in total. */
  async waitCount(msg: string, n: number, timeoutMs = 10_000): Promise<void> {
    let count = this.lines.filter((l) => l.msg === msg).length;
    while (count < n) {
      await this.waitFor((l) => l.msg === msg && this.lines.filter((x) => x.msg === msg).length > count, timeoutMs);
      count = this.lines.filter((l) => l.msg === msg).length;
    }
  }

  async udpPort(): Promise<number> {
    const l = await this.waitFor((x) => x.msg === 'resolver listening');
    const a = (l.addresses as string[]).find((s) => s.startsWith('udp://'))!;
    return Number(a.slice(a.lastIndexOf(':') + 1));
  }

  kill(sig: NodeJS.Signals = 'SIGTERM'): void {
    if (this.child.exitCode === null && this.child.pid) try { process.kill(this.child.pid, sig); } catch { /* gone */ }
  }
}

/** Runs a hadns command to completion. */
export function runHadns(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [HADNS, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
