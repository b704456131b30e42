/**
 * Differential test: the real dnsmasq (Debian's dnsmasq-base) and hadns run from the same
 * dnsmasq.conf (only the port differs), the same hosts file and identical fake upstreams; a few
 * hundred queries go to both and the answers are compared section by section. Every intended
 * difference is in ALLOWED below (with its reason) and in docs/dnsmasq-differences.md; any other
 * difference fails the test.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import dnsPacket from 'dns-packet';
import { FakeUpstream } from '../helpers/fake-upstream.js';
import { freePort } from '../../src/util/net.js';
import { DAEMON_NODE_FLAGS } from '../../src/util/node-flags.js';

const DNSMASQ = '/usr/sbin/dnsmasq';
const root = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../../' : '../../', import.meta.url));
const HADNS = join(root, 'bin', 'hadns');
const START_DEADLINE_MS = 15000;

// ---------- the shared world ----------

const HOSTS = `# hosts file shared by dnsmasq and hadns (article format plus /etc/hosts habits)
192.168.111.111 xpt.redhat.cn
10.0.0.1   host1.lan.test host1   # trailing comment
10.0.0.2   host2.lan.test
fd00::2    host2.lan.test
10.0.0.3   multi.test alias-one.test
10.0.0.4   multi.test
10.0.0.3   again.test
fd00::5    only6.test
`;

function conf(port: number, up: number, cond: number, trunc: number, hosts: string): string {
  return `# written by dnsmasq-diff.test.ts
port=${port}
listen-address=127.0.0.1
bind-interfaces
no-resolv
no-hosts
server=127.0.0.1#${up}
server=/cond.test/127.0.0.1#${cond}
server=/trunc.test/127.0.0.1#${trunc}
addn-hosts=${hosts}
address=/wild.test/10.9.9.9
address=/wild6.test/fd00::99
address=/blocked.test/
address=/null.test/#
local=/lan.test/
domain-needed
bogus-priv
host-record=hr.test,hr-alias.test,10.2.2.2,fd00::22
host-record=hr2.test,10.2.2.3,120
cname=cn.test,hr.test
cname=cn-host.test,host1.lan.test
txt-record=txt.test,"hello world","with, comma"
mx-host=mx.test,mail.test,10
mx-host=mx.test,mail2.test,20
srv-host=_ldap._tcp.srv.test,hr.test,389,1,5
srv-host=_none._tcp.srv.test
ptr-record=_http._tcp.srv.test,web._http._tcp.srv.test
ptr-record=bare.srv.test
`;
}

/** Identical zones for each server's fakes, so their counters tell the servers apart. */
function makeFakes(): { up: FakeUpstream; cond: FakeUpstream; trunc: FakeUpstream } {
  const up = new FakeUpstream();
  for (let i = 0; i < 40; i++) up.add(`up${i}.test`, 'A', [`198.51.100.${i + 1}`], 600);
  up.add('up.test', 'A', ['198.51.100.200']).add('up.test', 'AAAA', ['2001:db8::200']);
  up.add('nodata-up.test', 'A', ['198.51.100.201']);
  up.add('mx-up.test', 'MX', [{ preference: 5, exchange: 'mail.up.test' }]);
  up.set('alias-up.test', 'A', { answers: [
    { name: 'alias-up.test', type: 'CNAME', ttl: 300, class: 'IN', data: 'up.test' },
    { name: 'up.test', type: 'A', ttl: 300, class: 'IN', data: '198.51.100.200' },
  ] });
  // Types not given by address=/wild.test/ are forwarded by dnsmasq (since 2.86): give them data.
  up.add('wild.test', 'MX', [{ preference: 1, exchange: 'mx.wild.test' }]);
  up.add('big.test', 'TXT', ['a'.repeat(200), 'b'.repeat(200), 'c'.repeat(200), 'd'.repeat(200)]);
  up.add('huge.test', 'TXT', Array.from({ length: 12 }, (_, i) => String.fromCharCode(97 + i).repeat(250)));
  up.add('xpt.redhat.cn', 'MX', [{ preference: 10, exchange: 'mail.redhat.cn' }]);
  up.set('fail.test', 'A', { rcode: 'SERVFAIL' });
  const cond = new FakeUpstream();
  cond.add('c1.cond.test', 'A', ['203.0.113.1']).add('c2.cond.test', 'A', ['203.0.113.2']).add('cond.test', 'TXT', ['conditional']);
  const trunc = new FakeUpstream({ behaviour: { kind: 'truncating' } });
  trunc.add('t1.trunc.test', 'A', ['203.0.113.50']);
  return { up, cond, trunc };
}

