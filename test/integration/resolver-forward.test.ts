import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { FakeUpstream, startFakes } from '../helpers/fake-upstream.js';
import { startResolver } from '../helpers/resolver.js';
import { udpQuery, udpRaw, tcpQueries, answersOf, decodeResp } from '../helpers/dns-client.js';
import { buildQuery } from '../../src/dns/message.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

async function setup(fakes: FakeUpstream[], input: Parameters<typeof startResolver>[0] = {}) {
  const ports = (await Promise.all(fakes.map((f) => f.start()))).map((p) => p.port);
  for (const f of fakes) cleanups.push(() => f.close());
  const r = await startResolver({ ...input, upstreams: { servers: ports.map((p) => `127.0.0.1#${p}`), ...(input.upstreams ?? {}) } });
  cleanups.push(() => r.svc.close());
  return { ...r, ports };
}

test('forwards, caches, keeps the client ID and name case', async () => {
  const up = new FakeUpstream().add('www.example.test', 'A', ['192.0.2.10'], 300);
  const { port } = await setup([up]);
  const r1 = await udpQuery(port, 'WWW.Example.Test', 'A', { id: 4242 });
  assert.equal(r1?.id, 4242);
  assert.equal(r1?.questions?.[0].name, 'WWW.Example.Test');
  assert.deepEqual(answersOf(r1), ['A 192.0.2.10']);
  assert.equal(r1?.flag_ra, true);
  const r2 = await udpQuery(port, 'www.example.test', 'A', { id: 7 });
  assert.equal(r2?.id, 7);
  assert.deepEqual(answersOf(r2), ['A 192.0.2.10']);
  assert.equal(up.count('www.example.test'), 1, 'second answer came from the cache');
});

test('identical questions in flight merge into one upstream query', async () => {
  const up = new FakeUpstream({ behaviour: { kind: 'slow', delayMs: 150 } }).add('merge.test', 'A', ['192.0.2.11']);
  const { port } = await setup([up]);
  const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => udpQuery(port, i % 2 ? 'MERGE.test' : 'merge.TEST', 'A', { id: 1000 + i })));
  assert.equal(rs.filter((r) => r && answersOf(r)[0] === 'A 192.0.2.11').length, 20);
  rs.forEach((r, i) => { assert.equal(r!.id, 1000 + i); assert.equal(r!.questions![0].name, i % 2 ? 'MERGE.test' : 'merge.TEST'); });
  assert.equal(up.count('merge.test'), 1);
});

test('each client gets its own answer when forwarded and local answers interleave', async () => {
  // Forwarded answers come back 100 ms later, after many local answers went out to other clients
  // in between: the listener's reply targets (pooled) must not mix the clients up.
  const up = new FakeUpstream({ behaviour: { kind: 'slow', delayMs: 100 } });
  for (let i = 0; i < 20; i++) up.add(`f${i}.test`, 'A', [`192.0.2.${100 + i}`]);
  const records = Array.from({ length: 20 }, (_, i) => ({ name: `l${i}.test`, type: 'A' as const, value: `10.1.0.${i + 1}` }));
  const { port } = await setup([up], { records });
  const asks: Promise<void>[] = [];
  for (let i = 0; i < 20; i++) {
    asks.push(udpQuery(port, `f${i}.test`, 'A', { id: 2000 + i }).then((r) => {
      assert.equal(r?.id, 2000 + i);
      assert.deepEqual(answersOf(r), [`A 192.0.2.${100 + i}`], `f${i}.test`);
    }));
    asks.push(udpQuery(port, `l${i}.test`, 'A', { id: 3000 + i }).then((r) => {
      assert.equal(r?.id, 3000 + i);
      assert.deepEqual(answersOf(r), [`A 10.1.0.${i + 1}`], `l${i}.test`);
    }));
  }
  await Promise.all(asks);
});

test('SERVFAIL and REFUSED move on to the next server (strict-order)', async () => {
  const a = new FakeUpstream({ behaviour: { kind: 'servfail' } });
  const b = new FakeUpstream({ behaviour: { kind: 'refused' } });
  const c = new FakeUpstream().add('next.test', 'A', ['192.0.2.12']);
  const { port } = await setup([a, b, c], { upstreams: { strategy: 'strict-order' } });
  const r = await udpQuery(port, 'next.test');
  assert.deepEqual(answersOf(r), ['A 192.0.2.12']);
  assert.equal(a.count('next.test'), 1);
  assert.equal(b.count('next.test'), 1);
});

