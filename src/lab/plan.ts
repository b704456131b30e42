/**
 * The lab's plan: names, addresses and the files written into it. Pure (no I/O), so the unit
 * tests can check the generated configs with the real schema and the shell (lab.ts) only has to
 * carry the plan out.
 *
 * Topology: one namespace per role plus a "switch" namespace holding the bridge, so that nothing
 * of the lab (bridge, veth ends, addresses, routes) exists in the host's own network namespace and
 * lab traffic cannot leave. Every namespace's `eth0` is a veth whose peer `p<role>` is a port of
 * `br0` in the switch namespace. Addresses come from 10.77.0.0/24 and exist only inside the lab;
 * no namespace has a default route.
 */

export const LAB_STATE_ROOT = '/run/hadns-lab';
export const LAB_SUBNET = '10.77.0.0/24';
export const LAB_PREFIX = 24;

export type NodeId = 'a' | 'b';
export type Role = NodeId | 'client' | 'upstream';
export const ROLES: readonly Role[] = ['a', 'b', 'client', 'upstream'];

/** Host addresses of the lab (all inside LAB_SUBNET). */
export const ADDR = {
  vip: '10.77.0.10',
  a: '10.77.0.11',
  b: '10.77.0.12',
  upstream: '10.77.0.53',
  client: '10.77.0.100',
} as const;

/** Fixed MACs make captures and `ip neigh` readable: 02:00:00:77:00:<host byte>. */
export function macOf(role: Role): string {
  const host = Number(ADDR[role].split('.')[3]);
  return `02:00:00:77:00:${host.toString(16).padStart(2, '0')}`;
}

export const RESOLVER_PORT = 5454;
export const API_PORT = 8053;
export const VRID = 77;
/** VRRPv3 advert interval (s): sub-second failover (Master_Down_Interval ≈ 3.6 × this). */
export const ADVERT_INT = 0.03;
export const PRIORITY: Record<NodeId, number> = { a: 150, b: 100 };

/** Names the hosts file of both nodes answers (local data). */
export const HOSTS: ReadonlyArray<[string, string]> = [
  ['10.77.1.1', 'www.lab.test'],
  ['10.77.1.2', 'mail.lab.test'],
  ['10.77.1.3', 'app.lab.test'],
  ['10.77.1.4', 'health.lab.test'],
];
/** Zone of the fake upstream: `n0.up.test` … `n{UPSTREAM_NAMES-1}.up.test` → 10.77.2.N. */
export const UPSTREAM_ZONE = 'up.test';
export const UPSTREAM_NAMES = 16;
export function upstreamName(i: number): string { return `n${i}.${UPSTREAM_ZONE}`; }
export function upstreamAddress(i: number): string { return `10.77.2.${i + 1}`; }
/** What the client load asks: local names and forwarded (then cached) names. */
export const LOAD_NAMES: readonly string[] = [
  ...HOSTS.filter(([, n]) => n !== 'health.lab.test').map(([, n]) => n),
  ...Array.from({ length: UPSTREAM_NAMES }, (_, i) => upstreamName(i)),
];

export interface LabNames {
  id: string;
  /** Directory of the state file, configs and logs. */
  dir: string;
  /** Namespace of each role and of the switch. */
  ns: Record<Role | 'sw', string>;
  /** Bridge port (in the switch namespace) of each role. */
  port: Record<Role, string>;
  bridge: string;
}

/** Short random suffixes keep two labs (or a crashed one) from colliding: `hl<id>-a`. */
export function labNames(id: string, root = LAB_STATE_ROOT): LabNames {
  if (!/^[0-9a-z]{2,8}$/.test(id)) throw new Error(`bad lab id ${JSON.stringify(id)} (2–8 of [0-9a-z])`);
  const ns = (r: string) => `hl${id}-${r}`;
  return {
    id,
    dir: `${root}/${id}`,
    ns: { sw: ns('sw'), a: ns('a'), b: ns('b'), client: ns('c'), upstream: ns('up') },
    port: { a: 'pa', b: 'pb', client: 'pc', upstream: 'pu' },
    bridge: 'br0',
  };
}

export function peerOf(n: NodeId): NodeId { return n === 'a' ? 'b' : 'a'; }

export function hostsFile(): string {
  return '# hadns lab: local names answered by both nodes\n' + HOSTS.map(([ip, n]) => `${ip} ${n}`).join('\n') + '\n';
}

export interface NodeConfigOptions {
  /** Directory for the node's state (records store). */
  stateDir: string;
  hostsPath: string;
  /** API token shared by both nodes (peer sync uses it both ways). */
  token: string;
}

