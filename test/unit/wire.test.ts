import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import dnsPacket from 'dns-packet';
import {
  QueryInfo, scanMessage, questionKey, ageTtls, minTtl, negativeTtl, TcpFramer, tcpFrame, errorResponse,
  sameQuestion, nameToString, encodeName, HEADER_LEN, clampTtls,
} from '../../src/dns/wire.js';
import { buildQuery, decode, assembleResponse } from '../../src/dns/message.js';
import { recordData } from '../../src/dns/records.js';

test('scanMessage reads question, EDNS size and DO bit', () => {
  const q = buildQuery('Www.Example.COM', 'AAAA', { id: 4660, edns: true, udpSize: 4000, dnssecOk: true });
  const info = new QueryInfo();
  assert.equal(scanMessage(q, q.length, info), 0);
  assert.equal(info.id, 4660);
  assert.equal(info.qtype, 28);
  assert.equal(info.qclass, 1);
  assert.equal(info.edns, true);
  assert.equal(info.udpSize, 4000);
  assert.equal(info.dnssecOk, true);
  assert.equal(nameToString(q, HEADER_LEN, info.nameEnd), 'www.example.com');
  assert.equal(nameToString(q, HEADER_LEN, info.nameEnd, false), 'Www.Example.COM');
});

test('nameToString escapes dots, backslashes and non-printable bytes, and stops at a bad label', () => {
  // Labels given as bytes: "a.b" (a dot inside a label), "c\\d", a NUL, a space, 0xff, upper case.
  const labels = [[0x61, 0x2e, 0x62], [0x63, 0x5c, 0x64], [0x00, 0x20, 0xff], [0x41, 0x5a]];
  const wire = [...new Array(HEADER_LEN).fill(0)];
  for (const l of labels) wire.push(l.length, ...l);
  wire.push(0);
  const buf = Uint8Array.from(wire);
  assert.equal(nameToString(buf, HEADER_LEN, buf.length), 'a\\.b.c\\\\d.\\000\\032\\255.az');
  assert.equal(nameToString(buf, HEADER_LEN, buf.length, false), 'a\\.b.c\\\\d.\\000\\032\\255.AZ');
  // A 63-byte label; the root; a label running past `end` ends the name there.
  const long = Uint8Array.from([...new Array(HEADER_LEN).fill(0), 63, ...new Array(63).fill(0x78), 0]);
  assert.equal(nameToString(long, HEADER_LEN, long.length), 'x'.repeat(63));
  assert.equal(nameToString(Uint8Array.from([...new Array(HEADER_LEN).fill(0), 0]), HEADER_LEN, HEADER_LEN + 1), '');
  const cut = Uint8Array.from([...new Array(HEADER_LEN).fill(0), 2, 0x6f, 0x6b, 9, 0x61, 0x62]);
  assert.equal(nameToString(cut, HEADER_LEN, cut.length), 'ok');
});

test('questionKey ignores case but not type, EDNS or DO', () => {
  const info = new QueryInfo();
  const key = (name: string, type: string, o = {}) => { const q = buildQuery(name, type, o); scanMessage(q, q.length, info); return questionKey(q, info); };
  assert.equal(key('a.EXAMPLE', 'A'), key('A.example', 'A'));
  assert.notEqual(key('a.example', 'A'), key('a.example', 'AAAA'));
  assert.notEqual(key('a.example', 'A'), key('a.example', 'A', { edns: true }));
  assert.notEqual(key('a.example', 'A', { edns: true }), key('a.example', 'A', { dnssecOk: true }));
});

test('scanMessage refuses malformed input with a negative code, never throws', () => {
  const info = new QueryInfo();
  assert.ok(scanMessage(Buffer.alloc(5), 5, info) < 0);
  const q = buildQuery('example.com', 'A');
  assert.ok(scanMessage(q, q.length - 3, info) < 0); // cut in the question
  const ptr = Buffer.from(q); ptr[12] = 0xc0; // compression pointer in a question
  assert.ok(scanMessage(ptr, ptr.length, info) < 0);
  const two = Buffer.from(q); two[5] = 2; // QDCOUNT 2
  assert.ok(scanMessage(two, two.length, info) < 0);
  fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
    const b = Buffer.from(bytes);
    const r = scanMessage(b, b.length, info);
    return r === 0 || r < 0;
  }), { numRuns: 3000 });
});

function answer(ttls: number[], rcode = 'NOERROR', soa?: { ttl: number; minimum: number }): Buffer {
  return dnsPacket.encode({
    type: 'response', id: 1, flags: 0x8180 | (rcode === 'NXDOMAIN' ? 3 : 0),
    questions: [{ type: 'A', name: 'x.example', class: 'IN' }],
    answers: ttls.map((ttl, i) => ({ type: 'A', name: 'x.example', ttl, data: `192.0.2.${i + 1}` })),
    authorities: soa ? [{ type: 'SOA', name: 'example', ttl: soa.ttl, data: { mname: 'ns.example', rname: 'h.example', serial: 1, refresh: 1, retry: 1, expire: 1, minimum: soa.minimum } }] : [],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232 } as never],
  });
}

test('TTL scanning, ageing and clamping skip OPT and floor at zero', () => {
  const r = answer([300, 60, 90]);
  assert.equal(minTtl(r, r.length), 60);
  assert.ok(ageTtls(r, r.length, 70));
  assert.deepEqual(decode(r).answers!.map((a) => (a as { ttl: number }).ttl), [230, 0, 20]);
  assert.equal((decode(r).additionals![0] as { udpPayloadSize: number }).udpPayloadSize, 1232);
  const c = answer([5, 100000]);
  clampTtls(c, c.length, 30, 3600);
  assert.deepEqual(decode(c).answers!.map((a) => (a as { ttl: number }).ttl), [30, 3600]);
});

