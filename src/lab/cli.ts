/**
 * `hadns lab …`: a two-node hadns pair, a client and a fake upstream in network namespaces on one
 * machine (root). src/cli/main.ts hands every `lab` argument to labMain.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { Lab, isRoot, listLabs } from './lab.js';
import { ADDR, FAULT_HOW, FAULT_KINDS, parseNode, peerOf, type FaultKind, type NodeId } from './plan.js';
import { demoTimeline } from './analysis.js';
import { monoMs } from './load.js';

const HELP: Record<string, string> = {
  lab: `Usage: hadns lab <up|down|status|fault|heal|demo> [options]   (root)

A hadns pair on one machine: network namespaces for node-a, node-b, a client and a fake
upstream DNS, joined by a bridge that lives in its own namespace. Addresses 10.77.0.0/24 exist
only inside the lab: VIP ${ADDR.vip}, node-a ${ADDR.a}, node-b ${ADDR.b}, client ${ADDR.client},
upstream ${ADDR.upstream}. State, configs and logs: /run/hadns-lab/ID/.

Commands:
  up                   build the lab and start both nodes; prints the lab id
  down                 remove a lab (processes by PID, namespaces, links, files)
  status               processes, VIP holder, active faults, a query through the VIP
  fault NODE KIND      inject a fault (NODE: a or b; KIND: ${FAULT_KINDS.join(', ')})
  heal NODE KIND       undo it (a killed or stopped node is started again)
  demo                 load through the VIP, kill the master, print the failover timeline

Options common to all: --lab ID (default: the only lab), -h/--help.
Run 'hadns lab <command> --help' for details; docs/lab.md explains the lab.`,
  up: `Usage: hadns lab up [--timeout SECONDS]

Builds a lab (namespaces, bridge, veths, addresses), writes node-a.yaml and node-b.yaml, starts
the fake upstream and 'hadns start' in each node namespace, and waits until node-a holds the VIP
and answers through it. Everything created is recorded in /run/hadns-lab/ID/state.json first, so
'hadns lab down' removes it even after Ctrl-C or a crash; Ctrl-C during 'up' removes it at once.

Options:
      --timeout S   how long to wait for the pair to serve (default 30)
  -h, --help        this help`,
  down: `Usage: hadns lab down [--lab ID | --all] [--keep-logs]

Kills the lab's processes by PID (recorded ones, and whatever runs inside its namespaces),
deletes its namespaces (their veths and the bridge go with them) and its state directory.

Options:
      --lab ID      which lab (default: the only one)
      --all         every lab under /run/hadns-lab (e.g. leftovers of a crash)
      --keep-logs   keep /run/hadns-lab/ID/*.log
  -h, --help        this help`,
  status: `Usage: hadns lab status [--lab ID]

Shows the lab's namespaces, processes, the VIP holder (from 'ip addr' in each node namespace),
active faults, and sends one query from the client to the VIP.`,
  fault: `Usage: hadns lab fault NODE KIND [--lab ID]

NODE is a or b (node-a is the master when the lab is healthy). KIND:
${FAULT_KINDS.map((k) => `  ${k.padEnd(14)} ${FAULT_HOW[k]}`).join('\n')}

For backup-dead, NODE is the master whose backup dies: 'fault a backup-dead' kills node-b.`,
  heal: `Usage: hadns lab heal NODE KIND [--lab ID]

Undoes 'hadns lab fault NODE KIND': restarts a killed/stopped node with its config, sets the
link up, re-enables the bridge port, or revives the resolver (SIGUSR2 again).`,
  demo: `Usage: hadns lab demo [--lab ID] [--rate N] [--keep]

Brings a lab up if none is, runs a steady client load through the VIP (N queries/s, default 200,
one try per query, 1 s timeout), SIGKILLs the master 1.5 s in, restarts it 3 s later, and prints
the timeline: when the VIP moved and how many queries failed per 100 ms.

Options:
      --rate N      queries per second (default 200)
      --keep        leave a lab that the demo built running afterwards (default: remove it)
  -h, --help        this help`,
};

function out(s: string): void { process.stdout.write(s.endsWith('\n') ? s : `${s}\n`); }
function err(s: string): void { process.stderr.write(s.endsWith('\n') ? s : `${s}\n`); }
const t0 = monoMs();
const progress = (m: string) => err(`[${((monoMs() - t0) / 1000).toFixed(1).padStart(5)} s] ${m}`);

function parse<T extends NonNullable<ParseArgsConfig['options']>>(cmd: string, argv: string[], options: T, positionals = false) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: positionals, strict: true });
  } catch (e) {
    err(`hadns lab ${cmd}: ${(e as Error).message}\n\n${HELP[cmd]}`);
    return null;
  }
}

/**
 * Tears the lab down on Ctrl-C / SIGTERM while a command that builds or drives it runs;
 * returns a function removing the handlers.
 */
