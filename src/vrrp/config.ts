/**
 * Schema of the native `vrrp:` config section (zod v4). The lead mounts `vrrpSectionSchema` as the
 * `vrrp` key of the main schema; the config reference and JSON schema are generated from the
 * `.describe()` texts, so every key has one. Defaults follow keepalived where it has one.
 */
import { isIP } from 'node:net';
import { z } from 'zod';

const ipAddress = z.string().refine((s) => isIP(s) !== 0, { message: 'must be an IPv4 or IPv6 address' });

/** "192.0.2.10/24", "2001:db8::1/64" or a bare address (host prefix, as keepalived does). */
const cidr = z.string().refine((s) => {
  const [ip, len, ...rest] = s.split('/');
  if (rest.length || !ip) return false;
  const fam = isIP(ip);
  if (!fam) return false;
  if (len === undefined) return true;
  if (!/^\d{1,3}$/.test(len)) return false;
  return Number(len) <= (fam === 4 ? 32 : 128);
}, { message: 'must be ADDRESS or ADDRESS/PREFIX' });

const seconds = (what: string) => z.number().nonnegative().describe(what);

export const virtualAddressSchema = z.object({
  address: cidr.describe('Virtual address with prefix length, e.g. 172.22.10.210/24 (bare address = host prefix).'),
  dev: z.string().min(1).optional().describe('Interface to put the address on; defaults to the instance interface.'),
  label: z.string().min(1).max(15).optional().describe('IPv4 address label shown by `ip addr`, e.g. ens192:0 (must start with the device name).'),
}).strict().describe('One virtual address held by the master.');

export const authSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('none').describe('No authentication (VRRPv2 auth type 0; VRRPv3 has no auth field).'),
  }).strict(),
  z.object({
    type: z.literal('pass').describe('VRRPv2 simple text password (auth type 1), interoperable with keepalived auth_type PASS.'),
    password: z.string().min(1).refine((s) => Buffer.byteLength(s) <= 8, { message: 'PASS password is at most 8 bytes (keepalived truncates longer ones)' })
      .describe('Password, at most 8 bytes; sent NUL-padded to 8 bytes in clear text.'),
  }).strict(),
  z.object({
    type: z.literal('hmac').describe('hadns-only: HMAC-SHA256 trailer with a sequence number for replay protection. All routers of the VRID must be hadns nodes with the same key.'),
    key: z.string().min(16).describe('Shared secret (at least 16 characters); prefer a key_file in production.'),
    key_id: z.number().int().min(0).max(255).default(1).describe('Key identifier carried in the trailer, to allow key rotation.'),
    max_clock_skew: seconds('Reject adverts whose timestamp differs from local wall-clock time by more than this (s); 0 disables the check.').default(60),
  }).strict(),
]).describe('Advert authentication; see docs/vrrp.md for what each mode protects against.');

export const trackInterfaceSchema = z.object({
  name: z.string().min(1).describe('Interface name to watch.'),
  weight: z.number().int().min(-254).max(254).default(0).describe('0: the instance enters FAULT while the interface is down; negative: added to priority while down; positive: added while up.'),
}).strict().describe('A tracked interface.');

export const trackScriptRefSchema = z.object({
  name: z.string().min(1).describe('Name of a script under vrrp.scripts.'),
  weight: z.number().int().min(-254).max(254).optional().describe('Overrides the script\'s own weight for this instance.'),
}).strict().describe('A tracked script used by this instance.');

export const notifySchema = z.object({
  master: z.string().optional().describe('Command run on entering MASTER.'),
  backup: z.string().optional().describe('Command run on entering BACKUP.'),
  fault: z.string().optional().describe('Command run on entering FAULT.'),
  stop: z.string().optional().describe('Command run when the instance stops.'),
  any: z.string().optional().describe('Command run on every transition with arguments: INSTANCE <name> <state> <priority> (keepalived `notify`).'),
}).strict().default({}).describe('Notify hooks, run in order, one at a time, on each transition.');

