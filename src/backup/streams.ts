/**
 * The backup service's streams (docs/backup.md, "Streams"): appending and listing entries, and
 * compaction uploads. The service sees ciphertext only; it reads the clear headers (stream, seq, the
 * previous hash or the head hash) to keep each stream a chain and each compaction tied to it.
 * Authorisation is the caller's (a backup token of the account, checked by the routes).
 */
import { createHash } from 'node:crypto';
import { ConflictError, InvalidInputError, LifeboatError, NotFoundError } from '../errors.js';
import { randomBytes } from '../crypto/random.js';
import { ctEqual, toB64u } from '../util/bytes.js';
import { MAX_CHUNK_BYTES, MAX_CHUNKS, MAX_COMPACTION_BYTES, MAX_ENTRIES, MAX_ENTRY_BYTES } from './api.js';
import { parseAnyCompactionHeader } from './compaction.js';
import { parseEntryHeader, ZERO_HASH } from './format.js';
import type { BackupStore, CompactionRecord, EntryRecord, StreamRecord } from './store/types.js';

/** A listing stops adding entries once it holds this many bytes (at least one entry is always listed). */
export const LIST_BYTES_BUDGET = 8 * 1024 * 1024;
/** Entries read from the store per query while listing (bounds the memory one listing takes). */
const LIST_PAGE = 100;
/** Bytes of a compaction's start that hold its header (the header is at most 113 bytes, the envelope adds 40). */
const HEADER_PREFIX = 1024;

/** What a streamed upload's record holds until `complete` names its size, chunk count and hash. */
const STREAMED = { hash: ZERO_HASH, size: MAX_COMPACTION_BYTES, chunkCount: MAX_CHUNKS };

const streamNotFound = (stream: string) => new NotFoundError(`no stream ${stream} in this account`, 'stream_not_found');

/** A zero-copy Buffer view of `b` (itself when it is one). */
function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** Rethrows a header's FormatError naming which entry it was. */
function entryError(i: number, err: unknown): never {
  if (err instanceof LifeboatError) throw new LifeboatError(err.code, `entries[${i}]: ${err.message}`, { status: 400, hint: err.hint });
  throw err;
}

export class BackupStreams {
  constructor(
    private readonly store: BackupStore,
    private readonly now: () => number,
  ) {}

  listStreams(account: string): Promise<StreamRecord[]> {
    return this.store.listStreams(account);
  }

  /** The stream's head and current compaction. Throws NotFoundError `stream_not_found`. */
  async getStream(account: string, stream: string): Promise<{ head: StreamRecord; compaction: CompactionRecord | undefined }> {
    const head = await this.store.getStream(account, stream);
    if (!head) throw streamNotFound(stream);
    return { head, compaction: await this.store.currentCompaction(account, stream) };
  }

  /**
   * Appends a batch: each entry's header must name this stream, the seqs must be consecutive, and the
   * store decides idempotence and the chain. Returns the head after the batch. Throws FormatError (a
   * header that does not parse), LifeboatError `entry_misplaced` (another stream), InvalidInputError,
   * ConflictError `sequence_gap`, `chain_mismatch`, `entry_conflict`, `entry_pruned` (nothing written).
   */
  async append(account: string, stream: string, entries: Uint8Array[]): Promise<StreamRecord> {
    if (entries.length < 1 || entries.length > MAX_ENTRIES) throw new InvalidInputError(`a batch holds 1 to ${MAX_ENTRIES} entries`);
    const records: EntryRecord[] = entries.map((bytes, i) => {
      if (bytes.length > MAX_ENTRY_BYTES) throw new LifeboatError('entry_too_large', `entries[${i}] is larger than ${MAX_ENTRY_BYTES} bytes`, { status: 413 });
      let h;
      try {
        h = parseEntryHeader(bytes);
      } catch (err) {
        entryError(i, err);
      }
      if (h.stream !== stream) throw new LifeboatError('entry_misplaced', `entries[${i}] belongs to stream ${h.stream}, not ${stream}`, { status: 400 });
      // Each entry hashed once, here; Buffers all (views of the request body, the digest, the link in
      // the pool), which the store binds as they are: no per-entry copy on the way to the row.
      return { seq: h.seq, prevHash: Buffer.from(h.link), hash: createHash('sha256').update(bytes).digest(), bytes: asBuffer(bytes) };
    });
    for (let i = 1; i < records.length; i++) {
      if (records[i]!.seq !== records[0]!.seq + i) throw new InvalidInputError(`entries[${i}] has seq ${records[i]!.seq}, expected ${records[0]!.seq + i}: a batch is consecutive`);
    }
    return this.store.appendEntries(account, stream, records, this.now());
  }

