/**
 * Signed HTTP requests between Lifeboat parties (primary -> holder, operator -> holder).
 *
 *   Authorization: Lifeboat-Sig key=<lb1 identity>,ts=<unix ms>,nonce=<b64u 16 bytes>,sig=<b64u 64 bytes>
 *
 * The signature (Ed25519, context "http-request") covers, length-prefixed: method, path with query,
 * ts, nonce and SHA-256 of the body. A server accepts a request only within ±MAX_SKEW_MS of its clock
 * and only once per nonce (see ReplayGuard). docs/format.md, "Signed requests".
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { UnauthorizedError, ForbiddenError } from '../errors.js';
import { randomBytes } from '../crypto/random.js';
import { signWithContext, verifyWithContext } from '../crypto/sign.js';
import { encodePublicIdentity, type Identity, parsePublicIdentity, type PublicIdentity } from '../identity.js';
import { fromB64u, lengthPrefixed, toB64u, utf8 } from './bytes.js';

export const MAX_SKEW_MS = 60_000;
const CONTEXT = 'http-request';

function signedBytes(method: string, path: string, ts: string, nonce: string, body: Uint8Array): Uint8Array {
  return lengthPrefixed(utf8.encode(method.toUpperCase()), utf8.encode(path), utf8.encode(ts), utf8.encode(nonce), sha256(body));
}

/** Builds the Authorization header value for a request `method path` with `body` (empty for none). */
export function signRequest(id: Identity, method: string, path: string, body: Uint8Array, now = Date.now()): string {
  const ts = String(now);
  const nonce = toB64u(randomBytes(16));
  const sig = signWithContext(CONTEXT, signedBytes(method, path, ts, nonce, body), id.signing.secretKey);
  return `Lifeboat-Sig key=${encodePublicIdentity(id)},ts=${ts},nonce=${nonce},sig=${toB64u(sig)}`;
}

/** What a verified signature says: who signed, and the nonce the server must not accept again. */
export interface VerifiedRequest {
  signer: PublicIdentity;
  signerToken: string;
  nonce: string;
  ts: number;
}

/**
 * Verifies an Authorization header. Throws UnauthorizedError (`unauthorized`) when missing or
 * malformed or the signature is bad, ForbiddenError (`request_expired`) when the timestamp is outside
 * the window. Replay is the caller's to check with the returned nonce (ReplayGuard).
 */
export function verifyRequest(header: string | undefined, method: string, path: string, body: Uint8Array, now = Date.now()): VerifiedRequest {
  if (!header || !header.startsWith('Lifeboat-Sig ')) throw new UnauthorizedError('missing Lifeboat-Sig authorization', 'unauthorized');
  const fields = new Map<string, string>();
  for (const part of header.slice('Lifeboat-Sig '.length).split(',')) {
    const i = part.indexOf('=');
    if (i <= 0) throw new UnauthorizedError('malformed authorization header');
    fields.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  const key = fields.get('key');
  const ts = fields.get('ts');
  const nonce = fields.get('nonce');
  const sig = fields.get('sig');
  if (!key || !ts || !nonce || !sig || !/^\d{1,16}$/.test(ts) || !/^[A-Za-z0-9_-]{22}$/.test(nonce)) {
    throw new UnauthorizedError('malformed authorization header');
  }
  let signer: PublicIdentity;
  let sigBytes: Uint8Array;
  try {
    signer = parsePublicIdentity(key);
    sigBytes = fromB64u(sig, 'signature', 64);
  } catch {
    throw new UnauthorizedError('malformed authorization header');
  }
  if (!verifyWithContext(CONTEXT, signedBytes(method, path, ts, nonce, body), sigBytes, signer.signingPublicKey)) {
    throw new UnauthorizedError('request signature does not verify', 'bad_signature');
  }
  const t = Number(ts);
  if (Math.abs(now - t) > MAX_SKEW_MS) {
    throw new ForbiddenError('request timestamp is outside the accepted window', 'request_expired', 'check that both clocks are right (NTP)');
  }
  return { signer, signerToken: key, nonce, ts: t };
}

/**
 * Remembers nonces for the skew window so a captured request cannot be sent twice.
 * In memory: a restarted server rejects anything older than the window anyway, and nonces are
 * random, so nothing replayable survives a restart for longer than MAX_SKEW_MS... except during it;
 * servers that must survive restarts inside the window persist with `load`/`snapshot`.
 */
export class ReplayGuard {
  private seen = new Map<string, number>();

  constructor(entries: [string, number][] = []) {
    for (const [n, t] of entries) this.seen.set(n, t);
  }

  /** Records `nonce`; throws ForbiddenError `replayed_request` when it was seen within the window. */
  check(nonce: string, ts: number, now = Date.now()): void {
    for (const [n, t] of this.seen) if (now - t > 2 * MAX_SKEW_MS) this.seen.delete(n);
    if (this.seen.has(nonce)) throw new ForbiddenError('this request was already used', 'replayed_request');
    this.seen.set(nonce, ts);
  }

  snapshot(): [string, number][] {
    return [...this.seen];
  }
}
