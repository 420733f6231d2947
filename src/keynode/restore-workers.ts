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

/**
 * In a worker started by verifyInWorker: runs `check` on the worker's records, reporting progress and
 * then the result to the parent, and wipes its copy of the storage key. Anywhere else: does nothing.
 * Throws nothing; if `check` throws, the worker fails and the parent's `result` rejects.
 */
export function serveWorkerTask(check: RangeCheck): void {
  if (isMainThread || (workerData as { task?: unknown } | null)?.task !== WORKER_TASK) return;
  const { storageKey, records } = workerData as { storageKey: Uint8Array; records: KeyRecord[] };
  const counters: Counters = { pointsDecoded: 0, batches: 0 };
  void check(storageKey, records, counters, (n) => parentPort!.postMessage({ checked: n })).then((bad) => {
    wipe(storageKey);
    parentPort!.postMessage({ done: { bad, ...counters } });
  });
}
