/**
 * Pure analysis of a lab run: who held the VIP when (from `ip addr` samples), overlaps (two
 * holders), a fault-matrix row from a load result, and the markdown table. No I/O.
 */
import { bucketize, outages, queries, summarize, type LoadResult, type Q } from './load.js';
import type { FaultKind, NodeId } from './plan.js';

/** One poll of both nodes: does each carry the VIP? `t` = monotonic ms. */
export interface VipSample { t: number; a: boolean; b: boolean }

export type Holder = 'a' | 'b' | 'both' | 'none';
export function holderOf(s: VipSample): Holder {
  return s.a && s.b ? 'both' : s.a ? 'a' : s.b ? 'b' : 'none';
}

/** Holder changes: the first sample and every sample whose holder differs from the previous. */
export function holderChanges(samples: VipSample[]): Array<{ t: number; holder: Holder }> {
  const out: Array<{ t: number; holder: Holder }> = [];
  for (const s of samples) {
    const h = holderOf(s);
    if (!out.length || out[out.length - 1]!.holder !== h) out.push({ t: s.t, holder: h });
  }
  return out;
}

/**
 * Periods with two holders that start at or after `from`: start = first sample with both,
 * end = first later sample without (or the last sample, `open`). Duration has the poll interval
 * as resolution.
 */
export function overlaps(samples: VipSample[], from = -Infinity): Array<{ start: number; end: number; open: boolean }> {
  const out: Array<{ start: number; end: number; open: boolean }> = [];
  let cur: { start: number; end: number; open: boolean } | null = null;
  for (const s of samples) {
    const both = s.a && s.b;
    if (both && !cur && s.t >= from) cur = { start: s.t, end: s.t, open: true };
    else if (!both && cur) { cur.end = s.t; cur.open = false; out.push(cur); cur = null; }
    else if (cur) cur.end = s.t;
  }
  if (cur) out.push(cur);
  return out;
}

export interface MatrixRow {
  fault: FaultKind;
  /** The node the fault was applied to. */
  target: NodeId;
  holdMs: number;
  /** Queries sent while the fault was held. */
  windowSent: number;
  lostDuringFault: number;
  lostPct: number;
  /** Longest run of lost queries during the fault, as the client saw it (first lost → next answered). */
  recoveryMs: number;
  /** The VIP was still dark when the fault was healed. */
  neverRecovered: boolean;
  lostAfterHeal: number;
  afterSent: number;
  /** Longest period with two VIP holders that began after healing. */
  maxOverlapAfterHealMs: number;
  /** Who held the VIP: holder changes relative to the fault time (e.g. "a → b@+720 → a@+5900"). */
  vipTimeline: string;
  /** Measured time from the fault until the other node held the VIP (null: the VIP did not move). */
  vipMovedMs: number | null;
  pass: boolean;
  failures: string[];
}

export interface Targets {
  /** The VIP answers again within this (ms). */
  recoveryMs: number;
  /** At most this many queries lost during the fault (the issue: 1% of a 15 s window at 200 q/s = 30). */
  maxLost: number;
  /** Lost after healing (failback included). */
  lostAfterHeal: number;
  /** Two holders after healing for at most this (ms): one advert interval, plus the poll interval as resolution. */
  overlapMs: number;
}

export function analyzeRow(o: {
  fault: FaultKind; target: NodeId; load: LoadResult; samples: VipSample[];
  faultAt: number; healAt: number; targets: Targets;
}): MatrixRow {
  const qs = queries(o.load);
  const during = summarize(qs, o.faultAt, o.healAt);
  const after = summarize(qs, o.healAt);
  // Recovery: the longest outage among those that began while the fault was held.
  const outs = outages(qs.filter((q) => q.t >= o.faultAt)).filter((x) => x.start < o.healAt);
  const worst = outs.reduce((m, x) => Math.max(m, x.end - x.start), 0);
  // Still dark when the fault was healed: healing, not failover, ended the outage.
  const neverRecovered = outs.some((x) => x.open || x.end >= o.healAt);
  const ov = overlaps(o.samples, o.healAt);
  const maxOverlap = ov.reduce((m, x) => Math.max(m, x.end - x.start), 0);
  const changes = holderChanges(o.samples);
  const rel = (t: number) => `${t >= o.faultAt ? '+' : ''}${Math.round(t - o.faultAt)}`;
  const vipTimeline = changes.map((c, i) => (i === 0 ? c.holder : `${c.holder}@${rel(c.t)}`)).join(' → ');
  const before = changes.filter((c) => c.t <= o.faultAt).pop()?.holder;
  const moved = changes.find((c) => c.t > o.faultAt && c.holder !== before && (c.holder === 'a' || c.holder === 'b') && c.holder !== o.target);
  const failures: string[] = [];
  if (worst > o.targets.recoveryMs) failures.push(`dark for ${Math.round(worst)} ms (target ≤ ${o.targets.recoveryMs})`);
  if (during.lost > o.targets.maxLost) failures.push(`${during.lost} lost during the fault (> ${o.targets.maxLost})`);
  if (after.lost > o.targets.lostAfterHeal) failures.push(`${after.lost} lost after healing`);
  if (maxOverlap > o.targets.overlapMs) failures.push(`two VIP holders for ${Math.round(maxOverlap)} ms after healing`);
  return {
    fault: o.fault, target: o.target, holdMs: Math.round(o.healAt - o.faultAt),
    windowSent: during.sent, lostDuringFault: during.lost, lostPct: during.lostPct,
    recoveryMs: Math.round(worst), neverRecovered,
    lostAfterHeal: after.lost, afterSent: after.sent,
    maxOverlapAfterHealMs: Math.round(maxOverlap),
    vipTimeline, vipMovedMs: moved ? Math.round(moved.t - o.faultAt) : null,
    pass: failures.length === 0, failures,
  };
}

