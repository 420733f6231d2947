/**
 * Signing with any t of a key's nodes (what `lifeboat sign` does): the first t in order are asked;
 * a node that lacks the key, is down, or refuses is set aside with its error, and the next one takes
 * its place, until t sign or fewer than t are left. docs/keynode.md, "Signing with any t nodes".
 *
 * Nonces (RFC 9591 section 5; docs/keynode.md, "Signing and nonces"): a nonce is used by round two
 * once, with the one commitment list of that round. A round-one answer that no round two has seen yet
 * is an unused nonce, and may join the next set's list. Once round two was sent with a list, every
 * nonce of that list is spent (the node deleted it, or will refuse it): a round that fails there
 * starts again from round one on every signer of the new set, never with a commitment sent before.
 */
import { LifeboatError, isLifeboatError } from '../errors.js';
import type { KeyNodeClient } from './client.js';
import { aggregate, frostPublicFromJson, type FrostCurve, type FrostPublic, groupPublicKey, parseNonceCommitments, parseSignatureShare, SignatureShareError } from './frost/index.js';
import { hex } from './frost/suite.js';
import { describeKey, keyRefMismatch } from './keyref.js';

/** One node to sign with: its client, its own id for the key, and the fingerprint it must have (pinned). */
export interface SignerNode {
  client: KeyNodeClient;
  keyId: string;
  fingerprint?: string;
}

/** Why one node did not sign: its URL and the typed error it gave (or that checking it gave). */
export interface SignFailure {
  url: string;
  err_type: string;
  message: string;
  hint: string | null;
  safety: boolean;
}

/** What the reference says the key is; a node that reports otherwise is set aside (`key_ref_mismatch`). */
export interface ExpectedKey {
  curve: FrostCurve;
  threshold: number;
  groupPublicKey: string;
}

export interface SignedWithAny {
  signature: Uint8Array;
  curve: FrostCurve;
  threshold: number;
  groupPublicKey: string;
  /** URLs of the t nodes whose shares make the signature. */
  signers: string[];
  /** Nodes set aside on the way, in the order they failed. */
  failures: SignFailure[];
}

/**
 * Fewer than t of the nodes could sign. `failures` names each node that failed and why. The code is
 * the nodes' own when they all failed with one err_type (e.g. `key_id_not_exists`, `key_pending_backup`,
 * `message_too_large`), else `insufficient_signers`; a refusal for safety among them makes it one.
 */
export class SigningFailedError extends LifeboatError {
  readonly failures: SignFailure[];

  constructor(failures: SignFailure[], needed: number | undefined, total: number) {
    const codes = new Set(failures.map((f) => f.err_type));
    const single = codes.size === 1 ? failures[0]! : undefined;
    const could = total - failures.length;
    const list = failures.map((f) => (single ? f.message : `${f.message} (${f.err_type})`)).join('; ');
    super(single ? single.err_type : 'insufficient_signers', `${could} of ${total} nodes could sign${needed === undefined ? '' : `, ${needed} needed`}: ${list}`, {
      status: 503,
      hint: single?.hint ?? 'bring the named nodes back, or name other nodes that hold the key (--nodes URL#KEY_ID, or the key reference file)',
      safety: failures.some((f) => f.safety),
    });
    this.failures = failures;
  }

  /** Extra fields of the CLI's `--json` failure document (docs/cli.md). */
  failureDetails(): Record<string, unknown> {
    return { failures: this.failures.map(({ url, err_type, message, hint }) => ({ url, err_type, message, hint })) };
  }
}

function failureOf(url: string, err: unknown): SignFailure {
  if (!(err instanceof LifeboatError)) throw err;
  return { url, err_type: err.code, message: err.message, hint: err.hint ?? null, safety: err.safety };
}

interface Facts {
  curve: FrostCurve;
  threshold: number;
  groupPublicKey: string;
  pub: FrostPublic;
}

/** The key's public package from one node, checked against itself and against `expect` when given. */
async function factsFrom(node: SignerNode, expect: ExpectedKey | undefined): Promise<Facts> {
  if (node.fingerprint !== undefined) {
    const id = await node.client.identity();
    if (id.fingerprint !== node.fingerprint) {
      throw new LifeboatError('peer_identity_mismatch', `key node at ${node.client.url} has fingerprint ${id.fingerprint}, not the pinned ${node.fingerprint}`, { hint: 'another node answers at that URL: check it before signing with it' });
    }
  }
  const info = await node.client.key(node.keyId);
  const { curve, public: pub } = frostPublicFromJson(info.public);
  const derived = hex(groupPublicKey(curve, pub.commitments[0]!));
  if (derived !== info.group_public_key || curve !== info.curve || pub.signers.min !== info.threshold) throw keyRefMismatch(`key node at ${node.client.url} answered a public package that is not its key ${node.keyId}'s`);
  if (expect && (curve !== expect.curve || info.threshold !== expect.threshold || derived !== expect.groupPublicKey)) {
    throw keyRefMismatch(`key node at ${node.client.url} holds ${node.keyId} as ${describeKey(curve, info.threshold, derived)}, the key reference says ${describeKey(expect.curve, expect.threshold, expect.groupPublicKey)}`);
  }
  return { curve, threshold: info.threshold, groupPublicKey: derived, pub };
}

