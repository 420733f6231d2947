/**
 * Point-in-time restore (docs/backup.md, "Point-in-time restore"): the node's state as it was after
 * entry N (`--to-seq N`) or at time T (`--to-time T`: the last entry committed at or before T).
 *
 *   1. resolve the point to an entry seq (`pointSeq`; for a time, the entries' `committed_at`);
 *   2. pick the base: the latest compaction at or before that entry that holds exactly the state
 *      after it (`chooseCompaction`; an older one, or none when the service still holds entry 1);
 *   3. replay the entries after the base up to the point (`replayTo`), each checked to chain.
 * Each step is its own function, so the compaction format can change under them. Steps 2 and 3 feed a
 * target (`readToPoint`): a restore streams them into the key node's importer (./restore-stream.ts),
 * never holding the node whole; readStreamAt gathers them into a state.
 */
import { LifeboatError } from '../errors.js';
import type { AgentHead } from './agent.js';
import { applyChange, emptyState, type NodeChange } from './changes.js';
import { type CompactionSink, discardRecords } from './compaction.js';
import { ZERO_HASH } from './format.js';
import { assertAtHead, assertNotRolledBack, type CompactionRef, readNamedCompaction, type ReadStream, type RestoreProgressFn, type RestoreSource, stateSink, walkEntries } from './restore.js';

/** A point of a stream: after entry `seq`, or at `time` (ms since the epoch). */
export type RestorePoint = { seq: number; time?: undefined } | { time: number; seq?: undefined };

export interface ReadPoint extends ReadStream {
  /** The stream's head on the service (the point is at or below it). */
  headSeq: number;
  /** When the point's entry was committed on the node (ISO 8601), or null when unknown. */
  committedAt: string | null;
}

