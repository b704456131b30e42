/**
 * Backend selection policies — a pure core: no sockets, no timers, time passed in.
 *
 * The shells (udp-proxy, tcp-proxy, dns-proxy) own the backend objects and keep their dynamic
 * fields (`active`, `latencyMs`, health) current; a policy only reads them and picks an index.
 *
 * Tiers, as nginx: primaries that health allows first; when none, the `backup` servers; when
 * none of those either, hadns *fails open* and picks among every server not administratively
 * `down`, ignoring health (nginx answers "no live upstreams" instead, which black-holes the
 * service when a health signal is wrong). `exclude` is a bitmask of indexes already tried for
 * this request (retry / next-upstream), which is why a pool holds at most 32 backends.
 *
 * Hand-written: the algorithms follow the documented behaviour of nginx (smooth weighted
 * round-robin, least_conn, `hash … consistent`, `random two`) and dnsdist (leastOutstanding);
 * no library provides them over our own backend state.
 */

export const MAX_BACKENDS = 32;

/** What a policy reads about one backend. */
export interface PoolMember {
  /** Stable identity (the address), used to place the member on the consistent-hash ring. */
  readonly id: string;
  readonly weight: number;
  readonly backup: boolean;
  /** Administratively down (nginx `down`): never picked, not even when failing open. */
  readonly down: boolean;
  /** Whether health checks allow traffic now. */
  available(now: number): boolean;
  /** In-flight work: open connections/sessions (tcp/udp) or outstanding queries (dns). */
  readonly active: number;
  /** Smoothed response latency in ms (0 = unknown). */
  readonly latencyMs: number;
}

export type PolicyName = 'round-robin' | 'least-conn' | 'hash' | 'random-two' | 'least-outstanding' | 'fastest';
export const POLICY_NAMES: readonly PolicyName[] = ['round-robin', 'least-conn', 'hash', 'random-two', 'least-outstanding', 'fastest'];

/** Which members a pass may choose from. */
export const enum Tier { PRIMARY = 0, BACKUP = 1, ANY = 2 }

export interface Policy {
  readonly name: PolicyName;
  /**
   * Picks a member index, or -1 when no member can be used (all excluded or all `down`).
   * `key` is a 32-bit hash of the client (only `hash` uses it); `exclude` a bitmask of tried
   * indexes. `lastTier` tells the caller whether the pick failed open.
   */
  pick(now: number, key: number, exclude: number): number;
  readonly lastTier: Tier;
}

export type Random = () => number;

abstract class BasePolicy implements Policy {
  abstract readonly name: PolicyName;
  lastTier: Tier = Tier.PRIMARY;
  constructor(protected readonly members: readonly PoolMember[], protected readonly random: Random) {
    if (members.length > MAX_BACKENDS) throw new Error(`a pool holds at most ${MAX_BACKENDS} backends`);
  }

  /** Member i may be chosen in this tier. */
  protected eligible(i: number, tier: Tier, now: number, exclude: number): boolean {
    if ((exclude >>> i) & 1) return false;
    const m = this.members[i];
    if (m.down || m.weight <= 0) return false;
    if (tier === Tier.ANY) return true;
    if (m.backup !== (tier === Tier.BACKUP)) return false;
    return m.available(now);
  }

  pick(now: number, key: number, exclude: number): number {
    for (let tier = Tier.PRIMARY; tier <= Tier.ANY; tier++) {
      const i = this.choose(tier, now, key, exclude);
      if (i >= 0) { this.lastTier = tier; return i; }
    }
    return -1;
  }

  protected abstract choose(tier: Tier, now: number, key: number, exclude: number): number;

