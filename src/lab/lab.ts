/**
 * The lab shell (root only): builds the namespaces, bridge and veths of plan.ts, starts the fake
 * upstream and one `hadns start` per node inside their namespaces, injects and heals faults, and
 * removes everything again.
 *
 * Everything created is written to a state file (/run/hadns-lab/ID/state.json) *before* it is
 * created, so `down` can remove it later from another process — after Ctrl-C, after SIGTERM, and
 * after a crash of the command that built it. Processes are killed by PID: the ones recorded (each
 * checked against /proc/PID/cmdline, which carries the lab directory, so a reused PID is never
 * hit) and whatever still runs inside the lab's own namespaces (`ip netns pids`), e.g. a node's
 * VRRP engine child.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import {
  ADDR, LAB_PREFIX, LAB_STATE_ROOT, LOAD_NAMES, ROLES, faultTarget, hasAddress, hostsFile, labNames, macOf, nodeConfig, peerOf,
  type FaultKind, type LabNames, type NodeId, type Role,
} from './plan.js';
import { monoMs, type LoadResult } from './load.js';
import type { VipSample } from './analysis.js';
import { DAEMON_NODE_FLAGS } from '../util/node-flags.js';

/** dist/src/lab → the repository root (bin/hadns, dist/). */
const DIST_LAB = fileURLToPath(new URL('.', import.meta.url));
export const REPO_ROOT = join(DIST_LAB, '..', '..', '..');
const HADNS_BIN = join(REPO_ROOT, 'bin', 'hadns');

export const isRoot = (): boolean => process.getuid?.() === 0;

export interface Cmd { ok: boolean; stdout: string; stderr: string }

/** Runs a command without a shell; never rejects. */
export function run(cmd: string, args: string[], timeoutMs = 10_000): Promise<Cmd> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) =>
      resolve({ ok: !err, stdout: String(stdout), stderr: String(stderr).trim() || (err ? err.message : '') }));
  });
}

async function must(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  if (!r.ok) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

export interface ProcRecord {
  pid: number;
  role: Role | 'load';
  argv: string[];
  log: string;
  /** Wall-clock ms. */
  startedAt: number;
}

export interface ActiveFault { node: NodeId; kind: FaultKind; target: NodeId; at: number }

export interface LabState {
  version: 1;
  id: string;
  createdAt: number;
  /** The process that built the lab (a crashed builder leaves phase "building"). */
  creatorPid: number;
  phase: 'building' | 'ready';
  /** Namespaces in creation order (recorded before each is created). */
  namespaces: string[];
  procs: Record<string, ProcRecord>;
  faults: ActiveFault[];
  token: string;
}

export type Progress = (msg: string) => void;
const quiet: Progress = () => undefined;

function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

/** The process `pid` is alive and is ours: its command line mentions the lab directory. */
function pidIsOurs(pid: number, dir: string): boolean {
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir); } catch { return false; }
}

