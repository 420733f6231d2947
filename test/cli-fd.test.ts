/**
 * Descriptors named on the command line must be ones the caller opened for the command (src/util/fd.ts):
 * Node opens descriptors of its own from 3 up (epoll, eventfd, its signal pipe), and reading the signal
 * pipe blocked forever. A credential, a mnemonic or a token fd the caller did not give is now a typed
 * error at once, and a --secret-fd that was not given is refused before the secret is made.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliArgs, tracked } from './helpers/cli.js';
import { trackedTempDir } from './helpers/tmp.js';

/** Runs the CLI with only `extra` descriptors beyond 0-2 (so 3 and up are Node's own unless given); fails after 20 s. */
function run(args: string[], extra: (number | 'ignore')[] = []): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = tracked(spawn(process.execPath, [...cliArgs(), ...args], { stdio: ['ignore', 'pipe', 'pipe', ...extra] }));
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`lifeboat ${args.join(' ')} hung: ${stderr}`));
    }, 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

describe('descriptors the caller did not open', () => {
  const dir = trackedTempDir('lb-fd-');

  it('a fleet credential on fd 3, 4, 5 or 6, not given, makes its part unknown (credential_unreadable) at once instead of hanging', async () => {
    const fleet = join(dir, 'fleet.json');
    assert.equal((await run(['fleet', 'init', '--fleet', fleet])).code, 0);
    for (const fd of [3, 4, 5, 6]) {
      const r = await run(['fleet', 'add', 'node', `n${fd}`, '--url', 'http://127.0.0.1:9', '--credential-fd', String(fd), '--fleet', fleet]);
      assert.equal(r.code, 0, r.stderr);
    }
    const r = await run(['coverage', '--fleet', fleet, '--json']);
    assert.equal(r.code, 1, r.stderr);
    const report = JSON.parse(r.stdout) as { parts: { name: string; state: string; reason?: string; error?: string }[] };
    assert.equal(report.parts.length, 4);
    for (const p of report.parts) {
      assert.equal(p.state, 'unknown', p.name);
      assert.match(JSON.stringify(p), /credential_unreadable/, p.name);
    }
    // The same descriptor given by the caller is read.
    const token = join(dir, 'token');
    writeFileSync(token, `lbm_${'A'.repeat(43)}\n`, { mode: 0o600 });
    const given = await run(['coverage', '--fleet', fleet, '--json'], [openSync(token, 'r')]);
    const n3 = (JSON.parse(given.stdout) as { parts: { name: string }[] }).parts.find((p) => p.name === 'n3');
    assert.doesNotMatch(JSON.stringify(n3), /credential_unreadable/, 'fd 3, given, is read (the part then fails to connect)');
  });

  it('console serve --token-fd 4 not given is refused at once; keyshare --mnemonic-fd likewise', async () => {
    const fleet = join(dir, 'fleet.json');
    const c = await run(['console', 'serve', '--fleet', fleet, '--listen', '127.0.0.1:0', '--token-fd', '4']);
    assert.equal(c.code, 1);
    assert.match(c.stderr, /credential_unreadable/);
    const k = await run(['keyshare', 'identity', '--mnemonic-fd', '4', '--recipient-only']);
    assert.notEqual(k.code, 0);
    assert.match(k.stderr, /file descriptor 4/);
  });

  it('node monitor-token --secret-fd 5, not given, is refused before a token is made (output_unwritable)', async () => {
    const node = join(dir, 'node');
    assert.equal((await run(['node', 'init', '--data-dir', node, '--no-mnemonic', '--json'])).code, 0);
    const r = await run(['node', 'monitor-token', '--data-dir', node, '--secret-fd', '5']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /output_unwritable/);
    assert.equal(existsSync(join(node, 'monitor-tokens')), false, 'nothing was made');
  });
});
