/**
 * The key package a backup record encrypts (`LBKP` v1): what a node needs to hold the key again, and
 * to serve as itself: its identity seeds, the key's owner (tenant), its share and public package. The
 * key id, epoch and identifier repeat the record's, so a ciphertext moved into another record is
 * refused after decryption. Compressed with brotli before encryption when that shrinks it. Pure.
 * Byte layout: docs/format.md, "Key-share backup record".
 */
import { brotliCompressSync, brotliDecompressSync, constants } from 'node:zlib';
import { FormatError, InvalidInputError } from '../errors.js';
import { concatBytes, utf8 } from '../util/bytes.js';
import { checkKeyId } from '../keynode/frost/keyshare.js';
import { encodeFrostPublic, type FrostPublic, parseFrostPublic } from '../keynode/frost/public.js';
import { checkSecretScalar, type FrostCurve, hex, parseHex, parseIdentifier, SCALAR_LEN } from '../keynode/frost/suite.js';
import { isTenant } from '../keynode/tenants.js';
import type { Compression } from './record.js';

export const PACKAGE_MAGIC = utf8.encode('LBKP');
export const PACKAGE_VERSION = 1;
/** A package decompresses to at most this: a public package is at most 64 KiB. */
export const MAX_PACKAGE_BYTES = 96 * 1024;

export interface KeyPackage {
  /** The node identity's two secret seeds (Ed25519 seed || X25519 secret), as `node/identity` stores them. Secret. */
  identitySeeds: Uint8Array;
  epoch: number;
  keyId: string;
  tenant: string;
  curve: FrostCurve;
  identifier: string;
  /** The signing share (secret). */
  share: Uint8Array;
  public: FrostPublic;
}

/** Encodes a package. Throws InvalidInputError on a bad field. The result is secret: wipe it when done. */
export function encodeKeyPackage(p: KeyPackage): Uint8Array {
  if (!(p.identitySeeds instanceof Uint8Array) || p.identitySeeds.length !== 64) throw new InvalidInputError('package identity seeds must be 64 bytes');
  if (!Number.isSafeInteger(p.epoch) || p.epoch < 1) throw new InvalidInputError('package epoch must be an integer from 1 to 2^53 - 1');
  checkKeyId(p.keyId);
  if (!isTenant(p.tenant)) throw new InvalidInputError('package tenant is not a tenant name');
  parseIdentifier(p.curve, p.identifier);
  checkSecretScalar(p.curve, p.share, 'signing share');
  const epoch = new Uint8Array(8);
  new DataView(epoch.buffer).setBigUint64(0, BigInt(p.epoch));
  const id = utf8.encode(p.keyId);
  const tenant = utf8.encode(p.tenant);
  return concatBytes(
    PACKAGE_MAGIC,
    new Uint8Array([PACKAGE_VERSION]),
    p.identitySeeds,
    epoch,
    parseHex(p.identifier, 'identifier', SCALAR_LEN),
    new Uint8Array([id.length]),
    id,
    new Uint8Array([tenant.length]),
    tenant,
    p.share,
    encodeFrostPublic(p.curve, p.public),
  );
}

const bad = (why: string): FormatError => new FormatError('malformed', `key package: ${why}`);

/**
 * Parses a package. The public package gets the full check (every element, every verifying share
 * against the commitments). Throws FormatError `bad_magic`, `unsupported_version`, `truncated`,
 * `malformed` (a bad field, a public package of another curve than `curve`).
 */
export function parseKeyPackage(bytes: Uint8Array, curve: FrostCurve): KeyPackage {
  if (bytes.length < 5 || !PACKAGE_MAGIC.every((b, i) => bytes[i] === b)) throw new FormatError('bad_magic', 'not a key package: bad magic');
  if (bytes[4] !== PACKAGE_VERSION) throw new FormatError('unsupported_version', `key package version ${bytes[4]} is not supported (this build reads version ${PACKAGE_VERSION})`, 'upgrade lifeboat');
  let o = 5;
  const need = (n: number): void => {
    if (bytes.length < o + n) throw new FormatError('truncated', 'key package is truncated');
  };
  need(64 + 8 + SCALAR_LEN + 1);
  const identitySeeds = bytes.slice(o, o + 64);
  o += 64;
  const epochBig = new DataView(bytes.buffer, bytes.byteOffset + o, 8).getBigUint64(0);
  if (epochBig < 1n || epochBig > BigInt(Number.MAX_SAFE_INTEGER)) throw bad('epoch out of range');
  o += 8;
  const identifier = hex(bytes.subarray(o, o + SCALAR_LEN));
  o += SCALAR_LEN;
  const text = (what: string): string => {
    need(1);
    const n = bytes[o]!;
    need(1 + n);
    try {
      return utf8.decode(bytes.subarray(o + 1, o + 1 + n));
    } catch {
      throw bad(`${what} is not utf-8`);
    } finally {
      o += 1 + n;
    }
  };
  const keyId = text('key id');
  const tenant = text('tenant');
  try {
    checkKeyId(keyId);
    parseIdentifier(curve, identifier);
  } catch {
    throw bad('bad key id or identifier');
  }
  if (!isTenant(tenant)) throw bad('bad tenant');
  need(SCALAR_LEN + 1);
  const share = bytes.slice(o, o + SCALAR_LEN);
  o += SCALAR_LEN;
  let pub: FrostPublic;
  try {
    pub = parseFrostPublic(bytes.subarray(o), { curve }).public;
  } catch (err) {
    throw bad(err instanceof Error ? err.message : 'bad public package');
  }
  return { identitySeeds, epoch: Number(epochBig), keyId, tenant, curve, identifier, share, public: pub };
}

/** Brotli when it shrinks the package, else as is. */
export function compressPackage(plain: Uint8Array): { compression: Compression; bytes: Uint8Array } {
  const z = new Uint8Array(brotliCompressSync(plain, { params: { [constants.BROTLI_PARAM_QUALITY]: 5, [constants.BROTLI_PARAM_SIZE_HINT]: plain.length } }));
  return z.length < plain.length ? { compression: 'brotli', bytes: z } : { compression: 'none', bytes: plain.slice() };
}

/** Undoes compressPackage, refusing output over MAX_PACKAGE_BYTES. Throws FormatError `malformed`. */
export function decompressPackage(compression: Compression, bytes: Uint8Array): Uint8Array {
  if (compression === 'none') {
    if (bytes.length > MAX_PACKAGE_BYTES) throw bad('too large');
    return bytes;
  }
  try {
    return new Uint8Array(brotliDecompressSync(bytes, { maxOutputLength: MAX_PACKAGE_BYTES }));
  } catch {
    throw bad('does not decompress (brotli), or is over 96 KiB');
  }
}
