/**
 * Verifying `Authorization: Lifeboat-Sig ...` requests (src/util/request-auth.ts) on a fastify route:
 * the signature over method, path with query and the raw body; then the caller's own authorisation
 * check; then the replay check. The order keeps unknown keys from filling the replay store.
 */
import type { FastifyRequest } from 'fastify';
import type { PublicIdentity } from '../identity.js';
import { type VerifiedRequest, verifyRequest } from '../util/request-auth.js';
import { requestBodyBytes } from './app.js';

/** Where seen nonces are kept: a ReplayGuard, or one that persists it. Throws ForbiddenError `replayed_request`. */
export interface NonceStore {
  check(nonce: string, ts: number, now?: number): void | Promise<void>;
}

export interface VerifySignedOptions {
  replay: NonceStore;
  /** Throws (e.g. ForbiddenError `not_enrolled`) when the signer may not use this route. */
  allow?: (signer: PublicIdentity, verified: VerifiedRequest) => void | Promise<void>;
  now?: number;
}

/**
 * Verifies a signed request and returns who signed it (also left on `req.signer`).
 * Throws UnauthorizedError `unauthorized`/`bad_signature` (401) for a missing, malformed or bad
 * signature, ForbiddenError `request_expired` outside the clock window, whatever `allow` throws, and
 * ForbiddenError `replayed_request` for a nonce already seen.
 */
export async function verifySignedRequest(req: FastifyRequest, opts: VerifySignedOptions): Promise<VerifiedRequest> {
  const now = opts.now ?? Date.now();
  const verified = verifyRequest(req.headers.authorization, req.method, req.url, requestBodyBytes(req), now);
  req.signer = verified;
  if (opts.allow) await opts.allow(verified.signer, verified);
  await opts.replay.check(verified.nonce, verified.ts, now);
  return verified;
}
