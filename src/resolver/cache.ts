/**
 * Wire-format packet cache (the dnsdist model): whole responses are stored as bytes under the
 * question key (lower-case QNAME + QTYPE + QCLASS + EDNS/DO/CD flags, see dns/wire.questionKey).
 * A hit is a copy, an ID and name-case patch and an in-place TTL ageing — no decode.
 *
 * Pure: time comes from the caller (`now` in ms). Bounded by entries and bytes with second-chance
 * eviction, LRU's cheap approximation (a JS Map keeps insertion order; a hit only marks its entry,
 * and eviction moves a marked entry to the back once instead of dropping it). A hit that
 * re-inserted its entry (delete + set) made the Map rehash every few thousand hits, and V8
 * allocates the rehashed table of a long-lived Map in the old generation: at 10k hits a second
 * the old generation grew ~2 MB a second, paid for with a full collection every few seconds. Expired entries stay, within the serve-stale
 * window, so that RFC 8767 stale answers are possible when every upstream fails; they are never
 * served while an upstream can give a fresh answer. Failures (SERVFAIL, REFUSED, TC) are never
 * stored, so a cached failure cannot hide a fresh good answer.
 */
import { ageTtls, clampTtls, copyQuestionCase, minTtl, negativeTtl, rcodeOf, isTruncated, u16, writeId, type QueryInfo } from '../dns/wire.js';

export interface CacheOptions {
  maxEntries: number;
  maxBytes: number;
  minTtl: number;
  maxTtl: number;
  /** TTL for negative answers with no SOA; 0 = don't cache those. */
  negTtl: number;
  negMaxTtl: number;
  /** Seconds past expiry an entry may be served stale (0 = never). */
  staleMaxAge: number;
  /** TTL written into stale answers. */
  staleTtl: number;
}

interface Entry {
  data: Buffer;
  storedAt: number;
  expiresAt: number;
  /** TTL (s) the stored bytes carry. */
  ttl: number;
  /** Hit since eviction last passed it: spared once (second chance). */
  used: boolean;
}

export interface CacheStats {
  entries: number;
  bytes: number;
  hits: number;
  misses: number;
  staleHits: number;
  inserts: number;
  evictions: number;
}

export class PacketCache {
  private readonly map = new Map<string, Entry>();
  private bytes = 0;
  readonly stats: CacheStats = { entries: 0, bytes: 0, hits: 0, misses: 0, staleHits: 0, inserts: 0, evictions: 0 };

  constructor(readonly opts: CacheOptions) {}

  get size(): number { return this.map.size; }

  /**
   * Writes a fresh cached answer for the query into `out` (ID and name case from the query,
   * TTLs aged) and returns its length; 0 on a miss or when only a stale entry exists.
   */
  lookup(key: string, query: Uint8Array, info: QueryInfo, now: number, out: Buffer): number {
    const e = this.map.get(key);
    if (e === undefined || now >= e.expiresAt) { this.stats.misses++; return 0; }
    e.used = true;
    this.stats.hits++;
    return this.emit(e, query, info, Math.floor((now - e.storedAt) / 1000), -1, out);
  }

  /** Like lookup, for an entry past expiry but within the stale window (TTL set to staleTtl). */
  lookupStale(key: string, query: Uint8Array, info: QueryInfo, now: number, out: Buffer): number {
    const e = this.map.get(key);
    if (e === undefined || now >= e.expiresAt + this.opts.staleMaxAge * 1000) return 0;
    this.stats.staleHits++;
    return this.emit(e, query, info, 0, now >= e.expiresAt ? this.opts.staleTtl : -1, out);
  }

  private emit(e: Entry, query: Uint8Array, info: QueryInfo, elapsed: number, fixedTtl: number, out: Buffer): number {
    const len = e.data.length;
    if (out.length < len) return 0;
    e.data.copy(out, 0, 0, len);
    writeId(out, info.id);
    copyQuestionCase(out, query, info.nameEnd);
    // RD and CD follow the asking client, not whoever filled the cache.
    out[2] = (out[2] & 0xfe) | (query[2] & 0x01);
    if (fixedTtl >= 0) ageTtls(out, len, 0, fixedTtl);
    else if (elapsed > 0) ageTtls(out, len, elapsed);
    return len;
  }

  /**
   * Decides whether and for how long a response is cacheable, and stores a copy.
   * Returns the TTL used, or -1 when it was not stored.
   */
  store(key: string, resp: Uint8Array, len: number, now: number): number {
    if (this.opts.maxEntries === 0 || len < 12) return -1;
    if (isTruncated(resp)) return -1;
    const rcode = rcodeOf(resp);
    const ancount = u16(resp, 6);
    let ttl: number;
    if (rcode === 0 && ancount > 0) {
      ttl = minTtl(resp, len);
      if (ttl < 0) return -1;
      if (ttl < this.opts.minTtl) ttl = this.opts.minTtl;
      if (ttl > this.opts.maxTtl) ttl = this.opts.maxTtl;
    } else if (rcode === 0 || rcode === 3) {
      // Negative: NODATA or NXDOMAIN, TTL from the SOA (RFC 2308), capped; else neg-ttl.
      ttl = negativeTtl(resp, len);
      if (ttl < 0) ttl = this.opts.negTtl;
      else if (ttl > this.opts.negMaxTtl) ttl = this.opts.negMaxTtl;
      if (ttl <= 0) return -1;
    } else {
      return -1; // SERVFAIL, REFUSED, NOTIMP, FORMERR: never cached
    }
    if (ttl === 0) return -1;
    const data = Buffer.allocUnsafe(len);
    data.set(resp.subarray(0, len));
    if (rcode === 0 && ancount > 0) clampTtls(data, len, this.opts.minTtl, this.opts.maxTtl);
    else ageTtls(data, len, 0, ttl); // negative answers carry the negative TTL everywhere
    const old = this.map.get(key);
    if (old) { this.bytes -= old.data.length; this.map.delete(key); }
    this.map.set(key, { data, storedAt: now, expiresAt: now + ttl * 1000, ttl, used: false });
    this.bytes += len;
    this.stats.inserts++;
    this.evict(now);
    this.stats.entries = this.map.size;
    this.stats.bytes = this.bytes;
    return ttl;
  }

  private evict(now: number): void {
    while (this.map.size > this.opts.maxEntries || this.bytes > this.opts.maxBytes) {
      // Oldest first; one hit since the last pass spares an entry once (it goes to the back).
      // Every pass clears marks, so this ends within two rounds of the table.
      const first = this.map.keys().next();
      if (first.done) break;
      const e = this.map.get(first.value)!;
      this.map.delete(first.value);
      if (e.used && now < e.expiresAt) {
        e.used = false;
        this.map.set(first.value, e);
        continue;
      }
      this.bytes -= e.data.length;
      this.stats.evictions++;
    }
  }

  /** Drops entries past expiry plus the stale window (called now and then by the shell). */
  sweep(now: number): number {
    let n = 0;
    const limit = this.opts.staleMaxAge * 1000;
    for (const [k, e] of this.map) {
      if (now >= e.expiresAt + limit) { this.map.delete(k); this.bytes -= e.data.length; n++; }
    }
    this.stats.entries = this.map.size;
    this.stats.bytes = this.bytes;
    return n;
  }

  clear(): void {
    this.map.clear();
    this.bytes = 0;
    this.stats.entries = 0;
    this.stats.bytes = 0;
  }
}
