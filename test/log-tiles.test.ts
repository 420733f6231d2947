/**
 * C2SP tlog-tiles (src/log/tiles.ts): tile paths (the spec's examples, malformed ones refused by name),
 * which tiles a tree has and which a sequencer writes, tile and entry-bundle bytes, and the tile hash
 * reader that checks tiles against a root before an auditor relies on them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { LogVerificationError, isLifeboatError } from '../src/errors.js';
import { EMPTY_ROOT, appendLeaves, grownHashReader, leafHash, memoryHashReader, rootOfEntries, storedHashCount, storedHashIndex, treeHash } from '../src/log/merkle.js';
import { proveConsistency, proveInclusion, verifyConsistency, verifyInclusion } from '../src/log/proof.js';
import { type TileReader, tileHashReader, verifyTree } from '../src/log/tile-reader.js';
import {
  ENTRIES_LEVEL,
  type Tile,
  encodeEntryBundle,
  entryBundlesForSize,
  newEntryBundles,
  newTiles,
  parseEntryBundle,
  parseTilePath,
  partialTiles,
  readTileData,
  tilePath,
  tilesForSize,
  verifyEntryBundle,
} from '../src/log/tiles.js';

const SLOW = process.env.SLOW === '1';
const refused = (code: string, reason?: string) => (err: unknown): boolean => {
  assert.ok(isLifeboatError(err, code), `expected ${code}, got ${String(err)}`);
  if (reason !== undefined) assert.equal((err as LogVerificationError).reason, reason, (err as Error).message);
  return true;
};
const summary = (tiles: Tile[]) => {
  const out: Record<string, number> = {};
  for (const t of tiles) out[`${t.level}${t.width < 256 ? `.p/${t.width}` : ''}`] = (out[`${t.level}${t.width < 256 ? `.p/${t.width}` : ''}`] ?? 0) + 1;
  return out;
};

describe('tile paths', () => {
  it('encode as c2sp.org/tlog-tiles shows: 3-digit groups, x prefix, .p/<W> for partial tiles', () => {
    assert.equal(tilePath({ level: 0, index: 0, width: 256 }), 'tile/0/000');
    assert.equal(tilePath({ level: 1, index: 1234067, width: 256 }), 'tile/1/x001/x234/067');
    assert.equal(tilePath({ level: 2, index: 1234067, width: 1 }), 'tile/2/x001/x234/067.p/1');
    assert.equal(tilePath({ level: ENTRIES_LEVEL, index: 1234067, width: 8 }), 'tile/entries/x001/x234/067.p/8');
    assert.equal(tilePath({ level: 63, index: 1000, width: 255 }), 'tile/63/x001/000.p/255');
    assert.equal(tilePath({ level: ENTRIES_LEVEL, index: 999, width: 256 }), 'tile/entries/999');
  });

  it('parse the same paths back, and every tile round-trips', () => {
    assert.deepEqual(parseTilePath('tile/entries/x001/x234/067.p/8'), { level: ENTRIES_LEVEL, index: 1234067, width: 8 });
    assert.deepEqual(parseTilePath('tile/0/000'), { level: 0, index: 0, width: 256 });
    fc.assert(
      fc.property(fc.integer({ min: -1, max: 63 }), fc.integer({ min: 0, max: 2 ** 44 }), fc.integer({ min: 1, max: 256 }), (level, index, width) => {
        const t = { level, index, width };
        assert.deepEqual(parseTilePath(tilePath(t)), t);
      }),
      { numRuns: SLOW ? 5000 : 300 },
    );
  });

  it('refuse malformed paths by name (tile_path_invalid)', () => {
    const bad: [string, RegExp][] = [
      ['', /does not start with tile/],
      ['/tile/0/000', /does not start with tile/],
      ['tiles/0/000', /does not start with tile/],
      ['tile/0', /no tile index/],
      ['tile/00/000', /level/],
      ['tile/64/000', /level/],
      ['tile/-1/000', /level/],
      ['tile/data/000', /level/],
      ['tile/0/0', /3-digit groups/],
      ['tile/0/1234', /3-digit groups/],
      ['tile/0/x001', /3-digit groups/],
      ['tile/0/001/234', /3-digit groups/],
      ['tile/0/x001/x234', /3-digit groups/],
      ['tile/0/000/', /3-digit groups/],
      ['tile/entries/../000', /3-digit groups/],
      ['tile/0/x000/001', /leading x000/],
      ['tile/0/000.p/0', /partial width/],
      ['tile/0/000.p/256', /partial width/],
      ['tile/0/000.p/01', /partial width/],
      ['tile/0/000.p/', /partial width/],
      ['tile/0/000.p', /suffix/],
      ['tile/0/000.q/5', /3-digit groups/],
      ['tile/0/x999/x999/x999/x999/x999/999', /too large/],
    ];
    for (const [path, why] of bad) {
      assert.throws(() => parseTilePath(path), (err: unknown) => refused('tile_path_invalid')(err) && why.test((err as Error).message), path);
    }
  });
});

describe('which tiles a tree has', () => {
  it('a tree of 70,000 as the spec counts it; 256 is a full level-0 tile and a level-1 tile of width 1', () => {
    assert.deepEqual(summary(tilesForSize(70000)), { '0': 273, '0.p/112': 1, '1': 1, '1.p/17': 1, '2.p/1': 1 });
    assert.deepEqual(tilesForSize(256).map(tilePath), ['tile/0/000', 'tile/1/000.p/1']);
    assert.deepEqual(tilesForSize(0), []);
    assert.deepEqual(partialTiles(70000).map(tilePath), ['tile/0/273.p/112', 'tile/1/001.p/17', 'tile/2/000.p/1']);
    assert.deepEqual(partialTiles(256).map(tilePath), ['tile/1/000.p/1']);
    assert.deepEqual(entryBundlesForSize(70000).length, 274);
    assert.deepEqual(entryBundlesForSize(513).map(tilePath), ['tile/entries/000', 'tile/entries/001', 'tile/entries/002.p/1']);
  });

  it('a log growing through any sizes writes each tile once, and has every tile of every size it published', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 12 }), (steps) => {
        let size = 0;
        const written = new Set<string>();
        const sizes = [0];
        for (const step of steps) {
          const next = size + step;
          for (const t of [...newTiles(size, next), ...newEntryBundles(size, next)]) {
            assert.ok(!written.has(tilePath(t)), `${tilePath(t)} written twice`);
            written.add(tilePath(t));
          }
          size = next;
          sizes.push(size);
        }
        for (const s of sizes) for (const t of [...tilesForSize(s), ...entryBundlesForSize(s)]) assert.ok(written.has(tilePath(t)), `${tilePath(t)} of size ${s} missing`);
      }),
      { numRuns: SLOW ? 1000 : 100 },
    );
    assert.throws(() => newTiles(5, 4), refused('size_order'));
  });
});

describe('entry bundles', () => {
  it('are big-endian uint16 length-prefixed entries, and parse back', () => {
    const entries = [new Uint8Array(0), Uint8Array.of(0x61), new Uint8Array(300).fill(7), new Uint8Array(0xffff).fill(1)];
    const bytes = encodeEntryBundle(entries);
    assert.deepEqual([...bytes.subarray(0, 8)], [0x00, 0x00, 0x00, 0x01, 0x61, 0x01, 0x2c, 0x07]);
    assert.equal(bytes.length, 2 + 3 + 302 + 2 + 0xffff);
    assert.deepEqual(parseEntryBundle(bytes), entries);
    assert.deepEqual(parseEntryBundle(bytes, 4), entries);
  });

  it('refuse bad bytes by name: truncated, trailing_data, entry_count; the encoder refuses oversized entries', () => {
    const good = encodeEntryBundle([Uint8Array.of(1, 2, 3), Uint8Array.of(4)]);
    assert.throws(() => parseEntryBundle(good.subarray(0, good.length - 1)), refused('entry_bundle_invalid', 'truncated'));
    assert.throws(() => parseEntryBundle(good.subarray(0, 6)), refused('entry_bundle_invalid', 'truncated'));
    assert.throws(() => parseEntryBundle(Uint8Array.of(...good, 0)), refused('entry_bundle_invalid', 'truncated'));
    assert.throws(() => parseEntryBundle(good, 1), refused('entry_bundle_invalid', 'trailing_data'));
    assert.throws(() => parseEntryBundle(good, 3), refused('entry_bundle_invalid', 'entry_count'));
    assert.throws(() => parseEntryBundle(new Uint8Array(0)), refused('entry_bundle_invalid', 'entry_count'));
    // 257 empty entries: a bundle holds at most 256
    assert.throws(() => parseEntryBundle(new Uint8Array(2 * 257)), refused('entry_bundle_invalid', 'trailing_data'));
    assert.throws(() => encodeEntryBundle([new Uint8Array(0x10000)]), refused('entry_too_large'));
    assert.throws(() => encodeEntryBundle(Array.from({ length: 257 }, () => new Uint8Array(0))), refused('invalid_input'));
    assert.throws(() => encodeEntryBundle([]), refused('invalid_input'));
  });
});

/** A log that grew through `sizes`, with the tiles and bundles its sequencer wrote, in memory. */
async function grow(sizes: number[]) {
  const n = sizes[sizes.length - 1]!;
  const entries = Array.from({ length: n }, (_, i) => new TextEncoder().encode(`e${i}`));
  const stored: Uint8Array[] = [];
  const files = new Map<string, Uint8Array>();
  let size = 0;
  for (const next of sizes) {
    for (const h of await appendLeaves(size, entries.slice(size, next).map(leafHash), memoryHashReader(stored))) stored.push(h);
    for (const t of newTiles(size, next)) files.set(tilePath(t), await readTileData(t, memoryHashReader(stored)));
    for (const b of newEntryBundles(size, next)) files.set(tilePath(b), encodeEntryBundle(entries.slice(b.index * 256, b.index * 256 + b.width)));
    size = next;
  }
  const reads: string[][] = [];
  const saved: string[][] = [];
  const reader: TileReader = {
    readTiles(tiles) {
      reads.push(tiles.map(tilePath));
      return Promise.resolve(tiles.map((t) => files.get(tilePath(t)) ?? assert.fail(`no ${tilePath(t)}`)));
    },
    saveTiles(tiles) {
      saved.push(tiles.map(tilePath));
    },
  };
  return { entries, stored, files, reader, reads, saved };
}

