/**
 * The backup store's conformance suite: one list of cases, run against SQLite (a file) and against a
 * real PostgreSQL (test/helpers/postgres.ts), with what only one backend has, then the store urls.
 * Every error code of the contract in src/backup/store/types.ts has a case here.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from '../src/crypto/random.js';
import { isLifeboatError } from '../src/errors.js';
import {
  type BackupStore,
  type BackupStoreKind,
  type EntryRecord,
  type OpenBackupStoreOptions,
  openBackupStore,
  parseBackupStoreUrl,
  redactStoreUrl,
} from '../src/backup/store/index.js';
import { countRows, postgresHarness, sqliteHarness, type StoreHarness } from './helpers/store-harness.js';
import { mapError } from '../src/backup/store/queries.js';
import { openKeyNodeStore } from '../src/keynode/store/index.js';

/** The shared harness plus a row count, read beside the store. */
interface Harness extends StoreHarness {
  count(url: string, table: string): Promise<number>;
}

function withCount(h: StoreHarness): Harness {
  return { ...h, count: (url, table) => countRows(h, url, table) };
}

// ---- records ----

const ZERO = new Uint8Array(32);
const sha256 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest());

/** `count` chained entries from seq `from`, the first naming `prev`; bytes are random (the store never parses them). */
function chain(from: number, count: number, prev: Uint8Array = ZERO, size = 64): EntryRecord[] {
  const out: EntryRecord[] = [];
  for (let seq = from; seq < from + count; seq++) {
    const bytes = randomBytes(size);
    const hash = sha256(bytes);
    out.push({ seq, prevHash: prev, hash, bytes });
    prev = hash;
  }
  return out;
}

const last = <T>(a: T[]): T => a[a.length - 1]!;

function registration() {
  return { record: randomBytes(192), wrappedKey: randomBytes(120), authPublicKey: randomBytes(32) };
}

async function rejectsWith(p: Promise<unknown>, code: string, cls?: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isLifeboatError(err, code), `expected ${code}, got ${String(err)}`);
    if (cls) assert.equal(err.name, cls);
    return true;
  });
}

