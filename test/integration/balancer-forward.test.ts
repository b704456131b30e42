/**
 * Query forwarding (native/udp_batch.c "Query forwarding", src/balancer/dns-proxy.ts Forwarding):
 * a plain query leaves for its backend from the addon, on a ticket the policy drew ahead, before
 * JS sees it. These tests prove that it does, that the policy's weights and every counter come
 * out as they do through JS, that whatever is not plain in the strictest sense still takes the JS
 * path, and that tickets drawn for a backend that then goes down are drawn anew.
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
import type { BalancerLog } from '../../src/balancer/sockets.js';
import { silentLog } from '../../src/balancer/sockets.js';
import { loadUdp, query, StubHandler } from './balancer-util.js';
import { rcodeOf } from '../../src/dns/wire.js';
import { prng } from '../helpers/fuzz.js';
import { BatchUdpSocket, burstStats } from '../../src/util/udp-batch.js';
import { Worker } from 'node:worker_threads';

const started: Balancer[] = [];
const sockets: dgram.Socket[] = [];
after(async () => {
  await Promise.all(started.map((b) => b.close()));
  for (const s of sockets) s.close();
});

function svc(backends: string[], extra: Partial<ServiceInput> = {}): ServiceInput {
  return {
    name: 'dns',
    mode: 'dns',
    listen: ['udp://127.0.0.1:0'],
    pool: { policy: 'round-robin', backends: backends.map((address) => ({ address })) },
    timeouts: { query_initial: 100, query_min: 30, query_max: 300 },
    health_check: { enabled: false },
    ...extra,
  };
}

async function start(s: ServiceInput, opts: { log?: BalancerLog; localHandler?: StubHandler } = {}): Promise<{ bal: Balancer; port: number }> {
  const bal = await startBalancer({ services: [s] }, { log: opts.log ?? silentLog, localHandler: opts.localHandler });
  started.push(bal);
  return { bal, port: bal.addresses().find((x) => x.proto === 'udp')!.port };
}
const st = (bal: Balancer): DnsServiceStats => bal.stats().services[0] as DnsServiceStats;

/**
 * start() with the forwarding on Node's loop even where this file runs with the forwarding thread
 * (balancer-thread.test.ts): for what only the loop does (booking in its check phase, bursts made
 * by stopping the loop).
 */
async function startOnLoop(s: ServiceInput, opts: { log?: BalancerLog } = {}): Promise<{ bal: Balancer; port: number }> {
  const was = process.env.HADNS_FORWARD_THREAD;
  delete process.env.HADNS_FORWARD_THREAD;
  try { return await start(s, opts); } finally { if (was !== undefined) process.env.HADNS_FORWARD_THREAD = was; }
}

/** A backend answering A 192.0.2.1 and keeping every query it got, raw. */
async function backend(): Promise<{ addr: string; got: Buffer[]; sock: dgram.Socket }> {
  const s = dgram.createSocket('udp4');
  sockets.push(s);
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  const got: Buffer[] = [];
  s.on('message', (m, r) => {
    got.push(m);
    let q: dnsPacket.DecodedPacket;
    try { q = dnsPacket.decode(m); } catch { return; }
    const name = q.questions?.[0]?.name ?? '';
    s.send(dnsPacket.encode({ type: 'response', id: q.id, flags: dnsPacket.RECURSION_DESIRED, questions: q.questions,
      answers: [{ type: 'A', name, ttl: 60, data: '192.0.2.1' }] }), r.port, r.address);
  });
  return { addr: `127.0.0.1:${s.address().port}`, got, sock: s };
}

/** Sends each datagram from one client socket; the answers by ID (first one each) within `ms`. */
async function ask(port: number, qs: Buffer[], ms = 300): Promise<Map<number, Buffer>> {
  const c = dgram.createSocket('udp4');
  c.bind(0, '127.0.0.1');
  await once(c, 'listening');
  const got = new Map<number, Buffer>();
  c.on('message', (m) => { const id = m.readUInt16BE(0); if (!got.has(id)) got.set(id, m); });
  for (const q of qs) c.send(q, port, '127.0.0.1');
  await new Promise((r) => setTimeout(r, ms));
  c.close();
  return got;
}

