/**
 * The streamed restore's importer (src/keynode/restore-import.ts) on a real SQLite file and a real
 * PostgreSQL database: keys in batches, checked (on worker threads or this one) while earlier batches
 * are written, changes applied on top, one commit with the nonce epoch advanced; a bad share in the
 * middle of a later batch, a repeated key id, an abort: each leaves the store empty, never half a
 * node; back-pressure keeps the batches in flight at the bound. Then the check threads' pool: records
 * packed into one buffer each part, a worker given one part at a time however many are queued.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { randomBytes } from '../src/crypto/random.js';
import { LifeboatError } from '../src/errors.js';
import type { FrostCurve } from '../src/keynode/frost/index.js';
import { KeyImporter } from '../src/keynode/restore-import.js';
import { packCheckRecords, unpackCheckRecords } from '../src/keynode/restore-pack.js';
import { startVerifyPool, workerLoader } from '../src/keynode/restore-workers.js';
import { type ApiKeyRecord, type KeyNodeStore, type KeyRecord, openKeyNodeStore, type StoreImport } from '../src/keynode/store/index.js';
import { countRows, postgresHarness, type StoreHarness } from './helpers/store-harness.js';
import { trackedTempDir } from './helpers/tmp.js';
import { rejectsWith } from './helpers/errors.js';
import { dealt, row, STORAGE_KEY } from './helpers/restore-keys.js';

const CURVES: FrostCurve[] = ['ed25519', 'secp256k1', 'bip340'];

/** A few trusted-dealer keys; records reuse them under key ids of their own (each share sealed for its id). */
const MATERIALS = Array.from({ length: 12 }, (_, i) => dealt(CURVES[i % CURVES.length]!, { me: 1 + (i % 3) }));

/** Key `i` as a node stores it; `shareOf` seals another material's share in it (a bad share). */
function record(i: number, opts: { shareOf?: number; status?: KeyRecord['status'] } = {}): KeyRecord {
  const m = MATERIALS[i % MATERIALS.length]!;
  const share = MATERIALS[(opts.shareOf ?? i) % MATERIALS.length]!.share;
  return row(`key_${String(i).padStart(6, '0')}`, m, {
    share,
    edit: (r) => {
      r.status = opts.status ?? 'active';
      r.createdAt = 1_700_000_000_000 + i;
    },
  });
}

const apiKey = (id: string): ApiKeyRecord => ({ id, secretHash: randomBytes(32), role: 'operator', label: id, createdAt: 1_700_000_000_000, revokedAt: null, tenant: null });

/** Adds `keys` in batches of `size`, checking after each call that back-pressure holds the bound. */
async function addAll(imp: KeyImporter, keys: KeyRecord[], size: number, maxInFlight: number): Promise<void> {
  for (let i = 0; i < keys.length; i += size) {
    await imp.add(keys.slice(i, i + size));
    assert.ok(imp.stats().inFlight <= maxInFlight, `in flight ${imp.stats().inFlight} > ${maxInFlight}`);
  }
}

/** Both backends: a SQLite file in a temp directory per case, and one PostgreSQL database emptied per case. */
function sqliteFiles(): StoreHarness {
  let dir = '';
  let n = 0;
  return {
    kind: 'sqlite',
    skip: false,
    async setup() {
      dir = trackedTempDir('lifeboat-restore-import-');
    },
    async teardown() {},
    async fresh() {
      return `sqlite:${join(dir, `case-${++n}`, 'node.sqlite')}`;
    },
    async exec() {},
    async query(url, statement) {
      const { default: Database } = await import('better-sqlite3');
      const db = new Database(url.slice('sqlite:'.length), { readonly: true });
      try {
        return db.prepare(statement).all() as Record<string, unknown>[];
      } finally {
        db.close();
      }
    },
  };
}

const TABLES = ['keys', 'api_keys', 'meta', 'nonces'];