const FAULT_LABEL: Record<FaultKind, string> = {
  kill: 'hadns SIGKILL on master A',
  stop: 'hadns SIGTERM on master A',
  'link-down': 'link down on master A',
  partition: 'partition of master A at the bridge',
  'resolver-dead': 'resolver dead on master A (process lives)',
  'backup-dead': 'backup B dies (SIGKILL)',
};

export function matrixMarkdown(rows: MatrixRow[], t: Targets): string {
  const head = '| fault | lost during fault | client-visible outage | VIP moved after | lost after healing | two holders after healing | VIP holder (ms after fault) | result |\n'
    + '|---|---|---|---|---|---|---|---|';
  const lines = rows.map((r) => `| ${FAULT_LABEL[r.fault]} | ${r.lostDuringFault}/${r.windowSent} (${r.lostPct.toFixed(2)}%) | ${r.recoveryMs} ms${r.neverRecovered ? ' (not before heal)' : ''} | ${r.vipMovedMs === null ? '—' : `${r.vipMovedMs} ms`} | ${r.lostAfterHeal}/${r.afterSent} | ${r.maxOverlapAfterHealMs} ms | ${r.vipTimeline} | ${r.pass ? 'pass' : `FAIL: ${r.failures.join('; ')}`} |`);
  return `${head}\n${lines.join('\n')}\n\nTargets: client-visible outage ≤ ${t.recoveryMs} ms; ≤ ${t.maxLost} queries lost during the fault; ${t.lostAfterHeal} lost after healing (failback included); two VIP holders after healing ≤ ${t.overlapMs} ms.\n`;
}

/** A text timeline for `hadns lab demo`: holder changes and per-100 ms loss around the fault. */
export function demoTimeline(o: { load: LoadResult; samples: VipSample[]; faultAt: number; healAt?: number; what: string; bucketMs?: number }): string {
  const w = o.bucketMs ?? 100;
  const qs: Q[] = queries(o.load);
  const rel = (t: number) => `${t - o.faultAt >= 0 ? '+' : ''}${((t - o.faultAt) / 1000).toFixed(2)} s`;
  const lines: string[] = [];
  lines.push('VIP holder (polled every 50 ms with `ip addr` in each node namespace):');
  for (const c of holderChanges(o.samples)) lines.push(`  ${rel(c.t).padStart(9)}  ${c.holder === 'both' ? 'BOTH nodes' : c.holder === 'none' ? 'nobody' : `node-${c.holder}`}`);
  lines.push(`  ${rel(o.faultAt).padStart(9)}  ${o.what}`);
  if (o.healAt !== undefined) lines.push(`  ${rel(o.healAt).padStart(9)}  healed (node restarted)`);
  lines.sort((x, y) => (x.startsWith('  ') && y.startsWith('  ') ? parseFloat(x) - parseFloat(y) : 0));
  const start = o.load.t0;
  const buckets = bucketize(qs, start, w);
  lines.push('', `Client queries per ${w} ms (sent at, answered, lost; one try, ${o.load.timeoutMs} ms timeout):`);
  let quiet = 0;
  buckets.forEach((b, i) => {
    const nearFault = Math.abs(b.start - o.faultAt) < 300 || (o.healAt !== undefined && Math.abs(b.start - o.healAt) < 300);
    const interesting = b.lost > 0 || nearFault || (i > 0 && buckets[i - 1]!.lost > 0) || (buckets[i + 1]?.lost ?? 0) > 0;
    if (!interesting) { quiet++; return; }
    if (quiet) { lines.push(`  … ${quiet} bucket(s) with every query answered`); quiet = 0; }
    const bar = '#'.repeat(b.lost > 0 ? Math.max(1, Math.round((20 * b.lost) / Math.max(1, b.sent))) : 0);
    lines.push(`  ${rel(b.start).padStart(9)}  sent ${String(b.sent).padStart(3)}  ok ${String(b.ok).padStart(3)}  lost ${String(b.lost).padStart(3)} ${bar}`);
  });
  if (quiet) lines.push(`  … ${quiet} bucket(s) with every query answered`);
  const all = summarize(qs);
  const outs = outages(qs);
  lines.push('', `Total: ${all.sent} sent, ${all.ok} answered, ${all.lost} lost (${all.lostPct.toFixed(2)}%); longest client-visible outage ${Math.round(all.longestOutageMs)} ms over ${outs.length} outage(s).`);
  return lines.join('\n');
}
