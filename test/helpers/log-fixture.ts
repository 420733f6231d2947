/**
 * A small log writer for tests and benchmarks, built only from the pure functions of src/log: it
 * writes a valid public/ directory (checkpoint, tile/<L>/<N>[.p/<W>], tile/entries/<N>[.p/<W>]) of
 * signed entries from several submitters, growing it as a sequencer does (newTiles / newEntryBundles,
 * tiles written once), with a checkpoint signed by the log key and co-signed by test witnesses. Also a
 * tiny static file server (node:http) for reading the same directory over HTTP.
 */
import { createPrivateKey, sign as nodeSign, type KeyObject } from 'node:crypto';
import { cpSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, normalize, sep } from 'node:path';
import { signCheckpoint } from '../../src/log/checkpoint.js';
import { cosignCheckpoint, generateWitnessKey, parseWitnessSignerKey } from '../../src/log/cosignature.js';
import { encodeEntry } from '../../src/log/entry.js';
import { appendLeaves, leafHash, memoryHashReader, treeHash } from '../../src/log/merkle.js';
import { addSignatureLines, generateNoteKey, parseSignerKey, type NoteSigner } from '../../src/log/note.js';
import { ENTRIES_LEVEL, encodeEntryBundle, newEntryBundles, newTiles, readTileData, tilePath, TILE_WIDTH } from '../../src/log/tiles.js';
import { generateIdentity, type Identity } from '../../src/identity.js';
import { toB64u, utf8 } from '../../src/util/bytes.js';

export const RECORD_TYPES = ['keyshare-backup/v1', 'test-note/v1'];
const SIGNED_PREFIX = utf8.encode('lifeboat:log-entry\0');

export interface FixtureKeys {
  origin: string;
  logSigner: NoteSigner;
  /** The log's verifier key string (what `--log-key` takes). */
  logKey: string;
  witnesses: { signer: NoteSigner; vkey: string }[];
  submitters: { id: Identity; key: KeyObject }[];
}

/** Keys for a test log: its note key, `witnesses` witness keys and `submitters` identities. */
export function fixtureKeys(opts: { origin?: string; witnesses?: number; submitters?: number } = {}): FixtureKeys {
  const origin = opts.origin ?? 'log.example.test/audit';
  const k = generateNoteKey(origin);
  const witnesses = Array.from({ length: opts.witnesses ?? 0 }, (_, i) => {
    const w = generateWitnessKey(`witness-${i + 1}.example.test`);
    return { signer: parseWitnessSignerKey(w.signerKey), vkey: w.verifierKey };
  });
  const submitters = Array.from({ length: opts.submitters ?? 3 }, () => {
    const id = generateIdentity('node');
    const key = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: toB64u(id.signing.secretKey), x: toB64u(id.signingPublicKey) }, format: 'jwk' });
    return { id, key };
  });
  return { origin, logSigner: parseSignerKey(k.signerKey), logKey: k.verifierKey, witnesses, submitters };
}

/**
 * A signed LBLE entry (node's native Ed25519, the same bytes createEntry makes): entry `i` of a log is
 * by submitter i mod n, of record type i mod 2, with a payload naming `variant` and i.
 */
export function fixtureEntry(keys: FixtureKeys, i: number, variant = 'a', payloadBytes = 200): Uint8Array {
  const s = keys.submitters[i % keys.submitters.length]!;
  const payload = new Uint8Array(payloadBytes);
  payload.set(utf8.encode(`${variant}:${i}:`).subarray(0, payloadBytes));
  const fields = { recordType: RECORD_TYPES[i % RECORD_TYPES.length]!, submitter: s.id, timestamp: 1_700_000_000_000 + i * 1000, payload };
  const unsigned = encodeEntry({ ...fields, signature: new Uint8Array(64) }).subarray(0, -64);
  const sig = nodeSign(null, Buffer.concat([SIGNED_PREFIX, unsigned]), s.key);
  return encodeEntry({ ...fields, signature: new Uint8Array(sig) });
}

/** A log's public/ directory being written. */
export class LogFixture {
  readonly entries: Uint8Array[] = [];
  private readonly stored: Uint8Array[] = [];
  /** The last checkpoint note written, co-signed by the first `cosigners` witnesses. */
  note = '';

