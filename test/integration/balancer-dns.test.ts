/**
 * DNS-aware balancing on loopback, in front of fake DNS backends the test starts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import dnsPacket from 'dns-packet';
import { FakeUpstream, startFakes } from '../helpers/fake-upstream.js';
import { startBalancer, type Balancer } from '../../src/balancer/service.js';
import type { ServiceInput } from '../../src/balancer/config.js';
import type { DnsServiceStats } from '../../src/balancer/dns-proxy.js';
import { silentLog } from '../../src/balancer/sockets.js';
import { loadUdp, query, StubHandler } from './balancer-util.js';
import { tcpFrame, TcpFramer } from '../../src/dns/wire.js';

const started: Balancer[] = [];
const fakes: FakeUpstream[] = [];
after(async () => {
  await Promise.all(started.map((b) => b.close()));
  await Promise.all(fakes.map((f) => f.close()));
});

function svc(ports: (number | string)[], extra: Partial<ServiceInput> = {}, backendExtra: object[] = []): ServiceInput {
  return {
    name: 'dns',
    listen: ['dns://127.0.0.1:0'],
    pool: {
      policy: 'round-robin',
      backends: ports.map((p, i) => ({ address: typeof p === 'number' ? `127.0.0.1:${p}` : p, max_fails: 3, fail_timeout: '2s', ...(backendExtra[i] ?? {}) })),
    },
    timeouts: { query_initial: 100, query_min: 30, query_max: 200 },
    health_check: { interval: 100, timeout: 80, rise: 2, fall: 3, name: 'probe.test' },
    ...extra,
  };
}

async function start(s: ServiceInput, localHandler?: StubHandler): Promise<{ bal: Balancer; udp: number; tcp: number }> {
  const bal = await startBalancer({ services: [s] }, { log: silentLog, localHandler });
  started.push(bal);
  const a = bal.addresses();
  return { bal, udp: a.find((x) => x.proto === 'udp')!.port, tcp: a.find((x) => x.proto === 'tcp')!.port };
}
function st(bal: Balancer): DnsServiceStats { return bal.stats().services[0] as DnsServiceStats; }
async function fakePair(): Promise<{ f: FakeUpstream[]; ports: number[] }> {
  const { fakes: f, ports } = await startFakes(2, () => new FakeUpstream().add('w.test', 'A', ['192.0.2.1']));
  for (const x of f) x.record = false;
  fakes.push(...f);
  return { f, ports };
}
async function waitFor(cond: () => boolean, ms: number): Promise<number> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return performance.now() - t0;
}

test('weights 3:1 respected within ±5% over 10k queries, every query answered', async () => {
  const { f, ports } = await fakePair();
  // A timeout floor of 250 ms: on a busy machine the fake backends can stall for tens of ms,
  // and hedged copies would blur the shares this test measures.
  const { udp } = await start(svc(ports, { timeouts: { query_initial: 300, query_min: 250, query_max: 450 } }, [{ weight: 3 }, { weight: 1 }]));
  const r = await loadUdp(udp, { n: 10_000, concurrency: 100, name: (i) => (i % 2 ? 'w.test' : 'W.test') });
  assert.equal(r.lost, 0);
  assert.equal(r.rcodes[0], 10_000);
  const a = f[0].count('w.test');
  const b = f[1].count('w.test');
  assert.ok(a + b >= 10_000 && a + b <= 10_100, `about one backend query per client query (${a + b})`);
  assert.ok(Math.abs(a / (a + b) - 0.75) <= 0.0375, `share ${a / (a + b)}`);
});

test('a killed backend (socket closed) mid-load: zero client-visible failures, marked down fast', async () => {
  const { f, ports } = await fakePair();
  const { bal, udp } = await start(svc(ports));
  let killedAt = 0;
  const r = await loadUdp(udp, {
    n: 4000, concurrency: 50, name: () => 'w.test',
    onAnswer: (n) => { if (n === 1000) { killedAt = performance.now(); void f[1].close(); } },
  });
  assert.equal(r.lost, 0, 'no query lost');
  assert.equal(r.rcodes[0], 4000, 'every answer NOERROR');
  assert.ok(killedAt > 0);
  if (process.env.DEBUG_BAL) console.log(JSON.stringify(st(bal)));
  assert.equal(st(bal).backends[1].state, 'down');
  assert.equal(st(bal).backends[0].state, 'up');
  assert.ok(r.maxLatencyMs < 500, `worst latency ${r.maxLatencyMs} ms stays well under a 1 s client retry`);
  // Recovery: something answers on the dead backend's port again → probes bring it back.
  const again = dgram.createSocket('udp4');
  again.bind(ports[1], '127.0.0.1');
  await once(again, 'listening');
  again.on('message', (m, ri) => {
    const q = dnsPacket.decode(m);
    again.send(dnsPacket.encode({ id: q.id, type: 'response', flags: 0x8180, questions: q.questions, answers: [] }), ri.port, ri.address);
  });
  try {
    const took = await waitFor(() => st(bal).backends[1].state === 'up', 2000);
    assert.ok(took < 1000, `back up after ${took} ms (rise 2 × 100 ms)`);
  } finally { again.close(); }
});

test('a silent black hole mid-load: zero failures, down within its configured time, back when it recovers', async () => {
  const { f, ports } = await fakePair();
  const { bal, udp } = await start(svc(ports));
  let holedAt = 0;
  let downAfter = -1;
  const r = await loadUdp(udp, {
    n: 4000, concurrency: 50, name: () => 'w.test',
    onAnswer: (n) => {
      if (n === 1000) { holedAt = performance.now(); f[1].behaviour = { kind: 'dead' }; }
      if (holedAt && downAfter < 0 && st(bal).backends[1].state === 'down') downAfter = performance.now() - holedAt;
    },
  });
  assert.equal(r.lost, 0, 'no query lost');
  assert.equal(r.rcodes[0], 4000);
  assert.ok(r.maxLatencyMs < 600, `worst latency ${r.maxLatencyMs} ms`);
  // max_fails 3 unanswered for query_max (200 ms) each, or fall 3 probes × 100 ms: well under 1 s
  assert.ok(downAfter >= 0 && downAfter < 1000, `marked down after ${downAfter} ms`);
  const hedged = st(bal).backends[1].hedged;
  assert.ok(hedged > 0, 'queries to the hole were hedged elsewhere');
  // While down it gets no real traffic.
  const before = f[1].count('w.test');
  const r2 = await loadUdp(udp, { n: 500, concurrency: 20, name: () => 'w.test' });
  assert.equal(r2.rcodes[0], 500);
  assert.equal(f[1].count('w.test'), before, 'a down backend receives no real queries');
  f[1].behaviour = { kind: 'normal' };
  const took = await waitFor(() => st(bal).backends[1].state === 'up', 2000);
  assert.ok(took < 1000, `back after ${took} ms`);
});

test('probes go on without traffic: an idle backend that dies is marked down, then up', async () => {
  const { f, ports } = await fakePair();
  const { bal } = await start(svc(ports));
  await waitFor(() => st(bal).backends[0].probesOk >= 2, 2000);
  f[0].behaviour = { kind: 'dead' };
  await waitFor(() => st(bal).backends[0].state === 'down', 1500);
  assert.ok(f[0].count('probe.test') > 0, 'probes use the configured name');
  f[0].behaviour = { kind: 'normal' };
  await waitFor(() => st(bal).backends[0].state === 'up', 1500);
});

test('SERVFAIL and REFUSED are retried on another backend; the client gets one good answer', async () => {
  const { f, ports } = await fakePair();
  f[0].behaviour = { kind: 'servfail' };
  const { bal, udp } = await start(svc(ports, { health_check: { enabled: false } }));
  const r = await loadUdp(udp, { n: 200, concurrency: 10, name: () => 'w.test' });
  assert.equal(r.rcodes[0], 200);
  assert.equal(r.answered, 200, 'exactly one answer per query (the load client counts only first answers, lost = 0)');
  assert.ok(st(bal).retries >= 90);
  f[1].behaviour = { kind: 'refused' };
  const r2 = await loadUdp(udp, { n: 20, concurrency: 5, name: () => 'w.test' });
  // both fail: the client gets the backend's own failure, not silence
  assert.equal(r2.lost, 0);
  assert.equal((r2.rcodes[2] ?? 0) + (r2.rcodes[5] ?? 0), 20);
});

test('answers are matched by ID and question: a lying backend cannot answer for a query', async () => {
  const { f, ports } = await fakePair();
  f[0].behaviour = { kind: 'lying', lie: 'question', thenRealAfterMs: 5 };
  const { bal, udp } = await start(svc([ports[0]], { health_check: { enabled: false } }));
  const r = await loadUdp(udp, { n: 50, concurrency: 5, name: () => 'w.test' });
  assert.equal(r.rcodes[0], 50);
  assert.ok(st(bal).stray >= 50, 'the wrong-question replies were dropped');
  void f;
});

test('TC passes through over UDP; DNS over TCP is balanced per query with pipelining', async () => {
  const { f, ports } = await fakePair();
  for (const x of f) x.behaviour = { kind: 'truncating' };
  const { udp, tcp } = await start(svc(ports, { health_check: { enabled: false } }));
  const r = await loadUdp(udp, { n: 10, concurrency: 2, name: () => 'w.test' });
  assert.equal(r.truncated, 10);
  const qs = Array.from({ length: 40 }, (_, i) => query('w.test', 'A', 1000 + i));
  const answers = await tcpAll(tcp, qs);
  assert.equal(answers.length, 40);
  assert.deepEqual(answers.map((a) => a.id).sort(), qs.map((_, i) => 1000 + i).sort());
  for (const a of answers) {
    assert.equal(a.flags! & dnsPacket.TRUNCATED_RESPONSE, 0);
    assert.equal((a.answers![0] as { data: string }).data, '192.0.2.1');
  }
  assert.ok(f[0].count('w.test') >= 10 && f[1].count('w.test') >= 10, 'TCP queries spread over both backends');
});

test('a client asking for more than 4096 bytes over UDP: the backend is asked for 4096, and its TC reaches the client', async () => {
  // A compliant backend: answers in full when the answer fits the requester's EDNS size, else TC.
  const backend = dgram.createSocket('udp4');
  await new Promise<void>((r) => backend.bind(0, '127.0.0.1', () => r()));
  const seen: number[] = [];
  backend.on('message', (m, rinfo) => {
    const q = dnsPacket.decode(m);
    const opt = (q.additionals ?? []).find((a) => a.type === 'OPT') as { udpPayloadSize: number } | undefined;
    const size = opt?.udpPayloadSize ?? 512;
    seen.push(size);
    const answers = Array.from({ length: 400 }, (_, i) => ({ type: 'A' as const, name: q.questions![0].name, ttl: 60, data: `10.0.${i >> 8}.${i & 255}` }));
    let out = dnsPacket.encode({ type: 'response', id: q.id, flags: dnsPacket.RECURSION_DESIRED, questions: q.questions, answers });
    if (out.length > size) out = dnsPacket.encode({ type: 'response', id: q.id, flags: dnsPacket.TRUNCATED_RESPONSE, questions: q.questions });
    backend.send(out, rinfo.port, rinfo.address);
  });
  const { udp } = await start(svc([backend.address().port], { health_check: { enabled: false } }));
  const c = dgram.createSocket('udp4');
  const got = once(c, 'message');
  c.send(dnsPacket.encode({
    type: 'query', id: 4242, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: 'big.test' }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 8192 } as dnsPacket.Answer],
  }), udp, '127.0.0.1');
  const [m] = await got as [Buffer];
  const r = dnsPacket.decode(m);
  assert.equal(r.id, 4242);
  assert.ok(r.flags! & dnsPacket.TRUNCATED_RESPONSE, 'TC reaches the client');
  assert.deepEqual(seen, [4096]);
  c.close();
  backend.close();
});

test('a "local" backend is called in-process with the client address; fails over to a socket backend', async () => {
  const { f, ports } = await fakePair();
  const h = new StubHandler();
  const { udp } = await start(svc(['local', ports[0]], { health_check: { enabled: false } }), h);
  const r = await loadUdp(udp, { n: 100, concurrency: 4, name: () => 'w.test' });
  assert.equal(r.rcodes[0], 100);
  assert.equal(h.calls + f[0].count('w.test'), 100);
  assert.ok(h.calls >= 45 && h.calls <= 55);
  assert.equal(h.last?.clientAddress, '127.0.0.1');
  assert.equal(h.last?.transport, 'udp');
});

test('frontend cache answers a repeated question without a backend round trip', async () => {
  const { f, ports } = await fakePair();
  const { bal, udp } = await start(svc(ports, { cache: { enabled: true }, health_check: { enabled: false } }));
  const r = await loadUdp(udp, { n: 50, concurrency: 1, name: () => 'w.test' });
  assert.equal(r.rcodes[0], 50);
  assert.equal(f[0].count('w.test') + f[1].count('w.test'), 1);
  assert.equal(st(bal).cacheHits, 49);
});

test('all backends down: fail open (they are still tried) instead of black-holing', async () => {
  const { f, ports } = await fakePair();
  for (const x of f) x.behaviour = { kind: 'dead' };
  const { bal, udp } = await start(svc(ports));
  await waitFor(() => st(bal).backends.every((b) => b.state === 'down'), 1500);
  for (const x of f) x.behaviour = { kind: 'normal' };
  const r = await loadUdp(udp, { n: 20, concurrency: 2, name: () => 'w.test' });
  assert.equal(r.rcodes[0], 20, 'answered at once, before probes bring them back');
});

function tcpAll(port: number, qs: Buffer[]): Promise<dnsPacket.DecodedPacket[]> {
  return new Promise((resolve, reject) => {
    const net = import('node:net');
    void net.then(({ default: n }) => {
      const got: dnsPacket.DecodedPacket[] = [];
      const c = n.connect({ port, host: '127.0.0.1' });
      const t = setTimeout(() => { c.destroy(); reject(new Error(`TCP: ${got.length} answers`)); }, 3000);
      const fr = new TcpFramer((m) => {
        got.push(dnsPacket.decode(Buffer.from(m)));
        if (got.length === qs.length) { clearTimeout(t); c.end(); resolve(got); }
      });
      c.on('data', (d) => fr.push(d));
      c.on('error', reject);
      c.on('connect', () => c.write(Buffer.concat(qs.map((q) => tcpFrame(q)))));
    });
  });
}
