/**
 * The binary records of a streamed compaction's payload (docs/format.md, "Compaction (`LBBC`,
 * version 2)"): `type (u8) || len (u32 BE) || body`, one after another across chunk boundaries.
 *
 *   0x01 secrets   identity (64) || storage key (32) || export key (32) || wrapping key (32)
 *   0x02 key       a KeyRecord (encodeKeyRecord)
 *   0x03 api key   an ApiKeyRecord (encodeApiKeyRecord)
 *   0x7f end       u64 keys || u64 api keys || u8 flags (0x01: exact)
 *
 * Pure: no I/O. Decoders copy every byte field out of the (reused) chunk buffer.
 */
import { FormatError, InvalidInputError } from '../errors.js';
import { fromHex, toHex, utf8 } from '../util/bytes.js';
import { API_KEY_ROLES, type ApiKeyRecord, CURVES, ERS_POLICIES, KEY_ORIGINS, KEY_STATUSES, type KeyRecord } from '../keynode/store/types.js';
import { apiKeyTenantFromBackup, keyTenantFromBackup } from '../keynode/tenants.js';
import type { StreamSecrets } from './changes.js';

export const REC_SECRETS = 0x01;
export const REC_KEY = 0x02;
export const REC_API_KEY = 0x03;
export const REC_END = 0x7f;
/** The largest record body a reader accepts (a key of 255 signers is about 17 KB). */
export const MAX_RECORD = 1 << 20;
const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
const HEX_RE = /^(?:[0-9a-f]{2}){1,64}$/;

/** Appends fields to a growing buffer; `record(type)` returns type || len || body. */
class Writer {
  private buf = new Uint8Array(1024);
  private view = new DataView(this.buf.buffer);
  private at = 5;

  private room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.at + n));
    next.set(this.buf.subarray(0, this.at));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(n: number): this {
    this.room(1);
    this.view.setUint8(this.at++, n);
    return this;
  }

  u16(n: number): this {
    this.room(2);
    this.view.setUint16(this.at, n);
    this.at += 2;
    return this;
  }

  u32(n: number): this {
    this.room(4);
    this.view.setUint32(this.at, n);
    this.at += 4;
    return this;
  }

  u64(n: number): this {
    this.room(8);
    this.view.setBigUint64(this.at, BigInt(n));
    this.at += 8;
    return this;
  }

  raw(b: Uint8Array): this {
    this.room(b.length);
    this.buf.set(b, this.at);
    this.at += b.length;
    return this;
  }

  /** A length-prefixed field: u8, u16 or u32 length. */
  bytes(b: Uint8Array, lenBytes: 1 | 2 | 4, what: string): this {
    if (b.length >= 2 ** (8 * lenBytes)) throw new InvalidInputError(`${what} is too long for a compaction record`);
    if (lenBytes === 1) this.u8(b.length);
    else if (lenBytes === 2) this.u16(b.length);
    else this.u32(b.length);
    return this.raw(b);
  }

  record(type: number): Uint8Array {
    this.view.setUint8(0, type);
    this.view.setUint32(1, this.at - 5);
    return this.buf.subarray(0, this.at);
  }
}

/** Reads fields of one record body; any overrun or leftover is FormatError `malformed`. */
class Reader {
  private at = 0;
  private readonly view: DataView;

  constructor(
    private readonly b: Uint8Array,
    private readonly what: string,
  ) {
    this.view = new DataView(b.buffer, b.byteOffset, b.length);
  }

  bad(field: string): FormatError {
    return new FormatError('malformed', `backup compaction: ${this.what} ${field} is malformed`);
  }

  private need(n: number): number {
    if (this.at + n > this.b.length) throw this.bad('record');
    const at = this.at;
    this.at += n;
    return at;
  }

  u8(): number {
    return this.view.getUint8(this.need(1));
  }

  u16(): number {
    return this.view.getUint16(this.need(2));
  }

  u32(): number {
    return this.view.getUint32(this.need(4));
  }

  u64(field: string): number {
    const v = this.view.getBigUint64(this.need(8));
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw this.bad(field);
    return Number(v);
  }

  raw(n: number): Uint8Array {
    const at = this.need(n);
    return this.b.slice(at, at + n);
  }

  bytes(lenBytes: 1 | 2 | 4): Uint8Array {
    return this.raw(lenBytes === 1 ? this.u8() : lenBytes === 2 ? this.u16() : this.u32());
  }

  text(lenBytes: 1 | 2, field: string, re?: RegExp): string {
    let s: string;
    try {
      s = new TextDecoder('utf-8', { fatal: true }).decode(this.bytes(lenBytes));
    } catch {
      throw this.bad(field);
    }
    if (re && !re.test(s)) throw this.bad(field);
    return s;
  }

