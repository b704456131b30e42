/**
 * nginx.conf importer: the `stream {}` block becomes hadns's `balancer:` section, so
 * `hadns start --nginx FILE` runs an existing nginx stream setup and `hadns import --nginx FILE`
 * converts it. Pure apart from reading the file and its includes.
 *
 * Hand-written tokenizer (no maintained JS parser for nginx syntax exists that keeps line
 * numbers through `include`): words separated by blanks, `;` ends a directive, `{ }` blocks,
 * `#` comments (at the start of a word), single or double quotes with backslash escapes.
 *
 * What maps:
 *  - `upstream NAME { server ADDR weight= max_fails= fail_timeout= backup down; least_conn;
 *    hash $remote_addr [consistent]; random [two [least_conn]]; }` → a pool;
 *  - `server { listen [ADDR:]PORT [udp] [reuseport]; proxy_pass NAME|ADDR; proxy_timeout;
 *    proxy_connect_timeout; proxy_responses; proxy_next_upstream[_tries|_timeout];
 *    proxy_protocol; }` → a service (stream-level proxy_* settings are inherited, as in nginx);
 *  - the mode is `dns` when a listener or backend uses port 53 (per-query DNS balancing
 *    instead of nginx's per-session UDP), else the listeners' transport.
 * What is reported: worker_processes, events {}, http {} and the other main-context settings
 * as not applicable (warning, file:line); stream directives hadns does not need (logging,
 * buffers, zone) as ignored (warning); an unknown stream directive or a bad value is an error.
 * Values nginx.conf does not set keep hadns's defaults (e.g. max_fails 3, connect 1 s), which
 * docs/balancer.md lists.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { Diagnostics, type Diagnostic } from '../diagnostics.js';
import { balancerSectionSchema, parseDuration, splitHostPort, type BalancerSectionInput, type ServiceInput } from '../../balancer/config.js';
import type { PolicyName } from '../../balancer/policy.js';

export interface NginxImport {
  balancer: BalancerSectionInput;
  diagnostics: Diagnostic[];
}

interface Word { text: string; line: number; file: string; quoted: boolean }
export interface Directive {
  name: string;
  args: Word[];
  line: number;
  file: string;
  block?: Directive[];
}

// ------------------------------------------------------------------ tokenizer and parser

/** Splits nginx syntax into words and the punctuation `;`, `{`, `}` (as unquoted words). */
export function tokenize(text: string, file: string, diags: Diagnostics): Word[] {
  const out: Word[] = [];
  let line = 1;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i];
    if (c === '\n') { line++; i++; continue; }
    if (c === ' ' || c === '\t' || c === '\r') { i++; continue; }
    if (c === '#') { while (i < n && text[i] !== '\n') i++; continue; }
    if (c === ';' || c === '{' || c === '}') { out.push({ text: c, line, file, quoted: false }); i++; continue; }
    if (c === '"' || c === "'") {
      const startLine = line;
      let s = '';
      i++;
      while (i < n && text[i] !== c) {
        if (text[i] === '\\' && i + 1 < n) { s += text[i + 1]; if (text[i + 1] === '\n') line++; i += 2; continue; }
        if (text[i] === '\n') line++;
        s += text[i++];
      }
      if (i >= n) { diags.error(file, startLine, 'unterminated quoted string'); break; }
      i++;
      out.push({ text: s, line: startLine, file, quoted: true });
      continue;
    }
    let s = '';
    while (i < n && !/[\s;{}]/.test(text[i])) {
      if (text[i] === '\\' && i + 1 < n) { s += text[i + 1]; i += 2; continue; }
      s += text[i++];
    }
    out.push({ text: s, line, file, quoted: false });
  }
  return out;
}

/**
 * Builds the directive tree; `include` is expanded in place (glob `*` relative to the main
 * file), except inside blocks that are not imported (http, events, mail), whose includes
 * (mime.types …) need not exist here.
 */
