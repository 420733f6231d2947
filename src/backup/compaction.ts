/**
 * Streamed compactions (`LBBC` version 2, docs/format.md "Compaction (`LBBC`, version 2)"): a clear
 * header, then binary records (./compaction-records.ts) sealed in 64 KiB STREAM chunks
 * (src/crypto/stream.ts) under a key derived from the backup key and the whole header, which carries a
 * fresh 32-byte salt. Written record by record and read chunk by chunk: neither side holds more than
 * a chunk and a record. Version 1 (one envelope of JSON, ./format.ts) is still read. Pure: no I/O.
 */
import { FormatError, InvalidInputError, LifeboatError } from '../errors.js';
import { deriveKey } from '../crypto/kdf.js';
import { randomBytes } from '../crypto/random.js';
import { StreamOpener, StreamSealer } from '../crypto/stream.js';
import { concatBytes, u16be, utf8, wipe } from '../util/bytes.js';
import type { ApiKeyRecord, KeyRecord } from '../keynode/store/types.js';
import type { StreamSecrets } from './changes.js';
import { decodeNodeState } from './changes.js';
import {
  decodeApiKeyRecord,
  decodeEndRecord,
  decodeKeyRecord,
  decodeSecretsRecord,
  encodeApiKeyRecord,
  encodeEndRecord,
  encodeKeyRecord,
  encodeSecretsRecord,
  REC_API_KEY,
  REC_END,
  REC_KEY,
  REC_SECRETS,
  RecordSplitter,
} from './compaction-records.js';
import { checkName, COMPACTION_MAGIC, HASH_LEN, MAX_SEQ, NAME_RE, openCompaction, parseCompactionHeader, type StreamHeader } from './format.js';

export const COMPACTION_V2 = 2;
const SALT_LEN = 32;
const PREFIX_LEN = 7;

/** A version-2 compaction's header: where it belongs, the head it covers, when, and its key's salt. */
export interface CompactionHeaderV2 extends StreamHeader {
  createdAt: number;
  salt: Uint8Array;
}

/**
 * `LBBC` || 0x02 || u16 len || lp16(stream) || u64 seq || head (32) || u64 created_at (ms) || salt (32).
 * Throws InvalidInputError for a field out of range.
 */
export function encodeCompactionHeader(h: CompactionHeaderV2): Uint8Array {
  checkName(h.stream, 'stream');
  if (!Number.isSafeInteger(h.seq) || h.seq < 1) throw new InvalidInputError('seq must be an integer >= 1');
  if (!Number.isSafeInteger(h.createdAt) || h.createdAt < 0) throw new InvalidInputError('created_at must be a non-negative integer');
  if (h.link.length !== HASH_LEN || h.salt.length !== SALT_LEN) throw new InvalidInputError('head and salt must be 32 bytes');
  const s = utf8.encode(h.stream);
  const body = new Uint8Array(2 + s.length + 8 + HASH_LEN + 8 + SALT_LEN);
  const v = new DataView(body.buffer);
  v.setUint16(0, s.length);
  body.set(s, 2);
  v.setBigUint64(2 + s.length, BigInt(h.seq));
  body.set(h.link, 10 + s.length);
  v.setBigUint64(42 + s.length, BigInt(h.createdAt));
  body.set(h.salt, 50 + s.length);
  return concatBytes(utf8.encode(COMPACTION_MAGIC), new Uint8Array([COMPACTION_V2]), u16be(body.length), body);
}

const MAGIC = utf8.encode(COMPACTION_MAGIC);

function checkMagic(bytes: Uint8Array): void {
  for (let i = 0; i < 4; i++) if (bytes[i] !== MAGIC[i]) throw new FormatError('bad_magic', 'not a backup compaction (bad magic)');
}

/**
 * Parses a version-2 header from the start of `bytes`; returns it and its length, or undefined when
 * more bytes are needed. Throws FormatError `bad_magic`, `unsupported_version`, `malformed`.
 */
