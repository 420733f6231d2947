/**
 * Where the log's public files live: a small blob interface (a directory by default; S3-compatible
 * storage can follow behind the same three methods) and a TileReader over it. Paths are the static
 * read API's own, relative: `checkpoint`, `tile/0/000.p/5`, `tile/entries/x001/234`.
 *
 * Tiles and bundles are written once and never change (the sequencer writes a tile only for a
 * committed tree), and the store enforces it: a tile or bundle path is create-only, writing the same
 * bytes again is a no-op, and other bytes are refused (`tile_invalid`). `checkpoint` is replaced.
 * Every write is atomic and durable: temp file, fsync, rename (a tile: link, which never replaces),
 * directory fsync, so a crash leaves the old file or the new one, never a half.
 */
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { InvalidInputError, LogVerificationError } from '../../errors.js';
import { fsyncDir, writeFileAtomic } from '../../util/files.js';
import type { TileReader } from '../tile-reader.js';
import { type Tile, tilePath } from '../tiles.js';

export interface BlobStore {
  /**
   * Writes `data` at `path`, atomically and durably (resolves once it survives a crash). `checkpoint`
   * is replaced; a tile or bundle is never: the same bytes again resolve, other bytes throw
   * LogVerificationError `tile_invalid` and leave the file as it was.
   */
  put(path: string, data: Uint8Array | string): Promise<void>;
  /** The bytes at `path`, or undefined when there is none. Throws for any other read failure. */
  get(path: string): Promise<Uint8Array | undefined>;
}

const PATH_RE = /^(checkpoint|tile(\/[0-9a-z.]+)+)$/;

function checkPath(path: string): void {
  if (typeof path !== 'string' || !PATH_RE.test(path) || path.split('/').some((p) => p === '.' || p === '..')) {
    throw new InvalidInputError(`${JSON.stringify(String(path).slice(0, 100))} is not a path of the log's public files`);
  }
}

/**
 * A BlobStore over a directory (the data directory's public/). Files are 0644 and directories 0755:
 * everything here is public, meant to be copied to a CDN; the data directory around it stays 0700.
 */
export function directoryBlobs(root: string): BlobStore {
  return {
    put(path, data) {
      checkPath(path);
      const file = join(root, ...path.split('/'));
      const dir = dirname(file);
      const created = mkdirSync(dir, { recursive: true, mode: 0o755 });
      if (created !== undefined) {
        // new directories: each one's entry in its parent must be durable too
        for (let d = dir; d !== dirname(d); d = dirname(d)) {
          fsyncDir(dirname(d));
          if (d === resolve(created)) break;
        }
      }
      try {
        if (path === 'checkpoint') writeFileAtomic(file, data, 0o644);
        else writeCreateOnly(file, path, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
      } catch (err) {
        return Promise.reject(err as Error);
      }
      return Promise.resolve();
    },
    get(path) {
      checkPath(path);
      try {
        return Promise.resolve(new Uint8Array(readFileSync(join(root, ...path.split('/')))));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return Promise.resolve(undefined);
        throw err;
      }
    },
  };
}

/** A temporary file of writeCreateOnly or writeFileAtomic: `.NAME.<12 hex>.tmp`. */
const TEMP_RE = /^\..+\.[0-9a-f]{12}\.tmp$/;

/**
 * Removes the temporary files a killed writer left under `root` (never a published file: those have no
 * leading dot). Only for the one sequencer of the directory, before it writes. Returns how many.
 */
export function removeTempFiles(root: string): number {
  let removed = 0;
  const walk = (dir: string): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const e of entries) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.isFile() && TEMP_RE.test(e.name)) {
        rmSync(join(dir, e.name), { force: true });
        removed++;
      }
    }
  };
  walk(root);
  return removed;
}

/** Throws `tile_invalid` for a tile path that already holds other bytes than `data`. */
export function tileConflict(path: string): LogVerificationError {
  return new LogVerificationError(
    'tile_invalid',
    'tile_changed',
    `the log's ${path} already holds other bytes than the tree being published: a tile never changes`,
    'the store is behind public/ or belongs to another log: stop, and restore the store and public/ from one backup',
  );
}

/** Writes `file` only if it is not there (temp file, fsync, link: never replaces); the same bytes there are fine. */
function writeCreateOnly(file: string, path: string, data: Uint8Array): void {
  const dir = dirname(file);
  const tmp = join(dir, `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', 0o644);
  try {
    for (let off = 0; off < data.length; ) off += writeSync(fd, data, off, data.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    if (!Buffer.from(readFileSync(file)).equals(Buffer.from(data.buffer, data.byteOffset, data.byteLength))) throw tileConflict(path);
    return;
  } finally {
    rmSync(tmp, { force: true });
  }
  fsyncDir(dir);
}

/**
 * A TileReader over a BlobStore with a small cache. A tile's path names its width, and a tile of a
 * path never changes, so a cached one is never stale; tileHashReader still checks every tile it uses.
 * Throws NotFoundError `tile_not_found` for a tile that is not there.
 */
export function blobTileReader(blobs: BlobStore, cacheSize = 512): TileReader {
  const cache = new Map<string, Uint8Array>();
  const read = async (t: Tile): Promise<Uint8Array> => {
    const path = tilePath(t);
    const hit = cache.get(path);
    if (hit) {
      cache.delete(path);
      cache.set(path, hit);
      return hit;
    }
    const data = await blobs.get(path);
    if (data === undefined) throw new InvalidInputError(`the log's ${path} is missing`, { code: 'tile_not_found', hint: 'restore public/ from a backup of the data directory' });
    cache.set(path, data);
    if (cache.size > cacheSize) cache.delete(cache.keys().next().value!);
    return data;
  };
  return { readTiles: (tiles) => Promise.all(tiles.map(read)) };
}
