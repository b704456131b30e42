/**
 * Lab: two hadns VRRP engines on a bridge (namespaces built and removed here), a third namespace as
 * a client watching ARP. VRRPv3 multicast with a 200 ms advert interval. Needs root; skips
 * otherwise. Prints measured failover times.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Lab, isRoot, have, section, type Proc } from './vrrp-lab.js';
import { masterDownIntervalMs, skewTimeMs } from '../../src/vrrp/fsm.js';

const skip = !isRoot ? 'needs root (network namespaces)' : !have('tcpdump') ? 'needs tcpdump' : false;
const VIP = '192.0.2.210';
let lab: Lab;
let a: Proc, b: Proc;
const isState = (s: string) => (e: any) => e.type === 'state' && e.state === s;
const ms = (x: number) => `${x.toFixed(0)} ms`;

before(() => {
  if (skip) return;
  lab = new Lab();
  lab.addNode('a', 237);
  lab.addNode('b', 50);
  lab.addNode('c', 99);
});
after(async () => { if (lab) await lab.destroy(); });

/** Waits until exactly `node` holds the VIP; returns when (test clock). */
async function holder(node: 'a' | 'b', timeoutMs = 3000): Promise<number> {
  const other = node === 'a' ? 'b' : 'a';
  return lab.poll(() => lab.hasVip(node, VIP) && !lab.hasVip(other, VIP), timeoutMs, `VIP only on ${node}`);
}

test('election: the higher priority wins, VIP with its label, GARP seen from a third namespace', { skip }, async () => {
  const arp = lab.start('tcpdump', 'c', ['tcpdump', '-l', '-n', '-i', 'eth0', 'arp'], false);
  await lab.waitLine(arp, /listening on/, 5000);
  a = lab.hadns('A', 'a', section({ priority: 150 }));
  b = lab.hadns('B', 'b', section({ priority: 100 }));
  await lab.waitEvent(a, isState('MASTER'), 5000);
  await holder('a');
  assert.match(lab.addrs('a'), /inet 192\.0\.2\.210\/24 scope global secondary eth0:0/);
  // Both start at about the same time; if B's process came up enough earlier it may have been
  // master briefly (legitimate VRRP), but it must end as backup.
  await lab.waitFor(() => b.events.filter((e) => e.type === 'state').at(-1)?.state === 'BACKUP', 3000, 'B backup');
  // Gratuitous ARP: sender and target are the VIP.
  await lab.waitLine(arp, /Request who-has 192\.0\.2\.210 tell 192\.0\.2\.210/, 3000);
  await lab.kill(arp);
});

test('failover on SIGKILL of the master, and failback with preempt after restart (crash leftovers cleaned)', { skip }, async () => {
  const t0 = performance.now();
  await lab.kill(a, 'SIGKILL');
  const nb = b.events.length;
  const ev = await lab.waitEvent(b, isState('MASTER'), 3000, nb);
  const tVip = await lab.poll(() => lab.hasVip('b', VIP), 2000, 'VIP on B');
  const took = ev.rxMs - t0;
  console.log(`# failover after SIGKILL: B MASTER after ${ms(took)}, VIP on B after ${ms(tVip - t0)} (Master_Down_Interval ${ms(masterDownIntervalMs(3, 100, 200))}, target < 1000 ms)`);
  assert.ok(took < 1000, `took ${took} ms`);
  // A was killed: its VIP copy is still on its interface (a crash leftover) until it starts again.
  assert.ok(lab.hasVip('a', VIP));
  const t1 = performance.now();
  a = lab.hadns('A', 'a', section({ priority: 150 }));
  const na = b.events.length;
  await lab.waitEvent(b, isState('BACKUP'), 5000, na);
  const tBack = await holder('a');
  console.log(`# failback with preempt after restart: A holds the VIP alone ${ms(tBack - t1)} after start`);
});

test('failover when the master\'s link goes down, failback when it comes up', { skip }, async () => {
  const nb = b.events.length, na = a.events.length;
  const t0 = performance.now();
  // Link down inside A's namespace (the bridge side stays up, as with a pulled cable on A's NIC).
  lab.addrs('a');
  const { sh } = await import('./vrrp-lab.js');
  sh('ip', ['-n', lab.ns('a'), 'link', 'set', 'eth0', 'down']);
  const ev = await lab.waitEvent(b, isState('MASTER'), 3000, nb);
  await lab.waitEvent(a, isState('FAULT'), 3000, na);
  console.log(`# failover on link down: B MASTER after ${ms(ev.rxMs - t0)}`);
  assert.ok(!lab.hasVip('a', VIP), 'A removed its VIP in FAULT');
  const t1 = performance.now();
  sh('ip', ['-n', lab.ns('a'), 'link', 'set', 'eth0', 'up']);
  const back = await lab.waitEvent(a, isState('MASTER'), 5000, na);
  await holder('a');
  console.log(`# failback after link up: A MASTER after ${ms(back.rxMs - t1)}`);
});

