import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  decodeAdvert, encodeAdvert, parseIpv4, bytesToIp, ipToBytes, internetChecksum, compareAddresses,
  type VrrpAdvert, type Family,
} from '../../src/vrrp/packet.js';

// Fixtures live in the source tree; tests run from dist/test/unit or test/unit (tsx).
function fixturesDir(): string {
  const here = new URL('.', import.meta.url).pathname;
  for (const rel of ['../fixtures/vrrp', '../../../test/fixtures/vrrp']) {
    const p = join(here, rel);
    try { readdirSync(p); return p; } catch { /* next */ }
  }
  throw new Error('fixtures not found');
}

interface Golden { summary: string; ip: Buffer }
function loadGolden(name: string): Golden[] {
  const lines = readFileSync(join(fixturesDir(), `${name}.hex`), 'utf8').split('\n');
  const out: Golden[] = [];
  let summary = '';
  for (const l of lines) {
    if (l.startsWith('#   ')) continue;
    if (l.startsWith('#')) { summary = l; continue; }
    if (l.trim()) out.push({ summary, ip: Buffer.from(l.trim(), 'hex') });
  }
  return out;
}

/** Splits a captured IP packet into VRRP payload + context (IPv6: fixed 40-byte header). */
function split(ip: Buffer): { family: Family; src: string; dst: string; ttl: number; payload: Buffer } {
  if (ip[0]! >> 4 === 4) {
    const r = parseIpv4(ip);
    assert.ok(r.ok);
    return { family: 4, src: r.packet.src, dst: r.packet.dst, ttl: r.packet.ttl, payload: r.packet.payload };
  }
  assert.equal(ip[6], 112, 'next header is VRRP');
  return { family: 6, src: bytesToIp(ip.subarray(8, 24), 6), dst: bytesToIp(ip.subarray(24, 40), 6), ttl: ip[7]!, payload: ip.subarray(40, 40 + ip.readUInt16BE(4)) };
}

function decodeGolden(g: Golden) {
  const s = split(g.ip);
  const r = decodeAdvert(s.payload, { family: s.family, ip: { src: s.src, dst: s.dst } });
  assert.ok(r.ok, `${g.summary}: ${!r.ok ? r.error : ''}`);
  return { s, r };
}

test('golden: keepalived v2 PASS unicast (the article\'s config)', () => {
  const pk = loadGolden('v2-pass-unicast');
  assert.ok(pk.length >= 3);
  for (const g of pk) {
    const { s, r } = decodeGolden(g);
    assert.equal(s.ttl, 255);
    assert.equal(r.checksumForm, 'v2');
    assert.equal(r.advert.version, 2);
    assert.equal(r.advert.vrid, 88);
    assert.deepEqual(r.advert.addresses, ['192.0.2.210']);
    assert.deepEqual(r.advert.auth, { type: 'pass', password: '8888' });
    assert.equal(r.advert.intervalMs, 1000);
    // Byte-exact re-encoding, NUL-padded password included.
    assert.deepEqual(encodeAdvert(r.advert), s.payload);
  }
  assert.equal(decodeGolden(pk[0]!).r.advert.priority, 150);
  assert.equal(decodeGolden(pk.at(-1)!).r.advert.priority, 0, 'SIGTERM sends a priority-0 resignation');
});

test('golden: keepalived v2 no-auth multicast with two addresses', () => {
  for (const g of loadGolden('v2-none-multicast')) {
    const { s, r } = decodeGolden(g);
    assert.equal(s.dst, '224.0.0.18');
    assert.equal(s.ttl, 255);
    assert.deepEqual(r.advert.addresses, ['192.0.2.211', '192.0.2.212']);
    assert.deepEqual(r.advert.auth, { type: 'none' });
    assert.equal(r.advert.intervalMs, 2000);
    assert.deepEqual(encodeAdvert(r.advert), s.payload);
  }
});

