/**
 * Vault operations on a file: round trips, the write listener, refusals that leave the file
 * byte-identical, crashes (a failing rename, a leftover temp file, a writer killed with SIGKILL at
 * random moments) that leave a readable vault, the lock, and whole-vault writes that refuse rollbacks.
 */
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { tracked } from './helpers/cli.js';
import fs, { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { randomBytes } from '../src/crypto/random.js';
import { LifeboatError } from '../src/errors.js';
import type { MasterKey } from '../src/primary/datadir.js';
import { toHex } from '../src/util/bytes.js';
import { MAX_ENTRIES, MAX_VALUE_BYTES, type VaultContents } from '../src/vault/contents.js';
import { createVault, openVault, readVaultHeader, reencryptVault, sealVault } from '../src/vault/format.js';
import {
  getEntry,
  listEntries,
  putEntry,
  readVaultFile,
  removeEntry,
  withVaultLock,
  writeVaultFile,
  type VaultWriteEvent,
} from '../src/vault/vault.js';
import { trackedTempDir } from './helpers/tmp.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

const tempDir = trackedTempDir;

function setup(): { dir: string; path: string; mk: MasterKey } {
  const dir = tempDir('lifeboat-vault-');
  const mk = { key: randomBytes(32), schemeId: randomBytes(16) };
  const path = join(dir, 'vault.lbv');
  writeFileSync(path, createVault(mk.key, mk.schemeId), { mode: 0o600 });
  return { dir, path, mk };
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof LifeboatError && err.code === code);
}

/** Runs `fn` and asserts the vault file is byte-identical afterwards and no temp or lock file is left. */
async function unchanged(path: string, fn: () => Promise<unknown>): Promise<void> {
  const before = readFileSync(path);
  await fn();
  assert.deepEqual(readFileSync(path), before);
  assert.deepEqual(readdirSync(join(path, '..')).filter((f) => f.endsWith('.tmp') || f.endsWith('.lock')), []);
}

test('put, get, list, rm round trip; each write is the next generation, 0600', async () => {
  const { path, mk } = setup();
  const h1 = await putEntry(path, mk, 'backup/key', enc('k1'));
  assert.equal(h1.generation, 2);
  await putEntry(path, mk, 'api/token', new Uint8Array([0, 255, 10]));
  assert.deepEqual(getEntry(path, mk, 'backup/key'), enc('k1'));
  assert.deepEqual(getEntry(path, mk, 'api/token'), new Uint8Array([0, 255, 10]));
  assert.deepEqual(
    listEntries(path, mk).map((e) => [e.name, e.size]),
    [
      ['api/token', 3],
      ['backup/key', 2],
    ],
  );
  const h3 = await putEntry(path, mk, 'backup/key', enc('k2'), { replace: true });
  assert.equal(h3.generation, 4);
  assert.deepEqual(getEntry(path, mk, 'backup/key'), enc('k2'));
  const h4 = await removeEntry(path, mk, 'backup/key');
  assert.equal(h4.generation, 5);
  assert.deepEqual(listEntries(path, mk).map((e) => e.name), ['api/token']);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  await rejectsWith(Promise.resolve().then(() => getEntry(path, mk, 'backup/key')), 'entry_not_found');
});

test('the listener gets the new bytes, as on disk, after each write', async () => {
  const { path, mk } = setup();
  const events: VaultWriteEvent[] = [];
  const listener = (e: VaultWriteEvent): void => {
    assert.deepEqual(new Uint8Array(readFileSync(path)), e.bytes); // already landed
    events.push(e);
  };
  await putEntry(path, mk, 'a', enc('secret-value-1'), { listener });
  await putEntry(path, mk, 'a', enc('secret-value-2'), { listener, replace: true });
  await removeEntry(path, mk, 'a', { listener });
  assert.deepEqual(
    events.map((e) => [e.change, e.header.generation, e.path]),
    [
      [{ kind: 'put', name: 'a', replaced: false }, 2, path],
      [{ kind: 'put', name: 'a', replaced: true }, 3, path],
      [{ kind: 'rm', name: 'a' }, 4, path],
    ],
  );
  assert.ok(events.every((e) => !Buffer.from(e.bytes).includes('secret-value')), 'the listener sees ciphertext only');
});

