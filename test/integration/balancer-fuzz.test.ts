/**
 * The balancer's DNS mode against hostile input on both sides, on loopback. Clients send garbage
 * and mangled queries; one backend lies: under the right ID it answers with flipped bytes,
 * truncations, random bytes, wrong RCODEs, trailing junk, twice, or not at all (the other backend
 * is honest). What must hold:
 * - no exception in a handler and no crash;
 * - every well-formed query gets exactly one answer, with its own ID and its own question;
 * - the query table drains, and the service still answers afterwards.
 * It runs with the reply relay (the addon then parses the liar's datagrams first) and without.
 * Over TCP: random bytes, empty and garbage frames, a query sent a byte at a time, an abandoned
 * frame and a half-closed client (which still gets its answer) leave a good client served; a
 * TCP backend that sends wrong IDs, wrong questions, garbage frames, half frames, or hangs up
 * costs retries on the honest one, never an answer.
 * Seeded: a failure names its seed, and HADNS_FUZZ_SEED=N replays one.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import dnsPacket from 'dns-packet';
import { startBalancer, type Balancer } from '../../src/balancer/service.js';
import type { ServiceInput } from '../../src/balancer/config.js';
import type { DnsServiceStats } from '../../src/balancer/dns-proxy.js';
import type { BalancerLog } from '../../src/balancer/sockets.js';
import { query } from './balancer-util.js';
import { abuseTcp, lie, prng, questionOf, randomBytes, tcpClient, within } from '../helpers/fuzz.js';
import { readId, tcpFrame, TcpFramer } from '../../src/dns/wire.js';

const sockets: dgram.Socket[] = [];
const conns: net.Socket[] = [];
const servers: net.Server[] = [];
const started: Balancer[] = [];
after(async () => {
  for (const c of conns) c.destroy(); // first: a balancer's close waits for its TCP clients
  await Promise.all(started.map((b) => b.close()));
  for (const s of sockets) s.close();
  for (const s of servers) s.close();
});

async function udp(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  sockets.push(s);
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  return s;
}

function honestAnswer(q: dnsPacket.DecodedPacket): Buffer {
  const name = q.questions![0]!.name;
  return dnsPacket.encode({
    type: 'response', id: q.id, flags: dnsPacket.RECURSION_DESIRED, questions: q.questions,
    answers: [{ type: 'A', name, ttl: 60, data: '192.0.2.7' }],
  });
}

/** A backend answering every query correctly. */
async function honestBackend(): Promise<number> {
  const s = await udp();
  s.on('message', (m, r) => {
    let q: dnsPacket.DecodedPacket;
    try { q = dnsPacket.decode(m); } catch { return; }
    s.send(honestAnswer(q), r.port, r.address);
  });
  return s.address().port;
}

/** A backend that lies in every way a datagram can, keeping the query's ID most of the time. */
async function lyingBackend(rnd: () => number): Promise<{ port: number; lies: number }> {
  const s = await udp();
  const st = { port: s.address().port, lies: 0 };
  s.on('message', (m, r) => {
    let q: dnsPacket.DecodedPacket;
    try { q = dnsPacket.decode(m); } catch { return; }
    const { out, lied } = lie(honestAnswer(q), rnd);
    if (lied) st.lies++;
    for (const b of out) s.send(b, r.port, r.address);
  });
  return st;
}

/** Datagrams no client should send: random, mangled queries, responses, pointer loops. */
function garbage(rnd: () => number, i: number): Buffer {
  const valid = query(`g${i}.fuzz.test`, 'A', Math.floor(rnd() * 65536));
  const kind = Math.floor(rnd() * 6);
  if (kind === 0) return randomBytes(rnd, Math.floor(rnd() * 600));
  if (kind === 1) {
    const b = Buffer.from(valid);
    for (let k = 1 + Math.floor(rnd() * 6); k > 0; k--) b[Math.floor(rnd() * b.length)]! ^= 1 << Math.floor(rnd() * 8);
    return b;
  }
  if (kind === 2) return valid.subarray(0, Math.floor(rnd() * valid.length));
  if (kind === 3) { const b = Buffer.from(valid); b[2]! |= 0x80; return b; } // QR set: a response
  if (kind === 4) { // a name that is a compression pointer to itself
    const b = Buffer.from(valid.subarray(0, 18));
    b[12] = 0xc0; b[13] = 12; b.writeUInt32BE(0x00010001, 14);
    return b;
  }
  // QDCOUNT / ARCOUNT that promise more than is there
  const b = Buffer.from(valid);
  b.writeUInt16BE(Math.floor(rnd() * 65536), 4 + 2 * Math.floor(rnd() * 4));
  return b;
}

