/**
 * Errors of key-share backups (docs/keyshare.md). Codes are stable (`err_type`); messages are lowercase
 * and never hold a word of the mnemonic, a share or a passphrase: a mistyped word is named by its
 * position only.
 */
import { LifeboatError } from '../errors.js';

export type KeyshareErrorCode =
  /** Not 24 words. */
  | 'mnemonic_length'
  /** A word that is not in the BIP-39 English wordlist (named by position). */
  | 'mnemonic_word_unknown'
  /** 24 wordlist words whose BIP-39 checksum fails: a word swapped for another wordlist word. */
  | 'mnemonic_checksum'
  /** A valid mnemonic whose letters are too uniform to have come from a random generator. */
  | 'mnemonic_low_entropy'
  /** A valid mnemonic, but not the one this node's backups were made under. */
  | 'mnemonic_wrong'
  /** A backup record signed by another node than the one asked for, or whose entry's submitter differs. */
  | 'keyshare_other_node'
  /** The record's signature by its node identity does not verify: altered bytes. */
  | 'keyshare_signature_invalid'
  /** The mnemonic is right, yet the ciphertext does not open, or opens to another key: altered or forged by the node key. */
  | 'keyshare_decrypt_failed'
  /** Two records for the same key and epoch that disagree: equivocation, nothing is restored for that key. */
  | 'keyshare_conflict'
  /** An output check before publication failed (ciphertext contains the input, the words, or does not decrypt back). */
  | 'keyshare_output_check_failed'
  /** A plain X25519 recipient, or an age stanza of another kind than the record's mode. */
  | 'keyshare_recipient_refused';

export class KeyshareError extends LifeboatError {
  constructor(code: KeyshareErrorCode, message: string, hint?: string) {
    super(code, message, { hint, status: 400 }); // the safety ones are in SAFETY_CODES (src/errors.ts)
  }
}