export function parseCompactionHeaderV2(bytes: Uint8Array): { h: CompactionHeaderV2; length: number } | undefined {
  if (bytes.length < PREFIX_LEN) return undefined;
  checkMagic(bytes);
  if (bytes[4] !== COMPACTION_V2) throw new FormatError('unsupported_version', `backup compaction version ${bytes[4]} is not supported here`);
  const hlen = (bytes[5]! << 8) | bytes[6]!;
  if (bytes.length < PREFIX_LEN + hlen) return undefined;
  const bad = () => new FormatError('malformed', 'backup compaction header is malformed');
  const body = bytes.subarray(PREFIX_LEN, PREFIX_LEN + hlen);
  if (body.length < 2) throw bad();
  const len = (body[0]! << 8) | body[1]!;
  if (body.length !== 2 + len + 8 + HASH_LEN + 8 + SALT_LEN) throw bad();
  let stream: string;
  try {
    stream = new TextDecoder('utf-8', { fatal: true }).decode(body.subarray(2, 2 + len));
  } catch {
    throw bad();
  }
  const v = new DataView(body.buffer, body.byteOffset, body.length);
  const seq = v.getBigUint64(2 + len);
  const createdAt = v.getBigUint64(42 + len);
  if (!NAME_RE.test(stream) || seq < 1n || seq > BigInt(MAX_SEQ) || createdAt > BigInt(Number.MAX_SAFE_INTEGER)) throw bad();
  const h = { stream, seq: Number(seq), link: body.slice(10 + len, 42 + len), createdAt: Number(createdAt), salt: body.slice(50 + len) };
  return { h, length: PREFIX_LEN + hlen };
}

/** The clear header of a compaction of either version (what the service checks). Throws FormatError. */
export function parseAnyCompactionHeader(bytes: Uint8Array): StreamHeader {
  if (bytes.length > 4 && bytes[4] === COMPACTION_V2) {
    const r = parseCompactionHeaderV2(bytes);
    if (!r) throw new FormatError('truncated', 'backup compaction is truncated');
    return { stream: r.h.stream, seq: r.h.seq, link: r.h.link };
  }
  return parseCompactionHeader(bytes);
}

/** The payload key: HKDF-SHA256(backup key, salt = the header's bytes, info `lifeboat:backup/compaction/v2`). */
function payloadKey(backupKey: Uint8Array, header: Uint8Array): Uint8Array {
  if (!(backupKey instanceof Uint8Array) || backupKey.length !== 32) throw new InvalidInputError('backup key must be 32 bytes');
  return deriveKey(backupKey, header, 'backup/compaction/v2');
}

/**
 * Writes a version-2 compaction record by record: the node keys, then keys in increasing key_id order,
 * then API keys, then `finish`. `onBytes` gets the header, then each sealed chunk, as they are made (a
 * view of a reused buffer: copy it to keep it). Throws InvalidInputError out of order or for a record
 * this format cannot hold.
 */
export class CompactionWriter {
  private readonly sealer: StreamSealer;
  private state: 'secrets' | 'keys' | 'api_keys' | 'done' = 'secrets';
  private lastKeyId = '';
  private keys = 0;
  private apiKeys = 0;
  private bytes = 0;

  constructor(backupKey: Uint8Array, h: { stream: string; seq: number; head: Uint8Array; createdAt: number }, onBytes: (bytes: Uint8Array) => void) {
    const header = encodeCompactionHeader({ stream: h.stream, seq: h.seq, link: h.head, createdAt: h.createdAt, salt: randomBytes(SALT_LEN) });
    const key = payloadKey(backupKey, header);
    const emit = (b: Uint8Array) => {
      this.bytes += b.length;
      onBytes(b);
    };
    try {
      this.sealer = new StreamSealer(key, emit);
    } finally {
      wipe(key);
    }
    emit(header);
  }

  secrets(s: StreamSecrets): void {
    if (this.state !== 'secrets') throw new InvalidInputError('the node keys come first, once');
    const rec = encodeSecretsRecord(s);
    this.sealer.push(rec);
    wipe(rec);
    this.state = 'keys';
  }

