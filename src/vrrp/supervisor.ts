/**
 * Parent side of the engine process, for node/: forks main.js with an IPC channel, sends it the
 * section, forwards its events and offers track()/status()/stop(). The engine lives in its own
 * process so a saturated DNS event loop in the parent cannot delay adverts.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { setPriority } from 'node:os';

/** nice value of the engine process when permitted. */
const ENGINE_NICE = -10;
import { fileURLToPath } from 'node:url';
import { vrrpSectionSchema, type VrrpSectionInput } from './config.js';
import { removeVip, toVip } from './vip.js';
import type { FromEngine, ToEngine } from './messages.js';
import type { InstanceStatus } from './engine.js';

export interface VrrpSupervisor {
  readonly child: ChildProcess;
  /** Resolves when the engine has started every instance (rejects on a fatal error). */
  readonly ready: Promise<InstanceStatus[]>;
  track(name: string, up: boolean, weight: number, instance?: string): void;
  status(): Promise<InstanceStatus[]>;
  /** Graceful stop (priority-0 adverts, VIPs removed); SIGKILL after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
}

/**
 * Removes every configured VIP (used when the engine died without its graceful stop, so this
 * node does not keep answering for an address while nobody runs VRRP for it).
 */
export async function removeConfiguredVips(section: VrrpSectionInput): Promise<void> {
  const parsed = vrrpSectionSchema.safeParse(section);
  if (!parsed.success) return;
  for (const inst of parsed.data.instances) {
    for (const v of inst.virtual_addresses) await removeVip(toVip(v, inst.interface));
  }
}

export function spawnVrrpEngine(section: VrrpSectionInput, onMessage: (m: FromEngine) => void = () => undefined): VrrpSupervisor {
  const entry = fileURLToPath(new URL('./main.js', import.meta.url));
  const child = fork(entry, [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  // Adverts must not wait behind anything else on the host either: run the engine at a higher
  // scheduling priority when allowed (root / CAP_SYS_NICE), as keepalived's vrrp_priority does.
  if (child.pid) { try { setPriority(child.pid, ENGINE_NICE); } catch { /* not permitted: normal priority */ } }
  let stoppedCleanly = false;
  let crashCleanup: Promise<void> = Promise.resolve();
  child.on('message', (m: FromEngine) => { if (m.type === 'stopped') stoppedCleanly = true; });
  child.on('exit', () => {
    // A crashed engine leaves its VIPs behind; the backup takes over after Master_Down_Interval,
    // so drop ours now rather than answer ARP for an address we no longer defend.
    if (!stoppedCleanly) crashCleanup = removeConfiguredVips(section).catch(() => undefined);
  });
  let nextId = 1;
  const pending = new Map<number, (s: InstanceStatus[]) => void>();
  const ready = new Promise<InstanceStatus[]>((resolve, reject) => {
    child.on('message', (m: FromEngine) => {
      if (m.type === 'ready') resolve(m.instances);
      else if (m.type === 'fatal') reject(new Error(m.msg));
      else if (m.type === 'status') { pending.get(m.id)?.(m.instances); pending.delete(m.id); }
      onMessage(m);
    });
    child.on('exit', (code) => reject(new Error(`VRRP engine exited with ${code}`)));
  });
  ready.catch(() => undefined);
  // The child may be exiting (fatal config error, stop): a lost message is fine, an EPIPE is not.
  const send = (m: ToEngine) => { if (child.connected) child.send(m, () => undefined); };
  child.on('error', () => undefined);
  send({ type: 'config', section });
  return {
    child,
    ready,
    track: (name, up, weight, instance) => send({ type: 'track', name, up, weight, instance }),
    status: () => new Promise((resolve) => { const id = nextId++; pending.set(id, resolve); send({ type: 'status', id }); }),
    stop: (timeoutMs = 5000) => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return void crashCleanup.then(resolve);
      const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('exit', () => { clearTimeout(t); setImmediate(() => void crashCleanup.then(resolve)); });
      send({ type: 'stop' });
    }),
  };
}
