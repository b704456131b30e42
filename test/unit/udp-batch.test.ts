/**
 * The batched UDP addon (native/udp_batch.c via util/udp-batch.ts) on loopback: batching, replies,
 * addresses as Node formats them, oversized datagrams, connected sockets and their ICMP errors,
 * send-queue overflow, exceptions in handlers, close. Plus the address codec it relies on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import fc from 'fast-check';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { BatchUdpSocket, ForwardThread, formatIp6, parseIp, setLoopIdleTime, useBatchUdp } from '../../src/util/udp-batch.js';

function client(type: 'udp4' | 'udp6' = 'udp4'): Promise<dgram.Socket> {
  const c = dgram.createSocket(type);
  return new Promise((r) => c.bind(0, type === 'udp4' ? '127.0.0.1' : '::1', () => {
    try { c.setRecvBufferSize(1 << 20); } catch { /* capped by net.core.rmem_max */ }
    r(c);
  }));
}

function collect(c: dgram.Socket, n: number): Promise<Buffer[]> {
  const got: Buffer[] = [];
  return new Promise((resolve) => {
    c.on('message', (m) => { got.push(m); if (got.length === n) resolve(got); });
  });
}

test('the addon is built and selected on Linux', () => {
  assert.equal(process.platform, 'linux');
  assert.equal(useBatchUdp(), true);
});

test('setLoopIdleTime switches libuv\'s idle-time accounting (the extra zero-timeout poll) off and on again', async () => {
  // The flag is what makes libuv poll twice per wait; its visible effect is Node's idle time.
  const idleOver = async (ms: number): Promise<number> => {
    const e0 = performance.eventLoopUtilization();
    await sleep(ms);
    return performance.eventLoopUtilization(e0).idle;
  };
  assert.ok(await idleOver(40) > 20, 'Node counts idle time by default');
  try {
    assert.equal(setLoopIdleTime(false), true, 'it was on (Node turns it on)');
    assert.equal(await idleOver(40), 0, 'off: libuv no longer times its waits');
    assert.equal(setLoopIdleTime(false), false, 'a second call finds it off');
  } finally {
    assert.equal(setLoopIdleTime(true), false);
  }
  assert.ok(await idleOver(40) > 20, 'back on: idle time is counted again');
});

test('a burst arrives in batches and every datagram is answered to its sender', async () => {
  const s = BatchUdpSocket.bind('127.0.0.1', 0);
  const seen: string[] = [];
  s.onMessage = (msg, addr, port, slot) => {
    seen.push(`${addr}:${port}`);
    const out = Buffer.concat([Buffer.from('re:'), msg]);
    s.sendReply(slot, out, out.length);
  };
  s.start();
  const c = await client();
  const N = 150; // replies arrive faster than dgram reads: stay well inside a default receive buffer
  const replies = collect(c, N);
  // Sent synchronously before the event loop turns: they queue in the kernel and arrive in batches.
  for (let i = 0; i < N; i++) c.send(Buffer.from(`q${i}`), s.port, '127.0.0.1');
  const got = (await replies).map(String).sort();
  assert.deepEqual(got, Array.from({ length: N }, (_, i) => `re:q${i}`).sort());
  assert.equal(s.stats.received, N);
  assert.ok(s.stats.batches < N, `expected batching, got ${s.stats.batches} batches for ${N} datagrams`);
  assert.equal(s.stats.sent, N);
  assert.ok(seen.every((a) => a === `127.0.0.1:${c.address().port}`));
  c.close();
  s.close();
});

