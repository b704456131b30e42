import { HostsTable } from './dist/src/resolver/hosts-table.js';
import { openSync, fstatSync, readSync, closeSync } from 'node:fs';
for (let r = 0; r < 3; r++) {
  let t = performance.now(); const lap = (what) => { const x = performance.now(); if (x - t > 2) console.log(`  ${what} ${(x - t).toFixed(1)} ms`); t = x; };
  const fd = openSync('/tmp/hb/big.hosts', 'r'); let buf = Buffer.allocUnsafeSlow(fstatSync(fd).size); let n = 0;
  for (;;) { const got = readSync(fd, buf, n, Math.min(262144, buf.length - n), null); if (got === 0) break; n += got; lap('read step'); }
  closeSync(fd); buf = buf.subarray(0, n); lap('close');
  let lines = 1; for (let nl = buf.indexOf(10); nl >= 0; nl = buf.indexOf(10, nl + 1)) if (++lines % 16384 === 0) lap('count step');
  lap('count end');
  const tb = new HostsTable();
  const g = tb.reserving(lines); let first = true;
  for (;;) { const x = g.next(); lap(first ? 'reserve first step' : 'reserve step'); first = false; if (x.done) break; }
  console.log('run', r);
}
