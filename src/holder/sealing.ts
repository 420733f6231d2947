/**
 * The holder's sealed shares, under its own key: an upload checked against the manifest that comes
 * with it, a stored share opened and checked, the possession proof made from it, and the share
 * re-sealed to a release's requester. No I/O: the service (./service.ts) reads the store, checks who
 * asks and audits. Every opened share is wiped before these return.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { InvalidInputError, ShareError } from '../errors.js';
import { openSealed, seal } from '../crypto/sealedbox.js';
import { type Identity, identityFingerprint, parsePublicIdentity } from '../identity.js';
import { parseManifest } from '../recovery/manifest.js';
import { provePossession } from '../recovery/possession.js';
import type { ReleaseRequest, ReleaseResponse } from '../recovery/release.js';
import { parseSharePayload, type SharePayload } from '../recovery/sealed-share.js';
import { toB64, toHex, wipe } from '../util/bytes.js';
import type { ChallengeAnswer, PutShareBody } from './api.js';
import type { StoredShare } from './store.js';

/** The SHA-256 of `b`, lowercase hex (a manifest names each sealed share by it). */
export function sha256Hex(b: Uint8Array): string {
  return toHex(sha256(b));
}

/**
 * Opens a sealed share with the holder's key and checks the payload names its scheme and member.
 * Wipe the result's bytes after use. Throws ShareError `invalid_share`.
 */
export function openShare(identity: Identity, id: string, sealedShare: Uint8Array, memberIndex: number): { bytes: Uint8Array; payload: SharePayload } {
  let bytes: Uint8Array;
  try {
    bytes = openSealed(sealedShare, identity.box);
  } catch {
    throw new ShareError('invalid_share', `the sealed share of scheme ${id} does not open with this holder's key`, 'it was sealed to another holder, or altered');
  }
  let payload: SharePayload;
  try {
    payload = parseSharePayload(bytes);
  } catch {
    wipe(bytes);
    throw new ShareError('invalid_share', `the sealed share of scheme ${id} is not a lifeboat share payload`);
  }
  if (toHex(payload.schemeId) !== id || payload.memberIndex !== memberIndex) {
    wipe(bytes);
    throw new ShareError('invalid_share', `the sealed share belongs to another scheme or member than ${id} member ${memberIndex}`);
  }
  return { bytes, payload };
}

/**
 * Checks an uploaded share against its manifest: the scheme, signed by the enrolled primary
 * (`enrolledPrimary`, read only once the scheme matches), a member entry for this holder with the
 * upload's index and hash, and a share that opens for that member. Returns the share's SHA-256 hex.
 * Throws FormatError / `bad_signature` (manifest), InvalidInputError `manifest_mismatch`, ShareError
 * `invalid_share`.
 */
export function checkShareUpload(identity: Identity, fingerprint: string, enrolledPrimary: () => string, schemeId: string, body: PutShareBody, sealed: Uint8Array): string {
  const manifest = parseManifest(body.manifest);
  const mismatch = (what: string) => new InvalidInputError(`the manifest does not match the upload: ${what}`, { code: 'manifest_mismatch' });
  if (manifest.scheme_id !== schemeId) throw mismatch('scheme id');
  if (identityFingerprint(parsePublicIdentity(manifest.primary)) !== identityFingerprint(parsePublicIdentity(enrolledPrimary()))) throw mismatch('it is signed by another primary than the enrolled one');
  const member = manifest.members.find((m) => m.kind === 'holder' && m.fingerprint === fingerprint);
  if (!member) throw mismatch(`it lists no member for this holder (${fingerprint})`);
  const hash = sha256Hex(sealed);
  if (member.member_index !== body.member_index) throw mismatch('member index');
  if (member.sealed_share_sha256 !== hash) throw mismatch('sealed share hash');
  const opened = openShare(identity, schemeId, sealed, body.member_index);
  wipe(opened.bytes);
  return hash;
}

/** Answers a possession challenge (32 bytes, checked by the caller) with the stored share. Throws ShareError `invalid_share`. */
export function proveShare(identity: Identity, schemeId: string, share: StoredShare, challenge: Uint8Array): ChallengeAnswer {
  const { bytes, payload } = openShare(identity, schemeId, share.sealedShare, share.memberIndex);
  try {
    const signature = provePossession({ schemeId: payload.schemeId, mnemonic: payload.mnemonic, challenge, sealedShare: share.sealedShare, holderBoxPublicKey: identity.boxPublicKey });
    return { sealed_share_sha256: sha256Hex(share.sealedShare), signature: toB64(signature) };
  } finally {
    wipe(bytes);
  }
}

/**
 * The release response: the stored share re-sealed to the requester's one-time key. The request is
 * already verified and authorised (./service.ts). Throws ShareError `invalid_share`.
 */
export function releaseShare(identity: Identity, fingerprint: string, request: ReleaseRequest, share: StoredShare, requesterPublicKey: Uint8Array): ReleaseResponse {
  const { bytes } = openShare(identity, request.scheme_id, share.sealedShare, share.memberIndex);
  try {
    return {
      version: 1,
      type: 'lifeboat-release-response',
      request_id: request.request_id,
      scheme_id: request.scheme_id,
      member_index: share.memberIndex,
      holder_fingerprint: fingerprint,
      sealed_share: toB64(seal(bytes, requesterPublicKey)),
    };
  } finally {
    wipe(bytes);
  }
}
