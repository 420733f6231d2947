/**
 * `ers recover --reshare-to`: deals a recovered key into a new set of Lifeboat key nodes under the same
 * group key (RFC 9591 Appendix C trusted dealer, with the recovered secret as the constant term), so a
 * customer keeps threshold custody with another provider. Each share travels wrapped (crypto_box_seal)
 * to its node's wrapping key and is checked there against its verifying share; each node's key info
 * must then name the original group key.
 */
import { LifeboatError } from '../errors.js';
import { wipe } from '../util/bytes.js';
import type { KeyNodeClient } from '../keynode/client.js';
import { exportKeyShare, parseWrappingKey } from '../keynode/export.js';
import { frostPublicToJson, type FrostPublic, hex, identifierOf, suite } from '../keynode/frost/index.js';
import { fromB64 } from '../util/bytes.js';
import type { KeyRef } from '../keynode/sdk.js';
import type { RecoveredKey } from './recover.js';

export interface Reshared {
  ref: KeyRef;
  /** Each node's identity fingerprint, as it answered: compare with what its operator states. */
  fingerprints: string[];
}

/**
 * Deals `key` t-of-n into `nodes` (n = nodes.length) and imports one share into each (an operator API
 * key of the new nodes: wrapped imports are operator-only). Throws InvalidInputError for t outside
 * 2..n, the nodes' refusals, and LifeboatError `ers_wrong_key` if a node reports another group key.
 */
export async function reshareTo(key: RecoveredKey, nodes: KeyNodeClient[], threshold: number, opts: { keyId: string; tenant?: string }): Promise<Reshared> {
  const n = nodes.length;
  if (!Number.isInteger(threshold) || threshold < 2 || threshold > n) throw new LifeboatError('invalid_input', `--threshold must be 2..${n} (the number of --reshare-to nodes)`);
  const frost = suite(key.curve);
  const ids = Array.from({ length: n }, (_, i) => identifierOf(key.curve, i + 1));
  const dealt = frost.trustedDealer({ min: threshold, max: n }, ids, key.secret);
  const pub: FrostPublic = { signers: { min: threshold, max: n }, commitments: dealt.public.commitments, verifyingShares: dealt.public.verifyingShares };
  const fingerprints: string[] = [];
  const refs: { url: string; keyId: string }[] = [];
  try {
    for (const [i, client] of nodes.entries()) {
      const id = await client.identity();
      fingerprints.push(id.fingerprint);
      const wrappingKey = fromB64(parseWrappingKey(id.wrapping_public_key, 'the node wrapping key'), 'wrapping key', 32);
      const exp = exportKeyShare({ keyId: opts.keyId, curve: key.curve, identifier: ids[i]!, share: dealt.secretShares[ids[i]!]!.signingShare, public: pub }, 'wrapped', { exportKey: new Uint8Array(32), wrappingKey });
      const imported = await client.importShare({ ...exp, threshold, ...(opts.tenant ? { tenant: opts.tenant } : {}) });
      if (imported.group_public_key !== hex(key.groupPublicKey)) throw new LifeboatError('ers_wrong_key', `key node at ${client.url} holds the dealt share under another group key`, { safety: true });
      refs.push({ url: client.url, keyId: imported.key_id });
    }
  } finally {
    for (const s of Object.values(dealt.secretShares)) wipe(s.signingShare);
  }
  const ref: KeyRef = { curve: key.curve, threshold, groupPublicKey: hex(key.groupPublicKey), public: frostPublicToJson(key.curve, pub), nodes: refs };
  return { ref, fingerprints };
}
