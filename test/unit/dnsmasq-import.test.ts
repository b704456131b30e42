import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { importDnsmasq } from '../../src/config/legacy/dnsmasq.js';
import { configSchema } from '../../src/config/schema.js';
import { parseNative } from '../../src/config/load.js';
import { formatDiagnostic, type Diagnostic } from '../../src/config/diagnostics.js';

// Fixtures live in the source tree; tests run from dist/test/unit or test/unit (tsx).
const here = fileURLToPath(new URL('.', import.meta.url));
const fixtures = join(here, here.includes('/dist/') ? '../../../test/fixtures/dnsmasq' : '../fixtures/dnsmasq');

/** Imports text given inline; includes come from `files`. */
function imp(text: string, files: Record<string, string> = {}) {
  return importDnsmasq('/etc/dnsmasq.conf', text, (p) => {
    if (p in files) return files[p];
    throw new Error(`ENOENT: no such file '${p}'`);
  });
}
const lines = (ds: Diagnostic[]) => ds.map(formatDiagnostic);
const errors = (ds: Diagnostic[]) => lines(ds.filter((d) => d.severity === 'error'));
const warnings = (ds: Diagnostic[]) => lines(ds.filter((d) => d.severity === 'warning'));
function resolver(text: string) {
  const r = imp(text);
  assert.deepEqual(errors(r.diagnostics), []);
  const parsed = configSchema.safeParse(r.config);
  assert.ok(parsed.success, JSON.stringify(parsed.error?.issues));
  return { r, res: r.config.resolver!, full: parsed.data.resolver! };
}

describe('dnsmasq importer: the article\'s config', () => {
  it('maps port, listen-address, resolv-file, strict-order and addn-hosts', () => {
    const path = join(fixtures, 'article.conf');
    const r = importDnsmasq(path);
    assert.deepEqual(r.diagnostics, []);
    assert.deepEqual(r.config, {
      resolver: {
        // The later port=5454 wins over port=53, as in dnsmasq.
        listen: ['127.0.0.1:5454', '172.22.10.50:5454'],
        acl: 'any',
        hosts_files: ['/etc/hosts', '/etc/dnsmasq.hosts'],
        upstreams: { servers: [], resolv_file: '/etc/resolv.dnsmasq.conf', strategy: 'strict-order' },
      },
    });
    assert.deepEqual(r.files, [path, '/etc/dnsmasq.hosts', '/etc/hosts']);
    const parsed = configSchema.safeParse(r.config);
    assert.ok(parsed.success);
    assert.equal(parsed.data.resolver!.upstreams.strategy, 'strict-order');
  });

  it('round-trips through YAML and the native loader unchanged', () => {
    const r = importDnsmasq(join(fixtures, 'full.conf'));
    assert.deepEqual(errors(r.diagnostics), []);
    const direct = configSchema.parse(r.config);
    const back = parseNative(stringify(r.config), 'imported.yaml');
    assert.deepEqual(back.diagnostics, []);
    assert.deepEqual(back.config, direct);
    // And the fixture exercised the interesting parts.
    assert.ok(direct.resolver!.records.length > 10);
    assert.ok(direct.resolver!.forward.length >= 2);
  });
});

