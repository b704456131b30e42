/**
 * `hadns status`: the console's picture in a terminal, read from a running node's API.
 * Kept here (not in cli/) so the API client and the console describe the node the same way.
 */
import type { NodeEvent, NodeStatus } from '../node/view.js';
import { parseApiListen, API_DEFAULT_PORT, type ApiConfig } from './config.js';
import { loadToken } from './auth.js';
import { balancerServices, vrrpInstances } from './shapes.js';

export const DEFAULT_API_URL = `http://127.0.0.1:${API_DEFAULT_PORT}`;

/** The URL a local client should use for a node configured with `api` (wildcards → loopback). */
export function apiUrlFromConfig(api: ApiConfig): { url: string; token: string | null } {
  const l = parseApiListen(api.listen) ?? { host: '127.0.0.1', port: API_DEFAULT_PORT };
  const host = l.host === '0.0.0.0' ? '127.0.0.1' : l.host === '::' ? '::1' : l.host;
  let token: string | null = null;
  try { token = loadToken(api); } catch { /* unreadable token file: reading works without one on loopback */ }
  return { url: `http://${host.includes(':') ? `[${host}]` : host}:${l.port}`, token };
}

export interface StatusReport { status: NodeStatus; events: NodeEvent[] }

export async function fetchStatus(url: string, token: string | null, timeoutMs = 5000): Promise<StatusReport> {
  const base = url.replace(/\/+$/, '');
  const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
  const get = async (path: string): Promise<unknown> => {
    let res: Response;
    try {
      res = await fetch(base + path, { headers, signal: AbortSignal.timeout(timeoutMs) });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new Error(`cannot reach the hadns API at ${base}: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
    }
    const text = await res.text();
    let body: unknown;
    try { body = JSON.parse(text); } catch { body = null; }
    if (!res.ok) throw new Error(`${base}${path}: HTTP ${res.status}: ${(body as { error?: string } | null)?.error ?? text.slice(0, 200)}`);
    return body;
  };
  const [status, ev] = await Promise.all([get('/api/v1/status'), get('/api/v1/events?limit=10')]);
  return { status: status as NodeStatus, events: (ev as { events: NodeEvent[] }).events };
}

function dur(sec: number): string {
  const d = Math.floor(sec / 86400), h = Math.floor((sec % 86400) / 3600), m = Math.floor((sec % 3600) / 60), s = sec % 60;
  return d ? `${d}d${h}h` : h ? `${h}h${m}m` : m ? `${m}m${s}s` : `${s}s`;
}

// eslint-disable-next-line no-control-regex
const visible = (s: string): number => s.replace(/\x1b\[[0-9;]*m/g, '').length;

function table(rows: string[][], indent = '  '): string[] {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => visible(r[i] ?? ''))));
  return rows.map((r) => indent + r.map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat(w[i] - visible(c)))).join('  ').trimEnd());
}

function pct(n: number, d: number): string { return d > 0 ? `${((100 * n) / d).toFixed(1)}%` : '—'; }

/** Human text; `color` adds ANSI colours for a terminal. */
export function renderStatus(rep: StatusReport, color = false): string {
  const c = (code: string, s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const good = (s: string) => c('32', s), bad = (s: string) => c('31', s), dim = (s: string) => c('2', s), bold = (s: string) => c('1', s);
  const st = rep.status;
  const out: string[] = [];
  out.push(`${bold(`node ${st.node}`)}  hadns ${st.version}  up ${dur(st.uptimeSec)}  ${st.ready ? good('READY') : bad('NOT READY')}`);

  if (st.health) out.push(`  health     ${st.health.ok ? good('ok') : bad(`unhealthy: ${st.health.detail}`)}`);
  const u = st.udpIo;
  if (u) {
    const batch = u.batches > 0 ? `, ${(u.received / u.batches).toFixed(1)} datagrams per batch` : '';
    const drops = u.dropped + u.oversized > 0 ? bad(`, ${u.dropped} send drops, ${u.oversized} oversized`) : '';
    out.push(`  udp        ${u.mode === 'native' ? 'batched (recvmmsg/sendmmsg)' : dim('Node dgram')}${batch}${drops}`);
  }
  const rt = st.scheduling;
  if (rt && rt.requested > 0) {
    out.push(`  scheduling ${rt.applied > 0 ? `event loop real-time (SCHED_RR ${rt.applied})` : bad(`real-time ${rt.requested} asked for, not applied${rt.error ? `: ${rt.error}` : ''}`)}`);
  }
  const peer = st.peer as { digest?: string; peers?: Array<{ name: string; api: string; inSync: boolean | null; lastOk: number | null; lastError: string | null }> } | undefined;
  if (peer?.peers?.length) {
    for (const p of peer.peers) {
      const state = p.inSync === true ? good('records in sync') : p.inSync === false ? bad(`records NOT in sync${p.lastError ? ` (${p.lastError})` : ''}`) : dim('not checked yet');
      out.push(`  peer       ${p.name} ${dim(p.api)}  ${state}`);
    }
  }

  const vr = vrrpInstances(st.vrrp);
  if (vr.length) {
    out.push('', bold('vrrp'));
    out.push(...table([['instance', 'vrid', 'state', 'prio', 'vips'], ...vr.map((v) => [
      v.name, String(v.vrid), v.state === 'MASTER' ? good(v.state) : v.state === 'FAULT' ? bad(v.state) : v.state,
      v.priority === undefined ? '' : String(v.priority), v.vips.join(', ') + (v.state === 'MASTER' ? ' (held)' : ''),
    ])]));
  }

  const r = st.resolver;
  if (r) {
    out.push('', bold('resolver'));
    out.push(`  listen     ${r.listen.join('  ') || '—'}`);
    out.push(`  queries    ${r.queries}  (local ${r.bySource.local ?? 0}, cache ${r.bySource.cache ?? 0}, upstream ${r.bySource.upstream ?? 0}, `
      + `stale ${r.bySource.stale ?? 0}, servfail ${r.bySource.servfail ?? 0}, refused ${r.bySource.refused ?? 0})`);
    const lookups = r.cache.hits + r.cache.misses;
    out.push(`  cache      ${r.cache.entries} entries, hit ratio ${pct(r.cache.hits, lookups)} (${r.cache.hits} hits / ${r.cache.misses} misses), `
      + `${r.cache.evictions} evictions`);
    out.push(`  local      ${r.localNames} names`);
    if (r.upstreams.length) {
      out.push('', bold('upstreams'));
      out.push(...table([['server', 'group', 'health', 'srtt', 'sent', 'answered'], ...r.upstreams.map((u) => [
        u.label, u.group || 'default', u.failures === 0 ? good('ok') : bad(`failing (${u.failures})`), `${u.srttMs} ms`, String(u.sent), String(u.answered),
      ])]));
    }
  } else {
    out.push('', dim('resolver: not configured'));
  }

  const bs = balancerServices(st.balancer);
  if (bs.length) {
    out.push('', bold('balancer'));
    const rows = [['service', 'mode', 'backend', 'health', 'latency', 'outstanding']];
    for (const s of bs) {
      for (const b of s.backends) {
        rows.push([s.name, s.mode, b.address, b.state === 'up' ? good('up') : bad(b.state), b.latencyMs === undefined ? '' : `${b.latencyMs} ms`,
          String(b.outstanding ?? b.active ?? '')]);
      }
    }
    out.push(...table(rows));
  }

  if (rep.events.length) {
    out.push('', bold('recent events'));
    for (const e of rep.events.slice(-10)) {
      const t = new Date(e.time).toISOString().replace('T', ' ').slice(0, 19);
      const kind = e.kind.padEnd(13);
      out.push(`  ${dim(t)}  ${/fail|error/.test(e.kind) ? bad(kind) : kind} ${e.message}`);
    }
  }
  return out.join('\n') + '\n';
}
