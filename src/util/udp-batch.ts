/**
 * Batched UDP sockets over the native `udp_batch` addon (native/udp_batch.c): one recvmmsg per
 * wake-up, one JS call per batch, one sendmmsg for the replies queued during it. Node's dgram
 * pays a recvmsg, a JS callback with a fresh Buffer + rinfo, a lookup and a sendmsg per datagram,
 * which costs more CPU than dnsmasq spends on a whole query; this is the DNS hot path's way
 * around that. Used by the resolver (listeners and upstream sockets) and the balancer
 * (listeners and backend sockets); everything else keeps dgram.
 *
 * Replies queued while a batch is being dispatched go out with that batch's sendmmsg (or, for
 * another socket, in one sendmmsg right after the batch); outside a batch (a timer, a TCP
 * answer, anything that came through dgram) a send goes out at once.
 *
 * Addresses travel as words (family, port, a0..a3; see the C file) so the per-packet path neither
 * parses nor formats strings; the client address string a handler needs is formatted once per
 * distinct IPv4 address in a row (one client sending many queries costs nothing).
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isIP } from 'node:net';

type Handle = { readonly __brand: 'udp-batch-socket' };

interface Addon {
  open(family: 4 | 6, host: string, port: number, flags: number): Handle;
  localPort(h: Handle): number;
  connect(h: Handle, family: number, port: number, a0: number, a1: number, a2: number, a3: number): number;
  start(h: Handle, inBuf: Uint8Array, inMeta: Int32Array, outBuf: Uint8Array, outMeta: Int32Array, slots: number, slotSize: number, cb: (n: number) => number): void;
  flush(h: Handle, n: number): number;
  sendTo(h: Handle, buf: Uint8Array, len: number, family: number, port: number, a0: number, a1: number, a2: number, a3: number): number;
  close(h: Handle): void;
  idleThread(tid: number): number;
  rtThread?(tid: number, prio: number): number;
  loopIdleTime(on: boolean): number;
  burstStats(): [number, number, number, number];
  gsoStats(): [number, number, number];
  index(h: Handle): number;
  relay(h: Handle, route: Int32Array, claim: Int32Array, ring: Float64Array, tag: number): void;
  forward(h: Handle, tickets: Int32Array, times: Float64Array, arena: Uint8Array, book: (max: number) => number, bookNow: boolean, interleave?: boolean, blocks?: boolean): void;
  threadStart?(handles: Handle[], wake: () => void, sliceUs?: number): ThreadHandle;
  threadStop?(t: ThreadHandle): void;
  threadStats?(t: ThreadHandle): [number, number, number, number, number];
}

type ThreadHandle = { readonly __brand: 'udp-batch-thread' };

/** What a forwarding thread did (native/udp_batch.c, "The forwarding thread"). */
export interface ForwardThreadStats {
  running: boolean;
  /** Its epoll wake-ups, and the receive batches it read. */
  wakes: number;
  batches: number;
  /** Datagrams (and socket errors) it left to JS. */
  handed: number;
  /** Hand-offs it had to drop: JS's staging full, or left when it stopped. */
  dropped: number;
}

/**
 * A forwarding thread: the addon serves the given started sockets (a DNS service's forwarding
 * listeners and relay sockets) in a thread of its own, off Node's loop, and hands what needs JS
 * to their callbacks on the loop; `wake` runs on the loop after each hand-off and when the
 * tickets run low (the service books and refills there). stop() joins it and gives the sockets
 * back to the loop; closing any of them does too.
 */
export class ForwardThread {
  private constructor(private readonly a: Addon, private readonly t: ThreadHandle) {}

  /** `sliceUs` > 0: the thread asks EEVDF for that slice (Linux 6.6+; ignored where refused). */
  static start(sockets: BatchUdpSocket[], wake: () => void, sliceUs = 0): ForwardThread {
    const a = load();
    if (!a || typeof a.threadStart !== 'function') throw new Error('udp_batch addon without threadStart (npm run build:native)');
    return new ForwardThread(a, a.threadStart(sockets.map((s) => s.handle), wake, sliceUs));
  }

  stop(): void { this.a.threadStop!(this.t); }

  stats(): ForwardThreadStats {
    const [running, wakes, batches, handed, dropped] = this.a.threadStats!(this.t);
    return { running: running === 1, wakes, batches, handed, dropped };
  }
}

/** How UDP sockets on the DNS path are driven: `auto` = native when the addon loads, else dgram. */
export type UdpIoMode = 'auto' | 'native' | 'dgram';

