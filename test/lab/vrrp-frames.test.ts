/**
 * The raw-frame path of the VRRP shim (native/vrrp_raw.c sendFrame), as root: gratuitous ARP/NA go
 * out through ONE AF_PACKET socket kept for the process, not a socket per frame. Closing a packet
 * socket waits for an RCU grace period (12-15 ms each on a 2-vCPU VM), so five GARPs per burst
 * stalled the engine's loop past two 30 ms advert intervals and the backup took over (the fault
 * matrix's link-down row, docs/vrrp.md "Under load"). The frames go to loopback only, with the
 * IEEE local-experimental EtherType 0x88b5, which no protocol handler takes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { isRoot } from '../../src/lab/lab.js';
import { loadRawAddon } from '../../src/vrrp/native.js';

const skip = isRoot() ? false : 'needs root (CAP_NET_RAW for AF_PACKET)';

/** Inodes of this process's sockets. */
function socketInodes(): Set<string> {
  const out = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (m) out.add(m[1]!);
    } catch { /* the fd closed meanwhile (the directory listing's own) */ }
  }
  return out;
}

/** Inodes of the packet sockets in this network namespace (/proc/net/packet, last column). */
function packetInodes(): Set<string> {
  const lines = readFileSync('/proc/self/net/packet', 'utf8').trim().split('\n').slice(1);
  return new Set(lines.map((l) => l.trim().split(/\s+/).at(-1)!));
}

function frame(): Buffer {
  const f = Buffer.alloc(60);
  f.fill(0xff, 0, 6); // broadcast
  f.writeUInt16BE(0x88b5, 12); // local experimental EtherType
  return f;
}

test('sendFrame keeps one AF_PACKET socket for the process instead of one per frame', { skip }, () => {
  const addon = loadRawAddon();
  const before = socketInodes();
  addon.sendFrame('lo', frame());
  const opened = [...socketInodes()].filter((i) => !before.has(i));
  const packet = packetInodes();
  const mine = opened.filter((i) => packet.has(i));
  // A process that sent frames before this test (none in this file) would already hold it.
  assert.equal(mine.length, 1, `one packet socket opened by the first frame (new sockets: ${opened.join(',') || 'none'})`);
  for (let i = 0; i < 50; i++) addon.sendFrame('lo', frame());
  const after = socketInodes();
  assert.ok(after.has(mine[0]!), 'the same socket is still open after 50 more frames');
  assert.deepEqual([...after].filter((i) => !before.has(i) && packetInodes().has(i)), mine, 'and no other packet socket was opened');
});

test('sendFrame refuses an unknown or over-long interface name with an error, keeps working after', { skip }, () => {
  const addon = loadRawAddon();
  assert.throws(() => addon.sendFrame('hadns-nosuch0', frame()), /No such device/);
  assert.throws(() => addon.sendFrame('x'.repeat(16), frame()), /No such device/);
  assert.throws(() => addon.sendFrame('lo', Buffer.alloc(10)), /frame expected/);
  addon.sendFrame('lo', frame());
});
