/**
 * Entry point of the VRRP engine process: `node dist/src/vrrp/main.js --config FILE` (JSON or YAML,
 * either the `vrrp:` section itself or a whole config with a `vrrp` key) or, under supervisor.ts,
 * with the section sent over IPC. Every event is printed as one JSON line on stdout (and sent over
 * IPC when there is a parent). SIGTERM/SIGINT or a `stop` message stop gracefully: priority-0
 * adverts, VIPs removed, then exit 0.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { vrrpSectionSchema, type VrrpSectionInput } from './config.js';
import { VrrpEngine } from './engine.js';
import { setRealtime } from '../util/threads.js';
import type { FromEngine, ToEngine } from './messages.js';

function emit(m: FromEngine): void {
  process.stdout.write(`${JSON.stringify(m)}\n`);
  if (process.send && process.connected) process.send(m);
}

function loadFile(path: string): VrrpSectionInput {
  const text = readFileSync(path, 'utf8');
  const doc = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  return (doc && typeof doc === 'object' && 'vrrp' in doc ? doc.vrrp : doc) as VrrpSectionInput;
}

async function run(input: VrrpSectionInput): Promise<void> {
  const parsed = vrrpSectionSchema.safeParse(input);
  if (!parsed.success) {
    emit({ type: 'fatal', msg: parsed.error.issues.map((i) => `vrrp.${i.path.join('.')}: ${i.message}`).join('; ') });
    process.exit(2);
  }
  // Real-time scheduling (SCHED_RR, like keepalived's vrrp_rt_priority) when permitted, so that
  // adverts leave on time even when DNS load keeps every core busy; HADNS_VRRP_RT=0 turns it off.
  // The same call as node.realtime_priority (SCHED_RR, reset on fork: scripts start normal).
  if (process.env.HADNS_VRRP_RT !== '0') {
    const rt = setRealtime(Number(process.env.HADNS_VRRP_RT ?? 10));
    if (rt.error) emit({ type: 'log', level: 'info', msg: `real-time scheduling not available (${rt.error}): adverts run at normal priority` });
  }
  const engine = new VrrpEngine(parsed.data, { onEvent: emit });
  let stopping: Promise<void> | undefined;
  const stop = (code: number) => {
    stopping ??= engine.stop().then(() => { emit({ type: 'stopped' }); process.exit(code); }, (e) => { emit({ type: 'fatal', msg: String(e) }); process.exit(1); });
    return stopping;
  };
  process.on('SIGTERM', () => void stop(0));
  process.on('SIGINT', () => void stop(0));
  process.on('message', (m: ToEngine) => {
    if (m.type === 'stop') void stop(0);
    else if (m.type === 'track') engine.setTrack(m.name, m.up, m.weight, m.instance);
    else if (m.type === 'status') emit({ type: 'status', id: m.id, instances: engine.status() });
  });
  // The parent going away must not leave a master holding VIPs nobody supervises.
  process.on('disconnect', () => void stop(0));
  try {
    await engine.start();
  } catch (e) {
    emit({ type: 'fatal', msg: (e as Error).message });
    await engine.stop().catch(() => undefined);
    process.exit(1);
  }
  emit({ type: 'ready', pid: process.pid, instances: engine.status() });
}

const args = process.argv.slice(2);
const i = args.indexOf('--config');
if (i >= 0 && args[i + 1]) {
  await run(loadFile(args[i + 1]!));
} else if (process.send) {
  process.once('message', (m: ToEngine) => {
    if (m.type === 'config') void run(m.section);
  });
} else {
  process.stderr.write('usage: node dist/src/vrrp/main.js --config FILE (JSON or YAML vrrp section)\n');
  process.exit(2);
}
