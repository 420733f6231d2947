/**
 * Issue 14, point 1: a key node seals like the primary. The three layouts of docs/keynode-operations.md,
 * "Sealing a node", on real processes: tmpfs ($LIFEBOAT_MASTER_KEY_FILE outside the data directory),
 * simple (master.key on disk: `node seal` refuses without --force), and split (`primary init` +
 * `recovery init --data-dir NODE_DIR` with two share holders on loopback: the node's vault is
 * re-encrypted under a split key; `node seal`, `node serve` refused as sealed naming `node unseal`,
 * `node unseal` from the holders, then from one holder and a typed share; the node keys survive).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CliResult, runCli, type RunningCli, startCli } from './helpers/cli.js';
import { trackedTempDir } from './helpers/tmp.js';

function ok(r: CliResult): CliResult {
  assert.equal(r.code, 0, `expected success, got ${r.code}: ${r.stderr}`);
  return r;
}

async function identityOf(dir: string, env?: Record<string, string>): Promise<string> {
  return (JSON.parse(ok(await runCli(['node', 'show', '--data-dir', dir, '--json'], { env })).stdout) as { identity: string }).identity;
}

/** Serves the node, checks it answers, stops it. */
async function servesAndStops(dir: string, env?: Record<string, string>): Promise<void> {
  const node = await startCli(['node', 'serve', '--data-dir', dir, '--listen', '127.0.0.1:0', '--json', '--log-level', 'silent'], { env });
  try {
    assert.equal((await fetch(`${node.url}/v1/health`)).status, 200);
  } finally {
    await node.stop();
  }
}

const w = { root: '', node: '', nodeId: '', holders: [] as RunningCli[], specs: [] as string[], words: '' };