test('a dead upstream is skipped after the per-server timeout', async () => {
  const dead = new FakeUpstream({ behaviour: { kind: 'dead' } });
  const live = new FakeUpstream().add('dead.test', 'A', ['192.0.2.13']);
  const { port } = await setup([dead, live], { upstreams: { strategy: 'strict-order', timeout_ms: 200 } });
  const t0 = Date.now();
  const r = await udpQuery(port, 'dead.test');
  assert.deepEqual(answersOf(r), ['A 192.0.2.13']);
  assert.ok(Date.now() - t0 < 1500, `took ${Date.now() - t0} ms`);
});

test('forged answers from another port, wrong IDs and wrong questions are ignored', async () => {
  const spoof = new FakeUpstream({ behaviour: { kind: 'spoofing', thenRealAfterMs: 50 } }).add('spoof.test', 'A', ['192.0.2.14']);
  const liar = new FakeUpstream({ behaviour: { kind: 'lying', lie: 'question', thenRealAfterMs: 50 } }).add('lie.test', 'A', ['192.0.2.15']);
  const { port: p1, svc: s1 } = await setup([spoof]);
  const r = await udpQuery(p1, 'spoof.test');
  assert.deepEqual(answersOf(r), ['A 192.0.2.14'], 'the forged 6.6.6.6 was not accepted');
  assert.ok(s1.resolver.forwarder.stats.rejected >= 1);
  const { port: p2, svc: s2 } = await setup([liar]);
  assert.deepEqual(answersOf(await udpQuery(p2, 'lie.test')), ['A 192.0.2.15']);
  assert.ok(s2.resolver.forwarder.stats.rejected >= 1);
  const idLiar = new FakeUpstream({ behaviour: { kind: 'lying', lie: 'id', thenRealAfterMs: 50 } }).add('id.test', 'A', ['192.0.2.16']);
  const { port: p3 } = await setup([idLiar]);
  assert.deepEqual(answersOf(await udpQuery(p3, 'id.test')), ['A 192.0.2.16']);
});

test('a truncated upstream answer is retried over TCP; clients get TC when it does not fit', async () => {
  const up = new FakeUpstream({ behaviour: { kind: 'truncating' } });
  const many = Array.from({ length: 60 }, (_, i) => `192.0.2.${i + 1}`);
  up.add('big.test', 'A', many);
  const { port } = await setup([up]);
  // A plain (512-byte) UDP client: the 60-record answer doesn't fit → TC, no records.
  const small = await udpQuery(port, 'big.test');
  assert.equal(small?.flag_tc, true);
  assert.equal(small?.answers?.length, 0);
  // An EDNS client with room gets everything over UDP (the resolver fetched it over TCP).
  const big = await udpQuery(port, 'big.test', 'A', { edns: true, udpSize: 4096 });
  assert.equal(big?.flag_tc, false);
  assert.equal(big?.answers?.length, 60);
  // Over TCP, several pipelined queries on one connection.
  const rs = await tcpQueries(port, [buildQuery('big.test', 'A', { id: 1 }), buildQuery('big.test', 'A', { id: 2 }), buildQuery('big.test', 'A', { id: 3 })]);
  assert.deepEqual(rs.map((r) => r.id).sort(), [1, 2, 3]);
  for (const r of rs) assert.equal(r.answers?.length, 60);
  assert.ok(up.received.some((x) => x.proto === 'tcp'), 'upstream was asked over TCP');
});

test('a TCP client that half-closes after its queries gets every answer, then the server closes too', async () => {
  // Answers come 100 ms after the client's FIN: they must still be written, then the server ends.
  const up = new FakeUpstream({ behaviour: { kind: 'slow', delayMs: 100 } }).add('h1.test', 'A', ['192.0.2.31']).add('h2.test', 'A', ['192.0.2.32']);
  const { port } = await setup([up]);
  const rs = await tcpQueries(port, [buildQuery('h1.test', 'A', { id: 31 }), buildQuery('h2.test', 'A', { id: 32 })], 3000, '127.0.0.1', true);
  assert.deepEqual(rs.map((r) => r.id).sort(), [31, 32]);
  assert.deepEqual(rs.map((r) => answersOf(r)[0]).sort(), ['A 192.0.2.31', 'A 192.0.2.32']);
});

