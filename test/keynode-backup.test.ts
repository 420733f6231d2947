/**
 * Node backup and restore with real `lifeboat node serve` processes (a 2-of-3 key, SQLite stores):
 * a backup taken while the node serves; a restore into a fresh store after which a nonce made before
 * the backup can never be used; a database-level restore (a copy of the SQLite file) whose unused
 * nonces `node restore --database` voids, and which a restart alone also makes safe; damaged,
 * truncated, foreign and mismatched backups refused by name with the store unchanged.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { runCli } from '../src/drill/proc.js';
import { clientsOf, type FleetNode, type KeyNodeFleet, serveNode, signAndCheck, startFleet, stopNode, storeFiles } from '../src/drill/keynode-scenarios.js';
import { openEnvelope, parseEnvelope, sealEnvelope } from '../src/crypto/envelope.js';
import { isLifeboatError } from '../src/errors.js';
import { openNodeBackup, restoreNodeBackup } from '../src/keynode/backup.js';
import { aggregate, frostPublicFromJson, parseNonceCommitments, parseSignatureShare, verifySignature } from '../src/keynode/frost/index.js';
import { closeNode, openNode, type OpenedNode } from '../src/keynode/runtime.js';
import { createKey, type KeyRef } from '../src/keynode/sdk.js';
import { openKeyNodeStore } from '../src/keynode/store/index.js';
import { fromHex, utf8 } from '../src/util/bytes.js';

let root = '';
let fleet: KeyNodeFleet;
let node: FleetNode;
const keys: KeyRef[] = [];
const backupFile = () => join(root, 'node-a.lbnb');

/** Round one on signers 0 and 1: the nonce ids and the commitment list round two needs. */
async function roundOne(key: KeyRef): Promise<{ nonceIds: string[]; commitments: unknown[] }> {
  const clients = clientsOf(fleet.primaries, fleet.tokens.client);
  const r = await Promise.all([0, 1].map((i) => clients[i]!.commitments(key.nodes[i]!.keyId)));
  return { nonceIds: r.map((x) => x.nonce_id), commitments: r.map((x) => x.commitments) };
}

/** Round two with the given round one; answers the aggregated signature (checked) or throws the node's error. */
async function roundTwo(key: KeyRef, r1: { nonceIds: string[]; commitments: unknown[] }, text: string): Promise<Uint8Array> {
  const clients = clientsOf(fleet.primaries, fleet.tokens.client);
  const message = utf8.encode(text);
  const shares = await Promise.all([0, 1].map((i) => clients[i]!.signatureShare(key.nodes[i]!.keyId, { nonce_id: r1.nonceIds[i]!, message, commitments: r1.commitments })));
  const pub = frostPublicFromJson(key.public, { curve: key.curve }).public;
  const sig = aggregate(key.curve, pub, r1.commitments.map((c) => parseNonceCommitments(c, key.curve)), message, shares.map((s) => parseSignatureShare(s.signature_share, key.curve)));
  assert.ok(verifySignature(key.curve, sig, message, fromHex(key.groupPublicKey, 'group key')));
  return sig;
}

async function refusedNonce(p: Promise<unknown>): Promise<void> {
  await assert.rejects(p, (err: unknown) => isLifeboatError(err, 'nonce_not_found') && err.status === 409);
}

/** Node a's identity and vault over another store: where damaged backups are restored to. */
async function withNodeOn<T>(storeUrl: string, fn: (n: OpenedNode) => Promise<T>): Promise<T> {
  const n = await openNode(node.dir, { store: storeUrl });
  try {
    return await fn(n);
  } finally {
    await closeNode(n);
  }
}

async function snapshotOf(storeUrl: string): Promise<string> {
  const store = await openKeyNodeStore(storeUrl);
  try {
    return JSON.stringify(await store.exportSnapshot());
  } finally {
    await store.close();
  }
}

/** Decrypts a backup of node a, lets `edit` change its body, and seals it again under node a's backup key. */
async function reseal(bytes: Uint8Array, edit: (body: { keys: Record<string, { b64: string } | unknown>[] }) => void): Promise<Uint8Array> {
  return withNodeOn(`sqlite:${join(root, 'scratch.sqlite')}`, async (n) => {
    const env = parseEnvelope(bytes, { magic: 'LBNB', versions: [1], what: 'node backup' });
    const body = JSON.parse(utf8.decode(openEnvelope(env, n.secrets.backupKey))) as { keys: Record<string, unknown>[] };
    edit(body);
    return sealEnvelope({ magic: 'LBNB', version: 1, header: env.header, key: n.secrets.backupKey, plaintext: utf8.encode(JSON.stringify(body)) });
  });
}

