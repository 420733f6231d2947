/**
 * The log's Merkle tree (src/log/merkle.ts, proof.ts): RFC 6962 known answers from the
 * certificate-transparency reference tree, the stored-hash layout, negative cases for every proof
 * element, and properties over random trees (heavier with SLOW=1).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InvalidInputError, LogVerificationError, isLifeboatError } from '../src/errors.js';
import {
  EMPTY_ROOT,
  appendLeaves,
  leafHash,
  memoryHashReader,
  nodeHash,
  rootOfEntries,
  splitStoredHashIndex,
  storedHashCount,
  storedHashIndex,
  treeHash,
} from '../src/log/merkle.js';
import { proveConsistency, proveInclusion, verifyConsistency, verifyInclusion } from '../src/log/proof.js';

const SLOW = process.env.SLOW === '1';
const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

interface Vectors {
  leaves: string[];
  node_hashes_by_level: string[][];
  roots_by_size: string[];
  inclusion: { index: number; size: number; proof: string[] }[];
  consistency: { old_size: number; new_size: number; proof: string[] }[];
}
const V = JSON.parse(readFileSync(new URL('./data/log-merkle-vectors.json', import.meta.url), 'utf8')) as Vectors;
const leaves = V.leaves.map(hex);
const roots = V.roots_by_size.map(hex);

/** Stored hashes of a tree of these entries, appended in batches of `batch`. */
async function build(entries: readonly Uint8Array[], batch = 1): Promise<Uint8Array[]> {
  const stored: Uint8Array[] = [];
  for (let size = 0; size < entries.length; size += batch) {
    const add = entries.slice(size, size + batch).map(leafHash);
    assert.equal(stored.length, storedHashCount(size));
    stored.push(...(await appendLeaves(size, add, memoryHashReader(stored))));
  }
  return stored;
}

/** Refused with this error class, code and reason. */
function refused(code: string, reason?: string) {
  return (err: unknown): boolean => {
    assert.ok(isLifeboatError(err, code), `expected ${code}, got ${String(err)}`);
    if (reason !== undefined) assert.equal((err as LogVerificationError).reason, reason, (err as Error).message);
    return true;
  };
}

const flip = (b: Uint8Array, at = 0, bit = 8): Uint8Array => {
  const c = b.slice();
  c[at % c.length]! ^= bit;
  return c;
};