async function waitGone(pids: number[], timeoutMs: number): Promise<boolean> {
  const end = monoMs() + timeoutMs;
  while (pids.some(pidAlive)) {
    if (monoMs() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

/** Lab ids present under the state root. */
export function listLabs(root = LAB_STATE_ROOT): string[] {
  try { return readdirSync(root).filter((d) => existsSync(join(root, d, 'state.json'))).sort(); } catch { return []; }
}

export class Lab {
  readonly names: LabNames;
  state: LabState;
  /** Children started by this process (to learn of their exit without polling). */
  private readonly children = new Map<string, ChildProcess>();

  private constructor(state: LabState, readonly root: string) {
    this.names = labNames(state.id, root);
    this.state = state;
  }

  get id(): string { return this.state.id; }
  get dir(): string { return this.names.dir; }
  get statePath(): string { return join(this.dir, 'state.json'); }

  /** A new, empty lab with a fresh id; its state file exists before anything is created. */
  static create(root = LAB_STATE_ROOT): Lab {
    const id = randomBytes(3).toString('hex').slice(0, 5);
    const lab = new Lab({
      version: 1, id, createdAt: Date.now(), creatorPid: process.pid, phase: 'building',
      namespaces: [], procs: {}, faults: [], token: randomBytes(16).toString('hex'),
    }, root);
    mkdirSync(lab.dir, { recursive: true, mode: 0o700 });
    lab.save();
    return lab;
  }

  /** Opens an existing lab: by id, or the only one there is. */
  static open(id?: string, root = LAB_STATE_ROOT): Lab {
    const ids = listLabs(root);
    if (!id) {
      if (ids.length === 0) throw new Error('no lab is up (hadns lab up)');
      if (ids.length > 1) throw new Error(`several labs are up (${ids.join(', ')}): choose one with --lab ID`);
      id = ids[0]!;
    }
    const file = join(labNames(id, root).dir, 'state.json');
    if (!existsSync(file)) throw new Error(`no lab ${id} (state file ${file} not found)`);
    return new Lab(JSON.parse(readFileSync(file, 'utf8')) as LabState, root);
  }

  /** Atomic write: a crash never leaves a half-written state file. */
  save(): void {
    const tmp = `${this.statePath}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.state, null, 2));
    renameSync(tmp, this.statePath);
  }

  ns(r: Role | 'sw'): string { return this.names.ns[r]; }

  // ------------------------------------------------------------ building

  /** Builds the network, writes configs, starts the upstream and both nodes, waits for service. */
  async up(progress: Progress = quiet, readyTimeoutMs = 30_000): Promise<void> {
    const n = this.names;
    progress(`lab ${this.id}: namespaces and bridge (state in ${this.dir})`);
    await this.addNs(n.ns.sw);
    await must('ip', ['-n', n.ns.sw, 'link', 'add', n.bridge, 'type', 'bridge']);
    // No STP: ports forward at once, and a port's state can be set by hand (the partition fault).
    await must('ip', ['-n', n.ns.sw, 'link', 'set', n.bridge, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
    await must('ip', ['-n', n.ns.sw, 'link', 'set', n.bridge, 'up']);
    for (const r of ROLES) {
      const ns = n.ns[r];
      await this.addNs(ns);
      // Both ends are created directly inside their namespaces: nothing ever appears on the host.
      await must('ip', ['link', 'add', 'eth0', 'netns', ns, 'address', macOf(r), 'type', 'veth', 'peer', 'name', n.port[r], 'netns', n.ns.sw]);
      await must('ip', ['-n', n.ns.sw, 'link', 'set', n.port[r], 'master', n.bridge, 'up']);
      await must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      await must('ip', ['-n', ns, 'addr', 'add', `${ADDR[r]}/${LAB_PREFIX}`, 'dev', 'eth0']);
      await must('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    }
    this.writeFiles();
    progress('fake upstream DNS');
    await this.startUpstream();
    progress('hadns nodes A and B');
    this.startNode('a');
    this.startNode('b');
    progress('waiting for node-a to hold the VIP and answer through it');
    await this.waitSteady(readyTimeoutMs);
    this.state.phase = 'ready';
    this.save();
    progress(`lab ${this.id} is up: VIP ${ADDR.vip} on node-a`);
  }

  private async addNs(ns: string): Promise<void> {
    this.state.namespaces.push(ns);
    this.save();
    await must('ip', ['netns', 'add', ns]);
  }

  nodeDir(node: NodeId): string { return join(this.dir, `node-${node}`); }
  configPath(node: NodeId): string { return join(this.dir, `node-${node}.yaml`); }
  logPath(name: string): string { return join(this.dir, `${name}.log`); }

  private writeFiles(): void {
    const hosts = join(this.dir, 'hosts');
    writeFileSync(hosts, hostsFile());
    for (const node of ['a', 'b'] as const) {
      mkdirSync(this.nodeDir(node), { recursive: true });
      const cfg = nodeConfig(node, { stateDir: this.nodeDir(node), hostsPath: hosts, token: this.state.token });
      writeFileSync(this.configPath(node), `# hadns lab ${this.id}: node-${node} (written by hadns lab up)\n${stringify(cfg)}`, { mode: 0o600 });
    }
  }

  /** Starts a detached process in a namespace, output appended to its log; recorded by PID. */
  private spawnIn(key: string, role: Role | 'load', argv: string[], env: NodeJS.ProcessEnv = {}): ProcRecord {
    const log = this.logPath(key);
    const fd = openSync(log, 'a');
    const ns = role === 'load' ? this.ns('client') : this.ns(role);
    // `ip netns exec` execs the program: the PID we get is the program's own.
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], {
      detached: true, stdio: ['ignore', fd, fd], env: { ...process.env, ...env },
    });
    closeSync(fd);
    if (!child.pid) throw new Error(`cannot start ${argv.join(' ')}`);
    child.unref();
    child.on('error', () => undefined);
    this.children.set(key, child);
    const rec: ProcRecord = { pid: child.pid, role, argv, log, startedAt: Date.now() };
    this.state.procs[key] = rec;
    this.save();
    return rec;
  }

  private async startUpstream(): Promise<void> {
    const rec = this.spawnIn('upstream', 'upstream', [process.execPath, join(DIST_LAB, 'upstream.js'), '--listen', ADDR.upstream, '--lab', this.dir]);
    await this.waitFor(() => readLog(rec.log).includes('upstream listening'), 10_000, 'the fake upstream to listen');
  }

  /** Starts (or restarts) a node's `hadns start` in its namespace, with fault injection armed. */
  startNode(node: NodeId): ProcRecord {
    return this.spawnIn(`node-${node}`, node, [process.execPath, ...DAEMON_NODE_FLAGS, HADNS_BIN, 'start', '--config', this.configPath(node)], { HADNS_FAULT_INJECTION: '1' });
  }

  nodeProc(node: NodeId): ProcRecord | undefined { return this.state.procs[`node-${node}`]; }

  nodeAlive(node: NodeId): boolean {
    const p = this.nodeProc(node);
    return !!p && pidAlive(p.pid) && pidIsOurs(p.pid, this.dir);
  }

  /** The node's current process's log lines (JSON), oldest first. */
  nodeLog(node: NodeId): Array<Record<string, unknown>> {
    const p = this.nodeProc(node);
    if (!p) return [];
    const out: Array<Record<string, unknown>> = [];
    for (const line of readLog(p.log).split('\n')) {
      if (!line.startsWith('{')) continue;
      try { const o = JSON.parse(line); if (o.pid === p.pid) out.push(o); } catch { /* partial line */ }
    }
    return out;
  }

  /** The node's VRRP state as its current process last logged it (null: not started yet). */
  vrrpState(node: NodeId): string | null {
    const l = this.nodeLog(node).filter((o) => o.msg === 'vrrp state').pop();
    return l ? String(l.state) : null;
  }

  /**
   * The healthy steady state every fault starts from: both nodes running, node-a MASTER and alone
   * with the VIP, node-b BACKUP, and a query through the VIP answered.
   */
  async waitSteady(timeoutMs: number): Promise<void> {
    try {
      await this.waitFor(async () => {
        if (this.vrrpState('a') !== 'MASTER' || this.vrrpState('b') !== 'BACKUP') return false;
        const h = await this.vipHolders();
        return h.a && !h.b;
      }, timeoutMs, 'node-a MASTER alone with the VIP and node-b BACKUP');
      await this.waitFor(async () => (await this.probe()) === 'ok', 5000, 'an answer through the VIP');
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${this.logTails(15)}`);
    }
  }

  /** Polls an (async) condition with a deadline: for state only visible by asking the kernel. */
  async waitFor(pred: () => boolean | Promise<boolean>, timeoutMs: number, what: string, everyMs = 50): Promise<number> {
    const end = monoMs() + timeoutMs;
    for (;;) {
      if (await pred()) return monoMs();
      if (monoMs() > end) throw new Error(`timeout (${timeoutMs} ms) waiting for ${what}`);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }

  // ------------------------------------------------------------ observing

  async vipHolders(): Promise<{ a: boolean; b: boolean }> {
    const [a, b] = await Promise.all((['a', 'b'] as const).map((n) => run('ip', ['-n', this.ns(n), '-o', '-4', 'addr', 'show', 'dev', 'eth0'], 2000)));
    return { a: hasAddress(a!.stdout, ADDR.vip), b: hasAddress(b!.stdout, ADDR.vip) };
  }

  /** Polls both nodes' addresses every `everyMs` until stopped: the VIP holder timeline. */
  watchVip(everyMs = 50): { samples: VipSample[]; stop: () => Promise<VipSample[]> } {
    const samples: VipSample[] = [];
    let running = true;
    const loop = (async () => {
      while (running) {
        const t = monoMs();
        const h = await this.vipHolders();
        samples.push({ t, ...h });
        const wait = t + everyMs - monoMs();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    })();
    return { samples, stop: async () => { running = false; await loop; return samples; } };
  }

  /** One query from the client namespace through the VIP: 'ok', 'lost' or 'error'. */
  async probe(name = 'www.lab.test', timeoutMs = 1000): Promise<'ok' | 'lost' | 'error'> {
    const r = await this.runLoad({ rate: 1, durationS: 1, timeoutMs, names: [name], key: 'probe' });
    return r.outcome === 'o' ? 'ok' : r.outcome === 'e' ? 'error' : 'lost';
  }

  /**
   * Runs the client load inside the client namespace (a child node process, bounded by count and
   * time, stopping by itself) and resolves with its result.
   */
  runLoad(o: { rate: number; durationS: number; timeoutMs?: number; names?: readonly string[]; key?: string; onProgress?: (p: { sent: number; ok: number; error: number; timeout: number }) => void }): Promise<LoadResult> {
    const key = o.key ?? 'load';
    const argv = [process.execPath, join(DIST_LAB, 'load.js'), '--target', `${ADDR.vip}:53`, '--rate', String(o.rate),
      '--duration', String(o.durationS), '--timeout', String(o.timeoutMs ?? 1000), '--names', (o.names ?? LOAD_NAMES).join(','), '--lab', this.dir];
    const child = spawn('ip', ['netns', 'exec', this.ns('client'), ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    // Recorded so that `down` after a crash stops it too (it would stop by itself anyway).
    if (key !== 'probe' && child.pid) { this.state.procs[key] = { pid: child.pid, role: 'load', argv, log: '', startedAt: Date.now() }; this.save(); }
    return new Promise((resolve, reject) => {
      let buf = '';
      let result: LoadResult | null = null;
      let stderr = '';
      child.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          try {
            const m = JSON.parse(line);
            if (m.type === 'result') result = m as LoadResult;
            else if (m.type === 'progress') o.onProgress?.(m);
          } catch { /* not ours */ }
        }
      });
      child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
      child.on('error', reject);
      child.on('exit', (code) => {
        if (key !== 'probe' && this.state.procs[key]?.pid === child.pid) { delete this.state.procs[key]; this.save(); }
        if (result) resolve(result);
        else reject(new Error(`load generator exited with ${code}: ${stderr.trim()}`));
      });
    });
  }

  logTails(lines = 20): string {
    return Object.entries(this.state.procs).filter(([, p]) => p.log).map(([k, p]) => {
      const l = readLog(p.log).trimEnd().split('\n').slice(-lines).join('\n');
      return `--- ${k} (${p.log}):\n${l}`;
    }).join('\n');
  }

  async status(): Promise<string> {
    const out: string[] = [`lab ${this.id} (${this.state.phase}), state ${this.statePath}`];
    out.push(`  addresses: VIP ${ADDR.vip}, node-a ${ADDR.a}, node-b ${ADDR.b}, client ${ADDR.client}, upstream ${ADDR.upstream} (10.77.0.0/24, inside the lab only)`);
    out.push(`  namespaces: ${this.state.namespaces.join(' ')}`);
    for (const [k, p] of Object.entries(this.state.procs)) {
      out.push(`  ${k.padEnd(9)} pid ${String(p.pid).padEnd(7)} ${pidAlive(p.pid) && pidIsOurs(p.pid, this.dir) ? 'running' : 'not running'}${p.log ? `  log ${p.log}` : ''}`);
    }
    const h = await this.vipHolders();
    out.push(`  VIP held by: ${h.a && h.b ? 'BOTH node-a and node-b' : h.a ? 'node-a' : h.b ? 'node-b' : 'nobody'}`);
    out.push(`  active faults: ${this.state.faults.length ? this.state.faults.map((f) => `${f.kind} on node-${f.target}`).join(', ') : 'none'}`);
    out.push(`  DNS through the VIP from the client: ${await this.probe()}`);
    return out.join('\n');
  }

  // ------------------------------------------------------------ faults

  /**
   * Applies a fault. `node` is the node the fault is about; backup-dead kills its peer (the fault
   * is "node's backup dies"). Returns the monotonic time the fault took effect.
   */
  async fault(node: NodeId, kind: FaultKind): Promise<number> {
    const target = faultTarget(node, kind);
    const p = this.nodeProc(target);
    let at: number;
    switch (kind) {
      case 'kill':
      case 'backup-dead':
      case 'stop': {
        if (!p || !this.nodeAlive(target)) throw new Error(`node-${target} is not running`);
        at = monoMs();
        process.kill(p.pid, kind === 'stop' ? 'SIGTERM' : 'SIGKILL');
        break;
      }
      case 'link-down':
        at = monoMs();
        await must('ip', ['-n', this.ns(target), 'link', 'set', 'eth0', 'down']);
        break;
      case 'partition':
        at = monoMs();
        // STP port state "disabled": the bridge neither forwards to nor from the port, while the
        // veth keeps its carrier — the node sees its link up and hears nothing (a switch fault).
        await must('bridge', ['-n', this.ns('sw'), 'link', 'set', 'dev', this.names.port[target], 'state', '0']);
        break;
      case 'resolver-dead':
        if (!p || !this.nodeAlive(target)) throw new Error(`node-${target} is not running`);
        at = monoMs();
        process.kill(p.pid, 'SIGUSR2');
        break;
    }
    this.state.faults.push({ node, kind, target, at: Date.now() });
    this.save();
    return at;
  }

  /** Undoes a fault; a killed or stopped node is started again with its config. */
  async heal(node: NodeId, kind: FaultKind): Promise<number> {
    const target = faultTarget(node, kind);
    let at: number;
    switch (kind) {
      case 'kill':
      case 'backup-dead':
      case 'stop': {
        const p = this.nodeProc(target);
        if (p && !(await waitGone([p.pid], 10_000))) throw new Error(`node-${target} (pid ${p.pid}) is still running`);
        // Whatever the dead node left in its namespace (its VRRP engine child) goes first.
        await this.killNamespace(this.ns(target));
        at = monoMs();
        this.startNode(target);
        break;
      }
      case 'link-down':
        at = monoMs();
        await must('ip', ['-n', this.ns(target), 'link', 'set', 'eth0', 'up']);
        break;
      case 'partition':
        at = monoMs();
        await must('bridge', ['-n', this.ns('sw'), 'link', 'set', 'dev', this.names.port[target], 'state', '3']);
        break;
      case 'resolver-dead': {
        const p = this.nodeProc(target);
        if (!p || !this.nodeAlive(target)) throw new Error(`node-${target} is not running`);
        at = monoMs();
        process.kill(p.pid, 'SIGUSR2');
        break;
      }
    }
    this.state.faults = this.state.faults.filter((f) => !(f.target === target && f.kind === kind));
    this.save();
    return at;
  }

  /** Waits for a node process to exit (after kill/stop). */
  async waitNodeGone(node: NodeId, timeoutMs = 10_000): Promise<boolean> {
    const p = this.nodeProc(node);
    return p ? waitGone([p.pid], timeoutMs) : true;
  }

  // ------------------------------------------------------------ removing

  /** SIGKILLs every process inside a namespace (all of them are the lab's own). */
  private async killNamespace(ns: string): Promise<number[]> {
    const r = await run('ip', ['netns', 'pids', ns], 5000);
    const pids = r.ok ? r.stdout.split(/\s+/).filter(Boolean).map(Number).filter((p) => p > 1 && p !== process.pid) : [];
    for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    await waitGone(pids, 5000);
    return pids;
  }

  /** Removes everything the state file lists: processes, namespaces (with their links), files. */
  async down(progress: Progress = quiet, o: { keepLogs?: boolean } = {}): Promise<void> {
    progress(`lab ${this.id}: stopping processes`);
    const recorded = Object.values(this.state.procs).map((p) => p.pid).filter((pid) => pidAlive(pid) && pidIsOurs(pid, this.dir));
    for (const pid of recorded) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    for (const ns of this.state.namespaces) await this.killNamespace(ns);
    await waitGone(recorded, 5000);
    progress(`lab ${this.id}: deleting ${this.state.namespaces.length} namespace(s)`);
    const errors: string[] = [];
    for (const ns of [...this.state.namespaces].reverse()) {
      const r = await run('ip', ['netns', 'del', ns]);
      if (!r.ok && !/No such file|not found|Invalid/i.test(r.stderr)) errors.push(`${ns}: ${r.stderr}`);
    }
    if (errors.length) throw new Error(`lab ${this.id}: could not delete ${errors.join('; ')} (state kept in ${this.statePath})`);
    this.state.namespaces = [];
    this.state.procs = {};
    if (o.keepLogs) { rmSync(this.statePath, { force: true }); progress(`lab ${this.id}: logs kept in ${this.dir}`); }
    else rmSync(this.dir, { recursive: true, force: true });
    progress(`lab ${this.id} removed`);
  }

  /** The builder of a lab still building is gone: the lab is a leftover of a crash. */
  crashed(): boolean { return this.state.phase === 'building' && !pidAlive(this.state.creatorPid); }
}

function readLog(path: string): string {
  try { return readFileSync(path, 'utf8'); } catch { return ''; }
}

export { peerOf };
