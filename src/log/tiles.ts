/**
 * C2SP tlog-tiles (https://c2sp.org/tlog-tiles): the log's tree served as static tiles of 256 hashes
 * and its entries as bundles of 256, at `tile/<L>/<N>[.p/<W>]` and `tile/entries/<N>[.p/<W>]`: paths,
 * which tiles a tree has and which a sequencer writes, tile and bundle bytes. Reading tiles someone
 * else serves, checked against a root: tile-reader.ts.
 *
 * The tile at level L, index N holds the stored hashes at tree level 8·L for positions
 * N·256 .. N·256 + W - 1; the 7 levels in between are recomputed by hashing. docs/log-format.md.
 */
import { InvalidInputError, LogVerificationError } from '../errors.js';
import {
  HASH_SIZE,
  type HashReader,
  MAX_TREE_SIZE,
  checkCount,
  checkHash,
  equalBytes,
  leafHash,
  readChecked,
  splitStoredHashIndex,
  storedHashIndex,
} from './merkle.js';

/** Tree levels per tile (tlog-tiles fixes it at 8). */
export const TILE_HEIGHT = 8;
/** Hashes in a full tile, entries in a full bundle. */
export const TILE_WIDTH = 256;
/** The level of entry bundles (`tile/entries/...`); hash tiles have levels 0 to 63. */
export const ENTRIES_LEVEL = -1;
/** The largest level tlog-tiles allows in a path. */
export const MAX_TILE_LEVEL = 63;
/** The largest entry a bundle can hold: its length is a big-endian uint16. */
export const MAX_ENTRY_SIZE = 0xffff;

/** A hash tile (level 0..63) or an entry bundle (level ENTRIES_LEVEL); width 1..255 is a partial one. */
export interface Tile {
  readonly level: number;
  readonly index: number;
  readonly width: number;
}

const MAX_TILE_INDEX = MAX_TREE_SIZE / TILE_WIDTH;

/** Throws InvalidInputError unless `t` is a well-formed tile. */
export function checkTile(t: Tile): void {
  if (t.level !== ENTRIES_LEVEL) checkCount('tile level', t.level, MAX_TILE_LEVEL);
  checkCount('tile index', t.index, MAX_TILE_INDEX);
  checkCount('tile width', t.width, TILE_WIDTH);
  if (t.width === 0) throw new InvalidInputError('tile width must be from 1 to 256');
}

/** Leaves (for bundles and level 0) or level-L hashes a tree of `size` leaves has at this level. */
function countAtLevel(size: number, level: number): number {
  return Math.floor(size / TILE_WIDTH ** Math.max(level, 0));
}

/** The tile at (level, index) as wide as a tree of `size` leaves makes it (0 if it has none there). */
export function tileOfTree(size: number, level: number, index: number): Tile {
  return { level, index, width: Math.max(0, Math.min(TILE_WIDTH, countAtLevel(size, level) - index * TILE_WIDTH)) };
}

/**
 * The partial tile of each level of a tree, lowest level first: the right edge, which together holds
 * the complete subtrees its root is made of (RFC 9162 §2.1.1). A tree of 256 has only tile/1/000.p/1.
 */
export function partialTiles(size: number): Tile[] {
  checkCount('tree size', size);
  const out: Tile[] = [];
  for (let level = 0; level <= MAX_TILE_LEVEL && countAtLevel(size, level) > 0; level++) {
    const count = countAtLevel(size, level);
    if (count % TILE_WIDTH > 0) out.push({ level, index: Math.floor(count / TILE_WIDTH), width: count % TILE_WIDTH });
  }
  return out;
}

/**
 * The tile's path: `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`, N in 3-digit groups, all but
 * the last prefixed with `x` (1234067 is `x001/x234/067`). Throws InvalidInputError for a bad tile.
 */
