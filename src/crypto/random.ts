/** Cryptographically secure random bytes (WebCrypto getRandomValues, via noble). */
import { randomBytes as nobleRandomBytes } from '@noble/hashes/utils.js';

const MAX_CHUNK = 65536; // getRandomValues limit per call

/** Returns `n` bytes from the platform CSPRNG. */
export function randomBytes(n: number): Uint8Array {
  if (n <= MAX_CHUNK) return nobleRandomBytes(n);
  const out = new Uint8Array(n);
  for (let o = 0; o < n; o += MAX_CHUNK) out.set(nobleRandomBytes(Math.min(MAX_CHUNK, n - o)), o);
  return out;
}
