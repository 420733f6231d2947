/**
 * The log's Merkle tree: RFC 9162 §2.1 hashing (the same as RFC 6962 §2.1) and the stored-hash layout
 * of Go's sumdb/tlog (https://research.swtch.com/tlog#storing_a_log), so that a sequencer appending
 * leaves writes every new hash exactly once, and every hash a proof or tile needs has a fixed index.
 *
 * Pure: Uint8Array in, Uint8Array out, no I/O. Hashes are read through a HashReader (a database, the
 * sequencer's memory, or tiles checked against a root: tiles.ts). docs/log-format.md, "Merkle tree,
 * tiles and proofs", is the written spec.
 */
import { createHash } from 'node:crypto';
import { InvalidInputError } from '../errors.js';

/** SHA-256: every hash in the tree is 32 bytes. */
export const HASH_SIZE = 32;

/**
 * The largest tree size the arithmetic here supports: stored-hash indexes stay below 2^53, so plain
 * numbers are exact. (A log appending a million entries a second reaches it in 140 years.)
 */
export const MAX_TREE_SIZE = 2 ** 52;

/** The root of the empty tree, MTH({}) = SHA-256() (RFC 9162 §2.1.1). */
/** SHA-256 by node's native implementation (2-3x noble's on entries; an audit hashes every byte of a log). */
function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

export const EMPTY_ROOT: Uint8Array = sha256(new Uint8Array(0));
const LEAF_PREFIX = Uint8Array.of(0x00);

/**
 * Reads stored hashes by index (storedHashIndex). Contract: returns one 32-byte hash per index, in the
 * order asked; throws (any error) when one is missing. A reader over untrusted data must check what
 * it returns (tileHashReader does) before the functions here rely on it.
 */
export interface HashReader {
  readHashes(indexes: readonly number[]): Promise<Uint8Array[]>;
}

/** Throws InvalidInputError (`invalid_input`) unless `n` is an integer in [0, max]. */
export function checkCount(name: string, n: number, max = MAX_TREE_SIZE): void {
  if (!Number.isSafeInteger(n) || n < 0 || n > max) {
    throw new InvalidInputError(`${name} must be an integer from 0 to ${max}, got ${String(n)}`);
  }
}

/** Throws InvalidInputError (`invalid_input`) unless `h` is a 32-byte Uint8Array. */
export function checkHash(name: string, h: Uint8Array): void {
  if (!(h instanceof Uint8Array) || h.length !== HASH_SIZE) {
    throw new InvalidInputError(`${name} must be a ${HASH_SIZE}-byte hash`);
  }
}

/** The leaf hash of an entry: SHA-256(0x00 || entry) (RFC 9162 §2.1.1). Throws on a non-Uint8Array. */
export function leafHash(entry: Uint8Array): Uint8Array {
  if (!(entry instanceof Uint8Array)) throw new InvalidInputError('entry must be a Uint8Array');
  return sha256(LEAF_PREFIX, entry);
}

/** An interior node: SHA-256(0x01 || left || right) (RFC 9162 §2.1.1). Throws unless both are 32 bytes. */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  checkHash('left hash', left);
  checkHash('right hash', right);
  const buf = new Uint8Array(1 + 2 * HASH_SIZE);
  buf[0] = 0x01;
  buf.set(left, 1);
  buf.set(right, 1 + HASH_SIZE);
  return sha256(buf);
}

/**
 * MTH over already-hashed leaves `hashes[lo:hi]` (RFC 9162 §2.1.1: split at the largest power of two
 * below the count). The empty range gives EMPTY_ROOT. Used for tiles and in-memory trees.
 */
export function rangeHash(hashes: readonly Uint8Array[], lo = 0, hi = hashes.length): Uint8Array {
  const n = hi - lo;
  if (n === 0) return EMPTY_ROOT;
  if (n === 1) return hashes[lo]!;
  const k = largestPowerOfTwoBelow(n);
  return nodeHash(rangeHash(hashes, lo, lo + k), rangeHash(hashes, lo + k, hi));
}

