/**
 * dnsmasq.conf importer: reads a dnsmasq configuration (with its conf-file / conf-dir includes) and
 * produces the native config shape (`{ resolver: {...} }`), plus diagnostics that name the file and
 * line each problem came from.
 *
 * Pure apart from reading files: no sockets, no timers. File reads go through `readFile` so tests
 * can feed text; directory listings (conf-dir) use the real filesystem.
 *
 * Policy (documented in docs/migrating-from-dnsmasq.md):
 * - a directive that belongs to the resolver and maps → mapped, silently;
 * - a directive that maps only in part, or has no effect in hadns → warning saying what changes;
 * - a directive outside the resolver (DHCP, TFTP, RA, process management) → warning "ignored: …";
 * - an unknown directive, or a malformed value → error naming the directive and what is allowed.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import { basename, join, resolve } from 'node:path';
import type { ConfigInput } from '../schema.js';
import { Diagnostics, type Diagnostic } from '../diagnostics.js';

type ResolverInput = NonNullable<ConfigInput['resolver']>;
type RecordInput = NonNullable<ResolverInput['records']>[number];

export interface DnsmasqImport {
  config: ConfigInput;
  diagnostics: Diagnostic[];
  /** Every file (and hosts directory) the config depends on, for the daemon to watch. */
  files: string[];
}

/** Where a directive came from, for diagnostics. */
interface Where { file: string; line: number }

/** dnsmasq caps min-cache-ttl at one hour (compile-time constant in dnsmasq). */
const MIN_CACHE_TTL_CAP = 3600;
/** Include depth beyond which we stop, even without a loop (dnsmasq stops at a similar depth). */
const MAX_INCLUDE_DEPTH = 16;

// Same shape the schema accepts for a domain (without the schema's "*" allowance).
const DOMAIN_RE = /^[A-Za-z0-9_]([A-Za-z0-9_\-.]*[A-Za-z0-9_])?\.?$/;
function isDomain(s: string): boolean {
  return s.length > 0 && s.length <= 253 && DOMAIN_RE.test(s) && !s.includes('..');
}
/** Lower-case, no trailing dot: the key we merge wildcard and forward lines on. */
function normDomain(s: string): string {
  let d = s.toLowerCase();
  while (d.startsWith('.')) d = d.slice(1); // dnsmasq: /.example.com/ means /example.com/
  if (d.endsWith('.') && d.length > 1) d = d.slice(0, -1);
  return d;
}

