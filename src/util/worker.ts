/**
 * Starting a worker thread on one of this package's own modules, from the bundle (dist/) or from the
 * TypeScript sources: a worker imports `entry` (a module URL, its `import.meta.url`), whose top level
 * serves the worker's task when it finds its name in `workerData`.
 */

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

/** The code a worker is started with (`eval`): registers `workerData.loader` if any, then imports `workerData.entry`. */
export const WORKER_BOOT = `const { workerData } = require('node:worker_threads');
(async () => {
  if (workerData.loader) (await import(workerData.loader)).register();
  await import(workerData.entry);
})();`;
