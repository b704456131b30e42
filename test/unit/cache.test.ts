import { test } from 'node:test';
import assert from 'node:assert/strict';
import dnsPacket from 'dns-packet';
import { PacketCache, type CacheOptions } from '../../src/resolver/cache.js';
import { QueryInfo, scanMessage, questionKey } from '../../src/dns/wire.js';
import { buildQuery, decode } from '../../src/dns/message.js';

const opts = (o: Partial<CacheOptions> = {}): CacheOptions => ({
  maxEntries: 100, maxBytes: 1 << 20, minTtl: 0, maxTtl: 86400, negTtl: 0, negMaxTtl: 3600, staleMaxAge: 3600, staleTtl: 30, ...o,
});

function q(name: string, type = 'A', o = {}) {
  const msg = buildQuery(name, type, { id: 1234, ...o });
  const info = new QueryInfo();
  assert.equal(scanMessage(msg, msg.length, info), 0);
  return { msg, info, key: questionKey(msg, info) };
}

function resp(name: string, ttl: number, rcode = 0, extra: Partial<dnsPacket.Packet> = {}): Buffer {
  return dnsPacket.encode({
    type: 'response', id: 777, flags: 0x8180 | rcode,
    questions: [{ type: 'A', name, class: 'IN' }],
    answers: rcode === 0 && ttl >= 0 ? [{ type: 'A', name, ttl, data: '192.0.2.1' }] : [],
    ...extra,
  });
}

const out = Buffer.alloc(4096);

test('hit patches ID and name case and ages TTLs in place', () => {
  const c = new PacketCache(opts());
  const a = q('host.example');
  const r = resp('host.example', 300);
  assert.equal(c.store(a.key, r, r.length, 0), 300);
  const b = q('HOST.Example');
  assert.equal(b.key, a.key);
  const n = c.lookup(b.key, b.msg, b.info, 100_500, out);
  assert.ok(n > 0);
  const d = decode(out.subarray(0, n));
  assert.equal(d.id, 1234);
  assert.equal(d.questions![0].name, 'HOST.Example');
  assert.equal((d.answers![0] as { ttl: number }).ttl, 200);
  assert.equal(c.stats.hits, 1);
});

test('expired entries miss, then serve stale within max age only', () => {
  const c = new PacketCache(opts({ staleMaxAge: 60, staleTtl: 30 }));
  const a = q('s.example');
  const r = resp('s.example', 10);
  c.store(a.key, r, r.length, 0);
  assert.equal(c.lookup(a.key, a.msg, a.info, 10_000, out), 0);
  const n = c.lookupStale(a.key, a.msg, a.info, 50_000, out);
  assert.ok(n > 0);
  assert.equal((decode(out.subarray(0, n)).answers![0] as { ttl: number }).ttl, 30);
  assert.equal(c.lookupStale(a.key, a.msg, a.info, 71_000, out), 0);
});

test('min/max TTL clamp what is stored', () => {
  const c = new PacketCache(opts({ minTtl: 60, maxTtl: 120 }));
  const a = q('m.example');
  let r = resp('m.example', 5);
  assert.equal(c.store(a.key, r, r.length, 0), 60);
  r = resp('m.example', 5000);
  assert.equal(c.store(a.key, r, r.length, 0), 120);
  const n = c.lookup(a.key, a.msg, a.info, 0, out);
  assert.equal((decode(out.subarray(0, n)).answers![0] as { ttl: number }).ttl, 120);
});