describe('reading hashes from tiles', () => {
  it('a sequencer\'s tiles give the same root, inclusion and consistency proofs as its stored hashes', async () => {
    const sizes = SLOW ? [1, 255, 256, 257, 65535, 65536, 70000, 140001] : [1, 255, 256, 257, 4000, 65536, 70000];
    const log = await grow(sizes);
    const memory = memoryHashReader(log.stored);
    for (const size of sizes) {
      const root = await treeHash(size, memory);
      const fromTiles = tileHashReader({ size, root }, log.reader);
      assert.deepEqual(await treeHash(size, fromTiles), root);
      for (let k = 0; k < (SLOW ? 60 : 12); k++) {
        const index = Math.floor(Math.random() * size);
        const proof = await proveInclusion(index, size, fromTiles);
        assert.deepEqual(proof, await proveInclusion(index, size, memory));
        verifyInclusion(proof, index, size, leafHash(log.entries[index]!), root);
        const old = 1 + Math.floor(Math.random() * size);
        const cproof = await proveConsistency(old, size, fromTiles);
        assert.deepEqual(cproof, await proveConsistency(old, size, memory));
        verifyConsistency(cproof, old, await treeHash(old, memory), size, root);
      }
    }
    assert.deepEqual(await treeHash(257, tileHashReader({ size: 257, root: rootOfEntries(log.entries.slice(0, 257)) }, log.reader)), rootOfEntries(log.entries.slice(0, 257)));
  });

  it('entry bundles match their level-0 tiles; a tampered entry is named by its index', async () => {
    const log = await grow([300]);
    for (const b of entryBundlesForSize(300)) {
      verifyEntryBundle(b, parseEntryBundle(log.files.get(tilePath(b))!, b.width), log.files.get(tilePath({ ...b, level: 0 }))!);
    }
    const entries = parseEntryBundle(log.files.get('tile/entries/001.p/44')!, 44);
    entries[5] = new TextEncoder().encode('forged');
    assert.throws(
      () => verifyEntryBundle({ level: ENTRIES_LEVEL, index: 1, width: 44 }, entries, log.files.get('tile/0/001.p/44')!),
      (err: unknown) => refused('entry_bundle_invalid', 'entry_hash_mismatch')(err) && /entry 261 in tile\/entries\/001\.p\/44/.test((err as Error).message),
    );
  });

  it('a tampered tile is refused by name before any hash of it is used, and not saved', async () => {
    const size = 70000;
    const log = await grow([size]);
    const root = await treeHash(size, memoryHashReader(log.stored));
    const read = (files: Map<string, Uint8Array>) =>
      tileHashReader({ size, root }, { readTiles: (tiles) => Promise.resolve(tiles.map((t) => files.get(tilePath(t))!)), saveTiles: () => assert.fail('saved a bad tile') });
    const tampered = (path: string, f: (b: Uint8Array) => Uint8Array) => new Map([...log.files, [path, f(log.files.get(path)!.slice())]]);
    const flipAt = (i: number) => (b: Uint8Array) => ((b[i]! ^= 1), b);
    const leafIn = (tileIndex: number) => [storedHashIndex(0, tileIndex * 256 + 3)];

    // a full level-0 tile: caught against its hash in tile/1/000
    await assert.rejects(read(tampered('tile/0/007', flipAt(100))).readHashes(leafIn(7)), (err: unknown) => refused('tile_invalid', 'tile_hash_mismatch')(err) && /tile\/0\/007 .*tile\/1\/000/.test((err as Error).message));
    // a full level-1 tile, under the level-2 edge tile
    await assert.rejects(read(tampered('tile/1/000', flipAt(32 * 9))).readHashes(leafIn(7)), refused('tile_invalid', 'tile_hash_mismatch'));
    // an edge (partial) tile: the root does not match
    await assert.rejects(read(tampered('tile/0/273.p/112', flipAt(5))).readHashes(leafIn(273)), (err: unknown) => refused('tile_invalid', 'root_mismatch')(err) && /tile\/0\/273\.p\/112/.test((err as Error).message));
    await assert.rejects(read(tampered('tile/2/000.p/1', flipAt(0))).readHashes(leafIn(0)), refused('tile_invalid', 'root_mismatch'));
    // a short tile
    await assert.rejects(read(tampered('tile/0/007', (b) => b.subarray(0, 8000))).readHashes(leafIn(7)), refused('tile_invalid', 'tile_length'));
    // a root the tiles do not support, and a hash outside the tree
    await assert.rejects(tileHashReader({ size, root: leafHash(new Uint8Array(0)) }, log.reader).readHashes(leafIn(0)), refused('tile_invalid', 'root_mismatch'));
    await assert.rejects(tileHashReader({ size, root }, log.reader).readHashes([storedHashIndex(0, size)]), refused('index_out_of_range'));
    // the untouched tiles still read, and are saved once checked
    const ok = await tileHashReader({ size, root }, log.reader).readHashes([storedHashIndex(8, 3), storedHashIndex(3, 100)]);
    assert.deepEqual(ok, [log.stored[storedHashIndex(8, 3)], log.stored[storedHashIndex(3, 100)]]);
    assert.ok(log.saved.at(-1)!.includes('tile/0/003'));
    assert.equal(storedHashCount(size), log.stored.length);
  });

  it('a sequencer that keeps only its tiles writes the same tiles and roots as one that stores every hash', async () => {
    const sizes = [3, 256, 300, 511, 512, 70000];
    const stored = await grow(sizes);
    const files = new Map<string, Uint8Array>();
    const reader: TileReader = { readTiles: (tiles) => Promise.resolve(tiles.map((t) => files.get(tilePath(t))!)) };
    let size = 0;
    let root = EMPTY_ROOT;
    for (const next of sizes) {
      const old = tileHashReader({ size, root }, reader);
      const added = await appendLeaves(size, stored.entries.slice(size, next).map(leafHash), old);
      const grown = grownHashReader(size, added, old);
      for (const t of newTiles(size, next)) files.set(tilePath(t), await readTileData(t, grown));
      root = await treeHash(next, grown);
      assert.deepEqual(root, rootOfEntries(stored.entries.slice(0, next)), `root of ${next}`);
      size = next;
    }
    for (const [path, data] of files) assert.deepEqual(data, stored.files.get(path), path);
    assert.equal(files.size, [...stored.files.keys()].filter((p) => !p.startsWith('tile/entries/')).length);
  });
});