describe('dnsmasq importer: listeners', () => {
  it('defaults to port 53 on every address, keeping the local-service ACL', () => {
    const { res } = resolver('');
    assert.deepEqual(res.listen, ['0.0.0.0:53', '[::]:53']);
    assert.equal(res.acl, 'local-service');
    assert.deepEqual(res.hosts_files, ['/etc/hosts']);
    assert.deepEqual(res.upstreams, { servers: [], resolv_file: '/etc/resolv.conf' });
  });
  it('brackets IPv6 listen addresses and applies port= wherever it appears', () => {
    const { res } = resolver('listen-address=::1, 127.0.0.1\nlisten-address=10.0.0.1\nport=5353\n');
    assert.deepEqual(res.listen, ['[::1]:5353', '127.0.0.1:5353', '10.0.0.1:5353']);
    assert.equal(res.acl, 'any');
  });
  it('maps interface= and adds loopback as dnsmasq does', () => {
    const { res } = resolver('interface=eth0\ninterface=eth1');
    assert.deepEqual(res.listen, []);
    assert.deepEqual(res.interfaces, ['eth0', 'eth1', 'lo']);
    assert.equal(res.acl, 'any');
  });
  it('local-service=host listens on loopback only', () => {
    const { res } = resolver('local-service=host\nport=5300');
    assert.deepEqual(res.listen, ['127.0.0.1:5300', '[::1]:5300']);
    assert.deepEqual(res.acl, ['127.0.0.0/8', '::1/128']);
  });
  it('bind-interfaces and bind-dynamic are accepted with a note', () => {
    const r = imp('bind-interfaces\nbind-dynamic\n');
    assert.deepEqual(errors(r.diagnostics), []);
    assert.deepEqual(warnings(r.diagnostics), [
      '/etc/dnsmasq.conf:1: warning: bind-interfaces: has no effect: hadns always binds each listen address itself',
      '/etc/dnsmasq.conf:2: warning: bind-dynamic: has no effect: hadns binds each listen address itself and re-reads interface addresses on reload',
    ]);
  });
  it('port=0 (DNS off) imports to no resolver, with a warning', () => {
    const r = imp('dhcp-range=10.0.0.10,10.0.0.50\nport=0\n');
    assert.deepEqual(r.config, {});
    assert.deepEqual(warnings(r.diagnostics)[1], '/etc/dnsmasq.conf:2: warning: resolver: port=0 disables DNS in dnsmasq; the imported config has no resolver');
  });
  it('except-interface is reported as not supported', () => {
    const r = imp('except-interface=eth1');
    assert.match(warnings(r.diagnostics)[0], /^\/etc\/dnsmasq.conf:1: warning: ignored: except-interface: /);
  });
});

describe('dnsmasq importer: upstreams and forwarding', () => {
  it('maps resolv-file, no-resolv, strategies and plain servers', () => {
    assert.equal(resolver('no-resolv').res.upstreams!.resolv_file, null);
    assert.equal(resolver('resolv-file=/etc/r.conf').res.upstreams!.resolv_file, '/etc/r.conf');
    assert.equal(resolver('all-servers').res.upstreams!.strategy, 'all-servers');
    const { res, full } = resolver('server=192.0.2.1\nserver=192.0.2.2#5353\nserver=2001:db8::1#53\nserver=192.0.2.1');
    assert.deepEqual(res.upstreams!.servers, ['192.0.2.1', '192.0.2.2#5353', '2001:db8::1#53']);
    assert.equal(full.upstreams.strategy, 'fastest');
  });
  it('maps server=/dom/ip, several domains, /dom/#, /dom/ and local=', () => {
    const { res } = resolver([
      'server=/corp.example/10.0.0.53',
      'server=/a.example/b.example/10.0.0.54#5353',
      'server=/corp.example/10.0.0.55',
      'server=/www.corp.example/#',
      'server=/lan/',
      'local=/home.arpa/',
      'server=/.Dotted.Example./10.0.0.56',
      'server=/#/10.0.0.57',
    ].join('\n'));
    assert.deepEqual(res.forward, [
      { domain: 'corp.example', servers: ['10.0.0.53', '10.0.0.55'] },
      { domain: 'a.example', servers: ['10.0.0.54#5353'] },
      { domain: 'b.example', servers: ['10.0.0.54#5353'] },
      { domain: 'www.corp.example', servers: [] },
      { domain: 'dotted.example', servers: ['10.0.0.56'] },
      { domain: '.', servers: ['10.0.0.57'] },
    ]);
    assert.deepEqual(res.local_domains, ['lan', 'home.arpa']);
  });
  it('maps domain=DOM,PREFIX,local to local domains, forward and reverse', () => {
    const { res } = resolver('domain=lan,192.168.7.0/24,local');
    assert.deepEqual(res.local_domains, ['lan', '7.168.192.in-addr.arpa']);
  });
  it('maps rev-server to reverse zones, expanding prefixes off an octet/nibble boundary', () => {
    const { res } = resolver('rev-server=192.168.1.0/24,10.0.0.1\nrev-server=10.16.0.0/14,10.0.0.2#54\nrev-server=2001:db8::/32,10.0.0.3\nrev-server=172.16.0.0/16');
    assert.deepEqual(res.forward, [
      { domain: '1.168.192.in-addr.arpa', servers: ['10.0.0.1'] },
      ...[16, 17, 18, 19].map((o) => ({ domain: `${o}.10.in-addr.arpa`, servers: ['10.0.0.2#54'] })),
      { domain: '8.b.d.0.1.0.0.2.ip6.arpa', servers: ['10.0.0.3'] },
    ]);
    assert.deepEqual(res.local_domains, ['16.172.in-addr.arpa']);
  });
  it('keeps server=ip@interface as a plain server, with a warning', () => {
    const r = imp('server=10.0.0.1@eth0\nserver=/x.example/10.0.0.2#53@10.0.0.9#5000');
    assert.deepEqual(r.config.resolver!.upstreams!.servers, ['10.0.0.1']);
    assert.deepEqual(r.config.resolver!.forward, [{ domain: 'x.example', servers: ['10.0.0.2#53'] }]);
    assert.deepEqual(warnings(r.diagnostics), [
      '/etc/dnsmasq.conf:1: warning: server: "@eth0" ignored: hadns picks the source address and interface from the routing table',
      '/etc/dnsmasq.conf:2: warning: server: "@10.0.0.9#5000" ignored: hadns picks the source address and interface from the routing table',
    ]);
  });
});