test('negative answers use the SOA minimum (capped) or neg_ttl; failures and TC are never stored', () => {
  const c = new PacketCache(opts({ negMaxTtl: 100, negTtl: 0 }));
  const a = q('nx.example');
  const soa = { type: 'SOA' as const, name: 'example', ttl: 3600, data: { mname: 'ns', rname: 'h', serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 900 } };
  const nx = resp('nx.example', -1, 3, { authorities: [soa] });
  assert.equal(c.store(a.key, nx, nx.length, 0), 100);
  const nosoa = resp('nx.example', -1, 3);
  assert.equal(c.store(a.key + 'x', nosoa, nosoa.length, 0), -1, 'no SOA and neg_ttl 0: not cached');
  const c2 = new PacketCache(opts({ negTtl: 7 }));
  assert.equal(c2.store(a.key, nosoa, nosoa.length, 0), 7);
  const sf = resp('nx.example', -1, 2);
  assert.equal(c.store('k2', sf, sf.length, 0), -1);
  const tc = resp('nx.example', 60); tc[2] |= 0x02;
  assert.equal(c.store('k3', tc, tc.length, 0), -1);
});

test('bounded by entries and bytes, LRU order', () => {
  const c = new PacketCache(opts({ maxEntries: 3 }));
  const names = ['a', 'b', 'c', 'd'].map((n) => q(`${n}.example`));
  for (const x of names.slice(0, 3)) { const r = resp(x.info && `${'abc'[names.indexOf(x)]}.example`, 60); c.store(x.key, r, r.length, 0); }
  assert.ok(c.lookup(names[0].key, names[0].msg, names[0].info, 0, out) > 0); // touch a → b is oldest
  const r = resp('d.example', 60);
  c.store(names[3].key, r, r.length, 0);
  assert.equal(c.size, 3);
  assert.equal(c.lookup(names[1].key, names[1].msg, names[1].info, 0, out), 0, 'b evicted');
  assert.ok(c.lookup(names[0].key, names[0].msg, names[0].info, 0, out) > 0, 'a kept');
  const small = new PacketCache(opts({ maxBytes: r.length * 2 }));
  for (const x of names) { const rr = resp('x.example', 60); small.store(x.key, rr, rr.length, 0); }
  assert.ok(small.stats.bytes <= r.length * 2 + 8);
  assert.ok(small.stats.evictions >= 2);
});

test('cache size 0 disables storing', () => {
  const c = new PacketCache(opts({ maxEntries: 0 }));
  const a = q('z.example');
  const r = resp('z.example', 60);
  assert.equal(c.store(a.key, r, r.length, 0), -1);
});

test('second chance: a hit spares an entry once, not for ever; expired entries get none', () => {
  const c = new PacketCache(opts({ maxEntries: 3 }));
  const n = ['a', 'b', 'c', 'd', 'e', 'f'].map((x) => ({ ...q(`${x}.example`), name: `${x}.example` }));
  const put = (i: number, now = 0) => { const r = resp(n[i].name, 60); c.store(n[i].key, r, r.length, now); };
  const has = (i: number, now = 0) => c.lookupStale(n[i].key, n[i].msg, n[i].info, now, out) > 0;
  put(0); put(1); put(2);
  assert.ok(c.lookup(n[0].key, n[0].msg, n[0].info, 0, out) > 0); // a is marked
  put(3); // over by one: a spared (moved back, mark cleared), b evicted
  assert.deepEqual([0, 1, 2, 3].map((i) => has(i)), [true, false, true, true]);
  put(4); // c evicted
  put(5); // d evicted: a, no longer marked, is next
  assert.deepEqual([0, 2, 3, 4, 5].map((i) => has(i)), [true, false, false, true, true]);
  const r = resp(n[1].name, 60); c.store(n[1].key, r, r.length, 0); // a evicted now
  assert.equal(has(0), false);
  // A marked entry past its expiry is not spared.
  const d = new PacketCache(opts({ maxEntries: 2 }));
  const st = (i: number, now: number) => { const rr = resp(n[i].name, 1); d.store(n[i].key, rr, rr.length, now); };
  st(0, 0); st(1, 0);
  assert.ok(d.lookup(n[0].key, n[0].msg, n[0].info, 500, out) > 0);
  st(2, 5000); // a expired (TTL 1 s) although hit: evicted first
  assert.equal(d.lookupStale(n[0].key, n[0].msg, n[0].info, 5000, out), 0);
  assert.equal(d.stats.evictions, 1);
});
