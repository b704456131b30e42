/**
 * The config readers on broken files: the native YAML (`parseNative`), the legacy importers
 * (dnsmasq.conf, nginx.conf, keepalived.conf) and hosts files. Each
 * fixture mutated a few hundred ways (characters cut or inserted — braces, quotes, semicolons,
 * NUL, non-ASCII —, lines dropped, doubled or swapped, numbers made huge or negative, the file
 * truncated). Whatever the damage, an importer must come back with its result and diagnostics
 * that carry a file, a line and a message, or throw an Error that says where; never a crash
 * of its own (TypeError, RangeError, a stack overflow) and never a hang. Seeded;
 * HADNS_FUZZ_SEED=N changes the seed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { importDnsmasq } from '../../src/config/legacy/dnsmasq.js';
import { importNginx } from '../../src/config/legacy/nginx.js';
import { importKeepalived } from '../../src/config/legacy/keepalived.js';
import { parseNative } from '../../src/config/load.js';
import { parseHosts } from '../../src/resolver/hosts.js';
import { HostsTable } from '../../src/resolver/hosts-table.js';
import type { Diagnostic } from '../../src/config/diagnostics.js';
import { prng } from '../helpers/fuzz.js';

const root = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/dist\/$/, '/');
const fx = (d: string, f: string) => readFileSync(join(root, 'test/fixtures', d, f), 'utf8');
const SEED = Number(process.env.HADNS_FUZZ_SEED ?? 1);
const ROUNDS = 300;

const INSERTS = ['{', '}', ';', '"', "'", '#', '=', ',', '/', ' ', '\n', '\t', '\\', '0', '9', 'x', '\0', 'é', '\u{1F600}', '-', '.', ':', '[', ']', '*', '$'];

function mutate(text: string, rnd: () => number): string {
  let s = text;
  for (let k = 1 + Math.floor(rnd() * 3); k > 0; k--) {
    const at = Math.floor(rnd() * (s.length + 1));
    const lines = s.split('\n');
    const li = Math.floor(rnd() * lines.length), lj = Math.floor(rnd() * lines.length);
    switch (Math.floor(rnd() * 8)) {
      case 0: s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rnd() * 20)); break; // cut
      case 1: s = s.slice(0, at) + INSERTS[Math.floor(rnd() * INSERTS.length)] + s.slice(at); break;
      case 2: lines.splice(li, 1); s = lines.join('\n'); break;
      case 3: lines.splice(li, 0, lines[li] ?? ''); s = lines.join('\n'); break;
      case 4: [lines[li], lines[lj]] = [lines[lj]!, lines[li]!]; s = lines.join('\n'); break;
      case 5: s = s.replace(/\d+/g, (m) => (rnd() < 0.15 ? ['99999999999999999999', '-1', '0', '4294967296', '1e9', '0x10'][Math.floor(rnd() * 6)]! : m)); break;
      case 6: s = s.slice(0, at); break; // truncated
      default: s = s.slice(0, at) + s.slice(at).replace(/[{};]/, ''); break; // one structural character gone
    }
  }
  return s;
}

function checkDiagnostics(ds: Diagnostic[], what: string): void {
  for (const d of ds) {
    assert.equal(typeof d.file, 'string', `${what}: diagnostic without a file: ${JSON.stringify(d)}`);
    assert.ok(Number.isInteger(d.line) && d.line >= 0, `${what}: diagnostic without a line: ${JSON.stringify(d)}`);
    assert.ok(typeof d.message === 'string' && d.message.length > 0, `${what}: diagnostic without a message: ${JSON.stringify(d)}`);
  }
}

/** Runs `fn` on many mutations of `text`: results must carry sound diagnostics; errors must be ours. */
function fuzz(name: string, text: string, fn: (t: string) => Diagnostic[]): void {
  const rnd = prng(SEED * 7919 + name.length);
  let errored = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const t = mutate(text, rnd);
    const what = `${name} (seed ${SEED}, round ${i})`;
    let ds: Diagnostic[];
    try {
      ds = fn(t);
    } catch (e) {
      errored++;
      // Refusing a file is fine; crashing on it is not.
      assert.ok(e instanceof Error, `${what}: threw a non-Error`);
      assert.ok(!(e instanceof TypeError) && !(e instanceof RangeError) && !(e instanceof ReferenceError),
        `${what}: crashed with ${e.name}: ${e.message}\n--- input ---\n${t}`);
      continue;
    }
    checkDiagnostics(ds, what);
  }
  // Most mutations still import (with diagnostics); if nearly all throw, the importer gives up
  // too easily on a broken line instead of reporting it and going on.
  assert.ok(errored < ROUNDS / 2, `${name}: ${errored} of ${ROUNDS} mutations refused outright`);
}

