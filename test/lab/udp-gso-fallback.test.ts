/**
 * UDP GSO's fallback (native/udp_batch.c, flush_out), as root: where the kernel refuses a GSO
 * message, the run goes out as plain datagrams and the socket stops trying GSO. Provoked in a
 * network namespace of its own whose loopback has an MTU of 1000: a segment of 1100 bytes does not
 * fit (UDP_SEGMENT → EINVAL), while a plain 1100-byte datagram is fragmented and arrives. The
 * sender runs in the namespace (`ip netns exec`), the namespace is deleted after.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { isRoot, repoRoot, sh } from './vrrp-lab.js';

const skip = isRoot ? false : 'needs root (a network namespace)';

// Sends one batch of 10 × 1100 bytes and then one of 10 × 100 bytes to a receiver in the same
// process; prints what arrived and the GSO counts.
const SCRIPT = `
import dgram from 'node:dgram';
import { once } from 'node:events';
const { BatchUdpSocket, gsoStats } = await import(${JSON.stringify(join(repoRoot, 'dist/src/util/udp-batch.js'))});
const rx = dgram.createSocket('udp4');
rx.bind(0, '127.0.0.1'); await once(rx, 'listening');
const sizes = [];
rx.on('message', (m) => sizes.push(m.length));
const tx = BatchUdpSocket.bind('127.0.0.1', 0);
let round = 0;
tx.onMessage = () => {
  const len = round++ === 0 ? 1100 : 100;
  for (let i = 0; i < 10; i++) tx.send(Buffer.alloc(len, i), len, '127.0.0.1', rx.address().port);
};
tx.start();
const kick = dgram.createSocket('udp4');
for (const want of [10, 20]) {
  kick.send(Buffer.from('go'), tx.port, '127.0.0.1');
  while (sizes.length < want) await once(rx, 'message');
  const g = gsoStats();
  process.stdout.write(JSON.stringify({ sizes: sizes.slice(want - 10), gso: g }) + '\\n');
}
kick.close(); rx.close(); tx.close();
`;

test('GSO refused by the kernel: the run still arrives as plain datagrams, and the socket stops using GSO', { skip, timeout: 30_000 }, () => {
  const ns = `hgso${randomBytes(3).toString('hex')}`;
  sh('ip', ['netns', 'add', ns]);
  try {
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'mtu', '1000']);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', SCRIPT], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, `sender failed: ${r.stderr}`);
    const [first, second] = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { sizes: number[]; gso: { messages: number; datagrams: number; refused: number } });
    assert.deepEqual(first!.sizes, Array(10).fill(1100), 'the refused run arrived, every datagram whole');
    assert.equal(first!.gso.refused, 1, 'the refusal was counted');
    assert.equal(first!.gso.messages, 0, 'no GSO message went out');
    assert.deepEqual(second!.sizes, Array(10).fill(100), 'the next batch arrived');
    assert.equal(second!.gso.messages, 0, 'sent without GSO: the socket stopped trying');
  } finally {
    sh('ip', ['netns', 'del', ns], true);
  }
});
