/**
 * `lifeboat … --help | head`: a reader that stops early closes the pipe before the CLI has written
 * all of its output. The CLI must end quietly (exit 0 for help, nothing on stderr), not with Node's
 * EPIPE stack trace. The real CLI as a child process whose stdout pipe the test closes before the
 * child has started, so every write it makes meets a closed pipe.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { closeNode, initNode, openNode } from '../src/keynode/runtime.js';
import { newApiKey } from '../src/keynode/apikeys.js';
import { REPO_ROOT, cliArgs, runCli, tracked } from './helpers/cli.js';
import { trackedTempDir } from './helpers/tmp.js';

function withStdoutClosed(args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const child = tracked(spawn(process.execPath, [...cliArgs(), ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, LIFEBOAT_DEBUG: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  }));
  // The only read end of the child's stdout is ours: closed now, before node has even loaded.
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
}

describe('stdout closed early (lifeboat … --help | head)', { timeout: 120_000 }, () => {
  for (const args of [['--help'], ['key', 'import', '--help'], ['sign', '--help']]) {
    it(`lifeboat ${args.join(' ')}: exit 0, no stack trace`, async () => {
      const r = await withStdoutClosed(args);
      assert.equal(r.stderr, '', 'nothing on stderr (no EPIPE stack trace)');
      assert.deepEqual([r.code, r.signal], [0, null]);
    });
  }

  it('a failing command with stdout closed still exits with its own code and prints its error line', async () => {
    const r = await withStdoutClosed(['key', 'import', '--node', 'http://127.0.0.1:9', '--in', '/nonexistent/lifeboat-export.json']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^lifeboat: error: .*\(file_not_found\)$/m);
    assert.doesNotMatch(r.stderr, /EPIPE|at .*\.js:\d+/);
  });
});

/**
 * `lifeboat node apikey list | head -1` for real: a long output (more than a pipe buffer) whose reader
 * takes the first line and closes its end, so the CLI is still writing when the pipe breaks.
 */
function firstLineThenClose(args: string[]): Promise<{ first: string; code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const child = tracked(spawn(process.execPath, [...cliArgs(), ...args], { cwd: REPO_ROOT, env: { ...process.env, LIFEBOAT_DEBUG: '' }, stdio: ['ignore', 'pipe', 'pipe'] }));
  let stdout = '';
  let first = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (!first && stdout.includes('\n')) {
      first = stdout.slice(0, stdout.indexOf('\n'));
      child.stdout.destroy();
    }
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ first, code, signal, stderr })));
}

describe('a long output into a pipe closed early (lifeboat node apikey list | head -1)', { timeout: 180_000 }, () => {
  const dir = join(trackedTempDir('lb-pipe-'), 'node');
  const KEYS = 600;

  before(async () => {
    await initNode(dir, {});
    const n = await openNode(dir);
    try {
      for (let i = 0; i < KEYS; i++) await n.store.insertApiKey(newApiKey('client', `pipe test key ${i} ${'x'.repeat(100)}`).record);
    } finally {
      await closeNode(n);
    }
  });

  it('the whole output is longer than a pipe holds', async () => {
    const r = await runCli(['node', 'apikey', 'list', '--data-dir', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.split('\n').length, KEYS + 1);
    assert.ok(r.stdout.length > 64 * 1024, `${r.stdout.length} bytes`);
  });

  for (const json of [false, true]) {
    it(`${json ? 'with --json: ' : ''}the reader gets its first line; the CLI exits 0, nothing on stderr`, async () => {
      const r = await firstLineThenClose(['node', 'apikey', 'list', '--data-dir', dir, ...(json ? ['--json'] : [])]);
      assert.match(r.first, json ? /^\[$/ : /^[0-9a-f]{16} {2}client /);
      assert.equal(r.stderr, '', 'no EPIPE stack trace');
      assert.deepEqual([r.code, r.signal], [0, null]);
    });
  }

  it('node status | head -1 on the same node: exit 0, quiet', async () => {
    const r = await firstLineThenClose(['node', 'status', '--data-dir', dir]);
    assert.notEqual(r.first, '');
    assert.deepEqual([r.code, r.signal, r.stderr], [0, null, '']);
  });
});
