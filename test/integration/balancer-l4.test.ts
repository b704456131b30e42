/**
 * Generic layer-4 balancing (non-DNS): TCP echo with next-upstream, half-close, backpressure,
 * connection limit and PROXY protocol; UDP sessions with expiry, expected responses and a
 * bounded table under a flood of fresh source ports.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { startBalancer, type Balancer } from '../../src/balancer/service.js';
import type { ServiceInput } from '../../src/balancer/config.js';
import type { TcpServiceStats } from '../../src/balancer/tcp-proxy.js';
import type { UdpServiceStats } from '../../src/balancer/udp-proxy.js';
import { silentLog } from '../../src/balancer/sockets.js';

const cleanup: (() => Promise<void> | void)[] = [];
after(async () => { for (const f of cleanup.reverse()) await f(); });

async function tcpEcho(tag: string): Promise<{ port: number; conns: () => number; firstBytes: Buffer[] }> {
  const firstBytes: Buffer[] = [];
  let n = 0;
  const socks = new Set<net.Socket>();
  const srv = net.createServer({ allowHalfOpen: true }, (c) => {
    n++;
    socks.add(c);
    c.once('data', (d) => firstBytes.push(d));
    c.write(`${tag}:`);
    c.pipe(c); // echo; our FIN follows theirs (half-close)
    c.on('error', () => {});
    c.on('close', () => socks.delete(c));
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  cleanup.push(() => { for (const s of socks) s.destroy(); return new Promise<void>((r) => srv.close(() => r())); });
  return { port: (srv.address() as net.AddressInfo).port, conns: () => n, firstBytes };
}

/** A port nobody listens on (bound, then closed). */
async function deadPort(): Promise<number> {
  const s = net.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

async function start(svc: ServiceInput): Promise<{ bal: Balancer; port: number }> {
  const bal = await startBalancer({ services: [svc] }, { log: silentLog });
  cleanup.push(() => bal.close());
  return { bal, port: bal.addresses()[0].port };
}

/** Sends `data`, half-closes, and collects everything until the proxy closes. */
function roundTrip(port: number, data: Buffer | string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    c.on('data', (d) => chunks.push(d));
    c.on('end', () => { resolve(Buffer.concat(chunks)); c.destroy(); });
    c.on('error', reject);
    c.on('connect', () => c.end(data));
  });
}

test('TCP: next upstream on a dead backend, half-close carried both ways', async () => {
  const a = await tcpEcho('A');
  const dead = await deadPort();
  const { bal, port } = await start({
    name: 'web', mode: 'tcp', listen: ['tcp://127.0.0.1:0'],
    pool: { backends: [{ address: `127.0.0.1:${dead}` }, { address: `127.0.0.1:${a.port}` }] },
  });
  for (let i = 0; i < 10; i++) {
    const got = await roundTrip(port, `hello ${i}`);
    assert.equal(got.toString(), `A:hello ${i}`, 'echo after our FIN: the backend saw a half-close, not a reset');
  }
  const s = bal.stats().services[0] as TcpServiceStats;
  assert.equal(s.failed, 0);
  assert.ok(s.nextUpstream >= 1, 'the dead backend was skipped at least once');
  assert.equal(s.backends[0].state, 'down', 'max_fails took it out');
});

test('TCP: 8 MiB through the proxy intact (backpressure, no loss)', async () => {
  const a = await tcpEcho('B');
  const { port } = await start({ name: 'bulk', mode: 'tcp', listen: ['tcp://127.0.0.1:0'], pool: { backends: [{ address: `127.0.0.1:${a.port}` }] } });
  const big = Buffer.alloc(8 << 20);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
  const got = await roundTrip(port, big);
  assert.equal(got.length, big.length + 2);
  assert.ok(got.subarray(2).equals(big));
});

