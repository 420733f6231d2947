/**
 * Where an auditor reads a log: its public read API over HTTP (`--log URL`: GET URL/checkpoint,
 * URL/tile/…) or a mirrored copy of the same files (`--from-dir DIR`: DIR/checkpoint, DIR/tile/…).
 * Nothing read here is trusted: the checkpoint is checked against the log's key and every tile against
 * its root by the caller (tile-reader.ts). This file only fetches bytes, with limits and clear errors.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidInputError, LifeboatError, LogVerificationError } from '../../errors.js';
import { tlsFetch } from '../../util/tls-fetch.js';
import { MAX_NOTE_BYTES } from '../note.js';
import type { TileReader } from '../tile-reader.js';
import { ENTRIES_LEVEL, MAX_ENTRY_SIZE, TILE_WIDTH, type Tile, encodeEntryBundle, parseEntryBundle, tilePath } from '../tiles.js';
import { HASH_SIZE } from '../merkle.js';
import { logBadAnswer, logFileMissing, logUnreachable } from './errors.js';

/** A log's read API, wherever it is. Its bytes are not trusted. */
export interface LogSource extends TileReader {
  /** The URL or directory, for messages. */
  readonly where: string;
  /** The checkpoint note's bytes. Throws `log_file_missing`, `log_unreachable`, `log_bad_answer`. */
  readCheckpoint(): Promise<Uint8Array>;
  /**
   * Each tile's or entry bundle's bytes, in the order asked. A partial one that is gone is read from
   * the full one of the same index (docs/log-format.md, "Reading tiles someone else serves"). Throws
   * as readCheckpoint.
   */
  readTiles(tiles: readonly Tile[]): Promise<Uint8Array[]>;
}

/** The most bytes a tile can have: width hashes, or width entries of the largest size. */
function maxBytes(tile: Tile): number {
  return tile.level === ENTRIES_LEVEL ? tile.width * (2 + MAX_ENTRY_SIZE) : tile.width * HASH_SIZE;
}

/** Reads one file's bytes, or null when it is not there. Throws TooLarge past `limit` bytes. */
type FetchFile = (path: string, limit: number) => Promise<Uint8Array | null>;

/** A file longer than any file of its kind can be: the fetcher stops reading it. */
class TooLarge extends Error {
  constructor(
    readonly where: string,
    readonly why: string,
  ) {
    super(why);
  }
}

/**
 * A tile or bundle longer than its kind allows is altered data, like any other wrong length: the same
 * `tile_invalid` / `entry_bundle_invalid` a wrong hash gets (a refusal for safety).
 */
function oversized(t: Tile, e: TooLarge): LogVerificationError {
  return t.level === ENTRIES_LEVEL
    ? new LogVerificationError('entry_bundle_invalid', 'trailing_data', `${e.where}: ${e.why}`, 'the mirror or the log altered this bundle: keep it as evidence')
    : new LogVerificationError('tile_invalid', 'tile_length', `${e.where}: ${e.why}`, 'the mirror or the log altered this tile: keep it as evidence');
}

/** The read API over a file fetcher: the checkpoint, and tiles with the partial-tile fallback. */
function sourceOver(where: string, fetchFile: FetchFile, concurrency: number): LogSource {
  const missing = (path: string): never => {
    throw logFileMissing(`${where.replace(/\/+$/, '')}/${path}`);
  };
  async function readTile(t: Tile): Promise<Uint8Array> {
    try {
      return await readTileUnchecked(t);
    } catch (err) {
      throw err instanceof TooLarge ? oversized(t, err) : err;
    }
  }
  async function readTileUnchecked(t: Tile): Promise<Uint8Array> {
    const path = tilePath(t);
    const data = await fetchFile(path, maxBytes(t));
    if (data) return data;
    if (t.width === TILE_WIDTH) return missing(path);
    // tlog-tiles: a partial tile may be gone once its full tile exists; its first W items are the same
    const full = { ...t, width: TILE_WIDTH };
    const fullData = await fetchFile(tilePath(full), maxBytes(full));
    if (!fullData) return missing(path);
    if (t.level !== ENTRIES_LEVEL) return fullData.subarray(0, t.width * HASH_SIZE);
    return encodeEntryBundle(parseEntryBundle(fullData).slice(0, t.width));
  }
  return {
    where,
    async readCheckpoint() {
      try {
        return (await fetchFile('checkpoint', MAX_NOTE_BYTES)) ?? missing('checkpoint');
      } catch (err) {
        throw err instanceof TooLarge ? logBadAnswer(err.where, err.why) : err;
      }
    },
    async readTiles(tiles) {
      const out: Uint8Array[] = new Array<Uint8Array>(tiles.length);
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < tiles.length) {
          const i = next++;
          out[i] = await readTile(tiles[i]!);
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, tiles.length) }, worker));
      return out;
    },
  };
}

