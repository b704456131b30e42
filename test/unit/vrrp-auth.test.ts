import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodeAdvert, type VrrpAdvert } from '../../src/vrrp/packet.js';
import { buildHmacTrailer, verifyHmacTrailer, SequenceGenerator, HMAC_TRAILER_LEN } from '../../src/vrrp/auth.js';
import { checkAdvert, type ReceivePolicy } from '../../src/vrrp/receive.js';
import { vrrpSectionSchema } from '../../src/vrrp/config.js';

const key = { key: 'correct horse battery staple', keyId: 1 };
const adv: VrrpAdvert = { version: 3, family: 4, vrid: 88, priority: 150, intervalMs: 200, addresses: ['192.0.2.210'] };
const ip = { src: '192.0.2.237', dst: '224.0.0.18' };
const NOW = 1_800_000_000_000;

function signed(seq: bigint, a = adv, src = ip.src): Buffer {
  const std = encodeAdvert(a, { ip: { src, dst: ip.dst } });
  return Buffer.concat([std, buildHmacTrailer(key, src, std, seq)]);
}

const policy: ReceivePolicy = {
  version: 3, family: 4, vrid: 88, intervalMs: 200, ownAddresses: ['192.0.2.50'], peers: [],
  auth: { type: 'hmac', key, maxClockSkewMs: 60_000 },
};

test('hmac: a signed advert verifies; tampering, wrong key, replay and stale timestamps are refused', () => {
  const seq = new SequenceGenerator().next(NOW);
  const pkt = signed(seq);
  assert.equal(pkt.length, encodeAdvert(adv, { ip }).length + HMAC_TRAILER_LEN);
  const ok = checkAdvert(policy, { ...ip, ttl: 255, payload: pkt }, ['192.0.2.210'], undefined, NOW);
  assert.ok(ok.ok && ok.hmacSeq === seq);
  // Replay of the same packet.
  const again = checkAdvert(policy, { ...ip, ttl: 255, payload: pkt }, ['192.0.2.210'], seq, NOW);
  assert.deepEqual(again.ok ? 'accepted' : again.reason, 'replay');
  // Priority raised by an attacker: checksum fixed up, but the MAC fails.
  const forged = signed(seq + 1n, { ...adv, priority: 254 });
  forged.set(pkt.subarray(pkt.length - 32), forged.length - 32);
  const f = checkAdvert(policy, { ...ip, ttl: 255, payload: forged }, [], undefined, NOW);
  assert.deepEqual(f.ok ? 'accepted' : f.reason, 'hmac');
  // Wrong key.
  const std = encodeAdvert(adv, { ip });
  const wrong = Buffer.concat([std, buildHmacTrailer({ key: 'another key entirely!', keyId: 1 }, ip.src, std, seq)]);
  assert.equal(verifyHmacTrailer(key, ip.src, std, wrong.subarray(std.length), undefined, NOW, 0).ok, false);
  // Same bytes claimed from another source.
  assert.equal(verifyHmacTrailer(key, '192.0.2.99', std, pkt.subarray(std.length), undefined, NOW, 0).ok, false);
  // A capture from two minutes ago, receiver restarted (no last sequence).
  const old = checkAdvert(policy, { ...ip, ttl: 255, payload: pkt }, [], undefined, NOW + 120_000);
  assert.equal(old.ok, false);
  // Plain advert without a trailer.
  const bare = checkAdvert(policy, { ...ip, ttl: 255, payload: std }, [], undefined, NOW);
  assert.deepEqual(bare.ok ? '' : bare.detail, 'missing HMAC trailer');
});

test('hmac: the sequence is strictly increasing even when the wall clock stands still or steps back', () => {
  const g = new SequenceGenerator();
  const a = g.next(NOW), b = g.next(NOW), c = g.next(NOW - 5000);
  assert.ok(a < b && b < c);
});

test('receive checks: own, non-peer, TTL, VRID, version, v2 interval and exact 8-byte password', () => {
  const v2: ReceivePolicy = { version: 2, family: 4, vrid: 88, intervalMs: 1000, ownAddresses: ['192.0.2.50'], peers: ['192.0.2.237'], auth: { type: 'pass', password: '8888' } };
  const a2: VrrpAdvert = { version: 2, family: 4, vrid: 88, priority: 150, intervalMs: 1000, addresses: ['192.0.2.210'], auth: { type: 'pass', password: '8888' } };
  const rx = (a: VrrpAdvert, o: Partial<{ src: string; ttl: number }> = {}) =>
    checkAdvert(v2, { src: o.src ?? '192.0.2.237', dst: '192.0.2.50', ttl: o.ttl ?? 255, payload: encodeAdvert(a) }, ['192.0.2.210'], undefined, NOW);
  const reason = (v: ReturnType<typeof rx>) => (v.ok ? 'ok' : v.reason);
  assert.equal(reason(rx(a2)), 'ok');
  assert.equal(reason(rx(a2, { src: '192.0.2.50' })), 'own');
  assert.equal(reason(rx(a2, { src: '192.0.2.99' })), 'not-peer');
  assert.equal(reason(rx({ ...a2, vrid: 89 })), 'vrid');
  assert.equal(reason(rx({ ...a2, intervalMs: 2000 })), 'interval');
  assert.equal(reason(rx({ ...a2, auth: { type: 'pass', password: '8889' } })), 'auth');
  assert.equal(reason(rx({ ...a2, auth: { type: 'pass', password: '88888' } })), 'auth', 'prefix of the password is not enough');
  assert.equal(reason(rx({ ...a2, auth: { type: 'none' } })), 'auth');
  // Unicast adverts may arrive with a lower TTL; multicast must be 255.
  assert.equal(reason(rx(a2, { ttl: 64 })), 'ok');
  const mc = { ...v2, peers: [] };
  assert.equal(reason(checkAdvert(mc, { src: '192.0.2.237', dst: '224.0.0.18', ttl: 64, payload: encodeAdvert(a2) }, [], undefined, NOW)), 'ttl');
  const v3 = checkAdvert({ ...mc, version: 3, auth: { type: 'none' } }, { src: '192.0.2.237', dst: '224.0.0.18', ttl: 255, payload: encodeAdvert(a2) }, [], undefined, NOW);
  assert.equal(reason(v3), 'version');
  const mism = rx({ ...a2, addresses: ['192.0.2.211'] });
  assert.ok(mism.ok && mism.addressMismatch);
});

