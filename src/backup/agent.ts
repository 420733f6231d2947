/**
 * The backup agent in a key node (docs/backup.md, "The agent in the key node").
 *
 * The store writes every committed change to its outbox in the same transaction as the change. The
 * agent then, in a loop:
 *   1. seals unsealed outbox rows into entries, assigning seq and prev in one local transaction (a
 *      re-send after a crash is byte-identical, so the service's idempotent append accepts it);
 *   2. uploads sealed entries in batches; on the acknowledgement deletes them, records the acked head
 *      and activates the `pending_backup` keys whose entry is now durable;
 *   3. compacts when enough entries were acknowledged since the last compaction, or it is old enough.
 * Network errors back off and retry; nothing is dropped. The agent's own state is in the store's meta:
 *   backup_head       {"seq", "hash"}   the last sealed entry
 *   backup_acked      {"seq", "hash"}   the last entry the service acknowledged
 *   backup_pending    {"<key_id>": seq} keys waiting for their entry to be acknowledged
 *   backup_compacted  {"seq", "at"}     the last compaction the service completed
 *   backup_last_error, backup_rollback_detected   what `node status` reports from the serving process
 */
import { LifeboatError } from '../errors.js';
import { AgentLoop } from '../util/agent-loop.js';
import { fromB64, toB64 } from '../util/bytes.js';
import { keyEpoch, type KeyNodeStore, type KeyNodeStoreTx } from '../keynode/store/types.js';
import { decodeChange, encodeChange, isSecretsMarker, SECRETS_MARKER, stampChange, type StreamSecrets } from './changes.js';
import { CompactionWriter } from './compaction.js';
import { hashBlob, sealEntry, ZERO_HASH } from './format.js';

/** What the agent needs from the backup service (BackupClient, or a test double). */
export interface BackupTransport {
  /** The stream's head on the service, or undefined if it has no entries. */
  head(stream: string): Promise<{ headSeq: number; headHash: Uint8Array } | undefined>;
  /** Appends entries (idempotent); returns the head after them. */
  append(stream: string, entries: Uint8Array[]): Promise<{ headSeq: number; headHash: Uint8Array }>;
  /**
   * Starts a streamed upload of a compaction covering entries up to `seq`: its bytes are written as
   * they are made, then `finish` completes it (the service checks it and makes it current).
   */
  beginCompaction(stream: string, seq: number): Promise<CompactionUploadSink>;
}

/** Where a compaction's bytes go while it is written (CompactionUpload, or a test double). */
export interface CompactionUploadSink {
  write(bytes: Uint8Array): Promise<void>;
  finish(): Promise<void>;
}

export interface BackupAgentOptions {
  store: KeyNodeStore;
  backupKey: Uint8Array;
  /** The node keys a compaction carries. */
  secrets: () => StreamSecrets;
  stream: string;
  transport: BackupTransport;
  /** Entries per upload (1 to 10,000). */
  batchEntries?: number;
  /** Compact after this many acknowledged entries since the last compaction. */
  compactEntries?: number;
  /** Compact after this many seconds if anything was acknowledged since. */
  compactSeconds?: number;
  log?: (line: string) => void;
  now?: () => number;
  /**
   * The node's durable channels (src/keynode/durable.ts): told, inside the acknowledgement's
   * transaction, that the stream holds a key (it activates the key once every required channel does),
   * and notified after that transaction. Without it, an acknowledged key is simply activated.
   */
  durable?: { record(keyId: string, channel: 'backup', epoch: number, detail: object, tx: KeyNodeStoreTx): Promise<unknown>; notify(): void };
}

export interface AgentHead {
  seq: number;
  hash: Uint8Array;
}

export interface BackupAgentStatus {
  stream: string;
  sealedSeq: number;
  ackedSeq: number;
  compactedSeq: number;
  compactedAt: string | null;
  unsealed: number;
  unacked: number;
  pendingKeys: number;
  lastError: string | null;
  rollbackDetected: boolean;
}

const META_HEAD = 'backup_head';
const META_ACKED = 'backup_acked';
const META_PENDING = 'backup_pending';
const META_COMPACTED = 'backup_compacted';
/** The running agent's last error and rollback flag, so `node status` in another process sees them. */
const META_LAST_ERROR = 'backup_last_error';
const META_ROLLBACK = 'backup_rollback_detected';
const SEAL_BATCH = 1000;
/** Keys read from the store per page while compacting: what a compaction holds in memory at once. */
const COMPACT_PAGE = 1000;
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 30_000;