export function tilePath(t: Tile): string {
  checkTile(t);
  let digits = String(t.index);
  digits = digits.padStart(Math.ceil(digits.length / 3) * 3, '0');
  const groups: string[] = [];
  for (let i = 0; i < digits.length; i += 3) groups.push(digits.slice(i, i + 3));
  const n = groups.map((g, i) => (i < groups.length - 1 ? `x${g}` : g)).join('/');
  const level = t.level === ENTRIES_LEVEL ? 'entries' : String(t.level);
  return `tile/${level}/${n}${t.width < TILE_WIDTH ? `.p/${t.width}` : ''}`;
}

function badPath(path: string, what: string): never {
  const shown = JSON.stringify(path.length > 120 ? `${path.slice(0, 120)}...` : path);
  throw new InvalidInputError(`malformed tile path ${shown}: ${what}`, { code: 'tile_path_invalid', hint: 'tile paths are tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>] (c2sp.org/tlog-tiles)' });
}

/**
 * Parses a tile path (without a leading slash). Only the one canonical spelling of each tile is
 * accepted. Throws InvalidInputError `tile_path_invalid` naming what is wrong.
 */
export function parseTilePath(path: string): Tile {
  if (typeof path !== 'string') badPath(String(path), 'not a string');
  const parts = path.split('/');
  if (parts[0] !== 'tile') badPath(path, 'it does not start with tile/');
  if (parts.length < 3) badPath(path, 'it has no tile index');
  const levelText = parts[1]!;
  let level: number;
  if (levelText === 'entries') level = ENTRIES_LEVEL;
  else if (/^(0|[1-9][0-9]?)$/.test(levelText) && Number(levelText) <= MAX_TILE_LEVEL) level = Number(levelText);
  else badPath(path, 'the level is not entries or a number from 0 to 63 without leading zeros');
  let groups = parts.slice(2);
  let width = TILE_WIDTH;
  const last = groups[groups.length - 1]!;
  if (groups.length >= 2 && groups[groups.length - 2]!.endsWith('.p')) {
    if (!/^[1-9][0-9]{0,2}$/.test(last) || Number(last) >= TILE_WIDTH) badPath(path, 'the partial width is not a number from 1 to 255 without leading zeros');
    width = Number(last);
    groups = groups.slice(0, -1);
    groups[groups.length - 1] = groups[groups.length - 1]!.slice(0, -2);
  } else if (last.includes('.')) {
    badPath(path, 'the index has a suffix other than .p/<W>');
  }
  let digits = '';
  groups.forEach((g, i) => {
    const ok = i < groups.length - 1 ? /^x[0-9]{3}$/.test(g) : /^[0-9]{3}$/.test(g);
    if (!ok) badPath(path, 'the index is not 3-digit groups, all but the last prefixed with x');
    digits += g.replace('x', '');
  });
  if (groups.length > 1 && groups[0] === 'x000') badPath(path, 'the index has a leading x000 group');
  const index = Number(digits);
  if (index > MAX_TILE_INDEX) badPath(path, 'the index is too large');
  return { level, index, width };
}

/**
 * Every hash tile of a tree of `size` leaves: the full tiles of each level and, where the level's count
 * is not a multiple of 256, its partial right-edge tile (tlog-tiles "Partial Tiles"). Size 0 has none.
 */
export function tilesForSize(size: number): Tile[] {
  return newTiles(0, size);
}

/**
 * The hash tiles to write when a tree grows from `oldSize` to `newSize` leaves: each full tile
 * completed since, and the new partial tile of each level whose count changed. Tiles already written
 * for oldSize are never rewritten. Throws InvalidInputError (`size_order`) if newSize < oldSize.
 */
export function newTiles(oldSize: number, newSize: number): Tile[] {
  checkGrowth(oldSize, newSize);
  const out: Tile[] = [];
  for (let level = 0; level <= MAX_TILE_LEVEL && countAtLevel(newSize, level) > 0; level++) {
    out.push(...levelTiles(level, countAtLevel(oldSize, level), countAtLevel(newSize, level)));
  }
  return out;
}

/** The entry bundles of a tree of `size` leaves (one per level-0 tile). */
export function entryBundlesForSize(size: number): Tile[] {
  return newEntryBundles(0, size);
}

