/**
 * The batch restore check (restore-verify.ts) on worker threads. A worker runs the entry module again
 * (restore-verify.ts, which calls serveWorkerTask when it loads), checks its part of the records on its
 * own thread and answers by messages: `{ checked: n }` as it goes, then `{ done: WorkerResult }`. Why
 * workers, and from how many keys: WORKER_MIN_KEYS in restore-verify.ts.
 */
import { channel } from 'node:diagnostics_channel';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { LifeboatError } from '../errors.js';
import { wipe } from '../util/bytes.js';
import { WORKER_BOOT } from '../util/worker.js';
import { packCheckRecords, type PackedRecords, unpackCheckRecords } from './restore-pack.js';
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
/**
 * Keys a pool worker checks at a time: one batch of a streamed restore (RESTORE_BATCH, 4,096), the
 * batches in flight keeping both workers busy. Larger parts spread ed25519's 128 torsion checks over
 * more keys (restore-verify.ts) but need more heap.
 */
const POOL_PART = 4_096;

/**
 * Where a pool announces each part it hands a worker (node:diagnostics_channel), as `{ keys }`: how
 * many keys it holds, never the keys. For tests and diagnostics (docs/keynode-operations.md); nothing
 * is published without a subscriber.
 */
export const CHECK_PART_CHANNEL = 'lifeboat:restore-check-part';
const partChannel = channel(CHECK_PART_CHANNEL);
/** The old generation of a pool worker's heap (MB): what a part's check holds, with room (restore-pack.ts). */
const POOL_WORKER_HEAP_MB = 64;
/** A pool worker's young generation (MB): the check's garbage is short-lived; V8's default grows it to 48 MB. */
const POOL_WORKER_YOUNG_MB = 16;

export { workerLoader } from '../util/worker.js';

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
   * Checks `records`, split in parts of at most POOL_PART keys (fewer than that: one part per worker)
   * queued behind the parts given before;
   * each worker takes the next part when it is done with its own. Resolves with the index in
   * `records` of the first bad key (-1: none) and the counters. Rejects with LifeboatError
   * `internal_error` if a worker fails.
   */
  check(records: readonly KeyRecord[], onChecked: (n: number) => void): Promise<WorkerResult>;
  /** Ends the workers (an idle one wipes its copy of the storage key first; a busy one is terminated); parts still queued reject. Idempotent. */
  stop(): void;
  /** Parts sent to the workers so far, and the most they held at once (never above the worker count). */
  stats(): { partsSent: number; peakHeld: number };
}

interface Part {
  id: number;
  records: readonly KeyRecord[];
  resolve: (r: WorkerResult) => void;
  reject: (err: unknown) => void;
  onChecked: (n: number) => void;
}

interface PoolWorker {
  worker: Worker;
  /** The part this worker checks; a worker holds one part at a time. */
  busy?: Part;
}

/**
 * Starts `workers` threads running `entry` (whose module calls serveWorkerTask) for a VerifyPool.
 * Throws nothing; a worker that fails makes the part it holds, every queued part and every later one
 * reject.
 *
 * Memory: a part is packed into one buffer and moved to its worker only when that worker is free
 * (restore-pack.ts), so a worker holds one part of POOL_PART keys, never the batches queued behind
 * it; its heap is capped to what such a part needs (POOL_WORKER_HEAP_MB, POOL_WORKER_YOUNG_MB).
 */
