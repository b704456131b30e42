/**
 * A cheap "can any of these domains be a suffix of this name?" test, so that the per-query suffix
 * walks over a few configured domains (wildcards, local-only domains, conditional forwarding)
 * are skipped for names no domain can match. Each step of such a walk slices the name (a new
 * string), and a miss walked every label up to the root: for a forwarded name that was three
 * walks and ~300 bytes of garbage per query.
 *
 * Names and domains are lower case, without the trailing dot; '' is the root, which matches
 * every name (the filter then always says yes).
 */
export class SuffixFilter {
  /** Last labels of the domains, bare and with a leading dot. */
  private readonly labels: string[] = [];
  private readonly dotted: string[] = [];
  private readonly always: boolean;

  constructor(domains: Iterable<string>) {
    let always = false;
    const seen = new Set<string>();
    for (const d of domains) {
      if (d === '') { always = true; continue; }
      seen.add(d.slice(d.lastIndexOf('.') + 1));
    }
    // Many distinct top labels: testing them would cost more than the walk.
    this.always = always || seen.size > 16;
    for (const l of seen) { this.labels.push(l); this.dotted.push(`.${l}`); }
  }

  /** False when no domain can be `name` or a suffix of it (then the walk would find nothing). */
  mayMatch(name: string): boolean {
    if (this.always) return true;
    for (let i = 0; i < this.labels.length; i++) {
      if (name === this.labels[i] || name.endsWith(this.dotted[i]!)) return true;
    }
    return false;
  }
}
