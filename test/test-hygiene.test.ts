/**
 * Test hygiene: the end-of-run check of `npm test` (scripts/check-leftovers.mjs) names and kills what
 * a run left alive, and `lifeboat drill` interrupted stops its servers and removes its directory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cliArgs, REPO_ROOT, tracked } from './helpers/cli.js';
import { alive, listening, markedProcesses, waitFor } from './helpers/procs.js';
import { trackedTempDir } from './helpers/tmp.js';

const CHECKER = join(REPO_ROOT, 'scripts/check-leftovers.mjs');

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = tracked(spawn(cmd, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] }));
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

const exitOf = (child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve({ code: child.exitCode, signal: child.signalCode })
    : new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));

const freshRunId = () => `hygiene-${randomBytes(6).toString('hex')}`;

test('check-leftovers --run-id: a marked process left alive is named with its command line, killed, exit 1', async () => {
  const runId = freshRunId();
  const sleeper = tracked(spawn('sleep', ['57'], { env: { ...process.env, LIFEBOAT_TEST_RUN: runId }, stdio: 'ignore' }));
  const exited = exitOf(sleeper);
  await waitFor(() => markedProcesses(runId).length === 1, 'the sleep child to appear in /proc');
  const r = await run(process.execPath, [CHECKER, '--run-id', runId]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`pid ${sleeper.pid}: sleep 57`));
  assert.deepEqual(await exited, { code: null, signal: 'SIGKILL' });
  assert.deepEqual(markedProcesses(runId), []);
});

test('check-leftovers --run-id: nothing left, exit 0 and silent', async () => {
  const r = await run(process.execPath, [CHECKER, '--run-id', freshRunId()]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
});

test("check-leftovers -- COMMAND: keeps the command's failing status; fails a passing run that left a process", async () => {
  const failed = await run(process.execPath, [CHECKER, '--', process.execPath, '-e', 'process.exit(3)']);
  assert.equal(failed.code, 3);
  const clean = await run(process.execPath, [CHECKER, '--', process.execPath, '-e', 'process.exit(0)']);
  assert.equal(clean.code, 0, clean.stderr);
  // A "test run" that exits 0 but leaves a detached grandchild behind, which inherits the marker.
  const leak = "require('node:child_process').spawn('sleep', ['58'], { detached: true, stdio: 'ignore' }).unref()";
  const leaked = await run(process.execPath, [CHECKER, '--', process.execPath, '-e', leak]);
  assert.equal(leaked.code, 1, leaked.stderr);
  const m = /pid (\d+): sleep 58/.exec(leaked.stderr);
  assert.ok(m, leaked.stderr);
  await waitFor(() => !alive(Number(m[1])), 'the leftover to be gone');
});

test("helpers/cli.ts tracked(): a test process that exits takes its children's children with it (the drill's servers)", async () => {
  const runId = freshRunId();
  const middle = "require('node:child_process').spawn('sleep', ['59'], { stdio: 'ignore' }); console.log('ready'); setInterval(() => {}, 1000)";
  const script = [
    "const { spawn } = await import('node:child_process');",
    "const { tracked } = await import('./test/helpers/cli.ts');",
    `const mid = tracked(spawn(process.execPath, ['-e', ${JSON.stringify(middle)}], { stdio: ['ignore', 'pipe', 'inherit'] }));`,
    'mid.stdout.once("data", () => process.exit(0));',
  ].join('\n');
  const r = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { ...process.env, LIFEBOAT_TEST_RUN: runId });
  assert.equal(r.code, 0, r.stderr);
  try {
    await waitFor(() => markedProcesses(runId).length === 0, 'the child and the sleep it started to be gone', 5000);
  } finally {
    for (const p of markedProcesses(runId)) process.kill(p.pid, 'SIGKILL');
  }
});

test('src/drill/proc.ts: a process that exits with a server it started still running takes the server with it', async () => {
  const runId = freshRunId();
  const dir = trackedTempDir('lifeboat-hygiene-witness-');
  const script = [
    "const { runCli, startServer } = await import('./src/drill/proc.ts');",
    "const init = await runCli(['log', 'witness', 'init', '--name', 'witness.example.org/w1', '--data-dir', process.env.D]);",
    "if (init.code !== 0) { console.error(init.stderr); process.exit(5); }",
    "await startServer(['log', 'witness', 'serve', '--data-dir', process.env.D, '--listen', '127.0.0.1:0', '--log-level', 'silent', '--json']);",
    'process.exit(0);',
  ].join('\n');
  const r = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { ...process.env, LIFEBOAT_TEST_RUN: runId, D: dir });
  assert.equal(r.code, 0, r.stderr);
  try {
    await waitFor(() => markedProcesses(runId).length === 0, 'the witness server to be gone', 5000);
  } finally {
    for (const p of markedProcesses(runId)) process.kill(p.pid, 'SIGKILL');
  }
});

test('usage: check-leftovers without a command exits 2', async () => {
  const r = await run(process.execPath, [CHECKER]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /usage/);
});

test('temp directories: test files that made lb-commit-* (a master.key), lb-id-*, lifeboat-keynode-* and lifeboat-restore-fail-* leave none', async () => {
  const tmp = trackedTempDir('lifeboat-hygiene-tmp-');
  const files = ['primary-commit', 'recovery-protocol', 'backup-agent-unit', 'backup-faults'].map((f) => `test/${f}.test.ts`);
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmp };
  delete env.NODE_TEST_CONTEXT; // a run of its own, not a child reporting to this one
  const r = await run(process.execPath, ['--import', 'tsx', '--test', ...files], env);
  assert.equal(r.code, 0, r.stdout.slice(-2000));
  assert.match(r.stdout, /# pass [1-9]/);
  assert.match(r.stdout, /# fail 0/);
  // tsx keeps its compile cache there (tsx-<uid>); nothing else may remain.
  assert.deepEqual(readdirSync(tmp).filter((n) => !n.startsWith('tsx-')), []);
});

for (const [signal, status] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
  test(`drill --json interrupted by ${signal} once its first server listens: exits ${status} soon, no process of it alive, its directory gone`, async (t) => {
    const runId = freshRunId();
    // Whatever happens below, nothing of this drill outlives the test (its orphaned servers included).
    let drillDir: string | undefined = undefined;
    t.after(() => {
      for (const p of markedProcesses(runId)) process.kill(p.pid, 'SIGKILL');
      if (drillDir) rmSync(drillDir, { recursive: true, force: true });
    });
    const drill = tracked(spawn(process.execPath, [...cliArgs(), 'drill', '--json'], { cwd: REPO_ROOT, env: { ...process.env, LIFEBOAT_DEBUG: '', LIFEBOAT_TEST_RUN: runId }, stdio: ['ignore', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    drill.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    drill.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = exitOf(drill);
    // The drill's first server: a child carrying the marker with a listening socket.
    let server: { pid: number; cmd: string } | undefined;
    await waitFor(() => {
      server = markedProcesses(runId).find((p) => p.pid !== drill.pid && / serve /.test(p.cmd) && listening(p.pid));
      return server !== undefined || drill.exitCode !== null;
    }, 'the drill to start a server', 60_000);
    assert.ok(server, `the drill ended first: ${stderr}`);
    const dataDir = /--data-dir (\S+)/.exec(server.cmd)?.[1];
    assert.ok(dataDir, server.cmd);
    drillDir = /^(.*\/lifeboat-drill-[^/]+)\//.exec(dataDir)?.[1];
    assert.ok(drillDir && existsSync(drillDir), dataDir);
    const t0 = Date.now();
    drill.kill(signal);
    const end = await Promise.race([exited, new Promise<'late'>((r) => setTimeout(() => r('late'), 10_000).unref())]);
    assert.deepEqual(end, { code: status, signal: null }, `stderr: ${stderr}`);
    assert.ok(Date.now() - t0 < 10_000);
    assert.equal(alive(server.pid), false, 'its server is gone');
    assert.deepEqual(markedProcesses(runId), [], 'no process the drill started is alive');
    assert.equal(existsSync(drillDir!), false, `${drillDir} is removed`);
    assert.equal(stdout, '', 'no report on stdout: the drill did not finish');
  });
}