/** The entry bundles to write when a tree grows from `oldSize` to `newSize` (as newTiles, level 0). */
export function newEntryBundles(oldSize: number, newSize: number): Tile[] {
  checkGrowth(oldSize, newSize);
  return levelTiles(ENTRIES_LEVEL, oldSize, newSize);
}

function checkGrowth(oldSize: number, newSize: number): void {
  checkCount('old tree size', oldSize);
  checkCount('new tree size', newSize);
  if (newSize < oldSize) throw new InvalidInputError(`a tree cannot shrink from ${oldSize} to ${newSize}`, { code: 'size_order' });
}

function levelTiles(level: number, oldCount: number, newCount: number): Tile[] {
  const out: Tile[] = [];
  const fullEnd = Math.floor(newCount / TILE_WIDTH);
  for (let index = Math.floor(oldCount / TILE_WIDTH); index < fullEnd; index++) out.push({ level, index, width: TILE_WIDTH });
  const width = newCount % TILE_WIDTH;
  if (width > 0 && newCount > oldCount) out.push({ level, index: fullEnd, width });
  return out;
}

/**
 * The hash tile (as wide as a tree of `size` leaves makes it) that holds stored hash `index`, and which
 * of its hashes [start, end) hash up to it. Throws InvalidInputError `index_out_of_range` when that
 * hash is not (yet) part of the tree.
 */
export function tileForStoredHash(index: number, size: number): { tile: Tile; start: number; end: number } {
  checkCount('tree size', size);
  const { level, n } = splitStoredHashIndex(index);
  if ((n + 1) * 2 ** level > size) {
    throw new InvalidInputError(`stored hash ${index} is not in a tree of size ${size}`, { code: 'index_out_of_range' });
  }
  const tileLevel = Math.floor(level / TILE_HEIGHT);
  const span = 2 ** (level % TILE_HEIGHT);
  const first = n * span;
  const tileIndex = Math.floor(first / TILE_WIDTH);
  const start = first - tileIndex * TILE_WIDTH;
  return { tile: tileOfTree(size, tileLevel, tileIndex), start, end: start + span };
}

/** A tile's bytes: its hashes concatenated (tlog-tiles "Merkle Tree"). Throws on a bad count or hash. */
export function encodeTile(hashes: readonly Uint8Array[]): Uint8Array {
  checkCount('tile width', hashes.length, TILE_WIDTH);
  const out = new Uint8Array(hashes.length * HASH_SIZE);
  hashes.forEach((h, i) => {
    checkHash('tile hash', h);
    out.set(h, i * HASH_SIZE);
  });
  return out;
}

/** The hashes of a tile's bytes. Throws LogVerificationError `tile_invalid` (`tile_length`) unless width × 32 bytes. */
export function parseTile(tile: Tile, data: Uint8Array): Uint8Array[] {
  checkTile(tile);
  if (!(data instanceof Uint8Array) || data.length !== tile.width * HASH_SIZE) {
    throw new LogVerificationError('tile_invalid', 'tile_length', `tile ${tilePath(tile)} is ${String(data?.length)} bytes, not ${tile.width * HASH_SIZE}`);
  }
  const out: Uint8Array[] = [];
  for (let i = 0; i < tile.width; i++) out.push(data.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE));
  return out;
}

/** The bytes of hash tile `tile`, read from stored hashes (what a sequencer writes). */
export async function readTileData(tile: Tile, reader: HashReader): Promise<Uint8Array> {
  checkTile(tile);
  if (tile.level === ENTRIES_LEVEL) throw new InvalidInputError('an entry bundle is not made of stored hashes');
  const indexes: number[] = [];
  for (let i = 0; i < tile.width; i++) indexes.push(storedHashIndex(TILE_HEIGHT * tile.level, tile.index * TILE_WIDTH + i));
  return encodeTile(await readChecked(reader, indexes));
}

/**
 * An entry bundle's bytes: each entry as a big-endian uint16 length, then its bytes (tlog-tiles "Log
 * entries"). Throws InvalidInputError `entry_too_large` for an entry over 65535 bytes, `invalid_input`
 * for 0 or more than 256 entries.
 */