async function withStore<T>(url: string, fn: (s: BackupStore) => Promise<T>, opts?: OpenBackupStoreOptions): Promise<T> {
  const store = await openBackupStore(url, opts);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** An account with one stream holding entries 1..n; returns the entries. */
async function seeded(s: BackupStore, n: number, account = 'acme', stream = 'node-0123456789abcdef'): Promise<EntryRecord[]> {
  if ((await s.getAccount(account)) === undefined) await s.createAccount(account, randomBytes(32), 1000);
  const entries = chain(1, n);
  await s.appendEntries(account, stream, entries, 2000);
  return entries;
}

const STREAM = 'node-0123456789abcdef';

function compaction(id: string, seq: number, over: { account?: string; stream?: string; chunkCount?: number; createdAt?: number } = {}) {
  return { id, account: over.account ?? 'acme', stream: over.stream ?? STREAM, seq, hash: randomBytes(32), size: 100, chunkCount: over.chunkCount ?? 2, createdAt: over.createdAt ?? 5000 };
}

/** Begins, uploads every chunk and completes a compaction. */
async function compact(s: BackupStore, id: string, seq: number): Promise<void> {
  await s.beginCompaction(compaction(id, seq, { chunkCount: 2 }));
  await s.putCompactionChunk('acme', STREAM, id, 0, randomBytes(60));
  await s.putCompactionChunk('acme', STREAM, id, 1, randomBytes(40));
  await s.completeCompaction('acme', STREAM, id, 6000 + seq);
}

// ---- the cases every backend passes ----

type Case = [name: string, fn: (h: Harness, url: string) => Promise<void>];

const cases: Case[] = [
  [
    'accounts: create, get as plain Uint8Arrays, list in bytewise order; a taken name is account_exists',
    (_h, url) =>
      withStore(url, async (s) => {
        const invite = randomBytes(32);
        await s.createAccount('acme', invite, 1000);
        const got = await s.getAccount('acme');
        assert.deepStrictEqual(got, { name: 'acme', inviteHash: invite, registration: null, restoreTokenHash: null, createdAt: 1000, updatedAt: 1000 });
        assert.equal(Object.getPrototypeOf(got?.inviteHash), Uint8Array.prototype);
        await rejectsWith(s.createAccount('acme', randomBytes(32), 2000), 'account_exists', 'ConflictError');
        assert.deepStrictEqual((await s.getAccount('acme'))?.inviteHash, invite, 'the first stays');
        for (const name of ['b', 'B', 'a.b', 'a-b', 'a_b', 'Z9', '0']) await s.createAccount(name, randomBytes(32), 1);
        const names = (await s.listAccounts()).map((a) => a.name);
        assert.deepStrictEqual(names, [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))));
        assert.equal(names.length, 8);
        assert.equal(await s.getAccount('nobody'), undefined);
      }),
  ],
  [
    'completeRegistration needs the invite and an unregistered account; replacePassword keeps the auth key',
    (_h, url) =>
      withStore(url, async (s) => {
        const invite = randomBytes(32);
        await s.createAccount('acme', invite, 1000);
        const reg = registration();
        assert.equal(await s.completeRegistration('acme', randomBytes(32), reg, 2000), false, 'wrong invite');
        assert.equal((await s.getAccount('acme'))?.registration, null, 'nothing changed');
        assert.equal(await s.completeRegistration('nobody', invite, reg, 2000), false, 'no such account');
        assert.equal(await s.completeRegistration('acme', invite, reg, 2000), true);
        assert.deepStrictEqual(await s.getAccount('acme'), { name: 'acme', inviteHash: null, registration: reg, restoreTokenHash: null, createdAt: 1000, updatedAt: 2000 });
        assert.equal(await s.completeRegistration('acme', invite, registration(), 3000), false, 'the invite is single use');
        assert.deepStrictEqual((await s.getAccount('acme'))?.registration, reg);

        const next = { record: randomBytes(192), wrappedKey: randomBytes(120) };
        await s.replacePassword('acme', next, 4000);
        const after = await s.getAccount('acme');
        assert.deepStrictEqual(after?.registration, { ...next, authPublicKey: reg.authPublicKey });
        assert.equal(after?.updatedAt, 4000);
        await s.createAccount('invited', randomBytes(32), 1);
        await rejectsWith(s.replacePassword('invited', next, 5000), 'account_not_found', 'NotFoundError');
        await rejectsWith(s.replacePassword('nobody', next, 5000), 'account_not_found', 'NotFoundError');
        assert.equal((await s.getAccount('invited'))?.registration, null);
      }),
  ],
  [
    'setRestoreTokenHash sets, replaces and clears the hash of a registered account only; a password change keeps it',
    (_h, url) =>
      withStore(url, async (s) => {
        const invite = randomBytes(32);
        await s.createAccount('acme', invite, 1000);
        await rejectsWith(s.setRestoreTokenHash('acme', randomBytes(32), 1500), 'account_not_found', 'NotFoundError');
        await rejectsWith(s.setRestoreTokenHash('nobody', randomBytes(32), 1500), 'account_not_found', 'NotFoundError');
        assert.equal(await s.completeRegistration('acme', invite, registration(), 2000), true);
        const first = randomBytes(32);
        await s.setRestoreTokenHash('acme', first, 3000);
        assert.deepStrictEqual((await s.getAccount('acme'))?.restoreTokenHash, first);
        assert.equal((await s.getAccount('acme'))?.updatedAt, 3000);
        const second = randomBytes(32);
        await s.setRestoreTokenHash('acme', second, 4000);
        await s.replacePassword('acme', { record: randomBytes(192), wrappedKey: randomBytes(120) }, 5000);
        assert.deepStrictEqual((await s.getAccount('acme'))?.restoreTokenHash, second);
        await rejectsWith(s.setRestoreTokenHash('acme', randomBytes(31), 6000), 'invalid_input');
        await s.setRestoreTokenHash('acme', null, 6000);
        assert.equal((await s.getAccount('acme'))?.restoreTokenHash, null);
      }),
  ],
  [
    'ephemerals: put, take once (expired too), per kind; a taken (kind, id) is ephemeral_exists',
    (_h, url) =>
      withStore(url, async (s) => {
        const login = { kind: 'login' as const, id: 'ls_1', account: 'nobody-yet', value: randomBytes(96), expiresAt: 10 };
        await s.putEphemeral(login);
        await s.putEphemeral({ ...login, kind: 'challenge', value: randomBytes(32) });
        await rejectsWith(s.putEphemeral({ ...login, value: randomBytes(8) }), 'ephemeral_exists', 'ConflictError');
        assert.deepStrictEqual(await s.takeEphemeral('login', 'ls_1'), login, 'an expired one is still returned');
        assert.equal(await s.takeEphemeral('login', 'ls_1'), undefined, 'single use');
        assert.equal((await s.takeEphemeral('challenge', 'ls_1'))?.kind, 'challenge');
        assert.equal(await s.takeEphemeral('challenge', 'never'), undefined);
        await s.putEphemeral(login); // its id is free again
      }),
  ],
  [
    '20 concurrent takeEphemeral of one id, each in its own transaction: exactly one gets it',
    (_h, url) =>
      withStore(
        url,
        async (s) => {
          for (let round = 0; round < 3; round++) {
            const rec = { kind: 'challenge' as const, id: `ch_${round}`, account: 'acme', value: randomBytes(32), expiresAt: 99 };
            await s.putEphemeral(rec);
            const got = await Promise.all(
              Array.from({ length: 20 }, () =>
                s.transaction(async (tx) => {
                  const r = await tx.takeEphemeral('challenge', rec.id);
                  await sleep(5); // the winner holds its transaction open, so the others really wait
                  return r;
                }),
              ),
            );
            const winners = got.filter((r) => r !== undefined);
            assert.equal(winners.length, 1);
            assert.deepStrictEqual(winners[0], rec);
          }
          await s.putEphemeral({ kind: 'login', id: 'plain', account: 'acme', value: randomBytes(8), expiresAt: 1 });
          const got = await Promise.all(Array.from({ length: 20 }, () => s.takeEphemeral('login', 'plain')));
          assert.equal(got.filter((r) => r !== undefined).length, 1);
        },
        { maxConnections: 25 },
      ),
  ],
  [
    'tokens: put, get (expired too), token_exists, account_not_found, deleteTokens by kind',
    (_h, url) =>
      withStore(url, async (s) => {
        await s.createAccount('acme', randomBytes(32), 1);
        await s.createAccount('other', randomBytes(32), 1);
        const t1 = { hash: randomBytes(32), account: 'acme', kind: 'login' as const, expiresAt: 5 };
        await s.putToken(t1);
        await s.putToken({ hash: randomBytes(32), account: 'acme', kind: 'login', expiresAt: 50 });
        await s.putToken({ hash: randomBytes(32), account: 'acme', kind: 'backup', expiresAt: 50 });
        await s.putToken({ hash: randomBytes(32), account: 'other', kind: 'login', expiresAt: 50 });
        assert.deepStrictEqual(await s.getToken(t1.hash), t1);
        assert.equal(await s.getToken(randomBytes(32)), undefined);
        await rejectsWith(s.putToken({ ...t1, account: 'other' }), 'token_exists', 'ConflictError');
        await rejectsWith(s.putToken({ ...t1, hash: randomBytes(32), account: 'nobody' }), 'account_not_found', 'NotFoundError');
        assert.equal(await s.deleteTokens('acme', 'login'), 2);
        assert.equal(await s.deleteTokens('acme', 'login'), 0);
        assert.equal(await s.getToken(t1.hash), undefined);
        assert.equal(await s.deleteTokens('acme', 'backup'), 1);
        assert.equal(await s.deleteTokens('other', 'login'), 1);
      }),
  ],
  [
    'deleteExpired removes ephemerals and tokens at or before now and stale uploads with their chunks, nothing else',
    (h, url) =>
      withStore(url, async (s) => {
        await seeded(s, 3);
        for (const [id, expiresAt] of [['e1', 100], ['e2', 200], ['e3', 201]] as const) {
          await s.putEphemeral({ kind: 'login', id, account: 'acme', value: randomBytes(8), expiresAt });
          await s.putToken({ hash: randomBytes(32), account: 'acme', kind: 'backup', expiresAt });
        }
        await s.beginCompaction(compaction('stale', 2, { createdAt: 1000, chunkCount: 3 }));
        await s.putCompactionChunk('acme', STREAM, 'stale', 0, randomBytes(10));
        await s.putCompactionChunk('acme', STREAM, 'stale', 2, randomBytes(10));
        await s.beginCompaction(compaction('fresh', 2, { createdAt: 1001, chunkCount: 1 }));
        await s.putCompactionChunk('acme', STREAM, 'fresh', 0, randomBytes(10));
        await s.beginCompaction(compaction('done', 1, { createdAt: 10, chunkCount: 1 }));
        await s.putCompactionChunk('acme', STREAM, 'done', 0, randomBytes(10));
        await s.completeCompaction('acme', STREAM, 'done', 20);
        assert.deepStrictEqual(await s.deleteExpired(200, 1000), { ephemerals: 2, tokens: 2, uploads: 1 });
        assert.deepStrictEqual(await s.deleteExpired(200, 1000), { ephemerals: 0, tokens: 0, uploads: 0 });
        assert.equal((await s.takeEphemeral('login', 'e3'))?.expiresAt, 201);
        assert.equal(await s.getCompaction('acme', STREAM, 'stale'), undefined);
        assert.equal(await s.getCompactionChunk('acme', STREAM, 'stale', 0), undefined);
        assert.equal((await s.getCompaction('acme', STREAM, 'fresh'))?.state, 'uploading');
        assert.equal((await s.currentCompaction('acme', STREAM))?.id, 'done', 'complete ones are never stale');
        assert.equal(await h.count(url, 'compaction_chunks'), 2);
        assert.equal(await h.count(url, 'tokens'), 1);
      }),
  ],
  [
    'appendEntries creates the stream on its first entry; listEntries pages; getEntry; listStreams by name',
    (_h, url) =>
      withStore(url, async (s) => {
        await s.createAccount('acme', randomBytes(32), 1);
        assert.equal(await s.getStream('acme', STREAM), undefined);
        assert.deepStrictEqual(await s.listEntries('acme', STREAM, 0, 10), []);
        const entries = chain(1, 25);
        const head = await s.appendEntries('acme', STREAM, entries.slice(0, 10), 2000);
        assert.deepStrictEqual(head, { account: 'acme', stream: STREAM, headSeq: 10, headHash: entries[9]!.hash, firstSeq: 1, createdAt: 2000, updatedAt: 2000 });
        const head2 = await s.appendEntries('acme', STREAM, entries.slice(10), 3000);
        assert.deepStrictEqual(head2, { ...head, headSeq: 25, headHash: last(entries).hash, updatedAt: 3000 });
        assert.deepStrictEqual(await s.getStream('acme', STREAM), head2);
        const got = await s.getEntry('acme', STREAM, 7);
        assert.deepStrictEqual(got, entries[6]);
        assert.equal(Object.getPrototypeOf(got?.bytes), Uint8Array.prototype);
        assert.equal(await s.getEntry('acme', STREAM, 26), undefined);
        const paged: EntryRecord[] = [];
        for (let after = 0; ; ) {
          const page = await s.listEntries('acme', STREAM, after, 7);
          paged.push(...page);
          if (page.length < 7) break;
          after = last(page).seq;
        }
        assert.deepStrictEqual(paged, entries);
        assert.deepStrictEqual(await s.listEntries('acme', STREAM, 25, 10), []);
        assert.deepStrictEqual(await s.listEntries('acme', 'other', 0, 10), []);
        await s.appendEntries('acme', 'node-a', chain(1, 1), 1);
        await s.appendEntries('acme', 'Node-b', chain(1, 1), 1);
        assert.deepStrictEqual((await s.listStreams('acme')).map((r) => r.stream), ['Node-b', 'node-0123456789abcdef', 'node-a']);
        assert.deepStrictEqual(await s.listStreams('nobody'), []);
      }),
  ],
  [
    'a re-sent batch is accepted and writes nothing; a batch overlapping the head appends only the new entries',
    (h, url) =>
      withStore(url, async (s) => {
        const entries = await seeded(s, 10);
        const head = await s.getStream('acme', STREAM);
        assert.deepStrictEqual(await s.appendEntries('acme', STREAM, entries, 9000), head, 'head and updatedAt unchanged');
        assert.deepStrictEqual(await s.appendEntries('acme', STREAM, entries.slice(3, 5), 9000), head);
        const more = chain(11, 5, entries[9]!.hash);
        const after = await s.appendEntries('acme', STREAM, [...entries.slice(6), ...more], 9500);
        assert.equal(after.headSeq, 15);
        assert.deepStrictEqual(after.headHash, last(more).hash);
        assert.deepStrictEqual(await s.listEntries('acme', STREAM, 0, 100), [...entries, ...more]);
        assert.equal(await h.count(url, 'entries'), 15);
      }),
  ],
  [
    'entry_conflict, chain_mismatch and sequence_gap refuse the whole batch, and nothing of it is written',
    (h, url) =>
      withStore(url, async (s) => {
        const entries = await seeded(s, 5);
        const head = await s.getStream('acme', STREAM);
        const next = chain(6, 3, entries[4]!.hash);
        const forged = { ...entries[2]!, bytes: randomBytes(64), hash: randomBytes(32) };
        // A held seq with another hash, even followed by good new entries.
        await rejectsWith(s.appendEntries('acme', STREAM, [forged, entries[3]!, entries[4]!, ...next], 7000), 'entry_conflict', 'ConflictError');
        // The next entry naming another prev, and a break in the middle of a batch.
        await rejectsWith(s.appendEntries('acme', STREAM, chain(6, 3, randomBytes(32)), 7000), 'chain_mismatch', 'ConflictError');
        const broken = [...next, ...chain(9, 2, randomBytes(32))];
        await rejectsWith(s.appendEntries('acme', STREAM, broken, 7000), 'chain_mismatch');
        // Starting past head + 1.
        await rejectsWith(s.appendEntries('acme', STREAM, chain(7, 2, next[0]!.hash), 7000), 'sequence_gap', 'ConflictError');
        assert.deepStrictEqual(await s.getStream('acme', STREAM), head);
        assert.equal(await h.count(url, 'entries'), 5);
        // A new stream must begin at 1 with the zero hash; a refused first batch leaves no stream.
        await rejectsWith(s.appendEntries('acme', 'fresh', chain(2, 2), 7000), 'sequence_gap');
        await rejectsWith(s.appendEntries('acme', 'fresh', chain(1, 2, randomBytes(32)), 7000), 'chain_mismatch');
        assert.equal(await s.getStream('acme', 'fresh'), undefined);
        await rejectsWith(s.appendEntries('nobody', 'fresh', chain(1, 1), 7000), 'account_not_found', 'NotFoundError');
        assert.equal(await h.count(url, 'streams'), 1);
        assert.equal((await s.appendEntries('acme', STREAM, next, 7000)).headSeq, 8, 'the good batch still goes in');
      }),
  ],
  [
    'a refused batch inside a caller’s transaction leaves nothing, and the transaction goes on to commit',
    (h, url) =>
      withStore(url, async (s) => {
        await s.createAccount('acme', randomBytes(32), 1);
        const good = chain(1, 3);
        await s.transaction(async (tx) => {
          await rejectsWith(tx.appendEntries('acme', 'other', chain(1, 2, randomBytes(32)), 10), 'chain_mismatch');
          await rejectsWith(tx.appendEntries('acme', STREAM, chain(2, 2), 10), 'sequence_gap');
          await tx.appendEntries('acme', STREAM, good, 10);
          await rejectsWith(tx.appendEntries('acme', STREAM, [{ ...good[2]!, hash: randomBytes(32) }], 10), 'entry_conflict');
          await tx.putToken({ hash: randomBytes(32), account: 'acme', kind: 'backup', expiresAt: 10 });
        });
        assert.equal(await s.getStream('acme', 'other'), undefined);
        assert.deepStrictEqual(await s.listEntries('acme', STREAM, 0, 10), good);
        assert.equal(await h.count(url, 'tokens'), 1);
        // And a transaction that throws takes its appends with it.
        const boom = new Error('boom');
        await assert.rejects(
          s.transaction(async (tx) => {
            await tx.appendEntries('acme', STREAM, chain(4, 2, good[2]!.hash), 20);
            await tx.appendEntries('acme', 'third', chain(1, 1), 20);
            throw boom;
          }),
          (err) => err === boom,
        );
        assert.equal((await s.getStream('acme', STREAM))?.headSeq, 3);
        assert.equal(await s.getStream('acme', 'third'), undefined);
      }),
  ],
  [
    'two concurrent appends of different entries for the same seqs: exactly one wins, the other is entry_conflict',
    (_h, url) =>
      withStore(
        url,
        async (s) => {
          const entries = await seeded(s, 5);
          const race = async (stream: string, prev: Uint8Array, from: number) => {
            const batches = [chain(from, 3, prev), chain(from, 3, prev)];
            const results = await Promise.allSettled(
              batches.map((b) =>
                s.transaction(async (tx) => {
                  const head = await tx.appendEntries('acme', stream, b, 8000);
                  await sleep(20); // hold the stream row so the other append has to wait for it
                  return head;
                }),
              ),
            );
            const won = results.findIndex((r) => r.status === 'fulfilled');
            assert.notEqual(won, -1, 'one append wins');
            const lost = results[1 - won]!;
            assert.equal(lost.status, 'rejected');
            assert.ok(isLifeboatError(lost.reason, 'entry_conflict'), String(lost.reason));
            assert.deepStrictEqual(await s.listEntries('acme', stream, from - 1, 10), batches[won]);
          };
          await race(STREAM, entries[4]!.hash, 6);
          await race('brand-new', ZERO, 1); // both create the stream
          const st = await s.getStream('acme', 'brand-new');
          assert.equal(st?.headSeq, 3);
          assert.equal(st?.firstSeq, 1);
        },
        { maxConnections: 4 },
      ),
  ],
  [
    'concurrent appenders of consecutive batches to one stream lose nothing and keep the chain',
    (_h, url) =>
      withStore(
        url,
        async (s) => {
          await s.createAccount('acme', randomBytes(32), 1);
          const all = chain(1, 200);
          // Four writers send overlapping windows in random order; retry on a gap until theirs fits.
          const writer = async (w: number) => {
            for (let from = 1 + w * 10; from <= 200; from += 40) {
              const batch = all.slice(from - 1, from + 19);
              for (;;) {
                try {
                  await s.appendEntries('acme', STREAM, batch, 1);
                  break;
                } catch (err) {
                  if (!isLifeboatError(err, 'sequence_gap')) throw err;
                  await sleep(1);
                }
              }
            }
          };
          await Promise.all([0, 1, 2, 3].map(writer));
          assert.deepStrictEqual(await s.listEntries('acme', STREAM, 0, 1000), all);
          assert.equal((await s.getStream('acme', STREAM))?.headSeq, 200);
        },
        { maxConnections: 6 },
      ),
  ],
  [
    'a batch of 10,000 entries and entries of 1 MiB go in (statements split by rows and by bytes)',
    (h, url) =>
      withStore(url, async (s) => {
        await s.createAccount('acme', randomBytes(32), 1);
        const many = chain(1, 10_000, ZERO, 16);
        assert.equal((await s.appendEntries('acme', STREAM, many, 1)).headSeq, 10_000);
        assert.deepStrictEqual(await s.listEntries('acme', STREAM, 4990, 20), many.slice(4990, 5010));
        assert.deepStrictEqual(await s.appendEntries('acme', STREAM, many, 2), await s.getStream('acme', STREAM), 'all 10,000 again: idempotent');
        const big = chain(10_001, 36, last(many).hash, 1 << 20);
        assert.equal((await s.appendEntries('acme', STREAM, big, 3)).headSeq, 10_036);
        assert.deepStrictEqual(await s.getEntry('acme', STREAM, 10_036), last(big));
        assert.equal(await h.count(url, 'entries'), 10_036);
      }),
  ],
  [
    'compactions: begin, chunks (replaced, bounded), complete, current; every error of the contract',
    (_h, url) =>
      withStore(url, async (s) => {
        await seeded(s, 6);
        await rejectsWith(s.beginCompaction(compaction('c_none', 1, { stream: 'empty' })), 'stream_not_found', 'NotFoundError');
        await rejectsWith(s.beginCompaction(compaction('c_none', 1, { account: 'nobody' })), 'stream_not_found');
        const rec = compaction('c_1', 4, { chunkCount: 2 });
        await s.beginCompaction(rec);
        await rejectsWith(s.beginCompaction(compaction('c_1', 5)), 'compaction_exists', 'ConflictError');
        assert.deepStrictEqual(await s.getCompaction('acme', STREAM, 'c_1'), { ...rec, state: 'uploading', completedAt: null });
        assert.equal(await s.getCompaction('acme', 'other', 'c_1'), undefined, 'scoped to its stream');
        assert.equal(await s.currentCompaction('acme', STREAM), undefined);

        const [a, b] = [randomBytes(100), randomBytes(50)];
        await s.putCompactionChunk('acme', STREAM, 'c_1', 0, randomBytes(100));
        await s.putCompactionChunk('acme', STREAM, 'c_1', 0, a); // replaces
        await s.putCompactionChunk('acme', STREAM, 'c_1', 1, b);
        await rejectsWith(s.putCompactionChunk('acme', STREAM, 'c_1', 2, b), 'invalid_input', 'InvalidInputError');
        await rejectsWith(s.putCompactionChunk('acme', STREAM, 'c_x', 0, b), 'compaction_not_found', 'NotFoundError');
        await rejectsWith(s.putCompactionChunk('acme', 'other', 'c_1', 0, b), 'compaction_not_found');
        await rejectsWith(s.putCompactionChunk('other', STREAM, 'c_1', 0, b), 'compaction_not_found');
        const chunk = await s.getCompactionChunk('acme', STREAM, 'c_1', 0);
        assert.deepStrictEqual(chunk, a);
        assert.equal(Object.getPrototypeOf(chunk), Uint8Array.prototype);
        assert.deepStrictEqual(await s.getCompactionChunk('acme', STREAM, 'c_1', 1), b);
        assert.equal(await s.getCompactionChunk('acme', STREAM, 'c_1', 2), undefined);
        assert.equal(await s.getCompactionChunk('acme', 'other', 'c_1', 0), undefined, 'scoped to its stream');

        await rejectsWith(s.completeCompaction('acme', STREAM, 'c_x', 7000), 'compaction_not_found', 'NotFoundError');
        await rejectsWith(s.completeCompaction('acme', 'other', 'c_1', 7000), 'compaction_not_found');
        // A streamed upload's size, chunk count and hash are named at completion and replace the begun ones.
        const declared = { hash: randomBytes(32), size: 150, chunkCount: 2 };
        await s.completeCompaction('acme', STREAM, 'c_1', 7000, declared);
        await s.completeCompaction('acme', STREAM, 'c_1', 7500, { ...declared, size: 9 }); // idempotent: completedAt and the rest stay
        assert.deepStrictEqual(await s.currentCompaction('acme', STREAM), { ...rec, ...declared, state: 'complete', completedAt: 7000 });
        await rejectsWith(s.putCompactionChunk('acme', STREAM, 'c_1', 0, b), 'compaction_complete', 'ConflictError');
        assert.deepStrictEqual(await s.getCompactionChunk('acme', STREAM, 'c_1', 0), a);

        for (const [id, seq] of [['c_same', 4], ['c_older', 3]] as const) {
          await s.beginCompaction(compaction(id, seq));
          await rejectsWith(s.completeCompaction('acme', STREAM, id, 8000), 'compaction_stale', 'ConflictError');
          assert.equal((await s.getCompaction('acme', STREAM, id))?.state, 'uploading', 'nothing changed');
        }
        assert.equal((await s.currentCompaction('acme', STREAM))?.id, 'c_1');
        assert.equal((await s.getStream('acme', STREAM))?.firstSeq, 1, 'no previous compaction: every entry stays');
      }),
  ],
  [
    'completing a compaction keeps the previous one and the entries after it, prunes the rest; entry_pruned after',
    (h, url) =>
      withStore(url, async (s) => {
        const entries = await seeded(s, 12);
        await compact(s, 'c_4', 4);
        assert.equal((await s.getStream('acme', STREAM))?.firstSeq, 1);
        await compact(s, 'c_8', 8);
        // Previous current was c_4: entries 1..4 go, c_4 stays.
        let st = await s.getStream('acme', STREAM);
        assert.equal(st?.firstSeq, 5);
        assert.equal(st?.updatedAt, 6008);
        assert.equal(st?.headSeq, 12);
        assert.deepStrictEqual((await s.listEntries('acme', STREAM, 0, 100)).map((e) => e.seq), [5, 6, 7, 8, 9, 10, 11, 12]);
        assert.equal((await s.getCompaction('acme', STREAM, 'c_4'))?.state, 'complete');
        assert.equal((await s.currentCompaction('acme', STREAM))?.id, 'c_8');
        await rejectsWith(s.appendEntries('acme', STREAM, entries.slice(2), 9000), 'entry_pruned', 'ConflictError');
        assert.deepStrictEqual(await s.appendEntries('acme', STREAM, entries.slice(4), 9000), st, 'held entries are still idempotent');
        // An upload begun before c_8 completed, for an older seq, can no longer complete.
        await s.beginCompaction(compaction('c_6', 6));
        await rejectsWith(s.completeCompaction('acme', STREAM, 'c_6', 9000), 'compaction_stale');

        await compact(s, 'c_12', 12);
        // Previous current was c_8: c_4 goes with its chunks, entries up to 8 go, c_8 stays.
        st = await s.getStream('acme', STREAM);
        assert.equal(st?.firstSeq, 9);
        assert.equal(await s.getCompaction('acme', STREAM, 'c_4'), undefined);
        assert.equal(await s.getCompactionChunk('acme', STREAM, 'c_4', 0), undefined);
        assert.ok(await s.getCompactionChunk('acme', STREAM, 'c_8', 1));
        assert.deepStrictEqual((await s.listEntries('acme', STREAM, 0, 100)).map((e) => e.seq), [9, 10, 11, 12]);
        assert.equal(await s.getEntry('acme', STREAM, 8), undefined);
        // c_8, c_12 and the stale upload c_6 (left for deleteExpired) remain, with 2 + 2 chunks.
        assert.equal(await h.count(url, 'compactions'), 3);
        assert.equal(await h.count(url, 'compaction_chunks'), 4);

        // Compactions at the head: the previous one's seq bounds what goes.
        const more = chain(13, 2, last(entries).hash);
        await s.appendEntries('acme', STREAM, more, 9500);
        await compact(s, 'c_14', 14);
        assert.equal((await s.getStream('acme', STREAM))?.firstSeq, 13);
        await s.appendEntries('acme', STREAM, chain(15, 1, last(more).hash), 9600);
        await compact(s, 'c_15', 15);
        st = await s.getStream('acme', STREAM);
        assert.equal(st?.firstSeq, 15);
        assert.equal(st?.headSeq, 15);
      }),
  ],
  [
    'deleteAccount removes the account with its tokens, ephemerals, streams, entries, compactions and chunks',
    (h, url) =>
      withStore(url, async (s) => {
        for (const account of ['acme', 'keep']) {
          await s.createAccount(account, randomBytes(32), 1);
          await s.putToken({ hash: randomBytes(32), account, kind: 'backup', expiresAt: 10 });
          await s.putEphemeral({ kind: 'challenge', id: `ch-${account}`, account, value: randomBytes(32), expiresAt: 10 });
          for (const stream of [STREAM, 'second']) {
            await s.appendEntries(account, stream, chain(1, 4), 2);
            await s.beginCompaction(compaction(`c-${account}-${stream}`, 2, { account, stream, chunkCount: 1 }));
            await s.putCompactionChunk(account, stream, `c-${account}-${stream}`, 0, randomBytes(16));
          }
          await s.completeCompaction(account, STREAM, `c-${account}-${STREAM}`, 3);
        }
        const counts = async () =>
          Object.fromEntries(
            await Promise.all(['accounts', 'tokens', 'ephemerals', 'streams', 'entries', 'compactions', 'compaction_chunks'].map(async (t) => [t, await h.count(url, t)])),
          );
        assert.deepStrictEqual(await counts(), { accounts: 2, tokens: 2, ephemerals: 2, streams: 4, entries: 16, compactions: 4, compaction_chunks: 4 });
        assert.equal(await s.deleteAccount('acme'), true);
        assert.equal(await s.deleteAccount('acme'), false);
        assert.deepStrictEqual(await counts(), { accounts: 1, tokens: 1, ephemerals: 1, streams: 2, entries: 8, compactions: 2, compaction_chunks: 2 });
        assert.equal(await s.getAccount('acme'), undefined);
        assert.deepStrictEqual(await s.listStreams('acme'), []);
        assert.equal(await s.takeEphemeral('challenge', 'ch-acme'), undefined);
        assert.equal((await s.listStreams('keep')).length, 2);
        // The name can be invited again and starts empty.
        await s.createAccount('acme', randomBytes(32), 9);
        assert.equal(await s.getStream('acme', STREAM), undefined);
        assert.equal((await s.appendEntries('acme', STREAM, chain(1, 1), 9)).headSeq, 1);
      }),
  ],
  [
    'malformed arguments throw InvalidInputError before the database is touched (a closed store answers them too)',
    async (h, url) => {
      const s = await openBackupStore(url);
      await s.createAccount('acme', randomBytes(32), 1);
      const good = chain(1, 2);
      const calls: [string, (s: BackupStore) => Promise<unknown>][] = [
        ['empty account', (x) => x.createAccount('', randomBytes(32), 1)],
        ['account with a slash', (x) => x.getAccount('a/b')],
        ['account of 65', (x) => x.getAccount('a'.repeat(65))],
        ['short invite', (x) => x.createAccount('b', randomBytes(31), 1)],
        ['negative now', (x) => x.createAccount('b', randomBytes(32), -1)],
        ['fractional now', (x) => x.createAccount('b', randomBytes(32), 1.5)],
        ['registration bytes', (x) => x.completeRegistration('acme', randomBytes(32), { ...registration(), record: new Uint8Array(0) }, 1)],
        ['auth key length', (x) => x.completeRegistration('acme', randomBytes(32), { ...registration(), authPublicKey: randomBytes(33) }, 1)],
        ['password record', (x) => x.replacePassword('acme', { record: 'x' as never, wrappedKey: randomBytes(8) }, 1)],
        ['ephemeral kind', (x) => x.putEphemeral({ kind: 'token' as never, id: 'a', account: 'acme', value: randomBytes(8), expiresAt: 1 })],
        ['ephemeral id', (x) => x.takeEphemeral('login', 'a.b')],
        ['ephemeral value', (x) => x.putEphemeral({ kind: 'login', id: 'a', account: 'acme', value: new Uint8Array((64 << 10) + 1), expiresAt: 1 })],
        ['token hash', (x) => x.getToken(randomBytes(16))],
        ['token kind', (x) => x.deleteTokens('acme', 'admin' as never)],
        ['expiry', (x) => x.deleteExpired(Number.NaN, 1)],
        ['no entries', (x) => x.appendEntries('acme', STREAM, [], 1)],
        ['10,001 entries', (x) => x.appendEntries('acme', STREAM, chain(1, 10_001, ZERO, 1), 1)],
        ['not consecutive', (x) => x.appendEntries('acme', STREAM, [good[0]!, { ...good[1]!, seq: 3 }], 1)],
        ['descending', (x) => x.appendEntries('acme', STREAM, [...good].reverse(), 1)],
        ['seq 0', (x) => x.appendEntries('acme', STREAM, [{ ...good[0]!, seq: 0 }], 1)],
        ['prev length', (x) => x.appendEntries('acme', STREAM, [{ ...good[0]!, prevHash: new Uint8Array(31) }], 1)],
        ['entry over 1 MiB', (x) => x.appendEntries('acme', STREAM, [{ ...good[0]!, bytes: new Uint8Array((1 << 20) + 1) }], 1)],
        ['empty entry', (x) => x.appendEntries('acme', STREAM, [{ ...good[0]!, bytes: new Uint8Array(0) }], 1)],
        ['entry not an object', (x) => x.appendEntries('acme', STREAM, [null as never], 1)],
        ['limit 0', (x) => x.listEntries('acme', STREAM, 0, 0)],
        ['limit 10,001', (x) => x.listEntries('acme', STREAM, 0, 10_001)],
        ['afterSeq -1', (x) => x.listEntries('acme', STREAM, -1, 1)],
        ['getEntry seq 0', (x) => x.getEntry('acme', STREAM, 0)],
        ['compaction seq 0', (x) => x.beginCompaction(compaction('c', 0))],
        ['compaction chunks 0', (x) => x.beginCompaction(compaction('c', 1, { chunkCount: 0 }))],
        ['compaction size 2^40 + 1', (x) => x.beginCompaction({ ...compaction('c', 1), size: 2 ** 40 + 1 })],
        ['compaction id', (x) => x.beginCompaction(compaction('c/1', 1))],
        ['chunk over 8 MiB', (x) => x.putCompactionChunk('acme', STREAM, 'c', 0, new Uint8Array((8 << 20) + 1))],
        ['chunk -1', (x) => x.getCompactionChunk('acme', STREAM, 'c', -1)],
        ['complete now', (x) => x.completeCompaction('acme', STREAM, 'c', Number.POSITIVE_INFINITY)],
      ];
      for (const [what, call] of calls) await rejectsWith(call(s), 'invalid_input', 'InvalidInputError').catch((err) => assert.fail(`${what}: ${err}`));
      assert.equal(await h.count(url, 'streams'), 0);
      assert.equal(await h.count(url, 'accounts'), 1);
      await s.close();
      for (const [what, call] of calls) await rejectsWith(call(s), 'invalid_input').catch((err) => assert.fail(`closed, ${what}: ${err}`));
      await assert.rejects(s.getAccount('acme'), 'a valid call on a closed store fails');
    },
  ],
  [
    'data survives close and reopen; close is idempotent',
    async (_h, url) => {
      const s = await openBackupStore(url);
      const entries = await seeded(s, 8);
      await compact(s, 'c_5', 5);
      await s.putToken({ hash: new Uint8Array(32).fill(7), account: 'acme', kind: 'login', expiresAt: 99 });
      const head = await s.getStream('acme', STREAM);
      await s.close();
      await s.close();
      await withStore(url, async (r) => {
        assert.deepStrictEqual(await r.getStream('acme', STREAM), head);
        assert.deepStrictEqual(await r.listEntries('acme', STREAM, 0, 100), entries);
        assert.equal((await r.currentCompaction('acme', STREAM))?.id, 'c_5');
        assert.equal((await r.getCompactionChunk('acme', STREAM, 'c_5', 1))?.length, 40);
        assert.equal((await r.getToken(new Uint8Array(32).fill(7)))?.expiresAt, 99);
        assert.equal((await r.appendEntries('acme', STREAM, chain(9, 1, last(entries).hash), 1)).headSeq, 9);
      });
    },
  ],
  [
    'a database migrated by a newer lifeboat is refused with store_schema_newer',
    async (h, url) => {
      await withStore(url, async (s) => void (await s.listAccounts()));
      await h.exec(url, `insert into lifeboat_backup_migration (name, timestamp) values ('9999_from_the_future', '2100-01-01')`);
      await rejectsWith(openBackupStore(url), 'store_schema_newer');
    },
  ],
];

