/**
 * The operators' endpoint of a real `hadns start` process: health, readiness, metrics that move
 * with DNS traffic, the JSON API with its token rules, records that become DNS answers, the SSE
 * stream, and `hadns status`. Everything on loopback, ephemeral ports, killed by PID at the end.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import net from 'node:net';
import { HadnsProcess, runHadns } from '../helpers/hadns-process.js';
import { FakeUpstream } from '../helpers/fake-upstream.js';
import { udpQuery, answersOf } from '../helpers/dns-client.js';
import { prng } from '../helpers/fuzz.js';

const TOKEN = 'test-token-0123456789abcdef';
const AUTH = { Authorization: `Bearer ${TOKEN}` };
const dir = mkdtempSync(join(tmpdir(), 'hadns-observe-'));
const procs: HadnsProcess[] = [];
const up = new FakeUpstream().add('up.test', 'A', ['192.0.2.1']);
let upPort = 0;
let node: HadnsProcess;
let api = '';
let dns = 0;

function config(name: string, apiSection: string): string {
  return `node: { name: ${name}, state_dir: "${join(dir, name)}" }
log: { level: info, format: json }
${apiSection}
resolver:
  listen: ["127.0.0.1:0"]
  query_log: true
  upstreams: { servers: ["127.0.0.1#${upPort}"] }
  records: [{ name: fixed.test, type: A, value: 10.0.0.1 }]
`;
}

async function startNode(name: string, apiSection: string): Promise<HadnsProcess> {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, config(name, apiSection));
  const h = new HadnsProcess(['start', '--config', file]);
  procs.push(h);
  await h.waitFor((l) => l.msg === 'ready');
  return h;
}

async function apiUrl(h: HadnsProcess): Promise<string> {
  return String((await h.waitFor((l) => l.msg === 'api listening')).url);
}

async function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(api + path, { headers });
  const text = await res.text();
  let body: unknown = text;
  try { body = JSON.parse(text); } catch { /* metrics are text */ }
  return { status: res.status, body, headers: res.headers };
}