test('onSlot: the datagram as (slot view, length), one view per slot reused across batches, onMessage not called', async () => {
  const s = BatchUdpSocket.bind('127.0.0.1', 0, { slots: 4, slotSize: 512 });
  const views = new Map<number, Buffer>();
  let reused = 0, viaMessage = 0;
  const got: string[] = [];
  s.onMessage = () => { viaMessage++; };
  s.onSlot = (buf, len, addr, port, slot) => {
    assert.equal(buf.length, 512); // the whole slot; the datagram is its first len bytes
    const prev = views.get(slot);
    if (prev === undefined) views.set(slot, buf);
    else if (prev === buf) reused++;
    else assert.fail(`slot ${slot} got a new view`);
    got.push(buf.toString('latin1', 0, len));
    const out = Buffer.from(`re:${buf.toString('latin1', 0, len)}`);
    s.sendReply(slot, out, out.length);
    assert.equal(addr, '127.0.0.1');
    assert.ok(port > 0);
  };
  s.start();
  const c = await client();
  const N = 40; // 4 slots: at least 10 batches, so slots are reused
  const replies = collect(c, N);
  // Lengths vary (a short datagram after a long one must not show the long one's tail).
  for (let i = 0; i < N; i++) c.send(Buffer.from(i % 2 ? `q${i}` : `query-number-${i}`), s.port, '127.0.0.1');
  const r = (await replies).map(String).sort();
  const want = Array.from({ length: N }, (_, i) => (i % 2 ? `q${i}` : `query-number-${i}`));
  assert.deepEqual(got.slice().sort(), want.slice().sort());
  assert.deepEqual(r, want.map((w) => `re:${w}`).sort());
  assert.equal(viaMessage, 0);
  assert.ok(views.size <= 4);
  assert.equal(reused, N - views.size);
  c.close();
  s.close();
});

test('IPv6 client addresses are formatted as Node formats them; replies later than the batch go out at once', async () => {
  const s = BatchUdpSocket.bind('::1', 0);
  s.onMessage = (msg, addr, port, slot) => {
    const m = slot * 8, meta = s.inMeta;
    const w = [meta[m + 1], meta[m + 3], meta[m + 4], meta[m + 5], meta[m + 6]];
    const copy = Buffer.from(`${addr}|${msg}`);
    // Asynchronous reply (as a forwarded query): the address travels as words.
    setImmediate(() => s.sendWords(copy, copy.length, w[0], port, w[1], w[2], w[3], w[4]));
  };
  s.start();
  const c = await client('udp6');
  const r = collect(c, 1);
  c.send('hello', s.port, '::1');
  assert.equal(String((await r)[0]), '::1|hello');
  c.close();
  s.close();
});

test('a datagram larger than a slot is counted and dropped, the next one is served', async () => {
  const s = BatchUdpSocket.bind('127.0.0.1', 0, { slotSize: 512, slots: 4 });
  const got: number[] = [];
  s.onMessage = (msg, _a, _p, slot) => { got.push(msg.length); s.sendReply(slot, msg, msg.length); };
  s.start();
  const c = await client();
  const r = collect(c, 1);
  c.send(Buffer.alloc(2000, 1), s.port, '127.0.0.1');
  c.send(Buffer.alloc(100, 2), s.port, '127.0.0.1');
  assert.equal((await r)[0].length, 100);
  assert.deepEqual(got, [100]);
  assert.equal(s.stats.truncated, 1);
  c.close();
  s.close();
});

test('replies larger than a slot and more replies than slots still all go out', async () => {
  const s = BatchUdpSocket.bind('127.0.0.1', 0, { slotSize: 512, slots: 2 });
  s.onMessage = (msg, _a, _p, slot) => {
    // Three replies per query: more than the two out slots; one larger than a slot.
    const big = Buffer.alloc(1500, msg[0]);
    s.sendReply(slot, msg, msg.length);
    s.sendReply(slot, big, big.length);
    s.sendReply(slot, msg, msg.length);
  };
  s.start();
  const c = await client();
  const r = collect(c, 12);
  for (let i = 0; i < 4; i++) c.send(Buffer.from([i]), s.port, '127.0.0.1');
  const sizes = (await r).map((b) => b.length).sort((a, b) => a - b);
  assert.deepEqual(sizes, [1, 1, 1, 1, 1, 1, 1, 1, 1500, 1500, 1500, 1500]);
  c.close();
  s.close();
});