describe('dnsmasq importer: local data', () => {
  it('maps address= to wildcards, merging IPv4 and IPv6, with # and NXDOMAIN', () => {
    const { res } = resolver([
      'address=/ads.example/10.1.1.1',
      'address=/ads.example/fd00::1',
      'address=/blocked.example/',
      'address=/null.example/#',
      'address=/a.example/b.example/10.2.2.2',
    ].join('\n'));
    assert.deepEqual(res.wildcards, [
      { domain: 'ads.example', addresses: ['10.1.1.1', 'fd00::1'] },
      { domain: 'blocked.example', addresses: [] },
      { domain: 'null.example', addresses: ['0.0.0.0', '::'] },
      { domain: 'a.example', addresses: ['10.2.2.2'] },
      { domain: 'b.example', addresses: ['10.2.2.2'] },
    ]);
  });
  it('addn-hosts (file or directory) and no-hosts', () => {
    const a = imp('addn-hosts=/etc/dnsmasq.hosts\naddn-hosts=/etc/hosts.d\n');
    assert.deepEqual(a.config.resolver!.hosts_files, ['/etc/hosts', '/etc/dnsmasq.hosts', '/etc/hosts.d']);
    assert.deepEqual(a.files, ['/etc/dnsmasq.conf', '/etc/dnsmasq.hosts', '/etc/hosts.d', '/etc/hosts']);
    const b = imp('no-hosts\naddn-hosts=/etc/dnsmasq.hosts\n');
    assert.deepEqual(b.config.resolver!.hosts_files, ['/etc/dnsmasq.hosts']);
    assert.ok(!b.files.includes('/etc/hosts'));
  });
  it('host-record gives A/AAAA for every name and one PTR per address to the first name', () => {
    const { res } = resolver([
      'host-record=gw.lan,router.lan,192.168.0.1,fd00::1',
      'host-record=other.lan,192.168.0.1',
      'host-record=gw.lan,192.168.0.2,300',
    ].join('\n'));
    assert.deepEqual(res.records, [
      { name: 'gw.lan', type: 'A', value: '192.168.0.1' },
      { name: 'router.lan', type: 'A', value: '192.168.0.1' },
      { name: 'gw.lan', type: 'AAAA', value: 'fd00::1' },
      { name: 'router.lan', type: 'AAAA', value: 'fd00::1' },
      { name: '1.0.168.192.in-addr.arpa', type: 'PTR', value: 'gw.lan' },
      { name: '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa', type: 'PTR', value: 'gw.lan' },
      { name: 'other.lan', type: 'A', value: '192.168.0.1' },
      { name: 'gw.lan', type: 'A', value: '192.168.0.2', ttl: 300 },
      { name: '2.0.168.192.in-addr.arpa', type: 'PTR', value: 'gw.lan', ttl: 300 },
    ]);
  });
  it('maps cname, txt-record, mx-host, srv-host and ptr-record with dnsmasq\'s defaults', () => {
    const { res } = resolver([
      'cname=www.lan,web.lan,gw.lan',
      'cname=ftp.lan,gw.lan,120',
      'txt-record=t.lan,"v=spf1 a -all","with, comma",plain',
      'txt-record=empty.lan',
      'txt-record=q.lan,"a \\"quoted\\" # not a comment"   # a comment',
      'mx-target=mail.lan',
      'mx-host=lan,mx1.lan,10',
      'mx-host=lan,mx2.lan',
      'mx-host=pref.lan,5',
      'mx-host=dflt.lan',
      'srv-host=_ldap._tcp.lan,ldap.lan,389,1,2',
      'srv-host=_sip._udp.lan,sip.lan',
      'srv-host=_none._tcp.lan',
      'domain=corp.lan',
      'srv-host=_kerberos._udp,kdc.corp.lan,88',
      'ptr-record=_http._tcp.lan,web._http._tcp.lan',
      'ptr-record=1.0.0.10.in-addr.arpa,gw.lan',
      'ptr-record=bare.lan',
    ].join('\n'));
    assert.deepEqual(res.records, [
      { name: 'www.lan', type: 'CNAME', value: 'gw.lan' },
      { name: 'web.lan', type: 'CNAME', value: 'gw.lan' },
      { name: 'ftp.lan', type: 'CNAME', value: 'gw.lan', ttl: 120 },
      { name: 't.lan', type: 'TXT', value: ['v=spf1 a -all', 'with, comma', 'plain'] },
      { name: 'empty.lan', type: 'TXT', value: '' },
      { name: 'q.lan', type: 'TXT', value: 'a "quoted" # not a comment' },
      { name: '_ldap._tcp.lan', type: 'SRV', value: '1 2 389 ldap.lan' },
      { name: '_sip._udp.lan', type: 'SRV', value: '0 0 1 sip.lan' },
      { name: '_none._tcp.lan', type: 'SRV', value: '0 0 1 .' },
      { name: '_kerberos._udp.corp.lan', type: 'SRV', value: '0 0 88 kdc.corp.lan' },
      { name: '_http._tcp.lan', type: 'PTR', value: 'web._http._tcp.lan' },
      { name: '1.0.0.10.in-addr.arpa', type: 'PTR', value: 'gw.lan' },
      { name: 'bare.lan', type: 'PTR', value: '.' },
      // MX lines are placed last: a later mx-target= still applies to them, as in dnsmasq.
      { name: 'lan', type: 'MX', value: '10 mx1.lan' },
      { name: 'lan', type: 'MX', value: '1 mx2.lan' },
      { name: 'pref.lan', type: 'MX', value: '5 mail.lan' },
      { name: 'dflt.lan', type: 'MX', value: '1 mail.lan' },
    ]);
  });
  it('splits TXT strings over 255 bytes like dnsmasq', () => {
    const long = 'x'.repeat(300);
    const { res } = resolver(`txt-record=long.lan,${long}`);
    assert.deepEqual(res.records, [{ name: 'long.lan', type: 'TXT', value: ['x'.repeat(255), 'x'.repeat(45)] }]);
  });
});

