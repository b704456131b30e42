/**
 * bench/stall.ts, the stall injector of `bench/balancer.ts --stall`: it stops its targets for
 * the given time and, whatever happens to it, leaves none of them stopped. The target here is a
 * `sleep` this test starts and kills again (by PID).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { killChild as kill } from '../helpers/child.js';

const isTs = import.meta.url.endsWith('.ts');
const script = fileURLToPath(new URL(isTs ? '../../bench/stall.ts' : '../../bench/stall.js', import.meta.url));

function injector(args: (string | number)[]): ChildProcess {
  return spawn(process.execPath, [...(isTs ? ['--import', 'tsx'] : []), script, ...args.map(String)], { stdio: ['pipe', 'pipe', 'pipe'] });
}
const state = (pid: number): string => {
  const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return st.slice(st.lastIndexOf(')') + 2).split(' ')[0]!;
};
async function target(): Promise<ChildProcess> {
  const p = spawn('sleep', ['60'], { stdio: 'ignore' });
  await once(p, 'spawn');
  return p;
}

test('the injector stops its target again and again, and leaves it running when done', async (t) => {
  const tg = await target();
  t.after(() => kill(tg));
  const inj = injector([20, 40, 0.5, tg.pid!]);
  let seenStopped = false;
  let out = '';
  inj.stdout!.on('data', (d) => { out += d; });
  const exited = once(inj, 'exit');
  // Sample the target's state until the injector is done: it must have been seen stopped.
  let done = false;
  void exited.then(() => { done = true; });
  while (!done) {
    if (state(tg.pid!) === 'T') seenStopped = true;
    await new Promise((r) => setImmediate(r));
  }
  const [code] = await exited;
  assert.equal(code, 0);
  assert.ok(seenStopped, 'the target was seen stopped');
  assert.ok(Number(out) >= 8, `about 12 stalls in 0.5 s at one per 40 ms: ${out.trim()}`);
  assert.notEqual(state(tg.pid!), 'T', 'left running');
});

test('killed mid-stall, the injector continues its target before it exits', async (t) => {
  const tg = await target();
  t.after(() => kill(tg));
  const inj = injector([200, 250, 30, tg.pid!]);
  const t0 = performance.now();
  while (state(tg.pid!) !== 'T') {
    if (performance.now() - t0 > 5000) assert.fail('the target was never stopped');
    await new Promise((r) => setImmediate(r));
  }
  const exited = once(inj, 'exit');
  inj.kill('SIGTERM');
  await exited;
  assert.notEqual(state(tg.pid!), 'T', 'continued on SIGTERM');
});

test('bad arguments are refused with a usage line', async () => {
  for (const args of [[5, 3, 1, 1234], [3, 50, 1], [3, 50, 1, 'x'], [0, 50, 1, 1234], ['--spin', 3, 50, 1, 1234], ['--spin', 5, 3, 1]]) {
    const inj = injector(args);
    let err = '';
    inj.stderr!.on('data', (d) => { err += d; });
    const [code] = await once(inj, 'exit');
    assert.equal(code, 2, `refused: ${args.join(' ')}`);
    assert.match(err, /usage: node dist\/bench\/stall\.js/);
  }
});

const cpuTicks = (pid: number): number => {
  const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime
};

test('--spin busy-waits MS every EVERY once told to go, and not before', async () => {
  const inj = injector(['--spin', 20, 40, 0.5]);
  const exited = once(inj, 'exit');
  let out = '';
  const ready = new Promise<void>((resolve) => inj.stdout!.on('data', (d) => { out += d; if (out.includes('ready\n')) resolve(); }));
  await ready;
  const idle = cpuTicks(inj.pid!);
  // Waiting for "go" is a blocked read: no CPU while this thread yields a few times.
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cpuTicks(inj.pid!) - idle <= 2, 'no spinning before go');
  inj.stdin!.end('go\n');
  let last = idle;
  let done = false;
  void exited.then(() => { done = true; });
  while (!done) {
    try { last = cpuTicks(inj.pid!); } catch { /* gone */ }
    await new Promise((r) => setImmediate(r));
  }
  const [code] = await exited;
  assert.equal(code, 0);
  const stalls = Number(out.replace('ready\n', '').trim());
  assert.ok(stalls >= 8 && stalls <= 13, `about 12 spins in 0.5 s at one per 40 ms: ${stalls}`);
  // 20 ms of 40 busy: about 0.25 s of CPU (ticks are 10 ms); a sleeping injector would have ~0.
  assert.ok(last - idle >= 12, `spun for ${(last - idle) * 10} ms of CPU`);
});
