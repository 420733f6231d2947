/**
 * The audit's typed errors (docs/log.md, "Auditing"). Kept here rather than in ../errors.ts so each
 * part of the log owns its codes. `log_forked` is a refusal for safety everywhere (src/errors.ts
 * SAFETY_CODES); `log_entry_invalid` is one unless every bad entry is only of an unknown version.
 */
import { LifeboatError } from '../../errors.js';
import { type Checkpoint, checkpointLabel } from '../checkpoint.js';

/** The log (or its mirror) cannot be reached: connection refused, DNS, timeout. Exit 1: try again. */
export function logUnreachable(where: string, why: string): LifeboatError {
  return new LifeboatError('log_unreachable', `cannot read ${where}: ${why}`, {
    status: 502,
    hint: 'check the --log url and that the log is up, or raise --timeout',
  });
}

/** A file of the read API that is not there (404 or no such file). */
export function logFileMissing(where: string): LifeboatError {
  return new LifeboatError('log_file_missing', `${where} is missing`, {
    status: 404,
    hint: 'check the --log url or --from-dir (it is the directory that holds checkpoint and tile/), and that the mirror is complete',
  });
}

/** An answer that is not a read API file: another HTTP status, or more bytes than the file can have. */
export function logBadAnswer(where: string, why: string): LifeboatError {
  return new LifeboatError('log_bad_answer', `${where}: ${why}`, { status: 502, hint: 'check that the url is the root of the log’s read API (GET <url>/checkpoint)' });
}

/**
 * The log showed a checkpoint that cannot extend one seen before: the same size with another root, a
 * smaller tree, or a consistency proof that fails. Names both checkpoints. A refusal for safety.
 */
export function logForked(seen: Checkpoint, now: Checkpoint, why: string, evidence?: string): LifeboatError {
  const keep = evidence ? `both signed checkpoints are kept in ${evidence}; ` : '';
  return new LifeboatError('log_forked', `the log forked: ${checkpointLabel(now)} ${why} ${checkpointLabel(seen)}, seen before`, {
    status: 409,
    hint: `${keep}keep both checkpoints as evidence, stop relying on this log and tell its operator and witnesses; do not delete the audit state`,
  });
}

/** The audit state file does not parse, or holds a checkpoint the log's key does not verify. */
export function auditStateInvalid(path: string, why: string): LifeboatError {
  return new LifeboatError('audit_state_invalid', `audit state ${path} is not usable: ${why}`, {
    hint: 'if the file was damaged, or the log really changed its key, move it away and audit again from scratch (the old file is evidence)',
  });
}
