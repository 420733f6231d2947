/**
 * The backup service's HTTP API as data (docs/backup.md, docs/backup-server.md): paths, limits, the
 * bodies the server validates and the answers the client validates, so both ends read one definition.
 * Bytes travel as standard padded base64 in JSON; compaction chunks, and entries both ways when the
 * client asks (binary frames, docs/format.md "Entry batches over HTTP"), as application/octet-stream.
 */
import { z } from 'zod';
import { InvalidInputError } from '../errors.js';
import { NAME_RE } from './format.js';

export const API_PREFIX = '/v1';
/** Bodies of entry batches (base64 of up to ~12 MiB of entries). */
export const ENTRIES_BODY_LIMIT = 16 * 1024 * 1024;
/** One compaction chunk, the store's limit. */
export const MAX_CHUNK_BYTES = 8 * 1024 * 1024;
/** Entries per append and per listing page (the store's limit). */
export const MAX_ENTRIES = 10_000;
/** One entry, the store's limit. */
export const MAX_ENTRY_BYTES = 1024 * 1024;
/** Chunks per compaction and its total size (the store's limits). */
export const MAX_CHUNKS = 1_000_000;
export const MAX_COMPACTION_BYTES = 2 ** 40;

/** `lbt_` and 32 random bytes, base64url: login and backup tokens. */
export const TOKEN_RE = /^lbt_[A-Za-z0-9_-]{43}$/;
/** `lbi_` and 32 random bytes, base64url: one-time invite codes. */
export const INVITE_RE = /^lbi_[A-Za-z0-9_-]{43}$/;
/** `lbr_` and 32 random bytes, base64url: an account's restore token (docs/backup.md, "Restore token"). */
export const RESTORE_TOKEN_RE = /^lbr_[A-Za-z0-9_-]{43}$/;
const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;
/** A standard base64 string of at most `maxBytes` decoded bytes (checked for shape, decoded by decodeBase64). */
const b64 = (maxBytes: number) =>
  z
    .string()
    .max(Math.ceil(maxBytes / 3) * 4)
    .regex(B64_RE, 'base64');

const name = z.string().regex(NAME_RE, '1 to 64 of A-Z a-z 0-9 _ . -');
export const accountParams = z.object({ account: name });
export const streamParams = z.object({ account: name, stream: name });
export const compactionParams = z.object({ account: name, stream: name, id: z.string().regex(ID_RE) });
export const chunkParams = compactionParams.extend({ n: z.coerce.number().int().min(0).max(MAX_CHUNKS - 1) });

// OPAQUE messages are small (32 to 320 bytes); 1 KiB bounds them with room.
const opaqueMessage = b64(1024);
const invite = z.string().regex(INVITE_RE, 'an invite code is lbi_ and 43 base64url characters');

export const registerStartBody = z.object({ invite, registration_request: opaqueMessage });
export const registerFinishBody = z.object({ invite, record: opaqueMessage, wrapped_key: b64(1024), auth_public_key: b64(32) });
export const loginStartBody = z.object({
  start_login_request: opaqueMessage,
  /** Counts the login under the restore token's own limit instead of the account's anonymous one. */
  restore_token: z.string().regex(RESTORE_TOKEN_RE, 'a restore token is lbr_ and 43 base64url characters').optional(),
});
/** A second factor: a 6-digit TOTP code or a recovery code (docs/backup.md, "Second factor"). */
const totpCode = z.string().max(32).optional();
export const loginFinishBody = z.object({ login_id: z.string().regex(ID_RE), finish_login_request: opaqueMessage, totp: totpCode });
// Wallet accounts: a Sign-In with Ethereum message (at most 4 KiB) and its EIP-191 signature.
const siweMessageField = z.string().min(1).max(4096);
const walletSignature = z.string().regex(/^0x[0-9a-fA-F]{130}$/, 'a signature is 0x and 130 hex digits');
export const walletRegisterBody = z.object({ invite, message: siweMessageField, signature: walletSignature, wrapped_key: b64(1024), auth_public_key: b64(32) });
export const walletLoginBody = z.object({ message: siweMessageField, signature: walletSignature, totp: totpCode });
export const passwordStartBody = z.object({ registration_request: opaqueMessage });
export const passwordFinishBody = z.object({ record: opaqueMessage, wrapped_key: b64(1024) });
export const sessionBody = z.object({ challenge: b64(32), signature: b64(64) });
export const appendBody = z.object({ entries: z.array(b64(MAX_ENTRY_BYTES)).min(1).max(MAX_ENTRIES) });
export const entriesQuery = z.object({
  after: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
  limit: z.coerce.number().int().min(1).max(MAX_ENTRIES).default(1000),
});
const declaredCompaction = {
  hash: b64(32),
  size: z.number().int().min(1).max(MAX_COMPACTION_BYTES),
  chunk_count: z.number().int().min(1).max(MAX_CHUNKS),
};
/** With hash, size and chunk_count; or with `seq` alone, streamed: they come with `complete`. */
export const beginCompactionBody = z.union([z.object({ seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER), ...declaredCompaction }).strict(), z.object({ seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER) }).strict()]);
/** A streamed compaction's size, chunk count and SHA-256, sent with `complete`. */
export const completeCompactionBody = z.object(declaredCompaction).strict();

