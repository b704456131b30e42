/**
 * The web console in a real headless Chromium (Debian's /usr/bin/chromium driven by playwright-core;
 * no browser is ever downloaded): it shows the running node, its upstream and live counters, and
 * a record added, changed and deleted through the UI is what DNS answers.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { HadnsProcess } from '../helpers/hadns-process.js';
import { FakeUpstream } from '../helpers/fake-upstream.js';
import { udpQuery, answersOf } from '../helpers/dns-client.js';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'console-token-0123456789abcdef';
const dir = mkdtempSync(join(tmpdir(), 'hadns-console-'));
const up = new FakeUpstream().add('up.test', 'A', ['192.0.2.7']);
let upPort = 0;
let node: HadnsProcess;
let api = '';
let dns = 0;
let ctx: BrowserContext | null = null;
let page: Page;

before(async () => {
  // Fail, not skip: a console nobody can test is a hole CI must show (.ci/run installs chromium).
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium`);
  upPort = (await up.start()).port;
  const cfg = join(dir, 'hadns.yaml');
  writeFileSync(cfg, `node: { name: console-node, state_dir: "${join(dir, 'state')}" }
log: { format: json }
api: { listen: "127.0.0.1:0", token: "${TOKEN}" }
resolver:
  listen: ["127.0.0.1:0"]
  query_log: true
  upstreams: { servers: ["127.0.0.1#${upPort}"] }
  records: [{ name: fixed.test, type: A, value: 10.0.0.1 }]
`);
  node = new HadnsProcess(['start', '--config', cfg]);
  api = String((await node.waitFor((l) => l.msg === 'api listening')).url);
  dns = await node.udpPort();
  ctx = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: { width: 1400, height: 1000 },
  });
  page = ctx.pages()[0] ?? await ctx.newPage();
  page.setDefaultTimeout(8000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('dialog', (d) => { void d.accept(); });
  await page.goto(api + '/');
  assert.deepEqual(errors, []);
});

after(async () => {
  await ctx?.close().catch(() => undefined);
  node?.kill('SIGKILL');
  if (node) await node.exited;
  await up.close();
  rmSync(dir, { recursive: true, force: true });
});

const text = (sel: string) => page.locator(sel).innerText();

test('shows the node, readiness, listeners, the upstream and the events', async () => {
  await page.locator('#node-name', { hasText: 'console-node' }).waitFor();
  await page.locator('#ready', { hasText: 'ready' }).waitFor();
  await page.locator('#live', { hasText: 'live' }).waitFor();
  await page.locator('#listeners', { hasText: `udp://127.0.0.1:${dns}` }).waitFor();
  const row = page.locator('#upstreams tbody tr', { hasText: `127.0.0.1#${upPort}` });
  await row.waitFor();
  assert.match(await row.innerText(), /default\s+ok\s+\d/);
  await page.locator('#events li', { hasText: 'node console-node started' }).waitFor();
  assert.equal(await page.title(), 'hadns · console-node');
});

test('live counters and the query log follow DNS traffic', async () => {
  for (let i = 0; i < 3; i++) assert.deepEqual(answersOf(await udpQuery(dns, 'up.test')), ['A 192.0.2.7']);
  assert.deepEqual(answersOf(await udpQuery(dns, 'fixed.test')), ['A 10.0.0.1']);
  // The 1 s stats tick brings the totals; one upstream answer and two cache hits.
  await page.waitForFunction(() => document.getElementById('q-total')!.textContent === '4');
  await page.waitForFunction(() => document.getElementById('hit-ratio')!.textContent === '66.7%');
  assert.match(await text('#q-sources'), /local 1 · cache 2 · upstream 1/);
  assert.match(await text('#latency'), /^\d+\.\d ms$/);
  await page.locator('#qlog-search').fill('up.test');
  await page.waitForFunction(() => document.querySelectorAll('#qlog tbody tr').length === 3);
  const rows = await page.locator('#qlog tbody tr').allInnerTexts();
  assert.ok(rows.every((r) => /127\.0\.0\.1\s+up\.test\s+A\s+NOERROR/.test(r)), rows.join('\n'));
  assert.ok(rows.some((r) => /upstream/.test(r)) && rows.some((r) => /cache/.test(r)), rows.join('\n'));
});

test('records editor: without the token a change is refused with a message; with it, add / edit / delete reach DNS', async () => {
  await page.locator('#records tbody tr', { hasText: 'fixed.test' }).waitFor();
  assert.match(await page.locator('#records tbody tr', { hasText: 'fixed.test' }).innerText(), /config\s+read-only/);

  await page.locator('#rec-name').fill('ui.test');
  await page.locator('#rec-type').selectOption('A');
  await page.locator('#rec-value').fill('10.7.7.7');
  await page.locator('#rec-add').click();
  await page.locator('#rec-msg', { hasText: 'changes need the API token' }).waitFor();
  assert.equal(await page.locator('#token-panel').isVisible(), true);
  assert.equal((await udpQuery(dns, 'ui.test'))!.rcode, 'NXDOMAIN');

  await page.locator('#token-input').fill(TOKEN);
  await page.locator('#token-save').click();
  await page.locator('#rec-add').click();
  await page.locator('#rec-msg', { hasText: 'added: ui.test A 10.7.7.7' }).waitFor();
  await page.locator('#records tbody tr[data-id="ui.test/A/10.7.7.7"]').waitFor();
  assert.deepEqual(answersOf(await udpQuery(dns, 'ui.test')), ['A 10.7.7.7']);
  await page.locator('#events li', { hasText: 'record added: ui.test A' }).waitFor();

  await page.locator('#records tbody tr[data-id="ui.test/A/10.7.7.7"] button', { hasText: 'edit' }).click();
  assert.equal(await page.locator('#rec-value').inputValue(), '10.7.7.7');
  await page.locator('#rec-value').fill('10.7.7.8');
  await page.locator('#rec-add').click();
  await page.locator('#records tbody tr[data-id="ui.test/A/10.7.7.8"]').waitFor();
  assert.deepEqual(answersOf(await udpQuery(dns, 'ui.test')), ['A 10.7.7.8']);

  // A bad value is refused with the node's message, and nothing changes.
  await page.locator('#rec-name').fill('bad.test');
  await page.locator('#rec-value').fill('not-an-address');
  await page.locator('#rec-add').click();
  await page.locator('#rec-msg', { hasText: 'value:' }).waitFor();
  assert.equal((await udpQuery(dns, 'bad.test'))!.rcode, 'NXDOMAIN');

  await page.locator('#records tbody tr[data-id="ui.test/A/10.7.7.8"] button', { hasText: 'delete' }).click();
  await page.locator('#records tbody tr[data-id="ui.test/A/10.7.7.8"]').waitFor({ state: 'detached' });
  assert.equal((await udpQuery(dns, 'ui.test'))!.rcode, 'NXDOMAIN');
});
