import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnVrrpEngine } from '../../src/vrrp/supervisor.js';
import type { FromEngine } from '../../src/vrrp/messages.js';

// The engine child process and its typed IPC channel, without touching any network: both configs
// fail before a socket is opened.
test('supervisor: a config the schema rejects comes back as a fatal message and a rejected ready', async () => {
  const seen: FromEngine[] = [];
  const s = spawnVrrpEngine({ instances: [{ name: 'x', interface: 'eth0', vrid: 0, virtual_addresses: [] }] } as never, (m) => seen.push(m));
  await assert.rejects(s.ready, /vrrp\.instances\.0\.vrid/);
  await s.stop();
  assert.ok(seen.some((m) => m.type === 'fatal'));
});

test('supervisor: an interface that does not exist fails start-up cleanly', async () => {
  const s = spawnVrrpEngine({ instances: [{ name: 'x', interface: 'hadns-no-such0', vrid: 1, unicast_src_ip: '192.0.2.1', unicast_peers: ['192.0.2.2'], virtual_addresses: [{ address: '192.0.2.9/24' }] }] });
  await assert.rejects(s.ready, /hadns-no-such0|if_nametoindex|No such device|not built/);
  await s.stop();
  assert.ok(s.child.exitCode !== null || s.child.signalCode !== null);
});
