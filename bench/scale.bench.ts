/**
 * Compaction and restore at scale (issue 17, point 5) on SQLite, each beside its floor in the same run:
 * the node store's plain import of the same keys (importSnapshot, no checks). Every step runs in its
 * own process (the floor bench/scale-worker.ts; the compaction and the restore
 * bench/scale-compact.ts and bench/scale-restore.ts, bundled), so the peak RSS printed is that step's alone:
 *   - floor: import of N keys into a fresh store;
 *   - compaction: the agent's streamed compaction (LBBC v2) of that store, uploaded to a backup service
 *     (a `backup-server serve` process) over loopback HTTP;
 *   - restore: login (production OPAQUE stretching), the compaction read back, every share checked,
 *     a node written, from the same service: streamed, the keys checked and imported as they are read.
 * Then the ratio per 10x of each (linear: 10.0x). Goals (issue 17): restore of 100,000 keys <= 10 s and
 * <= 4x the floor; restore of 1,000,000 in <= 512 MB peak RSS; compaction of 1,000,000 in <= 256 MB.
 *
 *   SCALE_N=10000,100000   the sizes (default); SCALE_MAX=1000000 adds every power of ten up to it
 *   SCALE_DISTINCT=100000  distinct synthetic keys (bench/restore.ts, cached); record i is key i % this
 *   SCALE_STEPS=floor,compact,restore   the steps to run (the floor always runs: it makes the store);
 *                          also `restore-at` (a point-in-time restore, `--to-seq 1`, to the compaction's
 *                          entry, with one entry after it on the stream: the restored node forks) and
 *                          `dry-run` (`--dry-run` to the head), each printed beside the head restore
 *   SCALE_PROF=DIR          CPU profiles of each restore step (--cpu-prof: its main thread and each check worker) in DIR
 *
 * Run alone: `BENCH=scale npm run bench`, or `node --import tsx bench/scale.bench.ts` after a build.
 */
import { spawn } from 'node:child_process';
import { build, type BuildOptions } from 'esbuild';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeChange } from '../src/backup/changes.js';
import { BackupClient } from '../src/backup/client.js';
import { sealEntry, ZERO_HASH } from '../src/backup/format.js';
import { runCli, startServer } from '../src/drill/proc.js';
import { randomBytes } from '../src/crypto/random.js';
import { toHex } from '../src/util/bytes.js';
import { fixtures, STORAGE_KEY } from './restore.js';

const here = dirname(fileURLToPath(import.meta.url));
const PASSWORD = 'bench password, long enough';

function sizes(): number[] {
  const base = (process.env.SCALE_N ?? '10000,100000').split(',').map(Number);
  const max = Number(process.env.SCALE_MAX ?? 0);
  for (let n = 10_000; n <= max; n *= 10) if (!base.includes(n)) base.push(n);
  return base.sort((x, y) => x - y);
}

interface Step {
  seconds: number;
  max_rss_mb: number;
  cpu_seconds: number;
  base_rss_mb: number;
  bytes?: number;
  keys?: number;
  head_seq?: number;
  streams_to?: string;
}

/**
 * The compaction and restore steps (bench/scale-compact.ts, bench/scale-restore.ts) bundled by esbuild
 * as the CLI is (scripts/build.mjs), so that their RSS is not tsx's. The restore is split into chunks
 * as the CLI is: its share checks start worker threads that import their own module
 * (src/keynode/restore-verify.ts, an entry point here so that it is a file of its own), which a
 * one-file bundle would not hold. The floor runs through tsx (bench/scale-worker.ts).
 */
async function bundleWorker(): Promise<{ compact: string; restore: string }> {
  // In the checkout (dist/, not committed), where node resolves better-sqlite3 from node_modules.
  const out = join(here, '..', 'dist', 'bench');
  const common: BuildOptions = {
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    external: ['better-sqlite3', 'pg-native'],
    banner: { js: "import { createRequire as __lifeboatRequire } from 'node:module'; const require = __lifeboatRequire(import.meta.url);" },
    logLevel: 'warning',
  };
  await build({ ...common, entryPoints: [join(here, 'scale-compact.ts')], outfile: join(out, 'scale-compact.mjs') });
  await build({
    ...common,
    entryPoints: [join(here, 'scale-restore.ts'), join(here, '..', 'src', 'keynode', 'restore-verify.ts')],
    outdir: join(out, 'scale-restore'),
    splitting: true,
    chunkNames: 'chunk-[hash]',
    outExtension: { '.js': '.mjs' },
  });
  return { compact: join(out, 'scale-compact.mjs'), restore: join(out, 'scale-restore', 'bench', 'scale-restore.mjs') };
}

