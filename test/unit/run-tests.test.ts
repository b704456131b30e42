/** scripts/run-tests.mjs: which compiled tests it runs (a stale build must not add or fail tests). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('../../../', import.meta.url));

test('a compiled test whose source is gone is left out with a word; the others are listed', () => {
  const stale = join(root, 'dist', 'test', 'unit', `zz-stale-${process.pid}.test.js`);
  writeFileSync(stale, "import { test } from 'node:test'; test('stale', () => { throw new Error('ran'); });\n");
  try {
    const r = spawnSync(process.execPath, [join(root, 'scripts', 'run-tests.mjs'), '--list', 'unit'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const files = r.stdout.trim().split('\n');
    assert.ok(files.includes(join(root, 'dist', 'test', 'unit', 'run-tests.test.js')), 'this test is listed');
    assert.ok(!files.includes(stale), 'the stale file is not');
    assert.match(r.stderr, new RegExp(`zz-stale-${process.pid}\\.test\\.js left out: its source .*zz-stale-${process.pid}\\.test\\.ts is gone`));
  } finally {
    rmSync(stale, { force: true });
  }
});
