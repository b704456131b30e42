import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseNative } from '../../src/config/load.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

test('every shipped example and packaged config is valid', () => {
  const files: string[] = [join(root, 'packaging', 'hadns.yaml')];
  for (const d of readdirSync(join(root, 'examples'))) {
    for (const f of readdirSync(join(root, 'examples', d))) if (f.endsWith('.yaml')) files.push(join(root, 'examples', d, f));
  }
  assert.ok(files.length >= 5);
  for (const f of files) {
    const r = parseNative(readFileSync(f, 'utf8'), f);
    assert.deepEqual(r.diagnostics.filter((x) => x.severity === 'error'), [], f);
    assert.ok(r.config, f);
  }
});

test('the active-active pair: each node masters one VIP and backs up the other', () => {
  const cfg = (n: string) => parseNative(readFileSync(join(root, 'examples', 'active-active', `node-${n}.yaml`), 'utf8'), n).config!;
  const a = cfg('a'), b = cfg('b');
  for (const name of ['VIP_210', 'VIP_211']) {
    const ia = a.vrrp!.instances.find((i) => i.name === name)!, ib = b.vrrp!.instances.find((i) => i.name === name)!;
    assert.equal(ia.vrid, ib.vrid);
    assert.notEqual(ia.priority, ib.priority);
    assert.deepEqual(ia.virtual_addresses.map((v) => v.address), ib.virtual_addresses.map((v) => v.address));
  }
  const masterOf = (c: typeof a) => c.vrrp!.instances.reduce((m, i) => (i.priority > m.priority ? i : m)).name;
  assert.notEqual(masterOf(a), masterOf(b));
});
