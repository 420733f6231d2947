/**
 * Auditing a log from its public read API and its verifier key alone (docs/log.md, "Auditing"): the
 * checkpoint's signature and witness quorum, consistency with the checkpoint audited last (a fork is
 * refused naming both), every tile against the root, every entry bundle against its level-0 tile, and
 * every new entry's format and submitter signature, counted per submitter and record type.
 */
import { LifeboatError, LogVerificationError } from '../../errors.js';
import { type Checkpoint } from '../checkpoint.js';
import { type Cosignature, verifyCheckpoint } from '../cosignature.js';
import { type LogEntry, verifyEntry } from '../entry.js';
import { equalBytes, storedHashIndex } from '../merkle.js';
import { type NoteVerifier, encodeVerifierKey } from '../note.js';
import { proveConsistency, verifyConsistency } from '../proof.js';
import { type TileReader, type TreeHead, tileHashReader, verifyTree } from '../tile-reader.js';
import { ENTRIES_LEVEL, TILE_WIDTH, type Tile, encodeTile, parseEntryBundle, tileOfTree, tilePath, verifyEntryBundle } from '../tiles.js';
import { logForked } from './errors.js';
import type { LogSource } from './source.js';
import type { AuditState } from './state.js';
import { type Summary, Tally } from './summary.js';

/** A checkpoint read from the log and verified: the log's signature and the witness quorum. */
export interface FetchedCheckpoint {
  /** The signed note as served, co-signatures included. */
  note: string;
  checkpoint: Checkpoint;
  cosignatures: Cosignature[];
}

export interface CheckpointRule {
  logVerifier: NoteVerifier;
  witnesses?: readonly NoteVerifier[];
  /** Co-signatures required (default: every witness). */
  quorum?: number;
}

/**
 * Reads the log's checkpoint and verifies it (verifyCheckpoint). Throws what the source throws
 * (`log_unreachable`, `log_file_missing`, `log_bad_answer`) and what verifyCheckpoint throws
 * (`note_*`, `checkpoint_*`, `witness_quorum_not_met`).
 */
export async function fetchCheckpoint(source: LogSource, rule: CheckpointRule): Promise<FetchedCheckpoint> {
  const bytes = await source.readCheckpoint();
  const v = verifyCheckpoint(bytes, rule.logVerifier, { witnesses: rule.witnesses, quorum: rule.quorum });
  return { note: Buffer.from(bytes).toString('utf8'), checkpoint: v.checkpoint, cosignatures: v.cosignatures };
}

const treeOf = (c: Checkpoint): TreeHead => ({ size: c.size, root: c.rootHash });

/**
 * Checks that `now` extends `seen`: a smaller tree, the same size with another root, or a consistency
 * proof (computed from the new tree's tiles, each checked against its root) that fails is a fork.
 * `onFork` may keep both notes as evidence and return where. Throws LifeboatError `log_forked` naming
 * both checkpoints, and `tile_invalid` when the new tree's own tiles do not match its root.
 */
export async function checkExtends(
  seen: { note: string; checkpoint: Checkpoint },
  now: { note: string; checkpoint: Checkpoint },
  tiles: TileReader,
  onFork?: (seenNote: string, nowNote: string) => string | undefined,
): Promise<void> {
  const a = seen.checkpoint;
  const b = now.checkpoint;
  const forked = (why: string): never => {
    throw logForked(a, b, why, onFork?.(seen.note, now.note));
  };
  if (b.size < a.size) forked('is a smaller tree than');
  if (b.size === a.size) {
    if (!equalBytes(a.rootHash, b.rootHash)) forked('has the same size and another root than');
    return;
  }
  if (a.size === 0) return;
  const proof = await proveConsistency(a.size, b.size, tileHashReader(treeOf(b), tiles));
  try {
    verifyConsistency(proof, a.size, a.rootHash, b.size, b.rootHash);
  } catch (err) {
    if (err instanceof LogVerificationError && err.code === 'proof_invalid') forked('is not consistent with');
    throw err;
  }
}

/** An entry that is in the tree but fails its own checks. */
export interface BadEntry {
  index: number;
  errType: string;
  message: string;
}

