/**
 * The streaming bulk envelope (docs/format.md, "Streamed payload (STREAM)"): a payload cut into 64 KiB
 * chunks, each sealed with ChaCha20-Poly1305 (RFC 8439, node:crypto) under one key, with the nonce
 * 11-byte big-endian chunk counter || last-chunk flag, as age's payload does (the STREAM construction
 * of Hoang, Reyhanitabar, Rogaway and Vizár, "Online Authenticated-Encryption and its Nonce-Reuse
 * Misuse-Resistance", 2015). A chunk opens only at its own position and with its own flag, so a
 * truncated, reordered, duplicated or extended stream does not open. Every chunk but the last holds
 * exactly 64 KiB; the last holds 1 to 64 KiB (0 only when it is the only chunk).
 *
 * The key must be used for one payload only (callers derive it with a fresh random salt). The sealer
 * keeps one plaintext and one sealed chunk buffer and reuses them, and whole chunks of its input are
 * sealed where they lie; the opener opens whole chunks of its input where they lie. What either hands
 * to `onChunk` is valid until the callback returns (reused, or wiped). Pure: no I/O.
 */
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto';
import { DecryptionError, FormatError, InvalidInputError } from '../errors.js';
import { wipe } from '../util/bytes.js';

export const STREAM_CHUNK = 64 * 1024;
export const STREAM_TAG = 16;
/** Bytes of a sealed full chunk. */
export const SEALED_CHUNK = STREAM_CHUNK + STREAM_TAG;
/** Chunks a payload may have: the counter is 11 bytes, but a safe integer is plenty (2^53 * 64 KiB). */
const MAX_COUNTER = Number.MAX_SAFE_INTEGER;

function nonceOf(iv: Uint8Array, counter: number, last: boolean): Uint8Array {
  // RFC 8439 nonce: counter in bytes 0..10 (big-endian, the top 4 bytes always zero here), flag in 11.
  const view = new DataView(iv.buffer, iv.byteOffset, 12);
  view.setUint32(0, 0);
  view.setUint32(3, Math.floor(counter / 2 ** 32));
  view.setUint32(7, counter >>> 0);
  iv[11] = last ? 1 : 0;
  return iv;
}

function keyObject(key: Uint8Array): KeyObject {
  if (!(key instanceof Uint8Array) || key.length !== 32) throw new InvalidInputError('stream key must be 32 bytes');
  return createSecretKey(key);
}

/**
 * Seals chunk `counter` of a payload into `out` at `at` (room for plaintext + 16 bytes); returns the
 * number of bytes written. Throws InvalidInputError for a chunk over 64 KiB or a counter out of range.
 */
export function sealChunkInto(key: KeyObject, counter: number, last: boolean, plaintext: Uint8Array, out: Uint8Array, at = 0): number {
  if (plaintext.length > STREAM_CHUNK) throw new InvalidInputError('a stream chunk holds at most 64 KiB');
  if (!Number.isSafeInteger(counter) || counter < 0 || counter > MAX_COUNTER) throw new InvalidInputError('stream chunk counter is out of range');
  const c = createCipheriv('chacha20-poly1305', key, nonceOf(new Uint8Array(12), counter, last), { authTagLength: STREAM_TAG });
  const ct = c.update(plaintext);
  out.set(ct, at);
  const rest = c.final();
  out.set(rest, at + ct.length);
  out.set(c.getAuthTag(), at + plaintext.length);
  return plaintext.length + STREAM_TAG;
}

/**
 * Opens sealed chunk `counter` into `out` at `at`; returns the plaintext length. Throws
 * DecryptionError when it is not that chunk (another position, flag or key, or altered bytes); `out`
 * then holds nothing of it.
 */
export function openChunkInto(key: KeyObject, counter: number, last: boolean, sealed: Uint8Array, out: Uint8Array, at = 0): number {
  const pt = openChunk(key, counter, last, sealed);
  out.set(pt, at);
  wipe(pt);
  return pt.length;
}

/** Opens sealed chunk `counter` into a fresh buffer (the caller wipes it). Throws like openChunkInto. */
export function openChunk(key: KeyObject, counter: number, last: boolean, sealed: Uint8Array): Uint8Array {
  const len = sealed.length - STREAM_TAG;
  if (len < 0 || len > STREAM_CHUNK) throw new DecryptionError('stream chunk does not decrypt: wrong key or tampered data');
  const d = createDecipheriv('chacha20-poly1305', key, nonceOf(new Uint8Array(12), counter, last), { authTagLength: STREAM_TAG });
  d.setAuthTag(sealed.subarray(len));
  const pt = d.update(sealed.subarray(0, len));
  try {
    d.final();
  } catch {
    wipe(pt);
    throw new DecryptionError('stream chunk does not decrypt: wrong key, tampered data, or a chunk missing, reordered or added');
  }
  // A plain Uint8Array view (a Buffer's slice() would not copy).
  return new Uint8Array(pt.buffer, pt.byteOffset, pt.length);
}

