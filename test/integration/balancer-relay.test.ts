/**
 * The reply relay (src/balancer/relay.ts, native/udp_batch.c): plain backend answers go from the
 * addon to the client without entering JS. These tests prove that it answers, that what it
 * answers is counted and finished like any answer, and that every case it must leave to JS
 * (duplicates, a wrong question, SERVFAIL, names too long for its table) still is handled there.
 * Loopback only; every socket and balancer is closed at the end.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import dnsPacket from 'dns-packet';
import { startBalancer, type Balancer } from '../../src/balancer/service.js';
import type { ServiceInput } from '../../src/balancer/config.js';
import type { DnsServiceStats } from '../../src/balancer/dns-proxy.js';
import { silentLog } from '../../src/balancer/sockets.js';
import { loadUdp, query } from './balancer-util.js';
import { rcodeOf } from '../../src/dns/wire.js';

type Got = dnsPacket.DecodedPacket & { rcode: number };

const started: Balancer[] = [];
const sockets: dgram.Socket[] = [];
after(async () => {
  await Promise.all(started.map((b) => b.close()));
  for (const s of sockets) s.close();
});

function svc(ports: number[], extra: Partial<ServiceInput> = {}): ServiceInput {
  return {
    name: 'dns',
    mode: 'dns',
    listen: ['udp://127.0.0.1:0'],
    pool: { policy: 'round-robin', backends: ports.map((p) => ({ address: `127.0.0.1:${p}` })) },
    timeouts: { query_initial: 100, query_min: 30, query_max: 300 },
    health_check: { enabled: false },
    ...extra,
  };
}

async function start(s: ServiceInput): Promise<{ bal: Balancer; port: number }> {
  const bal = await startBalancer({ services: [s] }, { log: silentLog });
  started.push(bal);
  return { bal, port: bal.addresses().find((x) => x.proto === 'udp')!.port };
}
const st = (bal: Balancer): DnsServiceStats => bal.stats().services[0] as DnsServiceStats;

/**
 * A backend whose answers the test shapes per name: `dup.*` is answered twice, `upper.*` with
 * the question in upper case (as a resolver using 0x20 randomisation might), `sf.*` with
 * SERVFAIL, everything else once with A 192.0.2.1.
 */
async function shapedBackend(): Promise<{ port: number; seen: string[] }> {
  const s = dgram.createSocket('udp4');
  sockets.push(s);
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  const seen: string[] = [];
  s.on('message', (m, r) => {
    const q = dnsPacket.decode(m);
    const name = q.questions![0].name;
    seen.push(name);
    const sf = name.startsWith('sf.');
    const questions = name.startsWith('upper.') ? [{ ...q.questions![0], name: name.toUpperCase() }] : q.questions;
    const out = dnsPacket.encode({
      type: 'response', id: q.id, flags: dnsPacket.RECURSION_DESIRED | (sf ? 2 : 0), questions,
      answers: sf ? [] : [{ type: 'A', name, ttl: 60, data: '192.0.2.1' }],
    });
    s.send(out, r.port, r.address);
    if (name.startsWith('dup.')) s.send(out, r.port, r.address);
  });
  return { port: (s.address()).port, seen };
}

/** Sends each query from one client socket and collects every datagram that comes back within `ms`. */
async function ask(port: number, qs: Buffer[], ms = 300, host = '127.0.0.1'): Promise<Got[]> {
  const c = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  c.bind(0, host);
  await once(c, 'listening');
  const got: Got[] = [];
  c.on('message', (m) => got.push({ ...dnsPacket.decode(m), rcode: rcodeOf(m) }));
  for (const q of qs) c.send(q, port, host);
  await new Promise((r) => setTimeout(r, ms));
  c.close();
  return got;
}

