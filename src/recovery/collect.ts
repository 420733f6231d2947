/**
 * Gathering shares for a reconstruction or an unseal, in any mix: releases from holders (over HTTP or
 * as response files from an air-gapped holder) and shares typed by people. Every share is checked
 * against the manifest before it is used: its SLIP-0039 set (identifier), its member index, and its
 * possession key, so a share from another scheme or a wrong member fails by name, before combining.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { LifeboatError, ShareError } from '../errors.js';

type ShareErrorCode = ConstructorParameters<typeof ShareError>[0];
import { generateBoxKeyPair, openSealed, type BoxKeyPair } from '../crypto/sealedbox.js';
import { decodeMnemonic } from '../crypto/slip39.js';
import type { Identity } from '../identity.js';
import { ctEqual, fromB64, fromHex, toHex } from '../util/bytes.js';
import type { ConfirmedHolder } from './holders.js';
import { type Manifest, memberByIndex } from './manifest.js';
import { normalizeMnemonic, possessionPublicKey } from './possession.js';
import { createReleaseRequest, type ReleasePurpose, type ReleaseResponse } from './release.js';
import { parseSharePayload } from './sealed-share.js';

/** A share that passed every check against the manifest. */
export interface CheckedShare {
  memberIndex: number;
  mnemonic: string;
  source: string;
}

/**
 * Checks one mnemonic against the manifest: same SLIP-0039 set, a member the manifest lists, the
 * possession key it records. Throws ShareError (invalid_word / invalid_checksum from decoding,
 * share_set_mismatch for another scheme, invalid_share for a share that is not the member's).
 */
export function checkShareAgainstManifest(manifest: Manifest, mnemonic: string, source: string): CheckedShare {
  let share: ReturnType<typeof decodeMnemonic>;
  try {
    share = decodeMnemonic(mnemonic);
  } catch (err) {
    if (err instanceof ShareError) throw new ShareError(err.code as ShareErrorCode, `the share from ${source}: ${err.message}`, err.hint);
    throw err;
  }
  if (share.identifier !== manifest.slip39_identifier || share.iterationExponent !== manifest.slip39_iteration_exponent) {
    throw new ShareError('share_set_mismatch', `the share from ${source} belongs to another share set, not to recovery scheme ${manifest.scheme_id}`, 'was it printed by an older `recovery init` or `rotate`? only the newest shares open the vault');
  }
  const member = memberByIndex(manifest, share.memberIndex);
  const schemeId = fromHex(manifest.scheme_id, 'scheme id', 16);
  const expected = member ? fromB64(member.possession_key, 'possession key', 32) : undefined;
  if (!expected || !ctEqual(possessionPublicKey(schemeId, mnemonic), expected)) {
    throw new ShareError('invalid_share', `the share from ${source} does not match member ${share.memberIndex + 1} of recovery scheme ${manifest.scheme_id}`, 'check each word against the paper', { safety: true });
  }
  return { memberIndex: share.memberIndex, mnemonic: normalizeMnemonic(mnemonic), source };
}

/** Opens a release response with the one-time key and checks the share inside against the manifest. */
export function acceptReleaseResponse(manifest: Manifest, response: ReleaseResponse, oneTime: BoxKeyPair, source: string): CheckedShare {
  if (response.scheme_id !== manifest.scheme_id) throw new ShareError('share_set_mismatch', `${source} released a share of another scheme`);
  const payload = parseSharePayload(openSealed(fromB64(response.sealed_share, 'sealed share'), oneTime));
  if (toHex(payload.schemeId) !== manifest.scheme_id || payload.memberIndex !== response.member_index) {
    throw new ShareError('share_set_mismatch', `${source} released a share whose payload names another scheme or member`);
  }
  return checkShareAgainstManifest(manifest, payload.mnemonic, source);
}

/**
 * Asks one holder to release its share to a fresh one-time key, signed by `signer` (an operator, or the
 * primary itself for an unseal), and checks it. Throws the holder's typed refusal or a ShareError.
 */
export async function releaseFromHolder(opts: { manifest: Manifest; holder: ConfirmedHolder; signer: Identity; purpose: ReleasePurpose; requesterKey?: BoxKeyPair }): Promise<CheckedShare> {
  const oneTime = opts.requesterKey ?? generateBoxKeyPair();
  const request = createReleaseRequest({
    signer: opts.signer,
    schemeId: fromHex(opts.manifest.scheme_id, 'scheme id', 16),
    holderFingerprint: opts.holder.fingerprint,
    purpose: opts.purpose,
    requesterPublicKey: oneTime.publicKey,
  });
  const response = await opts.holder.client.release(opts.manifest.scheme_id, request);
  return acceptReleaseResponse(opts.manifest, response, oneTime, `holder ${opts.holder.url}`);
}

/**
 * Adds a share to a set, refusing a second, different share for the same member (ShareError
 * `duplicate_share`, a refusal for safety: one of the two was altered). The same share again is
 * ShareError `share_repeated` with `repeat: 'refuse'` (shares a person gave: typed, or response files,
 * where a repeat is a slip that would leave the set one share short); otherwise it counts once.
 */
export function addShare(set: Map<number, CheckedShare>, share: CheckedShare, opts: { repeat?: 'refuse' | 'once' } = {}): void {
  const have = set.get(share.memberIndex);
  if (have && have.mnemonic !== share.mnemonic) {
    throw new ShareError('duplicate_share', `member ${share.memberIndex + 1} was given twice with different words (${have.source}, ${share.source})`, undefined, { safety: true });
  }
  if (have && opts.repeat === 'refuse') {
    throw new ShareError(
      'share_repeated',
      `duplicate share: ${share.source} is the share of member ${share.memberIndex + 1} again, as ${have.source}`,
      'give each share once: the threshold counts different shares; nothing was asked of any holder or written',
    );
  }
  set.set(share.memberIndex, share);
}

/** Throws ShareError `insufficient_shares` unless the set reaches the manifest's threshold. */
export function requireThreshold(manifest: Manifest, set: Map<number, CheckedShare>, failures: string[]): void {
  if (set.size >= manifest.threshold) return;
  const detail = failures.length ? `; not obtained: ${failures.join('; ')}` : '';
  throw new ShareError(
    'insufficient_shares',
    `${set.size} of ${manifest.threshold} required shares${detail}`,
    'type an offline share (--typed-shares N), or bring another holder online',
  );
}

/** Describes a failure to obtain a share for the summary line, by code only (no secrets). */
export function describeFailure(source: string, err: unknown): string {
  return err instanceof LifeboatError ? `${source}: ${err.code} (${err.message})` : `${source}: ${(err as Error).message}`;
}

/** SHA-256 of a sealed share, hex, as the manifest records it. */
export function sealedShareHash(sealed: Uint8Array): string {
  return toHex(sha256(sealed));
}
