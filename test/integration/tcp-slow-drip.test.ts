/**
 * DNS over TCP against a slow-drip client, on loopback, for the resolver's and the balancer's
 * listeners: a message sent one byte every 100 ms must be cut off once it has taken longer than
 * the idle timeout (the idle timer alone restarts on every byte, so such a client would hold its
 * connection for ever), while a client that pauses between whole messages is served throughout.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { DnsListeners } from '../../src/resolver/listeners.js';
import { startBalancer, type Balancer } from '../../src/balancer/service.js';
import { silentLog } from '../../src/balancer/sockets.js';
import { tcpFrame, TcpFramer } from '../../src/dns/wire.js';
import { query, StubHandler } from './balancer-util.js';
import { tcpClient, within } from '../helpers/fuzz.js';

const IDLE = 400;
const conns: net.Socket[] = [];
const closers: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of conns) c.destroy();
  for (const f of closers) await f();
});

/** Drips a query one byte every 100 ms; resolves with how long the server let it go on (ms). */
async function drip(port: number): Promise<{ closedAfterMs: number; answered: boolean }> {
  const c = await tcpClient(port, conns);
  let answered = false;
  c.on('data', () => { answered = true; });
  // Not events.once: that rejects on 'error', and a reset (our write racing the server's close) is
  // one way this connection may end.
  const closed = new Promise<void>((resolve) => c.on('close', () => resolve()));
  const t0 = performance.now();
  const frame = tcpFrame(query('drip.slow.test', 'A', 9));
  for (let i = 0; i < frame.length && !c.destroyed && c.readyState === 'open'; i++) {
    c.write(frame.subarray(i, i + 1));
    await Promise.race([new Promise((r) => setTimeout(r, 100)), closed]);
  }
  await within(closed, 'the dripping connection to be closed', 5000);
  return { closedAfterMs: performance.now() - t0, answered };
}

/** Whole messages with pauses shorter than the idle timeout, for longer than it in total. */
async function patient(port: number): Promise<number> {
  const c = await tcpClient(port, conns);
  let answers = 0;
  const f = new TcpFramer(() => { answers++; });
  c.on('data', (d) => f.push(d));
  for (let i = 0; i < 6; i++) {
    c.write(tcpFrame(query(`p${i}.slow.test`, 'A', 100 + i)));
    await new Promise((r) => setTimeout(r, IDLE / 2));
  }
  assert.equal(c.destroyed, false, 'the patient client is still connected');
  return answers;
}

function check(r: { closedAfterMs: number; answered: boolean }): void {
  assert.equal(r.answered, false, 'the dripped query never completed');
  // Cut about IDLE after the first byte (the frame would need ~3.5 s at this pace).
  assert.ok(r.closedAfterMs >= IDLE - 50 && r.closedAfterMs < IDLE + 1500, `closed after ${r.closedAfterMs.toFixed(0)} ms`);
}

test('resolver listener: a dripping client is cut after the idle time, a patient one is served', async () => {
  const l = new DnsListeners(new StubHandler(), { tcpIdleMs: IDLE });
  const bound = await l.listen(['127.0.0.1:0']);
  closers.push(() => l.close());
  const port = bound.find((b) => b.proto === 'tcp')!.port;
  const [d, answers] = await Promise.all([drip(port), patient(port)]);
  check(d);
  assert.equal(answers, 6);
});

test('balancer listener (DNS mode, tcp.idle): a dripping client is cut after the idle time, a patient one is served', async () => {
  const bal: Balancer = await startBalancer({ services: [{
    name: 'dns', mode: 'dns', listen: ['tcp://127.0.0.1:0'],
    pool: { backends: [{ address: 'local' }] },
    tcp: { idle: IDLE },
    health_check: { enabled: false },
  }] }, { log: silentLog, localHandler: new StubHandler() });
  closers.push(() => bal.close());
  const port = bal.addresses().find((x) => x.proto === 'tcp')!.port;
  const [d, answers] = await Promise.all([drip(port), patient(port)]);
  check(d);
  assert.equal(answers, 6);
});
