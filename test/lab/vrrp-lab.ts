/**
 * Lab helpers for the VRRP lab tests: network namespaces joined by a bridge, hadns VRRP engines
 * and real keepalived inside them, and event waiting. Everything created has a random suffix and
 * is removed by `destroy()`; every process is started here and killed by PID.
 *
 * Topology: namespace `sw` holds bridge br0; each node namespace has `eth0` (a veth whose peer is
 * a bridge port in `sw`). Addresses are from 192.0.2.0/24 and 2001:db8::/64 (documentation ranges)
 * and exist only inside the namespaces.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

export const isRoot = process.getuid?.() === 0;
/** The repository root (works from test/lab under tsx and from dist/test/lab). */
export const repoRoot = ((): string => {
  let d = fileURLToPath(new URL('.', import.meta.url));
  while (!existsSync(join(d, 'package.json')) || d.endsWith('/dist/') || d.endsWith('/dist')) d = join(d, '..');
  return d;
})();

export function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

export function sh(cmd: string, args: string[], allowFail = false): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0 && !allowFail) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

export interface Proc {
  name: string;
  child: ChildProcess;
  lines: string[];
  /** Parsed JSON lines (hadns engines). */
  events: any[];
  exited: Promise<number | null>;
}

export class Lab {
  readonly id = randomBytes(3).toString('hex');
  readonly sw = `hvsw${this.id}`;
  readonly dir = mkdtempSync(join(tmpdir(), 'hadns-vrrp-lab-'));
  private readonly namespaces: string[] = [];
  private readonly procs: Proc[] = [];
  private waiters: Array<() => void> = [];

