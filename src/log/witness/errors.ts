/**
 * The witness's typed errors (docs/log.md, "Witnesses"). Codes are stable snake_case `err_type`s; the
 * HTTP statuses are the ones C2SP tlog-witness names for add-checkpoint. `log_forked` is a refusal for
 * safety (SAFETY_CODES: CLI exit 3). Messages are lowercase and never contain a signer key.
 */
import { LifeboatError } from '../../errors.js';

export type WitnessErrorCode =
  /** An add-checkpoint body that does not parse: the old line, a proof line, the note, the sizes. */
  | 'witness_request_malformed'
  /** A checkpoint of a log this witness does not witness (404). */
  | 'log_unknown'
  /** A checkpoint without a good signature of the log's key (403). */
  | 'log_signature_invalid'
  /** A size-0 checkpoint whose root is not the empty tree's (422). */
  | 'checkpoint_invalid'
  /** The request's old size is not the size the witness holds (409, body: that size). */
  | 'old_size_mismatch'
  /** A consistency proof that does not verify from the held checkpoint to the offered one (422). */
  | 'consistency_proof_invalid'
  /** A checkpoint of the held size with another root, both signed by the log: a fork that proves itself. */
  | 'log_forked'
  /** `log witness init` on a directory that already holds a witness. */
  | 'witness_exists'
  /** A witness command on a directory without a witness. */
  | 'witness_not_found'
  /** `log witness add-log` for a log (origin) already witnessed. */
  | 'log_exists'
  /** A second `log witness serve` on the same directory. */
  | 'witness_busy';

const STATUS: Record<WitnessErrorCode, number> = {
  witness_request_malformed: 400,
  log_unknown: 404,
  log_signature_invalid: 403,
  checkpoint_invalid: 422,
  old_size_mismatch: 409,
  consistency_proof_invalid: 422,
  log_forked: 422,
  witness_exists: 409,
  witness_not_found: 404,
  log_exists: 409,
  witness_busy: 409,
};

/** A witness error; `status` defaults to the code's, and a fork's status follows the spec case. */
export class WitnessError extends LifeboatError {
  declare readonly code: WitnessErrorCode;

  constructor(code: WitnessErrorCode, message: string, hint?: string, status?: number) {
    super(code, message, { hint, status: status ?? STATUS[code] });
  }
}
