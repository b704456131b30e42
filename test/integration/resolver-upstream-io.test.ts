/**
 * The forwarder's own machinery (src/resolver/forwarder.ts), driven directly against fake
 * upstreams on loopback, on both transports: the batched native sockets (the default where the
 * addon is built) and Node's dgram. Pooled jobs and attempts, one deadline timer, sockets
 * replaced after their uses, answers larger than a receive slot.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { FakeUpstream } from '../helpers/fake-upstream.js';
import { buildQuery } from '../../src/dns/message.js';
import { scanMessage, QueryInfo } from '../../src/dns/wire.js';
import { Forwarder, type ForwardOutcome } from '../../src/resolver/forwarder.js';
import { UpstreamGroup, type Server, type Strategy } from '../../src/resolver/upstreams.js';
import { BatchUdpSocket, useBatchUdp } from '../../src/util/udp-batch.js';
import dnsPacket from 'dns-packet';
import dgram from 'node:dgram';

const cleanups: (() => unknown)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

const native = useBatchUdp();
const modes: ('batch' | 'dgram')[] = native ? ['batch', 'dgram'] : ['dgram'];

async function fake(f: FakeUpstream): Promise<Server> {
  const { port } = await f.start();
  cleanups.push(() => f.close());
  return { host: '127.0.0.1', port, label: `127.0.0.1#${port}` };
}

function forwarder(io: 'batch' | 'dgram', extra: Partial<ConstructorParameters<typeof Forwarder>[0]> = {}): Forwarder {
  const f = new Forwarder({ timeoutMs: 150, totalTimeoutMs: 600, io, ...extra });
  cleanups.push(() => f.close());
  return f;
}

function ask(f: Forwarder, group: UpstreamGroup, name: string, opts: Parameters<typeof buildQuery>[2] = {}): Promise<ForwardOutcome> {
  const q = buildQuery(name, 'A', opts);
  const info = new QueryInfo();
  assert.equal(scanMessage(q, q.length, info), 0);
  return new Promise((resolve) => f.forward(q, info.questionEnd, group, (o) => {
    // An answer's bytes are valid during the callback only (a receive slot): keep a copy.
    resolve(o.ok ? { ...o, resp: Buffer.from(o.resp.subarray(0, o.len)) } : o);
  }));
}

function addrs(resp: Buffer): unknown[] {
  return (dnsPacket.decode(resp).answers ?? []).map((a) => (a as { data: unknown }).data);
}

function group(servers: Server[], strategy: Strategy = 'strict-order'): UpstreamGroup {
  return new UpstreamGroup(servers, strategy);
}

for (const io of modes) {
  test(`${io}: sockets are replaced after their uses; every answer is matched, nothing stays in flight`, async () => {
    const up = new FakeUpstream();
    for (let i = 0; i < 40; i++) up.add(`n${i}.test`, 'A', [`192.0.2.${i + 1}`]);
    const s = await fake(up);
    const f = forwarder(io, { poolSize: 2, socketUses: 3 });
    const g = group([s]);
    const probe = native ? BatchUdpSocket.bind('127.0.0.1', 0) : null;
    const before = probe?.index ?? -1;
    probe?.close();
    // Concurrent and sequential queries: 40 in parallel, then 40 one by one.
    const par = await Promise.all(Array.from({ length: 40 }, (_, i) => ask(f, g, `n${i}.test`)));
    for (const [i, o] of par.entries()) {
      assert.ok(o.ok, `n${i}.test answered`);
      if (o.ok) assert.deepEqual(addrs(o.resp), [`192.0.2.${i + 1}`]);
    }
    for (let i = 0; i < 40; i++) {
      const o = await ask(f, g, `n${i}.test`);
      assert.ok(o.ok && addrs(o.resp)[0] === `192.0.2.${i + 1}`);
    }
    assert.equal(f.stats.sent, 80);
    assert.equal(f.stats.answers, 80);
    assert.equal(f.inFlight, 0);
    // 80 queries over sockets of 3 uses: many sockets, all from kernel-chosen ports. None of them
    // took a number in the addon's registry (numbers are never reused; the balancer's relays need them).
    assert.ok(new Set(up.received.map((r) => r.id)).size > 40, 'a random ID per attempt');
    if (probe) {
      const next = BatchUdpSocket.bind('127.0.0.1', 0);
      assert.equal(next.index, before + 1, 'upstream sockets do not use registry numbers');
      next.close();
    }
  });

  test(`${io}: attempt timeout moves on to the next server, the total timeout ends the query`, async () => {
    const dead = await fake(new FakeUpstream({ behaviour: { kind: 'dead' } }));
    const good = await fake(new FakeUpstream().add('t.test', 'A', ['192.0.2.50']));
    const f = forwarder(io);
    const t0 = performance.now();
    const o = await ask(f, group([dead, good]), 't.test');
    const took = performance.now() - t0;
    assert.ok(o.ok && o.server.port === good.port, 'answered by the second server');
    assert.ok(took >= 140 && took < 500, `after one attempt timeout (took ${took.toFixed(0)} ms)`);
    assert.equal(f.stats.timeouts, 1);
    const t1 = performance.now();
    const o2 = await ask(f, group([dead]), 'gone.test');
    const took2 = performance.now() - t1;
    assert.equal(o2.ok, false);
    if (!o2.ok) assert.equal(o2.reason, 'timeout');
    // strict-order with one server: the attempt times out at 150 ms with nobody left to ask, and
    // the late answer is still awaited until the total timeout (600 ms).
    assert.ok(took2 >= 590 && took2 < 1000, `total timeout (took ${took2.toFixed(0)} ms)`);
    // Deadlines of finished queries do not touch the queries that reuse their pooled objects.
    const many = await Promise.all(Array.from({ length: 20 }, () => ask(f, group([good]), 't.test')));
    assert.ok(many.every((x) => x.ok));
    await new Promise((r) => setTimeout(r, 700)); // past every deadline those 20 queued
    assert.equal(f.stats.timeouts, 2, 'only the two dead attempts ever timed out');
    assert.equal(f.inFlight, 0);
  });

  test(`${io}: after a SERVFAIL the next server gets a timeout of its own`, async () => {
    // Server 1 answers SERVFAIL after 100 ms; server 2 answers after 100 ms more, i.e. after
    // server 1's attempt deadline (150 ms) but within its own: it must win, with no timeout counted.
    const sf = await fake(new FakeUpstream({ behaviour: { kind: 'servfail' } }).set('r.test', 'A', { delayMs: 100 }));
    const slow = await fake(new FakeUpstream({ behaviour: { kind: 'slow', delayMs: 100 } }).add('r.test', 'A', ['192.0.2.60']));
    const good = await fake(new FakeUpstream().add('r.test', 'A', ['192.0.2.61']));
    const f = forwarder(io);
    const o = await ask(f, group([sf, slow, good]), 'r.test');
    assert.ok(o.ok, 'answered');
    if (o.ok) assert.deepEqual(addrs(o.resp), ['192.0.2.60'], 'by the second server');
    assert.equal(f.stats.timeouts, 0);
  });

  test(`${io}: an answer larger than a receive slot (4 KB) is still delivered`, async () => {
    const up = new FakeUpstream();
    const many = Array.from({ length: 300 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.1`);
    up.add('huge.test', 'A', many);
    const s = await fake(up);
    const f = forwarder(io, { timeoutMs: 500, totalTimeoutMs: 1500 });
    // The client's EDNS size (8192) is forwarded, so the upstream answers ~5 KB over UDP.
    const o = await ask(f, group([s]), 'huge.test', { udpSize: 8192 });
    assert.ok(o.ok, 'answered');
    if (o.ok) {
      assert.ok(o.resp.length > 4096, `answer is ${o.resp.length} bytes`);
      assert.equal(dnsPacket.decode(o.resp).answers?.length, 300);
      // The batched socket's slot holds 4 KB: it asks again over TCP. dgram takes it over UDP.
      assert.equal(o.tcp, io === 'batch');
    }
    assert.equal(up.received.filter((r) => r.proto === 'tcp').length, io === 'batch' ? 1 : 0);
  });

  test(`${io}: a socket that cannot be opened fails that server at once, not after a timeout`, async () => {
    const a = await fake(new FakeUpstream().add('s.test', 'A', ['192.0.2.70']));
    const b = await fake(new FakeUpstream().add('s.test', 'A', ['192.0.2.71']));
    const warnings: string[] = [];
    const f = forwarder(io, { timeoutMs: 400, totalTimeoutMs: 1000, warn: (m) => warnings.push(m) });
    const g = group([a, b]);
    const origBind = BatchUdpSocket.bind, origCreate = dgram.createSocket;
    const emfile = (): never => { throw Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' }); };
    try {
      (BatchUdpSocket as unknown as { bind: unknown }).bind = emfile;
      (dgram as unknown as { createSocket: unknown }).createSocket = emfile;
      const t0 = performance.now();
      const o = await ask(f, g, 's.test');
      assert.equal(o.ok, false, 'no socket for either server');
      if (!o.ok) assert.equal(o.reason, 'timeout');
      assert.ok(performance.now() - t0 < 100, 'ended at once');
      assert.equal(f.stats.socketErrors, 2);
      assert.equal(f.stats.sent, 0);
      assert.equal(f.inFlight, 0);
      await ask(f, g, 's.test');
      assert.equal(warnings.length, 1, 'warned once (throttled)');
      assert.match(warnings[0]!, /cannot open an upstream socket: EMFILE/);
    } finally {
      (BatchUdpSocket as unknown as { bind: unknown }).bind = origBind;
      (dgram as unknown as { createSocket: unknown }).createSocket = origCreate;
    }
    // Sockets again: it answers.
    const ok = await ask(f, g, 's.test');
    assert.ok(ok.ok && addrs(ok.resp)[0] === '192.0.2.70');
  });
}
