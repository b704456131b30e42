/**
 * Loading configuration: native YAML (validated by the schema, errors with file, line and key)
 * and the legacy formats through their importers, all ending in one validated `Config`.
 */
import { readFileSync } from 'node:fs';
import { isMap, LineCounter, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import { configSchema, type Config, type ConfigInput } from './schema.js';
import { ConfigError, Diagnostics, type Diagnostic } from './diagnostics.js';
import { importDnsmasq } from './legacy/dnsmasq.js';
import { importNginx } from './legacy/nginx.js';
import { importKeepalived } from './legacy/keepalived.js';

export interface Sources {
  config?: string;
  dnsmasq?: string;
  nginx?: string;
  keepalived?: string;
}

export interface Loaded {
  config: Config;
  /** Warnings (and nothing else) — errors throw ConfigError. */
  diagnostics: Diagnostic[];
  /** Files the config was built from (watched for reload). */
  files: string[];
}

/** The embedded default: one node, resolver on 127.0.0.1:5353 and [::1]:5353, upstreams from resolv.conf. */
export const DEFAULT_CONFIG_YAML = `# hadns embedded default configuration (hadns start without --config)
node:
  name: hadns
resolver:
  listen: ["127.0.0.1:5353", "[::1]:5353"]
  upstreams:
    resolv_file: /etc/resolv.conf
  local_ttl: 60
  records:
    - { name: hadns.example.internal, type: A, value: 127.0.0.1 }
    - { name: hadns.example.internal, type: AAAA, value: "::1" }
    - { name: www.example.internal, type: CNAME, value: hadns.example.internal }
    - { name: example.internal, type: TXT, value: "served by hadns" }
`;

function pathKey(path: readonly PropertyKey[]): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[');
}

/** Line of the YAML node at `path` (or of its nearest existing parent). */
function lineOf(doc: Document, lc: LineCounter, path: readonly PropertyKey[]): number {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n) as unknown[], true) as { range?: [number, number, number] } | undefined;
    if (node && node.range) {
      // For a key that exists, point at the key of the pair when we can.
      if (n === path.length && n > 0) {
        const parent = doc.getIn(path.slice(0, n - 1) as unknown[], true);
        if (isMap(parent)) {
          const pair = parent.items.find((it) => String((it.key as { value?: unknown })?.value) === String(path[n - 1]));
          const kr = (pair?.key as { range?: [number, number, number] } | undefined)?.range;
          if (kr) return lc.linePos(kr[0]).line;
        }
      }
      return lc.linePos(node.range[0]).line;
    }
  }
  return 1;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  if (issue.code === 'invalid_value') return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  if (issue.code === 'invalid_union') {
    const msgs = new Set<string>();
    for (const branch of issue.errors) for (const e of branch) msgs.add(describeIssue(e));
    // A discriminated union whose discriminator matches no branch has no branch errors at all
    // (zod lists the allowed values instead): `auth: { type: PASS }` used to say nothing.
    const options = (issue as { options?: unknown[] }).options;
    if (msgs.size === 0 && options?.length) return `must be one of ${options.map((v) => JSON.stringify(v)).join(', ')}`;
    if (msgs.size > 0) return [...msgs].join('; or ');
  }
  return issue.message || 'invalid value';
}

/** Validates a config object; `locate` maps a key path to a line. */
export function validate(input: unknown, file: string, locate: (path: readonly PropertyKey[]) => number): { config?: Config; diagnostics: Diagnostic[] } {
  const r = configSchema.safeParse(input ?? {});
  if (r.success) return { config: r.data, diagnostics: [] };
  const diags = r.error.issues.map((issue) => {
    let path = issue.path;
    // For unknown keys, point at the offending key itself.
    if (issue.code === 'unrecognized_keys' && issue.keys.length) path = [...path, issue.keys[0]];
    return {
      file, line: locate(path), severity: 'error' as const,
      key: pathKey(issue.path) || '(top level)', message: describeIssue(issue),
    };
  });
  return { diagnostics: diags };
}

