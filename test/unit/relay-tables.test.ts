/**
 * The reply relay's shared tables (src/balancer/relay.ts) and the addon's side of their protocol
 * (native/udp_batch.c, "The reply relay"): route entries are seqlocks whose writers give up rather
 * than wait, the claim is taken by compare-and-swap (the relay's -1 against JS's OWNED), and the
 * completion ring's cursors are int32 that wrap. These are what lets the addon answer from a
 * thread of its own beside JS (docs/balancer-p99.md, "The design left").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import dnsPacket from 'dns-packet';
import { CLAIMED, IDLE, OWNED, ROUTE_INTS, ROUTE_SLOTS, RelayTables } from '../../src/balancer/relay.js';
import { BatchUdpSocket } from '../../src/util/udp-batch.js';

const R_ID = 0, R_QIDX = 1, R_SEQ = 13;

function entry(route: Int32Array, id: number): number { return (id & (ROUTE_SLOTS - 1)) * ROUTE_INTS; }

test('a route entry being written is left alone: write and forget give up, and say so', () => {
  const route = RelayTables.newRoute();
  const e = entry(route, 77);
  assert.equal(RelayTables.write(route, 77, 5, 9, 0, 4, 53, 0x7f000001, 0, 0, 0, 1234, 30), true);
  assert.equal(route[e + R_ID], 78);
  assert.equal(route[e + R_SEQ], 2, 'a write moves the sequence by two: odd while writing, even after');
  // Another writer (the addon's thread) holds the entry: the sequence is odd.
  route[e + R_SEQ] = 3;
  assert.equal(RelayTables.write(route, 77 + ROUTE_SLOTS, 6, 1, 0, 4, 53, 0x7f000001, 0, 0, 0, 1, 30), false);
  assert.equal(route[e + R_QIDX], 5, 'nothing written');
  RelayTables.forget(route, 77);
  assert.equal(route[e + R_ID], 78, 'forget leaves a locked entry too (a hint only)');
  route[e + R_SEQ] = 4;
  RelayTables.forget(route, 77);
  assert.equal(route[e + R_ID], 0);
  assert.equal(route[e + R_SEQ], 6);
  RelayTables.forget(route, 77); // gone: nothing to do, the sequence stays
  assert.equal(route[e + R_SEQ], 6);
});

test('the completion ring drains in order across the int32 wrap of its cursors', () => {
  const t = new RelayTables(4);
  const cur = new Int32Array(t.ring.buffer, 0, 4);
  const start = 0x7fffffff - 1;
  cur[0] = start; cur[2] = start;
  assert.equal(t.pending(), false);
  // Produce three records as the addon does: record at cursor & (capacity - 1), then the cursor.
  let c = start;
  for (let i = 0; i < 3; i++) {
    const o = 8 + (c & 3) * 6;
    t.ring.set([i, 100 + i, i, 7, 1000 + i, 0], o);
    c = (c + 1) | 0;
  }
  cur[0] = c;
  assert.ok(c < 0, 'the cursor wrapped');
  assert.equal(t.pending(), true);
  const got: number[] = [];
  t.drain((tag, id, qidx, qgen, at) => { got.push(id); assert.equal(at, 1000 + tag); assert.equal(qgen, 7); assert.equal(qidx, tag); });
  assert.deepEqual(got, [100, 101, 102]);
  assert.equal(t.pending(), false);
  assert.throws(() => new RelayTables(3), /power of two/);
});

/** A relay socket facing a fake backend, and a listener the relay answers clients from. */
async function rig(): Promise<{ up: BatchUdpSocket; lis: BatchUdpSocket; backend: dgram.Socket; client: dgram.Socket;
  t: RelayTables; route: Int32Array; toJs: Buffer[]; close: () => void }> {
  const backend = dgram.createSocket('udp4');
  backend.bind(0, '127.0.0.1');
  await once(backend, 'listening');
  const client = dgram.createSocket('udp4');
  client.bind(0, '127.0.0.1');
  await once(client, 'listening');
  const lis = BatchUdpSocket.bind('127.0.0.1', 0).start();
  const up = BatchUdpSocket.connect('127.0.0.1', backend.address().port);
  const toJs: Buffer[] = [];
  up.onMessage = (m) => { toJs.push(Buffer.from(m)); };
  up.start();
  const t = new RelayTables();
  const route = RelayTables.newRoute();
  up.enableRelay(route, t.claim, t.ring, 0);
  return { up, lis, backend, client, t, route, toJs, close: () => { up.close(); lis.close(); backend.close(); client.close(); } };
}