describe('RFC 6962 hashing: known answers', () => {
  it('leaf and node hashes of the reference tree, its root at every size 0..8 (size 0 is SHA-256 of nothing)', async () => {
    assert.deepEqual(leaves.map((l) => toHex(leafHash(l))), V.node_hashes_by_level[0]);
    const l1 = V.node_hashes_by_level[1]!;
    for (let i = 0; i < l1.length; i++) assert.equal(toHex(nodeHash(hex(V.node_hashes_by_level[0]![2 * i]!), hex(V.node_hashes_by_level[0]![2 * i + 1]!))), l1[i]);
    assert.equal(toHex(EMPTY_ROOT), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    const stored = await build(leaves);
    for (let size = 0; size <= 8; size++) {
      assert.equal(toHex(rootOfEntries(leaves.slice(0, size))), V.roots_by_size[size], `in-memory root of size ${size}`);
      assert.equal(toHex(await treeHash(size, memoryHashReader(stored))), V.roots_by_size[size], `stored-hash root of size ${size}`);
    }
  });

  it('every complete subtree hash sits at its stored-hash index', async () => {
    const stored = await build(leaves, 3);
    assert.equal(stored.length, storedHashCount(8));
    V.node_hashes_by_level.forEach((level, l) => level.forEach((h, n) => assert.equal(toHex(stored[storedHashIndex(l, n)]!), h, `level ${l} n ${n}`)));
  });

  it('inclusion proofs: computed ones equal the vectors, and verify', async () => {
    const stored = await build(leaves);
    for (const v of V.inclusion) {
      const proof = await proveInclusion(v.index, v.size, memoryHashReader(stored));
      assert.deepEqual(proof.map(toHex), v.proof, `leaf ${v.index} in ${v.size}`);
      verifyInclusion(v.proof.map(hex), v.index, v.size, leafHash(leaves[v.index]!), roots[v.size]!);
    }
  });

  it('consistency proofs: computed ones equal the vectors, and verify', async () => {
    const stored = await build(leaves);
    for (const v of V.consistency) {
      const proof = await proveConsistency(v.old_size, v.new_size, memoryHashReader(stored));
      assert.deepEqual(proof.map(toHex), v.proof, `${v.old_size} to ${v.new_size}`);
      verifyConsistency(v.proof.map(hex), v.old_size, roots[v.old_size]!, v.new_size, roots[v.new_size]!);
    }
  });
});

describe('stored-hash layout', () => {
  it('the first indexes are those of Go sumdb/tlog, and split inverts index for every hash of a 5000-leaf tree', () => {
    // leaf 0; leaf 1, node(0,1); leaf 2; leaf 3, node(2,3), node(0..3)
    const first = [[0, 0], [0, 1], [1, 0], [0, 2], [0, 3], [1, 1], [2, 0], [0, 4]] as const;
    first.forEach(([level, n], i) => assert.equal(storedHashIndex(level, n), i));
    assert.deepEqual([0, 1, 2, 3, 4, 5, 8, 256].map(storedHashCount), [0, 1, 3, 4, 7, 8, 15, 511]);
    for (let i = 0; i < storedHashCount(5000); i++) {
      const { level, n } = splitStoredHashIndex(i);
      assert.equal(storedHashIndex(level, n), i);
    }
  });

  it('stays exact near the largest supported tree (2^52 leaves)', () => {
    for (const n of [2 ** 52 - 1, 2 ** 51 + 12345, 2 ** 40 - 1]) {
      const i = storedHashIndex(0, n);
      assert.ok(Number.isSafeInteger(i));
      assert.deepEqual(splitStoredHashIndex(i), { level: 0, n });
      assert.deepEqual(splitStoredHashIndex(storedHashIndex(7, Math.floor(n / 128))), { level: 7, n: Math.floor(n / 128) });
    }
    assert.throws(() => storedHashCount(2 ** 52 + 1), InvalidInputError);
  });

  it('refuses bad numbers with invalid_input', async () => {
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 53]) {
      assert.throws(() => storedHashCount(bad), refused('invalid_input'));
      assert.throws(() => splitStoredHashIndex(bad), refused('invalid_input'));
      await assert.rejects(treeHash(bad, memoryHashReader([])), refused('invalid_input'));
    }
    await assert.rejects(appendLeaves(0, [new Uint8Array(31)], memoryHashReader([])), refused('invalid_input'));
    assert.throws(() => nodeHash(new Uint8Array(32), new Uint8Array(33)), refused('invalid_input'));
  });
});

