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

const R_ID = 0, R_QIDX = 1, R_QGEN = 2, R_LIS = 3, R_FAM = 4, R_PORT = 5, R_A = 6, R_CID = 10, R_QE = 11, R_QLEN = 12;

/** Whether the relay may run: it answers with the real clock, so a proxy on an injected one keeps to JS. */
export function relayWanted(clock: Clock): boolean {
  return clock === monotonicClock && process.env.HADNS_REPLY_RELAY !== '0';
}

export class RelayTables {
  readonly claim = new Int32Array(RELAY_QUERIES).fill(IDLE);
  /** [produced, consumed, clock offset, capacity, 0 × 4, records of 6]. */
  readonly ring: Float64Array;

  constructor(records = 4096) {
    this.ring = new Float64Array(RING_HDR + records * RING_REC);
    // The addon reads the time as uv_hrtime (process.hrtime); the proxy's clock is performance.now().
    this.ring[2] = Number(process.hrtime.bigint()) / 1e6 - performance.now();
    this.ring[3] = records;
  }

  /** A route table for one more upstream socket. */
  static newRoute(): Int32Array { return new Int32Array(ROUTE_SLOTS * ROUTE_INTS); }

  /** Registers where the answer to upstream ID `id` goes (call before the query is sent). */
  static write(route: Int32Array, id: number, qidx: number, qgen: number, listener: number,
    fam: number, port: number, a0: number, a1: number, a2: number, a3: number, clientId: number, questionEnd: number): void {
    const e = (id & (ROUTE_SLOTS - 1)) * ROUTE_INTS;
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
  }

  /** Drops the route of upstream ID `id` (its attempt was released: an answer to it is a stray). */
  static forget(route: Int32Array, id: number): void {
    const e = (id & (ROUTE_SLOTS - 1)) * ROUTE_INTS;
    if (route[e + R_ID] === id + 1) route[e + R_ID] = 0;
  }

  /** Completions not yet taken by JS. */
  pending(): boolean { return this.ring[0] !== this.ring[1]; }

  /**
   * Takes the completions the addon produced: `fn(tag, id, qidx, qgen, t)` for each, in order
   * (t = receive time on the proxy's clock).
   */
  drain(fn: (tag: number, id: number, qidx: number, qgen: number, t: number) => void): void {
    const r = this.ring;
    const head = r[0]!, cap = r[3]!;
    let tail = r[1]!;
    while (tail < head) {
      const o = RING_HDR + (tail % cap) * RING_REC;
      tail++;
      r[1] = tail; // taken before fn runs: an exception there must not replay the record
      fn(r[o]!, r[o + 1]!, r[o + 2]!, r[o + 3]!, r[o + 4]!);
    }
  }
}