  key(k: KeyRecord): void {
    if (this.state !== 'keys') throw new InvalidInputError('keys come after the node keys and before the api keys');
    if (this.keys > 0 && !(k.keyId > this.lastKeyId)) throw new InvalidInputError('keys must come in increasing key_id order');
    this.sealer.push(encodeKeyRecord(k));
    this.lastKeyId = k.keyId;
    this.keys += 1;
  }

  apiKey(a: ApiKeyRecord): void {
    if (this.state === 'keys') this.state = 'api_keys';
    if (this.state !== 'api_keys') throw new InvalidInputError('api keys come after the keys');
    this.sealer.push(encodeApiKeyRecord(a));
    this.apiKeys += 1;
  }

  /**
   * Writes the end record and the last chunk; returns the counts and the total size in bytes. `exact`:
   * no change was committed while the records were read (docs/format.md, the end record's flag).
   */
  finish(opts: { exact: boolean }): { keys: number; apiKeys: number; bytes: number } {
    if (this.state === 'secrets' || this.state === 'done') throw new InvalidInputError('a compaction holds the node keys and is finished once');
    this.sealer.push(encodeEndRecord({ keys: this.keys, apiKeys: this.apiKeys, exact: opts.exact }));
    this.sealer.finish();
    this.state = 'done';
    return { keys: this.keys, apiKeys: this.apiKeys, bytes: this.bytes };
  }
}

/** What a reader hands on, in order: the node keys once, every key, every API key. */
export interface CompactionSink {
  secrets(s: StreamSecrets): void;
  key(k: KeyRecord): void;
  apiKey(a: ApiKeyRecord): void;
}

/** A sink that keeps nothing (the reader still authenticates and counts every record). */
export const discardRecords: CompactionSink = { secrets: () => {}, key: () => {}, apiKey: () => {} };

export interface OpenedCompaction {
  version: 1 | 2;
  seq: number;
  head: Uint8Array;
  keys: number;
  apiKeys: number;
  /** When the agent made it (ISO 8601; version 1: the string it wrote). */
  createdAt: string;
  /** Holds exactly the state after entry `seq` (a base for a point-in-time restore before the head). */
  exact: boolean;
}

function misplaced(found: string, expect: string): LifeboatError {
  return new LifeboatError('entry_misplaced', `backup compaction belongs to stream ${found}, not ${expect}`, { status: 400, safety: true });
}

/**
 * Reads a compaction of either version pushed in pieces, handing each record to `sink` once its chunk
 * is authenticated (version 1 is one envelope: it is gathered whole, then opened). Nothing a sink gets
 * is final before `finish` returns: a later chunk may still fail. Throws FormatError (`bad_magic`,
 * `unsupported_version`, `truncated`, `malformed`: records out of order, a missing or early end, counts
 * that differ), LifeboatError `entry_misplaced` (another stream), DecryptionError (a wrong key, or a
 * chunk altered, missing, reordered, duplicated or added after the last).
 */
export class CompactionReader {
  private head: Uint8Array[] = [];
  private headLen = 0;
  private v1: Uint8Array[] | undefined;
  private h: CompactionHeaderV2 | undefined;
  private opener: StreamOpener | undefined;
  private splitter: RecordSplitter | undefined;
  private phase: 'secrets' | 'keys' | 'api_keys' | 'ended' = 'secrets';
  private lastKeyId = '';
  private keys = 0;
  private apiKeys = 0;
  private exact = false;

  constructor(
    private readonly backupKey: Uint8Array,
    private readonly expect: { stream: string },
    private readonly sink: CompactionSink,
  ) {
    if (!(backupKey instanceof Uint8Array) || backupKey.length !== 32) throw new InvalidInputError('backup key must be 32 bytes');
  }

