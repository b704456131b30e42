import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { importNginx, tokenize } from '../../src/config/legacy/nginx.js';
import { Diagnostics } from '../../src/config/diagnostics.js';
import { balancerSectionSchema, serviceMode } from '../../src/balancer/config.js';

// Fixtures live in the source tree (test/fixtures), also when this runs compiled from dist/.
const root = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/dist\/$/, '/');
const fx = (f: string) => join(root, 'test/fixtures/nginx', f);

test('tokenizer: comments, quotes, escapes, punctuation and line numbers', () => {
  const d = new Diagnostics();
  const w = tokenize('a "b c" \'d;e\' # comment ;\nf\\;g;{\n}', 'x.conf', d);
  assert.deepEqual(w.map((x) => x.text), ['a', 'b c', 'd;e', 'f;g', ';', '{', '}']);
  assert.deepEqual(w.map((x) => x.line), [1, 1, 1, 2, 2, 2, 3]);
  assert.equal(d.items.length, 0);
});

test('the article\'s chapter 2 UDP config: one DNS service on 53, both servers, timeouts', () => {
  const r = importNginx(fx('article-udp-dns.conf'));
  assert.equal(r.diagnostics.filter((x) => x.severity === 'error').length, 0);
  assert.deepEqual(r.balancer.services, [{
    name: 'dns', mode: 'dns', listen: ['udp://0.0.0.0:53'],
    pool: { policy: 'round-robin', backends: [{ address: '172.22.10.237:53', weight: 1 }, { address: '172.22.10.50:53', weight: 1 }] },
    timeouts: { proxy: '20s', connect: '1s' },
  }]);
  const w = r.diagnostics.map((x) => `${x.line}:${x.severity}:${x.message.split(' ')[0]}`);
  assert.deepEqual(w, ['2:warning:worker_processes', '3:warning:events']);
  assert.ok(r.diagnostics.every((x) => x.file === fx('article-udp-dns.conf')));
  const parsed = balancerSectionSchema.parse(r.balancer);
  assert.equal(parsed.services[0].timeouts.proxy, 20_000);
  assert.equal(serviceMode(parsed.services[0]), 'dns');
});

test('the article\'s final config: upstream ports as written (5353/5354), DNS because it listens on 53', () => {
  const r = importNginx(fx('article-final.conf'));
  assert.equal(r.diagnostics.filter((x) => x.severity === 'error').length, 0);
  const s = r.balancer.services![0];
  assert.equal(s.mode, 'dns');
  assert.deepEqual(s.pool.backends.map((b) => b.address), ['172.22.10.237:5353', '172.22.10.50:5354']);
});

test('the article\'s http {} example is reported as not applicable with file:line, nothing imported', () => {
  const r = importNginx(fx('article-http.conf'));
  assert.deepEqual(r.balancer.services, []);
  const http = r.diagnostics.find((x) => x.message.startsWith('http {}'));
  assert.equal(http?.line, 7);
  assert.equal(http?.severity, 'warning');
  assert.ok(r.diagnostics.some((x) => x.message.includes('no stream {} block')));
  assert.equal(r.diagnostics.filter((x) => x.severity === 'error').length, 0);
});

test('every mapped directive, stream-level inheritance and include', () => {
  const r = importNginx(fx('full-stream.conf'));
  assert.deepEqual(r.diagnostics.filter((x) => x.severity === 'error'), []);
  const [web, syslog, dnsh] = r.balancer.services!;
  assert.equal(web.mode, 'tcp');
  assert.deepEqual(web.listen, [{ proto: 'tcp', address: '0.0.0.0', port: 8080, reuseport: true }]);
  assert.equal(web.pool.policy, 'least-conn');
  assert.deepEqual(web.pool.backends, [
    { address: '10.0.0.1:8080', weight: 5, max_fails: 2, fail_timeout: '30s' },
    { address: '10.0.0.2:8080' }, { address: '10.0.0.3:8080', backup: true }, { address: '10.0.0.4:8080', down: true },
  ]);
  assert.deepEqual(web.timeouts, { proxy: '30s', connect: '500ms' });
  assert.deepEqual(web.next_upstream, { enabled: true, tries: 2, timeout: '5s' });
  assert.deepEqual(web.tcp, { proxy_protocol: 'v1' });
  assert.equal(syslog.mode, 'udp');
  assert.deepEqual(syslog.pool.backends, [{ address: '10.0.0.9:514' }]);
  assert.deepEqual(syslog.timeouts, { proxy: '1m30s' });
  assert.deepEqual(syslog.udp, { responses: 0 });
  assert.equal(dnsh.name, 'dnsh');
  assert.equal(dnsh.mode, 'dns');
  assert.deepEqual(dnsh.listen, ['udp://[::1]:53', 'tcp://127.0.0.1:53']);
  assert.equal(dnsh.pool.policy, 'hash');
  assert.deepEqual(dnsh.pool.backends, [{ address: '10.0.1.1:53' }, { address: '[2001:db8::1]:53', weight: 2 }]);
  const unused = r.diagnostics.find((x) => x.message.includes('"r2" is not used'));
  assert.ok(unused?.file.endsWith('stream.d/dnsh.conf'), 'diagnostics from an included file name that file');
  assert.equal(unused?.line, 6);
  const parsed = balancerSectionSchema.parse(r.balancer);
  assert.equal(parsed.services[1].timeouts.proxy, 90_000);
});

test('unknown directives in stream are errors with file:line; unknown server parameters too', () => {
  const r = importNginx(fx('errors.conf'));
  const errs = r.diagnostics.filter((x) => x.severity === 'error').map((x) => `${x.line}: ${x.message}`);
  assert.deepEqual(errs, [
    '3: unknown server parameter "wieght=2"',
    '4: unknown directive "sticky" in upstream',
    '9: unknown directive "proxy_cache" in stream server',
  ]);
});

test('syntax errors: missing ";" and unbalanced braces are reported with a line', () => {
  const r = importNginx('inline.conf', 'stream {\n  server {\n    listen 53 udp\n  }\n');
  assert.ok(r.diagnostics.some((x) => x.severity === 'error' && x.line === 4 && /no ending ";"/.test(x.message)));
  assert.ok(r.diagnostics.some((x) => x.severity === 'error' && /end of file/.test(x.message)));
});

test('text may be passed instead of read; a bad time is an error', () => {
  const text = readFileSync(fx('article-udp-dns.conf'), 'utf8').replace('proxy_timeout 20s', 'proxy_timeout 20x');
  const r = importNginx('given.conf', text);
  assert.ok(r.diagnostics.some((x) => x.severity === 'error' && x.file === 'given.conf' && x.line === 14 && /invalid time/.test(x.message)));
});
