/**
 * The resolver against a lying upstream, on loopback: under the right ID it tells the lies of
 * test/helpers/fuzz.ts (flipped bits reach the records the cache reads TTLs from, too); a second
 * upstream is honest. What must hold: no crash and no error logged, every query answered exactly
 * once with its ID and its question as asked, and the resolver still answers afterwards. Also hostile clients: UDP garbage, and over TCP
 * random bytes, bad frames, a query a byte at a time, an abandoned frame. Seeded;
 * HADNS_FUZZ_SEED=N replays one seed.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import dnsPacket from 'dns-packet';
import { pino } from 'pino';
import { resolverSchema } from '../../src/config/schema.js';
import { ResolverService } from '../../src/resolver/service.js';
import { buildQuery } from '../../src/dns/message.js';
import { readId } from '../../src/dns/wire.js';
import { tcpQueries } from '../helpers/dns-client.js';
import { abuseTcp, lie, prng, questionOf, randomBytes, within } from '../helpers/fuzz.js';

const cleanups: (() => unknown)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

async function udp(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  cleanups.push(() => s.close());
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  return s;
}

/** A full answer: A records, a CNAME, a TXT and an authority SOA, so mutations hit every part. */
function answerFor(q: dnsPacket.DecodedPacket): Buffer {
  const name = q.questions![0]!.name;
  return dnsPacket.encode({
    type: 'response', id: q.id, flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE, questions: q.questions,
    answers: [
      { type: 'CNAME', name, ttl: 120, data: `alias.${name}` },
      { type: 'A', name: `alias.${name}`, ttl: 60, data: '192.0.2.7' },
      { type: 'A', name: `alias.${name}`, ttl: 90, data: '192.0.2.8' },
      { type: 'TXT', name, ttl: 30, data: ['fuzz'] },
    ],
    authorities: [{ type: 'SOA', name: 'test', ttl: 300, data: { mname: 'ns.test', rname: 'h.test', serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 60 } }],
  });
}

async function upstream(rnd: (() => number) | null): Promise<{ port: number; lies: number }> {
  const s = await udp();
  const st = { port: s.address().port, lies: 0 };
  s.on('message', (m, r) => {
    let q: dnsPacket.DecodedPacket;
    try { q = dnsPacket.decode(m); } catch { return; }
    const good = answerFor(q);
    if (rnd === null) { s.send(good, r.port, r.address); return; }
    const { out, lied } = lie(good, rnd);
    if (lied) st.lies++;
    for (const b of out) s.send(b, r.port, r.address);
  });
  return st;
}

async function round(seed: number): Promise<void> {
  const rnd = prng(seed);
  const liar = await upstream(rnd);
  const honest = await upstream(null);
  const errors: string[] = [];
  const sink = new Writable({ write(chunk, _e, cb) { errors.push(String(chunk)); cb(); } });
  const cfg = resolverSchema.parse({
    listen: ['127.0.0.1:0'],
    upstreams: { servers: [`127.0.0.1#${liar.port}`, `127.0.0.1#${honest.port}`], strategy: 'all-servers', timeout_ms: 200, total_timeout_ms: 1500 },
  });
  const svc = await ResolverService.start(cfg, pino({ level: 'error' }, sink));
  cleanups.push(() => svc.close());
  const port = svc.addresses().find((a) => a.proto === 'udp')!.port;
  const c = await udp();
  const N = 300;
  const want = new Map<number, string>();
  const got = new Map<number, Buffer[]>();
  c.on('message', (m) => { const id = readId(m); (got.get(id) ?? got.set(id, []).get(id)!).push(m); });
  for (let i = 0; i < N; i++) {
    const q = buildQuery(`q${i % 150}.Fuzz${seed}.Test`, i % 3 === 0 ? 'TXT' : 'A', { id: i + 1 }); // repeats: cache hits on what the liar got in
    want.set(i + 1, questionOf(q)!);
    c.send(q, port, '127.0.0.1');
    if (i % 30 === 29) await new Promise((r) => setTimeout(r, 5));
  }
  const t0 = performance.now();
  while (got.size < N && performance.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 300));
  const tag = `seed ${seed}`;
  assert.equal(got.size, N, `${tag}: every query answered (${got.size} of ${N})`);
  for (const [id, list] of got) {
    assert.ok(want.has(id), `${tag}: an answer with an ID nobody asked (${id})`);
    assert.equal(list.length, 1, `${tag}: query ${id} answered ${list.length} times`);
    assert.equal(questionOf(list[0]!), want.get(id), `${tag}: query ${id} answered with its own question`);
  }
  assert.ok(liar.lies > N / 4, `${tag}: the liar lied (${liar.lies})`);
  assert.deepEqual(errors, [], `${tag}: nothing logged at error level`);
  const after = once(c, 'message');
  c.send(buildQuery('after.fuzz.test', 'A', { id: 9999 }), port, '127.0.0.1');
  await Promise.race([after, new Promise((_, rej) => setTimeout(() => rej(new Error(`${tag}: no answer after the fuzz`)), 3000))]);
}