async function readHead(tx: Pick<KeyNodeStoreTx, 'getMeta'>, key: string): Promise<AgentHead> {
  const raw = await tx.getMeta(key);
  if (raw === undefined) return { seq: 0, hash: ZERO_HASH };
  const j = JSON.parse(raw) as { seq: number; hash: string };
  return { seq: j.seq, hash: fromB64(j.hash, key, 32) };
}

function headJson(h: AgentHead): string {
  return JSON.stringify({ seq: h.seq, hash: toB64(h.hash) });
}

/**
 * Starts the agent over on a new stream (after the service lost entries): sealed entries of the old
 * stream are dropped (their stream is bound in), and the agent's heads, pending keys and flags reset.
 * The caller queues the node's whole state in the same transaction.
 */
export async function resetBackupState(tx: KeyNodeStoreTx, now: number): Promise<number> {
  const dropped = await tx.deleteSealedOutboxThrough(Number.MAX_SAFE_INTEGER);
  const zero = headJson({ seq: 0, hash: ZERO_HASH });
  await tx.setMeta(META_HEAD, zero);
  await tx.setMeta(META_ACKED, zero);
  await tx.setMeta(META_PENDING, '{}');
  await tx.setMeta(META_COMPACTED, JSON.stringify({ seq: 0, at: now }));
  await tx.setMeta(META_ROLLBACK, 'false');
  await tx.setMeta(META_LAST_ERROR, '');
  return dropped;
}

/** Queues the node keys, every API key and every key as changes (a stream's start); returns how many. */
export async function queueWholeState(tx: KeyNodeStoreTx, now: number): Promise<number> {
  let count = 1;
  await tx.appendOutbox(SECRETS_MARKER, now);
  for (const apiKey of await tx.listApiKeys()) {
    await tx.appendOutbox(encodeChange({ op: 'api_key_put', apiKey }), now);
    count++;
  }
  let after: string | undefined;
  for (;;) {
    const page = await tx.listKeys({ afterKeyId: after, limit: 1000 });
    if (page.length === 0) break;
    for (const key of page) await tx.appendOutbox(encodeChange({ op: 'key_put', key }), now);
    count += page.length;
    after = page[page.length - 1]!.keyId;
  }
  return count;
}

/** Writes the agent's starting point after a restore: everything up to `head` is on the service. */
export async function setRestoredBackupState(tx: KeyNodeStoreTx, head: AgentHead, compactedSeq: number, now: number): Promise<void> {
  await tx.setMeta(META_HEAD, headJson(head));
  await tx.setMeta(META_ACKED, headJson(head));
  await tx.setMeta(META_PENDING, '{}');
  await tx.setMeta(META_COMPACTED, JSON.stringify({ seq: compactedSeq, at: now }));
}

export class BackupAgent {
  private readonly o: Required<Omit<BackupAgentOptions, 'log' | 'now' | 'durable'>> & Pick<BackupAgentOptions, 'log' | 'durable'>;
  private readonly now: () => number;
  private rollback = false;
  private checkedServerHead = false;
  private readonly loop: AgentLoop;

  constructor(opts: BackupAgentOptions) {
    this.o = { batchEntries: 1000, compactEntries: 10_000, compactSeconds: 86_400, ...opts };
    this.now = opts.now ?? Date.now;
    // The last error is kept in the store's meta too (best effort: the store may be the problem).
    this.loop = new AgentLoop({ name: 'backup', step: () => this.step(), recordError: (msg) => this.o.store.setMeta(META_LAST_ERROR, msg ?? '').catch(() => undefined), log: opts.log, retryMinMs: RETRY_MIN_MS, retryMaxMs: RETRY_MAX_MS });
  }

  /** Starts the loop (idempotent). */
  start(): void {
    this.loop.start();
  }

  /** Stops the loop after the step in flight. */
  async stop(): Promise<void> {
    await this.loop.stop();
  }

  /** Something was committed: work now instead of at the next tick. */
  kick(): void {
    this.loop.kick();
  }