test('a connected socket only hears its peer and reports ICMP port unreachable as an error', async () => {
  const peer = await client();
  const stranger = await client();
  const s = BatchUdpSocket.connect('127.0.0.1', peer.address().port);
  const heard: string[] = [];
  let err = 0;
  const gotErr = new Promise<void>((r) => { s.onError = (e) => { err = e; r(); }; });
  const gotMsg = new Promise<void>((r) => { s.onMessage = (m) => { heard.push(String(m)); r(); }; });
  s.start();
  stranger.send('from stranger', s.port, '127.0.0.1');
  const back = once(peer, 'message');
  s.sendConnected(Buffer.from('ping'), 4);
  const [m, rinfo] = await back as [Buffer, dgram.RemoteInfo];
  assert.equal(String(m), 'ping');
  assert.equal(rinfo.port, s.port);
  peer.send('pong', s.port, '127.0.0.1');
  await gotMsg;
  assert.deepEqual(heard, ['pong']);
  // The peer goes away: the next datagram draws ICMP port unreachable, reported once.
  const peerPort = peer.address().port;
  peer.close();
  s.sendConnected(Buffer.from('ping'), 4);
  await gotErr;
  assert.equal(err, 111); // ECONNREFUSED
  // The socket keeps working once the peer is back (libuv stops a poll handle on POLLERR).
  const reborn = dgram.createSocket('udp4');
  await new Promise<void>((r) => reborn.bind(peerPort, '127.0.0.1', () => r()));
  const again = new Promise<void>((r) => { s.onMessage = (m) => { heard.push(String(m)); r(); }; });
  const back2 = once(reborn, 'message');
  s.sendConnected(Buffer.from('ping2'), 5);
  assert.equal(String((await back2)[0]), 'ping2');
  reborn.send('pong2', s.port, '127.0.0.1');
  await again;
  assert.deepEqual(heard, ['pong', 'pong2']);
  reborn.close();
  stranger.close();
  s.close();
});

test('an exception in a handler is reported and the rest of the batch is still served', async () => {
  const s = BatchUdpSocket.bind('127.0.0.1', 0);
  const errors: unknown[] = [];
  s.onException = (e) => errors.push(e);
  s.onMessage = (msg, _a, _p, slot) => {
    if (String(msg) === 'boom') throw new Error('handler bug');
    s.sendReply(slot, msg, msg.length);
  };
  s.start();
  const c = await client();
  const r = collect(c, 2);
  c.send('a', s.port, '127.0.0.1');
  c.send('boom', s.port, '127.0.0.1');
  c.send('b', s.port, '127.0.0.1');
  assert.deepEqual((await r).map(String).sort(), ['a', 'b']);
  assert.equal(errors.length, 1);
  c.close();
  s.close();
});

test('close releases the port and stops delivery; sends after close are ignored', async () => {
  const s = BatchUdpSocket.bind('127.0.0.1', 0);
  let n = 0;
  s.onMessage = () => { n++; };
  s.start();
  const port = s.port;
  s.close();
  s.send(Buffer.from('x'), 1, '127.0.0.1', 9);
  // The port is free again (exclusive bind would fail otherwise).
  const again = BatchUdpSocket.bind('127.0.0.1', port);
  again.close();
  assert.equal(n, 0);
});