async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A query with an OPT record advertising `size` bytes. */
function ednsQuery(name: string, size: number, id: number): Buffer {
  return dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: size } as dnsPacket.Answer] });
}

test('plain queries leave from the addon; weights, counters and the pool come out as through JS', async () => {
  const a = await backend(), b = await backend();
  // Hedging after 200 ms, not the file's 30: the backends share this process's loop, and a stall
  // of it (a cold start in a busy suite) must not read as a retry. A query lost on the way is
  // still retried, and still fails `retries 0` below.
  const conf = svc([a.addr, b.addr], { timeouts: { query_initial: 300, query_min: 200, query_max: 600 } });
  conf.pool!.backends![0]!.weight = 3;
  const { bal, port } = await start(conf);
  const r = await loadUdp(port, { n: 4000, concurrency: 40, name: (i) => `n${i}.fwd.test` });
  assert.equal(r.rcodes[0], 4000);
  await until(() => st(bal).live === 0, 'every query finished');
  const s = st(bal);
  assert.ok(s.forwarded >= 3990, `forwarded by the addon: ${s.forwarded} of 4000`);
  assert.equal(s.queries, 4000);
  assert.equal(s.answers, 4000);
  assert.equal(s.stray, 0);
  assert.equal(s.retries, 0);
  const share = a.got.length / 4000;
  assert.ok(Math.abs(share - 0.75) < 0.05 * 0.75, `weight 3:1 kept: backend A got ${(share * 100).toFixed(1)}%`);
  assert.equal(a.got.length + b.got.length, 4000);
  for (const x of s.backends) {
    assert.equal(x.outstanding, 0, 'attempts released');
    assert.equal(x.queries, x.answers);
    assert.ok(x.latencyMs > 0, 'latency sampled');
  }
  // Each query reached its backend with an upstream ID of ours, not the client's (load client:
  // query i has ID i + 1); equal by chance for 4000/65536 of them on average.
  const same = [...a.got, ...b.got].filter((m) => {
    const i = Number(/^n(\d+)\./.exec(dnsPacket.decode(m).questions![0].name)![1]);
    return m.readUInt16BE(0) === i + 1;
  }).length;
  assert.ok(same <= 3, `upstream IDs are fresh (${same} of 4000 kept the client's)`);
});

test('a burst is booked in chunks with the loop\'s I/O in between, until all is booked', async () => {
  // Record the addon's calls to the booking callback: (max asked, used tickets JS left).
  const calls: [number, number][] = [];
  const orig = BatchUdpSocket.prototype.enableForward;
  BatchUdpSocket.prototype.enableForward = function (this: BatchUdpSocket, t, tm, ar, book, now) {
    orig.call(this, t, tm, ar, (max: number) => { const left = book(max); calls.push([max, left]); return left; }, now);
  };
  let bal: Balancer, port: number;
  try {
    ({ bal, port } = await startOnLoop(svc([(await backend()).addr, (await backend()).addr])));
  } finally {
    BatchUdpSocket.prototype.enableForward = orig;
  }
  // 20 queries sent at once arrive in one batch: 20 tickets used, 44 left.
  const qs = Array.from({ length: 20 }, (_, i) => query(`b${i}.fwd.test`, 'A', 100 + i));
  const got = await ask(port, qs);
  assert.equal(got.size, 20);
  const first = calls.findIndex(([max]) => max > 0);
  assert.ok(first >= 0, `the check phase booked: ${JSON.stringify(calls)}`);
  assert.deepEqual(calls.slice(first, first + 2), [[8, 12], [8, 4]], `two chunks of 8: ${JSON.stringify(calls)}`);
  assert.deepEqual(calls.at(-1), [8, 0], 'the addon called until all was booked');
  const s = st(bal);
  assert.equal(s.forwarded, 20);
  assert.equal(s.answers, 20);
  assert.equal(s.live, 0);
});

