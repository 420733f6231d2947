/**
 * Read-only monitor tokens (`lbm_…`), shared by the servers that answer `lifeboat coverage`: the backup
 * service (src/backup/monitor.ts: stream heads) and the key node (src/keynode/server.ts: its coverage
 * pages and status). A token is 32 random bytes; only its SHA-256 is kept, one per line, in the data
 * directory's `monitor-tokens` (0600, written atomically). A running server reads the file per request,
 * so a new token works at once. A monitor token reads public facts and nothing else: it can never be
 * used where an API key or a password is asked for.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes } from '../crypto/random.js';
import { UnauthorizedError } from '../errors.js';
import { ctEqual, fromHex, toB64u, toHex } from '../util/bytes.js';
import { assertPrivateFile, writeFileAtomic } from '../util/files.js';

export const MONITOR_TOKENS_FILE = 'monitor-tokens';
const TOKEN = /^Bearer (lbm_[A-Za-z0-9_-]{43})$/;
const utf8 = new TextEncoder();

/** The SHA-256 of each monitor token kept in `dataDir`; [] when there is none. Throws `insecure_permissions`. */
export function readMonitorHashes(dataDir: string): Uint8Array[] {
  const path = join(dataDir, MONITOR_TOKENS_FILE);
  if (!existsSync(path)) return [];
  assertPrivateFile(path, 'monitor token file');
  return readFileSync(path, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^[0-9a-f]{64}$/.test(l))
    .map((l) => fromHex(l, 'monitor token hash', 32));
}

/** Makes a monitor token, keeps its hash beside the others (0600, atomically) and returns it (shown once). */
export function addMonitorToken(dataDir: string): string {
  const token = `lbm_${toB64u(randomBytes(32))}`;
  const lines = readMonitorHashes(dataDir).map((h) => toHex(h));
  lines.push(toHex(sha256(utf8.encode(token))));
  writeFileAtomic(join(dataDir, MONITOR_TOKENS_FILE), `${lines.join('\n')}\n`);
  return token;
}

/** True when `header` carries a monitor token (well formed or not: `Bearer lbm_…`), which only checkMonitorToken may judge. */
export function isMonitorBearer(header: string | undefined): boolean {
  return header?.startsWith('Bearer lbm_') === true;
}

/**
 * Throws UnauthorizedError `unauthorized` unless `header` is `Bearer lbm_…` of a known token (its hash
 * compared in constant time with every known one).
 */
export function checkMonitorToken(header: string | undefined, hashes: Uint8Array[], hint: string): void {
  const m = TOKEN.exec(header ?? '');
  const h = sha256(utf8.encode(m?.[1] ?? ''));
  let ok = false;
  for (const known of hashes) ok = ctEqual(h, known) || ok;
  if (!m || !ok) throw new UnauthorizedError('a monitor token is required', 'unauthorized', hint);
}