test('plain answers are relayed by the addon, counted once, and their queries finished', async () => {
  const a = await shapedBackend(), b = await shapedBackend();
  const { bal, port } = await start(svc([a.port, b.port]));
  const r = await loadUdp(port, { n: 3000, concurrency: 40, name: (i) => `n${i}.relay.test` });
  assert.equal(r.answered, 3000);
  assert.equal(r.rcodes[0], 3000);
  // Finished from the completion ring the next time JS runs (a tick at the latest).
  const t0 = performance.now();
  while (st(bal).live !== 0 && performance.now() - t0 < 1000) await new Promise((res) => setTimeout(res, 10));
  const s = st(bal);
  assert.equal(s.live, 0, 'every relayed query went back to the pool');
  assert.equal(s.answers, 3000);
  assert.ok(s.relayed >= 2900, `relayed ${s.relayed} of 3000`);
  assert.equal(s.backends.reduce((x, y) => x + y.answers, 0), 3000, 'each backend answer counted once');
  for (const x of s.backends) {
    assert.equal(x.outstanding, 0, 'attempts released');
    assert.ok(x.latencyMs > 0 && x.latencyMs < 100, `latency sample taken (${x.latencyMs} ms)`);
  }
  assert.equal(s.stray, 0);
});

test('an IPv6 client on an IPv6 listener gets its relayed answer', async () => {
  const a = await shapedBackend();
  const { bal, port } = await start(svc([a.port], { listen: ['udp://[::1]:0'] }));
  const got = await ask(port, [query('v6.relay.test', 'A', 4101), query('v6b.relay.test', 'A', 4102)], 300, '::1');
  assert.deepEqual(got.map((m) => m.id).sort(), [4101, 4102]);
  assert.equal(st(bal).relayed, 2);
});

test('HADNS_REPLY_RELAY=0 turns it off: the same answers, all through JS', async () => {
  const a = await shapedBackend();
  process.env.HADNS_REPLY_RELAY = '0';
  let bal: Balancer, port: number;
  try { ({ bal, port } = await start(svc([a.port]))); } finally { delete process.env.HADNS_REPLY_RELAY; }
  const r = await loadUdp(port, { n: 500, concurrency: 20, name: (i) => `n${i}.relay.test` });
  assert.equal(r.rcodes[0], 500);
  assert.equal(st(bal).relayed, 0);
  assert.equal(st(bal).answers, 500);
});

test('a duplicate answer reaches the client once; a case-changed question is still relayed', async () => {
  const a = await shapedBackend();
  const { bal, port } = await start(svc([a.port]));
  const got = await ask(port, [query('dup.relay.test', 'A', 4001), query('upper.relay.test', 'A', 4002)]);
  assert.deepEqual(got.map((m) => m.id).sort(), [4001, 4002], 'one answer per query, with the client\'s ID');
  const s = st(bal);
  assert.equal(s.relayed, 2);
  assert.equal(s.stray, 1, 'the second copy of the duplicate is a stray (JS saw it and dropped it)');
  assert.equal(s.answers, 2);
});

test('what the relay leaves to JS: SERVFAIL is retried elsewhere, a long name and a wrong question take the JS path', async () => {
  const a = await shapedBackend(), b = await shapedBackend();
  const { bal, port } = await start(svc([a.port, b.port]));
  // sf.* gets SERVFAIL from both: the client gets one SERVFAIL (the kept fallback) after the retry.
  const long = `${'x'.repeat(60)}.${'y'.repeat(20)}.relay.test`; // question longer than the relay's 72 bytes
  const got = await ask(port, [query('sf.relay.test', 'A', 5001), query(long, 'A', 5002)]);
  const byId = new Map(got.map((m) => [m.id, m]));
  assert.equal(got.length, 2);
  assert.equal(byId.get(5001)!.rcode, 2);
  assert.equal(a.seen.filter((n) => n === 'sf.relay.test').length + b.seen.filter((n) => n === 'sf.relay.test').length, 2, 'retried on the other backend');
  assert.equal(byId.get(5002)!.rcode, 0);
  assert.equal((byId.get(5002)!.answers![0] as { name: string }).name, long);
  const s = st(bal);
  assert.equal(s.relayed, 0, 'neither went through the relay');
  assert.equal(s.answers, 2);
  assert.ok(s.retries >= 1);
});

