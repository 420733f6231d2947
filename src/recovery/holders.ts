/**
 * Share holders as the recovery commands see them: given on the command line as `URL#FINGERPRINT`,
 * confirmed by fingerprint before anything is sent, and reached through HolderClient.
 */
import { InvalidInputError, PeerError } from '../errors.js';
import { HolderClient } from '../holder/client.js';
import { type Identity, parsePublicIdentity, type PublicIdentity, identityFingerprint } from '../identity.js';

/** A holder given as `URL#FINGERPRINT`. */
export interface HolderSpec {
  url: string;
  fingerprint: string;
}

const FP = /^([0-9a-f]{4}:){7}[0-9a-f]{4}$/;

/** Parses `http://host:port#abcd:…` (fingerprint as printed by `holder init`). Throws InvalidInputError. */
export function parseHolderSpec(spec: string): HolderSpec {
  const i = spec.lastIndexOf('#');
  if (i < 0) {
    throw new InvalidInputError(`holder "${spec}" has no fingerprint`, { hint: 'give holders as URL#FINGERPRINT, the fingerprint `lifeboat holder init` printed' });
  }
  const url = spec.slice(0, i);
  const fingerprint = spec.slice(i + 1).toLowerCase();
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidInputError(`holder url "${url}" is not a URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new InvalidInputError(`holder url "${url}" must be http or https`);
  if (!FP.test(fingerprint)) throw new InvalidInputError(`holder fingerprint "${fingerprint}" is malformed`, { hint: 'it looks like 8 groups of 4 hex digits separated by colons' });
  return { url: url.replace(/\/+$/, ''), fingerprint };
}

/** A holder whose identity was fetched and matched its expected fingerprint. */
export interface ConfirmedHolder extends HolderSpec {
  identity: PublicIdentity;
  token: string;
  client: HolderClient;
}

/**
 * Connects to a holder and confirms its identity by fingerprint. Throws PeerError
 * `peer_unreachable` when it is down and `peer_identity_mismatch` when it answers with another key.
 */
export async function confirmHolder(spec: HolderSpec, signer?: Identity): Promise<ConfirmedHolder> {
  const client = new HolderClient({ url: spec.url, signer, expectedFingerprint: spec.fingerprint });
  const id = await client.identity();
  const identity = parsePublicIdentity(id.identity, 'holder identity');
  if (identityFingerprint(identity) !== spec.fingerprint) {
    throw new PeerError('peer_identity_mismatch', `holder at ${spec.url} answered with another key (fingerprint ${identityFingerprint(identity)})`, 'check the URL; if the holder was rebuilt, re-run recovery with its new fingerprint');
  }
  return { ...spec, identity, token: id.identity, client };
}