describe('key nodes that seal: tmpfs, simple and split layouts', { timeout: 300_000 }, () => {
  before(async () => {
    w.root = trackedTempDir('lb-nodeseal-');
    w.node = join(w.root, 'node');
    ok(await runCli(['node', 'init', '--data-dir', w.node, '--no-mnemonic']));
    w.nodeId = await identityOf(w.node);
  });

  after(async () => {
    await Promise.all(w.holders.map((h) => (h.child.exitCode === null ? h.stop() : undefined)));
  });

  it('tmpfs: with LIFEBOAT_MASTER_KEY_FILE the key is never in the data directory; the node serves with it and is sealed without it', async () => {
    const run = join(w.root, 'run');
    mkdirSync(run, { mode: 0o700 });
    const env = { LIFEBOAT_MASTER_KEY_FILE: join(run, 'node2.key') };
    const dir = join(w.root, 'node2');
    ok(await runCli(['node', 'init', '--data-dir', dir, '--no-mnemonic'], { env }));
    assert.ok(!existsSync(join(dir, 'master.key')), 'no master.key beside the vault');
    assert.equal(statSync(env.LIFEBOAT_MASTER_KEY_FILE).mode & 0o777, 0o600);
    await servesAndStops(dir, env);
    const twice = await runCli(['node', 'init', '--data-dir', join(w.root, 'node3'), '--no-mnemonic'], { env });
    assert.match(twice.stderr, /\(master_key_exists\)/, 'a second node does not overwrite the key file');
    assert.ok(!existsSync(join(w.root, 'node3', 'vault.lbv')));
    // a restore makes a new master key too: refused before anything (no service is reached: port 1)
    const keyBefore = readFileSync(env.LIFEBOAT_MASTER_KEY_FILE);
    const pw = join(run, 'backup.password');
    writeFileSync(pw, 'a backup password\n', { mode: 0o600 });
    const restored = await runCli(['node', 'restore', '--backup-server', 'http://127.0.0.1:1', '--account', 'a', '--password-file', pw, '--data-dir', join(w.root, 'node4')], { env });
    assert.match(restored.stderr, /\(master_key_exists\)/, 'a restore does not overwrite the key file');
    assert.deepEqual(readFileSync(env.LIFEBOAT_MASTER_KEY_FILE), keyBefore);
    assert.ok(!existsSync(join(w.root, 'node4')));
    const sealed = await runCli(['node', 'serve', '--data-dir', dir, '--listen', '127.0.0.1:0']);
    assert.equal(sealed.code, 1, sealed.stderr);
    assert.match(sealed.stderr, /^lifeboat: error: the node is sealed: .*master\.key is missing \(sealed\)\nlifeboat: hint: .*`lifeboat node unseal`/m);
  });

  it('simple: node seal refuses a node whose vault key is not split (node_not_split), keeping master.key; node unseal too', async () => {
    const [seal, unseal] = await Promise.all([runCli(['node', 'seal', '--data-dir', w.node]), runCli(['node', 'unseal', '--data-dir', w.node])]);
    assert.equal(seal.code, 1, seal.stderr);
    assert.match(seal.stderr, /\(node_not_split\)\nlifeboat: hint: split it first: `lifeboat primary init --data-dir /);
    assert.match(unseal.stderr, /\(node_not_split\)/);
    assert.ok(existsSync(join(w.node, 'master.key')));
  });

  it('split: recovery init --data-dir NODE_DIR splits the node vault key; seal, refused serve, unseal from holders and from a typed share', async () => {
    const primary = JSON.parse(ok(await runCli(['primary', 'init', '--data-dir', w.node, '--json'])).stdout) as { identity: string };
    const operator = JSON.parse(ok(await runCli(['operator', 'keygen', '--out', join(w.root, 'operator.json'), '--json'])).stdout) as { identity: string };
    for (const name of ['a', 'b']) {
      const dir = join(w.root, `holder-${name}`);
      const h = JSON.parse(ok(await runCli(['holder', 'init', '--data-dir', dir, '--primary', primary.identity, '--operator', operator.identity, '--json'])).stdout) as { fingerprint: string };
      const s = await startCli(['holder', 'serve', '--data-dir', dir, '--listen', '127.0.0.1:0', '--json']);
      w.holders.push(s);
      w.specs.push(`${s.url}#${h.fingerprint}`);
    }
    const ageKey = join(w.root, 'age-key.txt');
    assert.equal(spawnSync('age-keygen', ['-o', ageKey]).status, 0);
    const recipient = spawnSync('age-keygen', ['-y', ageKey], { encoding: 'utf8' }).stdout.trim();
    const oldKey = readFileSync(join(w.node, 'master.key'), 'utf8');
    const shareFile = join(w.root, 'node-share.age');
    ok(await runCli(['recovery', 'init', '--data-dir', w.node, '--holder', w.specs[0]!, '--holder', w.specs[1]!, '--offline-recipient', recipient, '--offline-out', shareFile]));
    w.words = spawnSync('age', ['-d', '-i', ageKey, shareFile], { encoding: 'utf8' }).stdout.trim();
    assert.equal(w.words.split(' ').length, 33);
    assert.ok(existsSync(join(w.node, 'recovery-manifest.json')));
    assert.notEqual(readFileSync(join(w.node, 'master.key'), 'utf8'), oldKey, 'the vault is under a new master key');
    assert.equal(await identityOf(w.node), w.nodeId, 'the node keys came through the re-encryption');
    const again = await runCli(['recovery', 'init', '--data-dir', w.node, '--holder', w.specs[0]!, '--holder', w.specs[1]!, '--offline-recipient', recipient, '--offline-out', `${shareFile}2`]);
    assert.match(again.stderr, /\(vault_exists\)/, 'a split vault is not split again');

    assert.match(ok(await runCli(['node', 'seal', '--data-dir', w.node])).stdout, /node sealed/);
    assert.ok(!existsSync(join(w.node, 'master.key')));
    const sealed = await runCli(['node', 'serve', '--data-dir', w.node, '--listen', '127.0.0.1:0', '--json']);
    assert.equal(sealed.code, 1);
    const doc = JSON.parse(sealed.stdout) as { err_type: string; message: string; hint: string };
    assert.equal(doc.err_type, 'sealed');
    assert.match(doc.message, /^the node is sealed/);
    assert.match(doc.hint, /^run `lifeboat node unseal --data-dir /);

    const fromHolders = JSON.parse(ok(await runCli(['node', 'unseal', '--data-dir', w.node, '--json'])).stdout) as { shares_from: string[] };
    assert.equal(fromHolders.shares_from.length, 2);
    assert.equal(await identityOf(w.node), w.nodeId);
    await servesAndStops(w.node);

    ok(await runCli(['node', 'seal', '--data-dir', w.node]));
    await w.holders[1]!.stop();
    const mixed = ok(await runCli(['node', 'unseal', '--data-dir', w.node, '--typed-shares', '1'], { input: `${w.words}\n` }));
    assert.match(mixed.stdout, /^node unsealed: vault of scheme [0-9a-f]+ opens \(\d+ entries\); shares from .*typed share 1/m);
    await servesAndStops(w.node);
  });
});
