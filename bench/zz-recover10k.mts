import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { recoverBench } from './keyshare-publish.bench.js';
const root = mkdtempSync(join(tmpdir(), 'lifeboat-bench-rec-'));
console.log(`load ${loadavg()[0]!.toFixed(1)}`);
try { await recoverBench(root, 10_000); } finally { rmSync(root, { recursive: true, force: true }); }