async function fuzzRound(seed: number, relay: boolean): Promise<void> {
  const rnd = prng(seed);
  const liar = await lyingBackend(rnd);
  const honest = await honestBackend();
  const errors: unknown[] = [];
  const log: BalancerLog = { info() {}, warn() {}, debug() {}, error(o) { errors.push(o); } };
  const svc: ServiceInput = {
    name: 'dns', mode: 'dns', listen: ['udp://127.0.0.1:0'],
    // The liar's failures must not take it out of the pool (max_fails 0): it keeps being asked.
    pool: { policy: 'round-robin', backends: [{ address: `127.0.0.1:${liar.port}`, max_fails: 0 }, { address: `127.0.0.1:${honest}` }] },
    // Short timeouts: a query the liar spoiled is retried on the honest backend quickly.
    timeouts: { query_initial: 40, query_min: 20, query_max: 200 },
    health_check: { enabled: false },
  };
  if (!relay) process.env.HADNS_REPLY_RELAY = '0';
  let bal: Balancer;
  try { bal = await startBalancer({ services: [svc] }, { log }); } finally { delete process.env.HADNS_REPLY_RELAY; }
  started.push(bal);
  const port = bal.addresses().find((x) => x.proto === 'udp')!.port;

  const good = await udp(), bad = await udp();
  const N = 400;
  const want = new Map<number, string>(); // id → question
  const answers = new Map<number, Buffer[]>();
  const stray: Buffer[] = [];
  good.on('message', (m) => {
    const id = m.length >= 2 ? readId(m) : -1;
    if (!want.has(id)) { stray.push(m); return; }
    (answers.get(id) ?? answers.set(id, []).get(id)!).push(m);
  });
  bad.on('message', () => {});
  const allAnswered = new Promise<void>((resolve) => {
    const check = (): void => { if (answers.size === N) resolve(); else setTimeout(check, 20); };
    check();
  });
  for (let i = 0; i < N; i++) {
    const id = i + 1;
    const q = query(`q${i}.Fuzz.Test`, 'A', id);
    want.set(id, questionOf(q, true)!);
    good.send(q, port, '127.0.0.1');
    for (let k = Math.floor(rnd() * 3); k > 0; k--) bad.send(garbage(rnd, i * 3 + k), port, '127.0.0.1');
    if (i % 40 === 39) await new Promise((r) => setImmediate(r)); // let answers interleave with queries
  }
  await Promise.race([allAnswered, new Promise((r) => setTimeout(r, 5000))]);
  await new Promise((r) => setTimeout(r, 300)); // late duplicates, if any, arrive now

  const tag = `seed ${seed}, relay ${relay ? 'on' : 'off'}`;
  assert.deepEqual(errors, [], `${tag}: no handler exception`);
  assert.equal(answers.size, N, `${tag}: every well-formed query answered (${answers.size} of ${N})`);
  for (const [id, list] of answers) {
    assert.equal(list.length, 1, `${tag}: query ${id} answered ${list.length} times`);
    assert.equal(questionOf(list[0]!, true), want.get(id), `${tag}: query ${id} answered with its own question`);
  }
  assert.equal(stray.length, 0, `${tag}: nothing else reached the well-behaved client`);
  assert.ok(liar.lies > N / 4, `${tag}: the liar lied (${liar.lies})`);

  const t0 = performance.now();
  const stats = (): DnsServiceStats => bal.stats().services[0] as DnsServiceStats;
  while (stats().live !== 0 && performance.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 20));
  assert.equal(stats().live, 0, `${tag}: the query table drained`);
  assert.ok(stats().stray > 0, `${tag}: the liar's answers were seen as strays`);
  // Still serving.
  const got = once(good, 'message');
  want.set(4242, questionOf(query('after.fuzz.test', 'A', 4242), true)!);
  good.send(query('after.fuzz.test', 'A', 4242), port, '127.0.0.1');
  await Promise.race([got, new Promise((_, rej) => setTimeout(() => rej(new Error(`${tag}: no answer after the fuzz`)), 2000))]);
  assert.equal(answers.get(4242)?.length, 1);
}