// Answers (validated by the client).
const isoTime = z.string().max(40);
export const okAnswer = z.object({ ok: z.literal(true) });
export const registrationResponseAnswer = z.object({ registration_response: opaqueMessage });
export const loginStartAnswer = z.object({ login_id: z.string().regex(ID_RE), login_response: opaqueMessage });
export const loginFinishAnswer = z.object({ wrapped_key: b64(1024), login_token: z.string().regex(TOKEN_RE), expires_at: isoTime });
export const walletNonceAnswer = z.object({ nonce: z.string().regex(/^[0-9a-f]{32}$/), domain: z.string().min(1).max(255), chain_id: z.number().int().min(1), expires_at: isoTime });
export const totpEnrolAnswer = z.object({ otpauth_uri: z.string().max(1024), secret: z.string().regex(/^[A-Z2-7]{16,64}$/), recovery_codes: z.array(z.string().max(64)).length(10) });
export const challengeAnswer = z.object({ challenge: b64(32), expires_at: isoTime });
export const sessionAnswer = z.object({ backup_token: z.string().regex(TOKEN_RE), expires_at: isoTime });
export const restoreTokenAnswer = z.object({ restore_token: z.string().regex(RESTORE_TOKEN_RE) });
export const headAnswer = z.object({ head_seq: z.number().int().min(0), head_hash: b64(32) });
export const compactionAnswer = z.object({
  id: z.string().regex(ID_RE),
  seq: z.number().int().min(1),
  hash: b64(32),
  size: z.number().int().min(1),
  chunk_count: z.number().int().min(1),
  state: z.enum(['uploading', 'complete']),
  created_at: isoTime,
  completed_at: isoTime.nullable(),
});
export const streamAnswer = z.object({
  stream: name,
  head_seq: z.number().int().min(0),
  head_hash: b64(32),
  first_seq: z.number().int().min(1),
  updated_at: isoTime,
  compaction: compactionAnswer.nullable(),
});
export const compactionListAnswer = z.object({ compactions: z.array(compactionAnswer).max(1000) });
export const streamListAnswer = z.object({ streams: z.array(streamAnswer.omit({ compaction: true })) });
export const entriesAnswer = z.object({
  head_seq: z.number().int().min(0),
  entries: z.array(z.object({ seq: z.number().int().min(1), hash: b64(32), entry: b64(MAX_ENTRY_BYTES) })),
});
export const chunkAnswer = z.object({ id: z.string().regex(ID_RE), n: z.number().int().min(0), size: z.number().int().min(1) });
export const errorAnswer = z.object({ err_type: z.string().regex(/^[a-z0-9_]{1,64}$/), message: z.string().max(2000), hint: z.string().max(2000).optional() });

/**
 * Decodes standard padded base64 strictly (node's decoder alone skips bad characters), optionally of
 * an exact length. Throws InvalidInputError naming `what`.
 */
export function decodeBase64(s: string, what: string, len?: number): Uint8Array {
  if (s.length % 4 !== 0 || !B64_RE.test(s)) throw new InvalidInputError(`${what} is not base64`);
  const b = Buffer.from(s, 'base64');
  if (len !== undefined && b.length !== len) throw new InvalidInputError(`${what} must be ${len} bytes, got ${b.length}`);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

export function encodeBase64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
}

