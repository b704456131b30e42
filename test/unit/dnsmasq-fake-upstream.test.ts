// Light tests of the fake upstream used by the resolver and differential tests: each behaviour
// does what resolver tests rely on it to do.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import dnsPacket from 'dns-packet';
import type { DecodedPacket } from 'dns-packet';
import { FakeUpstream } from '../helpers/fake-upstream.js';

/** dns-packet's decode result, with the fields its typings leave out. */
type Reply = Omit<DecodedPacket, 'answers'> & { rcode: string; answers: { name: string; type: string; data: unknown }[] };

function query(name: string, type: string, id = 4242, edns = false): Buffer {
  return dnsPacket.encode({
    id, type: 'query', flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type: type as 'A', class: 'IN' }],
    additionals: edns ? [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: 0, options: [] } as never] : [],
  });
}

/** Collects every UDP reply to one query until `waitMs` passes after `n` replies (or the deadline). */
async function udpAsk(port: number, msg: Buffer, n = 1, deadlineMs = 1000): Promise<{ pkt: Reply; port: number }[]> {
  const s = dgram.createSocket('udp4');
  const got: { pkt: Reply; port: number }[] = [];
  try {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, deadlineMs);
      s.on('message', (m, r) => {
        got.push({ pkt: dnsPacket.decode(m) as Reply, port: r.port });
        if (got.length >= n) { clearTimeout(t); resolve(); }
      });
      s.send(msg, port, '127.0.0.1');
    });
  } finally { s.close(); }
  return got;
}

async function tcpAsk(port: number, msgs: Buffer[]): Promise<Reply[]> {
  const c = net.connect(port, '127.0.0.1');
  await once(c, 'connect');
  c.write(Buffer.concat(msgs.map((m) => Buffer.concat([Buffer.from([m.length >> 8, m.length & 0xff]), m]))));
  const out: Reply[] = [];
  let buf = Buffer.alloc(0);
  for await (const d of c) {
    buf = Buffer.concat([buf, d as Buffer]);
    while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
      out.push(dnsPacket.decode(buf.subarray(2, 2 + buf.readUInt16BE(0))) as Reply);
      buf = buf.subarray(2 + buf.readUInt16BE(0));
    }
    if (out.length === msgs.length) break;
  }
  c.destroy();
  return out;
}

describe('fake upstream', () => {
  const up = new FakeUpstream();
  let port = 0;
  before(async () => {
    ({ port } = await up.start());
    up.add('www.test', 'A', ['192.0.2.1', '192.0.2.2']).add('big.test', 'TXT', ['x'.repeat(250)]);
    for (let i = 0; i < 8; i++) up.add('big.test', 'TXT', ['y'.repeat(250)]);
  });
  after(() => up.close());

  it('answers from its zone over UDP and counts queries, keeping the question\'s case', async () => {
    up.behaviour = { kind: 'normal' }; up.reset();
    const [r] = await udpAsk(port, query('WwW.Test', 'A'));
    assert.equal(r.pkt.id, 4242);
    assert.equal(r.pkt.rcode, 'NOERROR');
    assert.equal(r.pkt.questions![0].name, 'WwW.Test');
    assert.deepEqual(r.pkt.answers!.map((a) => a.data), ['192.0.2.1', '192.0.2.2']);
    assert.equal(up.count('www.test'), 1);
  });

  it('gives NXDOMAIN and NODATA with an SOA', async () => {
    up.behaviour = { kind: 'normal' };
    const [nx] = await udpAsk(port, query('none.test', 'A'));
    assert.equal(nx.pkt.rcode, 'NXDOMAIN');
    assert.equal(nx.pkt.authorities![0].type, 'SOA');
    const [nodata] = await udpAsk(port, query('www.test', 'AAAA'));
    assert.equal(nodata.pkt.rcode, 'NOERROR');
    assert.equal(nodata.pkt.answers!.length, 0);
    assert.equal(nodata.pkt.authorities![0].type, 'SOA');
  });

  it('truncates over UDP what does not fit, answers in full over TCP with pipelining', async () => {
    up.behaviour = { kind: 'normal' };
    const [r] = await udpAsk(port, query('big.test', 'TXT'));
    assert.ok(r.pkt.flag_tc);
    assert.equal(r.pkt.answers!.length, 0);
    const [full, www] = await tcpAsk(port, [query('big.test', 'TXT', 1), query('www.test', 'A', 2)]);
    assert.equal(full.flag_tc, false);
    assert.equal(full.answers!.length, 9);
    assert.equal(www.id, 2);
  });

  it('truncating: TC over UDP for any answer, full over TCP', async () => {
    up.behaviour = { kind: 'truncating' };
    const [r] = await udpAsk(port, query('www.test', 'A', 7, true));
    assert.ok(r.pkt.flag_tc);
    const [t] = await tcpAsk(port, [query('www.test', 'A')]);
    assert.equal(t.answers!.length, 2);
  });

  it('servfail and refused', async () => {
    up.behaviour = { kind: 'servfail' };
    assert.equal((await udpAsk(port, query('www.test', 'A')))[0].pkt.rcode, 'SERVFAIL');
    up.behaviour = { kind: 'refused' };
    assert.equal((await udpAsk(port, query('www.test', 'A')))[0].pkt.rcode, 'REFUSED');
  });

  it('dead: counts the query, never answers', async () => {
    up.behaviour = { kind: 'dead' }; up.reset();
    const got = await udpAsk(port, query('www.test', 'A'), 1, 150);
    assert.equal(got.length, 0);
    assert.equal(up.count('www.test'), 1);
  });

  it('slow: answers after the delay', async () => {
    up.behaviour = { kind: 'slow', delayMs: 120 };
    const t0 = Date.now();
    const [r] = await udpAsk(port, query('www.test', 'A'));
    assert.ok(Date.now() - t0 >= 110);
    assert.equal(r.pkt.answers!.length, 2);
  });

  it('lying: wrong ID or wrong question first, then the truth', async () => {
    up.behaviour = { kind: 'lying', lie: 'id', thenRealAfterMs: 20 };
    const [lie, truth] = await udpAsk(port, query('www.test', 'A', 100), 2);
    assert.equal(lie.pkt.id, 101);
    assert.equal(truth.pkt.id, 100);
    up.behaviour = { kind: 'lying', lie: 'question' };
    const [q] = await udpAsk(port, query('www.test', 'A', 100));
    assert.equal(q.pkt.id, 100);
    assert.equal(q.pkt.questions![0].name, 'lie.www.test');
  });

  it('spoofing: forged answer from another port, then the truth from the real one', async () => {
    up.behaviour = { kind: 'spoofing', thenRealAfterMs: 20 };
    const [forged, truth] = await udpAsk(port, query('www.test', 'A', 9), 2);
    assert.notEqual(forged.port, port);
    assert.equal(forged.pkt.id, 9);
    assert.deepEqual(forged.pkt.answers!.map((a) => a.data), ['6.6.6.6']);
    assert.equal(truth.port, port);
    assert.deepEqual(truth.pkt.answers!.map((a) => a.data), ['192.0.2.1', '192.0.2.2']);
  });
});
