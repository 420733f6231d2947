/** Byte helpers shared by every module: encodings, concatenation, constant-time comparison, wiping. */
import { base64, base64urlnopad, hex } from '@scure/base';
import { InvalidInputError } from '../errors.js';

export const utf8 = {
  encode: (s: string): Uint8Array => new TextEncoder().encode(s),
  decode: (b: Uint8Array): string => new TextDecoder('utf-8', { fatal: true }).decode(b),
};

export const toHex = (b: Uint8Array): string => hex.encode(b);
export const toB64 = (b: Uint8Array): string => base64.encode(b);
export const toB64u = (b: Uint8Array): string => base64urlnopad.encode(b);

/** Parses lowercase or uppercase hex; throws InvalidInputError naming `what` on bad input or wrong length. */
export function fromHex(s: string, what: string, len?: number): Uint8Array {
  if (typeof s !== 'string' || s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) throw new InvalidInputError(`${what} is not hex`);
  // Node's decoder, once the text is known to be hex (it would stop silently at a bad character):
  // a quarter of the time of the JS one, and it sits on every restored key's path several times.
  const out = new Uint8Array(s.length >> 1);
  out.set(Buffer.from(s, 'hex'));
  if (len !== undefined && out.length !== len) throw new InvalidInputError(`${what} must be ${len} bytes, got ${out.length}`);
  return out;
}

/** Parses standard base64; throws InvalidInputError naming `what` on bad input or wrong length. */
export function fromB64(s: string, what: string, len?: number): Uint8Array {
  let out: Uint8Array;
  try {
    out = base64.decode(s);
  } catch {
    throw new InvalidInputError(`${what} is not base64`);
  }
  if (len !== undefined && out.length !== len) throw new InvalidInputError(`${what} must be ${len} bytes, got ${out.length}`);
  return out;
}

/** Parses unpadded base64url; throws InvalidInputError naming `what` on bad input or wrong length. */
export function fromB64u(s: string, what: string, len?: number): Uint8Array {
  let out: Uint8Array;
  try {
    out = base64urlnopad.decode(s);
  } catch {
    throw new InvalidInputError(`${what} is not base64url`);
  }
  if (len !== undefined && out.length !== len) throw new InvalidInputError(`${what} must be ${len} bytes, got ${out.length}`);
  return out;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Compares two byte strings in time that depends only on their lengths. */
export function ctEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Overwrites secret bytes once they are no longer needed. */
export function wipe(...bufs: (Uint8Array | undefined)[]): void {
  for (const b of bufs) b?.fill(0);
}

export function u16be(n: number): Uint8Array {
  return new Uint8Array([(n >>> 8) & 0xff, n & 0xff]);
}

export function u32be(n: number): Uint8Array {
  return new Uint8Array([(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}

/** Encodes a list of byte strings unambiguously (u32 length prefix each), for hashing and signing. */
export function lengthPrefixed(...parts: Uint8Array[]): Uint8Array {
  return concatBytes(...parts.flatMap((p) => [u32be(p.length), p]));
}