let mode: UdpIoMode = (process.env.HADNS_UDP_IO as UdpIoMode | undefined) ?? 'auto';
let addon: Addon | null | undefined;
let loadError = '';

export function setUdpIoMode(m: UdpIoMode): void { mode = m; }

function load(): Addon | null {
  if (addon !== undefined) return addon;
  const here = dirname(fileURLToPath(import.meta.url));
  const paths = ['../..', '../../..'].map((up) => join(here, up, 'native', 'build', 'Release', 'udp_batch.node'));
  const path = paths.find((p) => existsSync(p));
  if (!path) { loadError = 'native addon udp_batch not built (npm run build:native)'; addon = null; return null; }
  try {
    addon = createRequire(import.meta.url)(path) as Addon;
  } catch (e) {
    loadError = `cannot load ${path}: ${(e as Error).message}`;
    addon = null;
  }
  return addon;
}

/**
 * SCHED_IDLE for thread `tid` of this process through the addon: 0 or an errno, or null when
 * the addon is not available (util/threads.ts then falls back to nice 19).
 */
export function idleThreadNative(tid: number): number | null {
  if (process.platform !== 'linux') return null;
  const a = load();
  return a && typeof a.idleThread === 'function' ? a.idleThread(tid) : null;
}

/**
 * SCHED_RR at `prio` (1..99) for thread `tid` of this process, or SCHED_OTHER with 0: 0 or an
 * errno; null without the addon (or an old build of it).
 */
export function rtThreadNative(tid: number, prio: number): number | null {
  if (process.platform !== 'linux') return null;
  const a = load();
  return a && typeof a.rtThread === 'function' ? a.rtThread(tid, prio) : null;
}

/**
 * Switches libuv's idle-time accounting (UV_METRICS_IDLE_TIME, which Node turns on) off or back
 * on. With it on, every time the loop would block libuv first polls with timeout 0 and then
 * waits: one more epoll_pwait per wake-up, two per balanced query. Nothing in hadns reads the
 * figure it keeps (performance.eventLoopUtilization(); it reads as fully busy while off).
 * Returns the previous setting, or null when the addon is not available or did not recognise
 * the loop's layout (then nothing changed). udp_batch.c, js_loop_idle_time, has the details.
 */
export function setLoopIdleTime(on: boolean): boolean | null {
  if (process.platform !== 'linux') return null;
  const a = load();
  if (!a || typeof a.loopIdleTime !== 'function') return null;
  const r = a.loopIdleTime(on);
  return r < 0 ? null : r === 1;
}

/**
 * What the daemon (node.ts) and the bench server do at start: idle-time accounting off when the
 * DNS path runs on the addon, unless HADNS_LOOP_IDLE_TIME=1. True when it is now off.
 */
export function dropLoopIdleTime(): boolean {
  if (process.env.HADNS_LOOP_IDLE_TIME === '1' || !useBatchUdp()) return false;
  return setLoopIdleTime(false) !== null;
}

/**
 * Counts, for this process, of query bursts on forwarding listeners sent with the backends'
 * answers relayed in between (udp_batch.c, flush_burst): bursts, answers relayed during them,
 * relay-socket batches that then waited for JS until the burst was out, and bursts laid out in
 * one block per backend (plan_blocks). Null without the addon.
 */
export function burstStats(): { bursts: number; relayedBetween: number; deferred: number; blocked: number } | null {
  const a = load();
  if (!a || typeof a.burstStats !== 'function') return null;
  const [bursts, relayedBetween, deferred, blocked] = a.burstStats();
  return { bursts, relayedBetween, deferred, blocked };
}

/**
 * Counts, for this process, of UDP GSO sends (udp_batch.c, flush_out): runs of datagrams to one
 * destination sent as one message the kernel cuts up (UDP_SEGMENT), the datagrams they carried,
 * and sockets on which the kernel refused GSO (they send plain datagrams from then on).
 * HADNS_UDP_GSO=0 turns GSO off. Null without the addon.
 */
export function gsoStats(): { messages: number; datagrams: number; refused: number } | null {
  const a = load();
  if (!a || typeof a.gsoStats !== 'function') return null;
  const [messages, datagrams, refused] = a.gsoStats();
  return { messages, datagrams, refused };
}

/** Whether batched sockets are to be used; `native` mode without the addon is an error. */
export function useBatchUdp(): boolean {
  if (mode === 'dgram' || process.platform !== 'linux') {
    if (mode === 'native') throw new Error('udp_io: native needs Linux');
    return false;
  }
  const a = load();
  if (!a && mode === 'native') throw new Error(`udp_io: native: ${loadError}`);
  return a !== null;
}

