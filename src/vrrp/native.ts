/**
 * Typed loader for the native raw-socket shim (native/vrrp_raw.c). Loaded lazily so that the pure
 * parts of vrrp/ (codec, FSM, importer) work on machines where the addon was not built.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type RawHandle = { readonly __brand: 'vrrp-raw-socket' };

export interface RawAddon {
  /** Opens a protocol-112 raw socket bound to `ifname` (TTL/hop limit 255, outgoing interface set). */
  open(family: 4 | 6, ifname: string, multicast: boolean, bindAddr: string | null): RawHandle;
  send(h: RawHandle, buf: Buffer, dst: string): number;
  /** IPv4: `buf` includes the IP header and hops = -1; IPv6: payload only, hop limit and dst from cmsgs. */
  recvStart(h: RawHandle, cb: (buf: Buffer, src: string, hops: number, dst: string) => void): void;
  close(h: RawHandle): void;
  /** Sends one complete Ethernet frame out of `ifname` (AF_PACKET). */
  sendFrame(ifname: string, frame: Buffer): void;
  /** rtnetlink address add/delete; 0 or a positive errno (EEXIST, EADDRNOTAVAIL, …). */
  addrChange(add: boolean, ifname: string, addr: string, prefix: number, label: string | null, nodad: boolean): number;
}

let cached: RawAddon | undefined;

/** Finds the repo root from dist/src/vrrp or src/vrrp (tsx). */
function candidates(): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  const out: string[] = [];
  for (const up of ['../..', '../../..']) out.push(join(here, up, 'native', 'build', 'Release', 'vrrp_raw.node'));
  if (process.env.HADNS_VRRP_ADDON) out.unshift(process.env.HADNS_VRRP_ADDON);
  return out;
}

export function loadRawAddon(): RawAddon {
  if (cached) return cached;
  const path = candidates().find((p) => existsSync(p));
  if (!path) throw new Error('VRRP raw-socket addon not built: run `npm run build:native` (needs a C compiler and Node headers)');
  cached = createRequire(import.meta.url)(path) as RawAddon;
  return cached;
}
