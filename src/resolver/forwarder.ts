/**
 * The forwarding shell: sends a query to an upstream group and delivers exactly one outcome.
 *
 * Safety, after dnsmasq's DNSpooq CVEs: every upstream query gets a random ID and goes out of a
 * socket picked at random from a pool of sockets bound to kernel-chosen random ports, replaced
 * after a number of uses; an answer counts only if it comes from the queried server's address and
 * port and matches the ID and the question (anything else is dropped and counted). A TC answer is
 * retried over TCP to the same server. SERVFAIL/REFUSED moves on to the next server. Callers merge
 * identical questions before calling (one upstream query per distinct question in flight).
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { randomInt } from 'node:crypto';
import { isIP } from 'node:net';
import {
  HEADER_LEN, isResponse, isTruncated, rcodeOf, readId, sameQuestion, TcpFramer, tcpFrame, writeId, Rcode,
} from '../dns/wire.js';
import type { Server, UpstreamGroup } from './upstreams.js';
import { literalLookup } from '../util/net.js';

export type ForwardOutcome =
  | { ok: true; resp: Buffer; server: Server; rttMs: number; tcp: boolean }
  | { ok: false; reason: 'timeout' | 'failed'; lastResp?: Buffer; server?: Server };

export interface ForwarderOptions {
  timeoutMs: number;
  totalTimeoutMs: number;
  /** Sockets per address family in the random-port pool. */
  poolSize?: number;
  /** Upstream queries one socket carries before it is replaced by a fresh random port. */
  socketUses?: number;
  now?: () => number;
}

export interface ForwarderStats {
  sent: number;
  answers: number;
  timeouts: number;
  tcpRetries: number;
  /** Datagrams dropped: wrong source address/port, unknown ID, wrong question, not a response. */
  rejected: number;
}

interface PoolSocket {
  sock: dgram.Socket;
  pending: Map<number, Attempt>;
  uses: number;
  retiring: boolean;
}

interface Attempt {
  job: Job;
  server: number;
  ps: PoolSocket | null;
  id: number;
  sentAt: number;
  done: boolean;
}

interface Job {
  query: Buffer; // the client's query (we write a fresh ID per attempt into a copy)
  questionEnd: number;
  group: UpstreamGroup;
  rest: number[];
  attempts: Attempt[];
  outstanding: number;
  finished: boolean;
  lastResp?: Buffer;
  lastServer?: Server;
  attemptTimer: NodeJS.Timeout | null;
  totalTimer: NodeJS.Timeout | null;
  cb: (o: ForwardOutcome) => void;
}

function canonicalHost(host: string): string {
  return isIP(host) === 6 ? new URL(`http://[${host}]/`).hostname.slice(1, -1) : host;
}

export class Forwarder {
  private readonly pools: { 4: PoolSocket[]; 6: PoolSocket[] } = { 4: [], 6: [] };
  readonly stats: ForwarderStats = { sent: 0, answers: 0, timeouts: 0, tcpRetries: 0, rejected: 0 };
  private closed = false;
  private readonly now: () => number;
  private readonly tcpSockets = new Set<net.Socket>();

  constructor(readonly opts: ForwarderOptions) {
    this.now = opts.now ?? (() => performance.now());
  }

  forward(query: Buffer, questionEnd: number, group: UpstreamGroup, cb: (o: ForwardOutcome) => void): void {
    const plan = group.plan(Date.now());
    if (plan.first.length === 0) { cb({ ok: false, reason: 'failed' }); return; }
    const job: Job = {
      query, questionEnd, group, rest: plan.rest, attempts: [], outstanding: 0, finished: false,
      attemptTimer: null, totalTimer: null, cb,
    };
    job.totalTimer = setTimeout(() => this.finish(job, null), this.opts.totalTimeoutMs);
    for (const i of plan.first) this.send(job, i);
    this.armAttemptTimer(job);
  }

  private armAttemptTimer(job: Job): void {
    if (job.attemptTimer) clearTimeout(job.attemptTimer);
    job.attemptTimer = setTimeout(() => this.onAttemptTimeout(job), this.opts.timeoutMs);
  }

  private onAttemptTimeout(job: Job): void {
    job.attemptTimer = null;
    if (job.finished) return;
    // Everyone asked so far is late: count it against them, keep listening (a late answer is
    // still good), and ask the next server.
    for (const a of job.attempts) if (!a.done) { job.group.failure(a.server); this.stats.timeouts++; }
    this.next(job);
  }

  /** Asks the next server of the plan, or gives up when none is left and nobody is pending. */
  private next(job: Job): void {
    const i = job.rest.shift();
    if (i !== undefined) {
      this.send(job, i);
      this.armAttemptTimer(job);
    } else if (job.outstanding === 0) {
      this.finish(job, null);
    }
  }

  private socket(family: 4 | 6): PoolSocket {
    const pool = this.pools[family];
    const size = this.opts.poolSize ?? 16;
    const slot = randomInt(size);
    let ps = pool[slot];
    if (ps && ps.uses >= (this.opts.socketUses ?? 1000)) {
      ps.retiring = true;
      if (ps.pending.size === 0) ps.sock.close();
      ps = undefined as unknown as PoolSocket;
    }
    if (!ps) {
      const sock = dgram.createSocket({ type: family === 4 ? 'udp4' : 'udp6', lookup: literalLookup });
      const fresh: PoolSocket = { sock, pending: new Map(), uses: 0, retiring: false };
      sock.on('message', (msg, rinfo) => this.onMessage(fresh, msg, rinfo));
      sock.on('error', () => { /* ICMP errors surface as timeouts of the attempts */ });
      sock.bind(0); // kernel-chosen ephemeral port: random on Linux
      sock.unref();
      pool[slot] = fresh;
      ps = fresh;
    }
    return ps;
  }