test('a socket closed from inside its own handler stops at once, and the process carries on', async () => {
  const s = BatchUdpSocket.bind('127.0.0.1', 0);
  const seen: string[] = [];
  s.onMessage = (msg, _a, _p, slot) => {
    seen.push(String(msg));
    s.sendReply(slot, msg, msg.length); // queued, then dropped: the socket closes in this batch
    s.close();
  };
  s.start();
  const c = await client();
  const replies: string[] = [];
  c.on('message', (m) => replies.push(String(m)));
  for (const m of ['a', 'b', 'c']) c.send(m, s.port, '127.0.0.1');
  // The port is free again once closed (the handler ran): poll for it, bounded.
  for (let i = 0; i < 200 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(seen, ['a'], 'the rest of the batch is not delivered after close');
  const again = BatchUdpSocket.bind('127.0.0.1', s.port);
  again.close();
  // Other batched sockets still work after the one closed inside its callback.
  const t = BatchUdpSocket.bind('127.0.0.1', 0);
  t.onMessage = (msg, _a, _p, slot) => t.sendReply(slot, msg, msg.length);
  t.start();
  const got = once(c, 'message');
  c.send('still here', t.port, '127.0.0.1');
  assert.equal(String((await got)[0]), 'still here');
  assert.ok(!replies.includes('a'), 'a reply queued before close is not sent');
  t.close();
  c.close();
});

test('binding a taken port fails with the reason; freebind binds an address the host lacks', () => {
  const s = BatchUdpSocket.bind('127.0.0.1', 0);
  assert.throws(() => BatchUdpSocket.bind('127.0.0.1', s.port), /address already in use/i);
  s.close();
  const f = BatchUdpSocket.bind('192.0.2.77', 0, { freebind: true });
  assert.ok(f.port > 0);
  f.close();
  assert.throws(() => BatchUdpSocket.bind('192.0.2.77', 0), /cannot assign requested address/i);
});

test('IPv6 text ↔ words round trip matches Node\'s canonical form', () => {
  const cases: [string, string][] = [
    ['::1', '::1'], ['::', '::'], ['2001:db8::1', '2001:db8::1'], ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['fe80::a:b', 'fe80::a:b'], ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'], ['::ffff:10.0.0.1', '::ffff:10.0.0.1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], ['1::', '1::'],
  ];
  for (const [inp, want] of cases) {
    const w = parseIp(inp)!;
    assert.equal(formatIp6(w[0], w[1], w[2], w[3]), want, inp);
  }
  assert.deepEqual(parseIp('10.1.2.3'), [(10 << 24) | (1 << 16) | (2 << 8) | 3, 0, 0, 0]);
  assert.equal(parseIp('not-an-ip'), null);
  fc.assert(fc.property(fc.ipV6(), (a) => {
    const w = parseIp(a)!;
    const back = formatIp6(w[0], w[1], w[2], w[3]);
    assert.deepEqual(parseIp(back), w);
  }));
});

test('copyBytes copies exactly [0, len), short (loop) and long (native) alike', async () => {
  const { copyBytes } = await import('../../src/util/udp-batch.js');
  for (const n of [0, 1, 12, 255, 256, 257, 1500]) {
    const src = Buffer.alloc(n + 10);
    for (let i = 0; i < src.length; i++) src[i] = (i * 7 + 3) & 0xff;
    const out = Buffer.alloc(n + 40, 0xee);
    copyBytes(src, n, out, 20);
    assert.deepEqual(out.subarray(20, 20 + n), src.subarray(0, n), `len ${n}`);
    assert.ok(out.subarray(0, 20).every((b) => b === 0xee), `len ${n}: bytes before touched`);
    assert.ok(out.subarray(20 + n).every((b) => b === 0xee), `len ${n}: bytes after touched`);
  }
});

test('a forwarding thread refuses sockets it cannot serve, and stops once', () => {
  const s = BatchUdpSocket.bind('127.0.0.1', 0);
  try {
    assert.throws(() => ForwardThread.start([s], () => {}), /not started/, 'a socket not started yet');
    s.start();
    assert.throws(() => ForwardThread.start([s, s], () => {}), /twice/);
    assert.throws(() => ForwardThread.start([], () => {}), /threadStart\(sockets/);
    const t = ForwardThread.start([s], () => {});
    assert.equal(t.stats().running, true);
    assert.throws(() => ForwardThread.start([s], () => {}), /served already/, 'one thread per socket');
    t.stop();
    t.stop(); // idempotent
    assert.equal(t.stats().running, false);
    // Back on the loop: another thread may take it, and closing the socket stops that one.
    const t2 = ForwardThread.start([s], () => {});
    s.close();
    assert.equal(t2.stats().running, false, 'closing a socket it served joined the thread');
  } finally {
    s.close();
  }
});
