/**
 * Prometheus metrics, collected from NodeView.status() at scrape time: the DNS path keeps plain
 * counters and does no per-query work for metrics. One status() snapshot per scrape feeds every
 * metric, so a scrape is consistent and costs one walk over the services.
 *
 * Counters that the services own are exported as Prometheus counters (reset + set at collect),
 * so rate() works and restarts show up as resets, as Prometheus expects.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { NodeStatus, NodeView } from '../node/view.js';
import { balancerServices, vrrpInstances } from './shapes.js';
import { renderHistograms, type HistogramView } from '../util/histogram.js';

type Labels = Record<string, string>;
type Samples = Array<[Labels, number]>;

export interface Metrics {
  readonly registry: Registry;
  /** Renders the exposition text from a fresh status snapshot. */
  render(): Promise<{ contentType: string; body: string }>;
}

export function createMetrics(view: NodeView): Metrics {
  const registry = new Registry();
  let snap: NodeStatus | null = null;
  const s = (): NodeStatus => snap ?? view.status();

  // Event-loop lag (monitorEventLoopDelay), process CPU/memory, GC: prom-client's defaults.
  collectDefaultMetrics({ register: registry });

  const counter = (name: string, help: string, labelNames: string[], read: (st: NodeStatus) => Samples): void => {
    new Counter({
      name, help, labelNames, registers: [registry],
      collect() {
        this.reset();
        for (const [l, v] of read(s())) if (Number.isFinite(v) && v >= 0) this.inc(l, v);
      },
    });
  };
  const gauge = (name: string, help: string, labelNames: string[], read: (st: NodeStatus) => Samples): void => {
    new Gauge({
      name, help, labelNames, registers: [registry],
      collect() {
        this.reset();
        for (const [l, v] of read(s())) if (Number.isFinite(v)) this.set(l, v);
      },
    });
  };
  const one = (v: number | undefined): Samples => (v === undefined ? [] : [[{}, v]]);
  const byKey = (rec: Record<string, number> | undefined, label: string): Samples =>
    Object.entries(rec ?? {}).map(([k, v]) => [{ [label]: k }, v]);

  // ---- node ----
  gauge('hadns_node_info', 'Always 1; labels name the node and version.', ['node', 'version'], (st) => [[{ node: st.node, version: st.version }, 1]]);
  gauge('hadns_ready', '1 when the node can serve DNS now (same as /ready).', [], (st) => [[{}, st.ready ? 1 : 0]]);
  gauge('hadns_start_time_seconds', 'When the node started (Unix time).', [], (st) => [[{}, st.startedAt / 1000]]);

  gauge('hadns_event_loop_realtime_priority', 'SCHED_RR priority of the event loop\'s thread (node.realtime_priority); 0: normal scheduling, also when asked for and refused (see the start-up warning).', [],
    (st) => (st.scheduling ? [[{}, st.scheduling.applied]] : []));

  // ---- UDP I/O of the DNS path (util/udp-batch.ts) ----
  const u = (st: NodeStatus) => st.udpIo;
  gauge('hadns_udp_io_native', '1 when the DNS path runs on batched native UDP sockets (recvmmsg/sendmmsg), 0 on Node dgram.', [],
    (st) => (u(st) ? [[{}, u(st)!.mode === 'native' ? 1 : 0]] : []));
  counter('hadns_udp_batches_total', 'recvmmsg batches handled by batched UDP sockets (datagrams / batches = mean batch size).', [], (st) => one(u(st)?.batches));
  counter('hadns_udp_datagrams_received_total', 'Datagrams received by batched UDP sockets (queries and backend answers).', [], (st) => one(u(st)?.received));
  counter('hadns_udp_datagrams_sent_total', 'Datagrams sent by batched UDP sockets.', [], (st) => one(u(st)?.sent));
  counter('hadns_udp_send_dropped_total', 'Datagrams the kernel refused to send (full send buffer, unreachable peer).', [], (st) => one(u(st)?.dropped));
  counter('hadns_udp_oversized_dropped_total', 'Received datagrams larger than a batch slot (4096 bytes), dropped.', [], (st) => one(u(st)?.oversized));

  // ---- resolver ----
  const r = (st: NodeStatus) => st.resolver;
  counter('hadns_dns_queries_total', 'DNS queries received by the resolver.', [], (st) => one(r(st)?.queries));
  counter('hadns_dns_answers_by_source_total', 'Resolver replies by where the answer came from (local, cache, stale, upstream) '
    + 'or why there was none (refused, servfail, formerr, dropped).', ['source'], (st) => byKey(r(st)?.bySource, 'source'));
  counter('hadns_dns_responses_by_rcode_total', 'Resolver replies by response code.', ['rcode'], (st) => byKey(r(st)?.byRcode, 'rcode'));
  counter('hadns_dns_queries_by_type_total', 'Resolver queries by question type (when the node reports it).', ['type'],
    (st) => byKey((r(st) as { byType?: Record<string, number> } | null)?.byType, 'type'));
  counter('hadns_dns_queries_by_listener_total', 'Resolver queries received per listener (proto://address:port).', ['listener'],
    (st) => byKey(r(st)?.byListener, 'listener'));
  counter('hadns_dns_acl_drops_total', 'Queries dropped by the client ACL.', [], (st) => one(r(st)?.aclDrops));
  counter('hadns_dns_inflight_refused_total', 'Queries refused because max_inflight upstream queries were already pending.', [],
    (st) => one(r(st)?.inflightRefused));
  gauge('hadns_dns_inflight', 'Upstream queries pending now.', [], (st) => one(r(st)?.inflight));
  gauge('hadns_local_names', 'Names answered from local data (hosts files, records, API records).', [], (st) => one(r(st)?.localNames));

  gauge('hadns_cache_entries', 'Answers in the packet cache.', [], (st) => one(r(st)?.cache.entries));
  gauge('hadns_cache_bytes', 'Bytes of answers in the packet cache.', [], (st) => one(r(st)?.cache.bytes));
  counter('hadns_cache_hits_total', 'Cache lookups that found a fresh answer.', [], (st) => one(r(st)?.cache.hits));
  counter('hadns_cache_misses_total', 'Cache lookups that found nothing usable.', [], (st) => one(r(st)?.cache.misses));
  counter('hadns_cache_stale_hits_total', 'Expired answers served because every upstream failed (serve-stale).', [], (st) => one(r(st)?.cache.staleHits));
  counter('hadns_cache_inserts_total', 'Answers stored in the cache.', [], (st) => one(r(st)?.cache.inserts));
  counter('hadns_cache_evictions_total', 'Answers evicted to stay within cache size / bytes.', [], (st) => one(r(st)?.cache.evictions));

  counter('hadns_forwarder_sent_total', 'Queries sent to upstream servers.', [], (st) => one(r(st)?.forwarder.sent));
  counter('hadns_forwarder_answers_total', 'Valid answers received from upstream servers.', [], (st) => one(r(st)?.forwarder.answers));
  counter('hadns_forwarder_timeouts_total', 'Upstream attempts that timed out.', [], (st) => one(r(st)?.forwarder.timeouts));
  counter('hadns_forwarder_tcp_retries_total', 'Upstream answers asked again over TCP (truncated, or larger than a 4 KB receive slot).', [],
    (st) => one(r(st)?.forwarder.tcpRetries));
  counter('hadns_forwarder_rejected_total', 'Upstream replies rejected (wrong source, ID or question: spoofing or late).', [],
    (st) => one(r(st)?.forwarder.rejected));
  counter('hadns_forwarder_socket_errors_total', 'Upstream queries not sent because no socket could be opened (e.g. out of file descriptors).', [],
    (st) => one(r(st)?.forwarder.socketErrors));

  const up = (st: NodeStatus) => (r(st)?.upstreams ?? []);
  const upL = (u: { label: string; group: string }) => ({ upstream: u.label, group: u.group || 'default' });
  gauge('hadns_upstream_srtt_seconds', 'Smoothed round-trip time per upstream server.', ['upstream', 'group'],
    (st) => up(st).map((u) => [upL(u), u.srttMs / 1000]));
  gauge('hadns_upstream_consecutive_failures', 'Consecutive failures per upstream server (0 = healthy).', ['upstream', 'group'],
    (st) => up(st).map((u) => [upL(u), u.failures]));
  counter('hadns_upstream_sent_total', 'Queries sent per upstream server.', ['upstream', 'group'], (st) => up(st).map((u) => [upL(u), u.sent]));
  counter('hadns_upstream_answered_total', 'Answers received per upstream server.', ['upstream', 'group'], (st) => up(st).map((u) => [upL(u), u.answered]));

  // ---- balancer (read from status().balancer when the node has one) ----
  const be = (st: NodeStatus) => balancerServices(st.balancer).flatMap((svc) => svc.backends.map((b) => ({ svc, b })));
  const beL = (x: { svc: { name: string; mode: string }; b: { address: string } }) => ({ service: x.svc.name, mode: x.svc.mode, backend: x.b.address });
  gauge('hadns_balancer_backend_up', 'Backend health: 1 up, 0 down.', ['service', 'mode', 'backend'],
    (st) => be(st).map((x) => [beL(x), x.b.state === 'up' ? 1 : 0]));
  gauge('hadns_balancer_backend_outstanding', 'Queries (DNS) or connections/sessions (TCP/UDP) in progress per backend.', ['service', 'mode', 'backend'],
    (st) => be(st).map((x) => [beL(x), x.b.outstanding ?? x.b.active ?? 0]));
  gauge('hadns_balancer_backend_latency_seconds', 'Smoothed answer latency per DNS backend.', ['service', 'mode', 'backend'],
    (st) => be(st).filter((x) => x.b.latencyMs !== undefined).map((x) => [beL(x), x.b.latencyMs! / 1000]));
  counter('hadns_balancer_backend_queries_total', 'Queries (DNS) or connections (TCP) sent per backend.', ['service', 'mode', 'backend'],
    (st) => be(st).map((x) => [beL(x), x.b.queries ?? x.b.connections ?? x.b.sessions ?? 0]));
  counter('hadns_balancer_backend_failures_total', 'Failed attempts per backend (timeouts + errors, or connection failures).', ['service', 'mode', 'backend'],
    (st) => be(st).map((x) => [beL(x), (x.b.timeouts ?? 0) + (x.b.errors ?? 0) + (x.b.failures ?? 0)]));
  counter('hadns_balancer_queries_total', 'Queries (DNS) / connections (TCP) / sessions (UDP) received per balancer service.', ['service', 'mode'],
    (st) => balancerServices(st.balancer).map((svc) => [{ service: svc.name, mode: svc.mode }, svc.queries ?? svc.accepted ?? svc.created ?? 0]));
  counter('hadns_balancer_dropped_total', 'Queries or datagrams dropped per balancer service.', ['service', 'mode'],
    (st) => balancerServices(st.balancer).map((svc) => [{ service: svc.name, mode: svc.mode }, svc.dropped ?? svc.rejected ?? 0]));

  const dnsSvc = (st: NodeStatus) => balancerServices(st.balancer).filter((svc) => svc.answers !== undefined);
  counter('hadns_balancer_dns_answers_total', 'DNS-mode answers per service and path: relay (backend answer sent on by the addon), cache (frontend cache), proxy (backend answer through JS).',
    ['service', 'path'], (st) => dnsSvc(st).flatMap((svc): [Labels, number][] => {
      const relay = svc.relayed ?? 0, cache = svc.cacheHits ?? 0;
      return [[{ service: svc.name, path: 'relay' }, relay], [{ service: svc.name, path: 'cache' }, cache],
        [{ service: svc.name, path: 'proxy' }, Math.max(0, svc.answers! - relay - cache)]];
    }));
  counter('hadns_balancer_dns_forwarded_total', 'DNS mode: queries the addon sent to their backend before JS saw them (query forwarding).', ['service'],
    (st) => dnsSvc(st).map((svc) => [{ service: svc.name }, svc.forwarded ?? 0]));
  counter('hadns_balancer_dns_retries_total', 'DNS mode: extra attempts (hedges after a timeout, retries after SERVFAIL/REFUSED/errors).', ['service'],
    (st) => dnsSvc(st).map((svc) => [{ service: svc.name }, svc.retries ?? 0]));
  counter('hadns_balancer_dns_servfail_total', 'DNS mode: SERVFAIL the balancer answered itself (every attempt failed or the budget ran out).', ['service'],
    (st) => dnsSvc(st).map((svc) => [{ service: svc.name }, svc.servfail ?? 0]));
  counter('hadns_balancer_dns_stray_total', 'DNS mode: backend answers that matched no query in flight (late, duplicate, wrong question).', ['service'],
    (st) => dnsSvc(st).map((svc) => [{ service: svc.name }, svc.stray ?? 0]));

  // ---- VRRP (read from status().vrrp when the node runs it) ----
  const vi = (st: NodeStatus) => vrrpInstances(st.vrrp);
  const viL = (v: { name: string; vrid: number }) => ({ instance: v.name, vrid: String(v.vrid) });
  gauge('hadns_vrrp_state', 'VRRP state per instance: 1 for the current state, 0 for the others.', ['instance', 'vrid', 'state'],
    (st) => vi(st).flatMap((v) => ['INIT', 'BACKUP', 'MASTER', 'FAULT'].map((k): [Labels, number] => [{ ...viL(v), state: k }, v.state === k ? 1 : 0])));
  gauge('hadns_vrrp_priority', 'Effective VRRP priority per instance (after tracking).', ['instance', 'vrid'],
    (st) => vi(st).filter((v) => v.priority !== undefined).map((v) => [viL(v), v.priority!]));
  counter('hadns_vrrp_transitions_total', 'VRRP state transitions per instance.', ['instance', 'vrid'],
    (st) => vi(st).filter((v) => v.transitions !== undefined).map((v) => [viL(v), v.transitions!]));
  gauge('hadns_vrrp_vips_held', 'Virtual IPs this node holds now per instance.', ['instance', 'vrid'],
    (st) => vi(st).map((v) => [viL(v), v.state === 'MASTER' ? v.vips.length : 0]));

  let chain: Promise<unknown> = Promise.resolve();
  return {
    registry,
    render() {
      // Scrapes are serialised so that one snapshot feeds one whole exposition.
      const p = chain.then(async () => {
        snap = view.status();
        try {
          const st = snap;
          // Latency histograms come as fixed bucket counts from the services; prom-client's
          // Histogram can only observe, so these series are rendered directly.
          const extra = renderHistograms('hadns_upstream_rtt_seconds', 'Upstream answer round-trip time.',
            up(st).filter((u) => u.rtt).map((u) => ({ labels: upL(u), h: u.rtt! })))
            + renderHistograms('hadns_balancer_backend_rtt_seconds', 'DNS backend answer latency (queries and probes).',
              be(st).filter((x) => (x.b as { latency?: HistogramView }).latency)
                .map((x) => ({ labels: beL(x), h: (x.b as unknown as { latency: HistogramView }).latency })));
          return { contentType: registry.contentType, body: (await registry.metrics()) + extra };
        } finally { snap = null; }
      });
      chain = p.catch(() => undefined);
      return p;
    },
  };
}
