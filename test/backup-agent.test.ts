/**
 * The backup agent in real key nodes (in process, real SQLite stores and vaults) streaming to a real
 * backup service on a loopback port; restore from the service with the password only.
 */
import { strict as assert } from 'node:assert';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import { restoreFromService } from '../src/backup/node-link.js';
import { createKey, sign } from '../src/keynode/sdk.js';
import { openNode } from '../src/keynode/runtime.js';
import { fromHex, utf8 } from '../src/util/bytes.js';
import { type BackupFixture, enableBackup, eventually, FAST, openAsNode, PASSWORD, reopenNode, startBackupFixture } from './helpers/backup.js';
import { type NodeSet, startInProcessNodes, tempDir } from './helpers/keynode.js';

let fx: BackupFixture;
let set: NodeSet;

before(async () => {
  fx = await startBackupFixture();
  set = await startInProcessNodes(3);
  for (let i = 0; i < 3; i++) await enableBackup(set, i, fx, { wait_ms: 5000 });
});

after(async () => {
  await set.close();
  await fx.close();
});

function code(err: unknown): string {
  return (err as { code?: string }).code ?? String(err);
}

test('a new key is reported active only once every node’s entry is acknowledged, then signs', async () => {
  const key = await createKey(set.clients(), { threshold: 2, curve: 'ed25519' });
  for (const n of set.nodes) {
    const rec = await n.store.getKey(key.nodes[0]!.keyId);
    assert.equal(rec?.status, 'active');
    const st = await n.backup!.status();
    assert.equal(st.unacked + st.unsealed, 0, 'nothing left in the outbox');
    assert.ok(st.ackedSeq >= 2, 'secrets + api keys + key entries acknowledged');
    const head = await fx.server.store.getStream(`acct-${n.name}`, st.stream);
    assert.equal(head?.headSeq, st.ackedSeq);
  }
  const sig = await sign(key, set.clients(), utf8.encode('hello'));
  assert.ok(ed25519.verify(sig, utf8.encode('hello'), fromHex(key.groupPublicKey, 'group key')));
});

test('service down: the key is pending_backup and refuses to sign; it is backed up and signs once the service is back', async () => {
  // A short wait so the DKG answers while the service is down.
  for (let i = 0; i < 3; i++) await enableWait(i, 300);
  await fx.stop();
  const key = await createKey(set.clients(), { threshold: 2, curve: 'secp256k1' });
  for (const n of set.nodes) assert.equal((await n.store.getKey(key.nodes[0]!.keyId))?.status, 'pending_backup');
  await assert.rejects(sign(key, set.clients(), utf8.encode('too early')), (err) => code(err) === 'key_pending_backup');
  const st = await set.nodes[0]!.backup!.status();
  assert.ok(st.unacked + st.unsealed > 0, 'the change waits in the outbox');
  assert.equal(st.pendingKeys, 1);

  // A crash while the service is down loses nothing: the outbox is in the store.
  await reopenNode(set, 0);
  await fx.restart();
  for (const n of set.nodes) n.backup!.kick();
  for (const n of set.nodes) await eventually(async () => (await n.store.getKey(key.nodes[0]!.keyId))?.status === 'active', 20_000, `${n.name} activates the key`);
  await sign(key, set.clients(), utf8.encode('now it signs'));
});

async function enableWait(i: number, waitMs: number): Promise<void> {
  const { loadNodeConfig, saveNodeConfig } = await import('../src/keynode/config.js');
  const n = set.nodes[i]!;
  const cfg = loadNodeConfig(n.paths);
  saveNodeConfig(n.paths, { ...cfg, backup: { ...cfg.backup!, wait_ms: waitMs } });
  await reopenNode(set, i);
}

test('the node is lost: restore from the service with the password alone, and every acknowledged key signs again', async () => {
  const keys = [await createKey(set.clients(), { threshold: 2, curve: 'ed25519' }), await createKey(set.clients(), { threshold: 2, curve: 'bip340' })];
  // A compaction on node 0, then more changes after it: the restore reads both.
  await set.nodes[0]!.backup!.compact();
  keys.push(await createKey(set.clients(), { threshold: 2, curve: 'ed25519' }));
  const lost = set.nodes[0]!;
  await eventually(async () => (await lost.backup!.status()).unacked === 0);
  const keyCount = await lost.store.countKeys();
  const fingerprint = lost.identity.fingerprint;

  // The machine is gone with its disk.
  await lost.app.close();
  await lost.backup!.stop();
  await lost.failover.stop();
  await lost.store.close();
  rmSync(lost.dir, { recursive: true, force: true });

  const dir = join(tempDir(), 'restored');
  await assert.rejects(restoreFromService({ server: fx.url, account: `acct-${lost.name}`, password: 'wrong password', dir, tuning: FAST }), (err) => code(err) === 'login_failed');
  await assert.rejects(restoreFromService({ server: fx.url, account: 'nobody', password: PASSWORD, dir, tuning: FAST }), (err) => code(err) === 'login_failed');
  const phases = new Set<string>();
  const r = await restoreFromService({ server: fx.url, account: `acct-${lost.name}`, password: PASSWORD, dir, tuning: FAST, progress: (p) => phases.add(p) });
  assert.equal(r.fingerprint, fingerprint, 'the same node identity');
  assert.equal(r.keys, keyCount);
  assert.ok(r.compactionSeq > 0 && r.entries > 0, 'a compaction and entries after it');
  assert.ok(phases.has('compaction') && phases.has('entries') && phases.has('verify'));

  // A restore into a directory that holds a node is refused and changes nothing.
  await assert.rejects(restoreFromService({ server: fx.url, account: `acct-${lost.name}`, password: PASSWORD, dir, tuning: FAST }), (err) => code(err) === 'node_exists');

  const restored = await openNode(dir);
  try {
    assert.equal(await restored.store.countNonces(), 0);
    assert.equal(Number(await restored.store.getMeta('nonce_epoch')), 1);
  } finally {
    await restored.store.close();
  }
  // Serve it in place of the lost node, with its old API keys.
  const back = await openAsNode(set, 0, dir);
  assert.equal(back.identity.fingerprint, fingerprint);
  for (const k of keys) {
    const msg = utf8.encode(`after restore ${k.curve}`);
    await sign(k, set.clients(), msg, { signers: [0, 1] });
  }
  // It streams on: the next key is backed up from the restored head.
  const next = await createKey(set.clients(), { threshold: 2, curve: 'ed25519' });
  // Active once its entry is acknowledged (the DKG answer waits for that only up to wait_ms).
  await eventually(async () => (await back.store.getKey(next.nodes[0]!.keyId))?.status === 'active', 30_000, 'the next key acknowledged');
});

