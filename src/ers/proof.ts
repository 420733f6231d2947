/**
 * The verifiable encryption of one FROST share to an RSA key, and its check (docs/ers.md, "Proof of
 * one share"): 64 rows, each four additive shares of the signing share from a depth-2 GGM tree, each
 * encrypted with RSA-OAEP-SHA256 under a derived seed; a Fiat-Shamir challenge leaves one leaf per row
 * closed. Pure apart from node's raw RSA; the building blocks are exported for the tests' cheaters.
 */
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { LifeboatError } from '../errors.js';
import { randomBytes } from '../crypto/random.js';
import { concatBytes, ctEqual, utf8, wipe } from '../util/bytes.js';
import { decodePoint, describeIdentifier, type FrostCurve } from '../keynode/frost/index.js';
import { DEPTH, encodePartContext, type ErsPart, type ErsRow, ROWS, WIDTH } from './format.js';
import { groupOf, type Group, type Pt, reduceBE } from './group.js';
import { oaepEncryptWithSeed } from './oaep.js';
import type { ErsPublicKey } from './rsa.js';

const DS_TREE = utf8.encode('lifeboat/ers/v1/tree');
const DS_VALUE = utf8.encode('lifeboat/ers/v1/value');
const DS_OAEP = utf8.encode('lifeboat/ers/v1/oaep');
const DS_CHALLENGE = utf8.encode('lifeboat/ers/v1/challenge');

/** A GGM child: SHA256(DS || parent || bit). */
export function child(parent: Uint8Array, bit: 0 | 1): Uint8Array {
  return sha256(concatBytes(DS_TREE, parent, new Uint8Array([bit])));
}

/** The four leaves of a row's tree. */
export function rowLeaves(root: Uint8Array): Uint8Array[] {
  const l = child(root, 0);
  const r = child(root, 1);
  return [child(l, 0), child(l, 1), child(r, 0), child(r, 1)];
}

/** The co-path of leaf `closed`: its level-1 sibling node, then its sibling leaf. */
export function copathOf(root: Uint8Array, closed: number): Uint8Array[] {
  const half = closed >> 1;
  const sibling = child(root, (1 - half) as 0 | 1);
  const parent = child(root, half as 0 | 1);
  return [sibling, child(parent, ((closed & 1) ^ 1) as 0 | 1)];
}

/** The three leaves other than `closed`, by index (the closed one undefined), from its co-path. */
export function leavesFromCopath(copath: Uint8Array[], closed: number): (Uint8Array | undefined)[] {
  const out: (Uint8Array | undefined)[] = new Array(WIDTH).fill(undefined);
  const otherHalf = 1 - (closed >> 1);
  out[2 * otherHalf] = child(copath[0]!, 0);
  out[2 * otherHalf + 1] = child(copath[0]!, 1);
  out[closed ^ 1] = copath[1]!;
  return out;
}

/** A leaf's pseudorandom share value, mod q. */
export function leafValue(g: Group, leaf: Uint8Array): bigint {
  return reduceBE(sha512(concatBytes(DS_VALUE, leaf)), g.order);
}

/** A leaf's OAEP seed. */
export function leafSeed(leaf: Uint8Array): Uint8Array {
  return sha256(concatBytes(DS_OAEP, leaf));
}

/** The closed leaf of each row: two bits of the challenge per row. */
export function closedIndices(challenge: Uint8Array): number[] {
  const out: number[] = [];
  for (let j = 0; j < ROWS; j++) out.push((challenge[j >> 2]! >> (2 * (j & 3))) & 3);
  return out;
}

/** What a row contributes to the challenge: its four ciphertexts, four commitments and Δ. */
export interface RowTranscript {
  ciphertexts: Uint8Array[];
  /** The four commitments, encoded (Group.encodeAll). */
  commitments: Uint8Array[];
  delta: Uint8Array;
}

/** The Fiat-Shamir challenge over the part's context and every row. */
export function challengeOf(context: Uint8Array, rows: RowTranscript[]): Uint8Array {
  const h = sha256.create().update(DS_CHALLENGE).update(context);
  for (const row of rows) {
    for (const c of row.ciphertexts) h.update(c);
    for (const a of row.commitments) h.update(a);
    h.update(row.delta);
  }
  return h.digest();
}

/** What a prover needs: the key's public facts, the participant's share, the RSA key. */
export interface ProveInput {
  curve: FrostCurve;
  label: string;
  /** Commitment 0 of the key's public package. */
  groupKey: Uint8Array;
  identifier: string;
  /** The 32-byte signing share (secret; not wiped here). */
  share: Uint8Array;
  verifyingShare: Uint8Array;
  rsa: ErsPublicKey;
}

/**
 * Encrypts `input.share` to the RSA key with a proof (docs/ers.md). Throws LifeboatError
 * `share_mismatch` when the share is not the one behind the verifying share (nothing is encrypted),
 * InvalidInputError on malformed fields.
 */