export const META = 8;
const DEFAULT_SLOTS = 64;
const DEFAULT_SLOT_SIZE = 4096;

/** Totals over every batched socket of the process (metrics: hadns_udp_*). */
export const udpTotals = { batches: 0, received: 0, oversized: 0, sent: 0, dropped: 0 };

/** What the DNS path's UDP runs on, for status and metrics. */
export function udpIoStatus(): { mode: 'native' | 'dgram' } & typeof udpTotals {
  let native = false;
  try { native = useBatchUdp(); } catch { native = false; }
  return { mode: native ? 'native' : 'dgram', ...udpTotals };
}

/** Sockets with replies queued during the batch of another socket; flushed when it ends. */
/** (A count, not `length = 0`, which would drop the backing store and reallocate it per batch.) */
const dirty: (BatchUdpSocket | null)[] = [];
let dirtyN = 0;
let depth = 0;
let current: BatchUdpSocket | null = null;
let seq = 0;

/** Sequence number of the batch being dispatched, or -1 outside any batch. */
export function batchSeq(): number { return depth > 0 ? seq : -1; }

/**
 * Copies data[0, len) to out[off…] without allocating: Buffer#copy and subarray both make a
 * view object for a partial copy, once per datagram. DNS messages are mostly a few hundred
 * bytes, where a plain loop is as fast as a native copy; longer ones take the native path.
 */
export function copyBytes(data: Uint8Array, len: number, out: Uint8Array, off: number): void {
  if (len > 256) { out.set(len === data.length ? data : data.subarray(0, len), off); return; }
  for (let i = 0; i < len; i++) out[off + i] = data[i]!;
}

export interface BindOptions {
  reuseAddr?: boolean;
  reusePort?: boolean;
  /** Bind an address this host does not hold (yet): IP_FREEBIND. */
  freebind?: boolean;
  slots?: number;
  slotSize?: number;
  /**
   * A short-lived socket (the resolver's upstream pool, replaced every ~1000 queries): no number
   * in the addon's registry (which never reuses its 16384 numbers; only relays need one), its
   * buffers taken from and given back to a free list instead of allocated per socket, and it
   * does not keep the event loop alive (as dgram's unref()).
   */
  transient?: boolean;
}

/** Buffers of closed transient sockets, by byte length, for the next ones (at most 64 each). */
const spareBuffers = new Map<number, Buffer[]>();

function takeBuffer(bytes: number, transient: boolean): Buffer {
  if (transient) {
    const b = spareBuffers.get(bytes)?.pop();
    if (b !== undefined) return b;
  }
  return Buffer.alloc(bytes);
}

function giveBuffer(b: Buffer): void {
  let list = spareBuffers.get(b.length);
  if (list === undefined) spareBuffers.set(b.length, list = []);
  if (list.length < 64) list.push(b);
}

export class BatchUdpSocket {
  readonly family: 4 | 6;
  readonly address: string;
  readonly port: number;
  /** Called for each datagram of a batch; `msg` is only valid during the call (copy to keep). */
  onMessage: (msg: Buffer, addr: string, port: number, slot: number) => void = () => {};
  /**
   * The allocation-free form of onMessage, used instead when set: `buf` is the whole receive
   * slot (a view made once at bind), the datagram is its first `len` bytes. A `subarray` per
   * datagram is a new Buffer object (about 90 bytes of young generation each); the balancer's
   * hot path uses this form so that it allocates nothing per query.
   */
  onSlot: ((buf: Buffer, len: number, addr: string, port: number, slot: number) => void) | null = null;
  /** Called once at the end of every batch, after the datagrams' callbacks. */
  onBatchEnd: (() => void) | null = null;
  /**
   * Called for a datagram larger than a slot (dropped otherwise, counted as truncated) with the
   * slot's view: its first `slotSize` bytes, enough for a DNS header and question. The resolver's
   * forwarder asks for such an answer again over TCP.
   */
  onTruncated: ((buf: Buffer, slot: number) => void) | null = null;
  /** A socket error reported by the kernel (errno), e.g. ECONNREFUSED on a connected socket. */
  onError: (errno: number) => void = () => {};
  /** Exceptions thrown by onMessage are caught (the batch goes on) and reported here. */
  onException: (e: unknown) => void = () => {};
  readonly stats = { batches: 0, received: 0, truncated: 0, sent: 0, dropped: 0 };
  /** This socket's number in the addon's registry (-1: none; then no relay can name it). */
  readonly index: number;
  /** Meta of the received batch: META ints per slot (len, family, port, a0..a3). */
  readonly inMeta: Int32Array;
  private readonly a: Addon;
  private readonly h: Handle;
  /** The addon's handle (for ForwardThread). */
  get handle(): Handle { return this.h; }
  private readonly inBuf: Buffer;
  /** One view per receive slot, for onSlot. */
  private readonly slotViews: Buffer[] = [];
  private readonly outBuf: Buffer;
  private readonly outMeta: Int32Array;
  private readonly slots: number;
  private readonly slotSize: number;
  private outCount = 0;
  private isDirty = false;
  private closed = false;
  private readonly transient: boolean;