test('EDNS: the answer advertises 1232 and the DO bit reaches the upstream', async () => {
  const up = new FakeUpstream().add('edns.test', 'A', ['192.0.2.17']);
  const { port } = await setup([up]);
  const r = await udpQuery(port, 'edns.test', 'A', { edns: true, dnssecOk: true });
  assert.deepEqual(answersOf(r), ['A 192.0.2.17']);
  assert.ok(up.received.some((x) => x.name === 'edns.test' && x.do), 'DO passed through');
  const local = await udpQuery(port, 'edns.test', 'A', { edns: true });
  assert.ok(local?.additionals?.some((a) => a.type === 'OPT'));
});

test('serve-stale when every upstream fails, never while one answers', async () => {
  const up = new FakeUpstream().add('stale.test', 'A', ['192.0.2.18'], 1);
  const { port } = await setup([up], { upstreams: { timeout_ms: 100, total_timeout_ms: 300 }, cache: { serve_stale: { enabled: true, max_age: 3600, ttl: 30 } } });
  assert.deepEqual(answersOf(await udpQuery(port, 'stale.test')), ['A 192.0.2.18']);
  await new Promise((r) => setTimeout(r, 1100)); // let the 1 s TTL expire (time-based by nature)
  // Upstream still answers: a fresh answer, not the stale one.
  up.zone.clear(); up.add('stale.test', 'A', ['192.0.2.19'], 1);
  assert.deepEqual(answersOf(await udpQuery(port, 'stale.test')), ['A 192.0.2.19']);
  await new Promise((r) => setTimeout(r, 1100));
  up.behaviour = { kind: 'dead' };
  const r = await udpQuery(port, 'stale.test');
  assert.deepEqual(answersOf(r), ['A 192.0.2.19']);
  assert.equal((r!.answers![0] as { ttl: number }).ttl, 30);
  // Nothing cached at all: SERVFAIL.
  const none = await udpQuery(port, 'never.test');
  assert.equal(none?.rcode, 'SERVFAIL');
});

test('conditional forwarding: the most specific domain wins', async () => {
  const def = new FakeUpstream();
  const corp = new FakeUpstream();
  const dev = new FakeUpstream();
  const [pd, pc, pv] = (await Promise.all([def.start(), corp.start(), dev.start()])).map((x) => x.port);
  cleanups.push(() => def.close(), () => corp.close(), () => dev.close());
  def.add('www.other.test', 'A', ['192.0.2.20']);
  corp.add('app.corp.test', 'A', ['10.1.0.1']);
  dev.add('x.dev.corp.test', 'A', ['10.2.0.1']);
  const { svc, port } = await startResolver({
    upstreams: { servers: [`127.0.0.1#${pd}`] },
    forward: [{ domain: 'corp.test', servers: [`127.0.0.1#${pc}`] }, { domain: 'dev.corp.test', servers: [`127.0.0.1#${pv}`] }],
  });
  cleanups.push(() => svc.close());
  assert.deepEqual(answersOf(await udpQuery(port, 'www.other.test')), ['A 192.0.2.20']);
  assert.deepEqual(answersOf(await udpQuery(port, 'app.corp.test')), ['A 10.1.0.1']);
  assert.deepEqual(answersOf(await udpQuery(port, 'x.dev.corp.test')), ['A 10.2.0.1']);
  assert.equal(def.total, 1);
  assert.equal(corp.total, 1);
  assert.equal(dev.total, 1);
});

test('all-servers asks every upstream in parallel and takes the first good answer', async () => {
  const slow = new FakeUpstream({ behaviour: { kind: 'slow', delayMs: 400 } }).add('all.test', 'A', ['192.0.2.21']);
  const fast = new FakeUpstream().add('all.test', 'A', ['192.0.2.22']);
  const { port } = await setup([slow, fast], { upstreams: { strategy: 'all-servers' } });
  const t0 = Date.now();
  assert.deepEqual(answersOf(await udpQuery(port, 'all.test')), ['A 192.0.2.22']);
  assert.ok(Date.now() - t0 < 350);
  assert.equal(slow.count('all.test'), 1);
  assert.equal(fast.count('all.test'), 1);
});

test('in-flight upstream queries are bounded: REFUSED beyond the limit', async () => {
  const up = new FakeUpstream({ behaviour: { kind: 'slow', delayMs: 300 } }).add('a.test', 'A', ['192.0.2.1']).add('b.test', 'A', ['192.0.2.2']).add('c.test', 'A', ['192.0.2.3']);
  const { port } = await setup([up], { max_inflight: 2 });
  const [a, b, c] = await Promise.all(['a.test', 'b.test', 'c.test'].map((n, i) => new Promise((r) => setTimeout(r, i * 20)).then(() => udpQuery(port, n))));
  assert.deepEqual(answersOf(a), ['A 192.0.2.1']);
  assert.deepEqual(answersOf(b), ['A 192.0.2.2']);
  assert.equal(c?.rcode, 'REFUSED');
});