describe('key node backup and restore (real processes, 2-of-3)', { timeout: 200_000 }, () => {
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'lifeboat-node-backup-'));
    fleet = await startFleet(root, { failovers: false });
    node = fleet.primaries[0]!;
    const clients = clientsOf(fleet.primaries, fleet.tokens.client);
    keys.push(await createKey(clients, { threshold: 2, curve: 'ed25519' }));
    keys.push(await createKey(clients, { threshold: 2, curve: 'ed25519' }));
  });
  after(async () => {
    await Promise.all(fleet?.servers.map((s) => s.stop('SIGKILL')) ?? []);
    rmSync(root, { recursive: true, force: true });
  });

  it('backup while serving; restore into a fresh store: the pre-backup nonce is void, signing goes on under the same group key', async () => {
    const [key] = keys;
    const n1 = await roundOne(key!);
    // Signing goes on while the backup reads its snapshot.
    const signing = Promise.all([1, 2, 3, 4].map((i) => signAndCheck(key!, clientsOf(fleet.primaries, fleet.tokens.client), `during the backup ${i}`)));
    const b = await runCli(['node', 'backup', '--out', backupFile(), '--data-dir', node.dir, '--json']);
    await signing;
    assert.equal(b.code, 0, b.stderr);
    assert.equal((JSON.parse(b.stdout) as { keys: number }).keys, 2);
    assert.equal(readFileSync(backupFile()).subarray(0, 4).toString(), 'LBNB');
    await signAndCheck(key!, clientsOf(fleet.primaries, fleet.tokens.client), 'after the backup');

    await stopNode(node, 'SIGKILL');
    for (const f of storeFiles(node)) rmSync(f, { force: true });
    const r = await runCli(['node', 'restore', '--in', backupFile(), '--data-dir', node.dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /lifeboat: checked 2\/2 shares against their verifying shares/);
    assert.match(r.stdout, /restored 2 keys \(backup\); every share matches its verifying share; nonce epoch is now 1/);
    await serveNode(fleet, node);

    await refusedNonce(roundTwo(key!, n1, 'with the pre-backup nonce'));
    // The restored API keys work, and both keys sign under their group keys.
    for (const k of keys) await signAndCheck(k, clientsOf(fleet.primaries, fleet.tokens.client), 'after the restore');
  });

  it('database-level restore: a copy holding an unused nonce that was used after the copy; `node restore --database` voids it', async () => {
    const [key] = keys;
    const n1 = await roundOne(key!);
    // The copy, taken while the node serves: checkpoint the WAL into the file, then copy the file.
    const copy = join(root, 'copy.sqlite');
    const [dbFile, walFile] = storeFiles(node);
    const db = new Database(dbFile!);
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    assert.ok(!existsSync(walFile!) || statSync(walFile!).size === 0, 'the WAL was checkpointed');
    copyFileSync(dbFile!, copy);
    await roundTwo(key!, n1, 'N1 used after the copy was taken'); // N1 is spent now...
    await stopNode(node);

    const putBack = () => {
      for (const f of storeFiles(node)) rmSync(f, { force: true });
      copyFileSync(copy, dbFile!);
    };
    putBack(); // ...and back, unused, in the restored copy
    assert.equal(await openKeyNodeStore(`sqlite:${dbFile}`).then(async (s) => [await s.countNonces(), await s.close()][0]), 1);
    const r = await runCli(['node', 'restore', '--database', '--json', '--data-dir', node.dir]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { mode: string; keys: number; nonces_deleted: number; epoch: number };
    assert.deepEqual([out.mode, out.keys, out.nonces_deleted], ['database', 2, 1]);
    assert.ok(out.epoch >= 2);
    await serveNode(fleet, node);
    await refusedNonce(roundTwo(key!, n1, 'N1 again after restore --database'));
    await signAndCheck(key!, clientsOf(fleet.primaries, fleet.tokens.client), 'after the database restore');

    // Forgetting `restore --database` is safe too: the node deletes unused nonces before it serves.
    await stopNode(node);
    putBack();
    await serveNode(fleet, node);
    await refusedNonce(roundTwo(key!, n1, 'N1 again after a bare restart'));
    await signAndCheck(key!, clientsOf(fleet.primaries, fleet.tokens.client), 'after the bare restart');
  });

  it('damaged, truncated, foreign or other nodes’ backups: a clear typed error and the store unchanged', async () => {
    const good = readFileSync(backupFile());
    const flipped = new Uint8Array(good);
    flipped[flipped.length - 40]! ^= 0x01;
    const newer = new Uint8Array(good);
    newer[4] = 2;
    const other = join(root, 'node-b.lbnb');
    const b = await runCli(['node', 'backup', '--out', other, '--data-dir', fleet.primaries[1]!.dir, '--json']);
    assert.equal(b.code, 0, b.stderr);
    const cases: [string, Uint8Array, string, RegExp][] = [
      ['flipped', flipped, 'decryption_failed', /node backup does not decrypt: wrong key or tampered data/],
      ['truncated', good.subarray(0, Math.floor(good.length / 2)), 'decryption_failed', /does not decrypt/],
      ['header-only', good.subarray(0, 30), 'truncated', /node backup is truncated/],
      ['other-node', readFileSync(other), 'backup_of_another_node', /this backup belongs to node [0-9a-f:]+, not to this node/],
      ['not-a-backup', readFileSync(join(node.dir, 'vault.lbv')), 'bad_magic', /not a node backup \(bad magic\)/],
      ['newer', newer, 'unsupported_version', /node backup version 2 is not supported/],
    ];
    const empty = `sqlite:${join(root, 'empty.sqlite')}`;
    const before = await snapshotOf(empty);
    await withNodeOn(empty, async (n) => {
      for (const [, bytes, code] of cases) {
        assert.throws(() => openNodeBackup(bytes, n.secrets), (err: unknown) => isLifeboatError(err, code), code);
      }
    });
    const results = await Promise.all(
      cases.map(async ([name, bytes]) => {
        const file = join(root, `${name}.lbnb`);
        writeFileSync(file, bytes);
        return runCli(['node', 'restore', '--in', file, '--data-dir', node.dir, '--store', empty]);
      }),
    );
    results.forEach((r, i) => {
      // a backup of another node is a refusal for safety (exit 3); a damaged file is not (docs/cli.md)
      assert.equal(r.code, cases[i]![2] === 'backup_of_another_node' ? 3 : 1, cases[i]![0]);
      assert.match(r.stderr, cases[i]![3]);
      assert.match(r.stderr, new RegExp(`\\(${cases[i]![2]}\\)\n`));
    });
    assert.equal(await snapshotOf(empty), before);
    // Into the node's own, non-empty store: refused while it serves, nothing changed.
    const r = await runCli(['node', 'restore', '--in', backupFile(), '--data-dir', node.dir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /lifeboat: error: the store is not empty \(store_not_empty\)\nlifeboat: hint: restore into a fresh store/);
    await signAndCheck(keys[1]!, clientsOf(fleet.primaries, fleet.tokens.client), 'the serving node is untouched');
  });

  it('a share that does not match its verifying share (swapped between two keys): share_mismatch, nothing imported', async () => {
    const good = readFileSync(backupFile());
    const swap = (field: string) => (body: { keys: Record<string, unknown>[] }) => {
      const [a, b] = body.keys;
      [a![field], b![field]] = [b![field], a![field]];
    };
    const swappedShares = await reseal(good, swap('encryptedShare'));
    const swappedPublic = await reseal(good, (body) => {
      swap('publicPackage')(body);
      swap('groupPublicKey')(body);
    });
    const swappedGroupKey = await reseal(good, swap('groupPublicKey'));
    const otherThreshold = await reseal(good, (body) => void (body.keys[0]!.threshold = 3));
    const empty = `sqlite:${join(root, 'empty-2.sqlite')}`;
    const before = await snapshotOf(empty);
    await withNodeOn(empty, async (n) => {
      for (const bytes of [swappedShares, swappedPublic, swappedGroupKey, otherThreshold]) {
        await assert.rejects(restoreNodeBackup(n.store, n.secrets, openNodeBackup(bytes, n.secrets)), (err: unknown) => isLifeboatError(err, 'share_mismatch'));
      }
    });
    const file = join(root, 'swapped.lbnb');
    writeFileSync(file, swappedShares);
    const r = await runCli(['node', 'restore', '--in', file, '--data-dir', node.dir, '--store', empty]);
    assert.equal(r.code, 3, 'a share that does not match is a refusal for safety');
    assert.match(r.stderr, /lifeboat: error: key key_[0-9a-f]+: the share does not match its verifying share .*\(share_mismatch\)/);
    assert.match(r.stderr, /lifeboat: hint: nothing was restored/);
    assert.equal(await snapshotOf(empty), before);
  });
});