describe('proofs: negative cases', () => {
  const someHash = hex('abacaba000000000000000000000000000000000000000000060061e00123456');

  it('an inclusion proof is refused for each tampered element, wrong index, wrong size, leaf or root, and extra or missing hashes', () => {
    for (const v of V.inclusion) {
      const proof = v.proof.map(hex);
      const leaf = leafHash(leaves[v.index]!);
      const root = roots[v.size]!;
      const bad: [string, () => void][] = [
        ['index + 1', () => verifyInclusion(proof, v.index + 1, v.size, leaf, root)],
        ['index ^ 2', () => verifyInclusion(proof, v.index ^ 2, v.size, leaf, root)],
        ['size * 2', () => verifyInclusion(proof, v.index, v.size * 2, leaf, root)],
        ['wrong leaf', () => verifyInclusion(proof, v.index, v.size, flip(leaf), root)],
        ['empty root', () => verifyInclusion(proof, v.index, v.size, leaf, EMPTY_ROOT)],
        ['other root', () => verifyInclusion(proof, v.index, v.size, leaf, someHash)],
        ['trailing root', () => verifyInclusion([...proof, root], v.index, v.size, leaf, root)],
        ['preceding root', () => verifyInclusion([root, ...proof], v.index, v.size, leaf, root)],
        ...proof.map((_, i): [string, () => void] => [`flipped proof[${i}]`, () => verifyInclusion(proof.map((p, j) => (j === i ? flip(p) : p)), v.index, v.size, leaf, root)]),
        ...(proof.length > 0 ? [['removed last', () => verifyInclusion(proof.slice(0, -1), v.index, v.size, leaf, root)] as [string, () => void]] : []),
        ...(proof.length > 1 ? [['inserted', () => verifyInclusion([proof[0]!, someHash, ...proof.slice(1)], v.index, v.size, leaf, root)] as [string, () => void]] : []),
      ];
      if (v.index > 0) bad.push(['index - 1', () => verifyInclusion(proof, v.index - 1, v.size, leaf, root)]);
      if (v.size > 1) bad.push(['size / 2', () => verifyInclusion(proof, v.index, Math.floor(v.size / 2), leaf, root)]);
      for (const [what, f] of bad) assert.throws(f, refused('proof_invalid'), `leaf ${v.index} in ${v.size}: ${what}`);
    }
  });

  it('names the reason: index_out_of_range (index >= size, size 0), proof_length, hash_length, root_mismatch', () => {
    const leaf = leafHash(leaves[0]!);
    assert.throws(() => verifyInclusion([], 0, 0, leaf, EMPTY_ROOT), refused('proof_invalid', 'index_out_of_range'));
    assert.throws(
      () => verifyInclusion([], 8, 8, leaf, roots[8]!),
      (err: unknown) => {
        const json = (err as LogVerificationError).toJSON();
        assert.deepEqual([json.err_type, json.reason], ['proof_invalid', 'index_out_of_range']);
        return /leaf index 8 is not in a tree of size 8/.test(json.message);
      },
    );
    assert.throws(() => verifyInclusion([], 8, 8, leaf, roots[8]!), refused('proof_invalid', 'index_out_of_range'));
    assert.throws(() => verifyInclusion([someHash], 0, 1, leaf, roots[1]!), refused('proof_invalid', 'proof_length'));
    assert.throws(() => verifyInclusion([], 0, 8, leaf, roots[8]!), refused('proof_invalid', 'proof_length'));
    assert.throws(() => verifyInclusion([new Uint8Array(31)], 0, 2, leaf, roots[2]!), refused('proof_invalid', 'hash_length'));
    assert.throws(() => verifyInclusion([someHash], 0, 2, leaf, roots[2]!), refused('proof_invalid', 'root_mismatch'));
    assert.throws(() => verifyInclusion([], -1, 2, leaf, roots[2]!), InvalidInputError);
    assert.throws(() => verifyInclusion([], 0, 1, leaf, new Uint8Array(31)), InvalidInputError);
  });

  it('a consistency proof is refused for each tampered element, wrong sizes, swapped roots, and extra or missing hashes', () => {
    for (const v of V.consistency.filter((c) => c.proof.length > 0)) {
      const proof = v.proof.map(hex);
      const [r1, r2] = [roots[v.old_size]!, roots[v.new_size]!];
      const check = (p: Uint8Array[], s1: number, a: Uint8Array, s2: number, b: Uint8Array) => () => verifyConsistency(p, s1, a, s2, b);
      const bad: [string, () => void][] = [
        ['old size - 1', check(proof, v.old_size - 1, r1, v.new_size, r2)],
        ['old size + 1', check(proof, v.old_size + 1, r1, v.new_size, r2)],
        ['old size ^ 2', check(proof, v.old_size ^ 2, r1, v.new_size, r2)],
        ['new size * 2', check(proof, v.old_size, r1, v.new_size * 2, r2)],
        ['new size / 2', check(proof, v.old_size, r1, Math.floor(v.new_size / 2), r2)],
        ['wrong old root', check(proof, v.old_size, flip(r1), v.new_size, r2)],
        ['wrong new root', check(proof, v.old_size, r1, v.new_size, flip(r2))],
        ['swapped roots', check(proof, v.old_size, r2, v.new_size, r1)],
        ['empty proof', check([], v.old_size, r1, v.new_size, r2)],
        ['trailing old root', check([...proof, r1], v.old_size, r1, v.new_size, r2)],
        ['trailing new root', check([...proof, r2], v.old_size, r1, v.new_size, r2)],
        ['preceding new root', check([r2, ...proof], v.old_size, r1, v.new_size, r2)],
        ['preceding proof[0]', check([proof[0]!, ...proof], v.old_size, r1, v.new_size, r2)],
        ['truncated', check(proof.slice(0, -1), v.old_size, r1, v.new_size, r2)],
        ...proof.map((_, i): [string, () => void] => [`flipped proof[${i}]`, check(proof.map((p, j) => (j === i ? flip(p, 0, 16) : p)), v.old_size, r1, v.new_size, r2)]),
      ];
      for (const [what, f] of bad) assert.throws(f, refused('proof_invalid'), `${v.old_size} to ${v.new_size}: ${what}`);
    }
  });

  it('a fork is named: two roots for one size (root_mismatch), a smaller tree after a larger (size_order), size 0 rules', () => {
    assert.throws(() => verifyConsistency([], 5, roots[5]!, 5, roots[6]!), refused('proof_invalid', 'root_mismatch'));
    assert.throws(() => verifyConsistency([], 6, roots[6]!, 5, roots[5]!), refused('proof_invalid', 'size_order'));
    assert.throws(() => verifyConsistency([someHash], 0, EMPTY_ROOT, 5, roots[5]!), refused('proof_invalid', 'proof_length'));
    assert.throws(() => verifyConsistency([], 0, someHash, 5, roots[5]!), refused('proof_invalid', 'root_mismatch'));
    assert.throws(() => verifyConsistency([someHash], 3, roots[3]!, 3, roots[3]!), refused('proof_invalid', 'proof_length'));
    verifyConsistency([], 0, EMPTY_ROOT, 5, roots[5]!);
    verifyConsistency([], 7, roots[7]!, 7, roots[7]!);
  });

  it('the provers refuse an index outside the tree and a shrinking tree', async () => {
    const stored = await build(leaves);
    await assert.rejects(proveInclusion(8, 8, memoryHashReader(stored)), refused('index_out_of_range'));
    await assert.rejects(proveInclusion(0, 0, memoryHashReader(stored)), refused('index_out_of_range'));
    await assert.rejects(proveConsistency(6, 5, memoryHashReader(stored)), refused('size_order'));
    await assert.rejects(proveInclusion(0, 9, memoryHashReader(stored)), InvalidInputError); // hashes not stored
  });
});

