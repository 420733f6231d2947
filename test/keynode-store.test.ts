/**
 * The key node store's conformance suite: one list of cases, run against SQLite and against a real
 * PostgreSQL (test/helpers/postgres.ts), then what only one backend has (file modes, kill, processes).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { tracked } from './helpers/cli.js';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep, setImmediate as nextTurn } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { type Dialect, Kysely, Migrator, PostgresDialect, sql, SqliteDialect } from 'kysely';
import pg from 'pg';
import { decodeChange, encodeChange, type NodeChange } from '../src/backup/changes.js';
import { randomBytes } from '../src/crypto/random.js';
import { isLifeboatError } from '../src/errors.js';
import {
  type ApiKeyRecord,
  type KeyNodeStore,
  type KeyRecord,
  type NonceRecord,
  type OpenStoreOptions,
  openKeyNodeStore,
  parseStoreUrl,
  redactStoreUrl,
  storeUrlWithoutPassword,
  type StoreSnapshot,
  BACKUP_JOURNAL_META,
  NONCE_EPOCH_META,
} from '../src/keynode/store/index.js';
import { MIGRATION_LOCK_TABLE, MIGRATION_TABLE, migrations } from '../src/keynode/store/schema.js';
import { postgresSkipReason, resetTestDatabase, startTestPostgres, type TestPostgres } from './helpers/postgres.js';
import { postgresHarness, sqliteHarness, sqlitePathOf, type StoreHarness } from './helpers/store-harness.js';

const STORE_MODULE = pathToFileURL(join(import.meta.dirname, '../src/keynode/store/index.ts')).href;

/** The shared harness plus a kysely dialect on the store's database, for raw migrations. */
interface Harness extends StoreHarness {
  dialect(url: string): Dialect;
}

function sqliteWithDialect(): Harness {
  return {
    ...sqliteHarness('lifeboat-store-', 'keynode.db'),
    dialect(url) {
      const path = sqlitePathOf(url);
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      writeFileSync(path, '', { mode: 0o600 });
      return new SqliteDialect({ database: new Database(path) });
    },
  };
}

function postgresWithDialect(): Harness {
  return { ...postgresHarness(), dialect: (url) => new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 1 }) }) };
}

// ---- records ----

let seq = 0;
/** Builds a store with the migrations up to `name` only, as an older release left it. */
async function migrateTo(h: Harness, url: string, name: string): Promise<void> {
  const db = new Kysely<unknown>({ dialect: h.dialect(url) });
  try {
    const migrator = new Migrator({
      db,
      provider: { getMigrations: () => Promise.resolve(migrations(h.kind)) },
      migrationTableName: MIGRATION_TABLE,
      migrationLockTableName: MIGRATION_LOCK_TABLE,
    });
    const { error } = await migrator.migrateTo(name);
    assert.equal(error, undefined);
  } finally {
    await db.destroy();
  }
}

function nextId(prefix: string): string {
  return `${prefix}_${(++seq).toString().padStart(6, '0')}${Math.random().toString(36).slice(2, 8)}`;
}

function makeKey(over: Partial<KeyRecord> = {}): KeyRecord {
  return {
    keyId: nextId('key'),
    curve: 'ed25519',
    threshold: 2,
    maxSigners: 3,
    identifier: '0100000000000000000000000000000000000000000000000000000000000000',
    groupPublicKey: randomBytes(32),
    publicPackage: randomBytes(200),
    encryptedShare: randomBytes(80),
    status: 'active',
    origin: 'dkg',
    createdAt: 1_700_000_000_000 + seq,
    tenant: 'default',
    ...over,
  };
}

function makeNonce(keyId: string, over: Partial<NonceRecord> = {}): NonceRecord {
  return { nonceId: nextId('nonce'), keyId, encryptedNonces: randomBytes(104), commitments: randomBytes(64), createdAt: Date.now(), epoch: 1, ...over };
}

function makeApiKey(over: Partial<ApiKeyRecord> = {}): ApiKeyRecord {
  return { id: nextId('ak'), secretHash: randomBytes(32), role: 'client', label: 'wallet backend', createdAt: Date.now(), revokedAt: null, tenant: over.role === 'operator' ? null : 'default', ...over };
}

async function rejectsWith(p: Promise<unknown>, code: string, cls?: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isLifeboatError(err, code), `expected ${code}, got ${String(err)}`);
    if (cls) assert.equal(err.name, cls);
    return true;
  });
}

/** The outbox's unsealed changes, decoded, oldest first. */
async function journalOf(s: KeyNodeStore): Promise<NodeChange[]> {
  const rows = await s.listUnsealedOutbox(10_000);
  const ids = rows.map((r) => r.id);
  assert.deepStrictEqual(ids, [...ids].sort((a, b) => a - b), 'in id order');
  return rows.map((r) => decodeChange(r.change));
}

