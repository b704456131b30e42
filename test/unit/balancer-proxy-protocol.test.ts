import { test } from 'node:test';
import assert from 'node:assert/strict';
import { proxyV1, proxyV2 } from '../../src/balancer/proxy-protocol.js';

test('PROXY v1: TCP4, TCP6, v4-mapped and unknown', () => {
  assert.equal(proxyV1({ srcAddress: '192.0.2.1', srcPort: 5353, dstAddress: '192.0.2.2', dstPort: 53 }).toString(),
    'PROXY TCP4 192.0.2.1 192.0.2.2 5353 53\r\n');
  assert.equal(proxyV1({ srcAddress: '::ffff:192.0.2.1', srcPort: 1, dstAddress: '::ffff:192.0.2.2', dstPort: 2 }).toString(),
    'PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n');
  assert.equal(proxyV1({ srcAddress: '2001:db8::1', srcPort: 1, dstAddress: '2001:db8::2', dstPort: 2 }).toString(),
    'PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n');
  assert.equal(proxyV1({ srcAddress: '', srcPort: 0, dstAddress: '', dstPort: 0 }).toString(), 'PROXY UNKNOWN\r\n');
});

test('PROXY v2: signature, family, addresses, ports', () => {
  const b = proxyV2({ srcAddress: '10.1.2.3', srcPort: 40000, dstAddress: '10.9.8.7', dstPort: 53 });
  assert.equal(b.subarray(0, 12).toString('hex'), '0d0a0d0a000d0a515549540a');
  assert.equal(b[12], 0x21);
  assert.equal(b[13], 0x11);
  assert.equal(b.readUInt16BE(14), 12);
  assert.deepEqual([...b.subarray(16, 24)], [10, 1, 2, 3, 10, 9, 8, 7]);
  assert.equal(b.readUInt16BE(24), 40000);
  assert.equal(b.readUInt16BE(26), 53);
  const v6 = proxyV2({ srcAddress: '2001:db8::1', srcPort: 1, dstAddress: '::1', dstPort: 2 });
  assert.equal(v6[13], 0x21);
  assert.equal(v6.length, 16 + 36);
  assert.equal(v6.subarray(16, 32).toString('hex'), '20010db8000000000000000000000001');
  assert.equal(v6.subarray(32, 48).toString('hex'), '00000000000000000000000000000001');
});