test('negativeTtl is min(SOA TTL, SOA MINIMUM)', () => {
  const r = answer([], 'NXDOMAIN', { ttl: 900, minimum: 300 });
  assert.equal(negativeTtl(r, r.length), 300);
  const r2 = answer([], 'NXDOMAIN', { ttl: 60, minimum: 300 });
  assert.equal(negativeTtl(r2, r2.length), 60);
  const r3 = answer([]);
  assert.equal(negativeTtl(r3, r3.length), -1);
});

test('TcpFramer reassembles split and pipelined messages and rejects zero length', () => {
  const got: string[] = [];
  const f = new TcpFramer((m) => got.push(m.toString()));
  const stream = Buffer.concat([tcpFrame(Buffer.from('hello')), tcpFrame(Buffer.from('dns')), tcpFrame(Buffer.from('!'))]);
  for (let i = 0; i < stream.length; i += 3) assert.ok(f.push(stream.subarray(i, i + 3)));
  assert.deepEqual(got, ['hello', 'dns', '!']);
  assert.equal(f.push(Buffer.from([0, 0])), false);
});

test('TcpFramer under any chunking (fast-check): the same messages in order, pending and completed exact', () => {
  fc.assert(fc.property(
    fc.array(fc.uint8Array({ minLength: 1, maxLength: 700 }), { minLength: 1, maxLength: 8 }),
    fc.array(fc.integer({ min: 1, max: 900 }), { minLength: 1, maxLength: 40 }),
    (msgs, cuts) => {
      const stream = Buffer.concat(msgs.map((m) => tcpFrame(m)));
      const got: Buffer[] = [];
      // Copied: a whole message may be a view of the chunk the caller reuses.
      const f = new TcpFramer((m) => got.push(Buffer.from(m)));
      let off = 0, k = 0;
      while (off < stream.length) {
        const n = Math.min(cuts[k++ % cuts.length]!, stream.length - off);
        assert.ok(f.push(stream.subarray(off, off + n)));
        off += n;
        const done = Buffer.concat(got).length + got.length * 2;
        assert.equal(f.pending, off - done, 'pending = bytes of the unfinished message');
      }
      assert.equal(f.completed, msgs.length);
      assert.deepEqual(got.map((b) => b.toString('hex')), msgs.map((m) => Buffer.from(m).toString('hex')));
    },
  ), { numRuns: 500, seed: 11 });
});

test('TcpFramer: a maximum-size message dripped one byte at a time arrives whole', () => {
  const big = Buffer.alloc(65535, 7);
  const framed = tcpFrame(big);
  let got: Buffer | null = null;
  const f = new TcpFramer((m) => { got = Buffer.from(m); });
  for (let i = 0; i < framed.length; i++) f.push(framed.subarray(i, i + 1));
  assert.ok(got !== null && (got as Buffer).equals(big));
  assert.equal(f.pending, 0);
  // A zero length after a split prefix is still refused.
  const g = new TcpFramer(() => {});
  assert.equal(g.push(Buffer.from([0])), true);
  assert.equal(g.push(Buffer.from([0])), false);
});

test('errorResponse echoes the question and adds OPT only when asked with EDNS', () => {
  const info = new QueryInfo();
  const q = buildQuery('a.example', 'MX', { id: 99, edns: true });
  scanMessage(q, q.length, info);
  const out = Buffer.alloc(512);
  const n = errorResponse(q, info, 5, out);
  const d = decode(out.subarray(0, n));
  assert.equal(d.id, 99);
  assert.equal((d as unknown as { rcode: string }).rcode, 'REFUSED');
  assert.equal(d.questions![0].name, 'a.example');
  assert.equal(d.additionals!.length, 1);
  const q2 = buildQuery('a.example', 'MX');
  scanMessage(q2, q2.length, info);
  assert.equal(decode(out.subarray(0, errorResponse(q2, info, 2, out))).additionals!.length, 0);
});

test('sameQuestion compares case-insensitively', () => {
  const a = buildQuery('MiXeD.example', 'A');
  const b = buildQuery('mixed.EXAMPLE', 'A');
  const info = new QueryInfo();
  scanMessage(b, b.length, info);
  assert.ok(sameQuestion(a, a.length, b, info.questionEnd));
  const c = buildQuery('mixed.example', 'AAAA');
  assert.ok(!sameQuestion(c, c.length, b, info.questionEnd));
});

test('assembleResponse compresses owner names to the question (keeps client case)', () => {
  const q = buildQuery('Host.Example', 'A', { id: 5 });
  const info = new QueryInfo();
  scanMessage(q, q.length, info);
  const r = assembleResponse(q, info, 'host.example', 0, true, [{ name: 'host.example', type: 'A', ttl: 10, data: '192.0.2.7' }]);
  const d = decode(r);
  assert.equal(d.answers![0].name, 'Host.Example');
  assert.equal((d.answers![0] as { data: string }).data, '192.0.2.7');
  assert.equal(d.flag_aa, true);
  assert.deepEqual([...encodeName('a.b')], [1, 97, 1, 98, 0]);
});

test('a root target (".") in RDATA is encoded with the right length', () => {
  const q = buildQuery('_svc._tcp.example', 'SRV', { edns: true });
  const info = new QueryInfo();
  scanMessage(q, q.length, info);
  const r = assembleResponse(q, info, '_svc._tcp.example', 0, true, [{ name: '_svc._tcp.example', type: 'SRV', ttl: 0, data: recordData('SRV', '0 0 0 .') }]);
  const d = decode(r);
  assert.equal((d.answers![0] as { data: { target: string } }).data.target, '.');
  assert.equal(d.additionals![0].type, 'OPT', 'the OPT after it is intact');
});