async function withStore<T>(url: string, fn: (s: KeyNodeStore) => Promise<T>, opts?: OpenStoreOptions): Promise<T> {
  const store = await openKeyNodeStore(url, opts);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

// ---- the cases every backend passes ----

type Case = [name: string, fn: (h: Harness, url: string) => Promise<void>];

const cases: Case[] = [
  [
    'insertKey / getKey round-trip every field as plain Uint8Arrays; a missing key is undefined',
    (_h, url) =>
      withStore(url, async (s) => {
        const k = makeKey({ curve: 'secp256k1', status: 'pending_backup', origin: 'import', threshold: 3, maxSigners: 5 });
        await s.insertKey(k);
        const got = await s.getKey(k.keyId);
        assert.deepStrictEqual(got, k);
        assert.equal(Object.getPrototypeOf(got?.encryptedShare), Uint8Array.prototype);
        assert.equal(await s.getKey('key_absent'), undefined);
        assert.equal(await s.countKeys(), 1);
      }),
  ],
  [
    'insertKey on a taken key_id throws ConflictError key_exists and keeps the first',
    (_h, url) =>
      withStore(url, async (s) => {
        const k = makeKey();
        await s.insertKey(k);
        await rejectsWith(s.insertKey(makeKey({ keyId: k.keyId, curve: 'bip340' })), 'key_exists', 'ConflictError');
        assert.deepStrictEqual(await s.getKey(k.keyId), k);
        assert.equal(await s.countKeys(), 1);
      }),
  ],
  [
    'malformed records and arguments throw InvalidInputError and write nothing',
    (_h, url) =>
      withStore(url, async (s) => {
        const bad: Partial<KeyRecord>[] = [
          { keyId: '' },
          { keyId: 'key with space' },
          { keyId: 'k'.repeat(65) },
          { threshold: 4, maxSigners: 3 },
          { threshold: 0 },
          { maxSigners: 256, threshold: 2 },
          { curve: 'p256' as never },
          { status: 'revoked' as never },
          { origin: 'magic' as never },
          { identifier: 'XYZ' },
          { encryptedShare: new Uint8Array(0) },
          { groupPublicKey: 'abc' as never },
          { createdAt: -1 },
          { createdAt: 1.5 },
        ];
        for (const over of bad) await rejectsWith(s.insertKey(makeKey(over)), 'invalid_input', 'InvalidInputError');
        await rejectsWith(s.getKey('../etc'), 'invalid_input');
        await rejectsWith(s.listKeys({ limit: 0 }), 'invalid_input');
        await rejectsWith(s.listKeys({ limit: 10_001 }), 'invalid_input');
        await rejectsWith(s.setKeyStatus('key_a', 'lost' as never), 'invalid_input');
        await rejectsWith(s.insertApiKey(makeApiKey({ secretHash: randomBytes(8) })), 'invalid_input');
        await rejectsWith(s.insertApiKey(makeApiKey({ role: 'admin' as never })), 'invalid_input');
        await rejectsWith(s.insertDkgSession({ sessionId: 's1', keyId: 'key_a', state: randomBytes(4), step: -1, expiresAt: 1, tenant: 'default' }), 'invalid_input');
        await rejectsWith(s.setMeta('', 'x'), 'invalid_input');
        await rejectsWith(s.deleteExpiredDkgSessions(Number.NaN), 'invalid_input');
        assert.equal(await s.countKeys(), 0);
        assert.deepStrictEqual(await s.listApiKeys(), []);
      }),
  ],
  [
    'listKeys pages in bytewise key_id order with afterKeyId and limit',
    (_h, url) =>
      withStore(url, async (s) => {
        const ids = ['key_B', 'key_a', 'key_A', 'key_0', 'key__', 'key_-', 'key_b', 'key_Z9', 'key_z'];
        for (let i = 0; i < 16; i++) ids.push(`key_${randomBytes(8).reduce((a, b) => a + 'abcdefghijklmnopqrstuvwxyz234567'[b % 32], '')}`);
        for (const keyId of [...ids].reverse()) await s.insertKey(makeKey({ keyId }));
        const expected = [...ids].sort((a, b) => (Buffer.from(a) < Buffer.from(b) ? -1 : 1));
        const seen: string[] = [];
        let after: string | undefined;
        for (;;) {
          const page = await s.listKeys(after === undefined ? { limit: 7 } : { afterKeyId: after, limit: 7 });
          seen.push(...page.map((k) => k.keyId));
          if (page.length < 7) break;
          after = page[page.length - 1]?.keyId;
        }
        assert.deepStrictEqual(seen, expected);
        assert.deepStrictEqual(await s.listKeys({ afterKeyId: expected[expected.length - 1], limit: 5 }), []);
        assert.equal((await s.listKeys({ limit: 100 })).length, ids.length);
        assert.equal(await s.countKeys(), ids.length);
      }),
  ],
  [
    'setKeyStatus changes the status; an unknown key throws NotFoundError key_id_not_exists',
    (_h, url) =>
      withStore(url, async (s) => {
        const k = makeKey({ status: 'pending_backup' });
        await s.insertKey(k);
        await s.setKeyStatus(k.keyId, 'active');
        assert.equal((await s.getKey(k.keyId))?.status, 'active');
        await s.setKeyStatus(k.keyId, 'active'); // unchanged is still found
        await rejectsWith(s.setKeyStatus('key_absent', 'active'), 'key_id_not_exists', 'NotFoundError');
      }),
  ],
  [
    'deleteKey returns true once then false, and takes the key’s nonces with it',
    (_h, url) =>
      withStore(url, async (s) => {
        const [a, b] = [makeKey(), makeKey()];
        await s.insertKey(a);
        await s.insertKey(b);
        await s.insertNonce(makeNonce(a.keyId));
        await s.insertNonce(makeNonce(a.keyId));
        const nb = makeNonce(b.keyId);
        await s.insertNonce(nb);
        assert.equal(await s.deleteKey(a.keyId), true);
        assert.equal(await s.deleteKey(a.keyId), false);
        assert.equal(await s.getKey(a.keyId), undefined);
        assert.equal(await s.countNonces(a.keyId), 0);
        assert.equal(await s.countNonces(), 1);
        assert.deepStrictEqual(await s.consumeNonce(b.keyId, nb.nonceId), nb);
      }),
  ],
  [
    'nonces: insert, count, consume once; wrong key, unknown key and duplicate ids per the contract',
    (_h, url) =>
      withStore(url, async (s) => {
        const [a, b] = [makeKey(), makeKey()];
        await s.insertKey(a);
        await s.insertKey(b);
        const n1 = makeNonce(a.keyId);
        await s.insertNonce(n1);
        await s.insertNonce(makeNonce(a.keyId));
        await s.insertNonce(makeNonce(b.keyId));
        assert.equal(await s.countNonces(), 3);
        assert.equal(await s.countNonces(a.keyId), 2);
        assert.equal(await s.countNonces('key_absent'), 0);
        await rejectsWith(s.insertNonce(makeNonce('key_absent')), 'key_id_not_exists', 'NotFoundError');
        await rejectsWith(s.insertNonce({ ...makeNonce(b.keyId), nonceId: n1.nonceId }), 'nonce_exists', 'ConflictError');
        assert.equal(await s.consumeNonce(b.keyId, n1.nonceId), undefined, 'another key cannot consume it');
        assert.deepStrictEqual(await s.consumeNonce(a.keyId, n1.nonceId), n1);
        assert.equal(await s.consumeNonce(a.keyId, n1.nonceId), undefined, 'consumed once only');
        assert.equal(await s.consumeNonce(a.keyId, 'nonce_never'), undefined);
        assert.equal(await s.deleteAllNonces(), 2);
        assert.equal(await s.deleteAllNonces(), 0);
        assert.equal(await s.countNonces(), 0);
        assert.equal(await s.countKeys(), 2, 'keys stay');
        await s.insertNonce({ ...makeNonce(a.keyId), createdAt: 1_000 });
        await s.insertNonce({ ...makeNonce(a.keyId), createdAt: 2_000 });
        const fresh = { ...makeNonce(b.keyId), createdAt: 3_000 };
        await s.insertNonce(fresh);
        assert.equal(await s.deleteNoncesCreatedBefore(2_500), 2, 'the two older nonces go');
        assert.deepStrictEqual(await s.consumeNonce(b.keyId, fresh.nonceId), fresh, 'the newer one stays');
        await rejectsWith(s.deleteNoncesCreatedBefore(Number.NaN), 'invalid_input', 'InvalidInputError');
      }),
  ],
  [
    'claimNonce: consumes once as consumeNonce does, with a sync that resolves; nothing for another key, a used nonce or a bad id',
    (_h, url) =>
      withStore(url, async (s) => {
        const [a, b] = [makeKey(), makeKey()];
        await s.insertKey(a);
        await s.insertKey(b);
        const n = makeNonce(a.keyId);
        await s.insertNonce(n);
        assert.equal(await s.claimNonce(b.keyId, n.nonceId), undefined, 'another key cannot claim it');
        const claim = await s.claimNonce(a.keyId, n.nonceId);
        assert.deepStrictEqual(claim?.nonce, n);
        await claim!.synced;
        assert.equal(await s.claimNonce(a.keyId, n.nonceId), undefined, 'claimed once only');
        assert.equal(await s.consumeNonce(a.keyId, n.nonceId), undefined, 'nor consumed after');
        assert.equal(await s.countNonces(), 0);
        await rejectsWith(s.claimNonce(a.keyId, 'bad id!'), 'invalid_input', 'InvalidInputError');
      }),
  ],
  [
    'getKeyForSigning: the key, that key\'s nonce and the nonce epoch in one read; nothing of another key, a consumed nonce or a missing key',
    (_h, url) =>
      withStore(url, async (s) => {
        const [a, b] = [makeKey(), makeKey({ tenant: 'acme', ersPolicy: 'require', epoch: 3 })];
        await s.insertKey(a);
        await s.insertKey(b);
        const [na, nb] = [makeNonce(a.keyId, { epoch: 0 }), makeNonce(b.keyId, { epoch: 0 })];
        await s.insertNonce(na);
        await s.insertNonce(nb);
        assert.deepStrictEqual(await s.getKeyForSigning(a.keyId), { key: a, nonceEpoch: 0 }, 'no epoch set yet: 0');
        assert.deepStrictEqual(await s.getKeyForSigning(a.keyId, na.nonceId), { key: a, nonce: na, nonceEpoch: 0 });
        assert.deepStrictEqual(await s.getKeyForSigning(b.keyId, nb.nonceId), { key: b, nonce: nb, nonceEpoch: 0 });
        assert.deepStrictEqual(await s.getKeyForSigning(a.keyId, nb.nonceId), { key: a, nonceEpoch: 0 }, 'another key\'s nonce is not this key\'s');
        await s.setMeta(NONCE_EPOCH_META, '12');
        assert.deepStrictEqual(await s.getKeyForSigning(b.keyId, nb.nonceId), { key: b, nonce: nb, nonceEpoch: 12 }, 'the epoch as the meta row has it now');
        assert.deepStrictEqual(await s.consumeNonce(b.keyId, nb.nonceId), nb);
        assert.deepStrictEqual(await s.getKeyForSigning(b.keyId, nb.nonceId), { key: b, nonceEpoch: 12 }, 'a consumed nonce is gone');
        assert.equal(await s.getKeyForSigning('key_absent', na.nonceId), undefined);
        await rejectsWith(s.getKeyForSigning(a.keyId, 'bad id!'), 'invalid_input', 'InvalidInputError');
        await rejectsWith(s.getKeyForSigning(''), 'invalid_input', 'InvalidInputError');
      }),
  ],
  [
    '20 concurrent consumers of one nonce, each in its own transaction (on PostgreSQL each on its own pooled connection): exactly one gets it',
    (_h, url) =>
      withStore(
        url,
        async (s) => {
          const k = makeKey();
          await s.insertKey(k);
          const nonces = Array.from({ length: 5 }, () => makeNonce(k.keyId));
          for (const n of nonces) await s.insertNonce(n);
          for (const n of nonces) {
            // The winner holds its transaction open a moment, so the others really wait on it.
            const got = await Promise.all(
              Array.from({ length: 20 }, () =>
                s.transaction(async (tx) => {
                  const r = await tx.consumeNonce(k.keyId, n.nonceId);
                  await sleep(5);
                  return r;
                }),
              ),
            );
            const winners = got.filter((r) => r !== undefined);
            assert.equal(winners.length, 1);
            assert.deepStrictEqual(winners[0], n);
          }
          const plain = makeNonce(k.keyId);
          await s.insertNonce(plain);
          const got = await Promise.all(Array.from({ length: 20 }, () => s.consumeNonce(k.keyId, plain.nonceId)));
          assert.equal(got.filter((r) => r !== undefined).length, 1);
          assert.equal(await s.countNonces(), 0);
        },
        { maxConnections: 25 },
      ),
  ],
  [
    'transaction commits when fn resolves and rolls everything back when it throws',
    (_h, url) =>
      withStore(url, async (s) => {
        const k = makeKey({ status: 'pending_backup' });
        const n = makeNonce(k.keyId);
        const value = await s.transaction(async (tx) => {
          await tx.insertKey(k);
          await tx.insertNonce(n);
          await tx.setMeta('epoch', '7');
          assert.equal(await tx.countKeys(), 1, 'a transaction sees its own writes');
          return 'done';
        });
        assert.equal(value, 'done');
        assert.deepStrictEqual(await s.getKey(k.keyId), k);

        const boom = new Error('boom');
        const k2 = makeKey();
        await assert.rejects(
          s.transaction(async (tx) => {
            await tx.insertKey(k2);
            await tx.setKeyStatus(k.keyId, 'active');
            await tx.consumeNonce(k.keyId, n.nonceId);
            await tx.setMeta('epoch', '8');
            await tx.insertApiKey(makeApiKey());
            throw boom;
          }),
          (err) => err === boom,
        );
        assert.equal(await s.getKey(k2.keyId), undefined);
        assert.equal((await s.getKey(k.keyId))?.status, 'pending_backup');
        assert.equal(await s.countNonces(), 1);
        assert.equal(await s.getMeta('epoch'), '7');
        assert.deepStrictEqual(await s.listApiKeys(), []);

        // A contract error inside a transaction rolls it back like any other throw.
        await rejectsWith(
          s.transaction(async (tx) => {
            await tx.setMeta('epoch', '9');
            await tx.insertKey(k);
          }),
          'key_exists',
        );
        assert.equal(await s.getMeta('epoch'), '7');
      }),
  ],
  [
    'DKG sessions: insert refuses a taken id, advance moves a session only from its step, get, delete, deleteExpired removes those at or before now',
    (_h, url) =>
      withStore(url, async (s) => {
        const base = { keyId: 'key_new', state: randomBytes(48), step: 1, tenant: 'default' };
        await s.insertDkgSession({ ...base, sessionId: 'dkg_a', expiresAt: 1000 });
        await s.insertDkgSession({ ...base, sessionId: 'dkg_b', expiresAt: 2000 });
        await s.insertDkgSession({ ...base, sessionId: 'dkg_c', expiresAt: 3000 });
        await rejectsWith(s.insertDkgSession({ ...base, sessionId: 'dkg_a', state: randomBytes(48), expiresAt: 9000 }), 'dkg_session_exists');
        assert.deepStrictEqual(await s.getDkgSession('dkg_a'), { ...base, sessionId: 'dkg_a', expiresAt: 1000 }, 'a refused insert changes nothing');
        const next = randomBytes(64);
        assert.equal(await s.advanceDkgSession('dkg_a', 1, 2, next), true);
        assert.equal(await s.advanceDkgSession('dkg_a', 1, 2, randomBytes(64)), false, 'no longer at step 1');
        assert.equal(await s.advanceDkgSession('dkg_absent', 1, 2, randomBytes(64)), false);
        assert.deepStrictEqual(await s.getDkgSession('dkg_a'), { ...base, sessionId: 'dkg_a', state: next, step: 2, expiresAt: 1000 });
        assert.equal(await s.getDkgSession('dkg_absent'), undefined);
        assert.equal(await s.deleteExpiredDkgSessions(2000), 2);
        assert.equal(await s.getDkgSession('dkg_b'), undefined);
        assert.equal(await s.deleteExpiredDkgSessions(2000), 0);
        assert.equal(await s.deleteDkgSession('dkg_c'), true);
        assert.equal(await s.deleteDkgSession('dkg_c'), false);
      }),
  ],
  [
    'API keys: insert, find, list by id, revoke once; duplicates and unknown ids per the contract',
    (_h, url) =>
      withStore(url, async (s) => {
        const op = makeApiKey({ id: 'ak_b', role: 'operator', label: '' });
        const cl = makeApiKey({ id: 'ak_a' });
        await s.insertApiKey(op);
        await s.insertApiKey(cl);
        await rejectsWith(s.insertApiKey(makeApiKey({ id: 'ak_a' })), 'api_key_exists', 'ConflictError');
        assert.deepStrictEqual(await s.findApiKeyById('ak_b'), op);
        assert.equal(await s.findApiKeyById('ak_zz'), undefined);
        assert.deepStrictEqual(await s.listApiKeys(), [cl, op]);
        assert.equal(await s.revokeApiKey('ak_a', 5000), true);
        assert.equal(await s.revokeApiKey('ak_a', 6000), false);
        assert.equal((await s.findApiKeyById('ak_a'))?.revokedAt, 5000, 'the first revocation time stays');
        await rejectsWith(s.revokeApiKey('ak_zz', 1), 'api_key_not_found', 'NotFoundError');
      }),
  ],
  [
    'meta: unset is undefined, set creates and replaces',
    (_h, url) =>
      withStore(url, async (s) => {
        assert.equal(await s.getMeta('node_epoch'), undefined);
        await s.setMeta('node_epoch', '1');
        await s.setMeta('failover_cursor', '');
        await s.setMeta('node_epoch', '2');
        assert.equal(await s.getMeta('node_epoch'), '2');
        assert.equal(await s.getMeta('failover_cursor'), '');
      }),
  ],
  [
    'exportSnapshot holds keys, API keys and meta but no nonces or DKG sessions; importSnapshot restores it',
    (_h, url) => {
      const ctx = { snap: undefined as StoreSnapshot | undefined };
      return withStore(url, async (s) => {
        const keys = [makeKey(), makeKey({ status: 'pending_backup' }), makeKey({ curve: 'bip340' })];
        for (const k of keys) await s.insertKey(k);
        await s.insertNonce(makeNonce(keys[0]!.keyId));
        await s.insertDkgSession({ sessionId: 'dkg_x', keyId: 'key_next', state: randomBytes(8), step: 1, expiresAt: Date.now() + 60_000, tenant: 'default' });
        const aks = [makeApiKey(), makeApiKey({ role: 'operator', revokedAt: 123 })];
        for (const a of aks) await s.insertApiKey(a);
        await s.setMeta('node_epoch', '3');
        await s.setMeta('failover_cursor', '42');
        const snap = await s.exportSnapshot();
        ctx.snap = snap;
        const byId = <T>(xs: T[], id: (x: T) => string): T[] => [...xs].sort((a, b) => (id(a) < id(b) ? -1 : 1));
        assert.deepStrictEqual(snap.keys, byId(keys, (k) => k.keyId));
        assert.deepStrictEqual(snap.apiKeys, byId(aks, (a) => a.id));
        assert.deepStrictEqual(snap.meta, [
          { key: 'failover_cursor', value: '42' },
          { key: 'node_epoch', value: '3' },
        ]);
        assert.deepStrictEqual(Object.keys(snap).sort(), ['apiKeys', 'keys', 'meta']);
        await rejectsWith(s.importSnapshot(snap), 'store_not_empty', 'ConflictError');
      }).then(async () => {
        // Into an empty store: everything back, no nonce, no DKG session.
        const again = await reopenEmpty(url);
        try {
          await again.importSnapshot(ctx.snap!);
          assert.deepStrictEqual(await again.exportSnapshot(), ctx.snap);
          assert.equal(await again.countNonces(), 0);
          assert.equal(await again.getDkgSession('dkg_x'), undefined);
        } finally {
          await again.close();
        }
      });
    },
  ],
  [
    'importSnapshot refuses repeated ids and malformed records, and a store with only a nonce or a meta entry is not empty',
    (_h, url) =>
      withStore(url, async (s) => {
        const k = makeKey();
        const valid: StoreSnapshot = { keys: [k, makeKey()], apiKeys: [makeApiKey()], meta: [{ key: 'node_epoch', value: '1' }] };
        await rejectsWith(s.importSnapshot({ ...valid, keys: [k, k] }), 'invalid_input');
        await rejectsWith(s.importSnapshot({ ...valid, meta: [{ key: 'a', value: '1' }, { key: 'a', value: '2' }] }), 'invalid_input');
        await rejectsWith(s.importSnapshot({ ...valid, apiKeys: [makeApiKey({ role: 'root' as never })] }), 'invalid_input');
        await rejectsWith(s.importSnapshot({ keys: [] } as unknown as StoreSnapshot), 'invalid_input');
        assert.equal(await s.countKeys(), 0, 'nothing was written');
        await s.setMeta('x', 'y');
        await rejectsWith(s.importSnapshot(valid), 'store_not_empty');
        assert.equal(await s.countKeys(), 0);
      }),
  ],
  [
    'exportSnapshot is one consistent state while writes go on',
    (_h, url) =>
      withStore(url, async (s) => {
        // Every write adds a key and bumps key_count in one transaction: a consistent snapshot
        // always has exactly key_count keys.
        const start: StoreSnapshot = { keys: Array.from({ length: 1800 }, () => makeKey()), apiKeys: [], meta: [{ key: 'key_count', value: '1800' }] };
        await s.importSnapshot(start);
        let writes = 0;
        let stop = false;
        const writer = (async () => {
          while (!stop) {
            await s.transaction(async (tx) => {
              await tx.insertKey(makeKey());
              await tx.setMeta('key_count', String(Number(await tx.getMeta('key_count')) + 1));
            });
            writes++;
            await nextTurn();
          }
        })();
        while (writes < 3) await nextTurn();
        // Every snapshot must be one state; keep taking them until one overlapped a write (a fast
        // snapshot can finish between two writes, which proves nothing either way).
        let overlapped = 0;
        let snap: StoreSnapshot | undefined;
        for (let attempt = 0; attempt < 30 && overlapped === 0; attempt++) {
          const before = writes;
          snap = await s.exportSnapshot();
          if (writes - before > 0) overlapped++;
          const count = Number(snap.meta.find((m) => m.key === 'key_count')?.value);
          assert.equal(snap.keys.length, count, 'the snapshot is one state');
        }
        stop = true;
        await writer;
        assert.ok(overlapped > 0, 'writes went on while a snapshot was read');
        assert.equal(await s.countKeys(), 1800 + writes);
        assert.ok(snap!.keys.length < 1800 + writes);
        const ids = snap!.keys.map((k) => k.keyId);
        assert.deepStrictEqual(ids, [...ids].sort((a, b) => (Buffer.from(a) < Buffer.from(b) ? -1 : 1)));
      }),
  ],
  [
    'close is idempotent, later calls fail, and reopening keeps every table (nonces too)',
    async (_h, url) => {
      const k = makeKey();
      const n = makeNonce(k.keyId);
      const a = makeApiKey();
      const s = await openKeyNodeStore(url);
      await s.insertKey(k);
      await s.insertNonce(n);
      await s.insertApiKey(a);
      await s.setMeta('node_epoch', '5');
      await s.insertDkgSession({ sessionId: 'dkg_y', keyId: 'key_y', state: randomBytes(8), step: 2, expiresAt: 10, tenant: 'default' });
      await s.close();
      await s.close();
      await assert.rejects(s.countKeys());
      await withStore(url, async (r) => {
        assert.deepStrictEqual(await r.getKey(k.keyId), k);
        assert.deepStrictEqual(await r.findApiKeyById(a.id), a);
        assert.equal(await r.getMeta('node_epoch'), '5');
        assert.equal((await r.getDkgSession('dkg_y'))?.step, 2);
        assert.deepStrictEqual(await r.consumeNonce(k.keyId, n.nonceId), n);
      });
    },
  ],
  [
    'backup journal off (unset, or any value but on): changes write nothing to the outbox',
    (_h, url) =>
      withStore(url, async (s) => {
        for (const flag of [undefined, 'off', 'ON']) {
          if (flag !== undefined) await s.setMeta(BACKUP_JOURNAL_META, flag);
          const k = makeKey({ status: 'pending_backup' });
          const a = makeApiKey();
          await s.insertKey(k);
          await s.setKeyStatus(k.keyId, 'active');
          await s.insertApiKey(a);
          await s.revokeApiKey(a.id, 9);
          await s.transaction(async (tx) => {
            await tx.insertKey(makeKey());
            assert.equal(await tx.deleteKey(k.keyId), true);
          });
          assert.deepStrictEqual(await s.countOutbox(), { unsealed: 0, sealed: 0 }, `backup_journal=${flag}`);
        }
      }),
  ],
  [
    'backup journal on: each change appends exactly one decodable change, in order, on the store and in a transaction',
    (_h, url) =>
      withStore(url, async (s) => {
        await s.setMeta(BACKUP_JOURNAL_META, 'on');
        const t0 = Date.now();
        const k = makeKey({ status: 'pending_backup', curve: 'bip340' });
        const a = makeApiKey({ role: 'operator' });
        await s.insertKey(k);
        await s.setKeyStatus(k.keyId, 'active');
        await s.setKeyStatusUnjournaled(k.keyId, 'pending_backup');
        assert.equal((await s.getKey(k.keyId))?.status, 'pending_backup', 'the unjournaled status is set');
        assert.equal(await s.deleteKey('key_absent'), false);
        await s.insertApiKey(a);
        assert.equal(await s.revokeApiKey(a.id, 5000), true);
        assert.equal(await s.revokeApiKey(a.id, 6000), false);
        await s.insertNonce(makeNonce(k.keyId));
        await s.insertDkgSession({ sessionId: 'dkg_j', keyId: 'key_j', state: randomBytes(8), step: 1, expiresAt: 10, tenant: 'default' });
        await s.setMeta('node_epoch', '2');
        assert.equal(await s.deleteKey(k.keyId), true);
        const k2 = makeKey();
        const a2 = makeApiKey();
        await s.transaction(async (tx) => {
          await tx.insertKey(k2);
          await tx.insertApiKey(a2);
          await tx.setKeyStatus(k2.keyId, 'pending_backup');
          assert.equal((await tx.countOutbox()).unsealed, 8, 'the transaction sees its own outbox rows');
        });
        const expected: NodeChange[] = [
          { op: 'key_put', key: k },
          { op: 'key_status', keyId: k.keyId, status: 'active' },
          { op: 'api_key_put', apiKey: a },
          { op: 'api_key_revoke', id: a.id, at: 5000 },
          { op: 'key_delete', keyId: k.keyId },
          { op: 'key_put', key: k2 },
          { op: 'api_key_put', apiKey: a2 },
          { op: 'key_status', keyId: k2.keyId, status: 'pending_backup' },
        ];
        assert.deepStrictEqual(await journalOf(s), expected);
        const rows = await s.listUnsealedOutbox(100);
        assert.deepStrictEqual(rows[0]?.change, encodeChange(expected[0]!), 'encoded by encodeChange');
        assert.ok(rows.every((r) => r.createdAt >= t0 && r.createdAt <= Date.now()));
        assert.deepStrictEqual(await s.countOutbox(), { unsealed: 8, sealed: 0 });
      }),
  ],
  [
    'a change that fails appends nothing, and a rolled-back transaction leaves no outbox row',
    (_h, url) =>
      withStore(url, async (s) => {
        await s.setMeta(BACKUP_JOURNAL_META, 'on');
        const k = makeKey();
        const a = makeApiKey();
        await s.insertKey(k);
        await s.insertApiKey(a);
        await rejectsWith(s.insertKey(makeKey({ keyId: k.keyId })), 'key_exists');
        await rejectsWith(s.insertKey(makeKey({ threshold: 9 })), 'invalid_input');
        await rejectsWith(s.setKeyStatus('key_absent', 'active'), 'key_id_not_exists');
        await rejectsWith(s.setKeyStatusUnjournaled('key_absent', 'active'), 'key_id_not_exists');
        await rejectsWith(s.insertApiKey(makeApiKey({ id: a.id })), 'api_key_exists');
        await rejectsWith(s.revokeApiKey('ak_absent', 1), 'api_key_not_found');
        assert.equal((await s.countOutbox()).unsealed, 2);

        const boom = new Error('boom');
        await assert.rejects(
          s.transaction(async (tx) => {
            await tx.insertKey(makeKey());
            await tx.setKeyStatus(k.keyId, 'pending_backup');
            await tx.revokeApiKey(a.id, 7);
            await tx.deleteKey(k.keyId);
            await tx.appendOutbox(new Uint8Array([1]), 1);
            throw boom;
          }),
          (err) => err === boom,
        );
        assert.equal((await s.countOutbox()).unsealed, 2, 'nothing of the rolled-back transaction');
        assert.deepStrictEqual(await s.getKey(k.keyId), k);

        // A contract error inside a transaction leaves it usable (no failed statement) and adds nothing.
        const k2 = makeKey();
        await s.transaction(async (tx) => {
          await rejectsWith(tx.insertKey(makeKey({ keyId: k.keyId })), 'key_exists');
          await rejectsWith(tx.insertApiKey(makeApiKey({ id: a.id })), 'api_key_exists');
          await tx.insertKey(k2);
        });
        assert.deepStrictEqual(await journalOf(s), [
          { op: 'key_put', key: k },
          { op: 'api_key_put', apiKey: a },
          { op: 'key_put', key: k2 },
        ]);
      }),
  ],
  [
    'outbox: append, seal, list, delete and count per the contract',
    (h, url) =>
      withStore(url, async (s) => {
        const changes = [1, 2, 3, 4].map((i) => new Uint8Array(10 + i).fill(i));
        const ids: number[] = [];
        for (const [i, c] of changes.entries()) ids.push(await s.appendOutbox(c, 1000 + i));
        assert.deepStrictEqual(ids, [...ids].sort((a, b) => a - b));
        assert.equal(new Set(ids).size, 4);
        const [id1, id2, id3, id4] = ids as [number, number, number, number];
        assert.deepStrictEqual(await s.listUnsealedOutbox(2), [
          { id: id1, change: changes[0], createdAt: 1000 },
          { id: id2, change: changes[1], createdAt: 1001 },
        ]);
        assert.equal(Object.getPrototypeOf((await s.listUnsealedOutbox(1))[0]?.change), Uint8Array.prototype);

        const e1 = randomBytes(50);
        const e2 = randomBytes(60);
        await s.sealOutbox(id1, 1, e1);
        await rejectsWith(s.sealOutbox(id1, 2, e2), 'outbox_row_not_found', 'NotFoundError');
        await rejectsWith(s.sealOutbox(id4 + 1000, 2, e2), 'outbox_row_not_found', 'NotFoundError');
        await rejectsWith(s.sealOutbox(id2, 1, e2), 'outbox_seq_exists', 'ConflictError');
        await s.transaction(async (tx) => {
          // A taken seq fails no statement: the transaction goes on.
          await rejectsWith(tx.sealOutbox(id2, 1, e2), 'outbox_seq_exists');
          await tx.sealOutbox(id2, 2, e2);
        });
        const sealed = await h.query(url, `select change from backup_outbox where id = ${id1}`);
        assert.equal((sealed[0]?.change as Uint8Array).length, 0, 'a sealed row keeps no change');
        assert.deepStrictEqual(await s.listUnsealedOutbox(10), [
          { id: id3, change: changes[2], createdAt: 1002 },
          { id: id4, change: changes[3], createdAt: 1003 },
        ]);
        assert.deepStrictEqual(await s.listSealedOutbox(0, 10), [
          { seq: 1, entry: e1 },
          { seq: 2, entry: e2 },
        ]);
        assert.deepStrictEqual(await s.listSealedOutbox(1, 10), [{ seq: 2, entry: e2 }]);
        assert.deepStrictEqual(await s.listSealedOutbox(0, 1), [{ seq: 1, entry: e1 }]);
        assert.deepStrictEqual(await s.listSealedOutbox(2, 10), []);
        assert.deepStrictEqual(await s.countOutbox(), { unsealed: 2, sealed: 2 });

        assert.equal(await s.deleteSealedOutboxThrough(0), 0);
        assert.equal(await s.deleteSealedOutboxThrough(1), 1);
        assert.deepStrictEqual(await s.listSealedOutbox(0, 10), [{ seq: 2, entry: e2 }]);
        assert.equal(await s.deleteSealedOutboxThrough(100), 1, 'unsealed changes stay');
        assert.deepStrictEqual(await s.countOutbox(), { unsealed: 2, sealed: 0 });
        await s.sealOutbox(id3, 3, e1);
        await s.sealOutbox(id4, 4, e2);
        assert.equal(await s.deleteSealedOutboxThrough(4), 2);
        assert.deepStrictEqual(await s.countOutbox(), { unsealed: 0, sealed: 0 });
        assert.ok((await s.appendOutbox(changes[0]!, 2000)) > id4, 'ids are never handed out again');

        await rejectsWith(s.appendOutbox(new Uint8Array(0), 1), 'invalid_input', 'InvalidInputError');
        await rejectsWith(s.appendOutbox('x' as never, 1), 'invalid_input');
        await rejectsWith(s.appendOutbox(changes[0]!, Number.NaN), 'invalid_input');
        await rejectsWith(s.listUnsealedOutbox(0), 'invalid_input');
        await rejectsWith(s.listUnsealedOutbox(10_001), 'invalid_input');
        await rejectsWith(s.sealOutbox(id1, 0, e1), 'invalid_input');
        await rejectsWith(s.sealOutbox(1.5, 9, e1), 'invalid_input');
        await rejectsWith(s.sealOutbox(id1, 9, new Uint8Array(0)), 'invalid_input');
        await rejectsWith(s.listSealedOutbox(-1, 10), 'invalid_input');
        await rejectsWith(s.listSealedOutbox(0, 0), 'invalid_input');
        await rejectsWith(s.deleteSealedOutboxThrough(-1), 'invalid_input');
        assert.deepStrictEqual(await s.countOutbox(), { unsealed: 1, sealed: 0 });
      }),
  ],
  [
    'snapshots leave the outbox out; importSnapshot refuses a store holding only outbox rows and journals nothing',
    async (_h, url) => {
      const snap = await withStore(url, async (s) => {
        await s.setMeta(BACKUP_JOURNAL_META, 'on');
        await s.insertKey(makeKey());
        const snap = await s.exportSnapshot();
        assert.deepStrictEqual(Object.keys(snap).sort(), ['apiKeys', 'keys', 'meta']);
        return snap;
      });
      const s = await reopenEmpty(url);
      try {
        await s.appendOutbox(new Uint8Array([1]), 1);
        await rejectsWith(s.importSnapshot(snap), 'store_not_empty', 'ConflictError');
        assert.equal(await s.countKeys(), 0);
      } finally {
        await s.close();
      }
      const again = await reopenEmpty(url);
      try {
        await again.importSnapshot(snap);
        assert.equal(await again.getMeta(BACKUP_JOURNAL_META), 'on');
        assert.deepStrictEqual(await again.countOutbox(), { unsealed: 0, sealed: 0 }, 'a restore is not a change to journal');
      } finally {
        await again.close();
      }
    },
  ],
  [
    'a store made before the outbox (migration 0001 only) gains it on open and keeps its data',
    async (h, url) => {
      await migrateTo(h, url, '0001_initial');
      await h.exec(url, `insert into meta (key, value) values ('node_epoch', '3')`);
      const tables = h.kind === 'sqlite' ? `select name from sqlite_master where name = 'backup_outbox'` : `select to_regclass('backup_outbox') as name`;
      assert.ok([undefined, null].includes((await h.query(url, tables))[0]?.name as null | undefined), 'no outbox before');
      await withStore(url, async (s) => {
        assert.equal(await s.getMeta('node_epoch'), '3');
        await s.setMeta(BACKUP_JOURNAL_META, 'on');
        const k = makeKey();
        await s.insertKey(k);
        assert.deepStrictEqual(await journalOf(s), [{ op: 'key_put', key: k }]);
      });
      const applied = await h.query(url, `select name from ${MIGRATION_TABLE} order by name`);
      assert.deepStrictEqual(applied.map((r) => r.name), ['0001_initial', '0002_backup_outbox', '0003_tenants', '0004_ers_policy', '0005_keyshare']);
    },
  ],
  [
    'tenants: every record keeps its owner; listKeys filters by tenant and pages within it; snapshots and the journal carry it',
    (_h, url) => {
      const ctx = { snap: undefined as StoreSnapshot | undefined };
      return withStore(url, async (s) => {
        await s.setMeta(BACKUP_JOURNAL_META, 'on');
        const a = Array.from({ length: 7 }, (_, i) => makeKey({ keyId: `key_a${i}`, tenant: 'acme' }));
        const b = Array.from({ length: 5 }, (_, i) => makeKey({ keyId: `key_b${i}`, tenant: 'apikey-00112233445566ff' }));
        // Interleaved key ids: a tenant's page must skip the other's rows, not stop at them.
        for (const k of [a[0]!, b[0]!, ...a.slice(1), ...b.slice(1)]) await s.insertKey(k);
        assert.equal((await s.getKey('key_b0'))?.tenant, 'apikey-00112233445566ff');
        const pages = async (tenant: string | undefined, limit: number): Promise<string[]> => {
          const seen: string[] = [];
          let after: string | undefined;
          for (;;) {
            const page = await s.listKeys({ limit, ...(after === undefined ? {} : { afterKeyId: after }), ...(tenant === undefined ? {} : { tenant }) });
            seen.push(...page.map((k) => k.keyId));
            if (page.length < limit) return seen;
            after = page[page.length - 1]?.keyId;
          }
        };
        assert.deepStrictEqual(await pages('acme', 3), a.map((k) => k.keyId));
        assert.deepStrictEqual(await pages('apikey-00112233445566ff', 2), b.map((k) => k.keyId));
        assert.deepStrictEqual(await pages('nobody', 3), []);
        assert.equal((await pages(undefined, 4)).length, 12, 'no tenant: every key');
        const client = makeApiKey({ id: 'ak_c', tenant: 'acme' });
        const operator = makeApiKey({ id: 'ak_o', role: 'operator' });
        await s.insertApiKey(client);
        await s.insertApiKey(operator);
        assert.equal((await s.findApiKeyById('ak_c'))?.tenant, 'acme');
        assert.equal((await s.findApiKeyById('ak_o'))?.tenant, null);
        await s.insertDkgSession({ sessionId: 'dkg_t', keyId: 'key_t', state: randomBytes(8), step: 1, expiresAt: Date.now() + 60_000, tenant: 'acme' });
        assert.equal((await s.getDkgSession('dkg_t'))?.tenant, 'acme');
        const journal = await journalOf(s);
        assert.deepStrictEqual(journal.filter((c) => c.op === 'key_put').map((c) => (c.op === 'key_put' ? [c.key.keyId, c.key.tenant] : [])), [a[0]!, b[0]!, ...a.slice(1), ...b.slice(1)].map((k) => [k.keyId, k.tenant]));
        assert.deepStrictEqual(journal.filter((c) => c.op === 'api_key_put').map((c) => (c.op === 'api_key_put' ? c.apiKey.tenant : undefined)), ['acme', null]);
        ctx.snap = await s.exportSnapshot();
        assert.deepStrictEqual(new Set(ctx.snap.keys.map((k) => k.tenant)), new Set(['acme', 'apikey-00112233445566ff']));
      }).then(async () => {
        const again = await reopenEmpty(url);
        try {
          await again.importSnapshot(ctx.snap!);
          assert.deepStrictEqual(await again.exportSnapshot(), ctx.snap, 'a restore keeps every owner');
          assert.equal((await again.listKeys({ limit: 100, tenant: 'acme' })).length, 7);
        } finally {
          await again.close();
        }
      });
    },
  ],
  [
    'tenants: a malformed tenant, a client API key without one and an operator API key with one are refused and write nothing',
    (_h, url) =>
      withStore(url, async (s) => {
        for (const tenant of ['', 'A B', 'Acme', '-acme', 'a'.repeat(65), 5 as never, null as never, undefined as never]) {
          await rejectsWith(s.insertKey(makeKey({ tenant })), 'invalid_input', 'InvalidInputError');
          await rejectsWith(s.insertDkgSession({ sessionId: 'dkg_bad', keyId: 'key_a', state: randomBytes(4), step: 1, expiresAt: 1, tenant }), 'invalid_input');
        }
        await rejectsWith(s.insertApiKey(makeApiKey({ tenant: null })), 'invalid_input');
        await rejectsWith(s.insertApiKey(makeApiKey({ tenant: 'Not Valid' })), 'invalid_input');
        await rejectsWith(s.insertApiKey(makeApiKey({ role: 'operator', tenant: 'acme' })), 'invalid_input');
        await rejectsWith(s.listKeys({ limit: 10, tenant: 'A B' }), 'invalid_input');
        await rejectsWith(s.importSnapshot({ keys: [makeKey({ tenant: '' })], apiKeys: [], meta: [] }), 'invalid_input');
        assert.equal(await s.countKeys(), 0);
        assert.deepStrictEqual(await s.listApiKeys(), []);
        assert.equal(await s.getDkgSession('dkg_bad'), undefined);
      }),
  ],
  [
    'a store made before tenants (migrations 0001-0002) is migrated on open: keys and client API keys to tenant default, operator keys to none',
    async (h, url) => {
      await migrateTo(h, url, '0002_backup_outbox');
      const bytes = (hex: string) => (h.kind === 'sqlite' ? `x'${hex}'` : `'\\x${hex}'::bytea`);
      await h.exec(
        url,
        `insert into keys (key_id, curve, threshold, max_signers, identifier, group_public_key, public_package, encrypted_share, status, origin, created_at)
         values ('key_old', 'ed25519', 2, 3, '01', ${bytes('aa')}, ${bytes('bb')}, ${bytes('cc')}, 'active', 'dkg', 1700000000000)`,
      );
      await h.exec(url, `insert into api_keys (id, secret_hash, role, label, created_at, revoked_at) values ('00112233445566aa', ${bytes('11'.repeat(32))}, 'client', 'app', 1, null)`);
      await h.exec(url, `insert into api_keys (id, secret_hash, role, label, created_at, revoked_at) values ('00112233445566bb', ${bytes('22'.repeat(32))}, 'operator', 'ops', 1, null)`);
      await withStore(url, async (s) => {
        const k = await s.getKey('key_old');
        assert.equal(k?.tenant, 'default');
        assert.deepStrictEqual(k?.encryptedShare, new Uint8Array([0xcc]), 'the rest of the row as it was');
        assert.deepStrictEqual((await s.listApiKeys()).map((a) => [a.id, a.role, a.tenant]), [
          ['00112233445566aa', 'client', 'default'],
          ['00112233445566bb', 'operator', null],
        ]);
        assert.deepStrictEqual((await s.listKeys({ limit: 10, tenant: 'default' })).map((r) => r.keyId), ['key_old']);
      });
      const applied = await h.query(url, `select name from ${MIGRATION_TABLE} order by name`);
      assert.deepStrictEqual(applied.map((r) => r.name), ['0001_initial', '0002_backup_outbox', '0003_tenants', '0004_ers_policy', '0005_keyshare']);
    },
  ],
  [
    'ers policy: a key and a DKG session keep theirs, none reads as absent; the journal and snapshots carry it; a bad one is refused and writes nothing',
    (_h, url) => {
      const ctx = { snap: undefined as StoreSnapshot | undefined };
      return withStore(url, async (s) => {
        await s.setMeta(BACKUP_JOURNAL_META, 'on');
        const keys = [makeKey({ keyId: 'key_p0' }), makeKey({ keyId: 'key_p1', ersPolicy: 'off' }), makeKey({ keyId: 'key_p2', ersPolicy: 'allow' }), makeKey({ keyId: 'key_p3', ersPolicy: 'require' })];
        for (const k of keys) await s.insertKey(k);
        for (const k of keys) assert.deepStrictEqual(await s.getKey(k.keyId), k);
        assert.equal('ersPolicy' in (await s.getKey('key_p0'))!, false, 'no policy: no field');
        assert.deepStrictEqual((await s.listKeys({ limit: 10 })).map((k) => k.ersPolicy), [undefined, 'off', 'allow', 'require']);
        await s.insertDkgSession({ sessionId: 'dkg_p', keyId: 'key_p9', state: randomBytes(8), step: 1, expiresAt: Date.now() + 60_000, tenant: 'default', ersPolicy: 'require' });
        assert.equal((await s.getDkgSession('dkg_p'))?.ersPolicy, 'require');
        assert.equal(await s.advanceDkgSession('dkg_p', 1, 2, randomBytes(8)), true);
        assert.equal((await s.getDkgSession('dkg_p'))?.ersPolicy, 'require', 'a session keeps its policy through its steps');
        const journal = await journalOf(s);
        assert.deepStrictEqual(journal.flatMap((c) => (c.op === 'key_put' ? [c.key.ersPolicy ?? null] : [])), [null, 'off', 'allow', 'require']);
        for (const ersPolicy of ['', 'OFF', 'maybe', 1 as never]) {
          await rejectsWith(s.insertKey(makeKey({ keyId: 'key_bad', ersPolicy: ersPolicy as never })), 'invalid_input', 'InvalidInputError');
          await rejectsWith(s.insertDkgSession({ sessionId: 'dkg_bad', keyId: 'key_a', state: randomBytes(4), step: 1, expiresAt: 1, tenant: 'default', ersPolicy: ersPolicy as never }), 'invalid_input');
        }
        assert.equal(await s.getKey('key_bad'), undefined);
        assert.equal(await s.getDkgSession('dkg_bad'), undefined);
        ctx.snap = await s.exportSnapshot();
      }).then(async () => {
        const again = await reopenEmpty(url);
        try {
          await again.importSnapshot(ctx.snap!);
          assert.deepStrictEqual(await again.exportSnapshot(), ctx.snap, 'a restore keeps every policy');
          assert.equal((await again.getKey('key_p3'))?.ersPolicy, 'require');
        } finally {
          await again.close();
        }
      });
    },
  ],
  [
    'a store made before per-key ERS policies (migrations 0001-0003) is migrated on open: its keys and DKG sessions have none',
    async (h, url) => {
      await migrateTo(h, url, '0003_tenants');
      const bytes = (hex: string) => (h.kind === 'sqlite' ? `x'${hex}'` : `'\\x${hex}'::bytea`);
      await h.exec(
        url,
        `insert into keys (key_id, curve, threshold, max_signers, identifier, group_public_key, public_package, encrypted_share, status, origin, created_at, tenant)
         values ('key_old', 'ed25519', 2, 3, '01', ${bytes('aa')}, ${bytes('bb')}, ${bytes('cc')}, 'active', 'dkg', 1700000000000, 'acme')`,
      );
      await h.exec(url, `insert into dkg_sessions (session_id, key_id, state, step, expires_at, tenant) values ('dkg_old', 'key_next', ${bytes('dd')}, 1, 9999999999999, 'acme')`);
      await withStore(url, async (s) => {
        const k = await s.getKey('key_old');
        assert.equal(k?.tenant, 'acme');
        assert.equal(k !== undefined && 'ersPolicy' in k, false, 'an old key has no policy: the node settings decide');
        assert.deepStrictEqual(k?.encryptedShare, new Uint8Array([0xcc]), 'the rest of the row as it was');
        const d = await s.getDkgSession('dkg_old');
        assert.equal(d?.tenant, 'acme');
        assert.equal(d !== undefined && 'ersPolicy' in d, false);
      });
      const applied = await h.query(url, `select name from ${MIGRATION_TABLE} order by name`);
      assert.deepStrictEqual(applied.map((r) => r.name), ['0001_initial', '0002_backup_outbox', '0003_tenants', '0004_ers_policy', '0005_keyshare']);
    },
  ],
  [
    'a database migrated by a newer lifeboat is refused with store_schema_newer',
    async (h, url) => {
      await withStore(url, async (s) => void (await s.countKeys()));
      await h.exec(url, `insert into lifeboat_migration (name, timestamp) values ('9999_from_the_future', '2100-01-01')`);
      await rejectsWith(openKeyNodeStore(url), 'store_schema_newer');
    },
  ],
];

/** Opens the same location anew after emptying it (a restore target). */
async function reopenEmpty(url: string): Promise<KeyNodeStore> {
  const p = parseStoreUrl(url);
  if (p.kind === 'sqlite') {
    rmSync(p.path, { force: true });
    rmSync(`${p.path}-wal`, { force: true });
    rmSync(`${p.path}-shm`, { force: true });
  } else {
    await resetTestDatabase(url);
  }
  return openKeyNodeStore(url);
}

for (const h of [sqliteWithDialect(), postgresWithDialect()]) {
  describe(`keynode store conformance: ${h.kind}`, { skip: h.skip }, () => {
    before(() => h.setup());
    after(() => h.teardown());
    for (const [name, fn] of cases) it(name, async () => fn(h, await h.fresh()));
  });
}

// ---- SQLite only ----

/** Spawns `node --import tsx` on ESM code that imports the store module as `store`. */
function spawnStoreChild(code: string): ChildProcess {
  const src = `const store = await import(${JSON.stringify(STORE_MODULE)});\n${code}`;
  return tracked(spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', src], { stdio: ['pipe', 'pipe', 'pipe'] }));
}

function lineReader(child: ChildProcess): AsyncIterator<string> {
  assert.ok(child.stdout);
  return createInterface({ input: child.stdout })[Symbol.asyncIterator]();
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(child.exitCode) : child.once('exit', resolve)));
}

