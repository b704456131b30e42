import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHosts, reverseName, addressFromReverse } from '../../src/resolver/hosts.js';
import { LocalData, isPrivateReverse } from '../../src/resolver/local.js';
import { HostsTable } from '../../src/resolver/hosts-table.js';
import { resolverSchema } from '../../src/config/schema.js';
import { buildTables } from '../../src/resolver/service.js';

const HOSTS = `# article format
192.168.111.111 xpt.redhat.cn
127.0.0.1   localhost localhost.localdomain   # comment
::1  localhost ip6-localhost
10.0.0.5 multi.example alias.example Mixed.Case.Example
2001:db8::5 multi.example
not-an-ip foo.example
10.0.0.6
10.0.0.7 bad_name! ok.example
`;

test('hosts parser: several names, comments, IPv6, bad lines reported with line numbers', () => {
  const r = parseHosts(HOSTS, '/etc/test-hosts');
  assert.equal(r.entries.length, 6);
  assert.deepEqual(r.entries[3].names, ['multi.example', 'alias.example', 'mixed.case.example']);
  assert.equal(r.entries[4].family, 6);
  assert.deepEqual(r.diagnostics.map((d) => d.line), [7, 8, 9]);
  assert.match(r.diagnostics[0].message, /bad address/);
});

test('reverse names round trip for IPv4 and IPv6', () => {
  assert.equal(reverseName('192.0.2.1'), '1.2.0.192.in-addr.arpa');
  const r6 = reverseName('2001:db8::5');
  assert.ok(r6.startsWith('5.0.0.0.0.0.0.0.'));
  assert.ok(r6.endsWith('.8.b.d.0.1.0.0.2.ip6.arpa'));
  assert.equal(addressFromReverse(r6), '2001:db8:0:0:0:0:0:5');
  assert.equal(addressFromReverse('1.2.0.192.in-addr.arpa'), '192.0.2.1');
});

function data() {
  return new LocalData({
    hosts: HostsTable.from(parseHosts(HOSTS, 'h').entries),
    records: [
      { name: 'www.corp.example', type: 'CNAME', value: 'multi.example' },
      { name: 'corp.example', type: 'MX', value: '10 mail.corp.example' },
      { name: 'corp.example', type: 'TXT', value: ['v=spf1 -all', 'second'] },
      { name: '_sip._udp.corp.example', type: 'SRV', value: '1 2 5060 sip.corp.example' },
      { name: 'ext.corp.example', type: 'CNAME', value: 'elsewhere.example.net' },
    ],
    wildcards: [
      { domain: 'ads.example', addresses: ['0.0.0.0'] },
      { domain: 'blocked.example', addresses: [] },
      { domain: 'v6only.example', addresses: ['2001:db8::1'] },
    ],
    localDomains: ['lan'],
    localTtl: 5,
  });
}

test('A/AAAA from hosts, NODATA for an existing name of another type, PTR to the first name', () => {
  const d = data();
  const a = d.lookup('multi.example', 1);
  assert.equal(a?.kind, 'answer');
  assert.deepEqual(a?.kind === 'answer' && a.answers.map((r) => [r.type, r.data, r.ttl]), [['A', '10.0.0.5', 5]]);
  const aaaa = d.lookup('multi.example', 28);
  assert.equal(aaaa?.kind === 'answer' && aaaa.answers[0].data, '2001:db8::5');
  assert.deepEqual(d.lookup('xpt.redhat.cn', 28), { kind: 'nodata' });
  assert.deepEqual(d.lookup('xpt.redhat.cn', 15), { kind: 'nodata' });
  const ptr = d.lookup('5.0.0.10.in-addr.arpa', 12);
  assert.equal(ptr?.kind === 'answer' && ptr.answers[0].data, 'multi.example');
  assert.equal(d.lookup('mixed.case.example', 1)?.kind, 'answer');
  assert.equal(d.lookup('nothere.example', 1), null, 'not ours: forwarded');
});