describe('dnsmasq importer: cache and behaviour flags', () => {
  it('maps TTLs, cache size, flags, query log and forward limit', () => {
    const { res } = resolver([
      'local-ttl=60', 'neg-ttl=30', 'cache-size=1000', 'min-cache-ttl=120', 'max-cache-ttl=7200',
      'domain-needed', 'bogus-priv', 'log-queries', 'dns-forward-max=300', 'use-stale-cache=600',
    ].join('\n'));
    assert.equal(res.local_ttl, 60);
    assert.deepEqual(res.cache, { size: 1000, min_ttl: 120, max_ttl: 7200, neg_ttl: 30, serve_stale: { enabled: true, max_age: 600 } });
    assert.equal(res.domain_needed, true);
    assert.equal(res.bogus_priv, true);
    assert.equal(res.query_log, true);
    assert.equal(res.max_inflight, 300);
  });
  it('caps min-cache-ttl at 3600 as dnsmasq does', () => {
    const r = imp('min-cache-ttl=7200');
    assert.equal(r.config.resolver!.cache!.min_ttl, 3600);
    assert.deepEqual(warnings(r.diagnostics), [
      "/etc/dnsmasq.conf:1: warning: resolver.cache.min_ttl: min-cache-ttl: 7200 is above dnsmasq's limit; capped at 3600 as dnsmasq does",
    ]);
  });
  it('no-negcache turns off negative caching entirely', () => {
    const { res } = resolver('no-negcache\nneg-ttl=30');
    assert.deepEqual(res.cache, { neg_ttl: 0, neg_max_ttl: 0 });
  });
});

