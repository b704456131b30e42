/**
 * Record values in zone-file presentation form ("10 mail.example", "1 2 5060 sip.example"), as
 * the native config writes them, parsed into dns-packet RDATA objects. Used by the schema (so a
 * bad value is reported with file and line) and by local data.
 */
import { isIP } from 'node:net';

export function lowerName(n: string): string {
  const s = n.toLowerCase();
  return s.endsWith('.') ? s.slice(0, -1) : s;
}

/**
 * A name used as RDATA (CNAME/PTR/MX/SRV target). The root stays "." — dns-packet counts two
 * bytes for "" but writes one, which would corrupt the message.
 */
function targetName(n: string): string {
  const s = lowerName(n.trim());
  return s === '' ? '.' : s;
}

/** Parses an inline record's zone-file-form value into dns-packet data; throws with a reason. */
export function recordData(type: string, value: string | string[]): unknown {
  const v = Array.isArray(value) ? value : [value];
  const one = v.join(' ').trim();
  switch (type) {
    case 'A': if (isIP(one) !== 4) throw new Error(`"${one}" is not an IPv4 address`); return one;
    case 'AAAA': if (isIP(one) !== 6) throw new Error(`"${one}" is not an IPv6 address`); return one;
    case 'CNAME': case 'PTR': return targetName(one);
    case 'TXT': return v.map((s) => Buffer.from(s));
    case 'MX': {
      const m = /^(\d+)\s+(\S+)$/.exec(one);
      if (!m || Number(m[1]) > 65535) throw new Error(`MX value must be "PREFERENCE EXCHANGE", got "${one}"`);
      return { preference: Number(m[1]), exchange: targetName(m[2]) };
    }
    case 'SRV': {
      const m = /^(\d+)\s+(\d+)\s+(\d+)\s+(\S+)$/.exec(one);
      if (!m || [m[1], m[2], m[3]].some((x) => Number(x) > 65535)) throw new Error(`SRV value must be "PRIORITY WEIGHT PORT TARGET", got "${one}"`);
      return { priority: Number(m[1]), weight: Number(m[2]), port: Number(m[3]), target: targetName(m[4]) };
    }
  }
  throw new Error(`unsupported record type ${type}`);
}