// ---- what one backend only has ----

const only: Record<BackupStoreKind, Case[]> = {
  sqlite: [
    [
      'the file is created 0600 in a 0700 directory, one others can read is refused; sqlite::memory: works',
      async (_h, url) => {
        const p = parseBackupStoreUrl(url);
        assert.equal(p.kind, 'sqlite');
        await withStore(url, async (s) => void (await s.createAccount('acme', randomBytes(32), 1)));
        assert.equal(statSync(p.path).mode & 0o777, 0o600);
        assert.equal(statSync(dirname(p.path)).mode & 0o777, 0o700);
        chmodSync(p.path, 0o644);
        await rejectsWith(openBackupStore(url), 'insecure_permissions');
        await withStore('sqlite::memory:', async (s) => {
          await seeded(s, 3);
          assert.equal((await s.getStream('acme', STREAM))?.headSeq, 3);
        });
      },
    ],
  ],
  postgres: [
    [
      'one database hosts the key node store and the backup store side by side',
      async (_h, url) => {
        const node = await openKeyNodeStore(url);
        try {
          await withStore(url, async (s) => {
            await seeded(s, 2);
            await node.setMeta('node_epoch', '1');
            assert.equal((await s.getStream('acme', STREAM))?.headSeq, 2);
          });
          assert.equal(await node.getMeta('node_epoch'), '1');
        } finally {
          await node.close();
        }
      },
    ],
    [
      'an unreachable server is store_unavailable, and the password never shows in the error',
      async () => {
        await assert.rejects(openBackupStore('postgres://lifeboat:hunter2-secret@127.0.0.1:1/nothing'), (err: unknown) => {
          assert.ok(isLifeboatError(err, 'store_unavailable'), String(err));
          assert.equal(err.status, 503);
          assert.ok(!`${err.message} ${err.hint}`.includes('hunter2'));
          return true;
        });
      },
    ],
  ],
};