/** Runs one worker step (from `bundle`, which takes the step's name unless `bare`, or through tsx); its JSON line, or a throw with its stderr. */
function step(args: string[], bundle?: string, bare = false): Promise<Step> {
  return new Promise((resolve, reject) => {
    const argv = bundle ? [bundle, ...args.slice(bare ? 1 : 0)] : ['--import', 'tsx', join(here, 'scale-worker.ts'), ...args];
    const prof = process.env.SCALE_PROF && args[0] === 'restore' ? ['--cpu-prof', `--cpu-prof-dir=${process.env.SCALE_PROF}`] : [];
    const child = spawn(process.execPath, [...prof, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code === 0 && line.startsWith('{')) resolve(JSON.parse(line) as Step);
      else reject(new Error(`scale worker ${args[0]} exited ${code}: ${err.slice(-2000)}`));
    });
  });
}

const fmt = (n: number) => n.toLocaleString('en-US');

export async function benchScale(): Promise<void> {
  const ns = sizes();
  const distinct = Math.min(Number(process.env.SCALE_DISTINCT ?? 100_000), Math.max(...ns));
  console.log(`compaction and restore at scale, sqlite, one process per step (node ${process.version}, ${cpus().length} cpus, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')})`);
  await fixtures(distinct); // made once and cached, outside every measured step
  const root = mkdtempSync(join(tmpdir(), 'lifeboat-bench-scale-'));
  const serviceDir = join(root, 'service');
  const added = await runCli(['backup-server', 'account', 'add', 'scale', '--data-dir', serviceDir, '--json']);
  if (added.code !== 0) throw new Error(`account add failed: ${added.stderr}`);
  const server = await startServer(['backup-server', 'serve', '--listen', '127.0.0.1:0', '--data-dir', serviceDir, '--log-level', 'silent', '--json']);
  try {
    const backupKey = randomBytes(32);
    const secrets = { identity: randomBytes(64), storageKey: STORAGE_KEY, exportKey: randomBytes(32), wrappingKey: randomBytes(32) };
    writeFileSync(
      join(root, 'secrets.json'),
      JSON.stringify({ account: 'scale', password: PASSWORD, backupKey: toHex(backupKey), identity: toHex(secrets.identity), storageKey: toHex(secrets.storageKey), exportKey: toHex(secrets.exportKey), wrappingKey: toHex(secrets.wrappingKey) }),
      { mode: 0o600 },
    );
    const client = new BackupClient({ url: server.url });
    await client.register('scale', (JSON.parse(added.stdout) as { invite: string }).invite, PASSWORD, backupKey);
    await client.session('scale', backupKey);
    const steps = (process.env.SCALE_STEPS ?? 'floor,compact,restore').split(',');
    const bundle = await bundleWorker();
    const rows: { n: number; floor: Step; compact?: Step; restore?: Step }[] = [];
    for (const n of ns) {
      const dir = join(root, `n${n}`);
      mkdirSync(dir);
      const stream = `scale-${n}`;
      // The stream's first entry holds the node keys; the compaction covers it and every key of the store.
      await client.appendEntries(stream, [sealEntry(backupKey, { stream, seq: 1, prev: ZERO_HASH }, encodeChange({ op: 'secrets', secrets }))]);
      const floor = await step(['floor', dir, String(n), String(Math.min(distinct, n))]);
      const compact = steps.includes('compact') ? await step(['compact', dir, server.url, stream], bundle.compact, true) : undefined;
      if (compact && steps.includes('restore-at')) {
        // One entry after the compaction (a status change: no key more or less), so that entry 1 is a point before the head.
        const head = await client.getStream(stream);
        const change = encodeChange({ op: 'key_status', keyId: 'bench-no-such-key', status: 'active' });
        await client.appendEntries(stream, [sealEntry(backupKey, { stream, seq: head!.headSeq + 1, prev: head!.headHash }, change)]);
      }
      const restore = compact && steps.includes('restore') ? await step(['restore', dir, server.url, stream], bundle.restore, true) : undefined;
      const restoreAt = compact && steps.includes('restore-at') ? await step(['restore', dir, server.url, stream, 'at:1'], bundle.restore, true) : undefined;
      const dryRun = compact && steps.includes('dry-run') ? await step(['restore', dir, server.url, stream, 'dry-run'], bundle.restore, true) : undefined;
      for (const [what, s] of [['restored', restore], ['restored to entry 1', restoreAt], ['dry-run checked', dryRun]] as const) {
        if (s && s.keys !== n) throw new Error(`${what} ${s.keys} keys, not ${n}`);
      }
      if (compact && compact.keys !== n) throw new Error(`compacted ${compact.keys} keys, not ${n}`);
      if (restoreAt && (restoreAt.head_seq !== 1 || !restoreAt.streams_to?.startsWith(`${stream}.at-1-`))) throw new Error(`the restore to entry 1 reached ${restoreAt.head_seq} and streams to ${restoreAt.streams_to}`);
      rows.push({ n, floor, compact, restore });
      const line = (what: string, s: Step, extra = '') => console.log(`  ${what.padEnd(34)} ${fmt(n).padStart(9)} keys ${s.seconds.toFixed(2).padStart(8)} s  cpu ${s.cpu_seconds.toFixed(1).padStart(5)} s  peak RSS ${s.max_rss_mb.toFixed(0).padStart(5)} MB (${s.base_rss_mb.toFixed(0)} before)${extra}`);
      line('store import (floor)', floor);
      if (compact) line('compaction, streamed to the service', compact, `   ${((compact.bytes ?? 0) / 1e6).toFixed(1)} MB (${((compact.bytes ?? 0) / n).toFixed(0)} B/key)${n >= 1_000_000 ? `; goal <= 256 MB RSS: ${compact.max_rss_mb <= 256 ? 'met' : 'NOT met'}` : ''}`);
      if (restore) {
        const goals = [n === 100_000 ? `goal <= 10 s and <= 4x: ${restore.seconds <= 10 && restore.seconds <= 4 * floor.seconds ? 'met' : 'NOT met'}` : '', n >= 1_000_000 ? `goal <= 512 MB RSS: ${restore.max_rss_mb <= 512 ? 'met' : 'NOT met'}` : ''].filter(Boolean);
        line('restore from the service', restore, `   ${(restore.seconds / floor.seconds).toFixed(1)}x the floor${goals.length ? `; ${goals.join('; ')}` : ''}`);
      }
      const rssGoal = (s: Step) => (n >= 1_000_000 ? `   goal <= 512 MB RSS: ${s.max_rss_mb <= 512 ? 'met' : 'NOT met'}` : '');
      if (restoreAt) line('restore to a point (--to-seq 1)', restoreAt, rssGoal(restoreAt));
      if (dryRun) line('restore --dry-run (to the head)', dryRun, rssGoal(dryRun));
      rmSync(dir, { recursive: true, force: true });
    }
    for (let i = 1; i < rows.length; i++) {
      const [p, q] = [rows[i - 1]!, rows[i]!];
      const per10 = (a: number, b: number) => ((b / a) ** (1 / Math.log10(q.n / p.n))).toFixed(1);
      const of = (what: string, a?: Step, b?: Step) => (a && b ? `   ${what} ${per10(a.seconds, b.seconds)}x time, ${per10(a.max_rss_mb, b.max_rss_mb)}x RSS` : '');
      console.log(`  per 10x keys, ${fmt(p.n)} -> ${fmt(q.n)} (linear: 10.0x time):  floor ${per10(p.floor.seconds, q.floor.seconds)}x${of('compaction', p.compact, q.compact)}${of('restore', p.restore, q.restore)}`);
    }
    client.endSession();
  } finally {
    await server.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchScale();
