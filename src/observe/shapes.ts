/**
 * NodeStatus.balancer and .vrrp are `unknown` in the view (their services are still being built).
 * These readers accept the shapes those services publish today — the balancer's
 * `{ services: ServiceStats[] }` and a VRRP `{ instances: [...] }` — and ignore anything else, so
 * metrics, the console and `hadns status` never break on a shape they do not know yet.
 */

export interface BackendLike {
  address: string;
  state: string;
  weight?: number;
  outstanding?: number;
  active?: number;
  latencyMs?: number;
  queries?: number;
  connections?: number;
  sessions?: number;
  timeouts?: number;
  errors?: number;
  failures?: number;
}

export interface BalancerServiceLike {
  name: string;
  mode: string;
  queries?: number;
  accepted?: number;
  created?: number;
  dropped?: number;
  rejected?: number;
  /** DNS mode: answers sent (relayed, from the cache and through JS all included), and how. */
  answers?: number;
  relayed?: number;
  /** DNS mode: queries the addon sent to their backend before JS saw them (query forwarding). */
  forwarded?: number;
  cacheHits?: number;
  retries?: number;
  servfail?: number;
  stray?: number;
  backends: BackendLike[];
}

export interface VrrpInstanceLike {
  name: string;
  vrid: number;
  state: string;
  interface?: string;
  priority?: number;
  transitions?: number;
  vips: string[];
  master?: string;
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const num = (x: unknown): number | undefined => (typeof x === 'number' && Number.isFinite(x) ? x : undefined);
const str = (x: unknown): string | undefined => (typeof x === 'string' ? x : undefined);

function listOf(x: unknown, key: string): unknown[] {
  if (Array.isArray(x)) return x;
  if (isObj(x) && Array.isArray(x[key])) return x[key] as unknown[];
  return [];
}

export function balancerServices(b: unknown): BalancerServiceLike[] {
  const out: BalancerServiceLike[] = [];
  for (const s of listOf(b, 'services')) {
    if (!isObj(s) || typeof s.name !== 'string') continue;
    const backends: BackendLike[] = [];
    for (const x of Array.isArray(s.backends) ? s.backends : []) {
      if (!isObj(x) || typeof x.address !== 'string') continue;
      backends.push({
        address: x.address, state: str(x.state) ?? 'unknown', weight: num(x.weight), outstanding: num(x.outstanding), active: num(x.active),
        latencyMs: num(x.latencyMs), queries: num(x.queries), connections: num(x.connections), sessions: num(x.sessions),
        timeouts: num(x.timeouts), errors: num(x.errors), failures: num(x.failures),
      });
    }
    out.push({
      name: s.name, mode: str(s.mode) ?? 'unknown', queries: num(s.queries), accepted: num(s.accepted), created: num(s.created),
      dropped: num(s.dropped), rejected: num(s.rejected), answers: num(s.answers), relayed: num(s.relayed), forwarded: num(s.forwarded),
      cacheHits: num(s.cacheHits), retries: num(s.retries), servfail: num(s.servfail), stray: num(s.stray), backends,
    });
  }
  return out;
}

export function vrrpInstances(v: unknown): VrrpInstanceLike[] {
  const out: VrrpInstanceLike[] = [];
  for (const i of listOf(v, 'instances')) {
    if (!isObj(i)) continue;
    const vrid = num(i.vrid) ?? num(i.virtual_router_id);
    const state = str(i.state);
    if (vrid === undefined || !state) continue;
    const vips = (Array.isArray(i.vips) ? i.vips : Array.isArray(i.virtual_ipaddress) ? i.virtual_ipaddress : []).filter((x): x is string => typeof x === 'string');
    out.push({
      name: str(i.name) ?? `vrid-${vrid}`, vrid, state: state.toUpperCase(), interface: str(i.interface), priority: num(i.priority),
      transitions: num(i.transitions), vips, master: str(i.master) ?? str(i.masterAddress),
    });
  }
  return out;
}
