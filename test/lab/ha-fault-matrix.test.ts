/**
 * The issue's fault matrix for hadns (root; skips only when not root): a lab pair (src/lab), a
 * client sending 200 q/s to the VIP with one try per query and a 1 s timeout, each fault on master
 * node-a held for HOLD_S seconds (5 s instead of the issue's 15 s, to keep the suite short), then
 * healed, then POST_S seconds more (failback included). Per row: queries lost during the fault,
 * the longest client-visible outage (time until the VIP answers again), queries lost after
 * healing, and two VIP holders after healing (both namespaces' `ip -o addr` polled every 50 ms).
 *
 * Targets (issue 5): the VIP answers again within 1 s; at most 1% of the window's queries lost —
 * the issue's window is 15 s × 200 q/s = 3000 queries, so ≤ 30 lost per fault (a fault's loss is
 * a count per event, which a shorter hold must not turn into a stricter target); none lost after
 * healing; two holders after healing for at most one advert interval (ADVERT_INT, + 50 ms polling).
 *
 * The table is printed and written to docs/fault-matrix.md. Everything is removed in `after`, by
 * PID and namespace, also when a row fails.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, isRoot, REPO_ROOT } from '../../src/lab/lab.js';
import { FAULT_HOW, FAULT_KINDS, ADVERT_INT, type FaultKind } from '../../src/lab/plan.js';
import { analyzeRow, matrixMarkdown, type MatrixRow, type Targets } from '../../src/lab/analysis.js';
import { monoMs } from '../../src/lab/load.js';

const skip = isRoot() ? false : 'needs root (network namespaces, veth, a bridge)';
const RATE = 200;
const PRE_S = 1.5;
const HOLD_S = 5;
const POST_S = 5;
const ISSUE_WINDOW = 15 * RATE;
/** The issue's "≤ 1% of the window" applied to its 15 s window, as a count. */
const MAX_LOST = Math.floor(0.01 * ISSUE_WINDOW);
const TARGETS: Targets = {
  recoveryMs: 1000,
  maxLost: MAX_LOST,
  lostAfterHeal: 0,
  overlapMs: ADVERT_INT * 1000 + 50,
};

let lab: Lab | null = null;
const rows: Array<MatrixRow | { fault: FaultKind; error: string }> = [];
const verbose = !!process.env.HADNS_LAB_VERBOSE;
const log = (m: string) => { if (verbose) process.stderr.write(`# ${m}\n`); };

before(async () => {
  if (skip) return;
  lab = Lab.create();
  await lab.up(log, 30_000);
});

after(async () => {
  if (!lab) return;
  await lab.down(log);
});

function sleepUntil(t: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, t - monoMs())));
}

/** Brings the pair back to the steady state (a failed earlier row must not spoil the next). */
async function steady(l: Lab): Promise<void> {
  for (const f of [...l.state.faults]) await l.heal(f.node, f.kind).catch(() => undefined);
  for (const n of ['a', 'b'] as const) if (!l.nodeAlive(n)) l.startNode(n);
  await l.waitSteady(20_000);
}

async function runRow(l: Lab, kind: FaultKind): Promise<MatrixRow> {
  await steady(l);
  const watch = l.watchVip(50);
  const load = l.runLoad({ rate: RATE, durationS: PRE_S + HOLD_S + POST_S, timeoutMs: 1000 });
  const start = monoMs();
  // The schedule of the experiment (steady load, fault held, healed) is wall time by design.
  await sleepUntil(start + PRE_S * 1000);
  const faultAt = await l.fault('a', kind);
  await sleepUntil(faultAt + HOLD_S * 1000);
  const healAt = await l.heal('a', kind);
  const res = await load;
  const samples = await watch.stop();
  const row = analyzeRow({ fault: kind, target: kind === 'backup-dead' ? 'b' : 'a', load: res, samples, faultAt, healAt, targets: TARGETS });
  // The pair must be back to normal at the end of the row (failback done, backup present).
  const h = await l.vipHolders();
  if (!(h.a && !h.b)) { row.pass = false; row.failures.push(`after ${POST_S} s node-a does not hold the VIP alone (${JSON.stringify(h)})`); }
  if (res.wrongSource) { row.pass = false; row.failures.push(`${res.wrongSource} replies from a wrong source address (a client drops them)`); }
  return row;
}