export const garpSchema = z.object({
  master_delay: seconds('Delay before the second burst of gratuitous ARP/NA after becoming master (s); 0 disables the second burst.').default(5),
  master_repeat: z.number().int().min(1).max(255).default(5).describe('Gratuitous ARP/NA per address in each burst.'),
  master_refresh: seconds('Resend gratuitous ARP/NA every this many seconds while master; 0 = never.').default(0),
  master_refresh_repeat: z.number().int().min(1).max(255).default(1).describe('Messages per address in each refresh.'),
  lower_prio_repeat: z.number().int().min(0).max(255).default(5).describe('Gratuitous ARP/NA per address when the master hears a lower-priority advert (0 = none).'),
  interval: seconds('Gap between messages of one burst (s).').default(0),
}).strict().default({ master_delay: 5, master_repeat: 5, master_refresh: 0, master_refresh_repeat: 1, lower_prio_repeat: 5, interval: 0 })
  .describe('Gratuitous ARP (IPv4) / unsolicited neighbour advertisement (IPv6) settings.');

export const instanceSchema = z.object({
  name: z.string().min(1).describe('Instance name (keepalived vrrp_instance name), used in logs and notify hooks.'),
  interface: z.string().min(1).describe('Interface the adverts are sent and received on.'),
  vrid: z.number().int().min(1).max(255).describe('Virtual router ID (keepalived virtual_router_id); the same on all routers of the group.'),
  priority: z.number().int().min(1).max(255).default(100).describe('Priority 1..254; 255 = address owner (starts as master at once).'),
  advert_int: z.number().positive().max(40.95).default(1).describe('Advertisement interval in seconds; v2: whole seconds; v3: multiples of 0.01 s.'),
  version: z.union([z.literal(2), z.literal(3)]).default(2).describe('VRRP version: 2 (RFC 3768, IPv4, PASS auth) or 3 (RFC 5798, IPv4/IPv6, sub-second intervals).'),
  state: z.enum(['MASTER', 'BACKUP']).default('BACKUP').describe('Start-up hint as in keepalived; the election decides. Only priority 255 starts as master at once.'),
  preempt: z.boolean().default(true).describe('A higher-priority backup takes over from a lower-priority master (keepalived: disable with nopreempt).'),
  preempt_delay: seconds('Seconds to tolerate a lower-priority master before preempting.').default(0),
  unicast_src_ip: ipAddress.optional().describe('Source address for unicast adverts; default: the interface\'s primary address.'),
  unicast_peers: z.array(ipAddress).default([]).describe('Unicast peers; when set, adverts go to each peer instead of multicast and adverts from other sources are dropped and counted.'),
  auth: authSchema.default({ type: 'none' }),
  virtual_addresses: z.array(virtualAddressSchema).min(1).describe('Virtual addresses (all IPv4 or all IPv6 for one instance).'),
  track_interfaces: z.array(trackInterfaceSchema).default([]).describe('Interfaces whose state moves priority or forces FAULT.'),
  track_scripts: z.array(trackScriptRefSchema).default([]).describe('Health scripts (from vrrp.scripts) whose result moves priority or forces FAULT.'),
  notify: notifySchema,
  garp: garpSchema,
}).strict().superRefine((inst, ctx) => {
  const fams = new Set(inst.virtual_addresses.map((v) => isIP(v.address.split('/')[0]!)));
  if (fams.size > 1) ctx.addIssue({ code: 'custom', path: ['virtual_addresses'], message: 'mix of IPv4 and IPv6 addresses in one instance' });
  if (fams.has(6) && inst.version === 2) ctx.addIssue({ code: 'custom', path: ['version'], message: 'IPv6 virtual addresses need version 3' });
  if (inst.version === 2 && !Number.isInteger(inst.advert_int)) ctx.addIssue({ code: 'custom', path: ['advert_int'], message: 'VRRPv2 advert_int is whole seconds' });
  if (inst.version === 3 && Math.abs(Math.round(inst.advert_int * 100) - inst.advert_int * 100) > 1e-6) ctx.addIssue({ code: 'custom', path: ['advert_int'], message: 'VRRPv3 advert_int is a multiple of 0.01 s' });
  if (inst.auth.type === 'pass' && inst.version === 3) ctx.addIssue({ code: 'custom', path: ['auth'], message: 'VRRPv3 has no PASS authentication' });
  for (const v of inst.virtual_addresses) {
    if (v.label && !v.label.startsWith(`${v.dev ?? inst.interface}:`) && v.label !== (v.dev ?? inst.interface)) {
      ctx.addIssue({ code: 'custom', path: ['virtual_addresses'], message: `label ${v.label} must start with "${v.dev ?? inst.interface}:" (kernel rule)` });
    }
  }
  if (inst.unicast_src_ip && inst.unicast_peers.some((p) => isIP(p) !== isIP(inst.unicast_src_ip!))) {
    ctx.addIssue({ code: 'custom', path: ['unicast_peers'], message: 'unicast peers and unicast_src_ip must be the same address family' });
  }
}).describe('One VRRP instance (keepalived vrrp_instance).');