test('what is not plain takes the JS path, and is still answered right', async () => {
  const a = await backend();
  const { bal, port } = await start(svc([a.addr]));
  const before = st(bal).forwarded;
  const plain = [query('p1.fwd.test', 'A', 101), ednsQuery('p2.fwd.test', 1232, 102), ednsQuery('p3.fwd.test', 4096, 103)];
  let got = await ask(port, plain);
  assert.deepEqual([...got.keys()].sort(), [101, 102, 103]);
  assert.equal(st(bal).forwarded - before, 3, 'plain, with OPT up to 4096: forwarded');
  const big = ednsQuery('big.fwd.test', 8192, 201); // JS lowers the size to 4096 first
  const junk = Buffer.concat([query('junk.fwd.test', 'A', 202), Buffer.from([0])]); // trailing byte
  const two = query('two.fwd.test', 'A', 203); two[11] = 2; // ARCOUNT 2, nothing there: FORMERR
  const notify = query('notify.fwd.test', 'SOA', 204); notify[2] = (notify[2] & 0x87) | (4 << 3); // opcode NOTIFY
  const ad = query('ad.fwd.test', 'A', 205); ad[3] |= 0x0f; // RCODE bits set in a query
  const n0 = st(bal).forwarded, seen0 = a.got.length;
  got = await ask(port, [big, junk, two, notify, ad]);
  assert.equal(st(bal).forwarded, n0, 'none of them was forwarded by the addon');
  assert.deepEqual([...got.keys()].sort(), [201, 202, 203, 204, 205], 'each got one answer');
  assert.equal(rcodeOf(got.get(201)!), 0);
  assert.equal(rcodeOf(got.get(203)!), 1, 'FORMERR from the balancer itself');
  const bigSeen = a.got.slice(seen0).map((m) => { try { return dnsPacket.decode(m); } catch { return null; } })
    .find((p) => p?.questions?.[0]?.name === 'big.fwd.test');
  const opt = bigSeen?.additionals?.find((x) => x.type === 'OPT') as { udpPayloadSize?: number } | undefined;
  assert.equal(opt?.udpPayloadSize, 4096, 'the backend was asked for at most 4096 bytes');
});

test('tickets drawn for a backend that goes down are drawn anew', async () => {
  const a = await backend(), b = await backend();
  const { bal, port } = await start(svc([a.addr, b.addr], {
    health_check: { enabled: true, interval: 50, timeout: 40, rise: 1, fall: 1, name: 'probe.fwd.test' },
  }));
  let r = await loadUdp(port, { n: 200, concurrency: 10, name: (i) => `w${i}.fwd.test` });
  assert.equal(r.rcodes[0], 200);
  assert.ok(b.got.length > 50);
  // B goes away; its probes fail and it is marked down, while 64 tickets still name it.
  b.sock.close();
  sockets.splice(sockets.indexOf(b.sock), 1);
  await until(() => st(bal).backends[1].state === 'down', 'B marked down');
  const s0 = st(bal);
  r = await loadUdp(port, { n: 300, concurrency: 10, name: (i) => `x${i}.fwd.test` });
  assert.equal(r.rcodes[0], 300);
  const s1 = st(bal);
  assert.equal(s1.backends[1].queries, s0.backends[1].queries, 'no query was sent to the backend marked down');
  assert.equal(s1.retries, s0.retries, 'so none needed a retry');
  assert.ok(s1.forwarded - s0.forwarded >= 290, `still forwarded by the addon (${s1.forwarded - s0.forwarded})`);
});