export function provePart(input: ProveInput): ErsPart {
  const g = groupOf(input.curve);
  const X = decodePoint(input.curve, input.verifyingShare, 'verifying share') as unknown as Pt;
  decodePoint(input.curve, input.groupKey, 'group key');
  const x = g.decodeScalar(input.share, 'signing share');
  if (!g.BASE.multiply(x).equals(X)) {
    throw new LifeboatError('share_mismatch', `the share of ${describeIdentifier(input.curve, input.identifier)} does not match its verifying share`, { hint: 'the node holds a damaged share: restore it from a backup' });
  }
  const meta = { curve: input.curve, label: input.label, groupKey: input.groupKey, rsaFingerprint: input.rsa.fingerprint, identifier: input.identifier, verifyingShare: input.verifyingShare, k: input.rsa.k };
  const context = encodePartContext(meta);
  const roots: Uint8Array[] = [];
  const transcripts: RowTranscript[] = [];
  const points: Pt[] = [];
  for (let j = 0; j < ROWS; j++) {
    const root = randomBytes(32);
    roots.push(root);
    const leaves = rowLeaves(root);
    const v = leaves.map((leaf) => leafValue(g, leaf));
    const delta = (((x - v[0]! - v[1]! - v[2]! - v[3]!) % g.order) + 3n * g.order) % g.order;
    const s = [v[0]!, v[1]!, v[2]!, (v[3]! + delta) % g.order];
    const ciphertexts = s.map((si, i) => {
      const m = g.encodeScalar(si);
      const seed = leafSeed(leaves[i]!);
      try {
        return oaepEncryptWithSeed(input.rsa.key, input.rsa.k, m, seed);
      } finally {
        wipe(m, seed);
      }
    });
    const a = s.slice(0, 3).map((si) => g.mulBaseSecret(si));
    points.push(...a, X.subtract(a[0]!).subtract(a[1]!).subtract(a[2]!));
    transcripts.push({ ciphertexts, commitments: [], delta: g.encodeScalar(delta) });
    wipe(...leaves);
  }
  const encoded = g.encodeAll(points);
  transcripts.forEach((t, j) => (t.commitments = encoded.slice(WIDTH * j, WIDTH * (j + 1))));
  const challenge = challengeOf(context, transcripts);
  const closed = closedIndices(challenge);
  const rows: ErsRow[] = transcripts.map((t, j) => ({ closed: t.ciphertexts[closed[j]!]!, delta: t.delta, copath: copathOf(roots[j]!, closed[j]!) }));
  wipe(...roots);
  return { ...meta, challenge, rows };
}

/** The opened leaves of a row: each share value and OAEP seed by index (the closed one undefined). */
export function openedShares(g: Group, row: ErsRow, closed: number): { values: (bigint | undefined)[]; seeds: (Uint8Array | undefined)[] } {
  const leaves = leavesFromCopath(row.copath, closed);
  const delta = g.decodeScalar(row.delta, 'delta');
  const values = leaves.map((leaf, i) => (leaf === undefined ? undefined : (leafValue(g, leaf) + (i === WIDTH - 1 ? delta : 0n)) % g.order));
  return { values, seeds: leaves.map((leaf) => (leaf === undefined ? undefined : leafSeed(leaf))) };
}

/**
 * True when the part's proof holds for the RSA key: every opened leaf re-encrypts to what the
 * challenge committed to, and the challenge recomputes. Checks the elements too. Never throws on a
 * malformed part (false); the context fields (label, key, fingerprint) are the caller's to compare.
 */
export function verifyPartProof(part: ErsPart, rsa: ErsPublicKey): boolean {
  try {
    if (part.k !== rsa.k || !ctEqual(part.rsaFingerprint, rsa.fingerprint) || part.rows.length !== ROWS || DEPTH !== 2) return false;
    const g = groupOf(part.curve);
    const X = decodePoint(part.curve, part.verifyingShare, 'verifying share') as unknown as Pt;
    decodePoint(part.curve, part.groupKey, 'group key');
    const context = encodePartContext(part);
    const closed = closedIndices(part.challenge);
    const points: Pt[] = [];
    const transcripts: RowTranscript[] = part.rows.map((row, j) => {
      const h = closed[j]!;
      const { values, seeds } = openedShares(g, row, h);
      const ciphertexts: Uint8Array[] = [];
      const commitments: Pt[] = [];
      let sum = g.ZERO;
      for (let i = 0; i < WIDTH; i++) {
        if (i === h) {
          ciphertexts.push(row.closed);
          commitments.push(g.ZERO);
          continue;
        }
        ciphertexts.push(oaepEncryptWithSeed(rsa.key, rsa.k, g.encodeScalar(values[i]!), seeds[i]!));
        const a = g.mulBasePublic(values[i]!);
        commitments.push(a);
        sum = sum.add(a);
      }
      commitments[h] = X.subtract(sum);
      points.push(...commitments);
      return { ciphertexts, commitments: [], delta: row.delta };
    });
    const encoded = g.encodeAll(points);
    transcripts.forEach((t, j) => (t.commitments = encoded.slice(WIDTH * j, WIDTH * (j + 1))));
    return ctEqual(challengeOf(context, transcripts), part.challenge);
  } catch {
    return false;
  }
}
