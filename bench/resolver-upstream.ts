/**
 * A minimal fast upstream for bench/resolver.ts, run in its own process so it does not share an event
 * loop with the server under test: answers every A question with one address derived from the name
 * (TTL 3600, or `TTL` from the environment: 0 makes every answer uncacheable), anything else with
 * NODATA. No decoding beyond the question's end: the reply is the query
 * with the header patched and one answer appended (name compressed to the question).
 *
 * Usage: node resolver-upstream.js  → prints {"port":N} on stdout once listening.
 */
import dgram from 'node:dgram';

const sock = dgram.createSocket('udp4');
const answer = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 0, 0, 0, 0]);
answer.writeUInt32BE(Number(process.env.TTL ?? 3600) >>> 0, 6);

sock.on('message', (q, rinfo) => {
  if (q.length < 17 || (q[2] & 0x80)) return;
  // End of the question: walk the labels.
  let off = 12;
  while (off < q.length && q[off] !== 0) off += q[off] + 1;
  const qend = off + 5;
  if (qend > q.length) return;
  const qtype = q.readUInt16BE(off + 1);
  const isA = qtype === 1;
  const out = Buffer.allocUnsafe(qend + (isA ? answer.length : 0));
  q.copy(out, 0, 0, qend);
  out[2] = 0x80 | (q[2] & 0x01); // QR, keep RD
  out[3] = 0x80; // RA, NOERROR
  out.writeUInt16BE(1, 4);
  out.writeUInt16BE(isA ? 1 : 0, 6);
  out.writeUInt32BE(0, 8); // no authority, no additional (drops the client's OPT: fine for a bench)
  if (isA) {
    answer.copy(out, qend);
    // A stable address per name: a cheap hash of the question bytes.
    let h = 2166136261;
    for (let i = 12; i < off; i++) h = Math.imul(h ^ q[i], 16777619);
    out.writeUInt32BE(((10 << 24) | (h & 0xffffff)) >>> 0, qend + 12);
  }
  sock.send(out, rinfo.port, rinfo.address);
});

sock.bind(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: sock.address().port }) + '\n');
});
process.on('SIGTERM', () => { sock.close(); process.exit(0); });
