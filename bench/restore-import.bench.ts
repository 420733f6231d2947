/**
 * The streamed restore's importer (src/keynode/restore-import.ts: batches checked on worker threads
 * while the batch before is written, one transaction) beside its floor, the store's plain
 * importSnapshot of the same keys with no checks, and beside restoreNodeBackup (every key checked
 * first, then importSnapshot: what a restore did before). SQLite, a fresh file each. Each step runs in
 * a process of its own, so its peak RSS is its own; the keys (bench/restore.ts fixtures, cached) are
 * in memory before each step starts, and that RSS is printed beside the peak.
 *
 *   BENCH_IMPORT_N=100000   the number of keys
 *   BENCH_IMPORT_BATCH=8192 keys per batch given to the importer (a restore from the service gives 8,192)
 *
 * Run alone: `BENCH=restore-import npm run bench`, or `node --import tsx bench/restore-import.bench.ts`.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { restoreNodeBackup } from '../src/keynode/backup.js';
import { KeyImporter } from '../src/keynode/restore-import.js';
import type { NodeSecrets } from '../src/keynode/secrets.js';
import { openSqliteStore } from '../src/keynode/store/sqlite.js';
import { fixtures, STORAGE_KEY } from './restore.js';

const N = Number(process.env.BENCH_IMPORT_N ?? 100_000);
const BATCH = Number(process.env.BENCH_IMPORT_BATCH ?? 8_192);
const STEPS = ['floor', 'importer', 'restoreNodeBackup'] as const;
type StepName = (typeof STEPS)[number];

interface StepResult {
  seconds: number;
  cpu: number;
  baseRssMb: number;
  peakRssMb: number;
  workers?: number;
  peakInFlight?: number;
}

/** One step in this process: the keys loaded, then the measured import into DIR/node.sqlite. */
async function runStep(step: StepName, dir: string): Promise<StepResult> {
  const keys = await fixtures(N);
  const baseRssMb = process.memoryUsage().rss / 2 ** 20;
  const store = await openSqliteStore(join(dir, 'node.sqlite'));
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let extra: Partial<StepResult> = {};
  if (step === 'floor') {
    await store.importSnapshot({ keys, apiKeys: [], meta: [] });
  } else if (step === 'restoreNodeBackup') {
    await restoreNodeBackup(store, { storageKey: STORAGE_KEY } as NodeSecrets, { keys, apiKeys: [], meta: [] });
  } else {
    const imp = await KeyImporter.begin(store, STORAGE_KEY);
    for (let i = 0; i < keys.length; i += BATCH) await imp.add(keys.slice(i, i + BATCH));
    await imp.finish([], []);
    extra = { workers: imp.stats().workers, peakInFlight: imp.stats().peakInFlight };
  }
  const c = process.cpuUsage(c0);
  const seconds = (performance.now() - t0) / 1000;
  if ((await store.countKeys()) !== N) throw new Error(`${step}: the store holds ${await store.countKeys()} keys, not ${N}`);
  await store.close();
  return { seconds, cpu: (c.user + c.system) / 1e6, baseRssMb, peakRssMb: process.resourceUsage().maxRSS / 1024, ...extra };
}

function child(step: StepName, dir: string): Promise<StepResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), step, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code === 0 && line.startsWith('{')) resolve(JSON.parse(line) as StepResult);
      else reject(new Error(`step ${step} exited ${code}`));
    });
  });
}

/** Prints the three steps side by side, with each one's ratio to the floor. */
export async function benchRestoreImport(): Promise<void> {
  console.log(`restore importer vs store import, ${N.toLocaleString('en-US')} keys, sqlite, one process per step (node ${process.version}, ${cpus().length} cpus, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')})`);
  await fixtures(N); // made and cached once, outside every step
  const results = new Map<StepName, StepResult>();
  for (const step of STEPS) {
    const dir = mkdtempSync(join(tmpdir(), 'lifeboat-bench-import-'));
    try {
      results.set(step, await child(step, dir));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const floor = results.get('floor')!;
  const what: Record<StepName, string> = {
    floor: 'importSnapshot, no checks (floor)',
    importer: `KeyImporter, batches of ${BATCH.toLocaleString('en-US')}`,
    restoreNodeBackup: 'restoreNodeBackup (check all, then import)',
  };
  for (const step of STEPS) {
    const r = results.get(step)!;
    const note = step === 'floor' ? '' : `   ${(r.seconds / floor.seconds).toFixed(1)}x the floor`;
    const pool = r.workers === undefined ? '' : `   ${r.workers} check threads, at most ${r.peakInFlight} batches in flight`;
    console.log(
      `  ${what[step].padEnd(44)} ${r.seconds.toFixed(2).padStart(7)} s  cpu ${r.cpu.toFixed(1).padStart(5)} s  peak RSS ${r.peakRssMb.toFixed(0).padStart(5)} MB (${r.baseRssMb.toFixed(0)} MB with the keys loaded)${note}${pool}`,
    );
  }
}

const [step, dir] = process.argv.slice(2) as [StepName | undefined, string | undefined];
if (import.meta.url === `file://${process.argv[1]}`) {
  if (step && dir) console.log(JSON.stringify(await runStep(step, dir)));
  else await benchRestoreImport();
}