/** Parses and validates native YAML text. */
export function parseNative(text: string, file: string): { config?: Config; raw?: ConfigInput; diagnostics: Diagnostic[] } {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const diags: Diagnostic[] = [];
  for (const e of doc.errors) {
    diags.push({ file, line: lc.linePos(e.pos[0]).line, severity: 'error', message: `YAML: ${e.message.split('\n')[0]}` });
  }
  for (const w of doc.warnings) {
    diags.push({ file, line: lc.linePos(w.pos[0]).line, severity: 'warning', message: `YAML: ${w.message.split('\n')[0]}` });
  }
  if (diags.some((d) => d.severity === 'error')) return { diagnostics: diags };
  const raw = (doc.toJS() ?? {}) as ConfigInput;
  const v = validate(raw, file, (p) => lineOf(doc, lc, p));
  return { config: v.config, raw, diagnostics: [...diags, ...v.diagnostics] };
}

/** Deep merge for combining a native file with imported sections: objects merge, arrays concatenate. */
function merge(a: unknown, b: unknown): unknown {
  if (Array.isArray(a) && Array.isArray(b)) return [...a, ...b];
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const out: Record<string, unknown> = { ...(a as Record<string, unknown>) };
    for (const [k, v] of Object.entries(b as Record<string, unknown>)) out[k] = k in out ? merge(out[k], v) : v;
    return out;
  }
  return b === undefined ? a : b;
}

/**
 * Loads the configuration from the given sources (none → the embedded default).
 * Throws ConfigError with every error; returns warnings alongside the config.
 */
export function loadConfig(sources: Sources, readFile: (p: string) => string = (p) => readFileSync(p, 'utf8')): Loaded {
  const diags = new Diagnostics();
  const files: string[] = [];
  let input: unknown = {};
  let primaryFile = '<default>';
  const legacy = !!(sources.dnsmasq || sources.nginx || sources.keepalived);
  const nothingGiven = !sources.config && !legacy;

  if (sources.config || nothingGiven) {
    const file = sources.config ?? '<default>';
    primaryFile = file;
    let text: string;
    try {
      text = sources.config ? readFile(sources.config) : DEFAULT_CONFIG_YAML;
    } catch (e) {
      diags.error(file, 1, `cannot read: ${(e as Error).message}`);
      throw new ConfigError(diags.items);
    }
    if (sources.config) files.push(sources.config);
    const r = parseNative(text, file);
    diags.items.push(...r.diagnostics);
    if (!r.raw) throw new ConfigError(diags.items);
    if (!legacy) {
      if (!r.config) throw new ConfigError(diags.items);
      return { config: r.config, diagnostics: diags.warnings, files };
    }
    input = r.raw;
  }
  if (sources.dnsmasq) {
    const imp = importDnsmasq(sources.dnsmasq, undefined, readFile);
    diags.items.push(...imp.diagnostics);
    files.push(...imp.files);
    if (!sources.config) primaryFile = sources.dnsmasq;
    input = merge(input, imp.config);
  }
  if (sources.nginx) {
    const imp = importNginx(sources.nginx);
    diags.items.push(...imp.diagnostics);
    files.push(sources.nginx);
    if (!sources.config && !sources.dnsmasq) primaryFile = sources.nginx;
    input = merge(input, { balancer: imp.balancer });
  }
  if (sources.keepalived) {
    const imp = importKeepalived(sources.keepalived);
    diags.items.push(...imp.diagnostics);
    files.push(sources.keepalived);
    if (!sources.config && !sources.dnsmasq && !sources.nginx) primaryFile = sources.keepalived;
    input = merge(input, { vrrp: imp.vrrp });
  }
  if (diags.hasErrors) throw new ConfigError(diags.items);
  const v = validate(input, primaryFile, () => 1);
  diags.items.push(...v.diagnostics);
  if (!v.config || diags.hasErrors) throw new ConfigError(diags.items);
  return { config: v.config, diagnostics: diags.warnings, files };
}
