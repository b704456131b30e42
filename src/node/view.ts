/**
 * What operators' tools (metrics, JSON API, console, `hadns status`) may read from and ask of a
 * running node. observe/ depends on this interface only, never on services directly; node/
 * implements it. Everything returned is plain JSON-serialisable data.
 */
import type { RealtimeStatus } from '../util/threads.js';

export interface UpstreamView {
  label: string;
  group: string; // '' for the default group, else the forward domain
  srttMs: number;
  failures: number;
  sent: number;
  answered: number;
  /** Round-trip times of answers (fixed buckets, ms). */
  rtt?: import('../util/histogram.js').HistogramView;
}

export interface ResolverView {
  listen: string[];
  queries: number;
  bySource: Record<string, number>;
  byRcode: Record<string, number>;
  byType: Record<string, number>;
  /** Queries received per listener ("udp://127.0.0.1:53"). */
  byListener?: Record<string, number>;
  aclDrops: number;
  inflight: number;
  inflightRefused: number;
  localNames: number;
  cache: { entries: number; bytes: number; hits: number; misses: number; staleHits: number; inserts: number; evictions: number };
  forwarder: { sent: number; answers: number; timeouts: number; tcpRetries: number; rejected: number; socketErrors: number };
  upstreams: UpstreamView[];
}

export interface NodeEvent {
  /** Milliseconds since the epoch. */
  time: number;
  kind: 'start' | 'stop' | 'reload' | 'reload-failed' | 'config-error' | 'health' | 'vrrp' | 'records' | 'sync';
  message: string;
  data?: Record<string, unknown>;
}

export interface LocalRecordView {
  /** Stable id: name/type/value. */
  id: string;
  name: string;
  type: string;
  value: string | string[];
  ttl?: number;
  /** Where it comes from: 'api' records can be edited, 'config'/'hosts' ones are read-only. */
  origin: 'api' | 'config' | 'hosts';
}

export interface NodeStatus {
  node: string;
  version: string;
  startedAt: number;
  uptimeSec: number;
  ready: boolean;
  resolver: ResolverView | null;
  /** Filled by the balancer and VRRP services when configured. */
  balancer?: unknown;
  vrrp?: unknown;
  /** The DNS path's UDP I/O: batched native sockets or Node's dgram, with batched-socket totals. */
  udpIo?: { mode: 'native' | 'dgram'; batches: number; received: number; oversized: number; sent: number; dropped: number };
  /** node.realtime_priority: asked for and in force, why not, if not (util/threads.ts). */
  scheduling?: RealtimeStatus;
  /** The node's own DNS health, as fed to VRRP. */
  health?: { ok: boolean; detail: string };
  peer?: unknown;
}

export interface NodeView {
  readonly name: string;
  status(): NodeStatus;
  /** Whether the node can serve DNS now (for /ready). */
  ready(): boolean;
  /** Recent events, newest last (bounded ring). */
  events(limit?: number): NodeEvent[];
  /** Subscribe to new events (console live view); returns an unsubscribe function. */
  onEvent(fn: (e: NodeEvent) => void): () => void;
  /** Recent query log entries (bounded ring; empty when the query log is off). */
  queries(limit?: number, filter?: string): unknown[];
  records: {
    list(): LocalRecordView[];
    /** Adds an API record; rejects with a clear message on a bad value. */
    add(r: { name: string; type: string; value: string | string[]; ttl?: number }): Promise<LocalRecordView>;
    remove(id: string): Promise<boolean>;
    update(id: string, r: { name: string; type: string; value: string | string[]; ttl?: number }): Promise<LocalRecordView>;
    /**
     * Peer sync (POST /api/v1/sync/records): merges a peer's full record set (tombstones
     * included) and returns ours after the merge. Throws on malformed input.
     */
    exchange(from: string, records: unknown): Promise<{ node: string; records: unknown[] }>;
  };
}