test('clients waiting on one question are bounded too: REFUSED beyond 16 per max_inflight', async () => {
  const up = new FakeUpstream({ behaviour: { kind: 'slow', delayMs: 300 } }).add('hot.test', 'A', ['192.0.2.9']);
  const { port, svc } = await setup([up], { max_inflight: 1 });
  const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => udpQuery(port, 'hot.test', 'A', { id: 500 + i })));
  assert.equal(rs.filter((r) => r && answersOf(r)[0] === 'A 192.0.2.9').length, 16, 'one upstream query, 16 clients answered');
  assert.equal(rs.filter((r) => r?.rcode === 'REFUSED').length, 4);
  assert.equal(up.count('hot.test'), 1);
  assert.equal(svc.resolver.stats.inflightRefused, 4);
  // The waiters went back: the next round is served in full again.
  const again = await Promise.all(Array.from({ length: 16 }, () => udpQuery(port, 'hot2.test')));
  assert.ok(again.every((r) => r?.rcode === 'NXDOMAIN'), 'all 16 answered');
});

test('local data beats upstream; local-only domains and domain-needed never reach upstream', async () => {
  const up = new FakeUpstream().add('mine.test', 'A', ['6.6.6.6']).add('printer.lan', 'A', ['6.6.6.6']).add('plainname', 'A', ['6.6.6.6']);
  const { port } = await setup([up], {
    records: [{ name: 'mine.test', type: 'A', value: '10.0.0.1' }], local_domains: ['lan'], domain_needed: true, bogus_priv: true,
  });
  assert.deepEqual(answersOf(await udpQuery(port, 'mine.test')), ['A 10.0.0.1']);
  assert.equal((await udpQuery(port, 'mine.test', 'AAAA'))?.rcode, 'NOERROR', 'NODATA for another type');
  assert.equal((await udpQuery(port, 'printer.lan'))?.rcode, 'NXDOMAIN');
  assert.equal((await udpQuery(port, 'plainname'))?.rcode, 'NXDOMAIN');
  assert.equal((await udpQuery(port, '1.1.168.192.in-addr.arpa', 'PTR'))?.rcode, 'NXDOMAIN');
  assert.equal(up.total, 0, 'nothing was forwarded');
});

test('malformed queries get FORMERR or are dropped; the server keeps serving', async () => {
  const up = new FakeUpstream().add('ok.test', 'A', ['192.0.2.30']);
  const { port } = await setup([up]);
  const garbage = [Buffer.from([1, 2, 3]), Buffer.alloc(12), Buffer.from('000100000002000000000000', 'hex'), Buffer.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1])];
  const rs = await Promise.all(garbage.map((g) => udpRaw(port, g, 300)));
  assert.equal(rs[0], null, 'a 3-byte datagram is dropped');
  for (const r of rs.slice(1)) { assert.ok(r); assert.equal(r![3] & 0x0f, 1, 'FORMERR'); assert.equal(r!.readUInt16BE(0), r === rs[3] ? 0x1234 : r!.readUInt16BE(0)); }
  const notimp = Buffer.from(buildQuery('ok.test', 'A')); notimp[2] |= 0x10; // opcode 2 (STATUS)
  const ni = await udpRaw(port, notimp);
  assert.equal(ni![3] & 0x0f, 4, 'NOTIMP');
  assert.deepEqual(answersOf(await udpQuery(port, 'ok.test')), ['A 192.0.2.30']);
  const resp = decodeResp((await udpRaw(port, buildQuery('ok.test', 'A', { edns: true })))!);
  assert.equal(resp.rcode, 'NOERROR');
});

