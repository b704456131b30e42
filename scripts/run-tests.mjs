#!/usr/bin/env node
// Runs the compiled test files with Node's built-in test runner.
// Usage: node scripts/run-tests.mjs [--list] [unit|integration|lab ...]   (--list: print the files)
// Lab tests need root (network namespaces); as root (CI) they run, never skip.
// A compiled test whose source is gone (tsc never deletes from dist/) is left out, with a word.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const list = args[0] === '--list';
if (list) args.shift();
const suites = args.length ? args : ['unit', 'integration', 'lab'];
const files = [];
function walk(dir) {
  let entries;
  try { entries = readdirSync(dir); } catch { return; }
  for (const e of entries.sort()) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) walk(p);
    else if (e.endsWith('.test.js')) {
      const src = join(root, p.slice(join(root, 'dist').length).replace(/\.js$/, '.ts'));
      if (existsSync(src)) files.push(p);
      else console.error(`run-tests: ${p} left out: its source ${src} is gone (a stale build; rm -rf dist)`);
    }
  }
}
for (const s of suites) walk(join(root, 'dist', 'test', s));
if (files.length === 0) { console.error('no test files found'); process.exit(1); }
if (list) { for (const f of files) console.log(f); process.exit(0); }
// One file at a time: integration and lab tests own ports, namespaces and processes.
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=300000', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