export function startVerifyPool(entry: string, loader: string | undefined, storageKey: Uint8Array, workers: number): VerifyPool {
  let failure: LifeboatError | undefined;
  let stopped = false;
  let nextId = 0;
  const counts = { partsSent: 0, peakHeld: 0 };
  const queue: Part[] = [];
  const failAll = (err: LifeboatError) => {
    for (const p of queue.splice(0)) p.reject(err);
    for (const w of pool) {
      w.busy?.reject(err);
      w.busy = undefined;
    }
  };
  const fail = (err: unknown) => {
    failure ??= new LifeboatError('internal_error', 'the restore check worker failed', { status: 500, cause: err });
    failAll(failure);
  };
  const dispatch = () => {
    for (const w of pool) {
      while (!w.busy && !failure && queue.length > 0) send(w, queue.shift()!);
    }
  };
  const send = (w: PoolWorker, p: Part) => {
    let packed: PackedRecords;
    try {
      packed = packCheckRecords(p.records);
    } catch (err) {
      // A record this layout cannot hold: that part fails, the worker takes the next.
      p.reject(new LifeboatError('internal_error', 'a key record cannot be handed to a check worker', { status: 500, cause: err }));
      return;
    }
    w.busy = p;
    counts.partsSent += 1;
    if (partChannel.hasSubscribers) partChannel.publish({ keys: p.records.length });
    counts.peakHeld = Math.max(counts.peakHeld, pool.filter((x) => x.busy).length);
    // One buffer, moved to the worker (restore-pack.ts).
    w.worker.postMessage({ id: p.id, packed }, [packed.buffer]);
  };
  const pool: PoolWorker[] = Array.from({ length: Math.max(1, workers) }, () => {
    // Without limits V8 lets a worker's heap grow far past a part's working set before it collects
    // (it sizes them by the machine's memory), and a long restore's RSS with it.
    const resourceLimits = { maxOldGenerationSizeMb: POOL_WORKER_HEAP_MB, maxYoungGenerationSizeMb: POOL_WORKER_YOUNG_MB };
    const w: PoolWorker = { worker: new Worker(WORKER_BOOT, { eval: true, resourceLimits, workerData: { task: POOL_TASK, entry, loader, storageKey } }) };
    w.worker.on('message', (m: { id: number; checked?: number; done?: WorkerResult }) => {
      const p = w.busy;
      if (!p || p.id !== m.id) return;
      if (m.checked) p.onChecked(m.checked);
      if (m.done) {
        w.busy = undefined;
        p.resolve(m.done);
        dispatch();
      }
    });
    w.worker.on('error', (err) => fail(err));
    w.worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
    return w;
  });
  return {
    async check(records, onChecked) {
      if (failure) throw failure;
      if (stopped) throw new LifeboatError('internal_error', 'the restore check workers were stopped', { status: 500 });
      // Parts of at most POOL_PART keys; fewer keys (a restore's last batch, a few changes) are split
      // among the workers, so that the last one to end does not end alone.
      const count = Math.max(1, Math.ceil(records.length / POOL_PART), records.length < POOL_PART ? pool.length : 1);
      const size = Math.ceil(records.length / count);
      const parts: Promise<{ offset: number; r: WorkerResult }>[] = [];
      for (let offset = 0; offset < records.length; offset += size) {
        const part = records.slice(offset, offset + size);
        parts.push(new Promise<WorkerResult>((resolve, reject) => queue.push({ id: nextId++, records: part, resolve, reject, onChecked })).then((r) => ({ offset, r })));
      }
      dispatch();
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
        if (!w.busy) w.worker.postMessage({ stop: true });
        else void w.worker.terminate();
      }
      failAll(failure);
    },
    stats: () => ({ ...counts }),
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
  parentPort!.on('message', (m: { id?: number; packed?: PackedRecords; stop?: boolean }) => {
    if (m.stop) {
      // Parts still queued are skipped: the parent has given up on them.
      stopping = true;
      void queue.then(() => {
        wipe(storageKey);
        parentPort!.close();
      });
      return;
    }
    const { id, packed } = m as { id: number; packed: PackedRecords };
    queue = queue.then(async () => {
      if (stopping) return;
      const records = unpackCheckRecords(packed);
      const counters: Counters = { pointsDecoded: 0, batches: 0 };
      const bad = await check(storageKey, records, counters, (n) => parentPort!.postMessage({ id, checked: n }));
      parentPort!.postMessage({ id, done: { bad, ...counters } });
    });
  });
}
