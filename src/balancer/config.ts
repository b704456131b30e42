/**
 * The native YAML section `balancer:` — a zod schema fragment the main schema mounts at key
 * `balancer`. Every key carries a description and, where one makes sense, a default: the docs
 * and the JSON Schema are generated from it.
 *
 * Durations are numbers of milliseconds or nginx-style strings ("500ms", "1s", "10m", "1h").
 * Parsing of listen strings and backend addresses lives here too so that the nginx importer,
 * the shells and `hadns check` agree on one meaning.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { MAX_BACKENDS, POLICY_NAMES, type PolicyName } from './policy.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * "1s" → 1000, "1m30s" → 90000 (nginx allows compound times); a number is already ms.
 * A bare number string uses `defaultUnit` (nginx: seconds). Returns NaN when invalid.
 */
export function parseDuration(v: string | number, defaultUnit: 'ms' | 's' = 'ms'): number {
  if (typeof v === 'number') return v;
  const s = v.replace(/\s+/g, '');
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * UNIT_MS[defaultUnit];
  const parts = s.match(/\d+(?:\.\d+)?(?:ms|s|m|h|d|w)/g);
  if (!parts || parts.join('') !== s) return NaN;
  let total = 0;
  for (const p of parts) {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(p)!;
    total += Number(m[1]) * UNIT_MS[m[2]];
  }
  return total;
}

const duration = (desc: string) =>
  z.union([z.number().nonnegative(), z.string()])
    .transform((v, ctx) => {
      const ms = parseDuration(v);
      if (!Number.isFinite(ms) || ms < 0) {
        ctx.addIssue({ code: 'custom', message: `invalid duration ${JSON.stringify(v)} (use ms or "500ms", "1s", "10m")` });
        return z.NEVER;
      }
      return ms;
    })
    .describe(`${desc} Milliseconds, or a string such as "500ms", "1s", "10m".`);

export type ListenProto = 'udp' | 'tcp';
export interface ListenAddress { proto: ListenProto; address: string; port: number; reuseport: boolean }

/** Splits "host:port", "[v6]:port" or "port" (host defaults to 0.0.0.0). Throws on bad input. */
export function splitHostPort(s: string, defaultHost = '0.0.0.0'): { host: string; port: number } {
  let host = defaultHost;
  let portStr = s;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (v6) { host = v6[1]; portStr = v6[2] ?? ''; }
  else if (s.includes(':')) {
    const i = s.lastIndexOf(':');
    if (s.indexOf(':') !== i) throw new Error(`IPv6 address must be in brackets: ${s}`);
    host = s.slice(0, i); portStr = s.slice(i + 1);
  } else if (!/^\d+$/.test(s)) { host = s; portStr = ''; }
  if (!/^\d+$/.test(portStr)) throw new Error(`missing or invalid port in "${s}"`);
  const port = Number(portStr);
  if (port > 65535) throw new Error(`port out of range in "${s}"`);
  if (host === '*') host = '0.0.0.0';
  if (host === 'localhost') host = '127.0.0.1';
  if (!isIP(host)) throw new Error(`not an IP address: "${host}" (host names are not resolved)`);
  return { host, port };
}

const listenObject = z.object({
  proto: z.enum(['udp', 'tcp']).describe('Transport of this listener.'),
  address: z.string().default('0.0.0.0').describe('Local IPv4 or IPv6 address to bind.'),
  port: z.number().int().min(0).max(65535).describe('Port to bind; 0 picks a free one (tests).'),
  reuseport: z.boolean().default(false).describe('SO_REUSEPORT (used where the runtime supports it, ignored otherwise).'),
});
type ListenObject = z.output<typeof listenObject>;

const listenEntry = z.union([
  z.string().describe('"udp://ADDR:PORT", "tcp://ADDR:PORT", "dns://ADDR:PORT" (UDP and TCP) or "ADDR:PORT" / "PORT" (transport by mode: dns both, else the mode\'s).'),
  listenObject,
]);

const backendSchema = z.object({
  address: z.string().describe('"IP:PORT" ("[v6]:PORT"), or "local" for the resolver in this process (DNS mode).'),
  weight: z.number().int().min(1).max(1000).default(1).describe('Relative share of traffic (nginx weight=).'),
  backup: z.boolean().default(false).describe('Used only while every non-backup backend is unavailable (nginx backup).'),
  down: z.boolean().default(false).describe('Administratively disabled: never used (nginx down).'),
  max_fails: z.number().int().min(0).default(3)
    .describe('Passive health: failures of real traffic within fail_timeout that take the backend out for fail_timeout (nginx max_fails; 0 disables).'),
  fail_timeout: duration('Window for max_fails, and time out of rotation once it trips (nginx fail_timeout).').default(10_000),
});

