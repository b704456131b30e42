/**
 * The typed message channel between node/ (parent) and the VRRP engine process (main.ts, child).
 * Kept tiny on purpose: state changes and logs out; config, health reports and stop in.
 */
import type { EngineEvent, InstanceStatus } from './engine.js';
import type { VrrpSectionInput } from './config.js';

/** Parent → engine. */
export type ToEngine =
  | { type: 'config'; section: VrrpSectionInput }
  /** A health report: weight 0 = failing forces FAULT; ±w moves priority (keepalived semantics). */
  | { type: 'track'; name: string; up: boolean; weight: number; instance?: string }
  | { type: 'status'; id: number }
  | { type: 'stop' };

/** Engine → parent. */
export type FromEngine =
  | EngineEvent
  | { type: 'ready'; pid: number; instances: InstanceStatus[] }
  | { type: 'status'; id: number; instances: InstanceStatus[] }
  | { type: 'fatal'; msg: string }
  | { type: 'stopped' };
