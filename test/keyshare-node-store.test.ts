/**
 * The key node store's key-share publication queue and durable channels, against SQLite and a real
 * PostgreSQL: a key insert queues (key id, epoch) in its own transaction only while keyshare_journal is
 * on; the first entry stored is the one kept; a channel's holding activates a pending key only when every
 * required channel holds it at the key's current epoch; epochs round-trip (absent means 1).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { randomBytes } from '../src/crypto/random.js';
import { KEYSHARE_JOURNAL_META, type KeyNodeStore, type KeyRecord, openKeyNodeStore } from '../src/keynode/store/index.js';
import { postgresHarness, sqliteHarness, type StoreHarness } from './helpers/store-harness.js';

let seq = 0;
function makeKey(over: Partial<KeyRecord> = {}): KeyRecord {
  return {
    keyId: `key_ks${(++seq).toString().padStart(4, '0')}${Math.random().toString(36).slice(2, 8)}`,
    curve: 'ed25519',
    threshold: 2,
    maxSigners: 3,
    identifier: '01'.padEnd(64, '0'),
    groupPublicKey: randomBytes(32),
    publicPackage: randomBytes(100),
    encryptedShare: randomBytes(80),
    status: 'pending_backup',
    origin: 'dkg',
    createdAt: Date.now(),
    tenant: 'default',
    ...over,
  };
}

async function withStore<T>(url: string, fn: (s: KeyNodeStore) => Promise<T>): Promise<T> {
  const s = await openKeyNodeStore(url);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

for (const h of [sqliteHarness('lifeboat-ks-store-', 'node.db'), postgresHarness()] as StoreHarness[]) {
  describe(`keyshare queue and durable channels: ${h.kind}`, { skip: h.skip }, () => {
    before(() => h.setup());
    after(() => h.teardown());

    it('a key insert queues its publication in its transaction only while keyshare_journal is on; the first entry stored is kept', async () => {
      await withStore(await h.fresh(), async (s) => {
        const before = makeKey();
        await s.insertKey(before);
        assert.deepEqual(await s.listKeyshareOutbox(10), [], 'journal off: nothing queued');
        await s.setMeta(KEYSHARE_JOURNAL_META, 'on');
        const k = makeKey({ epoch: 3 });
        await s.insertKey(k);
        const rows = await s.listKeyshareOutbox(10);
        assert.deepEqual(rows.map((r) => [r.keyId, r.epoch, r.entry]), [[k.keyId, 3, null]]);
        assert.equal((await s.getKey(k.keyId))!.epoch, 3);
        assert.equal((await s.getKey(before.keyId))!.epoch, undefined, 'epoch 1 reads as absent, as before epochs');
        // a failed insert (key_exists) queues nothing
        await assert.rejects(s.insertKey({ ...k, epoch: 4 }), { code: 'key_exists' });
        assert.equal((await s.listKeyshareOutbox(10)).length, 1);
        // a rolled-back transaction queues nothing either
        const gone = makeKey();
        await assert.rejects(
          s.transaction(async (tx) => {
            await tx.insertKey(gone);
            throw new Error('roll back');
          }),
        );
        assert.equal((await s.listKeyshareOutbox(10)).length, 1);
        assert.equal(await s.enqueueKeyshare(before.keyId, 1, Date.now()), true);
        assert.equal(await s.enqueueKeyshare(before.keyId, 1, Date.now()), false, 'queued once');
        const first = randomBytes(50);
        assert.deepEqual(await s.setKeyshareEntry(k.keyId, 3, first), first);
        assert.deepEqual(await s.setKeyshareEntry(k.keyId, 3, randomBytes(50)), first, 'a second seal does not replace the bytes that may have been sent');
        assert.deepEqual(await s.countKeyshareOutbox(), { unsealed: 1, sealed: 1 });
        await s.recordKeysharePublication({ keyId: k.keyId, epoch: 3, log: 'http://log.test', index: 7, checkpointSize: 9, proof: '{"index":7}', publishedAt: 1 });
        assert.deepEqual((await s.listKeysharePublications(k.keyId)).map((p) => [p.log, p.index, p.checkpointSize]), [['http://log.test', 7, 9]]);
        assert.equal(await s.deleteKeyshareOutbox(k.keyId, 3), true);
        // deleting the key takes its queue rows and publications with it
        assert.equal(await s.deleteKey(before.keyId), true);
        assert.deepEqual(await s.listKeyshareOutbox(10), []);
        await assert.rejects(s.recordKeysharePublication({ keyId: k.keyId, epoch: 3, log: 'http://log.test', index: 1, checkpointSize: 2, proof: 'not json', publishedAt: 1 }), { code: 'invalid_input' });
      });
    });

    it('a key activates when every required channel holds it at its current epoch, and not before', async () => {
      await withStore(await h.fresh(), async (s) => {
        const k = makeKey({ epoch: 2 });
        await s.insertKey(k);
        const req = ['backup', 'log'] as const;
        assert.deepEqual(await s.recordKeyChannel(k.keyId, 'log', 2, '{"index":5,"checkpoint_size":6}', req, Date.now()), { activated: false });
        assert.equal((await s.getKey(k.keyId))!.status, 'pending_backup', 'backup does not hold it yet');
        assert.deepEqual(await s.recordKeyChannel(k.keyId, 'backup', 1, '{}', req, Date.now()), { activated: false }, 'a holding of an older epoch does not count');
        assert.equal((await s.getKey(k.keyId))!.status, 'pending_backup');
        assert.deepEqual(await s.recordKeyChannel(k.keyId, 'backup', 2, '{}', req, Date.now()), { activated: true });
        assert.equal((await s.getKey(k.keyId))!.status, 'active');
        assert.deepEqual((await s.listKeyChannels(k.keyId)).map((c) => [c.channel, c.epoch]), [['backup', 2], ['log', 2]]);
        assert.deepEqual(await s.countKeyChannels(), { backup: 1, log: 1, ers: 0 });
        assert.deepEqual(await s.recordKeyChannel('key_absent', 'log', 1, '{}', req, Date.now()), { activated: false }, 'a key that is gone changes nothing');
        await assert.rejects(s.recordKeyChannel(k.keyId, 'tape' as 'log', 2, '{}', req, Date.now()), { code: 'invalid_input' });
      });
    });

    it('recordKeyChannels marks many keys at once (a restore), replacing what a channel held, activating none', async () => {
      await withStore(await h.fresh(), async (s) => {
        const keys = Array.from({ length: 1201 }, (_, i) => makeKey({ epoch: 1 + (i % 3) }));
        for (const k of keys) await s.insertKey(k);
        await s.recordKeyChannel(keys[0]!.keyId, 'backup', 1, '{"seq":1}', [], 1);
        await s.transaction((tx) => tx.recordKeyChannels('backup', keys.map((k) => ({ keyId: k.keyId, epoch: k.epoch! })), '{"seq":9}', 2));
        assert.deepEqual(await s.countKeyChannels(), { backup: 1201, log: 0, ers: 0 }, 'more than one statement of rows');
        assert.deepEqual((await s.listKeyChannels(keys[0]!.keyId)).map((c) => [c.channel, c.epoch, c.detail, c.recordedAt]), [['backup', 1, '{"seq":9}', 2]], 'replaced');
        assert.equal((await s.getKey(keys[1]!.keyId))!.status, 'pending_backup', 'nothing activated');
        await assert.rejects(s.recordKeyChannels('backup', [{ keyId: keys[1]!.keyId, epoch: 0 }], '{}', 3), { code: 'invalid_input' });
      });
    });

    it('recordChannelForAllKeys marks every key at its own epoch in one statement (a restore), replacing, activating none', async () => {
      await withStore(await h.fresh(), async (s) => {
        const keys = Array.from({ length: 1201 }, (_, i) => makeKey({ epoch: 1 + (i % 3) }));
        for (const k of keys) await s.insertKey(k);
        await s.recordKeyChannel(keys[0]!.keyId, 'backup', 9, '{"seq":1}', [], 1);
        await s.recordKeyChannel(keys[0]!.keyId, 'log', 1, '{"index":1}', [], 1);
        await s.transaction((tx) => tx.recordChannelForAllKeys('backup', '{"seq":9}', 2));
        assert.deepEqual(await s.countKeyChannels(), { backup: 1201, log: 1, ers: 0 });
        assert.deepEqual((await s.listKeyChannels(keys[0]!.keyId)).map((c) => [c.channel, c.epoch, c.detail, c.recordedAt]), [['backup', 1, '{"seq":9}', 2], ['log', 1, '{"index":1}', 1]], 'replaced, at the key epoch; the other channel kept');
        assert.deepEqual((await s.listKeyChannels(keys[2]!.keyId)).map((c) => [c.channel, c.epoch]), [['backup', 3]]);
        assert.equal((await s.getKey(keys[1]!.keyId))!.status, 'pending_backup', 'nothing activated');
        await assert.rejects(s.recordChannelForAllKeys('tape' as 'log', '{}', 3), { code: 'invalid_input' });
        await assert.rejects(s.recordChannelForAllKeys('backup', 'not json', 3), { code: 'invalid_input' });
        assert.deepEqual((await s.listKeyChannels(keys[0]!.keyId)).map((c) => c.recordedAt), [2, 1], 'a refused call changes nothing');
      });
    });

    it('a coverage page is one query: public columns, the group key in hex, the channels at the current epoch, paged by key id', async () => {
      await withStore(await h.fresh(), async (s) => {
        const [a, b, c] = [makeKey({ keyId: 'key_cov_a', epoch: 2 }), makeKey({ keyId: 'key_cov_b' }), makeKey({ keyId: 'key_cov_c' })];
        for (const k of [c, a, b]) await s.insertKey(k);
        const req = ['backup'] as const;
        await s.recordKeyChannel(a.keyId, 'backup', 1, '{"seq":3}', req, Date.now());
        await s.recordKeyChannel(a.keyId, 'log', 2, '{"index":5,"checkpoint_size":6}', req, Date.now());
        await s.recordKeyChannel(b.keyId, 'log', 1, '{"index":7}', req, Date.now());
        await s.recordKeyChannel(b.keyId, 'backup', 1, '{"seq":9}', req, Date.now());
        const first = await s.listCoverageKeys(undefined, 2);
        assert.deepEqual(
          first.map((r) => [r.keyId, r.epoch, r.groupPublicKey, r.channels]),
          [
            [a.keyId, 2, Buffer.from(a.groupPublicKey).toString('hex'), [{ channel: 'log', detail: '{"index":5,"checkpoint_size":6}' }]],
            [b.keyId, 1, Buffer.from(b.groupPublicKey).toString('hex'), [{ channel: 'backup', detail: '{"seq":9}' }, { channel: 'log', detail: '{"index":7}' }]],
          ],
          'two keys, not two rows: the limit counts keys, and the backup holding of epoch 1 does not count for a key at epoch 2',
        );
        assert.deepEqual(Object.keys(first[0]!).sort(), ['channels', 'createdAt', 'curve', 'epoch', 'groupPublicKey', 'identifier', 'keyId', 'maxSigners', 'status', 'threshold']);
        assert.deepEqual((await s.listCoverageKeys(b.keyId, 2)).map((r) => [r.keyId, r.channels.length, r.threshold, r.maxSigners, r.status]), [[c.keyId, 0, 2, 3, 'pending_backup']]);
        await assert.rejects(s.listCoverageKeys(undefined, 0), { code: 'invalid_input' });
      });
    });
  });
}
