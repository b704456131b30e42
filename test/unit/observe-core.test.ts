/**
 * observe/ pure parts: the access rules, the api: section, the readers of balancer/VRRP status,
 * `hadns status` text, and metrics rendered from a fake NodeView (no sockets).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decideAccess, hostIsLocalish, isLoopback, loadToken } from '../../src/observe/auth.js';
import { apiSectionSchema, parseApiListen } from '../../src/observe/config.js';
import { balancerServices, vrrpInstances } from '../../src/observe/shapes.js';
import { apiUrlFromConfig, renderStatus } from '../../src/observe/status.js';
import { createMetrics } from '../../src/observe/metrics.js';
import type { NodeStatus, NodeView } from '../../src/node/view.js';

const T = 'a-token-of-enough-length';
const req = (o: Partial<Parameters<typeof decideAccess>[0]>) =>
  ({ method: 'GET', open: false, remote: '127.0.0.1', host: '127.0.0.1:8053', authorization: undefined, ...o });

test('access: loopback reads open; changes and remote clients need the token; open paths always open', () => {
  assert.deepEqual(decideAccess(req({}), T), { ok: true });
  assert.deepEqual(decideAccess(req({ remote: '::ffff:127.0.0.2' }), null), { ok: true });
  assert.deepEqual(decideAccess(req({ remote: '::1', host: '[::1]:8053' }), null), { ok: true });
  const post = decideAccess(req({ method: 'POST' }), T);
  assert.equal(post.ok === false && post.status, 401);
  assert.deepEqual(decideAccess(req({ method: 'POST', authorization: `Bearer ${T}` }), T), { ok: true });
  const noTok = decideAccess(req({ method: 'DELETE', authorization: `Bearer ${T}` }), null);
  assert.equal(noTok.ok === false && noTok.status, 403);
  const remote = decideAccess(req({ remote: '192.0.2.10' }), T);
  assert.ok(remote.ok === false && remote.status === 401 && /outside this host/.test(remote.error));
  const remoteNoTok = decideAccess(req({ remote: '192.0.2.10' }), null);
  assert.equal(remoteNoTok.ok === false && remoteNoTok.status, 403);
  assert.deepEqual(decideAccess(req({ remote: '192.0.2.10', authorization: `bearer ${T}` }), T), { ok: true });
  assert.deepEqual(decideAccess(req({ remote: '192.0.2.10', open: true }), null), { ok: true });
  const wrong = decideAccess(req({ authorization: 'Bearer nope' }), T);
  assert.ok(wrong.ok === false && wrong.status === 401 && wrong.error === 'invalid token');
  const rebind = decideAccess(req({ host: 'evil.example' }), T);
  assert.equal(rebind.ok === false && rebind.status, 401);
});

test('loopback and Host classification', () => {
  for (const a of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1']) assert.ok(isLoopback(a), a);
  for (const a of ['10.0.0.1', '::ffff:10.0.0.1', '::', '0.0.0.0', undefined]) assert.ok(!isLoopback(a), String(a));
  for (const h of ['127.0.0.1:8053', 'localhost', 'LOCALHOST:1', '[::1]:8053', 'app.localhost', '192.0.2.1', undefined]) assert.ok(hostIsLocalish(h), String(h));
  for (const h of ['evil.example', 'localhost.evil.example:8053', 'dns-a']) assert.ok(!hostIsLocalish(h), h);
});

test('api: section defaults, listen parsing, token rules, token_file', () => {
  assert.deepEqual(apiSectionSchema.parse(undefined), { enabled: true, listen: '127.0.0.1:8053', token: null, token_file: null });
  assert.deepEqual(parseApiListen('[::1]:0'), { host: '::1', port: 0 });
  assert.deepEqual(parseApiListen('0.0.0.0'), { host: '0.0.0.0', port: 8053 });
  assert.equal(parseApiListen('localhost:8053'), null);
  assert.equal(parseApiListen('127.0.0.1:70000'), null);
  assert.equal(apiSectionSchema.safeParse({ listen: 'nowhere' }).success, false);
  assert.equal(apiSectionSchema.safeParse({ token: 'short' }).success, false);
  assert.equal(apiSectionSchema.safeParse({ token: T, token_file: '/x' }).success, false);
  const dir = mkdtempSync(join(tmpdir(), 'hadns-obs-unit-'));
  try {
    writeFileSync(join(dir, 'tok'), `${T}\nignored\n`);
    assert.equal(loadToken({ token: null, token_file: join(dir, 'tok') }), T);
    writeFileSync(join(dir, 'short'), 'abc\n');
    assert.throws(() => loadToken({ token: null, token_file: join(dir, 'short') }), /at least 16 characters/);
    assert.deepEqual(apiUrlFromConfig({ enabled: true, listen: '0.0.0.0:9000', token: null, token_file: join(dir, 'tok') }), { url: 'http://127.0.0.1:9000', token: T });
    assert.deepEqual(apiUrlFromConfig({ enabled: true, listen: '[::]:9000', token: null, token_file: null }), { url: 'http://[::1]:9000', token: null });
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

const balancer = {
  services: [
    { name: 'dns-lb', mode: 'dns', queries: 10, dropped: 1, answers: 9, relayed: 6, forwarded: 7, cacheHits: 2, retries: 3, servfail: 1, stray: 5, backends: [
      { address: '10.0.0.53:53', state: 'up', weight: 1, outstanding: 2, latencyMs: 3.5, queries: 7, timeouts: 1, errors: 0 },
      { address: '10.0.0.54:53', state: 'down', weight: 1, outstanding: 0, latencyMs: 0, queries: 3, timeouts: 3, errors: 1 }] },
    { name: 'ssh', mode: 'tcp', accepted: 4, rejected: 0, backends: [{ address: '10.0.0.22:22', state: 'up', active: 1, connections: 4, failures: 0 }] },
    { mode: 'junk' }, 'junk',
  ],
};
const vrrp = { instances: [{ name: 'VI_1', vrid: 51, state: 'MASTER', priority: 150, transitions: 2, vips: ['192.0.2.53/24'] }, { vrid: 'x' }] };

test('balancer and VRRP readers take the services\' shapes and ignore junk', () => {
  const b = balancerServices(balancer);
  assert.deepEqual(b.map((s) => `${s.name}:${s.backends.length}`), ['dns-lb:2', 'ssh:1']);
  assert.deepEqual(balancerServices(undefined), []);
  assert.deepEqual(balancerServices({ services: 'no' }), []);
  const v = vrrpInstances(vrrp);
  assert.deepEqual(v, [{ name: 'VI_1', vrid: 51, state: 'MASTER', interface: undefined, priority: 150, transitions: 2, vips: ['192.0.2.53/24'], master: undefined }]);
  assert.deepEqual(vrrpInstances(42), []);
});

function status(extra: Partial<NodeStatus> = {}): NodeStatus {
  return {
    node: 'dns-a', version: '9.9.9', startedAt: 1_700_000_000_000, uptimeSec: 3723, ready: true,
    resolver: {
      listen: ['udp://127.0.0.1:53'], queries: 100, bySource: { local: 10, cache: 60, upstream: 30 }, byRcode: { NOERROR: 95, NXDOMAIN: 5 }, byType: { A: 70, AAAA: 30 },
      aclDrops: 2, inflight: 1, inflightRefused: 0, localNames: 12,
      cache: { entries: 40, bytes: 4000, hits: 60, misses: 40, staleHits: 0, inserts: 40, evictions: 3 },
      forwarder: { sent: 31, answers: 30, timeouts: 1, tcpRetries: 0, rejected: 0, socketErrors: 2 },
      upstreams: [{ label: '192.0.2.1', group: '', srttMs: 12.5, failures: 0, sent: 20, answered: 20 },
        { label: '192.0.2.2', group: 'corp.example', srttMs: 800, failures: 4, sent: 11, answered: 10 }],
    },
    ...extra,
  };
}

test('hadns status text: node, VRRP role and VIPs, upstream health, cache ratio, backends, events', () => {
  const out = renderStatus({ status: status({ balancer, vrrp }), events: [{ time: 0, kind: 'reload-failed', message: 'bad config' }] });
  assert.match(out, /^node dns-a {2}hadns 9\.9\.9 {2}up 1h2m {2}READY$/m);
  assert.match(out, /VI_1 +51 +MASTER +150 +192\.0\.2\.53\/24 \(held\)/);
  assert.match(out, /192\.0\.2\.1 +default +ok +12\.5 ms/);
  assert.match(out, /192\.0\.2\.2 +corp\.example +failing \(4\) +800 ms/);
  assert.match(out, /hit ratio 60\.0% \(60 hits \/ 40 misses\)/);
  assert.match(out, /dns-lb +dns +10\.0\.0\.54:53 +down/);
  assert.match(out, /reload-failed +bad config/);
  assert.doesNotMatch(out, /\x1b\[/);
  const colored = renderStatus({ status: status({ ready: false }), events: [] }, true);
  assert.match(colored, /\x1b\[31mNOT READY/);
  assert.doesNotMatch(out, /^ +udp /m); // no udpIo in the status: no line
  const io = renderStatus({ status: status({ udpIo: { mode: 'native', batches: 10, received: 35, oversized: 0, sent: 35, dropped: 2 } }), events: [] });
  assert.match(io, /^ +udp +batched \(recvmmsg\/sendmmsg\), 3\.5 datagrams per batch, 2 send drops, 0 oversized$/m);
  assert.doesNotMatch(out, /^ +scheduling /m); // normal scheduling, not asked for: no line
  assert.match(renderStatus({ status: status({ scheduling: { requested: 10, applied: 10, error: null, rtRuntimeUs: 950000 } }), events: [] }),
    /^ +scheduling +event loop real-time \(SCHED_RR 10\)$/m);
  assert.match(renderStatus({ status: status({ scheduling: { requested: 10, applied: 0, error: 'EPERM', rtRuntimeUs: 950000 } }), events: [] }),
    /^ +scheduling +real-time 10 asked for, not applied: EPERM$/m);
  const pair = renderStatus({ status: status({
    health: { ok: false, detail: 'resolver does not answer' },
    peer: { digest: 'x', peers: [{ name: 'dns-b', api: 'http://192.0.2.12:8053', inSync: false, lastOk: null, lastError: 'HTTP 401' }] },
  }), events: [] });
  assert.match(pair, /health +unhealthy: resolver does not answer/);
  assert.match(pair, /peer +dns-b http:\/\/192\.0\.2\.12:8053 +records NOT in sync \(HTTP 401\)/);
});

test('metrics: one exposition from a status snapshot, labelled per upstream, backend and VRRP instance', async () => {
  let calls = 0;
  const view = { name: 'dns-a', status: () => { calls++; return status({ balancer, vrrp }); } } as unknown as NodeView;
  const m = createMetrics(view);
  const { body, contentType } = await m.render();
  assert.match(contentType, /^text\/plain; version=0\.0\.4/);
  assert.equal(calls, 1, 'one status() per scrape');
  const has = (line: string) => assert.ok(body.split('\n').includes(line), line);
  has('hadns_dns_queries_total 100');
  has('hadns_dns_answers_by_source_total{source="cache"} 60');
  has('hadns_dns_responses_by_rcode_total{rcode="NXDOMAIN"} 5');
  has('hadns_dns_acl_drops_total 2');
  has('hadns_cache_hits_total 60');
  has('hadns_cache_evictions_total 3');
  has('hadns_forwarder_socket_errors_total 2');
  has('hadns_upstream_srtt_seconds{upstream="192.0.2.1",group="default"} 0.0125');
  has('hadns_upstream_consecutive_failures{upstream="192.0.2.2",group="corp.example"} 4');
  has('hadns_balancer_backend_up{service="dns-lb",mode="dns",backend="10.0.0.54:53"} 0');
  has('hadns_balancer_backend_outstanding{service="dns-lb",mode="dns",backend="10.0.0.53:53"} 2');
  has('hadns_balancer_backend_latency_seconds{service="dns-lb",mode="dns",backend="10.0.0.53:53"} 0.0035');
  has('hadns_balancer_backend_failures_total{service="dns-lb",mode="dns",backend="10.0.0.54:53"} 4');
  has('hadns_balancer_backend_up{service="ssh",mode="tcp",backend="10.0.0.22:22"} 1');
  has('hadns_balancer_dns_answers_total{service="dns-lb",path="relay"} 6');
  has('hadns_balancer_dns_answers_total{service="dns-lb",path="cache"} 2');
  has('hadns_balancer_dns_answers_total{service="dns-lb",path="proxy"} 1');
  has('hadns_balancer_dns_retries_total{service="dns-lb"} 3');
  has('hadns_balancer_dns_servfail_total{service="dns-lb"} 1');
  has('hadns_balancer_dns_stray_total{service="dns-lb"} 5');
  has('hadns_balancer_dns_forwarded_total{service="dns-lb"} 7');
  assert.doesNotMatch(body, /hadns_balancer_dns_answers_total\{service="ssh"/, 'a TCP service has no DNS counters');
  has('hadns_vrrp_state{instance="VI_1",vrid="51",state="MASTER"} 1');
  has('hadns_vrrp_state{instance="VI_1",vrid="51",state="BACKUP"} 0');
  has('hadns_vrrp_priority{instance="VI_1",vrid="51"} 150');
  has('hadns_vrrp_transitions_total{instance="VI_1",vrid="51"} 2');
  has('hadns_vrrp_vips_held{instance="VI_1",vrid="51"} 1');
  assert.match(body, /^nodejs_eventloop_lag_seconds /m);
  // A node with no resolver, balancer or VRRP still renders: no labelled samples, no crash.
  const bare = createMetrics({ name: 'x', status: () => ({ ...status(), resolver: null }) } as unknown as NodeView);
  const b2 = (await bare.render()).body;
  assert.match(b2, /^hadns_ready 1$/m);
  assert.doesNotMatch(b2, /^hadns_upstream_srtt_seconds\{/m);
  assert.doesNotMatch(b2, /^hadns_vrrp_state\{/m);
  assert.match(b2, /^hadns_event_loop_realtime_priority 0$/m); // not reported: normal scheduling
  const rt = createMetrics({ name: 'x', status: () => status({ scheduling: { requested: 10, applied: 10, error: null, rtRuntimeUs: 950000 } }) } as unknown as NodeView);
  assert.match((await rt.render()).body, /^hadns_event_loop_realtime_priority 10$/m);
});