async function send(method: string, path: string, body: unknown, headers: Record<string, string> = AUTH): Promise<{ status: number; body: any }> {
  const res = await fetch(api + path, { method, headers: { 'Content-Type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

/** GET with an explicit Host header (fetch does not let a caller set Host). */
function getWithHost(path: string, host: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(api + path, { headers: { ...headers, Host: host } }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
    req.on('error', reject);
  });
}

/** A loopback port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const srv = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** Value of one sample in Prometheus text, e.g. metric(text, 'hadns_cache_hits_total'). */
function metric(text: string, name: string, labels = ''): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    const key = line.slice(0, sp);
    if (key === (labels ? `${name}{${labels}}` : name)) return Number(line.slice(sp + 1));
  }
  return undefined;
}

before(async () => {
  upPort = (await up.start()).port;
  node = await startNode('obs-a', `api: { listen: "127.0.0.1:0", token: "${TOKEN}" }`);
  api = await apiUrl(node);
  dns = await node.udpPort();
});

after(async () => {
  for (const p of procs) p.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  await up.close();
  rmSync(dir, { recursive: true, force: true });
});

test('the bound API address is logged and /health, /ready answer', async () => {
  assert.match(api, /^http:\/\/127\.0\.0\.1:\d+$/);
  const h = await get('/health');
  assert.equal(h.status, 200);
  assert.deepEqual(h.body, { status: 'ok', node: 'obs-a' });
  const r = await get('/ready');
  assert.equal(r.status, 200);
  assert.equal(r.body.ready, true);
});

test('/metrics: Prometheus text whose counters follow DNS traffic', async () => {
  const before = await get('/metrics');
  assert.equal(before.status, 200);
  assert.match(before.headers.get('content-type') ?? '', /^text\/plain/);
  const t0 = before.body as string;
  for (const name of ['hadns_dns_queries_total', 'hadns_dns_answers_by_source_total', 'hadns_cache_hits_total', 'hadns_cache_misses_total',
    'hadns_cache_entries', 'hadns_cache_evictions_total', 'hadns_upstream_srtt_seconds', 'hadns_forwarder_sent_total',
    'hadns_balancer_backend_up', 'hadns_vrrp_state', 'nodejs_eventloop_lag_seconds', 'hadns_node_info']) {
    assert.match(t0, new RegExp(`^# TYPE ${name} `, 'm'), name);
  }
  assert.equal(metric(t0, 'hadns_node_info', 'node="obs-a",version="0.1.0"'), 1);
  assert.equal(metric(t0, 'hadns_ready'), 1);
  const q0 = metric(t0, 'hadns_dns_queries_total')!;
  const hits0 = metric(t0, 'hadns_cache_hits_total')!;
  const upLabels = `upstream="127.0.0.1#${upPort}",group="default"`;
  const sent0 = metric(t0, 'hadns_upstream_sent_total', upLabels) ?? 0;
  // The DNS path runs on the batched native UDP sockets (the addon is built for the tests).
  assert.equal(metric(t0, 'hadns_udp_io_native'), 1);
  const rx0 = metric(t0, 'hadns_udp_datagrams_received_total') ?? 0;
  const tx0 = metric(t0, 'hadns_udp_datagrams_sent_total') ?? 0;

  assert.deepEqual(answersOf(await udpQuery(dns, 'fixed.test')), ['A 10.0.0.1']);
  assert.deepEqual(answersOf(await udpQuery(dns, 'up.test')), ['A 192.0.2.1']);
  assert.deepEqual(answersOf(await udpQuery(dns, 'up.test')), ['A 192.0.2.1']);

  const t1 = (await get('/metrics')).body as string;
  assert.equal(metric(t1, 'hadns_dns_queries_total'), q0 + 3);
  assert.ok(metric(t1, 'hadns_udp_datagrams_received_total')! >= rx0 + 3);
  assert.ok(metric(t1, 'hadns_udp_datagrams_sent_total')! >= tx0 + 3);
  assert.ok(metric(t1, 'hadns_udp_batches_total')! >= 1);
  assert.equal(metric(t1, 'hadns_udp_send_dropped_total'), 0);
  const byListener = t1.split('\n').filter((l) => l.startsWith('hadns_dns_queries_by_listener_total{listener="udp://127.0.0.1:'));
  assert.equal(byListener.length, 1, 'one UDP listener');
  assert.ok(Number(byListener[0]!.split(' ').pop()) >= 3);
  assert.equal(metric(t1, 'hadns_cache_hits_total'), hits0 + 1);
  assert.equal(metric(t1, 'hadns_upstream_sent_total', upLabels), sent0 + 1);
  assert.ok(metric(t1, 'hadns_dns_answers_by_source_total', 'source="local"')! >= 1);
  assert.ok(metric(t1, 'hadns_cache_entries')! >= 1);
  assert.ok(metric(t1, 'hadns_upstream_srtt_seconds', upLabels)! > 0);
  // The latency histogram counts the forwarded answer (a loopback answer lands in the 1 s bucket).
  assert.ok(metric(t1, 'hadns_upstream_rtt_seconds_count', upLabels)! >= 1);
  assert.equal(metric(t1, 'hadns_upstream_rtt_seconds_bucket', `${upLabels},le="+Inf"`), metric(t1, 'hadns_upstream_rtt_seconds_count', upLabels));
  assert.ok(metric(t1, 'hadns_upstream_rtt_seconds_bucket', `${upLabels},le="1"`)! >= 1);
});

test('GET /api/v1/status, /events and /queries', async () => {
  const s = await get('/api/v1/status');
  assert.equal(s.status, 200);
  assert.equal(s.body.node, 'obs-a');
  assert.equal(s.body.ready, true);
  assert.ok(s.body.resolver.listen.includes(`udp://127.0.0.1:${dns}`));
  assert.equal(s.body.resolver.upstreams[0].label, `127.0.0.1#${upPort}`);
  const e = await get('/api/v1/events?limit=5');
  assert.equal(e.status, 200);
  assert.ok(e.body.events.some((x: { kind: string }) => x.kind === 'start'));
  assert.equal((await get('/api/v1/events?limit=0')).status, 400);
  assert.equal((await get('/api/v1/events?limit=x')).body.error, 'limit: expected a whole number from 1 to 500');
  await udpQuery(dns, 'fixed.test');
  const q = await get('/api/v1/queries?limit=50&q=fixed.test');
  assert.equal(q.status, 200);
  assert.ok(q.body.queries.length >= 1);
  assert.ok(q.body.queries.every((x: { name: string }) => x.name === 'fixed.test'));
  assert.equal((await get('/api/v1/queries?q=nothing-like-this')).body.queries.length, 0);
  assert.equal((await get('/api/v1/nope')).status, 404);
  assert.equal((await send('POST', '/api/v1/status', {})).status, 405);
});

test('token: reads are open on loopback, changes need it (401), a DNS-name Host needs it, none configured → 403', async () => {
  const rec = { name: 'tok.test', type: 'A', value: '10.0.0.5' };
  const none = await send('POST', '/api/v1/records', rec, {});
  assert.equal(none.status, 401);
  assert.match(none.body.error, /changes need the API token/);
  const wrong = await send('POST', '/api/v1/records', rec, { Authorization: 'Bearer not-the-right-token-at-all' });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.body.error, 'invalid token');
  const res = await fetch(api + '/api/v1/records', { method: 'DELETE' });
  assert.equal(res.status, 401);
  assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="hadns"');
  // A browser page whose DNS name was rebound to 127.0.0.1 sends its own name as Host.
  assert.equal(await getWithHost('/api/v1/status', 'attacker.example'), 401);
  assert.equal(await getWithHost('/api/v1/queries', 'attacker.example:8053'), 401);
  assert.equal(await getWithHost('/api/v1/status', 'attacker.example', AUTH), 200);
  assert.equal(await getWithHost('/health', 'attacker.example'), 200);
  assert.equal(await getWithHost('/metrics', 'localhost:9999'), 200);
  assert.equal(await getWithHost('/metrics', '[::1]:8053'), 200);
  assert.equal(answersOf(await udpQuery(dns, 'tok.test')).length, 0, 'nothing was added');

  // A node with no token: read-only.
  const ro = await startNode('obs-ro', 'api: { listen: "127.0.0.1:0" }');
  const roApi = await apiUrl(ro);
  const r = await fetch(roApi + '/api/v1/records', { method: 'POST', body: JSON.stringify(rec), headers: AUTH });
  assert.equal(r.status, 403);
  assert.match((await r.json()).error, /none is configured \(set api\.token or api\.token_file\)/);
  assert.equal((await fetch(roApi + '/api/v1/status')).status, 200);
  ro.kill('SIGTERM');
  assert.equal(await ro.exited, 0);
});

