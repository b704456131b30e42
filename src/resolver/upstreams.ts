/**
 * Upstream selection (pure; time injected). A group is an ordered list of servers and a strategy:
 *  - strict-order: always in listed order; the next one only after a failure or timeout.
 *  - all-servers: every server at once, the first good answer wins.
 *  - fastest (default, what dnsmasq really does): send to the server that answered last / fastest,
 *    and now and then (every `probeEvery` queries or `probeIntervalMs`) send to all of them so the
 *    others' latencies stay known and a recovered server is found again.
 * Failures push a server back: after `failLimit` consecutive failures it is "suspect" and goes to
 * the end of every plan until it answers again.
 */

export interface Server {
  host: string;
  port: number;
  /** "host#port" as written; used in logs and metrics. */
  label: string;
}

export type Strategy = 'fastest' | 'strict-order' | 'all-servers';

import { LatencyHistogram } from '../util/histogram.js';

interface ServerState {
  srtt: number; // smoothed RTT, ms
  rtt: LatencyHistogram;
  failures: number; // consecutive
  lastGood: number;
  answered: number;
  sent: number;
}

export interface Plan {
  /** Send to these at once. */
  first: number[];
  /** Then one by one, on timeout or failure. */
  rest: number[];
}

const INITIAL_SRTT = 50;

export class UpstreamGroup {
  readonly state: ServerState[];
  private lastGood = -1;
  private sinceProbe = 0;
  private lastProbe = -Infinity;

  constructor(
    readonly servers: Server[],
    readonly strategy: Strategy,
    readonly opts: { probeEvery?: number; probeIntervalMs?: number; failLimit?: number } = {},
  ) {
    this.state = servers.map(() => ({ srtt: INITIAL_SRTT, rtt: new LatencyHistogram(), failures: 0, lastGood: 0, answered: 0, sent: 0 }));
  }

  private suspect(i: number): boolean { return this.state[i].failures >= (this.opts.failLimit ?? 3); }

  /** The plan as two fresh arrays (tests and tools; the forwarder uses order()). */
  plan(now: number): Plan {
    const out: number[] = [];
    const first = this.order(now, out);
    return { first: out.slice(0, first), rest: out.slice(first) };
  }

  /**
   * Writes the servers in the order to ask them into out[0, servers.length) and returns how many
   * to ask at once; the rest follow one by one, on timeout or failure. Allocates nothing (the
   * forwarder passes a pooled array): this runs once per forwarded query.
   */
  order(now: number, out: number[]): number {
    const n = this.servers.length;
    if (n === 0) return 0;
    for (let i = 0; i < n; i++) out[i] = i;
    if (this.strategy === 'all-servers') return n;
    if (this.strategy === 'strict-order') {
      // Listed order, but a server failing repeatedly is tried last until it answers again.
      let k = 0;
      for (let i = 0; i < n; i++) if (!this.suspect(i)) out[k++] = i;
      for (let i = 0; i < n; i++) if (this.suspect(i)) out[k++] = i;
      return 1;
    }
    // fastest
    this.sinceProbe++;
    if (n > 1 && (this.sinceProbe >= (this.opts.probeEvery ?? 50) || now - this.lastProbe >= (this.opts.probeIntervalMs ?? 20000))) {
      this.sinceProbe = 0;
      this.lastProbe = now;
      return n;
    }
    // Insertion sort (stable, n is a handful): suspects last, then the preferred server, then
    // fewer consecutive failures, then the lower smoothed RTT.
    for (let i = 1; i < n; i++) {
      const x = out[i]!;
      let j = i - 1;
      while (j >= 0 && this.before(x, out[j]!)) { out[j + 1] = out[j]!; j--; }
      out[j + 1] = x;
    }
    return 1;
  }

  /** Whether server a goes before server b in fastest order. */
  private before(a: number, b: number): boolean {
    const sa = this.suspect(a), sb = this.suspect(b);
    if (sa !== sb) return sb;
    if (a === this.lastGood) return b !== this.lastGood;
    if (b === this.lastGood) return false;
    const fa = this.state[a].failures, fb = this.state[b].failures;
    if (fa !== fb) return fa < fb;
    return this.state[a].srtt < this.state[b].srtt;
  }

  sent(i: number): void { this.state[i].sent++; }

  /** A good answer (any rcode but SERVFAIL/REFUSED) from server i after rttMs. */
  success(i: number, rttMs: number, now: number): void {
    const s = this.state[i];
    s.srtt = s.answered === 0 ? rttMs : s.srtt * 0.7 + rttMs * 0.3;
    s.rtt.observe(rttMs);
    s.failures = 0;
    s.lastGood = now;
    s.answered++;
    // In fastest mode the winner of a probe, or the server that answered, becomes the preferred one
    // unless a clearly faster one is known.
    if (this.lastGood < 0 || this.lastGood === i || this.suspect(this.lastGood)
      || s.srtt < this.state[this.lastGood].srtt * 0.8) this.lastGood = i;
  }

  /** A timeout, SERVFAIL/REFUSED or network error from server i. */
  failure(i: number): void {
    const s = this.state[i];
    s.failures++;
    s.srtt = Math.min(s.srtt * 2 + 10, 10000);
    if (this.lastGood === i) this.lastGood = -1;
  }

  preferred(): number { return this.lastGood; }
}

/** Parses resolv.conf text: the `nameserver` lines (dnsmasq reads only those). */
export function parseResolvConf(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const m = /^nameserver\s+(\S+)/.exec(line);
    if (m) out.push(m[1].replace(/%.*$/, ''));
  }
  return out;
}
