/**
 * The client SDK: coordinates a FROST DKG among key nodes (relaying only: round-2 packages are sealed
 * node to node), signs with any t of them, and recovers by itself when a node lost its share.
 */
import { InvalidInputError, LifeboatError, isLifeboatError } from '../errors.js';
import { randomBytes } from '../crypto/random.js';
import { toB64u } from '../util/bytes.js';
import { aggregate, frostPublicFromJson, type FrostPublic, parseNonceCommitments, parseSignatureShare, type FrostCurve } from './frost/index.js';
import type { KeyNodeClient } from './client.js';
import type { KeyShareExport } from './export.js';
import { type KeyInfo, newKeyId } from './service.js';
import { identifierOf } from './frost/suite.js';
import type { ErsPolicy } from './store/types.js';

/** A key as a client knows it: its group key, public package, and its id on each node (ids differ after an import). */
export interface KeyRef {
  curve: FrostCurve;
  threshold: number;
  groupPublicKey: string;
  public: unknown;
  /** `fingerprint`: the node's identity fingerprint when known (createKey records it; a key reference pins it). */
  nodes: { url: string; keyId: string; fingerprint?: string }[];
}

/**
 * Runs a DKG among `nodes` (n ≥ threshold ≥ 2). Every node checks every package; a cheating participant
 * aborts the DKG on the honest nodes with an error naming it. `onFinished` gets what each node answered
 * (its `status`: `active`, or `pending_backup` until its backup is acknowledged). `ersPolicy` is the
 * key's own ERS policy, sent to every node (absent: each node's settings decide; docs/ers.md). Throws
 * the first node error (e.g. `ers_disabled` from a node that cannot honour the policy).
 */
export async function createKey(nodes: KeyNodeClient[], opts: { threshold: number; curve: FrostCurve; keyId?: string; ersPolicy?: ErsPolicy; onFinished?: (infos: KeyInfo[]) => void }): Promise<KeyRef> {
  if (nodes.length < 2 || opts.threshold < 2 || opts.threshold > nodes.length) throw new InvalidInputError(`threshold must be 2..${nodes.length} for ${nodes.length} nodes`);
  const keyId = opts.keyId ?? newKeyId();
  const sessionId = toB64u(randomBytes(16));
  const identities = await Promise.all(nodes.map((n) => n.identity()));
  const participants = identities.map((i) => i.identity);
  const round1 = (await Promise.all(nodes.map((n) => n.dkgStart(sessionId, { key_id: keyId, curve: opts.curve, threshold: opts.threshold, participants, ...(opts.ersPolicy ? { ers_policy: opts.ersPolicy } : {}) })))).map((r) => r.round1);
  const round2 = (await Promise.all(nodes.map((n) => n.dkgRound2(sessionId, round1)))).flatMap((r) => r.round2);
  const ids = (await Promise.all(nodes.map((n) => n.identity()))).map((i) => i.identity);
  const finished = await Promise.all(
    nodes.map((n, i) => n.dkgFinish(sessionId, round2.filter((m) => recipientIs(m, ids[i]!, participants, opts.curve)))),
  );
  opts.onFinished?.(finished);
  const groupKeys = new Set(finished.map((f) => f.group_public_key));
  if (groupKeys.size !== 1) throw new LifeboatError('dkg_inconsistent', 'the nodes derived different group keys');
  return { curve: opts.curve, threshold: opts.threshold, groupPublicKey: finished[0]!.group_public_key, public: finished[0]!.public, nodes: nodes.map((n, i) => ({ url: n.url, keyId, fingerprint: identities[i]!.fingerprint })) };
}

// Round-2 messages name their recipient by FROST identifier; participants are numbered in order.
function recipientIs(m: { recipient: string }, identity: string, participants: string[], curve: FrostCurve): boolean {
  const index = participants.indexOf(identity);
  return identifierFor(curve, index) === m.recipient;
}

function identifierFor(curve: FrostCurve, index: number): string {
  return identifierOf(curve, index + 1);
}

/**
 * Signs `message` with the first `threshold` nodes of `nodes` (clients of the key's nodes, same order
 * as key.nodes). Returns a signature plain ed25519 / BIP-340 verifiers accept. Throws the nodes' typed
 * errors (`key_id_not_exists`, `nonce_not_found`, …) and `invalid_signature_share` naming a bad signer.
 */