test('a pool with a local backend keeps its weights: the local ticket is taken, the query goes to JS', async () => {
  const a = await backend();
  const h = new StubHandler();
  const { bal, port } = await start(svc(['local', a.addr]), { localHandler: h });
  const r = await loadUdp(port, { n: 1000, concurrency: 10, name: (i) => `l${i}.fwd.test` });
  assert.equal(r.rcodes[0], 1000);
  assert.equal(h.calls + a.got.length, 1000);
  assert.ok(Math.abs(h.calls - 500) <= 25, `round-robin 1:1 kept: local got ${h.calls}`);
  const s = st(bal);
  assert.equal(s.forwarded, a.got.length, 'the remote half was forwarded by the addon');
});

test('a forwarded query retried on the local backend carries the client\'s address and port there', async () => {
  // The addon forwards to the silent remote; JS books the query without the client's address as
  // text (made only when asked): the local backend, taking the retry, must still get it.
  const silent = dgram.createSocket('udp4');
  sockets.push(silent);
  silent.bind(0, '127.0.0.1');
  await once(silent, 'listening');
  const seen: { addr: string; port: number }[] = [];
  const h = new StubHandler();
  const handle = h.handle.bind(h);
  h.handle = (msg, ctx, reply) => { seen.push({ addr: ctx.clientAddress, port: ctx.clientPort }); handle(msg, ctx, reply); };
  const { bal, port } = await start(svc(['local', `127.0.0.1:${silent.address().port}`]), { localHandler: h });
  const c = dgram.createSocket('udp4');
  sockets.push(c);
  c.bind(0, '127.0.0.1');
  await once(c, 'listening');
  const answers = new Set<number>();
  c.on('message', (m) => answers.add(m.readUInt16BE(0)));
  for (let i = 0; i < 6; i++) c.send(query(`r${i}.fwd.test`, 'A', 300 + i), port, '127.0.0.1');
  await until(() => answers.size === 6, 'every query answered');
  const s = st(bal);
  assert.ok(s.forwarded >= 1, `some went to the silent remote through the addon (${s.forwarded})`);
  assert.ok(s.retries >= 1, 'and were retried');
  assert.equal(h.calls, 6, 'the local backend answered all six in the end');
  for (const x of seen) assert.deepEqual(x, { addr: '127.0.0.1', port: c.address().port });
});

test('no forwarding where tickets drawn ahead would change the policy, or when turned off', async () => {
  const a = await backend(), b = await backend();
  const { bal } = await start(svc([a.addr, b.addr], { pool: { policy: 'least-outstanding', backends: [{ address: a.addr }, { address: b.addr }] } }));
  const port1 = bal.addresses()[0].port;
  assert.equal((await loadUdp(port1, { n: 200, concurrency: 10 })).rcodes[0], 200);
  assert.equal(st(bal).forwarded, 0, 'least-outstanding: every pick made at the time of the query');
  process.env.HADNS_FORWARD = '0';
  let off: { bal: Balancer; port: number };
  try { off = await start(svc([a.addr, b.addr])); } finally { delete process.env.HADNS_FORWARD; }
  assert.equal((await loadUdp(off.port, { n: 200, concurrency: 10 })).rcodes[0], 200);
  assert.equal(st(off.bal).forwarded, 0, 'HADNS_FORWARD=0');
  assert.equal(st(off.bal).relayed, 200, 'the reply relay is still on');
});

