/**
 * Client access control. The default, "local-service", is dnsmasq's: answer loopback and hosts
 * on directly attached subnets only, so an instance exposed by mistake is not an open resolver.
 * Decisions are memoised per address (bounded) since a server sees the same clients again and again.
 */
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { expandIPv6 } from './hosts.js';

interface Prefix { family: 4 | 6; bits: number; bytes: Uint8Array }

function toBytes(addr: string): { family: 4 | 6; bytes: Uint8Array } | null {
  let a = addr;
  if (a.startsWith('::ffff:') && isIP(a.slice(7)) === 4) a = a.slice(7); // IPv4-mapped
  const fam = isIP(a);
  if (fam === 4) return { family: 4, bytes: Uint8Array.from(a.split('.').map(Number)) };
  if (fam === 6) {
    const hex = expandIPv6(a.replace(/%.*$/, ''));
    const b = new Uint8Array(16);
    for (let i = 0; i < 16; i++) b[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
    return { family: 6, bytes: b };
  }
  return null;
}

export function parsePrefix(cidr: string): Prefix | null {
  const [ip, bits] = cidr.split('/');
  const b = toBytes(ip);
  if (!b) return null;
  const max = b.family === 4 ? 32 : 128;
  const n = bits === undefined ? max : Number(bits);
  if (!Number.isInteger(n) || n < 0 || n > max) return null;
  return { family: b.family, bits: n, bytes: b.bytes };
}

function matches(p: Prefix, fam: 4 | 6, bytes: Uint8Array): boolean {
  if (p.family !== fam) return false;
  let bits = p.bits;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((p.bytes[i] & mask) !== (bytes[i] & mask)) return false;
  }
  return true;
}

export class Acl {
  private readonly memo = new Map<string, boolean>();
  constructor(readonly prefixes: Prefix[] | 'any', readonly description: string) {}

  allows(addr: string): boolean {
    if (this.prefixes === 'any') return true;
    let v = this.memo.get(addr);
    if (v === undefined) {
      const b = toBytes(addr);
      v = !!b && this.prefixes.some((p) => matches(p, b.family, b.bytes));
      if (this.memo.size > 65536) this.memo.clear();
      this.memo.set(addr, v);
    }
    return v;
  }
}

/** Loopback plus every directly attached subnet of this host (read now; rebuilt on reload). */
export function localServicePrefixes(): string[] {
  const out = ['127.0.0.0/8', '::1/128'];
  for (const list of Object.values(networkInterfaces())) {
    for (const ni of list ?? []) if (ni.cidr) out.push(ni.cidr.replace(/%[^/]*/, ''));
  }
  return out;
}

export function buildAcl(spec: 'local-service' | 'any' | string[]): Acl {
  if (spec === 'any') return new Acl('any', 'any');
  const list = spec === 'local-service' ? localServicePrefixes() : spec;
  const prefixes = list.map(parsePrefix).filter((p): p is Prefix => p !== null);
  return new Acl(prefixes, spec === 'local-service' ? 'local-service' : list.join(','));
}
