/**
 * Receive-side checks of RFC 5798 §7.1 / RFC 3768 §7.1 for one instance, as a pure function: from
 * the bytes and IP facts a raw socket reports to "an FSM event" or "drop, because …". The reason is
 * a short stable token so the engine can count drops per reason (keepalived logs most of these).
 */
import { decodeAdvert, type Family, type VrrpAdvert, passwordBytes, v2AuthData } from './packet.js';
import { verifyHmacTrailer, type HmacKey } from './auth.js';

export interface ReceivePolicy {
  version: 2 | 3;
  family: Family;
  vrid: number;
  intervalMs: number;
  /** Own source addresses (adverts from them are our own, looped back). */
  ownAddresses: string[];
  /** Unicast peers; empty = multicast mode. */
  peers: string[];
  auth: { type: 'none' } | { type: 'pass'; password: string } | { type: 'hmac'; key: HmacKey; maxClockSkewMs: number };
}

export interface Received {
  src: string;
  dst: string;
  /** IPv4 TTL / IPv6 hop limit, when the socket reports it. */
  ttl?: number;
  payload: Uint8Array;
}

export type DropReason =
  | 'malformed' | 'own' | 'not-peer' | 'ttl' | 'version' | 'vrid' | 'auth' | 'interval' | 'hmac' | 'replay';

export type ReceiveVerdict =
  | { ok: true; advert: VrrpAdvert; hmacSeq?: bigint; /** Address list differs from ours (RFC: log only). */ addressMismatch: boolean }
  | { ok: false; reason: DropReason; detail: string };

export function checkAdvert(
  p: ReceivePolicy, r: Received, expectedAddresses: string[],
  lastSeq: bigint | undefined, nowWallMs: number,
): ReceiveVerdict {
  const drop = (reason: DropReason, detail: string): ReceiveVerdict => ({ ok: false, reason, detail });
  if (p.ownAddresses.includes(r.src)) return drop('own', 'own advert');
  if (p.peers.length > 0 && !p.peers.includes(r.src)) return drop('not-peer', `source ${r.src} is not a unicast peer`);
  // TTL 255 proves the sender is on the link; unicast adverts may be routed (keepalived does the same).
  if (p.peers.length === 0 && r.ttl !== undefined && r.ttl !== 255) return drop('ttl', `TTL ${r.ttl} != 255`);
  const d = decodeAdvert(r.payload, { family: p.family, ip: { src: r.src, dst: r.dst } });
  if (!d.ok) return drop('malformed', d.error);
  const a = d.advert;
  if (a.version !== p.version) return drop('version', `version ${a.version}, expected ${p.version}`);
  if (a.vrid !== p.vrid) return drop('vrid', `VRID ${a.vrid}`);
  if (a.version === 2) {
    // RFC 3768 §7.1: the interval must match ours (v3 instead adopts the master's).
    if (a.intervalMs !== p.intervalMs) return drop('interval', `interval ${a.intervalMs} ms, expected ${p.intervalMs}`);
    const want = p.auth.type === 'pass' ? 1 : 0;
    const at = a.auth?.type === 'pass' ? 1 : a.auth?.type === 'none' ? 0 : 2;
    if (at !== want) return drop('auth', `auth type ${at}, expected ${want}`);
    if (p.auth.type === 'pass' && !v2AuthData(r.payload)!.equals(passwordBytes(p.auth.password))) return drop('auth', 'wrong password');
  }
  let hmacSeq: bigint | undefined;
  if (p.auth.type === 'hmac') {
    const stdLen = r.payload.length - d.trailer.length;
    const v = verifyHmacTrailer(p.auth.key, r.src, r.payload.subarray(0, stdLen), d.trailer, lastSeq, nowWallMs, p.auth.maxClockSkewMs);
    if (!v.ok) return drop(v.error === 'replayed sequence' ? 'replay' : 'hmac', v.error);
    hmacSeq = v.seq;
  }
  const mine = [...expectedAddresses].sort().join(',');
  const theirs = [...a.addresses].sort().join(',');
  return { ok: true, advert: a, hmacSeq, addressMismatch: mine !== theirs };
}
