/**
 * Keeping a fail-over node in sync (docs/keynode-operations.md, "Fail-over").
 *
 * Every share committed on this (primary) node is exported wrapped to the fail-over's whitelisted
 * wrapping key and imported there under the same key id and tenant, the request signed by this node's identity:
 * the fail-over accepts key-id-keeping imports only from its paired primary. A key is marked synced in
 * meta (`failover_synced:<fail-over fingerprint>:<key_id>`) once the fail-over acknowledged it, so a
 * new pairing starts from nothing and a restored node does not push again what its fail-over holds.
 *
 * The serving process keeps the unsynced keys in memory: filled by one scan of the store at start
 * (and again every few minutes, for keys another process wrote into a shared store), added to on every
 * commit, emptied by acknowledgements. A loop retries them in key order and stops when the fail-over
 * itself fails (down, not paired), so an outage delays the copy but loses nothing and does not hammer
 * a node that is down; a key the fail-over refuses stays in the lag without holding up the others. The
 * lag is the number of unsynced keys.
 */
import { identityFingerprint, parsePublicIdentity } from '../identity.js';
import type { NodeConfig } from './config.js';
import { KeyNodeClient } from './client.js';
import { NODE_CALLER } from './caller.js';
import type { KeyNodeService } from './service.js';
import type { NodeSecrets } from './secrets.js';
import type { KeyNodeStore } from './store/types.js';

const LAST_ERROR = 'failover_last_error';
/** Errors that say the fail-over (or the pairing) is down, not one key: the pass stops at them. */
const PEER_WIDE = new Set(['peer_unreachable', 'peer_bad_answer', 'not_enrolled', 'unauthorized', 'bad_signature', 'request_expired', 'replayed_request', 'rate_limited']);

type PushResult = 'synced' | 'key_failed' | 'peer_failed';
const PAGE = 500;

export interface FailoverStatus {
  url: string;
  fingerprint: string;
  /** Keys committed here and not yet acknowledged by the fail-over node. */
  lag: number;
  /** The err_type of the last failed push, or null once every key is synced. */
  last_error: string | null;
  /** When the fail-over last acknowledged a key (ISO 8601), or null if not since this process began. */
  last_synced_at: string | null;
  /**
   * When the retry loop last finished a pass over the unsynced keys (ISO 8601), or null before its
   * first (and in a process that does not serve): after it, lag and last_error hold that pass's outcome.
   */
  last_pass_at: string | null;
}

export interface FailoverSyncDeps {
  store: KeyNodeStore;
  service: KeyNodeService;
  secrets: NodeSecrets;
  config: NodeConfig;
  log?: (line: string) => void;
  /** How often the retry loop runs (default 2 s) and how often it rescans the store (default 5 min). */
  retryMs?: number;
  rescanMs?: number;
}

export class FailoverSync {
  private readonly client: KeyNodeClient | undefined;
  private readonly prefix: string;
  private readonly fingerprint: string;
  private readonly unsynced = new Set<string>();
  private readonly inflight = new Map<string, Promise<PushResult>>();
  private scannedAt: number | undefined;
  private scanning: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** undefined until this process knows (the first push writes it to meta either way). */
  private lastError: string | null | undefined;
  private lastSyncedAt: string | null = null;
  private lastPassAt: string | null = null;

  constructor(private readonly deps: FailoverSyncDeps) {
    const f = deps.config.failover;
    this.fingerprint = f ? identityFingerprint(parsePublicIdentity(f.identity, 'fail-over identity')) : '';
    this.prefix = `failover_synced:${this.fingerprint}:`;
    this.client = f ? new KeyNodeClient({ url: f.url, signer: deps.secrets.identity, timeoutMs: 10_000 }) : undefined;
  }

  get configured(): boolean {
    return this.client !== undefined;
  }

  /** A key was committed here (DKG or import): remember it and push it now, without waiting. */
  committed(keyId: string): void {
    if (!this.client) return;
    this.unsynced.add(keyId);
    void this.push(keyId);
  }

  /**
   * Pushes one key; resolves true once the fail-over acknowledged it (or when no fail-over is paired),
   * false when it did not (the key stays for the retry loop). Never throws. Concurrent pushes of one
   * key share one request.
   */
  async push(keyId: string): Promise<boolean> {
    return (await this.pushShared(keyId)) === 'synced';
  }

  private pushShared(keyId: string): Promise<PushResult> {
    if (!this.client) return Promise.resolve('synced');
    let p = this.inflight.get(keyId);
    if (!p) {
      p = this.pushOnce(keyId).finally(() => this.inflight.delete(keyId));
      this.inflight.set(keyId, p);
    }
    return p;
  }

