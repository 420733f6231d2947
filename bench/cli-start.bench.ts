/**
 * CLI start-up: how long `lifeboat <command> --help` takes from the bundle (dist/, `npm run build`),
 * beside its floor (a bare `node -e 0`) and the same command from the sources through tsx, measured
 * in the same run. Every command an operator types, and every process the test suite starts, pays it.
 *   npm run build && node --import tsx bench/cli-start.bench.ts        (never run by the tests)
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RUNS = 15;

function p50(argv: string[]): number {
  const xs: number[] = [];
  for (let i = 0; i <= RUNS; i++) {
    const t = performance.now();
    const r = spawnSync(process.execPath, argv, { cwd: ROOT, stdio: 'ignore' });
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
    console.log(`cli start: lifeboat ${cmd.join(' ')} p50 ${bundle.toFixed(0)} ms (${(bundle / floor).toFixed(2)}x the floor) beside the sources through tsx ${sources.toFixed(0)} ms (${(sources / bundle).toFixed(1)}x slower)`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchCliStart();
