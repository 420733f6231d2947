/**
 * Record checks and the mapping between records (camelCase, Uint8Array) and rows (snake_case, driver
 * Buffers). Every store method checks its arguments here before it touches the database.
 */
import { InvalidInputError } from '../../errors.js';
import { isTenant } from '../tenants.js';
import type { ApiKeysTable, DkgSessionsTable, KeysTable, NoncesTable } from './schema.js';
import {
  API_KEY_ROLES,
  type ApiKeyRecord,
  CURVES,
  type DkgSessionRecord,
  KEY_ORIGINS,
  ERS_POLICIES,
  type ErsPolicy,
  KEY_STATUSES,
  type KeyRecord,
  type KeyStatus,
  type ListKeysOptions,
  type NonceRecord,
} from './types.js';

const ID = /^[A-Za-z0-9_-]{1,64}$/;
const HEX = /^(?:[0-9a-f]{2}){1,64}$/;
/** Generous: a sealed share or a public package of 255 participants is far smaller. */
const MAX_BYTES = 1 << 20;
const MAX_TEXT = 4096;
/** An outbox change or entry: a key_put carries three byte fields of up to MAX_BYTES, in base64. */
const MAX_OUTBOX_BYTES = 8 << 20;

export function checkId(value: unknown, name: string): string {
  if (typeof value !== 'string' || !ID.test(value)) {
    throw new InvalidInputError(`${name} must be 1 to 64 characters of A-Z a-z 0-9 _ -`);
  }
  return value;
}

export function checkText(value: unknown, name: string, min = 0): string {
  if (typeof value !== 'string' || value.length < min || value.length > MAX_TEXT) {
    throw new InvalidInputError(`${name} must be a string of ${min} to ${MAX_TEXT} characters`);
  }
  return value;
}

export function checkInt(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new InvalidInputError(`${name} must be an integer from ${min} to ${max}`);
  }
  return value;
}

export function checkMillis(value: unknown, name: string): number {
  return checkInt(value, name, 0, Number.MAX_SAFE_INTEGER);
}

function checkBytes(value: unknown, name: string, min = 1, max = MAX_BYTES): Buffer {
  if (!(value instanceof Uint8Array) || value.length < min || value.length > max) {
    throw new InvalidInputError(`${name} must be ${min} to ${max} bytes`);
  }
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

function checkOneOf<T extends string>(value: unknown, name: string, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new InvalidInputError(`${name} must be one of ${allowed.join(', ')}`);
  }
  return value as T;
}

/** A tenant name (../tenants.ts). */
export function checkTenant(value: unknown, name = 'tenant'): string {
  if (!isTenant(value)) throw new InvalidInputError(`${name} must be 1 to 64 of a-z 0-9 _ . -, starting with a letter or digit`);
  return value;
}

export function checkKeyStatus(value: unknown): KeyStatus {
  return checkOneOf(value, 'status', KEY_STATUSES);
}

/** An encoded change (appendOutbox) or a sealed entry (sealOutbox), 1 byte to 8 MiB. */
export function checkOutboxBytes(value: unknown, name: string): Buffer {
  return checkBytes(value, name, 1, MAX_OUTBOX_BYTES);
}

/** A page size, 1 to 10,000 (listKeys and the outbox lists). */
export function checkLimit(value: unknown): number {
  return checkInt(value, 'limit', 1, 10_000);
}

export function checkListKeys(opts: ListKeysOptions): ListKeysOptions {
  if (typeof opts !== 'object' || opts === null) throw new InvalidInputError('listKeys options must be an object');
  const limit = checkLimit(opts.limit);
  return {
    limit,
    ...(opts.afterKeyId === undefined ? {} : { afterKeyId: checkText(opts.afterKeyId, 'afterKeyId') }),
    ...(opts.tenant === undefined ? {} : { tenant: checkTenant(opts.tenant) }),
  };
}

