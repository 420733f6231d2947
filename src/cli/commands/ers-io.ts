/**
 * The files and secrets of `lifeboat ers` (ers.ts, ers-recover.ts): RSA keys and packages read by
 * name, output paths checked before any work, outputs written atomically, the API key and passphrases
 * from their descriptors.
 */
import { readApiKey } from '../api-key.js';
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { LifeboatError } from '../../errors.js';
import { parsePackage, type ErsPackage } from '../../ers/format.js';
import { parseErsPublicKey } from '../../ers/rsa.js';
import { utf8 } from '../../util/bytes.js';
import { readFileOrThrow, writeFileAtomic } from '../../util/files.js';

export const KEEP_APART = 'keep the package and the RSA private key in different places until the day you recover';

/** The RSA public key at `path`. Throws NotFoundError `file_not_found` and parseErsPublicKey's (`invalid_pem`, `invalid_rsa_key`, `rsa_key_too_small`). */
export function readPublic(path: string) {
  return parseErsPublicKey(readFileOrThrow(path, 'ERS public key'), `--ers-public ${path}`);
}

/** The package at `path`, parsed (shapes only). Throws NotFoundError `file_not_found` and FormatError naming the path. */
export function readPackage(path: string): ErsPackage {
  return parsePackage(readFileOrThrow(path, 'emergency recovery package'), path);
}

/** Refuses an --out whose directory is missing or that is a directory, before any work. */
export function checkOutputPath(path: string): void {
  let problem: string | undefined;
  if (existsSync(path) && statSync(path).isDirectory()) problem = 'is a directory';
  else if (!existsSync(dirname(resolve(path)))) problem = `is in a directory that does not exist (${dirname(resolve(path))})`;
  if (problem) throw new LifeboatError('output_unwritable', `cannot write ${path}: it ${problem}`, { hint: 'give --out a path in an existing, writable directory' });
}

/** The API key: --api-key-file (0600) or $LIFEBOAT_API_KEY. Throws InvalidInputError `api_key_required`. */
export function apiToken(apiKeyFile: string | undefined): string {
  return readApiKey(apiKeyFile);
}

/** A passphrase from file descriptor `fd`, without its line end. */
export function readFd(fd: number): string {
  return utf8.decode(readFileOrThrow(`/dev/fd/${fd}`, 'passphrase')).replace(/\r?\n$/, '');
}

/**
 * Writes an output file (atomically, `mode`). Throws LifeboatError `output_unwritable` naming the path
 * when its directory is missing or not writable, or the path is a directory.
 */
export function writeOutput(path: string, data: string, mode: number): void {
  try {
    writeFileAtomic(path, data, mode);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new LifeboatError('output_unwritable', `cannot write ${path} (${code})`, { hint: 'give a path in an existing, writable directory that is not itself a directory' });
  }
}