/** `p`, or a rejection after 3 s: a datagram that never comes fails the test instead of hanging it. */
function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_res, rej) => { timer = setTimeout(() => rej(new Error(`no ${what} within 3 s`)), 3000); })])
    .finally(() => clearTimeout(timer));
}

function answer(id: number, name: string): Buffer {
  return dnsPacket.encode({ type: 'response', id, flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
    questions: [{ type: 'A', name }], answers: [{ type: 'A', name, ttl: 60, data: '192.0.2.1' }] });
}

test('the addon relays only through a stable entry and an unclaimed query, and claims it by swap', async () => {
  const { up, lis, backend, client, t, route, toJs, close } = await rig();
  try {
    const name = 'seq.relay.test';
    const q = dnsPacket.encode({ type: 'query', id: 1, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] });
    const qe = q.length; // header + question, no OPT
    const cport = client.address().port;
    // The question leaves through the relay socket, which records it in the entry (note_question).
    const send = (id: number, qidx: number): void => {
      assert.equal(RelayTables.write(route, id, qidx, 3, lis.index, 4, cport, 0x7f000001, 0, 0, 0, 4242, qe), true);
      Atomics.store(t.claim, qidx, 3);
      const m = Buffer.from(q); m.writeUInt16BE(id, 0);
      up.sendConnected(m, m.length);
    };
    const fromUp = (): Promise<number> => new Promise((res) => backend.once('message', (_m, ri) => res(ri.port))); // the relay socket's port
    // 1. A stable entry, the query unclaimed: relayed to the client with its ID, and claimed (-1).
    let upAddr = fromUp();
    send(10, 1);
    const bport = await within(upAddr, 'query at the backend');
    const got = once(client, 'message');
    backend.send(answer(10, name), bport, '127.0.0.1');
    const [msg] = (await within(got, 'relayed answer')) as [Buffer];
    assert.equal(msg.readUInt16BE(0), 4242, 'the client\'s ID back');
    assert.equal(t.claim[1], CLAIMED);
    assert.equal(t.pending(), true);
    t.drain(() => {});
    // 2. The entry is being written (odd sequence): the answer goes to JS, the claim stays.
    upAddr = fromUp();
    send(11, 2);
    await within(upAddr, 'query at the backend');
    const e = entry(route, 11);
    const seq = route[e + R_SEQ]!;
    route[e + R_SEQ] = seq + 1;
    let js = new Promise<void>((res) => { up.onMessage = (m) => { toJs.push(Buffer.from(m)); res(); }; });
    backend.send(answer(11, name), bport, '127.0.0.1');
    await within(js, 'answer through JS');
    assert.equal(toJs.at(-1)!.readUInt16BE(0), 11, 'through JS');
    assert.equal(t.claim[2], 3, 'not claimed');
    route[e + R_SEQ] = seq;
    // 3. JS took the query to answer it itself (OWNED): the relay leaves it to JS.
    upAddr = fromUp();
    send(12, 3);
    await within(upAddr, 'query at the backend');
    assert.equal(Atomics.compareExchange(t.claim, 3, 3, OWNED), 3);
    js = new Promise<void>((res) => { up.onMessage = (m) => { toJs.push(Buffer.from(m)); res(); }; });
    backend.send(answer(12, name), bport, '127.0.0.1');
    await within(js, 'answer through JS');
    assert.equal(toJs.at(-1)!.readUInt16BE(0), 12);
    assert.equal(t.claim[3], OWNED, 'the relay did not swap JS\'s claim');
    assert.equal(t.pending(), false, 'no completion for either');
    Atomics.store(t.claim, 3, IDLE);
  } finally {
    close();
  }
});
