/**
 * UDP and TCP listeners for a DnsHandler (thin shell). One UDP socket and one TCP server per
 * listen address; IPv6 sockets are v6-only so [::]:53 and 0.0.0.0:53 coexist. TCP follows
 * RFC 7766: several pipelined queries per connection, answers in any order, an idle timeout, a
 * bound on connections and on queries outstanding per connection (reading pauses beyond it).
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { isIP } from 'node:net';
import type { DnsHandler, QueryContext, Reply } from '../dns/handler.js';
import { DnsTcpConn } from '../dns/tcp-conn.js';
import { parseHostPort } from '../config/schema.js';
import { literalLookup } from '../util/net.js';
import { BatchUdpSocket, META, useBatchUdp } from '../util/udp-batch.js';

export interface BoundAddress { proto: 'udp' | 'tcp'; address: string; port: number; /** Queries received here. */ queries?: number }

export interface ListenerOptions {
  tcpIdleMs?: number;
  tcpMaxConnections?: number;
  tcpMaxOutstanding?: number;
}

export class DnsListeners {
  private readonly udp: (dgram.Socket | BatchUdpSocket)[] = [];
  private readonly tcp: net.Server[] = [];
  private readonly conns = new Set<net.Socket>();
  readonly bound: BoundAddress[] = [];
  stats = { udpIn: 0, tcpIn: 0, tcpConnections: 0, tcpRejected: 0 };

  constructor(private handler: DnsHandler, private readonly opts: ListenerOptions = {}) {}

  setHandler(h: DnsHandler): void { this.handler = h; }

  /** Binds every address; on any failure closes what was opened and rejects with the reason. */
  async listen(addresses: string[]): Promise<BoundAddress[]> {
    try {
      for (const a of addresses) {
        const hp = parseHostPort(a, 53);
        if (!hp) throw new Error(`bad listen address ${a}`);
        // Port 0: UDP and TCP must share the kernel's pick, so bind UDP first and reuse its port;
        // if that port is taken for TCP (another socket's ephemeral port), pick again.
        for (let attempt = 0; ; attempt++) {
          const udpPort = await this.listenUdp(hp.host, hp.port);
          try {
            await this.listenTcp(hp.host, udpPort);
            break;
          } catch (e) {
            if (hp.port !== 0 || attempt >= 20) throw e;
            const sock = this.udp.pop()!;
            this.bound.pop();
            sock.close();
          }
        }
      }
    } catch (e) {
      await this.close();
      throw e;
    }
    return this.bound;
  }

