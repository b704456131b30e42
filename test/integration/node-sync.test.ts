/**
 * Both nodes' local records stay identical: a change on one reaches the peer without copying,
 * a node that was down catches up when it returns, and status says whether the pair is in sync.
 * Two real hadns processes on loopback, peered through their APIs.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { once } from 'node:events';
import { HadnsProcess } from '../helpers/hadns-process.js';
import { udpQuery, answersOf, until } from '../helpers/dns-client.js';
import { freePort } from '../../src/util/net.js';

const dir = mkdtempSync(join(tmpdir(), 'hadns-sync-'));
const procs: HadnsProcess[] = [];
after(async () => {
  for (const p of procs) p.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  rmSync(dir, { recursive: true, force: true });
});


const TOKEN = 'pair-secret-token-0123456789';

function startNode(name: string, apiPort: number, peerPort: number): HadnsProcess {
  const cfg = join(dir, `${name}.yaml`);
  writeFileSync(cfg, `log: { format: json }
node:
  name: ${name}
  state_dir: ${join(dir, name)}
  peers: [{ name: peer, api: "http://127.0.0.1:${peerPort}" }]
resolver:
  listen: ["127.0.0.1:0"]
api: { listen: "127.0.0.1:${apiPort}", token: "${TOKEN}" }
`);
  const h = new HadnsProcess(['start', '--config', cfg]);
  procs.push(h);
  return h;
}

async function api(port: number, path: string, init: RequestInit = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { ...init, headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}`, ...(init.headers ?? {}) } });
  return { status: res.status, body: await res.json() };
}

test('records added, changed and deleted on one node reach the other; a returning node catches up', async () => {
  const [pa, pb] = [await freePort(), await freePort()];
  const a = startNode('node-a', pa, pb);
  let b = startNode('node-b', pb, pa);
  await Promise.all([a.waitFor((l) => l.msg === 'api listening'), b.waitFor((l) => l.msg === 'api listening')]);
  const [da, db] = [await a.udpPort(), await b.udpPort()];

  const add = await api(pa, '/api/v1/records', { method: 'POST', body: JSON.stringify({ name: 'app.corp.test', type: 'A', value: '10.0.0.7' }) });
  assert.equal(add.status, 201);
  await until(async () => answersOf(await udpQuery(db, 'app.corp.test'))[0] === 'A 10.0.0.7', 8000);

  // Change on B: A follows.
  const id = encodeURIComponent(add.body.record.id);
  const upd = await api(pb, `/api/v1/records/${id}`, { method: 'PUT', body: JSON.stringify({ name: 'app.corp.test', type: 'A', value: '10.0.0.8' }) });
  assert.equal(upd.status, 200, JSON.stringify(upd.body));
  await until(async () => answersOf(await udpQuery(da, 'app.corp.test'))[0] === 'A 10.0.0.8', 8000);
  assert.deepEqual(answersOf(await udpQuery(da, 'app.corp.test')), ['A 10.0.0.8'], 'the old value is gone');

  // The pair says it is in sync.
  await until(async () => (await api(pa, '/api/v1/status')).body.peer?.peers?.[0]?.inSync === true, 8000);

  // B goes down; A changes; B comes back with its state dir and catches up.
  b.kill('SIGTERM');
  await b.exited;
  await api(pa, '/api/v1/records', { method: 'POST', body: JSON.stringify({ name: 'late.corp.test', type: 'TXT', value: 'added while b was down' }) });
  const del = await api(pa, `/api/v1/records/${encodeURIComponent(upd.body.record.id)}`, { method: 'DELETE' });
  assert.equal(del.status, 200);
  const st = await until(async () => { const r = await api(pa, '/api/v1/status'); return r.body.peer.peers[0].inSync === false ? r : null; }, 5000);
  assert.ok(st!.body.peer.peers[0].lastError, 'A knows the peer is not in sync while it is down, and why');
  b = startNode('node-b', pb, pa);
  await b.waitFor((l) => l.msg === 'api listening');
  const db2 = await b.udpPort();
  await until(async () => answersOf(await udpQuery(db2, 'late.corp.test', 'TXT'))[0] === 'TXT ["added while b was down"]', 10_000);
  // B had 10.0.0.8 on disk from before; the deletion reached it (no upstreams here: not local → SERVFAIL).
  assert.deepEqual(answersOf(await udpQuery(db2, 'app.corp.test')), [], 'the deletion reached B too');
});

test('the sync endpoint refuses requests without the token and malformed records', async () => {
  const [pa, pb] = [await freePort(), await freePort()];
  const a = startNode('solo', pa, pb);
  await a.waitFor((l) => l.msg === 'api listening');
  const noTok = await fetch(`http://127.0.0.1:${pa}/api/v1/sync/records`, { method: 'POST', body: '{"node":"x","records":[]}', headers: { 'Content-Type': 'application/json' } });
  assert.equal(noTok.status, 401);
  const bad = await api(pa, '/api/v1/sync/records', { method: 'POST', body: JSON.stringify({ node: 'liar', records: [{ name: 'x.test', type: 'A' }] }) });
  assert.equal(bad.status, 400);
  const badVal = await api(pa, '/api/v1/sync/records', { method: 'POST', body: JSON.stringify({ node: 'liar', records: [{ name: 'x.test', type: 'A', value: 'not-an-ip', updatedAt: 1, node: 'liar' }] }) });
  assert.equal(badVal.status, 400, 'a bad value from a peer is refused, not stored');
  assert.match(badVal.body.error, /not an IPv4 address/);
});
