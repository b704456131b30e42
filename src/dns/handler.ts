/**
 * The contract between DNS front ends (UDP/TCP listeners, the balancer) and whatever answers
 * queries (the resolver). The balancer uses it for a `local` backend: a node reaches its own
 * in-process resolver by a function call instead of a socket round trip.
 */
export interface QueryContext {
  /** Client address as seen by the listener (IPv4 dotted or IPv6). */
  clientAddress: string;
  clientPort: number;
  transport: 'udp' | 'tcp';
  /** Largest response the transport may carry (UDP: the client's limit; TCP: 65535). */
  maxSize?: number;
}

/**
 * Called at most once per query, possibly synchronously, with the response bytes (a hung
 * handler — the lab's resolver-dead fault — never calls it; callers must time out). The buffer
 * may be reused by the handler after `reply` returns: copy it if you keep it. `len` is 0 when
 * the query is dropped on purpose (no reply at all).
 */
export type Reply = (resp: Uint8Array, len: number) => void;

export interface DnsHandler {
  /**
   * The query is msg[0, len) (len defaults to msg.length, so a caller holding a larger buffer, a
   * receive slot say, needs no view of it); msg is only valid during the call.
   */
  handle(msg: Buffer, ctx: QueryContext, reply: Reply, len?: number): void;
}
