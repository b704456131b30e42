/**
 * node.helper_threads: the helper threads of this very process (V8's workers, started with it)
 * move to SCHED_IDLE; the main thread, which runs the event loop, keeps its policy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { setHelperThreads, helperThreadsStatus } from '../../src/util/threads.js';

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