/** Reads a response body, refusing more than `limit` bytes without reading them all. */
async function readCapped(res: Response, limit: number, where: string): Promise<Uint8Array> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > limit) throw new TooLarge(where, `the answer is ${declared} bytes, more than the ${limit} such a file can have`);
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of res.body ?? []) {
    const c = chunk as Uint8Array;
    total += c.length;
    if (total > limit) throw new TooLarge(where, `the answer is more than the ${limit} bytes such a file can have`);
    chunks.push(c);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

/** The log's base URL, checked: http or https, no query or fragment. Throws InvalidInputError. */
export function parseLogUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InvalidInputError(`--log ${JSON.stringify(url)} is not a url`, { hint: 'pass the url the log serves /checkpoint under, e.g. https://log.example.com' });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new InvalidInputError(`--log must be an http or https url, got ${u.protocol}`);
  if (u.search || u.hash || u.username || u.password) throw new InvalidInputError('--log must not have a query, fragment or credentials');
  return u.href.replace(/\/+$/, '');
}

/**
 * The read API over HTTP: GET <url>/checkpoint and <url>/tile/…, each within `timeoutMs`; 404 is a
 * missing file, another status or an oversized answer `log_bad_answer`, no answer `log_unreachable`.
 */
export function httpLogSource(url: string, opts: { timeoutMs?: number; concurrency?: number } = {}): LogSource {
  const base = parseLogUrl(url);
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return sourceOver(
    base,
    async (path, limit) => {
      const where = `${base}/${path}`;
      let res: Response | undefined;
      // a GET of a static file is safe to repeat: a kept-alive connection the server closed while the
      // auditor was busy checking signatures (ECONNRESET) is not the log being down
      for (let attempt = 1; !res; attempt++) {
        try {
          res = await tlsFetch(where, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow', headers: { accept: '*/*' } });
        } catch (err) {
          if (err instanceof LifeboatError) throw err; // tls_untrusted and its kin (src/util/tls-fetch.ts)
          const e = err as Error & { cause?: { code?: string } };
          if (e.name === 'TimeoutError') throw logUnreachable(where, `no answer within ${timeoutMs / 1000} s`);
          if (attempt >= 3) throw logUnreachable(where, e.cause?.code ?? e.message);
          await new Promise((resolve) => setTimeout(resolve, 100 * attempt * attempt));
        }
      }
      if (res.status === 404 || res.status === 410) {
        await res.body?.cancel();
        return null;
      }
      if (res.status !== 200) {
        await res.body?.cancel();
        throw logBadAnswer(where, `http status ${res.status}`);
      }
      try {
        return await readCapped(res, limit, where);
      } catch (err) {
        if ((err as Error).name === 'TimeoutError' || (err as Error).name === 'AbortError') throw logUnreachable(where, `no answer within ${timeoutMs / 1000} s`);
        throw err;
      }
    },
    opts.concurrency ?? 8,
  );
}

/** The read API from a directory (a mirror, or a log's `public/`): DIR/checkpoint, DIR/tile/…. */
export function dirLogSource(dir: string, opts: { concurrency?: number } = {}): LogSource {
  if (typeof dir !== 'string' || dir.length === 0) throw new InvalidInputError('--from-dir must name a directory');
  return sourceOver(
    dir,
    async (path, limit) => {
      let data: Buffer;
      try {
        data = await readFile(join(dir, ...path.split('/')));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return null;
        throw logUnreachable(join(dir, path), code ?? (err as Error).message);
      }
      if (data.length > limit) throw new TooLarge(join(dir, path), `the file is ${data.length} bytes, more than the ${limit} such a file can have`);
      return new Uint8Array(data.buffer, data.byteOffset, data.length);
    },
    opts.concurrency ?? 4,
  );
}
