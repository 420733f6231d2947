/**
 * The first step of the batch restore check (restore-verify.ts) for one stored key: its LBKS share
 * opened under the storage key for this very row, and the row's public package read, with the same
 * verdict as openKeyShare followed by comparing the row's package with the sealed one.
 */
import { openEnvelope, parseEnvelope } from '../crypto/envelope.js';
import { ctEqual, wipe } from '../util/bytes.js';
import { checkExpected, KEY_SHARE_MAGIC, openKeyShare, parseKeyHeader } from './frost/keyshare.js';
import { encodeFrostPublic, type PublicForShare, readCanonicalPublic } from './frost/public.js';
import type { FrostCurve } from './frost/suite.js';
import type { KeyRecord } from './store/types.js';

/** What prepareKey needs of one row, once its share is open. */
export interface OpenedRow {
  identifier: string;
  curve: FrostCurve;
  /** The 32-byte signing share (secret; wiped by the caller). */
  share: Uint8Array;
  pub: PublicForShare;
}

/**
 * openKeyShare's steps (LBKS version 1), with the row's package compared with the sealed bytes instead
 * of encoding the parsed package again, and read with readCanonicalPublic, which accepts only what
 * parseFrostPublic accepts. Undefined whenever this shortcut does not accept: the caller then takes
 * openKeyShare's own path, which decides.
 */
function openSealedRow(storageKey: Uint8Array, rec: KeyRecord): OpenedRow | undefined {
  const what = 'sealed key share';
  try {
    const env = parseEnvelope(rec.encryptedShare, { magic: KEY_SHARE_MAGIC, versions: [1], what });
    const h = parseKeyHeader(env.header, what);
    checkExpected(what, h, { keyId: rec.keyId, curve: rec.curve, identifier: rec.identifier });
    const plaintext = openEnvelope(env, storageKey, what);
    try {
      if (plaintext.length <= 32 || !ctEqual(plaintext.subarray(32), rec.publicPackage)) return undefined;
      const pub = readCanonicalPublic(rec.publicPackage, h.curve, h.identifier);
      return pub && { identifier: h.identifier, curve: h.curve, share: plaintext.slice(0, 32), pub };
    } finally {
      wipe(plaintext);
    }
  } catch {
    return undefined;
  }
}

/** openKeyShare's own path, for a row the shortcut did not accept: undefined when checkRestoredKey refuses it. */
function openRowSlowly(storageKey: Uint8Array, rec: KeyRecord): OpenedRow | undefined {
  const key = openKeyShare(storageKey, rec.encryptedShare, { keyId: rec.keyId, curve: rec.curve, identifier: rec.identifier });
  if (!ctEqual(encodeFrostPublic(key.curve, key.public), rec.publicPackage)) {
    wipe(key.share);
    return undefined;
  }
  const { commitments, verifyingShares, signers } = key.public;
  const pub = { min: signers.min, max: Object.keys(verifyingShares).length, commitments, verifyingShare: verifyingShares[key.identifier]! };
  return { identifier: key.identifier, curve: key.curve, share: key.share, pub };
}

/**
 * The row's share opened and its package read (the shortcut, then openKeyShare's own path), or
 * undefined when checkRestoredKey refuses the row for a reason of its own. May throw (openKeyShare's
 * errors); the caller treats a throw as a refusal. The caller wipes `share`.
 */
export function openRestoredRow(storageKey: Uint8Array, rec: KeyRecord): OpenedRow | undefined {
  return openSealedRow(storageKey, rec) ?? openRowSlowly(storageKey, rec);
}
