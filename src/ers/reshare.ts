/**
 * `ers recover --reshare-to`: deals a recovered key into a new set of Lifeboat key nodes under the same
 * group key (RFC 9591 Appendix C trusted dealer, with the recovered secret as the constant term), so a
 * customer keeps threshold custody with another provider. Each share travels wrapped (crypto_box_seal)
 * to its node's wrapping key and is checked there against its verifying share; each node's key info
 * must then name the original group key. A deal that fails midway is rolled back: the shares this run
 * imported are deleted again (docs/ers.md, "--reshare-to").
 */
import { InvalidInputError, LifeboatError } from '../errors.js';
import { wipe } from '../util/bytes.js';
import type { KeyNodeClient } from '../keynode/client.js';
import { exportKeyShare, parseWrappingKey } from '../keynode/export.js';
import { frostPublicToJson, type FrostPublic, hex, identifierOf, suite } from '../keynode/frost/index.js';
import { fromB64 } from '../util/bytes.js';
import { DEFAULT_TENANT } from '../keynode/tenants.js';
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
 * nothing is dealt unless all pass. When an import fails after others took theirs, the run deletes the
 * shares it imported (only those: the key ids the nodes answered it, and on the failing node a key
 * holding this very dealing, when its answer left that open) and throws LifeboatError
 * `reshare_rolled_back` (none is left anywhere) or `reshare_incomplete` (the message names each share
 * it could not delete, or node it could not check, with the command that removes it). Also throws
 * InvalidInputError (checkReshareTargets, `duplicate_nodes`), the nodes' refusals when nothing was
 * dealt, `ers_wrong_key` if a node reports another group key (inside the rollback's error).
 */
export async function reshareTo(key: RecoveredKey, nodes: KeyNodeClient[], threshold: number, opts: { keyId: string; tenant?: string }): Promise<Reshared> {
  checkReshareTargets(nodes.map((c) => c.url), threshold);
  const n = nodes.length;
  const checked = await preflight(nodes);
  const frost = suite(key.curve);
  const ids = Array.from({ length: n }, (_, i) => identifierOf(key.curve, i + 1));
  const dealt = frost.trustedDealer({ min: threshold, max: n }, ids, key.secret);
  const pub: FrostPublic = { signers: { min: threshold, max: n }, commitments: dealt.public.commitments, verifyingShares: dealt.public.verifyingShares };
  const deal: Deal = { groupKey: hex(key.groupPublicKey), commitments: JSON.stringify(frostPublicToJson(key.curve, pub).commitments), tenant: opts.tenant ?? DEFAULT_TENANT };
  const taken: Taken[] = [];
  try {
    for (const [i, client] of nodes.entries()) {
      try {
        const exp = exportKeyShare({ keyId: opts.keyId, curve: key.curve, identifier: ids[i]!, share: dealt.secretShares[ids[i]!]!.signingShare, public: pub }, 'wrapped', { exportKey: new Uint8Array(32), wrappingKey: checked[i]!.wrappingKey });
        const imported = await client.importShare({ ...exp, threshold, ...(opts.tenant ? { tenant: opts.tenant } : {}) });
        taken.push({ client, keyId: imported.key_id });
        if (imported.group_public_key !== deal.groupKey) throw new LifeboatError('ers_wrong_key', `key node at ${client.url} holds the dealt share under another group key`, { safety: true });
      } catch (err) {
        // A typed 4xx is a refusal: the node stored nothing. Anything else (no answer, 5xx) leaves open
        // whether it took the share before failing: look for this dealing there.
        const refused = err instanceof LifeboatError && err.status !== undefined && err.status >= 400 && err.status < 500 && err.code !== 'ers_wrong_key';
        const suspect = refused ? undefined : client;
        if (taken.length === 0 && suspect === undefined) throw err;
        throw await rollBack(err, client.url, taken, suspect, deal);
      }
    }
  } finally {
    for (const s of Object.values(dealt.secretShares)) wipe(s.signingShare);
  }
  const ref: KeyRef = { curve: key.curve, threshold, groupPublicKey: deal.groupKey, public: frostPublicToJson(key.curve, pub), nodes: taken.map((t) => ({ url: t.client.url, keyId: t.keyId })) };
  return { ref, fingerprints: checked.map((c) => c.fingerprint) };
}

/** A share this run put on a node, by the key id the node answered. */
interface Taken {
  client: KeyNodeClient;
  keyId: string;
}

/** This run's dealing, as a node's key info shows it. */
interface Deal {
  groupKey: string;
  /** The dealt polynomial's commitments, as JSON: this run's alone (fresh random coefficients). */
  commitments: string;
  tenant: string;
}

/**
 * The key id under which `client`'s node holds a share of this very dealing, undefined when none;
 * throws the node's error when its keys cannot be listed.
 */
async function findDealt(client: KeyNodeClient, deal: Deal): Promise<string | undefined> {
  for (let after: string | undefined; ; ) {
    const page = await client.keys({ limit: 1000, tenant: deal.tenant, ...(after ? { after } : {}) });
    const hit = page.keys.find((k) => k.group_public_key === deal.groupKey && JSON.stringify((k.public as { commitments?: unknown }).commitments) === deal.commitments);
    if (hit) return hit.key_id;
    if (!page.next_after) return undefined;
    after = page.next_after;
  }
}

const why = (err: unknown): string => (err instanceof LifeboatError ? `${err.code}: ${err.message}` : String(err));
const deleteCommand = (url: string, keyId: string): string => `lifeboat key delete --node ${url} --key ${keyId}`;

/**
 * Deletes every share of `taken`, and the share of this dealing on `suspect` if it holds one; returns
 * the error to throw: `reshare_rolled_back` when nothing is left, `reshare_incomplete` naming what is.
 */
async function rollBack(err: unknown, at: string, taken: Taken[], suspect: KeyNodeClient | undefined, deal: Deal): Promise<LifeboatError> {
  const deleted: string[] = [];
  const left: string[] = [];
  const remove = async (client: KeyNodeClient, keyId: string): Promise<void> => {
    try {
      await client.deleteKey(keyId);
      deleted.push(`${client.url}#${keyId}`);
    } catch (e) {
      // Already gone is what we wanted; anything else leaves the share there.
      if (e instanceof LifeboatError && e.code === 'key_id_not_exists') deleted.push(`${client.url}#${keyId}`);
      else left.push(`${client.url}#${keyId} (${why(e)}; remove it: ${deleteCommand(client.url, keyId)})`);
    }
  };
  for (const t of taken) await remove(t.client, t.keyId);
  if (suspect && !taken.some((t) => t.client === suspect)) {
    let found: string | undefined;
    try {
      found = await findDealt(suspect, deal);
    } catch (e) {
      left.push(`${suspect.url}, not checked (${why(e)}): if \`lifeboat key list --node ${suspect.url}\` shows a key of group key ${deal.groupKey} made now, remove it: ${deleteCommand(suspect.url, 'KEY_ID')}`);
    }
    if (found !== undefined) await remove(suspect, found);
  }
  // Nothing was imported anywhere: the node's own error says it best.
  if (deleted.length === 0 && left.length === 0 && err instanceof LifeboatError) return err;
  const rolled = deleted.length ? `; deleted the shares it had imported: ${deleted.join(', ')}` : '';
  if (left.length === 0) {
    return new LifeboatError('reshare_rolled_back', `dealing stopped at ${at} (${why(err)})${rolled}; no node holds a share of this deal`, { cause: err, hint: `fix or replace ${at}, then run recover --reshare-to again` });
  }
  return new LifeboatError('reshare_incomplete', `dealing stopped at ${at} (${why(err)})${rolled}; a share of group key ${deal.groupKey} may be left: ${left.join('; ')}`, {
    cause: err,
    hint: 'remove each share named (an operator API key of that node), then run recover --reshare-to again',
  });
}
