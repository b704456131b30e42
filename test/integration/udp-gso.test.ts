/**
 * UDP GSO in the batched sender (native/udp_batch.c, flush_out): runs of datagrams to one
 * destination leave as one UDP_SEGMENT message the kernel cuts up again. What a receiver gets must
 * not change: every datagram, its exact bytes and length, in order per destination — runs capped
 * at 64, a shorter datagram ending a run, sizes changing, two destinations interleaved, datagrams
 * too large for a run (over 1232 bytes) and larger than a slot. Loopback only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { BatchUdpSocket, gsoStats } from '../../src/util/udp-batch.js';

interface Planned { to: 'a' | 'b'; len: number }

/** The batch: what goes out in one flush, in this order. */
function plan(): Planned[] {
  const p: Planned[] = [];
  for (let i = 0; i < 100; i++) p.push({ to: 'a', len: 40 }); // 64 + 36: the cap on a run
  p.push({ to: 'a', len: 30 }); // shorter: the last of its run
  for (const len of [50, 60, 50, 50, 29, 29]) p.push({ to: 'a', len }); // sizes changing
  for (let i = 0; i < 20; i++) p.push({ to: i % 3 === 0 ? 'b' : 'a', len: 33 }); // interleaved
  for (let i = 0; i < 3; i++) p.push({ to: 'b', len: 1300 }); // over the GSO segment cap: alone
  p.push({ to: 'b', len: 5000 }); // larger than a slot: sent at once, apart from the batch
  for (let i = 0; i < 10; i++) p.push({ to: 'b', len: 48 });
  return p;
}

/** Datagram `i`: its index in the first two bytes, then a pattern of its own. */
function payload(i: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  for (let j = 0; j < len; j++) b[j] = (i * 7 + j) & 0xff;
  b.writeUInt16BE(i, 0);
  return b;
}

async function receiver(expect: number): Promise<{ port: number; got: Promise<Buffer[]>; close: () => void }> {
  const s = dgram.createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  const out: Buffer[] = [];
  const got = new Promise<Buffer[]>((resolve) => {
    s.on('message', (m) => { out.push(m); if (out.length === expect) resolve(out); });
  });
  return { port: s.address().port, got, close: () => s.close() };
}

async function sendBatch(env: string | undefined): Promise<{ a: Buffer[]; b: Buffer[]; planned: Planned[]; gso: { messages: number; datagrams: number } }> {
  const planned = plan();
  const ra = await receiver(planned.filter((p) => p.to === 'a').length);
  const rb = await receiver(planned.filter((p) => p.to === 'b').length);
  const before = process.env.HADNS_UDP_GSO;
  if (env === undefined) delete process.env.HADNS_UDP_GSO; else process.env.HADNS_UDP_GSO = env;
  // The addon reads HADNS_UDP_GSO when a socket is opened.
  const tx = BatchUdpSocket.bind('127.0.0.1', 0, { slots: 256 });
  if (before === undefined) delete process.env.HADNS_UDP_GSO; else process.env.HADNS_UDP_GSO = before;
  const g0 = gsoStats()!;
  // Queued inside a batch callback, the datagrams leave in one flush at the end of the batch.
  tx.onMessage = () => { planned.forEach((p, i) => tx.send(payload(i, p.len), p.len, '127.0.0.1', p.to === 'a' ? ra.port : rb.port)); };
  tx.start();
  const trigger = dgram.createSocket('udp4');
  trigger.send(Buffer.from('go'), tx.port, '127.0.0.1');
  try {
    const [a, b] = await Promise.all([ra.got, rb.got]);
    const g1 = gsoStats()!;
    return { a, b, planned, gso: { messages: g1.messages - g0.messages, datagrams: g1.datagrams - g0.datagrams } };
  } finally {
    trigger.close(); ra.close(); rb.close(); tx.close();
  }
}

