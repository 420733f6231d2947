/**
 * Log server test helpers: raw HTTP requests (any method, path, content type), and reading a whole
 * log back through its public read API, every tile checked against a checkpoint opened with the
 * log's verifier key and every entry bundle against its tile.
 */
import { request } from 'node:http';
import { openCheckpoint, type Checkpoint } from '../../src/log/checkpoint.js';
import { parseVerifierKey } from '../../src/log/note.js';
import { verifyTree, type TileReader } from '../../src/log/tile-reader.js';
import { ENTRIES_LEVEL, parseEntryBundle, tilePath, verifyEntryBundle } from '../../src/log/tiles.js';
import { createEntry } from '../../src/log/entry.js';
import type { Identity } from '../../src/identity.js';
import { utf8 } from '../../src/util/bytes.js';

export interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json(): { err_type?: string; [k: string]: unknown };
}

/** One HTTP request with exactly this method, path (unnormalised) and headers. */
export function raw(url: string, method: string, path: string, body?: Uint8Array | string, headers: Record<string, string> = {}): Promise<RawAnswer> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const b = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b, json: () => JSON.parse(b.toString('utf8')) as { err_type?: string } });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : typeof body === 'string' ? body : Buffer.from(body));
  });
}

/** A TileReader over a log's URL (or anything serving its public/ files). */
export function httpTileReader(url: string): TileReader {
  return {
    readTiles: (tiles) =>
      Promise.all(
        tiles.map(async (t) => {
          const res = await fetch(`${url}/${tilePath(t)}`);
          if (res.status !== 200) throw new Error(`GET ${tilePath(t)}: ${res.status}`);
          return new Uint8Array(await res.arrayBuffer());
        }),
      ),
  };
}

/** GET /checkpoint, opened with the log's verifier key. */
export async function fetchCheckpoint(url: string, vkey: string): Promise<{ note: string; checkpoint: Checkpoint }> {
  const res = await fetch(`${url}/checkpoint`);
  if (res.status !== 200) throw new Error(`GET /checkpoint: ${res.status}`);
  const note = await res.text();
  return { note, checkpoint: openCheckpoint(note, parseVerifierKey(vkey)).checkpoint };
}

/**
 * Reads every entry of the log back through its read API: the checkpoint opened with `vkey`, every
 * tile checked against its root, every bundle against its level-0 tile. Returns the checkpoint and
 * the entries in index order.
 */
export async function readWholeLog(url: string, vkey: string): Promise<{ checkpoint: Checkpoint; note: string; entries: Uint8Array[] }> {
  const { note, checkpoint } = await fetchCheckpoint(url, vkey);
  const entries: Uint8Array[] = [];
  const tiles = httpTileReader(url);
  await verifyTree({ size: checkpoint.size, root: checkpoint.rootHash }, tiles, {
    onLevelZeroTile: async (tile, data) => {
      const bundle = { level: ENTRIES_LEVEL, index: tile.index, width: tile.width };
      const [b] = await tiles.readTiles([bundle]);
      const got = parseEntryBundle(b!, tile.width);
      verifyEntryBundle(bundle, got, data);
      entries.push(...got);
    },
  });
  return { checkpoint, note, entries };
}

/** A signed test entry whose payload is `text`. */
export function testEntry(id: Identity, text: string, recordType = 'test/v1'): Uint8Array {
  return createEntry({ recordType, payload: utf8.encode(text) }, id);
}