/**
 * Seals a payload pushed in pieces of any size. A full chunk is held back until more bytes come (only
 * then is it known not to be the last); `finish` seals what is left as the last chunk.
 */
export class StreamSealer {
  private readonly key: KeyObject;
  private readonly buf = new Uint8Array(STREAM_CHUNK);
  private readonly sealed = new Uint8Array(SEALED_CHUNK);
  private fill = 0;
  private counter = 0;
  private done = false;

  /** `onChunk` gets each sealed chunk in order (a view of a reused buffer: copy it to keep it). */
  constructor(key: Uint8Array, private readonly onChunk: (sealed: Uint8Array) => void) {
    this.key = keyObject(key);
  }

  /** Adds plaintext. Throws InvalidInputError after finish. */
  push(bytes: Uint8Array): void {
    if (this.done) throw new InvalidInputError('the stream is finished');
    let i = 0;
    while (i < bytes.length) {
      if (this.fill === STREAM_CHUNK) this.emit(false);
      // A whole chunk with more after it is sealed where it lies, without a copy.
      if (this.fill === 0 && bytes.length - i > STREAM_CHUNK) {
        this.emitFrom(bytes.subarray(i, i + STREAM_CHUNK), false);
        i += STREAM_CHUNK;
        continue;
      }
      const n = Math.min(bytes.length - i, STREAM_CHUNK - this.fill);
      this.buf.set(bytes.subarray(i, i + n), this.fill);
      this.fill += n;
      i += n;
    }
  }

  /** Seals the last chunk; returns how many chunks the payload has. */
  finish(): number {
    if (this.done) throw new InvalidInputError('the stream is finished');
    this.emit(true);
    this.done = true;
    wipe(this.buf);
    return this.counter;
  }

  private emit(last: boolean): void {
    this.emitFrom(this.buf.subarray(0, this.fill), last);
    this.fill = 0;
  }

  private emitFrom(plaintext: Uint8Array, last: boolean): void {
    const n = sealChunkInto(this.key, this.counter, last, plaintext, this.sealed);
    this.counter += 1;
    this.onChunk(this.sealed.subarray(0, n));
  }
}

/**
 * Opens a sealed payload pushed in pieces of any size. A full sealed chunk is opened once more bytes
 * follow it (so it is not the last); `finish` opens the rest as the last chunk. Throws DecryptionError
 * on any chunk that does not open at its place, FormatError `truncated` when nothing was pushed.
 */
export class StreamOpener {
  private readonly key: KeyObject;
  private readonly buf = new Uint8Array(SEALED_CHUNK);
  private fill = 0;
  private counter = 0;
  private done = false;

  /** `onChunk` gets each chunk's plaintext in order, once it is authenticated (wiped after it returns). */
  constructor(key: Uint8Array, private readonly onChunk: (plaintext: Uint8Array) => void) {
    this.key = keyObject(key);
  }

  push(bytes: Uint8Array): void {
    if (this.done) throw new InvalidInputError('the stream is finished');
    let i = 0;
    while (i < bytes.length) {
      if (this.fill === SEALED_CHUNK) this.open(false);
      if (this.fill === 0 && bytes.length - i > SEALED_CHUNK) {
        this.openFrom(bytes.subarray(i, i + SEALED_CHUNK), false);
        i += SEALED_CHUNK;
        continue;
      }
      const n = Math.min(bytes.length - i, SEALED_CHUNK - this.fill);
      this.buf.set(bytes.subarray(i, i + n), this.fill);
      this.fill += n;
      i += n;
    }
  }

  /** Opens the last chunk; returns how many chunks the payload had. */
  finish(): number {
    if (this.done) throw new InvalidInputError('the stream is finished');
    this.done = true;
    if (this.fill < STREAM_TAG) throw new FormatError('truncated', 'the stream is truncated (no last chunk)');
    // Only a payload's only chunk may be empty: an empty last chunk after others is not canonical.
    if (this.fill === STREAM_TAG && this.counter > 0) throw new DecryptionError('stream chunk does not decrypt: an empty last chunk');
    this.open(true);
    return this.counter;
  }

  private open(last: boolean): void {
    const sealed = this.buf.subarray(0, this.fill);
    this.fill = 0;
    this.openFrom(sealed, last);
  }

  private openFrom(sealed: Uint8Array, last: boolean): void {
    // node allocates the plaintext (it cannot decrypt into a given buffer); it is wiped after use.
    const pt = openChunk(this.key, this.counter, last, sealed);
    this.counter += 1;
    try {
      this.onChunk(pt);
    } finally {
      wipe(pt);
    }
  }
}
