/**
 * The backup service's secret files in its data directory (docs/backup-server.md): the OPAQUE server
 * setup and the TOTP seal key. Each is created once, 0600 and exclusively (temp file, fsync, link), so
 * two services started at once on one directory end up with the same file, and is refused when others
 * can read it.
 */
import { closeSync, existsSync, fsyncSync, linkSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { LifeboatError } from '../errors.js';
import { assertPrivateFile, ensurePrivateDir, fsyncDir } from '../util/files.js';
import { fromB64 } from '../util/bytes.js';

/**
 * The content of `<dir>/<name>` (trimmed), made by `make` on first use. Throws InvalidInputError
 * `insecure_permissions` for a file others can read.
 */
export function loadOrCreateSecretFile(dir: string, name: string, what: string, make: () => string): string {
  const path = join(dir, name);
  if (!existsSync(path)) {
    ensurePrivateDir(dir);
    const tmp = join(dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeSync(fd, `${make()}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(tmp, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      rmSync(tmp, { force: true });
    }
    fsyncDir(dir);
  }
  assertPrivateFile(path, what);
  return readFileSync(path, 'utf8').trim();
}

export const TOTP_KEY_FILE = 'totp-seal-key';

/**
 * The TOTP seal key (32 random bytes, base64, in `<dir>/totp-seal-key`), created on first use: every
 * account's TOTP secret is sealed under keys derived from it, so the database alone yields none.
 * Losing it disables every second factor (each account enrols again). Throws InvalidInputError
 * `insecure_permissions`, LifeboatError `totp_key_invalid` for a file that is not 32 bytes of base64.
 */
export function loadOrCreateTotpSealKey(dir: string): Uint8Array {
  const text = loadOrCreateSecretFile(dir, TOTP_KEY_FILE, 'totp seal key', () => randomBytes(32).toString('base64'));
  try {
    return fromB64(text, 'totp seal key', 32);
  } catch {
    throw new LifeboatError('totp_key_invalid', `${join(dir, TOTP_KEY_FILE)} is not a totp seal key`, { hint: 'restore it from the backup kept with opaque-server-setup' });
  }
}