// ---------- queries ----------

interface Q { name: string; type: string; proto: 'udp' | 'tcp'; edns: boolean }
const qkey = (q: Q) => `${q.name} ${q.type} ${q.proto}${q.edns ? '+edns' : ''}`;

function baseQueries(): [string, string][] {
  const out: [string, string][] = [];
  const add = (name: string, ...types: string[]) => { for (const t of types) out.push([name, t]); };
  // hosts file: A/AAAA both ways, short names, NODATA by type, PTR
  add('xpt.redhat.cn', 'A', 'AAAA', 'MX');
  add('host1.lan.test', 'A', 'AAAA', 'TXT');
  add('HOST1.Lan.Test', 'A');
  add('host1', 'A');
  add('host2.lan.test', 'A', 'AAAA');
  add('multi.test', 'A');
  add('alias-one.test', 'A');
  add('again.test', 'A');
  add('only6.test', 'A', 'AAAA');
  add('111.111.168.192.in-addr.arpa', 'PTR');
  add('1.0.0.10.in-addr.arpa', 'PTR');
  add('3.0.0.10.in-addr.arpa', 'PTR');
  add('2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa', 'PTR');
  add('99.0.0.10.in-addr.arpa', 'PTR'); // bogus-priv: private, not local
  // local=/lan.test/: unknown names never leave
  add('nothere.lan.test', 'A', 'AAAA');
  add('lan.test', 'A', 'SOA');
  // address=
  add('wild.test', 'A', 'AAAA', 'MX');
  add('x.wild.test', 'A');
  add('a.b.Wild.Test', 'A');
  add('wild6.test', 'AAAA', 'A');
  add('blocked.test', 'A', 'AAAA', 'TXT');
  add('deep.sub.blocked.test', 'A');
  add('null.test', 'A', 'AAAA');
  // inline records
  add('hr.test', 'A', 'AAAA', 'MX');
  add('hr-alias.test', 'A', 'AAAA');
  add('hr2.test', 'A');
  add('2.2.2.10.in-addr.arpa', 'PTR');
  add('3.2.2.10.in-addr.arpa', 'PTR');
  add('2.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa', 'PTR');
  add('cn.test', 'A', 'AAAA', 'CNAME');
  add('cn-host.test', 'A');
  add('txt.test', 'TXT', 'A');
  add('mx.test', 'MX', 'A');
  add('_ldap._tcp.srv.test', 'SRV');
  add('_none._tcp.srv.test', 'SRV');
  add('_http._tcp.srv.test', 'PTR');
  add('bare.srv.test', 'PTR'); // no target: a PTR to the root name
  // upstream: answers, CNAME chains, NXDOMAIN, NODATA, SERVFAIL, domain-needed
  add('up.test', 'A', 'AAAA');
  add('alias-up.test', 'A');
  add('mx-up.test', 'MX');
  add('nodata-up.test', 'AAAA');
  add('nxdomain-up.test', 'A');
  add('fail.test', 'A');
  add('plainname', 'A');
  for (let i = 0; i < 10; i++) add(`up${i}.test`, 'A');
  // conditional forwarding
  add('c1.cond.test', 'A');
  add('C2.Cond.Test', 'A');
  add('cond.test', 'TXT');
  add('none.cond.test', 'A');
  // truncation: >512 (fits EDNS 1232), >1232, and an upstream that truncates everything over UDP
  add('big.test', 'TXT');
  add('huge.test', 'TXT');
  add('t1.trunc.test', 'A');
  return out;
}

function allQueries(): Q[] {
  const qs: Q[] = [];
  for (const [name, type] of baseQueries()) {
    qs.push({ name, type, proto: 'udp', edns: false });
    qs.push({ name, type, proto: 'udp', edns: true });
    qs.push({ name, type, proto: 'tcp', edns: false });
  }
  return qs;
}

