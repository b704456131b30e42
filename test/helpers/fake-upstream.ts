/**
 * A fake upstream DNS server for tests: real UDP + TCP sockets on 127.0.0.1 (port 0), answering from
 * a zone the test fills, counting what it receives, and misbehaving on demand (slow, dead, lying,
 * truncating, SERVFAIL, REFUSED, spoofing) so resolver tests can prove their defences.
 *
 * Not a real DNS server: no recursion, no wildcards, no CNAME chasing. Unknown names get NXDOMAIN,
 * known names asked for another type get NODATA; both carry an SOA so negative caching can work.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, Question } from 'dns-packet';

export type Behaviour =
  | { kind: 'normal' }
  /** Answer after `delayMs`. */
  | { kind: 'slow'; delayMs: number }
  /** Never answer (UDP and TCP; TCP connections are accepted and left hanging). */
  | { kind: 'dead' }
  /** Send a reply with a wrong ID or a wrong question; then, if `thenRealAfterMs` is set, the true reply. */
  | { kind: 'lying'; lie: 'id' | 'question'; thenRealAfterMs?: number }
  /** Over UDP answer with TC set and no records; over TCP answer in full. */
  | { kind: 'truncating' }
  | { kind: 'servfail' }
  | { kind: 'refused' }
  /**
   * Send a forged reply (right ID and question, `spoofAnswers` or A 6.6.6.6) from another socket
   * (another source port); then, if `thenRealAfterMs` is set, the true reply from the real socket.
   */
  | { kind: 'spoofing'; spoofAnswers?: Answer[]; thenRealAfterMs?: number };

export interface ZoneEntry {
  rcode?: 'NOERROR' | 'NXDOMAIN' | 'SERVFAIL' | 'REFUSED';
  answers?: Answer[];
  authorities?: Answer[];
  /** Delay this name's answers (on top of the instance behaviour). */
  delayMs?: number;
}

export interface Received {
  name: string;
  type: string;
  proto: 'udp' | 'tcp';
  id: number;
  /** EDNS UDP size the client advertised, 0 if no OPT record. */
  udpSize: number;
  do: boolean;
}

const SOA_TTL = 60;
const RCODE: Record<string, number> = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 };
/** Keeps `received` bounded in long runs (benchmarks reuse this helper). */
const MAX_RECEIVED = 100_000;

export class FakeUpstream {
  behaviour: Behaviour;
  readonly zone = new Map<string, ZoneEntry>();
  /** Queries received per lower-cased name (both transports). */
  readonly counts = new Map<string, number>();
  readonly received: Received[] = [];
  total = 0;
  /** Negative answers carry this SOA (zone apex "." unless set). */
  soaName = '.';
  /** Keep `received` empty (benchmarks: count only). */
  record = true;

  private udp?: dgram.Socket;
  private spoofSock?: dgram.Socket;
  private tcp?: net.Server;
  private readonly conns = new Set<net.Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private port = 0;

  constructor(opts: { behaviour?: Behaviour; zone?: Record<string, ZoneEntry> } = {}) {
    this.behaviour = opts.behaviour ?? { kind: 'normal' };
    for (const [k, v] of Object.entries(opts.zone ?? {})) this.zone.set(k.toLowerCase(), v);
  }

  /** Adds records: `add('www.test', 'A', ['192.0.2.1'])`. Data in dns-packet's form. */
  add(name: string, type: Answer['type'], data: unknown[] | unknown, ttl = 300): this {
    const key = `${name.toLowerCase()}/${type}`;
    const cur = this.zone.get(key) ?? { answers: [] };
    for (const d of Array.isArray(data) && type !== 'TXT' ? data : [data]) {
      cur.answers!.push({ name, type, ttl, class: 'IN', data: d } as Answer);
    }
    this.zone.set(key, cur);
    return this;
  }
  /** Sets a whole entry for name/type (e.g. a forced rcode). */
  set(name: string, type: string, entry: ZoneEntry): this {
    this.zone.set(`${name.toLowerCase()}/${type}`, entry);
    return this;
  }
  count(name: string): number { return this.counts.get(name.toLowerCase().replace(/\.$/, '')) ?? 0; }
  reset(): void { this.counts.clear(); this.received.length = 0; this.total = 0; }

