/**
 * The batch restore check (restore-verify.ts) on worker threads. A worker runs the entry module again
 * (restore-verify.ts, which calls serveWorkerTask when it loads), checks its part of the records on its
 * own thread and answers by messages: `{ checked: n }` as it goes, then `{ done: WorkerResult }`. Why
 * workers, and from how many keys: WORKER_MIN_KEYS in restore-verify.ts.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { LifeboatError } from '../errors.js';
import { wipe } from '../util/bytes.js';
import type { KeyRecord } from './store/types.js';

/** What a check counts, on the calling thread or in a worker. */
export interface Counters {
  pointsDecoded: number;
  batches: number;
}

/** A check of `records` on the current thread: the index of the first bad key, or -1. */
export type RangeCheck = (storageKey: Uint8Array, records: readonly KeyRecord[], counters: Counters, onChecked: (n: number) => void) => Promise<number>;

/** A worker's answer: its counters, and the index in its part of the first bad key, or -1. */
export interface WorkerResult extends Counters {
  bad: number;
}

const WORKER_TASK = 'lifeboat-restore-verify';
/** A long-lived worker of a VerifyPool: checks part after part sent by message (a streamed restore). */
const POOL_TASK = 'lifeboat-restore-verify-pool';
/** The old generation of a pool worker's heap (MB), which bounds its share of a streamed restore's memory. */
const POOL_WORKER_HEAP_MB = 128;

/**
 * What a worker must load before `entry` (the URL of the module it runs). Run from TypeScript sources
 * (tests, benchmarks under tsx), Node 20 does not apply `--import tsx` to workers, so the worker
 * registers tsx's loader first: its URL. Undefined for compiled JavaScript (nothing to register). Null
 * when the sources run under something else: then no workers.
 */
export function workerLoader(entry: string): string | undefined | null {
  if (!entry.endsWith('.ts')) return undefined;
  try {
    return import.meta.resolve('tsx/esm/api');
  } catch {
    return null;
  }
}
const WORKER_BOOT = `const { workerData } = require('node:worker_threads');
(async () => {
  if (workerData.loader) (await import(workerData.loader)).register();
  await import(workerData.entry);
})();`;

/**
 * Starts a worker thread running `entry` (whose module calls serveWorkerTask) on `records`; progress
 * arrives through `onChecked`. `result` rejects with LifeboatError `internal_error` (status 500) if the
 * worker fails or exits without answering; `stop` ends the worker, and a failure after it is ignored.
 */
export function verifyInWorker(
  entry: string,
  loader: string | undefined,
  storageKey: Uint8Array,
  records: readonly KeyRecord[],
  onChecked: (n: number) => void,
): { result: Promise<WorkerResult>; stop: () => void } {
  const worker = new Worker(WORKER_BOOT, { eval: true, workerData: { task: WORKER_TASK, entry, loader, storageKey, records } });
  let settled = false;
  const result = new Promise<WorkerResult>((resolve, reject) => {
    const fail = (err: unknown) => {
      if (!settled) reject(new LifeboatError('internal_error', 'the restore check worker failed', { status: 500, cause: err }));
      settled = true;
    };
    worker.on('message', (m: { checked?: number; done?: WorkerResult }) => {
      if (m.checked) onChecked(m.checked);
      if (m.done && !settled) {
        settled = true;
        resolve(m.done);
      }
    });
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
  });
  // Awaited in order later; until then a failure must not count as unhandled.
  result.catch(() => {});
  return {
    result,
    stop: () => {
      settled = true;
      void worker.terminate();
    },
  };
}

/** Worker threads that check batch after batch for a streamed restore (../restore-import.ts). */
export interface VerifyPool {
  /**
   * Checks `records`, split in one part per worker, each part queued behind that worker's earlier
   * parts. Resolves with the index in `records` of the first bad key (-1: none) and the counters.
   * Rejects with LifeboatError `internal_error` if a worker fails.
   */
  check(records: readonly KeyRecord[], onChecked: (n: number) => void): Promise<WorkerResult>;
  /** Ends the workers (an idle one wipes its copy of the storage key first; a busy one is terminated); parts still queued reject. Idempotent. */
  stop(): void;
}

interface PoolWorker {
  worker: Worker;
  pending: Map<number, { resolve: (r: WorkerResult) => void; reject: (err: unknown) => void; onChecked: (n: number) => void }>;
}

/**
 * Starts `workers` threads running `entry` (whose module calls serveWorkerTask) for a VerifyPool.
 * Throws nothing; a worker that fails makes every part it holds, and every later one, reject.
 */
