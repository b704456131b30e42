/** Injected clock for pure cores: milliseconds, monotonic where the shell provides it. */
export interface Clock { now(): number }

export const monotonicClock: Clock = {
  now: () => performance.now(),
};

/** A clock tests move by hand. */
export class FakeClock implements Clock {
  constructor(public t = 0) {}
  now(): number { return this.t; }
  advance(ms: number): void { this.t += ms; }
}