test('TCP: PROXY protocol v1 header reaches the backend; connection limit enforced', async () => {
  const a = await tcpEcho('C');
  const { bal, port } = await start({
    name: 'pp', mode: 'tcp', listen: ['tcp://127.0.0.1:0'],
    pool: { backends: [{ address: `127.0.0.1:${a.port}` }] }, tcp: { proxy_protocol: 'v1', max_connections: 2 },
  });
  const c1 = net.connect({ port, host: '127.0.0.1' });
  await once(c1, 'connect');
  const local = c1.localPort;
  c1.write('x');
  await once(c1, 'data');
  const hdr = a.firstBytes[0].toString('latin1');
  assert.match(hdr, new RegExp(`^PROXY TCP4 127\\.0\\.0\\.1 127\\.0\\.0\\.1 ${local} ${port}\\r\\n`));
  const c2 = net.connect({ port, host: '127.0.0.1' });
  await once(c2, 'connect');
  const c3 = net.connect({ port, host: '127.0.0.1' });
  c3.on('error', () => {});
  await once(c3, 'close');
  assert.ok((bal.stats().services[0] as TcpServiceStats).rejected >= 1);
  c1.destroy(); c2.destroy();
});

async function udpEcho(): Promise<{ port: number; sock: dgram.Socket }> {
  const s = dgram.createSocket('udp4');
  s.on('message', (m, r) => s.send(m, r.port, r.address));
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  cleanup.push(() => new Promise<void>((r) => s.close(() => r())));
  return { port: s.address().port, sock: s };
}

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('UDP: a session expires after proxy_timeout; proxy_responses closes it at once', async () => {
  const e = await udpEcho();
  const { bal, port } = await start({
    name: 'u', mode: 'udp', listen: ['udp://127.0.0.1:0'], pool: { backends: [{ address: `127.0.0.1:${e.port}` }] }, timeouts: { proxy: 150 },
  });
  const st = () => bal.stats().services[0] as UdpServiceStats;
  const c = dgram.createSocket('udp4');
  c.bind(0, '127.0.0.1');
  await once(c, 'listening');
  c.send('ping', port, '127.0.0.1');
  const [m] = await once(c, 'message');
  assert.equal(String(m), 'ping');
  c.send('ping2', port, '127.0.0.1');
  await once(c, 'message');
  assert.equal(st().sessions, 1);
  assert.equal(st().created, 1, 'same client port, same session');
  await waitFor(() => st().sessions === 0, 1000);
  assert.equal(st().expired, 1);
  c.close();

  const { bal: bal2, port: port2 } = await start({
    name: 'u1', mode: 'udp', listen: ['udp://127.0.0.1:0'], pool: { backends: [{ address: `127.0.0.1:${e.port}` }] }, udp: { responses: 1 },
  });
  const c2 = dgram.createSocket('udp4');
  c2.bind(0, '127.0.0.1');
  await once(c2, 'listening');
  c2.send('one', port2, '127.0.0.1');
  await once(c2, 'message');
  await waitFor(() => (bal2.stats().services[0] as UdpServiceStats).sessions === 0, 500);
  assert.equal((bal2.stats().services[0] as UdpServiceStats).completed, 1);
  c2.close();
});

test('UDP: a flood of fresh source ports keeps the session table (and fds) bounded', { timeout: 20_000 }, async () => {
  const e = await udpEcho();
  const { bal, port } = await start({
    name: 'flood', mode: 'udp', listen: ['udp://127.0.0.1:0'], pool: { backends: [{ address: `127.0.0.1:${e.port}` }] },
    udp: { max_sessions: 50 }, timeouts: { proxy: '20s' },
  });
  const fds = () => readdirSync('/proc/self/fd').length;
  const fdBefore = fds();
  let replies = 0;
  // Batches of 40 concurrent fresh clients (fewer than the table holds, so each batch's own
  // sessions survive while older ones are evicted); 600 source ports in all.
  const N = 600;
  for (let batch = 0; batch < N / 40; batch++) {
    const socks = await Promise.all(Array.from({ length: 40 }, async () => {
      const s = dgram.createSocket('udp4');
      s.bind(0, '127.0.0.1');
      await once(s, 'listening');
      return s;
    }));
    await Promise.all(socks.map(async (s) => {
      s.send('x', port, '127.0.0.1');
      await once(s, 'message');
      replies++;
      s.close();
    }));
  }
  const s = bal.stats().services[0] as UdpServiceStats;
  assert.equal(replies, N, 'every fresh client still served (LRU eviction, not refusal)');
  assert.ok(s.sessions <= 50, `sessions ${s.sessions}`);
  // (the kernel may hand a closed client's port to a later one: that client reuses a session)
  assert.ok(s.created > N - 50, `created ${s.created}`);
  assert.ok(s.evicted >= s.created - 50, `evicted ${s.evicted}`);
  assert.ok(fds() - fdBefore <= 60, `fds grew by ${fds() - fdBefore}`);
});
