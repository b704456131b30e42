/**
 * The forwarding thread (HADNS_FORWARD_THREAD=1; native/udp_batch.c, "The forwarding thread";
 * docs/balancer-p99.md, "The design left"). The balancer's forwarding and relay suites run
 * again in this process with the thread on (the ones about what only Node's loop does start
 * their balancer on the loop, balancer-forward.test.ts startOnLoop), and then what only the
 * thread can do: answer plain queries while Node's loop is blocked, and stop when the service
 * closes.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import dgram from 'node:dgram';
import { Worker } from 'node:worker_threads';
import { startBalancer, type Balancer } from '../../src/balancer/service.js';
import type { DnsServiceStats } from '../../src/balancer/dns-proxy.js';
import { silentLog } from '../../src/balancer/sockets.js';
import { BatchUdpSocket, burstStats } from '../../src/util/udp-batch.js';
import { query } from './balancer-util.js';

process.env.HADNS_FORWARD_THREAD = '1';
await import('./balancer-forward.test.js');
await import('./balancer-relay.test.js');
// Not the fuzz suite: with the thread it lost 6 of 400 well-formed queries beside a lying
// backend in one CI run (a known bug, docs/balancer.md; why the thread stays experimental).

const started: Balancer[] = [];
after(async () => { for (const b of started) await b.close(); });

/** Two backends and a client in a worker: they go on while this thread (Node's loop) is blocked. */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const dgram = require('node:dgram');
const flag = new Int32Array(workerData.sab);
const ports = [];
for (const k of [1, 2]) {
  const s = dgram.createSocket('udp4');
  s.on('message', (q, r) => {
    let p = 12; while (p < q.length && q[p] !== 0) p += q[p] + 1;
    const a = Buffer.concat([q.subarray(0, p + 5), Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, k])]);
    a[2] |= 0x80; a[3] = 0x80; a.writeUInt16BE(1, 6);
    s.send(a, r.port, r.address);
  });
  s.bind(0, '127.0.0.1', () => { ports.push(s.address().port); if (ports.length === 2) parentPort.postMessage({ ports }); });
}
parentPort.on('message', ({ port, n }) => {
  const c = dgram.createSocket('udp4');
  const got = new Set();
  let t;
  const done = (v) => { clearTimeout(t); c.close(); parentPort.postMessage({ got: got.size }); Atomics.store(flag, 0, v); Atomics.notify(flag, 0); };
  c.on('message', (m) => { got.add(m.readUInt16BE(0)); if (got.size === n) done(1); });
  c.bind(0, '127.0.0.1', () => {
    let i = 0;
    // 10 at a time, each batch after the last one's answers: a client waiting for its answers.
    const next = () => {
      for (let k = 0; k < 10 && i < n; k++) {
        i++;
        const h = Buffer.alloc(12); h.writeUInt16BE(i, 0); h[2] = 1; h.writeUInt16BE(1, 4);
        c.send(Buffer.concat([h, Buffer.from([1, 113, 6, 116, 104, 114, 101, 97, 100, 4, 116, 101, 115, 116, 0, 0, 1, 0, 1])]), port, '127.0.0.1');
      }
    };
    c.on('message', () => { if (got.size % 10 === 0 && got.size < n) next(); });
    next();
    t = setTimeout(() => done(2), 3000);
  });
});
`;

test('plain queries are forwarded and answered by the thread while Node\'s loop is blocked', async (t) => {
  const sab = new SharedArrayBuffer(4);
  const flag = new Int32Array(sab);
  const w = new Worker(WORKER, { eval: true, workerData: { sab } });
  t.after(() => w.terminate());
  const [{ ports }] = await once(w, 'message') as [{ ports: number[] }];
  const bal = await startBalancer({
    services: [{
      name: 'dns', mode: 'dns', listen: ['127.0.0.1:0'],
      pool: { policy: 'round-robin', backends: ports.map((p) => ({ address: `127.0.0.1:${p}` })) },
      health_check: { enabled: false },
    }],
  }, { log: silentLog });
  started.push(bal);
  const st = (): DnsServiceStats => bal.stats().services[0] as DnsServiceStats;
  const port = bal.addresses().find((x) => x.proto === 'udp')!.port;
  assert.equal(st().forwardThread?.running, true, 'the service runs a forwarding thread');
  const s0 = st();
  const n = 200;
  const res = once(w, 'message');
  w.postMessage({ port, n });
  // Node's loop stops here until the worker has every answer (1) or gives up after 3 s (2).
  Atomics.wait(flag, 0, 0, 5000);
  assert.equal(Atomics.load(flag, 0), 1, 'every query answered while the loop was blocked');
  const [{ got }] = await res as [{ got: number }];
  assert.equal(got, n);
  const s1 = st(); // books what the thread forwarded meanwhile
  assert.equal(s1.forwarded - s0.forwarded, n, 'all forwarded by the thread, booked afterwards');
  assert.equal(s1.relayed - s0.relayed, n, 'all relayed by the thread');
  assert.equal(s1.answers - s0.answers, n);
  assert.equal(s1.live, 0);
  assert.ok(s1.forwardThread!.batches > 0 && s1.forwardThread!.dropped === 0, JSON.stringify(s1.forwardThread));
  const q = s1.backends.map((b) => b.queries);
  assert.ok(Math.abs(q[0]! - q[1]!) <= 2, `round robin kept: ${q.join(' / ')}`);
  await bal.close();
  assert.equal(st().forwardThread?.running, false, 'closing the service stopped the thread');
});

test('an answer relayed before its burst\'s tickets are published waits for them: booked once, finished once', async (t) => {
  // The thread sends a burst's first query before it handles the rest and publishes the tickets
  // they took, and relays the answers that are back by then (udp_batch.c, take_batch). An answer
  // to that first query is relayed there too; its completion must not reach JS before its ticket
  // (JS would finish a query it never booked, then book it as not relayed: an attempt left
  // outstanding, a retry, a second answer). HADNS_TEST_BURST_STALL_MS holds the thread 40 ms
  // before and after those answers: the backend (this thread) answers in the first, JS's tick
  // drains the ring in the second.
  const backends: dgram.Socket[] = [];
  t.after(() => { for (const s of backends) s.close(); });
  for (let k = 0; k < 2; k++) {
    const s = dgram.createSocket('udp4');
    s.on('message', (q, r) => {
      const a = Buffer.from(q); a[2] |= 0x80; a[3] = 0x80; // an empty NOERROR answer
      s.send(a, r.port, r.address);
    });
    s.bind(0, '127.0.0.1');
    await once(s, 'listening');
    backends.push(s);
  }
  process.env.HADNS_TEST_BURST_STALL_MS = '40';
  let bal: Balancer;
  try {
    bal = await startBalancer({
      services: [{
        name: 'dns', mode: 'dns', listen: ['127.0.0.1:0'],
        pool: { policy: 'round-robin', backends: backends.map((s) => ({ address: `127.0.0.1:${s.address().port}` })) },
        timeouts: { query_initial: 150, query_min: 150, query_max: 300 },
        health_check: { enabled: false },
      }],
    }, { log: silentLog });
  } finally {
    delete process.env.HADNS_TEST_BURST_STALL_MS;
  }
  started.push(bal);
  const st = (): DnsServiceStats => bal.stats().services[0] as DnsServiceStats;
  const port = bal.addresses().find((x) => x.proto === 'udp')!.port;
  assert.equal(st().forwardThread?.running, true);
  // 16 queries in one flush (one GSO message where the kernel has it): the thread reads them
  // as one batch, a burst.
  const n = 16;
  const answers = new Map<number, number>();
  const client = BatchUdpSocket.bind('127.0.0.1', 0, { slots: 64 });
  t.after(() => client.close());
  let all!: () => void;
  const done = new Promise<void>((r) => { all = r; });
  client.onMessage = (m) => {
    if (m.length === 2) { // the trigger: the burst goes out in this batch's flush
      for (let i = 0; i < n; i++) { const q = query(`s${String(i).padStart(2, '0')}.stall.test`, 'A', 1 + i); client.send(q, q.length, '127.0.0.1', port); }
      return;
    }
    const id = m.readUInt16BE(0);
    answers.set(id, (answers.get(id) ?? 0) + 1);
    if (answers.size === n) all();
  };
  client.start();
  const b0 = burstStats()!;
  const trigger = dgram.createSocket('udp4');
  t.after(() => trigger.close());
  trigger.send(Buffer.from('go'), client.port, '127.0.0.1');
  await done;
  const b1 = burstStats()!;
  assert.ok(b1.bursts > b0.bursts, 'the 16 queries came as one burst');
  assert.ok(b1.relayedBetween > b0.relayedBetween, 'the first query\'s answer was relayed inside the burst\'s batch');
  // Past every deadline (query_max 300 ms): a query booked as not relayed would have been retried.
  await new Promise((r) => setTimeout(r, 500));
  const s = st();
  assert.deepEqual([...answers.values()], Array(n).fill(1), 'one answer per query');
  assert.equal(s.forwarded, n);
  assert.equal(s.relayed, n, 'every answer relayed');
  assert.equal(s.answers, n);
  assert.equal(s.retries, 0, 'no query was retried');
  assert.equal(s.live, 0);
  for (const b of s.backends) assert.equal(b.outstanding, 0, 'attempts released');
});