for (const name of ['v3-ipv4-multicast', 'v3-ipv4-unicast', 'v3-ipv6-multicast']) {
  test(`golden: keepalived ${name} (checksum with pseudo-header, re-encodes byte-exact)`, () => {
    const pk = loadGolden(name);
    for (const g of pk) {
      const { s, r } = decodeGolden(g);
      assert.equal(s.ttl, 255);
      assert.equal(r.advert.version, 3);
      assert.equal(r.checksumForm, 'pseudo');
      assert.equal(r.advert.auth, undefined);
      assert.deepEqual(encodeAdvert(r.advert, { ip: { src: s.src, dst: s.dst } }), s.payload);
    }
    const first = decodeGolden(pk[0]!).r.advert;
    if (name === 'v3-ipv6-multicast') {
      assert.deepEqual(first.addresses, ['2001:db8::66', '2001:db8::67']);
      assert.equal(first.intervalMs, 500);
      assert.equal(first.family, 6);
    }
    if (name === 'v3-ipv4-multicast') assert.equal(first.intervalMs, 500);
    assert.equal(decodeGolden(pk.at(-1)!).r.advert.priority, 0);
  });
}

test('v3 IPv4: accepts the RFC 9568 checksum form without the pseudo-header', () => {
  const a: VrrpAdvert = { version: 3, family: 4, vrid: 7, priority: 100, intervalMs: 100, addresses: ['192.0.2.1'] };
  const ip = { src: '192.0.2.5', dst: '224.0.0.18' };
  const np = encodeAdvert(a, { ip, checksumForm: 'no-pseudo' });
  const p = encodeAdvert(a, { ip });
  assert.notDeepEqual(np, p);
  const r1 = decodeAdvert(np, { family: 4, ip });
  const r2 = decodeAdvert(p, { family: 4, ip });
  assert.ok(r1.ok && r2.ok);
  assert.equal(r1.checksumForm, 'no-pseudo');
  assert.equal(r2.checksumForm, 'pseudo');
  // IPv6 has only the pseudo-header form: the option is ignored, and a checksum without the
  // pseudo-header is refused.
  const a6: VrrpAdvert = { ...a, family: 6, addresses: ['2001:db8::1'] };
  const ip6 = { src: 'fe80::1', dst: 'ff02::12' };
  assert.deepEqual(encodeAdvert(a6, { ip: ip6, checksumForm: 'no-pseudo' }), encodeAdvert(a6, { ip: ip6 }));
  const noPseudo6 = encodeAdvert(a6, { ip: ip6 });
  noPseudo6.writeUInt16BE(0, 6);
  noPseudo6.writeUInt16BE(internetChecksum(noPseudo6), 6);
  assert.ok(!decodeAdvert(noPseudo6, { family: 6, ip: ip6 }).ok);
});

test('decode rejects garbage with a clear error and never throws', () => {
  const ip = { src: '192.0.2.5', dst: '224.0.0.18' };
  const good = encodeAdvert({ version: 2, family: 4, vrid: 9, priority: 100, intervalMs: 1000, addresses: ['192.0.2.9'], auth: { type: 'pass', password: 'secret' } });
  const cases: [Buffer, RegExp][] = [
    [Buffer.alloc(0), /too short/],
    [Buffer.from([0x41, 1, 1, 0, 0, 1, 0, 0]), /version 4/],
    [Buffer.from([0x22, 1, 1, 0, 0, 1, 0, 0]), /type 2/],
    [good.subarray(0, 12), /truncated/],
    [Buffer.from(good).fill(0xff, 6, 8), /checksum/],
  ];
  for (const [b, re] of cases) {
    const r = decodeAdvert(b, { family: 4, ip });
    assert.ok(!r.ok);
    assert.match(r.error, re);
  }
  assert.ok(!decodeAdvert(good, { family: 6, ip }).ok, 'v2 over IPv6');
  fc.assert(fc.property(fc.uint8Array({ maxLength: 120 }), fc.constantFrom<Family>(4, 6), (bytes, family) => {
    const r = decodeAdvert(bytes, { family, ip: family === 4 ? ip : { src: 'fe80::1', dst: 'ff02::12' } });
    assert.equal(typeof r.ok, 'boolean');
  }), { numRuns: 3000 });
});

test('encode refuses what the wire cannot carry', () => {
  const base: VrrpAdvert = { version: 2, family: 4, vrid: 1, priority: 100, intervalMs: 1000, addresses: [] };
  assert.throws(() => encodeAdvert({ ...base, intervalMs: 1500 }), /whole seconds/);
  assert.throws(() => encodeAdvert({ ...base, auth: { type: 'pass', password: '123456789' } }), /8 bytes/);
  assert.throws(() => encodeAdvert({ ...base, vrid: 0 }), /VRID/);
  assert.throws(() => encodeAdvert({ ...base, family: 6 }), /IPv4 only/);
  assert.throws(() => encodeAdvert({ ...base, version: 3, intervalMs: 41000 }, { ip: { src: '1.1.1.1', dst: '2.2.2.2' } }), /centiseconds/);
});