  private constructor(a: Addon, h: Handle, family: 4 | 6, address: string, opts: BindOptions) {
    this.a = a;
    this.h = h;
    this.family = family;
    this.address = address;
    this.port = a.localPort(h);
    this.index = typeof a.index === 'function' ? a.index(h) : -1;
    this.slots = opts.slots ?? DEFAULT_SLOTS;
    this.slotSize = opts.slotSize ?? DEFAULT_SLOT_SIZE;
    this.transient = opts.transient === true;
    this.inBuf = takeBuffer(this.slots * this.slotSize, this.transient);
    this.outBuf = takeBuffer(this.slots * this.slotSize, this.transient);
    this.inMeta = new Int32Array(this.slots * META);
    this.outMeta = new Int32Array(this.slots * META);
    for (let i = 0; i < this.slots; i++) this.slotViews.push(this.inBuf.subarray(i * this.slotSize, (i + 1) * this.slotSize));
  }

  /** Binds a socket (throws with the reason). Receiving starts with `start()`. */
  static bind(host: string, port: number, opts: BindOptions = {}): BatchUdpSocket {
    const a = load();
    if (!a) throw new Error(loadError);
    const family = isIP(host) === 6 ? 6 : 4;
    const flags = (opts.reuseAddr ? 1 : 0) | (opts.reusePort ? 2 : 0) | (opts.freebind ? 4 : 0) | (family === 6 ? 8 : 0)
      | (opts.transient ? 16 | 32 : 0);
    const h = a.open(family, host, port, flags);
    return new BatchUdpSocket(a, h, family, host, opts);
  }

  /** An unbound-port socket connected to host:port (a backend): the kernel drops anyone else's datagrams. */
  static connect(host: string, port: number, opts: BindOptions = {}): BatchUdpSocket {
    const family = isIP(host) === 6 ? 6 : 4;
    const s = BatchUdpSocket.bind(family === 6 ? '::' : '0.0.0.0', 0, opts);
    const w = parseIp(host);
    if (!w) { s.close(); throw new Error(`bad address ${host}`); }
    const rc = s.a.connect(s.h, family, port, w[0], w[1], w[2], w[3]);
    if (rc !== 0) { s.close(); throw new Error(`cannot connect udp to ${host}:${port}: errno ${rc}`); }
    return s;
  }

  start(): this {
    this.a.start(this.h, this.inBuf, this.inMeta, this.outBuf, this.outMeta, this.slots, this.slotSize, this.onBatch);
    return this;
  }

  /**
   * Turns the reply relay on for this (upstream) socket: plain answers are sent on to clients by
   * the addon (src/balancer/relay.ts has the tables). Throws where the addon predates it.
   */
  enableRelay(route: Int32Array, claim: Int32Array, ring: Float64Array, tag: number): void {
    if (typeof this.a.relay !== 'function') throw new Error('udp_batch addon without relay (npm run build:native)');
    this.a.relay(this.h, route, claim, ring, tag);
  }

  /**
   * Turns query forwarding on for this listener: plain queries take a ticket from `tickets` and
   * leave from the addon without JS; their records (in `tickets`, `times` and `arena`) wait for
   * `book`, which the addon calls once the event loop has served every socket that was ready
   * (libuv's check phase), unless JS ran for the socket meanwhile (native/udp_batch.c, "Query
   * forwarding"; the balancer's side is in src/balancer/dns-proxy.ts). There `book(max)` books
   * at most `max` and returns how many it left; the addon calls again after the next poll, which
   * then does not block. `book(0)` (few tickets left, a local backend's query, `bookNow`: in the
   * wake-up itself) books all. `interleave`: a burst of 8 or more queries goes out with the
   * backends' answers relayed in between (udp_batch.c, flush_burst; burstStats() counts it);
   * `blocks`: such a burst goes to each backend as one block of consecutive queries, oldest
   * block first (udp_batch.c, plan_blocks). Throws where the addon predates it.
   */
  enableForward(tickets: Int32Array, times: Float64Array, arena: Uint8Array, book: (max: number) => number, bookNow = false, interleave = true, blocks = true): void {
    if (typeof this.a.forward !== 'function') throw new Error('udp_batch addon without forward (npm run build:native)');
    this.a.forward(this.h, tickets, times, arena, book, bookNow, interleave, blocks);
  }

