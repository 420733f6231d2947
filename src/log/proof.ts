/**
 * Inclusion and consistency proofs of the log's Merkle tree: computed from stored hashes (merkle.ts)
 * as RFC 9162 §2.1.3.1 and §2.1.4.1 define them (the same proofs as RFC 6962 §2.1.1 and §2.1.2, and as
 * Go's sumdb/tlog ProveRecord / ProveTree compute), and verified by the algorithms of RFC 9162
 * §2.1.3.2 and §2.1.4.2. A proof is the list of its 32-byte hashes, leaf end first.
 */
import { InvalidInputError, LogVerificationError } from '../errors.js';
import {
  EMPTY_ROOT,
  HASH_SIZE,
  type HashReader,
  checkCount,
  checkHash,
  equalBytes,
  foldSubtrees,
  largestPowerOfTwoBelow,
  nodeHash,
  readChecked,
  subtreeIndexes,
} from './merkle.js';

/** Leaves [lo, hi) whose MTH is one element of a proof. */
type Range = readonly [number, number];

/** RFC 9162 §2.1.3.1 PATH(m, D[lo:hi]): the sibling subtrees from the leaf up. */
function inclusionRanges(m: number, lo: number, hi: number, out: Range[]): void {
  if (hi - lo <= 1) return;
  const k = largestPowerOfTwoBelow(hi - lo);
  if (m < lo + k) {
    inclusionRanges(m, lo, lo + k, out);
    out.push([lo + k, hi]);
  } else {
    inclusionRanges(m, lo + k, hi, out);
    out.push([lo, lo + k]);
  }
}

/** RFC 9162 §2.1.4.1 SUBPROOF(m, D[lo:hi], b), m counted from lo. */
function consistencyRanges(m: number, lo: number, hi: number, b: boolean, out: Range[]): void {
  if (m === hi - lo) {
    if (!b) out.push([lo, hi]);
    return;
  }
  const k = largestPowerOfTwoBelow(hi - lo);
  if (m <= k) {
    consistencyRanges(m, lo, lo + k, b, out);
    out.push([lo + k, hi]);
  } else {
    consistencyRanges(m - k, lo + k, hi, false, out);
    out.push([lo, lo + k]);
  }
}

/** The MTH of each range, from one batched read of the stored hashes they are made of. */
async function rangeHashes(ranges: readonly Range[], reader: HashReader): Promise<Uint8Array[]> {
  const parts = ranges.map(([lo, hi]) => subtreeIndexes(lo, hi));
  const hashes = await readChecked(reader, parts.flat());
  let at = 0;
  return parts.map((p) => {
    const h = foldSubtrees(hashes.slice(at, at + p.length));
    at += p.length;
    return h;
  });
}

/**
 * The inclusion proof of leaf `index` in the tree of the first `size` leaves (RFC 9162 §2.1.3.1).
 * Throws InvalidInputError (`index_out_of_range`) unless index < size, `invalid_input` for a bad
 * number, and whatever the reader throws.
 */
export async function proveInclusion(index: number, size: number, reader: HashReader): Promise<Uint8Array[]> {
  checkCount('leaf index', index);
  checkCount('tree size', size);
  if (index >= size) {
    throw new InvalidInputError(`leaf index ${index} is not in a tree of size ${size}`, { code: 'index_out_of_range' });
  }
  const ranges: Range[] = [];
  inclusionRanges(index, 0, size, ranges);
  return rangeHashes(ranges, reader);
}

/**
 * The consistency proof that the tree of `oldSize` leaves is a prefix of the tree of `newSize` leaves
 * (RFC 9162 §2.1.4.1); empty when oldSize is 0 or equals newSize. Throws InvalidInputError
 * (`size_order`) when oldSize > newSize, `invalid_input` for a bad number, and whatever the reader throws.
 */
export async function proveConsistency(oldSize: number, newSize: number, reader: HashReader): Promise<Uint8Array[]> {
  checkCount('old tree size', oldSize);
  checkCount('new tree size', newSize);
  if (oldSize > newSize) {
    throw new InvalidInputError(`no consistency proof from size ${oldSize} to the smaller size ${newSize}`, { code: 'size_order' });
  }
  if (oldSize === 0 || oldSize === newSize) return [];
  const ranges: Range[] = [];
  consistencyRanges(oldSize, 0, newSize, true, ranges);
  return rangeHashes(ranges, reader);
}

function fail(reason: string, message: string): never {
  throw new LogVerificationError('proof_invalid', reason, message);
}