const poolSchema = z.object({
  policy: z.enum(POLICY_NAMES as unknown as [PolicyName, ...PolicyName[]]).default('round-robin')
    .describe('round-robin (smooth weighted, as nginx), least-conn, hash (consistent, on the client address), random-two, least-outstanding, fastest (latency-weighted).'),
  backends: z.array(backendSchema).min(1).max(MAX_BACKENDS).describe('The servers traffic is spread over.'),
});

const timeoutsSchema = z.object({
  connect: duration('TCP: time to establish a backend connection before trying the next (nginx proxy_connect_timeout).').default(1000),
  proxy: duration('Idle timeout of a proxied TCP connection or UDP session (nginx proxy_timeout). DNS mode keeps no sessions.').default(600_000),
  query_initial: duration('DNS mode: per-attempt timeout before a backend has latency samples.').default(250),
  query_min: duration('DNS mode: floor of the adaptive per-attempt timeout (latency EWMA + 4 deviations).').default(60),
  query_max: duration('DNS mode: ceiling of the adaptive per-attempt timeout; keep well under a client\'s 1 s retry.').default(450),
}).prefault({}).describe('Timeouts.');

const udpSchema = z.object({
  responses: z.number().int().min(0).default(0)
    .describe('Generic UDP: responses expected per session before it is closed (nginx proxy_responses; 0 = until idle).'),
  max_sessions: z.number().int().min(1).default(4096)
    .describe('Generic UDP: bound of the session table (each session holds one socket); when full, the least recently used session is closed.'),
  sockets_per_backend: z.number().int().min(1).max(64).default(1)
    .describe('DNS mode: UDP sockets (source ports) per backend that queries are multiplexed over (up to 30000 outstanding each). More add source-port entropy against off-path spoofing, at a CPU cost.'),
}).prefault({}).describe('UDP settings.');

const tcpSchema = z.object({
  max_connections: z.number().int().min(1).default(1024).describe('Concurrent client connections per listener; more are closed at once.'),
  proxy_protocol: z.enum(['off', 'v1', 'v2']).default('off').describe('Send a PROXY protocol header to backends (generic TCP mode; nginx `proxy_protocol on` = v1).'),
  connections_per_backend: z.number().int().min(1).max(64).default(2)
    .describe('DNS mode: pipelined TCP connections per backend carrying the queries of TCP clients.'),
  idle: duration('DNS mode: close an idle client or backend TCP connection after this.').default(30_000),
}).prefault({}).describe('TCP settings.');

const nextUpstreamSchema = z.object({
  enabled: z.boolean().default(true).describe('Try another backend when one fails (nginx proxy_next_upstream).'),
  tries: z.number().int().min(0).default(3).describe('Attempts per query/connection, the first included (0 = each backend once).'),
  timeout: duration('Total time for all attempts (0 = no limit for TCP; 900 ms in DNS mode).').default(0),
  on_servfail: z.boolean().default(true).describe('DNS mode: retry a SERVFAIL answer on another backend.'),
  on_refused: z.boolean().default(true).describe('DNS mode: retry a REFUSED answer on another backend.'),
}).prefault({}).describe('Retrying on another backend.');

const healthSchema = z.object({
  enabled: z.boolean().default(true).describe('DNS mode: probe every backend with a DNS query, with or without traffic.'),
  name: z.string().default('probe.hadns.invalid').describe(
    'Query name of the probe. The default (RFC 6761 .invalid) is answered locally by hadns resolvers, so a probe tests the backend itself, not the internet behind it; any answer but SERVFAIL counts as alive unless must_resolve.'),
  type: z.string().default('A').describe('Query type of the probe.'),
  interval: duration('Time between two probes of one backend.').default(1000),
  timeout: duration('A probe without an answer within this has failed.').default(500),
  rise: z.number().int().min(1).default(2).describe('Consecutive good probes that bring a backend back.'),
  fall: z.number().int().min(1).default(3).describe('Consecutive failed probes that take a backend down.'),
  must_resolve: z.boolean().default(false).describe('Count NXDOMAIN and REFUSED answers as failures too (SERVFAIL always is).'),
}).prefault({}).describe('Active health checks.');

