/**
 * Differential test against the REAL nginx: the article's stream {} config (ports adapted to
 * loopback) runs in nginx and, imported, in hadns, in front of the same fake DNS backends.
 * Both must serve the same answers; then a backend black-holes, which nginx's per-session UDP
 * keeps sending queries to while hadns's DNS mode loses none.
 *
 * Needs nginx with the stream module (Debian: nginx-light + libnginx-mod-stream). Without it
 * the test is skipped locally and fails under CI=true, so a missing install step shows.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import dgram from 'node:dgram';
import { once } from 'node:events';
import dnsPacket from 'dns-packet';
import { FakeUpstream, startFakes } from '../helpers/fake-upstream.js';
import { importNginx } from '../../src/config/legacy/nginx.js';
import { startBalancer, type Balancer } from '../../src/balancer/service.js';
import type { ServiceInput } from '../../src/balancer/config.js';
import { silentLog } from '../../src/balancer/sockets.js';
import { buildQuery } from '../../src/dns/message.js';

const NGINX = '/usr/sbin/nginx';
const STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';
const available = existsSync(NGINX) && existsSync(STREAM_MODULE);
/** Only on a developer machine without nginx: in CI a missing nginx fails the run (below). */
const skip = available ? false : `nginx with the stream module is not installed (${NGINX})`;
if (!available && process.env.CI) throw new Error(`nginx with the stream module is required (${NGINX}, ${STREAM_MODULE})`);

const root = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/dist\/$/, '/');
const fixture = readFileSync(join(root, 'test/fixtures/nginx/article-udp-dns.conf'), 'utf8');

let prefix = '';
let nginx: ChildProcess | null = null;
let nginxPort = 0;
let fakes: FakeUpstream[] = [];
let ports: number[] = [];
const balancers: Balancer[] = [];

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  const p = s.address().port;
  s.close();
  return p;
}

/** One query from a fresh source port (as separate clients do); null after timeoutMs. */
function ask(port: number, name: string, type: string, id: number, timeoutMs = 1000): Promise<Buffer | null> {
  const s = dgram.createSocket('udp4');
  return new Promise((resolve) => {
    const t = setTimeout(() => { s.close(); resolve(null); }, timeoutMs);
    s.on('message', (m) => { clearTimeout(t); s.close(); resolve(m); });
    s.on('error', () => { clearTimeout(t); s.close(); resolve(null); });
    s.send(buildQuery(name, type, { id }), port, '127.0.0.1');
  });
}

function adapt(text: string, ports: number[], listenPort: number): string {
  return text
    .replace('172.22.10.237:53', `127.0.0.1:${ports[0]}`)
    .replace('172.22.10.50:53', `127.0.0.1:${ports[1]}`)
    .replace('listen 53 udp', `listen 127.0.0.1:${listenPort} udp`);
}

before(async () => {
  if (!available) return;
  ({ fakes, ports } = await startFakes(2, () => new FakeUpstream()
    .add('www.xpt.com', 'A', ['192.168.111.111'])
    .add('mail.xpt.com', 'MX', [{ preference: 10, exchange: 'mx.xpt.com' }])
    .add('txt.xpt.com', 'TXT', ['v=spf1 -all'])));
  nginxPort = await freeUdpPort();
  prefix = mkdtempSync(join(tmpdir(), 'hadns-nginx-'));
  mkdirSync(join(prefix, 'logs'));
  const conf = `load_module ${STREAM_MODULE};\ndaemon off;\npid ${prefix}/nginx.pid;\nerror_log ${prefix}/logs/error.log;\n`
    + adapt(fixture, ports, nginxPort);
  writeFileSync(join(prefix, 'nginx.conf'), conf);
  nginx = spawn(NGINX, ['-p', prefix, '-c', join(prefix, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  nginx.stderr!.on('data', (d) => { stderr += d; });
  // Ready when it answers (polling: nginx signals readiness no other way in the foreground).
  const t0 = Date.now();
  for (;;) {
    if (nginx.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
    if (await ask(nginxPort, 'www.xpt.com', 'A', 1, 200)) break;
    if (Date.now() - t0 > 5000) throw new Error(`nginx not answering: ${stderr}`);
  }
});

after(async () => {
  await Promise.all(balancers.map((b) => b.close()));
  if (nginx && nginx.exitCode === null) {
    const exited = once(nginx, 'exit');
    nginx.kill('SIGTERM'); // by PID: the child we spawned (its workers follow the master)
    await exited;
  }
  await Promise.all(fakes.map((f) => f.close()));
  if (prefix) rmSync(prefix, { recursive: true, force: true });
});

async function startImported(mode?: 'dns'): Promise<number> {
  const imp = importNginx('nginx.conf', adapt(fixture, ports, 53));
  assert.equal(imp.diagnostics.filter((d) => d.severity === 'error').length, 0);
  const svc = imp.balancer.services![0] as ServiceInput;
  svc.listen = ['udp://127.0.0.1:0']; // the one change: an ephemeral port instead of 53
  if (mode) svc.mode = mode; else svc.mode = 'udp'; // as nginx would: generic UDP sessions
  const bal = await startBalancer({ services: [svc] }, { log: silentLog });
  balancers.push(bal);
  return bal.addresses()[0].port;
}

function norm(b: Buffer | null): unknown {
  if (!b) return null;
  const p = dnsPacket.decode(b);
  return { id: p.id, rcode: (p as { rcode?: string }).rcode, flags: p.flags, questions: p.questions, answers: p.answers, authorities: p.authorities };
}

test('nginx and hadns (imported config) give the same answers in front of the same backends', { skip }, async () => {
  const generic = await startImported();
  const dns = await startImported('dns');
  const qs: [string, string][] = [
    ['www.xpt.com', 'A'], ['WWW.Xpt.Com', 'A'], ['mail.xpt.com', 'MX'], ['txt.xpt.com', 'TXT'], ['nx.xpt.com', 'A'], ['www.xpt.com', 'AAAA'],
  ];
  let id = 100;
  for (const [name, type] of qs) {
    id++;
    const [a, b, c] = await Promise.all([ask(nginxPort, name, type, id), ask(generic, name, type, id), ask(dns, name, type, id)]);
    assert.ok(a, `nginx answered ${name}/${type}`);
    assert.deepEqual(norm(b), norm(a), `hadns generic UDP = nginx for ${name}/${type}`);
    assert.deepEqual(norm(c), norm(a), `hadns DNS mode = nginx for ${name}/${type}`);
  }
});

test('a black-holed backend: nginx loses queries, hadns DNS mode loses none', { skip }, async () => {
  const dns = await startImported('dns');
  fakes[1].behaviour = { kind: 'dead' };
  try {
    const run = async (port: number): Promise<number> => {
      let lost = 0;
      for (let batch = 0; batch < 2; batch++) {
        const r = await Promise.all(Array.from({ length: 40 }, (_, i) => ask(port, 'www.xpt.com', 'A', 2000 + batch * 40 + i, 700)));
        lost += r.filter((x) => x === null).length;
      }
      return lost;
    };
    const [nginxLost, hadnsLost] = await Promise.all([run(nginxPort), run(dns)]);
    assert.equal(hadnsLost, 0, 'hadns retried every query on the live backend');
    assert.ok(nginxLost >= 20, `nginx lost ${nginxLost}/80 (per-session UDP, no retry): the fault hadns fixes`);
  } finally {
    fakes[1].behaviour = { kind: 'normal' };
  }
});