describe('keynode store: sqlite file', () => {
  let dir = '';
  before(() => void (dir = mkdtempSync(join(tmpdir(), 'lifeboat-store-sqlite-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('creates the file 0600 in a 0700 directory, WAL mode, and refuses a file others can read', async () => {
    const path = join(dir, 'new', 'keynode.db');
    await withStore(`sqlite:${path}`, async (s) => {
      await s.insertKey(makeKey());
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.equal(statSync(`${path}-wal`).mode & 0o777, 0o600);
      assert.equal(statSync(join(dir, 'new')).mode & 0o777, 0o700);
    });
    const db = new Database(path, { readonly: true });
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    db.close();
    chmodSync(path, 0o644);
    await rejectsWith(openKeyNodeStore(`sqlite:${path}`), 'insecure_permissions');
  });

  it('a round-one nonce skips its fsync, and every write queued around it runs with synchronous=FULL', async () => {
    await withStore(`sqlite:${join(dir, 'sync.db')}`, async (s) => {
      // The store's own connection (synchronous is per connection), reached past its type for this check.
      const db = (s as unknown as { db: Kysely<unknown> }).db;
      const level = async () => (await sql<{ synchronous: number }>`pragma synchronous`.execute(db)).rows[0]!.synchronous;
      const k = makeKey();
      await s.insertKey(k);
      assert.equal(await level(), 2, 'FULL');
      const n = makeNonce(k.keyId);
      const [, before, , after] = await Promise.all([s.insertNonce(n), level(), s.insertKey(makeKey()), level()]);
      assert.deepStrictEqual([before, after, await level()], [2, 2, 2], 'FULL before, between and after');
      await rejectsWith(s.insertNonce(n), 'nonce_exists', 'ConflictError');
      await rejectsWith(s.insertNonce(makeNonce('key_absent')), 'key_id_not_exists', 'NotFoundError');
      assert.deepStrictEqual(await s.consumeNonce(k.keyId, n.nonceId), n);
      assert.equal(await level(), 2, 'FULL again after a failed insert');
    });
  });

  it('a round-two claim commits without its own fsync, then syncs the WAL apart: synchronous=FULL around it, and a WAL it cannot sync is store_sync_failed', async () => {
    const path = join(dir, 'claim.db');
    await withStore(`sqlite:${path}`, async (s) => {
      const db = (s as unknown as { db: Kysely<unknown> }).db;
      const level = async () => (await sql<{ synchronous: number }>`pragma synchronous`.execute(db)).rows[0]!.synchronous;
      const k = makeKey();
      await s.insertKey(k);
      const [n1, n2] = [makeNonce(k.keyId), makeNonce(k.keyId)];
      await s.insertNonce(n1);
      await s.insertNonce(n2);
      const [claim, between] = await Promise.all([s.claimNonce(k.keyId, n1.nonceId), level()]);
      assert.equal(between, 2, 'FULL for what was queued behind the claim');
      await claim!.synced;
      assert.equal(await level(), 2, 'FULL after');
      // Another connection sees the nonce gone.
      const other = new Database(path, { readonly: true });
      assert.equal((other.prepare('select count(*) as n from nonces where nonce_id = ?').get(n1.nonceId) as { n: number }).n, 0);
      other.close();
      // A WAL that cannot be opened by its name: the deletion still decides, the sync says it failed.
      rmSync(`${path}-wal`);
      const failed = await s.claimNonce(k.keyId, n2.nonceId);
      assert.deepStrictEqual(failed?.nonce, n2);
      await rejectsWith(failed!.synced, 'store_sync_failed', 'LifeboatError');
    });
  });

  it('refuses a file that is not a database, by name and without changing it', async () => {
    const path = join(dir, 'notes.db');
    writeFileSync(path, 'these are not the pages you are looking for, '.repeat(100), { mode: 0o600 });
    await rejectsWith(openKeyNodeStore(`sqlite:${path}`), 'store_not_a_database');
    assert.equal(statSync(path).size, 4500);
  });

  it('sqlite::memory: works and sqlite:///abs names the absolute path', async () => {
    await withStore('sqlite::memory:', async (s) => {
      await s.insertKey(makeKey());
      assert.equal((await s.exportSnapshot()).keys.length, 1);
    });
    const path = join(dir, 'abs.db');
    await withStore(`sqlite://${path}`, async (s) => void (await s.setMeta('a', 'b')));
    await withStore(`sqlite:${path}`, async (s) => assert.equal(await s.getMeta('a'), 'b'));
  });

  it('every key acknowledged before a SIGKILL is there on reopen', async () => {
    const path = join(dir, 'kill.db');
    const url = `sqlite:${path}`;
    const child = spawnStoreChild(`
      const s = await store.openKeyNodeStore(${JSON.stringify(url)});
      const bytes = (n, b) => new Uint8Array(n).fill(b);
      for (let i = 0; ; i++) {
        const keyId = 'key_' + String(i).padStart(8, '0');
        await s.insertKey({ keyId, curve: 'ed25519', threshold: 2, maxSigners: 3, identifier: '01', groupPublicKey: bytes(32, 1),
          publicPackage: bytes(300, 2), encryptedShare: bytes(80, i % 256), status: 'active', origin: 'dkg', createdAt: i, tenant: 'default' });
        process.stdout.write(keyId + '\\n');
      }
    `);
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const acked: string[] = [];
    const lines = lineReader(child);
    try {
      while (acked.length < 60) {
        const r = await lines.next();
        assert.ok(!r.done, `the writer ended early: ${stderr}`);
        acked.push(r.value);
      }
    } finally {
      child.kill('SIGKILL');
      await exited(child);
    }
    assert.equal(child.signalCode, 'SIGKILL');
    await withStore(url, async (s) => {
      for (const [i, keyId] of acked.entries()) {
        const k = await s.getKey(keyId);
        assert.ok(k, `acknowledged ${keyId} was lost`);
        assert.deepStrictEqual(k.encryptedShare, new Uint8Array(80).fill(i % 256));
      }
      assert.ok((await s.countKeys()) >= acked.length);
    });
  });

  it('consumers in 6 processes racing for the same 10 nonces: each nonce goes to exactly one', async () => {
    const url = `sqlite:${join(dir, 'race.db')}`;
    const k = makeKey();
    const nonces = Array.from({ length: 10 }, () => makeNonce(k.keyId));
    await withStore(url, async (s) => {
      await s.insertKey(k);
      for (const n of nonces) await s.insertNonce(n);
    });
    const ids = nonces.map((n) => n.nonceId);
    const children = Array.from({ length: 6 }, (_, c) => {
      const order = c % 2 === 0 ? ids : [...ids].reverse();
      return spawnStoreChild(`
        const s = await store.openKeyNodeStore(${JSON.stringify(url)});
        process.stdout.write('ready\\n');
        process.stdin.once('data', async () => {
          const got = [];
          for (const id of ${JSON.stringify(order)}) if (await s.consumeNonce(${JSON.stringify(k.keyId)}, id)) got.push(id);
          process.stdout.write(JSON.stringify(got) + '\\n');
          await s.close();
          process.exit(0);
        });
      `);
    });
    let got: string[][];
    try {
      const readers = children.map(lineReader);
      for (const r of readers) assert.equal((await r.next()).value, 'ready');
      for (const c of children) c.stdin?.end('go\n'); // all open and waiting: release them at once
      got = (await Promise.all(readers.map((r) => r.next()))).map((r) => JSON.parse(String(r.value)) as string[]);
    } finally {
      for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
      await Promise.all(children.map(exited));
    }
    assert.deepStrictEqual(got.flat().sort(), [...ids].sort(), `each nonce exactly once: ${JSON.stringify(got)}`);
    await withStore(url, async (s) => assert.equal(await s.countNonces(), 0));
  });
});

// ---- PostgreSQL only ----

describe('keynode store: postgresql', { skip: postgresSkipReason() }, () => {
  let server: TestPostgres | undefined;
  let dir = '';
  before(async () => {
    server = await startTestPostgres();
    dir = mkdtempSync(join(tmpdir(), 'lifeboat-store-pg-'));
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a snapshot from SQLite imports into PostgreSQL unchanged (moving a node to PostgreSQL)', async () => {
    assert.ok(server);
    const sqliteUrl = `sqlite:${join(dir, 'from.db')}`;
    const snap = await withStore(sqliteUrl, async (s) => {
      for (let i = 0; i < 30; i++) await s.insertKey(makeKey({ curve: i % 2 ? 'secp256k1' : 'ed25519' }));
      await s.insertApiKey(makeApiKey());
      await s.setMeta('node_epoch', '4');
      return s.exportSnapshot();
    });
    await resetTestDatabase(server.url);
    await withStore(server.url, async (p) => {
      await p.importSnapshot(snap);
      assert.deepStrictEqual(await p.exportSnapshot(), snap);
    });
  });

  it('two stores opening one new database at once both migrate it cleanly', async () => {
    assert.ok(server);
    await resetTestDatabase(server.url);
    const stores = await Promise.all([openKeyNodeStore(server.url), openKeyNodeStore(server.url), openKeyNodeStore(server.url)]);
    try {
      await stores[0]!.insertKey(makeKey());
      assert.equal(await stores[2]!.countKeys(), 1);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it('an unreachable server is store_unavailable, and the password never shows in the error', async () => {
    const url = 'postgres://lifeboat:hunter2-secret@127.0.0.1:1/nothing';
    await assert.rejects(openKeyNodeStore(url), (err: unknown) => {
      assert.ok(isLifeboatError(err, 'store_unavailable'), String(err));
      assert.equal(err.status, 503);
      assert.ok(!`${err.message} ${err.hint}`.includes('hunter2'));
      return true;
    });
  });
});

// ---- store urls ----

describe('keynode store urls', () => {
  it('parses sqlite and postgres forms', () => {
    assert.deepStrictEqual(parseStoreUrl('sqlite:./data/keynode.db'), { kind: 'sqlite', path: './data/keynode.db' });
    assert.deepStrictEqual(parseStoreUrl('sqlite:///var/lib/lifeboat/keynode.db'), { kind: 'sqlite', path: '/var/lib/lifeboat/keynode.db' });
    assert.deepStrictEqual(parseStoreUrl('sqlite::memory:'), { kind: 'sqlite', path: ':memory:' });
    assert.deepStrictEqual(parseStoreUrl('postgres://u:p@db:5432/lifeboat?sslmode=require'), { kind: 'postgres', url: 'postgres://u:p@db:5432/lifeboat?sslmode=require' });
    assert.equal(parseStoreUrl('postgresql://db/x').kind, 'postgres');
  });

  it('refuses unknown schemes and empty paths with a hint, never echoing the url', async () => {
    for (const url of ['mysql://root:s3cret@db/x', './keynode.db', '', 'sqlite:', 'postgres:db', 'file:/tmp/x.db']) {
      await assert.rejects(openKeyNodeStore(url), (err: unknown) => {
        assert.ok(isLifeboatError(err, 'invalid_store_url'), `${url}: ${String(err)}`);
        assert.equal(err.name, 'InvalidInputError');
        assert.ok(err.hint?.includes('sqlite:'), err.hint);
        assert.ok(!err.message.includes('s3cret'));
        return true;
      });
    }
  });

  it('redacts passwords for logs', () => {
    assert.equal(redactStoreUrl('postgres://node:pa:ss@db:5432/lb'), 'postgres://node:***@db:5432/lb');
    assert.equal(redactStoreUrl('postgresql://db/lb?user=n&password=x&sslmode=require'), 'postgresql://db/lb?user=n&password=***&sslmode=require');
    assert.equal(redactStoreUrl('sqlite:/var/lib/keynode.db'), 'sqlite:/var/lib/keynode.db');
  });

  it('node.json keeps a store URL without its password', () => {
    assert.equal(storeUrlWithoutPassword('postgres://node:pa:ss@db:5432/lb'), 'postgres://node@db:5432/lb');
    assert.equal(storeUrlWithoutPassword('postgresql://db/lb?user=n&password=x&sslmode=require'), 'postgresql://db/lb?user=n&sslmode=require');
    assert.equal(storeUrlWithoutPassword('postgres://node@db:5432/lb?sslmode=verify-full'), 'postgres://node@db:5432/lb?sslmode=verify-full');
    assert.equal(storeUrlWithoutPassword('sqlite:/var/lib/keynode.db'), 'sqlite:/var/lib/keynode.db');
  });
});