for (const kind of FAULT_KINDS) {
  test(`fault matrix: ${kind} (${FAULT_HOW[kind].split(';')[0]})`, { skip, timeout: 60_000 }, async () => {
    let row: MatrixRow;
    try {
      row = await runRow(lab!, kind);
    } catch (e) {
      rows.push({ fault: kind, error: (e as Error).message.split('\n')[0]! });
      throw e;
    }
    rows.push(row);
    log(`${kind}: ${JSON.stringify(row)}`);
    assert.ok(row.pass, `${kind}: ${row.failures.join('; ')}\nVIP: ${row.vipTimeline}`);
  });
}

test('fault matrix: table (printed and written to docs/fault-matrix.md)', { skip }, () => {
  const ok = rows.filter((r): r is MatrixRow => 'pass' in r);
  const errors = rows.filter((r): r is { fault: FaultKind; error: string } => 'error' in r);
  const table = matrixMarkdown(ok, TARGETS) + (errors.length ? `\nRows that could not be measured:\n${errors.map((e) => `- ${e.fault}: ${e.error}`).join('\n')}\n` : '');
  const doc = `# Fault matrix (hadns)

Latest run: ${new Date().toISOString()} — \`sudo node --test dist/test/lab/ha-fault-matrix.test.js\`
(after \`npx tsc -p tsconfig.json\`; part of \`npm test\` as root). Generated by the test; do not edit by hand.

Setup: \`hadns lab\` (docs/lab.md) — two hadns nodes in network namespaces on one bridge, VRRPv3
unicast with advert_int ${ADVERT_INT} s, node-a priority 150 (master), node-b 100, each node's
balancer on the VIP with its own resolver and the peer's as backends. The client sends ${RATE} q/s to
the VIP, one try per query, 1 s timeout. Each fault is on master node-a (backup-dead: node-b),
held **${HOLD_S} s** (the issue holds 15 s; shortened to keep the suite short), then healed, then
${POST_S} s more (failback included).

Columns: *lost during fault* = queries sent while the fault was held that got no good answer
within 1 s; *client-visible outage* = longest run of such queries (first lost → next answered
send time), i.e. the time until the VIP answers again; *VIP moved after* = from the fault until
the other node alone held the VIP (\`ip addr\` polled every 50 ms); *lost after healing* =
queries sent after the heal that failed (failback included); *two holders after healing* =
longest time both nodes carried the VIP after the heal (50 ms resolution).

The loss target "≤ 1% of the window's queries" is taken on the issue's window (15 s × ${RATE} q/s
= ${ISSUE_WINDOW} queries → at most ${MAX_LOST} lost per fault): a fault costs a number of queries per
event, and a shorter hold must not make the target ${15 / HOLD_S}× stricter. The percentage shown is of the
${HOLD_S} s window.

${table}
How each fault is made:

${FAULT_KINDS.map((k) => `- **${k}**: ${FAULT_HOW[k]}`).join('\n')}

The original stack (dnsmasq + nginx + keepalived + DNAT) at 15 s per fault, from issue 5:

| fault on master A | original: lost during fault | original: recovery |
|---|---|---|
| keepalived SIGKILL | 0 | VIP held by both nodes until restart |
| link down | 1690–2608 | VIP moves after ~3 s, then 46–84% still lost |
| nginx SIGKILL | ~3000 (100%) | never: keepalived does not notice |
| dnsmasq SIGKILL | 4–11 | fine |
| partition at the switch | 1785–2614 | after healing the client kept sending to B for ~25 s in 2 of 3 runs (up to 4998 lost) |
| backup B dies | 1497–2611 | the master keeps sending half the queries to the dead backend |
`;
  process.stdout.write(`\n${table}\n`);
  writeFileSync(join(REPO_ROOT, 'docs', 'fault-matrix.md'), doc);
  assert.equal(rows.length, FAULT_KINDS.length, 'every row was measured');
});

// A test run interrupted by Ctrl-C still removes the lab.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    const l = lab;
    lab = null;
    (l ? l.down() : Promise.resolve()).finally(() => process.exit(130));
  });
}