// ---------- wire ----------

type Rec = { name: string; type: string; ttl?: number; data?: unknown };
type Reply = { id: number; flags: number; rcode: string; questions: { name: string; type: string }[]; answers: Rec[]; authorities: Rec[]; additionals: Rec[] };

function encodeQuery(q: Q, id: number): Buffer {
  return dnsPacket.encode({
    id, type: 'query', flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name: q.name, type: q.type as 'A', class: 'IN' }],
    additionals: q.edns ? [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: 0, options: [] } as never] : [],
  });
}

async function askUdp(port: number, msg: Buffer, timeoutMs: number): Promise<Buffer | null> {
  const s = dgram.createSocket('udp4');
  try {
    return await new Promise<Buffer | null>((resolve) => {
      const t = setTimeout(() => resolve(null), timeoutMs);
      s.on('message', (m) => { clearTimeout(t); resolve(m); });
      s.send(msg, port, '127.0.0.1');
    });
  } finally { s.close(); }
}

async function askTcp(port: number, msg: Buffer, timeoutMs: number): Promise<Buffer | null> {
  const c = net.connect(port, '127.0.0.1');
  c.on('error', () => {});
  const t = setTimeout(() => c.destroy(), timeoutMs);
  try {
    await once(c, 'connect');
    const len = Buffer.from([msg.length >> 8, msg.length & 0xff]);
    c.write(Buffer.concat([len, msg]));
    let buf = Buffer.alloc(0);
    for await (const d of c) {
      buf = Buffer.concat([buf, d as Buffer]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) return buf.subarray(2, 2 + buf.readUInt16BE(0));
    }
    return null;
  } catch { return null; } finally { clearTimeout(t); c.destroy(); }
}

/** One query, one retry over UDP (clients retry; a lost datagram is not a difference). */
async function ask(port: number, q: Q): Promise<Reply | null> {
  for (let attempt = 0; attempt < 2; attempt++) {
    const id = 1 + Math.floor(Math.random() * 65000);
    const msg = encodeQuery(q, id);
    const raw = q.proto === 'udp' ? await askUdp(port, msg, 2500) : await askTcp(port, msg, 2500);
    if (raw) {
      const r = dnsPacket.decode(raw) as unknown as Reply;
      assert.equal(r.id, id, `${qkey(q)}: reply ID does not match the query`);
      return r;
    }
  }
  return null;
}

// ---------- comparison ----------

function rdata(r: Rec): string {
  const d = r.data as unknown;
  if (r.type === 'TXT') return (d as Buffer[]).map((b) => JSON.stringify(b.toString())).join(' ');
  if (r.type === 'MX') { const m = d as { preference: number; exchange: string }; return `${m.preference} ${m.exchange.toLowerCase()}`; }
  if (r.type === 'SRV') { const s = d as { priority: number; weight: number; port: number; target: string }; return `${s.priority} ${s.weight} ${s.port} ${s.target.toLowerCase() || '.'}`; }
  if (r.type === 'SOA') return (d as { mname: string }).mname.toLowerCase();
  if (typeof d === 'string') return d.toLowerCase() || '.';
  return JSON.stringify(d);
}
const rrs = (list: Rec[]) => list.filter((r) => r.type !== 'OPT').map((r) => `${r.name.toLowerCase()} ${r.type} ${rdata(r)}`).sort();
const ttls = (list: Rec[]) => list.filter((r) => r.type !== 'OPT').map((r) => `${r.name.toLowerCase()} ${r.type} ${rdata(r)} ttl=${r.ttl}`).sort();

interface Diff { q: Q; field: string; dnsmasq: string; hadns: string }

