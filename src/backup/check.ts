/**
 * `lifeboat backup check` (docs/backup.md, "Checking a stream"): download and verify everything a
 * restore could use, without writing anything: every compaction the service keeps (its listed hash,
 * its encryption, every share in it against its verifying share), every entry (its encryption and
 * its place in the chain, which must meet each compaction's head), the head the service states, and
 * every share of the state at the head. The checks are restore's own (./restore.ts, the batched share
 * check through the importer of ./restore-stream.ts, which here writes nothing).
 */
import { LifeboatError } from '../errors.js';
import { ctEqual } from '../util/bytes.js';
import type { AgentHead } from './agent.js';
import { ZERO_HASH } from './format.js';
import { assertAtHead, chainError, readNamedCompaction, type RestoreProgressFn, type RestoreSource, walkEntries } from './restore.js';
import { checkingFeed, type Feed } from './restore-stream.js';

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

/**
 * Checks a stream (see the file comment). Streamed as a restore is (./restore-stream.ts): each
 * compaction's keys are checked in batches as its chunks come, through an import that writes nothing,
 * and the compaction the held entries follow is read last and kept open, so the entries' changes go on
 * from its keys to the state at the head; memory holds a few batches and the key ids, not the keys.
 * Throws BackupCheckError, and the source's errors before any item is read.
 */
export async function checkBackupStream(source: RestoreSource, backupKey: Uint8Array, stream: string, progress: RestoreProgressFn = () => {}): Promise<CheckReport> {
  const info = await source.stream(stream);
  const firstSeq = info.firstSeq ?? 1;
  const listed = await source.compactions(stream);
  // The held entries follow entry 0 or the compaction the service pruned them to.
  const start = firstSeq - 1;
  // One compaction per entry: a listing that names one twice would open a second feed over the first.
  const twice = listed.find((c, i) => listed.findIndex((x) => x.seq === c.seq) !== i);
  if (twice) throw new BackupCheckError('compaction', twice.seq, chainError(`the service lists the compaction at entry ${twice.seq} twice`));
  const heads = new Map<number, Uint8Array>();
  const checked = new Map<number, CheckedCompaction>();
  let feed: Feed | undefined;
  try {
    for (const c of [...listed.filter((x) => x.seq !== start), ...listed.filter((x) => x.seq === start)]) {
      await at('compaction', c.seq, async () => {
        const f = checkingFeed(c.size, progress);
        try {
          const opened = await readNamedCompaction(source, backupKey, stream, c, f.sink(), (d, t) => progress('compaction', d, t), () => f.afterChunk());
          await f.afterCompaction();
          if (!f.secrets) throw new LifeboatError('backup_incomplete', 'the compaction holds no node keys', { status: 409 });
          const imp = await f.start();
          await imp.settle();
          const keys = await imp.keyCount();
          if (c.seq === start) feed = f;
          else await imp.finish([], []);
          heads.set(c.seq, opened.head);
          checked.set(c.seq, { seq: c.seq, size: c.size, keys, exact: opened.exact, createdAt: opened.createdAt });
        } catch (err) {
          await f.importer?.abort();
          throw err;
        }
      });
    }
    const base = heads.get(start);
    if (start > 0 && !base) throw new BackupCheckError('compaction', start, chainError(`the service holds entries from ${firstSeq} but no compaction at ${start}`));
    const state = (feed ??= checkingFeed(0, progress));
    const from: AgentHead = base ? { seq: start, hash: base } : { seq: 0, hash: ZERO_HASH };
    let last = from.seq;
    const total = info.headSeq - from.seq;
    const walked = await at('entry', 0, () =>
      walkEntries(
        source,
        backupKey,
        stream,
        from,
        async (e) => {
          const c = heads.get(e.seq);
          if (c && !ctEqual(c, e.hash)) throw new BackupCheckError('compaction', e.seq, chainError(`the compaction at entry ${e.seq} does not name that entry's hash`));
          // A change's own check (a key it puts) is one of the state at the head.
          await state.change(e.change).catch((err: unknown) => {
            throw new BackupCheckError('shares', info.headSeq, err);
          });
          last = e.seq;
        },
        (n) => progress('entries', n, Math.max(total, n)),
      ).catch((err: unknown) => {
        throw err instanceof BackupCheckError ? err : new BackupCheckError('entry', last + 1, err);
      }),
    );
    await at('head', info.headSeq, async () => assertAtHead(info, walked.head));
    const r = await at('shares', walked.head.seq, async () => {
      if (!state.secrets) throw new LifeboatError('backup_incomplete', 'the stream holds no node keys (its first entry is missing)', { status: 409 });
      return (await state.start()).finish([], state.sortedApiKeys());
    });
    const compactions = listed.map((c) => checked.get(c.seq)!);
    return { stream, headSeq: info.headSeq, firstSeq, entries: walked.read, compactions, keys: r.keys, apiKeys: r.apiKeys };
  } finally {
    await feed?.importer?.abort();
  }
}