  /** Weighted random among eligible members (total weight computed first: no allocation). */
  protected weightedRandom(tier: Tier, now: number, exclude: number, skip: number): number {
    let total = 0;
    for (let i = 0; i < this.members.length; i++) {
      if (i !== skip && this.eligible(i, tier, now, exclude)) total += this.members[i].weight;
    }
    if (total <= 0) return -1;
    let r = this.random() * total;
    let last = -1;
    for (let i = 0; i < this.members.length; i++) {
      if (i === skip || !this.eligible(i, tier, now, exclude)) continue;
      last = i;
      r -= this.members[i].weight;
      if (r < 0) return i;
    }
    return last;
  }
}

/**
 * nginx's smooth weighted round-robin: every pick adds each eligible member's weight to its
 * `current`, takes the member with the largest `current` and subtracts the total from it.
 * Weights 5,1,1 give a,a,b,a,c,a,a — spread out, not bursts.
 */
export class SmoothRoundRobin extends BasePolicy {
  readonly name: PolicyName = 'round-robin';
  private readonly current: Float64Array;
  constructor(members: readonly PoolMember[], random: Random = Math.random) {
    super(members, random);
    this.current = new Float64Array(members.length);
  }
  protected choose(tier: Tier, now: number, _key: number, exclude: number): number {
    return this.swrr(tier, now, exclude, -1);
  }
  /**
   * One SWRR step over eligible members; with `ties` >= 0 only members whose active/weight
   * ratio equals that of member `ties` take part (least-conn's tie break).
   */
  swrr(tier: Tier, now: number, exclude: number, ties: number): number {
    let total = 0;
    let best = -1;
    const ms = this.members;
    for (let i = 0; i < ms.length; i++) {
      if (!this.eligible(i, tier, now, exclude)) continue;
      if (ties >= 0 && ms[i].active * ms[ties].weight !== ms[ties].active * ms[i].weight) continue;
      this.current[i] += ms[i].weight;
      total += ms[i].weight;
      if (best < 0 || this.current[i] > this.current[best]) best = i;
    }
    if (best >= 0) this.current[best] -= total;
    return best;
  }
}

/** nginx `least_conn`: fewest active per unit of weight; ties by smooth weighted round-robin. */
export class LeastConn extends SmoothRoundRobin {
  override readonly name: PolicyName = 'least-conn';
  protected override choose(tier: Tier, now: number, _key: number, exclude: number): number {
    let best = -1;
    const ms = this.members;
    for (let i = 0; i < ms.length; i++) {
      if (!this.eligible(i, tier, now, exclude)) continue;
      // active_i / weight_i < active_best / weight_best, without division
      if (best < 0 || ms[i].active * ms[best].weight < ms[best].active * ms[i].weight) best = i;
    }
    if (best < 0) return -1;
    return this.swrr(tier, now, exclude, best);
  }
}

/** FNV-1a, 32 bit: the client-address hash for `hash` (cheap, good spread for short strings). */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // final avalanche (murmur3 fmix32) so that close addresses land far apart on the ring
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b); h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35); h ^= h >>> 16;
  return h >>> 0;
}

/** Virtual nodes per unit of weight on the ring (nginx uses 160, as ketama). */
export const RING_POINTS_PER_WEIGHT = 160;

/**
 * Consistent hash on the client (nginx `hash $remote_addr consistent`, ketama-style ring):
 * removing or adding a member moves only the clients that hashed to it. When the member a key
 * lands on cannot be used, the ring is walked clockwise to the next eligible one.
 */