  /** Counts datagrams the addon received and answered through the relay (never seen by onMessage). */
  countRelayed(received: number, sent: number): void {
    this.stats.received += received;
    this.stats.sent += sent;
    udpTotals.received += received;
    udpTotals.sent += sent;
  }

  private readonly onBatch = (n: number): number => {
    if (n < 0) {
      try { this.onError(-n); } catch (e) { this.onException(e); }
      return this.take();
    }
    this.stats.batches++;
    this.stats.received += n;
    udpTotals.batches++;
    udpTotals.received += n;
    const prev = current;
    current = this;
    if (depth++ === 0) seq++;
    const meta = this.inMeta;
    const size = this.slotSize;
    const onSlot = this.onSlot;
    for (let i = 0; i < n && !this.closed; i++) {
      const m = i * META;
      const len = meta[m];
      if (len < 0) {
        // Relayed (-2) or forwarded (-3) by the addon: counted when JS takes the completion / books the query.
        if (len === -2 || len === -3) { this.stats.received--; udpTotals.received--; continue; }
        this.stats.truncated++; udpTotals.oversized++;
        if (this.onTruncated !== null) {
          try { this.onTruncated(this.slotViews[i]!, i); } catch (e) { this.onException(e); }
        }
        continue;
      }
      const off = i * size;
      try {
        if (onSlot !== null) onSlot(this.slotViews[i]!, len, this.addressAt(m), meta[m + 2], i);
        else this.onMessage(this.inBuf.subarray(off, off + len), this.addressAt(m), meta[m + 2], i);
      } catch (e) {
        this.onException(e);
      }
    }
    if (this.onBatchEnd !== null) {
      try { this.onBatchEnd(); } catch (e) { this.onException(e); }
    }
    depth--;
    current = prev;
    if (depth === 0 && dirtyN > 0) {
      for (let k = 0; k < dirtyN; k++) {
        const s = dirty[k]!;
        dirty[k] = null;
        s.isDirty = false;
        if (s !== this) s.flushNow();
      }
      dirtyN = 0;
    }
    return this.closed ? 0 : this.take();
  };

  private take(): number {
    const k = this.outCount;
    this.outCount = 0;
    this.stats.sent += k; // sendmmsg's own failures are not reported back for this path (rare: full send buffer)
    udpTotals.sent += k;
    return k;
  }

  /** The client address of received slot `m` (meta index) as Node formats it. */
  private addressAt(m: number): string {
    const meta = this.inMeta;
    return formatWords(meta[m + 1], meta[m + 3], meta[m + 4], meta[m + 5], meta[m + 6]);
  }

  /** Queues a reply to the sender of received slot `slot` (valid during this batch only). */
  sendReply(slot: number, data: Uint8Array, len: number): void {
    const m = slot * META, meta = this.inMeta;
    this.sendWords(data, len, meta[m + 1], meta[m + 2], meta[m + 3], meta[m + 4], meta[m + 5], meta[m + 6]);
  }

  /** Queues a datagram to an address given as words (family 0 = the connected peer). */
  sendWords(data: Uint8Array, len: number, fam: number, port: number, a0: number, a1: number, a2: number, a3: number): void {
    if (this.closed) return;
    if (len > this.slotSize) {
      const r = this.a.sendTo(this.h, data, len, fam, port, a0, a1, a2, a3);
      if (r < 0) { this.stats.dropped++; udpTotals.dropped++; } else { this.stats.sent++; udpTotals.sent++; }
      return;
    }
    if (this.outCount === this.slots) this.flushNow();
    const k = this.outCount++;
    const off = k * this.slotSize;
    copyBytes(data, len, this.outBuf, off);
    const m = k * META, meta = this.outMeta;
    meta[m] = len; meta[m + 1] = fam; meta[m + 2] = port;
    meta[m + 3] = a0; meta[m + 4] = a1; meta[m + 5] = a2; meta[m + 6] = a3;
    if (depth === 0) this.flushNow();
    else if (this !== current && !this.isDirty) { this.isDirty = true; dirty[dirtyN++] = this; }
  }

