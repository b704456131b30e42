/**
 * Virtual addresses: add/remove with iproute2 (`ip addr`, label included), and announce them with
 * gratuitous ARP (IPv4) / unsolicited neighbour advertisements (IPv6).
 *
 * How: through rtnetlink in the native shim when it is loaded (microseconds), else with iproute2
 * (`ip addr`, tens of ms for the process). The fault matrix showed those tens of ms matter at
 * sub-second advert intervals: they widen the gap of a takeover and the overlap of a failback. The announcements, in
 * contrast, go out through the raw AF_PACKET path of the native shim (no arping/ndisc6 needed):
 * the frames are built here, in TypeScript, by pure functions that the unit tests check byte by
 * byte. The interface's own MAC is used (as keepalived does without use_vmac).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { ipToBytes, internetChecksum, pseudoHeader } from './packet.js';
import { loadRawAddon, type RawAddon } from './native.js';

export interface Vip {
  /** Address without prefix. */
  address: string;
  prefix: number;
  dev: string;
  label?: string;
  family: 4 | 6;
}

/** Normalizes a config entry ("192.0.2.10/24", dev, label) into a Vip. */
export function toVip(v: { address: string; dev?: string; label?: string }, defaultDev: string): Vip {
  const [ip, len] = v.address.split('/') as [string, string | undefined];
  const family = isIPv4(ip) ? 4 : 6;
  const vip: Vip = { address: ip, prefix: len !== undefined ? Number(len) : family === 4 ? 32 : 128, dev: v.dev ?? defaultDev, family };
  if (v.label) vip.label = v.label;
  return vip;
}

export type IpRunner = (args: string[]) => Promise<{ ok: boolean; stderr: string }>;

/** Runs `ip …`; never rejects (failures are reported, the VRRP engine must keep running). */
export const runIp: IpRunner = (args) => new Promise((resolve) => {
  execFile('ip', args, { timeout: 5000 }, (err, _stdout, stderr) => resolve({ ok: !err, stderr: String(stderr).trim() }));
});

export function addArgs(v: Vip): string[] {
  const a = [v.family === 6 ? '-6' : '-4', 'addr', 'add', `${v.address}/${v.prefix}`, 'dev', v.dev];
  if (v.family === 4 && v.label) a.push('label', v.label);
  // A VIP moves between nodes: duplicate address detection would hold it "tentative" for a second.
  if (v.family === 6) a.push('nodad');
  return a;
}

export function delArgs(v: Vip): string[] {
  return [v.family === 6 ? '-6' : '-4', 'addr', 'del', `${v.address}/${v.prefix}`, 'dev', v.dev];
}

/** The rtnetlink path when the addon has it (and the caller did not inject a runner). */
function netlink(): RawAddon | null {
  try { const a = loadRawAddon(); return typeof a.addrChange === 'function' ? a : null; } catch { return null; }
}

const EEXIST = 17;
const EADDRNOTAVAIL = 99;

/** Adds a VIP; an address already present counts as success. */
export async function addVip(v: Vip, ip: IpRunner = runIp): Promise<{ ok: boolean; error?: string }> {
  const nl = ip === runIp ? netlink() : null;
  if (nl) {
    const e = nl.addrChange(true, v.dev, v.address, v.prefix, v.family === 4 ? v.label ?? null : null, v.family === 6);
    return e === 0 || e === EEXIST ? { ok: true } : { ok: false, error: `rtnetlink: errno ${e}` };
  }
  const r = await ip(addArgs(v));
  if (r.ok || /File exists/i.test(r.stderr)) return { ok: true };
  return { ok: false, error: r.stderr };
}

/** Removes a VIP; an address already absent counts as success. */
export async function removeVip(v: Vip, ip: IpRunner = runIp): Promise<{ ok: boolean; error?: string }> {
  const nl = ip === runIp ? netlink() : null;
  if (nl) {
    const e = nl.addrChange(false, v.dev, v.address, v.prefix, null, false);
    return e === 0 || e === EADDRNOTAVAIL || e === 19 /* ENODEV */ ? { ok: true } : { ok: false, error: `rtnetlink: errno ${e}` };
  }
  const r = await ip(delArgs(v));
  if (r.ok || /Cannot assign requested address|not found|No such/i.test(r.stderr)) return { ok: true };
  return { ok: false, error: r.stderr };
}

export function interfaceMac(dev: string): Buffer {
  const text = readFileSync(`/sys/class/net/${dev}/address`, 'utf8').trim();
  return Buffer.from(text.split(':').map((x) => parseInt(x, 16)));
}

/** Gratuitous ARP announcement (RFC 5227 §2.3 form: request, sender = target = VIP), broadcast. */
export function garpFrame(mac: Buffer, ip: string): Buffer {
  const f = Buffer.alloc(42);
  f.fill(0xff, 0, 6);
  mac.copy(f, 6);
  f.writeUInt16BE(0x0806, 12);
  f.writeUInt16BE(1, 14); // Ethernet
  f.writeUInt16BE(0x0800, 16); // IPv4
  f[18] = 6; f[19] = 4;
  f.writeUInt16BE(1, 20); // request
  mac.copy(f, 22);
  ipToBytes(ip, 4).copy(f, 28);
  // target hardware address left zero
  ipToBytes(ip, 4).copy(f, 38);
  return f;
}

/** Unsolicited neighbour advertisement for `ip` to all-nodes (RFC 4861 §7.2.6), Override flag set. */
export function unsolicitedNaFrame(mac: Buffer, ip: string): Buffer {
  const icmp = Buffer.alloc(32);
  icmp[0] = 136; // Neighbor Advertisement
  icmp[4] = 0x20; // O (override)
  ipToBytes(ip, 6).copy(icmp, 8);
  icmp[24] = 2; icmp[25] = 1; // option: target link-layer address, 8 bytes
  mac.copy(icmp, 26);
  const dst = 'ff02::1';
  // ICMPv6 checksum over the IPv6 pseudo-header with next header 58 (pseudoHeader() writes 112).
  const ph = pseudoHeader(6, ip, dst, icmp.length);
  ph[39] = 58;
  icmp.writeUInt16BE(internetChecksum(icmp, ph), 2);
  const f = Buffer.alloc(14 + 40 + icmp.length);
  Buffer.from([0x33, 0x33, 0, 0, 0, 1]).copy(f, 0);
  mac.copy(f, 6);
  f.writeUInt16BE(0x86dd, 12);
  f.writeUInt32BE(0x60000000, 14);
  f.writeUInt16BE(icmp.length, 18);
  f[20] = 58; f[21] = 255;
  ipToBytes(ip, 6).copy(f, 22);
  ipToBytes(dst, 6).copy(f, 38);
  icmp.copy(f, 54);
  return f;
}

export function announceFrame(mac: Buffer, v: Vip): Buffer {
  return v.family === 4 ? garpFrame(mac, v.address) : unsolicitedNaFrame(mac, v.address);
}
