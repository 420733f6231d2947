/**
 * Typed errors. Every error Lifeboat raises on purpose is a LifeboatError with a stable snake_case
 * `code` (the API's `err_type` and what code branches on), a lowercase message that never contains
 * secret material, an optional `hint` the user can act on, and the HTTP status a server answers with.
 */
/**
 * err_types that are refusals for safety wherever they are raised, so the flag also holds for an error
 * a client rebuilds from a server's `err_type`. An error of another type is one only when raised with
 * `{ safety: true }` (e.g. a recovery manifest whose signature does not verify). docs/cli.md lists both.
 */
export const SAFETY_CODES: ReadonlySet<string> = new Set([
  // a share, vault or manifest of another set, or altered: combining or opening it must not go on
  'share_set_mismatch',
  'primary_mismatch',
  'manifest_forged',
  'manifest_unbound',
  'invalid_digest',
  'wrong_master_key',
  // a peer that is not the one pinned, or a holder that cannot prove it holds its share
  'peer_identity_mismatch',
  'possession_failed',
  // a rollback: a copy older than one already seen, or a backup chain that does not hold together
  'vault_rollback',
  'primary_behind',
  'vault_forked',
  'vault_copy_invalid',
  'stale_generation',
  'backup_rollback_detected',
  'backup_rolled_back',
  'backup_chain_broken',
  'backup_truncated',
  'backup_check_failed',
  'chain_mismatch',
  // key material that is not what it claims to be
  'backup_of_another_node',
  'wrong_backup_key',
  'share_mismatch',
  'key_share_mismatch',
  'key_ref_mismatch',
  'dkg_participant_cheated',
  // an emergency recovery package or part whose proof, group key or shares do not hold (docs/ers.md)
  'ers_proof_invalid',
  'ers_group_key_mismatch',
  'ers_interpolation_failed',
  'ers_wrong_key',
  // evidence of tampering
  'audit_log_broken',
  'audit_log_corrupt',
  // a public log that forked, or whose tiles, entries or signatures were altered
  'log_forked',
  'store_behind',
  'tile_invalid',
  'entry_bundle_invalid',
  'note_signature_invalid',
  // a key-share backup of another node, under other words, altered, or two of one epoch (src/keyshare/)
  'mnemonic_wrong',
  'keyshare_other_node',
  'keyshare_signature_invalid',
  'keyshare_decrypt_failed',
  'keyshare_conflict',
  'keyshare_output_check_failed',
  // an unseal ceremony step that was altered, made for another session, or given twice (docs/unseal.md)
  'unseal_step_invalid',
  'unseal_step_replayed',
  // a recovery kit whose signed hashes, signature or release key do not match (docs/kit.md)
  'kit_key_mismatch',
  'kit_signature_invalid',
  'kit_not_listed',
  'kit_hash_mismatch',
]);

export class LifeboatError extends Error {
  readonly code: string;
  readonly hint: string | undefined;
  readonly status: number;
  /**
   * A refusal for safety (a wrong share, a forged manifest, a rollback): retrying will not help, and
   * automation should stop and call a person. The CLI exits with its own code for these (docs/cli.md).
   */
  readonly safety: boolean;

  constructor(code: string, message: string, opts: { hint?: string; status?: number; cause?: unknown; safety?: boolean } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = opts.hint;
    this.status = opts.status ?? 400;
    this.safety = opts.safety ?? SAFETY_CODES.has(code);
  }

  /** The JSON body an API answers with: `{"err_type": ..., "message": ...}` (plus a hint when there is one). */
  toJSON(): { err_type: string; message: string; hint?: string } {
    return this.hint ? { err_type: this.code, message: this.message, hint: this.hint } : { err_type: this.code, message: this.message };
  }
}

/** An argument or field that is missing, out of range or of the wrong shape. */
export class InvalidInputError extends LifeboatError {
  constructor(message: string, opts: { hint?: string; code?: string; safety?: boolean } = {}) {
    super(opts.code ?? 'invalid_input', message, { hint: opts.hint, status: 400, safety: opts.safety });
  }
}