/** Copies driver bytes (a Buffer, maybe a view into a pool) into a plain Uint8Array of their own. */
export function own(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

function requireObject(value: unknown, name: string): void {
  if (typeof value !== 'object' || value === null) throw new InvalidInputError(`${name} must be an object`);
}

export function keyToRow(k: KeyRecord): KeysTable {
  requireObject(k, 'key');
  const maxSigners = checkInt(k.maxSigners, 'maxSigners', 1, 255);
  if (typeof k.identifier !== 'string' || !HEX.test(k.identifier)) throw new InvalidInputError('identifier must be lowercase hex, 1 to 64 bytes');
  return {
    key_id: checkId(k.keyId, 'keyId'),
    curve: checkOneOf(k.curve, 'curve', CURVES),
    threshold: checkInt(k.threshold, 'threshold', 1, maxSigners),
    max_signers: maxSigners,
    identifier: k.identifier,
    group_public_key: checkBytes(k.groupPublicKey, 'groupPublicKey'),
    public_package: checkBytes(k.publicPackage, 'publicPackage'),
    encrypted_share: checkBytes(k.encryptedShare, 'encryptedShare'),
    status: checkKeyStatus(k.status),
    origin: checkOneOf(k.origin, 'origin', KEY_ORIGINS),
    created_at: checkMillis(k.createdAt, 'createdAt'),
    tenant: checkTenant(k.tenant),
    ers_policy: checkErsPolicy(k.ersPolicy),
    epoch: k.epoch === undefined ? 1 : checkInt(k.epoch, 'epoch', 1, Number.MAX_SAFE_INTEGER),
  };
}

/** The record's `epoch` when it is not 1: a key of share epoch 1 (every key made before epochs) has no such field. */
function epochOf(value: number | string | bigint): { epoch?: number } {
  const n = Number(value);
  return n === 1 ? {} : { epoch: n };
}

/** A key's ERS policy, or null for none (absent or null). */
function checkErsPolicy(value: unknown): ErsPolicy | null {
  return value === undefined || value === null ? null : checkOneOf(value, 'ersPolicy', ERS_POLICIES);
}

/** The record's `ersPolicy` when it has one: a record without one has no such field. */
function ersPolicyOf(value: string | null): { ersPolicy?: ErsPolicy } {
  return value === null ? {} : { ersPolicy: value as ErsPolicy };
}

export function rowToKey(r: KeysTable): KeyRecord {
  return {
    keyId: r.key_id,
    curve: r.curve as KeyRecord['curve'],
    threshold: Number(r.threshold),
    maxSigners: Number(r.max_signers),
    identifier: r.identifier,
    groupPublicKey: own(r.group_public_key),
    publicPackage: own(r.public_package),
    encryptedShare: own(r.encrypted_share),
    status: r.status as KeyStatus,
    origin: r.origin as KeyRecord['origin'],
    createdAt: Number(r.created_at),
    tenant: r.tenant,
    ...ersPolicyOf(r.ers_policy),
    ...epochOf(r.epoch),
  };
}

export function nonceToRow(n: NonceRecord): NoncesTable {
  requireObject(n, 'nonce');
  return {
    nonce_id: checkId(n.nonceId, 'nonceId'),
    key_id: checkId(n.keyId, 'keyId'),
    encrypted_nonces: checkBytes(n.encryptedNonces, 'encryptedNonces'),
    commitments: checkBytes(n.commitments, 'commitments'),
    created_at: checkMillis(n.createdAt, 'createdAt'),
    epoch: checkInt(n.epoch, 'epoch', 0, Number.MAX_SAFE_INTEGER),
  };
}

export function rowToNonce(r: NoncesTable): NonceRecord {
  return {
    nonceId: r.nonce_id,
    keyId: r.key_id,
    encryptedNonces: own(r.encrypted_nonces),
    commitments: own(r.commitments),
    createdAt: Number(r.created_at),
    epoch: Number(r.epoch),
  };
}

export function dkgToRow(s: DkgSessionRecord): DkgSessionsTable {
  requireObject(s, 'DKG session');
  return {
    session_id: checkId(s.sessionId, 'sessionId'),
    key_id: checkId(s.keyId, 'keyId'),
    state: checkBytes(s.state, 'state'),
    step: checkInt(s.step, 'step', 0, 1000),
    expires_at: checkMillis(s.expiresAt, 'expiresAt'),
    tenant: checkTenant(s.tenant),
    ers_policy: checkErsPolicy(s.ersPolicy),
  };
}

export function rowToDkg(r: DkgSessionsTable): DkgSessionRecord {
  return { sessionId: r.session_id, keyId: r.key_id, state: own(r.state), step: Number(r.step), expiresAt: Number(r.expires_at), tenant: r.tenant, ...ersPolicyOf(r.ers_policy) };
}

export function apiKeyToRow(a: ApiKeyRecord): ApiKeysTable {
  requireObject(a, 'API key');
  const createdAt = checkMillis(a.createdAt, 'createdAt');
  const role = checkOneOf(a.role, 'role', API_KEY_ROLES);
  // A client key belongs to exactly one tenant; an operator key to none (it sees them all).
  if (role === 'operator' && a.tenant !== null) throw new InvalidInputError('an operator API key has no tenant (tenant must be null)');
  return {
    id: checkId(a.id, 'id'),
    secret_hash: checkBytes(a.secretHash, 'secretHash', 16),
    role,
    label: checkText(a.label, 'label'),
    created_at: createdAt,
    revoked_at: a.revokedAt === null ? null : checkMillis(a.revokedAt, 'revokedAt'),
    tenant: role === 'operator' ? null : checkTenant(a.tenant),
  };
}

export function rowToApiKey(r: ApiKeysTable): ApiKeyRecord {
  return {
    id: r.id,
    secretHash: own(r.secret_hash),
    role: r.role as ApiKeyRecord['role'],
    label: r.label,
    createdAt: Number(r.created_at),
    revokedAt: r.revoked_at === null ? null : Number(r.revoked_at),
    tenant: r.tenant,
  };
}
