/**
 * What a part may answer, checked at the boundary (docs/coverage.md, "How it asks"): a key node's
 * coverage page and a backup service's stream listing. A field out of its format (a key id, a curve,
 * a hex key, a stream or account name, a count) makes the whole answer `bad_answer`, so nothing a part
 * says reaches the report, the terminal or the page unless it has the shape the format gives it.
 */
import { z } from 'zod';
import { KEY_ID } from '../keynode/api.js';
import { CURVES } from '../keynode/store/types.js';

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const HEX = /^[0-9a-f]{2,256}$/;
const TOKENISH = /^[a-z_]{1,32}$/;
const ISO = z.string().max(40).regex(/^[0-9][0-9T:.Z+-]*$/);
const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
/** A message a part reports (an error it saw): free text, bounded; the text report neutralises its control characters. */
const message = z.string().max(4000);

/** A URL a part names (its fail-over's): http(s), no control characters (the report drops its userinfo and query). */
const publicUrl = z
  .string()
  .max(2000)
  .refine((u) => {
    try {
      const x = new URL(u);
      return (x.protocol === 'http:' || x.protocol === 'https:') && !/[\p{Cc}\p{Cf}\s]/u.test(u);
    } catch {
      return false;
    }
  });

const channel = z.record(z.string().regex(TOKENISH), z.union([z.number(), z.boolean(), z.null(), z.string().max(200).regex(/^[^\p{Cc}\p{Cf}]*$/u)]));
export const coverageKey = z.object({
  key_id: z.string().regex(KEY_ID),
  curve: z.enum(CURVES),
  group_public_key: z.string().regex(HEX),
  identifier: z.string().regex(HEX),
  threshold: z.number().int().min(1).max(255),
  max_signers: z.number().int().min(1).max(255),
  status: z.string().regex(TOKENISH),
  epoch: count.optional(),
  created_at: ISO.optional(),
  channels: z.object({ backup: channel.optional(), log: channel.optional(), ers: channel.optional() }),
});

export const nodeFacts = z.object({
  fingerprint: z.string().regex(/^[0-9a-f]{4}(?::[0-9a-f]{4}){7}$/).optional(),
  required_channels: z.array(z.string().regex(TOKENISH)).max(8).optional(),
  backup: z
    .object({
      stream: z.string().regex(NAME),
      account: z.string().regex(NAME).nullable().optional(),
      sealed_seq: count,
      acked_seq: count,
      unsealed: count,
      unacked: count.optional(),
      compacted_seq: count.optional(),
      compacted_at: ISO.nullable().optional(),
      last_error: message.nullable().optional(),
      rollback_detected: z.boolean().optional(),
    })
    .passthrough()
    .nullable()
    .optional(),
  failover: z
    .object({ url: publicUrl, fingerprint: z.string().max(64).regex(/^[0-9a-f:]*$/), lag: count, last_error: message.nullable().optional(), last_synced_at: ISO.nullable().optional() })
    .passthrough()
    .nullable()
    .optional(),
}).passthrough();

export const coveragePage = z.object({ node: nodeFacts.optional(), keys: z.array(coverageKey).max(100_000), next: z.string().regex(KEY_ID).nullable().optional() });

export const streamPage = z.object({
  streams: z.array(z.object({ account: z.string().regex(NAME), stream: z.string().regex(NAME), head_seq: count }).passthrough()).max(100_000),
  next: z.string().max(200).regex(/^[A-Za-z0-9_.-]{1,64}\/[A-Za-z0-9_.-]{1,64}$/).nullable().optional(),
});