function onInterrupt(getLab: () => Lab | null, ownLab: () => boolean): () => void {
  let done = false;
  const h = (sig: NodeJS.Signals) => {
    if (done) return;
    done = true;
    const lab = getLab();
    err(`\n${sig}: ${lab && ownLab() ? `removing lab ${lab.id}` : 'stopping'}`);
    const finish = () => process.exit(sig === 'SIGINT' ? 130 : 143);
    if (lab && ownLab()) lab.down(progress).then(finish, (e) => { err(String((e as Error).message)); finish(); });
    else finish();
  };
  process.on('SIGINT', h);
  process.on('SIGTERM', h);
  return () => { process.off('SIGINT', h); process.off('SIGTERM', h); };
}

export async function labMain(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') { out(HELP.lab!); return cmd ? 0 : 2; }
  if (!(cmd in HELP) || cmd === 'lab') { err(`hadns lab: unknown command "${cmd}"\n\n${HELP.lab}`); return 2; }
  if (rest.includes('--help') || rest.includes('-h')) { out(HELP[cmd]!); return 0; }
  if (!isRoot()) { err('hadns lab: needs root (network namespaces, veth, a bridge)'); return 1; }
  try {
    switch (cmd) {
      case 'up': return await cmdUp(rest);
      case 'down': return await cmdDown(rest);
      case 'status': return await cmdStatus(rest);
      case 'fault': return await cmdFault(rest, true);
      case 'heal': return await cmdFault(rest, false);
      case 'demo': return await cmdDemo(rest);
    }
  } catch (e) {
    err(`hadns lab ${cmd}: ${(e as Error).message}`);
    return 1;
  }
  return 2;
}

/** Removes labs whose builder crashed mid-way (phase "building", creator gone). */
async function sweepCrashed(): Promise<void> {
  for (const id of listLabs()) {
    let lab: Lab;
    try { lab = Lab.open(id); } catch { continue; }
    if (lab.crashed()) { progress(`lab ${id} was left half-built by a crashed command: removing it`); await lab.down(progress).catch((e) => err((e as Error).message)); }
  }
}

async function buildLab(timeoutS: number): Promise<Lab> {
  await sweepCrashed();
  const lab = Lab.create();
  const off = onInterrupt(() => lab, () => true);
  try {
    await lab.up(progress, timeoutS * 1000);
  } catch (e) {
    progress(`lab ${lab.id} did not come up: removing it`);
    await lab.down(progress, { keepLogs: true }).catch(() => undefined);
    throw e;
  } finally {
    off();
  }
  return lab;
}

async function cmdUp(argv: string[]): Promise<number> {
  const a = parse('up', argv, { timeout: { type: 'string' } });
  if (!a) return 2;
  const lab = await buildLab(Number(a.values.timeout ?? 30));
  out(lab.id);
  err(`try:  hadns lab status   hadns lab fault a kill   hadns lab heal a kill   hadns lab demo   hadns lab down\n`
    + `      ip netns exec ${lab.ns('client')} bash   (a shell on the client; the VIP is ${ADDR.vip})`);
  return 0;
}

async function cmdDown(argv: string[]): Promise<number> {
  const a = parse('down', argv, { lab: { type: 'string' }, all: { type: 'boolean' }, 'keep-logs': { type: 'boolean' } });
  if (!a) return 2;
  const ids = a.values.all ? listLabs() : [Lab.open(a.values.lab).id];
  if (!ids.length) { err('no lab to remove'); return 0; }
  let failed = 0;
  for (const id of ids) {
    try { await Lab.open(id).down(progress, { keepLogs: a.values['keep-logs'] }); } catch (e) { failed++; err((e as Error).message); }
  }
  return failed ? 1 : 0;
}

