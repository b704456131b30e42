import { once } from 'node:events';
import type { ChildProcess } from 'node:child_process';

/** SIGKILLs a child this test started (by its PID) and waits until it has exited; a no-op once it has. */
export async function killChild(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const done = once(p, 'exit');
  p.kill('SIGKILL');
  await done;
}