test('mutated queries: what the addon forwards, the scanner accepts; every query gets at most one answer', async () => {
  const a = await backend();
  const errors: unknown[] = [];
  const log: BalancerLog = { info() {}, warn() {}, debug() {}, error(o) { errors.push(o); } };
  const { bal, port } = await start(svc([a.addr]), { log });
  const seed = Number(process.env.HADNS_FUZZ_SEED ?? 7);
  const rnd = prng(seed);
  const base = [query('m.fwd.test', 'A', 1), ednsQuery('e.fwd.test', 1232, 1), query('x.y.z.fwd.test', 'TXT', 1)];
  const qs: Buffer[] = [];
  for (let i = 0; i < 2000; i++) {
    const m = Buffer.from(base[i % base.length]);
    const k = 1 + Math.floor(rnd() * 3);
    for (let j = 0; j < k; j++) m[2 + Math.floor(rnd() * (m.length - 2))] = Math.floor(rnd() * 256);
    m.writeUInt16BE(i + 1, 0);
    qs.push(rnd() < 0.2 ? m.subarray(0, Math.floor(rnd() * m.length)) : m);
  }
  const c = dgram.createSocket('udp4');
  sockets.push(c);
  c.bind(0, '127.0.0.1');
  await once(c, 'listening');
  const answers = new Map<number, number>();
  c.on('message', (m) => { if (m.length >= 2) answers.set(m.readUInt16BE(0), (answers.get(m.readUInt16BE(0)) ?? 0) + 1); });
  for (let i = 0; i < qs.length; i += 50) {
    for (const q of qs.slice(i, i + 50)) c.send(q, port, '127.0.0.1');
    await new Promise((r) => setImmediate(r));
  }
  await until(() => st(bal).live === 0, 'every query finished', 5000);
  assert.deepEqual(errors, [], `seed ${seed}: the addon forwarded only what the scanner accepts`);
  for (const [id, n] of answers) assert.ok(n === 1, `seed ${seed}: query ${id} answered ${n} times`);
  assert.ok(st(bal).forwarded > 100, `some mutants were still plain (${st(bal).forwarded})`);
  // Still serving.
  assert.equal((await loadUdp(port, { n: 50, concurrency: 5 })).rcodes[0], 50);
});

test('a forwarded query to a silent backend is hedged: the booking registers its deadlines', async () => {
  // A black hole (never answers) takes the first tickets, so the only query goes there from the
  // addon. Only JS's booking of the ticket puts it in the hedge and give-up queues; then B
  // answers. Without it the client would get nothing at all.
  const hole = dgram.createSocket('udp4');
  sockets.push(hole);
  hole.bind(0, '127.0.0.1');
  await once(hole, 'listening');
  let holeGot = 0;
  hole.on('message', () => { holeGot++; });
  const b = await backend();
  const conf = svc([`127.0.0.1:${hole.address().port}`, b.addr], { timeouts: { query_initial: 50, query_min: 30, query_max: 300 } });
  conf.pool!.backends![0]!.weight = 100;
  const { bal, port } = await start(conf);
  const t0 = performance.now();
  const got = await ask(port, [query('hedge.fwd.test', 'A', 9001)], 600);
  assert.equal(holeGot, 1, 'the first attempt went to the black hole');
  assert.equal(got.size, 1, 'the client got an answer');
  assert.equal(rcodeOf(got.get(9001)!), 0);
  const s = st(bal);
  assert.equal(s.forwarded, 1);
  assert.equal(s.backends[0].hedged, 1, 'hedged after the adaptive timeout');
  assert.ok(performance.now() - t0 < 1000);
});

/**
 * Two backends and a client in a worker thread, so that they run while this thread is busy:
 * the backends answer every query at once (A 192.0.2.1; backend 1 answers SERVFAIL to names
 * starting with "sf") and note the order in which the queries of a burst reached them, and on
 * request the client sends a burst of queries while this thread waits (Atomics.wait), so that
 * the balancer finds them all at once, then collects the answers.
 */