export function encodeEntryBundle(entries: readonly Uint8Array[]): Uint8Array {
  if (!Array.isArray(entries) || entries.length === 0 || entries.length > TILE_WIDTH) throw new InvalidInputError('an entry bundle holds 1 to 256 entries');
  let total = 0;
  entries.forEach((e, i) => {
    if (!(e instanceof Uint8Array)) throw new InvalidInputError(`entry ${i} must be a Uint8Array`);
    if (e.length > MAX_ENTRY_SIZE) throw new InvalidInputError(`entry ${i} is ${e.length} bytes, over the ${MAX_ENTRY_SIZE} a bundle can hold`, { code: 'entry_too_large' });
    total += 2 + e.length;
  });
  const out = new Uint8Array(total);
  let at = 0;
  for (const e of entries) {
    out[at] = e.length >>> 8;
    out[at + 1] = e.length & 0xff;
    out.set(e, at + 2);
    at += 2 + e.length;
  }
  return out;
}

/**
 * The entries of a bundle's bytes (copies). With `width`, exactly that many must be there. Throws
 * LogVerificationError `entry_bundle_invalid` with reason `truncated`, `trailing_data` or `entry_count`.
 */
export function parseEntryBundle(data: Uint8Array, width?: number): Uint8Array[] {
  if (!(data instanceof Uint8Array)) throw new InvalidInputError('an entry bundle must be a Uint8Array');
  if (width !== undefined) checkCount('bundle width', width, TILE_WIDTH);
  const limit = width ?? TILE_WIDTH;
  const entries: Uint8Array[] = [];
  let at = 0;
  while (at < data.length && entries.length < limit) {
    if (at + 2 > data.length) throw new LogVerificationError('entry_bundle_invalid', 'truncated', `entry bundle ends inside the length of entry ${entries.length}`);
    const len = (data[at]! << 8) | data[at + 1]!;
    if (at + 2 + len > data.length) throw new LogVerificationError('entry_bundle_invalid', 'truncated', `entry bundle ends inside entry ${entries.length}`);
    entries.push(data.slice(at + 2, at + 2 + len));
    at += 2 + len;
  }
  if (at < data.length) throw new LogVerificationError('entry_bundle_invalid', 'trailing_data', `entry bundle has ${data.length - at} bytes after entry ${limit - 1}`);
  if (entries.length === 0 || (width !== undefined && entries.length !== width)) {
    throw new LogVerificationError('entry_bundle_invalid', 'entry_count', `entry bundle holds ${entries.length} entries, not ${width ?? '1 to 256'}`);
  }
  return entries;
}

/**
 * Checks that each entry of `bundle` hashes (RFC 9162 leaf hash) to its hash in the level-0 tile of
 * the same index and width: with that tile checked against a root, the entries are. Throws
 * LogVerificationError `entry_bundle_invalid` (`entry_count`, `entry_hash_mismatch` naming the entry's
 * index in the log) or `tile_invalid` (`tile_length`).
 */
export function verifyEntryBundle(bundle: Tile, entries: readonly Uint8Array[], levelZeroTile: Uint8Array): void {
  checkTile(bundle);
  if (bundle.level !== ENTRIES_LEVEL) throw new InvalidInputError('verifyEntryBundle takes an entry bundle (level entries)');
  const hashes = parseTile({ level: 0, index: bundle.index, width: bundle.width }, levelZeroTile);
  if (entries.length !== bundle.width) {
    throw new LogVerificationError('entry_bundle_invalid', 'entry_count', `${tilePath(bundle)} holds ${entries.length} entries, not ${bundle.width}`);
  }
  entries.forEach((e, i) => {
    if (!equalBytes(leafHash(e), hashes[i]!)) {
      const at = bundle.index * TILE_WIDTH + i;
      throw new LogVerificationError('entry_bundle_invalid', 'entry_hash_mismatch', `entry ${at} in ${tilePath(bundle)} does not match its hash in tile/0`);
    }
  });
}