  private send(job: Job, i: number): void {
    const server = job.group.servers[i];
    const family = isIP(server.host) === 6 ? 6 : 4;
    const ps = this.socket(family);
    let id = randomInt(65536);
    while (ps.pending.has(id)) id = randomInt(65536);
    const msg = Buffer.allocUnsafe(job.query.length);
    job.query.copy(msg);
    writeId(msg, id);
    const a: Attempt = { job, server: i, ps, id, sentAt: this.now(), done: false };
    ps.pending.set(id, a);
    ps.uses++;
    job.attempts.push(a);
    job.outstanding++;
    job.group.sent(i);
    this.stats.sent++;
    ps.sock.send(msg, server.port, canonicalHost(server.host), (err) => {
      if (err && !a.done) this.attemptFailed(a, undefined);
    });
  }

  private onMessage(ps: PoolSocket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (msg.length < HEADER_LEN || !isResponse(msg)) { this.stats.rejected++; return; }
    const a = ps.pending.get(readId(msg));
    if (!a) { this.stats.rejected++; return; }
    const server = a.job.group.servers[a.server];
    if (rinfo.port !== server.port || rinfo.address !== canonicalHost(server.host)
      || !sameQuestion(msg, msg.length, a.job.query, a.job.questionEnd)) {
      this.stats.rejected++; // spoofed or confused: ignore, keep waiting for the real answer
      return;
    }
    this.release(a);
    if (isTruncated(msg)) { this.tcpRetry(a); return; }
    this.onAnswer(a, msg, false);
  }

  private release(a: Attempt): void {
    if (a.ps) {
      a.ps.pending.delete(a.id);
      if (a.ps.retiring && a.ps.pending.size === 0) a.ps.sock.close();
      a.ps = null;
    }
  }

  private onAnswer(a: Attempt, msg: Buffer, tcp: boolean): void {
    const job = a.job;
    a.done = true;
    job.outstanding--;
    if (job.finished) return;
    const rc = rcodeOf(msg);
    if (rc === Rcode.SERVFAIL || rc === Rcode.REFUSED) {
      this.attemptFailed(a, msg, true);
      return;
    }
    const rtt = this.now() - a.sentAt;
    job.group.success(a.server, rtt, Date.now());
    this.stats.answers++;
    this.finish(job, { ok: true, resp: msg, server: job.group.servers[a.server], rttMs: rtt, tcp });
  }

  private attemptFailed(a: Attempt, resp: Buffer | undefined, counted = false): void {
    const job = a.job;
    if (!counted) { a.done = true; job.outstanding--; this.release(a); }
    job.group.failure(a.server);
    if (resp) { job.lastResp = resp; job.lastServer = job.group.servers[a.server]; }
    if (job.finished) return;
    // Move on at once rather than waiting for the attempt timer.
    if (job.rest.length) { this.send(job, job.rest.shift()!); this.armAttemptTimer(job); }
    else if (job.outstanding === 0) this.finish(job, null);
  }

  private tcpRetry(a: Attempt): void {
    this.stats.tcpRetries++;
    const job = a.job;
    const server = job.group.servers[a.server];
    const id = randomInt(65536);
    const q = Buffer.allocUnsafe(job.query.length);
    job.query.copy(q);
    writeId(q, id);
    const sock = net.connect({ host: canonicalHost(server.host), port: server.port });
    this.tcpSockets.add(sock);
    let settled = false;
    const done = (resp: Buffer | null) => {
      if (settled) return;
      settled = true;
      sock.destroy();
      this.tcpSockets.delete(sock);
      if (resp) this.onAnswer(a, resp, true);
      else if (!a.done) this.attemptFailed(a, undefined);
    };
    sock.setTimeout(this.opts.timeoutMs, () => done(null));
    sock.setNoDelay(true);
    const framer = new TcpFramer((m) => {
      if (m.length >= HEADER_LEN && isResponse(m) && readId(m) === id && sameQuestion(m, m.length, job.query, job.questionEnd)) {
        done(Buffer.from(m));
      }
    });
    sock.on('data', (chunk) => { if (!framer.push(chunk)) done(null); });
    sock.on('error', () => done(null));
    sock.on('close', () => done(null));
    sock.on('connect', () => sock.write(tcpFrame(q)));
  }

  private finish(job: Job, outcome: ForwardOutcome | null): void {
    if (job.finished) return;
    job.finished = true;
    if (job.attemptTimer) clearTimeout(job.attemptTimer);
    if (job.totalTimer) clearTimeout(job.totalTimer);
    for (const a of job.attempts) this.release(a);
    job.cb(outcome ?? (job.lastResp
      ? { ok: false, reason: 'failed', lastResp: job.lastResp, server: job.lastServer }
      : { ok: false, reason: 'timeout' }));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const fam of [4, 6] as const) for (const ps of this.pools[fam]) if (ps) try { ps.sock.close(); } catch { /* already */ }
    for (const s of this.tcpSockets) s.destroy();
  }
}
