#!/usr/bin/env node
// Builds the two native addons in native/build/Release/: vrrp_raw.node (raw VRRP sockets; see
// native/vrrp_raw.c) and udp_batch.node (recvmmsg/sendmmsg for the DNS hot path; udp_batch.c).
// Run by `npm run build:native` (part of `prepare`, so `npm install` builds it).
//
// Prefers node-gyp with binding.gyp: the one npm bundles (npm sets npm_config_node_gyp for
// scripts) or a local one. node-gyp normally downloads Node headers; when the running Node ships
// its headers (Debian's nodejs: /usr/include/node, or a tarball install: <prefix>/include/node) we
// point it there with --nodedir so no network is needed. If node-gyp is unavailable or fails, the
// addons are compiled directly with the C compiler (one file each). Off Linux they are skipped: VRRP
// then reports "raw sockets unavailable" at start-up, UDP listeners use Node's dgram, and the rest
// of hadns works.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const here = dirname(fileURLToPath(import.meta.url));
const addons = ['vrrp_raw', 'udp_batch'];
const outs = addons.map((a) => join(here, 'build', 'Release', `${a}.node`));
if (process.platform !== 'linux') {
  console.log('build:native: not Linux, native addons skipped (VRRP raw sockets, batched UDP)');
  process.exit(0);
}

function headerDirs() {
  const prefixes = [join(dirname(process.execPath), '..'), '/usr', '/usr/local'];
  return prefixes.filter((p) => existsSync(join(p, 'include', 'node', 'node_api.h')));
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: here, stdio: 'inherit' });
  return r.status === 0;
}

let gyp = process.env.npm_config_node_gyp;
if (!gyp || !existsSync(gyp)) {
  try { gyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'); } catch { gyp = undefined; }
}
const nodedir = headerDirs()[0];
if (gyp && nodedir) {
  if (run(process.execPath, [gyp, 'rebuild', `--nodedir=${nodedir}`]) && outs.every((o) => existsSync(o))) {
    console.log(`build:native: built ${outs.join(', ')} with node-gyp`);
    process.exit(0);
  }
  console.warn('build:native: node-gyp failed, trying the C compiler directly');
}
if (!nodedir) {
  console.error('build:native: Node headers (include/node/node_api.h) not found; install them (Debian: nodejs or libnode-dev)');
  process.exit(1);
}
mkdirSync(dirname(outs[0]), { recursive: true });
const cc = process.env.CC || 'cc';
addons.forEach((a, i) => {
  if (!run(cc, ['-shared', '-fPIC', '-O2', '-Wall', `-DNODE_GYP_MODULE_NAME=${a}`, `-I${join(nodedir, 'include', 'node')}`, `${a}.c`, '-o', outs[i]])) {
    console.error(`build:native: compiling native/${a}.c failed`);
    process.exit(1);
  }
  console.log(`build:native: built ${outs[i]} with ${cc}`);
});
