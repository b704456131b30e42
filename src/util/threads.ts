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
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { isMainThread } from 'node:worker_threads';
import { idleThreadNative, rtThreadNative } from './udp-batch.js';

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

/**
 * node.realtime_priority: real-time scheduling (SCHED_RR) for the event loop's thread, which runs
 * every DNS query and health check of the daemon (VRRP has a process of its own, which puts
 * itself at SCHED_RR 10 when permitted, through this same function: vrrp/main.ts). Opt-in.
 *
 * Why it exists: under the normal scheduler the event loop waits for its core whenever another
 * thread of the machine has it (kernel threads, agents; docs/balancer-p99.md), and queries queue
 * meanwhile.
 * A real-time thread is never made to wait for an ordinary one: in the balancer bench at 10k q/s
 * its run-queue wait fell from ~1.2 to ~0.1 µs a query and the p99 of hadns and of nginx alike
 * by a third to a half (14–16 of 16 rounds each), for a few percent more CPU per query.
 * Why it is not the default: with a resolver or backend process on the same core the real-time
 * thread preempts the very process it waits for (p99 ten times worse in the bench, nginx alike),
 * and a real-time thread that does not sleep (a saturated daemon, or a bug) keeps every ordinary
 * task off its core except for what the kernel's real-time throttling leaves them
 * (kernel.sched_rt_runtime_us, 5% by default). So it is for nodes whose cores are there for DNS;
 * a hadns node, its resolver inside the daemon, is one (docs/operations.md has the figures).
 * keepalived offers the same for its VRRP process (vrrp_rt_priority).
 *
 * Only the main thread is changed (Linux scheduling is per thread): V8's and libuv's helpers stay
 * as they are (node.helper_threads), and with SCHED_RESET_ON_FORK the threads and processes it
 * starts later (libuv's pool, notify and track scripts) begin with normal scheduling rather than
 * inheriting real-time. Through the udp_batch addon, else `chrt` (util-linux).
 */
export interface RealtimeStatus {
  /** The priority asked for (0: off) and the one in force (0: normal scheduling). */
  requested: number;
  applied: number;
  /** Why it could not be applied (errno text), if it could not. */
  error: string | null;
  /** kernel.sched_rt_runtime_us (-1: real-time throttling off, a runaway would own the core); null: unknown. */
  rtRuntimeUs: number | null;
}

const realtime: RealtimeStatus = { requested: 0, applied: 0, error: null, rtRuntimeUs: null };

function errnoText(n: number): string {
  return Object.entries(os.constants.errno).find(([, v]) => v === n)?.[0] ?? `errno ${n}`;
}

/** Applies node.realtime_priority to the calling (main) thread; 0 puts it back to normal. */
export function setRealtime(priority: number, rtThread: (tid: number, prio: number) => number | null = rtThreadNative): RealtimeStatus {
  realtime.requested = priority;
  realtime.error = null;
  if (!Number.isInteger(priority) || priority < 0 || priority > 99) { // the config checks; HADNS_VRRP_RT does not
    realtime.error = `priority must be a whole number 0-99, not ${priority}`;
    return realtimeStatus();
  }
  try { realtime.rtRuntimeUs = Number(readFileSync('/proc/sys/kernel/sched_rt_runtime_us', 'utf8').trim()); } catch { realtime.rtRuntimeUs = null; }
  if (priority === 0 && realtime.applied === 0) return realtimeStatus();
  if (process.platform !== 'linux' || !isMainThread) {
    realtime.error = 'only on Linux, from the main thread';
    return realtimeStatus();
  }
  let r = rtThread(process.pid, priority);
  if (r === null) { // no addon: util-linux's chrt on this thread (its TID is the PID)
    const c = spawnSync('chrt', [...(priority > 0 ? ['-R', '-r'] : ['-o']), '-p', String(priority), String(process.pid)], { encoding: 'utf8' });
    r = c.status === 0 ? 0 : -1;
    if (r !== 0) realtime.error = `chrt: ${(c.error?.message ?? c.stderr ?? '').trim() || `exit ${c.status}`}`;
  } else if (r !== 0) {
    realtime.error = `sched_setscheduler(SCHED_RR|SCHED_RESET_ON_FORK, ${priority}): ${errnoText(r)}`;
  }
  if (r === 0) realtime.applied = priority;
  return realtimeStatus();
}

export function realtimeStatus(): RealtimeStatus { return { ...realtime }; }
