/**
 * VRRP transport: one raw protocol-112 socket per instance, bound to its interface.
 *
 * Multicast mode: sends to 224.0.0.18 / ff02::12 with TTL / hop limit 255 out of the instance's
 * interface (IP_MULTICAST_IF; without it the kernel picks the default route's interface), joined to
 * the group. The socket is not bound to an address because a bound raw socket only receives
 * datagrams addressed to that address, which would hide the group's traffic.
 * Unicast mode (unicast_peers set): sends one copy to each peer, bound to unicast_src_ip (or the
 * interface's primary address) so that address is the source; adverts from non-peers are dropped
 * and counted here, before decoding.
 *
 * The source address is needed up front: the VRRPv3 checksum and the HMAC cover it.
 */
import { networkInterfaces } from 'node:os';
import { VRRP_MCAST_V4, VRRP_MCAST_V6, parseIpv4 } from './packet.js';
import { loadRawAddon, type RawAddon, type RawHandle } from './native.js';
import type { Received } from './receive.js';

export interface TransportOptions {
  family: 4 | 6;
  ifname: string;
  /** Unicast peers; empty = multicast. */
  peers: string[];
  /** Source address; default: the interface's primary IPv4 / link-local IPv6 address. */
  srcAddr?: string;
}

export interface TransportStats {
  sent: number;
  sendErrors: number;
  received: number;
  droppedNotPeer: number;
  droppedMalformed: number;
}

/** The address the kernel will use as source on `ifname`: first IPv4, or the link-local IPv6. */
export function primaryAddress(ifname: string, family: 4 | 6): string | undefined {
  const addrs = networkInterfaces()[ifname] ?? [];
  if (family === 4) return addrs.find((a) => a.family === 'IPv4')?.address;
  return addrs.find((a) => a.family === 'IPv6' && a.address.toLowerCase().startsWith('fe80:'))?.address.replace(/%.*$/, '');
}

export class VrrpTransport {
  readonly stats: TransportStats = { sent: 0, sendErrors: 0, received: 0, droppedNotPeer: 0, droppedMalformed: 0 };
  readonly src: string;
  private readonly h: RawHandle;
  private readonly peers: Set<string>;
  private closed = false;

  constructor(readonly opts: TransportOptions, private readonly addon: RawAddon = loadRawAddon()) {
    const src = opts.srcAddr ?? primaryAddress(opts.ifname, opts.family);
    if (!src) throw new Error(`no IPv${opts.family} ${opts.family === 6 ? 'link-local ' : ''}address on ${opts.ifname}`);
    this.src = src;
    this.peers = new Set(opts.peers);
    const multicast = opts.peers.length === 0;
    this.h = addon.open(opts.family, opts.ifname, multicast, multicast ? null : src);
  }

  get multicast(): boolean { return this.peers.size === 0; }

  /** Destinations of one advert. */
  destinations(): string[] {
    if (this.multicast) return [this.opts.family === 4 ? VRRP_MCAST_V4 : VRRP_MCAST_V6];
    return [...this.peers];
  }

  /** Starts delivering received adverts (already split from their IP header). */
  start(onAdvert: (r: Received) => void): void {
    this.addon.recvStart(this.h, (buf, src, hops, dst) => {
      let r: Received;
      if (this.opts.family === 4) {
        const p = parseIpv4(buf);
        if (!p.ok || p.packet.protocol !== 112) { this.stats.droppedMalformed++; return; }
        r = { src: p.packet.src, dst: p.packet.dst, ttl: p.packet.ttl, payload: p.packet.payload };
      } else {
        r = { src, dst: dst || VRRP_MCAST_V6, ttl: hops >= 0 ? hops : undefined, payload: buf };
      }
      if (!this.multicast && !this.peers.has(r.src)) { this.stats.droppedNotPeer++; return; }
      this.stats.received++;
      onAdvert(r);
    });
  }

  /** Sends one advert; `build(dst)` returns the bytes for a destination (v3 checksums differ). */
  send(build: (dst: string) => Buffer): void {
    if (this.closed) return;
    for (const dst of this.destinations()) {
      try {
        this.addon.send(this.h, build(dst), dst);
        this.stats.sent++;
      } catch {
        // Link down, no route…: counted; the FSM learns about the interface from link tracking.
        this.stats.sendErrors++;
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.addon.close(this.h);
  }
}