/**
 * Signs `message` with the first t of `nodes` that can. `expect` pins the key (from a key reference):
 * without it the first node that answers says what the key is, and the aggregate is checked under
 * that group key. `onFailure` hears of each node set aside. Returns the signature and who made it.
 * Throws SigningFailedError when fewer than t can sign; non-Lifeboat errors (bugs) as they are.
 */
export async function signWithAny(nodes: SignerNode[], message: Uint8Array, opts: { expect?: ExpectedKey; onFailure?: (f: SignFailure) => void } = {}): Promise<SignedWithAny> {
  const failures: SignFailure[] = [];
  const out = new Set<number>();
  const fail = (i: number, err: unknown): void => {
    const f = failureOf(nodes[i]!.client.url, err);
    failures.push(f);
    out.add(i);
    opts.onFailure?.(f);
  };
  const checked = new Set<number>();
  let facts: Facts | undefined;
  // The key's facts: from the first node that answers for it (each node is checked before it signs).
  for (let i = 0; i < nodes.length && !facts; i++) {
    try {
      facts = await factsFrom(nodes[i]!, opts.expect);
      checked.add(i);
    } catch (err) {
      fail(i, err);
    }
  }
  if (!facts) throw new SigningFailedError(failures, opts.expect?.threshold, nodes.length);
  const t = facts.threshold;
  const unused = new Map<number, { nonceId: string; commitments: unknown; identifier: string }>();
  for (;;) {
    const set = nodes.map((_, i) => i).filter((i) => !out.has(i)).slice(0, t);
    if (set.length < t) throw new SigningFailedError(failures, t, nodes.length);
    // A pinned node is checked once before its first round; so is every node when the key is pinned.
    const unchecked = set.filter((i) => !checked.has(i) && (opts.expect || nodes[i]!.fingerprint !== undefined));
    const checks = await Promise.allSettled(unchecked.map((i) => factsFrom(nodes[i]!, facts)));
    checks.forEach((r, k) => (r.status === 'fulfilled' ? checked.add(unchecked[k]!) : fail(unchecked[k]!, r.reason)));
    if (checks.some((r) => r.status === 'rejected')) continue;
    // Round one, for the signers without an unused commitment.
    const asking = set.filter((i) => !unused.has(i));
    const round1 = await Promise.allSettled(asking.map((i) => nodes[i]!.client.commitments(nodes[i]!.keyId, { messageLength: message.length })));
    round1.forEach((r, k) => {
      const i = asking[k]!;
      if (r.status === 'rejected') return fail(i, r.reason);
      try {
        const c = parseNonceCommitments(r.value.commitments, facts.curve, { decode: false });
        if (!facts.pub.verifyingShares[c.identifier]) throw keyRefMismatch(`key node at ${nodes[i]!.client.url} signs as a participant the key does not have`);
        unused.set(i, { nonceId: r.value.nonce_id, commitments: r.value.commitments, identifier: c.identifier });
      } catch (err) {
        fail(i, err);
      }
    });
    if (round1.some((r) => r.status === 'rejected') || set.some((i) => out.has(i))) continue;
    // Two nodes with one identifier (a primary and its fail-over copy): the later one steps aside; its commitment stays unused.
    const dup = set.find((i, k) => set.slice(0, k).some((j) => unused.get(j)!.identifier === unused.get(i)!.identifier));
    if (dup !== undefined) {
      fail(dup, new LifeboatError('duplicate_signer', `key node at ${nodes[dup]!.client.url} holds the same share as another node of this signing`, { hint: 'a primary and its fail-over: name one of them' }));
      continue;
    }
    // Round two: from here every nonce of the list is spent, whatever happens.
    const round = set.map((i) => ({ i, ...unused.get(i)! }));
    for (const i of set) unused.delete(i);
    const list = round.map((r) => r.commitments);
    const round2 = await Promise.allSettled(round.map((r) => nodes[r.i]!.client.signatureShare(nodes[r.i]!.keyId, { nonce_id: r.nonceId, message, commitments: list })));
    round2.forEach((r, k) => r.status === 'rejected' && fail(round[k]!.i, r.reason));
    if (round2.some((r) => r.status === 'rejected')) continue;
    try {
      const shares = round2.map((r, k) => {
        try {
          return parseSignatureShare((r as PromiseFulfilledResult<{ signature_share: unknown }>).value.signature_share, facts.curve);
        } catch (err) {
          throw new SignatureShareError([round[k]!.identifier], `key node at ${nodes[round[k]!.i]!.client.url} answered a malformed signature share: ${(err as Error).message}`);
        }
      });
      // aggregate checks every element and verifies the result under the group key (RFC 9591 5.3).
      const signature = aggregate(facts.curve, facts.pub, list.map((c) => parseNonceCommitments(c, facts.curve, { decode: false })), message, shares);
      return { signature, curve: facts.curve, threshold: t, groupPublicKey: facts.groupPublicKey, signers: round.map((r) => nodes[r.i]!.client.url), failures };
    } catch (err) {
      if (!isLifeboatError(err, 'invalid_signature_share')) throw err;
      const bad = (err as SignatureShareError).participants;
      const blamed = round.filter((r) => bad.includes(r.identifier));
      if (blamed.length === 0) throw err;
      for (const r of blamed) fail(r.i, new SignatureShareError([r.identifier], `key node at ${nodes[r.i]!.client.url} gave a signature share that does not verify`));
    }
  }
}