export function startVerifyPool(entry: string, loader: string | undefined, storageKey: Uint8Array, workers: number): VerifyPool {
  let failure: LifeboatError | undefined;
  let stopped = false;
  let nextId = 0;
  const fail = (w: PoolWorker, err: unknown) => {
    failure ??= new LifeboatError('internal_error', 'the restore check worker failed', { status: 500, cause: err });
    for (const p of w.pending.values()) p.reject(failure);
    w.pending.clear();
  };
  const pool: PoolWorker[] = Array.from({ length: Math.max(1, workers) }, () => {
    // A part's working set is tens of MB; without a limit V8 lets a worker's heap grow far past it
    // before it collects (with the machine's memory), and a long restore's RSS with it.
    const resourceLimits = { maxOldGenerationSizeMb: POOL_WORKER_HEAP_MB };
    const w: PoolWorker = { worker: new Worker(WORKER_BOOT, { eval: true, resourceLimits, workerData: { task: POOL_TASK, entry, loader, storageKey } }), pending: new Map() };
    w.worker.on('message', (m: { id: number; checked?: number; done?: WorkerResult }) => {
      const p = w.pending.get(m.id);
      if (!p) return;
      if (m.checked) p.onChecked(m.checked);
      if (m.done) {
        w.pending.delete(m.id);
        p.resolve(m.done);
      }
    });
    w.worker.on('error', (err) => fail(w, err));
    w.worker.on('exit', (code) => fail(w, new Error(`exit code ${code}`)));
    return w;
  });
  return {
    async check(records, onChecked) {
      if (failure) throw failure;
      if (stopped) throw new LifeboatError('internal_error', 'the restore check workers were stopped', { status: 500 });
      const size = Math.ceil(records.length / pool.length) || 1;
      const parts = pool.map((w, k) => {
        const id = nextId++;
        const offset = k * size;
        const part = records.slice(offset, offset + size);
        if (part.length === 0) return Promise.resolve({ offset, r: { bad: -1, pointsDecoded: 0, batches: 0 } });
        return new Promise<WorkerResult>((resolve, reject) => {
          w.pending.set(id, { resolve, reject, onChecked });
          w.worker.postMessage({ id, records: part });
        }).then((r) => ({ offset, r }));
      });
      const out: WorkerResult = { bad: -1, pointsDecoded: 0, batches: 0 };
      // In order: a bad key in an earlier part comes first.
      for (const { offset, r } of await Promise.all(parts)) {
        out.pointsDecoded += r.pointsDecoded;
        out.batches += r.batches;
        if (out.bad < 0 && r.bad >= 0) out.bad = offset + r.bad;
      }
      return out;
    },
    stop() {
      if (stopped) return;
      stopped = true;
      failure ??= new LifeboatError('internal_error', 'the restore check workers were stopped', { status: 500 });
      for (const w of pool) {
        w.worker.removeAllListeners('exit');
        w.worker.on('exit', () => {});
        // Idle, a worker wipes its copy of the key and ends; busy (an abort), it is ended at once.
        if (w.pending.size === 0) w.worker.postMessage({ stop: true });
        else void w.worker.terminate();
        for (const p of w.pending.values()) p.reject(failure);
        w.pending.clear();
      }
    },
  };
}

/**
 * In a worker started by verifyInWorker: runs `check` on the worker's records, reporting progress and
 * then the result to the parent, and wipes its copy of the storage key. In a VerifyPool's worker: the
 * same for each part sent, one after the other, until told to stop. Anywhere else: does nothing.
 * Throws nothing; if `check` throws, the worker fails and the parent's `result` rejects.
 */
export function serveWorkerTask(check: RangeCheck): void {
  if (isMainThread) return;
  if ((workerData as { task?: unknown } | null)?.task === POOL_TASK) return servePool(check);
  if ((workerData as { task?: unknown } | null)?.task !== WORKER_TASK) return;
  const { storageKey, records } = workerData as { storageKey: Uint8Array; records: KeyRecord[] };
  const counters: Counters = { pointsDecoded: 0, batches: 0 };
  void check(storageKey, records, counters, (n) => parentPort!.postMessage({ checked: n })).then((bad) => {
    wipe(storageKey);
    parentPort!.postMessage({ done: { bad, ...counters } });
  });
}

/** A VerifyPool's worker: parts in order, one at a time; `stop` wipes the key and lets the thread end. */
function servePool(check: RangeCheck): void {
  const { storageKey } = workerData as { storageKey: Uint8Array };
  let queue = Promise.resolve();
  let stopping = false;
  parentPort!.on('message', (m: { id?: number; records?: KeyRecord[]; stop?: boolean }) => {
    if (m.stop) {
      // Parts still queued are skipped: the parent has given up on them.
      stopping = true;
      void queue.then(() => {
        wipe(storageKey);
        parentPort!.close();
      });
      return;
    }
    const { id, records } = m as { id: number; records: KeyRecord[] };
    queue = queue.then(async () => {
      if (stopping) return;
      const counters: Counters = { pointsDecoded: 0, batches: 0 };
      const bad = await check(storageKey, records, counters, (n) => parentPort!.postMessage({ id, checked: n }));
      parentPort!.postMessage({ id, done: { bad, ...counters } });
    });
  });
}
