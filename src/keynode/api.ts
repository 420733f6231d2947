/** The key node's HTTP API as data (docs/keynode.md): bodies the server validates and the SDK sends. */
import { z } from 'zod';
import { LifeboatError } from '../errors.js';
import { MESSAGE_LIMIT_MAX } from './config.js';
import { EXPORT_TYPES } from './export.js';
import { TENANT_RE } from './tenants.js';
import { ERS_POLICIES } from './store/types.js';

export const API_PREFIX = '/v1';
/** What the store accepts as a key id (store/records.ts); anything else is refused here with 400, not deeper. */
export const KEY_ID = /^[A-Za-z0-9_-]{1,64}$/;
const keyId = z.string().regex(KEY_ID, 'a key id is 1..64 of A-Z a-z 0-9 _ -');

export const sessionParams = z.object({ session_id: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'a session id is 8..64 of A-Z a-z 0-9 _ -') });
export const keyParams = z.object({ key_id: keyId });
const tenant = z.string().regex(TENANT_RE, 'a tenant is 1..64 of a-z 0-9 _ . -, starting with a letter or digit');

/** `GET /keys`: one page in key id order; a client sees its own tenant's keys, an operator every tenant's. */
export const listKeysQuery = z.object({
  after: keyId.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  tenant: tenant.optional(),
});

export const dkgStartBody = z.object({
  key_id: keyId,
  curve: z.enum(['ed25519', 'secp256k1', 'bip340']),
  threshold: z.number().int().min(2).max(32),
  /** Every participant's identity token (lb1.…), this node's included; order defines identifiers. */
  participants: z.array(z.string().max(200)).min(2).max(32),
  /** The key's own ERS policy (docs/ers.md, "Policy"); absent: the node's settings decide. */
  ers_policy: z.enum(ERS_POLICIES).optional(),
});
export const dkgRound2Body = z.object({ round1: z.array(z.unknown()).min(2).max(32) });
export const dkgFinishBody = z.object({ round2: z.array(z.unknown()).min(1).max(31) });

/**
 * `POST /keys/{key_id}/commitments` (round one): optionally the length of the message round two will
 * sign, so a message over the node's limit is refused before a nonce is drawn. Optional: a caller that
 * leaves it out is held to the limit in round two only.
 */
export const commitmentsBody = z.object({ message_length: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional() });

export const signatureShareBody = z.object({
  nonce_id: z.string().regex(/^[0-9a-f]{32}$/),
  /**
   * The message to sign, hex. Its length is held to the node's `message_limit_bytes` by the route
   * (messageTooLarge), which also sizes the body limit; this only bounds it by the largest setting.
   */
  message: z
    .string()
    .max(2 * MESSAGE_LIMIT_MAX)
    .regex(/^[0-9a-fA-F]*$/)
    .refine((s) => s.length % 2 === 0, 'an even number of hex digits'),
  commitments: z.array(z.unknown()).min(2).max(32),
});

export const exportQuery = z.object({
  export_type: z.enum(EXPORT_TYPES).default('encrypted'),
  wrapping_key: z.string().max(64).optional(),
});

export const importBody = z.object({
  key_id: keyId,
  export_type: z.enum(EXPORT_TYPES),
  key_share: z.string().min(1).max(64 * 1024),
  public: z.unknown(),
  threshold: z.number().int().min(1).max(32).optional(),
  /** The owner, for an operator's or the paired primary's import; a client's goes to its own tenant. */
  tenant: tenant.optional(),
  /** An encrypted export's own: the tenant it was sealed for (export.ts). */
  export_tenant: tenant.optional(),
  /** The key's own ERS policy (docs/ers.md, "Policy"): a fail-over push carries the primary's; absent: none. */
  ers_policy: z.enum(ERS_POLICIES).optional(),
});

/** Room in a signature-share body beside the message's hex: the nonce id and a commitment list of 32 signers. */
export const SIGNATURE_SHARE_ROOM = 64 * 1024;

/** The body limit of the signature-share route for a node whose message limit is `limit` bytes. */
export function signatureShareBodyLimit(limit: number): number {
  return 2 * limit + SIGNATURE_SHARE_ROOM;
}

/** `1048576 bytes (1 MiB)`: a limit as the errors and the CLI name it. */
export function describeByteLimit(limit: number): string {
  const unit = limit % (1024 * 1024) === 0 ? `${limit / (1024 * 1024)} MiB` : limit % 1024 === 0 ? `${limit / 1024} KiB` : undefined;
  return unit ? `${limit} bytes (${unit})` : `${limit} bytes`;
}

/**
 * The refusal of a message over the node's limit: LifeboatError `message_too_large`, 413, naming the
 * limit (and the message's size when it is known).
 */
export function messageTooLarge(limit: number, size?: number): LifeboatError {
  const what = size === undefined ? 'the message is' : `the message is ${size} bytes,`;
  return new LifeboatError('message_too_large', `${what} over this node's limit of ${describeByteLimit(limit)}`, {
    status: 413,
    hint: 'sign a digest of it, or raise the limit on every node of the key: `lifeboat node config set message_limit_bytes N`, then restart them',
  });
}
