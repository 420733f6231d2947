/**
 * `lifeboat … --help | head`: a reader that stops early closes the pipe before the CLI has written
 * all of its output. The CLI must end quietly (exit 0 for help, nothing on stderr), not with Node's
 * EPIPE stack trace. The real CLI as a child process whose stdout pipe the test closes before the
 * child has started, so every write it makes meets a closed pipe.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { REPO_ROOT, cliArgs, tracked } from './helpers/cli.js';

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
