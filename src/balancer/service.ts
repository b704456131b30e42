/**
 * Entry point of the balancer: builds one proxy per configured service (DNS-aware, generic
 * UDP or generic TCP) and gives node/ one handle to close them, list their bound addresses and
 * read their statistics.
 */
import type { DnsHandler } from '../dns/handler.js';
import type { Clock } from '../util/clock.js';
import { balancerSectionSchema, parseListen, serviceMode, type BalancerSection, type BalancerSectionInput, type ListenAddress, type ServiceConfig } from './config.js';
import { DnsProxy, type DnsServiceStats } from './dns-proxy.js';
import type { BalancerLog, Bound } from './sockets.js';
import { TcpProxy, type TcpServiceStats } from './tcp-proxy.js';
import { UdpProxy, type UdpServiceStats } from './udp-proxy.js';

export interface BalancerOptions {
  log: BalancerLog;
  clock?: Clock;
  /** The in-process resolver, for backends with address "local". */
  localHandler?: DnsHandler;
  /** Injected randomness for policies (tests). */
  random?: () => number;
  /** Floating addresses (VIPs) this node may hold: see attach/detach. */
  floating?: readonly string[];
}

export type ServiceStats = DnsServiceStats | UdpServiceStats | TcpServiceStats;

export interface BoundAddress extends Bound { service: string }

export interface Balancer {
  /** The node now holds a floating address (VIP): bind the listeners on it. */
  attach(address: string): Promise<void>;
  /** The node gave the address away: release its listeners. */
  detach(address: string): Promise<void>;
  close(): Promise<void>;
  addresses(): BoundAddress[];
  stats(): { services: ServiceStats[] };
}

interface Proxy {
  readonly name: string;
  start(): Promise<Bound[]>;
  addresses(): Bound[];
  stats(): ServiceStats;
  close(): Promise<void>;
  attach?(address: string): Promise<void>;
  detach?(address: string): Promise<void>;
}

export function listenersOf(svc: ServiceConfig): ListenAddress[] {
  const mode = serviceMode(svc);
  return svc.listen.flatMap((l) => parseListen(l, mode));
}

function build(svc: ServiceConfig, opts: BalancerOptions): Proxy {
  const mode = serviceMode(svc);
  const listeners = listenersOf(svc);
  if (mode === 'dns') {
    return new DnsProxy({ service: svc, listeners, log: opts.log, clock: opts.clock, localHandler: opts.localHandler, random: opts.random, floating: opts.floating });
  }
  const wrong = listeners.filter((l) => l.proto !== mode);
  if (wrong.length) throw new Error(`balancer service ${svc.name}: mode ${mode} cannot listen on ${wrong[0].proto}`);
  if (mode === 'udp') {
    const fl = new Set(opts.floating ?? []);
    const onVip = listeners.find((l) => fl.has(l.address));
    if (onVip) throw new Error(`balancer service ${svc.name}: a generic UDP listener cannot float with a VIP (${onVip.address}); use mode dns, or a wildcard address`);
    return new UdpProxy({ service: svc, listeners, log: opts.log, clock: opts.clock, random: opts.random });
  }
  return new TcpProxy({ service: svc, listeners, log: opts.log, clock: opts.clock, random: opts.random, floating: opts.floating });
}

/**
 * Starts every service of the section (already parsed, or raw input that is parsed here).
 * On a failure to bind, whatever was started is closed and the error is thrown.
 */
export async function startBalancer(section: BalancerSection | BalancerSectionInput, opts: BalancerOptions): Promise<Balancer> {
  const parsed = balancerSectionSchema.parse(section);
  const proxies: Proxy[] = [];
  try {
    for (const svc of parsed.services) {
      const p = build(svc, opts);
      proxies.push(p);
      await p.start();
    }
  } catch (e) {
    await Promise.all(proxies.map((p) => p.close()));
    throw e;
  }
  return {
    async close() { await Promise.all(proxies.map((p) => p.close())); },
    async attach(address: string) { for (const p of proxies) await p.attach?.(address); },
    async detach(address: string) { await Promise.all(proxies.map((p) => p.detach?.(address))); },
    addresses() { return proxies.flatMap((p) => p.addresses().map((a) => ({ ...a, service: p.name }))); },
    stats() { return { services: proxies.map((p) => p.stats()) }; },
  };
}
