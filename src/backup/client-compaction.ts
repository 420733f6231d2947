/**
 * Streamed compaction transfers (docs/backup.md, "Compactions"): an upload sent part by part while the
 * compaction is being written, its size, chunk count and SHA-256 named only by `complete`; and a
 * download handed on chunk by chunk, checked against the listed size and SHA-256 at its end. Neither
 * holds more than one part (DEFAULT_CHUNK_BYTES) of the compaction.
 */
import { createHash } from 'node:crypto';
import { InvalidInputError } from '../errors.js';
import { ctEqual } from '../util/bytes.js';
import { chunkAnswer, compactionAnswer, encodeBase64, MAX_CHUNK_BYTES } from './api.js';
import { type BackupClient, type CompactionInfo, DEFAULT_CHUNK_BYTES, TRANSFER_TIMEOUT_MS } from './client.js';
import { compactionPath, streamPath } from './client-http.js';

/** One compaction being uploaded: `write` as bytes come, then `finish`. Not reusable. */
export class CompactionUpload {
  private readonly part: Uint8Array;
  private fill = 0;
  private n = 0;
  private size = 0;
  private readonly hash = createHash('sha256');

  private constructor(
    private readonly client: BackupClient,
    private readonly stream: string,
    private readonly id: string,
    partBytes: number,
  ) {
    this.part = new Uint8Array(partBytes);
  }

  /**
   * Starts a streamed upload of a compaction covering entries up to `seq`. Throws what the service
   * answers (`compaction_beyond_head`, `compaction_stale`, `stream_not_found`), InvalidInputError for a
   * part size outside 1 byte to 8 MiB.
   */
  static async begin(client: BackupClient, stream: string, seq: number, partBytes = DEFAULT_CHUNK_BYTES): Promise<CompactionUpload> {
    if (!Number.isInteger(partBytes) || partBytes < 1 || partBytes > MAX_CHUNK_BYTES) throw new InvalidInputError(`partBytes must be 1 to ${MAX_CHUNK_BYTES} bytes`);
    const c = await client.streamCall('POST', (acc) => `${streamPath(acc, stream)}/compactions`, { seq }, compactionAnswer);
    return new CompactionUpload(client, stream, c.id, partBytes);
  }

  /** Adds bytes (copied); sends a part each time one is full. */
  async write(bytes: Uint8Array): Promise<void> {
    let i = 0;
    while (i < bytes.length) {
      const take = Math.min(bytes.length - i, this.part.length - this.fill);
      this.part.set(bytes.subarray(i, i + take), this.fill);
      this.fill += take;
      i += take;
      if (this.fill === this.part.length) await this.flush();
    }
  }

  /** Sends the last part and completes; returns the compaction as the service now holds it (current). */
  async finish(): Promise<CompactionInfo> {
    if (this.fill > 0) await this.flush();
    if (this.size === 0) throw new InvalidInputError('a compaction is at least 1 byte');
    const body = { size: this.size, chunk_count: this.n, hash: encodeBase64(new Uint8Array(this.hash.digest())) };
    const done = await this.client.streamCall('POST', (acc) => `${compactionPath(acc, this.stream, this.id)}/complete`, body, compactionAnswer, { timeoutMs: TRANSFER_TIMEOUT_MS });
    return this.client.compaction(done);
  }

  private async flush(): Promise<void> {
    const bytes = this.part.subarray(0, this.fill);
    this.hash.update(bytes);
    const n = this.n;
    await this.client.streamCall('PUT', (acc) => `${compactionPath(acc, this.stream, this.id)}/chunks/${n}`, undefined, chunkAnswer, { bytes, timeoutMs: TRANSFER_TIMEOUT_MS });
    this.n += 1;
    this.size += this.fill;
    this.fill = 0;
  }
}

/**
 * The chunks of a compaction as the service holds them, one at a time. After the last, checks the
 * size and SHA-256 against `meta`: the caller must not act on what it read before the generator ends.
 * Throws PeerError `peer_bad_answer` when they differ, LifeboatError `compaction_not_found` when it
 * was pruned meanwhile.
 */
export async function* downloadCompactionChunks(client: BackupClient, stream: string, meta: CompactionInfo, onBytes?: (done: number, total: number) => void): AsyncGenerator<Uint8Array> {
  const hash = createHash('sha256');
  let off = 0;
  for (let n = 0; n < meta.chunkCount; n++) {
    const b = (await client.streamCall('GET', (acc) => `${compactionPath(acc, stream, meta.id)}/chunks/${n}`, undefined, null, { raw: true, timeoutMs: TRANSFER_TIMEOUT_MS })) as Uint8Array;
    if (off + b.length > meta.size) throw client.http.badAnswer('the compaction is larger than listed');
    hash.update(b);
    off += b.length;
    onBytes?.(off, meta.size);
    yield b;
  }
  if (off !== meta.size || !ctEqual(new Uint8Array(hash.digest()), meta.hash)) throw client.http.badAnswer('the compaction does not match its listed size and sha-256');
}
