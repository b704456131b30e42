/**
 * node.helper_threads: the helper threads of this very process (V8's workers, started with it)
 * move to SCHED_IDLE; the main thread, which runs the event loop, keeps its policy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { setHelperThreads, helperThreadsStatus, setRealtime, realtimeStatus } from '../../src/util/threads.js';
import { isRoot } from '../../src/lab/lab.js';

const SCHED_OTHER = 0;
const SCHED_IDLE = 5;
/** Scheduling policy of a thread: field 41 of /proc/self/task/TID/stat. */
function policy(tid: number): number {
  const st = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
  return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[38]);
}

test('helper threads go SCHED_IDLE; the event loop thread does not', () => {
  const helpers = readdirSync('/proc/self/task').map(Number).filter((t) => t !== process.pid);
  assert.ok(helpers.length >= 2, `expected V8 helper threads, found ${helpers.length}`);
  const before = policy(process.pid);
  const st = setHelperThreads('idle');
  assert.equal(st.error, null);
  assert.equal(st.idle + st.niced, helpers.length);
  assert.equal(st.idle, helpers.length, 'the addon sets SCHED_IDLE (nice 19 only without it)');
  for (const t of helpers) assert.equal(policy(t), SCHED_IDLE, `thread ${t}`);
  assert.equal(policy(process.pid), before);
  assert.equal(before, SCHED_OTHER);
  // Idempotent: a second sweep moves nothing again.
  assert.equal(setHelperThreads('idle').idle, helpers.length);
  setHelperThreads('normal');
  assert.equal(helperThreadsStatus().mode, 'normal');
});

test('setRealtime: the errno becomes the error and nothing counts as applied; success is recorded', () => {
  const calls: [number, number][] = [];
  const denied = setRealtime(9, (tid, prio) => { calls.push([tid, prio]); return 1; });
  assert.deepEqual(calls, [[process.pid, 9]]); // the main thread only
  assert.equal(denied.requested, 9);
  assert.equal(denied.applied, 0);
  assert.match(String(denied.error), /EPERM/);
  const ok = setRealtime(9, () => 0);
  assert.equal(ok.applied, 9);
  assert.equal(ok.error, null);
  assert.equal(realtimeStatus().applied, 9);
  const back = setRealtime(0, (tid, prio) => { calls.push([tid, prio]); return 0; }); // back to normal
  assert.equal(back.applied, 0);
  assert.deepEqual(calls.at(-1), [process.pid, 0]);
  // A priority from the environment (HADNS_VRRP_RT) is not checked by the schema: refused here.
  for (const bad of [Number.NaN, 100, -1, 2.5]) {
    const r = setRealtime(bad, (tid, prio) => { calls.push([tid, prio]); return 0; });
    assert.match(String(r.error), /whole number 0-99/);
  }
  assert.deepEqual(calls.at(-1), [process.pid, 0], 'nothing called for a bad priority');
});

test('realtime: what the thread starts later begins at normal scheduling (reset on fork)', { skip: !isRoot() && 'needs root (CI is root)' }, async () => {
  const { spawnSync } = await import('node:child_process');
  const { rtThreadNative } = await import('../../src/util/udp-batch.js');
  assert.equal(rtThreadNative(process.pid, 3), 0);
  try {
    // A process started now (as the VRRP process and scripts are) and this thread's own policy.
    const child = spawnSync('sh', ['-c', 'chrt -p $$'], { encoding: 'utf8' });
    assert.match(child.stdout, /policy: SCHED_OTHER/);
    const self = spawnSync('chrt', ['-p', String(process.pid)], { encoding: 'utf8' });
    assert.match(self.stdout, /policy: SCHED_RR\|SCHED_RESET_ON_FORK/);
  } finally {
    assert.equal(rtThreadNative(process.pid, 0), 0);
  }
  assert.match(spawnSync('chrt', ['-p', String(process.pid)], { encoding: 'utf8' }).stdout, /policy: SCHED_OTHER/);
});
