/**
 * Release requests for an air-gapped holder: `recovery request` writes the signed request (public) and
 * keeps the one-time secret key under `<data-dir>/pending-releases/<request_id>.json` (0600) until
 * `recovery reconstruct --release-response` opens the answer with it.
 */
import { join } from 'node:path';
import { existsSync, rmSync } from 'node:fs';
import { z } from 'zod';
import { FormatError, NotFoundError } from '../errors.js';
import { boxPublicKey, type BoxKeyPair } from '../crypto/sealedbox.js';
import { fromB64, toB64, utf8 } from '../util/bytes.js';
import { assertPrivateFile, ensurePrivateDir, readFileOrThrow, writeFileAtomic } from '../util/files.js';

const pendingSchema = z.object({
  version: z.literal(1),
  type: z.literal('lifeboat-pending-release'),
  request_id: z.string().regex(/^[A-Za-z0-9_-]{22}$/),
  secret_key: z.string(),
});

function pendingPath(dataDir: string, requestId: string): string {
  return join(dataDir, 'pending-releases', `${requestId}.json`);
}

/** Keeps the one-time key of a request (0600, atomic). */
export function savePendingRelease(dataDir: string, requestId: string, key: BoxKeyPair): void {
  ensurePrivateDir(join(dataDir, 'pending-releases'));
  const doc = { version: 1, type: 'lifeboat-pending-release', request_id: requestId, secret_key: toB64(key.secretKey) };
  writeFileAtomic(pendingPath(dataDir, requestId), `${JSON.stringify(doc)}\n`);
}

/**
 * Loads the one-time key of a request. Throws NotFoundError `pending_release_not_found`, FormatError
 * `malformed` (never quoting the file), InvalidInputError when others can read it.
 */
export function loadPendingRelease(dataDir: string, requestId: string): BoxKeyPair {
  const path = pendingPath(dataDir, requestId);
  if (!/^[A-Za-z0-9_-]{22}$/.test(requestId) || !existsSync(path)) {
    throw new NotFoundError(`no pending release request ${requestId} in ${dataDir}`, 'pending_release_not_found', 'use the same --data-dir as `recovery request`');
  }
  assertPrivateFile(path, 'pending release key');
  const bytes = readFileOrThrow(path, 'pending release key');
  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(bytes));
  } catch {
    // Not JSON.parse's own message: it quotes the file, and this file holds a secret key.
    json = undefined;
  }
  const r = pendingSchema.safeParse(json);
  if (!r.success || r.data.request_id !== requestId) throw new FormatError('malformed', `${path} is not a pending release key`);
  const secretKey = fromB64(r.data.secret_key, 'one-time secret key', 32);
  return { secretKey, publicKey: boxPublicKey(secretKey) };
}

/** Removes a used one-time key. */
export function dropPendingRelease(dataDir: string, requestId: string): void {
  rmSync(pendingPath(dataDir, requestId), { force: true });
}
