/**
 * Reading tiles someone else serves (the log, a mirror, a CDN, a copied directory), trusting none
 * until checked against the root of a checkpoint whose signature was checked first: the tree's
 * partial tiles must hash to the root, and each full tile to its hash in the tile above
 * (https://research.swtch.com/tlog#authenticating_tiles). `tileHashReader` serves proofs from tiles
 * (as Go's tlog.TileHashReader); `verifyTree` checks every tile of a tree, each read once (an audit).
 */
import { InvalidInputError, LogVerificationError } from '../errors.js';
import { EMPTY_ROOT, type HashReader, checkCount, checkHash, equalBytes, foldSubtrees, rangeHash } from './merkle.js';
import { TILE_WIDTH, type Tile, parseTile, partialTiles, tileForStoredHash, tileOfTree, tilePath } from './tiles.js';

/** Reads tiles from wherever the log is mirrored. Its bytes are not trusted. */
export interface TileReader {
  /** Returns each tile's bytes, in the order asked; throws when one cannot be read. */
  readTiles(tiles: readonly Tile[]): Promise<Uint8Array[]>;
  /** Called with tiles once they are checked against the tree's root, so a cache may keep them. */
  saveTiles?(tiles: readonly Tile[], data: readonly Uint8Array[]): void | Promise<void>;
}

/** The tree a tile set must support: a size and its root, from a verified checkpoint. */
export interface TreeHead {
  readonly size: number;
  readonly root: Uint8Array;
}

async function readAll(reader: TileReader, tiles: readonly Tile[]): Promise<{ raw: Uint8Array[]; hashes: Uint8Array[][] }> {
  const raw = await reader.readTiles(tiles);
  if (!Array.isArray(raw) || raw.length !== tiles.length) throw new InvalidInputError(`tile reader returned ${String(raw?.length)} tiles for ${tiles.length}`);
  return { raw, hashes: tiles.map((t, i) => parseTile(t, raw[i]!)) };
}

/** The partial tiles, highest level first, hold the root's subtrees left to right: they must fold to it. */
function checkEdges(tree: TreeHead, edges: readonly Tile[], hashes: readonly Uint8Array[][]): void {
  const subtrees: Uint8Array[] = [];
  for (let i = edges.length - 1; i >= 0; i--) {
    for (let lo = 0, w = edges[i]!.width; w > 0; ) {
      const span = 2 ** Math.floor(Math.log2(w));
      subtrees.push(rangeHash(hashes[i]!, lo, lo + span));
      lo += span;
      w -= span;
    }
  }
  if (!equalBytes(foldSubtrees(subtrees), tree.root)) {
    const names = edges.length > 0 ? `tiles ${edges.map(tilePath).join(', ')} do not` : 'the empty tree does not';
    throw new LogVerificationError('tile_invalid', 'root_mismatch', `${names} hash to the root of tree size ${tree.size}`);
  }
}

/** A full tile must hash (MTH of its 256 hashes) to its entry in the (checked) tile above. */
function checkChild(tile: Tile, hashes: readonly Uint8Array[], parent: Tile, parentHashes: readonly Uint8Array[]): void {
  if (!equalBytes(rangeHash(hashes), parentHashes[tile.index % TILE_WIDTH]!)) {
    throw new LogVerificationError('tile_invalid', 'tile_hash_mismatch', `tile ${tilePath(tile)} does not match its hash in ${tilePath(parent)}`);
  }
}

const parentOf = (size: number, t: Tile): Tile => tileOfTree(size, t.level + 1, Math.floor(t.index / TILE_WIDTH));

/**
 * A HashReader for the tree `tree` that reads hashes out of tiles, each call checking the tiles it
 * reads before using any hash of them. Throws LogVerificationError `tile_invalid` (reason
 * `tile_length`, `root_mismatch` naming the partial tiles, `tile_hash_mismatch` naming the tile and
 * its parent), InvalidInputError `index_out_of_range` for a hash not in the tree, and whatever the
 * TileReader throws.
 */