test('a listener that fails makes the call reject, but the write has landed', async () => {
  const { path, mk } = setup();
  const listener = async (): Promise<void> => {
    throw new LifeboatError('peer_unreachable', 'holder down');
  };
  await rejectsWith(putEntry(path, mk, 'a', enc('1'), { listener }), 'peer_unreachable');
  assert.deepEqual(getEntry(path, mk, 'a'), enc('1'));
});

test('bad input changes nothing: the file stays byte-identical', async () => {
  const { path, mk } = setup();
  await putEntry(path, mk, 'taken', enc('v'));
  await unchanged(path, () => rejectsWith(putEntry(path, mk, 'Bad Name', enc('v')), 'invalid_name'));
  await unchanged(path, () => rejectsWith(putEntry(path, mk, 'big', new Uint8Array(MAX_VALUE_BYTES + 1)), 'value_too_large'));
  await unchanged(path, () => rejectsWith(putEntry(path, mk, 'taken', enc('other')), 'entry_exists'));
  await unchanged(path, () => rejectsWith(removeEntry(path, mk, 'missing'), 'entry_not_found'));
  await unchanged(path, () => rejectsWith(removeEntry(path, mk, '../x'), 'invalid_name'));
  await unchanged(path, () => rejectsWith(putEntry(path, { ...mk, key: randomBytes(32) }, 'a', enc('v')), 'wrong_master_key'));
  await unchanged(path, () => rejectsWith(putEntry(path, { ...mk, schemeId: randomBytes(16) }, 'a', enc('v')), 'scheme_mismatch'));
  assert.deepEqual(getEntry(path, mk, 'taken'), enc('v'));
});

test('a full vault refuses one more entry and stays as it was', async () => {
  const { path, mk } = setup();
  const full: VaultContents = { entries: new Map() };
  const now = new Date().toISOString();
  for (let i = 0; i < MAX_ENTRIES; i++) full.entries.set(`k${i}`, { value: enc('v'), updatedAt: now });
  writeFileSync(path, sealVault(full, mk.key, mk.schemeId, 1));
  await unchanged(path, () => rejectsWith(putEntry(path, mk, 'one-more', enc('v')), 'too_many_entries'));
});

test('a failing rename (crash before the new file lands) leaves the old vault, no temp and no lock', async () => {
  const { path, mk } = setup();
  await putEntry(path, mk, 'a', enc('old'));
  const rename = mock.method(fs, 'renameSync', () => {
    throw Object.assign(new Error('EIO: simulated crash'), { code: 'EIO' });
  });
  syncBuiltinESMExports();
  try {
    await unchanged(path, () => assert.rejects(putEntry(path, mk, 'a', enc('new'), { replace: true }), /simulated crash/));
    assert.equal(rename.mock.callCount(), 1);
  } finally {
    rename.mock.restore();
    syncBuiltinESMExports();
  }
  assert.deepEqual(getEntry(path, mk, 'a'), enc('old'));
  await putEntry(path, mk, 'a', enc('new'), { replace: true });
  assert.deepEqual(getEntry(path, mk, 'a'), enc('new'));
});

test('a temp file left by a crash mid-write does not disturb the vault', async () => {
  const { dir, path, mk } = setup();
  await putEntry(path, mk, 'a', enc('1'));
  const next = sealVault(openVault(readVaultFile(path), mk.key), mk.key, mk.schemeId, 2);
  writeFileSync(join(dir, '.vault.lbv.0123456789ab.tmp'), next.subarray(0, 50)); // half-written new vault
  assert.deepEqual(getEntry(path, mk, 'a'), enc('1'));
  await putEntry(path, mk, 'b', enc('2'));
  assert.deepEqual(listEntries(path, mk).map((e) => e.name), ['a', 'b']);
});