test('config schema: defaults like keepalived, errors for impossible settings', () => {
  const ok = vrrpSectionSchema.parse({
    instances: [{ name: 'VI_1', interface: 'ens192', vrid: 88, virtual_addresses: [{ address: '172.22.10.210/24', label: 'ens192:0' }] }],
  });
  const i = ok.instances[0]!;
  assert.equal(i.priority, 100);
  assert.equal(i.advert_int, 1);
  assert.equal(i.version, 2);
  assert.equal(i.preempt, true);
  assert.deepEqual(i.auth, { type: 'none' });
  assert.equal(i.garp.master_delay, 5);
  const bad = (inst: object) => vrrpSectionSchema.safeParse({ instances: [{ name: 'x', interface: 'eth0', vrid: 1, virtual_addresses: [{ address: '192.0.2.1/24' }], ...inst }] });
  assert.equal(bad({ auth: { type: 'pass', password: '123456789' } }).success, false);
  assert.equal(bad({ advert_int: 0.5 }).success, false, 'v2 is whole seconds');
  assert.equal(bad({ advert_int: 0.5, version: 3 }).success, true);
  assert.equal(bad({ virtual_addresses: [{ address: '2001:db8::1/64' }] }).success, false, 'IPv6 needs v3');
  assert.equal(bad({ virtual_addresses: [{ address: '192.0.2.1/33' }] }).success, false);
  assert.equal(bad({ virtual_addresses: [{ address: '192.0.2.1/24', label: 'eth1:0' }] }).success, false);
  assert.equal(bad({ track_scripts: [{ name: 'nope' }] }).success, false);
  assert.equal(bad({ vrid: 256 }).success, false);
  assert.equal(bad({ virtual_addresses: [] }).success, false, 'no address: an error, not an exception');
  assert.equal(bad({ frobnicate: 1 }).success, false, 'unknown keys are errors');
});

test('hmac under random tampering (fast-check): any changed, cut or added byte is refused; nothing throws', () => {
  const seq = new SequenceGenerator().next(NOW);
  const pkt = signed(seq);
  const tamper = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(pkt.length - 1), bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('cut' as const), at: fc.nat(pkt.length - 1) }),
    fc.record({ kind: fc.constant('add' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
    fc.record({ kind: fc.constant('src' as const), last: fc.integer({ min: 1, max: 254 }) }),
  );
  fc.assert(fc.property(tamper, (t) => {
    let payload: Buffer = Buffer.from(pkt);
    let src = ip.src;
    if (t.kind === 'flip') payload[t.at]! ^= 1 << t.bit;
    else if (t.kind === 'cut') payload = payload.subarray(0, t.at);
    else if (t.kind === 'add') payload = Buffer.concat([payload, Buffer.from(t.bytes)]);
    else { if (t.last === 237) return; src = `192.0.2.${t.last}`; }
    const v = checkAdvert(policy, { src, dst: ip.dst, ttl: 255, payload }, ['192.0.2.210'], undefined, NOW);
    assert.equal(v.ok, false, `accepted after ${JSON.stringify(t)}`);
  }), { numRuns: 3000, seed: 7 });
  // And the untouched packet still passes (the property is not vacuous).
  assert.equal(checkAdvert(policy, { ...ip, ttl: 255, payload: pkt }, ['192.0.2.210'], undefined, NOW).ok, true);
});

test('any bytes from any source (fast-check): checkAdvert returns a verdict with a reason, never throws', () => {
  const v2: ReceivePolicy = { version: 2, family: 4, vrid: 88, intervalMs: 1000, ownAddresses: ['192.0.2.50'], peers: [], auth: { type: 'pass', password: 'secret' } };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), fc.constantFrom(policy, v2), fc.option(fc.integer({ min: 0, max: 255 })), (bytes, p, ttl) => {
    const v = checkAdvert(p, { ...ip, ttl: ttl ?? undefined, payload: bytes }, [], undefined, NOW);
    if (!v.ok) assert.ok(v.reason.length > 0 && typeof v.detail === 'string');
  }), { numRuns: 3000, seed: 8 });
});