function checkProofHashes(proof: readonly Uint8Array[], what: string): void {
  if (!Array.isArray(proof)) throw new InvalidInputError(`${what} must be a list of hashes`);
  proof.forEach((p, i) => {
    if (!(p instanceof Uint8Array) || p.length !== HASH_SIZE) fail('hash_length', `${what} element ${i} is not a ${HASH_SIZE}-byte hash`);
  });
}

const isOdd = (x: number): boolean => x % 2 === 1;
const half = (x: number): number => Math.floor(x / 2);

/**
 * Checks that `proof` proves the leaf with hash `leaf` is at `index` in the tree of `size` leaves whose
 * root is `root`: RFC 9162 §2.1.3.2, step by step. Throws LogVerificationError `proof_invalid` with
 * reason `index_out_of_range` (index >= size, so also size 0), `hash_length`, `proof_length` (too
 * many or too few hashes) or `root_mismatch`; InvalidInputError for a bad number, leaf or root.
 */
export function verifyInclusion(proof: readonly Uint8Array[], index: number, size: number, leaf: Uint8Array, root: Uint8Array): void {
  checkCount('leaf index', index);
  checkCount('tree size', size);
  checkHash('leaf hash', leaf);
  checkHash('root hash', root);
  checkProofHashes(proof, 'inclusion proof');
  // 1. the index must be inside the tree
  if (index >= size) fail('index_out_of_range', `leaf index ${index} is not in a tree of size ${size}`);
  // 2-3.
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  // 4.
  for (const p of proof) {
    if (sn === 0) fail('proof_length', `inclusion proof for leaf ${index} in size ${size} has too many hashes (${proof.length})`);
    if (isOdd(fn) || fn === sn) {
      r = nodeHash(p, r);
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  // 5.
  if (sn !== 0) fail('proof_length', `inclusion proof for leaf ${index} in size ${size} has too few hashes (${proof.length})`);
  if (!equalBytes(r, root)) fail('root_mismatch', `inclusion proof for leaf ${index} does not lead to the root of tree size ${size}`);
}

/**
 * Checks that `proof` proves the tree (`oldSize`, `oldRoot`) is a prefix of (`newSize`, `newRoot`):
 * RFC 9162 §2.1.4.2, plus the cases it leaves out. Equal sizes need equal roots and an empty proof; old
 * size 0 needs the empty tree's root and an empty proof. Throws LogVerificationError `proof_invalid`
 * with reason `size_order` (a smaller tree after a larger one), `root_mismatch` (two roots for one
 * size, or a proof that does not lead to one of the roots), `hash_length` or `proof_length`;
 * InvalidInputError for a bad number or root.
 */
export function verifyConsistency(proof: readonly Uint8Array[], oldSize: number, oldRoot: Uint8Array, newSize: number, newRoot: Uint8Array): void {
  checkCount('old tree size', oldSize);
  checkCount('new tree size', newSize);
  checkHash('old root hash', oldRoot);
  checkHash('new root hash', newRoot);
  checkProofHashes(proof, 'consistency proof');
  if (oldSize > newSize) fail('size_order', `a tree of size ${newSize} cannot extend a tree of size ${oldSize}`);
  if (oldSize === newSize || oldSize === 0) {
    if (proof.length !== 0) fail('proof_length', `a consistency proof from size ${oldSize} to ${newSize} must be empty`);
    if (oldSize === 0 && !equalBytes(oldRoot, EMPTY_ROOT)) fail('root_mismatch', 'the old root is not the root of the empty tree');
    if (oldSize === newSize && !equalBytes(oldRoot, newRoot)) fail('root_mismatch', `two different roots for tree size ${oldSize}`);
    return;
  }
  // 1.
  if (proof.length === 0) fail('proof_length', `consistency proof from size ${oldSize} to ${newSize} is empty`);
  // 2. a power-of-two old tree is itself a node of the new one: its root starts the path
  const path = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : [...proof];
  // 3-4.
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (isOdd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  // 5.
  let fr = path[0]!;
  let sr = path[0]!;
  // 6.
  for (const c of path.slice(1)) {
    if (sn === 0) fail('proof_length', `consistency proof from size ${oldSize} to ${newSize} has too many hashes (${proof.length})`);
    if (isOdd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  // 7.
  if (sn !== 0) fail('proof_length', `consistency proof from size ${oldSize} to ${newSize} has too few hashes (${proof.length})`);
  if (!equalBytes(fr, oldRoot)) fail('root_mismatch', `consistency proof from size ${oldSize} to ${newSize} does not lead to the old root`);
  if (!equalBytes(sr, newRoot)) fail('root_mismatch', `consistency proof from size ${oldSize} to ${newSize} does not lead to the new root`);
}

function isPowerOfTwo(n: number): boolean {
  let x = n;
  while (x > 1 && x % 2 === 0) x /= 2;
  return x === 1;
}
