/** Key derivation: HKDF-SHA256 for keys from keys, Argon2id (RFC 9106) for keys from passwords. */
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { argon2id } from 'hash-wasm';
import { InvalidInputError } from '../errors.js';
import { utf8 } from '../util/bytes.js';

/** HKDF-SHA256 (RFC 5869) with a textual `info` label under the "lifeboat:" namespace. */
export function deriveKey(ikm: Uint8Array, salt: Uint8Array, info: string, length = 32): Uint8Array {
  return hkdf(sha256, ikm, salt, utf8.encode(`lifeboat:${info}`), length);
}

/** Argon2id parameters; the default is RFC 9106's second recommended option. */
export interface Argon2Params {
  memoryKiB: number;
  iterations: number;
  parallelism: number;
}

export const ARGON2_DEFAULT: Argon2Params = { memoryKiB: 65536, iterations: 3, parallelism: 4 };

/** Derives a 32-byte key from a password with Argon2id. Throws InvalidInputError on weak parameters. */
export async function passwordKey(password: Uint8Array, salt: Uint8Array, params: Argon2Params = ARGON2_DEFAULT): Promise<Uint8Array> {
  if (salt.length < 16) throw new InvalidInputError('argon2id salt must be at least 16 bytes');
  if (params.memoryKiB < 8 * params.parallelism || params.iterations < 1) throw new InvalidInputError('argon2id parameters out of range');
  return argon2id({
    password,
    salt,
    memorySize: params.memoryKiB,
    iterations: params.iterations,
    parallelism: params.parallelism,
    hashLength: 32,
    outputType: 'binary',
  });
}