  /** Sends to a literal address (parsed here: for the slow paths). */
  send(data: Uint8Array, len: number, addr: string, port: number): void {
    const w = parseIp(addr);
    if (!w) { this.stats.dropped++; udpTotals.dropped++; return; }
    this.sendWords(data, len, isIP(addr) === 6 ? 6 : 4, port, w[0], w[1], w[2], w[3]);
  }

  /** Sends to the connected peer. */
  sendConnected(data: Uint8Array, len: number): void { this.sendWords(data, len, 0, 0, 0, 0, 0, 0); }

  private flushNow(): void {
    const k = this.outCount;
    if (k === 0) return;
    this.outCount = 0;
    const sent = this.closed ? 0 : this.a.flush(this.h, k);
    this.stats.sent += sent;
    this.stats.dropped += k - sent;
    udpTotals.sent += sent;
    udpTotals.dropped += k - sent;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.outCount = 0;
    this.a.close(this.h);
    // The addon no longer reads or writes them (its poll is stopped): the next socket may.
    if (this.transient) { giveBuffer(this.inBuf); giveBuffer(this.outBuf); }
  }
}

/** The last IPv4 address formatted: a client's queries tend to come in runs. */
let lastA = -1;
let lastS = '';

/**
 * An address given as words (family 4: a0 is the address; 6: four big-endian words) as Node
 * formats it; an IPv4 address is formatted once per run of datagrams from it.
 */
export function formatWords(fam: number, a0: number, a1: number, a2: number, a3: number): string {
  if (fam === 4) {
    if (a0 !== lastA) {
      lastA = a0;
      lastS = `${(a0 >>> 24) & 255}.${(a0 >>> 16) & 255}.${(a0 >>> 8) & 255}.${a0 & 255}`;
    }
    return lastS;
  }
  return formatIp6(a0, a1, a2, a3);
}

/** Parses an IPv4 or IPv6 literal into 4 words (IPv4 in word 0), or null. */
export function parseIp(s: string): [number, number, number, number] | null {
  const v = isIP(s);
  if (v === 4) {
    const p = s.split('.');
    return [((+p[0] << 24) | (+p[1] << 16) | (+p[2] << 8) | +p[3]) | 0, 0, 0, 0];
  }
  if (v !== 6) return null;
  let str = s;
  const pct = str.indexOf('%');
  if (pct >= 0) str = str.slice(0, pct);
  const groups: number[] = [];
  const parseSide = (side: string): number[] | null => {
    if (side === '') return [];
    const out: number[] = [];
    for (const part of side.split(':')) {
      if (part.includes('.')) {
        const w = parseIp(part);
        if (!w) return null;
        out.push((w[0] >>> 16) & 0xffff, w[0] & 0xffff);
      } else out.push(parseInt(part, 16));
    }
    return out;
  };
  const dbl = str.indexOf('::');
  if (dbl >= 0) {
    const l = parseSide(str.slice(0, dbl)), r = parseSide(str.slice(dbl + 2));
    if (!l || !r) return null;
    groups.push(...l, ...new Array(8 - l.length - r.length).fill(0), ...r);
  } else {
    const all = parseSide(str);
    if (!all) return null;
    groups.push(...all);
  }
  if (groups.length !== 8) return null;
  return [0, 1, 2, 3].map((i) => ((groups[2 * i] << 16) | groups[2 * i + 1]) | 0) as [number, number, number, number];
}

/** Formats 4 words as Node prints IPv6 addresses (RFC 5952: lower case, longest zero run as ::). */
export function formatIp6(a0: number, a1: number, a2: number, a3: number): string {
  const g = [a0 >>> 16, a0 & 0xffff, a1 >>> 16, a1 & 0xffff, a2 >>> 16, a2 & 0xffff, a3 >>> 16, a3 & 0xffff];
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${g[6] >>> 8}.${g[6] & 255}.${g[7] >>> 8}.${g[7] & 255}`;
  }
  let bestAt = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { bestAt = i; bestLen = j - i; }
    i = j;
  }
  const hex = (xs: number[]): string => xs.map((x) => x.toString(16)).join(':');
  if (bestAt < 0) return hex(g);
  return `${hex(g.slice(0, bestAt))}::${hex(g.slice(bestAt + bestLen))}`;
}
