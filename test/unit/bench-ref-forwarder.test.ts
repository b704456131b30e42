/**
 * bench/ref-forwarder.c, the C floor of `bench/balancer.ts --ref-forwarder`: compiled here with cc
 * and run on loopback in front of two UDP backends this test plays itself. It must forward round
 * robin with IDs of its own (over several sockets per backend with --sockets, and with the
 * stand-ins for a balancer's extra costs: --work-ns, --pause-us, --touch-bytes, --epoll-timeout;
 * and built as an addon on Node's loop, bench/ref-on-loop.ts), give each client its ID back,
 * drop what matches no query, and refuse bad arguments. Everything it starts is killed again by
 * PID.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import dgram from 'node:dgram';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/util/net.js';
import { killChild as kill } from '../helpers/child.js';

const src = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '../../bench/ref-forwarder.c' : '../../../bench/ref-forwarder.c', import.meta.url));

/** Compiled once for the whole file (the tests only run it). */
let built: string | undefined;
const dir = mkdtempSync(join(tmpdir(), 'hadns-ref-fwd-'));
after(() => rmSync(dir, { recursive: true, force: true }));
function build(): string {
  if (built !== undefined) return built;
  const bin = join(dir, 'ref-forwarder');
  const r = spawnSync('cc', ['-O2', '-Wall', '-Werror', '-pthread', '-o', bin, src], { encoding: 'utf8' });
  assert.equal(r.status, 0, `cc: ${r.stderr}`);
  return (built = bin);
}

/** A query for a.test A with the given ID. */
function query(id: number): Buffer {
  const b = Buffer.from([0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0x61, 4, 0x74, 0x65, 0x73, 0x74, 0, 0, 1, 0, 1]);
  b.writeUInt16BE(id, 0);
  return b;
}

interface Backend { sock: dgram.Socket; port: number; seen: number[]; last?: dgram.RemoteInfo }
async function backend(name: number): Promise<Backend> {
  const sock = dgram.createSocket('udp4');
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  const b: Backend = { sock, port: sock.address().port, seen: [] };
  sock.on('message', (m, r) => {
    b.seen.push(m.readUInt16BE(0));
    b.last = r;
    const a = Buffer.from(m);
    a[2]! |= 0x80; // QR: the answer, the rest echoed
    a[3] = name; // which backend answered, in the (otherwise unused) RA/Z/RCODE byte
    sock.send(a, r.port, r.address);
  });
  return b;
}

async function start(bin: string, args: string[]): Promise<ChildProcess> {
  const p = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout!.on('data', (d) => { out += d; });
  while (!out.includes('ready')) {
    const [ended] = await Promise.race([once(p.stdout!, 'data'), once(p, 'exit').then(() => ['exit'])]);
    if (ended === 'exit') throw new Error(`ref-forwarder exited (${p.exitCode})`);
  }
  return p;
}

async function client(): Promise<{ sock: dgram.Socket; next: () => Promise<Buffer> }> {
  const sock = dgram.createSocket('udp4');
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  const queue: Buffer[] = [];
  const waiting: ((b: Buffer) => void)[] = [];
  sock.on('message', (m) => { const w = waiting.shift(); if (w) w(m); else queue.push(m); });
  return { sock, next: () => new Promise((res) => { const m = queue.shift(); if (m) res(m); else waiting.push(res); }) };
}

/** The addon build (-DREF_NAPI), for bench/ref-on-loop.ts, compiled once like the program. */
let builtAddon: string | undefined;
function buildAddon(): string {
  if (builtAddon !== undefined) return builtAddon;
  const inc = [join(dirname(process.execPath), '..'), '/usr', '/usr/local'].map((p) => join(p, 'include', 'node'))
    .find((d) => existsSync(join(d, 'node_api.h')));
  assert.ok(inc, 'Node\'s headers (node_api.h), as native/build.mjs uses them');
  const out = join(dir, 'ref-forwarder.node');
  const r = spawnSync('cc', ['-shared', '-fPIC', '-DREF_NAPI', `-I${inc}`, '-O2', '-Wall', '-Werror', '-pthread', '-o', out, src], { encoding: 'utf8' });
  assert.equal(r.status, 0, `cc: ${r.stderr}`);
  return (builtAddon = out);
}
const runner = fileURLToPath(new URL('../../bench/ref-on-loop.js', import.meta.url));

/** Each way to run the forwarder: its name, the command and arguments before the ports, and for
 * the addon on Node's loop its JS mode (null: the program). */
