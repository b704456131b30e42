/**
 * The lab's fake upstream DNS server, run inside the upstream namespace as its own process:
 * `node dist/src/lab/upstream.js --listen 10.77.0.53 --lab ID`. It answers the lab zone
 * (`nN.up.test` → 10.77.2.N+1, TTL 300) over UDP, NXDOMAIN with an SOA for anything else, so the
 * nodes' resolvers have something real to forward to without touching the outside world.
 *
 * A copy in spirit of test/helpers/fake-upstream.ts, kept in src/ because src/ must not import
 * test/ and the lab only needs the well-behaved case.
 */
import dgram from 'node:dgram';
import dnsPacket from 'dns-packet';
import type { Answer } from 'dns-packet';
import { UPSTREAM_NAMES, UPSTREAM_ZONE, upstreamAddress, upstreamName } from './plan.js';

export function zoneAnswer(query: Buffer): Buffer | null {
  let q: dnsPacket.DecodedPacket;
  try { q = dnsPacket.decode(query); } catch { return null; }
  const question = q.questions?.[0];
  if (!question || q.type !== 'query') return null;
  const lname = question.name.toLowerCase().replace(/\.$/, '');
  const idx = Array.from({ length: UPSTREAM_NAMES }, (_, i) => upstreamName(i)).indexOf(lname);
  const inZone = lname === UPSTREAM_ZONE || lname.endsWith(`.${UPSTREAM_ZONE}`);
  const answers: Answer[] = idx >= 0 && question.type === 'A'
    ? [{ name: question.name, type: 'A', class: 'IN', ttl: 300, data: upstreamAddress(idx) }]
    : [];
  const rcode = idx >= 0 || lname === UPSTREAM_ZONE ? 0 : 3; // NOERROR / NXDOMAIN
  const soa: Answer = {
    name: inZone ? UPSTREAM_ZONE : '.', type: 'SOA', class: 'IN', ttl: 60,
    data: { mname: 'ns.up.test', rname: 'hostmaster.up.test', serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: 60 },
  };
  return dnsPacket.encode({
    id: q.id, type: 'response',
    flags: ((q.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | dnsPacket.RECURSION_AVAILABLE | rcode,
    questions: [question], answers, authorities: answers.length ? [] : [soa],
  });
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const listen = args[args.indexOf('--listen') + 1];
  if (args.indexOf('--listen') < 0 || !listen) {
    process.stderr.write('usage: upstream.js --listen ADDR [--port N] [--lab ID]\n');
    process.exit(2);
  }
  const port = args.includes('--port') ? Number(args[args.indexOf('--port') + 1]) : 53;
  const sock = dgram.createSocket('udp4');
  sock.on('message', (m, r) => { const a = zoneAnswer(m); if (a) sock.send(a, r.port, r.address); });
  sock.on('error', (e) => { process.stderr.write(`upstream: ${e.message}\n`); process.exit(1); });
  sock.bind(port, listen, () => process.stderr.write(`upstream listening on ${listen}:${port}\n`));
  const stop = () => sock.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

// Run only as a program, not when imported by tests.
if (process.argv[1] && /upstream\.js$/.test(process.argv[1])) await main();