test('a service rolled back to an old copy of its database is detected by the agent (backup_rollback_detected)', async () => {
  const { copyFileSync, existsSync, rmSync: rm } = await import('node:fs');
  const db = join(fx.dir, 'backup.sqlite');
  await fx.stop();
  const copy = `${db}.old`;
  copyFileSync(db, copy);
  await fx.restart();
  const created = await createKey(set.clients(), { threshold: 2, curve: 'ed25519' });
  // The assertion below needs this key's entry acknowledged: wait for that, not for the DKG answer.
  await eventually(async () => (await set.nodes[1]!.store.getKey(created.nodes[1]!.keyId))?.status === 'active', 30_000, 'the key acknowledged on node 2');
  const acked = (await set.nodes[1]!.backup!.status()).ackedSeq;
  await fx.stop();
  for (const x of ['-wal', '-shm']) if (existsSync(`${db}${x}`)) rm(`${db}${x}`);
  copyFileSync(copy, db);
  await fx.restart();
  const node = await reopenNode(set, 1);
  // The error is recorded just after the flag is set: wait on what the assertions read, both of them.
  await eventually(
    async () => {
      const s = await node.backup!.status();
      return s.rollbackDetected && (s.lastError ?? '').startsWith('backup_rollback_detected');
    },
    30_000,
    'rollback detected and reported',
  );
  const st = await node.backup!.status();
  assert.match(st.lastError ?? '', /^backup_rollback_detected: .*up to entry \d+, but entry \d+ was acknowledged/);
  assert.ok(acked > ((await fx.server.store.getStream(`acct-${node.name}`, st.stream))?.headSeq ?? 0));
  // `node status` runs in another process: it reads what the serving agent recorded in the store.
  const { createBackupAgent } = await import('../src/backup/node-link.js');
  const elsewhere = await createBackupAgent(node.store, node.secrets, node.config.backup!).status();
  assert.equal(elsewhere.rollbackDetected, true);
  assert.match(elsewhere.lastError ?? '', /^backup_rollback_detected/);

  // The way out the hint names: a new stream from the node's whole state.
  const { restartBackupStream } = await import('../src/backup/node-link.js');
  await node.backup!.stop();
  const r = await restartBackupStream(node, 'fresh-stream');
  assert.ok(r.queued >= 1 + (await node.store.countKeys()));
  const again = await reopenNode(set, 1);
  await eventually(async () => {
    const s = await again.backup!.status();
    return s.stream === 'fresh-stream' && s.unacked + s.unsealed === 0 && s.ackedSeq === r.queued && !s.rollbackDetected;
  }, 30_000, 'the new stream acknowledged');
  assert.equal((await fx.server.store.getStream(`acct-${again.name}`, 'fresh-stream'))?.headSeq, r.queued);
});

test('the node keys never reach the store in plaintext: not in the outbox, not in the database or WAL files', async () => {
  const { readFileSync, existsSync: exists } = await import('node:fs');
  for (const n of set.nodes) {
    // Every node's stream began with its keys (set up by backup-setup) and they were sealed since.
    const files = ['store.sqlite', 'store.sqlite-wal'].map((f) => join(n.dir, f)).filter((f) => exists(f));
    assert.ok(files.length > 0);
    for (const secret of [n.secrets.storageKey, n.secrets.exportKey, n.secrets.wrapping.secretKey, n.secrets.identity.signing.secretKey]) {
      for (const f of files) {
        const bytes = Buffer.from(readFileSync(f));
        assert.equal(bytes.indexOf(Buffer.from(secret)), -1, `a node key in ${f}`);
        assert.equal(bytes.indexOf(Buffer.from(secret).toString('base64')), -1, `a node key (base64) in ${f}`);
      }
    }
  }
});