test('CNAME chains through local data; external targets end the chain', () => {
  const d = data();
  const r = d.lookup('www.corp.example', 1);
  assert.deepEqual(r?.kind === 'answer' && r.answers.map((x) => x.type), ['CNAME', 'A']);
  const e = d.lookup('ext.corp.example', 1);
  assert.deepEqual(e?.kind === 'answer' && e.answers.map((x) => x.type), ['CNAME']);
  const mx = d.lookup('corp.example', 15);
  assert.deepEqual(mx?.kind === 'answer' && mx.answers[0].data, { preference: 10, exchange: 'mail.corp.example' });
  const srv = d.lookup('_sip._udp.corp.example', 33);
  assert.deepEqual(srv?.kind === 'answer' && srv.answers[0].data, { priority: 1, weight: 2, port: 5060, target: 'sip.corp.example' });
  assert.equal(d.lookup('corp.example', 16)?.kind, 'answer');
});

test('wildcard domains: most specific wins, NXDOMAIN form, NODATA for the other family', () => {
  const d = data();
  const w = d.lookup('x.y.ads.example', 1);
  assert.equal(w?.kind === 'answer' && w.answers[0].data, '0.0.0.0');
  assert.equal(w?.kind === 'answer' && w.answers[0].name, 'x.y.ads.example');
  assert.deepEqual(d.lookup('ads.example', 28), { kind: 'nodata' });
  assert.deepEqual(d.lookup('a.blocked.example', 1), { kind: 'nxdomain' });
  assert.deepEqual(d.lookup('v6only.example', 1), { kind: 'nodata' });
});

test('local-only domains answer NXDOMAIN instead of forwarding; empty non-terminals are NODATA', () => {
  const d = data();
  assert.deepEqual(d.lookup('printer.lan', 1), { kind: 'nxdomain' });
  assert.ok(d.isLocalOnly('a.b.lan'));
  assert.deepEqual(d.lookup('_udp.corp.example', 33), { kind: 'nodata' });
});

test('bogus-priv recognises private reverse zones only', () => {
  assert.ok(isPrivateReverse('1.0.168.192.in-addr.arpa'));
  assert.ok(isPrivateReverse('1.0.0.10.in-addr.arpa'));
  assert.ok(isPrivateReverse('1.0.16.172.in-addr.arpa'));
  assert.ok(!isPrivateReverse('1.0.32.172.in-addr.arpa'));
  assert.ok(!isPrivateReverse('8.8.8.8.in-addr.arpa'));
});

test('bad inline record values are reported, not fatal', () => {
  const d = new LocalData({ hosts: HostsTable.from([]), records: [{ name: 'a.example', type: 'A', value: 'nope' }, { name: 'b.example', type: 'A', value: '192.0.2.1' }], wildcards: [], localDomains: [], localTtl: 0 });
  assert.equal(d.diagnostics.length, 1);
  assert.match(d.diagnostics[0].message, /not an IPv4 address/);
  assert.equal(d.lookup('b.example', 1)?.kind, 'answer');
});

test('a hosts file of 200k lines (a block list) loads whole, not dropped on a stack overflow', () => {
  const lines: string[] = [];
  for (let i = 0; i < 200_000; i++) lines.push(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255} h${i}.big.test`);
  const cfg = resolverSchema.parse({ hosts_files: ['/etc/big-hosts'], upstreams: { servers: ['192.0.2.53'] } });
  const built = buildTables(cfg, () => lines.join('\n') + '\n');
  assert.deepEqual(built.diagnostics, []);
  assert.equal(built.tables.local.size, 400_000); // each name and its PTR name
  const last = built.tables.local.lookup('h199999.big.test', 1);
  assert.deepEqual(last, { kind: 'answer', answers: [{ name: 'h199999.big.test', type: 'A', ttl: 0, data: '10.3.13.63' }] });
});