/** The answer's form of a timestamp. */
export function isoTimeOf(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * A binary entry batch: `u32 BE length ‖ entry` repeated, 1 to MAX_ENTRIES entries of 1 to
 * MAX_ENTRY_BYTES each, nothing left over. The entries are views of `body` (Buffers when it is one).
 * Throws InvalidInputError naming the bad frame.
 */
export function parseEntryFrames(body: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  let o = 0;
  while (o < body.length) {
    if (out.length === MAX_ENTRIES) throw new InvalidInputError(`a batch holds at most ${MAX_ENTRIES} entries`);
    if (o + 4 > body.length) throw new InvalidInputError(`entries[${out.length}]: truncated length`);
    const len = view.getUint32(o);
    if (len < 1 || len > MAX_ENTRY_BYTES || o + 4 + len > body.length) throw new InvalidInputError(`entries[${out.length}]: bad length ${len}`);
    out.push(body.subarray(o + 4, o + 4 + len));
    o += 4 + len;
  }
  if (out.length === 0) throw new InvalidInputError('a batch holds at least one entry');
  return out;
}

/** Encodes entries as parseEntryFrames reads them. */
export function encodeEntryFrames(entries: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(entries.reduce((n, e) => n + 4 + e.length, 0));
  const view = new DataView(out.buffer);
  let o = 0;
  for (const e of entries) {
    view.setUint32(o, e.length);
    out.set(e, o + 4);
    o += 4 + e.length;
  }
  return out;
}

/** The media type of binary entry frames, both ways (docs/format.md, "Entry batches over HTTP"). */
export const OCTETS = 'application/octet-stream';

/** True when an Accept header asks for octet-stream before (or without) JSON. */
export function acceptsOctets(accept: string | undefined): boolean {
  for (const part of (accept ?? '').split(',')) {
    const type = part.split(';')[0]!.trim().toLowerCase();
    if (type === OCTETS) return true;
    if (type === 'application/json' || type === 'application/*' || type === '*/*') return false;
  }
  return false;
}

/** A listing of entries as binary frames: `u64 head_seq ‖ (u64 seq ‖ u32 len ‖ entry)*`. */
export function encodeEntryListFrames(headSeq: number, entries: { seq: number; bytes: Uint8Array }[]): Uint8Array {
  const out = new Uint8Array(8 + entries.reduce((n, e) => n + 12 + e.bytes.length, 0));
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headSeq));
  let o = 8;
  for (const e of entries) {
    view.setBigUint64(o, BigInt(e.seq));
    view.setUint32(o + 8, e.bytes.length);
    out.set(e.bytes, o + 12);
    o += 12 + e.bytes.length;
  }
  return out;
}

/**
 * The inverse of encodeEntryListFrames, for a listing asked with `after` and `limit`: seqs increasing,
 * after `after`, at most the head; 1 byte to MAX_ENTRY_BYTES each; at most `limit`; nothing left over.
 * Entries are views of `body`. Throws InvalidInputError naming what is wrong (the client makes it
 * `peer_bad_answer`).
 */
export function parseEntryListFrames(body: Uint8Array, q: { after: number; limit: number }): { headSeq: number; entries: { seq: number; bytes: Uint8Array }[] } {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const u64 = (at: number, what: string) => {
    const v = view.getBigUint64(at);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidInputError(`${what} is out of range`);
    return Number(v);
  };
  if (body.length < 8) throw new InvalidInputError('the entry listing is shorter than its head');
  const headSeq = u64(0, 'head_seq');
  const entries: { seq: number; bytes: Uint8Array }[] = [];
  let prev = q.after;
  let o = 8;
  while (o < body.length) {
    const what = `entries[${entries.length}]`;
    if (entries.length === q.limit) throw new InvalidInputError(`more entries than the ${q.limit} asked for`);
    if (o + 12 > body.length) throw new InvalidInputError(`${what}: truncated frame`);
    const seq = u64(o, `${what} seq`);
    if (seq <= prev || seq > headSeq) throw new InvalidInputError(`${what}: seq ${seq} is out of order (after ${prev}, head ${headSeq})`);
    const len = view.getUint32(o + 8);
    if (len < 1 || len > MAX_ENTRY_BYTES || o + 12 + len > body.length) throw new InvalidInputError(`${what}: bad length ${len}`);
    entries.push({ seq, bytes: body.subarray(o + 12, o + 12 + len) });
    prev = seq;
    o += 12 + len;
  }
  return { headSeq, entries };
}
