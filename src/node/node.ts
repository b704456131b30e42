/**
 * A hadns node: builds the services the config asks for, and owns their lifecycle
 * (start, reload on SIGHUP, graceful stop). Only node/ joins services together.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { ResolverService } from '../resolver/service.js';
import type { BoundAddress } from '../resolver/listeners.js';

export class HadnsNode {
  resolver: ResolverService | null = null;
  private config: Config;

  private constructor(config: Config, private readonly log: Logger) {
    this.config = config;
  }

  static async start(config: Config, log: Logger): Promise<HadnsNode> {
    const node = new HadnsNode(config, log);
    try {
      if (config.resolver) node.resolver = await ResolverService.start(config.resolver, log.child({ svc: 'resolver' }));
    } catch (e) {
      await node.stop();
      throw e;
    }
    if (!node.resolver) log.warn('no service configured: nothing to do');
    log.info({ node: config.node.name }, 'ready');
    return node;
  }

  addresses(): BoundAddress[] {
    return this.resolver ? this.resolver.addresses() : [];
  }

  /** Applies a new, already validated config; on failure the old one keeps serving. */
  async reload(config: Config): Promise<void> {
    if (config.resolver && this.resolver) await this.resolver.reload(config.resolver);
    else if (config.resolver && !this.resolver) this.resolver = await ResolverService.start(config.resolver, this.log.child({ svc: 'resolver' }));
    else if (!config.resolver && this.resolver) { await this.resolver.close(); this.resolver = null; }
    this.config = config;
  }

  get current(): Config { return this.config; }

  async stop(): Promise<void> {
    if (this.resolver) await this.resolver.close();
    this.resolver = null;
  }
}
