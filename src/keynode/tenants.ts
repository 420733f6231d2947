/**
 * Tenants (docs/keynode.md, "Tenants"): who owns a key. Every key and every client API key names one;
 * operator API keys none (they see every key). This file holds the name rules, the default a client
 * key gets, and how records written before tenants are read (docs/format.md, "Store records").
 */
import { FormatError, InvalidInputError } from '../errors.js';

/** 1 to 64 of a-z 0-9 _ . -, starting with a letter or digit. */
export const TENANT_RE = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
/** Where the migration puts the keys and client API keys of a store made before tenants. */
export const DEFAULT_TENANT = 'default';
/** The prefix of a client API key's own tenant; a name an operator chooses may not begin with it. */
const OWN_PREFIX = 'apikey-';

/** True for a well-formed tenant name (own tenants included). */
export function isTenant(value: unknown): value is string {
  return typeof value === 'string' && TENANT_RE.test(value);
}

/** The tenant of a client API key made without one: its own, named after its id (the same on every node). */
export function ownTenant(apiKeyId: string): string {
  return `${OWN_PREFIX}${apiKeyId}`;
}

/**
 * Checks a tenant name an operator chose (`--tenant`). Throws InvalidInputError `invalid_tenant` for a
 * malformed name or one in the reserved `apikey-` space.
 */
export function checkTenantName(value: string): string {
  if (!TENANT_RE.test(value)) {
    throw new InvalidInputError(`tenant ${JSON.stringify(value.slice(0, 80))} is not a tenant name`, { code: 'invalid_tenant', hint: '1 to 64 of a-z 0-9 _ . -, starting with a letter or digit' });
  }
  if (value.startsWith(OWN_PREFIX)) {
    throw new InvalidInputError(`tenant names beginning with ${OWN_PREFIX} are reserved`, { code: 'invalid_tenant', hint: 'leave out --tenant to give a client key a tenant of its own' });
  }
  return value;
}

/**
 * A key record read from a backup (node backup file, backup stream): without `tenant` (written before
 * tenants) it belongs to `default`. Throws FormatError `malformed` for a tenant of the wrong form.
 */
export function keyTenantFromBackup<T extends object>(rec: T, what: string): T & { tenant: string } {
  const t = (rec as { tenant?: unknown }).tenant;
  if (t === undefined) return { ...rec, tenant: DEFAULT_TENANT };
  if (!isTenant(t)) throw new FormatError('malformed', `${what}: tenant is malformed`);
  return rec as T & { tenant: string };
}

/**
 * An API key record read from a backup: without `tenant`, a client key belongs to `default` and an
 * operator key to none. Throws FormatError `malformed` for a client key without a well-formed tenant
 * or an operator key with one.
 */
export function apiKeyTenantFromBackup<T extends object>(rec: T, what: string): T & { tenant: string | null } {
  const { role, tenant } = rec as { role?: unknown; tenant?: unknown };
  if (tenant === undefined) return { ...rec, tenant: role === 'operator' ? null : DEFAULT_TENANT };
  if (role === 'operator' ? tenant !== null : !isTenant(tenant)) throw new FormatError('malformed', `${what}: tenant is malformed for its role`);
  return rec as T & { tenant: string | null };
}