test('addresses: bytes/text round trip and ordering', () => {
  assert.equal(bytesToIp(ipToBytes('2001:db8::1', 6), 6), '2001:db8::1');
  assert.equal(bytesToIp(ipToBytes('::ffff:192.0.2.1', 6), 6), '::ffff:c000:201');
  assert.equal(bytesToIp(ipToBytes('fe80:0:0:1:0:0:0:1', 6), 6), 'fe80:0:0:1::1');
  assert.ok(compareAddresses('192.0.2.50', '192.0.2.237') < 0);
  assert.ok(compareAddresses('10.0.0.2', '9.255.255.255') > 0);
  fc.assert(fc.property(fc.ipV6(), (ip) => {
    const b = ipToBytes(ip, 6);
    assert.deepEqual(ipToBytes(bytesToIp(b, 6), 6), b);
  }));
  // RFC 1071 example.
  assert.equal(internetChecksum(Buffer.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7])), 0x220d);
});

const arbV4 = fc.ipV4();
const arbV6 = fc.ipV6().map((ip) => bytesToIp(ipToBytes(ip, 6), 6));
const arbAdvert: fc.Arbitrary<VrrpAdvert> = fc.oneof(
  fc.record({
    version: fc.constant<2>(2), family: fc.constant<4>(4), vrid: fc.integer({ min: 1, max: 255 }), priority: fc.integer({ min: 0, max: 255 }),
    intervalMs: fc.integer({ min: 1, max: 255 }).map((s) => s * 1000), addresses: fc.array(arbV4, { maxLength: 20 }),
    auth: fc.oneof(fc.constant({ type: 'none' as const }), fc.string({ minLength: 1, maxLength: 8, unit: fc.constantFrom(...'abcXYZ019-_'.split('')) }).map((password) => ({ type: 'pass' as const, password }))),
  }),
  fc.record({
    version: fc.constant<3>(3), family: fc.constant<4>(4), vrid: fc.integer({ min: 1, max: 255 }), priority: fc.integer({ min: 0, max: 255 }),
    intervalMs: fc.integer({ min: 1, max: 4095 }).map((c) => c * 10), addresses: fc.array(arbV4, { maxLength: 20 }),
  }),
  fc.record({
    version: fc.constant<3>(3), family: fc.constant<6>(6), vrid: fc.integer({ min: 1, max: 255 }), priority: fc.integer({ min: 0, max: 255 }),
    intervalMs: fc.integer({ min: 1, max: 4095 }).map((c) => c * 10), addresses: fc.array(arbV6, { maxLength: 10 }),
  }),
);

test('property: encode → decode is the identity, for both v3 IPv4 checksum forms', () => {
  fc.assert(fc.property(arbAdvert, fc.boolean(), (a, noPseudo) => {
    const ip = a.family === 4 ? { src: '192.0.2.1', dst: '224.0.0.18' } : { src: 'fe80::1', dst: 'ff02::12' };
    const wire = encodeAdvert(a, { ip, checksumForm: noPseudo ? 'no-pseudo' : 'pseudo' });
    const r = decodeAdvert(wire, { family: a.family, ip });
    assert.ok(r.ok, !r.ok ? r.error : '');
    assert.deepEqual(r.advert, { ...a });
    assert.equal(r.trailer.length, 0);
  }), { numRuns: 2000 });
});

test('property: any single-bit flip is detected or decodes to something valid', () => {
  fc.assert(fc.property(arbAdvert, fc.nat(), (a, bit) => {
    const ip = a.family === 4 ? { src: '192.0.2.1', dst: '224.0.0.18' } : { src: 'fe80::1', dst: 'ff02::12' };
    const wire = encodeAdvert(a, { ip });
    const i = bit % (wire.length * 8);
    wire[i >> 3]! ^= 1 << (i & 7);
    const r = decodeAdvert(wire, { family: a.family, ip });
    // The internet checksum catches every single-bit error except in the count byte (changes length).
    if (r.ok) assert.notEqual(i >> 3, 6);
  }), { numRuns: 2000 });
});
