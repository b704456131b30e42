import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { importKeepalived, parseKeepalivedTree } from '../../src/config/legacy/keepalived.js';
import { Diagnostics, formatDiagnostic } from '../../src/config/diagnostics.js';
import { vrrpSectionSchema } from '../../src/vrrp/config.js';

function dir(): string {
  const here = new URL('.', import.meta.url).pathname;
  for (const rel of ['../fixtures/keepalived', '../../../test/fixtures/keepalived']) {
    try { readdirSync(join(here, rel)); return join(here, rel); } catch { /* next */ }
  }
  throw new Error('fixtures not found');
}
const fx = (f: string) => join(dir(), f);

test('the article\'s chapter-3 configs import (A with its // annotations, B clean)', () => {
  const a = importKeepalived(fx('article-ch3-a-annotated.conf'));
  assert.deepEqual(a.diagnostics.filter((d) => d.severity === 'error'), []);
  assert.equal(a.diagnostics.length, 1, a.diagnostics.map(formatDiagnostic).join('\n'));
  assert.match(a.diagnostics[0]!.message, /'\/\/' is not a keepalived comment/);
  assert.equal(a.diagnostics[0]!.line, 3);
  const s = vrrpSectionSchema.parse(a.vrrp);
  assert.equal(s.router_id, 'ld444');
  const i = s.instances[0]!;
  assert.equal(i.name, 'VI_1');
  assert.equal(i.state, 'MASTER');
  assert.equal(i.interface, 'ens192');
  assert.equal(i.vrid, 88);
  assert.equal(i.priority, 150);
  assert.equal(i.unicast_src_ip, '172.22.10.237');
  assert.deepEqual(i.unicast_peers, ['172.22.10.50']);
  assert.equal(i.advert_int, 1);
  assert.equal(i.version, 2);
  assert.deepEqual(i.auth, { type: 'pass', password: '8888' });
  assert.deepEqual(i.virtual_addresses, [{ address: '172.22.10.210/24', dev: 'ens192', label: 'ens192:0' }]);

  const b = importKeepalived(fx('article-ch3-b.conf'));
  assert.deepEqual(b.diagnostics, []);
  const bi = vrrpSectionSchema.parse(b.vrrp).instances[0]!;
  assert.equal(bi.state, 'BACKUP');
  assert.equal(bi.priority, 100);
  assert.equal(bi.interface, 'enp4s0');
  assert.deepEqual(bi.unicast_peers, ['172.22.10.237']);
  assert.deepEqual(bi.virtual_addresses, [{ address: '172.22.10.210/24', dev: 'enp4s0', label: 'enp4s0:0' }]);
});

test('the article\'s chapter-4 configs import without any diagnostic', () => {
  for (const f of ['article-ch4-a.conf', 'article-ch4-b.conf']) {
    const r = importKeepalived(fx(f));
    assert.deepEqual(r.diagnostics, [], f);
    assert.ok(vrrpSectionSchema.safeParse(r.vrrp).success);
  }
  // Text given explicitly wins over the file's content (for stdin / tests).
  const r = importKeepalived('inline.conf', readFileSync(fx('article-ch4-b.conf'), 'utf8').replace('priority 100', 'priority 90'));
  assert.equal(r.vrrp.instances![0]!.priority, 90);
});

