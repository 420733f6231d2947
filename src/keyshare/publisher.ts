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
import { ctEqual, fromB64, utf8, wipe } from '../util/bytes.js';
import type { ChannelAgent } from '../keynode/durable.js';
import type { LogTarget } from '../keynode/config.js';
import { openKeyShare } from '../keynode/frost/index.js';
import type { ChannelAgentContext } from '../keynode/runtime.js';
import { keyEpoch, type KeyRecord, type KeyshareOutboxRow, type KeysharePublication } from '../keynode/store/index.js';
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
/** Rows sealed at once: enough to keep the thread pool's native scrypt busy beside the main thread. */
const SEAL_CONCURRENCY = 4;
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
   * One pass over the queue, in three phases, each row on its own and each phase's writes in one
   * transaction (one fsync for the pass, not three per row):
   *   1. seal: every row without an entry is sealed (SEAL_CONCURRENCY at once: native scrypt runs on
   *      the thread pool), and the entries are stored, all before the first send;
   *   2. send: up to `concurrency` rows in flight, each to every log that lacks it;
   *   3. record: every publication that came back, and for every row that every log now holds, its
   *      channel and the row's removal.
   * A row that fails to seal stays for the next pass; the others go on. A send that fails does not
   * stop the others already in flight, but no new one starts (the log is likely down). Returns how many rows were published everywhere; after recording what succeeded,
   * throws the first failure (the caller backs off).
   */
  async step(concurrency = PUBLISH_CONCURRENCY): Promise<number> {
    const { store, durable } = this.ctx;
    const rows = await store.listKeyshareOutbox(BATCH);
    if (rows.length === 0) return 0;
    let failure: { err: unknown } | undefined;
    const fail = (err: unknown): void => void (failure ??= { err });

    // 1. seal
    // `sent`: the row had its entry before this pass, so some log may hold it already
    const live: { row: KeyshareOutboxRow; entry: Uint8Array; sent: boolean }[] = [];
    const gone: KeyshareOutboxRow[] = [];
    const toSeal: { row: KeyshareOutboxRow; key: KeyRecord }[] = [];
    for (const row of rows) {
      const key = await store.getKey(row.keyId);
      // A key deleted, or since moved to a newer epoch (that epoch has its own row): nothing to publish.
      if (!key || keyEpoch(key) !== row.epoch) gone.push(row);
      else if (row.entry) live.push({ row, entry: row.entry, sent: true });
      else toSeal.push({ row, key });
    }
    if (toSeal.length > 0) {
      const sealed = await this.sealAll(toSeal, fail);
      const kept = sealed.length === 0 ? [] : await store.transaction(async (tx) => {
        const out: { row: KeyshareOutboxRow; entry: Uint8Array; sent: boolean }[] = [];
        for (const s of sealed) {
          const entry = await tx.setKeyshareEntry(s.row.keyId, s.row.epoch, s.entry);
          // an entry other than ours was stored by another pass, which may have sent it
          if (entry) out.push({ row: s.row, entry, sent: entry !== s.entry && !ctEqual(entry, s.entry) });
        }
        return out;
      });
      live.push(...kept);
    }
    if (gone.length > 0) await store.transaction(async (tx) => { for (const r of gone) await tx.deleteKeyshareOutbox(r.keyId, r.epoch); });

    // 2. send
    const fresh: KeysharePublication[] = [];
    const firstOf = new Map<KeyshareOutboxRow, KeysharePublication>();
    const done: KeyshareOutboxRow[] = [];
    let next = 0;
    let sendFailed = false;
    const worker = async (): Promise<void> => {
      while (next < live.length && !sendFailed) {
        const { row, entry, sent } = live[next++]!;
        const earlier = sent ? await store.listKeysharePublications(row.keyId) : [];
        const have = new Map(earlier.filter((p) => p.epoch === row.epoch).map((p) => [p.log, p] as const));
        try {
          for (const log of this.ctx.config.logs) {
            if (have.has(log.url)) continue;
            const r = await this.publish(log, entry);
            const p = { keyId: row.keyId, epoch: row.epoch, log: log.url, index: r.index, checkpointSize: r.checkpointSize, proof: r.proof, publishedAt: Date.now() };
            fresh.push(p);
            have.set(log.url, p);
          }
          done.push(row);
        } catch (err) {
          sendFailed = true;
          fail(err);
        }
        const first = have.get(this.ctx.config.logs[0]?.url ?? '');
        if (first) firstOf.set(row, first);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, live.length)) }, worker));

    // 3. record
    if (fresh.length > 0 || done.length > 0) {
      await store.transaction(async (tx) => {
        for (const p of fresh) await tx.recordKeysharePublication(p);
        for (const row of done) {
          const first = firstOf.get(row);
          await durable.record(row.keyId, 'log', row.epoch, first ? { index: first.index, checkpoint_size: first.checkpointSize } : {}, tx);
          await tx.deleteKeyshareOutbox(row.keyId, row.epoch);
        }
      });
      durable.notify();
      for (const row of done) {
        const first = firstOf.get(row);
        this.ctx.log?.(`keyshare: key ${row.keyId} epoch ${row.epoch} published${first ? ` (entry ${first.index})` : ''}`);
      }
    }
    if (failure) throw failure.err;
    return done.length;
  }

  /**
   * Seals rows, SEAL_CONCURRENCY at once, reading the words from the vault once (wiped after). A row
   * that fails to seal is left for the next pass and reported through `fail`.
   */
  private async sealAll(rows: { row: KeyshareOutboxRow; key: KeyRecord }[], fail: (err: unknown) => void): Promise<{ row: KeyshareOutboxRow; entry: Uint8Array }[]> {
    let how: SealMode;
    try {
      how = this.sealMode();
    } catch (err) {
      fail(err);
      return [];
    }
    const out: { row: KeyshareOutboxRow; entry: Uint8Array }[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < rows.length) {
        const { row, key } = rows[next++]!;
        try {
          out.push({ row, entry: await this.seal(row, key, how) });
        } catch (err) {
          fail(err);
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(SEAL_CONCURRENCY, rows.length) }, worker));
    } finally {
      if (how.mode === 'passphrase') wipe(how.mnemonic.entropy);
    }
    return out;
  }

  /** Seals the share into a record and an LBLE entry signed by the node. */
  private async seal(row: KeyshareOutboxRow, key: KeyRecord, how: SealMode): Promise<Uint8Array> {
    const { secrets } = this.ctx;
    const share = openKeyShare(secrets.storageKey, key.encryptedShare, { keyId: row.keyId, curve: key.curve, identifier: key.identifier });
    try {
      const record = await sealBackup({ key: share, tenant: key.tenant, epoch: row.epoch, node: secrets.identity }, how);
      return createEntry({ recordType: KEYSHARE_RECORD_TYPE, payload: record }, secrets.identity);
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