describe('dnsmasq importer: syntax', () => {
  it('accepts comments, blank lines, surrounding spaces and spaces around =', () => {
    const { res } = resolver([
      '# a comment', '', '   ', '  port = 5300  ', '\tserver=10.0.0.1#5353   # trailing comment',
      'strict-order # flag with comment', 'no-resolv\r',
    ].join('\n'));
    assert.deepEqual(res.listen, ['0.0.0.0:5300', '[::]:5300']);
    assert.deepEqual(res.upstreams, { servers: ['10.0.0.1#5353'], resolv_file: null, strategy: 'strict-order' });
  });

  it('reports every malformed value with file:line, the directive and what is allowed', () => {
    const r = imp([
      'port=abc',
      'listen-address=127.0.0.1,1.2.3',
      'server=10.0.0.300',
      'server=/corp.example/10.0.0.1#99999',
      'address=/x.example/not-an-ip',
      'address=10.0.0.1',
      'cache-size=-1',
      'host-record=only.name',
      'mx-host=lan,mx.lan,70000',
      'srv-host=_x._tcp.lan,t.lan,http',
      'cname=lonely.lan',
      'log-queries=loud',
      'server=/bad domain/10.0.0.1',
      'local-ttl',
      'rev-server=10.0.0.0/33,10.0.0.1',
    ].join('\n'));
    assert.deepEqual(errors(r.diagnostics), [
      '/etc/dnsmasq.conf:1: resolver.listen: port: "abc" is not a whole number 0..65535',
      '/etc/dnsmasq.conf:2: resolver.listen: listen-address: "1.2.3" is not an IP address (expected IPv4 or IPv6 addresses separated by commas)',
      '/etc/dnsmasq.conf:3: server: "10.0.0.300" is not an upstream address (expected IP[#PORT], e.g. 192.0.2.53 or 192.0.2.53#5353)',
      '/etc/dnsmasq.conf:4: server: "10.0.0.1#99999" is not an upstream address (expected IP[#PORT], e.g. 192.0.2.53 or 192.0.2.53#5353)',
      '/etc/dnsmasq.conf:5: resolver.wildcards: address: "not-an-ip" is not an IP address (expected IPv4, IPv6, "#" for 0.0.0.0 and ::, or nothing for NXDOMAIN)',
      '/etc/dnsmasq.conf:6: resolver.wildcards: address: "10.0.0.1" is not of the form /DOMAIN/[IP] (e.g. address=/ads.example/0.0.0.0, address=/blocked.example/)',
      '/etc/dnsmasq.conf:7: resolver.cache.size: cache-size: "-1" is not a whole number 0..2147483647',
      '/etc/dnsmasq.conf:8: resolver.records: host-record: needs at least one name and one address (NAME[,NAME...],[IPV4],[IPV6][,TTL])',
      '/etc/dnsmasq.conf:9: resolver.records: mx-host: preference "70000" is not a whole number 0..65535',
      '/etc/dnsmasq.conf:10: resolver.records: srv-host: port "http" is not 0..65535',
      '/etc/dnsmasq.conf:11: resolver.records: cname: needs an alias and a target (ALIAS[,ALIAS...],TARGET[,TTL])',
      '/etc/dnsmasq.conf:12: resolver.query_log: log-queries: "loud" is not allowed (expected no value, "extra", "proto" or "auth")',
      '/etc/dnsmasq.conf:13: server: "bad domain" is not a domain name (expected e.g. /corp.example/)',
      '/etc/dnsmasq.conf:14: local-ttl: a value is required (a whole number 0..2147483647)',
      '/etc/dnsmasq.conf:15: rev-server: "10.0.0.0/33" is not an address prefix (expected e.g. 192.168.0.0/24 or 2001:db8::/32)',
    ]);
  });

  it('an unknown directive is an error with file:line', () => {
    const r = imp('port=5300\nfrobnicate=yes\nno-such-flag\n');
    assert.deepEqual(errors(r.diagnostics), [
      '/etc/dnsmasq.conf:2: unknown directive "frobnicate"',
      '/etc/dnsmasq.conf:3: unknown directive "no-such-flag"',
    ]);
  });

  it('reports non-resolver directives as ignored, with the reason and file:line', () => {
    const r = imp([
      'dhcp-range=192.168.0.50,192.168.0.150,12h', 'dhcp-option=3,192.168.0.1', 'enable-tftp', 'tftp-root=/srv/tftp',
      'enable-ra', 'pxe-service=x86PC,"Boot",pxelinux', 'user=nobody', 'group=nogroup', 'pid-file=/run/dnsmasq.pid',
      'log-facility=/var/log/dnsmasq.log', 'keep-in-foreground', 'no-dhcp-interface=eth0', 'dnssec',
    ].join('\n'));
    assert.deepEqual(errors(r.diagnostics), []);
    const w = warnings(r.diagnostics);
    assert.equal(w.length, 13);
    assert.equal(w[0], '/etc/dnsmasq.conf:1: warning: ignored: dhcp-range: hadns does not serve DHCP');
    assert.equal(w[3], '/etc/dnsmasq.conf:4: warning: ignored: tftp-root: hadns does not serve TFTP');
    assert.equal(w[6], '/etc/dnsmasq.conf:7: warning: ignored: user: hadns does not switch user from its config (run it under the user you want, e.g. systemd User=)');
    assert.equal(w[11], '/etc/dnsmasq.conf:12: warning: ignored: no-dhcp-interface: DHCP option; hadns does not serve DHCP (DNS is still served on that interface)');
    for (const [i, l] of w.entries()) assert.match(l, new RegExp(`^/etc/dnsmasq.conf:${i + 1}: warning: ignored: `));
  });
});

