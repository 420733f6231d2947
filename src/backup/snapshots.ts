/**
 * `lifeboat backup snapshots` (docs/backup.md, "Snapshots and the log range"): what a stream offers a
 * restore: its compactions (seq, size, when the service completed them; with `keys`, each downloaded
 * and opened for its key count, its own time and whether it is exact) and the range of entries the
 * service holds, with the commit times the first and the last one carry (each opened under its key).
 */
import { LifeboatError } from '../errors.js';
import { decodeStampedChange } from './changes.js';
import type { BackupClient } from './client.js';
import { openEntry } from './format.js';
import { downloadCompactionChunks } from './client-compaction.js';
import { discardRecords } from './compaction.js';
import { readNamedCompaction } from './restore.js';

export interface SnapshotRow {
  seq: number;
  size: number;
  /** The service's completion time (not authenticated). */
  completedAt: string | null;
  /** With `keys`: the compaction's own time, its key count, whether it holds exactly the state after its entry. */
  createdAt: string | null;
  keys: number | null;
  exact: boolean | null;
}

export interface EntryPoint {
  seq: number;
  /** When it was committed on the node (ISO 8601), or null for an entry sealed before that was recorded. */
  committedAt: string | null;
}

export interface StreamSnapshots {
  stream: string;
  headSeq: number;
  firstSeq: number;
  updatedAt: string;
  compactions: SnapshotRow[];
  /** The held entries' range, or null when the service holds none (all pruned into a compaction). */
  log: { first: EntryPoint; last: EntryPoint } | null;
}

async function entryPoint(client: BackupClient, backupKey: Uint8Array, stream: string, seq: number): Promise<EntryPoint> {
  const [e] = await client.listEntries(stream, seq - 1, 1);
  if (!e || e.seq !== seq) return { seq, committedAt: null };
  const { committedAt } = decodeStampedChange(openEntry(backupKey, e.bytes, { stream, seq }).plaintext);
  return { seq, committedAt: committedAt === null ? null : new Date(committedAt).toISOString() };
}

/**
 * Lists a stream's compactions and entry range (see the file comment). Throws LifeboatError
 * `stream_not_found`, DecryptionError / `entry_misplaced` for an entry or compaction that does not open
 * under this backup key, `backup_chain_broken` for a compaction that is not the one listed.
 */
export async function listSnapshots(client: BackupClient, backupKey: Uint8Array, stream: string, opts: { keys?: boolean } = {}): Promise<StreamSnapshots> {
  const info = await client.getStream(stream);
  if (!info) throw new LifeboatError('stream_not_found', `the backup service has no stream ${stream}`, { status: 404 });
  const compactions: SnapshotRow[] = [];
  for (const c of await client.listCompactions(stream)) {
    const row: SnapshotRow = { seq: c.seq, size: c.size, completedAt: c.completedAt, createdAt: null, keys: null, exact: null };
    if (opts.keys) {
      // Read chunk by chunk and counted, not kept: its time is in the header, exact in the end record.
      const source = { compactionChunks: () => downloadCompactionChunks(client, stream, c) };
      const opened = await readNamedCompaction(source, backupKey, stream, c, discardRecords);
      Object.assign(row, { createdAt: opened.createdAt, keys: opened.keys, exact: opened.exact });
    }
    compactions.push(row);
  }
  const held = info.firstSeq <= info.headSeq;
  const log = held ? { first: await entryPoint(client, backupKey, stream, info.firstSeq), last: await entryPoint(client, backupKey, stream, info.headSeq) } : null;
  return { stream, headSeq: info.headSeq, firstSeq: info.firstSeq, updatedAt: info.updatedAt, compactions, log };
}