test('records: add → resolvable, change → new answer, delete → NXDOMAIN; bad input → 4xx with a message', async () => {
  const add = await send('POST', '/api/v1/records', { name: 'app.test', type: 'A', value: '10.9.9.9', ttl: 60 });
  assert.equal(add.status, 201, JSON.stringify(add.body));
  assert.deepEqual(add.body.record, { id: 'app.test/A/10.9.9.9', name: 'app.test', type: 'A', value: '10.9.9.9', ttl: 60, origin: 'api' });
  const r1 = await udpQuery(dns, 'app.test');
  assert.deepEqual(answersOf(r1), ['A 10.9.9.9']);
  assert.equal((r1!.answers![0] as { ttl?: number }).ttl, 60);
  const list = await get('/api/v1/records');
  assert.deepEqual(list.body.records.map((r: { id: string; origin: string }) => `${r.origin} ${r.id}`).sort(),
    ['api app.test/A/10.9.9.9', 'config fixed.test/A/10.0.0.1']);

  const id = encodeURIComponent('app.test/A/10.9.9.9');
  const put = await send('PUT', `/api/v1/records/${id}`, { name: 'app.test', type: 'A', value: '10.9.9.8' });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  assert.deepEqual(answersOf(await udpQuery(dns, 'app.test')), ['A 10.9.9.8']);

  const del = await send('DELETE', `/api/v1/records/${encodeURIComponent('app.test/A/10.9.9.8')}`, undefined);
  assert.equal(del.status, 200);
  const gone = await udpQuery(dns, 'app.test');
  assert.equal(gone!.rcode, 'NXDOMAIN');
  assert.equal((await send('DELETE', `/api/v1/records/${encodeURIComponent('app.test/A/10.9.9.8')}`, undefined)).status, 404);

  const bad = await send('POST', '/api/v1/records', { name: 'bad.test', type: 'A', value: 'not-an-ip' });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error, /^value: /);
  assert.match((await send('POST', '/api/v1/records', { name: 'bad.test', type: 'NOPE', value: 'x' })).body.error, /^type: /);
  assert.match((await send('POST', '/api/v1/records', { name: 'bad.test', type: 'A' })).body.error, /^value: required/);
  assert.match((await send('POST', '/api/v1/records', { name: 'x.test', type: 'A', value: '10.0.0.1', colour: 'red' })).body.error, /unknown field\(s\): colour/);
  assert.match((await send('POST', '/api/v1/records', { name: 'x.test', type: 'A', value: '10.0.0.1', ttl: -1 })).body.error, /^ttl: /);
  const notJson = await send('POST', '/api/v1/records', '{"name": ');
  assert.equal(notJson.status, 400);
  assert.match(notJson.body.error, /^invalid JSON/);
  assert.equal((await send('POST', '/api/v1/records', '[1,2]')).status, 400);
  const huge = await send('POST', '/api/v1/records', { name: 'x.test', type: 'TXT', value: 'x'.repeat(100_000) });
  assert.equal(huge.status, 413);
  const cfgRec = await send('DELETE', `/api/v1/records/${encodeURIComponent('fixed.test/A/10.0.0.1')}`, undefined);
  assert.equal(cfgRec.status, 409);
  assert.match(cfgRec.body.error, /config file and is read-only/);
  assert.deepEqual(answersOf(await udpQuery(dns, 'fixed.test')), ['A 10.0.0.1']);
  assert.equal((await send('PUT', '/api/v1/records/%E0%A4%A', { name: 'x.test', type: 'A', value: '10.0.0.1' })).status, 400);

  const ev = await get('/api/v1/events?limit=20');
  assert.ok(ev.body.events.some((e: { kind: string; message: string }) => e.kind === 'records' && /app\.test/.test(e.message)));
  // The node is still fine after all that.
  assert.equal((await get('/ready')).status, 200);
});

