/**
 * The log's typed errors (docs/log-format.md). Codes are stable snake_case `err_type`s; messages are
 * lowercase and never contain a signer key or seed.
 */
import { LifeboatError } from '../errors.js';

export type LogErrorCode =
  /** A signed note that does not parse: bad UTF-8, a control character, no blank line, a bad signature line. */
  | 'note_malformed'
  /** A note over the size limit. */
  | 'note_too_large'
  /** No signature of a known key on the note. */
  | 'note_unverified'
  /** A signature of a known key that does not verify: the note was forged or altered. */
  | 'note_signature_invalid'
  /** A verifier key string that does not parse or whose key ID does not match. */
  | 'verifier_key_invalid'
  /** A signer key string that does not parse or whose key ID does not match. */
  | 'signer_key_invalid'
  /** A checkpoint body that breaks tlog-checkpoint's rules. */
  | 'checkpoint_malformed'
  /** A checkpoint signed by the expected key whose origin line names another log. */
  | 'checkpoint_origin_mismatch'
  /** Fewer good witness co-signatures than required. */
  | 'witness_quorum_not_met'
  /** A log entry over the size limit. */
  | 'entry_too_large'
  /** A log entry whose submitter signature does not verify. */
  | 'entry_signature_invalid';

const STATUS: Record<LogErrorCode, number> = {
  note_malformed: 400,
  note_too_large: 413,
  note_unverified: 400,
  note_signature_invalid: 400,
  verifier_key_invalid: 400,
  signer_key_invalid: 400,
  checkpoint_malformed: 400,
  checkpoint_origin_mismatch: 400,
  witness_quorum_not_met: 400,
  entry_too_large: 413,
  entry_signature_invalid: 401,
};

/** An error of the log's formats and signatures. `code` is one of LogErrorCode. */
export class LogError extends LifeboatError {
  declare readonly code: LogErrorCode;

  constructor(code: LogErrorCode, message: string, hint?: string) {
    super(code, message, { hint, status: STATUS[code] });
  }
}