test('an answer to an attempt JS already gave up on is a stray, not relayed', async () => {
  // A answers SERVFAIL at once and, 30 ms later, NOERROR under the same ID; the query has been
  // retried on B by then, which answers after 100 ms. The client must get B's answer.
  const mk = async (fn: (s: dgram.Socket, m: Buffer, r: dgram.RemoteInfo) => void): Promise<number> => {
    const s = dgram.createSocket('udp4');
    sockets.push(s);
    s.bind(0, '127.0.0.1');
    await once(s, 'listening');
    s.on('message', (m, r) => fn(s, m, r));
    return s.address().port;
  };
  const reply = (m: Buffer, rcode: number, data: string): Buffer => {
    const q = dnsPacket.decode(m);
    return dnsPacket.encode({ type: 'response', id: q.id, flags: rcode, questions: q.questions,
      answers: rcode ? [] : [{ type: 'A', name: q.questions![0].name, ttl: 60, data }] });
  };
  const a = await mk((s, m, r) => {
    s.send(reply(m, 2, ''), r.port, r.address);
    setTimeout(() => s.send(reply(m, 0, '192.0.2.10'), r.port, r.address), 30);
  });
  const b = await mk((s, m, r) => { setTimeout(() => s.send(reply(m, 0, '192.0.2.20'), r.port, r.address), 100); });
  const conf = svc([a, b], { timeouts: { query_initial: 300, query_min: 300, query_max: 400 } });
  conf.pool!.backends![0]!.weight = 100; // the first attempt goes to A
  const { bal, port } = await start(conf);
  const got = await ask(port, [query('late.relay.test', 'A', 7001)], 400);
  assert.equal(got.length, 1);
  assert.equal((got[0].answers![0] as { data: string }).data, '192.0.2.20', 'B\'s answer, not A\'s late one');
  const x = st(bal);
  assert.equal(x.relayed, 1, 'B\'s answer was relayed');
  assert.equal(x.stray, 1, 'A\'s late answer was dropped');
});

test('a backend answering for a query with the wrong question cannot get it relayed', async () => {
  // A liar: answers with the right ID and another name.
  const s = dgram.createSocket('udp4');
  sockets.push(s);
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  s.on('message', (m, r) => {
    const q = dnsPacket.decode(m);
    s.send(dnsPacket.encode({ type: 'response', id: q.id, questions: [{ type: 'A', name: 'evil.test' }], answers: [{ type: 'A', name: 'evil.test', data: '6.6.6.6' }] }), r.port, r.address);
  });
  const { bal, port } = await start(svc([s.address().port], { timeouts: { query_initial: 50, query_min: 30, query_max: 100 }, next_upstream: { timeout: 200 } }));
  const got = await ask(port, [query('good.relay.test', 'A', 6001)], 400);
  assert.equal(got.length, 1);
  assert.equal(got[0].rcode, 2, 'no answer from the liar reached the client');
  const x = st(bal);
  assert.equal(x.relayed, 0);
  assert.ok(x.stray >= 1);
});

test('a short datagram in a reused receive slot is judged on its own bytes, not the slot\'s leftovers', async () => {
  const a = await shapedBackend();
  const { bal, port } = await start(svc([a.port]));
  const full = query('a-rather-long-label-to-leave-bytes-behind.slot.relay.test', 'A', 4201);
  const c = dgram.createSocket('udp4');
  sockets.push(c);
  c.bind(0, '127.0.0.1');
  await once(c, 'listening');
  // One datagram at a time, each answered before the next: every one lands in the same slot.
  const one = async (b: Buffer): Promise<number> => {
    const got = once(c, 'message');
    c.send(b, port, '127.0.0.1');
    const [m] = (await Promise.race([got, new Promise((_, rej) => setTimeout(() => rej(new Error('no answer')), 1000))])) as [Buffer];
    return rcodeOf(m);
  };
  assert.equal(await one(full), 0);
  // Header only (QDCOUNT 1), cut inside the name, cut inside QTYPE/QCLASS: all FORMERR. Read
  // through the slot's length instead of the datagram's, each would be the whole query again.
  for (const cut of [12, 20, full.length - 3]) assert.equal(await one(full.subarray(0, cut)), 1, `cut at ${cut}`);
  assert.equal(await one(full), 0);
  assert.equal(a.seen.length, 2, 'only the two whole queries reached the backend');
  assert.equal(st(bal).formerr, 3);
});
