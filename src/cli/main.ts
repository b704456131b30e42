/**
 * The `hadns` command. Sub-commands are stable (scripts and tests drive them):
 *   start, check, import, schema, status — each with --help.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { writeFileSync, readFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { loadConfig, type Sources } from '../config/load.js';
import { ConfigError, formatDiagnostic, type Diagnostic } from '../config/diagnostics.js';
import { jsonSchema } from '../config/schema.js';
import { configReferenceMarkdown } from '../config/reference.js';
import { importDnsmasq } from '../config/legacy/dnsmasq.js';
import { importNginx } from '../config/legacy/nginx.js';
import { importKeepalived } from '../config/legacy/keepalived.js';
import { buildTables } from '../resolver/service.js';
import { createLogger } from '../util/log.js';
import { HadnsNode } from '../node/node.js';
import { startObserve, type ObserveServer } from '../observe/http.js';
import { apiUrlFromConfig, DEFAULT_API_URL, fetchStatus, renderStatus } from '../observe/status.js';
import { DAEMON_NODE_FLAGS, missingDaemonFlags } from '../util/node-flags.js';

const VERSION = (() => {
  try {
    return JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')).version as string;
  } catch { return 'unknown'; }
})();

const HELP: Record<string, string> = {
  main: `hadns ${VERSION} — high-availability DNS: resolver, DNS-aware balancer and VRRP in one daemon

Usage: hadns <command> [options]

Commands:
  start    run a node in the foreground (embedded default config when no input is given)
  check    validate configuration; prints FILE:LINE: message per problem, exit 1 on errors
  import   convert legacy configs (dnsmasq.conf, nginx.conf stream, keepalived.conf) into one native YAML
  schema   print the JSON Schema of the native config (for editors)
  status   show a running node: readiness, listeners, upstreams, cache, recent events
  lab      a hadns pair in network namespaces on this machine: up, down, status, fault, heal, demo (root)

Run 'hadns <command> --help' for a command's options.`,
  start: `Usage: hadns start [--config FILE] [--dnsmasq FILE] [--nginx FILE] [--keepalived FILE]

Runs a hadns node in the foreground, logging to stderr.
With no input, runs the embedded default: a resolver on 127.0.0.1:5353 and [::1]:5353
forwarding to the nameservers of /etc/resolv.conf, with a few example local records.

Options:
  -c, --config FILE   native YAML config
      --dnsmasq FILE  a dnsmasq.conf, used as it is (may be combined with --config)
      --nginx FILE    an nginx.conf whose stream {} block becomes the balancer
      --keepalived FILE  a keepalived.conf whose vrrp_instance blocks become VRRP
      --log-level L   override log.level (trace|debug|info|warn|error)
  -h, --help          this help

Signals: SIGTERM/SIGINT close the sockets and exit 0; SIGHUP reloads config and files
(on error the running config keeps serving and the error is logged).`,
  check: `Usage: hadns check [--config FILE] [--dnsmasq FILE] [--nginx FILE] [--keepalived FILE]

Validates the configuration as 'start' would load it, including hosts files and the
resolv-file. Prints each problem as FILE:LINE: message. Exit 1 if there is any error.

Options:
  -c, --config FILE   native YAML config
      --dnsmasq FILE  a dnsmasq.conf
      --nginx FILE    an nginx.conf (its stream {} block)
      --keepalived FILE  a keepalived.conf
  -q, --quiet         print errors only
  -h, --help          this help`,
  import: `Usage: hadns import [--dnsmasq FILE] [--nginx FILE] [--keepalived FILE] [-o OUT]

Writes the native YAML equivalent of a legacy configuration. Directives outside hadns's
scope are reported as ignored with FILE:LINE on stderr; an unknown directive is an error.

Options:
      --dnsmasq FILE  dnsmasq.conf to convert (conf-file/conf-dir includes are followed)
      --nginx FILE    nginx.conf whose stream {} block to convert (include is followed)
      --keepalived FILE  keepalived.conf to convert (include is followed)
  -o, --output OUT    write to OUT instead of stdout
  -h, --help          this help`,
  schema: `Usage: hadns schema [--markdown]

Prints the JSON Schema of the native configuration (draft 2020-12), for editors.

Options:
      --markdown      print the configuration reference (docs/configuration.md) instead
  -h, --help          this help`,
  status: `Usage: hadns status [--api URL] [--token T] [--config FILE] [--json]

Shows a running node as its API sees it: readiness, VRRP role and VIPs, listeners, upstreams
and backends with health and latency, cache hit ratio, recent events.
Exit 0 when the node is ready, 1 when it is not ready or cannot be reached.

Options:
      --api URL       the node's API (default: api.listen of --config, else ${DEFAULT_API_URL})
      --token T       API token (default: $HADNS_API_TOKEN, else api.token / api.token_file of --config)
  -c, --config FILE   read the API address and token from this config
      --json          print the status as JSON (for scripts)
  -h, --help          this help`,
};

const sourceOptions = {
  config: { type: 'string', short: 'c' },
  dnsmasq: { type: 'string' },
  nginx: { type: 'string' },
  keepalived: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

function out(s: string): void { process.stdout.write(s.endsWith('\n') ? s : s + '\n'); }
function err(s: string): void { process.stderr.write(s.endsWith('\n') ? s : s + '\n'); }

function parse<T extends NonNullable<ParseArgsConfig['options']>>(cmd: string, argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: false, strict: true });
  } catch (e) {
    err(`hadns ${cmd}: ${(e as Error).message}\n\n${HELP[cmd]}`);
    return null;
  }
}

function printDiagnostics(diags: Diagnostic[], quiet = false): void {
  for (const d of diags) if (!quiet || d.severity === 'error') err(formatDiagnostic(d));
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') { out(HELP.main); return cmd ? 0 : 2; }
  if (cmd === '--version' || cmd === '-V') { out(VERSION); return 0; }
  switch (cmd) {
    case 'start': return cmdStart(rest);
    case 'check': return cmdCheck(rest);
    case 'import': return cmdImport(rest);
    case 'schema': return cmdSchema(rest);
    case 'status': return cmdStatus(rest);
    case 'lab': return (await import('../lab/cli.js')).labMain(rest);
    default:
      err(`hadns: unknown command "${cmd}"\n\n${HELP.main}`);
      return 2;
  }
}

async function cmdStart(argv: string[]): Promise<number> {
  const a = parse('start', argv, { ...sourceOptions, 'log-level': { type: 'string' } });
  if (!a) return 2;
  if (a.values.help) { out(HELP.start); return 0; }
  const sources: Sources = { config: a.values.config, dnsmasq: a.values.dnsmasq, nginx: a.values.nginx, keepalived: a.values.keepalived };
  let loaded;
  try {
    loaded = loadConfig(sources);
  } catch (e) {
    if (e instanceof ConfigError) { printDiagnostics(e.diagnostics); return 1; }
    throw e;
  }
  const cfg = loaded.config;
  const log = createLogger(a.values['log-level'] ?? cfg.log.level, cfg.log.format);
  for (const d of loaded.diagnostics) log.warn({ file: d.file, line: d.line }, d.message);
  const missing = missingDaemonFlags();
  if (missing.length) log.warn({ missing, want: `node ${DAEMON_NODE_FLAGS.join(' ')} bin/hadns start …` }, 'Node runs without the daemon\'s V8 flags (bin/hadns passes them): V8\'s memory reducer can then pause DNS for 5–16 ms under load');
  // From here on SIGTERM, SIGINT and SIGHUP never take their default action, which would end the
  // daemon at once (no VRRP goodbye advert, listeners not closed in order): one that comes while
  // the node is still starting (VRRP, a large hosts file) is held and acted on once it is up.
  const held: NodeJS.Signals[] = [];
  let onSignal = (sig: NodeJS.Signals): void => {
    if (!held.includes(sig)) held.push(sig);
    log.info({ signal: sig }, 'signal while starting: acted on once started');
  };
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => onSignal(sig));
  let node: HadnsNode;
  try {
    node = await HadnsNode.start(cfg, log);
  } catch (e) {
    log.fatal((e as Error).message);
    return 1;
  }
  // The API is for operators: if it cannot start (port taken, token file unreadable), DNS keeps serving.
  let api: ObserveServer | null = null;
  if (cfg.api.enabled) {
    try { api = await startObserve(node, cfg.api, log.child({ svc: 'api' })); } catch (e) { log.error({ error: (e as Error).message }, 'api not started'); }
  }
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (sig: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal: sig }, 'stopping');
      Promise.resolve(api?.close()).then(() => node.stop()).then(() => { log.info('stopped'); resolve(0); }, (e) => { log.error((e as Error).message); resolve(1); });
    };
    if (process.env.HADNS_FAULT_INJECTION === '1') {
      // Lab only (hadns lab fault NODE resolver-dead): the resolver stops answering while the
      // process lives, so health → VRRP can be shown. Never set this in production.
      log.warn('fault injection enabled: SIGUSR2 toggles resolver-dead');
      process.on('SIGUSR2', () => {
        const r = node.resolver?.resolver;
        if (!r) return;
        r.dead = !r.dead;
        log.warn({ dead: r.dead }, 'fault injection: resolver-dead toggled');
      });
    }
    const reload = () => {
      log.info('SIGHUP: reloading');
      let next;
      try {
        next = loadConfig(sources);
      } catch (e) {
        const msg = e instanceof ConfigError ? e.diagnostics.map(formatDiagnostic).join('; ') : (e as Error).message;
        log.error({ error: msg }, 'reload failed: keeping the running config');
        node.configError(msg);
        return;
      }
      for (const d of next.diagnostics) log.warn({ file: d.file, line: d.line }, d.message);
      node.reload(next.config).then(
        () => log.info('reload done'),
        (e) => log.error({ error: (e as Error).message }, 'reload failed: keeping the running config'),
      );
    };
    onSignal = (sig) => (sig === 'SIGHUP' ? reload() : stop(sig));
    // Held while starting: a stop wins over a reload.
    const stopSig = held.find((sig) => sig !== 'SIGHUP');
    if (stopSig) stop(stopSig);
    else if (held.length) reload();
  });
}

async function cmdCheck(argv: string[]): Promise<number> {
  const a = parse('check', argv, { ...sourceOptions, quiet: { type: 'boolean', short: 'q' } });
  if (!a) return 2;
  if (a.values.help) { out(HELP.check); return 0; }
  try {
    const loaded = loadConfig({ config: a.values.config, dnsmasq: a.values.dnsmasq, nginx: a.values.nginx, keepalived: a.values.keepalived });
    const diags = [...loaded.diagnostics];
    if (loaded.config.resolver) diags.push(...buildTables(loaded.config.resolver).diagnostics);
    printDiagnostics(diags, a.values.quiet);
    const errors = diags.filter((d) => d.severity === 'error').length;
    if (errors) { err(`${errors} error(s)`); return 1; }
    if (!a.values.quiet) err(`configuration ok${diags.length ? ` (${diags.length} warning(s))` : ''}`);
    return 0;
  } catch (e) {
    if (e instanceof ConfigError) {
      printDiagnostics(e.diagnostics, a.values.quiet);
      err(`${e.diagnostics.filter((d) => d.severity === 'error').length} error(s)`);
      return 1;
    }
    throw e;
  }
}

async function cmdImport(argv: string[]): Promise<number> {
  const a = parse('import', argv, {
    dnsmasq: { type: 'string' }, nginx: { type: 'string' }, keepalived: { type: 'string' }, output: { type: 'string', short: 'o' }, help: { type: 'boolean', short: 'h' },
  });
  if (!a) return 2;
  if (a.values.help) { out(HELP.import); return 0; }
  if (!a.values.dnsmasq && !a.values.nginx && !a.values.keepalived) { err(`hadns import: nothing to import\n\n${HELP.import}`); return 2; }
  const config: Record<string, unknown> = {};
  const diags: Diagnostic[] = [];
  const from: string[] = [];
  if (a.values.dnsmasq) {
    const imp = importDnsmasq(a.values.dnsmasq);
    diags.push(...imp.diagnostics);
    Object.assign(config, imp.config);
    from.push(a.values.dnsmasq);
  }
  if (a.values.nginx) {
    const imp = importNginx(a.values.nginx);
    diags.push(...imp.diagnostics);
    config.balancer = imp.balancer;
    from.push(a.values.nginx);
  }
  if (a.values.keepalived) {
    const imp = importKeepalived(a.values.keepalived);
    diags.push(...imp.diagnostics);
    config.vrrp = imp.vrrp;
    from.push(a.values.keepalived);
  }
  printDiagnostics(diags);
  if (diags.some((d) => d.severity === 'error')) return 1;
  const text = `# Imported by hadns ${VERSION} from ${from.join(', ')}\n` + stringify(config, { lineWidth: 0 });
  if (a.values.output) writeFileSync(a.values.output, text);
  else out(text);
  return 0;
}

async function cmdStatus(argv: string[]): Promise<number> {
  const a = parse('status', argv, {
    api: { type: 'string' }, token: { type: 'string' }, config: { type: 'string', short: 'c' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
  });
  if (!a) return 2;
  if (a.values.help) { out(HELP.status); return 0; }
  let url = DEFAULT_API_URL;
  let token: string | null = process.env.HADNS_API_TOKEN || null;
  if (a.values.config) {
    try {
      const fromCfg = apiUrlFromConfig(loadConfig({ config: a.values.config }).config.api);
      url = fromCfg.url;
      token ??= fromCfg.token;
    } catch (e) {
      if (e instanceof ConfigError) { printDiagnostics(e.diagnostics); return 1; }
      throw e;
    }
  }
  if (a.values.api) url = a.values.api;
  if (a.values.token) token = a.values.token;
  try {
    const rep = await fetchStatus(url, token);
    out(a.values.json ? JSON.stringify(rep, null, 2) : renderStatus(rep, process.stdout.isTTY === true));
    return rep.status.ready ? 0 : 1;
  } catch (e) {
    err(`hadns status: ${(e as Error).message}`);
    return 1;
  }
}

async function cmdSchema(argv: string[]): Promise<number> {
  const a = parse('schema', argv, { markdown: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } });
  if (!a) return 2;
  if (a.values.help) { out(HELP.schema); return 0; }
  out(a.values.markdown ? configReferenceMarkdown() : JSON.stringify(jsonSchema(), null, 2));
  return 0;
}