describe('dnsmasq importer: includes', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'hadns-dnsmasq-'));
    mkdirSync(join(dir, 'd'));
    writeFileSync(join(dir, 'd', '10-servers.conf'), 'server=10.0.0.1\n');
    writeFileSync(join(dir, 'd', '20-bad.conf'), '# second file\nport=http\n');
    writeFileSync(join(dir, 'd', '05-first.conf'), 'server=10.0.0.0\n');
    writeFileSync(join(dir, 'd', 'skip.bak'), 'bogus line here\n');
    writeFileSync(join(dir, 'd', 'editor~'), 'bogus line here\n');
    writeFileSync(join(dir, 'd', '.hidden'), 'bogus line here\n');
    writeFileSync(join(dir, 'd', '#autosave#'), 'bogus line here\n');
    writeFileSync(join(dir, 'd', 'note.txt'), 'server=10.0.0.9\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('conf-file includes are read in place, diagnostics name the included file and line', () => {
    const r = imp('port=5300\nconf-file=/etc/dnsmasq.d/extra.conf\nserver=10.0.0.3\n', {
      '/etc/dnsmasq.d/extra.conf': 'server=10.0.0.2\n\nbogus-directive\ndhcp-range=1,2\n',
    });
    assert.deepEqual(r.config.resolver!.upstreams!.servers, ['10.0.0.2', '10.0.0.3']);
    assert.deepEqual(lines(r.diagnostics), [
      '/etc/dnsmasq.d/extra.conf:3: unknown directive "bogus-directive"',
      '/etc/dnsmasq.d/extra.conf:4: warning: ignored: dhcp-range: hadns does not serve DHCP',
    ]);
    assert.deepEqual(r.files, ['/etc/dnsmasq.conf', '/etc/dnsmasq.d/extra.conf', '/etc/hosts']);
  });

  it('an unreadable main file is one error and no config', () => {
    const r = importDnsmasq('/nonexistent/dnsmasq.conf', undefined, () => { throw new Error('ENOENT'); });
    assert.deepEqual(r, { config: {}, diagnostics: [{ file: '/nonexistent/dnsmasq.conf', line: 1, severity: 'error', message: 'cannot read: ENOENT' }], files: [] });
  });

  it('an unreadable include is an error at the including line', () => {
    const r = imp('\nconf-file=/nowhere.conf\n');
    assert.deepEqual(errors(r.diagnostics), ["/etc/dnsmasq.conf:2: cannot read /nowhere.conf: ENOENT: no such file '/nowhere.conf'"]);
  });

  it('guards include loops', () => {
    const r = imp('conf-file=/a.conf\n', { '/a.conf': 'server=10.0.0.1\nconf-file=/b.conf\n', '/b.conf': 'conf-file=/a.conf\nconf-file=/etc/dnsmasq.conf\n' });
    assert.deepEqual(errors(r.diagnostics), [
      '/b.conf:1: include loop: /a.conf is already being read (/etc/dnsmasq.conf -> /a.conf -> /b.conf -> /a.conf)',
      '/b.conf:2: include loop: /etc/dnsmasq.conf is already being read (/etc/dnsmasq.conf -> /a.conf -> /b.conf -> /etc/dnsmasq.conf)',
    ]);
    assert.deepEqual(r.config.resolver!.upstreams!.servers, ['10.0.0.1']);
  });

  it('conf-dir reads files in alphabetical order, skipping backups and excluded extensions', () => {
    const r = importDnsmasq(join(dir, 'main.conf'), `conf-dir=${join(dir, 'd')},.bak,.txt\n`);
    assert.deepEqual(r.config.resolver!.upstreams!.servers, ['10.0.0.0', '10.0.0.1']);
    assert.deepEqual(errors(r.diagnostics), [`${join(dir, 'd', '20-bad.conf')}:2: resolver.listen: port: "http" is not a whole number 0..65535`]);
    assert.deepEqual(r.files, [
      join(dir, 'main.conf'), join(dir, 'd'),
      join(dir, 'd', '05-first.conf'), join(dir, 'd', '10-servers.conf'), join(dir, 'd', '20-bad.conf'), '/etc/hosts',
    ]);
  });

  it('conf-dir with *.ext reads only those files', () => {
    const r = importDnsmasq(join(dir, 'main.conf'), `conf-dir=${join(dir, 'd')},*.txt\n`);
    assert.deepEqual(r.config.resolver!.upstreams!.servers, ['10.0.0.9']);
  });
});
