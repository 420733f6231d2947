/** The key node's HTTP API as data (docs/keynode.md): bodies the server validates and the SDK sends. */
import { z } from 'zod';
import { EXPORT_TYPES } from './export.js';

export const API_PREFIX = '/v1';
/** What the store accepts as a key id (store/records.ts); anything else is refused here with 400, not deeper. */
export const KEY_ID = /^[A-Za-z0-9_-]{1,64}$/;
const keyId = z.string().regex(KEY_ID, 'a key id is 1..64 of A-Z a-z 0-9 _ -');

export const sessionParams = z.object({ session_id: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'a session id is 8..64 of A-Z a-z 0-9 _ -') });
export const keyParams = z.object({ key_id: keyId });

export const dkgStartBody = z.object({
  key_id: keyId,
  curve: z.enum(['ed25519', 'secp256k1', 'bip340']),
  threshold: z.number().int().min(2).max(32),
  /** Every participant's identity token (lb1.…), this node's included; order defines identifiers. */
  participants: z.array(z.string().max(200)).min(2).max(32),
});
export const dkgRound2Body = z.object({ round1: z.array(z.unknown()).min(2).max(32) });
export const dkgFinishBody = z.object({ round2: z.array(z.unknown()).min(1).max(31) });

export const signatureShareBody = z.object({
  nonce_id: z.string().regex(/^[0-9a-f]{32}$/),
  /** The message to sign, hex (at most 64 KiB; the route's body limit makes room for it). */
  message: z.string().regex(/^([0-9a-fA-F]{2}){0,65536}$/),
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
});
