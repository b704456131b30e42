/**
 * Active-active (issue 5): two VRRP instances, each node master of one VIP, clients list both
 * VIPs. Both VIPs answer; when a node dies the other holds both and both still answer; when it
 * returns it takes its own VIP back. Built on the `hadns lab` pair, whose node configs get a
 * second instance and a second balancer listener (as examples/active-active/).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { Lab, isRoot, run } from '../../src/lab/lab.js';
import { ADDR, LAB_PREFIX, VRID, hasAddress, type NodeId } from '../../src/lab/plan.js';

const skip = isRoot() ? false : 'needs root (network namespaces, veth, a bridge)';
const VIP2 = '10.77.0.20';
let lab: Lab | null = null;

before(async () => {
  if (skip) return;
  lab = Lab.create();
  await lab.up(() => undefined, 30_000);
});
after(async () => { if (lab) await lab.down(() => undefined); });

/** Who carries each VIP now. */
async function holders(l: Lab): Promise<Record<string, NodeId[]>> {
  const out: Record<string, NodeId[]> = { [ADDR.vip]: [], [VIP2]: [] };
  for (const n of ['a', 'b'] as const) {
    const r = await run('ip', ['-n', l.ns(n), '-o', '-4', 'addr', 'show', 'dev', 'eth0'], 2000);
    for (const v of [ADDR.vip, VIP2]) if (hasAddress(r.stdout, v)) out[v]!.push(n);
  }
  return out;
}

async function waitHolders(l: Lab, want: Record<string, NodeId[]>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last: Record<string, NodeId[]> = {};
  while (Date.now() < end) {
    last = await holders(l);
    if (JSON.stringify(last) === JSON.stringify(want)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`VIP holders ${JSON.stringify(last)}, wanted ${JSON.stringify(want)}`);
}

/** 40 queries to `vip` from the client namespace (one try each, 1 s timeout); how many were answered. */
async function answered(l: Lab, vip: string): Promise<number> {
  const r = await run('ip', ['netns', 'exec', l.ns('client'), process.execPath, new URL('../../src/lab/load.js', import.meta.url).pathname,
    '--target', `${vip}:53`, '--rate', '100', '--duration', '0.4', '--names', 'www.lab.test'], 15_000);
  const line = r.stdout.split('\n').find((x) => x.includes('"type":"result"'));
  assert.ok(line, `load generator output: ${r.stdout} ${r.stderr}`);
  const res = JSON.parse(line) as { outcome: string };
  return [...res.outcome].filter((c) => c === 'o').length;
}

test('active-active: each node masters one VIP; a dead node\'s VIP moves to the other and comes back', { skip, timeout: 120_000 }, async () => {
  const l = lab!;
  // Turn the lab pair into the active-active layout (examples/active-active/): stop, rewrite, start.
  for (const n of ['a', 'b'] as const) { const p = l.nodeProc(n)!; process.kill(p.pid, 'SIGTERM'); await l.waitNodeGone(n); }
  for (const n of ['a', 'b'] as const) {
    const cfg = parse(readFileSync(l.configPath(n), 'utf8'));
    const i1 = cfg.vrrp.instances[0];
    cfg.vrrp.instances.push({
      ...i1, name: 'VI_2', vrid: VRID + 1, priority: n === 'a' ? 100 : 150,
      virtual_addresses: [{ address: `${VIP2}/${LAB_PREFIX}`, dev: 'eth0', label: 'eth0:1' }],
    });
    cfg.balancer.services[0].listen.push(`${VIP2}:53`);
    writeFileSync(l.configPath(n), stringify(cfg));
  }
  l.startNode('a');
  l.startNode('b');
  await waitHolders(l, { [ADDR.vip]: ['a'], [VIP2]: ['b'] });
  assert.equal(await answered(l, ADDR.vip), 40);
  assert.equal(await answered(l, VIP2), 40);

  // node-a dies: node-b holds both VIPs and both answer.
  process.kill(l.nodeProc('a')!.pid, 'SIGKILL');
  await l.waitNodeGone('a');
  await waitHolders(l, { [ADDR.vip]: ['b'], [VIP2]: ['b'] }, 5000);
  assert.equal(await answered(l, ADDR.vip), 40);
  assert.equal(await answered(l, VIP2), 40);

  // node-a returns and takes its own VIP back (after preempt_delay); node-b keeps its own.
  l.startNode('a');
  await waitHolders(l, { [ADDR.vip]: ['a'], [VIP2]: ['b'] });
  assert.equal(await answered(l, ADDR.vip), 40);
  assert.equal(await answered(l, VIP2), 40);
});