test('full.conf: scripts, include, tracking, notify, garp, v3 IPv6; SMTP and LVS are warnings with file:line', () => {
  const r = importKeepalived(fx('full.conf'));
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  assert.deepEqual(errors, [], errors.map(formatDiagnostic).join('\n'));
  const warn = r.diagnostics.map(formatDiagnostic);
  assert.ok(warn.some((w) => /full\.conf:5: warning: notification_email: SMTP/.test(w)), warn.join('\n'));
  assert.ok(warn.some((w) => /full\.conf:8: warning: smtp_server/.test(w)));
  assert.ok(warn.some((w) => /full\.conf:46: warning: LVS virtual_server is out of scope/.test(w)), warn.join('\n'));
  const s = vrrpSectionSchema.parse(r.vrrp);
  assert.equal(s.router_id, 'dns-a');
  assert.deepEqual(Object.keys(s.scripts).sort(), ['chk_dns', 'chk_up']);
  assert.deepEqual(s.scripts.chk_dns, { script: '/usr/bin/dig +short @127.0.0.1 health.local', interval: 2, timeout: 1, weight: -30, rise: 2, fall: 3 });
  assert.equal(s.scripts.chk_up!.script, '/bin/true');
  const i = s.instances[0]!;
  assert.equal(i.version, 3, 'global vrrp_version applies');
  assert.equal(i.advert_int, 0.25);
  assert.equal(i.preempt, false);
  assert.deepEqual(i.virtual_addresses, [{ address: '2001:db8::53/64' }]);
  assert.deepEqual(i.track_interfaces, [{ name: 'eth0', weight: -20 }, { name: 'eth2', weight: 0 }]);
  assert.deepEqual(i.track_scripts, [{ name: 'chk_dns' }, { name: 'chk_up', weight: 0 }]);
  assert.deepEqual(i.notify, { master: '/etc/hadns/notify.sh master', any: '/etc/hadns/notify-any.sh' });
  assert.equal(i.garp.master_delay, 2, 'global vrrp_garp_master_delay');
  assert.equal(i.garp.master_repeat, 3);
});

test('bad.conf: unknown keywords, bad values and AH are errors with file:line', () => {
  const r = importKeepalived(fx('bad.conf'));
  const msgs = r.diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.line}: ${d.message}`);
  assert.ok(msgs.some((m) => /^3: virtual_router_id: expected an integer 1\.\.255, got 300/.test(m)), msgs.join('\n'));
  assert.ok(msgs.some((m) => /^5: unknown vrrp_instance keyword 'frobnicate'/.test(m)));
  assert.ok(msgs.some((m) => /^6: auth_type AH is not supported/.test(m)));
  assert.ok(msgs.some((m) => /^11: unknown virtual_ipaddress option 'colour'/.test(m)));
  assert.ok(msgs.some((m) => /^14: unknown keyword 'unknown_block'/.test(m)));
  assert.ok(r.diagnostics.every((d) => d.file.endsWith('bad.conf')));
});

test('tokenizer: braces on the same or the next line, inline blocks, quotes, comments, unbalanced braces', () => {
  const d = new Diagnostics();
  const t = parseKeepalivedTree('x.conf', [
    'a 1 2 # comment',
    'b',
    '{',
    '  c "quoted { not a brace }" ! comment',
    '  d { e f }',
    '}',
  ].join('\n'), d);
  assert.deepEqual(d.items, []);
  assert.deepEqual(t.map((n) => [n.key, n.args]), [['a', ['1', '2']], ['b', []]]);
  assert.deepEqual(t[1]!.children!.map((n) => [n.key, n.args, n.line]), [['c', ['quoted { not a brace }'], 4], ['d', [], 5]]);
  assert.deepEqual(t[1]!.children![1]!.children!.map((n) => [n.key, n.args]), [['e', ['f']]]);
  const d2 = new Diagnostics();
  parseKeepalivedTree('y.conf', 'a {\n b\n', d2);
  assert.match(formatDiagnostic(d2.items[0]!), /y\.conf:3: 1 unclosed/);
  const d3 = new Diagnostics();
  parseKeepalivedTree('z.conf', 'a\n}\n', d3);
  assert.match(formatDiagnostic(d3.items[0]!), /z\.conf:2: unmatched/);
});

test('schema problems come back at the instance line (PASS too long is truncated like keepalived)', () => {
  const r = importKeepalived('k.conf', [
    'vrrp_instance V {',
    '  interface eth0',
    '  virtual_router_id 5',
    '  advert_int 1.5',
    '  authentication {',
    '    auth_type PASS',
    '    auth_pass 0123456789',
    '  }',
    '  virtual_ipaddress {',
    '    2001:db8::1/64',
    '  }',
    '}',
  ].join('\n'));
  const f = r.diagnostics.map(formatDiagnostic);
  assert.ok(f.some((x) => /k\.conf:7: warning: auth_pass longer than 8 bytes/.test(x)), f.join('\n'));
  assert.ok(f.some((x) => /k\.conf:1: warning: advert_int 1\.5 rounded/.test(x)));
  assert.ok(f.some((x) => /k\.conf:1: vrrp\.instances\.0\.version: IPv6 virtual addresses need version 3/.test(x)), f.join('\n'));
  assert.equal((r.vrrp.instances![0]!.auth as { password: string }).password, '01234567');
});