test('a writer killed with SIGKILL at random moments always leaves a readable vault', async () => {
  const { dir, path, mk } = setup();
  const child = `
    const { putEntry } = await import(${JSON.stringify(new URL('../src/vault/vault.ts', import.meta.url).href)});
    const mk = { key: Buffer.from(process.env.K, 'hex'), schemeId: Buffer.from(process.env.S, 'hex') };
    for (let i = 0; ; i++) {
      await putEntry(process.env.P, mk, 'k' + process.env.R + '-' + i, new Uint8Array(20000).fill(i));
      process.stdout.write(i + '\\n');
    }`;
  let lastGeneration = 1;
  for (let round = 0; round < 3; round++) {
    const proc = tracked(spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', child], {
      env: { ...process.env, K: toHex(mk.key), S: toHex(mk.schemeId), P: path, R: String(round) },
      stdio: ['ignore', 'pipe', 'inherit'],
    }));
    const target = 3 + Math.floor(Math.random() * 15);
    let lines = 0;
    await new Promise<void>((resolve) => {
      proc.stdout.on('data', (d: Buffer) => {
        lines += d.toString().split('\n').length - 1;
        if (lines >= target && proc.exitCode === null && !proc.killed) {
          proc.kill('SIGKILL');
          resolve();
        }
      });
      proc.on('exit', () => resolve());
    });
    await new Promise((r) => proc.once('close', r));
    const h = readVaultHeader(readVaultFile(path));
    const names = listEntries(path, mk).map((e) => e.name).filter((n) => n.startsWith(`k${round}-`));
    // every acknowledged write is there; at most one more landed between its rename and the kill
    assert.ok(lines >= target && names.length >= lines && names.length <= lines + 1, `round ${round}: ${names.length} entries after ${lines} acknowledged`);
    assert.ok(h.generation > lastGeneration);
    lastGeneration = h.generation;
  }
  // the killed writer's lock (if any) is stale and taken over
  await putEntry(path, mk, 'after', enc('x'), { timeoutMs: 2000 });
  assert.ok(!readdirSync(dir).includes('vault.lbv.lock'));
});

test('concurrent writers in one process lose nothing (the lock serialises them)', async () => {
  const { path, mk } = setup();
  await Promise.all(Array.from({ length: 15 }, (_, i) => putEntry(path, mk, `k${i}`, enc(String(i)))));
  assert.equal(listEntries(path, mk).length, 15);
  assert.equal(readVaultHeader(readVaultFile(path)).generation, 16);
});

test('a lock held by a live process times out with vault_locked; a dead owner\'s lock is taken over', async () => {
  const { path, mk } = setup();
  writeFileSync(`${path}.lock`, `${process.ppid}\n`);
  await unchanged(path, async () => {
    await rejectsWith(putEntry(path, mk, 'a', enc('1'), { timeoutMs: 100 }), 'vault_locked');
    rmSync(`${path}.lock`); // unchanged() also checks no lock is left
  });
  writeFileSync(`${path}.lock`, '999999999\n'); // no such pid
  await putEntry(path, mk, 'a', enc('1'), { timeoutMs: 100 });
  assert.ok(!fs.existsSync(`${path}.lock`));
  const order: string[] = [];
  await Promise.all([
    withVaultLock(path, async () => {
      order.push('outer-start');
      await new Promise((r) => setTimeout(r, 50));
      order.push('outer-end');
    }),
    new Promise((r) => setTimeout(r, 5)).then(() => putEntry(path, mk, 'b', enc('2')).then(() => order.push('put'))),
  ]);
  assert.deepEqual(order, ['outer-start', 'outer-end', 'put']);
});

test('writeVaultFile: creates 0600, moves forward, refuses a rollback and leaves the file as it was', async () => {
  const dir = tempDir('lifeboat-vault-');
  const path = join(dir, 'sub', 'vault.lbv');
  const mk = { key: randomBytes(32), schemeId: randomBytes(16) };
  const first = createVault(mk.key, mk.schemeId);
  const events: VaultWriteEvent[] = [];
  const h = await writeVaultFile(path, first, { listener: (e) => void events.push(e) });
  assert.equal(h.generation, 1);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.deepEqual(events.map((e) => e.change), [{ kind: 'replace' }]);
  await putEntry(path, mk, 'a', enc('1'));
  const current = readVaultFile(path);
  await unchanged(path, () => rejectsWith(writeVaultFile(path, first), 'vault_rollback'));
  await unchanged(path, () => rejectsWith(writeVaultFile(path, current), 'vault_rollback'));
  await unchanged(path, () => rejectsWith(writeVaultFile(path, enc('garbage')), 'bad_magic'));
  const rotated = reencryptVault(current, mk.key, randomBytes(32), randomBytes(16));
  assert.equal((await writeVaultFile(path, rotated)).generation, 3);
});

test('a missing vault is vault_not_found with a hint to run recovery init', () => {
  const dir = tempDir('lifeboat-vault-');
  assert.throws(
    () => readVaultFile(join(dir, 'vault.lbv')),
    (err: unknown) => err instanceof LifeboatError && err.code === 'vault_not_found' && /recovery init/.test(err.hint ?? ''),
  );
});
