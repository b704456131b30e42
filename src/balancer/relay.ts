/**
 * The reply relay's shared tables (the C half is in native/udp_batch.c, whose header has the
 * layout). A backend's plain answer (the question we sent, RCODE not SERVFAIL/REFUSED, query not
 * answered yet) is sent on to the client by the addon in the wake-up that received it, without
 * entering JS: entering JS per answer was the biggest share of the balancer's user-space CPU per
 * query (1–3.7 µs of ~42 at 10k q/s; README, "Balancer vs nginx stream").
 *
 * JS stays the owner of every query. The DNS proxy (dns-proxy.ts) writes a route entry before it
 * sends an attempt, keeps each live query's generation in `claim`, and finishes relayed queries
 * (attempt release, latency sample, counters, pool) when it next runs, from the completion ring.
 * Route entries are hints: anything that does not match goes to JS as before.
 */
import type { Clock } from '../util/clock.js';
import { monotonicClock } from '../util/clock.js';

/** Ints per route entry; the question goes inline from int 14 on (72 bytes). */
export const ROUTE_INTS = 32;
/** Route entries per upstream socket (entry = ID & (slots - 1)); 128 KiB per socket. */
export const ROUTE_SLOTS = 1024;
/** Queries (by pool index) the relay can answer; later pool entries take the JS path. */
export const RELAY_QUERIES = 16384;
const RING_HDR = 8;
const RING_REC = 6;
/** `claim` value of a query the relay answered (JS finishes it from the ring). */
export const CLAIMED = -1;
/** `claim` value of a pooled query that is not in flight. */
export const IDLE = -2;
/** `claim` value of a query JS took to answer itself (dns-proxy.ts, own()): the relay leaves it. */
export const OWNED = -3;

const R_ID = 0, R_QIDX = 1, R_QGEN = 2, R_LIS = 3, R_FAM = 4, R_PORT = 5, R_A = 6, R_CID = 10, R_QE = 11, R_QLEN = 12, R_SEQ = 13;
/** The ring's cursors, as int32 in the first half of doubles 0 and 1 (native/udp_batch.c). */
const C_PROD = 0, C_CONS = 2;

/** Whether the relay may run: it answers with the real clock, so a proxy on an injected one keeps to JS. */
export function relayWanted(clock: Clock): boolean {
  return clock === monotonicClock && process.env.HADNS_REPLY_RELAY !== '0';
}

export class RelayTables {
  readonly claim = new Int32Array(RELAY_QUERIES).fill(IDLE);
  /** [produced, consumed, clock offset, capacity, 0 × 4, records of 6]; the two cursors are
   *  int32, read and written through `cur` with Atomics (the addon may run in another thread). */
  readonly ring: Float64Array;
  private readonly cur: Int32Array;

  /** `records`: a power of two. */
  constructor(records = 4096) {
    if (records < 1 || (records & (records - 1)) !== 0) throw new RangeError('relay ring: a power of two records');
    this.ring = new Float64Array(RING_HDR + records * RING_REC);
    this.cur = new Int32Array(this.ring.buffer, 0, 4);
    // The addon reads the time as uv_hrtime (process.hrtime); the proxy's clock is performance.now().
    this.ring[2] = Number(process.hrtime.bigint()) / 1e6 - performance.now();
    this.ring[3] = records;
  }

  /** A route table for one more upstream socket. */
  static newRoute(): Int32Array { return new Int32Array(ROUTE_SLOTS * ROUTE_INTS); }

  /**
   * Registers where the answer to upstream ID `id` goes (call before the query is sent). False
   * when the addon is writing the same entry (a forwarding thread, another ID of the same slot):
   * the query then goes without a route and its answer through JS.
   */
  static write(route: Int32Array, id: number, qidx: number, qgen: number, listener: number,
    fam: number, port: number, a0: number, a1: number, a2: number, a3: number, clientId: number, questionEnd: number): boolean {
    const e = (id & (ROUTE_SLOTS - 1)) * ROUTE_INTS;
    const seq = RelayTables.lock(route, e);
    if (seq < 0) return false;
    route[e + R_ID] = id + 1;
    route[e + R_QIDX] = qidx;
    route[e + R_QGEN] = qgen;
    route[e + R_LIS] = listener;
    route[e + R_FAM] = fam;
    route[e + R_PORT] = port;
    route[e + R_A] = a0;
    route[e + R_A + 1] = a1;
    route[e + R_A + 2] = a2;
    route[e + R_A + 3] = a3;
    route[e + R_CID] = clientId;
    route[e + R_QE] = questionEnd;
    route[e + R_QLEN] = -1; // set by the addon when the query actually leaves
    Atomics.store(route, e + R_SEQ, seq + 1);
    return true;
  }

  /**
   * Drops the route of upstream ID `id` (its attempt was released: an answer to it is a stray).
   * A hint only: where the entry is being written meanwhile it stays, and the claim still keeps
   * the relay from answering a query that is done.
   */
  static forget(route: Int32Array, id: number): void {
    const e = (id & (ROUTE_SLOTS - 1)) * ROUTE_INTS;
    if (route[e + R_ID] !== id + 1) return;
    const seq = RelayTables.lock(route, e);
    if (seq < 0) return;
    if (route[e + R_ID] === id + 1) route[e + R_ID] = 0;
    Atomics.store(route, e + R_SEQ, seq + 1);
  }

  /** An entry's writer lock (the header of native/udp_batch.c): the odd sequence, or -1: busy. */
  private static lock(route: Int32Array, e: number): number {
    const v = Atomics.load(route, e + R_SEQ);
    if ((v & 1) !== 0 || Atomics.compareExchange(route, e + R_SEQ, v, (v + 1) | 0) !== v) return -1;
    return (v + 1) | 0;
  }

  /** Completions not yet taken by JS. */
  pending(): boolean { return Atomics.load(this.cur, C_PROD) !== this.cur[C_CONS]; }

  /**
   * Takes the completions the addon produced: `fn(tag, id, qidx, qgen, t)` for each, in order
   * (t = receive time on the proxy's clock).
   */
  drain(fn: (tag: number, id: number, qidx: number, qgen: number, t: number) => void): void {
    const r = this.ring, cur = this.cur;
    const head = Atomics.load(cur, C_PROD), mask = r[3]! - 1;
    let tail = cur[C_CONS]!;
    while (tail !== head) {
      const o = RING_HDR + (tail & mask) * RING_REC;
      const tag = r[o]!, id = r[o + 1]!, qidx = r[o + 2]!, qgen = r[o + 3]!, t = r[o + 4]!;
      tail = (tail + 1) | 0;
      Atomics.store(cur, C_CONS, tail); // taken before fn runs: an exception there must not replay the record
      fn(tag, id, qidx, qgen, t);
    }
  }
}