/**
 * The native config of node `n`, in the shape of examples/article/node-*.yaml with lab addresses:
 * resolver on :5454 forwarding to the fake upstream, a DNS balancer service on VIP:53 whose pool
 * is the node's own resolver plus the peer's, VRRPv3 unicast with a 30 ms advert interval (ADVERT_INT).
 * Timers are tightened so that the lab shows sub-second failover.
 */
export function nodeConfig(n: NodeId, o: NodeConfigOptions): Record<string, unknown> {
  const me = ADDR[n];
  const peer = ADDR[peerOf(n)];
  return {
    node: {
      name: `node-${n}`,
      state_dir: o.stateDir,
      peers: [{ name: `node-${peerOf(n)}`, api: `http://${peer}:${API_PORT}` }],
      // Checked every 200 ms, two failures in a row: unhealthy within ~0.4 s → FAULT → peer takes the VIP.
      health: { interval: 0.2, fall: 2, rise: 2, weight: 0 },
    },
    log: { level: 'info', format: 'json' },
    resolver: {
      listen: [`127.0.0.1:${RESOLVER_PORT}`, `${me}:${RESOLVER_PORT}`],
      acl: 'any',
      hosts_files: [o.hostsPath],
      upstreams: { servers: [ADDR.upstream], strategy: 'strict-order' },
    },
    balancer: {
      services: [{
        name: 'dns',
        mode: 'dns',
        listen: [`${ADDR.vip}:53`],
        pool: { backends: [{ address: 'local' }, { address: `${peer}:${RESOLVER_PORT}` }] },
        // Probed every 200 ms (the default name is answered by hadns resolvers themselves): a dead
        // peer resolver leaves the pool within ~0.4 s, before passive health would notice.
        health_check: { interval: 200, timeout: 150, fall: 2, rise: 2 },
      }],
    },
    vrrp: {
      router_id: `node-${n}`,
      instances: [{
        name: 'VI_1',
        interface: 'eth0',
        vrid: VRID,
        version: 3,
        priority: PRIORITY[n],
        advert_int: ADVERT_INT,
        // A restarted node takes its VIP back only after a second of serving as backup (resolver
        // and balancer warm, backends probed): failback then loses nothing (keepalived's
        // preempt_delay; a healed split brain is master-vs-master and is not delayed).
        preempt_delay: 1,
        unicast_src_ip: me,
        unicast_peers: [peer],
        auth: { type: 'none' },
        virtual_addresses: [{ address: `${ADDR.vip}/${LAB_PREFIX}`, dev: 'eth0', label: 'eth0:0' }],
      }],
    },
    api: { listen: `${me}:${API_PORT}`, token: o.token },
  };
}

/** Parses `ip -o -4 addr show` output: does it carry `addr`? */
export function hasAddress(ipOutput: string, addr: string): boolean {
  return ipOutput.split('\n').some((l) => new RegExp(`\\binet ${addr.replace(/\./g, '\\.')}/`).test(l));
}

export type FaultKind = 'kill' | 'stop' | 'link-down' | 'partition' | 'resolver-dead' | 'backup-dead';
export const FAULT_KINDS: readonly FaultKind[] = ['kill', 'stop', 'link-down', 'partition', 'resolver-dead', 'backup-dead'];

/** How each fault is made (docs, `hadns lab fault --help`, the matrix table). */
export const FAULT_HOW: Record<FaultKind, string> = {
  kill: 'SIGKILL to the node\'s hadns process (by PID); heal restarts it with its config',
  stop: 'SIGTERM to the node\'s hadns process (graceful stop); heal restarts it',
  'link-down': '`ip link set eth0 down` inside the node\'s namespace (carrier lost); heal sets it up',
  partition: 'the node\'s bridge port set to STP state disabled (`bridge link set dev pX state 0`): carrier stays up, the bridge forwards nothing to or from it; heal sets state 3 (forwarding)',
  'resolver-dead': 'SIGUSR2 to the node\'s process (HADNS_FAULT_INJECTION=1): its resolver stops answering while the process lives; heal sends SIGUSR2 again',
  'backup-dead': 'SIGKILL to the *other* node\'s (the backup\'s) hadns process; heal restarts it',
};

/** The node a fault acts on: backup-dead targets the peer of the named node. */
export function faultTarget(node: NodeId, kind: FaultKind): NodeId {
  return kind === 'backup-dead' ? peerOf(node) : node;
}

export function parseNode(s: string | undefined): NodeId | null {
  const v = (s ?? '').toLowerCase().replace(/^node-?/, '');
  return v === 'a' || v === 'b' ? v : null;
}