  push(bytes: Uint8Array): void {
    if (this.v1) return void this.v1.push(new Uint8Array(bytes));
    if (this.opener) return this.opener.push(bytes);
    this.head.push(new Uint8Array(bytes));
    this.headLen += bytes.length;
    const all = concatBytes(...this.head);
    if (all.length >= 5 && all[4] !== COMPACTION_V2) {
      // Version 1 is one envelope: gathered whole, opened in finish (its magic and version checked now).
      checkMagic(all);
      if (all[4] !== 1) throw new FormatError('unsupported_version', `backup compaction version ${all[4]} is not supported (this build reads 1, 2)`, 'upgrade lifeboat to read files written by a newer version');
      this.v1 = [all];
      this.head = [];
      return;
    }
    const r = parseCompactionHeaderV2(all);
    if (!r) {
      this.head = [all];
      return;
    }
    this.head = [];
    if (r.h.stream !== this.expect.stream) throw misplaced(r.h.stream, this.expect.stream);
    this.h = r.h;
    this.splitter = new RecordSplitter((type, body) => this.record(type, body));
    const key = payloadKey(this.backupKey, all.subarray(0, r.length));
    try {
      this.opener = new StreamOpener(key, (pt) => this.splitter!.push(pt));
    } finally {
      wipe(key);
    }
    this.opener.push(all.subarray(r.length));
  }

  /** Checks the last chunk and the end record; returns what the compaction covers. */
  finish(): OpenedCompaction {
    if (this.v1) return this.finishV1();
    if (!this.opener || !this.h) throw new FormatError('truncated', 'backup compaction is truncated');
    this.opener.finish();
    if (this.phase !== 'ended' || !this.splitter!.idle) throw new FormatError('malformed', 'backup compaction: the end record is missing');
    return { version: 2, seq: this.h.seq, head: this.h.link, keys: this.keys, apiKeys: this.apiKeys, createdAt: new Date(this.h.createdAt).toISOString(), exact: this.exact };
  }

  private finishV1(): OpenedCompaction {
    const c = openCompaction(this.backupKey, concatBytes(...this.v1!), this.expect);
    this.v1 = [];
    const state = decodeNodeState(c.plaintext);
    wipe(c.plaintext);
    this.sink.secrets(state.secrets!);
    for (const k of state.keys.values()) this.sink.key(k);
    for (const a of state.apiKeys.values()) this.sink.apiKey(a);
    return { version: 1, seq: c.seq, head: c.head, keys: state.keys.size, apiKeys: state.apiKeys.size, createdAt: state.createdAt, exact: state.exact };
  }

  private record(type: number, body: Uint8Array): void {
    const bad = (what: string) => new FormatError('malformed', `backup compaction: ${what}`);
    if (this.phase === 'ended') throw bad('a record follows the end record');
    if (type === REC_SECRETS) {
      if (this.phase !== 'secrets') throw bad('the node keys appear twice');
      this.sink.secrets(decodeSecretsRecord(body));
      this.phase = 'keys';
      return;
    }
    if (this.phase === 'secrets') throw bad('the node keys do not come first');
    if (type === REC_KEY) {
      if (this.phase !== 'keys') throw bad('a key follows the api keys');
      const k = decodeKeyRecord(body);
      if (this.keys > 0 && !(k.keyId > this.lastKeyId)) throw bad('keys are not in increasing key_id order (a duplicate?)');
      this.lastKeyId = k.keyId;
      this.keys += 1;
      this.sink.key(k);
    } else if (type === REC_API_KEY) {
      this.phase = 'api_keys';
      this.apiKeys += 1;
      this.sink.apiKey(decodeApiKeyRecord(body));
    } else if (type === REC_END) {
      const e = decodeEndRecord(body);
      if (e.keys !== this.keys || e.apiKeys !== this.apiKeys) throw bad('the end record counts other keys than the records hold');
      this.exact = e.exact;
      this.phase = 'ended';
    } else {
      throw new FormatError('malformed', 'backup compaction: a record of an unknown type', 'upgrade lifeboat: this compaction was written by a newer version');
    }
  }
}