export async function sign(key: KeyRef, nodes: KeyNodeClient[], message: Uint8Array, opts: { signers?: number[] } = {}): Promise<Uint8Array> {
  const chosen = (opts.signers ?? [...Array(key.threshold).keys()]).map((i) => ({ client: nodes[i]!, keyId: key.nodes[i]!.keyId }));
  if (chosen.length < key.threshold || chosen.some((c) => !c.client)) throw new InvalidInputError(`need ${key.threshold} signers`);
  // The message's length goes with round one, so a node whose limit it exceeds refuses before drawing a nonce.
  const round1 = await Promise.all(chosen.map((c) => c.client.commitments(c.keyId, { messageLength: message.length })));
  const commitments = round1.map((r) => r.commitments);
  const shares = await Promise.all(chosen.map((c, i) => c.client.signatureShare(c.keyId, { nonce_id: round1[i]!.nonce_id, message, commitments })));
  const pub = checkedPublic(key);
  // aggregate validates every element and verifies the result under the group key before returning
  // (noble's aggregate, RFC 9591 5.3); a bad share is named there. No second verification here.
  return aggregate(
    key.curve,
    pub,
    commitments.map((c) => parseNonceCommitments(c, key.curve, { decode: false })),
    message,
    shares.map((s) => parseSignatureShare(s.signature_share, key.curve)),
  );
}

/** Public packages checked in full, by curve and JSON text: a key's is checked once per process, not per signature. */
const checkedPublics = new Map<string, FrostPublic>();
const CHECKED_PUBLICS_MAX = 1024;

/**
 * The key's public package, checked in full (frostPublicFromJson: every element, every verifying share
 * against the commitments) the first time this process sees these very bytes; a KeyRef changed in
 * place is looked up by its new content. Throws what frostPublicFromJson throws.
 */
function checkedPublic(key: KeyRef): FrostPublic {
  const id = `${key.curve}\n${JSON.stringify(key.public)}`;
  let pub = checkedPublics.get(id);
  if (pub === undefined) {
    pub = frostPublicFromJson(key.public, { curve: key.curve }).public;
    if (checkedPublics.size >= CHECKED_PUBLICS_MAX) checkedPublics.delete(checkedPublics.keys().next().value!);
    checkedPublics.set(id, pub);
  }
  return pub;
}

/** Saves, per node, the node-bound encrypted export of the key's share (what self-recovery imports). */
export async function saveExports(key: KeyRef, nodes: KeyNodeClient[]): Promise<KeyShareExport[]> {
  return Promise.all(key.nodes.map((n, i) => nodes[i]!.exportShare(n.keyId, 'encrypted')));
}

/**
 * Signs; when a node answers `key_id_not_exists` (it lost its database), imports that node's saved
 * export, records the new key id in `key`, and signs again under the same group key.
 */
export async function signWithRecovery(key: KeyRef, nodes: KeyNodeClient[], message: Uint8Array, saved: KeyShareExport[], opts: { signers?: number[]; onRecover?: (url: string, newKeyId: string) => void } = {}): Promise<Uint8Array> {
  try {
    return await sign(key, nodes, message, opts);
  } catch (err) {
    if (!isLifeboatError(err, 'key_id_not_exists')) throw err;
  }
  const indices = opts.signers ?? [...Array(key.threshold).keys()];
  for (const i of indices) {
    try {
      await nodes[i]!.key(key.nodes[i]!.keyId);
    } catch (err) {
      if (!isLifeboatError(err, 'key_id_not_exists')) throw err;
      const exp = saved[i];
      if (!exp) throw new LifeboatError('key_id_not_exists', `${nodes[i]!.url} lost key ${key.nodes[i]!.keyId} and no export of it was saved`, { status: 404, hint: 'sign with other nodes, or import a backup of that node' });
      const imported = await nodes[i]!.importShare({ ...exp, threshold: key.threshold });
      if (imported.group_public_key !== key.groupPublicKey) throw new LifeboatError('share_mismatch', `the saved export for ${nodes[i]!.url} belongs to another key`);
      key.nodes[i] = { ...key.nodes[i]!, keyId: imported.key_id };
      opts.onRecover?.(nodes[i]!.url, imported.key_id);
    }
  }
  return sign(key, nodes, message, opts);
}