const seeds = process.env.HADNS_FUZZ_SEED ? [Number(process.env.HADNS_FUZZ_SEED)] : [1, 2, 3];

test('a lying upstream beside an honest one: one answer per query with its question, no crash, no error logged', async () => {
  for (const seed of seeds) await round(seed);
});

test('hostile clients (UDP garbage; TCP random bytes, bad frames, byte-at-a-time, abandoned frames) leave good clients served', async () => {
  const rnd = prng(Number(process.env.HADNS_FUZZ_SEED ?? 9));
  const honest = await upstream(null);
  const cfg = resolverSchema.parse({ listen: ['127.0.0.1:0'], upstreams: { servers: [`127.0.0.1#${honest.port}`] } });
  const errors: string[] = [];
  const sink = new Writable({ write(chunk, _e, cb) { errors.push(String(chunk)); cb(); } });
  const svc = await ResolverService.start(cfg, pino({ level: 'error' }, sink));
  cleanups.push(() => svc.close());
  const udpPort = svc.addresses().find((a) => a.proto === 'udp')!.port;
  const tcpPort = svc.addresses().find((a) => a.proto === 'tcp')!.port;
  // UDP: 500 datagrams of garbage and mangled queries.
  const bad = await udp();
  for (let i = 0; i < 500; i++) {
    const q = buildQuery(`g${i}.fuzz.test`, 'A', { id: i });
    const b = rnd() < 0.5 ? randomBytes(rnd, Math.floor(rnd() * 600)) : Buffer.from(q);
    if (b === q || rnd() < 0.7) for (let k = 1 + Math.floor(rnd() * 5); k > 0 && b.length; k--) b[Math.floor(rnd() * b.length)]! ^= 1 << Math.floor(rnd() * 8);
    bad.send(b, udpPort, '127.0.0.1');
  }
  // TCP: the same kinds of abuse the balancer's fuzz test uses.
  const conns: net.Socket[] = [];
  cleanups.push(() => { for (const c of conns) c.destroy(); });
  assert.equal((await abuseTcp(tcpPort, rnd, conns)).readUInt16BE(2), 77);
  // Good clients on both transports.
  const good = await udp();
  const ans = once(good, 'message');
  good.send(buildQuery('after.fuzz.test', 'A', { id: 4321 }), udpPort, '127.0.0.1');
  const [u1] = (await within(ans, 'UDP answer')) as [Buffer];
  assert.equal(readId(u1), 4321);
  const t = await within(tcpQueries(tcpPort, [buildQuery('t1.fuzz.test', 'A', { id: 1 }), buildQuery('t2.fuzz.test', 'TXT', { id: 2 })]), 'TCP answers');
  assert.deepEqual(t.map((r) => r.id).sort(), [1, 2]);
  assert.deepEqual(errors, [], 'nothing logged at error level');
});
