import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DAEMON_NODE_FLAGS, launcherShebang, missingDaemonFlags } from '../../src/util/node-flags.js';

const BIN = fileURLToPath(new URL('../../../bin/hadns', import.meta.url));

test('bin/hadns starts Node with exactly the daemon\'s flags', () => {
  const first = readFileSync(BIN, 'utf8').split('\n')[0];
  assert.equal(first, launcherShebang());
  assert.equal(first, `#!/usr/bin/env -S node ${DAEMON_NODE_FLAGS.join(' ')}`);
  assert.ok(DAEMON_NODE_FLAGS.includes('--no-memory-reducer'));
});

test('missingDaemonFlags lists the flags a command line lacks', () => {
  assert.deepEqual(missingDaemonFlags([...DAEMON_NODE_FLAGS]), []);
  assert.deepEqual(missingDaemonFlags(['--trace-gc', ...DAEMON_NODE_FLAGS]), []);
  assert.deepEqual(missingDaemonFlags([]), [...DAEMON_NODE_FLAGS]);
  // A later --memory-reducer would turn it back on; only an exact flag counts.
  assert.deepEqual(missingDaemonFlags(['--memory-reducer']), ['--no-memory-reducer']);
});
