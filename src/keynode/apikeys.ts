/**
 * API keys for the key node: `lbk_<id>_<secret>` where id is 16 hex characters and secret 43 base64url
 * characters (32 random bytes). The store keeps only SHA-256("lifeboat:api-key\0" || secret): the
 * secret has 256 bits of entropy, so a fast hash is enough and a stolen database yields no usable key.
 * Verification compares in constant time and fails the same way for an unknown id, a wrong secret and
 * a revoked key. A client key belongs to one tenant (./tenants.ts), an operator key to none.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes } from '../crypto/random.js';
import { ForbiddenError, InvalidInputError, UnauthorizedError } from '../errors.js';
import { concatBytes, ctEqual, fromB64u, toB64u, toHex, utf8 } from '../util/bytes.js';
import type { ApiKeyRecord, ApiKeyRole, KeyNodeStoreOps } from './store/types.js';
import { ownTenant } from './tenants.js';

const TOKEN = /^lbk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const DUMMY_HASH = new Uint8Array(32);

function hashSecret(secret: Uint8Array): Uint8Array {
  return sha256(concatBytes(utf8.encode('lifeboat:api-key\0'), secret));
}

/** What a new or imported API key belongs to: a client key's tenant (default: its own), never an operator's. */
export interface ApiKeyOptions {
  /** A client key's tenant (checked with checkTenantName by the caller); without it the key's own. */
  tenant?: string;
  now?: number;
}

/** A client key's tenant: the one given, else its own; an operator key has none. Throws `wrong_role` for an operator with a tenant. */
function tenantFor(role: ApiKeyRole, id: string, tenant: string | undefined): string | null {
  if (role === 'operator') {
    if (tenant !== undefined) throw new InvalidInputError('an operator API key sees every tenant and belongs to none', { code: 'wrong_role', hint: 'leave out --tenant for an operator key' });
    return null;
  }
  return tenant ?? ownTenant(id);
}

/** Creates an API key; returns the token (shown once) and the record to store. Throws InvalidInputError `wrong_role` (see ApiKeyOptions). */
export function newApiKey(role: ApiKeyRole, label: string, opts: ApiKeyOptions = {}): { token: string; record: ApiKeyRecord } {
  const id = toHex(randomBytes(8));
  const secret = randomBytes(32);
  const record = { id, secretHash: hashSecret(secret), role, label, createdAt: opts.now ?? Date.now(), revokedAt: null, tenant: tenantFor(role, id, opts.tenant) };
  return { token: `lbk_${id}_${toB64u(secret)}`, record };
}

/**
 * The record for an existing token (to register one client's key on several nodes): without a tenant
 * a client key gets its own, derived from the token's id, so every node agrees. Throws
 * InvalidInputError `malformed` when it is not an `lbk_…` token, `wrong_role` (see ApiKeyOptions).
 */
export function apiKeyRecordFromToken(token: string, role: ApiKeyRole, label: string, opts: ApiKeyOptions = {}): ApiKeyRecord {
  const m = TOKEN.exec(token.trim());
  if (!m) throw new InvalidInputError('not a lifeboat API key (lbk_<16 hex>_<43 base64url>)', { code: 'malformed' });
  const id = m[1]!;
  return { id, secretHash: hashSecret(fromB64u(m[2]!, 'api key secret', 32)), role, label, createdAt: opts.now ?? Date.now(), revokedAt: null, tenant: tenantFor(role, id, opts.tenant) };
}

/**
 * Checks `Authorization: Bearer lbk_…` against the store and the roles a route allows. Throws
 * UnauthorizedError `unauthorized` (missing, malformed, unknown, wrong or revoked: one answer) and
 * ForbiddenError `wrong_role`.
 */
export async function authenticateApiKey(store: Pick<KeyNodeStoreOps, 'findApiKeyById'>, header: string | undefined, allowed: readonly ApiKeyRole[]): Promise<ApiKeyRecord> {
  const m = header?.startsWith('Bearer ') ? TOKEN.exec(header.slice(7).trim()) : null;
  const fail = () => new UnauthorizedError('missing or invalid API key', 'unauthorized', 'send Authorization: Bearer lbk_… (create one with `lifeboat node apikey create`)');
  if (!m) throw fail();
  let secret: Uint8Array;
  try {
    secret = fromB64u(m[2]!, 'api key secret', 32);
  } catch {
    throw fail(); // 43 characters with non-zero trailing bits: not a token we issued, and the same answer
  }
  const record = await store.findApiKeyById(m[1]!);
  const ok = ctEqual(hashSecret(secret), record?.secretHash ?? DUMMY_HASH);
  if (!record || !ok || record.revokedAt !== null) throw fail();
  if (!allowed.includes(record.role)) throw new ForbiddenError(`this route needs the ${allowed.join(' or ')} role`, 'wrong_role');
  return record;
}
