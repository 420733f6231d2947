/**
 * Release requests and responses (docs/format.md, "Release request"). The same signed documents go
 * over HTTP (POST /v1/schemes/:id/release) and, for a holder cut off from the network, as files
 * (`lifeboat holder release --request F --out G`).
 *
 * A request is signed (Ed25519, context "release-request") by an enrolled operator, or by the enrolled
 * primary for an unseal. It names one holder (by fingerprint), one scheme, a one-time X25519 key to
 * re-seal the share to, a random request id (single use), and a validity window of at most 15 minutes.
 */
import { z } from 'zod';
import { ForbiddenError, FormatError, UnauthorizedError } from '../errors.js';
import { randomBytes } from '../crypto/random.js';
import { signWithContext, verifyWithContext } from '../crypto/sign.js';
import { encodePublicIdentity, type Identity, parsePublicIdentity, type PublicIdentity } from '../identity.js';
import { fromB64, fromHex, lengthPrefixed, toB64, toB64u, toHex, utf8 } from '../util/bytes.js';

export const MAX_RELEASE_TTL_MS = 15 * 60_000;
const CLOCK_SKEW_MS = 2 * 60_000;
const CONTEXT = 'release-request';

export type ReleasePurpose = 'reconstruct' | 'unseal' | 'rotate';

export const releaseRequestSchema = z.object({
  version: z.literal(1),
  type: z.literal('lifeboat-release-request'),
  request_id: z.string().regex(/^[A-Za-z0-9_-]{22}$/),
  scheme_id: z.string().regex(/^[0-9a-f]{32}$/),
  holder_fingerprint: z.string().regex(/^([0-9a-f]{4}:){7}[0-9a-f]{4}$/),
  purpose: z.enum(['reconstruct', 'unseal', 'rotate']),
  requester_public_key: z.string().max(64),
  signer: z.string().max(200),
  issued_at: z.number().int().nonnegative(),
  expires_at: z.number().int().nonnegative(),
  signature: z.string().max(200),
});
export type ReleaseRequest = z.infer<typeof releaseRequestSchema>;

export const releaseResponseSchema = z.object({
  version: z.literal(1),
  type: z.literal('lifeboat-release-response'),
  request_id: z.string().regex(/^[A-Za-z0-9_-]{22}$/),
  scheme_id: z.string().regex(/^[0-9a-f]{32}$/),
  member_index: z.number().int().min(0).max(15),
  holder_fingerprint: z.string(),
  /** The share payload (src/recovery/sealed-share.ts) sealed to the requester's one-time key. */
  sealed_share: z.string().max(4096),
});
export type ReleaseResponse = z.infer<typeof releaseResponseSchema>;

function signedBytes(r: Omit<ReleaseRequest, 'signature'>): Uint8Array {
  return lengthPrefixed(
    utf8.encode(r.type),
    utf8.encode(r.request_id),
    fromHex(r.scheme_id, 'scheme id', 16),
    utf8.encode(r.holder_fingerprint),
    utf8.encode(r.purpose),
    utf8.encode(r.requester_public_key),
    utf8.encode(r.signer),
    utf8.encode(String(r.issued_at)),
    utf8.encode(String(r.expires_at)),
  );
}

/** Creates and signs a release request. */
export function createReleaseRequest(opts: {
  signer: Identity;
  schemeId: Uint8Array;
  holderFingerprint: string;
  purpose: ReleasePurpose;
  requesterPublicKey: Uint8Array;
  ttlMs?: number;
  now?: number;
}): ReleaseRequest {
  const now = opts.now ?? Date.now();
  const ttl = Math.min(opts.ttlMs ?? 10 * 60_000, MAX_RELEASE_TTL_MS);
  const body = {
    version: 1 as const,
    type: 'lifeboat-release-request' as const,
    request_id: toB64u(randomBytes(16)),
    scheme_id: toHex(opts.schemeId),
    holder_fingerprint: opts.holderFingerprint,
    purpose: opts.purpose,
    requester_public_key: toB64(opts.requesterPublicKey),
    signer: encodePublicIdentity(opts.signer),
    issued_at: now,
    expires_at: now + ttl,
  };
  const signature = toB64(signWithContext(CONTEXT, signedBytes(body), opts.signer.signing.secretKey));
  return { ...body, signature };
}

/** Parses untrusted JSON as a release request. Throws FormatError `malformed` naming the bad field. */
export function parseReleaseRequest(value: unknown): ReleaseRequest {
  const r = releaseRequestSchema.safeParse(value);
  if (!r.success) throw new FormatError('malformed', `malformed release request: ${r.error.issues.map((i) => i.path.join('.') || 'body').join(', ')}`);
  return r.data;
}

/** A request whose signature and window check out; replay (request_id) is the holder's to check. */
export interface VerifiedReleaseRequest {
  request: ReleaseRequest;
  signer: PublicIdentity;
  requesterPublicKey: Uint8Array;
  schemeId: Uint8Array;
}

/**
 * Verifies a request's signature and validity window. Throws UnauthorizedError `bad_signature`,
 * ForbiddenError `request_expired` (expired, not yet valid, or a window longer than 15 minutes).
 */
export function verifyReleaseRequest(request: ReleaseRequest, now = Date.now()): VerifiedReleaseRequest {
  let signer: PublicIdentity;
  let requesterPublicKey: Uint8Array;
  try {
    signer = parsePublicIdentity(request.signer, 'signer');
    requesterPublicKey = fromB64(request.requester_public_key, 'requester public key', 32);
  } catch {
    throw new FormatError('malformed', 'malformed release request: signer or requester key');
  }
  const { signature, ...body } = request;
  let sig: Uint8Array;
  try {
    sig = fromB64(signature, 'signature', 64);
  } catch {
    throw new UnauthorizedError('release request signature is malformed', 'bad_signature');
  }
  if (!verifyWithContext(CONTEXT, signedBytes(body), sig, signer.signingPublicKey)) {
    throw new UnauthorizedError('release request signature does not verify', 'bad_signature');
  }
  if (request.expires_at - request.issued_at > MAX_RELEASE_TTL_MS || request.expires_at <= request.issued_at) {
    throw new ForbiddenError('release request validity window is longer than 15 minutes', 'request_expired');
  }
  if (now > request.expires_at) throw new ForbiddenError('release request has expired', 'request_expired', 'create a new request');
  if (request.issued_at > now + CLOCK_SKEW_MS) throw new ForbiddenError('release request is not valid yet', 'request_expired', 'check the clocks (NTP)');
  return { request, signer, requesterPublicKey, schemeId: fromHex(request.scheme_id, 'scheme id', 16) };
}

/** Parses untrusted JSON as a release response. Throws FormatError `malformed`. */
export function parseReleaseResponse(value: unknown): ReleaseResponse {
  const r = releaseResponseSchema.safeParse(value);
  if (!r.success) throw new FormatError('malformed', 'malformed release response');
  return r.data;
}