function compare(q: Q, a: Reply | null, b: Reply | null): Diff[] {
  if (!a || !b) {
    return a === b ? [] : [{ q, field: 'reply', dnsmasq: a ? 'answered' : 'no reply', hadns: b ? 'answered' : 'no reply' }];
  }
  const out: Diff[] = [];
  const cmp = (field: string, x: unknown, y: unknown) => {
    const xs = JSON.stringify(x); const ys = JSON.stringify(y);
    if (xs !== ys) out.push({ q, field, dnsmasq: xs, hadns: ys });
  };
  const flag = (r: Reply, f: number) => (r.flags & f) !== 0;
  cmp('rcode', a.rcode, b.rcode);
  cmp('flags.aa', flag(a, dnsPacket.AUTHORITATIVE_ANSWER), flag(b, dnsPacket.AUTHORITATIVE_ANSWER));
  cmp('flags.tc', flag(a, dnsPacket.TRUNCATED_RESPONSE), flag(b, dnsPacket.TRUNCATED_RESPONSE));
  cmp('flags.ra', flag(a, dnsPacket.RECURSION_AVAILABLE), flag(b, dnsPacket.RECURSION_AVAILABLE));
  cmp('flags.rd', flag(a, dnsPacket.RECURSION_DESIRED), flag(b, dnsPacket.RECURSION_DESIRED));
  // The question comes back exactly as asked (case included) from both.
  cmp('question', a.questions.map((x) => `${x.name} ${x.type}`), b.questions.map((x) => `${x.name} ${x.type}`));
  cmp('answer', rrs(a.answers), rrs(b.answers));
  // TTLs are compared only where both answer from local data (upstream TTLs age differently).
  if (flag(a, dnsPacket.AUTHORITATIVE_ANSWER) && flag(b, dnsPacket.AUTHORITATIVE_ANSWER) && out.every((d) => d.field !== 'answer')) {
    cmp('answer.ttl', ttls(a.answers), ttls(b.answers));
  }
  cmp('authority', rrs(a.authorities), rrs(b.authorities));
  cmp('additional', rrs(a.additionals), rrs(b.additionals));
  cmp('edns', a.additionals.some((r) => r.type === 'OPT'), b.additionals.some((r) => r.type === 'OPT'));
  return out;
}

// ---------- intended differences (keep in step with docs/dnsmasq-differences.md) ----------

interface Allowed { id: string; field: string | RegExp; match: (q: Q, d: Diff) => boolean; reason: string }
const asked = (...pairs: string[]) => (q: Q) => pairs.includes(`${q.name} ${q.type}`);
const ALLOWED: Allowed[] = [
  {
    id: 'local-name-other-type',
    field: /^(flags\.aa|authority|answer)$/,
    match: asked('xpt.redhat.cn AAAA', 'xpt.redhat.cn MX', 'only6.test A', 'hr.test MX', 'txt.test A', 'mx.test A'),
    reason: 'a name hadns holds in local data, asked for a type it lacks, gets NODATA from hadns (AA, no upstream query); '
      + 'dnsmasq forwards such questions upstream and relays what comes back',
  },
  {
    id: 'wildcard-other-type',
    field: /^(flags\.aa|authority|answer)$/,
    match: asked('wild.test AAAA', 'wild.test MX', 'wild6.test A'),
    reason: 'address=/dom/ip owns the whole domain in hadns: other types get NODATA locally (dnsmasq before 2.86 did the '
      + 'same); dnsmasq 2.86+ forwards them upstream',
  },
  {
    id: 'aa-on-local-negative',
    field: 'flags.aa',
    match: (q, d) => d.dnsmasq === 'false' && d.hadns === 'true'
      && /(^|\.)(lan\.test|blocked\.test)$/i.test(q.name),
    reason: 'hadns sets AA on every answer made from local data, NXDOMAIN/NODATA of local=/address=/dom/ domains included; '
      + 'dnsmasq sets AA on positive local answers only',
  },
  {
    id: 'no-additional-for-local-srv',
    field: 'additional',
    match: (q, d) => q.type === 'SRV' && d.hadns === '[]',
    reason: 'dnsmasq adds the A/AAAA of a local SRV target to the additional section; hadns does not (optional data; '
      + 'clients ask for the target)',
  },
  {
    id: 'upstream-tc-retried-over-tcp',
    field: /^(flags\.tc|answer)$/,
    match: (q) => /\.trunc\.test$/.test(q.name) && q.proto === 'udp',
    reason: 'a truncated upstream reply is retried over TCP by hadns and the full answer returned when it fits the client; '
      + 'dnsmasq passes the TC reply on and leaves the retry to the client',
  },
];

// ---------- processes ----------