  /**
   * Up to `limit` entries after `afterSeq`, stopping early at about LIST_BYTES_BUDGET bytes (so an
   * empty answer, not a short one, means the end), with the head. Throws NotFoundError `stream_not_found`.
   */
  async listEntries(account: string, stream: string, afterSeq: number, limit: number): Promise<{ headSeq: number; entries: EntryRecord[] }> {
    const head = await this.store.getStream(account, stream);
    if (!head) throw streamNotFound(stream);
    const out: EntryRecord[] = [];
    let bytes = 0;
    let after = afterSeq;
    while (out.length < limit) {
      const want = Math.min(LIST_PAGE, limit - out.length);
      const page = await this.store.listEntries(account, stream, after, want);
      for (const e of page) {
        if (out.length > 0 && bytes + e.bytes.length > LIST_BYTES_BUDGET) return { headSeq: head.headSeq, entries: out };
        out.push(e);
        bytes += e.bytes.length;
      }
      if (page.length < want) break;
      after = page[page.length - 1]!.seq;
    }
    return { headSeq: head.headSeq, entries: out };
  }

  /**
   * Starts a compaction upload covering entries up to `seq`, under an id the service chooses.
   * Throws NotFoundError `stream_not_found`, ConflictError `compaction_beyond_head` (seq > head) and
   * `compaction_stale` (a complete compaction at or after seq), InvalidInputError for a chunk count
   * that cannot hold `size` in chunks of 1 byte to 8 MiB. Without hash, size and chunk count the upload
   * is streamed: until `complete` names them, the record holds the limits and a zero hash.
   */
  async beginCompaction(account: string, stream: string, declared: { seq: number; hash?: Uint8Array; size?: number; chunkCount?: number }): Promise<CompactionRecord> {
    const c = declared.hash && declared.size && declared.chunkCount ? { ...declared, hash: declared.hash, size: declared.size, chunkCount: declared.chunkCount } : { seq: declared.seq, ...STREAMED };
    if (c.hash.length !== 32) throw new InvalidInputError('hash must be 32 bytes');
    if (c.chunkCount > c.size || c.size > c.chunkCount * MAX_CHUNK_BYTES) {
      throw new InvalidInputError(`${c.chunkCount} chunks of 1 byte to ${MAX_CHUNK_BYTES} bytes cannot hold ${c.size} bytes`);
    }
    const head = await this.store.getStream(account, stream);
    if (!head) throw streamNotFound(stream);
    if (c.seq > head.headSeq) {
      throw new ConflictError(`compaction seq ${c.seq} is beyond the stream head ${head.headSeq}`, 'compaction_beyond_head', 'upload the entries it covers first');
    }
    const current = await this.store.currentCompaction(account, stream);
    if (current && current.seq >= c.seq) throw new ConflictError(`a compaction at seq ${current.seq} is already complete`, 'compaction_stale');
    const rec: Omit<CompactionRecord, 'state' | 'completedAt'> = {
      id: toB64u(randomBytes(16)),
      account,
      stream,
      seq: c.seq,
      hash: c.hash,
      size: c.size,
      chunkCount: c.chunkCount,
      createdAt: this.now(),
    };
    await this.store.beginCompaction(rec);
    return { ...rec, state: 'uploading', completedAt: null };
  }

  private async compaction(account: string, stream: string, id: string): Promise<CompactionRecord> {
    const c = await this.store.getCompaction(account, stream, id);
    if (!c) throw new NotFoundError(`no compaction ${id} in stream ${stream}`, 'compaction_not_found');
    return c;
  }

  /** Stores chunk `n`. Throws NotFoundError `compaction_not_found`, InvalidInputError, ConflictError `compaction_complete`. */
  async putChunk(account: string, stream: string, id: string, n: number, bytes: Uint8Array): Promise<void> {
    const c = await this.compaction(account, stream, id);
    if (n >= c.chunkCount) throw new InvalidInputError(`chunk ${n} is out of range: the compaction has ${c.chunkCount} chunks`);
    if (bytes.length < 1 || bytes.length > MAX_CHUNK_BYTES) throw new InvalidInputError(`a chunk holds 1 to ${MAX_CHUNK_BYTES} bytes`);
    await this.store.putCompactionChunk(account, stream, id, n, bytes);
  }

  /** Chunk `n`. Throws NotFoundError `compaction_not_found`, `chunk_not_found`. */
  async getChunk(account: string, stream: string, id: string, n: number): Promise<Uint8Array> {
    await this.compaction(account, stream, id);
    const bytes = await this.store.getCompactionChunk(account, stream, id, n);
    if (!bytes) throw new NotFoundError(`compaction ${id} has no chunk ${n}`, 'chunk_not_found');
    return bytes;
  }

