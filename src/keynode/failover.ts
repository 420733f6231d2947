/**
 * Keeping a fail-over node in sync: every share committed on this (primary) node is exported wrapped to
 * the fail-over's whitelisted wrapping key and imported there under the same key id, the request signed
 * by this node's identity (the fail-over accepts key-id-keeping imports only from its paired primary).
 * A key is marked synced in meta (`failover_synced:<key_id>`) once the fail-over acknowledged it; a loop
 * retries the rest, so an outage delays the copy but loses nothing. The lag is the unsynced count.
 */
import type { NodeConfig } from './config.js';
import { KeyNodeClient } from './client.js';
import type { KeyNodeService } from './service.js';
import type { NodeSecrets } from './secrets.js';
import type { KeyNodeStore } from './store/types.js';

const SYNCED = (keyId: string) => `failover_synced:${keyId}`;

export class FailoverSync {
  private readonly client: KeyNodeClient | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  lastError: string | undefined;

  constructor(
    private readonly deps: { store: KeyNodeStore; service: KeyNodeService; secrets: NodeSecrets; config: NodeConfig; log?: (line: string) => void },
  ) {
    const f = deps.config.failover;
    this.client = f ? new KeyNodeClient({ url: f.url, signer: deps.secrets.identity }) : undefined;
  }

  get configured(): boolean {
    return this.client !== undefined;
  }

  /** Pushes one key; resolves false (and keeps it for the loop) if the fail-over did not acknowledge. */
  async push(keyId: string): Promise<boolean> {
    if (!this.client) return true;
    try {
      const exp = await this.deps.service.exportShare(keyId, 'wrapped', 'operator', this.deps.config.failover!.wrapping_key);
      const rec = await this.deps.service.keyRecord(keyId);
      await this.client.importShare({ ...exp, threshold: rec.threshold });
      await this.deps.store.setMeta(SYNCED(keyId), new Date().toISOString());
      this.lastError = undefined;
      return true;
    } catch (err) {
      this.lastError = (err as { code?: string }).code ?? (err as Error).message;
      this.deps.log?.(`fail-over push of ${keyId} failed: ${this.lastError}`);
      return false;
    }
  }

  /** Keys not yet acknowledged by the fail-over. */
  async pending(): Promise<string[]> {
    if (!this.client) return [];
    const out: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.deps.store.listKeys({ afterKeyId: after, limit: 500 });
      if (page.length === 0) return out;
      for (const k of page) if ((await this.deps.store.getMeta(SYNCED(k.keyId))) === undefined) out.push(k.keyId);
      after = page[page.length - 1]!.keyId;
    }
  }

  /** One pass over the unsynced keys; overlapping calls share the pass. */
  syncAll(): Promise<void> {
    this.running ??= (async () => {
      try {
        for (const keyId of await this.pending()) if (!(await this.push(keyId))) break;
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  start(intervalMs = 2000): void {
    if (!this.client || this.timer) return;
    this.timer = setInterval(() => void this.syncAll(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  async status(): Promise<Record<string, unknown>> {
    if (!this.client) return { failover: null };
    const pending = await this.pending();
    return { failover: { url: this.client.url, lag: pending.length, last_error: this.lastError ?? null } };
  }
}
