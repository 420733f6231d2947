/** Key material for key-share backup tests: trusted-dealer FROST keys and a node identity. */
import { generateIdentity, type Identity } from '../../src/identity.js';
import { type FrostCurve, type FrostPublic, identifierOf, type KeyShare, suite } from '../../src/keynode/frost/index.js';
import { checkMnemonic, mnemonicFromEntropy, type Mnemonic } from '../../src/keyshare/mnemonic.js';

/** Every participant's share of one trusted-dealer key (participant i + 1 at index i). */
export function dealtKey(curve: FrostCurve, keyId: string, opts: { min?: number; max?: number } = {}): KeyShare[] {
  const min = opts.min ?? 2;
  const max = opts.max ?? 3;
  const ids = Array.from({ length: max }, (_, i) => identifierOf(curve, i + 1));
  const d = suite(curve).trustedDealer({ min, max }, ids);
  const pub: FrostPublic = { signers: { min, max }, commitments: d.public.commitments.map((c) => c.slice()), verifyingShares: { ...d.public.verifyingShares } };
  return ids.map((identifier) => ({ keyId, curve, identifier, share: d.secretShares[identifier]!.signingShare.slice(), public: pub }));
}

/** A fixed mnemonic (its entropy is 0x01..0x20) and a random one. */
export const FIXED_MNEMONIC = mnemonicFromEntropy(Uint8Array.from({ length: 32 }, (_, i) => i + 1));
export function words(text = FIXED_MNEMONIC): Mnemonic {
  return checkMnemonic(text);
}

export function nodeIdentity(): Identity {
  return generateIdentity('node');
}