for (const h of [sqliteFiles(), postgresHarness()]) {
  describe(`restore importer: ${h.kind}`, { skip: h.skip }, () => {
    before(() => h.setup());
    after(() => h.teardown());

    /** Opens a store on a fresh url; the test closes it. */
    async function fresh(): Promise<{ url: string; store: KeyNodeStore }> {
      const url = await h.fresh();
      return { url, store: await openKeyNodeStore(url) };
    }

    async function assertEmpty(url: string): Promise<void> {
      for (const t of TABLES) assert.equal(await countRows(h, url, t), 0, `${t} holds rows`);
    }

    it('imports keys batch by batch with changes on top, bounded in flight, and commits with the epoch advanced', async () => {
      const { url, store } = await fresh();
      const keys = Array.from({ length: 400 }, (_, i) => record(i));
      const imp = await KeyImporter.begin(store, STORAGE_KEY, { maxInFlight: 2, putBatch: 3 });
      await addAll(imp, keys, 40, 2);
      // Back-pressure: the bound was reached and never passed.
      assert.equal(imp.stats().peakInFlight, 2);
      await imp.apply({ op: 'key_put', key: record(400) });
      await imp.apply({ op: 'key_put', key: record(5, { status: 'pending_backup' }) });
      await imp.apply({ op: 'key_delete', keyId: keys[7]!.keyId });
      await imp.apply({ op: 'key_status', keyId: keys[9]!.keyId, status: 'pending_backup' });
      await imp.apply({ op: 'api_key_put', apiKey: apiKey('op-b') });
      await imp.apply({ op: 'api_key_revoke', id: 'op-b', at: 1_700_000_000_500 });
      const r = await imp.finish([{ key: 'nonce_epoch', value: '4' }, { key: 'restored_at', value: 'earlier' }, { key: 'keep', value: 'me' }], [apiKey('op-a')], {
        // In the import's transaction: what a restore records beside the keys commits with them.
        beforeCommit: async (tx) => {
          await tx.setMeta('backup_journal', 'on');
          await tx.recordKeyChannels('backup', [{ keyId: keys[0]!.keyId, epoch: 1 }], '{"seq":9}', 1_700_000_000_900);
        },
      });
      assert.deepEqual({ keys: r.keys, epoch: r.epoch }, { keys: 400, epoch: 5 });
      assert.equal(imp.stats().keysWritten, 402); // 400 added, 2 put
      const list = await store.listKeys({ limit: 10_000 });
      assert.deepEqual(
        list.map((k) => k.keyId),
        [...keys.filter((_, i) => i !== 7).map((k) => k.keyId), record(400).keyId],
      );
      assert.equal(list[5]!.status, 'pending_backup');
      assert.notDeepEqual(list[5]!.encryptedShare, keys[5]!.encryptedShare);
      assert.equal((await store.getKey(keys[9]!.keyId))?.status, 'pending_backup');
      assert.deepEqual((await store.getKey(keys[3]!.keyId))?.encryptedShare, keys[3]!.encryptedShare);
      assert.equal(await store.getMeta('nonce_epoch'), '5');
      assert.equal(await store.getMeta('keep'), 'me');
      assert.notEqual(await store.getMeta('restored_at'), 'earlier');
      assert.deepEqual((await store.listApiKeys()).map((a) => [a.id, a.revokedAt]), [['op-a', null], ['op-b', 1_700_000_000_500]]);
      assert.equal(await store.countNonces(), 0);
      assert.equal(await store.getMeta('backup_journal'), 'on');
      assert.deepEqual((await store.listKeyChannels(keys[0]!.keyId)).map((c) => [c.channel, c.detail]), [['backup', '{"seq":9}']]);
      await store.close();
      assert.equal(await countRows(h, url, 'keys'), 400);
    });

    it(`refuses a bad share in the middle of a later batch (share_mismatch), leaving the store empty${h.kind === 'sqlite' ? ', checked on worker threads' : ''}`, async () => {
      const { url, store } = await fresh();
      const keys = Array.from({ length: 300 }, (_, i) => record(i, i === 250 ? { shareOf: 253 } : {}));
      const imp = await KeyImporter.begin(store, STORAGE_KEY, { maxInFlight: 2, ...(h.kind === 'sqlite' ? { workers: 2 } : {}) });
      const err = await rejectsWith(
        (async () => {
          await addAll(imp, keys, 50, 2);
          await imp.finish([], []);
        })(),
        'share_mismatch',
      );
      assert.match(err.message, /key_000250/);
      // Batches before the bad one were written inside the transaction, and are gone with it.
      assert.ok(imp.stats().keysWritten >= 100, `written ${imp.stats().keysWritten}`);
      if (h.kind === 'sqlite') assert.equal(imp.stats().workers, 2);
      await rejectsWith(imp.add([record(900)]), 'share_mismatch');
      assert.equal(await store.countKeys(), 0);
      await store.close();
      await assertEmpty(url);
    });

    it('refuses a key id repeated in a later batch or within one (duplicate_key_id), leaving the store empty', async () => {
      for (const batches of [[[record(1), record(2)], [record(3), record(2)]], [[record(1), record(1)]]]) {
        const { url, store } = await fresh();
        const imp = await KeyImporter.begin(store, STORAGE_KEY);
        const err = await rejectsWith(
          (async () => {
            for (const b of batches) await imp.add(b);
            await imp.finish([], []);
          })(),
          'duplicate_key_id',
        );
        assert.match(err.message, /key_000002|key_000001/);
        await store.close();
        await assertEmpty(url);
      }
    });

    it('an error in the last step before the commit rolls back everything written', async () => {
      const { url, store } = await fresh();
      const imp = await KeyImporter.begin(store, STORAGE_KEY);
      await imp.add(Array.from({ length: 20 }, (_, i) => record(i)));
      const refused = imp.finish([], [apiKey('op-a')], {
        beforeCommit: async (tx) => {
          await tx.setMeta('backup_journal', 'on');
          throw new LifeboatError('backup_truncated', 'the stream ends early', { status: 409 });
        },
      });
      await rejectsWith(refused, 'backup_truncated');
      await store.close();
      await assertEmpty(url);
    });

    // SQLite's import begins IMMEDIATE; better-sqlite3 waits for the lock synchronously, so a second
    // import in this process would block the first: that case is a second process's (store_busy).
    if (h.kind === 'postgres') it('two restores into one database at once: the second waits for the first, then is refused with store_not_empty, and the first one\'s keys stay', async () => {
      const { url, store } = await fresh();
      const other = await openKeyNodeStore(url);
      let first: StoreImport | undefined;
      let second: Promise<unknown> | undefined;
      try {
        first = await store.beginImport();
        await first.insertKeys([record(0), record(1)]);
        second = other.beginImport().then(
          async (imp) => {
            await imp.rollback();
            return 'began';
          },
          (err: unknown) => err,
        );
        // The second waits on the first's lock (it must not see the database as empty meanwhile).
        const early = await Promise.race([second, new Promise((r) => setTimeout(() => r('waiting'), 300))]);
        assert.equal(early, 'waiting');
        await first.commit();
        const err = await second;
        assert.ok(err instanceof LifeboatError && err.code === 'store_not_empty', `second restore: ${String(err)}`);
        assert.equal(await countRows(h, url, 'keys'), 2);
      } finally {
        // On a failure too: no transaction left open, so both stores close.
        await first?.rollback();
        await second;
        await other.close();
        await store.close();
      }
    });

    it('abort while a batch is still being checked settles, rolls back and leaves the database empty (no wait on itself)', async () => {
      const { url, store } = await fresh();
      const imp = await KeyImporter.begin(store, STORAGE_KEY, { maxInFlight: 2, ...(h.kind === 'sqlite' ? { workers: 2 } : {}) });
      await imp.add(Array.from({ length: 100 }, (_, i) => record(i)));
      // Queued, not yet checked: the check of 2,000 keys is still running when abort comes.
      await imp.add(Array.from({ length: 2000 }, (_, i) => record(100 + i)));
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        imp.abort().then(() => 'settled'),
        new Promise<string>((resolve) => (timer = setTimeout(() => resolve('hung'), 30_000))),
      ]);
      clearTimeout(timer);
      assert.equal(outcome, 'settled');
      await rejectsWith(imp.finish([], []), 'restore_aborted');
      assert.equal(await store.countKeys(), 0);
      await store.close();
      await assertEmpty(url);
    });

    it('abort after batches were written leaves the database empty, and a restore into it starts over', async () => {
      const { url, store } = await fresh();
      const imp = await KeyImporter.begin(store, STORAGE_KEY, { maxInFlight: 1 });
      await addAll(imp, Array.from({ length: 120 }, (_, i) => record(i)), 30, 1);
      // maxInFlight 1: each add waited for the batch before it to be written.
      assert.ok(imp.stats().keysWritten >= 90, `written ${imp.stats().keysWritten}`);
      await imp.abort();
      await imp.abort();
      await rejectsWith(imp.finish([], []), 'restore_aborted');
      assert.equal(await store.countKeys(), 0);
      const again = await KeyImporter.begin(store, STORAGE_KEY);
      await again.add([record(1)]);
      assert.equal((await again.finish([], [])).keys, 1);
      // A store that holds anything is refused before any work.
      await rejectsWith(KeyImporter.begin(store, STORAGE_KEY), 'store_not_empty');
      await store.close();
      assert.equal(await countRows(h, url, 'keys'), 1);
    });
  });
}

