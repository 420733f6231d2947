/**
 * Prompts on a pipe (src/cli/input.ts): one line per prompt, read only as far as needed, so a program can
 * answer each prompt after seeing it and the command exits without waiting for stdin to close; blank
 * trailing lines are missing input, a blank line followed by more is an empty answer.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { REPO_ROOT, tracked } from './helpers/cli.js';

/** Runs `count` prompts in a child; `feed` writes to its stdin. Resolves with each answer or error code. */
function prompts(count: number, feed: (stdin: NodeJS.WritableStream, stderr: () => string) => void): Promise<string[]> {
  const script = `import('./src/cli/input.ts').then(async (m) => { for (let i = 0; i < ${count}; i++) { process.stderr.write('prompt ' + i + '\\n'); try { console.log(JSON.stringify(await m.promptSecret('x'))); } catch (e) { console.log(e.code); } } });`;
  const child = tracked(spawn(process.execPath, ['--import', 'tsx', '-e', script], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] }));
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  feed(child.stdin, () => err);
  return new Promise((resolve) => child.on('close', () => resolve(out.trim().split('\n'))));
}

describe('prompts on a pipe', () => {
  it('a blank line followed by more is an empty answer; a blank last line and the end are input_missing', async () => {
    assert.deepEqual(await prompts(4, (s) => s.end('a\n\nb\n')), ['"a"', '""', '"b"', 'input_missing']);
    assert.deepEqual(await prompts(2, (s) => s.end('a\n\n')), ['"a"', 'input_missing']);
    assert.deepEqual(await prompts(1, (s) => s.end('no newline')), ['"no newline"']);
  });

  it('each answer can wait for its prompt, and the command exits while stdin is still open', { timeout: 20_000 }, async () => {
    // stdin is never ended here: a command that waited for its end would not exit, and the test would time out
    const answers = await prompts(2, (stdin, stderr) => {
      const answer = (n: number, text: string): void => {
        const t = setInterval(() => {
          if (!stderr().includes(`prompt ${n}`)) return;
          clearInterval(t);
          stdin.write(`${text}\n`);
        }, 10);
      };
      answer(0, 'first, after prompt 0');
      answer(1, 'second, after prompt 1');
    });
    assert.deepEqual(answers, ['"first, after prompt 0"', '"second, after prompt 1"']);
  });
});
