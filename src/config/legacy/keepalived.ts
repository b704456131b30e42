/**
 * keepalived.conf importer → the native `vrrp:` section (input form, see src/vrrp/config.ts).
 *
 * Hand-written: no npm package parses keepalived's configuration language. keepalived's syntax is
 * line based: a line is a keyword and its arguments; `{` opens a block for the statement it ends
 * (or, alone on a line, for the statement before it); `}` closes one. `!` and `#` start comments.
 * Blocks like `unicast_peer { … }` and `virtual_ipaddress { … }` hold one item per line.
 * `include FILE|GLOB` splices other files in, relative to the including file's directory.
 *
 * Pure apart from reading included files. Every diagnostic names file:line. Out-of-scope features
 * (LVS virtual_server, SMTP alerts, sync groups …) are warnings; unknown keywords are errors.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, basename, resolve } from 'node:path';
import { isIP } from 'node:net';
import { Diagnostics, type Diagnostic } from '../diagnostics.js';
import { vrrpSectionSchema, type VrrpSectionInput } from '../../vrrp/config.js';

// ------------------------------------------------------------------ tokenizer + tree

export interface KaNode {
  key: string;
  args: string[];
  children?: KaNode[];
  file: string;
  line: number;
}

interface Token { text: string; quoted: boolean }

/** Splits one line into tokens; quotes group words; comments end the line. */
function lineTokens(line: string, onSlashComment: () => void): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < line.length) {
    const c = line[i]!;
    if (c === ' ' || c === '\t' || c === '\r') { i++; continue; }
    if (c === '!' || c === '#') break;
    if (c === '/' && line[i + 1] === '/') {
      // Not keepalived syntax, but common in pasted configs (the article annotates lines this way):
      // keepalived would take the words as extra arguments; we drop them and say so.
      onSlashComment();
      break;
    }
    if (c === '{' || c === '}') { out.push({ text: c, quoted: false }); i++; continue; }
    if (c === '"') {
      const end = line.indexOf('"', i + 1);
      const text = end < 0 ? line.slice(i + 1) : line.slice(i + 1, end);
      out.push({ text, quoted: true });
      i = end < 0 ? line.length : end + 1;
      continue;
    }
    let j = i;
    while (j < line.length && !' \t\r{}"'.includes(line[j]!)) j++;
    out.push({ text: line.slice(i, j), quoted: false });
    i = j;
  }
  return out;
}

