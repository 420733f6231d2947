/**
 * Interop with Go's golang.org/x/mod/sumdb/tlog (test/interop/tlog_peer.go): a log of 100,000
 * entries (more with SLOW=1) is sequenced by Lifeboat into a C2SP tlog-tiles directory through a few
 * checkpoints; Go reads the same tiles through tlog.TileHashReader (checked against each root) and
 * - accepts Lifeboat's inclusion and consistency proofs, computed from the tiles (CheckRecord, with
 *   the leaf hash Go computes from the entry bundle, and CheckTree), and refuses tampered ones;
 * - computes proofs (ProveRecord, ProveTree) that Lifeboat's verifiers accept, and tree hashes equal
 *   to Lifeboat's roots. Go missing is a failure, not a skip (CI installs it).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { tracked } from './helpers/cli.js';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LogVerificationError } from '../src/errors.js';
import {
  type HashReader,
  appendLeaves,
  leafHash,
  memoryHashReader,
  rootOfEntries,
  splitStoredHashIndex,
  storedHashCount,
  storedHashIndex,
  treeHash,
} from '../src/log/merkle.js';
import { proveConsistency, proveInclusion, verifyConsistency, verifyInclusion } from '../src/log/proof.js';
import { type TileReader, tileHashReader } from '../src/log/tile-reader.js';
import { encodeEntryBundle, newEntryBundles, newTiles, readTileData, tilePath } from '../src/log/tiles.js';
import { buildGoPeer } from './helpers/go.js';

const SLOW = process.env.SLOW === '1';
const N = SLOW ? 400_000 : 100_000;
const CHECKS = SLOW ? 1500 : 150;

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const unb64 = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'base64'));
const flip = (b: Uint8Array): Uint8Array => {
  const c = b.slice();
  c[randomInt(c.length)]! ^= 1 << randomInt(8);
  return c;
};
const pick = <T>(xs: readonly T[]): T => xs[randomInt(xs.length)]!;
const between = (lo: number, hi: number): number => lo + randomInt(hi - lo + 1); // inclusive

/** Reads tiles from the log directory (the bytes are checked by tileHashReader, not here). */
function dirTileReader(dir: string): TileReader {
  return {
    readTiles: (tiles) => Promise.resolve(tiles.map((t) => new Uint8Array(readFileSync(join(dir, tilePath(t)))))),
  };
}

/** Runs the Go peer over the log directory: one JSON answer per command, in order. */
async function askGo(binary: string, setup: object, commands: object[]): Promise<Record<string, unknown>[]> {
  const child = tracked(spawn(binary, [], { stdio: ['pipe', 'pipe', 'pipe'] }));
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin.end([setup, ...commands].map((c) => JSON.stringify(c)).join('\n') + '\n');
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0, `tlog_peer failed: ${err}`);
  const answers = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(answers.length, commands.length, 'one answer per command');
  return answers;
}