export function tileHashReader(tree: TreeHead, reader: TileReader): HashReader {
  checkCount('tree size', tree.size);
  checkHash('root hash', tree.root);
  const { size } = tree;
  return {
    async readHashes(indexes) {
      if (indexes.length === 0) return [];
      const tiles = partialTiles(size);
      const order = new Map(tiles.map((t, i) => [tilePath(t), i]));
      const edgeCount = tiles.length;
      const located = indexes.map((index) => {
        const at = tileForStoredHash(index, size);
        // climb from the hash's tile to a tile already planned: the partial tiles are checked against the root
        for (let t = at.tile; !order.has(tilePath(t)); t = parentOf(size, t)) {
          order.set(tilePath(t), tiles.length);
          tiles.push(t);
        }
        return { ...at, slot: order.get(tilePath(at.tile))! };
      });
      const { raw, hashes } = await readAll(reader, tiles);
      checkEdges(tree, tiles.slice(0, edgeCount), hashes);
      // full tiles, parents before children
      const full = tiles.map((_, i) => i).slice(edgeCount).sort((a, b) => tiles[b]!.level - tiles[a]!.level);
      for (const i of full) {
        const parent = parentOf(size, tiles[i]!);
        checkChild(tiles[i]!, hashes[i]!, parent, hashes[order.get(tilePath(parent))!]!);
      }
      await reader.saveTiles?.(tiles, raw);
      return located.map(({ slot, start, end }) => rangeHash(hashes[slot]!, start, end));
    },
  };
}

/**
 * Checks every hash tile of the tree `tree` against its root, reading each tile once: the partial
 * tiles against the root, then the level-0 tiles in index order (in batches of `batch`), each against
 * its parent, itself checked when first needed. `onLevelZeroTile` gets each checked level-0 tile in
 * index order, so an auditor can check its entry bundle (verifyEntryBundle). Throws as tileHashReader.
 */
export async function verifyTree(
  tree: TreeHead,
  reader: TileReader,
  opts: { batch?: number; onLevelZeroTile?: (tile: Tile, data: Uint8Array) => void | Promise<void> } = {},
): Promise<void> {
  checkCount('tree size', tree.size);
  checkHash('root hash', tree.root);
  const batch = opts.batch ?? 32;
  checkCount('batch', batch, 4096);
  const { size } = tree;
  if (size === 0) {
    if (!equalBytes(tree.root, EMPTY_ROOT)) checkEdges(tree, [], []);
    return;
  }
  const edges = partialTiles(size);
  const edgeRead = await readAll(reader, edges);
  checkEdges(tree, edges, edgeRead.hashes);
  await reader.saveTiles?.(edges, edgeRead.raw);
  const edgeAt = new Map(edges.map((t, i) => [t.level, { index: t.index, hashes: edgeRead.hashes[i]! }]));
  const recent = new Map<number, { index: number; hashes: Uint8Array[] }>();
  // the checked hashes of tile (level, index): a partial tile, the last full one read at that level, or read now
  const checked = async (level: number, index: number): Promise<Uint8Array[]> => {
    const known = edgeAt.get(level)?.index === index ? edgeAt.get(level) : recent.get(level)?.index === index ? recent.get(level) : undefined;
    if (known) return known.hashes;
    const tile = tileOfTree(size, level, index);
    const { raw, hashes } = await readAll(reader, [tile]);
    const parent = parentOf(size, tile);
    checkChild(tile, hashes[0]!, parent, await checked(parent.level, parent.index));
    await reader.saveTiles?.([tile], raw);
    recent.set(level, { index, hashes: hashes[0]! });
    return hashes[0]!;
  };
  const fullCount = Math.floor(size / TILE_WIDTH);
  for (let start = 0; start < fullCount; start += batch) {
    const tiles = Array.from({ length: Math.min(batch, fullCount - start) }, (_, k) => tileOfTree(size, 0, start + k));
    const { raw, hashes } = await readAll(reader, tiles);
    for (const [i, tile] of tiles.entries()) {
      const parent = parentOf(size, tile);
      checkChild(tile, hashes[i]!, parent, await checked(parent.level, parent.index));
    }
    await reader.saveTiles?.(tiles, raw);
    for (const [i, tile] of tiles.entries()) await opts.onLevelZeroTile?.(tile, raw[i]!);
  }
  const edge0 = edges.find((t) => t.level === 0);
  if (edge0) await opts.onLevelZeroTile?.(edge0, edgeRead.raw[0]!);
}
