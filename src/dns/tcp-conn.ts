/**
 * One client connection of a DNS-over-TCP listener (RFC 7766): the part the resolver's and the
 * balancer's listeners share. Framing; pipelined queries with a bound on the outstanding ones
 * (reading pauses at the bound); the idle timeout, and the per-message deadline against a client
 * that drips its bytes (util/net.ts FrameDeadline); half-close: a client that shuts its side
 * after its queries still gets every answer, then the connection ends. A thin shell: the owner
 * decides what a query is and when it is done.
 */
import type net from 'node:net';
import { TcpFramer, tcpFrame } from './wire.js';
import { FrameDeadline } from '../util/net.js';

export class DnsTcpConn {
  /** Queries taken with `began` and not yet `finished`. */
  outstanding = 0;
  closed = false;
  /** The client half-closed: our side ends once nothing is outstanding. */
  private readEnded = false;

  constructor(
    readonly sock: net.Socket,
    private readonly maxOutstanding: number,
    idleMs: number,
    onQuery: (msg: Buffer, conn: DnsTcpConn) => void,
    onClose: (conn: DnsTcpConn) => void,
  ) {
    sock.setNoDelay(true);
    sock.setTimeout(idleMs, () => sock.destroy());
    const framer = new TcpFramer((msg) => onQuery(msg, this));
    const deadline = new FrameDeadline(idleMs, () => sock.destroy(), () => sock.isPaused());
    sock.on('data', (chunk) => {
      if (!framer.push(chunk)) { sock.destroy(); return; }
      deadline.update(framer.pending, framer.completed);
    });
    sock.on('end', () => { this.readEnded = true; if (this.outstanding === 0) sock.end(); });
    sock.on('error', () => { /* reset by peer */ });
    sock.on('close', () => { this.closed = true; deadline.clear(); onClose(this); });
  }

  /** The owner took a query that will be answered later; it calls `finished` once it is. */
  began(): void {
    if (++this.outstanding >= this.maxOutstanding) this.sock.pause();
  }

  /** Writes one answer, framed (a copy: `msg` may be reused), unless the connection is gone. */
  write(msg: Uint8Array, len: number): void {
    if (!this.closed) this.sock.write(tcpFrame(msg, len));
  }

  /** A query taken with `began` is done, answered or dropped. */
  finished(): void {
    this.outstanding--;
    if (this.closed) return;
    if (this.readEnded && this.outstanding === 0) this.sock.end();
    else if (this.outstanding < this.maxOutstanding && this.sock.isPaused()) this.sock.resume();
  }
}
