/**
 * The ERS prover as first built (commit 07c448e), kept only for bench/ers.bench.ts to time against
 * in the same run: the same proof, byte for byte in its layout, with each commitment from noble's
 * `multiply` (scalar blinded by 128 bits, 49 windows of 8 bits, one normalization per result). The
 * machine is shared, so only a same-run comparison says whether the prover got faster.
 */
import { randomBytes } from 'node:crypto';
import { decodePoint } from '../src/keynode/frost/index.js';
import { encodePartContext, type ErsPart, type ErsRow, ROWS, WIDTH } from '../src/ers/format.js';
import { groupOf, type Pt } from '../src/ers/group.js';
import { oaepEncryptWithSeed } from '../src/ers/oaep.js';
import { challengeOf, closedIndices, copathOf, leafSeed, leafValue, type ProveInput, type RowTranscript, rowLeaves } from '../src/ers/proof.js';

const blindedBases = new Map<string, Pt>();

/** provePart as of 07c448e. */
export function provePartReference(input: ProveInput): ErsPart {
  const g = groupOf(input.curve);
  let base = blindedBases.get(input.curve);
  if (!base) {
    // That prover's generator: noble's point with an 8-bit window table (blinded on multiply).
    const B = g.BASE as Pt & { toAffine(): unknown; constructor: { fromAffine(a: unknown): Pt & { precompute(w: number, lazy: boolean): Pt } } };
    base = B.constructor.fromAffine(B.toAffine()).precompute(8, true);
    blindedBases.set(input.curve, base);
  }
  const X = decodePoint(input.curve, input.verifyingShare, 'verifying share') as unknown as Pt;
  const x = g.decodeScalar(input.share, 'signing share');
  if (!base.multiply(x).equals(X)) throw new Error('share mismatch');
  const meta = { curve: input.curve, label: input.label, groupKey: input.groupKey, rsaFingerprint: input.rsa.fingerprint, identifier: input.identifier, verifyingShare: input.verifyingShare, k: input.rsa.k };
  const context = encodePartContext(meta);
  const roots: Uint8Array[] = [];
  const transcripts: RowTranscript[] = [];
  const points: Pt[] = [];
  for (let j = 0; j < ROWS; j++) {
    const root = new Uint8Array(randomBytes(32));
    roots.push(root);
    const leaves = rowLeaves(root);
    const v = leaves.map((leaf) => leafValue(g, leaf));
    const delta = (((x - v[0]! - v[1]! - v[2]! - v[3]!) % g.order) + 3n * g.order) % g.order;
    const s = [v[0]!, v[1]!, v[2]!, (v[3]! + delta) % g.order];
    const ciphertexts = s.map((si, i) => oaepEncryptWithSeed(input.rsa.key, input.rsa.k, g.encodeScalar(si), leafSeed(leaves[i]!)));
    const a = s.slice(0, 3).map((si) => base.multiply(si));
    points.push(...a, X.subtract(a[0]!).subtract(a[1]!).subtract(a[2]!));
    transcripts.push({ ciphertexts, commitments: [], delta: g.encodeScalar(delta) });
  }
  const encoded = g.encodeAll(points);
  transcripts.forEach((t, j) => (t.commitments = encoded.slice(WIDTH * j, WIDTH * (j + 1))));
  const challenge = challengeOf(context, transcripts);
  const closed = closedIndices(challenge);
  const rows: ErsRow[] = transcripts.map((t, j) => ({ closed: t.ciphertexts[closed[j]!]!, delta: t.delta, copath: copathOf(roots[j]!, closed[j]!) }));
  return { ...meta, challenge, rows };
}
