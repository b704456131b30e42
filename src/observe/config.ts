/**
 * The `api:` section: where the operators' endpoint (metrics, health, JSON API, console) listens
 * and how it is protected. Imported by config/schema.ts; so this file imports nothing from
 * config/ (that would be an import cycle) and validates its own listen address.
 */
import { isIP } from 'node:net';
import { z } from 'zod';

export const API_DEFAULT_PORT = 8053;

/** "127.0.0.1:8053", "[::1]:8053", "127.0.0.1" (default port), "[::]:0" → host + port. */
export function parseApiListen(s: string): { host: string; port: number } | null {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s.trim()) ?? /^([^:[\]]+)(?::(\d+))?$/.exec(s.trim());
  if (!m) return null;
  const host = m[1];
  const port = m[2] === undefined ? API_DEFAULT_PORT : Number(m[2]);
  if (!isIP(host) || !Number.isInteger(port) || port < 0 || port > 65535) return null;
  return { host, port };
}

export const apiSectionSchema = z.strictObject({
  enabled: z.boolean().default(true).describe(
    'Serve the operators\' endpoint: /health, /ready, /metrics (Prometheus), the JSON API under /api/v1 and the '
    + 'web console at /. On by default, on loopback only. If the address cannot be bound the error is logged '
    + 'and DNS keeps being served.'),
  listen: z.string().default(`127.0.0.1:${API_DEFAULT_PORT}`)
    .refine((s) => parseApiListen(s) !== null, {
      message: `expected IP:PORT, e.g. 127.0.0.1:${API_DEFAULT_PORT} or [::1]:${API_DEFAULT_PORT} (port 0 picks a free port)`,
    })
    .describe('HTTP address of the endpoint, e.g. 127.0.0.1:8053, [::1]:8053, 0.0.0.0:8053. Port 0 picks a free port '
      + '(logged as "api listening").'),
  token: z.string().min(16, 'a token needs at least 16 characters').nullable().default(null).describe(
    'Bearer token (Authorization: Bearer TOKEN). Required for every change (POST/PUT/DELETE) and for every request '
    + 'from a non-loopback client except /health, /ready and the console\'s static files. null and no token_file: '
    + 'the API is read-only and answers loopback clients only.'),
  token_file: z.string().nullable().default(null)
    .describe('Read the token from this file instead (first line, trimmed), e.g. /etc/hadns/api-token.'),
}).refine((a) => a.token === null || a.token_file === null, {
  message: 'set either token or token_file, not both', path: ['token_file'],
}).prefault({});

export type ApiConfig = z.output<typeof apiSectionSchema>;