describe('proofs: properties over random trees', () => {
  const N = SLOW ? 5000 : 700;
  const entries = Array.from({ length: N }, (_, i) => new TextEncoder().encode(`entry ${i} ${'x'.repeat(i % 37)}`));
  const built = build(entries, 97);
  const rootsOf = new Map<number, Uint8Array>();
  const rootOf = async (size: number): Promise<Uint8Array> => {
    if (!rootsOf.has(size)) rootsOf.set(size, await treeHash(size, memoryHashReader(await built)));
    return rootsOf.get(size)!;
  };
  const runs = { numRuns: SLOW ? 2000 : 60 };

  it('the stored-hash root equals the in-memory RFC 6962 recursion, for batches of any size', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 1, max: 40 }), async (size, batch) => {
        const stored = await build(entries.slice(0, size), batch);
        assert.deepEqual(stored, (await built).slice(0, storedHashCount(size)));
        assert.deepEqual(await treeHash(size, memoryHashReader(stored)), rootOfEntries(entries.slice(0, size)));
      }),
      { numRuns: SLOW ? 300 : 25 },
    );
  });

  it('every inclusion proof verifies; a flipped byte in the proof, leaf or root never does', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: N }), fc.nat(), fc.nat(), fc.nat(), async (size, i, which, at) => {
        const index = i % size;
        const proof = await proveInclusion(index, size, memoryHashReader(await built));
        const leaf = leafHash(entries[index]!);
        const root = await rootOf(size);
        verifyInclusion(proof, index, size, leaf, root);
        const k = which % (proof.length + 2);
        if (k < proof.length) assert.throws(() => verifyInclusion(proof.map((p, j) => (j === k ? flip(p, at, 1 << at % 8) : p)), index, size, leaf, root), LogVerificationError);
        else if (k === proof.length) assert.throws(() => verifyInclusion(proof, index, size, flip(leaf, at, 1 << at % 8), root), LogVerificationError);
        else assert.throws(() => verifyInclusion(proof, index, size, leaf, flip(root, at, 1 << at % 8)), LogVerificationError);
      }),
      runs,
    );
  });

  it('every consistency proof verifies; a flipped byte in the proof or either root never does', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: N }), fc.integer({ min: 0, max: N }), fc.nat(), fc.nat(), async (a, b, which, at) => {
        const [m, n] = a <= b ? [a, b] : [b, a];
        const proof = await proveConsistency(m, n, memoryHashReader(await built));
        const [r1, r2] = [await rootOf(m), await rootOf(n)];
        verifyConsistency(proof, m, r1, n, r2);
        const k = which % (proof.length + 2);
        const f = (x: Uint8Array) => flip(x, at, 1 << at % 8);
        if (k < proof.length) assert.throws(() => verifyConsistency(proof.map((p, j) => (j === k ? f(p) : p)), m, r1, n, r2), LogVerificationError);
        else if (k === proof.length) assert.throws(() => verifyConsistency(proof, m, f(r1), n, r2), LogVerificationError);
        // the empty tree is a prefix of every tree: from size 0 there is nothing to check of the new root
        else if (m > 0) assert.throws(() => verifyConsistency(proof, m, r1, n, f(r2)), LogVerificationError);
      }),
      runs,
    );
  });
});
