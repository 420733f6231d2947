/**
 * The sequencer's co-signing step (docs/log.md, "How the sequencer keeps its promises"): the hook it
 * hands each new checkpoint to, and the bounded wait for the hook's answer. A witness that fails or is
 * late costs the checkpoint its co-signatures, never its publication; a refusal for safety stops it.
 */
import { LifeboatError } from '../../errors.js';
import { openCheckpoint } from '../checkpoint.js';
import type { NoteVerifier } from '../note.js';
import { proveConsistency } from '../proof.js';
import { tileHashReader, type TileReader } from '../tile-reader.js';
import type { TreeHeadRecord } from '../store/types.js';

/** What the sequencer hands its co-signing hook for each new checkpoint. */
export interface CosignRequest {
  /** The checkpoint note as the log signed it. */
  checkpoint: string;
  size: number;
  /** A consistency proof from an older size (a witness's) to `size`. */
  proveConsistency(oldSize: number): Promise<Uint8Array[]>;
  /** Aborted when the log stops waiting: the hook should resolve with what it has by then. */
  signal: AbortSignal;
}

/** Returns the checkpoint with the co-signature lines it collected added (or unchanged). */
export type Cosigner = (req: CosignRequest) => Promise<string>;

/**
 * The hook's answer if it is `head`'s checkpoint with lines added; else (a failure, no answer within
 * `timeoutMs`) calls `failed` with why and returns the bare checkpoint. Throws a refusal for safety
 * (a LifeboatError with `safety`: a witness that co-signed a larger tree or holds another root).
 */
export async function collectCosignatures(head: TreeHeadRecord, cosign: Cosigner, timeoutMs: number, tiles: TileReader, verifier: NoteVerifier, failed: (err: Error) => void): Promise<string> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  const reader = tileHashReader(head, tiles);
  try {
    const answer = cosign({ checkpoint: head.checkpoint, size: head.size, signal: ac.signal, proveConsistency: (oldSize) => proveConsistency(oldSize, head.size, reader) });
    answer.catch(() => {}); // a hook that fails after the timeout is already reported
    const late = new Promise<never>((_, reject) => ac.signal.addEventListener('abort', () => reject(new Error('witnesses did not answer in time')), { once: true }));
    const got = await Promise.race([answer, late]);
    if (openCheckpoint(got, verifier).text !== openCheckpoint(head.checkpoint, verifier).text) throw new Error('the co-signed note is of another checkpoint');
    return got;
  } catch (err) {
    // A witness that co-signed a larger tree, or holds another root for this size: stop, never publish.
    if (err instanceof LifeboatError && err.safety) throw err;
    failed(err as Error);
    return head.checkpoint;
  } finally {
    clearTimeout(timer);
  }
}