test('/api/v1/stream: hello with status, 1 s stats ticks, and events as they happen', async () => {
  const ac = new AbortController();
  const res = await fetch(api + '/api/v1/stream', { signal: ac.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  const frames: { event: string; data: any }[] = [];
  const next = async (pred: (f: { event: string; data: any }) => boolean): Promise<{ event: string; data: any }> => {
    const deadline = Date.now() + 5000;
    for (;;) {
      const hit = frames.find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`no such frame; got ${frames.map((f) => f.event).join(',')}`);
      const { value, done } = await reader.read();
      if (done) throw new Error('stream ended');
      buf += value;
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const raw = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const event = /^event: (.*)$/m.exec(raw)?.[1] ?? 'message';
        const data = /^data: (.*)$/m.exec(raw)?.[1];
        if (data) frames.push({ event, data: JSON.parse(data) });
      }
    }
  };
  try {
    const hello = await next((f) => f.event === 'hello');
    assert.equal(hello.data.status.node, 'obs-a');
    assert.ok(Array.isArray(hello.data.events));
    const stats = await next((f) => f.event === 'stats');
    assert.equal(stats.data.node, 'obs-a');
    assert.equal((await send('POST', '/api/v1/records', { name: 'live.test', type: 'A', value: '10.1.1.1' })).status, 201);
    const ev = await next((f) => f.event === 'event' && f.data.kind === 'records');
    assert.match(ev.data.message, /live\.test/);
  } finally {
    ac.abort();
    await reader.cancel().catch(() => undefined);
  }
});

test('the console is served at / with its script and style; paths outside web/ are not', async () => {
  const res = await fetch(api + '/');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
  assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'self'/);
  assert.match(await res.text(), /<script src="app\.js"/);
  assert.equal((await fetch(api + '/app.js')).status, 200);
  assert.equal((await fetch(api + '/style.css')).status, 200);
  assert.equal((await fetch(api + '/%2e%2e/package.json')).status, 404);
  assert.equal((await fetch(api + '/..%2fpackage.json')).status, 404);
});

