/** Small socket helpers shared by the resolver's and the balancer's shells. */
import dgram from 'node:dgram';
import net, { isIP } from 'node:net';
import { once } from 'node:events';

/** dgram reusePort arrived in Node 22.12 / 23.1; use it only where the runtime has it. */
export function hasReusePort(): boolean {
  const [maj, min] = process.versions.node.split('.').map(Number);
  return maj > 23 || (maj === 23 && min >= 1) || (maj === 22 && min >= 12);
}

type LookupCb = (err: NodeJS.ErrnoException | null, address: string, family: number) => void;

/**
 * dgram `lookup` for IP literals only: replies go to the literal a datagram came from, and the
 * default lookup sends even literals through dns.lookup and a nextTick per datagram.
 */
export function literalLookup(address: string, _opts: unknown, cb: LookupCb): void {
  const f = isIP(address);
  if (f === 0) cb(Object.assign(new Error(`not an IP address: ${address}`), { code: 'EINVAL' }), '', 0);
  else cb(null, address, f);
}

/** A loopback port free for both UDP and TCP right now (tests and benchmarks). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (;;) {
    const s = dgram.createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
    s.bind(0, host);
    await once(s, 'listening');
    const port = s.address().port;
    const t = net.createServer();
    const ok = await new Promise<boolean>((r) => { t.once('error', () => r(false)); t.listen(port, host, () => r(true)); });
    await new Promise<void>((r) => s.close(() => r()));
    if (ok) { await new Promise<void>((r) => t.close(() => r())); return port; }
  }
}

/**
 * Slow-drip guard for DNS over TCP: each message must arrive whole within `ms` of its first
 * byte. The idle timeout alone restarts on every byte, so a client sending one byte every few
 * seconds would hold its connection, and a slot of the connection limit, for ever. Call
 * `update` after every chunk with the framer's `pending` bytes and `completed` count; one timer
 * per connection, armed only while a message is incomplete.
 */
export class FrameDeadline {
  private timer: NodeJS.Timeout | null = null;
  private lastCompleted = 0;
  /**
   * `weArePaused`: true while the server itself stopped reading (too many queries outstanding);
   * the rest of the message is then waiting in our socket buffer, not on the client, and the
   * deadline starts over instead of cutting the client off.
   */
  constructor(private readonly ms: number, private readonly onExpire: () => void, private readonly weArePaused: () => boolean = () => false) {}

  update(pending: number, completed: number): void {
    const progressed = completed !== this.lastCompleted;
    this.lastCompleted = completed;
    if (pending === 0) { this.clear(); return; }
    // A message finished in this chunk and the next one began: its deadline starts now.
    if (progressed || this.timer === null) {
      this.arm();
    }
  }

  private arm(): void {
    this.clear();
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.weArePaused()) this.arm();
      else this.onExpire();
    }, this.ms);
  }

  clear(): void {
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null; }
  }
}