test('clean stop: priority-0 advert, the backup takes over within the skew time', { skip }, async () => {
  const nb = b.events.length;
  const t0 = performance.now();
  const code = await lab.kill(a, 'SIGTERM');
  assert.equal(code, 0);
  assert.ok(!lab.hasVip('a', VIP), 'A removed its VIP on stop');
  const ev = await lab.waitEvent(b, isState('MASTER'), 3000, nb);
  const took = ev.rxMs - t0;
  console.log(`# failover on clean stop: B MASTER after ${ms(took)} (Skew_Time ${ms(skewTimeMs(3, 100, 200))})`);
  assert.ok(took < masterDownIntervalMs(3, 100, 200), 'faster than a silent death');
  await holder('b');
});

test('nopreempt: a returning higher-priority node stays backup', { skip }, async () => {
  a = lab.hadns('A', 'a', section({ priority: 150, preempt: false }));
  await lab.waitEvent(a, isState('BACKUP'), 5000);
  // Several Master_Down_Intervals pass with A hearing B's lower-priority adverts.
  const t0 = performance.now();
  await lab.poll(() => performance.now() - t0 > 3 * masterDownIntervalMs(3, 150, 200), 5000, 'time to pass', 50);
  assert.ok(!a.events.some(isState('MASTER')), 'A did not preempt');
  assert.ok(lab.hasVip('b', VIP) && !lab.hasVip('a', VIP));
  await lab.kill(a);
  await lab.kill(b);
  assert.ok(!lab.hasVip('b', VIP), 'B removed its VIP on stop');
});

test('HMAC mode: two hadns nodes elect; a node with the wrong key is ignored (and counted)', { skip }, async () => {
  const key = { type: 'hmac', key: 'lab-shared-secret-0123456789' };
  a = lab.hadns('A', 'a', section({ priority: 150, vrid: 90, auth: key }));
  b = lab.hadns('B', 'b', section({ priority: 100, vrid: 90, auth: key }));
  await lab.waitEvent(a, isState('MASTER'), 5000);
  await holder('a');
  // An intruder with a wrong key and a higher priority does not take over.
  const x = lab.hadns('X', 'c', section({ priority: 254, vrid: 90, auth: { type: 'hmac', key: 'not-the-right-secret-000' } }));
  await lab.waitEvent(x, isState('MASTER'), 5000);
  await lab.waitEvent(a, (e) => e.type === 'log' && /HMAC mismatch/.test(e.msg), 3000);
  assert.ok(!a.events.some(isState('BACKUP') && ((e: any) => e.prev === 'MASTER')), 'A stayed master');
  assert.equal(a.events.filter((e) => e.type === 'state' && e.prev === 'MASTER').length, 0);
  await Promise.all([lab.kill(x), lab.kill(a), lab.kill(b)]);
});

test('IPv6 (VRRPv3 over ff02::12): election, VIP added, unsolicited NA seen from a third namespace', { skip }, async () => {
  const VIP6 = '2001:db8::210';
  const na = lab.start('tcpdump6', 'c', ['tcpdump', '-l', '-n', '-i', 'eth0', 'icmp6 and ip6[40] == 136'], false);
  await lab.waitLine(na, /listening on/, 5000);
  a = lab.hadns('A6', 'a', section({ priority: 150, vrid: 96, vip: `${VIP6}/64`, label: '' }));
  b = lab.hadns('B6', 'b', section({ priority: 100, vrid: 96, vip: `${VIP6}/64`, label: '' }));
  await lab.waitEvent(a, isState('MASTER'), 5000);
  await lab.poll(() => lab.hasVip('a', VIP6) && !lab.hasVip('b', VIP6), 3000, 'IPv6 VIP on A only');
  await lab.waitLine(na, /neighbor advertisement, tgt is 2001:db8::210/, 3000);
  const t0 = performance.now();
  const nb = b.events.length;
  await lab.kill(a, 'SIGKILL');
  const ev = await lab.waitEvent(b, isState('MASTER'), 3000, nb);
  console.log(`# IPv6 failover after SIGKILL: B MASTER after ${ms(ev.rxMs - t0)}`);
  await lab.poll(() => lab.hasVip('b', VIP6), 2000, 'IPv6 VIP on B');
  await Promise.all([lab.kill(b), lab.kill(na)]);
});

test('advert timing: intervals seen on the wire stay within 10% of 200 ms (p90)', { skip }, async () => {
  const cap = lab.start('tcpdumpT', 'c', ['tcpdump', '-l', '-n', '-tt', '-i', 'eth0', 'ip proto 112 and src 192.0.2.237'], false);
  await lab.waitLine(cap, /listening on/, 5000);
  a = lab.hadns('AT', 'a', section({ priority: 150, vrid: 97 }));
  await lab.waitEvent(a, isState('MASTER'), 5000);
  const from = cap.lines.length;
  await lab.waitFor(() => cap.lines.length - from >= 26, 10_000, '25 advert intervals');
  const ts = cap.lines.slice(from).filter((l) => /VRRPv3/.test(l)).map((l) => Number(l.split(' ')[0]) * 1000);
  const gaps = ts.slice(1).map((t, i) => t - ts[i]!);
  const dev = gaps.map((g) => Math.abs(g - 200)).sort((x, y) => x - y);
  const worst = dev.at(-1)!, p90 = dev[Math.floor(dev.length * 0.9)]!;
  console.log(`# advert interval on the wire (idle host): n=${gaps.length} min ${Math.min(...gaps).toFixed(1)} ms, max ${Math.max(...gaps).toFixed(1)} ms, p90 deviation ${p90.toFixed(1)} ms, worst ${worst.toFixed(1)} ms`);
  // 10 % of the interval for 9 in 10 adverts; a single late one (a busy shared CI machine) may
  // reach 25 % — still far from the 3 intervals a backup waits.
  assert.ok(p90 < 20, `p90 deviation ${p90} ms`);
  assert.ok(worst < 50, `worst deviation ${worst} ms`);
  await Promise.all([lab.kill(a), lab.kill(cap)]);
});

