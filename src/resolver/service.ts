/**
 * The resolver service: builds the pipeline's tables from config and files, owns the listeners,
 * watches hosts files and the resolv-file, and reloads atomically (a failed reload keeps the old
 * tables serving). The cache survives a reload unless the upstreams changed.
 */
import { readFileSync, statSync, readdirSync, openSync, fstatSync, readSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { networkInterfaces } from 'node:os';
import type { Logger } from 'pino';
import type { LocalRecordConfig, ResolverConfig } from '../config/schema.js';
import { parseHostPort } from '../config/schema.js';
import type { Diagnostic } from '../config/diagnostics.js';
import { HostsTable } from './hosts-table.js';
import { LocalData } from './local.js';
import { PacketCache } from './cache.js';
import { UpstreamGroup, parseResolvConf, type Server } from './upstreams.js';
import { Forwarder } from './forwarder.js';
import { Resolver, type QueryLogEntry, type Tables } from './resolver.js';
import { buildAcl } from './acl.js';
import { DnsListeners, type BoundAddress } from './listeners.js';

export interface BuildResult {
  tables: Tables;
  diagnostics: Diagnostic[];
  /** Files to watch (hosts files, resolv-file). */
  watch: string[];
  /** Each watched file's identity (mtime, size, inode) taken just before it was read. */
  stamps: Map<string, string>;
  /** Identity of the upstream set, to decide whether the cache survives a reload. */
  upstreamKey: string;
}

function server(s: string): Server {
  const hp = parseHostPort(s, 53)!;
  return { host: hp.host, port: hp.port, label: hp.port === 53 ? hp.host : `${hp.host}#${hp.port}` };
}

/** What a file looks like on disk now; a change of it means the file must be read again. */
export function fileStamp(path: string): string {
  try { const st = statSync(path); return `${st.mtimeMs}:${st.size}:${st.ino}`; } catch { return 'missing'; }
}

/** Expands a hosts path that may be a directory (dnsmasq addn-hosts accepts both). */
function hostsFilesOf(path: string): string[] {
  try {
    if (statSync(path).isDirectory()) {
      return readdirSync(path).filter((f) => !f.startsWith('.') && !f.endsWith('~')).sort().map((f) => join(path, f));
    }
  } catch { /* reported when read */ }
  return [path];
}

/** Reads a file: its bytes (text from tests is taken as UTF-8). Left out: the files on disk. */
type ReadFile = (p: string) => Uint8Array | string;
const bytesOf = (x: Uint8Array | string): Uint8Array => (typeof x === 'string' ? Buffer.from(x, 'utf8') : x);
const textOf = (x: Uint8Array | string): string => (typeof x === 'string' ? x : new TextDecoder().decode(x));
/** Hosts lines scanned into the table between two yields of buildSteps. */
const HOSTS_SLICE = 1024;

/**
 * Reads files and builds the tables; never throws for a bad file (reported, the rest loads).
 * `hosts`: the hosts part of the current tables, to keep instead of re-reading the files (when
 * only records changed, e.g. an API write); its warnings were given when it was built.
 */
export function buildTables(cfg: ResolverConfig, read?: ReadFile, apiRecords: LocalRecordConfig[] = [], hosts?: HostsTable): BuildResult {
  const steps = buildSteps(cfg, read, apiRecords, hosts);
  for (;;) { const r = steps.next(); if (r.done) return r.value; }
}

/**
 * The same, giving the event loop a turn between steps (a file read 256 KB at a time, 1024 hosts
 * lines added at a time): a block list of 200k lines takes ~0.3 s to build here (1.5–3 s before
 * the typed-array table), and built in one go it stopped every answer of the process (resolver
 * and balancer) that long on every reload. Yields with setImmediate, so queries, timers and
 * signals are served between steps (a warm step is at most ~3 ms here).
 */
export async function buildTablesAsync(cfg: ResolverConfig, read?: ReadFile, apiRecords: LocalRecordConfig[] = [], hosts?: HostsTable): Promise<BuildResult> {
  const steps = buildSteps(cfg, read, apiRecords, hosts);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** Where the next slice of `lines` lines of buf starts (after a newline), or buf.length. */
function sliceEnd(buf: Uint8Array, from: number, lines: number): number {
  let at = from;
  for (let k = 0; k < lines; k++) {
    const nl = buf.indexOf(10, at);
    if (nl < 0) return buf.length;
    at = nl + 1;
  }
  return at;
}

/**
 * A file's bytes, read 256 KB a step: a 5 MB block list read at once held the event loop 17 ms
 * here (the fresh buffer's pages are faulted in as it fills).
 */
function* readInSteps(path: string): Generator<void, Uint8Array> {
  const fd = openSync(path, 'r');
  try {
    let buf = Buffer.allocUnsafeSlow(fstatSync(fd).size);
    let n = 0;
    for (;;) {
      if (n === buf.length) {
        // As large as it was: the end, unless it grew while being read.
        const probe = Buffer.allocUnsafe(READ_STEP);
        const got = readSync(fd, probe, 0, READ_STEP, null);
        if (got === 0) return buf;
        const more = Buffer.allocUnsafeSlow(2 * buf.length + got);
        buf.copy(more, 0, 0, n);
        probe.copy(more, n, 0, got);
        buf = more;
        n += got;
      }
      const got = readSync(fd, buf, n, Math.min(READ_STEP, buf.length - n), null);
      if (got === 0) return buf.subarray(0, n);
      n += got;
      yield;
    }
  } finally {
    closeSync(fd);
  }
}
const READ_STEP = 256 * 1024;

/** Reads the hosts files into a table, yielding after every slice of lines. */
function* readHosts(paths: string[], read: ReadFile | undefined): Generator<void, HostsTable> {
  const table = new HostsTable();
  for (const p of paths) {
    table.stamps.set(p, fileStamp(p));
    for (const f of hostsFilesOf(p)) {
      let buf: Uint8Array;
      try {
        buf = read ? bytesOf(read(f)) : yield* readInSteps(f);
      } catch (e) {
        table.diagnostics.push({ file: f, line: 1, severity: 'warning', message: `cannot read hosts file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` });
        continue;
      }
      const bom = buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0;
      // Counted first (a turn given every 16k lines), so that the table makes room once.
      let lines = 1;
      for (let nl = buf.indexOf(10); nl >= 0; nl = buf.indexOf(10, nl + 1)) if (++lines % 16384 === 0) yield;
      yield* table.reserving(lines);
      for (let at = bom, line = 1; at < buf.length; line += HOSTS_SLICE) {
        const end = sliceEnd(buf, at, HOSTS_SLICE);
        table.addText(buf, at, end, f, line);
        at = end;
        yield;
      }
    }
  }
  return table;
}

function* buildSteps(cfg: ResolverConfig, read: ReadFile | undefined, apiRecords: LocalRecordConfig[], reuse?: HostsTable): Generator<void, BuildResult> {
  const diagnostics: Diagnostic[] = [];
  const watch: string[] = [];
  const stamps = new Map<string, string>();
  const hosts = reuse ?? (yield* readHosts(cfg.hosts_files, read));
  if (!reuse) for (const d of hosts.diagnostics) diagnostics.push(d);
  // Stamps of when the files were read: a change since is seen by the watcher, also when the
  // table was kept.
  for (const [p, stamp] of hosts.stamps) { watch.push(p); stamps.set(p, stamp); }
  const local = new LocalData({
    records: [...cfg.records, ...apiRecords], hosts, wildcards: cfg.wildcards, localDomains: cfg.local_domains, localTtl: cfg.local_ttl,
  });
  for (const d of local.diagnostics) diagnostics.push(d);

  const servers = cfg.upstreams.servers.slice();
  if (cfg.upstreams.resolv_file) {
    watch.push(cfg.upstreams.resolv_file);
    stamps.set(cfg.upstreams.resolv_file, fileStamp(cfg.upstreams.resolv_file));
    try {
      for (const ns of parseResolvConf(read ? textOf(read(cfg.upstreams.resolv_file)) : readFileSync(cfg.upstreams.resolv_file, 'utf8'))) {
        if (parseHostPort(ns, 53)) servers.push(ns);
      }
    } catch (e) {
      diagnostics.push({ file: cfg.upstreams.resolv_file, line: 1, severity: 'warning', message: `cannot read resolv-file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` });
    }
  }
  // Never forward to ourselves (a resolv.conf naming 127.0.0.1 while we listen there would loop).
  const own = new Set(cfg.listen.map((l) => { const hp = parseHostPort(l, 53)!; return `${hp.host}#${hp.port}`; }));
  const defaultServers = [...new Set(servers)].map(server).filter((s) => !own.has(`${s.host}#${s.port}`));
  const opts = { probeEvery: 50, probeIntervalMs: 20_000 };
  const defaultGroup = new UpstreamGroup(defaultServers, cfg.upstreams.strategy, opts);
  const forward = new Map<string, UpstreamGroup>();
  for (const f of cfg.forward) {
    const d = f.domain.toLowerCase().replace(/\.$/, '');
    forward.set(d, f.servers.length ? new UpstreamGroup(f.servers.map(server), f.strategy ?? cfg.upstreams.strategy, opts) : defaultGroup);
  }
  if (defaultServers.length === 0 && cfg.forward.length === 0) {
    diagnostics.push({ file: cfg.upstreams.resolv_file ?? '<config>', line: 1, severity: 'warning', message: 'no upstream servers: only local data will be answered' });
  }
  const tables: Tables = {
    local, defaultGroup, forward, domainNeeded: cfg.domain_needed, bogusPriv: cfg.bogus_priv,
    acl: buildAcl(cfg.acl), maxInflight: cfg.max_inflight,
  };
  const upstreamKey = JSON.stringify([defaultServers.map((s) => s.label), cfg.upstreams.strategy,
    cfg.forward.map((f) => [f.domain, f.servers])]);
  return { tables, diagnostics, watch, stamps, upstreamKey };
}

/** Listen addresses: configured ones plus every address of the configured interfaces. */
export function listenAddresses(cfg: ResolverConfig): string[] {
  const out = cfg.listen.slice();
  const port = cfg.listen.length ? parseHostPort(cfg.listen[0], 53)!.port : 53;
  const ifs = networkInterfaces();
  for (const name of cfg.interfaces) {
    for (const ni of ifs[name] ?? []) {
      if (ni.family === 'IPv6' && ni.scopeid) continue; // link-local needs a scope: skip
      out.push(ni.family === 'IPv6' ? `[${ni.address}]:${port}` : `${ni.address}:${port}`);
    }
  }
  return [...new Set(out)];
}

function cacheOptions(cfg: ResolverConfig) {
  const c = cfg.cache;
  return {
    maxEntries: c.size, maxBytes: c.max_bytes, minTtl: c.min_ttl, maxTtl: c.max_ttl, negTtl: c.neg_ttl,
    negMaxTtl: c.neg_max_ttl, staleMaxAge: c.serve_stale.enabled ? c.serve_stale.max_age : 0, staleTtl: c.serve_stale.ttl,
  };
}

export class ResolverService {
  readonly resolver: Resolver;
  private listeners: DnsListeners;
  private cfg: ResolverConfig;
  private upstreamKey: string;
  private watched: string[] = [];
  private watchTimer: NodeJS.Timeout | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private reloadTimer: NodeJS.Timeout | null = null;
  /** The last queued reload (see queue()). */
  private reloads: Promise<void> = Promise.resolve();
  private closed = false;
  private refreshing = false;
  private queryLogBudget = 0;
  private apiRecords: LocalRecordConfig[] = [];
  /** The latest query-log entries (bounded), for the console's query view. */
  readonly recentQueries: QueryLogEntry[] = [];
  private queryLogSecond = 0;

  private constructor(cfg: ResolverConfig, built: BuildResult, private readonly log: Logger) {
    this.cfg = cfg;
    this.upstreamKey = built.upstreamKey;
    const forwarder = new Forwarder({
      timeoutMs: cfg.upstreams.timeout_ms, totalTimeoutMs: cfg.upstreams.total_timeout_ms, warn: (m) => log.warn(m),
    });
    this.resolver = new Resolver(built.tables, new PacketCache(cacheOptions(cfg)), forwarder);
    this.resolver.warn = (m) => log.warn(m);
    this.setQueryLog(cfg);
    this.listeners = new DnsListeners(this.resolver);
  }

  static async start(cfg: ResolverConfig, log: Logger, apiRecords: LocalRecordConfig[] = []): Promise<ResolverService> {
    // Large hosts files take a moment: say what is being read, then how long it took.
    if (cfg.hosts_files.length) log.info({ files: cfg.hosts_files }, 'loading local data');
    const t0 = performance.now();
    const built = await buildTablesAsync(cfg, undefined, apiRecords);
    if (cfg.hosts_files.length) log.info({ names: built.tables.local.size, ms: Math.round(performance.now() - t0), hosts_bytes: built.tables.local.hosts.footprint }, 'local data loaded');
    for (const d of built.diagnostics) log.warn({ file: d.file, line: d.line }, d.message);
    const svc = new ResolverService(cfg, built, log);
    svc.apiRecords = apiRecords;
    const bound = await svc.listeners.listen(listenAddresses(cfg));
    log.info({ addresses: bound.map((b) => `${b.proto}://${b.address.includes(':') ? `[${b.address}]` : b.address}:${b.port}`) },
      'resolver listening');
    svc.watch(built.watch, built.stamps);
    log.info({ local_names: built.tables.local.size, upstreams: built.tables.defaultGroup.servers.map((s) => s.label) }, 'resolver ready');
    svc.sweepTimer = setInterval(() => svc.resolver.cache.sweep(Date.now()), 60_000);
    svc.sweepTimer.unref();
    return svc;
  }

  addresses(): BoundAddress[] { return this.listeners.bound.slice(); }
  get config(): ResolverConfig { return this.cfg; }

  private setQueryLog(cfg: ResolverConfig): void {
    if (!cfg.query_log) { this.resolver.queryLog = null; return; }
    const rate = cfg.query_log_rate;
    this.resolver.queryLog = (e) => {
      const sec = Math.floor(Date.now() / 1000);
      if (sec !== this.queryLogSecond) {
        if (this.queryLogBudget < 0) this.log.warn({ dropped: -this.queryLogBudget }, 'query log rate limit: lines dropped');
        this.queryLogSecond = sec; this.queryLogBudget = rate;
      }
      if (this.recentQueries.length >= 1000) this.recentQueries.shift();
      this.recentQueries.push({ ...e, time: Date.now() } as QueryLogEntry);
      if (this.queryLogBudget-- > 0) this.log.info({ query: e }, 'query');
    };
  }

  /** Replaces the records managed through the API (and replication) and rebuilds local data. */
  async setApiRecords(records: LocalRecordConfig[]): Promise<void> {
    this.apiRecords = records;
    await this.queue(null, true);
  }

  /** Re-reads files for the current config (hosts/resolv-file changed on disk). */
  refreshFiles(): void {
    // One at a time: the watcher polls every second and a large file takes longer than that to
    // build; a change made after this refresh read the file is seen against its stamps afterwards.
    if (this.refreshing) return;
    this.refreshing = true;
    this.queue(null)
      .catch((e) => this.log.error({ error: (e as Error).message }, 'reload failed: keeping the running config'))
      .finally(() => { this.refreshing = false; });
  }

  /**
   * Applies a new config: builds everything first, then swaps. Listen addresses that changed are
   * re-bound; if that fails the old listeners keep serving and the error is thrown.
   */
  reload(cfg: ResolverConfig): Promise<void> { return this.queue(cfg); }

  /**
   * Reloads run one after another: a build yields to the event loop (buildTablesAsync), so a file
   * change or an API write can come while a config reload builds, and must neither interleave
   * with it nor swap in tables built from an older config after it. `null`: the config that is
   * current when this reload's turn comes.
   */
  private queue(cfg: ResolverConfig | null, recordsOnly = false): Promise<void> {
    const run = this.reloads.then(() => this.reloadNow(cfg ?? this.cfg, recordsOnly));
    this.reloads = run.catch(() => { /* the caller has the error */ });
    return run;
  }

  /**
   * `recordsOnly`: only records changed (an API write), so the hosts part of the current tables
   * is kept rather than read and built again; those tables were built from `this.cfg`, which is
   * `cfg` then (queue() runs reloads in order), and the watcher still sees file changes.
   */
  private async reloadNow(cfg: ResolverConfig, recordsOnly = false): Promise<void> {
    if (this.closed) return;
    const keep = recordsOnly && cfg === this.cfg ? this.resolver.current.local.hosts : undefined;
    const built = await buildTablesAsync(cfg, undefined, this.apiRecords, keep);
    if (this.closed) return;
    for (const d of built.diagnostics) this.log.warn({ file: d.file, line: d.line }, d.message);
    const oldAddrs = JSON.stringify(listenAddresses(this.cfg));
    const newAddrs = JSON.stringify(listenAddresses(cfg));
    if (oldAddrs !== newAddrs) {
      const fresh = new DnsListeners(this.resolver);
      await fresh.listen(listenAddresses(cfg)); // throws → old config keeps serving
      const old = this.listeners;
      this.listeners = fresh;
      await old.close();
    }
    if (built.upstreamKey !== this.upstreamKey || JSON.stringify(cacheOptions(cfg)) !== JSON.stringify(cacheOptions(this.cfg))) {
      this.resolver.cache.clear();
      Object.assign(this.resolver.cache.opts, cacheOptions(cfg));
    }
    this.upstreamKey = built.upstreamKey;
    this.resolver.setTables(built.tables);
    this.cfg = cfg;
    this.setQueryLog(cfg);
    this.watch(built.watch, built.stamps);
    this.log.info({ local_names: built.tables.local.size, upstreams: built.tables.defaultGroup.servers.map((s) => s.label) }, 'resolver reloaded');
  }

  /**
   * Polls watched files' stat every second (robust to editors that replace files by rename).
   * A change is judged against the file as it was when it was read — not against a watcher's
   * own first look, which fs.watchFile takes asynchronously and so can miss a write that lands
   * right after start (the CLI test caught exactly that).
   */
  private watch(files: string[], stamps: Map<string, string>): void {
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.watched = [...new Set(files)];
    if (!this.watched.length) return;
    const check = () => {
      const f = this.watched.find((x) => fileStamp(x) !== stamps.get(x));
      if (!f || this.reloadTimer || this.refreshing) return; // a refresh under way re-arms this when done
      // Debounce bursts of writes into one reload.
      this.reloadTimer = setTimeout(() => {
        this.reloadTimer = null;
        this.log.info({ file: f }, 'file changed: re-reading');
        this.refreshFiles();
      }, 100);
    };
    this.watchTimer = setInterval(check, 1000);
    this.watchTimer.unref();
    check();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.watchTimer) clearInterval(this.watchTimer);
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.reloadTimer) clearTimeout(this.reloadTimer);
    await this.listeners.close();
    this.resolver.close();
  }
}