/** The root of a tree of these entries, computed in memory (MTH of RFC 9162 §2.1.1). */
export function rootOfEntries(entries: readonly Uint8Array[]): Uint8Array {
  return rangeHash(entries.map(leafHash));
}

/** The largest power of two strictly below n (n >= 2), the split point k of RFC 9162 §2.1.1. */
export function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** The number of 1 bits of a non-negative safe integer (bitwise operators are only 32-bit). */
function popcount(n: number): number {
  let c = 0;
  for (let x = n; x > 0; x = Math.floor(x / 2)) c += x % 2;
  return c;
}

/**
 * How many hashes a tree of n leaves stores: appending leaf i (0-based) stores its leaf hash, then one
 * hash for each complete subtree it completes, 1 + trailingZeros(i + 1) in all; summed, 2n - popcount(n).
 */
export function storedHashCount(n: number): number {
  checkCount('tree size', n);
  return 2 * n - popcount(n);
}

/**
 * Where the hash of the complete subtree at `level` (0 = leaves) and position `n` within that level
 * (covering leaves [n·2^level, (n+1)·2^level)) is stored. It is stored when its last leaf m is
 * appended: after the storedHashCount(m) hashes before, the leaf hash, then one per level.
 */
export function storedHashIndex(level: number, n: number): number {
  checkCount('level', level, 52);
  checkCount('subtree index', n);
  const lastLeaf = (n + 1) * 2 ** level - 1;
  checkCount('subtree end', lastLeaf + 1);
  return 2 * lastLeaf - popcount(lastLeaf) + level;
}

/** The inverse of storedHashIndex: the level and position of the hash stored at `index`. */
export function splitStoredHashIndex(index: number): { level: number; n: number } {
  checkCount('stored hash index', index, 2 * MAX_TREE_SIZE);
  // storedHashCount(m) lies in [2m - 53, 2m], so the leaf m whose hashes contain `index` is just
  // above index / 2: walk up while the next leaf's hashes still start at or before it.
  let m = Math.floor(index / 2);
  while (2 * (m + 1) - popcount(m + 1) <= index) m++;
  const level = index - (2 * m - popcount(m));
  return { level, n: Math.floor(m / 2 ** level) };
}

/**
 * The stored indexes of the complete subtrees that make up leaves [lo, hi), left to right, largest
 * first: the binary decomposition of hi - lo. `lo` must be aligned (a multiple of the largest power of
 * two <= hi - lo), which holds for every range RFC 9162's recursion produces.
 */
export function subtreeIndexes(lo: number, hi: number): number[] {
  const out: number[] = [];
  let start = lo;
  while (start < hi) {
    let size = 1;
    while (size * 2 <= hi - start) size *= 2;
    const level = Math.log2(size);
    out.push(storedHashIndex(level, start / size));
    start += size;
  }
  return out;
}

/** Folds the subtree hashes of one range, right to left, into its MTH (RFC 9162 §2.1.1). */
export function foldSubtrees(hashes: readonly Uint8Array[]): Uint8Array {
  if (hashes.length === 0) return EMPTY_ROOT;
  let h = hashes[hashes.length - 1]!;
  for (let i = hashes.length - 2; i >= 0; i--) h = nodeHash(hashes[i]!, h);
  return h;
}

/** Reads hashes and checks the reader kept its contract (count and size): a broken reader is named. */
export async function readChecked(reader: HashReader, indexes: readonly number[]): Promise<Uint8Array[]> {
  if (indexes.length === 0) return [];
  const hashes = await reader.readHashes(indexes);
  if (!Array.isArray(hashes) || hashes.length !== indexes.length) {
    throw new InvalidInputError(`hash reader returned ${String(hashes?.length)} hashes for ${indexes.length} indexes`);
  }
  hashes.forEach((h) => checkHash('stored hash', h));
  return hashes;
}

/**
 * The root of the tree of the first `size` leaves, from stored hashes (RFC 9162 §2.1.1; size 0 gives
 * EMPTY_ROOT). Throws InvalidInputError for a bad size, and whatever the reader throws.
 */
export async function treeHash(size: number, reader: HashReader): Promise<Uint8Array> {
  checkCount('tree size', size);
  if (size === 0) return EMPTY_ROOT;
  return foldSubtrees(await readChecked(reader, subtreeIndexes(0, size)));
}