/** A listen endpoint in the form the schema parses: IPv6 in brackets. */
function endpointOf(ip: string, port: number): string {
  return isIP(ip) === 6 ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** dnsmasq's upstream form "ip[#port]" → the schema's "ip#port" (the port is kept only when given). */
function parseServerAddr(s: string): { host: string; port?: number } | null {
  const m = /^([^#]+?)(?:#(\d+))?$/.exec(s);
  if (!m) return null;
  let host = m[1];
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (!isIP(host.split('%')[0])) return null;
  if (m[2] !== undefined) {
    const port = Number(m[2]);
    if (!Number.isInteger(port) || port < 1 || port > 65535) return null;
    return { host, port };
  }
  return { host };
}
function serverString(a: { host: string; port?: number }): string {
  return a.port === undefined ? a.host : `${a.host}#${a.port}`;
}

/** Reverse-zone names covering an IPv4/IPv6 prefix (dnsmasq rev-server), expanded to label boundaries. */
function reverseZones(ip: string, len: number): string[] {
  if (isIP(ip) === 4) {
    const oct = ip.split('.').map(Number);
    const whole = Math.floor(len / 8);
    const rest = len % 8;
    const base = oct.slice(0, whole);
    if (rest === 0) return [[...base].reverse().join('.') + (whole ? '.' : '') + 'in-addr.arpa'];
    // Not on an octet boundary: list every next-octet value the prefix covers.
    const span = 1 << (8 - rest);
    const first = oct[whole] & ~(span - 1) & 0xff;
    const out: string[] = [];
    for (let i = 0; i < span; i++) out.push([...base, first + i].reverse().join('.') + '.in-addr.arpa');
    return out;
  }
  const nibbles = expand6(ip).replace(/:/g, '').split('');
  const whole = Math.floor(len / 4);
  const rest = len % 4;
  const base = nibbles.slice(0, whole);
  const suffix = 'ip6.arpa';
  if (rest === 0) return [[...base].reverse().join('.') + (whole ? '.' : '') + suffix];
  const span = 1 << (4 - rest);
  const first = parseInt(nibbles[whole], 16) & ~(span - 1) & 0xf;
  const out: string[] = [];
  for (let i = 0; i < span; i++) out.push([...base, (first + i).toString(16)].reverse().join('.') + '.' + suffix);
  return out;
}
function expand6(ip: string): string {
  let [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two groups.
  const fix = (g: string[]) => g.flatMap((x) => (x.includes('.') ? (() => {
    const o = x.split('.').map(Number);
    return [((o[0] << 8) | o[1]).toString(16), ((o[2] << 8) | o[3]).toString(16)];
  })() : [x]));
  const hh = fix(h); const tt = fix(t);
  const mid = tail === undefined ? [] : Array(8 - hh.length - tt.length).fill('0');
  return [...hh, ...mid, ...tt].map((g) => g.padStart(4, '0')).join(':');
}
/** PTR owner name for an address. */
function reverseName(ip: string): string {
  if (isIP(ip) === 4) return ip.split('.').reverse().join('.') + '.in-addr.arpa';
  return expand6(ip).replace(/:/g, '').split('').reverse().join('.') + '.ip6.arpa';
}

/**
 * One config line → directive and value, following dnsmasq's file reader: leading/trailing space
 * dropped, "#" starts a comment at the start of a line or after whitespace (so "server=1.2.3.4#53"
 * keeps its port), quotes protect "#" and "," and are kept for the field splitter.
 */
function stripComment(raw: string): string {
  let out = '';
  let inQuote = false;
  let prevSpace = true; // a "#" at the very start is a comment
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (inQuote) {
      out += c;
      if (c === '\\' && i + 1 < raw.length) { out += raw[++i]; continue; }
      if (c === '"') inQuote = false;
      prevSpace = false;
      continue;
    }
    if (c === '#' && prevSpace) break;
    if (c === '"') inQuote = true;
    out += c;
    prevSpace = c === ' ' || c === '\t' || c === '\r';
  }
  return out.trim();
}

/** Splits a value on commas outside quotes; removes the quotes and applies dnsmasq's escapes. */
function splitFields(value: string): string[] {
  const fields: string[] = [];
  let cur = '';
  let inQuote = false;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (inQuote) {
      if (c === '\\' && i + 1 < value.length) {
        const n = value[++i];
        cur += ({ n: '\n', t: '\t', r: '\r', b: '\b', e: '\x1b' } as Record<string, string>)[n] ?? n;
      } else if (c === '"') inQuote = false;
      else cur += c;
      continue;
    }
    if (c === '"') { inQuote = true; quoted = true; continue; }
    if (c === ',') { fields.push(quoted ? cur : cur.trim()); cur = ''; quoted = false; continue; }
    cur += c;
  }
  fields.push(quoted ? cur : cur.trim());
  return fields;
}

function parseUint(s: string, max = 2147483647): number | null {
  if (!/^\d+$/.test(s.trim())) return null;
  const n = Number(s.trim());
  return n <= max ? n : null;
}

// ---------- directive tables ----------

/** Directives outside the resolver: accepted, reported as ignored with the reason. */
const IGNORED: Record<string, string> = {
  'user': 'hadns does not switch user from its config (run it under the user you want, e.g. systemd User=)',
  'group': 'hadns does not switch group from its config (systemd Group=)',
  'pid-file': 'hadns runs in the foreground under a supervisor; no PID file',
  'log-facility': 'hadns logs to stderr (structured); use your supervisor or journald',
  'log-async': 'hadns logging is already asynchronous',
  'keep-in-foreground': 'hadns always runs in the foreground',
  'no-daemon': 'hadns always runs in the foreground',
  'enable-dbus': 'no D-Bus interface in hadns',
  'enable-ubus': 'no ubus interface in hadns',
  'enable-tftp': 'hadns does not serve TFTP',
  'enable-ra': 'hadns does not send router advertisements',
  'ra-param': 'hadns does not send router advertisements',
  'bootp-dynamic': 'hadns does not serve DHCP/BOOTP',
  'no-ping': 'DHCP option; hadns does not serve DHCP',
  'leasefile-ro': 'DHCP option; hadns does not serve DHCP',
  'read-ethers': 'DHCP option; hadns does not serve DHCP',
  'log-dhcp': 'DHCP option; hadns does not serve DHCP',
  'no-dhcp-interface': 'DHCP option; hadns does not serve DHCP (DNS is still served on that interface)',
  'no-dhcpv4-interface': 'DHCP option; hadns does not serve DHCP',
  'no-dhcpv6-interface': 'DHCP option; hadns does not serve DHCP',
  'shared-network': 'DHCP option; hadns does not serve DHCP',
  'bridge-interface': 'DHCP/RA option; hadns does not serve DHCP',
  'tag-if': 'DHCP option; hadns does not serve DHCP',
  'domain': 'used by dnsmasq for DHCP names and expand-hosts, which hadns does not have (srv-host names without a domain still use it)',
  'test': 'a command-line action, not a setting',
  'help': 'a command-line action, not a setting',
  'version': 'a command-line action, not a setting',
  'conf-script': 'hadns does not run scripts to build its config; paste the output into a file',
  'dumpfile': 'packet dumps are not supported; use tcpdump',
  'dumpmask': 'packet dumps are not supported; use tcpdump',
  'log-debug': 'use the log level (log.level: debug) instead',
};
const IGNORED_PREFIX: [string, string][] = [
  ['dhcp-', 'hadns does not serve DHCP'],
  ['tftp-', 'hadns does not serve TFTP'],
  ['pxe-', 'hadns does not serve PXE/DHCP'],
  ['quiet-', 'hadns does not serve DHCP/RA/TFTP (log quieting has no counterpart)'],
  ['script-', 'hadns does not run DHCP lease scripts'],
];

/** Resolver directives hadns does not reproduce: accepted with a warning saying what is lost. */
const UNSUPPORTED: Record<string, string> = {
  'except-interface': 'hadns listens only on the addresses and interfaces listed; exclusions are not supported, list the wanted ones',
  'auth-server': 'authoritative mode is not supported',
  'auth-zone': 'authoritative mode is not supported',
  'auth-soa': 'authoritative mode is not supported',
  'auth-sec-servers': 'authoritative mode is not supported',
  'auth-peer': 'authoritative mode is not supported',
  'auth-ttl': 'authoritative mode is not supported',
  'dnssec': 'DNSSEC validation is not supported (the DO bit is passed through to upstreams)',
  'trust-anchor': 'DNSSEC validation is not supported',
  'dnssec-check-unsigned': 'DNSSEC validation is not supported',
  'dnssec-no-timecheck': 'DNSSEC validation is not supported',
  'dnssec-timestamp': 'DNSSEC validation is not supported',
  'dnssec-debug': 'DNSSEC validation is not supported',
  'dnssec-limits': 'DNSSEC validation is not supported',
  'proxy-dnssec': 'the AD bit from upstream is not copied',
  'stop-dns-rebind': 'DNS rebinding protection is not implemented',
  'rebind-localhost-ok': 'DNS rebinding protection is not implemented',
  'rebind-domain-ok': 'DNS rebinding protection is not implemented',
  'filterwin2k': 'query filtering by type is not implemented',
  'filter-A': 'query filtering by type is not implemented',
  'filter-AAAA': 'query filtering by type is not implemented',
  'filter-rr': 'query filtering by type is not implemented',
  'bogus-nxdomain': 'rewriting answers into NXDOMAIN is not implemented',
  'ignore-address': 'dropping answers by address is not implemented',
  'ipset': 'ipset/nftset population is not implemented',
  'nftset': 'ipset/nftset population is not implemented',
  'connmark-allowlist-enable': 'conntrack-based filtering is not implemented',
  'connmark-allowlist': 'conntrack-based filtering is not implemented',
  'conntrack': 'conntrack mark copying is not implemented',
  'add-mac': 'EDNS client options are not added to upstream queries',
  'add-subnet': 'EDNS client subnet is not added to upstream queries',
  'add-cpe-id': 'EDNS client options are not added to upstream queries',
  'umbrella': 'EDNS client options are not added to upstream queries',
  'strip-mac': 'EDNS client options are not edited',
  'strip-subnet': 'EDNS client options are not edited',
  'cache-rr': 'every record type is cached by hadns',
  'no-round-robin': 'local answers keep their configured order',
  'naptr-record': 'NAPTR records are not supported as local data',
  'caa-record': 'CAA records are not supported as local data',
  'dns-rr': 'raw local records are not supported',
  'interface-name': 'records derived from interface addresses are not supported; use records with fixed addresses',
  'dynamic-host': 'records derived from interface addresses are not supported',
  'synth-domain': 'synthesised names are not supported',
  'alias': 'address rewriting is not supported',
  'expand-hosts': 'names in hosts files are not expanded with a domain; write fully qualified names',
  'localise-queries': 'answers are not ordered by the client\'s interface',
  'selfmx': 'automatic MX records for hosts are not supported; use mx-host',
  'localmx': 'automatic MX records for hosts are not supported; use mx-host',
  'servers-file': 'not read; move its server= lines into the main file',
  'edns-packet-max': 'hadns always advertises 1232 bytes (the DNS flag day value, dnsmasq\'s default)',
  'query-port': 'hadns always uses a random source port per upstream query (the DNSpooq lesson)',
  'min-port': 'hadns always uses a random source port per upstream query',
  'max-port': 'hadns always uses a random source port per upstream query',
  'port-limit': 'hadns always uses a random source port per upstream query',
  'no-poll': 'hadns always re-reads the resolv-file when it changes',
  'clear-on-reload': 'hadns keeps its cache over a reload unless the upstreams change',
  'fast-dns-retry': 'hadns retries the next upstream after upstreams.timeout_ms',
  'dns-loop-detect': 'loop detection is not implemented',
  'max-tcp-connections': 'TCP connections are bounded by hadns itself',
  'max-ttl': 'the TTL cap on answers sent is not supported (max-cache-ttl is)',
  'no-ident': 'hadns does not answer CHAOS-class identity queries',
};

type Handler = (ctx: Importer, value: string | undefined, where: Where) => void;

class Importer {
  readonly diags = new Diagnostics();
  readonly files: string[] = [];
  private readonly stack: string[] = [];

  // Collected state; turned into config at the end so order of directives does not matter
  // (as in dnsmasq, where e.g. port= after listen-address= still applies).
  port = 53;
  portWhere?: Where;
  listen: string[] = [];
  interfaces: string[] = [];
  resolvFile: string | undefined;
  noResolv = false;
  strategy?: 'strict-order' | 'all-servers';
  strategyWhere?: Where;
  servers: string[] = [];
  forward = new Map<string, string[]>();
  localDomains: string[] = [];
  wildcards = new Map<string, { addresses: string[]; nx: boolean; where: Where }>();
  hostsFiles: string[] = [];
  noHosts = false;
  localTtl?: number;
  negTtl?: number;
  noNegcache = false;
  cacheSize?: number;
  minCacheTtl?: number;
  maxCacheTtl?: number;
  domainNeeded = false;
  bogusPriv = false;
  queryLog = false;
  maxInflight?: number;
  localService?: 'net' | 'host';
  staleMaxAge?: number;
  records: RecordInput[] = [];
  ptrDone = new Set<string>();
  mxPending: { name: string; target?: string; pref: number; where: Where }[] = [];
  mxTarget?: string;
  srvPending: { name: string; value: string; where: Where }[] = [];
  domain?: string;

  constructor(private readonly readFile: (p: string) => string) {}

  error(w: Where, msg: string, key?: string): void { this.diags.error(w.file, w.line, msg, key); }
  warn(w: Where, msg: string, key?: string): void { this.diags.warn(w.file, w.line, msg, key); }

  readConfFile(path: string, from?: Where): void {
    const abs = resolve(path);
    if (this.stack.includes(abs)) {
      this.error(from ?? { file: path, line: 1 }, `include loop: ${path} is already being read (${[...this.stack, abs].join(' -> ')})`);
      return;
    }
    if (this.stack.length >= MAX_INCLUDE_DEPTH) {
      this.error(from ?? { file: path, line: 1 }, `includes nested deeper than ${MAX_INCLUDE_DEPTH} levels`);
      return;
    }
    let text: string;
    try {
      text = this.readFile(path);
    } catch (e) {
      this.error(from ?? { file: path, line: 1 }, `cannot read ${path}: ${(e as Error).message}`);
      return;
    }
    this.parseText(path, text);
  }

  parseText(path: string, text: string): void {
    const abs = resolve(path);
    if (!this.files.includes(path)) this.files.push(path);
    this.stack.push(abs);
    try {
      const lines = text.split('\n');
      for (let i = 0; i < lines.length; i++) this.parseLine(lines[i], { file: path, line: i + 1 });
    } finally {
      this.stack.pop();
    }
  }

  private parseLine(raw: string, where: Where): void {
    const line = stripComment(raw);
    if (!line) return;
    const eq = line.indexOf('=');
    const name = (eq < 0 ? line : line.slice(0, eq)).trim();
    const value = eq < 0 ? undefined : line.slice(eq + 1).trim();
    if (!/^[a-z0-9-]+$/i.test(name)) {
      this.error(where, `cannot parse "${line}": expected "option" or "option=value"`);
      return;
    }
    const handler = HANDLERS[name];
    if (handler) { handler(this, value, where); return; }
    if (IGNORED[name] !== undefined) { this.warn(where, `ignored: ${name}: ${IGNORED[name]}`); return; }
    for (const [prefix, why] of IGNORED_PREFIX) {
      if (name.startsWith(prefix)) { this.warn(where, `ignored: ${name}: ${why}`); return; }
    }
    if (UNSUPPORTED[name]) { this.warn(where, `ignored: ${name}: ${UNSUPPORTED[name]}`); return; }
    this.error(where, `unknown directive "${name}"`);
  }

  // ---------- final assembly ----------

  build(): ConfigInput {
    if (this.port === 0) {
      // dnsmasq: port=0 turns DNS off and keeps only DHCP/TFTP. hadns has nothing to run for it.
      this.warn(this.portWhere!, 'port=0 disables DNS in dnsmasq; the imported config has no resolver', 'resolver');
      return {};
    }
    const r: ResolverInput = {};
    const p = this.port;
    if (this.localService === 'host') {
      r.listen = [endpointOf('127.0.0.1', p), endpointOf('::1', p)];
    } else if (this.listen.length || this.interfaces.length) {
      r.listen = this.listen.map((a) => endpointOf(a, p));
    } else {
      r.listen = [endpointOf('0.0.0.0', p), endpointOf('::', p)];
    }
    if (this.interfaces.length) {
      // dnsmasq adds the loopback interface whenever interface= is used.
      r.interfaces = this.interfaces.includes('lo') ? [...this.interfaces] : [...this.interfaces, 'lo'];
    }
    // dnsmasq answers anyone who reaches an address it was told to listen on; local-service only
    // applies when no listen-address/interface is given. hadns keeps that behaviour on import so a
    // routed client that dnsmasq served is not refused; with no listen options it keeps the
    // safe default (local-service), as Debian's dnsmasq does.
    if (this.localService === 'host') r.acl = ['127.0.0.0/8', '::1/128'];
    else if (this.listen.length || this.interfaces.length) r.acl = 'any';
    else r.acl = 'local-service';

    const hosts = this.noHosts ? [] : ['/etc/hosts'];
    r.hosts_files = [...hosts, ...this.hostsFiles];
    if (!this.noHosts && !this.files.includes('/etc/hosts')) this.files.push('/etc/hosts');
    if (this.localTtl !== undefined) r.local_ttl = this.localTtl;

    for (const m of this.mxPending) {
      let target = m.target ?? this.mxTarget;
      if (!target) {
        target = hostname();
        this.warn(m.where, `mx-host ${m.name}: no target given; using this machine's host name "${target}" as dnsmasq does`);
      }
      this.records.push({ name: m.name, type: 'MX', value: `${m.pref} ${target}` });
    }
    if (this.records.length) r.records = this.records;
    if (this.wildcards.size) {
      r.wildcards = [...this.wildcards].map(([domain, w]) => ({ domain, addresses: w.nx ? [] : w.addresses }));
    }
    if (this.localDomains.length) r.local_domains = this.localDomains;

    r.upstreams = {
      servers: this.servers,
      resolv_file: this.noResolv ? null : (this.resolvFile ?? '/etc/resolv.conf'),
      ...(this.strategy ? { strategy: this.strategy } : {}),
    };
    if (this.forward.size) r.forward = [...this.forward].map(([domain, servers]) => ({ domain, servers }));

    const cache: NonNullable<ResolverInput['cache']> = {};
    if (this.cacheSize !== undefined) cache.size = this.cacheSize;
    if (this.minCacheTtl !== undefined) cache.min_ttl = this.minCacheTtl;
    if (this.maxCacheTtl !== undefined) cache.max_ttl = this.maxCacheTtl;
    if (this.noNegcache) { cache.neg_ttl = 0; cache.neg_max_ttl = 0; }
    else if (this.negTtl !== undefined) cache.neg_ttl = this.negTtl;
    if (this.staleMaxAge !== undefined) cache.serve_stale = { enabled: true, max_age: this.staleMaxAge };
    if (Object.keys(cache).length) r.cache = cache;

    if (this.domainNeeded) r.domain_needed = true;
    if (this.bogusPriv) r.bogus_priv = true;
    if (this.maxInflight !== undefined) r.max_inflight = this.maxInflight;
    if (this.queryLog) r.query_log = true;
    return { resolver: r };
  }
}

// ---------- helpers for handlers ----------

function need(ctx: Importer, name: string, value: string | undefined, w: Where, what: string): string | null {
  if (value === undefined || value === '') { ctx.error(w, `${name}: a value is required (${what})`); return null; }
  return value;
}
function flag(name: string, set: (ctx: Importer, w: Where) => void): Handler {
  return (ctx, value, w) => {
    if (value !== undefined) ctx.warn(w, `${name} takes no value; "${value}" ignored`);
    set(ctx, w);
  };
}
function uint(name: string, key: string, set: (ctx: Importer, n: number, w: Where) => void, max = 2147483647): Handler {
  return (ctx, value, w) => {
    const v = need(ctx, name, value, w, `a whole number 0..${max}`);
    if (v === null) return;
    const n = parseUint(v, max);
    if (n === null) { ctx.error(w, `${name}: "${v}" is not a whole number 0..${max}`, key); return; }
    set(ctx, n, w);
  };
}

/** Splits "/a/b/rest" into domains and the rest (dnsmasq's server=/address= domain syntax). */
function splitDomains(ctx: Importer, name: string, value: string, w: Where): { domains: string[]; rest: string } | null {
  const last = value.lastIndexOf('/');
  const parts = value.slice(1, last).split('/');
  const rest = value.slice(last + 1);
  const domains: string[] = [];
  for (const raw of parts) {
    if (raw === '#') { domains.push('.'); continue; }
    if (raw === '') {
      // server=//ip is "names without a dot": no hadns counterpart (domain_needed covers the common use).
      ctx.warn(w, `ignored: ${name}: an empty domain (//, unqualified names) is not supported; use domain-needed to keep them local`);
      continue;
    }
    let d = raw;
    if (d.startsWith('*')) {
      ctx.warn(w, `${name}: "${raw}": the * prefix (match any name ending in the text) is not supported; treated as the domain ${normDomain(d.slice(1))} and its subdomains`);
      d = d.slice(1);
    }
    const n = normDomain(d);
    if (!isDomain(n)) { ctx.error(w, `${name}: "${raw}" is not a domain name (expected e.g. /corp.example/)`); return null; }
    domains.push(n);
  }
  return { domains, rest };
}

function addForward(ctx: Importer, domains: string[], servers: string[]): void {
  for (const d of domains) {
    const cur = ctx.forward.get(d);
    if (cur) { for (const s of servers) if (!cur.includes(s)) cur.push(s); }
    else ctx.forward.set(d, [...servers]);
  }
}
function addLocal(ctx: Importer, domains: string[]): void {
  for (const d of domains) if (!ctx.localDomains.includes(d)) ctx.localDomains.push(d);
}

/** "ip[#port][@interface|@source[#port]]" → the server, warning about the parts hadns drops. */
function serverAddr(ctx: Importer, name: string, s: string, w: Where): string | null {
  const [addr, ...ats] = s.split('@');
  if (ats.length) {
    ctx.warn(w, `${name}: "@${ats.join('@')}" ignored: hadns picks the source address and interface from the routing table`);
  }
  const a = parseServerAddr(addr.trim());
  if (!a) { ctx.error(w, `${name}: "${addr}" is not an upstream address (expected IP[#PORT], e.g. 192.0.2.53 or 192.0.2.53#5353)`); return null; }
  return serverString(a);
}

function serverLike(name: string): Handler {
  return (ctx, value, w) => {
    const v = need(ctx, name, value, w, 'IP[#PORT] or /DOMAIN/[IP[#PORT]]');
    if (v === null) return;
    if (!v.startsWith('/')) {
      // Plain server=ip: a default upstream. (local=ip is the same as server=ip in dnsmasq.)
      const s = serverAddr(ctx, name, v, w);
      if (s && !ctx.servers.includes(s)) ctx.servers.push(s);
      return;
    }
    const sd = splitDomains(ctx, name, v, w);
    if (!sd || !sd.domains.length) return;
    const rest = sd.rest.trim();
    if (rest === '') { addLocal(ctx, sd.domains); return; } // /dom/ alone: local only, never forwarded
    if (rest === '#') { addForward(ctx, sd.domains, []); return; } // /dom/#: the default upstreams
    const s = serverAddr(ctx, name, rest, w);
    if (s) addForward(ctx, sd.domains, [s]);
  };
}

const HANDLERS: Record<string, Handler> = {
  'port': uint('port', 'resolver.listen', (ctx, n, w) => { ctx.port = n; ctx.portWhere = w; }, 65535),
  'listen-address': (ctx, value, w) => {
    const v = need(ctx, 'listen-address', value, w, 'one or more IP addresses separated by commas');
    if (v === null) return;
    for (const a of splitFields(v)) {
      if (!isIP(a)) { ctx.error(w, `listen-address: "${a}" is not an IP address (expected IPv4 or IPv6 addresses separated by commas)`, 'resolver.listen'); continue; }
      if (!ctx.listen.includes(a)) ctx.listen.push(a);
    }
  },
  'interface': (ctx, value, w) => {
    const v = need(ctx, 'interface', value, w, 'an interface name');
    if (v === null) return;
    for (const i of splitFields(v)) if (i && !ctx.interfaces.includes(i)) ctx.interfaces.push(i);
  },
  'bind-interfaces': flag('bind-interfaces', (ctx, w) => ctx.warn(w, 'bind-interfaces: has no effect: hadns always binds each listen address itself')),
  'bind-dynamic': flag('bind-dynamic', (ctx, w) => ctx.warn(w, 'bind-dynamic: has no effect: hadns binds each listen address itself and re-reads interface addresses on reload')),
  'local-service': (ctx, value, w) => {
    if (value === undefined || value === 'net') ctx.localService = 'net';
    else if (value === 'host') ctx.localService = 'host';
    else ctx.error(w, `local-service: "${value}" is not allowed (expected no value, "net" or "host")`, 'resolver.acl');
  },
  'resolv-file': (ctx, value, w) => {
    const v = need(ctx, 'resolv-file', value, w, 'a file in resolv.conf format');
    if (v === null) return;
    if (ctx.resolvFile !== undefined && ctx.resolvFile !== v) {
      ctx.warn(w, `resolv-file: only one resolv-file is supported; "${v}" replaces "${ctx.resolvFile}"`, 'resolver.upstreams.resolv_file');
    }
    ctx.resolvFile = v;
  },
  'no-resolv': flag('no-resolv', (ctx) => { ctx.noResolv = true; }),
  'strict-order': flag('strict-order', (ctx, w) => setStrategy(ctx, 'strict-order', w)),
  'all-servers': flag('all-servers', (ctx, w) => setStrategy(ctx, 'all-servers', w)),
  'server': serverLike('server'),
  'local': serverLike('local'),
  'rev-server': (ctx, value, w) => {
    const v = need(ctx, 'rev-server', value, w, 'IP[/PREFIX][,SERVER[#PORT]]');
    if (v === null) return;
    const [net, server, ...more] = splitFields(v);
    if (more.length) { ctx.error(w, `rev-server: too many fields in "${v}" (expected IP[/PREFIX][,SERVER[#PORT]])`); return; }
    const [ip, lenS] = net.split('/');
    const fam = isIP(ip);
    const maxLen = fam === 4 ? 32 : 128;
    const len = lenS === undefined ? maxLen : parseUint(lenS, maxLen);
    if (!fam || len === null || len < 1) {
      ctx.error(w, `rev-server: "${net}" is not an address prefix (expected e.g. 192.168.0.0/24 or 2001:db8::/32)`);
      return;
    }
    const zones = reverseZones(ip, len);
    if (server === undefined || server === '') { addLocal(ctx, zones); return; }
    const s = serverAddr(ctx, 'rev-server', server, w);
    if (s) addForward(ctx, zones, [s]);
  },
  'address': (ctx, value, w) => {
    const v = need(ctx, 'address', value, w, '/DOMAIN/[/DOMAIN...]/[IP|#]');
    if (v === null) return;
    if (!v.startsWith('/') || v.lastIndexOf('/') === 0) {
      ctx.error(w, `address: "${v}" is not of the form /DOMAIN/[IP] (e.g. address=/ads.example/0.0.0.0, address=/blocked.example/)`, 'resolver.wildcards');
      return;
    }
    const sd = splitDomains(ctx, 'address', v, w);
    if (!sd || !sd.domains.length) return;
    const rest = sd.rest.trim();
    let addrs: string[];
    if (rest === '') addrs = [];
    else if (rest === '#') addrs = ['0.0.0.0', '::'];
    else if (isIP(rest)) addrs = [rest];
    else { ctx.error(w, `address: "${rest}" is not an IP address (expected IPv4, IPv6, "#" for 0.0.0.0 and ::, or nothing for NXDOMAIN)`, 'resolver.wildcards'); return; }
    for (const d of sd.domains) {
      const cur = ctx.wildcards.get(d);
      if (!cur) { ctx.wildcards.set(d, { addresses: [...addrs], nx: addrs.length === 0, where: w }); continue; }
      if (cur.nx !== (addrs.length === 0)) {
        // dnsmasq answers NXDOMAIN for the domain once any /dom/ line without an address is present.
        ctx.warn(w, `address: ${d} is both NXDOMAIN (address=/${d}/) and has addresses; it stays NXDOMAIN`, 'resolver.wildcards');
        cur.nx = true;
      }
      for (const a of addrs) if (!cur.addresses.includes(a)) cur.addresses.push(a);
    }
  },
  'no-hosts': flag('no-hosts', (ctx) => { ctx.noHosts = true; }),
  'addn-hosts': (ctx, value, w) => {
    const v = need(ctx, 'addn-hosts', value, w, 'a hosts-format file or a directory of them');
    if (v === null) return;
    if (!ctx.hostsFiles.includes(v)) ctx.hostsFiles.push(v);
    if (!ctx.files.includes(v)) ctx.files.push(v);
  },
  'hostsdir': (ctx, value, w) => {
    const v = need(ctx, 'hostsdir', value, w, 'a directory of hosts-format files');
    if (v === null) return;
    if (!ctx.hostsFiles.includes(v)) ctx.hostsFiles.push(v);
    if (!ctx.files.includes(v)) ctx.files.push(v);
  },
  'local-ttl': uint('local-ttl', 'resolver.local_ttl', (ctx, n) => { ctx.localTtl = n; }),
  'neg-ttl': uint('neg-ttl', 'resolver.cache.neg_ttl', (ctx, n) => { ctx.negTtl = n; }),
  'no-negcache': flag('no-negcache', (ctx) => { ctx.noNegcache = true; }),
  'cache-size': uint('cache-size', 'resolver.cache.size', (ctx, n) => { ctx.cacheSize = n; }),
  'min-cache-ttl': uint('min-cache-ttl', 'resolver.cache.min_ttl', (ctx, n, w) => {
    if (n > MIN_CACHE_TTL_CAP) {
      ctx.warn(w, `min-cache-ttl: ${n} is above dnsmasq's limit; capped at ${MIN_CACHE_TTL_CAP} as dnsmasq does`, 'resolver.cache.min_ttl');
      n = MIN_CACHE_TTL_CAP;
    }
    ctx.minCacheTtl = n;
  }),
  'max-cache-ttl': uint('max-cache-ttl', 'resolver.cache.max_ttl', (ctx, n) => { ctx.maxCacheTtl = n; }),
  'use-stale-cache': (ctx, value, w) => {
    if (value === undefined) { ctx.staleMaxAge = 86400; return; }
    const n = parseUint(value);
    if (n === null) { ctx.error(w, `use-stale-cache: "${value}" is not a whole number of seconds`, 'resolver.cache.serve_stale.max_age'); return; }
    ctx.staleMaxAge = n;
  },
  'domain-needed': flag('domain-needed', (ctx) => { ctx.domainNeeded = true; }),
  'bogus-priv': flag('bogus-priv', (ctx) => { ctx.bogusPriv = true; }),
  'log-queries': (ctx, value, w) => {
    if (value !== undefined && value !== 'extra' && value !== 'proto' && value !== 'auth') {
      ctx.error(w, `log-queries: "${value}" is not allowed (expected no value, "extra", "proto" or "auth")`, 'resolver.query_log');
      return;
    }
    ctx.queryLog = true;
  },
  'dns-forward-max': uint('dns-forward-max', 'resolver.max_inflight', (ctx, n, w) => {
    if (n < 1) { ctx.error(w, 'dns-forward-max: must be at least 1', 'resolver.max_inflight'); return; }
    ctx.maxInflight = n;
  }),
  'conf-file': (ctx, value, w) => {
    const v = need(ctx, 'conf-file', value, w, 'a file to include');
    if (v === null) return;
    ctx.readConfFile(v, w);
  },
  'conf-dir': (ctx, value, w) => confDir(ctx, value, w),
  'host-record': hostRecord,
  'cname': cname,
  'txt-record': (ctx, value, w) => {
    const v = need(ctx, 'txt-record', value, w, 'NAME[,"TEXT"...]');
    if (v === null) return;
    const [name, ...texts] = splitFields(v);
    if (!isDomain(name)) { ctx.error(w, `txt-record: "${name}" is not a domain name`, 'resolver.records'); return; }
    // dnsmasq splits strings over 255 bytes into 255-byte chunks; a record with no text has one empty string.
    const chunks = (texts.length ? texts : ['']).flatMap((t) => {
      const out: string[] = [];
      for (let i = 0; i < t.length; i += 255) out.push(t.slice(i, i + 255));
      return out.length ? out : [''];
    });
    ctx.records.push({ name: normDomain(name), type: 'TXT', value: chunks.length === 1 ? chunks[0] : chunks });
  },
  'mx-host': (ctx, value, w) => {
    const v = need(ctx, 'mx-host', value, w, 'NAME[[,TARGET],PREFERENCE]');
    if (v === null) return;
    const f = splitFields(v);
    if (f.length > 3) { ctx.error(w, `mx-host: too many fields (expected NAME[[,TARGET],PREFERENCE])`, 'resolver.records'); return; }
    const name = f[0];
    if (!isDomain(name)) { ctx.error(w, `mx-host: "${name}" is not a domain name`, 'resolver.records'); return; }
    let target: string | undefined;
    let pref = 1; // dnsmasq's default preference
    // NAME,TARGET,PREF | NAME,TARGET | NAME,PREF (a lone number is the preference) | NAME
    let targetS = f[1] ?? '';
    let prefS = f[2] ?? '';
    if (f.length === 2 && /^\d+$/.test(targetS)) { prefS = targetS; targetS = ''; }
    if (targetS !== '') {
      if (!isDomain(targetS)) { ctx.error(w, `mx-host: "${targetS}" is not a host name (expected NAME[[,TARGET],PREFERENCE])`, 'resolver.records'); return; }
      target = normDomain(targetS);
    }
    if (prefS !== '') {
      const n = parseUint(prefS, 65535);
      if (n === null) { ctx.error(w, `mx-host: preference "${prefS}" is not a whole number 0..65535`, 'resolver.records'); return; }
      pref = n;
    }
    ctx.mxPending.push({ name: normDomain(name), target, pref, where: w });
  },
  'mx-target': (ctx, value, w) => {
    const v = need(ctx, 'mx-target', value, w, 'a host name');
    if (v === null) return;
    if (!isDomain(v)) { ctx.error(w, `mx-target: "${v}" is not a host name`); return; }
    ctx.mxTarget = normDomain(v);
    ctx.warn(w, 'mx-target: used as the target of mx-host lines without one; the automatic MX for this machine\'s own name is not created');
  },
  'srv-host': (ctx, value, w) => {
    const v = need(ctx, 'srv-host', value, w, '_SERVICE._PROTO.DOMAIN[,TARGET[,PORT[,PRIORITY[,WEIGHT]]]]');
    if (v === null) return;
    const f = splitFields(v);
    if (f.length > 5) { ctx.error(w, 'srv-host: too many fields (expected _SERVICE._PROTO.DOMAIN[,TARGET[,PORT[,PRIORITY[,WEIGHT]]]])', 'resolver.records'); return; }
    let name = normDomain(f[0]);
    if (!isDomain(name)) { ctx.error(w, `srv-host: "${f[0]}" is not a name like _ldap._tcp.corp.example`, 'resolver.records'); return; }
    if (name.split('.').length <= 2) {
      // _svc._proto with no domain: dnsmasq appends the domain= value.
      if (!ctx.domain) { ctx.error(w, `srv-host: "${f[0]}" has no domain and no domain= is set`, 'resolver.records'); return; }
      name = `${name}.${ctx.domain}`;
    }
    const target = f[1] ? normDomain(f[1]) : '.'; // no target: "service not available" (target ".")
    if (f[1] && !isDomain(target)) { ctx.error(w, `srv-host: "${f[1]}" is not a host name`, 'resolver.records'); return; }
    const nums: number[] = [];
    const labels = ['port', 'priority', 'weight'];
    const defaults = [1, 0, 0]; // dnsmasq: port 1, priority 0, weight 0
    for (let i = 0; i < 3; i++) {
      const x = f[2 + i];
      if (x === undefined || x === '') { nums.push(defaults[i]); continue; }
      const n = parseUint(x, 65535);
      if (n === null) { ctx.error(w, `srv-host: ${labels[i]} "${x}" is not 0..65535`, 'resolver.records'); return; }
      nums.push(n);
    }
    const [port, prio, weight] = nums;
    ctx.records.push({ name, type: 'SRV', value: `${prio} ${weight} ${port} ${target}` });
  },
  'ptr-record': (ctx, value, w) => {
    const v = need(ctx, 'ptr-record', value, w, 'NAME[,TARGET]');
    if (v === null) return;
    const [name, target, ...more] = splitFields(v);
    if (more.length) { ctx.error(w, 'ptr-record: too many fields (expected NAME[,TARGET])', 'resolver.records'); return; }
    if (!isDomain(name)) { ctx.error(w, `ptr-record: "${name}" is not a domain name`, 'resolver.records'); return; }
    if (target && !isDomain(target)) { ctx.error(w, `ptr-record: "${target}" is not a domain name`, 'resolver.records'); return; }
    // dnsmasq answers a ptr-record without a target with a PTR to the root (".").
    ctx.records.push({ name: normDomain(name), type: 'PTR', value: target ? normDomain(target) : '.' });
  },
  'domain': (ctx, value, w) => {
    const f = value ? splitFields(value) : [];
    const d = f[0] ? normDomain(f[0]) : '';
    if (d && !isDomain(d)) { ctx.error(w, `domain: "${f[0]}" is not a domain name`); return; }
    // The first plain domain completes srv-host names given without one.
    if (d && !ctx.domain) ctx.domain = d;
    if (f[2] === 'local' && f[1]) {
      // domain=DOM,PREFIX,local is dnsmasq shorthand for local=/DOM/ plus local= for the reverse zone.
      const [ip, lenS] = f[1].split('/');
      const fam = isIP(ip);
      const len = lenS === undefined ? NaN : parseUint(lenS, fam === 4 ? 32 : 128);
      if (!fam || len === null || Number.isNaN(len) || len < 1) {
        ctx.error(w, `domain: "${f[1]}" is not an address prefix (expected DOMAIN,PREFIX,local, e.g. lan,192.168.0.0/24,local)`);
        return;
      }
      addLocal(ctx, [d, ...reverseZones(ip, len)]);
      return;
    }
    ctx.warn(w, `ignored: domain: ${IGNORED['domain']}`);
  },
};

function setStrategy(ctx: Importer, s: 'strict-order' | 'all-servers', w: Where): void {
  if (ctx.strategy && ctx.strategy !== s) {
    ctx.warn(w, `${s}: also ${ctx.strategy} at ${ctx.strategyWhere!.file}:${ctx.strategyWhere!.line}; the last one (${s}) is used`, 'resolver.upstreams.strategy');
  }
  ctx.strategy = s;
  ctx.strategyWhere = w;
}

function hostRecord(ctx: Importer, value: string | undefined, w: Where): void {
  const v = need(ctx, 'host-record', value, w, 'NAME[,NAME...],[IPV4],[IPV6][,TTL]');
  if (v === null) return;
  const f = splitFields(v).filter((x) => x !== '');
  let ttl: number | undefined;
  // A trailing plain number is the TTL (a name cannot be all digits in practice, as in dnsmasq).
  if (f.length > 1 && /^\d+$/.test(f[f.length - 1])) {
    const n = parseUint(f.pop()!);
    if (n === null) { ctx.error(w, 'host-record: TTL must be 0..2147483647', 'resolver.records'); return; }
    ttl = n;
  }
  const names: string[] = [];
  const addrs: string[] = [];
  for (const x of f) {
    if (isIP(x)) addrs.push(x);
    else if (isDomain(x) && !/^[\d.]+$/.test(x)) names.push(normDomain(x));
    else { ctx.error(w, `host-record: "${x}" is neither a host name nor an IP address (expected NAME[,NAME...],[IPV4],[IPV6][,TTL])`, 'resolver.records'); return; }
  }
  if (!names.length || !addrs.length) {
    ctx.error(w, 'host-record: needs at least one name and one address (NAME[,NAME...],[IPV4],[IPV6][,TTL])', 'resolver.records');
    return;
  }
  const t = ttl === undefined ? {} : { ttl };
  for (const a of addrs) {
    for (const n of names) ctx.records.push({ name: n, type: isIP(a) === 4 ? 'A' : 'AAAA', value: a, ...t });
  }
  // PTR: the first host-record naming an address owns its PTR, pointing at its first name
  // (checked against dnsmasq 2.90).
  for (const a of addrs) {
    const rev = reverseName(a);
    if (ctx.ptrDone.has(rev)) continue;
    ctx.ptrDone.add(rev);
    ctx.records.push({ name: rev, type: 'PTR', value: names[0], ...t });
  }
}

function cname(ctx: Importer, value: string | undefined, w: Where): void {
  const v = need(ctx, 'cname', value, w, 'ALIAS[,ALIAS...],TARGET[,TTL]');
  if (v === null) return;
  const f = splitFields(v).filter((x) => x !== '');
  let ttl: number | undefined;
  if (f.length > 2 && /^\d+$/.test(f[f.length - 1])) ttl = parseUint(f.pop()!) ?? undefined;
  if (f.length < 2) { ctx.error(w, 'cname: needs an alias and a target (ALIAS[,ALIAS...],TARGET[,TTL])', 'resolver.records'); return; }
  for (const x of f) {
    if (!isDomain(x)) { ctx.error(w, `cname: "${x}" is not a domain name (expected ALIAS[,ALIAS...],TARGET[,TTL])`, 'resolver.records'); return; }
  }
  const target = normDomain(f.pop()!);
  for (const a of f) {
    const name = normDomain(a);
    if (ctx.records.some((r) => r.type === 'CNAME' && r.name === name)) {
      ctx.error(w, `cname: ${name} already has a CNAME (an alias must be unique)`, 'resolver.records');
      continue;
    }
    ctx.records.push({ name, type: 'CNAME', value: target, ...(ttl === undefined ? {} : { ttl }) });
  }
}

function confDir(ctx: Importer, value: string | undefined, w: Where): void {
  const v = need(ctx, 'conf-dir', value, w, 'DIRECTORY[,.EXT...] or DIRECTORY,*.EXT');
  if (v === null) return;
  const [dir, ...exts] = splitFields(v);
  const include = exts.filter((e) => e.startsWith('*')).map((e) => e.slice(1));
  const exclude = exts.filter((e) => e && !e.startsWith('*'));
  let names: string[];
  try {
    names = readdirSync(dir, { withFileTypes: true }).filter((d) => !d.isDirectory()).map((d) => d.name);
  } catch (e) {
    ctx.error(w, `conf-dir: cannot read directory ${dir}: ${(e as Error).message}`);
    return;
  }
  // dnsmasq's rules: always skip editor/backup files (~, .hidden, #autosave#); "*.ext" fields
  // select, other fields exclude; alphabetical order.
  names = names.filter((n) => !n.endsWith('~') && !n.startsWith('.') && !(n.startsWith('#') && n.endsWith('#')))
    .filter((n) => !exclude.some((e) => n.endsWith(e)))
    .filter((n) => include.length === 0 || include.some((e) => n.endsWith(e)))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (!ctx.files.includes(dir)) ctx.files.push(dir);
  for (const n of names) ctx.readConfFile(join(dir, basename(n)), w);
}

/**
 * Imports a dnsmasq.conf. `text` (when given) is the content of `path`; `readFile` reads includes
 * (and `path` when `text` is absent).
 */
export function importDnsmasq(path: string, text?: string, readFile?: (p: string) => string): DnsmasqImport {
  const read = readFile ?? ((p) => readFileSync(p, 'utf8'));
  const imp = new Importer(read);
  if (text === undefined) {
    try {
      text = read(path);
    } catch (e) {
      // Nothing to import: no config at all rather than one made of defaults.
      return { config: {}, diagnostics: [{ file: path, line: 1, severity: 'error', message: `cannot read: ${(e as Error).message}` }], files: [] };
    }
  }
  imp.parseText(path, text);
  return { config: imp.build(), diagnostics: imp.diags.items, files: imp.files };
}
