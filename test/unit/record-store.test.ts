import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RecordStore, recordId, validateRecord } from '../../src/resolver/record-store.js';

const dir = mkdtempSync(join(tmpdir(), 'hadns-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('records persist atomically and reload', () => {
  const file = join(dir, 'a', 'records.json');
  const s = new RecordStore(file, 'a');
  s.add({ name: 'App.Corp.Test.', type: 'a', value: '10.0.0.1' });
  s.add({ name: 'mx.corp.test', type: 'MX', value: '10 mail.corp.test', ttl: 60 });
  const t = new RecordStore(file, 'a');
  t.load();
  assert.deepEqual(t.list().map(recordId).sort(), ['app.corp.test/A/10.0.0.1', 'mx.corp.test/MX/10 mail.corp.test']);
  assert.ok(t.remove('app.corp.test/A/10.0.0.1'));
  assert.equal(t.remove('app.corp.test/A/10.0.0.1'), false);
  assert.equal(JSON.parse(readFileSync(file, 'utf8')).records.length, 2, 'tombstone kept for replication');
});

test('bad values are refused with a message naming the field', () => {
  assert.throws(() => validateRecord({ name: 'x.test', type: 'A', value: 'nope' }), /value: "nope" is not an IPv4 address/);
  assert.throws(() => validateRecord({ name: 'bad name', type: 'A', value: '1.2.3.4' }), /^Error: name:/);
  assert.throws(() => validateRecord({ name: 'x.test', type: 'NS', value: 'a' }), /type: must be one of/);
  assert.throws(() => validateRecord({ name: 'x.test', type: 'A', value: '1.2.3.4', ttl: -1 }), /ttl:/);
});

test('a corrupt store file is an error, never silently emptied', () => {
  const file = join(dir, 'corrupt.json');
  writeFileSync(file, '{not json');
  assert.throws(() => new RecordStore(file, 'a').load());
  assert.equal(readFileSync(file, 'utf8'), '{not json');
});

test('merge: last writer wins, ties by node name, deletions replicate', () => {
  let now = 1000;
  const a = new RecordStore(null, 'a', () => now);
  const b = new RecordStore(null, 'b', () => now);
  a.add({ name: 'x.test', type: 'A', value: '10.0.0.1' });
  now = 2000;
  b.add({ name: 'y.test', type: 'A', value: '10.0.0.2' });
  assert.equal(a.merge(b.all()), 1);
  assert.equal(b.merge(a.all()), 1);
  assert.deepEqual(a.list().map(recordId).sort(), b.list().map(recordId).sort());
  now = 3000;
  a.remove('y.test/A/10.0.0.2');
  assert.equal(b.merge(a.all()), 1);
  assert.deepEqual(b.list().map(recordId), ['x.test/A/10.0.0.1']);
  assert.equal(b.merge(a.all()), 0, 'idempotent');
  // Concurrent: same record re-added on b later than a's delete → it comes back everywhere.
  now = 4000;
  b.add({ name: 'y.test', type: 'A', value: '10.0.0.2' });
  a.merge(b.all());
  assert.ok(a.list().some((r) => r.name === 'y.test'));
});
