/**
 * `lifeboat vault ...` as a user runs it: the real CLI in a child process against a temp data dir
 * holding a master.key (storeMasterKey) and a vault (createVault). Values go in on stdin only and
 * come out only where asked; they never reach argv options or stderr.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from '../src/crypto/random.js';
import { primaryPaths, storeMasterKey } from '../src/primary/datadir.js';
import { writeFileAtomic } from '../src/util/files.js';
import { createVault } from '../src/vault/format.js';
import { putEntry } from '../src/vault/vault.js';
import { trackedTempDir } from './helpers/tmp.js';
import { cliArgs, tracked } from './helpers/cli.js';

const ROOT = resolve(import.meta.dirname, '..');
const SECRET = 'sk_live_7hIs-Is-The-Secret-Value';

const tempDir = trackedTempDir;

interface Run {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

function run(args: string[], opts: { input?: Uint8Array | string; env?: Record<string, string> } = {}): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
  if (!opts.env?.LIFEBOAT_DATA_DIR) delete env.LIFEBOAT_DATA_DIR;
  delete env.LIFEBOAT_MASTER_KEY_FILE;
  const proc = tracked(spawn(process.execPath, [...cliArgs(), 'vault', ...args], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] }));
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  proc.stdout.on('data', (d: Buffer) => out.push(d));
  proc.stderr.on('data', (d: Buffer) => err.push(d));
  proc.stdin.end(opts.input ?? '');
  return new Promise((res) => proc.on('close', (code) => res({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() })));
}

/** Runs `lifeboat vault ...` with stdout on a pseudo-terminal (util-linux `script`). */
function runOnTerminal(args: string[]): Promise<Run> {
  const cmd = [process.execPath, ...cliArgs(), 'vault', ...args].map((a) => `'${a}'`).join(' ');
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.LIFEBOAT_DATA_DIR;
  delete env.LIFEBOAT_MASTER_KEY_FILE;
  const proc = tracked(spawn('script', ['-q', '-e', '-c', cmd, '/dev/null'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] }));
  const out: Buffer[] = [];
  proc.stdout.on('data', (d: Buffer) => out.push(d));
  return new Promise((res) => proc.on('close', (code) => res({ code, stdout: Buffer.concat(out), stderr: '' })));
}

const hasScript = spawnSync('script', ['--version']).status === 0;

function dataDir(): { dir: string; vault: string; put: (name: string, value: string | Uint8Array) => Promise<unknown> } {
  const dir = tempDir('lifeboat-cli-');
  const paths = primaryPaths(dir);
  const mk = { key: randomBytes(32), schemeId: randomBytes(16) };
  storeMasterKey(paths, mk);
  writeFileAtomic(paths.vault, createVault(mk.key, mk.schemeId));
  // set-up without a child process: the CLI's own put is tested separately
  const put = (name: string, value: string | Uint8Array): Promise<unknown> => putEntry(paths.vault, mk, name, typeof value === 'string' ? new TextEncoder().encode(value) : value);
  return { dir, vault: paths.vault, put };
}

function assertFailed(r: Run, code: number, pattern: RegExp): void {
  assert.equal(r.code, code, r.stderr);
  assert.match(r.stderr, /^lifeboat: error: /);
  assert.match(r.stderr, pattern);
  assert.ok(!r.stderr.includes(SECRET), 'the secret reached stderr');
}

test('put (stdin) -> get --stdout -> list --json -> rm -> list', async () => {
  const { dir } = dataDir();
  const put = await run(['put', 'api/token', '--data-dir', dir], { input: SECRET });
  assert.equal(put.code, 0, put.stderr);
  assert.match(put.stderr, /stored api\/token \(\d+ bytes, vault generation 2\)/);
  assert.equal(put.stdout.length, 0);

  const binary = new Uint8Array([0, 1, 2, 255, 10]);
  assert.equal((await run(['put', 'backup/key', '--data-dir', dir], { input: binary })).code, 0);

  const [get, getBin, list] = await Promise.all([
    run(['get', 'api/token', '--stdout', '--data-dir', dir]),
    run(['get', 'backup/key', '--stdout', '--data-dir', dir]),
    run(['list', '--json', '--data-dir', dir]),
  ]);
  assert.equal(get.code, 0, get.stderr);
  assert.equal(get.stdout.toString(), SECRET); // exact bytes, no newline added
  assert.deepEqual(new Uint8Array(getBin.stdout), binary);
  assert.equal(list.code, 0, list.stderr);
  const doc = JSON.parse(list.stdout.toString()) as { generation: number; entries: { name: string; size: number; updated_at: string }[] };
  assert.equal(doc.generation, 3);
  assert.deepEqual(doc.entries.map((e) => [e.name, e.size]), [
    ['api/token', SECRET.length],
    ['backup/key', 5],
  ]);
  assert.ok(doc.entries.every((e) => !Number.isNaN(Date.parse(e.updated_at)) && Object.keys(e).length === 3));
  assert.ok(!list.stdout.toString().includes(SECRET));

  const rm = await run(['rm', 'api/token', '--data-dir', dir]);
  assert.equal(rm.code, 0, rm.stderr);
  const after = await run(['list', '--data-dir', dir]);
  assert.match(after.stdout.toString(), /^NAME +SIZE +UPDATED\nbackup\/key +5 +\S+Z\n$/);
  for (const r of [put, get, list, rm, after]) assert.ok(!r.stderr.includes(SECRET));
});