// Includes are answered from nowhere (dnsmasq) or resolve beside a path that does not exist: the
// fuzz stays inside the given text.
test('dnsmasq.conf importer: broken files give diagnostics, never a crash', () => {
  const noFiles = (p: string): string => { throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' }); };
  for (const f of ['article.conf', 'full.conf']) fuzz(`dnsmasq/${f}`, fx('dnsmasq', f), (t) => importDnsmasq('/nonexistent/dnsmasq.conf', t, noFiles).diagnostics);
});

test('nginx.conf importer: broken files give diagnostics, never a crash', () => {
  for (const f of ['article-final.conf', 'article-udp-dns.conf', 'full-stream.conf']) fuzz(`nginx/${f}`, fx('nginx', f), (t) => importNginx('/nonexistent/nginx.conf', t).diagnostics);
});

test('keepalived.conf importer: broken files give diagnostics, never a crash', () => {
  for (const f of ['article-ch4-a.conf', 'article-ch3-a-annotated.conf', 'full.conf']) fuzz(`keepalived/${f}`, fx('keepalived', f), (t) => importKeepalived('/nonexistent/keepalived.conf', t).diagnostics);
});

test('native YAML config: broken files give diagnostics with file and line, never a crash', () => {
  for (const f of ['article/node-a.yaml', 'active-active/node-b.yaml']) {
    const text = readFileSync(join(root, 'examples', f), 'utf8');
    fuzz(`examples/${f}`, text, (t) => parseNative(t, '/nonexistent/hadns.yaml').diagnostics);
  }
});

test('hosts files: broken lines give diagnostics with their line, never a crash; good lines still load', () => {
  const hosts = `127.0.0.1\tlocalhost
::1 localhost ip6-localhost ip6-loopback
192.0.2.10 www.example.internal www   # the web server
198.51.100.7 db.example.internal
fe80::1%eth0 linklocal.example.internal
10.0.0.300 bad.example.internal
2001:db8::5 v6.example.internal v6
`;
  fuzz('hosts', hosts, (t) => {
    const r = parseHosts(t, '/nonexistent/hosts');
    for (const e of r.entries) assert.ok(typeof e.address === 'string' && e.names.length > 0, `entry ${JSON.stringify(e)}`);
    // The resolver's table, fed the same bytes, holds what the parser found: every name with its address.
    const table = new HostsTable();
    const buf = Buffer.from(t);
    table.addText(buf, 0, buf.length, '/nonexistent/hosts', 1);
    assert.deepEqual(table.diagnostics, r.diagnostics);
    for (const e of r.entries) {
      for (const n of e.names) {
        const a = table.addresses(n);
        assert.ok(a === e.address || (Array.isArray(a) && a.includes(e.address)), `${n}: ${JSON.stringify(a)} lacks ${e.address}`);
      }
    }
    return r.diagnostics;
  });
  // Unharmed lines load around a broken one.
  const r = parseHosts('192.0.2.1 a.test\n300.1.1.1 bad.test\n192.0.2.2 b.test\n', 'h');
  assert.deepEqual(r.entries.map((e) => e.names[0]), ['a.test', 'b.test']);
  assert.deepEqual(r.diagnostics.map((d) => d.line), [2]);
});