function pointError(code: 'backup_point_before_start' | 'backup_point_after_end' | 'backup_point_unavailable' | 'backup_time_unknown', message: string, hint: string): LifeboatError {
  return new LifeboatError(code, message, { status: 409, hint });
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/**
 * The latest compaction at or before entry `seq` that `usable` accepts (by seq, latest first), or
 * undefined. Pure.
 */
export function chooseCompaction(compactions: readonly CompactionRef[], seq: number, usable: (c: CompactionRef) => boolean = () => true): CompactionRef | undefined {
  return [...compactions].sort((a, b) => b.seq - a.seq).find((c) => c.seq <= seq && usable(c));
}

/**
 * The entry seq a point names. A seq is checked against the stream's range; a time is resolved by
 * reading the held entries from the oldest (their `committed_at`) up to the first committed after it.
 * Throws `backup_point_before_start`, `backup_point_after_end`, `backup_time_unknown` (an entry sealed
 * before commit times were recorded), and walkEntries' errors.
 */
export async function pointSeq(
  source: RestoreSource,
  backupKey: Uint8Array,
  stream: string,
  info: { headSeq: number; firstSeq: number },
  compactions: readonly CompactionRef[],
  point: RestorePoint,
): Promise<{ seq: number; committedAt: number | null }> {
  if (point.seq !== undefined) {
    if (point.seq < 1) throw pointError('backup_point_before_start', `entry ${point.seq} is before the stream's first entry (1)`, 'entries are numbered from 1');
    if (point.seq > info.headSeq) throw pointError('backup_point_after_end', `entry ${point.seq} is after the stream's last entry (${info.headSeq})`, `restore up to ${info.headSeq} at most (\`lifeboat backup snapshots\` shows the range)`);
    return { seq: point.seq, committedAt: null };
  }
  const T = point.time;
  // The walk starts where the held entries do: entry 1, or the compaction they follow.
  const start = info.firstSeq - 1;
  const base = start === 0 ? undefined : compactions.find((c) => c.seq === start);
  if (start > 0 && !base) throw pointError('backup_point_unavailable', `the service holds entries from ${info.firstSeq} but no compaction at ${start}`, 'check the stream with `lifeboat backup check`');
  const from: AgentHead = base ? { seq: base.seq, hash: ZERO_HASH } : { seq: 0, hash: ZERO_HASH };
  // Only its head is needed: its records are read (every chunk authenticated) and dropped.
  if (base) from.hash = (await readNamedCompaction(source, backupKey, stream, base, discardRecords)).head;
  let found: { seq: number; committedAt: number | null } | undefined;
  let first: number | null | undefined;
  let last: number | null = null;
  await walkEntries(source, backupKey, stream, from, (e) => {
    if (e.committedAt === null) throw pointError('backup_time_unknown', `entry ${e.seq} carries no commit time (sealed before lifeboat recorded one)`, 'restore to an entry instead: --to-seq N');
    first ??= e.committedAt;
    last = e.committedAt;
    if (e.committedAt > T) return false;
    found = { seq: e.seq, committedAt: e.committedAt };
  });
  if (!found) {
    const when = first === undefined ? 'no entry is held' : `its first held entry, ${info.firstSeq}, was committed at ${iso(first)}`;
    throw pointError('backup_point_before_start', `${iso(T)} is before the stream's first held entry: ${when}`, 'pick a later time (`lifeboat backup snapshots` shows the range)');
  }
  if (found.seq === info.headSeq && last !== null && T > last) {
    throw pointError('backup_point_after_end', `${iso(T)} is after the stream's last entry (${info.headSeq}, committed at ${iso(last)})`, 'restore without --to-time for the latest state, or pick a time within the stream');
  }
  return found;
}

/** A point resolved against the stream as the service states it (`planPoint`). */
export interface PointPlan {
  info: Awaited<ReturnType<RestoreSource['stream']>>;
  firstSeq: number;
  compactions: CompactionRef[];
  /** The entry the point names, and its commit time when the point was a time. */
  at: { seq: number; committedAt: number | null };
}

/**
 * Resolves `point` (see the file comment, step 1) before anything is read into a node. Throws
 * `backup_rolled_back` (head below `expectSeq`) and what pointSeq throws.
 */
export async function planPoint(source: RestoreSource, backupKey: Uint8Array, stream: string, point: RestorePoint, expectSeq?: number): Promise<PointPlan> {
  const info = await source.stream(stream);
  assertNotRolledBack(stream, info.headSeq, expectSeq);
  const firstSeq = info.firstSeq ?? 1;
  const compactions = await source.compactions(stream);
  const at = await pointSeq(source, backupKey, stream, { headSeq: info.headSeq, firstSeq }, compactions, point);
  return { info, firstSeq, compactions, at };
}

/**
 * What reading a stream up to a point feeds: a state read whole (readStreamAt) or a streamed restore's
 * importer (./restore-stream.ts). A compaction's records go to `sink()` (`afterChunk` after each chunk,
 * `afterCompaction` after its last); a compaction found at its end not to hold exactly the state after
 * its entry is dropped by `reset`, and the next base is read from an empty state.
 */
export interface PointTarget {
  sink(): CompactionSink;
  afterChunk?(): Promise<void>;
  afterCompaction?(): Promise<void>;
  reset(): Promise<void>;
  change(c: NodeChange): void | Promise<void>;
}

/** What readToPoint read: the head reached (the point), the base, the entries replayed, the point's commit time (ISO 8601) when known. */
export interface PointRead {
  head: AgentHead;
  compactionSeq: number;
  entries: number;
  committedAt: string | null;
}

/**
 * Reads the stream up to the planned point into `target` (steps 2 and 3 of the file comment): the
 * base (baseFor's choice, each compaction checked against its listing), then the entries after it up
 * to the point, each checked to chain; entries after the point are never given to `target`. Nothing
 * is trusted before it is checked. Throws `backup_point_unavailable`, `backup_truncated`,
 * `backup_chain_broken`, `entry_misplaced`, DecryptionError, FormatError, and what `target` throws.
 */
export async function readToPoint(source: RestoreSource, backupKey: Uint8Array, stream: string, plan: PointPlan, target: PointTarget, progress: RestoreProgressFn = () => {}): Promise<PointRead> {
  const { info, at } = plan;
  const from = await baseFor(source, backupKey, stream, plan, target, progress);
  const r = await replayTo(source, backupKey, stream, (c) => target.change(c), from, at.seq, (n) => progress('entries', n, at.seq - from.seq));
  if (at.seq === info.headSeq) assertAtHead(info, r.head);
  return { head: r.head, compactionSeq: from.seq, entries: r.read, committedAt: iso(r.committedAt ?? at.committedAt) };
}

/**
 * Reads the stream as it was at `point` (see the file comment) into a state held whole. Throws
 * `backup_point_*`, `backup_time_unknown`, `backup_rolled_back` (head below `expectSeq`),
 * `backup_incomplete`, and what readBackupStream throws.
 */
export async function readStreamAt(source: RestoreSource, backupKey: Uint8Array, stream: string, point: RestorePoint, opts: { expectSeq?: number; progress?: RestoreProgressFn } = {}): Promise<ReadPoint> {
  const plan = await planPoint(source, backupKey, stream, point, opts.expectSeq);
  let state = emptyState();
  const target: PointTarget = { sink: () => stateSink(state), reset: async () => void (state = emptyState()), change: (c) => applyChange(state, c) };
  const r = await readToPoint(source, backupKey, stream, plan, target, opts.progress);
  if (!state.secrets) throw new LifeboatError('backup_incomplete', 'the stream holds no node keys (its first entry is missing)', { status: 409 });
  return { state, ...r, headSeq: plan.info.headSeq };
}

/**
 * Reads the base to replay from for the planned point into `target`: the latest compaction at or
 * before it that holds exactly the state after its entry (any compaction will do at the head: later
 * changes replay idempotently), else the empty state when the service still holds entry 1. Returns
 * where the entries go on from. Throws `backup_point_unavailable` when neither is there.
 */
async function baseFor(source: RestoreSource, backupKey: Uint8Array, stream: string, plan: PointPlan, target: PointTarget, progress: RestoreProgressFn): Promise<AgentHead> {
  const seq = plan.at.seq;
  const inexact = new Set<number>();
  for (;;) {
    const c = chooseCompaction(plan.compactions, seq, (x) => !inexact.has(x.seq));
    if (!c) break;
    const afterChunk = target.afterChunk?.bind(target);
    const opened = await readNamedCompaction(source, backupKey, stream, c, target.sink(), (d, t) => progress('compaction', d, t), afterChunk);
    await target.afterCompaction?.();
    if (opened.exact || seq === plan.info.headSeq) return { seq: opened.seq, hash: opened.head };
    inexact.add(c.seq);
    await target.reset();
  }
  if (plan.firstSeq <= 1) return { seq: 0, hash: ZERO_HASH };
  throw pointError(
    'backup_point_unavailable',
    `entry ${seq} cannot be rebuilt: the service holds entries from ${plan.firstSeq} on, and no compaction at or before ${seq} holds exactly the state after its entry`,
    `pick a point at or after the oldest compaction (\`lifeboat backup snapshots\`); the service keeps the current and the previous compaction`,
  );
}

/**
 * Gives `apply` the changes of the entries after `from` up to entry `seq`, in order. Throws
 * `backup_truncated` when the service ends before it, and walkEntries' errors.
 */
export async function replayTo(
  source: RestoreSource,
  backupKey: Uint8Array,
  stream: string,
  apply: (c: NodeChange) => void | Promise<void>,
  from: AgentHead,
  seq: number,
  onPage?: (read: number) => void,
): Promise<{ head: AgentHead; read: number; committedAt: number | null }> {
  let committedAt: number | null = null;
  const r = await walkEntries(
    source,
    backupKey,
    stream,
    from,
    async (e) => {
      if (e.seq > seq) return false;
      await apply(e.change);
      committedAt = e.committedAt;
    },
    onPage,
  );
  if (r.head.seq < seq) throw new LifeboatError('backup_truncated', `the stream ends at entry ${r.head.seq}, before the point ${seq}`, { status: 409, hint: 'entries are missing on the backup service; nothing was restored' });
  return { ...r, committedAt };
}
