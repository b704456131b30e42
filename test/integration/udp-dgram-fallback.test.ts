/**
 * The DNS path runs on batched native UDP sockets when the addon is built (util/udp-batch.ts);
 * Node's dgram is the fallback (udp_io: dgram, or no addon). The other test files exercise the
 * native path; this one runs the resolver's and the balancer's UDP integration tests again with
 * dgram, so both paths stay proven.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setUdpIoMode, useBatchUdp } from '../../src/util/udp-batch.js';

setUdpIoMode('dgram');

test('udp_io dgram selects Node sockets', () => {
  assert.equal(useBatchUdp(), false);
});

// Registering their tests here runs them in this process, with dgram.
await import('./resolver-forward.test.js');
await import('./balancer-dns.test.js');