export const scriptSchema = z.object({
  script: z.string().min(1).describe('Command line run through /bin/sh; exit status 0 = healthy.'),
  interval: seconds('Seconds between runs.').default(1),
  timeout: seconds('Seconds before a run is killed and counted as a failure; 0 = interval.').default(0),
  weight: z.number().int().min(-254).max(254).default(0).describe('0: failure forces FAULT; negative: added to priority while failing; positive: added while succeeding.'),
  rise: z.number().int().min(1).default(1).describe('Consecutive successes before the check counts as up.'),
  fall: z.number().int().min(1).default(1).describe('Consecutive failures before the check counts as down.'),
}).strict().describe('A health-check script (keepalived vrrp_script).');

export const vrrpSectionSchema = z.object({
  router_id: z.string().optional().describe('Name of this node in logs (keepalived global_defs router_id); default: the host name.'),
  instances: z.array(instanceSchema).default([]).describe('VRRP instances run by this node.'),
  scripts: z.record(z.string(), scriptSchema).default({}).describe('Named health-check scripts referenced by instances.track_scripts.'),
}).strict().superRefine((sec, ctx) => {
  const seen = new Map<string, number>();
  sec.instances.forEach((inst, i) => {
    const first = inst.virtual_addresses[0]?.address ?? '';
    const key = `${inst.interface}/${inst.vrid}/${isIP(first.split('/')[0]!)}`;
    if (seen.has(key)) ctx.addIssue({ code: 'custom', path: ['instances', i, 'vrid'], message: `VRID ${inst.vrid} already used on ${inst.interface} by instance ${seen.get(key)}` });
    seen.set(key, i);
    (inst.track_scripts ?? []).forEach((t, j) => {
      if (!(t.name in sec.scripts)) ctx.addIssue({ code: 'custom', path: ['instances', i, 'track_scripts', j, 'name'], message: `unknown script ${t.name}` });
    });
  });
}).describe('VRRP: virtual addresses floated between nodes (the keepalived part).');

/** Parsed (output) form: defaults applied. */
export type VrrpSection = z.output<typeof vrrpSectionSchema>;
/** Input form, as written in YAML or produced by the keepalived importer. */
export type VrrpSectionInput = z.input<typeof vrrpSectionSchema>;
export type VrrpInstanceConfig = z.output<typeof instanceSchema>;
export type VrrpScriptConfig = z.output<typeof scriptSchema>;
export type VrrpAuthConfig = z.output<typeof authSchema>;

/** Family of an instance (from its first virtual address). */
export function instanceFamily(inst: Pick<VrrpInstanceConfig, 'virtual_addresses'>): 4 | 6 {
  return isIP(inst.virtual_addresses[0]!.address.split('/')[0]!) === 6 ? 6 : 4;
}
