/**
 * A fixed-bucket latency histogram: one array increment per sample (no allocation), rendered as
 * a Prometheus histogram at scrape time. Buckets in milliseconds, chosen for DNS (LAN answers
 * under a millisecond, internet answers tens of ms, timeouts near a second).
 */
export const LATENCY_BUCKETS_MS = [0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000] as const;

export interface HistogramView {
  /** Upper bounds (ms), +Inf implied. */
  le: readonly number[];
  /** Cumulative counts per bound, then the total (+Inf). */
  cumulative: number[];
  sumMs: number;
}

export class LatencyHistogram {
  private readonly counts = new Uint32Array(LATENCY_BUCKETS_MS.length + 1);
  private sum = 0;

  observe(ms: number): void {
    let i = 0;
    while (i < LATENCY_BUCKETS_MS.length && ms > LATENCY_BUCKETS_MS[i]) i++;
    this.counts[i]++;
    this.sum += ms;
  }

  view(): HistogramView {
    const cumulative: number[] = [];
    let acc = 0;
    for (const c of this.counts) { acc += c; cumulative.push(acc); }
    return { le: LATENCY_BUCKETS_MS, cumulative, sumMs: this.sum };
  }
}

function esc(v: string): string { return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n'); }

/** Prometheus text exposition of several labelled histograms under one name (seconds). */
export function renderHistograms(name: string, help: string, series: Array<{ labels: Record<string, string>; h: HistogramView }>): string {
  if (!series.length) return '';
  const out = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`];
  for (const { labels, h } of series) {
    const base = Object.entries(labels).map(([k, v]) => `${k}="${esc(v)}"`).join(',');
    const sep = base ? ',' : '';
    h.le.forEach((le, i) => out.push(`${name}_bucket{${base}${sep}le="${le / 1000}"} ${h.cumulative[i]}`));
    const total = h.cumulative[h.cumulative.length - 1] ?? 0;
    out.push(`${name}_bucket{${base}${sep}le="+Inf"} ${total}`);
    out.push(`${name}_sum{${base}} ${h.sumMs / 1000}`);
    out.push(`${name}_count{${base}} ${total}`);
  }
  return out.join('\n') + '\n';
}
