/**
 * The key-share publisher in a key node (docs/keyshare.md, "Publishing from the node"): the agent of
 * the `log` durable channel, started by `node serve` like the backup agent.
 *
 * Every key insert on a node with an operator mnemonic queues (key id, epoch) in the store's
 * keyshare_outbox, in the insert's transaction (src/keynode/store/keyshare.ts). The agent then, per row:
 *   1. seals the share (`sealBackup`, with ADR 004's checks), wraps the record in an LBLE entry signed
 *      by the node identity, and stores the entry in the row BEFORE the first send: a retry after a
 *      crash sends the very same bytes, and the log answers the index it already gave them;
 *   2. sends it to every configured log (`addEntryVerified`: the checkpoint under the log's key with
 *      the witness quorum, the inclusion path) and keeps the proof document and checkpoint size;
 *   3. once every log holds it, removes the row and records that the `log` channel holds the key at
 *      that epoch, which activates the key when it was the last required channel.
 * Network errors back off and retry; nothing is dropped; a restart resumes from the rows.
 *   keyshare_last_error (meta)   what `node status` reports from the serving process
 */
import { InvalidInputError, LifeboatError } from '../errors.js';
import { AgentLoop } from '../util/agent-loop.js';
import { fromB64, utf8, wipe } from '../util/bytes.js';
import type { ChannelAgent } from '../keynode/durable.js';
import type { LogTarget } from '../keynode/config.js';
import { openKeyShare } from '../keynode/frost/index.js';
import type { ChannelAgentContext } from '../keynode/runtime.js';
import { keyEpoch, type KeyRecord, type KeyshareOutboxRow } from '../keynode/store/index.js';
import { parseWitnessVerifierKey } from '../log/cosignature.js';
import { createEntry } from '../log/entry.js';
import { encodeInclusionDoc } from '../log/inclusion.js';
import { type NoteVerifier, parseVerifierKey } from '../log/note.js';
import { addEntryVerified } from '../log/server/client.js';
import { checkMnemonic } from './mnemonic.js';
import { KEYSHARE_RECORD_TYPE } from './record.js';
import { sealBackup, type SealMode } from './seal.js';

export const META_LAST_ERROR = 'keyshare_last_error';
/** Rows read from the queue per pass. */
const BATCH = 256;
/**
 * Rows published at once. Each add waits for the log's next checkpoint (its batch interval), so one
 * row at a time would take hours for 10,000 keys; sealing is CPU and the adds mostly wait, so many in
 * flight share one checkpoint (docs/keyshare.md, "Publishing").
 */
export const PUBLISH_CONCURRENCY = 64;
const RETRY_MIN_MS = 250;
/** Lower than the backup agent's: new keys wait for this channel, and a log's add is cheap to retry. */
const RETRY_MAX_MS = 5_000;

/** How the agent sends an entry to one log (addEntryVerified, or a test's). */
export type PublishFn = (log: LogTarget, entry: Uint8Array) => Promise<{ index: number; checkpointSize: number; proof: string }>;

interface ParsedLog {
  target: LogTarget;
  verifier: NoteVerifier;
  witnesses: NoteVerifier[];
}

/** Checks a log target's keys (the log's verifier key, witness keys, quorum). Throws what the parsers throw. */
export function parseLogTarget(t: LogTarget): ParsedLog {
  const witnesses = t.witness_keys.map(parseWitnessVerifierKey);
  if (t.quorum > witnesses.length) throw new InvalidInputError(`quorum ${t.quorum} is more than the ${witnesses.length} witness keys`);
  return { target: t, verifier: parseVerifierKey(t.log_key), witnesses };
}

/** The real send: POST /add, the answer verified under the log's key and the witness quorum. */
export function httpPublish(logs: readonly ParsedLog[]): PublishFn {
  return async (target, entry) => {
    const p = logs.find((l) => l.target.url === target.url)!;
    const { doc, checkpoint } = await addEntryVerified(target.url, entry, p.verifier, { witnesses: p.witnesses, quorum: target.quorum });
    const { entry: _sent, ...withoutEntry } = doc;
    return { index: doc.index, checkpointSize: checkpoint.size, proof: JSON.stringify(encodeInclusionDoc(withoutEntry)) };
  };
}

export class KeysharePublisher implements ChannelAgent {
  private readonly publish: PublishFn;
  private readonly loop: AgentLoop;

  constructor(
    private readonly ctx: ChannelAgentContext,
    opts: { publish?: PublishFn } = {},
  ) {
    this.publish = opts.publish ?? httpPublish(ctx.config.logs.map(parseLogTarget));
    this.loop = new AgentLoop({ name: 'keyshare', step: async () => (await this.step()) > 0, recordError: (msg) => ctx.store.setMeta(META_LAST_ERROR, msg ?? '').catch(() => undefined), log: ctx.log, retryMinMs: RETRY_MIN_MS, retryMaxMs: RETRY_MAX_MS });
  }

  start(): void {
    this.loop.start();
  }

  async stop(): Promise<void> {
    await this.loop.stop();
  }