const BURST_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const dgram = require('node:dgram');
const flag = new Int32Array(workerData.sab);
function answer(q, rcode) {
  let p = 12; while (p < q.length && q[p] !== 0) p += q[p] + 1;
  const qend = p + 5;
  if (q.length < 12 || qend > q.length) return null;
  const rr = rcode ? Buffer.alloc(0) : Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
  const r = Buffer.concat([q.subarray(0, qend), rr]);
  r[2] |= 0x80; r[3] = 0x80 | rcode; r.writeUInt16BE(rcode ? 0 : 1, 6); r.writeUInt16BE(0, 8); r.writeUInt16BE(0, 10);
  return r;
}
const ports = [];
let bound = 0;
let order = []; // [backend, query number] as the queries of this burst came in
for (const k of [1, 2]) {
  const s = dgram.createSocket('udp4');
  s.on('message', (m, r) => {
    const sf = m.length > 15 && m.toString('latin1', 13, 15) === 'sf';
    if (m.length > 13) order.push([k, Number(m.toString('latin1', sf ? 15 : 14, 13 + m[12]))]);
    const a = answer(m, k === 1 && sf ? 2 : 0);
    if (a) s.send(a, r.port, r.address);
  });
  s.bind(0, '127.0.0.1', () => { ports[k - 1] = s.address().port; if (++bound === 2) parentPort.postMessage({ ports }); });
}
parentPort.on('message', ({ port, n, sf = true }) => {
  const c = dgram.createSocket('udp4');
  const got = new Map();
  order = [];
  c.bind(0, '127.0.0.1', () => {
    let sent = 0;
    for (let i = 1; i <= n; i++) {
      const name = (sf && i % 5 === 0 ? 'sf' : 'q') + i + '.burst.test';
      const h = Buffer.alloc(12); h.writeUInt16BE(i, 0); h[2] = 1; h.writeUInt16BE(1, 4);
      const labels = Buffer.concat(name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])));
      c.send(Buffer.concat([h, labels, Buffer.from([0, 0, 1, 0, 1])]), port, '127.0.0.1', () => {
        if (++sent === n) { Atomics.store(flag, 0, 1); Atomics.notify(flag, 0); }
      });
    }
  });
  c.on('message', (m) => { const id = m.readUInt16BE(0); const e = got.get(id); got.set(id, e ? [e[0], e[1] + 1] : [m[3] & 15, 1]);
    if (got.size === n) setTimeout(done, 50); });
  const t = setTimeout(done, 2000);
  function done() { clearTimeout(t); c.close(); parentPort.postMessage({ got: [...got], order }); }
});
`;

type Burst = { got: Map<number, [number, number]>; order: [number, number][] };

/** The burst worker, started for test t: its backends' ports, and burst() to send one. */
async function burstRig(t: { after: (fn: () => unknown) => void }): Promise<{ ports: number[]; burst: (port: number, n: number, sf?: boolean) => Promise<Burst> }> {
  const sab = new SharedArrayBuffer(4);
  const flag = new Int32Array(sab);
  const w = new Worker(BURST_WORKER, { eval: true, workerData: { sab } });
  t.after(() => w.terminate());
  const [{ ports }] = await once(w, 'message') as [{ ports: number[] }];
  const burst = async (port: number, n: number, sf = true): Promise<Burst> => {
    Atomics.store(flag, 0, 0);
    const res = once(w, 'message');
    w.postMessage({ port, n, sf });
    // This thread (and the balancer with it) waits until the worker has sent the whole burst
    // ('not-equal': it had, before this thread got here).
    assert.notEqual(Atomics.wait(flag, 0, 0, 5000), 'timed-out', 'the worker sent the burst');
    const [{ got, order }] = await res as [{ got: [number, [number, number]][]; order: [number, number][] }];
    return { got: new Map(got), order };
  };
  return { ports, burst };
}

function checkBurst(got: Map<number, [number, number]>, n: number, what: string): void {
  assert.equal(got.size, n, `${what}: every query answered`);
  for (const [id, [rcode, times]] of got) {
    assert.equal(times, 1, `${what}: query ${id} answered once`);
    assert.equal(rcode, 0, `${what}: query ${id} NOERROR (SERVFAIL from backend 1 is retried on backend 2)`);
  }
}

test('a burst is sent with the answers that come back meanwhile relayed in between, each query answered once', async (t) => {
  const { ports, burst } = await burstRig(t);
  const backends = ports.map((p) => `127.0.0.1:${p}`);
  // Many sockets per backend: a burst is sent in many sendmmsg calls, with room in between.
  const { bal, port } = await startOnLoop(svc(backends, { udp: { sockets_per_backend: 16 } }));
  const s0 = burstStats()!;
  let between = 0;
  for (let k = 0; k < 20 && between === 0; k++) {
    checkBurst((await burst(port, 60)).got, 60, `burst ${k + 1}`);
    between = burstStats()!.relayedBetween - s0.relayedBetween;
  }
  const s1 = burstStats()!;
  assert.ok(s1.bursts > s0.bursts, 'the listener sent bursts this way');
  assert.ok(between > 0, 'answers were relayed between the sends of a burst');
  assert.ok(st(bal).forwarded >= 40 && st(bal).retries > 0, `forwarded ${st(bal).forwarded}, retried ${st(bal).retries}`);
  // HADNS_FORWARD_INTERLEAVE=0: the burst is sent whole, answered all the same.
  process.env.HADNS_FORWARD_INTERLEAVE = '0';
  let off: { port: number };
  try { off = await startOnLoop(svc(backends, { udp: { sockets_per_backend: 4 } })); } finally { delete process.env.HADNS_FORWARD_INTERLEAVE; }
  await bal.close();
  checkBurst((await burst(off.port, 40)).got, 40, 'interleave off');
  assert.deepEqual(burstStats(), s1, 'no burst sent that way with HADNS_FORWARD_INTERLEAVE=0');
});

/** The backend (1 or 2) each query number went to, and how many runs of one backend they make in
 *  the client's order. */
function runs(order: [number, number][], n: number): { runs: number; fifo: boolean } {
  const to = new Array<number>(n + 1).fill(0);
  const last = [0, 0, 0];
  let fifo = true;
  for (const [k, i] of order) {
    to[i] = k;
    if (i < last[k]!) fifo = false;
    last[k] = i;
  }
  let r = 0;
  for (let i = 1; i <= n; i++) if (i === 1 || to[i] !== to[i - 1]) r++;
  return { runs: r, fifo };
}

test('a burst goes to each backend as one block of consecutive queries, in arrival order', async (t) => {
  const { ports, burst } = await burstRig(t);
  const backends = ports.map((p) => `127.0.0.1:${p}`);
  // Four sockets per backend: a block is laid over them socket by socket, and still arrives in order.
  const { bal, port } = await startOnLoop(svc(backends, { udp: { sockets_per_backend: 4 } }));
  const s0 = burstStats()!;
  const on = await burst(port, 60, false);
  checkBurst(on.got, 60, 'blocks');
  assert.equal(on.order.length, 60, 'each query reached a backend once');
  const r = runs(on.order, 60);
  assert.ok(burstStats()!.blocked > s0.blocked, 'the burst was laid out in blocks');
  // One read of 60 (64 slots, 64 tickets): two blocks, the policy's share of each backend.
  assert.ok(r.runs <= 4, `queries 1..60 went to the backends in ${r.runs} runs`);
  assert.ok(r.fifo, 'each backend got its queries in arrival order');
  const per = [1, 2].map((k) => on.order.filter(([b]) => b === k).length);
  assert.ok(per[0]! >= 25 && per[1]! >= 25, `round robin still halves the burst: ${per.join(' / ')}`);
  // HADNS_FORWARD_BLOCKS=0: dealt alternately, as the tickets come.
  process.env.HADNS_FORWARD_BLOCKS = '0';
  let off: { bal: Balancer; port: number };
  try { off = await startOnLoop(svc(backends, { udp: { sockets_per_backend: 4 } })); } finally { delete process.env.HADNS_FORWARD_BLOCKS; }
  await bal.close();
  const s1 = burstStats()!;
  const alt = await burst(off.port, 60, false);
  checkBurst(alt.got, 60, 'blocks off');
  assert.equal(burstStats()!.blocked, s1.blocked, 'no burst laid out in blocks with HADNS_FORWARD_BLOCKS=0');
  assert.ok(runs(alt.order, 60).runs >= 20, `alternately: ${runs(alt.order, 60).runs} runs`);
});
