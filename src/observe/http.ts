/**
 * The operators' endpoint: /health, /ready, /metrics, the JSON API (/api/v1), a Server-Sent-Events
 * stream for the console, and the console's static files (web/). Plain node:http: a dozen routes
 * do not need a framework, and no dependency sits between the operator and the daemon.
 *
 * It reads the node only through NodeView, at request time; nothing here runs per DNS query.
 * Every input is bounded (body size, query parameters, SSE clients) and every failure is answered
 * with a JSON error — a bad request must never take the DNS daemon down.
 */
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { NodeEvent, NodeView } from '../node/view.js';
import { parseApiListen, type ApiConfig } from './config.js';
import { decideAccess, loadToken } from './auth.js';
import { createMetrics } from './metrics.js';

export interface ObserveServer {
  close(): Promise<void>;
  address(): { host: string; port: number; url: string };
}

const MAX_BODY = 64 * 1024;
const MAX_SSE_CLIENTS = 32;
/** A console that cannot keep up with 1 s ticks is dropped rather than buffered without end. */
const MAX_SSE_BACKLOG = 1024 * 1024;
const TICK_MS = 1000;

export const WEB_DIR = fileURLToPath(new URL('../../../web/', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon', '.json': 'application/json',
};

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly headers: Record<string, string> = {}) { super(message); }
}

type Rec = { name: string; type: string; value: string | string[]; ttl?: number };

/** Shape check of a record in a request body; the node validates the DNS meaning of the value. */
function recordFromBody(body: unknown): Rec {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'expected a JSON object {name, type, value, ttl?}');
  const b = body as Record<string, unknown>;
  const extra = Object.keys(b).filter((k) => !['name', 'type', 'value', 'ttl', 'id', 'origin'].includes(k));
  if (extra.length) throw new HttpError(400, `unknown field(s): ${extra.join(', ')}`);
  if (typeof b.name !== 'string' || !b.name) throw new HttpError(400, 'name: required, a domain name such as app.corp.example');
  if (typeof b.type !== 'string' || !b.type) throw new HttpError(400, 'type: required, e.g. A, AAAA, CNAME, TXT, MX, SRV, PTR');
  const v = b.value;
  if (!(typeof v === 'string' && v !== '') && !(Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string'))) {
    throw new HttpError(400, 'value: required, a string (or a list of strings for TXT)');
  }
  let ttl: number | undefined;
  if (b.ttl !== undefined && b.ttl !== null && b.ttl !== '') {
    ttl = typeof b.ttl === 'string' ? Number(b.ttl) : (b.ttl as number);
    if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 0 || ttl > 2147483647) throw new HttpError(400, 'ttl: expected a whole number of seconds');
  }
  return { name: b.name, type: b.type, value: v as string | string[], ...(ttl !== undefined ? { ttl } : {}) };
}

/** The node rejects bad values with "field: message"; anything else is our failure. */
function nodeError(e: unknown): HttpError {
  const msg = (e as Error)?.message ?? String(e);
  return /^(name|type|value|ttl):/.test(msg) ? new HttpError(400, msg) : new HttpError(500, msg);
}

function intParam(u: URL, key: string, def: number, max: number): number {
  const raw = u.searchParams.get(key);
  if (raw === null || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new HttpError(400, `${key}: expected a whole number from 1 to ${max}`);
  return n;
}

function readBody(req: http.IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_BODY) { reject(new HttpError(413, `request body larger than ${MAX_BODY} bytes`)); return; }
    // Any Content-Type is read as JSON (curl -d sends form-urlencoded): only the bearer token, which
    // a browser cannot add cross-site, authorises a change, so the type is no CSRF defence anyway.
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) { reject(new HttpError(413, `request body larger than ${MAX_BODY} bytes`)); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('error', reject);
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (!text.trim()) { reject(new HttpError(400, 'empty body: expected JSON')); return; }
      try { resolve(JSON.parse(text)); } catch (e) { reject(new HttpError(400, `invalid JSON: ${(e as Error).message}`)); }
    });
  });
}

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) { res.end(); return; }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