/** Polls with a DNS query for a local name until the server answers (no fixed sleeps). */
async function waitServing(port: number, proc: ChildProcess, what: string, stderr: () => string): Promise<void> {
  const deadline = Date.now() + START_DEADLINE_MS;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`${what} exited with ${proc.exitCode}:\n${stderr()}`);
    const r = await askUdp(port, encodeQuery({ name: 'hr.test', type: 'A', proto: 'udp', edns: false }, 1), 200);
    if (r) return;
  }
  throw new Error(`${what} did not answer on 127.0.0.1:${port} within ${START_DEADLINE_MS} ms:\n${stderr()}`);
}

function startProc(cmd: string, args: string[]): { proc: ChildProcess; stderr: () => string } {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d) => { if (err.length < 200_000) err += d; });
  return { proc, stderr: () => err };
}

async function stopProc(proc: ChildProcess | undefined): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null || proc.pid === undefined) return;
  const exited = once(proc, 'exit');
  process.kill(proc.pid, 'SIGTERM');
  const t = setTimeout(() => { if (proc.exitCode === null && proc.pid) process.kill(proc.pid, 'SIGKILL'); }, 5000);
  await exited;
  clearTimeout(t);
}

// ---------- the test ----------

describe('differential: hadns vs dnsmasq on the same dnsmasq.conf', () => {
  let dir = '';
  const fakes = { dnsmasq: makeFakes(), hadns: makeFakes() };
  const ports = { dnsmasq: 0, hadns: 0 };
  let dm: ReturnType<typeof startProc> | undefined;
  let hd: ReturnType<typeof startProc> | undefined;

  before(async () => {
    assert.ok(existsSync(DNSMASQ), `${DNSMASQ} is missing: apt-get install dnsmasq-base`);
    dir = mkdtempSync(join(tmpdir(), 'hadns-dnsmasq-diff-'));
    chmodSync(dir, 0o755); // dnsmasq drops root privileges before reading hosts files
    const hosts = join(dir, 'hosts');
    writeFileSync(hosts, HOSTS, { mode: 0o644 });
    for (const side of ['dnsmasq', 'hadns'] as const) {
      const f = fakes[side];
      const [up, cond, trunc] = await Promise.all([f.up.start(), f.cond.start(), f.trunc.start()]);
      ports[side] = await freePort();
      writeFileSync(join(dir, `${side}.conf`), conf(ports[side], up.port, cond.port, trunc.port, hosts), { mode: 0o644 });
    }
    dm = startProc(DNSMASQ, ['-k', `--conf-file=${join(dir, 'dnsmasq.conf')}`, '--pid-file=', '--log-facility=-']);
    hd = startProc(process.execPath, [...DAEMON_NODE_FLAGS, HADNS, 'start', '--dnsmasq', join(dir, 'hadns.conf')]);
    await Promise.all([
      waitServing(ports.dnsmasq, dm.proc, 'dnsmasq', dm.stderr),
      waitServing(ports.hadns, hd.proc, 'hadns', hd.stderr),
    ]);
  });

  after(async () => {
    await Promise.all([stopProc(dm?.proc), stopProc(hd?.proc)]);
    for (const side of ['dnsmasq', 'hadns'] as const) {
      await Promise.all(Object.values(fakes[side]).map((f) => f.close()));
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('answers a few hundred queries the same, apart from the listed intended differences', async () => {
    const qs = allQueries();
    // Twice: the second round is served from both caches (and from local data again).
    const rounds = [qs, qs.filter((q) => /(^|\.)(up\d*|alias-up|mx-up|nodata-up|nxdomain-up|cond)\.test$|cond\.test$/i.test(q.name))];
    const diffs: Diff[] = [];
    let asked = 0;
    const upstreamAsked = () => Object.fromEntries((['dnsmasq', 'hadns'] as const).map((side) => [side,
      Object.fromEntries([fakes[side].up, fakes[side].cond].flatMap((f) => [...f.counts]).sort())]));
    let afterFirst = upstreamAsked();
    for (const [n, round] of rounds.entries()) {
      if (n === 1) afterFirst = upstreamAsked();
      // Small batches: parallel enough to be quick, sequential enough that both servers see the
      // same order of cache misses.
      for (let i = 0; i < round.length; i += 8) {
        const batch = round.slice(i, i + 8);
        const res = await Promise.all(batch.map(async (q) => {
          const [a, b] = await Promise.all([ask(ports.dnsmasq, q), ask(ports.hadns, q)]);
          return compare(q, a, b);
        }));
        for (const r of res) diffs.push(...r);
        asked += batch.length;
      }
    }
    assert.ok(asked >= 300, `only ${asked} queries`);
    // The second round asked only cacheable upstream questions: hadns answers all of it from cache;
    // dnsmasq (without cache-rr=) caches only address-type answers, so its MX/TXT go upstream again.
    const now = upstreamAsked();
    assert.deepEqual(now.hadns, afterFirst.hadns, 'hadns did not serve the second round from cache');
    const addrNames = (c: Record<string, number>) => Object.fromEntries(Object.entries(c).filter(([n]) => !/^(mx-up|cond)\.test$/.test(n)));
    assert.deepEqual(addrNames(now.dnsmasq), addrNames(afterFirst.dnsmasq), 'dnsmasq did not serve the second round from cache (harness problem?)');

    const used = new Set<string>();
    const unexpected: string[] = [];
    for (const d of diffs) {
      const allow = ALLOWED.find((a) => (typeof a.field === 'string' ? a.field === d.field : a.field.test(d.field)) && a.match(d.q, d));
      if (allow) used.add(allow.id);
      else unexpected.push(`${qkey(d.q)}: ${d.field}: dnsmasq ${d.dnsmasq} / hadns ${d.hadns}`);
    }
    const stale = ALLOWED.filter((a) => !used.has(a.id)).map((a) => a.id);
    if (stale.length) console.log(`# allowed differences not seen this run (fixed? update the docs): ${stale.join(', ')}`);
    assert.deepEqual(unexpected, [], `${unexpected.length} unexpected differences:\n${unexpected.join('\n')}`);
  });

  it('forwards the same questions: local data never, conditional domains only to their server, cache hits once', () => {
    const forwarded = (f: FakeUpstream, name: string, type?: string) =>
      f.received.filter((r) => r.name.toLowerCase() === name && (!type || r.type === type)).length;
    for (const side of ['dnsmasq', 'hadns'] as const) {
      const f = fakes[side];
      const all = [f.up, f.cond, f.trunc];
      const sum = (name: string, type?: string) => all.reduce((n, u) => n + forwarded(u, name, type), 0);
      for (const [name, type] of [['xpt.redhat.cn', 'A'], ['host1.lan.test'], ['nothere.lan.test'], ['lan.test'], ['blocked.test'],
        ['deep.sub.blocked.test'], ['hr.test', 'A'], ['cn.test', 'CNAME'], ['txt.test', 'TXT'], ['x.wild.test', 'A'], ['_ldap._tcp.srv.test']]) {
        assert.equal(sum(name, type), 0, `${side} forwarded the local question ${name} ${type ?? '(any type)'}`);
      }
      assert.ok(f.cond.count('c1.cond.test') >= 1, `${side} did not forward c1.cond.test to the conditional server`);
      assert.equal(f.up.count('c1.cond.test'), 0, `${side} sent c1.cond.test to the default upstream`);
      assert.equal(sum('plainname'), 0, `${side} forwarded a single-label name despite domain-needed`);
      assert.equal(sum('99.0.0.10.in-addr.arpa'), 0, `${side} forwarded a private reverse lookup despite bogus-priv`);
      // up0.test A was asked 6 times (3 transports at once, then again from cache). dnsmasq forwards
      // the three concurrent ones separately; hadns merges identical in-flight questions.
      assert.ok(f.up.count('up0.test') >= 1 && f.up.count('up0.test') <= 3, `${side} asked upstream ${f.up.count('up0.test')} times for up0.test`);
    }
    // hadns answers every type of a locally known name itself (see 'local-name-other-type').
    for (const name of ['xpt.redhat.cn', 'only6.test', 'hr.test', 'txt.test', 'mx.test', 'wild.test', 'wild6.test']) {
      assert.equal(fakes.hadns.up.count(name), 0, `hadns forwarded a question for the local name ${name}`);
    }
  });
});