export class ConsistentHash extends BasePolicy {
  readonly name: PolicyName = 'hash';
  private readonly points: Uint32Array;
  private readonly owners: Uint8Array;
  constructor(members: readonly PoolMember[], random: Random = Math.random) {
    super(members, random);
    const pts: { h: number; i: number }[] = [];
    members.forEach((m, i) => {
      const n = Math.max(1, Math.round(m.weight)) * RING_POINTS_PER_WEIGHT;
      for (let j = 0; j < n; j++) pts.push({ h: hashString(`${m.id}-${j}`), i });
    });
    pts.sort((a, b) => a.h - b.h || a.i - b.i);
    this.points = Uint32Array.from(pts, (p) => p.h);
    this.owners = Uint8Array.from(pts, (p) => p.i);
  }
  protected choose(tier: Tier, now: number, key: number, exclude: number): number {
    const n = this.points.length;
    if (n === 0) return -1;
    // first point >= key (binary search), wrapping around
    let lo = 0;
    let hi = n;
    const k = key >>> 0;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.points[mid] < k) lo = mid + 1; else hi = mid;
    }
    let seen = 0;
    for (let s = 0; s < n; s++) {
      const i = this.owners[(lo + s) % n];
      if ((seen >>> i) & 1) continue;
      if (this.eligible(i, tier, now, exclude)) return i;
      seen |= 1 << i;
      if (seen === (this.members.length >= 32 ? -1 : (1 << this.members.length) - 1)) break;
    }
    return -1;
  }
}

/**
 * nginx `random two least_conn` ("power of two choices"): two members drawn at random by
 * weight, the one with fewer active per unit of weight wins. Avoids herding on stale counts.
 */
export class RandomTwo extends BasePolicy {
  readonly name: PolicyName = 'random-two';
  protected choose(tier: Tier, now: number, _key: number, exclude: number): number {
    const a = this.weightedRandom(tier, now, exclude, -1);
    if (a < 0) return -1;
    const b = this.weightedRandom(tier, now, exclude, a);
    if (b < 0) return a;
    const ma = this.members[a];
    const mb = this.members[b];
    return mb.active * ma.weight < ma.active * mb.weight ? b : a;
  }
}

/**
 * dnsdist `leastOutstanding`: fewest queries in flight; ties go to the lower latency, then to
 * the earlier member. Weight is ignored (as in dnsdist).
 */
export class LeastOutstanding extends BasePolicy {
  readonly name: PolicyName = 'least-outstanding';
  protected choose(tier: Tier, now: number, _key: number, exclude: number): number {
    let best = -1;
    const ms = this.members;
    for (let i = 0; i < ms.length; i++) {
      if (!this.eligible(i, tier, now, exclude)) continue;
      if (best < 0) { best = i; continue; }
      const a = ms[i];
      const b = ms[best];
      if (a.active < b.active || (a.active === b.active && a.latencyMs < b.latencyMs)) best = i;
    }
    return best;
  }
}

/**
 * Latency-weighted random: each member's chance is weight / latency (latency floored at
 * `floorMs` so an idle or unmeasured member is not starved or infinitely favoured), multiplied
 * by 1/(1+active) so a member piling up outstanding queries loses share before its EWMA moves.
 */
export class Fastest extends BasePolicy {
  readonly name: PolicyName = 'fastest';
  constructor(members: readonly PoolMember[], random: Random = Math.random, private readonly floorMs = 0.05) {
    super(members, random);
  }
  private score(i: number): number {
    const m = this.members[i];
    const lat = m.latencyMs > this.floorMs ? m.latencyMs : this.floorMs;
    return m.weight / (lat * (1 + m.active));
  }
  protected choose(tier: Tier, now: number, _key: number, exclude: number): number {
    let total = 0;
    for (let i = 0; i < this.members.length; i++) if (this.eligible(i, tier, now, exclude)) total += this.score(i);
    if (total <= 0) return -1;
    let r = this.random() * total;
    let last = -1;
    for (let i = 0; i < this.members.length; i++) {
      if (!this.eligible(i, tier, now, exclude)) continue;
      last = i;
      r -= this.score(i);
      if (r < 0) return i;
    }
    return last;
  }
}

export function createPolicy(name: PolicyName, members: readonly PoolMember[], random: Random = Math.random): Policy {
  switch (name) {
    case 'round-robin': return new SmoothRoundRobin(members, random);
    case 'least-conn': return new LeastConn(members, random);
    case 'hash': return new ConsistentHash(members, random);
    case 'random-two': return new RandomTwo(members, random);
    case 'least-outstanding': return new LeastOutstanding(members, random);
    case 'fastest': return new Fastest(members, random);
  }
}
