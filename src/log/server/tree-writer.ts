/**
 * Writing a grown tree's tiles and entry bundles (c2sp.org/tlog-tiles), and reading back the root a
 * published tree's tiles state. The sequencer only calls these for a tree already committed in the
 * store, so a tile is written for one tree only and never changes.
 */
import { LogVerificationError } from '../../errors.js';
import { EMPTY_ROOT, type HashReader, equalBytes, foldSubtrees, rangeHash } from '../merkle.js';
import type { TileReader } from '../tile-reader.js';
import {
  ENTRIES_LEVEL,
  TILE_WIDTH,
  encodeEntryBundle,
  newEntryBundles,
  newTiles,
  parseEntryBundle,
  parseTile,
  partialTiles,
  readTileData,
  tileOfTree,
  tilePath,
  verifyEntryBundle,
} from '../tiles.js';
import type { BlobStore } from './blobs.js';

/**
 * Writes the hash tiles and entry bundles a tree grown from `oldSize` to `newSize` adds. `reader`
 * serves the grown tree's stored hashes; `added` are the entries oldSize..newSize-1. An entry bundle
 * that continues a partial one takes the old entries from it, each checked against its leaf hash.
 * Throws LogVerificationError `entry_bundle_invalid` when the old bundle does not match the tree,
 * InvalidInputError `tile_not_found` when it is missing, and whatever the blob store throws.
 */
export async function writeGrownTree(blobs: BlobStore, oldSize: number, newSize: number, reader: HashReader, added: readonly Uint8Array[]): Promise<void> {
  const levelZero = new Map<number, Uint8Array>();
  for (const t of newTiles(oldSize, newSize)) {
    const data = await readTileData(t, reader);
    if (t.level === 0) levelZero.set(t.index, data);
    await blobs.put(tilePath(t), data);
  }
  for (const b of newEntryBundles(oldSize, newSize)) {
    const start = b.index * TILE_WIDTH;
    const entries: Uint8Array[] = [];
    if (start < oldSize) {
      const old = tileOfTree(oldSize, ENTRIES_LEVEL, b.index);
      const data = await blobs.get(tilePath(old));
      if (data === undefined) throw new LogVerificationError('entry_bundle_invalid', 'missing', `the log's ${tilePath(old)} is missing`, 'restore public/ from a backup of the data directory');
      entries.push(...parseEntryBundle(data, old.width));
    }
    for (let i = Math.max(start, oldSize); i < start + b.width; i++) entries.push(added[i - oldSize]!);
    verifyEntryBundle(b, entries, levelZero.get(b.index) ?? (await readTileData({ level: 0, index: b.index, width: b.width }, reader)));
    await blobs.put(tilePath(b), encodeEntryBundle(entries));
  }
}

/**
 * The root the right-edge tiles of a tree of `size` fold to (unchecked: the caller compares what it
 * builds on it with a committed root). Size 0 is the empty tree's root.
 */
export async function edgeRoot(size: number, tiles: TileReader): Promise<Uint8Array> {
  if (size === 0) return EMPTY_ROOT;
  const edges = partialTiles(size);
  const raw = await tiles.readTiles(edges);
  const subtrees: Uint8Array[] = [];
  for (let i = edges.length - 1; i >= 0; i--) {
    const hashes = parseTile(edges[i]!, raw[i]!);
    for (let lo = 0, w = edges[i]!.width; w > 0; ) {
      const span = 2 ** Math.floor(Math.log2(w));
      subtrees.push(rangeHash(hashes, lo, lo + span));
      lo += span;
      w -= span;
    }
  }
  return foldSubtrees(subtrees);
}

/** Throws LogVerificationError `tile_invalid` (`root_mismatch`) unless `root` is `expected`. */
export function checkRoot(root: Uint8Array, expected: Uint8Array, what: string): void {
  if (!equalBytes(root, expected)) throw new LogVerificationError('tile_invalid', 'root_mismatch', `${what} do not hash to the committed root`, 'the public/ directory does not belong to this store: restore both from one backup');
}