/**
 * Appends leaves to a tree of `size` leaves: returns the hashes to store at indexes
 * storedHashCount(size), storedHashCount(size) + 1, ..., in that order, each written once. `reader`
 * serves the hashes already stored (indexes below storedHashCount(size)); the batch's own hashes come
 * from memory, so a sequencer appends a whole batch with one call. Throws InvalidInputError for a bad
 * size or leaf hash, and whatever the reader throws.
 */
export async function appendLeaves(size: number, leafHashes: readonly Uint8Array[], reader: HashReader): Promise<Uint8Array[]> {
  checkCount('tree size', size);
  checkCount('new tree size', size + leafHashes.length);
  leafHashes.forEach((h) => checkHash('leaf hash', h));
  if (leafHashes.length === 0) return [];
  const base = storedHashCount(size);
  // The left siblings an append needs from the old tree: the complete subtrees of its decomposition.
  const old = new Map<number, Uint8Array>();
  const olderIndexes = subtreeIndexes(0, size);
  (await readChecked(reader, olderIndexes)).forEach((h, i) => old.set(olderIndexes[i]!, h));
  const added: Uint8Array[] = [];
  const get = (index: number): Uint8Array => (index >= base ? added[index - base]! : old.get(index)!);
  for (let i = 0; i < leafHashes.length; i++) {
    const leaf = size + i;
    let h = leafHashes[i]!;
    added.push(h);
    // Leaf `leaf` completes one subtree per trailing 1 bit of its index: hash in each left sibling.
    for (let level = 0, m = leaf; m % 2 === 1; level++, m = (m - 1) / 2) {
      h = nodeHash(get(storedHashIndex(level, m - 1)), h);
      added.push(h);
    }
  }
  return added;
}

/**
 * A HashReader for a tree just grown from `oldSize` by appendLeaves: the hashes it returned (`added`)
 * come from memory, older ones from `old` in one batched read. With it a sequencer that keeps only its
 * tiles (`old` = tileHashReader over them) writes the new tiles and computes the new root.
 */
export function grownHashReader(oldSize: number, added: readonly Uint8Array[], old: HashReader): HashReader {
  const base = storedHashCount(oldSize);
  return {
    async readHashes(indexes) {
      const older = await readChecked(old, indexes.filter((i) => i < base));
      let k = 0;
      return indexes.map((i) => {
        if (i < base) return older[k++]!;
        const h = added[i - base];
        if (h === undefined) throw new InvalidInputError(`stored hash ${i} is beyond the grown tree (${base + added.length} stored)`, { code: 'index_out_of_range' });
        return h;
      });
    },
  };
}

/**
 * `reader` with every hash it returned remembered (and reads in flight shared), for many proofs against
 * one fixed tree: a sequencer answering a batch of adds reads each hash once. Hashes of a tree never
 * change, so the memo is never stale; drop it with the tree. Errors are not remembered.
 */
export function memoHashReader(reader: HashReader): HashReader {
  const memo = new Map<number, Promise<Uint8Array>>();
  return {
    readHashes(indexes) {
      const missing = [...new Set(indexes.filter((i) => !memo.has(i)))];
      if (missing.length > 0) {
        const read = reader.readHashes(missing);
        missing.forEach((index, k) => {
          const one = read.then((hs) => hs[k]!);
          memo.set(index, one);
          one.catch(() => memo.delete(index));
        });
      }
      return Promise.all(indexes.map((i) => memo.get(i)!));
    },
  };
}

/** A HashReader over stored hashes held in memory (index i at position i): tests, and a sequencer's batch. */
export function memoryHashReader(stored: readonly Uint8Array[]): HashReader {
  return {
    readHashes(indexes) {
      return Promise.resolve(
        indexes.map((i) => {
          const h = stored[i];
          if (h === undefined) throw new InvalidInputError(`stored hash ${i} is not in memory (${stored.length} stored)`);
          return h;
        }),
      );
    },
  };
}

/** Equality of two hashes (public values; the project's constant-time compare all the same). */
export { ctEqual as equalBytes } from '../util/bytes.js';