describe('restore check pool (worker threads)', () => {
  it('packs what the check reads into one buffer and unpacks it as views, field for field', () => {
    const recs = [record(0), record(1), { ...record(2), keyId: 'key_é', identifier: 'ff'.repeat(32), threshold: 300, maxSigners: 2.5 }];
    const packed = packCheckRecords(recs);
    assert.equal(packed.count, 3);
    const back = unpackCheckRecords(packed);
    for (const [i, r] of back.entries()) {
      const want = recs[i]!;
      for (const k of ['keyId', 'curve', 'identifier', 'threshold', 'maxSigners', 'groupPublicKey', 'publicPackage', 'encryptedShare'] as const) assert.deepEqual(r[k], want[k], `${i} ${k}`);
      assert.equal(r.encryptedShare.buffer, packed.buffer, 'a view, not a copy');
    }
    assert.throws(() => unpackCheckRecords({ ...packed, length: packed.length - 1 }), RangeError);
  });

  it('gives each worker one part at a time however many are queued, and names a bad key in its own call', async () => {
    const entry = new URL('../src/keynode/restore-verify.ts', import.meta.url).href;
    const pool = startVerifyPool(entry, workerLoader(entry) ?? undefined, STORAGE_KEY, 2);
    try {
      const calls = Array.from({ length: 6 }, (_, c) => Array.from({ length: 12 }, (_, i) => record(c * 12 + i, c === 4 && i === 7 ? { shareOf: c * 12 + i + 1 } : {})));
      const results = await Promise.all(calls.map((batch) => pool.check(batch, () => {})));
      assert.deepEqual(
        results.map((r) => r.bad),
        [-1, -1, -1, -1, 7, -1],
      );
      // Fewer keys than a part: each call is split between the two workers.
      assert.deepEqual(pool.stats(), { partsSent: 12, peakHeld: 2 });
      // A record the packing cannot hold fails its own part; the workers go on with the next.
      await rejectsWith(pool.check([{ ...record(0), keyId: 'k'.repeat(70_000) }], () => {}), 'internal_error');
      assert.equal((await pool.check([record(1)], () => {})).bad, -1);
    } finally {
      pool.stop();
    }
    await rejectsWith(pool.check([record(1)], () => {}), 'internal_error');
  });
});
