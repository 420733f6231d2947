/**
 * `ers recover --reshare-to`: deals a recovered key into a new set of Lifeboat key nodes under the same
 * group key (RFC 9591 Appendix C trusted dealer, with the recovered secret as the constant term), so a
 * customer keeps threshold custody with another provider. Each share travels wrapped (crypto_box_seal)
 * to its node's wrapping key and is checked there against its verifying share; each node's key info
 * must then name the original group key.
 */
import { InvalidInputError, LifeboatError } from '../errors.js';
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
 * Checks a --reshare-to list before anything is recovered or dealt: at least 2 nodes, each URL once
 * (compared after URL normalisation), and 2 <= t <= n. Throws InvalidInputError `invalid_input`,
 * `duplicate_nodes`.
 */
export function checkReshareTargets(urls: string[], threshold: number): void {
  if (urls.length < 2) throw new InvalidInputError(`--reshare-to needs at least 2 key nodes (got ${urls.length}): a threshold key is 2-of-n or more`, { hint: 'name every node of the new provider, comma-separated' });
  const seen = new Map<string, string>();
  for (const u of urls) {
    let norm: string;
    try {
      const p = new URL(u);
      norm = `${p.protocol}//${p.host}${p.pathname.replace(/\/+$/, '')}`;
    } catch {
      throw new InvalidInputError(`--reshare-to: ${JSON.stringify(u)} is not a URL`);
    }
    const prev = seen.get(norm);
    if (prev !== undefined) throw new InvalidInputError(`--reshare-to names the same node twice (${prev} and ${u}); nothing was dealt`, { code: 'duplicate_nodes', hint: 'each share must go to a different node' });
    seen.set(norm, u);
  }
  if (!Number.isInteger(threshold) || threshold < 2 || threshold > urls.length) throw new InvalidInputError(`--threshold must be 2..${urls.length} (the number of --reshare-to nodes), not ${threshold}`);
}

/**
 * Before dealing: every node answers its identity (and wrapping key), takes this API key as an
 * operator's (`GET /v1/status` is operator-only; wrapped imports are too), and no node appears twice
 * under two URLs (the same identity). Throws the node's error (`peer_unreachable`, `unauthorized`,
 * `wrong_role`, …) or InvalidInputError `duplicate_nodes`.
 */
async function preflight(nodes: KeyNodeClient[]): Promise<{ fingerprint: string; wrappingKey: Uint8Array }[]> {
  const answers = await Promise.all(
    nodes.map(async (client) => {
      const id = await client.identity();
      await client.status();
      return { url: client.url, fingerprint: id.fingerprint, wrappingKey: fromB64(parseWrappingKey(id.wrapping_public_key, 'the node wrapping key'), 'wrapping key', 32) };
    }),
  );
  const byFp = new Map<string, string>();
  for (const a of answers) {
    const prev = byFp.get(a.fingerprint);
    if (prev !== undefined) throw new InvalidInputError(`${prev} and ${a.url} are the same key node (identity ${a.fingerprint}); nothing was dealt`, { code: 'duplicate_nodes', hint: 'each share must go to a different node' });
    byFp.set(a.fingerprint, a.url);
  }
  return answers;
}

/**
 * Deals `key` t-of-n into `nodes` (n = nodes.length) and imports one share into each (an operator API
 * key of the new nodes: wrapped imports are operator-only). Every node is checked first (preflight);
 * nothing is dealt unless all pass. Throws InvalidInputError (checkReshareTargets, `duplicate_nodes`),
 * the nodes' refusals, and LifeboatError `reshare_incomplete` when an import fails after others took
 * theirs (the message names each node that holds a share, with its key id: the nodes have no delete
 * API, see docs/ers.md), `ers_wrong_key` if a node reports another group key.
 */
export async function reshareTo(key: RecoveredKey, nodes: KeyNodeClient[], threshold: number, opts: { keyId: string; tenant?: string }): Promise<Reshared> {
  checkReshareTargets(nodes.map((c) => c.url), threshold);
  const n = nodes.length;
  const checked = await preflight(nodes);
  const frost = suite(key.curve);
  const ids = Array.from({ length: n }, (_, i) => identifierOf(key.curve, i + 1));
  const dealt = frost.trustedDealer({ min: threshold, max: n }, ids, key.secret);
  const pub: FrostPublic = { signers: { min: threshold, max: n }, commitments: dealt.public.commitments, verifyingShares: dealt.public.verifyingShares };
  const refs: { url: string; keyId: string }[] = [];
  try {
    for (const [i, client] of nodes.entries()) {
      try {
        const exp = exportKeyShare({ keyId: opts.keyId, curve: key.curve, identifier: ids[i]!, share: dealt.secretShares[ids[i]!]!.signingShare, public: pub }, 'wrapped', { exportKey: new Uint8Array(32), wrappingKey: checked[i]!.wrappingKey });
        const imported = await client.importShare({ ...exp, threshold, ...(opts.tenant ? { tenant: opts.tenant } : {}) });
        if (imported.group_public_key !== hex(key.groupPublicKey)) throw new LifeboatError('ers_wrong_key', `key node at ${client.url} holds the dealt share under another group key`, { safety: true });
        refs.push({ url: client.url, keyId: imported.key_id });
      } catch (err) {
        if (refs.length === 0) throw err;
        throw incomplete(err, client.url, refs, threshold, hex(key.groupPublicKey));
      }
    }
  } finally {
    for (const s of Object.values(dealt.secretShares)) wipe(s.signingShare);
  }
  const ref: KeyRef = { curve: key.curve, threshold, groupPublicKey: hex(key.groupPublicKey), public: frostPublicToJson(key.curve, pub), nodes: refs };
  return { ref, fingerprints: checked.map((c) => c.fingerprint) };
}

/** The error of a reshare that stopped after `held` nodes took their shares: names each orphan. */
function incomplete(err: unknown, at: string, held: { url: string; keyId: string }[], t: number, groupKey: string): LifeboatError {
  const why = err instanceof LifeboatError ? `${err.code}: ${err.message}` : String(err);
  const list = held.map((r) => `${r.url}#${r.keyId}`).join(', ');
  const usable = held.length >= t ? `${held.length} shares, t = ${t}: together they can still sign` : `${held.length} of the ${t} shares needed: they cannot sign`;
  return new LifeboatError('reshare_incomplete', `dealing stopped at ${at} (${why}); these nodes already hold a share of group key ${groupKey} (${usable}): ${list}`, {
    cause: err,
    hint: `ask each listed node's operator to remove that key id (the key node has no delete API), then run recover --reshare-to again; ${at} may hold one too if it answered after importing`,
  });
}
