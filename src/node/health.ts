/**
 * Health feeds VRRP: the node checks that it can serve DNS and tells the VRRP engine, so a node
 * that cannot serve gives its VIPs away (FAULT, or a priority drop) and takes them back when it
 * recovers. keepalived's track_script runs a shell script and races with the service it checks;
 * here the check is a real DNS query through the node's own sockets plus the balancer's view of
 * its backends, with rise/fall hysteresis.
 */
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { buildQuery } from '../dns/message.js';
import { readId } from '../dns/wire.js';

/** Pure rise/fall hysteresis. */
export class Hysteresis {
  private good = 0;
  private bad = 0;
  constructor(public up: boolean, private readonly rise: number, private readonly fall: number) {}
  /** Feeds one result; returns true when the state flipped. */
  push(ok: boolean): boolean {
    if (ok) { this.good++; this.bad = 0; } else { this.bad++; this.good = 0; }
    if (this.up && this.bad >= this.fall) { this.up = false; return true; }
    if (!this.up && this.good >= this.rise) { this.up = true; return true; }
    return false;
  }
}

/** Sends one probe query to host:port over UDP; resolves true on any answer with our ID. */
export function probeDns(host: string, port: number, name: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
    const id = Math.floor(Math.random() * 65536);
    let done = false;
    const finish = (ok: boolean) => { if (done) return; done = true; clearTimeout(t); try { sock.close(); } catch { /* closed */ } resolve(ok); };
    const t = setTimeout(() => finish(false), timeoutMs);
    sock.on('error', () => finish(false));
    sock.on('message', (m) => { if (m.length >= 12 && readId(m) === id) finish(true); });
    const connectHost = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
    sock.send(buildQuery(name, 'A', { id }), port, connectHost);
  });
}
