/**
 * Shamir split/combine, 2-of-3, ours against shamir-secret-sharing and secrets.js-grempe, all measured
 * in the same run. Targets (DESIGN.md "Performance targets"): 32 B split ≥ 5x shamir-secret-sharing,
 * 1 MiB split ≥ 100 MB/s, constant-time. MB is 10^6 bytes of secret per second.
 */
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { combine as sssCombine, split as sssSplit } from 'shamir-secret-sharing';
import { combineShares, splitSecret } from '../src/crypto/shamir.js';
import { randomBytes } from '../src/crypto/random.js';
import { fromHex, toHex } from '../src/util/bytes.js';

const secrets = createRequire(import.meta.url)('secrets.js-grempe') as typeof import('secrets.js-grempe');

const SMALL = 32;
const LARGE = 1 << 20;
const SECRETS_JS_LARGE = 16 << 10; // secrets.js takes ~10 s per MiB: measured on 16 KiB instead
const BUDGET_MS = 800;

/** Seconds per call: a warm-up, then batches until the time budget and the minimum count are both met. */
async function perOp(fn: () => unknown, budgetMs = BUDGET_MS, minIters = 1): Promise<number> {
  await fn();
  let iters = 0;
  const start = performance.now();
  let elapsed = 0;
  const batch = budgetMs > 100 ? 16 : 1;
  while (elapsed < budgetMs || iters < minIters) {
    for (let i = 0; i < batch; i++) {
      const r = fn();
      if (r instanceof Promise) await r;
    }
    iters += batch;
    elapsed = performance.now() - start;
  }
  return elapsed / 1000 / iters;
}

interface Row {
  op: string;
  who: string;
  perSec: number;
  unit: 'ops/s' | 'MB/s';
  note?: string;
}

function print(rows: Row[]): void {
  const ours = rows[0]!.perSec;
  for (const r of rows) {
    const fig = r.unit === 'ops/s' ? Math.round(r.perSec).toLocaleString('en-US') : r.perSec.toFixed(r.perSec < 10 ? 3 : 1);
    const ratio = r === rows[0] ? '' : `   ours/peer ${(ours / r.perSec).toFixed(1)}x`;
    console.log(`${r.op.padEnd(16)} ${r.who.padEnd(22)} ${fig.padStart(12)} ${r.unit}${ratio}${r.note ? `   (${r.note})` : ''}`);
  }
}

/** Each peer's shares for a secret, produced once, so combine is timed on its own. */
async function small(secret: Uint8Array): Promise<void> {
  const ours = splitSecret(secret, 2, 3);
  const sss = await sssSplit(secret, 3, 2);
  const sjs = secrets.share(toHex(secret), 3, 2);
  if (toHex(combineShares(ours.slice(1))) !== toHex(secret)) throw new Error('bench self-check failed');
  print([
    { op: 'split 32 B', who: 'lifeboat', perSec: 1 / (await perOp(() => splitSecret(secret, 2, 3))), unit: 'ops/s' },
    { op: 'split 32 B', who: 'shamir-secret-sharing', perSec: 1 / (await perOp(() => sssSplit(secret, 3, 2))), unit: 'ops/s' },
    { op: 'split 32 B', who: 'secrets.js-grempe', perSec: 1 / (await perOp(() => secrets.share(toHex(secret), 3, 2))), unit: 'ops/s' },
  ]);
  print([
    { op: 'combine 32 B', who: 'lifeboat', perSec: 1 / (await perOp(() => combineShares(ours.slice(0, 2)))), unit: 'ops/s' },
    { op: 'combine 32 B', who: 'shamir-secret-sharing', perSec: 1 / (await perOp(() => sssCombine(sss.slice(0, 2)))), unit: 'ops/s' },
    { op: 'combine 32 B', who: 'secrets.js-grempe', perSec: 1 / (await perOp(() => fromHex(secrets.combine(sjs.slice(0, 2)), 'secret'))), unit: 'ops/s' },
  ]);
}

async function large(secret: Uint8Array): Promise<void> {
  const mbps = (bytes: number, seconds: number) => bytes / seconds / 1e6;
  const part = secret.subarray(0, SECRETS_JS_LARGE);
  const ours = splitSecret(secret, 2, 3);
  const sss = await sssSplit(secret, 3, 2);
  const sjs = secrets.share(toHex(part), 3, 2);
  const capped = `on ${SECRETS_JS_LARGE >> 10} KiB, time-capped`;
  print([
    { op: 'split 1 MiB', who: 'lifeboat', perSec: mbps(LARGE, await perOp(() => splitSecret(secret, 2, 3))), unit: 'MB/s' },
    { op: 'split 1 MiB', who: 'shamir-secret-sharing', perSec: mbps(LARGE, await perOp(() => sssSplit(secret, 3, 2), 0)), unit: 'MB/s', note: 'one run' },
    { op: 'split 1 MiB', who: 'secrets.js-grempe', perSec: mbps(part.length, await perOp(() => secrets.share(toHex(part), 3, 2), 0)), unit: 'MB/s', note: capped },
  ]);
  print([
    { op: 'combine 1 MiB', who: 'lifeboat', perSec: mbps(LARGE, await perOp(() => combineShares(ours.slice(1)))), unit: 'MB/s' },
    { op: 'combine 1 MiB', who: 'shamir-secret-sharing', perSec: mbps(LARGE, await perOp(() => sssCombine(sss.slice(1)), 400)), unit: 'MB/s' },
    {
      op: 'combine 1 MiB',
      who: 'secrets.js-grempe',
      perSec: mbps(part.length, await perOp(() => fromHex(secrets.combine(sjs.slice(1)), 'secret'), 0)),
      unit: 'MB/s',
      note: capped,
    },
  ]);
}

/** Prints split and combine figures for 32 B and 1 MiB secrets, 2-of-3, ours and both peers, with ratios. */
export async function benchShamir(): Promise<void> {
  console.log(`shamir 2-of-3 over GF(256): lifeboat vs shamir-secret-sharing vs secrets.js-grempe (node ${process.version}, ${cpus().length} cpus)`);
  await small(randomBytes(SMALL));
  await large(randomBytes(LARGE));
}
