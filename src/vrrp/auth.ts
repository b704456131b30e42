/**
 * hadns-only authenticated adverts: an HMAC-SHA256 trailer with a sequence number.
 *
 * Why a trailer: VRRPv3 has no auth field and v2's 8-byte field cannot hold a MAC, so the trailer
 * is appended after the standard message (past the v2 auth data). The standard part stays a valid
 * VRRP advert with its normal checksum, so tcpdump/Wireshark still decode it. It is sent only when
 * `auth.type: hmac` is configured, and a receiver so configured drops adverts without a valid
 * trailer. keepalived does not know it and would drop such adverts (length mismatch), so every
 * router of an HMAC-protected VRID must be a hadns node — documented in docs/vrrp.md.
 *
 * Layout (44 bytes):
 *   0..1  magic 'h' 'A'         2  trailer version (1)     3  key id
 *   4..11 sequence, uint64 BE: sender's wall-clock ms × 1000 + a counter, strictly increasing
 *   12..43 HMAC-SHA256(key, "hadns-vrrp-hmac-v1" ‖ src address ‖ VRRP message with checksum 0 ‖ bytes 0..11)
 *
 * The checksum is zeroed in the MAC input because the v3 checksum covers the destination (it
 * differs per unicast peer) while one MAC serves all peers. Replay protection: a receiver accepts a
 * sequence only if it is greater than the last one accepted from that source and, optionally, its
 * timestamp is within `maxClockSkewMs` of the receiver's wall clock (so a restarted receiver, which
 * forgot the last sequence, still refuses old captures).
 *
 * Hand-written: there is no standard VRRP HMAC scheme to take from a library (RFC 3768's AH mode
 * is deprecated and keepalived's AH is HMAC-MD5-96 without replay protection across restarts).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { ipToBytes } from './packet.js';

export const HMAC_TRAILER_LEN = 44;
const MAGIC0 = 0x68, MAGIC1 = 0x41, TRAILER_VERSION = 1;
const DOMAIN = Buffer.from('hadns-vrrp-hmac-v1');

export interface HmacKey { key: string | Buffer; keyId: number }

function mac(key: HmacKey, src: string, std: Uint8Array, head: Uint8Array): Buffer {
  const body = Buffer.from(std);
  body.writeUInt16BE(0, 6);
  return createHmac('sha256', key.key)
    .update(DOMAIN)
    .update(ipToBytes(src, isIPv4(src) ? 4 : 6))
    .update(body)
    .update(head)
    .digest();
}

/** Builds the trailer for a standard VRRP message sent from `src`. */
export function buildHmacTrailer(key: HmacKey, src: string, std: Uint8Array, seq: bigint): Buffer {
  const t = Buffer.alloc(HMAC_TRAILER_LEN);
  t[0] = MAGIC0; t[1] = MAGIC1; t[2] = TRAILER_VERSION; t[3] = key.keyId & 0xff;
  t.writeBigUInt64BE(seq, 4);
  mac(key, src, std, t.subarray(0, 12)).copy(t, 12);
  return t;
}

export type HmacVerdict = { ok: true; seq: bigint } | { ok: false; error: string };

/**
 * Verifies a trailer. `lastSeq` is the last sequence accepted from `src` (undefined if none);
 * the caller stores `seq` on success. Pure apart from the MAC computation.
 */
export function verifyHmacTrailer(
  key: HmacKey, src: string, std: Uint8Array, trailer: Uint8Array,
  lastSeq: bigint | undefined, nowWallMs: number, maxClockSkewMs: number,
): HmacVerdict {
  if (trailer.length !== HMAC_TRAILER_LEN) return { ok: false, error: trailer.length ? 'bad HMAC trailer length' : 'missing HMAC trailer' };
  const t = Buffer.from(trailer.buffer, trailer.byteOffset, trailer.byteLength);
  if (t[0] !== MAGIC0 || t[1] !== MAGIC1 || t[2] !== TRAILER_VERSION) return { ok: false, error: 'not an hadns HMAC trailer' };
  if (t[3] !== (key.keyId & 0xff)) return { ok: false, error: `unknown key id ${t[3]}` };
  const expect = mac(key, src, std, t.subarray(0, 12));
  if (!timingSafeEqual(expect, t.subarray(12, 44))) return { ok: false, error: 'HMAC mismatch' };
  const seq = t.readBigUInt64BE(4);
  if (lastSeq !== undefined && seq <= lastSeq) return { ok: false, error: 'replayed sequence' };
  if (maxClockSkewMs > 0) {
    const ts = Number(seq / 1000n);
    if (Math.abs(ts - nowWallMs) > maxClockSkewMs) return { ok: false, error: 'timestamp outside the allowed clock skew' };
  }
  return { ok: true, seq };
}

/** Strictly increasing sequence numbers anchored to wall-clock time (survive restarts). */
export class SequenceGenerator {
  private last = 0n;
  next(nowWallMs: number): bigint {
    const base = BigInt(Math.floor(nowWallMs)) * 1000n;
    this.last = base > this.last ? base : this.last + 1n;
    return this.last;
  }
}