const cacheSchema = z.object({
  enabled: z.boolean().default(false).describe('DNS mode: answer repeated questions from a frontend packet cache.'),
  size: z.number().int().min(1).default(10_000).describe('Maximum number of cached answers.'),
}).prefault({}).describe('Frontend packet cache.');

export const serviceSchema = z.object({
  name: z.string().min(1).describe('Service name (logs, metrics, status).'),
  mode: z.enum(['dns', 'udp', 'tcp']).optional()
    .describe('dns: per-query DNS-aware balancing; udp/tcp: generic layer-4 proxy. Default: dns when a listener or backend uses port 53 or a listener has no transport, else the listeners\' transport.'),
  listen: z.array(listenEntry).min(1).describe('Where clients connect.'),
  pool: poolSchema.describe('Backends and how they are chosen.'),
  timeouts: timeoutsSchema,
  udp: udpSchema,
  tcp: tcpSchema,
  next_upstream: nextUpstreamSchema,
  health_check: healthSchema,
  cache: cacheSchema,
}).superRefine((svc, ctx) => {
  for (const [i, l] of svc.listen.entries()) {
    if (typeof l === 'string') {
      try { parseListen(l, 'dns'); } catch (e) { ctx.addIssue({ code: 'custom', path: ['listen', i], message: (e as Error).message }); }
    } else if (!isIP(l.address)) ctx.addIssue({ code: 'custom', path: ['listen', i, 'address'], message: `not an IP address: ${l.address}` });
  }
  for (const [i, b] of svc.pool.backends.entries()) {
    if (b.address === 'local') continue;
    try { splitHostPort(b.address); } catch (e) { ctx.addIssue({ code: 'custom', path: ['pool', 'backends', i, 'address'], message: (e as Error).message }); }
  }
  if (serviceMode(svc) !== 'dns' && svc.pool.backends.some((b) => b.address === 'local')) {
    ctx.addIssue({ code: 'custom', path: ['pool', 'backends'], message: 'a "local" backend needs mode: dns' });
  }
}).describe('One balanced service.');

export const balancerSectionSchema = z.object({
  services: z.array(serviceSchema).default([]).describe('Load-balanced services (as nginx stream server blocks).'),
}).describe('Layer-4 and DNS-aware load balancing (replaces nginx stream).');

export type BalancerSectionInput = z.input<typeof balancerSectionSchema>;
export type BalancerSection = z.output<typeof balancerSectionSchema>;
export type ServiceConfig = z.output<typeof serviceSchema>;
export type ServiceInput = z.input<typeof serviceSchema>;
export type BackendConfig = ServiceConfig['pool']['backends'][number];
export type ServiceMode = 'dns' | 'udp' | 'tcp';

/** Expands one listen entry into concrete listeners. */
export function parseListen(entry: string | ListenObject, mode: ServiceMode): ListenAddress[] {
  if (typeof entry !== 'string') return [{ ...entry }];
  const m = /^(udp|tcp|dns):\/\/(.+)$/.exec(entry.trim());
  const scheme = m ? m[1] : mode;
  const { host, port } = splitHostPort(m ? m[2] : entry.trim());
  const protos: ListenProto[] = scheme === 'dns' ? ['udp', 'tcp'] : [scheme as ListenProto];
  return protos.map((proto) => ({ proto, address: host, port, reuseport: false }));
}

/** The effective mode of a service (see `mode`'s description). */
export function serviceMode(svc: Pick<ServiceConfig, 'mode' | 'listen' | 'pool'>): ServiceMode {
  if (svc.mode) return svc.mode;
  const ports: number[] = [];
  const protos = new Set<string>();
  for (const l of svc.listen) {
    if (typeof l === 'string') {
      const m = /^(udp|tcp|dns):\/\//.exec(l.trim());
      protos.add(m ? m[1] : 'dns');
      try { ports.push(...parseListen(l, 'dns').map((x) => x.port)); } catch { /* reported by the schema */ }
    } else { protos.add(l.proto); ports.push(l.port); }
  }
  for (const b of svc.pool.backends) {
    if (b.address === 'local') return 'dns';
    try { ports.push(splitHostPort(b.address).port); } catch { /* reported by the schema */ }
  }
  if (ports.includes(53) || protos.has('dns')) return 'dns';
  return protos.has('udp') ? 'udp' : 'tcp';
}