export function parse(words: Word[], diags: Diagnostics, baseDir: string, depth = 0): Directive[] {
  let pos = 0;
  const block = (closing: boolean, expand: boolean): Directive[] => {
    const list: Directive[] = [];
    while (pos < words.length) {
      const w = words[pos];
      if (!w.quoted && w.text === '}') {
        if (!closing) diags.error(w.file, w.line, 'unexpected "}"');
        pos++;
        if (closing) return list;
        continue;
      }
      if (!w.quoted && (w.text === ';' || w.text === '{')) { diags.error(w.file, w.line, `unexpected "${w.text}"`); pos++; continue; }
      const d: Directive = { name: w.text, args: [], line: w.line, file: w.file };
      pos++;
      while (pos < words.length && (words[pos].quoted || !';{}'.includes(words[pos].text))) d.args.push(words[pos++]);
      const end = words[pos];
      if (end === undefined) { diags.error(w.file, w.line, `directive "${d.name}" has no ending ";"`); return list; }
      pos++;
      if (end.text === '{') d.block = block(true, expand && !NOT_IMPORTED_BLOCKS.has(d.name));
      else if (end.text === '}') { diags.error(end.file, end.line, `directive "${d.name}" has no ending ";"`); if (closing) return list; }
      if (d.name === 'include' && !d.block && expand) list.push(...expandInclude(d, diags, baseDir, depth));
      else list.push(d);
    }
    if (closing) diags.error(words.length ? words[words.length - 1].file : '', words.length ? words[words.length - 1].line : 0, 'unexpected end of file, expecting "}"');
    return list;
  };
  return block(false, true);
}

const NOT_IMPORTED_BLOCKS = new Set(['http', 'events', 'mail']);

function expandInclude(d: Directive, diags: Diagnostics, baseDir: string, depth: number): Directive[] {
  if (d.args.length !== 1) { diags.error(d.file, d.line, 'include takes one file name or pattern'); return []; }
  if (depth > 16) { diags.error(d.file, d.line, 'include nested too deeply (a loop?)'); return []; }
  const pattern = isAbsolute(d.args[0].text) ? d.args[0].text : join(baseDir, d.args[0].text);
  let files: string[];
  if (pattern.includes('*') || pattern.includes('?')) {
    const dir = dirname(pattern);
    const re = new RegExp(`^${basename(pattern).replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
    try { files = readdirSync(dir).filter((f) => re.test(f)).sort().map((f) => join(dir, f)); } catch { files = []; }
  } else files = [pattern];
  const out: Directive[] = [];
  for (const f of files) {
    let text: string;
    try { text = readFileSync(f, 'utf8'); } catch (e) {
      diags.error(d.file, d.line, `cannot read included file ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      continue;
    }
    out.push(...parse(tokenize(text, f, diags), diags, baseDir, depth + 1));
  }
  return out;
}

// ------------------------------------------------------------------ interpretation

/** Main-context directives that configure nginx itself: meaningless for hadns. */
const MAIN_NOT_APPLICABLE = new Set([
  'worker_processes', 'user', 'pid', 'error_log', 'worker_rlimit_nofile', 'worker_cpu_affinity', 'worker_priority',
  'worker_shutdown_timeout', 'daemon', 'master_process', 'load_module', 'env', 'thread_pool', 'timer_resolution',
  'lock_file', 'pcre_jit', 'ssl_engine', 'working_directory', 'worker_rlimit_core', 'debug_points',
]);
/** Stream directives with no hadns equivalent that change nothing about where traffic goes. */
const STREAM_IGNORED = new Set([
  'access_log', 'error_log', 'log_format', 'open_log_file_cache', 'tcp_nodelay', 'proxy_buffer_size', 'proxy_download_rate',
  'proxy_upload_rate', 'preread_buffer_size', 'preread_timeout', 'proxy_half_close', 'proxy_socket_keepalive',
  'resolver', 'resolver_timeout', 'variables_hash_max_size', 'variables_hash_bucket_size', 'limit_conn_log_level',
  'proxy_requests', 'proxy_bind', 'proxy_ssl', 'proxy_ssl_verify',
]);
const UPSTREAM_IGNORED = new Set(['zone', 'state', 'resolver', 'resolver_timeout']);

/** proxy_* settings that nginx inherits from `stream` into each `server`. */
interface ProxySettings {
  timeout?: string;
  connectTimeout?: string;
  responses?: number;
  nextUpstream?: boolean;
  nextTries?: number;
  nextTimeout?: string;
  proxyProtocol?: boolean;
}

interface Upstream { name: string; line: number; file: string; policy: PolicyName; backends: NonNullable<ServiceInput['pool']>['backends'] }