test('hadns status prints the picture; --json for scripts; exit 1 when unreachable', async () => {
  const help = runHadns(['status', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: hadns status/);
  const txt = runHadns(['status', '--api', api]);
  assert.equal(txt.code, 0, txt.stderr);
  assert.match(txt.stdout, /^node obs-a {2}hadns 0\.1\.0 {2}up \S+ {2}READY$/m);
  assert.match(txt.stdout, new RegExp(`listen +udp://127\\.0\\.0\\.1:${dns}`));
  assert.match(txt.stdout, new RegExp(`127\\.0\\.0\\.1#${upPort} +default +ok +[\\d.]+ ms`));
  assert.match(txt.stdout, /hit ratio \d+\.\d%/);
  assert.match(txt.stdout, /recent events[\s\S]*records +record added: live\.test A/);
  const js = runHadns(['status', '--api', api, '--json']);
  assert.equal(js.code, 0, js.stderr);
  const parsed = JSON.parse(js.stdout);
  assert.equal(parsed.status.node, 'obs-a');
  assert.ok(parsed.status.resolver.queries >= 3);
  assert.ok(Array.isArray(parsed.events));
  // The config's api section gives the address and the token.
  const cfgFile = join(dir, 'client.yaml');
  writeFileSync(cfgFile, `api: { listen: "${api.slice('http://'.length)}", token: "${TOKEN}" }\n`);
  const viaCfg = runHadns(['status', '--config', cfgFile, '--json']);
  assert.equal(viaCfg.code, 0, viaCfg.stderr);
  assert.equal(JSON.parse(viaCfg.stdout).status.node, 'obs-a');
  const closed = await closedPort();
  const down = runHadns(['status', '--api', `http://127.0.0.1:${closed}`]);
  assert.equal(down.code, 1);
  assert.match(down.stderr, new RegExp(`hadns status: cannot reach the hadns API at http://127\\.0\\.0\\.1:${closed}: ECONNREFUSED`));
});

test('an API that cannot bind is logged and DNS keeps serving', async () => {
  const port = Number(new URL(api).port);
  const h = await startNode('obs-busy', `api: { listen: "127.0.0.1:${port}" }`);
  const l = await h.waitFor((x) => x.msg === 'api not started');
  assert.match(String(l.error), /EADDRINUSE/);
  assert.deepEqual(answersOf(await udpQuery(await h.udpPort(), 'fixed.test')), ['A 10.0.0.1']);
  h.kill('SIGTERM');
  assert.equal(await h.exited, 0);
});

test('a node with a balancer: its backends reach the metrics, the status JSON and hadns status', async () => {
  const file = join(dir, 'obs-bal.yaml');
  writeFileSync(file, `node: { name: obs-bal }
log: { format: json }
api: { listen: "127.0.0.1:0" }
resolver:
  listen: ["127.0.0.1:0"]
  records: [{ name: fixed.test, type: A, value: 10.0.0.1 }]
balancer:
  services:
    - name: front
      mode: dns
      listen: ["127.0.0.1:0"]
      pool: { backends: [{ address: local }] }
`);
  const h = new HadnsProcess(['start', '--config', file]);
  procs.push(h);
  const url = await apiUrl(h);
  const status = await (await fetch(url + '/api/v1/status')).json() as { balancer: { services: { name: string; backends: { address: string }[] }[] } };
  assert.deepEqual(status.balancer.services.map((s) => `${s.name}:${s.backends.map((b) => b.address).join(',')}`), ['front:local']);
  const text = await (await fetch(url + '/metrics')).text();
  assert.match(text, /^hadns_balancer_backend_up\{service="front",mode="dns",backend="local"\} [01]$/m);
  assert.match(text, /^hadns_balancer_queries_total\{service="front",mode="dns"\} \d+$/m);
  const st = runHadns(['status', '--api', url]);
  assert.match(st.stdout, /^balancer$/m);
  assert.match(st.stdout, /front +dns +local +(up|down)/);
  h.kill('SIGTERM');
  assert.equal(await h.exited, 0);
});

test('hostile requests (random methods, paths, bodies, headers; malformed HTTP) get 4xx, never a 5xx or a hang', async () => {
  const rnd = prng(Number(process.env.HADNS_FUZZ_SEED ?? 3));
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const methods = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'FOO'];
  const paths = ['/', '/health', '/ready', '/metrics', '/api/v1/status', '/api/v1/events?limit=-5', '/api/v1/events?limit=abc',
    '/api/v1/queries?limit=99999999999&q=%ZZ', '/api/v1/records', '/api/v1/records/%E0%A4%A', '/api/v1/records/a%2Fb%2Fc',
    '/api/v1/records/' + 'x'.repeat(5000), '/api/v1/sync', '/api/v1/stream?x=1', '/../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd',
    '/web/../../package.json', '//api//v1//status', '/api/v1/\u00e9\u00e8', '/api/v1/records/?'];
  const bodies = ['', '{', 'null', '[]', '{"name":', '{"__proto__":{"polluted":1},"name":"p.test","type":"A","value":"10.0.0.9"}',
    '{"name":"a.test","type":"A","value":"10.0.0.1","ttl":1e308}', '{"name":"' + 'a.'.repeat(200) + 'test","type":"A","value":"10.0.0.1"}',
    '{"name":"t.test","type":"TXT","value":["x",1,null]}', '{"node":1,"records":"no"}', '\u0000\u0001\u0002', '[' .repeat(5000) + ']'.repeat(5000)];
  // HEAD on the event stream: its headers at once, not a held-open response that never sends them.
  const head = await fetch(api + '/api/v1/stream', { method: 'HEAD', signal: AbortSignal.timeout(3000) });
  assert.equal(head.status, 200);
  assert.match(head.headers.get('content-type') ?? '', /^text\/event-stream/);
  const statuses: number[] = [];
  for (let i = 0; i < 300; i++) {
    const method = pick(methods);
    const path = pick(paths);
    const body = method === 'GET' || method === 'HEAD' ? undefined : pick(bodies);
    const headers: Record<string, string> = {};
    if (rnd() < 0.5) headers.Authorization = rnd() < 0.7 ? `Bearer ${TOKEN}` : pick(['Bearer', 'Basic Zm9vOmJhcg==', 'Bearer ' + 'x'.repeat(3000)]);
    if (rnd() < 0.5) headers['Content-Type'] = pick(['application/json', 'text/plain', 'multipart/form-data; boundary=x']);
    const status = await new Promise<number>((resolve, reject) => {
      // The status is all we need; destroying the response also ends an SSE stream (GET /stream).
      const req = http.request(api + path, { method, headers }, (res) => { resolve(res.statusCode ?? 0); res.destroy(); });
      req.setTimeout(3000, () => { req.destroy(); reject(new Error(`${method} ${path}: no answer in 3 s`)); });
      req.on('error', reject);
      req.end(body);
    });
    statuses.push(status);
    assert.ok(status >= 200 && status < 500, `${method} ${path.slice(0, 80)} ${String(body).slice(0, 60)} → ${status}`);
  }
  assert.ok(statuses.filter((s) => s >= 400).length > 100, 'most hostile requests are refused');
  // Malformed HTTP on a raw socket: a 400 from Node's parser, or a close; never a crash.
  for (const raw of ['GARBAGE\r\n\r\n', 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n', 'GET /health HTTP/9.9\r\n\r\n', '\u0000'.repeat(100)]) {
    const reply = await new Promise<string>((resolve) => {
      const c = net.connect(new URL(api).port as unknown as number, '127.0.0.1');
      let got = '';
      c.on('data', (d) => { got += d; });
      c.on('close', () => resolve(got));
      c.on('error', () => resolve(got));
      c.setTimeout(3000, () => c.destroy());
      c.end(raw);
    });
    assert.ok(reply === '' || /^HTTP\/1\.[01] 4\d\d/.test(reply), `raw ${JSON.stringify(raw.slice(0, 20))} → ${reply.slice(0, 40)}`);
  }
  assert.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype pollution in this process');
  assert.equal((await get('/ready')).status, 200, 'the node still answers');
  assert.deepEqual(answersOf(await udpQuery(dns, 'fixed.test')), ['A 10.0.0.1'], 'and still serves DNS');
});
