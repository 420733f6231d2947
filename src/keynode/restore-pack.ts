/**
 * Key records handed to a restore check worker (restore-workers.ts) in one buffer, moved to the worker
 * (transferred, not copied). A structured clone of thousands of records makes three small buffers and
 * an object per key on both sides, which the worker's heap holds until it collects; one buffer is one
 * allocation, freed at once, and the worker's records are views into it.
 *
 * Only what the share check reads travels (restore-verify.ts: key id, curve, identifier, threshold,
 * signer count, group key, public package, sealed share); the worker's records carry neutral values
 * for the rest, which no check reads. Layout, per record, big-endian: three strings (u16 length,
 * UTF-8), threshold and signer count (f64 each, so any number the record holds is kept exactly), three
 * byte strings (u32 length, bytes).
 */
import type { KeyRecord } from './store/types.js';

/** Records packed by packCheckRecords: `buffer` holds `length` meaningful bytes. */
export interface PackedRecords {
  buffer: ArrayBuffer;
  length: number;
  count: number;
}

const encoder = new TextEncoder();

/** Packs what the share check reads of `records` into one new buffer. Throws RangeError for a field this layout cannot hold (a string over 65,535 bytes, bytes over 4 GiB). */
export function packCheckRecords(records: readonly KeyRecord[]): PackedRecords {
  let size = 0;
  for (const r of records) {
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    size += 6 + 3 * (r.keyId.length + r.curve.length + r.identifier.length) + 16 + 12 + r.groupPublicKey.length + r.publicPackage.length + r.encryptedShare.length;
  }
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  let at = 0;
  const text = (s: string) => {
    const { written } = encoder.encodeInto(s, bytes.subarray(at + 2));
    if (written > 0xffff) throw new RangeError('a key record string is too long to pack');
    view.setUint16(at, written);
    at += 2 + written;
  };
  const raw = (b: Uint8Array) => {
    view.setUint32(at, b.length);
    bytes.set(b, at + 4);
    at += 4 + b.length;
  };
  for (const r of records) {
    text(r.keyId);
    text(r.curve);
    text(r.identifier);
    view.setFloat64(at, r.threshold);
    view.setFloat64(at + 8, r.maxSigners);
    at += 16;
    raw(r.groupPublicKey);
    raw(r.publicPackage);
    raw(r.encryptedShare);
  }
  return { buffer: bytes.buffer, length: at, count: records.length };
}

/** The records of packCheckRecords, as views into its buffer (fields the check does not read are neutral). Throws RangeError on a buffer it did not write. */
export function unpackCheckRecords(packed: PackedRecords): KeyRecord[] {
  const bytes = new Uint8Array(packed.buffer, 0, packed.length);
  const view = new DataView(packed.buffer, 0, packed.length);
  const decoder = new TextDecoder();
  let at = 0;
  const text = () => {
    const n = view.getUint16(at);
    at += 2 + n;
    if (at > bytes.length) throw new RangeError('packed key records are truncated');
    return decoder.decode(bytes.subarray(at - n, at));
  };
  const raw = () => {
    const n = view.getUint32(at);
    at += 4 + n;
    if (at > bytes.length) throw new RangeError('packed key records are truncated');
    return bytes.subarray(at - n, at);
  };
  const out = new Array<KeyRecord>(packed.count);
  for (let i = 0; i < packed.count; i++) {
    const keyId = text();
    const curve = text() as KeyRecord['curve'];
    const identifier = text();
    const threshold = view.getFloat64(at);
    const maxSigners = view.getFloat64(at + 8);
    at += 16;
    const groupPublicKey = raw();
    const publicPackage = raw();
    const encryptedShare = raw();
    out[i] = { keyId, curve, threshold, maxSigners, identifier, groupPublicKey, publicPackage, encryptedShare, status: 'active', origin: 'dkg', createdAt: 0, tenant: '' };
  }
  if (at !== bytes.length) throw new RangeError('packed key records hold trailing bytes');
  return out;
}
