/**
 * Lab helper process: plays node/'s part — runs the VRRP engine under spawnVrrpEngine() with the
 * section from a JSON file, prints every engine message as a JSON line, and stops it on SIGTERM.
 */
import { readFileSync } from 'node:fs';
import { spawnVrrpEngine } from '../../src/vrrp/supervisor.js';

const section = JSON.parse(readFileSync(process.argv[2]!, 'utf8'));
const sup = spawnVrrpEngine(section, (m) => process.stdout.write(`${JSON.stringify(m)}\n`));
process.stdout.write(`${JSON.stringify({ type: 'engine-pid', pid: sup.child.pid })}\n`);
sup.child.on('exit', (code, signal) => process.stdout.write(`${JSON.stringify({ type: 'engine-exit', code, signal })}\n`));
process.on('SIGTERM', () => void sup.stop().then(() => process.exit(0)));
// SIGUSR1 / SIGUSR2: report the (pretend) DNS service down / up, weight -60.
process.on('SIGUSR1', () => sup.track('dns', false, -60));
process.on('SIGUSR2', () => sup.track('dns', true, -60));
