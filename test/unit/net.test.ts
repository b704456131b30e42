/** src/util/net.ts: isHostAddress, which decides the balancer's yield_cpu: auto. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { networkInterfaces } from 'node:os';
import { isHostAddress } from '../../src/util/net.js';

type Ifs = ReturnType<typeof networkInterfaces>;
const nic = (address: string, family: 'IPv4' | 'IPv6') =>
  ({ address, family, netmask: '', mac: '00:00:00:00:00:00', internal: false, cidr: null, scopeid: 0 }) as Ifs[string] extends (infer T)[] | undefined ? T : never;
const ifs: Ifs = { eth0: [nic('10.1.2.3', 'IPv4'), nic('2001:db8::5', 'IPv6')], lo: [] };

test('loopback in every spelling is this host, without asking the interfaces', () => {
  for (const a of ['127.0.0.1', '127.9.8.7', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::ffff:7f00:1']) {
    assert.equal(isHostAddress(a, {}), true, a);
  }
});

test('an address on one of the interfaces is this host, in any IPv6 spelling; others are not', () => {
  assert.equal(isHostAddress('10.1.2.3', ifs), true);
  assert.equal(isHostAddress('::ffff:10.1.2.3', ifs), true, 'IPv4-mapped');
  assert.equal(isHostAddress('2001:DB8:0:0::5', ifs), true, 'upper case, uncompressed');
  assert.equal(isHostAddress('[2001:db8::5]', ifs), true, 'bracketed');
  assert.equal(isHostAddress('10.1.2.4', ifs), false);
  assert.equal(isHostAddress('2001:db8::6', ifs), false);
  assert.equal(isHostAddress('128.0.0.1', ifs), false, 'not 127/8');
});

test('what is not an IP literal is not this host (no name is looked up)', () => {
  for (const a of ['', 'localhost', 'local', '127.0.0', '::1::', '[::1', 'fe80::1%']) assert.equal(isHostAddress(a, ifs), false, a);
});
