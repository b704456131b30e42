import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseNative, loadConfig, DEFAULT_CONFIG_YAML } from '../../src/config/load.js';
import { formatDiagnostic, ConfigError } from '../../src/config/diagnostics.js';
import { configReferenceMarkdown } from '../../src/config/reference.js';
import { jsonSchema, parseHostPort } from '../../src/config/schema.js';

test('the embedded default config is valid and serves on 127.0.0.1:5353 and [::1]:5353', () => {
  const r = parseNative(DEFAULT_CONFIG_YAML, '<default>');
  assert.deepEqual(r.diagnostics, []);
  assert.deepEqual(r.config!.resolver!.listen, ['127.0.0.1:5353', '[::1]:5353']);
  assert.equal(r.config!.resolver!.upstreams.resolv_file, '/etc/resolv.conf');
  assert.equal(r.config!.resolver!.cache.size, 10000, 'defaults filled in');
});

test('a bad value names file, line, key and what is allowed', () => {
  const yaml = `node:
  name: a
resolver:
  listen: ["127.0.0.1:5353"]
  upstreams:
    strategy: round-robin
  cache:
    size: -5
  records:
    - { name: x.example, type: MX, value: "mail.example" }
  colour: blue
`;
  const r = parseNative(yaml, 'hadns.yaml');
  assert.equal(r.config, undefined);
  const lines = r.diagnostics.map(formatDiagnostic);
  assert.ok(lines.some((l) => /^hadns\.yaml:6: resolver\.upstreams\.strategy: must be one of "fastest", "strict-order", "all-servers"/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /^hadns\.yaml:8: resolver\.cache\.size: /.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /^hadns\.yaml:10: resolver\.records\[0\]\.value: MX value must be/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /^hadns\.yaml:11: resolver: unknown key "colour"/.test(l)), lines.join('\n'));
});

test('a tagged choice with an unknown tag (VRRP auth type) says what is allowed, not nothing', () => {
  const t = readFileSync(new URL('../../examples/article/node-a.yaml', import.meta.url).pathname.replace('/dist/examples/', '/examples/'), 'utf8');
  const r = parseNative(t.replace('type: pass', 'type: PASS'), 'node-a.yaml');
  const lines = r.diagnostics.map(formatDiagnostic);
  assert.equal(r.config, undefined);
  assert.ok(lines.some((l) => /^node-a\.yaml:\d+: vrrp\.instances\[0\]\.auth\.type: must be one of "none", "pass", "hmac"/.test(l)), lines.join('\n'));
});

test('YAML syntax errors and duplicate keys are reported with their line', () => {
  const r = parseNative('resolver:\n  listen: [a\n', 'bad.yaml');
  assert.ok(r.diagnostics.length > 0);
  assert.equal(r.diagnostics[0].file, 'bad.yaml');
  const d = parseNative('node:\n  name: a\nnode:\n  name: b\n', 'dup.yaml');
  assert.ok(d.diagnostics.some((x) => x.line === 3 && /YAML/.test(x.message)), JSON.stringify(d.diagnostics));
});

test('loadConfig throws ConfigError for an unreadable file', () => {
  assert.throws(() => loadConfig({ config: '/nonexistent/hadns.yaml' }), (e: unknown) => e instanceof ConfigError && /cannot read/.test(e.message));
});

test('host:port forms', () => {
  assert.deepEqual(parseHostPort('192.0.2.1'), { host: '192.0.2.1', port: 53 });
  assert.deepEqual(parseHostPort('192.0.2.1#5353'), { host: '192.0.2.1', port: 5353 });
  assert.deepEqual(parseHostPort('[::1]:5353'), { host: '::1', port: 5353 });
  assert.deepEqual(parseHostPort('2001:db8::1#54'), { host: '2001:db8::1', port: 54 });
  assert.equal(parseHostPort('example.com'), null);
  assert.equal(parseHostPort('1.2.3.4:99999'), null);
});

test('JSON Schema is exported and docs/configuration.md matches the schema', () => {
  const s = jsonSchema() as { properties: Record<string, unknown> };
  assert.ok(s.properties.resolver);
  const committed = readFileSync(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');
  assert.equal(committed.trimEnd(), configReferenceMarkdown().trimEnd(), 'run: bin/hadns schema --markdown > docs/configuration.md');
});

test('node.realtime_priority: 0 (off) by default, 1-99 accepted, anything else refused with its line', () => {
  assert.equal(parseNative('node:\n  name: a\n', 'a.yaml').config?.node.realtime_priority, 0);
  assert.equal(parseNative('node:\n  realtime_priority: 99\n', 'a.yaml').config?.node.realtime_priority, 99);
  for (const v of ['100', '-1', '2.5', 'high']) {
    const r = parseNative(`node:\n  name: a\n  realtime_priority: ${v}\n`, 'rt.yaml');
    assert.equal(r.config, undefined, v);
    assert.ok(r.diagnostics.map(formatDiagnostic).some((l) => l.startsWith('rt.yaml:3: node.realtime_priority: ')), v);
  }
});
