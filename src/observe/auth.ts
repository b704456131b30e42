/**
 * Who may do what on the operators' endpoint. Pure (no sockets) so the rules are unit-tested:
 *
 * - /health, /ready and the console's static files are open to everyone: remote health checkers
 *   often cannot send headers, and neither reveals anything beyond "up"/"ready".
 * - Reading (GET/HEAD of /metrics and /api/*) is open to loopback clients without a token.
 * - Everything else — every change, and any read from a non-loopback client — needs the bearer
 *   token. With no token configured such requests are refused (403): the API is then read-only
 *   and loopback-only, a safe default for a daemon that starts with the API on.
 * - A loopback read whose Host header is a DNS name other than localhost also needs the token:
 *   that is what a DNS-rebinding page in a local browser looks like, and the query log is private.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { readFileSync } from 'node:fs';
import type { ApiConfig } from './config.js';

export function isLoopback(addr: string | undefined): boolean {
  if (!addr) return false;
  const a = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
  return a === '::1' || (isIP(a) === 4 && a.startsWith('127.'));
}

/** Host header is an IP literal or localhost (not a name an attacker's DNS could point at us). */
export function hostIsLocalish(host: string | undefined): boolean {
  if (!host) return true;
  let h = host.trim().toLowerCase();
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(h);
  if (m) h = m[1];
  else h = h.replace(/:\d+$/, '');
  return isIP(h) !== 0 || h === 'localhost' || h.endsWith('.localhost');
}

export function bearerOf(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1] : null;
}

/** Constant-time comparison (hashes first, so lengths leak nothing either). */
export function tokenEquals(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/** The configured token: api.token, or the first line of api.token_file (read once, at start). */
export function loadToken(cfg: Pick<ApiConfig, 'token' | 'token_file'>): string | null {
  if (cfg.token) return cfg.token;
  if (!cfg.token_file) return null;
  const t = readFileSync(cfg.token_file, 'utf8').split(/\r?\n/)[0].trim();
  if (t.length < 16) throw new Error(`api.token_file ${cfg.token_file}: the token needs at least 16 characters`);
  return t;
}

export interface AccessRequest {
  method: string;
  /** Public paths: /health, /ready, static console files. */
  open: boolean;
  remote: string | undefined;
  host: string | undefined;
  authorization: string | undefined;
}

export type AccessDecision = { ok: true } | { ok: false; status: 401 | 403; error: string };

export function decideAccess(req: AccessRequest, token: string | null): AccessDecision {
  if (req.open) return { ok: true };
  const presented = bearerOf(req.authorization);
  const valid = token !== null && presented !== null && tokenEquals(presented, token);
  if (presented !== null && token !== null && !valid) return { ok: false, status: 401, error: 'invalid token' };
  if (valid) return { ok: true };
  const read = req.method === 'GET' || req.method === 'HEAD';
  const loop = isLoopback(req.remote);
  if (read && loop && hostIsLocalish(req.host)) return { ok: true };
  const why = !read ? 'changes need the API token' : !loop ? 'clients outside this host need the API token'
    : 'requests naming this host by a DNS name need the API token';
  if (token === null) return { ok: false, status: 403, error: `${why}, and none is configured (set api.token or api.token_file)` };
  return { ok: false, status: 401, error: `${why} (Authorization: Bearer TOKEN)` };
}