test('tracking: a failing weight-0 script puts the master in FAULT (priority-0 resignation); notify hooks run in order', { skip }, async () => {
  const { writeFileSync, readFileSync, rmSync, existsSync } = await import('node:fs');
  const { join } = await import('node:path');
  const flag = join(lab.dir, 'healthy');
  const log = join(lab.dir, 'notify.log');
  writeFileSync(flag, '');
  const withScript = (prio: number, notify?: object) => {
    const s = section({ priority: prio, vrid: 98 }) as { instances: any[]; scripts?: object };
    s.instances[0].track_scripts = [{ name: 'chk' }];
    if (notify) s.instances[0].notify = notify;
    s.scripts = { chk: { script: `test -f ${flag}`, interval: 0.1, weight: 0 } };
    return s;
  };
  a = lab.hadns('AS', 'a', withScript(150, { any: `echo "$@" >> ${log} #` }));
  b = lab.hadns('BS', 'b', section({ priority: 100, vrid: 98 }));
  await lab.waitEvent(a, isState('MASTER'), 5000);
  await holder('a');
  const nb = b.events.length;
  const t0 = performance.now();
  rmSync(flag);
  await lab.waitEvent(a, isState('FAULT'), 3000);
  const ev = await lab.waitEvent(b, isState('MASTER'), 3000, nb);
  console.log(`# weight-0 script fails on the master: B MASTER after ${ms(ev.rxMs - t0)} (script interval 100 ms + Skew_Time)`);
  await holder('b');
  writeFileSync(flag, '');
  await lab.waitEvent(a, isState('MASTER'), 5000, a.events.findIndex(isState('FAULT')));
  await holder('a');
  await lab.kill(a);
  await lab.kill(b);
  // keepalived's notify arguments: INSTANCE <name> <state> <priority>, one line per transition, in order.
  await lab.poll(() => existsSync(log) && readFileSync(log, 'utf8').includes('STOP'), 2000, 'notify STOP');
  const lines = readFileSync(log, 'utf8').trim().split('\n').map((l) => l.split(' ')[2]);
  assert.deepEqual(lines, ['BACKUP', 'MASTER', 'FAULT', 'BACKUP', 'MASTER', 'STOP']);
});

test('supervised engine (node/ path): a crashed engine child has its VIP removed by the parent; health reports move priority', { skip }, async () => {
  const { writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { repoRoot } = await import('./vrrp-lab.js');
  const file = join(lab.dir, 'supervised.json');
  writeFileSync(file, JSON.stringify(section({ priority: 150, vrid: 99 })));
  const sup = lab.start('SUP', 'a', [process.execPath, join(repoRoot, 'dist', 'test', 'lab', 'vrrp-supervised-entry.js'), file], true);
  b = lab.hadns('BSUP', 'b', section({ priority: 100, vrid: 99 }));
  await lab.waitEvent(sup, isState('MASTER'), 5000);
  await holder('a');
  // A health report over the channel: "dns down, weight -60" drops A to 90 < 100, B preempts;
  // "dns up" again and A preempts back.
  let nb = b.events.length;
  let t0 = performance.now();
  sup.child.kill('SIGUSR1');
  const pre = await lab.waitEvent(b, isState('MASTER'), 3000, nb);
  await holder('b');
  console.log(`# health report 'dns down' (weight -60) on the master: B MASTER after ${ms(pre.rxMs - t0)}`);
  const na = sup.events.length;
  sup.child.kill('SIGUSR2');
  await lab.waitEvent(sup, isState('MASTER'), 3000, na);
  await holder('a');
  const pidMsg = sup.events.find((e) => e.type === 'engine-pid');
  assert.ok(pidMsg?.pid);
  nb = b.events.length;
  t0 = performance.now();
  process.kill(pidMsg.pid, 'SIGKILL');
  await lab.waitEvent(sup, (e) => e.type === 'engine-exit', 3000);
  const gone = await lab.poll(() => !lab.hasVip('a', VIP), 2000, 'VIP removed by the parent');
  const ev = await lab.waitEvent(b, isState('MASTER'), 3000, nb);
  console.log(`# supervised engine SIGKILLed: parent removed the VIP after ${ms(gone - t0)}, B MASTER after ${ms(ev.rxMs - t0)}`);
  await holder('b');
  await Promise.all([lab.kill(sup), lab.kill(b)]);
});