test('get writes a secret only where asked: not to a pipe by default, to a 0600 file with --out', async () => {
  const { dir, put } = dataDir();
  await put('k', SECRET);
  const outFile = join(dir, 'exported.txt');
  const [piped, toFile, both] = await Promise.all([
    run(['get', 'k', '--data-dir', dir]),
    run(['get', 'k', '--out', outFile, '--data-dir', dir]),
    run(['get', 'k', '--out', outFile, '--stdout', '--data-dir', dir]),
  ]);
  assertFailed(piped, 1, /refusing to write a secret to a non-terminal stdout \(secret_needs_terminal\)\nlifeboat: hint: pass --stdout/);
  assert.equal(piped.stdout.length, 0);
  assert.equal(toFile.code, 0, toFile.stderr);
  assert.equal(toFile.stdout.length, 0);
  assert.equal(readFileSync(outFile, 'utf8'), SECRET);
  assert.equal(statSync(outFile).mode & 0o777, 0o600);
  assertFailed(both, 2, /cannot be used together \(usage\)/);
});

test('errors are typed, on stderr in the CLI voice, exit 1 (3 for a key of another scheme), with hints', async () => {
  const { dir, vault } = dataDir();
  const empty = tempDir('lifeboat-cli-');
  const sealed = dataDir();
  rmSync(primaryPaths(sealed.dir).masterKey);
  const other = dataDir(); // a master key of another vault
  rmSync(other.vault);
  copyFileSync(vault, other.vault);
  const before = readFileSync(vault);
  const [missing, noVault, isSealed, wrongKey, badName, emptyValue, tooBig] = await Promise.all([
    run(['get', 'nope', '--stdout', '--data-dir', dir]),
    run(['list', '--data-dir', empty]),
    run(['list', '--data-dir', sealed.dir]),
    run(['list', '--data-dir', other.dir]),
    run(['put', 'Not/Valid', '--data-dir', dir], { input: SECRET }),
    run(['put', 'k', '--data-dir', dir], { input: '' }),
    run(['put', 'k', '--data-dir', dir], { input: new Uint8Array(1024 * 1024 + 1) }),
  ]);
  assertFailed(missing, 1, /no entry named nope in the vault \(entry_not_found\)\nlifeboat: hint: run `lifeboat vault list`/);
  assertFailed(noVault, 1, /no vault at .*\nlifeboat: hint: run `lifeboat recovery init` first/);
  assertFailed(isSealed, 1, /the primary is sealed/);
  assertFailed(wrongKey, 3, /recovery scheme .* \(scheme_mismatch\)/);
  assertFailed(badName, 1, /invalid entry name/);
  assertFailed(emptyValue, 1, /refusing to store an empty value/);
  assertFailed(tooBig, 1, /more than the limit of 1048576/);
  assert.deepEqual(readFileSync(vault), before, 'a refused command changed the vault');
});

test('an existing entry is replaced only with --force', async () => {
  const { dir, put } = dataDir();
  await put('k', 'one');
  assertFailed(await run(['put', 'k', '--data-dir', dir], { input: 'two' }), 1, /already exists \(entry_exists\)\nlifeboat: hint: pass --force/);
  const forced = await run(['put', 'k', '--force', '--data-dir', dir], { input: 'two' });
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(forced.stderr, /replaced k/);
  assert.equal((await run(['get', 'k', '--stdout', '--data-dir', dir])).stdout.toString(), 'two');
});

test('there is no way to pass a value in argv, and a value typed there is never echoed', async () => {
  const { dir, vault } = dataDir();
  const before = readFileSync(vault);
  const [extraArg, longOpt, shortOpt, help] = await Promise.all([
    run(['put', 'k', SECRET, '--data-dir', dir]),
    run(['put', 'k', `--value=${SECRET}`, '--data-dir', dir]),
    run(['put', 'k', `-v${SECRET}`, '--data-dir', dir]),
    run(['put', '--help']),
  ]);
  for (const r of [extraArg, longOpt, shortOpt]) {
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^lifeboat: error: /);
    assert.ok(!r.stderr.includes(SECRET) && !r.stdout.includes(SECRET), r.stderr);
  }
  assert.deepEqual(readFileSync(vault), before);
  assert.equal(help.code, 0);
  const options = [...help.stdout.toString().matchAll(/^\s+(-[-\w, ]+?)(?: <\w+>)?\s{2,}/gm)].map((m) => m[1]);
  assert.deepEqual(options, ['--data-dir', '--force', '--ca-file', '-h, --help'], 'no option takes the value (--ca-file: the holders it syncs to)');
});

test('LIFEBOAT_DATA_DIR is used without --data-dir; info reads the header without decrypting', async () => {
  const { dir } = dataDir();
  const put = await run(['put', 'k'], { input: SECRET, env: { LIFEBOAT_DATA_DIR: dir } });
  assert.equal(put.code, 0, put.stderr);
  const info = await run(['info', '--json'], { env: { LIFEBOAT_DATA_DIR: dir } });
  assert.equal(info.code, 0, info.stderr);
  const doc = JSON.parse(info.stdout.toString()) as Record<string, unknown>;
  assert.equal(doc.generation, 2);
  assert.equal(doc.master_key, 'matches');
  assert.match(String(doc.scheme_id), /^[0-9a-f]{32}$/);
});

test('on a terminal, get prints the value with a newline, and refuses binary', { skip: !hasScript && 'needs util-linux script' }, async () => {
  const { dir, put } = dataDir();
  await put('text', SECRET);
  await put('bin', new Uint8Array([0xff, 0xfe, 0]));
  const [text, bin] = await Promise.all([runOnTerminal(['get', 'text', '--data-dir', dir]), runOnTerminal(['get', 'bin', '--data-dir', dir])]);
  assert.equal(text.code, 0);
  assert.equal(text.stdout.toString(), `${SECRET}\r\n`); // the terminal turns \n into \r\n
  assert.equal(bin.code, 1);
  assert.match(bin.stdout.toString(), /lifeboat: error: bin holds binary data.*\r\nlifeboat: hint: use --out FILE/s);
});
