/**
 * The share holder's HTTP API as data (docs/format.md, "Share holder"): request bodies the server
 * validates and answers the client validates, so both ends read the same definition.
 */
import { z } from 'zod';
import { InvalidInputError } from '../errors.js';

export const API_PREFIX = '/v1';
/** Sealed shares are tiny (a 33-word mnemonic plus 70 bytes); this bounds what a holder keeps and re-seals. */
export const MAX_SEALED_SHARE_BYTES = 3072;
/** PUT vault bodies may be this large; everything else is held to the 64 KiB default. */
export const VAULT_BODY_LIMIT = 32 * 1024 * 1024;

export const schemeIdHex = z.string().regex(/^[0-9a-f]{32}$/, 'a scheme id is 32 lowercase hex digits');
const fingerprint = z.string().regex(/^([0-9a-f]{4}:){7}[0-9a-f]{4}$/);
const identityToken = z.string().max(200);

export const schemeParams = z.object({ scheme_id: schemeIdHex });

export const putShareBody = z.object({
  member_index: z.number().int().min(0).max(15),
  sealed_share: z.string().min(1).max(4096),
  manifest: z.record(z.string(), z.unknown()),
});
export type PutShareBody = z.infer<typeof putShareBody>;

export const putVaultBody = z.object({ vault: z.string().min(1).max(VAULT_BODY_LIMIT) });
export const challengeBody = z.object({ challenge: z.string().max(64) });
export const releaseBody = z.object({ request: z.unknown() });
export const enrolBody = z.object({ primary: identityToken });

export const healthAnswer = z.object({ ok: z.literal(true) });
export const identityAnswer = z.object({ identity: identityToken, fingerprint });
export type IdentityAnswer = z.infer<typeof identityAnswer>;

export const putShareAnswer = z.object({
  scheme_id: schemeIdHex,
  member_index: z.number().int(),
  sealed_share_sha256: z.string(),
  /** false when the same share was stored already (an idempotent retry). */
  created: z.boolean(),
});
export type PutShareAnswer = z.infer<typeof putShareAnswer>;

export const putVaultAnswer = z.object({
  scheme_id: schemeIdHex,
  generation: z.number().int(),
  /** false when this exact generation was stored already (an idempotent retry). */
  stored: z.boolean(),
});
export type PutVaultAnswer = z.infer<typeof putVaultAnswer>;

export const schemeInfo = z.object({
  scheme_id: schemeIdHex,
  member_index: z.number().int(),
  /** ISO 8601, when the share was stored. */
  created_at: z.string(),
  vault_generation: z.number().int().nullable(),
  /** Hex SHA-256 of the stored vault copy, null without one (tells two copies of one generation apart). */
  vault_sha256: z.string().regex(/^[0-9a-f]{64}$/).nullable().optional(),
});
export type SchemeInfo = z.infer<typeof schemeInfo>;
export const listSchemesAnswer = z.array(schemeInfo);

export const vaultAnswer = z.object({ vault: z.string(), generation: z.number().int() });

export const challengeAnswer = z.object({
  /** Hex SHA-256 of the sealed share the holder keeps. */
  sealed_share_sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** b64 possession signature (src/recovery/possession.ts). */
  signature: z.string().max(100),
});
export type ChallengeAnswer = z.infer<typeof challengeAnswer>;

export const enrolAnswer = z.object({ primary: identityToken, fingerprint, changed: z.boolean() });
export type EnrolAnswer = z.infer<typeof enrolAnswer>;

export const deleteAnswer = z.object({ scheme_id: schemeIdHex, deleted: z.literal(true) });

export const errorAnswer = z.object({ err_type: z.string().regex(/^[a-z0-9_]{1,64}$/), message: z.string().max(2000), hint: z.string().max(2000).optional() });

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Decodes standard padded base64 strictly (node's decoder alone skips bad characters) and fast
 * enough for 32 MiB vaults. Throws InvalidInputError naming `what`.
 */
export function decodeBase64(s: string, what: string): Uint8Array {
  if (s.length % 4 !== 0 || !B64.test(s)) throw new InvalidInputError(`${what} is not base64`);
  const b = Buffer.from(s, 'base64');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

export function encodeBase64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
}