const seeds = process.env.HADNS_FUZZ_SEED ? [Number(process.env.HADNS_FUZZ_SEED)] : [1, 2, 3];

test('hostile clients and a lying backend: one right answer per good query, no exception, table drained (relay on)', async () => {
  for (const seed of seeds) await fuzzRound(seed, true);
});

test('the same without the reply relay (every backend datagram through JS)', async () => {
  for (const seed of seeds) await fuzzRound(seed, false);
});

/** An honest backend over TCP (DNS mode forwards a TCP client's queries over TCP). */
async function honestTcpBackend(): Promise<{ port: number; server: net.Server }> {
  const server = net.createServer((c) => {
    const f = new TcpFramer((m) => {
      let q: dnsPacket.DecodedPacket;
      try { q = dnsPacket.decode(m); } catch { c.destroy(); return; }
      c.write(tcpFrame(honestAnswer(q)));
    });
    c.on('data', (d) => { if (!f.push(d)) c.destroy(); });
    c.on('error', () => {});
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as net.AddressInfo).port, server };
}

test('hostile TCP clients (random bytes, bad frames, byte-at-a-time, abandoned frames) leave a good TCP client served', async () => {
  const rnd = prng(7);
  const t = await honestTcpBackend(); // TCP clients' queries go to backends over TCP
  const errors: unknown[] = [];
  const log: BalancerLog = { info() {}, warn() {}, debug() {}, error(o) { errors.push(o); } };
  const bal = await startBalancer({ services: [{
    name: 'dns', mode: 'dns', listen: ['tcp://127.0.0.1:0'],
    pool: { backends: [{ address: `127.0.0.1:${t.port}` }] },
    health_check: { enabled: false },
  }] }, { log });
  started.push(bal);
  const port = bal.addresses().find((x) => x.proto === 'tcp')!.port;
  const open = (): Promise<net.Socket> => tcpClient(port, conns);
  const s1 = await abuseTcp(port, rnd, conns);
  assert.equal(s1.readUInt16BE(2), 77, 'the byte-at-a-time query was answered');
  const half = await open();
  const halfAnswer = once(half, 'data');
  half.end(tcpFrame(query('half.fuzz.test', 'A', 78))); // query, then half-close: the answer still comes
  const [h1] = (await within(halfAnswer, 'half-closed answer')) as [Buffer];
  assert.equal(h1.readUInt16BE(2), 78, 'the half-closed client got its answer');

  // A good client, 20 queries in one write, 20 answers.
  const good = await open();
  const ids = Array.from({ length: 20 }, (_, i) => 1000 + i);
  const got: number[] = [];
  const framer = new TcpFramer((m) => { got.push(readId(m)); assert.equal(questionOf(m, true), questionOf(query(`t${readId(m) - 1000}.fuzz.test`, 'A', 0), true)); });
  const done = new Promise<void>((resolve) => good.on('data', (d) => { framer.push(d); if (got.length === ids.length) resolve(); }));
  good.write(Buffer.concat(ids.map((id) => tcpFrame(query(`t${id - 1000}.fuzz.test`, 'A', id)))));
  await Promise.race([done, new Promise((_, rej) => setTimeout(() => rej(new Error(`good TCP client: ${got.length} of 20 answers`)), 3000))]);
  assert.deepEqual(got.sort((a, b) => a - b), ids);
  assert.deepEqual(errors, [], 'no handler exception');
});

