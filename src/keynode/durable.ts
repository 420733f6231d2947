/**
 * Durable channels (docs/keynode.md, "Durable channels"): where a key's share is held outside the node
 * before the key may sign. `backup` is the backup service stream (src/backup), `log` the public log
 * (src/keyshare publishes there), `ers` a verified emergency recovery package registered with the node
 * (src/ers). A new key is stored `pending_backup` while the node requires any channel; each channel's
 * agent records "channel C holds key K at epoch E" through `DurabilityGate.record`, one store call
 * that also activates the key once every required channel holds it at its current epoch.
 */
import { InvalidInputError } from '../errors.js';
import type { NodeConfig } from './config.js';
import type { DurableChannel, KeyNodeStore, KeyNodeStoreOps, KeyRecord } from './store/types.js';
import { DURABLE_CHANNEL_NAMES, keyEpoch } from './store/types.js';

/** What a channel's agent offers the node: started by `node serve`, stopped with the node. */
export interface ChannelAgent {
  start(): void;
  /** Stops after the step in flight. */
  stop(): Promise<void>;
  /** Something was committed: work now instead of at the next tick. */
  kick(): void;
}

/** The channels configured on this node (a backup service; a mnemonic and at least one log; ERS enabled). */
export function configuredChannels(c: NodeConfig): DurableChannel[] {
  const out: DurableChannel[] = [];
  if (c.backup) out.push('backup');
  if (c.keyshare && c.logs.length > 0) out.push('log');
  if (c.ers.enabled) out.push('ers');
  return out;
}

/**
 * The channels a new key must be held by before it signs: `durable_channels` when set, else backup
 * (unless backup.usable_before_ack) and log when configured. Every existing node keeps its behaviour:
 * backup-only nodes wait for the backup acknowledgement exactly as before.
 */
export function requiredChannels(c: NodeConfig): DurableChannel[] {
  if (c.durable_channels) return [...c.durable_channels];
  const out: DurableChannel[] = [];
  if (c.backup && !c.backup.usable_before_ack) out.push('backup');
  if (c.keyshare && c.logs.length > 0) out.push('log');
  return out;
}

/**
 * Which channels hold `key` at its current epoch, as `node status --keys`, `key info` and `key list`
 * show it: the log with its entry `{index, checkpoint_size}`, another channel `true`, and each channel
 * a new key needs (`required`) that does not hold it `false`. Throws the store's errors.
 */
export async function keyChannelView(store: Pick<KeyNodeStoreOps, 'listKeyChannels'>, key: KeyRecord, required: readonly DurableChannel[]): Promise<Record<string, unknown>> {
  const epoch = keyEpoch(key);
  const channels: Record<string, unknown> = {};
  for (const c of await store.listKeyChannels(key.keyId)) {
    if (c.epoch !== epoch) continue;
    channels[c.channel] = c.channel === 'log' ? (JSON.parse(c.detail) as unknown) : true;
  }
  for (const c of required) channels[c] ??= false;
  return channels;
}

/**
 * Parses a `durable_channels` value: `default`, `none`, or channels separated by commas. Returns null
 * for `default`. Throws InvalidInputError naming an unknown or repeated channel, or one this node has
 * not configured (a key would never become usable).
 */
export function parseDurableChannels(raw: string, c: NodeConfig): DurableChannel[] | null {
  const v = raw.trim();
  if (v === 'default') return null;
  if (v === 'none') return [];
  const names = v.split(',').map((s) => s.trim());
  const seen = new Set<string>();
  for (const n of names) {
    if (!(DURABLE_CHANNEL_NAMES as readonly string[]).includes(n)) throw new InvalidInputError(`durable_channels: ${JSON.stringify(n.slice(0, 32))} is not a channel`, { hint: `channels: ${DURABLE_CHANNEL_NAMES.join(', ')}; or default, or none` });
    if (seen.has(n)) throw new InvalidInputError(`durable_channels names ${n} twice`);
    seen.add(n);
  }
  const configured = configuredChannels(c);
  const missing = names.find((n) => !configured.includes(n as DurableChannel));
  if (missing) {
    const how: Record<string, string> = { backup: '`lifeboat node backup-setup`', log: '`lifeboat node mnemonic setup` (or `node init` with a mnemonic) and `lifeboat node log-setup`', ers: '`lifeboat node config set ers.enabled true`' };
    throw new InvalidInputError(`durable_channels: this node has no ${missing} channel, so no key would ever become usable`, { hint: `set it up first with ${how[missing]}` });
  }
  return names as DurableChannel[];
}

/**
 * Records channel holdings and lets a DKG or import answer wait for its key's activation. One per
 * opened node; the agents call `record`, the service calls `wait`.
 */
export class DurabilityGate {
  private readonly waiters = new Set<() => void>();
  private readonly kicks: (() => void)[] = [];

  constructor(
    private readonly store: KeyNodeStore,
    /** The channels a new key needs (requiredChannels). */
    readonly required: readonly DurableChannel[],
    /** How long a DKG or import answer waits for the activation (backup.wait_ms, else 10 s). */
    readonly waitMs: number,
  ) {}

  /** Whether new keys start `pending_backup`. */
  get gated(): boolean {
    return this.required.length > 0;
  }

  /** An agent to wake when a caller starts waiting (its work is what the caller waits for). */
  onWait(kick: () => void): void {
    this.kicks.push(kick);
  }

  /**
   * Records that `channel` holds `keyId` at `epoch` (on `tx` when given, inside the caller's
   * transaction) and wakes the waiters. Returns whether the key became active.
   */
  async record(keyId: string, channel: DurableChannel, epoch: number, detail: object = {}, tx?: KeyNodeStoreOps): Promise<boolean> {
    const r = await (tx ?? this.store).recordKeyChannel(keyId, channel, epoch, JSON.stringify(detail), this.required, Date.now());
    if (!tx) this.notify();
    return r.activated;
  }

  /** Wakes every waiter to look again (after a transaction that recorded a holding committed). */
  notify(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Resolves true when `keyId` is active, false after `timeoutMs` or if it is gone. */
  async wait(keyId: string, timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    for (const k of this.kicks) k();
    for (;;) {
      const key = await this.store.getKey(keyId);
      if (!key) return false;
      if (key.status === 'active') return true;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          this.waiters.delete(done);
          resolve();
        };
        const t = setTimeout(done, Math.min(left, 1000));
        this.waiters.add(done);
      });
    }
  }
}