async function cmdStatus(argv: string[]): Promise<number> {
  const a = parse('status', argv, { lab: { type: 'string' } });
  if (!a) return 2;
  out(await Lab.open(a.values.lab).status());
  return 0;
}

async function cmdFault(argv: string[], inject: boolean): Promise<number> {
  const name = inject ? 'fault' : 'heal';
  const a = parse(name, argv, { lab: { type: 'string' } }, true);
  if (!a) return 2;
  const [nodeArg, kindArg] = a.positionals;
  const node = parseNode(nodeArg);
  const kind = FAULT_KINDS.find((k) => k === kindArg);
  if (!node || !kind || a.positionals.length !== 2) { err(`hadns lab ${name}: expected NODE (a|b) and KIND\n\n${HELP[name]}`); return 2; }
  const lab = Lab.open(a.values.lab);
  if (inject) {
    await lab.fault(node, kind);
    out(`${kind} on node-${kind === 'backup-dead' ? peerOf(node) : node}: ${FAULT_HOW[kind]}`);
  } else {
    await lab.heal(node, kind);
    out(`healed ${kind} on node-${kind === 'backup-dead' ? peerOf(node) : node}`);
  }
  return 0;
}

async function cmdDemo(argv: string[]): Promise<number> {
  const a = parse('demo', argv, { lab: { type: 'string' }, rate: { type: 'string' }, keep: { type: 'boolean' } });
  if (!a) return 2;
  const rate = Number(a.values.rate ?? 200);
  if (!Number.isFinite(rate) || rate < 1 || rate > 2000) { err('hadns lab demo: --rate must be 1..2000'); return 2; }
  let lab: Lab | null = null;
  let built = false;
  if (a.values.lab || listLabs().length) {
    lab = Lab.open(a.values.lab);
    if (lab.state.phase !== 'ready') throw new Error(`lab ${lab.id} is not ready (${lab.state.phase}); 'hadns lab down --lab ${lab.id}' and try again`);
    if (lab.state.faults.length) throw new Error(`lab ${lab.id} has active faults (${lab.state.faults.map((f) => `${f.kind} ${f.target}`).join(', ')}): heal them first`);
    progress(`using lab ${lab.id}`);
  } else {
    progress('no lab is up: building one');
    lab = await buildLab(30);
    built = true;
  }
  const theLab = lab;
  const off = onInterrupt(() => theLab, () => built && !a.values.keep);
  try {
    const h = await lab.vipHolders();
    if (h.a === h.b) throw new Error(`the VIP is held by ${h.a ? 'both nodes' : 'nobody'}: not a steady state to demo`);
    const master: NodeId = h.a ? 'a' : 'b';
    const durationS = 8;
    progress(`client load: ${rate} q/s to ${ADDR.vip}:53 for ${durationS} s (one try, 1 s timeout); node-${master} is the master`);
    const watch = lab.watchVip(50);
    const load = lab.runLoad({ rate, durationS, onProgress: (p) => progress(`  sent ${p.sent}, answered ${p.ok}, lost ${p.timeout + p.error}`) });
    const start = monoMs();
    await sleepUntil(start + 1500);
    const faultAt = await lab.fault(master, 'kill');
    progress(`SIGKILL node-${master} (pid ${lab.nodeProc(master)?.pid})`);
    await sleepUntil(faultAt + 3000);
    const healAt = await lab.heal(master, 'kill');
    progress(`restarting node-${master} (it takes the VIP back: preemption)`);
    const res = await load;
    const samples = await watch.stop();
    out(`\nhadns lab ${lab.id}: SIGKILL of the master node-${master} under load (times relative to the kill)\n`);
    out(demoTimeline({ load: res, samples, faultAt, healAt, what: `SIGKILL node-${master}` }));
  } finally {
    off();
    if (built && !a.values.keep) await lab.down(progress);
    else progress(`lab ${lab.id} left up ('hadns lab down' removes it)`);
  }
  return 0;
}

/** The demo's schedule is wall time by design (steady load before and after the fault). */
function sleepUntil(t: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, t - monoMs())));
}