/** A TCP backend that lies: wrong IDs, garbage frames, half frames and closes, hangs. */
async function lyingTcpBackend(rnd: () => number): Promise<{ port: number; lies: number }> {
  const st = { port: 0, lies: 0 };
  const server = net.createServer((c) => {
    c.on('error', () => {});
    const f = new TcpFramer((m) => {
      let q: dnsPacket.DecodedPacket;
      try { q = dnsPacket.decode(m); } catch { c.destroy(); return; }
      const good = tcpFrame(honestAnswer(q));
      const x = rnd();
      if (x < 0.3) { c.write(good); return; }
      st.lies++;
      if (x < 0.45) { const b = Buffer.from(good); b.writeUInt16BE((q.id! + 1) & 0xffff, 2); c.write(b); } // wrong ID
      else if (x < 0.6) { const b = Buffer.from(good); b[2 + 12 + 2]! ^= 0x01; c.write(b); } // wrong question
      else if (x < 0.7) c.write(tcpFrame(Buffer.from('not a dns message at all')));
      else if (x < 0.8) { c.write(good.subarray(0, Math.floor(rnd() * good.length))); c.destroy(); } // half a frame, then gone
      else if (x < 0.9) c.destroy(); // gone
      // else: silence (the attempt times out)
    });
    c.on('data', (d) => { if (!f.push(d)) c.destroy(); });
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  st.port = (server.address() as net.AddressInfo).port;
  return st;
}

test('a lying TCP backend beside an honest one: every pipelined TCP query answered once, with its question', async () => {
  const rnd = prng(5);
  const liar = await lyingTcpBackend(rnd);
  const honest = await honestTcpBackend();
  const errors: unknown[] = [];
  const log: BalancerLog = { info() {}, warn() {}, debug() {}, error(o) { errors.push(o); } };
  const bal = await startBalancer({ services: [{
    name: 'dns', mode: 'dns', listen: ['tcp://127.0.0.1:0'],
    pool: { policy: 'round-robin', backends: [{ address: `127.0.0.1:${liar.port}`, max_fails: 0 }, { address: `127.0.0.1:${honest.port}` }] },
    timeouts: { query_initial: 40, query_min: 20, query_max: 200 },
    health_check: { enabled: false },
  }] }, { log });
  started.push(bal);
  const port = bal.addresses().find((x) => x.proto === 'tcp')!.port;
  const per = 40, clients = 3;
  const results = await Promise.all(Array.from({ length: clients }, async (_, k) => {
    const c = net.connect(port, '127.0.0.1');
    conns.push(c);
    c.on('error', () => {});
    await once(c, 'connect');
    const got = new Map<number, Buffer[]>();
    const f = new TcpFramer((m) => { const id = readId(m); (got.get(id) ?? got.set(id, []).get(id)!).push(Buffer.from(m)); });
    c.on('data', (d) => f.push(d));
    const ids = Array.from({ length: per }, (_, i) => k * 1000 + i + 1);
    c.write(Buffer.concat(ids.map((id) => tcpFrame(query(`t${id}.tcpfuzz.test`, 'A', id)))));
    const t0 = performance.now();
    while (got.size < per && performance.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 200));
    return { ids, got };
  }));
  for (const { ids, got } of results) {
    assert.equal(got.size, ids.length, `answered ${got.size} of ${ids.length}`);
    for (const id of ids) {
      const list = got.get(id)!;
      assert.equal(list.length, 1, `query ${id} answered ${list.length} times`);
      assert.equal(questionOf(list[0]!, true), questionOf(query(`t${id}.tcpfuzz.test`, 'A', id), true), `query ${id}: its own question`);
      // The honest backend is always there to retry on: nothing ends as SERVFAIL.
      assert.equal(list[0]![3]! & 0x0f, 0, `query ${id}: RCODE ${list[0]![3]! & 0x0f}`);
    }
  }
  assert.ok(liar.lies > 10, `the liar lied (${liar.lies})`);
  assert.deepEqual(errors, [], 'no handler exception');
});