type Mode = { name: string; cmd: () => [string, string[]]; js: string | null };
const modes: Mode[] = [
  ...[[], ['--work-ns', '2000', '--work-in', 'thread'], ['--work-ns', '2000', '--work-in', 'inline'], ['--sockets', '4'],
    ['--pause-us', '200', '--pause-after', '2'], ['--touch-bytes', '4096', '--touch-span', '1024'], ['--epoll-timeout', '30'], ['--batch', '1']]
    .map((m): Mode => ({ name: `ref-forwarder ${m.join(' ') || '(no work)'}`, cmd: () => [build(), m], js: null })),
  ...['none', 'call', 'work:3', 'work:3:alloc', 'thread', 'thread:3']
    .map((js): Mode => ({ name: `ref-forwarder on Node's loop, JS ${js}`, cmd: () => [process.execPath, [runner, buildAddon(), '--js', js, '--']], js })),
];
for (const { name, cmd, js } of modes) {
  test(`${name}: round robin, client IDs restored, strays dropped`, async (t) => {
    const [bin, mode] = cmd();
    const [a, b] = [await backend(1), await backend(2)];
    const c = await client();
    t.after(() => { a.sock.close(); b.sock.close(); c.sock.close(); });
    const port = await freePort();
    const p = await start(bin, [...mode, String(port), String(a.port), String(b.port)]);
    t.after(() => kill(p));
    const sources = new Map<Backend, number[]>([[a, []], [b, []]]);
    for (const x of [a, b]) x.sock.on('message', (_m, r) => sources.get(x)!.push(r.port));
    const ids = [0x1111, 0x2222, 0x3333, 0x4444];
    const answeredBy: number[] = [];
    for (const id of ids) {
      c.sock.send(query(id), port, '127.0.0.1');
      const m = await c.next();
      assert.equal(m.readUInt16BE(0), id, 'the client gets its own ID back');
      assert.ok(m[2]! & 0x80);
      answeredBy.push(m[3]!);
    }
    assert.deepEqual(answeredBy, [1, 2, 1, 2], 'round robin over the two backends');
    for (const up of [...a.seen, ...b.seen]) assert.ok(!ids.includes(up), `upstream ID ${up} is the forwarder's own`);
    if (mode[0] === '--sockets') assert.equal(new Set(sources.get(a)).size, 2, 'two queries to backend a, from two of its sockets');
    // A stray (an ID already answered) from backend a, then a query that goes to a: the stray is
    // ahead of the real answer in the same socket, so had it been relayed the client would get it first.
    const stray = query(a.seen[0]!);
    stray[2]! |= 0x80;
    stray[3] = 9;
    a.sock.send(stray, a.last!.port, a.last!.address);
    c.sock.send(query(0x5555), port, '127.0.0.1');
    const m = await c.next();
    assert.equal(m.readUInt16BE(0), 0x5555);
    assert.equal(m[3], 1, 'answered by backend a, and the stray before it was dropped');
    if (js !== null) {
      // Five queries, each alone in its batch: JS was called once per batch (unless --js none, or
      // thread: there the forwarding never touched Node's loop).
      let out = '';
      p.stdout!.on('data', (d) => { out += d; });
      const exited = once(p, 'exit');
      p.kill('SIGTERM');
      await exited;
      if (js === 'thread:3') assert.match(out, /js calls [1-9]\d*\n/, 'the timer ran');
      else assert.match(out, new RegExp(`js calls ${js === 'none' || js === 'thread' ? 0 : 5}\\n`));
    }
  });
}

test('ref-on-loop refuses bad arguments', () => {
  const addon = buildAddon();
  for (const args of [[addon, '--js', 'work:x', '--', '5300', '5301'], [addon, '--bogus'], [addon, '--', '0', '5301'], [addon, '--js', 'thread', '--', '0', '5301'], []]) {
    const r = spawnSync(process.execPath, [runner, ...args], { encoding: 'utf8', timeout: 10000 });
    assert.equal(r.status, 2, `${args.join(' ')}: exit 2, not ${r.status} (${r.stderr})`);
    assert.match(r.stderr, /ref-on-loop: /);
  }
});

test('ref-forwarder refuses bad arguments', () => {
  const bin = build();
  for (const args of [[], ['53'], ['0', '53'], ['--batch', '0', '5300', '5301'], ['--sockets', '5', '5300', '5301'], ['--bogus', '1', '5300', '5301'], ['--work-ns'],
    ['--pause-us', '100', '5300', '5301'], ['--pause-after', '8', '5300', '5301'], ['--touch-bytes', '-1', '5300', '5301'],
    ['--touch-span', '0', '5300', '5301'], ['--epoll-timeout', '-2', '5300', '5301']]) {
    const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 5000 });
    assert.equal(r.status, 2, `${args.join(' ')}: exit 2, not ${r.status} (${r.stderr})`);
    assert.match(r.stderr, /usage|bad port|unknown option|needs a value/);
  }
});