  oneOf<T>(list: readonly T[], field: string): T {
    const v = list[this.u8()];
    if (v === undefined) throw this.bad(field);
    return v;
  }

  end(): void {
    if (this.at !== this.b.length) throw this.bad('record');
  }
}

function indexIn<T>(list: readonly T[], v: T, what: string): number {
  const i = list.indexOf(v);
  if (i < 0) throw new InvalidInputError(`${what} cannot be written to a compaction`);
  return i;
}

function safeMillis(n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidInputError(`${what} must be a non-negative integer`);
  return n;
}

export function encodeSecretsRecord(s: StreamSecrets): Uint8Array {
  if (s.identity.length !== 64 || s.storageKey.length !== 32 || s.exportKey.length !== 32 || s.wrappingKey.length !== 32) throw new InvalidInputError('node keys have the wrong length');
  return new Writer().raw(s.identity).raw(s.storageKey).raw(s.exportKey).raw(s.wrappingKey).record(REC_SECRETS);
}

export function decodeSecretsRecord(body: Uint8Array): StreamSecrets {
  if (body.length !== 160) throw new FormatError('malformed', 'backup compaction: secrets record is malformed');
  return { identity: body.slice(0, 64), storageKey: body.slice(64, 96), exportKey: body.slice(96, 128), wrappingKey: body.slice(128, 160) };
}

/** A key as a record. Throws InvalidInputError for a field this format cannot hold (never its value). */
export function encodeKeyRecord(k: KeyRecord): Uint8Array {
  if (!ID_RE.test(k.keyId)) throw new InvalidInputError('key_id cannot be written to a compaction');
  if (!HEX_RE.test(k.identifier)) throw new InvalidInputError('identifier cannot be written to a compaction');
  const w = new Writer()
    .bytes(utf8.encode(k.keyId), 1, 'key_id')
    .u8(indexIn(CURVES, k.curve, 'curve'))
    .u8(k.threshold)
    .u8(k.maxSigners)
    .bytes(fromHex(k.identifier, 'identifier'), 1, 'identifier')
    .bytes(k.groupPublicKey, 2, 'group public key')
    .bytes(k.publicPackage, 4, 'public package')
    .bytes(k.encryptedShare, 4, 'encrypted share')
    .u8(indexIn(KEY_STATUSES, k.status, 'status'))
    .u8(indexIn(KEY_ORIGINS, k.origin, 'origin'))
    .u64(safeMillis(k.createdAt, 'created_at'))
    .bytes(utf8.encode(k.tenant), 1, 'tenant')
    .u8(k.ersPolicy === undefined ? 0 : 1 + indexIn(ERS_POLICIES, k.ersPolicy, 'ers policy'));
  if (k.threshold < 1 || k.threshold > 255 || k.maxSigners < 1 || k.maxSigners > 255) throw new InvalidInputError('threshold cannot be written to a compaction');
  if (k.epoch !== undefined && (!Number.isInteger(k.epoch) || k.epoch < 1 || k.epoch > 0xffffffff)) throw new InvalidInputError('epoch cannot be written to a compaction');
  return w.u32(k.epoch ?? 0).record(REC_KEY);
}

/** The inverse of encodeKeyRecord. Throws FormatError `malformed` naming the field (never a value). */
export function decodeKeyRecord(body: Uint8Array): KeyRecord {
  const r = new Reader(body, 'key');
  const keyId = r.text(1, 'key_id', ID_RE);
  const curve = r.oneOf(CURVES, 'curve');
  const threshold = r.u8();
  const maxSigners = r.u8();
  if (threshold < 1 || maxSigners < threshold) throw r.bad('threshold');
  const identifier = toHex(r.bytes(1));
  if (!HEX_RE.test(identifier)) throw r.bad('identifier');
  const groupPublicKey = r.bytes(2);
  const publicPackage = r.bytes(4);
  const encryptedShare = r.bytes(4);
  const status = r.oneOf(KEY_STATUSES, 'status');
  const origin = r.oneOf(KEY_ORIGINS, 'origin');
  const createdAt = r.u64('created_at');
  const tenant = r.text(1, 'tenant');
  const ers = r.u8();
  if (ers > ERS_POLICIES.length) throw r.bad('ers policy');
  const epoch = r.u32();
  r.end();
  const k: KeyRecord = { keyId, curve, threshold, maxSigners, identifier, groupPublicKey, publicPackage, encryptedShare, status, origin, createdAt, tenant };
  if (ers > 0) k.ersPolicy = ERS_POLICIES[ers - 1]!;
  if (epoch > 0) k.epoch = epoch;
  return keyTenantFromBackup(k, 'backup compaction: key');
}

