/**
 * Small socket helpers shared by the balancer shells: binding listeners (port 0 for tests,
 * UDP and TCP of one `dns://` entry on the same port), a bounded FIFO for timeouts, and the
 * logger shape the balancer needs (pino's Logger fits it).
 */
import dgram from 'node:dgram';
import net, { isIP } from 'node:net';
import { hasReusePort, literalLookup } from '../util/net.js';

export interface BalancerLog {
  info(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
  error(obj: unknown, msg?: string): void;
  debug(obj: unknown, msg?: string): void;
}

export const silentLog: BalancerLog = { info() {}, warn() {}, error() {}, debug() {} };

export interface Bound { proto: 'udp' | 'tcp'; address: string; port: number }

function fmt(host: string, port: number): string { return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`; }
export { fmt as formatHostPort };

export function bindUdp(host: string, port: number, reuseport = false, reuseAddr = false): Promise<dgram.Socket> {
  const v6 = isIP(host) === 6;
  // Replies go to the literal IP a datagram came from: answer dgram's per-send address lookup
  // synchronously instead of through dns.lookup (which defers every send by a nextTick).
  // reuseAddr: a wildcard listener and a VIP-specific one share a port (the kernel delivers to the
  // most specific match, so the VIP socket answers from the VIP).
  const opts: dgram.SocketOptions & { reusePort?: boolean } = { type: v6 ? 'udp6' : 'udp4', ipv6Only: v6, lookup: literalLookup, reuseAddr };
  if (reuseport && hasReusePort()) opts.reusePort = true;
  const sock = dgram.createSocket(opts);
  return new Promise((resolve, reject) => {
    sock.once('error', (e) => reject(new Error(`cannot listen on udp ${fmt(host, port)}: ${e.message}`)));
    sock.bind({ address: host, port, exclusive: !opts.reusePort }, () => {
      sock.removeAllListeners('error');
      // Per-datagram errors (ICMP unreachable for a client that left) are not fatal.
      sock.on('error', () => {});
      try { sock.setRecvBufferSize(4 << 20); sock.setSendBufferSize(4 << 20); } catch { /* capped by the kernel */ }
      resolve(sock);
    });
  });
}

export function listenTcp(host: string, port: number, onConn: (c: net.Socket) => void, maxConnections: number): Promise<net.Server> {
  const server = net.createServer({ noDelay: true, allowHalfOpen: true }, onConn);
  server.maxConnections = maxConnections;
  return new Promise((resolve, reject) => {
    server.once('error', (e) => reject(new Error(`cannot listen on tcp ${fmt(host, port)}: ${e.message}`)));
    server.listen({ host, port, ipv6Only: isIP(host) === 6, exclusive: true }, () => {
      server.removeAllListeners('error');
      server.on('error', () => { /* accept errors (EMFILE): the kernel queue retries */ });
      resolve(server);
    });
  });
}

/** A connected UDP socket towards one backend (the kernel then drops datagrams from anyone else). */
export function connectUdp(host: string, port: number): Promise<dgram.Socket> {
  const sock = dgram.createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.connect(port, host, () => {
      sock.removeListener('error', reject);
      try { sock.setRecvBufferSize(4 << 20); sock.setSendBufferSize(4 << 20); } catch { /* capped by the kernel */ }
      resolve(sock);
    });
  });
}

export function closeServer(s: net.Server): Promise<void> {
  return new Promise((r) => s.close(() => r()));
}

/** Whether a listen address is a wildcard (0.0.0.0 or ::). */
export function isWildcard(address: string): boolean { return address === '0.0.0.0' || address === '::'; }