  constructor() {
    sh('ip', ['netns', 'add', this.sw]);
    this.namespaces.push(this.sw);
    sh('ip', ['-n', this.sw, 'link', 'add', 'br0', 'type', 'bridge']);
    // No STP listening delay: ports forward at once.
    sh('ip', ['-n', this.sw, 'link', 'set', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
    sh('ip', ['-n', this.sw, 'link', 'set', 'br0', 'up']);
  }

  ns(node: string): string { return `hv${node}${this.id}`; }

  /** Adds a node namespace with eth0 on the bridge, the given IPv4 host number and a fixed MAC. */
  addNode(node: string, host: number): string {
    const ns = this.ns(node);
    sh('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    // No duplicate address detection: link-local addresses are usable at once (no 1-2 s wait).
    sh('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.default.accept_dad=0', 'net.ipv6.conf.all.accept_dad=0']);
    sh('ip', ['link', 'add', 'eth0', 'netns', ns, 'address', `02:00:00:00:00:${host.toString(16).padStart(2, '0')}`, 'type', 'veth', 'peer', 'name', `p${node}`, 'netns', this.sw]);
    sh('ip', ['-n', this.sw, 'link', 'set', `p${node}`, 'master', 'br0', 'up']);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', ns, 'addr', 'add', `192.0.2.${host}/24`, 'dev', 'eth0']);
    sh('ip', ['-n', ns, 'addr', 'add', `2001:db8::${host}/64`, 'dev', 'eth0', 'nodad']);
    sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    return ns;
  }

  /** Waits until the node's IPv6 link-local address is usable (not tentative). */
  async waitLinkLocal(node: string, deadlineMs = 5000): Promise<void> {
    await this.poll(() => /fe80::\S+ scope link\s*$/m.test(sh('ip', ['-n', this.ns(node), '-6', 'addr', 'show', 'dev', 'eth0'])) &&
      !/tentative/.test(sh('ip', ['-n', this.ns(node), '-6', 'addr', 'show', 'dev', 'eth0', 'scope', 'link'])), deadlineMs, 'link-local address');
  }

  start(name: string, node: string, argv: string[], json: boolean): Proc {
    const child = spawn('ip', ['netns', 'exec', this.ns(node), ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    const p: Proc = {
      name, child, lines: [], events: [],
      exited: new Promise((r) => child.on('exit', (code) => { r(code); this.wake(); })),
    };
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        p.lines.push(line);
        if (json && line.startsWith('{')) {
          try { p.events.push({ ...JSON.parse(line), rxMs: performance.now() }); } catch { /* not JSON */ }
        }
        if (process.env.HADNS_LAB_VERBOSE) console.log(`[${name}] ${line}`);
      }
      this.wake();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    this.procs.push(p);
    return p;
  }

  /** Starts a hadns VRRP engine in `node` with the given vrrp section. */
  hadns(name: string, node: string, section: object): Proc {
    const file = join(this.dir, `${name}-${this.procs.length}.json`);
    writeFileSync(file, JSON.stringify(section));
    return this.start(name, node, [process.execPath, join(repoRoot, 'dist', 'src', 'vrrp', 'main.js'), '--config', file], true);
  }

  /** Starts the real keepalived (VRRP only, foreground, logging to the console) in `node`. */
  keepalived(name: string, node: string, conf: string): Proc {
    const file = join(this.dir, `${name}-${this.procs.length}.conf`);
    writeFileSync(file, conf);
    const base = join(this.dir, `${name}-${this.procs.length}`);
    return this.start(name, node, ['keepalived', '-n', '-l', '-P', '-f', file, '-p', `${base}.pid`, '-r', `${base}.vrrp.pid`], false);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Waits until `pred()` holds, re-checking whenever a process prints or exits. */
  waitFor<T>(pred: () => T | undefined | false, timeoutMs: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { this.waiters = this.waiters.filter((w) => w !== check); reject(new Error(`timeout (${timeoutMs} ms) waiting for ${what}`)); }, timeoutMs);
      const check = () => {
        const v = pred();
        if (v) { clearTimeout(t); resolve(v); } else this.waiters.push(check);
      };
      check();
    });
  }

  /** Waits for a hadns engine event; `after` = index to search from. */
  waitEvent(p: Proc, match: (e: any) => boolean, timeoutMs: number, after = 0): Promise<any> {
    return this.waitFor(() => p.events.slice(after).find(match), timeoutMs, `${p.name} event`);
  }

  waitLine(p: Proc, re: RegExp, timeoutMs: number, after = 0): Promise<string> {
    return this.waitFor(() => p.lines.slice(after).find((l) => re.test(l)), timeoutMs, `${p.name}: ${re}`);
  }

  /** Polls a condition with a deadline (for state only visible by asking the kernel). */
  async poll(pred: () => boolean, timeoutMs: number, what: string, everyMs = 10): Promise<number> {
    const t0 = performance.now();
    while (!pred()) {
      if (performance.now() - t0 > timeoutMs) throw new Error(`timeout (${timeoutMs} ms) waiting for ${what}`);
      await new Promise((r) => setTimeout(r, everyMs));
    }
    return performance.now();
  }

  addrs(node: string): string {
    return sh('ip', ['-n', this.ns(node), 'addr', 'show', 'dev', 'eth0'], true);
  }

  hasVip(node: string, vip: string): boolean {
    return this.addrs(node).includes(` ${vip}/`);
  }

  kill(p: Proc, sig: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    // `ip netns exec` execs the program, so the PID is the program's own.
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill(sig);
    return p.exited;
  }

  async destroy(): Promise<void> {
    for (const p of this.procs) {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    }
    await Promise.all(this.procs.map((p) => p.exited));
    for (const ns of this.namespaces.reverse()) sh('ip', ['netns', 'del', ns], true);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A hadns vrrp section with one instance (v3 multicast by default). */
export function section(o: {
  name?: string; vrid?: number; priority: number; advert_int?: number; version?: 2 | 3; preempt?: boolean;
  vip?: string; label?: string; unicast_src_ip?: string; unicast_peers?: string[]; auth?: object; garp?: object;
}): object {
  return {
    instances: [{
      name: o.name ?? 'VI_1', interface: 'eth0', vrid: o.vrid ?? 88, priority: o.priority,
      advert_int: o.advert_int ?? 0.2, version: o.version ?? 3, preempt: o.preempt ?? true,
      ...(o.unicast_src_ip ? { unicast_src_ip: o.unicast_src_ip } : {}),
      ...(o.unicast_peers ? { unicast_peers: o.unicast_peers } : {}),
      ...(o.auth ? { auth: o.auth } : {}),
      virtual_addresses: [{ address: o.vip ?? '192.0.2.210/24', ...(o.label === '' ? {} : { label: o.label ?? 'eth0:0' }) }],
      garp: { master_delay: 0, master_repeat: 2, ...(o.garp ?? {}) },
    }],
  };
}