function urlOf(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export async function startObserve(view: NodeView, cfg: ApiConfig, log: Logger): Promise<ObserveServer> {
  const listen = parseApiListen(cfg.listen);
  if (!listen) throw new Error(`api.listen: cannot parse "${cfg.listen}"`);
  const token = loadToken(cfg);
  const metrics = createMetrics(view);

  // ---- Server-Sent Events: one shared ticker and one event subscription for all consoles ----
  const sse = new Set<http.ServerResponse>();
  let ticker: NodeJS.Timeout | null = null;
  let unsubscribe: (() => void) | null = null;
  const push = (name: string, data: unknown): void => {
    if (sse.size === 0) return;
    const frame = `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of sse) {
      if (res.writableLength > MAX_SSE_BACKLOG) { res.destroy(); continue; }
      res.write(frame);
    }
  };
  const sseStart = (): void => {
    if (ticker) return;
    ticker = setInterval(() => { try { push('stats', view.status()); } catch (e) { log.warn({ error: (e as Error).message }, 'api: status failed'); } }, TICK_MS);
    ticker.unref();
    unsubscribe = view.onEvent((e: NodeEvent) => push('event', e));
  };
  const sseStop = (): void => {
    if (sse.size > 0) return;
    if (ticker) clearInterval(ticker);
    ticker = null;
    unsubscribe?.();
    unsubscribe = null;
  };
  const openStream = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const head = { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' };
    // HEAD: the headers and nothing more. Held open, it sent nothing (no body is ever written to
    // a HEAD response, so the headers never left) and took a console slot.
    if (req.method === 'HEAD') { res.writeHead(200, head); res.end(); return; }
    if (sse.size >= MAX_SSE_CLIENTS) throw new HttpError(503, `too many live consoles (${MAX_SSE_CLIENTS})`);
    res.writeHead(200, head);
    res.write(`retry: 2000\nevent: hello\ndata: ${JSON.stringify({ status: view.status(), events: view.events(100) })}\n\n`);
    sse.add(res);
    sseStart();
    const done = (): void => { sse.delete(res); sseStop(); };
    req.on('close', done);
    res.on('close', done);
  };

  // ---- routes ----
  const records = async (req: http.IncomingMessage, res: http.ServerResponse, rest: string): Promise<void> => {
    if (rest === '') {
      if (req.method === 'GET' || req.method === 'HEAD') { send(res, 200, { records: view.records.list() }); return; }
      if (req.method === 'POST') {
        const rec = recordFromBody(await readBody(req));
        let added;
        try { added = await view.records.add(rec); } catch (e) { throw nodeError(e); }
        send(res, 201, { record: added });
        return;
      }
      throw new HttpError(405, `${req.method} not allowed on /api/v1/records`, { Allow: 'GET, POST' });
    }
    let id: string;
    try { id = decodeURIComponent(rest); } catch { throw new HttpError(400, 'bad record id encoding'); }
    const existing = view.records.list().find((r) => r.id === id);
    if (req.method === 'GET' || req.method === 'HEAD') {
      if (!existing) throw new HttpError(404, `no record ${id}`);
      send(res, 200, { record: existing });
      return;
    }
    if (req.method !== 'PUT' && req.method !== 'DELETE') throw new HttpError(405, `${req.method} not allowed on a record`, { Allow: 'GET, PUT, DELETE' });
    if (!existing) throw new HttpError(404, `no record ${id}`);
    if (existing.origin !== 'api') throw new HttpError(409, `record ${id} comes from ${existing.origin === 'config' ? 'the config file' : 'a hosts file'} and is read-only here`);
    if (req.method === 'DELETE') {
      let ok;
      try { ok = await view.records.remove(id); } catch (e) { throw nodeError(e); }
      if (!ok) throw new HttpError(404, `no record ${id}`);
      send(res, 200, { deleted: id });
      return;
    }
    const rec = recordFromBody(await readBody(req));
    let updated;
    try { updated = await view.records.update(id, rec); } catch (e) { throw nodeError(e); }
    send(res, 200, { record: updated });
  };

  const api = async (req: http.IncomingMessage, res: http.ServerResponse, u: URL): Promise<void> => {
    const path = u.pathname.slice('/api/v1'.length);
    if (path.startsWith('/records')) {
      const rest = path.slice('/records'.length);
      if (rest === '' || rest === '/') return records(req, res, '');
      if (rest.startsWith('/')) return records(req, res, rest.slice(1));
    }
    if (path === '/sync/records') {
      // Peer record sync (node/sync.ts): POST only, and always behind the token (a POST is a change).
      if (req.method !== 'POST') throw new HttpError(405, `${req.method} not allowed on ${u.pathname}`, { Allow: 'POST' });
      const body = await readBody(req) as { node?: unknown; records?: unknown };
      if (!body || typeof body !== 'object' || typeof body.node !== 'string') throw new HttpError(400, 'body: expected {"node": NAME, "records": [...]}');
      let out;
      try { out = await view.records.exchange(body.node, body.records); } catch (e) { throw new HttpError(400, (e as Error).message); }
      send(res, 200, out);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, `${req.method} not allowed on ${u.pathname}`, { Allow: 'GET' });
    switch (path) {
      case '/status': send(res, 200, view.status()); return;
      case '/events': send(res, 200, { events: view.events(intParam(u, 'limit', 100, 500)) }); return;
      case '/queries': {
        const q = u.searchParams.get('q') ?? '';
        if (q.length > 200) throw new HttpError(400, 'q: at most 200 characters');
        send(res, 200, { queries: view.queries(intParam(u, 'limit', 100, 1000), q || undefined) });
        return;
      }
      case '/stream': openStream(req, res); return;
      default: throw new HttpError(404, `no such endpoint: ${u.pathname}`);
    }
  };

  const staticFile = async (req: http.IncomingMessage, res: http.ServerResponse, u: URL): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, `${req.method} not allowed`, { Allow: 'GET' });
    let rel: string;
    try { rel = decodeURIComponent(u.pathname); } catch { throw new HttpError(400, 'bad path encoding'); }
    if (rel === '/' || rel === '') rel = '/index.html';
    const file = normalize(join(WEB_DIR, rel));
    if (!file.startsWith(WEB_DIR.endsWith(sep) ? WEB_DIR : WEB_DIR + sep) || rel.includes('\0')) throw new HttpError(404, 'not found');
    const type = CONTENT_TYPES[extname(file)];
    if (!type) throw new HttpError(404, 'not found');
    let data: Buffer;
    try { data = await readFile(file); } catch { throw new HttpError(404, 'not found'); }
    res.writeHead(200, {
      'Content-Type': type, 'Content-Length': data.length, 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff',
      'X-Frame-Options': 'DENY', 'Referrer-Policy': 'no-referrer',
      'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
    });
    res.end(req.method === 'HEAD' ? undefined : data);
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    let u: URL;
    try { u = new URL(req.url ?? '/', 'http://x'); } catch { throw new HttpError(400, 'bad request URL'); }
    const p = u.pathname;
    const isApi = p === '/api' || p.startsWith('/api/');
    const open = p === '/health' || p === '/ready' || (!isApi && p !== '/metrics');
    const access = decideAccess({ method: req.method ?? 'GET', open, remote: req.socket.remoteAddress, host: req.headers.host, authorization: req.headers.authorization }, token);
    if (!access.ok) {
      throw new HttpError(access.status, access.error, access.status === 401 ? { 'WWW-Authenticate': 'Bearer realm="hadns"' } : {});
    }
    if (p === '/health') { send(res, 200, { status: 'ok', node: view.name }); return; }
    if (p === '/ready') { const ok = view.ready(); send(res, ok ? 200 : 503, { ready: ok, node: view.name }); return; }
    if (p === '/metrics') {
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'GET only', { Allow: 'GET' });
      const m = await metrics.render();
      res.writeHead(200, { 'Content-Type': m.contentType, 'Cache-Control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : m.body);
      return;
    }
    if (p.startsWith('/api/v1/')) return api(req, res, u);
    if (isApi) throw new HttpError(404, `no such endpoint: ${p} (the API is under /api/v1/)`);
    return staticFile(req, res, u);
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      const he = e instanceof HttpError ? e : new HttpError(500, (e as Error)?.message ?? 'internal error');
      if (he.status >= 500) log.warn({ error: he.message, url: req.url, method: req.method }, 'api: request failed');
      else log.debug({ status: he.status, error: he.message, url: req.url, method: req.method }, 'api: request refused');
      try { send(res, he.status, { error: he.message }, he.headers); } catch { res.destroy(); }
    });
  });
  // Slow or half-open clients must not pin sockets forever (the SSE stream is a response, unaffected).
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.maxHeadersCount = 64;
  server.on('clientError', (_e, socket) => { if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n'); else socket.destroy(); });

  await new Promise<void>((resolve, reject) => {
    const onErr = (e: Error): void => reject(new Error(`api: cannot listen on ${cfg.listen}: ${e.message}`));
    server.once('error', onErr);
    server.listen(listen.port, listen.host, () => { server.off('error', onErr); resolve(); });
  });
  server.on('error', (e) => log.error({ error: e.message }, 'api: server error'));
  const a = server.address() as AddressInfo;
  const bound = { host: a.address, port: a.port, url: urlOf(a.address, a.port) };
  log.info({ url: bound.url, token: token !== null }, 'api listening');

  return {
    address: () => bound,
    close: () => new Promise<void>((resolve) => {
      for (const res of sse) res.end();
      sse.clear();
      sseStop();
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
