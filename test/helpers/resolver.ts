/** Starts an in-process resolver service on an ephemeral loopback port for integration tests. */
import { pino } from 'pino';
import { resolverSchema, type ResolverConfig } from '../../src/config/schema.js';
import { ResolverService } from '../../src/resolver/service.js';
import { z } from 'zod';

export type ResolverInput = z.input<typeof resolverSchema>;

export async function startResolver(input: ResolverInput): Promise<{ svc: ResolverService; port: number; cfg: ResolverConfig }> {
  const cfg = resolverSchema.parse({ listen: ['127.0.0.1:0'], ...input });
  const svc = await ResolverService.start(cfg, pino({ level: 'silent' }));
  const port = svc.addresses().find((a) => a.proto === 'udp')!.port;
  return { svc, port, cfg };
}