describe('auditing every tile of a tree', () => {
  it('verifyTree reads each tile once, hands over every level-0 tile in order, and refuses any tampered tile by name', async () => {
    const size = SLOW ? 140001 : 70000;
    const log = await grow([1000, size]);
    const root = await treeHash(size, memoryHashReader(log.stored));
    const seen: string[] = [];
    const read: string[] = [];
    const counting: TileReader = {
      readTiles: (tiles) => {
        read.push(...tiles.map(tilePath));
        return log.reader.readTiles(tiles);
      },
    };
    await verifyTree({ size, root }, counting, { onLevelZeroTile: (t, data) => void seen.push(`${tilePath(t)}:${data.length}`) });
    const all = tilesForSize(size).map(tilePath);
    assert.deepEqual(seen, all.filter((p) => p.startsWith('tile/0/')).map((p) => `${p}:${p.includes('.p/') ? 32 * Number(p.split('.p/')[1]) : 8192}`));
    assert.deepEqual([...read].sort(), [...all].sort(), 'every tile of the tree read exactly once');
    await verifyTree({ size: 0, root: EMPTY_ROOT }, counting);
    await assert.rejects(verifyTree({ size: 0, root }, counting), refused('tile_invalid', 'root_mismatch'));
    await assert.rejects(verifyTree({ size: 1000, root }, log.reader), refused('tile_invalid', 'root_mismatch'));

    // any byte of any tile flipped: refused, naming that tile
    for (let k = 0; k < (SLOW ? 60 : 12); k++) {
      const path = all[Math.floor(Math.random() * all.length)]!;
      const bad = log.files.get(path)!.slice();
      bad[Math.floor(Math.random() * bad.length)]! ^= 1 << Math.floor(Math.random() * 8);
      const files = new Map([...log.files, [path, bad]]);
      await assert.rejects(
        verifyTree({ size, root }, { readTiles: (tiles) => Promise.resolve(tiles.map((t) => files.get(tilePath(t))!)) }),
        (err: unknown) => refused('tile_invalid')(err) && (err as Error).message.includes(path),
        path,
      );
    }
  });
});
