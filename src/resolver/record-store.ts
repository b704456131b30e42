/**
 * Records added through the API: kept in a JSON file under node.state_dir (written atomically:
 * temp file + rename), or in memory when no state dir is set. Each record carries the time and
 * node of its last change, and deletions leave a tombstone, so two nodes can merge their sets
 * (last writer wins, ties broken by node name) — see the HA node's record sync.
 */
import { readFileSync, writeFileSync, renameSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { recordData } from '../dns/records.js';
import { RECORD_TYPES } from '../config/schema.js';

export interface StoredRecord {
  name: string;
  type: string;
  value: string | string[];
  ttl?: number;
  /** Last change, ms since the epoch. */
  updatedAt: number;
  /** Node that made the last change. */
  node: string;
  deleted?: boolean;
}

export function recordId(r: { name: string; type: string; value: string | string[] }): string {
  const v = Array.isArray(r.value) ? r.value.join(' ') : r.value;
  return `${r.name.toLowerCase().replace(/\.$/, '')}/${r.type.toUpperCase()}/${v}`;
}

/** Validates a record from an API caller; throws an Error with a clear message. */
export function validateRecord(r: { name?: unknown; type?: unknown; value?: unknown; ttl?: unknown }): { name: string; type: string; value: string | string[]; ttl?: number } {
  if (typeof r.name !== 'string' || !/^[A-Za-z0-9_*]([A-Za-z0-9_\-.]*[A-Za-z0-9_])?\.?$/.test(r.name) || r.name.length > 253) {
    throw new Error('name: expected a domain name such as app.corp.example');
  }
  const type = typeof r.type === 'string' ? r.type.toUpperCase() : '';
  if (!(RECORD_TYPES as readonly string[]).includes(type)) throw new Error(`type: must be one of ${RECORD_TYPES.join(', ')}`);
  const value = r.value;
  if (typeof value !== 'string' && !(Array.isArray(value) && value.every((x) => typeof x === 'string'))) throw new Error('value: expected a string');
  try { recordData(type, value as string | string[]); } catch (e) { throw new Error(`value: ${(e as Error).message}`); }
  let ttl: number | undefined;
  if (r.ttl !== undefined && r.ttl !== null && r.ttl !== '') {
    ttl = Number(r.ttl);
    if (!Number.isInteger(ttl) || ttl < 0 || ttl > 2147483647) throw new Error('ttl: expected a whole number of seconds');
  }
  return { name: r.name.toLowerCase().replace(/\.$/, ''), type, value: value as string | string[], ...(ttl !== undefined ? { ttl } : {}) };
}

export class RecordStore {
  private readonly map = new Map<string, StoredRecord>();

  constructor(readonly file: string | null, readonly nodeName: string, private readonly now: () => number = Date.now) {}

  /** Loads the file; a missing file is an empty store, a corrupt one is an error (never overwritten). */
  load(): void {
    if (!this.file) return;
    let text: string;
    try { text = readFileSync(this.file, 'utf8'); } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    const data = JSON.parse(text) as { records?: StoredRecord[] };
    for (const r of data.records ?? []) this.map.set(recordId(r), r);
  }

  private save(): void {
    if (!this.file) return;
    mkdirSync(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify({ version: 1, records: [...this.map.values()] }, null, 1));
    renameSync(tmp, this.file);
  }

  /** Live records (no tombstones). */
  list(): StoredRecord[] { return [...this.map.values()].filter((r) => !r.deleted); }
  /** Everything, tombstones included (for replication). */
  all(): StoredRecord[] { return [...this.map.values()]; }

  add(input: { name: string; type: string; value: string | string[]; ttl?: number }): StoredRecord {
    const r = validateRecord(input);
    const rec: StoredRecord = { ...r, updatedAt: this.now(), node: this.nodeName };
    this.map.set(recordId(rec), rec);
    this.save();
    return rec;
  }

  remove(id: string): boolean {
    const cur = this.map.get(id);
    if (!cur || cur.deleted) return false;
    this.map.set(id, { ...cur, deleted: true, updatedAt: this.now(), node: this.nodeName });
    this.save();
    return true;
  }

  /**
   * Merges records from a peer: for each id the later change wins (ties: higher node name).
   * Returns how many entries changed here.
   */
  merge(remote: StoredRecord[]): number {
    let changed = 0;
    for (const r of remote) {
      const id = recordId(r);
      const cur = this.map.get(id);
      if (!cur || r.updatedAt > cur.updatedAt || (r.updatedAt === cur.updatedAt && r.node > cur.node)) {
        if (cur && cur.updatedAt === r.updatedAt && cur.node === r.node && !!cur.deleted === !!r.deleted) continue;
        this.map.set(id, r);
        changed++;
      }
    }
    if (changed) this.save();
    return changed;
  }
}
