/**
 * CLI start-up: how long `lifeboat <command> --help` takes from the bundle (dist/, `npm run build`),
 * beside its floor (a bare `node -e 0`) and the same command from the sources through tsx, measured
 * in the same run. Every command an operator types, and every process the test suite starts, pays it.
 * Goal (issue 12): `lifeboat --help` and `lifeboat vault get` (a real vault on an unsealed primary)
 * within 150 ms of the floor; the recovery kit's own: bench/kit-start.bench.ts.
 *   npm run build && node --import tsx bench/cli-start.bench.ts        (never run by the tests)
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { primaryPaths, storeMasterKey } from '../src/primary/datadir.js';
import { createVault } from '../src/vault/format.js';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RUNS = 15;

function p50(argv: string[], input?: string): number {
  const xs: number[] = [];
  for (let i = 0; i <= RUNS; i++) {
    const t = performance.now();
    const r = spawnSync(process.execPath, argv, { cwd: ROOT, stdio: [input === undefined ? 'ignore' : 'pipe', 'ignore', 'ignore'], input });
    if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}`);
    if (i > 0) xs.push(performance.now() - t);
  }
  return xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
}

export async function benchCliStart(): Promise<void> {
  if (!existsSync(`${ROOT}/dist/cli/main.js`)) throw new Error('run `npm run build` first');
  const floor = p50(['-e', '0']);
  console.log(`cli start: bare node -e 0 p50 ${floor.toFixed(0)} ms (the floor)`);
  for (const cmd of [['--version'], ['key', '--help'], ['node', '--help'], ['log', '--help'], ['--help']]) {
    const bundle = p50(['bin/lifeboat.js', ...cmd]);
    const sources = p50(['--import', 'tsx', 'src/cli/main.ts', ...cmd]);
    console.log(`cli start: lifeboat ${cmd.join(' ')} p50 ${bundle.toFixed(0)} ms (+${(bundle - floor).toFixed(0)} ms, ${(bundle / floor).toFixed(2)}x the floor${cmd[0] === '--help' ? '; goal <= +150 ms' : ''}) beside the sources through tsx ${sources.toFixed(0)} ms (${(sources / bundle).toFixed(1)}x slower)`);
  }
  // vault get on a real vault: an unsealed primary with one secret
  const dir = mkdtempSync(join(tmpdir(), 'lifeboat-bench-start-'));
  try {
    const paths = primaryPaths(dir);
    const master = { schemeId: randomBytes(16), key: randomBytes(32) };
    writeFileSync(paths.vault, createVault(master.key, master.schemeId), { mode: 0o600 });
    storeMasterKey(paths, master);
    const put = spawnSync(process.execPath, ['bin/lifeboat.js', 'vault', 'put', 'backup-key', '--data-dir', dir], { cwd: ROOT, input: 'a secret value' });
    if (put.status !== 0) throw new Error(`vault put exited ${put.status}: ${put.stderr}`);
    const get = p50(['bin/lifeboat.js', 'vault', 'get', 'backup-key', '--stdout', '--data-dir', dir]);
    console.log(`cli start: lifeboat vault get p50 ${get.toFixed(0)} ms (+${(get - floor).toFixed(0)} ms, ${(get / floor).toFixed(2)}x the floor; goal <= +150 ms)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchCliStart();
