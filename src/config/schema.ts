/**
 * The native configuration schema: the single source of truth for keys, defaults, validation,
 * `hadns schema` (JSON Schema) and docs/configuration.md (generated from it, checked by a test).
 * Legacy importers (dnsmasq.conf, nginx stream, keepalived.conf) produce this same shape.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { recordData } from '../dns/records.js';
import { balancerSectionSchema } from '../balancer/config.js';
import { vrrpSectionSchema } from '../vrrp/config.js';
import { apiSectionSchema } from '../observe/config.js';

// ---------- shared value types ----------

/** "1.2.3.4", "1.2.3.4#5353", "1.2.3.4:5353", "::1", "::1#53", "[::1]:53" → host + port. */
export function parseHostPort(s: string, defaultPort = 53): { host: string; port: number } | null {
  let host = s.trim();
  let port = defaultPort;
  let m: RegExpExecArray | null;
  if ((m = /^\[([^\]]+)\](?:[:#](\d+))?$/.exec(host))) {
    host = m[1]; if (m[2]) port = Number(m[2]);
  } else if ((m = /^([^#]+)#(\d+)$/.exec(host))) {
    host = m[1]; port = Number(m[2]);
  } else if ((m = /^([^:]+):(\d+)$/.exec(host))) {
    host = m[1]; port = Number(m[2]);
  }
  if (!isIP(host) || !Number.isInteger(port) || port < 0 || port > 65535) return null;
  return { host, port };
}

const endpoint = (what: string, defaultPort: number) =>
  z.string().refine((s) => parseHostPort(s, defaultPort) !== null, {
    message: `expected an IP address with optional port (e.g. 192.0.2.1, 192.0.2.1#${defaultPort}, [2001:db8::1]:${defaultPort}) for ${what}`,
  });

const cidr = z.string().refine((s) => {
  const [ip, bits, ...rest] = s.split('/');
  if (rest.length || !isIP(ip)) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return Number.isInteger(n) && n >= 0 && n <= (isIP(ip) === 4 ? 32 : 128);
}, { message: 'expected an IP address or CIDR prefix (e.g. 10.0.0.0/8, 2001:db8::/32)' });

const domain = z.string().min(1).regex(/^(\.|[A-Za-z0-9_*]([A-Za-z0-9_\-.]*[A-Za-z0-9_])?\.?)$/, 'expected a domain name such as corp.example');

export const RECORD_TYPES = ['A', 'AAAA', 'CNAME', 'TXT', 'MX', 'SRV', 'PTR'] as const;

const localRecord = z.strictObject({
  name: domain.describe('Owner name, e.g. www.corp.example.'),
  type: z.enum(RECORD_TYPES).describe('Record type.'),
  value: z.union([z.string(), z.array(z.string())]).describe(
    'Value in zone-file form: A/AAAA an address; CNAME/PTR a name; TXT a string (or list of strings); '
    + 'MX "PREFERENCE EXCHANGE"; SRV "PRIORITY WEIGHT PORT TARGET".'),
  ttl: z.number().int().min(0).max(2147483647).optional().describe('TTL in seconds; defaults to resolver.local_ttl.'),
}).superRefine((r, ctx) => {
  try { recordData(r.type, r.value); } catch (e) { ctx.addIssue({ code: 'custom', path: ['value'], message: (e as Error).message }); }
});

const wildcard = z.strictObject({
  domain: domain.describe('The domain; it and every name below it match (dnsmasq address=/domain/...).'),
  addresses: z.array(z.string().refine((s) => isIP(s) !== 0, 'expected an IP address')).default([])
    .describe('Addresses to answer with (A for IPv4, AAAA for IPv6); empty means NXDOMAIN for the whole domain.'),
});

const forwardRule = z.strictObject({
  domain: domain.describe('Queries for this domain and below go to these servers (most specific domain wins).'),
  servers: z.array(endpoint('a forward server', 53)).default([])
    .describe('Upstream servers for this domain; empty means "use the default upstreams" (dnsmasq server=/dom/#).'),
  strategy: z.enum(['fastest', 'strict-order', 'all-servers']).optional()
    .describe('Strategy for this group; defaults to resolver.upstreams.strategy.'),
});

const serveStale = z.strictObject({
  enabled: z.boolean().default(true).describe('Answer from expired cache entries when every upstream fails (RFC 8767).'),
  max_age: z.number().int().min(0).default(86400).describe('How long past expiry (seconds) an entry may still be served stale.'),
  ttl: z.number().int().min(1).default(30).describe('TTL (seconds) put on stale answers.'),
}).prefault({});

const cache = z.strictObject({
  size: z.number().int().min(0).default(10000).describe('Maximum cached answers (0 disables the cache; dnsmasq cache-size).'),
  max_bytes: z.number().int().min(0).default(64 * 1024 * 1024).describe('Maximum bytes of cached answers.'),
  min_ttl: z.number().int().min(0).default(0).describe('Cached answers live at least this long (seconds; dnsmasq min-cache-ttl).'),
  max_ttl: z.number().int().min(0).default(86400).describe('Cached answers live at most this long (seconds; dnsmasq max-cache-ttl).'),
  neg_ttl: z.number().int().min(0).default(0)
    .describe('TTL for negative answers without an SOA (seconds; 0 = do not cache them; dnsmasq neg-ttl).'),
  neg_max_ttl: z.number().int().min(0).default(3600).describe('Cap on negative caching from the SOA minimum (seconds).'),
  serve_stale: serveStale,
}).prefault({});

const upstreams = z.strictObject({
  servers: z.array(endpoint('an upstream server', 53)).default([])
    .describe('Upstream resolvers, e.g. 192.0.2.53 or 192.0.2.53#5353.'),
  resolv_file: z.string().nullable().default(null)
    .describe('Also read nameserver lines from this resolv.conf-format file, re-read when it changes (dnsmasq resolv-file).'),
  strategy: z.enum(['fastest', 'strict-order', 'all-servers']).default('fastest').describe(
    'fastest: prefer the fastest / last good server and re-probe the others now and then (dnsmasq default); '
    + 'strict-order: in listed order; all-servers: ask all in parallel, first good answer wins.'),
  timeout_ms: z.number().int().min(50).max(30000).default(1500)
    .describe('How long to wait for one upstream before trying the next (milliseconds).'),
  total_timeout_ms: z.number().int().min(100).max(60000).default(4000)
    .describe('Give up on a query (SERVFAIL, or a stale answer) after this long (milliseconds).'),
}).prefault({});

export const resolverSchema = z.strictObject({
  listen: z.array(endpoint('a listen address', 53)).default(['127.0.0.1:5353', '[::1]:5353'])
    .describe('Addresses to serve DNS on, UDP and TCP, e.g. 127.0.0.1:5353, [::1]:5353, 0.0.0.0:53.'),
  interfaces: z.array(z.string()).default([])
    .describe('Also listen on every address of these network interfaces (dnsmasq interface=), at start and reload.'),
  acl: z.union([z.literal('local-service'), z.literal('any'), z.array(cidr)]).default('local-service').describe(
    'Which clients may query: "local-service" (loopback and directly attached subnets, like dnsmasq), "any", '
    + 'or a list of CIDR prefixes.'),
  hosts_files: z.array(z.string()).default([])
    .describe('Hosts-format files (e.g. /etc/hosts, dnsmasq addn-hosts) answering A/AAAA and PTR; re-read when they change.'),
  local_ttl: z.number().int().min(0).default(0).describe('TTL of answers from local data (seconds; dnsmasq local-ttl).'),
  records: z.array(localRecord).default([]).describe('Inline local records.'),
  wildcards: z.array(wildcard).default([]).describe('Whole domains answered locally (dnsmasq address=/domain/ip).'),
  local_domains: z.array(domain).default([])
    .describe('Domains answered only from local data, never forwarded (dnsmasq local=/domain/).'),
  upstreams,
  forward: z.array(forwardRule).default([]).describe('Conditional forwarding per domain (dnsmasq server=/domain/ip).'),
  cache,
  domain_needed: z.boolean().default(false).describe('Never forward names without a dot (dnsmasq domain-needed).'),
  bogus_priv: z.boolean().default(false)
    .describe('Never forward reverse lookups of private ranges; answer NXDOMAIN unless local (dnsmasq bogus-priv).'),
  max_inflight: z.number().int().min(1).default(1024)
    .describe('Upstream queries in flight at once, and 16 times as many clients waiting on them (identical questions merge); '
      + 'beyond, clients get REFUSED (dnsmasq dns-forward-max).'),
  query_log: z.boolean().default(false).describe('Log one line per query (dnsmasq log-queries).'),
  query_log_rate: z.number().int().min(1).default(1000).describe('At most this many query-log lines per second.'),
});

export const logSchema = z.strictObject({
  level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info').describe('Log level.'),
  format: z.enum(['auto', 'json', 'pretty']).default('auto')
    .describe('json (one object per line), pretty (for a terminal), or auto (pretty on a TTY).'),
}).prefault({});

export const configSchema = z.strictObject({
  node: z.strictObject({
    name: z.string().min(1).default('hadns').describe('This node\'s name (logs, metrics, the pair view).'),
    state_dir: z.string().nullable().default(null).describe(
      'Directory for state that must survive restarts (records added through the API). '
      + 'null: keep such records in memory only. The systemd unit uses /var/lib/hadns.'),
    peers: z.array(z.strictObject({
      name: z.string().min(1).describe('The peer node\'s name.'),
      api: z.string().url().describe('The peer\'s API base URL, e.g. http://172.22.10.50:8053.'),
    })).default([]).describe('Other nodes of the pair: local records added through the API are kept in sync with them '
      + '(the API token is used both ways).'),
    health: z.strictObject({
      interval: z.number().positive().default(1).describe('Seconds between self-checks of this node\'s DNS service.'),
      fall: z.number().int().min(1).default(2).describe('Failed checks in a row before the node counts as unhealthy.'),
      rise: z.number().int().min(1).default(2).describe('Good checks in a row before it counts as healthy again.'),
      weight: z.number().int().min(-254).max(0).default(0).describe(
        'What unhealthy does to every VRRP instance: 0 = FAULT (the peer takes the VIPs at once), '
        + 'negative = added to the priority.'),
    }).prefault({}).describe('Health feeds VRRP: a node that cannot serve DNS gives its VIPs away.'),
    nonlocal_bind: z.enum(['auto', 'on', 'off']).default('auto').describe(
      'How listeners on VIPs are bound. auto/on: bind them at start through net.ipv4/ipv6 ip_nonlocal_bind '
      + '(enabled in this network namespace when needed; on = fail if that is impossible), so a VIP that arrives '
      + 'is served from its first packet. off (or auto without the permission): bind when the VIP arrives, '
      + 'release when it leaves.'),
    udp_io: z.enum(['auto', 'native', 'dgram']).default('auto').describe(
      'How the UDP sockets of the DNS path (resolver listeners and upstream sockets, balancer listeners and backend sockets) are driven. '
      + 'native: batched recvmmsg/sendmmsg through the addon built by npm install (Linux; fails at start without it). '
      + 'dgram: Node\'s own UDP sockets, one system call and one callback per datagram (slower; the fallback). '
      + 'auto: native when the addon loads, else dgram. The environment variable HADNS_UDP_IO overrides it. '
      + 'With native, the daemon also turns off libuv\'s idle-time accounting (one `epoll_pwait` per wake-up instead of two; '
      + 'Node\'s `performance.eventLoopUtilization()` then reads as fully busy); HADNS_LOOP_IDLE_TIME=1 keeps it.'),
    helper_threads: z.enum(['idle', 'normal']).default('normal').describe(
      'Scheduling of the daemon\'s helper threads (V8\'s garbage-collector and compiler workers, libuv\'s file pool; Linux). '
      + 'normal: as Node starts them. idle: SCHED_IDLE (nice 19 without the native addon), so they run only when the CPU '
      + 'has nothing else to do and never take the core from the event loop; but a saturated daemon then pays for its '
      + 'garbage collection on the main thread (-30% throughput with the balancer cache on a CPU quota). Applied at start.'),
    realtime_priority: z.number().int().min(0).max(99).default(0).describe(
      'Real-time scheduling (SCHED_RR at this priority, 1-99) for the daemon\'s event-loop thread, which runs every DNS query '
      + 'and health check (Linux; the VRRP process has its own, real-time when permitted: docs/vrrp.md); 0: off, normal '
      + 'scheduling. Other threads of the machine then never make DNS wait: in the balancer bench it cut the p99 at 10k q/s '
      + 'by a third to a half for a few percent more CPU per query. Only where the cores are there for DNS: a resolver or backend process on the daemon\'s core is preempted by it (p99 ten times worse in the bench), and while the '
      + 'daemon is saturated, ordinary tasks on its core get only what the kernel\'s real-time throttling leaves them '
      + '(kernel.sched_rt_runtime_us, 5% by default; a warning at start when it is off). '
      + 'Needs root or CAP_SYS_NICE (packaging/hadns.service has the lines to uncomment); without, a warning and normal '
      + 'scheduling. Applied at start (docs/operations.md, "Real-time scheduling").'),
  }).prefault({}).describe('The node.'),
  log: logSchema.describe('Logging.'),
  resolver: resolverSchema.optional().describe('The resolver service (dnsmasq\'s role). Absent: no resolver.'),
  balancer: balancerSectionSchema.optional()
    .describe('The balancer (nginx stream\'s role): UDP/TCP pools, per-query DNS balancing. Absent: no balancer.'),
  vrrp: vrrpSectionSchema.optional()
    .describe('VRRP (keepalived\'s role): virtual addresses floated between nodes. Absent: no VRRP.'),
  api: apiSectionSchema.describe('The operators\' HTTP endpoint: health, readiness, Prometheus metrics, JSON API and web console (docs/operations.md).'),
}).describe('hadns native configuration (YAML).');

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type ResolverConfig = z.output<typeof resolverSchema>;
export type LocalRecordConfig = z.output<typeof localRecord>;

export function jsonSchema(): object {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' });
}
