/**
 * Lab: interop with the real keepalived (Debian package) in both roles.
 *  - VRRPv2, PASS auth, unicast peers: the article's configuration (addresses changed to the lab's).
 *  - VRRPv3 multicast with a 200 ms interval.
 * Takeover both ways, and never both holding the VIP outside a failover. Needs root + keepalived.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, isRoot, have, repoRoot } from './vrrp-lab.js';
import { importKeepalived } from '../../src/config/legacy/keepalived.js';

const skip = !isRoot ? 'needs root (network namespaces)' : !have('keepalived') ? 'needs keepalived (apt-get install keepalived)' : false;
const VIP = '192.0.2.210';
let lab: Lab;
const ms = (x: number) => `${x.toFixed(0)} ms`;
const hState = (s: string) => (e: any) => e.type === 'state' && e.state === s;
const kMaster = /\(VI_1\) Entering MASTER STATE/;
const kBackup = /\(VI_1\) Entering BACKUP STATE/;

before(() => {
  if (skip) return;
  lab = new Lab();
  lab.addNode('a', 237);
  lab.addNode('b', 50);
});
after(async () => { if (lab) await lab.destroy(); });

/** Exactly one holder, now and for `forMs` (sampled). */
async function only(node: 'a' | 'b', forMs = 1000): Promise<void> {
  const other = node === 'a' ? 'b' : 'a';
  await lab.poll(() => lab.hasVip(node, VIP) && !lab.hasVip(other, VIP), 5000, `VIP only on ${node}`);
  const t0 = performance.now();
  while (performance.now() - t0 < forMs) {
    assert.ok(lab.hasVip(node, VIP), `VIP still on ${node}`);
    assert.ok(!lab.hasVip(other, VIP), `VIP never also on ${other}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** keepalived.conf in the article's form, v2 PASS unicast. */
function kaV2(self: string, peer: string, prio: number, state: string): string {
  return `! Configuration File for keepalived
global_defs {
router_id ld${self.split('.')[3]}
}
vrrp_instance VI_1 {
state ${state}
interface eth0
virtual_router_id 88
priority ${prio}
unicast_src_ip ${self}
unicast_peer {
${peer}
}
advert_int 1
authentication {
auth_type PASS
auth_pass 8888
}
virtual_ipaddress {
${VIP}/24 dev eth0 label eth0:0
}
}
`;
}

function hadnsV2(self: string, peer: string, prio: number): object {
  return {
    instances: [{
      name: 'VI_1', interface: 'eth0', vrid: 88, priority: prio, advert_int: 1, version: 2,
      unicast_src_ip: self, unicast_peers: [peer], auth: { type: 'pass', password: '8888' },
      virtual_addresses: [{ address: `${VIP}/24`, dev: 'eth0', label: 'eth0:0' }], garp: { master_delay: 0, master_repeat: 1 },
    }],
  };
}

function kaV3(prio: number): string {
  return `global_defs {
vrrp_version 3
}
vrrp_instance VI_1 {
state BACKUP
interface eth0
virtual_router_id 51
priority ${prio}
advert_int 0.2
virtual_ipaddress {
${VIP}/24 dev eth0 label eth0:0
}
}
`;
}

function hadnsV3(prio: number): object {
  return {
    instances: [{
      name: 'VI_1', interface: 'eth0', vrid: 51, priority: prio, advert_int: 0.2, version: 3,
      virtual_addresses: [{ address: `${VIP}/24`, label: 'eth0:0' }], garp: { master_delay: 0, master_repeat: 1 },
    }],
  };
}

test('v2 PASS unicast (article): keepalived master + hadns backup, takeover both ways', { skip }, async () => {
  const ka = lab.keepalived('keepalivedA', 'a', kaV2('192.0.2.237', '192.0.2.50', 150, 'MASTER'));
  const hb = lab.hadns('hadnsB', 'b', hadnsV2('192.0.2.50', '192.0.2.237', 100));
  await lab.waitLine(ka, kMaster, 10_000);
  await only('a');
  assert.ok(hb.events.filter((e) => e.type === 'state').at(-1).state === 'BACKUP');
  // keepalived stops cleanly (priority 0): hadns takes over after its skew time.
  let t0 = performance.now();
  const n = hb.events.length;
  await lab.kill(ka, 'SIGTERM');
  const ev = await lab.waitEvent(hb, hState('MASTER'), 6000, n);
  console.log(`# v2 keepalived clean stop -> hadns MASTER after ${ms(ev.rxMs - t0)}`);
  await only('b', 500);
  // keepalived returns with the higher priority and preempts; hadns steps down.
  t0 = performance.now();
  const ka2 = lab.keepalived('keepalivedA2', 'a', kaV2('192.0.2.237', '192.0.2.50', 150, 'MASTER'));
  await lab.waitLine(ka2, kMaster, 10_000);
  await lab.waitEvent(hb, hState('BACKUP'), 5000, n);
  console.log(`# v2 keepalived restart -> keepalived MASTER again after ${ms(performance.now() - t0)}`);
  await only('a');
  await Promise.all([lab.kill(ka2), lab.kill(hb)]);
});

test('v2 PASS unicast (article): hadns master + keepalived backup; SIGKILL hadns -> keepalived takes over', { skip }, async () => {
  const ha = lab.hadns('hadnsA', 'a', hadnsV2('192.0.2.237', '192.0.2.50', 150));
  const kb = lab.keepalived('keepalivedB', 'b', kaV2('192.0.2.50', '192.0.2.237', 100, 'BACKUP'));
  await lab.waitEvent(ha, hState('MASTER'), 10_000);
  await lab.waitLine(kb, kBackup, 10_000);
  await only('a');
  const t0 = performance.now();
  const n = kb.lines.length;
  await lab.kill(ha, 'SIGKILL');
  await lab.waitLine(kb, kMaster, 8000, n);
  console.log(`# v2 SIGKILL hadns master -> keepalived MASTER after ${ms(performance.now() - t0)} (keepalived Master_Down_Interval 3.0-3.6 s)`);
  // hadns restarts: it removes the VIP its killed predecessor left behind, then preempts.
  const ha2 = lab.hadns('hadnsA2', 'a', hadnsV2('192.0.2.237', '192.0.2.50', 150));
  await lab.waitEvent(ha2, hState('MASTER'), 10_000);
  await lab.waitLine(kb, kBackup, 5000, n);
  await only('a');
  await Promise.all([lab.kill(ha2), lab.kill(kb)]);
});

test('v3 multicast 200 ms: hadns master, keepalived backup, then the other way round', { skip }, async () => {
  const ha = lab.hadns('hadnsA3', 'a', hadnsV3(150));
  const kb = lab.keepalived('keepalivedB3', 'b', kaV3(100));
  await lab.waitEvent(ha, hState('MASTER'), 10_000);
  await lab.waitLine(kb, kBackup, 10_000);
  await only('a');
  let t0 = performance.now();
  let n = kb.lines.length;
  await lab.kill(ha, 'SIGKILL');
  await lab.waitLine(kb, kMaster, 5000, n);
  console.log(`# v3 SIGKILL hadns master -> keepalived MASTER after ${ms(performance.now() - t0)}`);
  // keepalived is master now; hadns comes back with a lower priority and stays backup.
  const ha2 = lab.hadns('hadnsA3b', 'a', hadnsV3(50));
  await lab.waitEvent(ha2, hState('BACKUP'), 10_000);
  await only('b');
  assert.ok(!ha2.events.some(hState('MASTER')));
  // keepalived stops cleanly: hadns takes over after the skew time.
  t0 = performance.now();
  n = ha2.events.length;
  await lab.kill(kb, 'SIGTERM');
  const ev = await lab.waitEvent(ha2, hState('MASTER'), 5000, n);
  console.log(`# v3 keepalived clean stop -> hadns MASTER after ${ms(ev.rxMs - t0)}`);
  await only('a', 500);
  await lab.kill(ha2);
});

test('the article\'s keepalived.conf files run unchanged apart from addresses: hadns (imported) beside keepalived', { skip }, async () => {
  // Only the addresses and interface names change: the article's LAN becomes the lab's.
  const adapt = (f: string) => readFileSync(join(repoRoot, 'test', 'fixtures', 'keepalived', f), 'utf8')
    .replaceAll('172.22.10.237', '192.0.2.237').replaceAll('172.22.10.50', '192.0.2.50').replaceAll('172.22.10.210', VIP)
    .replaceAll('ens192', 'eth0').replaceAll('enp4s0', 'eth0');
  const imported = importKeepalived('article-ch4-a.conf', adapt('article-ch4-a.conf'));
  assert.deepEqual(imported.diagnostics, []);
  const ha = lab.hadns('hadnsArticleA', 'a', imported.vrrp);
  const kb = lab.keepalived('keepalivedArticleB', 'b', adapt('article-ch4-b.conf'));
  await lab.waitEvent(ha, hState('MASTER'), 10_000);
  await lab.waitLine(kb, kBackup, 10_000);
  await only('a');
  assert.match(lab.addrs('a'), /192\.0\.2\.210\/24 scope global secondary eth0:0/);
  const t0 = performance.now();
  const n = kb.lines.length;
  await lab.kill(ha, 'SIGTERM');
  await lab.waitLine(kb, kMaster, 5000, n);
  console.log(`# article configs: hadns A clean stop -> keepalived B MASTER after ${ms(performance.now() - t0)}`);
  await only('b', 300);
  await lab.kill(kb);
});
