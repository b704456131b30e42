import { test } from 'node:test';
import assert from 'node:assert/strict';
import { garpFrame, unsolicitedNaFrame, toVip, addArgs, delArgs, addVip, removeVip, type IpRunner } from '../../src/vrrp/vip.js';
import { internetChecksum } from '../../src/vrrp/packet.js';

const mac = Buffer.from([0x02, 0, 0, 0, 0, 0xed]);

test('gratuitous ARP frame: broadcast request with sender = target = VIP', () => {
  const f = garpFrame(mac, '192.0.2.210');
  assert.equal(f.toString('hex'),
    'ffffffffffff' + '0200000000ed' + '0806' + '0001' + '0800' + '06' + '04' + '0001' +
    '0200000000ed' + 'c00002d2' + '000000000000' + 'c00002d2');
});

test('unsolicited NA frame: all-nodes, hop limit 255, override flag, target link-layer option, valid checksum', () => {
  const f = unsolicitedNaFrame(mac, '2001:db8::53');
  assert.equal(f.subarray(0, 6).toString('hex'), '333300000001');
  assert.equal(f.readUInt16BE(12), 0x86dd);
  assert.equal(f[20], 58);
  assert.equal(f[21], 255);
  const icmp = f.subarray(54);
  assert.equal(icmp[0], 136);
  assert.equal(icmp[4], 0x20);
  assert.equal(icmp.subarray(26, 32).toString('hex'), '0200000000ed');
  // Verify the checksum over the pseudo-header: sum including the checksum field must be 0.
  const ph = Buffer.alloc(40);
  f.copy(ph, 0, 22, 54);
  ph.writeUInt32BE(icmp.length, 32);
  ph[39] = 58;
  assert.equal(internetChecksum(icmp, ph), 0);
});

test('ip arguments: label for IPv4, nodad for IPv6, host prefix for bare addresses', () => {
  const v4 = toVip({ address: '172.22.10.210/24', label: 'ens192:0' }, 'ens192');
  assert.deepEqual(addArgs(v4), ['-4', 'addr', 'add', '172.22.10.210/24', 'dev', 'ens192', 'label', 'ens192:0']);
  assert.deepEqual(delArgs(v4), ['-4', 'addr', 'del', '172.22.10.210/24', 'dev', 'ens192']);
  const v6 = toVip({ address: '2001:db8::53', dev: 'eth1' }, 'eth0');
  assert.deepEqual(addArgs(v6), ['-6', 'addr', 'add', '2001:db8::53/128', 'dev', 'eth1', 'nodad']);
});

test('add/remove are idempotent: "File exists" and "Cannot assign" count as success', async () => {
  const calls: string[][] = [];
  const fake = (stderr: string, ok = false): IpRunner => async (a) => { calls.push(a); return { ok, stderr }; };
  const v = toVip({ address: '192.0.2.1/24' }, 'eth0');
  assert.deepEqual(await addVip(v, fake('RTNETLINK answers: File exists')), { ok: true });
  assert.deepEqual(await removeVip(v, fake('RTNETLINK answers: Cannot assign requested address')), { ok: true });
  assert.deepEqual(await addVip(v, fake('Cannot find device "eth0"')), { ok: false, error: 'Cannot find device "eth0"' });
});
