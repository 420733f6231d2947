/**
 * The restore check of many keys at once: the verdict of `checkRestoredKey` (./restore-check.ts, which
 * explains the batch equation) on every key, driven on this thread or on worker threads for large
 * restores (./restore-workers.ts), with progress; and a verifier that keeps its threads for batch after
 * batch of a streamed restore.
 */
import { availableParallelism } from 'node:os';
import { LifeboatError } from '../errors.js';
import { checkRange, checkRestoredKey, HINT } from './restore-check.js';
import { type Counters, serveWorkerTask, startVerifyPool, verifyInWorker, workerLoader } from './restore-workers.js';
import type { KeyRecord } from './store/types.js';

export { checkRestoredKey } from './restore-check.js';
export { decodePointFast } from './frost/batch-arith.js';

/** Reports how many of `total` shares were checked; called at most every `PROGRESS_MS` and at the end. */
export type RestoreProgress = (done: number, total: number) => void;
const PROGRESS_MS = 1000;

/** What a verification did, for tests and benchmarks. */
export interface VerifyStats {
  keys: number;
  /** Batch equations checked (bisection steps included). */
  batches: number;
  /** Points decoded from bytes: each VSS commitment of each key once, nothing else. */
  pointsDecoded: number;
  /** Worker threads used (0: the calling thread). */
  workers: number;
}

/** Keys per range (one batch per curve group): large, to spread ed25519's 128 torsion checks (~0.1 s). */
const RANGE = 16_384;
/**
 * From this many keys the check runs on worker threads (one per core): batched on one thread it takes
 * about 0.3 ms a key on these 2-core machines, 30 s per 100,000, the whole budget of a restore. Fewer
 * keys stay on the calling thread: starting workers would cost more than it saves.
 */
export const WORKER_MIN_KEYS = 6_000;

// ---- Driving: this thread or workers ----

/** Checks `records` on this thread in ranges of equal size (at most RANGE); returns the first bad index, or -1. */
async function verifyHere(storageKey: Uint8Array, records: readonly KeyRecord[], counters: Counters, onChecked: (n: number) => void): Promise<number> {
  const size = Math.ceil(records.length / Math.ceil(records.length / RANGE));
  for (let from = 0; from < records.length; from += size) {
    const to = Math.min(records.length, from + size);
    const bad = checkRange(storageKey, records, from, to, counters);
    if (bad >= 0) return bad;
    onChecked(to - from);
    // Let the event loop breathe (stderr, signals) on long restores.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return -1;
}

function throttled(progress: RestoreProgress): RestoreProgress {
  let last = performance.now();
  return (done, total) => {
    const now = performance.now();
    if (done === total || now - last >= PROGRESS_MS) {
      last = now;
      progress(done, total);
    }
  };
}

// A worker thread runs this module again (restore-workers.ts); this is its task.
serveWorkerTask(verifyHere);

/**
 * Checks every record as checkRestoredKey does, in batches (see the top of this file), on
 * `options.workers` worker threads (default: `availableParallelism()` for 6,000 keys or more, else
 * none; 0 checks on the calling thread). Reports progress as keys are checked. Writes nothing.
 * Throws LifeboatError `share_mismatch` naming the first bad key in `records` order, exactly as
 * checkRestoredKey throws it; LifeboatError `internal_error` if a worker thread fails.
 */
export async function verifyRestoredKeys(
  storageKey: Uint8Array,
  records: readonly KeyRecord[],
  progress: RestoreProgress = () => {},
  options: { workers?: number } = {},
): Promise<VerifyStats> {
  const total = records.length;
  const report = throttled(progress);
  let done = 0;
  const onChecked = (n: number) => report((done += n), total);
  const counters: Counters = { pointsDecoded: 0, batches: 0 };
  const loader = workerLoader(import.meta.url);
  const parts = loader === null ? 0 : Math.min(options.workers ?? (total < WORKER_MIN_KEYS ? 0 : availableParallelism()), total);
  let bad = -1;
  if (parts === 0) {
    bad = await verifyHere(storageKey, records, counters, onChecked);
  } else {
    const size = Math.ceil(total / parts);
    const runs = Array.from({ length: parts }, (_, k) => ({ offset: k * size, ...verifyInWorker(import.meta.url, loader ?? undefined, storageKey, records.slice(k * size, (k + 1) * size), onChecked) }));
    try {
      // In order: a bad key in an earlier part comes first, so the later parts' answers can wait.
      for (const run of runs) {
        const r = await run.result;
        counters.pointsDecoded += r.pointsDecoded;
        counters.batches += r.batches;
        if (r.bad >= 0) {
          bad = run.offset + r.bad;
          break;
        }
      }
    } finally {
      for (const run of runs) run.stop();
    }
  }
  if (bad >= 0) refuse(storageKey, records[bad]!);
  if (total === 0) progress(0, 0);
  return { keys: total, batches: counters.batches, pointsDecoded: counters.pointsDecoded, workers: parts };
}

/** Throws the error checkRestoredKey throws for a key a batch refused (or one of its own, should they disagree). */
function refuse(storageKey: Uint8Array, rec: KeyRecord): never {
  checkRestoredKey(storageKey, rec);
  // Only if the batch and the key-at-a-time check disagreed: refuse all the same.
  throw new LifeboatError('share_mismatch', `key ${String(rec.keyId).slice(0, 64)}: the share does not match its verifying share (batch check)`, { hint: HINT });
}

/** Batch after batch of restore checks on long-lived worker threads (a streamed restore, restore-import.ts). */
export interface RestoreVerifier {
  /** Worker threads checking (0: the calling thread). */
  readonly workers: number;
  /**
   * Checks `records` as verifyRestoredKeys does; `onChecked` hears how many keys were checked as they
   * are. Throws LifeboatError `share_mismatch` naming the first bad key in `records` order, exactly as
   * checkRestoredKey throws it; `internal_error` if a worker thread fails or the verifier was stopped.
   */
  verify(records: readonly KeyRecord[], onChecked?: (n: number) => void): Promise<void>;
  /** Ends the worker threads (each wipes its copy of the storage key); idempotent. */
  stop(): void;
}

/**
 * Starts `workers` threads (default `availableParallelism()`; 0, or sources run under something other
 * than tsx: the calling thread) that stay up for many `verify` calls, so a restore that checks batch
 * after batch starts them once. Each batch is split across the threads. Throws nothing.
 */
export function startRestoreVerifier(storageKey: Uint8Array, workers = availableParallelism()): RestoreVerifier {
  const loader = workerLoader(import.meta.url);
  if (loader === null || workers <= 0) {
    return {
      workers: 0,
      async verify(records, onChecked = () => {}) {
        const bad = await verifyHere(storageKey, records, { pointsDecoded: 0, batches: 0 }, onChecked);
        if (bad >= 0) refuse(storageKey, records[bad]!);
      },
      stop() {},
    };
  }
  const pool = startVerifyPool(import.meta.url, loader, storageKey, workers);
  return {
    workers,
    async verify(records, onChecked = () => {}) {
      // The pool gives its workers parts of a bounded size, one at a time each (restore-workers.ts).
      const { bad } = await pool.check(records, onChecked);
      if (bad >= 0) refuse(storageKey, records[bad]!);
    },
    stop: () => pool.stop(),
  };
}
