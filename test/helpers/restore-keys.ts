/**
 * Key rows for restore tests (test/keynode-restore-verify, test/keynode-restore-import): key material
 * from noble's trusted dealer (RFC 9591 App. C) and the row a node stores for it, its share sealed
 * under the tests' storage key.
 */
import { randomBytes } from '../../src/crypto/random.js';
import { encodeFrostPublic, type FrostCurve, type FrostPublic, identifierOf, sealKeyShare, suite } from '../../src/keynode/frost/index.js';
import type { KeyRecord } from '../../src/keynode/store/types.js';

/** The storage key every row here is sealed under. */
export const STORAGE_KEY = randomBytes(32);

export interface Material {
  curve: FrostCurve;
  identifier: string;
  share: Uint8Array;
  pub: FrostPublic;
}

/** A trusted-dealer key; this node holds participant `me` (1-based) unless identifiers are given. */
export function dealt(curve: FrostCurve, opts: { min?: number; max?: number; me?: number; identifiers?: string[] } = {}): Material {
  const min = opts.min ?? 2;
  const max = opts.max ?? 3;
  const d = suite(curve).trustedDealer({ min, max }, opts.identifiers);
  const identifier = opts.identifiers?.[0] ?? identifierOf(curve, opts.me ?? 1);
  const pub: FrostPublic = { signers: { min, max }, commitments: d.public.commitments.map((c) => c.slice()), verifyingShares: { ...d.public.verifyingShares } };
  return { curve, identifier, share: d.secretShares[identifier]!.signingShare, pub };
}

/**
 * The row a node stores for key material, sealed under STORAGE_KEY; `share` seals another share in
 * its place (a bad share), `edit` may alter the row after sealing.
 */
export function row(keyId: string, m: Material, opts: { share?: Uint8Array; edit?: (r: KeyRecord) => void } = {}): KeyRecord {
  const c0 = m.pub.commitments[0]!;
  const r: KeyRecord = {
    keyId,
    curve: m.curve,
    threshold: m.pub.signers.min,
    maxSigners: m.pub.signers.max,
    identifier: m.identifier,
    groupPublicKey: m.curve === 'bip340' ? c0.slice(1) : c0.slice(),
    publicPackage: encodeFrostPublic(m.curve, m.pub),
    encryptedShare: sealKeyShare(STORAGE_KEY, { keyId, curve: m.curve, identifier: m.identifier, share: opts.share ?? m.share, public: m.pub }),
    status: 'active',
    origin: 'dkg',
    createdAt: 1_700_000_000_000,
    tenant: 'default',
  };
  opts.edit?.(r);
  return r;
}
