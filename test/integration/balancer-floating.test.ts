/**
 * Floating addresses (VIPs) on loopback: listeners on a VIP exist only while the node holds it,
 * and a UDP wildcard listener answers a VIP query from the VIP once attached — what the article
 * needed an iptables DNAT rule for. 127.0.0.0/8 is all local, so "holding" is simulated by
 * attach/detach; the source-address check uses a connected client socket, which (like a real
 * client's resolver library) drops answers from any other address.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { pino } from 'pino';
import { FakeUpstream } from '../helpers/fake-upstream.js';
import { startBalancer } from '../../src/balancer/service.js';
import { buildQuery } from '../../src/dns/message.js';
import { freePort } from '../../src/util/net.js';

const closers: (() => Promise<unknown>)[] = [];
after(async () => { for (const c of closers.reverse()) await c(); });

/** Query via a socket connected to host:port; null when nothing (from that address) comes back. */
async function connectedQuery(host: string, port: number, timeoutMs = 400): Promise<Buffer | null> {
  const s = dgram.createSocket('udp4');
  s.on('error', () => { /* ICMP port unreachable while nothing listens */ });
  s.connect(port, host);
  await once(s, 'connect');
  return new Promise((resolve) => {
    const t = setTimeout(() => { s.close(); resolve(null); }, timeoutMs);
    s.on('message', (m) => { clearTimeout(t); s.close(); resolve(m); });
    s.send(buildQuery('vip.test', 'A'));
  });
}


test('a listener on a VIP is bound on attach and released on detach', async () => {
  const up = new FakeUpstream().add('vip.test', 'A', ['192.0.2.1']);
  const { port: upPort } = await up.start();
  closers.push(() => up.close());
  const port = await freePort();
  const bal = await startBalancer({ services: [{ name: 'dns', mode: 'dns', listen: [`127.0.0.2:${port}`], pool: { backends: [{ address: `127.0.0.1:${upPort}` }] } }] },
    { log: pino({ level: 'silent' }), floating: ['127.0.0.2'] });
  closers.push(() => bal.close());
  assert.deepEqual(bal.addresses(), [], 'nothing bound while the VIP is elsewhere');
  assert.equal(await connectedQuery('127.0.0.2', port), null);
  await bal.attach('127.0.0.2');
  assert.deepEqual(bal.addresses().map((a) => a.proto).sort(), ['tcp', 'udp']);
  assert.ok(await connectedQuery('127.0.0.2', port), 'answers while held');
  await bal.detach('127.0.0.2');
  assert.deepEqual(bal.addresses(), []);
  assert.equal(await connectedQuery('127.0.0.2', port), null, 'released');
  await bal.attach('127.0.0.2');
  assert.ok(await connectedQuery('127.0.0.2', port), 'held again');
});

test('a wildcard UDP listener answers from the VIP once attached (no DNAT needed)', async () => {
  const up = new FakeUpstream().add('vip.test', 'A', ['192.0.2.1']);
  const { port: upPort } = await up.start();
  closers.push(() => up.close());
  const port = await freePort();
  const bal = await startBalancer({ services: [{ name: 'dns', mode: 'dns', listen: [`0.0.0.0:${port}`], pool: { backends: [{ address: `127.0.0.1:${upPort}` }] } }] },
    { log: pino({ level: 'silent' }), floating: ['127.0.0.3'] });
  closers.push(() => bal.close());
  // Sent to 127.0.0.3, answered by the wildcard socket from 127.0.0.1: a connected client drops it.
  assert.equal(await connectedQuery('127.0.0.3', port), null);
  await bal.attach('127.0.0.3');
  const r = await connectedQuery('127.0.0.3', port);
  assert.ok(r, 'the VIP-specific sibling socket answers from the VIP');
  // Other addresses still go through the wildcard socket.
  assert.ok(await connectedQuery('127.0.0.1', port));
  await bal.detach('127.0.0.3');
  assert.equal(await connectedQuery('127.0.0.3', port), null);
});