  async status(): Promise<BackupAgentStatus> {
    const s = this.o.store;
    const [sealed, acked, counts, pending, compacted, lastError, rollback] = await Promise.all([
      readHead(s, META_HEAD),
      readHead(s, META_ACKED),
      s.countOutbox(),
      s.getMeta(META_PENDING),
      s.getMeta(META_COMPACTED),
      s.getMeta(META_LAST_ERROR),
      s.getMeta(META_ROLLBACK),
    ]);
    const c = compacted ? (JSON.parse(compacted) as { seq: number; at: number }) : undefined;
    return {
      stream: this.o.stream,
      sealedSeq: sealed.seq,
      ackedSeq: acked.seq,
      compactedSeq: c?.seq ?? 0,
      compactedAt: c && c.seq > 0 ? new Date(c.at).toISOString() : null,
      unsealed: counts.unsealed,
      unacked: counts.sealed,
      pendingKeys: Object.keys(JSON.parse(pending ?? '{}') as object).length,
      lastError: this.loop.lastError ?? (lastError || null),
      rollbackDetected: this.rollback || rollback === 'true',
    };
  }

  /**
   * One pass: seal, upload until nothing is left, compact if due. Returns true if it did anything.
   * Throws the transport's errors (the loop retries them).
   */
  async step(): Promise<boolean> {
    let worked = false;
    while ((await this.seal()) > 0) worked = true;
    if (!this.checkedServerHead) await this.checkServerHead();
    while ((await this.upload()) > 0) worked = true;
    if (await this.compactIfDue()) worked = true;
    return worked;
  }

  /** Seals up to SEAL_BATCH outbox rows in one transaction; returns how many. */
  private async seal(): Promise<number> {
    const { stream, backupKey } = this.o;
    return this.o.store.transaction(async (tx) => {
      const rows = await tx.listUnsealedOutbox(SEAL_BATCH);
      if (rows.length === 0) return 0;
      const head = await readHead(tx, META_HEAD);
      const pending = JSON.parse((await tx.getMeta(META_PENDING)) ?? '{}') as Record<string, number>;
      let { seq, hash } = head;
      for (const row of rows) {
        seq += 1;
        // The node keys never sit in the store in plaintext: a marker stands for them until now.
        // Stamped with its commit time: what `node restore --to-time` reads (docs/backup.md).
        const plaintext = stampChange(isSecretsMarker(row.change) ? encodeChange({ op: 'secrets', secrets: this.o.secrets() }) : row.change, row.createdAt);
        const change = decodeChange(plaintext);
        if (change.op === 'key_put' && change.key.status === 'pending_backup') pending[change.key.keyId] = seq;
        const entry = sealEntry(backupKey, { stream, seq, prev: hash }, plaintext);
        await tx.sealOutbox(row.id, seq, entry);
        hash = hashBlob(entry);
      }
      await tx.setMeta(META_HEAD, headJson({ seq, hash }));
      await tx.setMeta(META_PENDING, JSON.stringify(pending));
      return rows.length;
    });
  }

  /**
   * Compares the service's head with what was acknowledged: lower means the service lost entries it
   * acknowledged (rolled back); the agent says so loudly and keeps its outbox.
   */
  private async checkServerHead(): Promise<void> {
    const acked = await readHead(this.o.store, META_ACKED);
    const server = await this.o.transport.head(this.o.stream);
    const serverSeq = server?.headSeq ?? 0;
    if (serverSeq < acked.seq) {
      this.rollback = true;
      await this.o.store.setMeta(META_ROLLBACK, 'true');
      throw new LifeboatError('backup_rollback_detected', `the backup service holds stream ${this.o.stream} up to entry ${serverSeq}, but entry ${acked.seq} was acknowledged`, {
        hint: 'the service lost acknowledged entries (an old database restored?): check the service, then start a new stream from the node’s whole state: `lifeboat node backup-setup --new-stream NAME`',
      });
    }
    this.checkedServerHead = true;
    if (this.rollback || (await this.o.store.getMeta(META_ROLLBACK)) === 'true') {
      this.rollback = false;
      await this.o.store.setMeta(META_ROLLBACK, 'false');
    }
  }