export interface AuditOptions extends CheckpointRule {
  source: LogSource;
  /** The last fully audited checkpoint (audit state), if any. */
  previous?: AuditState | null;
  /**
   * `all` (default): every hash tile of the tree, each read once (verifyTree); `new`: only the
   * level-0 tiles of entries from the previous size on, with the tiles above them (for --follow).
   */
  tiles?: 'all' | 'new';
  /** Re-verify (and re-count) every entry, not only those from the previous size on. */
  allEntries?: boolean;
  onProgress?: (phase: string, done: number, total: number) => void;
  /**
   * Called for every entry checked in this run whose format and submitter signature verify, in index
   * order. A LifeboatError it throws makes the entry a bad entry (its code and message listed, counted
   * as tampered unless `unsupported_version`); anything else it throws ends the audit. With a state
   * file it sees only the entries from `entriesFrom` on: pass `allEntries` to see them all.
   */
  onEntry?: (index: number, entry: LogEntry) => void;
  onFork?: (seenNote: string, nowNote: string) => string | undefined;
  /** How many bad entries the report lists (all are counted). */
  maxBadListed?: number;
}

export interface AuditReport extends FetchedCheckpoint {
  previous: Checkpoint | null;
  /** Counts over every entry of the tree (from the previous state for entries not re-read). */
  summary: Summary;
  /** Entries whose format and signature were checked in this run, and the first one. */
  entriesChecked: number;
  entriesFrom: number;
  /** Hash tiles and entry bundles read. */
  tilesRead: number;
  bundlesRead: number;
  badEntries: BadEntry[];
  badEntryCount: number;
  /** A bad entry other than one of an entry version this build cannot read: the log took altered data. */
  tampered: boolean;
  /** The state to keep when the audit passed (no bad entry), else null. */
  nextState: AuditState | null;
}

/**
 * Counts the tiles and bundles read, and keeps for the run the tiles each hash reader call would read
 * again: those above level 0, partial ones, and (while `keepAll`) every tile, so the tiles the
 * consistency proof needed are not read twice.
 */
function countingReader(source: LogSource): TileReader & { tiles: number; bundles: number; keepAll: boolean } {
  const kept = new Map<string, Uint8Array>();
  const r = {
    tiles: 0,
    bundles: 0,
    keepAll: false,
    async readTiles(tiles: readonly Tile[]): Promise<Uint8Array[]> {
      const wanted = tiles.filter((t) => !kept.has(tilePath(t)));
      const got = await source.readTiles(wanted);
      const fresh = new Map(wanted.map((t, i) => [tilePath(t), got[i]!]));
      for (const t of wanted) {
        if (t.level === ENTRIES_LEVEL) r.bundles++;
        else r.tiles++;
        if (t.level !== ENTRIES_LEVEL && (r.keepAll || t.level > 0 || t.width < TILE_WIDTH)) kept.set(tilePath(t), fresh.get(tilePath(t))!);
      }
      return tiles.map((t) => fresh.get(tilePath(t)) ?? kept.get(tilePath(t))!);
    },
  };
  return r;
}

/** Checks the level-0 tiles from `fromSize` on (and the tiles above them up to the root), in batches. */
async function checkNewTiles(tree: TreeHead, reader: TileReader, fromSize: number, onTile: (t: Tile, data: Uint8Array) => Promise<void>): Promise<void> {
  const hashes = tileHashReader(tree, reader);
  const count = Math.ceil(tree.size / TILE_WIDTH);
  for (let start = Math.floor(fromSize / TILE_WIDTH); start < count; start += 32) {
    const tiles = Array.from({ length: Math.min(32, count - start) }, (_, k) => tileOfTree(tree.size, 0, start + k));
    const indexes = tiles.flatMap((t) => Array.from({ length: t.width }, (_, k) => storedHashIndex(0, t.index * TILE_WIDTH + k)));
    const got = await hashes.readHashes(indexes);
    let at = 0;
    for (const t of tiles) {
      await onTile(t, encodeTile(got.slice(at, at + t.width)));
      at += t.width;
    }
  }
}