/**
 * A command line that is wrong by itself, whatever the files, servers or state it would work on: an
 * unknown option, a missing or malformed argument, options that exclude each other, a threshold larger
 * than the count it is taken of. err_type `usage`; the CLI exits 2 for it (docs/cli.md, "Exit codes").
 */
export class UsageError extends LifeboatError {
  constructor(message: string, opts: { hint?: string } = {}) {
    super('usage', message, { hint: opts.hint, status: 400 });
  }
}

/** Bytes that do not parse as the format they claim: bad magic, truncated, unknown version. */
export class FormatError extends LifeboatError {
  constructor(code: 'bad_magic' | 'truncated' | 'unsupported_version' | 'malformed', message: string, hint?: string) {
    super(code, message, { hint, status: 400 });
  }
}

/** Authenticated decryption failed: wrong key, or the data was altered. Never says which byte. */
export class DecryptionError extends LifeboatError {
  constructor(message = 'decryption failed: wrong key or tampered data', hint?: string) {
    super('decryption_failed', message, { hint, status: 400 });
  }
}

/**
 * A share, or a set of shares, that cannot be combined: typo, checksum, other set, too few, bad digest.
 * Another set, a bad digest and a wrong master key are refusals for safety (SAFETY_CODES); a typo is not.
 */
export class ShareError extends LifeboatError {
  constructor(
    code:
      | 'invalid_word'
      | 'invalid_checksum'
      | 'invalid_share'
      | 'share_set_mismatch'
      | 'duplicate_share'
      | 'share_repeated'
      | 'insufficient_shares'
      | 'invalid_digest'
      | 'wrong_master_key',
    message: string,
    hint?: string,
    opts: { safety?: boolean } = {},
  ) {
    super(code, message, { hint, status: 400, safety: opts.safety });
  }
}

/** The request is not authenticated (missing or bad signature, unknown key). */
export class UnauthorizedError extends LifeboatError {
  constructor(message: string, code = 'unauthorized', hint?: string) {
    super(code, message, { hint, status: 401 });
  }
}

/** Authenticated but not allowed: wrong role, not enrolled, replayed or expired request. */
export class ForbiddenError extends LifeboatError {
  constructor(message: string, code = 'forbidden', hint?: string) {
    super(code, message, { hint, status: 403 });
  }
}

/** The named thing does not exist. */
export class NotFoundError extends LifeboatError {
  constructor(message: string, code = 'not_found', hint?: string) {
    super(code, message, { hint, status: 404 });
  }
}

/** The request conflicts with the current state (already exists, stale version). */
export class ConflictError extends LifeboatError {
  constructor(message: string, code = 'conflict', hint?: string, opts: { safety?: boolean } = {}) {
    super(code, message, { hint, status: 409, safety: opts.safety });
  }
}

/** A peer is down, unreachable or answered something that is not the protocol. */
export class PeerError extends LifeboatError {
  constructor(code: 'peer_unreachable' | 'peer_bad_answer' | 'peer_identity_mismatch' | 'possession_failed', message: string, hint?: string) {
    super(code, message, { hint, status: 502 });
  }
}

/**
 * A Merkle proof, tile or entry bundle of the public log (src/log/) that does not match what it must.
 * `reason` says which check failed, as a stable snake_case word (docs/log-format.md lists them):
 * e.g. `root_mismatch`, `proof_length`, `hash_length`, `index_out_of_range`, `size_order`,
 * `tile_length`, `tile_hash_mismatch`, `entry_hash_mismatch`, `truncated`, `trailing_data`.
 */
export class LogVerificationError extends LifeboatError {
  readonly reason: string;
  constructor(code: 'proof_invalid' | 'tile_invalid' | 'entry_bundle_invalid', reason: string, message: string, hint?: string) {
    super(code, message, { hint, status: 400 });
    this.reason = reason;
  }

  override toJSON(): { err_type: string; message: string; hint?: string; reason: string } {
    return { ...super.toJSON(), reason: this.reason };
  }
}

/** Narrows an unknown thrown value to a LifeboatError with the given code. */
export function isLifeboatError(err: unknown, code?: string): err is LifeboatError {
  return err instanceof LifeboatError && (code === undefined || err.code === code);
}
