/**
 * node.realtime_priority on a started daemon: the event loop's thread (and only it) runs
 * SCHED_RR with reset-on-fork; without the privilege the daemon warns and serves as before.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HadnsProcess } from '../helpers/hadns-process.js';
import { udpQuery, answersOf } from '../helpers/dns-client.js';
import { isRoot } from '../../src/lab/lab.js';

const dir = mkdtempSync(join(tmpdir(), 'hadns-rt-'));
const procs: HadnsProcess[] = [];
after(async () => {
  for (const p of procs) p.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  rmSync(dir, { recursive: true, force: true });
});

const cfg = join(dir, 'rt.yaml');
writeFileSync(cfg, 'log: { level: info, format: json }\napi: { enabled: false }\nnode: { realtime_priority: 7 }\n'
  + 'resolver:\n  listen: ["127.0.0.1:0"]\n  upstreams: { servers: [] }\n  records:\n    - { name: rt.test, type: A, value: 10.7.7.7 }\n');

/** [policy, rt_priority] of each thread of `pid`, by thread id (/proc/PID/task/TID/stat fields 41 and 40). */
function threads(pid: number): Map<number, [number, number]> {
  const out = new Map<number, [number, number]>();
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] is field 3
    out.set(Number(t), [Number(f[41 - 3]), Number(f[40 - 3])]);
  }
  return out;
}

async function stop(p: HadnsProcess): Promise<void> {
  p.kill('SIGTERM');
  assert.equal(await p.exited, 0);
}

test('realtime_priority: the event loop runs SCHED_RR (reset on fork), the helper threads as before', { skip: !isRoot() && 'needs root (CI is root)' }, async () => {
  const p = new HadnsProcess(['start', '--config', cfg]);
  procs.push(p);
  const l = await p.waitFor((x) => x.msg === 'event loop: real-time scheduling');
  assert.equal(l.realtime_priority, 7);
  const port = await p.udpPort();
  assert.deepEqual(answersOf(await udpQuery(port, 'rt.test')), ['A 10.7.7.7']);
  const pid = p.child.pid!;
  const c = spawnSync('chrt', ['-p', String(pid)], { encoding: 'utf8' });
  assert.match(c.stdout, /policy: SCHED_RR\|SCHED_RESET_ON_FORK/);
  assert.match(c.stdout, /priority: 7/);
  const ts = threads(pid);
  assert.deepEqual(ts.get(pid), [2, 7]); // SCHED_RR
  assert.ok(ts.size > 1, 'Node has helper threads');
  for (const [tid, [policy]] of ts) if (tid !== pid) assert.equal(policy, 0, `thread ${tid} stays SCHED_OTHER`);
  await stop(p);
});

test('realtime_priority without the privilege: a warning, normal scheduling, DNS served', async () => {
  // As root, drop CAP_SYS_NICE (RLIMIT_RTPRIO is 0 by default); others lack it anyway.
  const prefix = isRoot() ? ['setpriv', '--bounding-set=-sys_nice', '--inh-caps=-sys_nice'] : [];
  const p = new HadnsProcess(['start', '--config', cfg], {}, 'node+flags', prefix);
  procs.push(p);
  const w = await p.waitFor((x) => x.msg === 'event loop: real-time scheduling not applied; running with normal scheduling');
  assert.match(String(w.error), /EPERM/);
  const port = await p.udpPort();
  assert.deepEqual(answersOf(await udpQuery(port, 'rt.test')), ['A 10.7.7.7']);
  assert.deepEqual(threads(p.child.pid!).get(p.child.pid!), [0, 0]);
  await stop(p);
});
