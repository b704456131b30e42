import { HostsTable } from './dist/src/resolver/hosts-table.js';
import { readFileSync } from 'node:fs';
for (let r = 0; r < 3; r++) {
const t0 = performance.now();
const buf = readFileSync('/tmp/hb/big.hosts');
const t1 = performance.now();
const t = new HostsTable();
let n=1; for (let i=buf.indexOf(10); i>=0; i=buf.indexOf(10,i+1)) n++;
let rmax = 0; let last = performance.now();
for (const _ of t.reserving(n)) { const x = performance.now(); rmax = Math.max(rmax, x - last); last = x; }
rmax = Math.max(rmax, performance.now() - last);
const t1b = performance.now();
let at = 0, max = 0, line = 1, maxAt = 0;
while (at < buf.length) {
  let end = at; for (let k = 0; k < 1024; k++) { const nl = buf.indexOf(10, end); if (nl < 0) { end = buf.length; break; } end = nl + 1; }
  const s = performance.now(); t.addText(buf, at, end, 'f', line); const d = performance.now() - s;
  if (d > max) { max = d; maxAt = line; }
  at = end; line += 1024;
}
const t2 = performance.now();
console.log(`read ${(t1-t0).toFixed(1)} ms, count+reserve ${(t1b-t1).toFixed(1)} ms (longest step ${rmax.toFixed(1)}), slices ${(t2-t1b).toFixed(0)} ms, slowest slice ${max.toFixed(1)} ms at line ${maxAt}; footprint ${(t.footprint/1e6).toFixed(1)} MB`);
}