test('a short datagram is read to its own length, not into what a longer one left in the slot', async () => {
  // The listener hands the resolver its receive slot and the datagram's length; one datagram
  // per wake-up lands in the same slot, so a truncated query follows a long one there.
  const up = new FakeUpstream().add(`${'x'.repeat(60)}.long.test`, 'A', ['192.0.2.33']);
  const { port } = await setup([up]);
  const long = buildQuery(`${'x'.repeat(60)}.long.test`, 'A', { id: 0x4242 });
  assert.deepEqual(answersOf(decodeResp((await udpRaw(port, long))!)), ['A 192.0.2.33']);
  const cut = Buffer.from(long.subarray(0, 40)); // header + part of the first label
  cut.writeUInt16BE(0x4343, 0);
  const r = await udpRaw(port, cut, 500);
  assert.ok(r, 'answered');
  assert.equal(r!.readUInt16BE(0), 0x4343);
  assert.equal(r![3] & 0x0f, 1, 'FORMERR, not an answer made from the stale bytes');
});

test('the ACL drops clients outside it', async () => {
  const up = new FakeUpstream().add('acl.test', 'A', ['192.0.2.40']);
  const { port } = await setup([up], { acl: ['10.0.0.0/8'] });
  assert.equal(await udpQuery(port, 'acl.test', 'A', { timeoutMs: 300 }), null);
  assert.equal(up.total, 0);
});

test('reload keeps the cache when upstreams stay, drops it when they change; query log lines', async () => {
  const up = new FakeUpstream().add('keep.test', 'A', ['192.0.2.50']);
  const other = new FakeUpstream().add('keep.test', 'A', ['192.0.2.51']);
  const { svc, port, cfg, ports } = await setup([up]);
  const logged: unknown[] = [];
  svc.resolver.queryLog = (e) => logged.push(e);
  assert.deepEqual(answersOf(await udpQuery(port, 'keep.test')), ['A 192.0.2.50']);
  await svc.reload({ ...cfg, records: [{ name: 'added.test', type: 'A', value: '10.9.9.9' }] });
  svc.resolver.queryLog = (e) => logged.push(e); // reload re-applies query_log from config
  assert.deepEqual(answersOf(await udpQuery(port, 'added.test')), ['A 10.9.9.9']);
  assert.deepEqual(answersOf(await udpQuery(port, 'keep.test')), ['A 192.0.2.50']);
  assert.equal(up.count('keep.test'), 1, 'cache survived the reload');
  const po = (await other.start()).port;
  cleanups.push(() => other.close());
  await svc.reload({ ...cfg, upstreams: { ...cfg.upstreams, servers: [`127.0.0.1#${po}`] } });
  svc.resolver.queryLog = (e) => logged.push(e);
  assert.deepEqual(answersOf(await udpQuery(port, 'keep.test')), ['A 192.0.2.51'], 'new upstreams: cache dropped');
  assert.equal(ports.length, 1);
  const sources = logged.map((e) => (e as { source: string }).source);
  assert.deepEqual(sources, ['upstream', 'local', 'cache', 'upstream']);
  assert.equal((logged[0] as { name: string; type: string; upstream: string }).name, 'keep.test');
  assert.match((logged[0] as { upstream: string }).upstream, /^127\.0\.0\.1#\d+$/);
});

test('routing is memoised for questions that come back, not for every unique name a client sends', async () => {
  // Unknown names get NXDOMAIN with an SOA from the fake, so a second asking is a (negative) cache hit.
  const up = new FakeUpstream();
  const { svc, port } = await setup([up], {
    records: [{ name: 'rec.local.test', type: 'A', value: '192.0.2.40' }],
    wildcards: [{ domain: 'ads.test', addresses: ['0.0.0.0'] }],
  });
  const memo = () => svc.resolver.memoSize;
  for (let i = 0; i < 30; i++) assert.equal((await udpQuery(port, `u${i}.rnd.test`))?.rcode, 'NXDOMAIN');
  for (let i = 0; i < 30; i++) assert.deepEqual(answersOf(await udpQuery(port, `r${i}.ads.test`)), ['A 0.0.0.0']);
  // Memoising every question held 60 entries here (and 200k under a flood of unique names).
  assert.equal(memo(), 0, 'unique forwarded and wildcard names are not memoised');
  assert.equal((await udpQuery(port, 'u7.rnd.test'))?.rcode, 'NXDOMAIN');
  assert.equal(up.count('u7.rnd.test'), 1, 'answered from the cache');
  assert.equal(memo(), 1, 'a forwarded question is memoised once the cache answers it');
  assert.deepEqual(answersOf(await udpQuery(port, 'rec.local.test')), ['A 192.0.2.40']);
  assert.equal(memo(), 2, 'a name of the local data is memoised at once');
  assert.deepEqual(answersOf(await udpQuery(port, 'REC.local.test')), ['A 192.0.2.40']);
  assert.equal(memo(), 2);
});
