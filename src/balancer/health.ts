/**
 * Backend health — a pure core: every method takes `now` (ms) from the caller's clock.
 *
 * Three independent signals, combined by BackendHealth:
 *  - passive (nginx `max_fails` / `fail_timeout`): `maxFails` failures of real traffic within
 *    `failTimeout` make the backend unavailable for `failTimeout`; after that one trial is let
 *    through: a success clears it, a failure takes it out for another `failTimeout`.
 *  - active (dnsdist-style DNS probes, keepalived-style rise/fall): `fall` consecutive failed
 *    probes mark it down, `rise` consecutive good ones bring it back.
 *  - latency: an EWMA of response times and their deviation (as TCP's RTO, RFC 6298) gives a
 *    per-backend timeout after which a DNS query is retried elsewhere — tight for a fast
 *    backend, looser for a slow one, always within [min, max].
 *
 * "All down" is not handled here: the policy fails open (see policy.ts).
 */
import { LatencyHistogram } from '../util/histogram.js';


export interface PassiveOptions {
  /** 0 disables passive marking (nginx semantics). */
  maxFails: number;
  failTimeoutMs: number;
}

export class PassiveHealth {
  private fails = 0;
  private windowStart = 0;
  /** Until when the backend is out; 0 = not tripped. */
  private downUntil = 0;
  /** Tripped and waiting for a successful trial after downUntil. */
  private tripped = false;
  constructor(private readonly opts: PassiveOptions) {}

  available(now: number): boolean {
    return !this.tripped || now >= this.downUntil;
  }
  /** True while out of rotation (tripped and not yet in its trial window). */
  isDown(now: number): boolean { return !this.available(now); }
  get isTripped(): boolean { return this.tripped; }

  /** Returns true when this failure took the backend out of rotation. */
  failure(now: number): boolean {
    if (this.opts.maxFails <= 0) return false;
    if (this.tripped) {
      // a failed trial after fail_timeout (or a late failure while out): out again
      const wasAvailable = now >= this.downUntil;
      this.downUntil = now + this.opts.failTimeoutMs;
      return wasAvailable;
    }
    if (this.fails === 0 || now - this.windowStart > this.opts.failTimeoutMs) {
      this.fails = 0;
      this.windowStart = now;
    }
    this.fails++;
    if (this.fails >= this.opts.maxFails) {
      this.tripped = true;
      this.downUntil = now + this.opts.failTimeoutMs;
      this.fails = 0;
      return true;
    }
    return false;
  }

  /** Returns true when this success brought the backend back. */
  success(_now: number): boolean {
    this.fails = 0;
    if (this.tripped) { this.tripped = false; this.downUntil = 0; return true; }
    return false;
  }
}

export interface ActiveOptions {
  /** Consecutive good probes to come back up. */
  rise: number;
  /** Consecutive failed probes to go down. */
  fall: number;
}

/** Probe outcome counter with hysteresis. Starts up: traffic flows before the first probe. */
export class ActiveHealth {
  up = true;
  private okRun = 0;
  private failRun = 0;
  constructor(private readonly opts: ActiveOptions) {}
  /** Feeds one probe result; returns true when the up/down state changed. */
  result(ok: boolean): boolean {
    if (ok) {
      this.failRun = 0;
      this.okRun++;
      if (!this.up && this.okRun >= this.opts.rise) { this.up = true; return true; }
    } else {
      this.okRun = 0;
      this.failRun++;
      if (this.up && this.failRun >= this.opts.fall) { this.up = false; return true; }
    }
    return false;
  }
  /** Forces a state (e.g. a socket error proves the backend gone). */
  force(up: boolean): boolean {
    this.okRun = 0; this.failRun = 0;
    if (this.up === up) return false;
    this.up = up;
    return true;
  }
}

export interface TimeoutOptions {
  /** Timeout used before the first sample. */
  initialMs: number;
  minMs: number;
  maxMs: number;
}

/**
 * Latency EWMA and adaptive timeout (RFC 6298 constants: alpha 1/8, beta 1/4, K = 4).
 * The retry timeout is srtt + 4·rttvar clamped into [min, max]; `timedOut()` doubles the
 * current timeout (bounded by max) as TCP backs off, so a backend that has become slow is not
 * hammered with retries before its EWMA has caught up.
 */
export class LatencyEstimator {
  srtt = 0;
  rttvar = 0;
  samples = 0;
  private backoff = 1;
  constructor(private readonly opts: TimeoutOptions) {}

  sample(ms: number): void {
    if (ms < 0) ms = 0;
    if (this.samples === 0) {
      this.srtt = ms;
      this.rttvar = ms / 2;
    } else {
      const err = ms - this.srtt;
      this.rttvar += ((err < 0 ? -err : err) - this.rttvar) / 4;
      this.srtt += err / 8;
    }
    this.samples++;
    this.backoff = 1;
  }

  timedOut(): void {
    if (this.backoff < 8) this.backoff *= 2;
  }

  /** Current retry timeout in ms. */
  timeout(): number {
    const base = this.samples === 0 ? this.opts.initialMs : this.srtt + 4 * this.rttvar;
    const t = base * this.backoff;
    return t < this.opts.minMs ? this.opts.minMs : t > this.opts.maxMs ? this.opts.maxMs : t;
  }
}

export interface HealthOptions {
  passive: PassiveOptions;
  active: ActiveOptions;
  timeout: TimeoutOptions;
}

export type HealthState = 'up' | 'down';

/** Everything the balancer knows about one backend's health. */
export class BackendHealth {
  readonly passive: PassiveHealth;
  readonly active: ActiveHealth;
  readonly latency: LatencyEstimator;
  /** Answer latencies (real queries and probes) for the metrics' histogram. */
  readonly histogram = new LatencyHistogram();
  /** Last time the combined state changed (for status output and tests). */
  changedAt = 0;
  private lastUp = true;
  constructor(opts: HealthOptions) {
    this.passive = new PassiveHealth(opts.passive);
    this.active = new ActiveHealth(opts.active);
    this.latency = new LatencyEstimator(opts.timeout);
  }

  available(now: number): boolean {
    return this.active.up && this.passive.available(now);
  }
  state(now: number): HealthState { return this.available(now) ? 'up' : 'down'; }

  /** A real request succeeded after `ms`. Each event returns true when the up/down state flipped. */
  success(now: number, ms: number): boolean {
    this.latency.sample(ms);
    this.histogram.observe(ms);
    this.passive.success(now);
    return this.track(now);
  }
  /** A real request failed (timeout, refused connection, socket error). */
  failure(now: number, timedOut: boolean): boolean {
    if (timedOut) this.latency.timedOut();
    this.passive.failure(now);
    return this.track(now);
  }
  /** An active probe finished. */
  probe(now: number, ok: boolean, ms: number): boolean {
    if (ok) this.latency.sample(ms);
    this.active.result(ok);
    // A good probe also ends a passive trip: the backend has proven itself, no need to wait
    // for fail_timeout and a real query as trial.
    if (ok && this.active.up && this.passive.isTripped) this.passive.success(now);
    return this.track(now);
  }
  /** Returns true when the combined state flipped since the last call. */
  track(now: number): boolean {
    const up = this.available(now);
    if (up === this.lastUp) return false;
    this.lastUp = up;
    this.changedAt = now;
    return true;
  }
}
