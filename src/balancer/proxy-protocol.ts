/**
 * PROXY protocol headers (HAProxy's spec, versions 1 and 2) that the TCP proxy writes first on
 * a backend connection so the backend learns the real client address. Pure: addresses in,
 * bytes out. Hand-written: the format is a few fixed fields.
 */
import { isIP } from 'node:net';

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

export interface ProxyEndpoints {
  srcAddress: string;
  srcPort: number;
  dstAddress: string;
  dstPort: number;
}

/** "::ffff:1.2.3.4" (a v4 client on a dual-stack socket) → "1.2.3.4". */
export function unmapV4(a: string): string {
  return a.startsWith('::ffff:') && isIP(a.slice(7)) === 4 ? a.slice(7) : a;
}

function family(e: ProxyEndpoints): 4 | 6 | 0 {
  const s = isIP(unmapV4(e.srcAddress));
  const d = isIP(unmapV4(e.dstAddress));
  if (s === 4 && d === 4) return 4;
  if (s && d) return 6;
  return 0;
}

/** Version 1 (text). Unknown or mixed families give "PROXY UNKNOWN". */
export function proxyV1(e: ProxyEndpoints): Buffer {
  const f = family(e);
  if (f === 0) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  const src = f === 4 ? unmapV4(e.srcAddress) : toV6(e.srcAddress);
  const dst = f === 4 ? unmapV4(e.dstAddress) : toV6(e.dstAddress);
  return Buffer.from(`PROXY TCP${f} ${src} ${dst} ${e.srcPort} ${e.dstPort}\r\n`, 'latin1');
}

/** Version 2 (binary), command PROXY over TCP; LOCAL when addresses are unknown. */
export function proxyV2(e: ProxyEndpoints): Buffer {
  const f = family(e);
  if (f === 0) {
    const b = Buffer.alloc(16);
    V2_SIGNATURE.copy(b, 0);
    b[12] = 0x20; // version 2, LOCAL
    b[13] = 0x00; // UNSPEC
    b.writeUInt16BE(0, 14);
    return b;
  }
  const alen = f === 4 ? 12 : 36;
  const b = Buffer.alloc(16 + alen);
  V2_SIGNATURE.copy(b, 0);
  b[12] = 0x21; // version 2, PROXY
  b[13] = f === 4 ? 0x11 : 0x21; // AF_INET / AF_INET6, STREAM
  b.writeUInt16BE(alen, 14);
  if (f === 4) {
    writeV4(b, 16, unmapV4(e.srcAddress));
    writeV4(b, 20, unmapV4(e.dstAddress));
    b.writeUInt16BE(e.srcPort, 24);
    b.writeUInt16BE(e.dstPort, 26);
  } else {
    writeV6(b, 16, toV6(e.srcAddress));
    writeV6(b, 32, toV6(e.dstAddress));
    b.writeUInt16BE(e.srcPort, 48);
    b.writeUInt16BE(e.dstPort, 50);
  }
  return b;
}

function writeV4(b: Buffer, off: number, a: string): void {
  const p = a.split('.').map(Number);
  for (let i = 0; i < 4; i++) b[off + i] = p[i];
}

/** A v4 address in a v6 header is written v4-mapped. */
function toV6(a: string): string { return isIP(a) === 4 ? `::ffff:${a}` : a; }

function writeV6(b: Buffer, off: number, a: string): void {
  let s = a;
  // embedded v4 tail ("::ffff:1.2.3.4") → two hex groups
  const m = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (m) {
    const p = m[2].split('.').map(Number);
    s = `${m[1]}${((p[0] << 8) | p[1]).toString(16)}:${((p[2] << 8) | p[3]).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  for (let i = 0; i < 8; i++) b.writeUInt16BE(parseInt(groups[i] || '0', 16), off + 2 * i);
}