describe(`interop with Go sumdb/tlog over a tiled log of ${N} entries`, () => {
  let dir: string;
  let goPeer: string;
  let entries: Uint8Array[];
  const checkpoints: number[] = [];
  const roots = new Map<number, Uint8Array>();
  const readers = new Map<number, HashReader>();
  let setup: object;

  before(async () => {
    goPeer = await buildGoPeer('tlog_peer');
    dir = mkdtempSync(join(tmpdir(), 'lifeboat-tlog-'));
    entries = Array.from({ length: N }, () => randomBytes(randomInt(0, 120)));
    // the sequencer: batches up to a few checkpoint sizes, including the edges of tiles
    const sizes = new Set([1, 255, 256, 257, 65536, N, ...Array.from({ length: 4 }, () => between(2, N))].filter((s) => s <= N));
    checkpoints.push(...[...sizes].sort((a, b) => a - b));
    const stored: Uint8Array[] = [];
    let size = 0;
    for (const next of checkpoints) {
      for (const h of await appendLeaves(size, entries.slice(size, next).map(leafHash), memoryHashReader(stored))) stored.push(h);
      const write = (path: string, data: Uint8Array) => {
        mkdirSync(dirname(join(dir, path)), { recursive: true });
        writeFileSync(join(dir, path), data, { flag: 'wx' }); // tiles are written once, never changed
      };
      for (const t of newTiles(size, next)) write(tilePath(t), await readTileData(t, memoryHashReader(stored)));
      for (const b of newEntryBundles(size, next)) write(tilePath(b), encodeEntryBundle(entries.slice(b.index * 256, b.index * 256 + b.width)));
      roots.set(next, await treeHash(next, memoryHashReader(stored)));
      size = next;
    }
    // from here on, Lifeboat too reads the log only from its tiles, checked against each checkpoint
    for (const s of checkpoints) readers.set(s, tileHashReader({ size: s, root: roots.get(s)! }, dirTileReader(dir)));
    setup = { dir, trees: checkpoints.map((s) => ({ size: s, root: b64(roots.get(s)!) })) };
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the root from stored hashes is the RFC 6962 root of the entries', () => {
    assert.deepEqual(roots.get(N), rootOfEntries(entries));
  });

  it("the stored-hash layout is Go's: StoredHashIndex, StoredHashCount and SplitStoredHashIndex agree", async () => {
    const asks = Array.from({ length: 300 }, (_, k) => {
      const level = k < 100 ? randomInt(4) : randomInt(40);
      return { level, size: randomInt(Math.floor(2 ** 45 / 2 ** level)), index: k < 100 ? randomInt(1000) : randomInt(2 ** 46) };
    });
    const answers = await askGo(goPeer, setup, asks.map((a) => ({ op: 'stored_hash_index', ...a })));
    for (const [i, a] of asks.entries()) {
      const { level, n } = splitStoredHashIndex(a.index);
      assert.deepEqual(answers[i], { index: storedHashIndex(a.level, a.size), count: storedHashCount(a.size), split_level: level, split_n: n }, JSON.stringify(a));
    }
  });

  it("Go's TreeHash over the tiles equals Lifeboat's root, at every checkpoint and at random sizes", async () => {
    const asks: { tree: number; size: number }[] = checkpoints.map((s) => ({ tree: s, size: s }));
    for (let k = 0; k < 40; k++) {
      const tree = pick(checkpoints);
      asks.push({ tree, size: between(1, tree) });
    }
    const answers = await askGo(goPeer, setup, asks.map((a) => ({ op: 'tree_hash', ...a })));
    for (const [i, a] of asks.entries()) {
      assert.equal(answers[i]!.hash, b64(await treeHash(a.size, readers.get(a.tree)!)), `size ${a.size} ${JSON.stringify(answers[i])}`);
    }
  });

  it("Go's CheckRecord and CheckTree accept Lifeboat's proofs from its tiles, and refuse tampered ones", async () => {
    const commands: object[] = [];
    const expect: boolean[] = [];
    for (let k = 0; k < CHECKS; k++) {
      const tree = pick(checkpoints);
      const reader = readers.get(tree)!;
      const size = between(1, tree);
      const index = randomInt(size);
      const root = await treeHash(size, reader);
      const proof = await proveInclusion(index, size, reader);
      commands.push({ op: 'check_record', tree, index, size, root: b64(root), proof: proof.map(b64) });
      expect.push(true);
      const oldSize = between(1, size);
      const oldRoot = await treeHash(oldSize, reader);
      const cproof = await proveConsistency(oldSize, size, reader);
      commands.push({ op: 'check_tree', tree, old_size: oldSize, old_root: b64(oldRoot), size, root: b64(root), proof: cproof.map(b64) });
      expect.push(true);
      if (k % 5 === 0) {
        const bad = proof.length > 0 ? proof.map((p, i) => (i === proof.length - 1 ? flip(p) : p)) : proof;
        commands.push({ op: 'check_record', tree, index, size, root: b64(proof.length > 0 ? root : flip(root)), proof: bad.map(b64) });
        expect.push(false);
        commands.push({ op: 'check_tree', tree, old_size: oldSize, old_root: b64(flip(oldRoot)), size, root: b64(root), proof: cproof.map(b64) });
        expect.push(false);
      }
    }
    const answers = await askGo(goPeer, setup, commands);
    answers.forEach((a, i) => assert.equal(a.ok, expect[i], `${JSON.stringify(commands[i]).slice(0, 200)} -> ${JSON.stringify(a)}`));
  });

  it("Lifeboat's verifiers accept Go's ProveRecord and ProveTree proofs of the same tree, and refuse tampered ones", async () => {
    const commands: { op: string; tree: number; index?: number; size: number; old_size?: number }[] = [];
    for (let k = 0; k < CHECKS; k++) {
      const tree = pick(checkpoints);
      const size = between(1, tree);
      commands.push({ op: 'prove_record', tree, index: randomInt(size), size });
      commands.push({ op: 'prove_tree', tree, old_size: between(1, size), size });
    }
    const answers = await askGo(goPeer, setup, commands);
    for (const [i, c] of commands.entries()) {
      const a = answers[i]!;
      assert.ok(Array.isArray(a.proof), JSON.stringify(a));
      const proof = (a.proof as string[]).map(unb64);
      const reader = readers.get(c.tree)!;
      const root = await treeHash(c.size, reader);
      assert.equal(a.root, b64(root), 'Go and Lifeboat agree on the root');
      if (c.op === 'prove_record') {
        const leaf = leafHash(entries[c.index!]!);
        assert.equal(a.leaf_hash, b64(leaf), 'Go hashes the entry from its bundle as Lifeboat does');
        verifyInclusion(proof, c.index!, c.size, leaf, root);
        assert.deepEqual(proof, await proveInclusion(c.index!, c.size, reader));
        if (proof.length > 0) assert.throws(() => verifyInclusion(proof.map((p, j) => (j === 0 ? flip(p) : p)), c.index!, c.size, leaf, root), LogVerificationError);
      } else {
        const oldRoot = await treeHash(c.old_size!, reader);
        assert.equal(a.old_root, b64(oldRoot));
        verifyConsistency(proof, c.old_size!, oldRoot, c.size, root);
        assert.deepEqual(proof, await proveConsistency(c.old_size!, c.size, reader));
        if (proof.length > 0) assert.throws(() => verifyConsistency(proof.map((p, j) => (j === proof.length - 1 ? flip(p) : p)), c.old_size!, oldRoot, c.size, root), LogVerificationError);
      }
    }
  });
});
