/**
 * The audit state file (docs/log-format.md, "Audit state"): the last checkpoint an audit fully
 * verified, kept as its signed note (evidence, and what the next audit must be consistent with), and
 * the counts of the entries it covers. One file per log, 0600, written atomically and only after a
 * fully successful audit.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { ensurePrivateDir, writeFileAtomic } from '../../util/files.js';
import { type Checkpoint, openCheckpoint } from '../checkpoint.js';
import { type NoteVerifier, encodeVerifierKey } from '../note.js';
import { equalBytes } from '../merkle.js';
import { type Summary, summaryProblem } from './summary.js';
import { auditStateInvalid } from './errors.js';

export const AUDIT_STATE_TYPE = 'lifeboat-log-audit-state';

/** The last fully audited checkpoint of a log and what its entries were. */
export interface AuditState {
  /** The signed checkpoint note as the log served it, co-signatures included. */
  note: string;
  checkpoint: Checkpoint;
  /** The log's verifier key the audit used. */
  logKey: string;
  auditedAt: number;
  summary: Summary;
}

/**
 * Where the state of the log `origin` lives by default: $XDG_STATE_HOME/lifeboat/audit/<h>.json, else
 * ~/.local/state/lifeboat/audit/<h>.json, <h> the first 32 hex digits of SHA-256(origin).
 */
export function defaultStatePath(origin: string, env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME && env.XDG_STATE_HOME.startsWith('/') ? env.XDG_STATE_HOME : join(env.HOME || homedir(), '.local', 'state');
  const h = createHash('sha256').update(origin, 'utf8').digest('hex').slice(0, 32);
  return join(base, 'lifeboat', 'audit', `${h}.json`);
}

const int = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const fileSchema = z.object({
  version: z.literal(1),
  type: z.literal(AUDIT_STATE_TYPE),
  origin: z.string(),
  log_key: z.string(),
  tree_size: int,
  root_hash: z.string(),
  checkpoint: z.string(),
  audited_at: z.string(),
  entries: int,
  first_timestamp_ms: int.nullable(),
  last_timestamp_ms: int.nullable(),
  submitters: z.array(z.object({ submitter: z.string(), fingerprint: z.string(), entries: int, first_timestamp_ms: int, last_timestamp_ms: int }).strict()),
  record_types: z.array(z.object({ record_type: z.string(), entries: int }).strict()),
}).strict();

/**
 * Reads the state at `path`, or null when there is none. The saved checkpoint must verify under the
 * log's key and match the recorded size and root, and the counts must add up. Throws
 * `audit_state_invalid` (naming why) otherwise.
 */
export function loadState(path: string, logVerifier: NoteVerifier): AuditState | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw auditStateInvalid(path, `it cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let doc: z.infer<typeof fileSchema>;
  try {
    doc = fileSchema.parse(JSON.parse(text));
  } catch {
    throw auditStateInvalid(path, `it is not a ${AUDIT_STATE_TYPE} version 1 document`);
  }
  let checkpoint: Checkpoint;
  try {
    checkpoint = openCheckpoint(doc.checkpoint, logVerifier).checkpoint;
  } catch (err) {
    throw auditStateInvalid(path, `its checkpoint does not verify under the log key ${encodeVerifierKey(logVerifier)} (${(err as { code?: string }).code ?? 'error'})`);
  }
  if (checkpoint.size !== doc.tree_size || !equalBytes(checkpoint.rootHash, Buffer.from(doc.root_hash, 'base64')) || doc.origin !== checkpoint.origin) {
    throw auditStateInvalid(path, 'its tree size, root or origin is not the one of its checkpoint');
  }
  const summary: Summary = {
    entries: doc.entries,
    firstTimestamp: doc.first_timestamp_ms,
    lastTimestamp: doc.last_timestamp_ms,
    submitters: doc.submitters.map((s) => ({ submitter: s.submitter, fingerprint: s.fingerprint, entries: s.entries, firstTimestamp: s.first_timestamp_ms, lastTimestamp: s.last_timestamp_ms })),
    recordTypes: doc.record_types.map((t) => ({ recordType: t.record_type, entries: t.entries })),
  };
  const problem = summaryProblem(summary, checkpoint.size);
  if (problem) throw auditStateInvalid(path, problem);
  return { note: doc.checkpoint, checkpoint, logKey: doc.log_key, auditedAt: Date.parse(doc.audited_at), summary };
}

/** Writes the state (directory 0700, file 0600, atomically: temp file, fsync, rename). */
export function saveState(path: string, s: AuditState): void {
  ensurePrivateDir(dirname(path));
  const doc: z.infer<typeof fileSchema> = {
    version: 1,
    type: AUDIT_STATE_TYPE,
    origin: s.checkpoint.origin,
    log_key: s.logKey,
    tree_size: s.checkpoint.size,
    root_hash: Buffer.from(s.checkpoint.rootHash).toString('base64'),
    checkpoint: s.note,
    audited_at: new Date(s.auditedAt).toISOString(),
    entries: s.summary.entries,
    first_timestamp_ms: s.summary.firstTimestamp,
    last_timestamp_ms: s.summary.lastTimestamp,
    submitters: s.summary.submitters.map((x) => ({ submitter: x.submitter, fingerprint: x.fingerprint, entries: x.entries, first_timestamp_ms: x.firstTimestamp, last_timestamp_ms: x.lastTimestamp })),
    record_types: s.summary.recordTypes.map((t) => ({ record_type: t.recordType, entries: t.entries })),
  };
  writeFileAtomic(path, `${JSON.stringify(doc, null, 2)}\n`);
}