/** Simple glob (only `*` and `?` in the last path component), as keepalived's include allows. */
function expandInclude(pattern: string, fromDir: string): string[] {
  const abs = resolve(fromDir, pattern);
  const base = basename(abs);
  if (!/[*?]/.test(base)) return [abs];
  const re = new RegExp(`^${base.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  try {
    return readdirSync(dirname(abs)).filter((f) => re.test(f)).sort().map((f) => join(dirname(abs), f));
  } catch {
    return [];
  }
}

/** Parses keepalived.conf text (and its includes) into a tree of statements. */
export function parseKeepalivedTree(file: string, text: string, diags: Diagnostics, depth = 0): KaNode[] {
  const root: KaNode[] = [];
  const stack: KaNode[][] = [root];
  let warnedSlash = false;
  const lines = text.split('\n');
  lines.forEach((raw, idx) => {
    const lineNo = idx + 1;
    const toks = lineTokens(raw, () => {
      if (!warnedSlash) diags.warn(file, lineNo, "'//' is not a keepalived comment; the rest of the line is ignored (first of possibly several)");
      warnedSlash = true;
    });
    let cur: KaNode | undefined;
    const flush = () => {
      if (cur) { stack[stack.length - 1]!.push(cur); }
      cur = undefined;
    };
    for (const t of toks) {
      if (!t.quoted && t.text === '{') {
        let owner = cur;
        if (owner) flush();
        else owner = stack[stack.length - 1]!.at(-1); // `{` on its own line opens the previous statement
        if (!owner || owner.children) { diags.error(file, lineNo, "'{' without a statement to open"); continue; }
        owner.children = [];
        stack.push(owner.children);
      } else if (!t.quoted && t.text === '}') {
        flush();
        if (stack.length === 1) diags.error(file, lineNo, "unmatched '}'");
        else stack.pop();
      } else if (!cur) {
        cur = { key: t.text, args: [], file, line: lineNo };
      } else {
        cur.args.push(t.text);
      }
    }
    flush();
    // include is handled here so included statements land in the current block.
    const level = stack[stack.length - 1]!;
    const last = level.at(-1);
    if (last && last.key === 'include' && last.line === lineNo && last.file === file && !last.children) {
      level.pop();
      if (depth > 8) { diags.error(file, lineNo, 'include nested too deeply'); return; }
      const targets = last.args.flatMap((p) => expandInclude(p, dirname(file)));
      if (!targets.length) diags.warn(file, lineNo, `include ${last.args.join(' ')} matched no file`);
      for (const t of targets) {
        let inc: string;
        try { inc = readFileSync(t, 'utf8'); } catch (e) { diags.error(file, lineNo, `cannot read include ${t}: ${(e as Error).message}`); continue; }
        level.push(...parseKeepalivedTree(t, inc, diags, depth + 1));
      }
    }
  });
  if (stack.length > 1) diags.error(file, lines.length, `${stack.length - 1} unclosed '{'`);
  return root;
}

// ------------------------------------------------------------------ mapping

/** Features that exist in keepalived but are not hadns's job: warnings, not errors. */
const OUT_OF_SCOPE_TOP: Record<string, string> = {
  virtual_server: 'LVS virtual_server is out of scope (hadns balances DNS itself: see the balancer section)',
  virtual_server_group: 'LVS virtual_server_group is out of scope',
  vrrp_sync_group: 'vrrp_sync_group is not supported: instances fail over independently',
  static_ipaddress: 'static_ipaddress is out of scope (configure host addresses with the OS)',
  static_routes: 'static_routes is out of scope',
  static_rules: 'static_rules is out of scope',
  garp_group: 'garp_group is not supported; use per-instance garp settings',
  linkbeat_interfaces: 'linkbeat_interfaces is not needed: hadns reads interface state itself',
  vrrp_track_process: 'vrrp_track_process is not supported; use a vrrp_script',
  vrrp_track_file: 'vrrp_track_file is not supported; use a vrrp_script',
  track_file: 'track_file is not supported; use a vrrp_script',
  bfd_instance: 'BFD is out of scope',
};

const GLOBAL_IGNORED: Record<string, string> = {
  notification_email: 'SMTP alerts are out of scope (use notify hooks)',
  notification_email_from: 'SMTP alerts are out of scope',
  smtp_server: 'SMTP alerts are out of scope',
  smtp_connect_timeout: 'SMTP alerts are out of scope',
  smtp_helo_name: 'SMTP alerts are out of scope',
  smtp_alert: 'SMTP alerts are out of scope',
  smtp_alert_vrrp: 'SMTP alerts are out of scope',
  smtp_alert_checker: 'SMTP alerts are out of scope',
  enable_script_security: 'scripts run as the hadns user; script security settings are ignored',
  script_user: 'scripts run as the hadns user; script_user is ignored',
  vrrp_skip_check_adv_addr: 'ignored: hadns only logs a differing address list (RFC behaviour)',
  vrrp_strict: 'vrrp_strict is ignored (hadns always follows the RFC checks it implements)',
  vrrp_iptables: 'vrrp_iptables is ignored: hadns installs no firewall rules',
  vrrp_ipsets: 'vrrp_ipsets is ignored',
  vrrp_mcast_group4: 'a non-standard multicast group is not supported; 224.0.0.18 is used',
  vrrp_mcast_group6: 'a non-standard multicast group is not supported; ff02::12 is used',
  vrrp_check_unicast_src: 'ignored: with unicast peers hadns always drops adverts from non-peers',
  lvs_id: 'LVS is out of scope',
  lvs_sync_daemon: 'LVS is out of scope',
  lvs_timeouts: 'LVS is out of scope',
  lvs_flush: 'LVS is out of scope',
  dynamic_interfaces: 'dynamic_interfaces is ignored',
  max_auto_priority: 'ignored: the VRRP engine has its own process, at real-time priority 10 when permitted (HADNS_VRRP_RT)',
  vrrp_no_swap: 'ignored', checker_no_swap: 'ignored', vrrp_priority: 'ignored', checker_priority: 'ignored',
  vrrp_rt_priority: 'ignored: the VRRP engine runs at real-time priority 10 when permitted (HADNS_VRRP_RT sets another)',
  checker_rt_priority: 'ignored (no checker process; DNS\'s event loop: node.realtime_priority)', process_names: 'ignored',
  vrrp_higher_prio_send_advert: 'ignored: a master hearing a lower-priority advert always answers at once',
  vrrp_lower_prio_no_advert: 'ignored: a master hearing a lower-priority advert always answers at once',
  vrrp_garp_interval: 'ignored; use garp.interval per instance',
  vrrp_gna_interval: 'ignored; use garp.interval per instance',
};

const INSTANCE_IGNORED: Record<string, string> = {
  smtp_alert: 'SMTP alerts are out of scope (use notify hooks)',
  dont_track_primary: 'dont_track_primary is ignored: the instance interface is always tracked',
  use_vmac: 'use_vmac is not supported: hadns uses the interface MAC (like keepalived without use_vmac)',
  vmac_xmit_base: 'vmac_xmit_base is not supported',
  native_ipv6: 'native_ipv6 is implied by IPv6 virtual addresses',
  accept: 'accept mode is ignored (the kernel answers for the VIP once it is configured)',
  no_accept: 'no_accept is ignored',
  virtual_ipaddress_excluded: 'virtual_ipaddress_excluded is not supported; list the addresses under virtual_ipaddress',
  virtual_routes: 'virtual_routes is out of scope',
  virtual_rules: 'virtual_rules is out of scope',
  track_process: 'track_process is not supported; use a vrrp_script',
  track_file: 'track_file is not supported; use a vrrp_script',
  track_bfd: 'BFD is out of scope',
  lvs_sync_daemon_interface: 'LVS is out of scope',
  mcast_src_ip: 'mcast_src_ip is not supported: the interface primary address is used for multicast',
  strict_mode: 'strict_mode is ignored',
  skip_check_adv_addr: 'ignored: hadns only logs a differing address list',
  debug: 'ignored',
  notify_master_rx_lower_pri: 'notify_master_rx_lower_pri is not supported',
  kernel_rt_priority: 'ignored',
  garp_lower_prio_delay: 'garp_lower_prio_delay is not supported (lower-priority GARPs are sent at once)',
  unicast_ttl: 'unicast_ttl is not supported: adverts always carry TTL 255',
  check_unicast_src: 'ignored: with unicast peers hadns always drops adverts from non-peers',
};

type InstIn = NonNullable<VrrpSectionInput['instances']>[number];
type ScriptIn = NonNullable<VrrpSectionInput['scripts']>[string];

export interface KeepalivedImport {
  vrrp: VrrpSectionInput;
  diagnostics: Diagnostic[];
}

/**
 * Imports keepalived.conf at `path` (or `text` given as its content) into a `vrrp:` section.
 * The result is validated against the schema; problems are returned as diagnostics with file:line.
 */
export function importKeepalived(path: string, text?: string): KeepalivedImport {
  const d = new Diagnostics();
  let src = text;
  if (src === undefined) {
    try { src = readFileSync(path, 'utf8'); } catch (e) {
      d.error(path, 0, `cannot read: ${(e as Error).message}`);
      return { vrrp: { instances: [], scripts: {} }, diagnostics: d.items };
    }
  }
  const tree = parseKeepalivedTree(path, src, d);
  const vrrp: VrrpSectionInput = { instances: [], scripts: {} };
  const instLines: KaNode[] = [];
  const globals: { version?: 2 | 3; garp: Record<string, number> } = { garp: {} };

  const int = (n: KaNode, min: number, max: number, idx = 0): number | undefined => {
    const v = n.args[idx];
    if (v === undefined || !/^-?\d+$/.test(v) || Number(v) < min || Number(v) > max) {
      d.error(n.file, n.line, `${n.key}: expected an integer ${min}..${max}, got ${v ?? 'nothing'}`);
      return undefined;
    }
    return Number(v);
  };
  const num = (n: KaNode, min: number, max: number): number | undefined => {
    const v = n.args[0];
    if (v === undefined || !/^\d+(\.\d+)?$/.test(v) || Number(v) < min || Number(v) > max) {
      d.error(n.file, n.line, `${n.key}: expected a number ${min}..${max}, got ${v ?? 'nothing'}`);
      return undefined;
    }
    return Number(v);
  };
  const one = (n: KaNode): string | undefined => {
    if (!n.args.length) { d.error(n.file, n.line, `${n.key}: missing value`); return undefined; }
    return n.args[0];
  };
  const noBlock = (n: KaNode) => { if (n.children) d.error(n.file, n.line, `${n.key} does not take a block`); };
  const garpKey = (n: KaNode, out: Record<string, number>, prefix = ''): boolean => {
    const map: Record<string, [string, number, number, boolean]> = {
      [`${prefix}garp_master_delay`]: ['master_delay', 0, 3600, false],
      [`${prefix}garp_master_repeat`]: ['master_repeat', 1, 255, true],
      [`${prefix}garp_master_refresh`]: ['master_refresh', 0, 86400, false],
      [`${prefix}garp_master_refresh_repeat`]: ['master_refresh_repeat', 1, 255, true],
      [`${prefix}garp_lower_prio_repeat`]: ['lower_prio_repeat', 0, 255, true],
      [`${prefix}garp_interval`]: ['interval', 0, 60, false],
    };
    const m = map[n.key];
    if (!m) return false;
    const v = m[3] ? int(n, m[1], m[2]) : num(n, m[1], m[2]);
    if (v !== undefined) out[m[0]] = v;
    return true;
  };

  for (const n of tree) {
    switch (n.key) {
      case 'global_defs':
        for (const g of n.children ?? []) {
          if (g.key === 'router_id') { const v = one(g); if (v) vrrp.router_id = v; }
          else if (g.key === 'vrrp_version') { const v = int(g, 2, 3); if (v) globals.version = v as 2 | 3; }
          else if (garpKey(g, globals.garp, 'vrrp_')) { /* handled */ }
          else if (g.key in GLOBAL_IGNORED) d.warn(g.file, g.line, `${g.key}: ${GLOBAL_IGNORED[g.key]}`);
          else d.error(g.file, g.line, `unknown global_defs keyword '${g.key}'`);
        }
        break;
      case 'vrrp_instance': {
        const inst = mapInstance(n);
        if (inst) { vrrp.instances!.push(inst); instLines.push(n); }
        break;
      }
      case 'vrrp_script': {
        const name = n.args[0];
        if (!name) { d.error(n.file, n.line, 'vrrp_script needs a name'); break; }
        const s: Partial<ScriptIn> = {};
        for (const c of n.children ?? []) {
          switch (c.key) {
            case 'script': s.script = c.args.join(' '); break;
            case 'interval': { const v = num(c, 0.01, 86400); if (v !== undefined) s.interval = v; break; }
            case 'timeout': { const v = num(c, 0, 86400); if (v !== undefined) s.timeout = v; break; }
            case 'weight': { const v = int(c, -254, 254); if (v !== undefined) s.weight = v; if (c.args[1] === 'reverse') d.warn(c.file, c.line, 'weight … reverse is not supported'); break; }
            case 'rise': { const v = int(c, 1, 1000); if (v !== undefined) s.rise = v; break; }
            case 'fall': { const v = int(c, 1, 1000); if (v !== undefined) s.fall = v; break; }
            case 'user': d.warn(c.file, c.line, 'user: scripts run as the hadns user'); break;
            case 'init_fail': d.warn(c.file, c.line, 'init_fail is ignored: a script counts from its first result'); break;
            default: d.error(c.file, c.line, `unknown vrrp_script keyword '${c.key}'`);
          }
        }
        if (!s.script) d.error(n.file, n.line, `vrrp_script ${name} has no script`);
        else vrrp.scripts![name] = s as ScriptIn;
        break;
      }
      default:
        if (n.key in OUT_OF_SCOPE_TOP) d.warn(n.file, n.line, OUT_OF_SCOPE_TOP[n.key]!);
        else d.error(n.file, n.line, `unknown keyword '${n.key}'`);
    }
  }

  function mapInstance(n: KaNode): InstIn | undefined {
    const name = n.args[0];
    if (!name) { d.error(n.file, n.line, 'vrrp_instance needs a name'); return undefined; }
    const inst: Partial<InstIn> & { name: string } = { name };
    const garp: Record<string, number> = { ...globals.garp };
    const notify: Record<string, string> = {};
    if (globals.version) inst.version = globals.version;
    for (const c of n.children ?? []) {
      switch (c.key) {
        case 'state': {
          const v = c.args[0]?.toUpperCase();
          if (v === 'MASTER' || v === 'BACKUP') inst.state = v;
          else d.error(c.file, c.line, `state must be MASTER or BACKUP, got ${c.args[0] ?? 'nothing'}`);
          noBlock(c);
          break;
        }
        case 'interface': { const v = one(c); if (v) inst.interface = v; noBlock(c); break; }
        case 'virtual_router_id': { const v = int(c, 1, 255); if (v !== undefined) inst.vrid = v; break; }
        case 'priority': { const v = int(c, 1, 255); if (v !== undefined) inst.priority = v; break; }
        case 'advert_int': { const v = num(c, 0.01, 255); if (v !== undefined) inst.advert_int = v; break; }
        case 'version': { const v = int(c, 2, 3); if (v !== undefined) inst.version = v as 2 | 3; break; }
        case 'nopreempt': inst.preempt = false; break;
        case 'preempt': inst.preempt = true; break;
        case 'preempt_delay': { const v = num(c, 0, 1000); if (v !== undefined) inst.preempt_delay = v; break; }
        case 'unicast_src_ip': {
          const v = one(c);
          if (v && isIP(v)) inst.unicast_src_ip = v; else if (v) d.error(c.file, c.line, `unicast_src_ip: not an address: ${v}`);
          break;
        }
        case 'unicast_peer': {
          const peers: string[] = [];
          for (const p of c.children ?? []) {
            if (!isIP(p.key)) { d.error(p.file, p.line, `unicast_peer: not an address: ${p.key}`); continue; }
            if (p.args.length) d.warn(p.file, p.line, `unicast_peer options ignored: ${p.args.join(' ')}`);
            peers.push(p.key);
          }
          if (!c.children) d.error(c.file, c.line, 'unicast_peer needs a { … } block');
          inst.unicast_peers = peers;
          break;
        }
        case 'authentication': {
          let type: string | undefined, pass: string | undefined, passNode: KaNode | undefined;
          for (const a of c.children ?? []) {
            if (a.key === 'auth_type') type = a.args[0]?.toUpperCase();
            else if (a.key === 'auth_pass') { pass = a.args[0]; passNode = a; }
            else d.error(a.file, a.line, `unknown authentication keyword '${a.key}'`);
          }
          if (type === 'PASS') {
            if (!pass) { d.error(c.file, c.line, 'auth_type PASS needs auth_pass'); break; }
            if (Buffer.byteLength(pass) > 8) {
              // keepalived uses the first 8 bytes; do the same so the pair still interoperates.
              d.warn(passNode!.file, passNode!.line, 'auth_pass longer than 8 bytes: only the first 8 are used (as keepalived does)');
              pass = Buffer.from(pass).subarray(0, 8).toString('utf8');
            }
            inst.auth = { type: 'pass', password: pass };
          } else if (type === 'AH') {
            d.error(c.file, c.line, 'auth_type AH is not supported (deprecated by RFC 3768 errata); use PASS for keepalived peers or hmac between hadns nodes');
          } else {
            d.error(c.file, c.line, `auth_type must be PASS or AH, got ${type ?? 'nothing'}`);
          }
          break;
        }
        case 'virtual_ipaddress': {
          const vas: InstIn['virtual_addresses'] = [];
          for (const v of c.children ?? []) {
            const addr = v.key;
            if (!isIP(addr.split('/')[0]!)) { d.error(v.file, v.line, `virtual_ipaddress: not an address: ${addr}`); continue; }
            const va: { address: string; dev?: string; label?: string } = { address: addr };
            for (let i = 0; i < v.args.length; i++) {
              const k = v.args[i]!, val = v.args[i + 1];
              if ((k === 'dev' || k === 'label') && val) { va[k] = val; i++; }
              else if (['brd', 'broadcast', 'scope', 'metric', 'preferred_lft', 'valid_lft'].includes(k) && val) { d.warn(v.file, v.line, `virtual_ipaddress option ${k} ignored`); i++; }
              else if (['no_track', 'home', '-nodad', 'nodad', 'noprefixroute', 'autojoin'].includes(k)) d.warn(v.file, v.line, `virtual_ipaddress option ${k} ignored`);
              else { d.error(v.file, v.line, `unknown virtual_ipaddress option '${k}'`); if (val && !['dev', 'label'].includes(val)) i++; }
            }
            vas.push(va);
          }
          if (!c.children) d.error(c.file, c.line, 'virtual_ipaddress needs a { … } block');
          inst.virtual_addresses = vas;
          break;
        }
        case 'track_interface':
          inst.track_interfaces = (c.children ?? []).map((t) => {
            const w = t.args[0] === 'weight' ? int(t, -254, 254, 1) : undefined;
            if (t.args.length && t.args[0] !== 'weight') d.error(t.file, t.line, `track_interface: unexpected '${t.args.join(' ')}'`);
            return w !== undefined ? { name: t.key, weight: w } : { name: t.key };
          });
          break;
        case 'track_script':
          inst.track_scripts = (c.children ?? []).map((t) => {
            const w = t.args[0] === 'weight' ? int(t, -254, 254, 1) : undefined;
            if (t.args.length && t.args[0] !== 'weight') d.error(t.file, t.line, `track_script: unexpected '${t.args.join(' ')}'`);
            return w !== undefined ? { name: t.key, weight: w } : { name: t.key };
          });
          break;
        case 'notify_master': case 'notify_backup': case 'notify_fault': case 'notify_stop': case 'notify': {
          const cmd = c.args.join(' ');
          if (!cmd) { d.error(c.file, c.line, `${c.key}: missing script`); break; }
          notify[c.key === 'notify' ? 'any' : c.key.slice('notify_'.length)] = cmd;
          break;
        }
        default:
          if (garpKey(c, garp)) break;
          if (c.key in INSTANCE_IGNORED) d.warn(c.file, c.line, `${c.key}: ${INSTANCE_IGNORED[c.key]}`);
          else d.error(c.file, c.line, `unknown vrrp_instance keyword '${c.key}'`);
      }
    }
    if (Object.keys(garp).length) inst.garp = garp as InstIn['garp'];
    if (Object.keys(notify).length) inst.notify = notify;
    // v2's advert_int is whole seconds on the wire; keepalived rounds fractional values for v2.
    if ((inst.version ?? 2) === 2 && inst.advert_int !== undefined && !Number.isInteger(inst.advert_int)) {
      d.warn(n.file, n.line, `advert_int ${inst.advert_int} rounded to whole seconds for VRRPv2`);
      inst.advert_int = Math.max(1, Math.round(inst.advert_int));
    }
    for (const [k, what] of [['interface', 'interface'], ['vrid', 'virtual_router_id'], ['virtual_addresses', 'virtual_ipaddress']] as const) {
      if (inst[k] === undefined) d.error(n.file, n.line, `vrrp_instance ${name}: missing ${what}`);
    }
    return inst as InstIn;
  }

  // Schema check: report what the native config would reject, at the instance's line.
  if (!d.hasErrors) {
    const r = vrrpSectionSchema.safeParse(vrrp);
    if (!r.success) {
      for (const issue of r.error.issues) {
        const i = issue.path[0] === 'instances' && typeof issue.path[1] === 'number' ? instLines[issue.path[1]] : undefined;
        d.error(i?.file ?? path, i?.line ?? 1, issue.message, `vrrp.${issue.path.join('.')}`);
      }
    }
  }
  return { vrrp, diagnostics: d.items };
}
