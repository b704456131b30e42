/**
 * Reloads with a large hosts file: the tables are built in slices (buildTablesAsync), so the
 * resolver answers from the old tables while the new ones build, and reloads run in order.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startResolver } from '../helpers/resolver.js';
import { udpQuery, answersOf } from '../helpers/dns-client.js';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { ResolverService } from '../../src/resolver/service.js';
import { resolverSchema } from '../../src/config/schema.js';

const dir = mkdtempSync(join(tmpdir(), 'hadns-reload-'));
const services: ResolverService[] = [];
after(async () => {
  for (const s of services) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

function bigHosts(file: string, first: string): void {
  const lines = [`${first} h0.big.test`];
  for (let i = 1; i < 200_000; i++) lines.push(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255} h${i}.big.test`);
  writeFileSync(file, lines.join('\n') + '\n');
}

test('a reload of a 200k-line hosts file answers from the old tables while it builds, then swaps', async () => {
  const file = join(dir, 'hosts');
  bigHosts(file, '10.0.0.0');
  const { svc, port, cfg } = await startResolver({ hosts_files: [file], upstreams: { servers: [] } });
  services.push(svc);
  assert.deepEqual(answersOf(await udpQuery(port, 'h199999.big.test')), ['A 10.3.13.63']);
  bigHosts(file, '192.0.2.77');
  let done = false;
  const reloaded = svc.reload(cfg).then(() => { done = true; });
  const t0 = performance.now();
  const during = await udpQuery(port, 'h0.big.test');
  const ms = performance.now() - t0;
  // Built in one go (as before), the reload had finished before this query was even read.
  assert.equal(done, false, 'the answer came only after the reload');
  assert.deepEqual(answersOf(during), ['A 10.0.0.0']);
  assert.ok(ms < 500, `answered after ${ms.toFixed(0)} ms`);
  await reloaded;
  assert.deepEqual(answersOf(await udpQuery(port, 'h0.big.test')), ['A 192.0.2.77']);
});

test('reloads run in the order they were asked for, a file refresh with the config current by then', async () => {
  const file = join(dir, 'hosts-order');
  bigHosts(file, '10.0.0.0');
  // The log tells when each reload is done ('resolver reloaded'), without waiting blindly.
  let reloadsDone = 0;
  const waiters: (() => void)[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      if (String(chunk).includes('"msg":"resolver reloaded"')) { reloadsDone++; for (const w of waiters.splice(0)) w(); }
      cb();
    },
  });
  const reloads = async (n: number) => { while (reloadsDone < n) await new Promise<void>((r) => waiters.push(r)); };
  const big = resolverSchema.parse({ listen: ['127.0.0.1:0'], hosts_files: [file], upstreams: { servers: [] }, local_ttl: 0 });
  const svc = await ResolverService.start(big, pino({ level: 'info' }, sink));
  services.push(svc);
  const port = svc.addresses().find((a) => a.proto === 'udp')!.port;
  // A slow reload (the big file) asked first must not land after a fast one asked second.
  const small = { ...big, hosts_files: [], local_ttl: 30 };
  await Promise.all([svc.reload({ ...big, local_ttl: 60 }), svc.reload(small)]);
  assert.equal(svc.config.local_ttl, 30);
  // A refresh (a file changed) asked while a config reload builds runs after it, with that
  // config, not with the (slow, big-file) one that was current when the refresh was asked for.
  await svc.reload({ ...big, local_ttl: 60 });
  assert.deepEqual(answersOf(await udpQuery(port, 'h0.big.test')), ['A 10.0.0.0']);
  const back = svc.reload({ ...small, local_ttl: 45 });
  svc.refreshFiles();
  await back;
  await reloads(5);
  assert.equal(svc.config.local_ttl, 45);
  assert.deepEqual(svc.config.hosts_files, []);
  assert.deepEqual(answersOf(await udpQuery(port, 'h0.big.test')), []);
});

test('an API record write keeps the hosts table instead of reading and building the files again', async () => {
  const file = join(dir, 'hosts-api');
  bigHosts(file, '10.0.0.0');
  const { svc, port, cfg } = await startResolver({ hosts_files: [file], upstreams: { servers: [] } });
  services.push(svc);
  const table = svc.resolver.current.local.hosts;
  await svc.setApiRecords([{ name: 'api.big.test', type: 'A', value: '192.0.2.9' }]);
  assert.equal(svc.resolver.current.local.hosts, table, 'the hosts part was built again');
  assert.deepEqual(answersOf(await udpQuery(port, 'api.big.test')), ['A 192.0.2.9']);
  assert.deepEqual(answersOf(await udpQuery(port, 'h199999.big.test')), ['A 10.3.13.63']);
  // A reload reads the files again, and keeps the API's records.
  await svc.reload(cfg);
  assert.notEqual(svc.resolver.current.local.hosts, table);
  assert.deepEqual(answersOf(await udpQuery(port, 'api.big.test')), ['A 192.0.2.9']);
});