function check(r: Awaited<ReturnType<typeof sendBatch>>): void {
  for (const to of ['a', 'b'] as const) {
    const want = r.planned.map((p, i) => ({ ...p, i })).filter((p) => p.to === to);
    const got = to === 'a' ? r.a : r.b;
    // The slot-sized one goes straight out with sendTo, ahead of the batch; the rest in order.
    const order = (xs: Buffer[]) => xs.map((x) => x.readUInt16BE(0));
    const wantOrder = [...want.filter((p) => p.len > 4096), ...want.filter((p) => p.len <= 4096)].map((p) => p.i);
    assert.deepEqual(order(got), wantOrder, `datagrams to ${to} in order`);
    for (const m of got) {
      const i = m.readUInt16BE(0);
      assert.ok(payload(i, r.planned[i]!.len).equals(m), `datagram ${i} to ${to} arrived whole (${m.length} of ${r.planned[i]!.len} bytes)`);
    }
  }
}

test('GSO: a batch arrives datagram for datagram as sent, and went out in runs', async () => {
  const r = await sendBatch(undefined);
  check(r);
  // Runs of two or more: 64 × 40, then 36 × 40 + 30 (the shorter one ends it), 60 + 50, 50 + 29,
  // the interleaved 33s two by two, 10 × 48: at least the first two runs, 101 datagrams.
  assert.ok(r.gso.messages >= 3, `GSO messages sent: ${r.gso.messages}`);
  assert.ok(r.gso.datagrams >= 101, `datagrams carried in GSO messages: ${r.gso.datagrams}`);
});

test('GSO off (HADNS_UDP_GSO=0): the same datagrams, no GSO message', async () => {
  const r = await sendBatch('0');
  check(r);
  assert.deepEqual(r.gso, { messages: 0, datagrams: 0 });
});

test('a pending socket error (ICMP port unreachable) is not a GSO refusal: the run goes, GSO stays on', async () => {
  // A connected socket whose peer port is closed. All in one callback (so that Node's loop does
  // not read the socket's error meanwhile): a datagram over a slot leaves at once and brings an
  // ICMP port unreachable back through loopback's softirq, which leaves ECONNREFUSED pending on
  // the socket; then a receiver binds that port, and a run of 10 is queued, to leave in one GSO
  // message at the end of the batch. That send reports the pending error; the run must still go.
  const probe = dgram.createSocket('udp4');
  probe.bind(0, '127.0.0.1');
  await once(probe, 'listening');
  const port = probe.address().port;
  probe.close();
  const conn = BatchUdpSocket.connect('127.0.0.1', port, { slotSize: 512 });
  conn.start();
  const trigger = BatchUdpSocket.bind('127.0.0.1', 0, { slots: 8 });
  const poke = dgram.createSocket('udp4');
  let rx: BatchUdpSocket | null = null;
  const got: number[][] = [];
  let want = 0, arrived: () => void = () => {};
  try {
    const batch = async (tag: number, first: () => void): Promise<void> => {
      want += 10;
      const all = new Promise<void>((r) => { arrived = r; });
      trigger.onMessage = () => {
        first();
        for (let i = 0; i < 10; i++) conn.sendConnected(Buffer.from([tag, i, 0, 0, 0, 0]), 6);
      };
      poke.send(Buffer.from('go'), trigger.port, '127.0.0.1');
      await all;
    };
    trigger.start();
    const g0 = gsoStats()!;
    await batch(1, () => {
      conn.sendConnected(Buffer.alloc(600), 600); // over a slot: sent now, to nobody
      rx = BatchUdpSocket.bind('127.0.0.1', port);
      rx.onMessage = (m) => { got.push([m[0]!, m[1]!]); if (got.length === want) arrived(); };
      rx.start();
    });
    const g1 = gsoStats()!;
    assert.deepEqual(got, Array.from({ length: 10 }, (_, i) => [1, i]), 'the run arrived, in order');
    assert.equal(g1.refused, g0.refused, 'the pending error was not taken for a refusal of GSO');
    assert.equal(conn.stats.dropped, 0, 'nothing dropped');
    await batch(2, () => {});
    const g2 = gsoStats()!;
    assert.equal(got.length, 20);
    assert.ok(g2.messages > g1.messages, `the next run went out as a GSO message (${g2.messages - g1.messages})`);
  } finally {
    poke.close(); trigger.close(); conn.close(); (rx as BatchUdpSocket | null)?.close();
  }
});