  /** Uploads one batch of sealed entries; returns how many were acknowledged. */
  private async upload(): Promise<number> {
    const s = this.o.store;
    const acked = await readHead(s, META_ACKED);
    const rows = await s.listSealedOutbox(acked.seq, this.o.batchEntries);
    if (rows.length === 0) return 0;
    const head = await this.o.transport.append(this.o.stream, rows.map((r) => r.entry));
    const last = rows[rows.length - 1]!;
    if (head.headSeq < last.seq) throw new LifeboatError('backup_not_acknowledged', `the service acknowledged up to entry ${head.headSeq}, not ${last.seq}`);
    const lastHash = hashBlob(last.entry);
    await s.transaction(async (tx) => {
      await tx.deleteSealedOutboxThrough(last.seq);
      await tx.setMeta(META_ACKED, headJson({ seq: last.seq, hash: lastHash }));
      const pending = JSON.parse((await tx.getMeta(META_PENDING)) ?? '{}') as Record<string, number>;
      for (const [keyId, seq] of Object.entries(pending)) {
        if (seq > last.seq) continue;
        const key = await tx.getKey(keyId);
        if (key && this.o.durable) await this.o.durable.record(keyId, 'backup', keyEpoch(key), { seq }, tx);
        else if (key) await tx.setKeyStatusUnjournaled(keyId, 'active');
        delete pending[keyId];
      }
      await tx.setMeta(META_PENDING, JSON.stringify(pending));
    });
    this.o.durable?.notify();
    return rows.length;
  }

  private async compactIfDue(): Promise<boolean> {
    const s = this.o.store;
    const acked = await readHead(s, META_ACKED);
    const rawCompacted = await s.getMeta(META_COMPACTED);
    const last = rawCompacted ? (JSON.parse(rawCompacted) as { seq: number; at: number }) : { seq: 0, at: this.now() };
    if (!rawCompacted) await s.setMeta(META_COMPACTED, JSON.stringify(last));
    if (acked.seq <= last.seq) return false;
    const due = acked.seq - last.seq >= this.o.compactEntries || this.now() - last.at >= this.o.compactSeconds * 1000;
    if (!due) return false;
    await this.compact(acked);
    return true;
  }

  /**
   * Uploads the whole state as a streamed compaction (LBBC v2) covering entries up to `acked`: keys are
   * read page by page in key_id order, sealed in 64 KiB chunks and sent part by part as they are made.
   * Every record is read after `acked` was, so it is at least as new as entry `acked`; the changes after
   * it are whole-record upserts and idempotent edits, so replaying them over such a state gives the
   * node's state whatever changed between the pages.
   */
  async compact(acked?: AgentHead): Promise<{ seq: number; bytes: number; keys: number }> {
    const s = this.o.store;
    const head = acked ?? (await readHead(s, META_ACKED));
    if (head.seq === 0) throw new LifeboatError('nothing_to_compact', 'no entry was acknowledged yet');
    // Exact when no change was committed from before the first page to after the last: nothing
    // unsealed and the sealed head still the compaction's entry (a change committed meanwhile is one or
    // the other). Known only at the end, so it is the end record's flag (docs/format.md).
    const quiet = async () => (await s.countOutbox()).unsealed === 0 && (await readHead(s, META_HEAD)).seq === head.seq;
    const upload = await this.o.transport.beginCompaction(this.o.stream, head.seq);
    let made: Uint8Array[] = [];
    const w = new CompactionWriter(this.o.backupKey, { stream: this.o.stream, seq: head.seq, head: head.hash, createdAt: this.now() }, (b) => made.push(b.slice()));
    const send = async () => {
      const out = made;
      made = [];
      for (const b of out) await upload.write(b);
    };
    w.secrets(this.o.secrets());
    const quietBefore = await quiet();
    for (let after: string | undefined; ; ) {
      const page = await s.listKeys({ afterKeyId: after, limit: COMPACT_PAGE });
      for (const k of page) w.key(k);
      await send();
      if (page.length < COMPACT_PAGE) break;
      after = page[page.length - 1]!.keyId;
    }
    for (const a of await s.listApiKeys()) w.apiKey(a);
    const r = w.finish({ exact: quietBefore && (await quiet()) });
    await send();
    await upload.finish();
    await s.setMeta(META_COMPACTED, JSON.stringify({ seq: head.seq, at: this.now() }));
    this.o.log?.(`backup: compaction of ${r.keys} keys up to entry ${head.seq} uploaded (${r.bytes} bytes)`);
    return { seq: head.seq, bytes: r.bytes, keys: r.keys };
  }
}