  private async pushOnce(keyId: string): Promise<PushResult> {
    const f = this.deps.config.failover!;
    let stage: 'local' | 'peer' = 'local';
    try {
      const rec = await this.deps.service.keyRecord(keyId, NODE_CALLER);
      const exp = await this.deps.service.exportShare(keyId, 'wrapped', NODE_CALLER, f.wrapping_key);
      stage = 'peer';
      // The owner and the key's own ERS policy travel with the share: the fail-over stores them too.
      await this.client!.importShare({ ...exp, threshold: rec.threshold, tenant: rec.tenant, ...(rec.ersPolicy ? { ers_policy: rec.ersPolicy } : {}) });
      await this.deps.store.setMeta(this.prefix + keyId, new Date().toISOString());
      this.unsynced.delete(keyId);
      this.lastSyncedAt = new Date().toISOString();
      // The error stays shown while any key is still owed: it is probably that key's reason.
      if (this.unsynced.size === 0) await this.noteError(null);
      return 'synced';
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      const what = typeof code === 'string' ? code : 'internal_error';
      // A key deleted here since it was committed has nothing left to copy.
      if (stage === 'local' && what === 'key_id_not_exists') {
        this.unsynced.delete(keyId);
        return 'key_failed';
      }
      if (what !== this.lastError) this.deps.log?.(`fail-over push of ${keyId} to ${f.url} failed: ${what}`);
      await this.noteError(what);
      const status = (err as { status?: unknown }).status;
      return stage === 'peer' && (PEER_WIDE.has(what) || (typeof status === 'number' && status >= 500)) ? 'peer_failed' : 'key_failed';
    }
  }

  /** Keeps the last error in meta too, so `lifeboat node status` (another process) can show it. */
  private async noteError(code: string | null): Promise<void> {
    if (code === this.lastError) return;
    this.lastError = code;
    try {
      await this.deps.store.setMeta(LAST_ERROR, code ?? '');
    } catch {
      // Status detail only; the push result stands.
    }
  }

  /** Scans the whole store for keys without an acknowledgement from this fail-over. */
  async scan(): Promise<string[]> {
    if (!this.client) return [];
    const out: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.deps.store.listKeys({ afterKeyId: after, limit: PAGE });
      if (page.length === 0) return out;
      for (const k of page) if ((await this.deps.store.getMeta(this.prefix + k.keyId)) === undefined) out.push(k.keyId);
      after = page[page.length - 1]!.keyId;
    }
  }

  /** Rescans when due; a caller during a scan waits for it, so the lag is never read from a half-filled set. */
  private refresh(now = Date.now()): Promise<void> {
    if (this.scanning) return this.scanning;
    if (this.scannedAt !== undefined && now - this.scannedAt < (this.deps.rescanMs ?? 300_000)) return Promise.resolve();
    this.scanning = (async () => {
      for (const keyId of await this.scan()) this.unsynced.add(keyId);
      this.scannedAt = now;
    })().finally(() => (this.scanning = undefined));
    return this.scanning;
  }

  /** One pass over the unsynced keys, in key order, until the first failure; overlapping calls share it. */
  syncAll(): Promise<void> {
    this.running ??= (async () => {
      try {
        await this.refresh();
        // Stop at a failure of the fail-over as a whole; a failure of one key does not hold up the rest.
        for (const keyId of [...this.unsynced].sort()) if ((await this.pushShared(keyId)) === 'peer_failed') break;
        if (this.unsynced.size === 0) await this.noteError(null);
        this.lastPassAt = new Date().toISOString();
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        this.deps.log?.(`fail-over sync pass failed: ${typeof code === 'string' ? code : 'internal_error'}`);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  /** A new sync like this one for another configuration (a reload that changed `failover`); stop this one. */
  withConfig(config: NodeConfig): FailoverSync {
    return new FailoverSync({ ...this.deps, config });
  }

  /** Starts the retry loop (the first pass at once). Idempotent; a no-op without a paired fail-over. */
  start(): void {
    if (!this.client || this.timer) return;
    void this.syncAll();
    this.timer = setInterval(() => void this.syncAll(), this.deps.retryMs ?? 2000);
    this.timer.unref();
  }

  /** Stops the loop and waits for a pass in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
    await Promise.all(this.inflight.values());
  }

  /**
   * `{failover: FailoverStatus | null}`. In the serving process the lag is the in-memory count; in any
   * other (`lifeboat node status`) it is counted from the store.
   */
  async status(): Promise<{ failover: FailoverStatus | null }> {
    if (!this.client) return { failover: null };
    let lag: number;
    let lastError = this.lastError ?? null;
    if (this.timer) {
      await this.refresh();
      lag = this.unsynced.size;
    } else {
      lag = (await this.scan()).length;
      lastError = (await this.deps.store.getMeta(LAST_ERROR)) || null;
    }
    return { failover: { url: this.client.url, fingerprint: this.fingerprint, lag, last_error: lastError, last_synced_at: this.lastSyncedAt, last_pass_at: this.lastPassAt } };
  }
}