/** An API key as a record. Throws InvalidInputError for a field this format cannot hold. */
export function encodeApiKeyRecord(a: ApiKeyRecord): Uint8Array {
  if (!ID_RE.test(a.id)) throw new InvalidInputError('api key id cannot be written to a compaction');
  const w = new Writer()
    .bytes(utf8.encode(a.id), 1, 'api key id')
    .bytes(a.secretHash, 1, 'secret hash')
    .u8(indexIn(API_KEY_ROLES, a.role, 'role'))
    .bytes(utf8.encode(a.label), 2, 'label')
    .u64(safeMillis(a.createdAt, 'created_at'));
  if (a.revokedAt === null) w.u8(0).u64(0);
  else w.u8(1).u64(safeMillis(a.revokedAt, 'revoked_at'));
  return w.bytes(utf8.encode(a.tenant ?? ''), 1, 'tenant').record(REC_API_KEY);
}

/** The inverse of encodeApiKeyRecord. Throws FormatError `malformed`. */
export function decodeApiKeyRecord(body: Uint8Array): ApiKeyRecord {
  const r = new Reader(body, 'api key');
  const id = r.text(1, 'id', ID_RE);
  const secretHash = r.bytes(1);
  const role = r.oneOf(API_KEY_ROLES, 'role');
  const label = r.text(2, 'label');
  const createdAt = r.u64('created_at');
  const revoked = r.u8();
  const at = r.u64('revoked_at');
  if (revoked > 1 || (revoked === 0 && at !== 0)) throw r.bad('revoked_at');
  const tenant = r.text(1, 'tenant');
  r.end();
  return apiKeyTenantFromBackup({ id, secretHash, role, label, createdAt, revokedAt: revoked ? at : null, tenant: tenant === '' ? null : tenant }, 'backup compaction: api key');
}

/** The end record's flag: the state is exactly the one after the compaction's entry (docs/format.md). */
export const END_EXACT = 0x01;

/** What the end record says: the counts of the records before it, and whether the state is exact. */
export interface EndRecord {
  keys: number;
  apiKeys: number;
  exact: boolean;
}

export function encodeEndRecord(e: EndRecord): Uint8Array {
  return new Writer()
    .u64(e.keys)
    .u64(e.apiKeys)
    .u8(e.exact ? END_EXACT : 0)
    .record(REC_END);
}

/** The inverse of encodeEndRecord. Throws FormatError `malformed` for a flags byte other than 0 or 1, or a body not 17 bytes. */
export function decodeEndRecord(body: Uint8Array): EndRecord {
  const r = new Reader(body, 'end');
  const keys = r.u64('keys');
  const apiKeys = r.u64('api keys');
  const flags = r.u8();
  if (flags !== 0 && flags !== END_EXACT) throw r.bad('flags');
  r.end();
  return { keys, apiKeys, exact: flags === END_EXACT };
}

/**
 * Cuts a payload pushed chunk by chunk into whole records (a record may span chunks); `onRecord` gets
 * the type and a body view valid until it returns. Throws FormatError `malformed` for a record over
 * MAX_RECORD.
 */
export class RecordSplitter {
  private pend = new Uint8Array(0);
  private fill = 0;

  constructor(private readonly onRecord: (type: number, body: Uint8Array) => void) {}

  /** True when no partial record is waiting. */
  get idle(): boolean {
    return this.fill === 0;
  }

  push(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length) {
      const rest = chunk.length - i;
      if (this.fill === 0 && rest >= 5) {
        const len = lenAt(chunk, i);
        if (rest >= 5 + len) {
          this.onRecord(chunk[i]!, chunk.subarray(i + 5, i + 5 + len));
          i += 5 + len;
          continue;
        }
      }
      // A record that spans chunks: gather its header, then its body.
      const want = this.fill < 5 ? 5 : 5 + lenAt(this.pend, 0);
      const take = Math.min(want - this.fill, rest);
      this.ensure(this.fill + take);
      this.pend.set(chunk.subarray(i, i + take), this.fill);
      this.fill += take;
      i += take;
      if (this.fill >= 5 && this.fill === 5 + lenAt(this.pend, 0)) {
        this.fill = 0;
        this.onRecord(this.pend[0]!, this.pend.subarray(5, 5 + lenAt(this.pend, 0)));
        this.pend.fill(0);
      }
    }
  }

  private ensure(n: number): void {
    if (n <= this.pend.length) return;
    const next = new Uint8Array(Math.max(n, this.pend.length * 2, 256));
    next.set(this.pend.subarray(0, this.fill));
    this.pend.fill(0);
    this.pend = next;
  }
}

function lenAt(b: Uint8Array, i: number): number {
  const len = ((b[i + 1]! << 24) >>> 0) + (b[i + 2]! << 16) + (b[i + 3]! << 8) + b[i + 4]!;
  if (len > MAX_RECORD) throw new FormatError('malformed', 'backup compaction: a record is too long');
  return len;
}