  constructor(
    readonly dir: string,
    readonly keys: FixtureKeys,
    /** How many of the witnesses co-sign each checkpoint (default: all). */
    public cosigners = keys.witnesses.length,
  ) {
    mkdirSync(dir, { recursive: true });
  }

  get size(): number {
    return this.entries.length;
  }

  /** Appends `n` fixture entries (or the given entry bytes), writes the new tiles, bundles and checkpoint. */
  async append(add: number | Uint8Array[], variant = 'a'): Promise<string> {
    const start = this.size;
    const fresh = typeof add === 'number' ? Array.from({ length: add }, (_, k) => fixtureEntry(this.keys, start + k, variant)) : add;
    const added = await appendLeaves(start, fresh.map(leafHash), memoryHashReader(this.stored));
    this.stored.push(...added);
    this.entries.push(...fresh);
    const reader = memoryHashReader(this.stored);
    for (const t of newTiles(start, this.size)) this.write(tilePath(t), await readTileData(t, reader));
    for (const b of newEntryBundles(start, this.size)) {
      this.write(tilePath(b), encodeEntryBundle(this.entries.slice(b.index * TILE_WIDTH, b.index * TILE_WIDTH + b.width)));
    }
    this.note = await this.checkpointNote();
    this.publish(this.note);
    return this.note;
  }

  /** Replaces the checkpoint file atomically (a reader never sees half of it), as a log does. */
  publish(note: string, dir = this.dir): void {
    writeFileSync(join(dir, '.checkpoint.tmp'), note);
    renameSync(join(dir, '.checkpoint.tmp'), join(dir, 'checkpoint'));
  }

  /**
   * Serves this tree from `dir` (another log's directory): adds the tiles and bundles it lacks, never
   * changing one it has, then swaps in this checkpoint. A log that forks does exactly this.
   */
  publishInto(dir: string): void {
    cpSync(join(this.dir, 'tile'), join(dir, 'tile'), { recursive: true, force: false, errorOnExist: false });
    this.publish(this.note, dir);
  }

  /** The signed (and co-signed) checkpoint of the current tree. */
  async checkpointNote(cosigners = this.cosigners): Promise<string> {
    const rootHash = await treeHash(this.size, memoryHashReader(this.stored));
    let note = signCheckpoint({ origin: this.keys.origin, size: this.size, rootHash, extensions: [] }, this.keys.logSigner);
    const text = note.slice(0, note.indexOf('\n\n') + 1);
    for (const w of this.keys.witnesses.slice(0, cosigners)) note = addSignatureLines(note, cosignCheckpoint(text, w.signer));
    return note;
  }

  /** Writes a file of the read API (path relative to the directory). */
  write(path: string, data: Uint8Array | string): void {
    const file = join(this.dir, ...path.split('/'));
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, data);
  }

  read(path: string): Uint8Array {
    return new Uint8Array(readFileSync(join(this.dir, ...path.split('/'))));
  }

  /** The path of the entry bundle holding entry `i` in the current tree. */
  bundlePath(i: number): string {
    const index = Math.floor(i / TILE_WIDTH);
    return tilePath({ level: ENTRIES_LEVEL, index, width: Math.min(TILE_WIDTH, this.size - index * TILE_WIDTH) });
  }
}

/** Serves `dir` read-only over HTTP on 127.0.0.1 (GET only, no listing), as any static server would. */
export async function serveDir(dir: string): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
  let requests = 0;
  const root = normalize(dir) + sep;
  const server = createServer((req, res) => {
    requests++;
    const path = normalize(join(dir, decodeURIComponent((req.url ?? '/').split('?')[0]!)));
    if (req.method !== 'GET' || !path.startsWith(root)) {
      res.writeHead(req.method !== 'GET' ? 405 : 404).end();
      return;
    }
    let body: Buffer;
    try {
      body = readFileSync(path);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    res.writeHead(200, { 'content-type': path.endsWith('checkpoint') ? 'text/plain; charset=utf-8' : 'application/octet-stream', 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