for (const h of [withCount(sqliteHarness('lifeboat-backup-store-', 'backup.db')), withCount(postgresHarness())]) {
  describe(`backup store conformance: ${h.kind}`, { skip: h.skip }, () => {
    before(() => h.setup());
    after(() => h.teardown());
    for (const [name, fn] of [...cases, ...only[h.kind]]) it(name, async () => fn(h, await h.fresh()));
  });
}

describe('backup store urls and driver errors', () => {
  it('a sqlite file locked past the busy timeout is store_busy, naming the backup server; other errors pass as they are', () => {
    const busy = Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
    const mapped = mapError(busy);
    assert.ok(isLifeboatError(mapped, 'store_busy'), String(mapped));
    assert.equal(mapped.status, 503);
    assert.match(mapped.hint ?? '', /backup server/);
    assert.equal(mapped.cause, busy);
    const bug = new Error('syntax error');
    assert.equal(mapError(bug), bug);
    assert.ok(isLifeboatError(mapError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })), 'store_unavailable'));
  });


  it('parses the key node store forms, refuses others without echoing them, and redacts passwords', async () => {
    assert.deepStrictEqual(parseBackupStoreUrl('sqlite:./data/backup.db'), { kind: 'sqlite', path: './data/backup.db' });
    assert.deepStrictEqual(parseBackupStoreUrl('sqlite::memory:'), { kind: 'sqlite', path: ':memory:' });
    assert.deepStrictEqual(parseBackupStoreUrl('postgresql://u:p@db/lb'), { kind: 'postgres', url: 'postgresql://u:p@db/lb' });
    for (const url of ['mysql://root:s3cret@db/x', './backup.db', '', 'sqlite:']) {
      await assert.rejects(openBackupStore(url), (err: unknown) => {
        assert.ok(isLifeboatError(err, 'invalid_store_url'), `${url}: ${String(err)}`);
        assert.ok(!err.message.includes('s3cret'));
        return true;
      });
    }
    assert.equal(redactStoreUrl('postgres://svc:pa55@db:5432/backup'), 'postgres://svc:***@db:5432/backup');
  });
});