  /**
   * Completes an upload: every chunk is there, the total size and SHA-256 are the declared ones, the
   * compaction's header names this stream and seq, and its head hash is the hash of the entry `seq`
   * held here. Then it becomes current and the store prunes. Idempotent for a complete one.
   * Throws NotFoundError `compaction_not_found`; ConflictError `compaction_incomplete`,
   * `compaction_size_mismatch`, `compaction_hash_mismatch`, `compaction_misplaced`,
   * `compaction_head_mismatch`, `compaction_stale`; FormatError for a header that does not parse;
   * InvalidInputError when a streamed upload is completed without its size, chunk count and hash.
   */
  async complete(account: string, stream: string, id: string, declared?: { hash: Uint8Array; size: number; chunkCount: number }): Promise<CompactionRecord> {
    const rec = await this.compaction(account, stream, id);
    if (rec.state === 'complete') return rec;
    const streamed = ctEqual(rec.hash, ZERO_HASH);
    if (streamed && !declared) throw new InvalidInputError('a streamed compaction is completed with its size, chunk_count and hash', { hint: 'send {"size", "chunk_count", "hash"} with complete' });
    const c = streamed && declared ? { ...rec, ...declared } : rec;
    if (declared && !streamed && (declared.size !== rec.size || declared.chunkCount !== rec.chunkCount || !ctEqual(declared.hash, rec.hash))) {
      throw new ConflictError('complete names another size, chunk count or hash than the upload began with', 'compaction_size_mismatch');
    }
    if (c.chunkCount > c.size || c.size > c.chunkCount * MAX_CHUNK_BYTES) throw new InvalidInputError(`${c.chunkCount} chunks of 1 byte to ${MAX_CHUNK_BYTES} bytes cannot hold ${c.size} bytes`);
    const hash = createHash('sha256');
    const prefix: Uint8Array[] = [];
    let size = 0;
    for (let n = 0; n < c.chunkCount; n++) {
      const chunk = await this.store.getCompactionChunk(account, stream, id, n);
      if (!chunk) throw new ConflictError(`chunk ${n} of ${c.chunkCount} was not uploaded`, 'compaction_incomplete', 'upload every chunk, then complete');
      hash.update(chunk);
      if (size < HEADER_PREFIX) prefix.push(chunk.subarray(0, HEADER_PREFIX - size));
      size += chunk.length;
    }
    if (size !== c.size) throw new ConflictError(`the chunks hold ${size} bytes, not the ${c.size} declared`, 'compaction_size_mismatch');
    if (streamed && c.chunkCount < MAX_CHUNKS && (await this.store.getCompactionChunk(account, stream, id, c.chunkCount))) {
      throw new ConflictError(`a chunk past the ${c.chunkCount} declared was uploaded`, 'compaction_size_mismatch');
    }
    if (!ctEqual(new Uint8Array(hash.digest()), c.hash)) throw new ConflictError('the chunks do not hash to the declared sha-256', 'compaction_hash_mismatch');
    const h = parseAnyCompactionHeader(Buffer.concat(prefix));
    if (h.stream !== stream || h.seq !== c.seq) {
      throw new ConflictError(`the compaction names ${h.stream}#${h.seq}, not ${stream}#${c.seq}`, 'compaction_misplaced');
    }
    const entry = await this.store.getEntry(account, stream, c.seq);
    if (!entry || !ctEqual(entry.hash, h.link)) {
      throw new ConflictError(`the compaction's head is not entry ${c.seq} of this stream as held here`, 'compaction_head_mismatch', 'compact from the entries the service acknowledged');
    }
    await this.store.completeCompaction(account, stream, id, this.now(), streamed ? { hash: c.hash, size: c.size, chunkCount: c.chunkCount } : undefined);
    return (await this.store.getCompaction(account, stream, id)) ?? { ...c, state: 'complete', completedAt: this.now() };
  }

  /** The current compaction. Throws NotFoundError `compaction_not_found` when there is none. */
  async currentCompaction(account: string, stream: string): Promise<CompactionRecord> {
    const c = await this.store.currentCompaction(account, stream);
    if (!c) throw new NotFoundError(`stream ${stream} has no complete compaction`, 'compaction_not_found');
    return c;
  }

  /** The stream's complete compactions by seq (what a point-in-time restore picks from). Throws NotFoundError `stream_not_found`. */
  async listCompactions(account: string, stream: string): Promise<CompactionRecord[]> {
    await this.getStream(account, stream);
    return this.store.listCompactions(account, stream);
  }
}
