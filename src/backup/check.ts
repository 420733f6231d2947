/**
 * `lifeboat backup check` (docs/backup.md, "Checking a stream"): download and verify everything a
 * restore could use, without writing anything: every compaction the service keeps (its listed hash,
 * its encryption, every share in it against its verifying share), every entry (its encryption and
 * its place in the chain, which must meet each compaction's head), the head the service states, and
 * every share of the state at the head. The checks are restore's own (./restore.ts, verifyRestoredKeys).
 */
import { LifeboatError } from '../errors.js';
import { verifyRestoredKeys } from '../keynode/restore-verify.js';
import { ctEqual } from '../util/bytes.js';
import type { AgentHead } from './agent.js';
import { applyChange, emptyState, type NodeState, stateToSnapshot } from './changes.js';
import { ZERO_HASH } from './format.js';
import { assertAtHead, chainError, loadNamedCompaction, type RestoreProgressFn, type RestoreSource, walkEntries } from './restore.js';

export interface CheckedCompaction {
  seq: number;
  size: number;
  keys: number;
  /** Holds exactly the state after its entry (a base for a point-in-time restore before the head). */
  exact: boolean;
  createdAt: string;
}

export interface CheckReport {
  stream: string;
  headSeq: number;
  firstSeq: number;
  entries: number;
  compactions: CheckedCompaction[];
  /** Keys and API keys at the head; every share checked. */
  keys: number;
  apiKeys: number;
}

/**
 * What failed a check: LifeboatError `backup_check_failed` (a safety refusal) naming the item (a
 * compaction or an entry, by seq); the cause's code is in the message and the `--json` document.
 */
export class BackupCheckError extends LifeboatError {
  readonly item: 'compaction' | 'entry' | 'head' | 'shares';
  readonly seq: number;
  readonly causeCode: string;

  constructor(item: BackupCheckError['item'], seq: number, cause: unknown) {
    const code = cause instanceof LifeboatError ? cause.code : 'internal_error';
    const msg = cause instanceof Error ? cause.message : String(cause);
    super('backup_check_failed', `${item === 'shares' ? 'the shares at entry' : item} ${seq} failed its check: ${msg} (${code})`, {
      status: 409,
      cause,
      hint: 'the backup service holds something altered, missing or not written by this backup key; restore from another channel or an earlier point, and tell the service operator',
    });
    this.item = item;
    this.seq = seq;
    this.causeCode = code;
  }

  failureDetails(): Record<string, unknown> {
    return { item: this.item, seq: this.seq, cause: this.causeCode };
  }
}

async function at<T>(item: BackupCheckError['item'], seq: number, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof BackupCheckError) throw err;
    throw new BackupCheckError(item, seq, err);
  }
}

/** Checks a stream (see the file comment). Throws BackupCheckError, and the source's errors before any item is read. */
export async function checkBackupStream(source: RestoreSource, backupKey: Uint8Array, stream: string, progress: RestoreProgressFn = () => {}): Promise<CheckReport> {
  const info = await source.stream(stream);
  const firstSeq = info.firstSeq ?? 1;
  const listed = await source.compactions(stream);
  const heads = new Map<number, { head: Uint8Array; state: NodeState }>();
  const compactions: CheckedCompaction[] = [];
  for (const c of listed) {
    await at('compaction', c.seq, async () => {
      const opened = await loadNamedCompaction(source, backupKey, stream, c, (d, t) => progress('compaction', d, t));
      const keys = stateToSnapshot(opened.state).keys;
      if (!opened.state.secrets) throw new LifeboatError('backup_incomplete', 'the compaction holds no node keys', { status: 409 });
      await verifyRestoredKeys(opened.state.secrets.storageKey, keys, (d, t) => progress('verify', d, t));
      heads.set(c.seq, { head: opened.head, state: opened.state });
      compactions.push({ seq: c.seq, size: c.size, keys: keys.length, exact: opened.exact, createdAt: opened.createdAt });
    });
  }
  // The held entries follow entry 0 or the compaction the service pruned them to.
  const start = firstSeq - 1;
  const base = heads.get(start);
  if (start > 0 && !base) throw new BackupCheckError('compaction', start, chainError(`the service holds entries from ${firstSeq} but no compaction at ${start}`));
  const state = base?.state ?? emptyState();
  const from: AgentHead = base ? { seq: start, hash: base.head } : { seq: 0, hash: ZERO_HASH };
  let last = from.seq;
  const total = info.headSeq - from.seq;
  const walked = await at('entry', 0, () =>
    walkEntries(
      source,
      backupKey,
      stream,
      from,
      (e) => {
        const c = heads.get(e.seq);
        if (c && !ctEqual(c.head, e.hash)) throw new BackupCheckError('compaction', e.seq, chainError(`the compaction at entry ${e.seq} does not name that entry's hash`));
        applyChange(state, e.change);
        last = e.seq;
      },
      (n) => progress('entries', n, Math.max(total, n)),
    ).catch((err: unknown) => {
      throw err instanceof BackupCheckError ? err : new BackupCheckError('entry', last + 1, err);
    }),
  );
  await at('head', info.headSeq, async () => assertAtHead(info, walked.head));
  const snap = stateToSnapshot(state);
  await at('shares', walked.head.seq, async () => {
    if (!state.secrets) throw new LifeboatError('backup_incomplete', 'the stream holds no node keys (its first entry is missing)', { status: 409 });
    await verifyRestoredKeys(state.secrets.storageKey, snap.keys, (d, t) => progress('verify', d, t));
  });
  return { stream, headSeq: info.headSeq, firstSeq, entries: walked.read, compactions, keys: snap.keys.length, apiKeys: snap.apiKeys.length };
}
