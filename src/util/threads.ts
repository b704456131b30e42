/**
 * node.helper_threads: optionally keeps the process's helper threads out of the event loop's way.
 *
 * Node runs V8's garbage-collector and compiler workers and libuv's file/DNS pool as threads of
 * the daemon, competing with the main thread as equals. While the balancer still allocated per
 * query, `perf sched` showed a helper woken for concurrent marking or a parallel scavenge taking
 * the core from the event loop for 2–4 ms while queries queued. Under SCHED_IDLE (`idle`) a
 * helper runs only when the core has nothing else to do and a waking main thread always
 * preempts it.
 *
 * Why it is not the default: once the per-query path stopped allocating, helpers rarely wake at
 * all and `idle` no longer changed the balancer's p99 (six interleaved runs each: median p99
 * 1.46 ms idle, 1.45 ms normal). And a saturated daemon then waits on starved helpers: the
 * balancer with its cache, on a 0.3-core CPU quota, served 36–42k q/s with `idle` (nice 19:
 * 40–45k) against 57–60k with `normal`.
 *
 * Linux only; the policy comes from the udp_batch addon, or nice 19 (os.setPriority on the
 * thread id) without it. New helpers (libuv starts its pool on first use) are picked up by a
 * slow rescan.
 */
import { readdirSync } from 'node:fs';
import os from 'node:os';
import { isMainThread } from 'node:worker_threads';
import { idleThreadNative } from './udp-batch.js';

export type HelperThreadsMode = 'idle' | 'normal';

export interface HelperThreadsStatus {
  mode: HelperThreadsMode;
  /** Helper threads moved so far, and how. */
  idle: number;
  niced: number;
  /** Last failure (errno text), if any. */
  error: string | null;
}

const status: HelperThreadsStatus = { mode: 'normal', idle: 0, niced: 0, error: null };
const done = new Set<number>();
let timer: NodeJS.Timeout | null = null;
const RESCAN_MS = 30_000;

function sweep(): void {
  let tids: string[];
  try { tids = readdirSync('/proc/self/task'); } catch (e) { status.error = (e as Error).message; return; }
  const live = new Set<number>();
  for (const t of tids) {
    const tid = Number(t);
    live.add(tid);
    if (tid === process.pid || done.has(tid)) continue;
    done.add(tid);
    const r = idleThreadNative(tid);
    if (r === 0) { status.idle++; continue; }
    if (r !== null) status.error = `sched_setscheduler(${tid}, SCHED_IDLE): errno ${r}`;
    try { os.setPriority(tid, 19); status.niced++; } catch (e) { status.error = (e as Error).message; }
  }
  for (const tid of done) if (!live.has(tid)) done.delete(tid);
}

/**
 * Applies `mode` to the helper threads of this process (from its main thread). `idle` sweeps
 * now and every 30 s; `normal` leaves threads as they are and stops the sweeping.
 */
export function setHelperThreads(mode: HelperThreadsMode): HelperThreadsStatus {
  status.mode = mode;
  if (mode === 'normal' || process.platform !== 'linux' || !isMainThread) {
    if (timer) { clearInterval(timer); timer = null; }
    return helperThreadsStatus();
  }
  sweep();
  if (!timer) { timer = setInterval(sweep, RESCAN_MS); timer.unref(); }
  return helperThreadsStatus();
}

export function helperThreadsStatus(): HelperThreadsStatus { return { ...status }; }