/** Starts reading bundles ahead of the tile walk (HTTP latency overlaps checking), a window at a time. */
function bundlePrefetch(reader: TileReader, bundles: readonly Tile[], window = 16): (index: number) => Promise<Uint8Array> {
  const pending = new Map<number, Promise<Uint8Array>>();
  let next = 0;
  return (index) => {
    const pos = bundles.length === 0 ? 0 : index - bundles[0]!.index;
    while (next < bundles.length && next <= pos + window) {
      const b = bundles[next++]!;
      const p = reader.readTiles([b]).then((r) => r[0]!);
      p.catch(() => {}); // awaited when its turn comes; a failure read ahead is not unhandled meanwhile
      pending.set(b.index, p);
    }
    const p = pending.get(index)!;
    pending.delete(index);
    return p;
  };
}

const TAMPER_FREE_CODES = new Set(['unsupported_version']);

/**
 * Audits the log once. Throws (nothing is kept then): the errors of fetchCheckpoint, `log_forked`
 * from checkExtends, `tile_invalid` / `entry_bundle_invalid` for a tile or bundle that does not match
 * the root, and the source's errors. Bad entries do not throw: they are in the report (`nextState`
 * is then null).
 */
export async function auditLog(opts: AuditOptions): Promise<AuditReport> {
  const { source } = opts;
  const fetched = await fetchCheckpoint(source, opts);
  const { checkpoint } = fetched;
  const prev = opts.previous ?? null;
  const reader = countingReader(source);
  reader.keepAll = true;
  if (prev) await checkExtends(prev, fetched, reader, opts.onFork);
  reader.keepAll = false;

  const entriesFrom = prev && !opts.allEntries ? prev.checkpoint.size : 0;
  const tally = new Tally(entriesFrom > 0 ? prev!.summary : undefined);
  const bad: BadEntry[] = [];
  let badCount = 0;
  let tampered = false;
  let checked = 0;
  const bundles: Tile[] = [];
  for (let i = Math.floor(entriesFrom / TILE_WIDTH); i * TILE_WIDTH < checkpoint.size; i++) bundles.push(tileOfTree(checkpoint.size, ENTRIES_LEVEL, i));
  const bundleAt = bundlePrefetch(reader, bundles);

  const onTile = async (tile: Tile, tileData: Uint8Array): Promise<void> => {
    const first = tile.index * TILE_WIDTH;
    if (first + tile.width > entriesFrom) {
      const bundle: Tile = { level: ENTRIES_LEVEL, index: tile.index, width: tile.width };
      let entries: Uint8Array[];
      try {
        entries = parseEntryBundle(await bundleAt(tile.index), tile.width);
      } catch (err) {
        if (err instanceof LogVerificationError) throw new LogVerificationError(err.code as 'entry_bundle_invalid', err.reason, `${tilePath(bundle)}: ${err.message}`);
        throw err;
      }
      verifyEntryBundle(bundle, entries, tileData);
      for (let k = Math.max(0, entriesFrom - first); k < entries.length; k++) {
        let e: LogEntry;
        try {
          e = verifyEntry(entries[k]!);
          opts.onEntry?.(first + k, e);
        } catch (err) {
          if (!(err instanceof LifeboatError)) throw err;
          badCount++;
          if (!TAMPER_FREE_CODES.has(err.code)) tampered = true;
          if (bad.length < (opts.maxBadListed ?? 1000)) bad.push({ index: first + k, errType: err.code, message: err.message });
          continue;
        }
        tally.add(e);
        checked++;
      }
    }
    opts.onProgress?.('auditing', Math.min(first + tile.width, checkpoint.size), checkpoint.size);
  };

  const tree = treeOf(checkpoint);
  if (opts.tiles === 'new') await checkNewTiles(tree, reader, entriesFrom, onTile);
  else await verifyTree(tree, reader, { onLevelZeroTile: onTile });

  const summary = tally.summary();
  const ok = badCount === 0;
  return {
    ...fetched,
    previous: prev?.checkpoint ?? null,
    summary,
    entriesChecked: checked + badCount,
    entriesFrom,
    tilesRead: reader.tiles,
    bundlesRead: reader.bundles,
    badEntries: bad,
    badEntryCount: badCount,
    tampered,
    nextState: ok ? { note: fetched.note, checkpoint, logKey: encodeVerifierKey(opts.logVerifier), auditedAt: Date.now(), summary } : null,
  };
}
