/**
 * The signing path's once-per-key work and its durability (issue 17, point 4), on in-process nodes
 * over real SQLite files: each key's public package is parsed once and reused only for the very sealed
 * bytes it came from (a key replaced under its id signs with the new package), the cache is bounded,
 * and a signature share leaves a node only once the nonce's consumption is synced to disk.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { isLifeboatError } from '../src/errors.js';
import { openKeyShare, sealKeyShare, verifySignature } from '../src/keynode/frost/index.js';
import { OpenedKeyCache } from '../src/keynode/opened-keys.js';
import { Precompiled } from '../src/keynode/store/compiled.js';
import { openKeyNodeStore } from '../src/keynode/store/index.js';
import type { Db } from '../src/keynode/store/queries.js';
import { createKey, type KeyRef, sign } from '../src/keynode/sdk.js';
import { fromHex, utf8 } from '../src/util/bytes.js';
import { type NodeSet, startInProcessNodes } from './helpers/keynode.js';

describe('key node signing: once-per-key work and the durable nonce', () => {
  let s: NodeSet;
  let a: KeyRef;
  let b: KeyRef;
  before(async () => {
    s = await startInProcessNodes(3);
    a = await createKey(s.clients(), { threshold: 2, curve: 'secp256k1' });
    b = await createKey(s.clients(), { threshold: 2, curve: 'secp256k1' });
  });
  after(() => s.close());

  const verifies = (key: KeyRef, sig: Uint8Array, msg: string) => verifySignature(key.curve, sig, utf8.encode(msg), fromHex(key.groupPublicKey, 'group key'));

  it('a key is opened once per sealed share: the same parsed package on every round, a fresh one for other bytes, and never more keys than the bound', async () => {
    const node = s.nodes[0]!;
    const [recA, recB] = [await node.store.getKey(a.nodes[0]!.keyId), await node.store.getKey(b.nodes[0]!.keyId)];
    const cache = new OpenedKeyCache(1);
    const first = cache.open(node.secrets.storageKey, recA!);
    const again = cache.open(node.secrets.storageKey, { ...recA!, encryptedShare: recA!.encryptedShare.slice() });
    assert.equal(again.public, first.public, 'the same bytes: the package parsed the first time');
    assert.deepStrictEqual(again.share, first.share);
    // The same key id with other sealed bytes (the share sealed anew): parsed again, not taken from the entry.
    const resealed = { ...recA!, encryptedShare: sealKeyShare(node.secrets.storageKey, first) };
    assert.notEqual(cache.open(node.secrets.storageKey, resealed).public, first.public);
    assert.equal(cache.open(node.secrets.storageKey, recB!).keyId, recB!.keyId);
    assert.equal(cache.size, 1, 'bounded: the least recently used key left');
    assert.notEqual(cache.open(node.secrets.storageKey, resealed).public, first.public);
    // The node's own cache after signing: one entry per key it signed with, whatever the number of rounds.
    for (let i = 0; i < 3; i++) assert.ok(verifies(a, await sign(a, s.clients(), utf8.encode(`m${i}`)), `m${i}`));
    assert.equal(node.service.openedKeys.size, 1);
  });

  it('a key replaced under its id (deleted, another share stored with that id) signs with the new package, not the cached one', async () => {
    assert.ok(verifies(a, await sign(a, s.clients(), utf8.encode('before')), 'before'), 'the cache holds key a');
    // On the two signing nodes, key a's id now holds key b's share.
    for (let i = 0; i < 2; i++) {
      const node = s.nodes[i]!;
      const recB = (await node.store.getKey(b.nodes[i]!.keyId))!;
      const shareB = openKeyShare(node.secrets.storageKey, recB.encryptedShare, { keyId: recB.keyId });
      const idA = a.nodes[i]!.keyId;
      assert.equal(await node.store.deleteKey(idA), true);
      await node.store.insertKey({ ...recB, keyId: idA, encryptedShare: sealKeyShare(node.secrets.storageKey, { ...shareB, keyId: idA }) });
    }
    const bUnderA: KeyRef = { ...b, nodes: b.nodes.map((n, i) => ({ ...n, keyId: a.nodes[i]!.keyId })) };
    const sig = await sign(bUnderA, s.clients(), utf8.encode('after'));
    assert.ok(verifies(b, sig, 'after'), 'signed under key b');
    assert.equal(verifies(a, sig, 'after'), false);
  });

  it('a signature share leaves only once the nonce consumption is synced: a write-ahead log that cannot be synced is 503 store_sync_failed, no share, the nonce spent', async () => {
    const [c0, c2] = [s.client(0), s.client(2)];
    const [r0, r2] = await Promise.all([c0.commitments(a.nodes[0]!.keyId), c2.commitments(a.nodes[2]!.keyId)]);
    const node = s.nodes[2]!;
    const nonces = await node.store.countNonces();
    // The file SQLite writes its commits to goes from under the open database: the sync cannot find it.
    rmSync(join(node.dir, 'store.sqlite-wal'));
    await assert.rejects(c2.signatureShare(a.nodes[2]!.keyId, { nonce_id: r2.nonce_id, message: utf8.encode('m'), commitments: [r0.commitments, r2.commitments] }), (err: unknown) => {
      assert.ok(isLifeboatError(err, 'store_sync_failed'), String(err));
      assert.equal(err.status, 503);
      return true;
    });
    assert.equal(await node.store.countNonces(), nonces - 1, 'the nonce is consumed all the same');
  });
});

describe('precompiled store queries', () => {
  it('run with each call\'s values as bound parameters, on the store or a transaction, and refuse a build that drops a value', async () => {
    const store = await openKeyNodeStore('sqlite::memory:');
    try {
      await store.setMeta('a', 'one');
      await store.setMeta("b' or '1'='1", 'two');
      const db = (store as unknown as { db: Db }).db;
      const q = new Precompiled(['key'], (d, v) => d.selectFrom('meta').select('value').where('key', '=', v.key));
      const value = async (key: string, on: Db = db) => (await q.run(on, { key })).rows.map((r) => r.value);
      assert.deepStrictEqual(await value('a'), ['one']);
      assert.deepStrictEqual(await value("b' or '1'='1"), ['two'], 'a value is a parameter, never SQL');
      assert.deepStrictEqual(await value('c'), []);
      assert.deepStrictEqual(await db.transaction().execute((tx) => value('a', tx)), ['one']);
      const broken = new Precompiled(['key', 'other'], (d, v) => d.selectFrom('meta').select('value').where('key', '=', v.key));
      await assert.rejects(broken.run(db, { key: 'a', other: 'x' }), (err: unknown) => isLifeboatError(err, 'internal_error'));
    } finally {
      await store.close();
    }
  });
});