  async start(): Promise<{ port: number }> {
    // UDP and TCP on the same port number: try a few times in case TCP's port is taken.
    for (let attempt = 0; ; attempt++) {
      const udp = dgram.createSocket('udp4');
      udp.bind(0, '127.0.0.1');
      await once(udp, 'listening');
      const port = udp.address().port;
      const tcp = net.createServer((c) => this.onTcp(c));
      try {
        tcp.listen(port, '127.0.0.1');
        await once(tcp, 'listening');
      } catch (e) {
        udp.close();
        if (attempt < 10) continue;
        throw e;
      }
      udp.on('message', (m, rinfo) => this.onUdp(m, rinfo));
      this.udp = udp; this.tcp = tcp; this.port = port;
      break;
    }
    const spoof = dgram.createSocket('udp4');
    spoof.bind(0, '127.0.0.1');
    await once(spoof, 'listening');
    this.spoofSock = spoof;
    return { port: this.port };
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const c of this.conns) c.destroy();
    const closing: Promise<unknown>[] = [];
    if (this.udp) { const u = this.udp; closing.push(new Promise<void>((r) => u.close(() => r()))); }
    if (this.spoofSock) { const s = this.spoofSock; closing.push(new Promise<void>((r) => s.close(() => r()))); }
    if (this.tcp) { const t = this.tcp; closing.push(new Promise<void>((r) => t.close(() => r()))); }
    this.udp = this.spoofSock = this.tcp = undefined;
    await Promise.all(closing);
  }

  // ---------- transport ----------

  private later(ms: number, fn: () => void): void {
    if (ms <= 0) { fn(); return; }
    const t = setTimeout(() => { this.timers.delete(t); fn(); }, ms);
    this.timers.add(t);
  }

  private onUdp(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const send = (buf: Buffer, fromSpoof = false) => {
      const s = fromSpoof ? this.spoofSock : this.udp;
      s?.send(buf, rinfo.port, rinfo.address);
    };
    this.handle(msg, 'udp', send);
  }

  private onTcp(c: net.Socket): void {
    this.conns.add(c);
    c.on('close', () => this.conns.delete(c));
    c.on('error', () => c.destroy());
    let buf = Buffer.alloc(0);
    c.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      // Pipelined queries: handle every complete frame.
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const len = buf.readUInt16BE(0);
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        this.handle(msg, 'tcp', (out, fromSpoof) => {
          if (fromSpoof || c.destroyed) return; // no way to spoof inside a TCP stream
          const hdr = Buffer.alloc(2);
          hdr.writeUInt16BE(out.length);
          c.write(Buffer.concat([hdr, out]));
        });
      }
    });
  }

  // ---------- DNS ----------

  private handle(msg: Buffer, proto: 'udp' | 'tcp', send: (b: Buffer, fromSpoof?: boolean) => void): void {
    let q: DecodedPacket;
    try { q = dnsPacket.decode(msg); } catch { return; } // garbage: drop, like many servers
    const question = q.questions?.[0];
    if (!question || q.type !== 'query') return;
    const lname = question.name.toLowerCase().replace(/\.$/, '');
    this.total++;
    this.counts.set(lname, (this.counts.get(lname) ?? 0) + 1);
    const opt = q.additionals?.find((a) => a.type === 'OPT') as { udpPayloadSize?: number; flags?: number } | undefined;
    const udpSize = opt ? (opt.udpPayloadSize ?? 512) : 0;
    const doBit = !!opt && ((opt.flags ?? 0) & dnsPacket.DNSSEC_OK) !== 0;
    if (this.record && this.received.length < MAX_RECEIVED) {
      this.received.push({ name: question.name, type: question.type, proto, id: q.id ?? 0, udpSize, do: doBit });
    }

    const b = this.behaviour;
    const entryDelay = this.lookup(question).delayMs ?? 0;
    const real = () => this.answer(q, question, proto, udpSize, !!opt);
    switch (b.kind) {
      case 'dead': return;
      case 'servfail': this.later(entryDelay, () => send(this.bare(q, question, 'SERVFAIL', !!opt))); return;
      case 'refused': this.later(entryDelay, () => send(this.bare(q, question, 'REFUSED', !!opt))); return;
      case 'slow': this.later(b.delayMs + entryDelay, () => send(real())); return;
      case 'truncating':
        this.later(entryDelay, () => {
          if (proto === 'udp') {
            const r = dnsPacket.decode(this.bare(q, question, 'NOERROR', !!opt)) as DecodedPacket;
            send(encode({ ...r, flags: (r.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE }));
          } else send(real());
        });
        return;
      case 'lying': {
        const lie = dnsPacket.decode(real());
        if (b.lie === 'id') lie.id = ((q.id ?? 0) + 1) & 0xffff;
        else lie.questions = [{ ...question, name: `lie.${question.name}` }];
        send(encode(lie));
        if (b.thenRealAfterMs !== undefined) this.later(b.thenRealAfterMs, () => send(real()));
        return;
      }
      case 'spoofing': {
        const forged = dnsPacket.decode(real());
        forged.answers = b.spoofAnswers ?? [{ name: question.name, type: 'A', class: 'IN', ttl: 3600, data: '6.6.6.6' }];
        forged.flags = (forged.flags ?? 0) & ~0xf; // NOERROR
        send(encode(forged), true);
        if (b.thenRealAfterMs !== undefined) this.later(b.thenRealAfterMs, () => send(real()));
        return;
      }
      default: this.later(entryDelay, () => send(real()));
    }
  }

  private lookup(q: Question): ZoneEntry {
    return this.zone.get(`${q.name.toLowerCase().replace(/\.$/, '')}/${q.type}`) ?? {};
  }
  private nameExists(lname: string): boolean {
    for (const k of this.zone.keys()) if (k.slice(0, k.lastIndexOf('/')) === lname) return true;
    return false;
  }

  private soa(): Answer {
    return {
      name: this.soaName, type: 'SOA', class: 'IN', ttl: SOA_TTL,
      data: { mname: 'ns.fake', rname: 'hostmaster.fake', serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: SOA_TTL },
    };
  }

  /** A reply with an rcode and no records. */
  private bare(q: DecodedPacket, question: Question, rcode: string, edns: boolean): Buffer {
    return encode({
      id: q.id, type: 'response',
      flags: (q.flags ?? 0) & dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | RCODE[rcode],
      questions: [question], answers: [],
      additionals: edns ? [optRecord()] : [],
    });
  }

  /** The true answer from the zone, truncated (TC, no records) over UDP if too big for the client. */
  private answer(q: DecodedPacket, question: Question, proto: 'udp' | 'tcp', udpSize: number, edns: boolean): Buffer {
    const lname = question.name.toLowerCase().replace(/\.$/, '');
    const e = this.lookup(question);
    let rcode = e.rcode ?? 'NOERROR';
    // Owner names equal to the question take the question's spelling (case), like real servers'
    // name compression does; other owners (a CNAME's target) stay as written.
    let answers = (e.answers ?? []).map((a) => (a.name.toLowerCase().replace(/\.$/, '') === lname ? { ...a, name: question.name } : a)) as Answer[];
    let authorities = e.authorities ?? [];
    if (!e.answers && !e.rcode) {
      rcode = this.nameExists(lname) ? 'NOERROR' : 'NXDOMAIN';
      answers = [];
    }
    if (answers.length === 0 && rcode !== 'SERVFAIL' && rcode !== 'REFUSED' && !e.authorities) authorities = [this.soa()];
    const flags = ((q.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | dnsPacket.RECURSION_AVAILABLE | RCODE[rcode];
    const out = encode({
      id: q.id, type: 'response', flags, questions: [question], answers, authorities,
      additionals: edns ? [optRecord()] : [],
    });
    const limit = edns ? Math.max(512, udpSize) : 512;
    if (proto === 'udp' && out.length > limit) {
      return encode({
        id: q.id, type: 'response', flags: flags | dnsPacket.TRUNCATED_RESPONSE, questions: [question],
        additionals: edns ? [optRecord()] : [],
      });
    }
    return out;
  }
}

function optRecord(): Answer {
  return { type: 'OPT', name: '.', udpPayloadSize: 1232, flags: 0, options: [] } as unknown as Answer;
}
function encode(p: dnsPacket.Packet): Buffer {
  return dnsPacket.encode(p);
}

/** Starts several fake upstreams at once. */
export async function startFakes(n: number, make: (i: number) => FakeUpstream = () => new FakeUpstream()):
  Promise<{ fakes: FakeUpstream[]; ports: number[] }> {
  const fakes = Array.from({ length: n }, (_, i) => make(i));
  const ports = (await Promise.all(fakes.map((f) => f.start()))).map((r) => r.port);
  return { fakes, ports };
}
