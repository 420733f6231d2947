/**
 * The recovery kit's start-up (docs/kit.md, goal: within 100 ms of a bare node start): `lifeboat-kit
 * --version` and `--help`, the single executable and the .mjs bundle, beside a bare `node -e 0` in the
 * same run, interleaved so that the machine's load weighs on all alike.
 *   npm run build:kit && node --import tsx bench/kit-start.bench.ts [DIR]     (never run by the tests)
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RUNS = 21;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** p50 wall time of each command, run in turn RUNS times (after one warm-up round). */
function p50s(commands: Record<string, string[]>): Record<string, number> {
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(commands).map((k) => [k, []]));
  for (let i = 0; i <= RUNS; i++) {
    for (const [name, [cmd, ...args]] of Object.entries(commands)) {
      const t = performance.now();
      const r = spawnSync(cmd!, args, { stdio: 'ignore', env: {} });
      if (r.status !== 0) throw new Error(`${name} exited ${r.status}`);
      if (i > 0) times[name]!.push(performance.now() - t);
    }
  }
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
}

export async function benchKitStart(dir = join(ROOT, 'dist')): Promise<void> {
  const exe = join(dir, 'lifeboat-kit');
  if (!existsSync(exe)) throw new Error('run `npm run build:kit` first');
  const node = process.execPath;
  const r = p50s({
    floor: [node, '-e', '0'],
    'kit --version': [exe, '--version'],
    'kit --help': [exe, '--help'],
    'kit.mjs --version': [node, join(dir, 'lifeboat-kit.mjs'), '--version'],
    'kit.mjs --help': [node, join(dir, 'lifeboat-kit.mjs'), '--help'],
  });
  console.log(`kit start: bare node -e 0 p50 ${r.floor!.toFixed(0)} ms (the floor)`);
  for (const [name, ms] of Object.entries(r)) {
    if (name !== 'floor') console.log(`kit start: ${name} p50 ${ms.toFixed(0)} ms, +${(ms - r.floor!).toFixed(0)} ms over the floor (goal: +100 ms)`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchKitStart(process.argv[2]);
