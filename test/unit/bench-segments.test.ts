/**
 * bench/segments.ts: the latency breakdown from a loopback capture. A capture is built here
 * packet by packet (Ethernet, IPv4, UDP, DNS), so every number the report gives is known.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyze, formatReport, readPcap, traces } from '../../bench/segments.js';

const FRONT = 5300, BACKEND = 5301, CLIENT = 40000, UP = 41000;

function dns(id: number, qr: boolean, name: string): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h[2] = qr ? 0x81 : 0x01;
  h.writeUInt16BE(1, 4);
  return Buffer.concat([h, ...labels, Buffer.from([0, 0, 1, 0, 1])]);
}

function frame(sport: number, dport: number, payload: Buffer, proto = 17): Buffer {
  const eth = Buffer.alloc(14);
  eth.writeUInt16BE(0x0800, 12);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + 8 + payload.length, 2);
  ip[8] = 64;
  ip[9] = proto;
  ip.writeUInt32BE(0x7f000001, 12);
  ip.writeUInt32BE(0x7f000001, 16);
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(sport, 0);
  udp.writeUInt16BE(dport, 2);
  udp.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([eth, ip, udp, payload]);
}

function pcap(pkts: [number, Buffer][], truncateLast = 0): Buffer {
  const hdr = Buffer.alloc(24);
  hdr.writeUInt32LE(0xa1b2c3d4, 0);
  hdr.writeUInt16LE(2, 4);
  hdr.writeUInt16LE(4, 6);
  hdr.writeUInt32LE(65535, 16);
  hdr.writeUInt32LE(1, 20);
  const recs = pkts.map(([t, f]) => {
    const r = Buffer.alloc(16);
    const us = Math.round(t * 1e6);
    r.writeUInt32LE(Math.floor(us / 1e6), 0);
    r.writeUInt32LE(us % 1e6, 4);
    r.writeUInt32LE(f.length, 8);
    r.writeUInt32LE(f.length, 12);
    return Buffer.concat([r, f]);
  });
  const all = Buffer.concat([hdr, ...recs]);
  return truncateLast ? all.subarray(0, all.length - truncateLast) : all;
}

const q = (t: number, id: number, name: string): [number, Buffer] => [t, frame(CLIENT, FRONT, dns(id, false, name))];
const fwd = (t: number, id: number, name: string): [number, Buffer] => [t, frame(UP, BACKEND, dns(id, false, name))];
const back = (t: number, id: number, name: string): [number, Buffer] => [t, frame(BACKEND, UP, dns(id, true, name))];
const ans = (t: number, id: number, name: string): [number, Buffer] => [t, frame(FRONT, CLIENT, dns(id, true, name))];

// One query straight through; one whose backend answer waits in the balancer during a stall;
// two that arrive during the stall and whose backend answers come back in the other order.
const run: [number, Buffer][] = [
  q(1.0, 1, 'a.test'), fwd(1.00002, 77, 'a.test'), back(1.00007, 77, 'a.test'), ans(1.00009, 1, 'a.test'),
  q(1.0005, 4, 'd.test'), fwd(1.00051, 80, 'd.test'), back(1.00056, 80, 'd.test'),
  [1.001, frame(22, 23, Buffer.alloc(20), 6)], // TCP: not ours
  q(1.002, 2, 'B.test'), q(1.003, 3, 'c.test'),
  fwd(1.01, 78, 'b.test'), fwd(1.01001, 79, 'c.test'), ans(1.01003, 4, 'd.test'),
  back(1.01005, 79, 'c.test'), back(1.01006, 78, 'b.test'), ans(1.01007, 3, 'c.test'), ans(1.01008, 2, 'b.test'),
];

test('each query is followed through forward, backend answer and answer, and its time split', () => {
  const r = analyze(readPcap(pcap(run)), FRONT);
  assert.equal(r.answered, 4);
  assert.equal(r.complete, 4);
  const a = traces(readPcap(pcap(run)), FRONT)[0]!;
  assert.ok(Math.abs((a.t1! - a.t0) - 20e-6) < 2e-6 && Math.abs((a.t2! - a.t1!) - 50e-6) < 2e-6 && Math.abs((a.t3! - a.t2!) - 20e-6) < 2e-6);
  // The question name matches case-insensitively (B.test in, b.test forwarded).
  assert.ok(traces(readPcap(pcap(run)), FRONT).every((t) => t.t1 !== undefined));
});

test('a gap in the output is a stall: held answers, the worst arrival and backend order are reported', () => {
  const s = analyze(readPcap(pcap(run)), FRONT).stall;
  assert.equal(s.stalls, 1);
  assert.ok(Math.abs(s.gapMs - 9.49) < 0.01, `gap from the forward at 1.00051 to the one at 1.01: ${s.gapMs}`);
  assert.ok(Math.abs(s.waitingOutMs - 0.03) < 0.002, `the held answer went out 30 µs after the stall: ${s.waitingOutMs}`);
  assert.ok(Math.abs(s.worstArrivedMs - 8.08) < 0.002, `worst arrival: b.test, 1.002 → 1.01008: ${s.worstArrivedMs}`);
  assert.equal(s.inversions, 1, 'the one pair was answered in the other order');
  assert.ok(Math.abs(s.backendPaceUs - 10) < 1, `backend answers at 1.01005 and 1.01006: ${s.backendPaceUs}`);
  // The oldest arrival (b, 1.002) was answered 80 µs after the stall's end, the next (c) 70.
  assert.equal(s.oldestOutUs.length, 2);
  assert.ok(Math.abs(s.oldestOutUs[0]! - 80) < 2 && Math.abs(s.oldestOutUs[1]! - 70) < 2, `${s.oldestOutUs}`);
  assert.match(formatReport(analyze(readPcap(pcap(run)), FRONT)), /its 2 oldest answered 80 \/ 70 µs after it/);
  // With a longer gap threshold there is no stall.
  assert.equal(analyze(readPcap(pcap(run)), FRONT, 20).stall.stalls, 0);
});

test('a capture that is not a classic pcap is refused; a cut-off last packet is skipped', () => {
  assert.throws(() => readPcap(Buffer.from('not a capture at all, just text')), /not a little-endian classic pcap/);
  assert.throws(() => readPcap(Buffer.alloc(10)), /shorter than its header/);
  assert.equal(readPcap(pcap(run)).length, run.length - 1, 'the TCP packet is not DNS over UDP');
  assert.equal(readPcap(pcap(run, 30)).length, run.length - 2, 'nor is the cut-off one');
});
