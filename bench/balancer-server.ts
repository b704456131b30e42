/**
 * Runs the balancer alone from a JSON `balancer:` section (for bench/balancer.ts, until the CLI
 * has `hadns start --nginx`). Prints "ready" with the bound addresses on stdout; SIGTERM closes.
 * Usage: node dist/bench/balancer-server.js section.json
 */
import { readFileSync } from 'node:fs';
import { startBalancer } from '../src/balancer/service.js';
import { silentLog } from '../src/balancer/sockets.js';
import { setHelperThreads, setRealtime } from '../src/util/threads.js';
import { dropLoopIdleTime, gsoStats } from '../src/util/udp-batch.js';

const section = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const bal = await startBalancer(section, { log: silentLog });
// node.helper_threads as the daemon has it (default normal); HADNS_HELPER_THREADS=idle to compare.
setHelperThreads(process.env.HADNS_HELPER_THREADS === 'idle' ? 'idle' : 'normal');
// As the daemon (node.ts): one epoll_pwait per wake-up; HADNS_LOOP_IDLE_TIME=1 keeps libuv's two.
dropLoopIdleTime();
// node.realtime_priority as the daemon applies it; HADNS_REALTIME_PRIORITY=N (bench --realtime-too N).
if (process.env.HADNS_REALTIME_PRIORITY) {
  const rt = setRealtime(Number(process.env.HADNS_REALTIME_PRIORITY));
  if (rt.error) process.stderr.write(`realtime_priority not applied: ${rt.error}\n`);
}
process.stdout.write(`ready ${JSON.stringify(bal.addresses())}\n`);
process.on('SIGTERM', () => {
  process.stderr.write(`${JSON.stringify(bal.stats())}\n`);
  process.stderr.write(`gso ${JSON.stringify(gsoStats())}\n`);
  void bal.close().then(() => process.exit(0));
});
