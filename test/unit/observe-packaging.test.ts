/**
 * The shipped packaging stays true: the default config validates, and the systemd unit grants
 * exactly the three capabilities hadns needs and runs unprivileged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config/load.js';

const pkg = (f: string) => fileURLToPath(new URL(`../../../packaging/${f}`, import.meta.url));

test('packaging/hadns.yaml is a valid config with the API on loopback and state under /var/lib/hadns', () => {
  const { config, diagnostics } = loadConfig({ config: pkg('hadns.yaml') });
  assert.deepEqual(diagnostics.filter((d) => d.severity === 'error'), []);
  assert.equal(config.node.state_dir, '/var/lib/hadns');
  assert.equal(config.api.listen, '127.0.0.1:8053');
  assert.ok(config.resolver);
});

test('packaging/hadns.service: restart on failure, only NET_BIND_SERVICE/NET_RAW/NET_ADMIN, unprivileged, reload by HUP', () => {
  const unit = readFileSync(pkg('hadns.service'), 'utf8');
  const values = (key: string) => unit.split('\n').filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1));
  assert.deepEqual(values('Restart'), ['on-failure']);
  for (const k of ['AmbientCapabilities', 'CapabilityBoundingSet']) {
    assert.deepEqual(values(k).map((v) => v.split(/\s+/).sort()), [['CAP_NET_ADMIN', 'CAP_NET_BIND_SERVICE', 'CAP_NET_RAW']], k);
  }
  assert.deepEqual(values('User'), ['hadns']);
  assert.deepEqual(values('DynamicUser'), ['yes']);
  assert.deepEqual(values('StateDirectory'), ['hadns']);
  assert.deepEqual(values('ConfigurationDirectory'), ['hadns']);
  assert.ok(values('ExecReload').includes('/bin/kill -HUP $MAINPID'));
  assert.deepEqual(values('ExecStart'), ['/usr/local/bin/hadns start --config /etc/hadns/hadns.yaml']);
  // Real-time scheduling is off unless the operator uncomments the lines that allow it, which
  // must come after the hardening's RestrictRealtime=yes to override it.
  assert.deepEqual(values('RestrictRealtime'), ['yes']);
  assert.ok(unit.indexOf('#RestrictRealtime=no') > unit.indexOf('RestrictRealtime=yes'));
  for (const k of ['AmbientCapabilities', 'CapabilityBoundingSet']) assert.match(unit, new RegExp(`^#${k}=CAP_SYS_NICE$`, 'm'));
});
