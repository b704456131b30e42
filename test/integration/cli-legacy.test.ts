import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { HadnsProcess, runHadns } from '../helpers/hadns-process.js';
import { udpQuery, answersOf } from '../helpers/dns-client.js';
import { freePort } from '../../src/util/net.js';

const dir = mkdtempSync(join(tmpdir(), 'hadns-legacy-'));
const procs: HadnsProcess[] = [];
after(async () => {
  for (const p of procs) p.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  rmSync(dir, { recursive: true, force: true });
});


function files(resolverPort: number, balancerPort: number) {
  const hosts = join(dir, 'dnsmasq.hosts');
  writeFileSync(hosts, '192.168.111.111 xpt.redhat.cn\n');
  const dnsmasq = join(dir, 'dnsmasq.conf');
  writeFileSync(dnsmasq, `port=${resolverPort}\nlisten-address=127.0.0.1\nno-resolv\nno-hosts\naddn-hosts=${hosts}\nstrict-order\n`);
  const nginx = join(dir, 'nginx.conf');
  writeFileSync(nginx, `worker_processes 4;\nevents {\n worker_connections 1024;\n}\nstream {\n upstream dns {\n  server 127.0.0.1:${resolverPort} weight=1;\n }\n server {\n  listen 127.0.0.1:${balancerPort} udp;\n  proxy_connect_timeout 1s;\n  proxy_timeout 20s;\n  proxy_pass dns;\n }\n}\n`);
  return { dnsmasq, nginx };
}

test('start --dnsmasq --nginx: the article\'s two files run as they are (balancer in front of the resolver)', async () => {
  const [rp, bp] = [await freePort(), await freePort()];
  const f = files(rp, bp);
  const h = new HadnsProcess(['start', '--dnsmasq', f.dnsmasq, '--nginx', f.nginx]);
  procs.push(h);
  await h.waitFor((l) => l.msg === 'ready');
  // worker_processes / events are reported as not applicable, with file:line.
  assert.ok(h.lines.some((l) => l.level === 40 && /worker_processes/.test(String(l.msg)) && l.line === 1), h.stderr);
  assert.deepEqual(answersOf(await udpQuery(rp, 'xpt.redhat.cn')), ['A 192.168.111.111'], 'resolver directly');
  assert.deepEqual(answersOf(await udpQuery(bp, 'xpt.redhat.cn')), ['A 192.168.111.111'], 'through the balancer');
  h.kill('SIGTERM');
  assert.equal(await h.exited, 0);
});

test('import --dnsmasq --nginx writes one native config that check accepts', async () => {
  const f = files(5454, 53);
  const out = join(dir, 'hadns.yaml');
  const r = runHadns(['import', '--dnsmasq', f.dnsmasq, '--nginx', f.nginx, '-o', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /nginx\.conf:1: warning: .*worker_processes/);
  const c = runHadns(['check', '--config', out]);
  assert.equal(c.code, 0, c.stderr);
  const yaml = (await import('node:fs')).readFileSync(out, 'utf8');
  assert.match(yaml, /^resolver:/m);
  assert.match(yaml, /^balancer:/m);
  assert.match(yaml, /127\.0\.0\.1:5454/);
});

test('import with all three of the article\'s files writes one node config', async () => {
  const f = files(5454, 53);
  const ka = new URL('../../../test/fixtures/keepalived/article-ch4-a.conf', import.meta.url).pathname;
  const out = join(dir, 'node-a.yaml');
  const r = runHadns(['import', '--dnsmasq', f.dnsmasq, '--nginx', f.nginx, '--keepalived', ka, '-o', out]);
  assert.equal(r.code, 0, r.stderr);
  const c = runHadns(['check', '--config', out]);
  assert.equal(c.code, 0, c.stderr);
  const yaml = (await import('node:fs')).readFileSync(out, 'utf8');
  assert.match(yaml, /^vrrp:/m);
  assert.match(yaml, /vrid: 88/);
  assert.match(yaml, /label: ens192:0/);
  assert.match(yaml, /^# Imported by hadns .* from .*dnsmasq\.conf, .*nginx\.conf, .*article-ch4-a\.conf/m);
});