  private listenUdp(host: string, port: number): Promise<number> {
    if (useBatchUdp()) return Promise.resolve(this.listenUdpBatch(host, port));
    const v6 = isIP(host) === 6;
    const sock = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: v6, lookup: literalLookup });
    return new Promise((resolve, reject) => {
      sock.once('error', (e) => reject(new Error(`cannot listen on udp ${v6 ? `[${host}]` : host}:${port}: ${e.message}`)));
      sock.bind({ address: host, port, exclusive: true }, () => {
        sock.removeAllListeners('error');
        sock.on('error', () => { /* per-datagram send errors (ICMP) are not fatal */ });
        const addr = sock.address();
        this.udp.push(sock);
        const entry: BoundAddress = { proto: 'udp', address: addr.address, port: addr.port, queries: 0 };
        this.bound.push(entry);
        sock.on('message', (msg, rinfo) => {
          this.stats.udpIn++;
          entry.queries!++;
          const ctx: QueryContext = { clientAddress: rinfo.address, clientPort: rinfo.port, transport: 'udp' };
          this.handler.handle(msg, ctx, (resp, len) => {
            if (len === 0) return;
            // The handler reuses its buffer: send a copy (dgram may send after we return).
            const b = Buffer.allocUnsafe(len);
            resp instanceof Buffer ? resp.copy(b, 0, 0, len) : b.set(resp.subarray(0, len));
            sock.send(b, rinfo.port, rinfo.address);
          });
        });
        resolve(addr.port);
      });
    });
  }

  /** The hot path: recvmmsg/sendmmsg through the native addon (see util/udp-batch.ts). */
  private listenUdpBatch(host: string, port: number): number {
    const sock = BatchUdpSocket.bind(host, port); // throws "cannot listen on udp HOST:PORT: reason"
    const entry: BoundAddress = { proto: 'udp', address: host, port: sock.port, queries: 0 };
    this.udp.push(sock);
    this.bound.push(entry);
    const meta = sock.inMeta;
    const pool: UdpClient[] = [];
    // onSlot: the receive slot and the datagram's length, no view object per datagram.
    sock.onSlot = (buf, len, address, clientPort, slot) => {
      this.stats.udpIn++;
      entry.queries!++;
      // The reply may come later (forwarded): keep the client's address as words, not the slot.
      const c = pool.pop() ?? new UdpClient(sock, pool);
      const m = slot * META;
      c.fam = meta[m + 1]; c.a0 = meta[m + 3]; c.a1 = meta[m + 4]; c.a2 = meta[m + 5]; c.a3 = meta[m + 6];
      c.ctx.clientAddress = address;
      c.ctx.clientPort = clientPort;
      c.live = true;
      this.handler.handle(buf, c.ctx, c.reply, len);
    };
    sock.start();
    return sock.port;
  }

  private listenTcp(host: string, port: number): Promise<void> {
    const entry: BoundAddress = { proto: 'tcp', address: host, port, queries: 0 };
    // allowHalfOpen: a client may send its queries and shut its side; the answers still go out.
    const server = net.createServer({ noDelay: true, pauseOnConnect: false, allowHalfOpen: true }, (c) => this.onConnection(c, entry));
    server.maxConnections = this.opts.tcpMaxConnections ?? 1024;
    return new Promise((resolve, reject) => {
      server.once('error', (e) => reject(new Error(`cannot listen on tcp ${isIP(host) === 6 ? `[${host}]` : host}:${port}: ${e.message}`)));
      server.listen({ host, port, ipv6Only: isIP(host) === 6, exclusive: true }, () => {
        server.removeAllListeners('error');
        server.on('error', () => { /* accept errors (EMFILE) are retried by the kernel queue */ });
        const addr = server.address() as net.AddressInfo;
        this.tcp.push(server);
        entry.address = addr.address;
        entry.port = addr.port;
        this.bound.push(entry);
        resolve();
      });
    });
  }

  private onConnection(c: net.Socket, entry: BoundAddress): void {
    this.stats.tcpConnections++;
    const ctx: QueryContext = { clientAddress: c.remoteAddress ?? '', clientPort: c.remotePort ?? 0, transport: 'tcp' };
    const conn = new DnsTcpConn(c, this.opts.tcpMaxOutstanding ?? 64, this.opts.tcpIdleMs ?? 10_000, (msg) => {
      this.stats.tcpIn++;
      entry.queries!++;
      conn.began();
      this.handler.handle(msg, ctx, (resp, len) => {
        if (len !== 0) conn.write(resp, len);
        conn.finished();
      });
    }, () => this.conns.delete(c));
    this.conns.add(c);
  }

  async close(): Promise<void> {
    for (const s of this.udp) try { s.close(); } catch { /* closed */ }
    this.udp.length = 0;
    for (const c of this.conns) c.destroy();
    await Promise.all(this.tcp.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.tcp.length = 0;
  }
}

/**
 * Where a UDP query's answer goes: the client's address as words, the context the handler sees,
 * and the reply function, pooled per listener. A context object and a reply closure per query
 * were ~185 bytes of young garbage, half of what a cache hit allocated. Handlers call `reply` at
 * most once (dns/handler.ts); that call sends and returns the object to the pool. A handler that
 * never answers (the lab's hung resolver) just leaves the object to the garbage collector.
 */
class UdpClient {
  readonly ctx: QueryContext = { clientAddress: '', clientPort: 0, transport: 'udp' };
  fam = 0; a0 = 0; a1 = 0; a2 = 0; a3 = 0;
  live = false;
  constructor(private readonly sock: BatchUdpSocket, private readonly pool: UdpClient[]) {}
  readonly reply: Reply = (resp, len) => {
    if (!this.live) return; // a second call: the first one answered already
    this.live = false;
    if (len !== 0) this.sock.sendWords(resp, len, this.fam, this.ctx.clientPort, this.a0, this.a1, this.a2, this.a3);
    this.pool.push(this);
  };
}
