/**
 * The client's OPAQUE finish (login or registration) on a short-lived worker thread. Its key
 * stretching (Argon2id, m = 64 MiB) grows the OPAQUE WebAssembly memory to about 70 MB, and a
 * WebAssembly memory never shrinks: in the calling thread, every process that logs in once would carry
 * it to its end, a restore of a million keys or a node served after its restore included. A worker's
 * memory goes with the worker. The password and the results cross threads by message, in memory only.
 * The first OPAQUE message (startLogin, startRegistration) stays on the calling thread: it stretches
 * nothing.
 */
import * as opaque from '@serenity-kit/opaque';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { LifeboatError } from '../errors.js';
import { WORKER_BOOT, workerLoader } from '../util/worker.js';

const TASK = 'lifeboat-opaque-finish';

type Job = { op: 'login'; params: opaque.client.FinishLoginParams } | { op: 'registration'; params: opaque.client.FinishRegistrationParams };

/** What the finish gave: `ok: false` when OPAQUE refused the server's message as malformed. */
export type Finished<T> = { ok: true; value: T } | { ok: false };

function finish(job: Job): Finished<unknown> {
  try {
    return { ok: true, value: job.op === 'login' ? opaque.client.finishLogin(job.params) : opaque.client.finishRegistration(job.params) };
  } catch {
    return { ok: false };
  }
}

async function run(job: Job, apart: boolean): Promise<Finished<unknown>> {
  const entry = import.meta.url;
  const loader = workerLoader(entry);
  if (!apart || loader === null) {
    // Here, or sources run under something other than tsx: no worker can load them.
    await opaque.ready;
    return finish(job);
  }
  const worker = new Worker(WORKER_BOOT, { eval: true, workerData: { task: TASK, entry, loader, job } });
  try {
    return await new Promise<Finished<unknown>>((resolve, reject) => {
      const failed = (cause: unknown) => reject(new LifeboatError('internal_error', 'the password stretching worker failed', { status: 500, cause }));
      worker.once('message', (m: Finished<unknown>) => resolve(m));
      worker.once('error', failed);
      worker.once('exit', (code) => failed(new Error(`exit code ${code}`)));
    });
  } finally {
    void worker.terminate();
  }
}

/**
 * opaque.client.finishLogin, on a worker thread when `apart` (see the top of this file), else on this
 * one: its value is undefined for a wrong password or account, as finishLogin's; `ok: false` when
 * OPAQUE throws on the server's message. Rejects with LifeboatError `internal_error` if the worker fails.
 */
export async function finishLoginApart(params: opaque.client.FinishLoginParams, apart = true): Promise<Finished<opaque.client.FinishLoginResult | undefined>> {
  return (await run({ op: 'login', params }, apart)) as Finished<opaque.client.FinishLoginResult | undefined>;
}

/** opaque.client.finishRegistration, on a worker thread when `apart`; as finishLoginApart. */
export async function finishRegistrationApart(params: opaque.client.FinishRegistrationParams, apart = true): Promise<Finished<opaque.client.FinishRegistrationResult>> {
  return (await run({ op: 'registration', params }, apart)) as Finished<opaque.client.FinishRegistrationResult>;
}

// In a worker started by run(): one finish, answered, then the thread ends.
if (!isMainThread && (workerData as { task?: unknown } | null)?.task === TASK) {
  await opaque.ready;
  parentPort!.postMessage(finish((workerData as { job: Job }).job));
  parentPort!.close();
}