  kick(): void {
    this.loop.kick();
  }

  /**
   * One pass over the queue: up to `concurrency` rows in flight at once, each row on its own (sealed and
   * stored before its first send, as one at a time). Returns how many rows were published everywhere;
   * after every row of the pass has settled, throws the first failure (the caller backs off).
   */
  async step(concurrency = PUBLISH_CONCURRENCY): Promise<number> {
    const rows = await this.ctx.store.listKeyshareOutbox(BATCH);
    // The words are read from the vault once per pass, only when a row is still to seal, and wiped after it.
    let how: SealMode | undefined;
    const sealMode = (): SealMode => (how ??= this.sealMode());
    let done = 0;
    let next = 0;
    let failure: { err: unknown } | undefined;
    const worker = async (): Promise<void> => {
      // After a failure no new row starts: the log is likely down, and the pass backs off as a whole.
      while (next < rows.length && failure === undefined) {
        const row = rows[next++]!;
        try {
          if (await this.publishRow(row, sealMode)) done++;
        } catch (err) {
          failure ??= { err };
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, rows.length)) }, worker));
    } finally {
      if (how?.mode === 'passphrase') wipe(how.mnemonic.entropy);
    }
    if (failure) throw failure.err;
    return done;
  }

  /** Seals (once), sends to every log that lacks it, and records the channel. Returns true when done with the row. */
  private async publishRow(row: KeyshareOutboxRow, sealMode: () => SealMode): Promise<boolean> {
    const { store, durable } = this.ctx;
    const key = await store.getKey(row.keyId);
    // A key deleted, or since moved to a newer epoch (that epoch has its own row): nothing to publish.
    if (!key || keyEpoch(key) !== row.epoch) {
      await store.deleteKeyshareOutbox(row.keyId, row.epoch);
      return false;
    }
    const entry = row.entry ?? (await this.seal(row, key, sealMode()));
    const have = new Map((await store.listKeysharePublications(row.keyId)).filter((p) => p.epoch === row.epoch).map((p) => [p.log, p] as const));
    for (const log of this.ctx.config.logs) {
      if (have.has(log.url)) continue;
      const r = await this.publish(log, entry);
      const p = { keyId: row.keyId, epoch: row.epoch, log: log.url, index: r.index, checkpointSize: r.checkpointSize, proof: r.proof, publishedAt: Date.now() };
      await store.recordKeysharePublication(p);
      have.set(log.url, p);
    }
    const first = have.get(this.ctx.config.logs[0]?.url ?? '');
    await store.transaction(async (tx) => {
      await durable.record(row.keyId, 'log', row.epoch, first ? { index: first.index, checkpoint_size: first.checkpointSize } : {}, tx);
      await tx.deleteKeyshareOutbox(row.keyId, row.epoch);
    });
    durable.notify();
    this.ctx.log?.(`keyshare: key ${row.keyId} epoch ${row.epoch} published${first ? ` (entry ${first.index})` : ''}`);
    return true;
  }

  /** Seals the share into a record and an entry, stores the entry, and returns the one the row holds. */
  private async seal(row: KeyshareOutboxRow, key: KeyRecord, how: SealMode): Promise<Uint8Array> {
    const { secrets, store } = this.ctx;
    const share = openKeyShare(secrets.storageKey, key.encryptedShare, { keyId: row.keyId, curve: key.curve, identifier: key.identifier });
    try {
      const record = await sealBackup({ key: share, tenant: key.tenant, epoch: row.epoch, node: secrets.identity }, how);
      const entry = createEntry({ recordType: KEYSHARE_RECORD_TYPE, payload: record }, secrets.identity);
      const kept = await store.setKeyshareEntry(row.keyId, row.epoch, entry);
      if (!kept) throw new LifeboatError('keyshare_row_gone', `the publication of key ${row.keyId} epoch ${row.epoch} left the queue while it was sealed`);
      return kept;
    } finally {
      wipe(share.share);
    }
  }

  private sealMode(): SealMode {
    const ks = this.ctx.config.keyshare!;
    if (ks.mode === 'recipient') return { mode: 'recipient', recipient: ks.recipient!, mnemonicCheck: fromB64(ks.mnemonic_check!, 'mnemonic_check', 16) };
    const bytes = this.ctx.readMnemonic();
    if (!bytes) throw new LifeboatError('mnemonic_missing', 'this passphrase-mode node has no mnemonic in its vault (node/mnemonic)', { hint: 'restore the vault, or set the node up again' });
    try {
      return { mode: 'passphrase', mnemonic: checkMnemonic(utf8.decode(bytes)) };
    } finally {
      wipe(bytes);
    }
  }
}

/**
 * The publisher of a node with an operator mnemonic and at least one log, for openNode's
 * `channelAgents`; undefined otherwise. Throws what parseLogTarget throws (a bad key in node.json).
 */
export function keysharePublisher(ctx: ChannelAgentContext): KeysharePublisher | undefined {
  if (!ctx.config.keyshare || ctx.config.logs.length === 0) return undefined;
  return new KeysharePublisher(ctx);
}
