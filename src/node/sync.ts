/**
 * Keeps the local records added through the API identical on both nodes of a pair.
 *
 * Each node sends its whole record set — tombstones included — to every peer's API
 * (POST /api/v1/sync/records, bearer token) after each local change and every `intervalMs`,
 * and merges the peer's set from the reply: one round trip syncs both ways, and a node that was
 * down catches up at its first exchange. Conflicts are settled per record by the later change
 * (ties: the higher node name), the same rule on both nodes, so they converge; an edit is a
 * delete plus an add, so two different concurrent edits of one record leave both new values for
 * an operator to see (status shows whether the pair is in sync). Sets are small (operator-edited
 * records), so sending them whole is simpler and safer than deltas.
 */
import { createHash } from 'node:crypto';
import { validateRecord, type RecordStore, type StoredRecord } from '../resolver/record-store.js';

export interface Peer { name: string; api: string }

export interface PeerSyncStatus {
  name: string;
  api: string;
  lastOk: number | null;
  lastError: string | null;
  /** Whether the peer's live records equal ours after the last exchange. */
  inSync: boolean | null;
}

export interface SyncLog { info(o: object, m: string): void; warn(o: object, m: string): void }

/** Digest of the live record set (order-independent) to compare two nodes. */
export function recordsDigest(records: StoredRecord[]): string {
  const lines = records.filter((r) => !r.deleted).map((r) => JSON.stringify([r.name, r.type, r.value, r.ttl ?? null])).sort();
  return createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, 16);
}

/** Shape check for records from the network (a lying peer must not corrupt the store). */
export function sanitizeRemote(input: unknown): StoredRecord[] {
  if (!Array.isArray(input)) throw new Error('records: expected a list');
  return input.map((r, i) => {
    const o = r as Record<string, unknown>;
    if (!o || typeof o.name !== 'string' || typeof o.type !== 'string' || (typeof o.value !== 'string' && !Array.isArray(o.value))
      || typeof o.updatedAt !== 'number' || !Number.isFinite(o.updatedAt) || typeof o.node !== 'string') {
      throw new Error(`records[${i}]: not a record`);
    }
    let v;
    try { v = validateRecord(o); } catch (e) { throw new Error(`records[${i}]: ${(e as Error).message}`); }
    return { ...v, updatedAt: o.updatedAt, node: o.node, ...(o.deleted === true ? { deleted: true } : {}) };
  });
}

export class PeerSync {
  private readonly state = new Map<string, PeerSyncStatus>();
  private timer: NodeJS.Timeout | null = null;
  private kickTimer: NodeJS.Timeout | null = null;
  private running = false;
  private again = false;

  constructor(
    private readonly node: string,
    private readonly peers: Peer[],
    private readonly token: string | null,
    private readonly store: RecordStore,
    /** Merges remote records (validating each); returns how many changed here. */
    private readonly merge: (records: StoredRecord[]) => Promise<number>,
    private readonly log: SyncLog,
    private readonly intervalMs = 5000,
    private readonly timeoutMs = 2000,
  ) {
    for (const p of peers) this.state.set(p.name, { name: p.name, api: p.api, lastOk: null, lastError: null, inSync: null });
  }

  start(): void {
    if (!this.peers.length) return;
    if (!this.token) this.log.warn({}, 'node.peers is set but api has no token: records cannot be synced');
    this.timer = setInterval(() => void this.runAll(), this.intervalMs);
    this.timer.unref();
    this.kick();
  }

  /** A local change: exchange soon (debounced). */
  kick(): void {
    if (!this.peers.length || this.kickTimer) return;
    this.kickTimer = setTimeout(() => { this.kickTimer = null; void this.runAll(); }, 50);
  }

  status(): { digest: string; peers: PeerSyncStatus[] } {
    return { digest: recordsDigest(this.store.all()), peers: [...this.state.values()].map((s) => ({ ...s })) };
  }

  private async runAll(): Promise<void> {
    if (this.running) { this.again = true; return; }
    this.running = true;
    try {
      do {
        this.again = false;
        await Promise.all(this.peers.map((p) => this.exchange(p)));
      } while (this.again);
    } finally { this.running = false; }
  }

  private async exchange(p: Peer): Promise<void> {
    const st = this.state.get(p.name)!;
    if (!this.token) { st.lastError = 'no api token configured'; return; }
    try {
      const res = await fetch(new URL('/api/v1/sync/records', p.api), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${this.token}` },
        body: JSON.stringify({ node: this.node, records: this.store.all() }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`);
      const body = await res.json() as { records?: unknown; digest?: string };
      const remote = sanitizeRemote(body.records);
      const changed = await this.merge(remote);
      if (changed) this.log.info({ peer: p.name, changed }, 'records synced from peer');
      const wasError = st.lastError;
      st.lastOk = Date.now();
      st.lastError = null;
      st.inSync = recordsDigest(remote) === recordsDigest(this.store.all());
      if (wasError) this.log.info({ peer: p.name }, 'peer reachable again');
    } catch (e) {
      const msg = (e as Error).message;
      if (st.lastError !== msg) this.log.warn({ peer: p.name, error: msg }, 'record sync with peer failed');
      st.lastError = msg;
      st.inSync = false;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.kickTimer) clearTimeout(this.kickTimer);
    this.timer = null;
    this.kickTimer = null;
  }
}