export function importNginx(path: string, text?: string): NginxImport {
  const diags = new Diagnostics();
  let src = text;
  if (src === undefined) {
    try { src = readFileSync(path, 'utf8'); } catch (e) {
      diags.error(path, 0, `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      return { balancer: { services: [] }, diagnostics: diags.items };
    }
  }
  const tree = parse(tokenize(src, path, diags), diags, dirname(path));
  const services: ServiceInput[] = [];
  let streams = 0;
  for (const d of tree) {
    if (d.name === 'stream') {
      streams++;
      if (!d.block) { diags.error(d.file, d.line, 'stream must be a block'); continue; }
      services.push(...importStream(d.block, diags));
    } else if (d.name === 'events' || d.name === 'http' || d.name === 'mail') {
      diags.warn(d.file, d.line, `${d.name} {} is not applicable to hadns (only stream {} is imported); ignored`);
    } else if (MAIN_NOT_APPLICABLE.has(d.name)) {
      diags.warn(d.file, d.line, `${d.name} is not applicable to hadns (one event loop, no worker processes); ignored`);
    } else {
      diags.warn(d.file, d.line, `unknown main-context directive "${d.name}"; ignored`);
    }
  }
  if (streams === 0) diags.warn(path, 1, 'no stream {} block: nothing to balance');
  const balancer: BalancerSectionInput = { services };
  // Whatever the importer produced must be a valid native section; report where it came from.
  const check = balancerSectionSchema.safeParse(balancer);
  if (!check.success) {
    for (const issue of check.error.issues) {
      const si = typeof issue.path[1] === 'number' ? issue.path[1] : -1;
      const origin = si >= 0 ? serviceOrigin.get(services[si]) : undefined;
      diags.error(origin?.file ?? path, origin?.line ?? 0, `${issue.path.join('.')}: ${issue.message}`, `balancer.${issue.path.join('.')}`);
    }
  }
  return { balancer, diagnostics: diags.items };
}

const serviceOrigin = new WeakMap<object, { file: string; line: number }>();

function num(w: Word | undefined, d: Directive, diags: Diagnostics, what: string): number | undefined {
  if (!w || !/^\d+$/.test(w.text)) { diags.error(d.file, d.line, `${what}: expected a number, got "${w?.text ?? ''}"`); return undefined; }
  return Number(w.text);
}

/** nginx time: "20s", "1m30s", "500ms", bare number = seconds. Returned as a hadns duration string. */
function time(text: string, d: Directive, diags: Diagnostics): string | undefined {
  const ms = parseDuration(text, 's');
  if (!Number.isFinite(ms)) { diags.error(d.file, d.line, `${d.name}: invalid time "${text}"`); return undefined; }
  return /^\d+$/.test(text) ? `${text}s` : text;
}

function onOff(d: Directive, diags: Diagnostics): boolean | undefined {
  const v = d.args[0]?.text;
  if (d.args.length !== 1 || (v !== 'on' && v !== 'off')) { diags.error(d.file, d.line, `${d.name}: expected on or off`); return undefined; }
  return v === 'on';
}

/** Handles a proxy_* setting (stream or server level); false when `d` is not one. */
function proxySetting(d: Directive, s: ProxySettings, diags: Diagnostics): boolean {
  const a = d.args[0]?.text ?? '';
  switch (d.name) {
    case 'proxy_timeout': s.timeout = time(a, d, diags); return true;
    case 'proxy_connect_timeout': s.connectTimeout = time(a, d, diags); return true;
    case 'proxy_responses': s.responses = num(d.args[0], d, diags, d.name); return true;
    case 'proxy_next_upstream': s.nextUpstream = onOff(d, diags); return true;
    case 'proxy_next_upstream_tries': s.nextTries = num(d.args[0], d, diags, d.name); return true;
    case 'proxy_next_upstream_timeout': s.nextTimeout = time(a, d, diags); return true;
    case 'proxy_protocol': s.proxyProtocol = onOff(d, diags); return true;
    default: return false;
  }
}

function importStream(block: Directive[], diags: Diagnostics): ServiceInput[] {
  const upstreams = new Map<string, Upstream>();
  const defaults: ProxySettings = {};
  const servers: Directive[] = [];
  for (const d of block) {
    if (d.name === 'upstream') {
      const name = d.args[0]?.text;
      if (!name || !d.block) { diags.error(d.file, d.line, 'upstream needs a name and a block'); continue; }
      if (upstreams.has(name)) { diags.error(d.file, d.line, `duplicate upstream "${name}"`); continue; }
      upstreams.set(name, importUpstream(name, d, diags));
    } else if (d.name === 'server') {
      if (!d.block) { diags.error(d.file, d.line, 'server in stream must be a block'); continue; }
      servers.push(d);
    } else if (proxySetting(d, defaults, diags)) {
      // inherited by every server below
    } else if (STREAM_IGNORED.has(d.name) || d.name.startsWith('ssl_') || d.name.startsWith('limit_conn') || d.name === 'map' || d.name === 'geo' || d.name === 'split_clients') {
      diags.warn(d.file, d.line, `${d.name} has no hadns equivalent; ignored`);
    } else {
      diags.error(d.file, d.line, `unknown directive "${d.name}" in stream`);
    }
  }
  const out: ServiceInput[] = [];
  const names = new Map<string, number>();
  for (const srv of servers) {
    const svc = importServer(srv, upstreams, defaults, diags);
    if (!svc) continue;
    const seen = names.get(svc.name) ?? 0;
    names.set(svc.name, seen + 1);
    if (seen > 0) svc.name = `${svc.name}-${seen + 1}`;
    serviceOrigin.set(svc, { file: srv.file, line: srv.line });
    out.push(svc);
  }
  for (const u of upstreams.values()) {
    if (!servers.some((s) => s.block!.some((d) => d.name === 'proxy_pass' && d.args[0]?.text === u.name))) {
      diags.warn(u.file, u.line, `upstream "${u.name}" is not used by any server`);
    }
  }
  return out;
}

function importUpstream(name: string, u: Directive, diags: Diagnostics): Upstream {
  const up: Upstream = { name, line: u.line, file: u.file, policy: 'round-robin', backends: [] };
  for (const d of u.block!) {
    switch (d.name) {
      case 'server': {
        const addr = d.args[0]?.text;
        if (!addr) { diags.error(d.file, d.line, 'server needs an address'); break; }
        let address: string;
        try {
          if (addr.startsWith('unix:')) throw new Error('unix sockets are not supported');
          const hp = splitHostPort(addr); // stream upstream servers always carry a port
          if (hp.port === 0) throw new Error(`server ${addr}: port 0`);
          address = hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
        } catch (e) { diags.error(d.file, d.line, (e as Error).message); break; }
        const b: NonNullable<ServiceInput['pool']>['backends'][number] = { address };
        for (const p of d.args.slice(1)) {
          const [k, v] = p.text.split('=', 2);
          if (k === 'weight' && v !== undefined) b.weight = Number(v);
          else if (k === 'max_fails' && v !== undefined) b.max_fails = Number(v);
          else if (k === 'fail_timeout' && v !== undefined) b.fail_timeout = time(v, d, diags);
          else if (k === 'backup' && v === undefined) b.backup = true;
          else if (k === 'down' && v === undefined) b.down = true;
          else if (k === 'max_conns' || k === 'resolve' || k === 'service' || k === 'slow_start') {
            diags.warn(d.file, d.line, `server parameter ${k} is not supported; ignored`);
          } else { diags.error(d.file, d.line, `unknown server parameter "${p.text}"`); continue; }
          if ((k === 'weight' || k === 'max_fails') && !/^\d+$/.test(v ?? '')) diags.error(d.file, d.line, `${k}: expected a number, got "${v}"`);
        }
        up.backends.push(b);
        break;
      }
      case 'least_conn': up.policy = 'least-conn'; break;
      case 'hash': {
        const key = d.args[0]?.text;
        const consistent = d.args[1]?.text === 'consistent';
        if (key !== '$remote_addr' && key !== '$binary_remote_addr') diags.warn(d.file, d.line, `hash ${key}: hadns hashes the client address`);
        if (!consistent) diags.warn(d.file, d.line, 'hash without "consistent": hadns always uses a consistent-hash ring');
        up.policy = 'hash';
        break;
      }
      case 'random': {
        if (d.args[0]?.text !== 'two') diags.warn(d.file, d.line, 'random without "two": hadns uses random with two choices');
        if (d.args[1] && d.args[1].text !== 'least_conn') diags.warn(d.file, d.line, `random two ${d.args[1].text}: hadns compares active connections`);
        up.policy = 'random-two';
        break;
      }
      default:
        if (UPSTREAM_IGNORED.has(d.name)) diags.warn(d.file, d.line, `${d.name} has no hadns equivalent; ignored`);
        else diags.error(d.file, d.line, `unknown directive "${d.name}" in upstream`);
    }
  }
  if (up.policy === 'hash' && up.backends.some((b) => b.backup)) diags.warn(u.file, u.line, 'nginx does not allow backup with hash; hadns honours it');
  return up;
}

function importServer(srv: Directive, upstreams: Map<string, Upstream>, inherited: ProxySettings, diags: Diagnostics): ServiceInput | null {
  const s: ProxySettings = { ...inherited };
  const listen: string[] = [];
  const ports: number[] = [];
  let pass: Directive | undefined;
  let reuse = false;
  for (const d of srv.block!) {
    if (d.name === 'listen') {
      const a = d.args[0]?.text;
      if (!a) { diags.error(d.file, d.line, 'listen needs an address or port'); continue; }
      let udp = false;
      for (const p of d.args.slice(1)) {
        if (p.text === 'udp') udp = true;
        else if (p.text === 'reuseport') reuse = true;
        else if (p.text === 'ssl') diags.error(d.file, d.line, 'listen ... ssl: TLS termination is not supported by hadns');
        else if (p.text === 'proxy_protocol') diags.error(d.file, d.line, 'listen ... proxy_protocol (accepting PROXY headers from clients) is not supported');
        else if (/^(backlog|rcvbuf|sndbuf|bind|ipv6only|so_keepalive|fastopen|deferred)(=|$)/.test(p.text)) diags.warn(d.file, d.line, `listen parameter ${p.text} ignored`);
        else diags.error(d.file, d.line, `unknown listen parameter "${p.text}"`);
      }
      try {
        const hp = splitHostPort(a);
        ports.push(hp.port);
        const host = hp.host.includes(':') ? `[${hp.host}]` : hp.host;
        listen.push(`${udp ? 'udp' : 'tcp'}://${host}:${hp.port}`);
      } catch (e) { diags.error(d.file, d.line, `listen ${a}: ${(e as Error).message}`); }
    } else if (d.name === 'proxy_pass') {
      pass = d;
    } else if (proxySetting(d, s, diags)) {
      // applied below
    } else if (STREAM_IGNORED.has(d.name) || d.name.startsWith('ssl_') || d.name.startsWith('limit_conn') || d.name === 'allow' || d.name === 'deny' || d.name === 'set') {
      diags.warn(d.file, d.line, `${d.name} has no hadns equivalent here; ignored`);
    } else {
      diags.error(d.file, d.line, `unknown directive "${d.name}" in stream server`);
    }
  }
  if (listen.length === 0) { diags.error(srv.file, srv.line, 'stream server without listen'); return null; }
  if (!pass) { diags.error(srv.file, srv.line, 'stream server without proxy_pass'); return null; }
  const target = pass.args[0]?.text ?? '';
  let up = upstreams.get(target);
  if (!up) {
    try {
      const hp = splitHostPort(target);
      up = { name: `${hp.host}:${hp.port}`, line: pass.line, file: pass.file, policy: 'round-robin', backends: [{ address: target }] };
    } catch {
      diags.error(pass.file, pass.line, `proxy_pass ${target}: no such upstream and not an IP:port`);
      return null;
    }
  }
  if (target.includes('$')) diags.error(pass.file, pass.line, 'proxy_pass with variables is not supported');
  const backendPorts = up.backends.map((b) => { try { return splitHostPort(b.address).port; } catch { return 0; } });
  const udpOnly = listen.every((l) => l.startsWith('udp://'));
  const tcpOnly = listen.every((l) => l.startsWith('tcp://'));
  const mode = ports.includes(53) || backendPorts.includes(53) ? 'dns' : udpOnly ? 'udp' : tcpOnly ? 'tcp' : undefined;
  if (mode === undefined) {
    diags.error(srv.file, srv.line, 'a server listening on both udp and tcp must be DNS (port 53); split it into two servers');
    return null;
  }
  if (mode === 'dns' && s.responses !== undefined) {
    diags.warn(srv.file, srv.line, 'proxy_responses: DNS mode balances per query (one answer each); ignored');
  }
  const svc: ServiceInput = {
    name: up.name,
    mode,
    listen: reuse ? listen.map((l) => {
      const m = /^(udp|tcp):\/\/(.+)$/.exec(l)!;
      const hp = splitHostPort(m[2]);
      return { proto: m[1] as 'udp' | 'tcp', address: hp.host, port: hp.port, reuseport: true };
    }) : listen,
    pool: { policy: up.policy, backends: up.backends },
  };
  const timeouts: Record<string, string> = {};
  if (s.timeout) timeouts.proxy = s.timeout;
  if (s.connectTimeout) timeouts.connect = s.connectTimeout;
  if (Object.keys(timeouts).length) svc.timeouts = timeouts;
  if (s.responses !== undefined && mode === 'udp') svc.udp = { responses: s.responses };
  const nu: Record<string, unknown> = {};
  if (s.nextUpstream !== undefined) nu.enabled = s.nextUpstream;
  if (s.nextTries !== undefined) nu.tries = s.nextTries;
  if (s.nextTimeout !== undefined) nu.timeout = s.nextTimeout;
  if (Object.keys(nu).length) svc.next_upstream = nu;
  if (s.proxyProtocol) {
    if (mode === 'tcp') svc.tcp = { proxy_protocol: 'v1' };
    else diags.warn(srv.file, srv.line, 'proxy_protocol applies to TCP backends only; ignored');
  }
  return svc;
}
