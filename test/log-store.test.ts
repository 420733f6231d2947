/**
 * The log store's conformance suite: one list of cases, run against a SQLite file and against a real
 * PostgreSQL (test/helpers/postgres.ts), with what only one backend has, then the store urls. Every
 * method and every error code of the contract in src/log/store/types.ts has a case here; the races
 * run both inside one process (one store) and between two processes on one database.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { randomBytes } from '../src/crypto/random.js';
import { isLifeboatError } from '../src/errors.js';
import { leafHash } from '../src/log/merkle.js';
import { type EntryStatus, type LogStore, type LogStoreKind, openLogStore, parseLogStoreUrl, redactStoreUrl } from '../src/log/store/index.js';
import { mapError } from '../src/log/store/queries.js';
import { openBackupStore } from '../src/backup/store/index.js';
import { openKeyNodeStore } from '../src/keynode/store/index.js';
import { REPO_ROOT, tracked } from './helpers/cli.js';
import { countRows, postgresHarness, sqliteHarness, sqlitePathOf, type StoreHarness } from './helpers/store-harness.js';

// ---- records ----

interface Entry {
  hash: Uint8Array;
  bytes: Uint8Array;
}

function entry(size = 100): Entry {
  const bytes = randomBytes(size);
  return { hash: leafHash(bytes), bytes };
}

const entries = (n: number, size = 100): Entry[] => Array.from({ length: n }, () => entry(size));
const ROOT = new Uint8Array(32).fill(0xab);
const checkpoint = (size: number, tag = 'a'): string => `example.com/log\n${size}\n${tag}\n\n— example.com/log sig${tag}\n`;
const pendingId = (s: EntryStatus): number => (s.state === 'pending' ? s.id : assert.fail(`expected pending, got ${JSON.stringify(s)}`));

async function rejectsWith(p: Promise<unknown>, code: string, cls?: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isLifeboatError(err, code), `expected ${code}, got ${String(err)}`);
    if (cls) assert.equal(err.name, cls);
    return true;
  });
}

async function withStore<T>(url: string, fn: (s: LogStore) => Promise<T>): Promise<T> {
  const store = await openLogStore(url);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** Adds `es` and commits them (after a first empty head if there is none); returns their pending ids. */
async function sequence(s: LogStore, es: Entry[]): Promise<number[]> {
  const ids = (await s.addPendingBatch(es, 1000)).map(pendingId);
  let head = await s.getHead();
  head ??= await s.commitBatch({ oldSize: 0, ids: [], root: ROOT, checkpoint: checkpoint(0), now: 1000 });
  await s.commitBatch({ oldSize: head.size, ids, root: ROOT, checkpoint: checkpoint(head.size + ids.length), now: 2000 });
  return ids;
}

// ---- a second process on the same database ----

/** What a child process does once told to go: commit a batch, or add entries one by one. */
type ChildOp = { op: 'commit'; oldSize: number; ids: number[] } | { op: 'add'; entries: { hash: string; bytes: string }[] };

const CHILD = `
import { openLogStore } from ${JSON.stringify(pathToFileURL(`${REPO_ROOT}/src/log/store/index.ts`).href)};
const [url, json] = process.argv.slice(1);
const op = JSON.parse(json);
const store = await openLogStore(url);
process.stdout.write('ready\\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
let out;
try {
  if (op.op === 'commit') {
    const head = await store.commitBatch({ oldSize: op.oldSize, ids: op.ids, root: new Uint8Array(32).fill(7), checkpoint: 'child ' + process.pid, now: 5 });
    out = { ok: head.size };
  } else {
    const got = [];
    for (const e of op.entries) got.push(await store.addPending(Buffer.from(e.hash, 'hex'), Buffer.from(e.bytes, 'hex'), 5));
    out = { ok: got };
  }
} catch (err) {
  out = { err: err.code ?? String(err) };
}
await store.close();
process.stdout.write(JSON.stringify(out) + '\\n');
`;

interface Child {
  ready: Promise<void>;
  go(): void;
  result: Promise<{ ok?: unknown; err?: string }>;
}

function startChild(url: string, op: ChildOp): Child {
  const child = tracked(spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD, url, JSON.stringify(op)], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] }));
  let out = '';
  let err = '';
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.startsWith('ready\n')) onReady();
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const result = new Promise<{ ok?: unknown; err?: string }>((resolve, reject) => {
    child.on('close', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !last.startsWith('{')) reject(new Error(`child exited ${code}: ${out}\n${err}`));
      else resolve(JSON.parse(last) as { ok?: unknown; err?: string });
    });
  });
  void result.catch(() => onReady());
  return { ready, go: () => child.stdin.end('go\n'), result };
}

/** Starts every op in a process of its own, lets them all go at once once each has opened the store. */
async function race(url: string, ops: ChildOp[]): Promise<{ ok?: unknown; err?: string }[]> {
  const children = ops.map((op) => startChild(url, op));
  await Promise.all(children.map((c) => c.ready));
  for (const c of children) c.go();
  return Promise.all(children.map((c) => c.result));
}

const hexEntry = (e: Entry) => ({ hash: Buffer.from(e.hash).toString('hex'), bytes: Buffer.from(e.bytes).toString('hex') });

// ---- the cases every backend passes ----

type Case = [name: string, fn: (h: StoreHarness, url: string) => Promise<void>];

const cases: Case[] = [
  [
    'submitters: enrol, get by signing key as plain Uint8Arrays, list by name bytewise; a taken name or key is submitter_exists',
    (_h, url) =>
      withStore(url, async (s) => {
        const alice = { name: 'alice', signingKey: randomBytes(32), boxKey: randomBytes(32), enrolledAt: 1000 };
        await s.enrolSubmitter(alice);
        const got = await s.getSubmitter(alice.signingKey);
        assert.deepStrictEqual(got, { ...alice, revokedAt: null });
        assert.equal(Object.getPrototypeOf(got?.signingKey), Uint8Array.prototype);
        await rejectsWith(s.enrolSubmitter({ ...alice, signingKey: randomBytes(32) }), 'submitter_exists', 'ConflictError');
        await rejectsWith(s.enrolSubmitter({ ...alice, name: 'alice2' }), 'submitter_exists', 'ConflictError');
        assert.equal(await s.getSubmitter(randomBytes(32)), undefined);
        for (const name of ['b', 'B', 'a.b', 'a-b', 'a_b', 'Z9', '0']) await s.enrolSubmitter({ name, signingKey: randomBytes(32), boxKey: randomBytes(32), enrolledAt: 2 });
        const names = (await s.listSubmitters()).map((x) => x.name);
        assert.equal(names.length, 8);
        assert.deepStrictEqual(names, [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))));
      }),
  ],
  [
    'revokeSubmitter marks it revoked once (a second revoke keeps the first time); its name and key stay taken; unknown is submitter_not_found',
    (_h, url) =>
      withStore(url, async (s) => {
        const bob = { name: 'bob', signingKey: randomBytes(32), boxKey: randomBytes(32), enrolledAt: 1000 };
        await s.enrolSubmitter(bob);
        await s.revokeSubmitter('bob', 2000);
        assert.equal((await s.getSubmitter(bob.signingKey))?.revokedAt, 2000);
        await s.revokeSubmitter('bob', 3000);
        assert.equal((await s.getSubmitter(bob.signingKey))?.revokedAt, 2000);
        await rejectsWith(s.revokeSubmitter('carol', 3000), 'submitter_not_found', 'NotFoundError');
        await rejectsWith(s.enrolSubmitter({ ...bob, enrolledAt: 4000 }), 'submitter_exists');
        await rejectsWith(s.enrolSubmitter({ ...bob, name: 'bob2' }), 'submitter_exists');
        assert.deepStrictEqual((await s.listSubmitters()).map((x) => [x.name, x.revokedAt]), [['bob', 2000]]);
      }),
  ],
  [
    'addPending takes an entry once: the same leaf hash again gets its pending id and writes nothing; listPending is ascending by id',
    (h, url) =>
      withStore(url, async (s) => {
        const [a, b, c] = entries(3);
        const ida = pendingId(await s.addPending(a!.hash, a!.bytes, 1000));
        const idb = pendingId(await s.addPending(b!.hash, b!.bytes, 1001));
        const idc = pendingId(await s.addPending(c!.hash, c!.bytes, 1002));
        assert.ok(ida < idb && idb < idc, `ids ascend: ${ida} ${idb} ${idc}`);
        assert.deepStrictEqual(await s.addPending(b!.hash, b!.bytes, 5000), { state: 'pending', id: idb });
        assert.equal(await countRows(h, url, 'log_entries'), 3);
        assert.deepStrictEqual(await s.entryStatus(c!.hash), { state: 'pending', id: idc });
        assert.equal(await s.entryStatus(entry().hash), undefined);
        assert.equal(await s.indexOf(a!.hash), undefined, 'a pending entry has no index');
        const pending = await s.listPending(10);
        assert.deepStrictEqual(pending, [
          { id: ida, hash: a!.hash, bytes: a!.bytes, receivedAt: 1000 },
          { id: idb, hash: b!.hash, bytes: b!.bytes, receivedAt: 1001 },
          { id: idc, hash: c!.hash, bytes: c!.bytes, receivedAt: 1002 },
        ]);
        assert.equal(Object.getPrototypeOf(pending[0]!.bytes), Uint8Array.prototype);
        assert.deepStrictEqual((await s.listPending(2)).map((p) => p.id), [ida, idb]);
      }),
  ],
  [
    'addPendingBatch: statuses in the order given, an entry given twice gets one id, known entries keep theirs (pending or sequenced)',
    (h, url) =>
      withStore(url, async (s) => {
        const [a, b, c, d] = entries(4);
        await sequence(s, [a!]);
        const idb = pendingId(await s.addPending(b!.hash, b!.bytes, 1));
        const got = await s.addPendingBatch([c!, a!, b!, c!, d!], 9);
        assert.deepStrictEqual(got[1], { state: 'sequenced', index: 0 });
        assert.deepStrictEqual(got[2], { state: 'pending', id: idb });
        assert.deepStrictEqual(got[3], got[0]);
        const idc = pendingId(got[0]!);
        const idd = pendingId(got[4]!);
        assert.ok(idb < idc && idc < idd, 'new entries get new, larger ids, in the order given');
        assert.equal(await countRows(h, url, 'log_entries'), 4);
        assert.deepStrictEqual((await s.listPending(10)).map((p) => [p.id, p.receivedAt]), [[idb, 1], [idc, 9], [idd, 9]]);
      }),
  ],
  [
    'commitBatch: the first empty head, then a batch indexed in the order given; cosigned = checkpoint, publishedSize kept; a re-added entry keeps its index',
    (_h, url) =>
      withStore(url, async (s) => {
        assert.equal(await s.getHead(), undefined);
        const first = await s.commitBatch({ oldSize: 0, ids: [], root: ROOT, checkpoint: checkpoint(0), now: 1000 });
        assert.deepStrictEqual(first, { size: 0, root: ROOT, checkpoint: checkpoint(0), cosigned: checkpoint(0), publishedSize: 0, updatedAt: 1000 });
        assert.deepStrictEqual(await s.getHead(), first);
        const es = entries(4);
        const ids = (await s.addPendingBatch(es, 1100)).map(pendingId);
        const order = [ids[2]!, ids[0]!, ids[3]!];
        const root = randomBytes(32);
        const head = await s.commitBatch({ oldSize: 0, ids: order, root, checkpoint: checkpoint(3), now: 1200 });
        assert.deepStrictEqual(head, { size: 3, root, checkpoint: checkpoint(3), cosigned: checkpoint(3), publishedSize: 0, updatedAt: 1200 });
        assert.deepStrictEqual(await s.getHead(), head);
        assert.equal(await s.indexOf(es[2]!.hash), 0);
        assert.equal(await s.indexOf(es[0]!.hash), 1);
        assert.equal(await s.indexOf(es[3]!.hash), 2);
        assert.deepStrictEqual(await s.entryStatus(es[0]!.hash), { state: 'sequenced', index: 1 });
        assert.deepStrictEqual((await s.listPending(10)).map((p) => p.id), [ids[1]]);
        assert.deepStrictEqual(await s.addPending(es[3]!.hash, es[3]!.bytes, 1300), { state: 'sequenced', index: 2 });
        await s.commitBatch({ oldSize: 3, ids: [ids[1]!], root, checkpoint: checkpoint(4), now: 1400 });
        assert.equal(await s.indexOf(es[1]!.hash), 3);
        assert.deepStrictEqual((await s.listUnpublished(0, 10)).map((r) => r.index), [0, 1, 2, 3]);
      }),
  ],
  [
    'commitBatch may commit a first head with entries (no empty head before it)',
    (_h, url) =>
      withStore(url, async (s) => {
        const es = entries(2);
        const ids = (await s.addPendingBatch(es, 1)).map(pendingId);
        const head = await s.commitBatch({ oldSize: 0, ids, root: ROOT, checkpoint: checkpoint(2), now: 2 });
        assert.equal(head.size, 2);
        assert.equal(await s.indexOf(es[1]!.hash), 1);
      }),
  ],
  [
    'commitBatch refuses with sequence_conflict, writing nothing: a moved head, a repeated id, an id not pending or unknown, an empty batch on a head',
    (h, url) =>
      withStore(url, async (s) => {
        const done = entries(2);
        const doneIds = await sequence(s, done);
        const es = entries(3);
        const ids = (await s.addPendingBatch(es, 3000)).map(pendingId);
        const before = await s.getHead();
        const bad: [string, Parameters<LogStore['commitBatch']>[0]][] = [
          ['stale oldSize', { oldSize: 1, ids, root: randomBytes(32), checkpoint: checkpoint(4, 'x'), now: 9 }],
          ['oldSize ahead', { oldSize: 3, ids, root: randomBytes(32), checkpoint: checkpoint(6, 'x'), now: 9 }],
          ['oldSize 0 on a head', { oldSize: 0, ids, root: randomBytes(32), checkpoint: checkpoint(3, 'x'), now: 9 }],
          ['repeated id', { oldSize: 2, ids: [ids[0]!, ids[1]!, ids[0]!], root: randomBytes(32), checkpoint: checkpoint(5, 'x'), now: 9 }],
          ['sequenced id', { oldSize: 2, ids: [ids[0]!, doneIds[1]!], root: randomBytes(32), checkpoint: checkpoint(4, 'x'), now: 9 }],
          ['unknown id', { oldSize: 2, ids: [ids[0]!, 999_999], root: randomBytes(32), checkpoint: checkpoint(4, 'x'), now: 9 }],
          ['empty batch on a head', { oldSize: 2, ids: [], root: randomBytes(32), checkpoint: checkpoint(2, 'x'), now: 9 }],
          ['empty first batch on a head', { oldSize: 0, ids: [], root: randomBytes(32), checkpoint: checkpoint(0, 'x'), now: 9 }],
        ];
        for (const [what, batch] of bad) {
          await rejectsWith(s.commitBatch(batch), 'sequence_conflict', 'ConflictError').catch((err) => assert.fail(`${what}: ${err}`));
          assert.deepStrictEqual(await s.getHead(), before, `${what}: the head is unchanged`);
          assert.deepStrictEqual((await s.listPending(10)).map((p) => p.id), ids, `${what}: the entries are still pending`);
        }
        assert.equal(await s.indexOf(done[1]!.hash), 1, 'a sequenced entry keeps its index');
        assert.equal(Number((await h.query(url, 'select count(*) as n from log_entries where idx is not null'))[0]?.n), 2);
        assert.equal((await s.commitBatch({ oldSize: 2, ids, root: ROOT, checkpoint: checkpoint(5), now: 10 })).size, 5, 'the right batch still commits');
      }),
  ],
  [
    'listUnpublished and markPublished: bytes are held until published, then dropped; publishedSize never goes down',
    (h, url) =>
      withStore(url, async (s) => {
        await rejectsWith(s.markPublished(0, 1), 'invalid_input', 'InvalidInputError');
        assert.deepStrictEqual(await s.listUnpublished(0, 10), []);
        const es = entries(5);
        await sequence(s, es);
        const all = await s.listUnpublished(0, 10);
        assert.deepStrictEqual(all, es.map((e, index) => ({ index, hash: e.hash, bytes: e.bytes })));
        assert.deepStrictEqual((await s.listUnpublished(3, 10)).map((r) => r.index), [3, 4]);
        assert.deepStrictEqual((await s.listUnpublished(1, 2)).map((r) => r.index), [1, 2]);
        await s.markPublished(3, 5000);
        const head = await s.getHead();
        assert.equal(head?.publishedSize, 3);
        assert.equal(head?.updatedAt, 5000);
        assert.deepStrictEqual(await s.listUnpublished(0, 10), all.slice(3));
        assert.equal(Number((await h.query(url, 'select count(*) as n from log_entries where bytes is null'))[0]?.n), 3, 'the bytes are gone from the database');
        await s.markPublished(1, 6000);
        assert.equal((await s.getHead())?.publishedSize, 3, 'never lowered');
        await rejectsWith(s.markPublished(6, 7000), 'invalid_input', 'InvalidInputError');
        assert.equal((await s.getHead())?.publishedSize, 3);
        // Published entries keep their index and status; a commit keeps publishedSize.
        assert.deepStrictEqual(await s.addPending(es[0]!.hash, es[0]!.bytes, 1), { state: 'sequenced', index: 0 });
        const more = entries(2);
        await sequence(s, more);
        assert.deepStrictEqual(await s.getHead().then((x) => [x?.size, x?.publishedSize]), [7, 3]);
        await s.markPublished(7, 8000);
        assert.deepStrictEqual(await s.listUnpublished(0, 10), []);
        assert.equal(await s.indexOf(more[1]!.hash), 6);
      }),
  ],
  [
    'setCosigned replaces the head note only at the head size',
    (_h, url) =>
      withStore(url, async (s) => {
        assert.equal(await s.setCosigned(0, 'x', 1), false, 'no head yet');
        await sequence(s, entries(2));
        const cosigned = `${checkpoint(2)}— witness.example abc\n`;
        assert.equal(await s.setCosigned(1, cosigned, 3000), false);
        assert.equal((await s.getHead())?.cosigned, checkpoint(2));
        assert.equal(await s.setCosigned(2, cosigned, 3000), true);
        const head = await s.getHead();
        assert.deepStrictEqual([head?.checkpoint, head?.cosigned, head?.updatedAt], [checkpoint(2), cosigned, 3000]);
      }),
  ],
  [
    'witness states: created, raised, never lowered, listed by name',
    (_h, url) =>
      withStore(url, async (s) => {
        assert.deepStrictEqual(await s.listWitnessStates(), []);
        await s.setWitnessSize('w2', 5, 100);
        await s.setWitnessSize('W1', 0, 100);
        await s.setWitnessSize('w2', 9, 200);
        await s.setWitnessSize('w2', 4, 300);
        assert.deepStrictEqual(await s.listWitnessStates(), [
          { name: 'W1', size: 0, updatedAt: 100 },
          { name: 'w2', size: 9, updatedAt: 200 },
        ]);
      }),
  ],
  [
    'the same entry added concurrently (20 at once, and in batches) gets one pending id and one row',
    (h, url) =>
      withStore(url, async (s) => {
        const e = entry();
        const got = await Promise.all(Array.from({ length: 20 }, (_, i) => s.addPending(e.hash, e.bytes, i)));
        assert.equal(new Set(got.map(pendingId)).size, 1);
        const shared = entries(50);
        const batches = await Promise.all(Array.from({ length: 6 }, (_, i) => s.addPendingBatch(i % 2 ? shared : [...shared].reverse(), i)));
        for (const [i, b] of batches.entries()) {
          const inOrder = i % 2 ? b : [...b].reverse();
          assert.deepStrictEqual(inOrder, batches[1], `batch ${i} agrees`);
        }
        assert.equal(await countRows(h, url, 'log_entries'), 51);
      }),
  ],
  [
    'concurrent commitBatch from one head in one store: exactly one wins, the others get sequence_conflict and write nothing',
    (_h, url) =>
      withStore(url, async (s) => {
        await sequence(s, entries(1));
        const groups = await Promise.all(Array.from({ length: 4 }, () => s.addPendingBatch(entries(3), 1).then((st) => st.map(pendingId))));
        const results = await Promise.allSettled(groups.map((ids, i) => s.commitBatch({ oldSize: 1, ids, root: randomBytes(32), checkpoint: checkpoint(4, `r${i}`), now: 2 })));
        const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
        assert.equal(won.length, 1, `exactly one wins: ${results.map((r) => r.status).join(' ')}`);
        for (const r of results) if (r.status === 'rejected') assert.ok(isLifeboatError(r.reason, 'sequence_conflict'), String(r.reason));
        const head = await s.getHead();
        assert.equal(head?.checkpoint, checkpoint(4, `r${won[0]}`));
        const losers = groups.filter((_, i) => i !== won[0]).flat();
        assert.deepStrictEqual((await s.listPending(100)).map((p) => p.id), losers.sort((a, b) => a - b));
      }),
  ],
  [
    'two processes on one database: the same entries added at once get the same ids; two sequencers racing, exactly one wins',
    async (h, url) => {
      const es = entries(30);
      const adds = await race(url, [
        { op: 'add', entries: es.map(hexEntry) },
        { op: 'add', entries: [...es].reverse().map(hexEntry) },
      ]);
      const [one, two] = adds.map((r) => r.ok as EntryStatus[]);
      assert.ok(one && two, JSON.stringify(adds));
      assert.deepStrictEqual(one, [...two].reverse());
      assert.equal(await countRows(h, url, 'log_entries'), 30);
      const ids = one.map(pendingId);
      await withStore(url, (s) => s.commitBatch({ oldSize: 0, ids: [], root: ROOT, checkpoint: checkpoint(0), now: 1 }));
      let size = 0;
      const left = new Set(ids);
      for (let round = 0; round < 3; round++) {
        // Two sequencers from one head with batches of their own (disjoint, of different sizes).
        const batches = [ids.slice(round * 10, round * 10 + 4), ids.slice(round * 10 + 4, round * 10 + 10)];
        const results = await race(url, batches.map((b) => ({ op: 'commit' as const, oldSize: size, ids: b })));
        const won = results.flatMap((r, i) => (r.ok !== undefined ? [i] : []));
        assert.equal(won.length, 1, `round ${round}: exactly one wins: ${JSON.stringify(results)}`);
        assert.deepStrictEqual(results[1 - won[0]!], { err: 'sequence_conflict' });
        const winner = batches[won[0]!]!;
        assert.equal(results[won[0]!]!.ok, size + winner.length);
        await withStore(url, async (s) => {
          assert.equal((await s.getHead())?.size, size + winner.length);
          for (const [i, id] of winner.entries()) assert.equal(await s.indexOf(es[ids.indexOf(id)]!.hash), size + i);
          for (const id of winner) left.delete(id);
          assert.deepStrictEqual((await s.listPending(100)).map((p) => p.id), [...left].sort((a, b) => a - b), 'the loser wrote nothing');
        });
        size += winner.length;
      }
    },
  ],
  [
    '100,000 entries: one addPendingBatch, listPending, one commitBatch, listUnpublished and markPublished',
    (_h, url) =>
      withStore(url, async (s) => {
        const n = 100_000;
        const es = entries(n, 40);
        const ids = (await s.addPendingBatch(es, 1)).map(pendingId);
        await s.commitBatch({ oldSize: 0, ids: [], root: ROOT, checkpoint: checkpoint(0), now: 1 });
        const pending = await s.listPending(n);
        assert.deepStrictEqual(pending.map((p) => p.id), ids);
        const order = pending.map((p) => p.id).reverse();
        const head = await s.commitBatch({ oldSize: 0, ids: order, root: ROOT, checkpoint: checkpoint(n), now: 2 });
        assert.equal(head.size, n);
        for (const i of [0, 1, 4242, n - 1]) assert.equal(await s.indexOf(es[i]!.hash), n - 1 - i);
        const unpublished = await s.listUnpublished(0, n);
        assert.equal(unpublished.length, n);
        assert.deepStrictEqual(unpublished[n - 1], { index: n - 1, hash: es[0]!.hash, bytes: es[0]!.bytes });
        await s.markPublished(n, 3);
        assert.deepStrictEqual(await s.listUnpublished(0, 10), []);
        assert.deepStrictEqual(await s.listPending(10), []);
      }),
  ],
  [
    'malformed arguments throw InvalidInputError before the database is touched (a closed store answers them too)',
    async (h, url) => {
      const s = await openLogStore(url);
      const e = entry();
      const key = () => randomBytes(32);
      const sub = { name: 'alice', signingKey: key(), boxKey: key(), enrolledAt: 1 };
      const calls: [string, (s: LogStore) => Promise<unknown>][] = [
        ['submitter name empty', (x) => x.enrolSubmitter({ ...sub, name: '' })],
        ['submitter name with a slash', (x) => x.enrolSubmitter({ ...sub, name: 'a/b' })],
        ['submitter name of 65', (x) => x.revokeSubmitter('a'.repeat(65), 1)],
        ['signing key of 31', (x) => x.enrolSubmitter({ ...sub, signingKey: randomBytes(31) })],
        ['box key not bytes', (x) => x.enrolSubmitter({ ...sub, boxKey: 'k' as never })],
        ['enrolledAt negative', (x) => x.enrolSubmitter({ ...sub, enrolledAt: -1 })],
        ['submitter not an object', (x) => x.enrolSubmitter(null as never)],
        ['getSubmitter key of 33', (x) => x.getSubmitter(randomBytes(33))],
        ['revoke now fractional', (x) => x.revokeSubmitter('alice', 1.5)],
        ['hash of 31', (x) => x.addPending(randomBytes(31), e.bytes, 1)],
        ['empty entry', (x) => x.addPending(e.hash, new Uint8Array(0), 1)],
        ['entry of 65,536', (x) => x.addPending(e.hash, new Uint8Array(65_536), 1)],
        ['add now NaN', (x) => x.addPending(e.hash, e.bytes, Number.NaN)],
        ['empty batch', (x) => x.addPendingBatch([], 1)],
        ['batch with a bad entry', (x) => x.addPendingBatch([e, { hash: e.hash, bytes: 'x' as never }], 1)],
        ['batch entry null', (x) => x.addPendingBatch([null as never], 1)],
        ['batch of 100,001', (x) => x.addPendingBatch(new Array<Entry>(100_001).fill(e), 1)],
        ['entryStatus hash', (x) => x.entryStatus(new Uint8Array(0))],
        ['indexOf hash', (x) => x.indexOf('h' as never)],
        ['listPending 0', (x) => x.listPending(0)],
        ['listPending 100,001', (x) => x.listPending(100_001)],
        ['commit oldSize -1', (x) => x.commitBatch({ oldSize: -1, ids: [1], root: ROOT, checkpoint: 'c', now: 1 })],
        ['commit id 0', (x) => x.commitBatch({ oldSize: 0, ids: [0], root: ROOT, checkpoint: 'c', now: 1 })],
        ['commit id fractional', (x) => x.commitBatch({ oldSize: 0, ids: [1.5], root: ROOT, checkpoint: 'c', now: 1 })],
        ['commit ids not an array', (x) => x.commitBatch({ oldSize: 0, ids: 1 as never, root: ROOT, checkpoint: 'c', now: 1 })],
        ['commit 100,001 ids', (x) => x.commitBatch({ oldSize: 0, ids: Array.from({ length: 100_001 }, (_, i) => i + 1), root: ROOT, checkpoint: 'c', now: 1 })],
        ['commit root of 31', (x) => x.commitBatch({ oldSize: 0, ids: [], root: randomBytes(31), checkpoint: 'c', now: 1 })],
        ['commit empty checkpoint', (x) => x.commitBatch({ oldSize: 0, ids: [], root: ROOT, checkpoint: '', now: 1 })],
        ['commit checkpoint over 64 KiB', (x) => x.commitBatch({ oldSize: 0, ids: [], root: ROOT, checkpoint: 'é'.repeat(32_769), now: 1 })],
        ['commit size past 2^53', (x) => x.commitBatch({ oldSize: Number.MAX_SAFE_INTEGER, ids: [1], root: ROOT, checkpoint: 'c', now: 1 })],
        ['commit not an object', (x) => x.commitBatch(undefined as never)],
        ['listUnpublished from -1', (x) => x.listUnpublished(-1, 1)],
        ['listUnpublished limit 0', (x) => x.listUnpublished(0, 0)],
        ['markPublished size -1', (x) => x.markPublished(-1, 1)],
        ['markPublished now', (x) => x.markPublished(0, Number.POSITIVE_INFINITY)],
        ['setCosigned note', (x) => x.setCosigned(0, 7 as never, 1)],
        ['setCosigned size', (x) => x.setCosigned(0.5, 'c', 1)],
        ['witness name', (x) => x.setWitnessSize('w 1', 1, 1)],
        ['witness size', (x) => x.setWitnessSize('w1', -1, 1)],
      ];
      for (const [what, call] of calls) await rejectsWith(call(s), 'invalid_input', 'InvalidInputError').catch((err) => assert.fail(`${what}: ${err}`));
      for (const table of ['log_entries', 'log_submitters', 'log_head', 'log_witnesses']) assert.equal(await countRows(h, url, table), 0, table);
      await s.close();
      for (const [what, call] of calls) await rejectsWith(call(s), 'invalid_input').catch((err) => assert.fail(`closed, ${what}: ${err}`));
      await assert.rejects(s.listPending(1), 'a valid call on a closed store fails');
    },
  ],
  [
    'state survives close and reopen; close is idempotent; ids go on ascending',
    async (_h, url) => {
      const s = await openLogStore(url);
      const es = entries(3);
      const ids = await sequence(s, es.slice(0, 2));
      const waiting = pendingId(await s.addPending(es[2]!.hash, es[2]!.bytes, 5));
      await s.enrolSubmitter({ name: 'alice', signingKey: new Uint8Array(32).fill(1), boxKey: new Uint8Array(32).fill(2), enrolledAt: 7 });
      await s.setWitnessSize('w1', 2, 8);
      await s.setCosigned(2, 'cosigned note', 9);
      await s.markPublished(1, 10);
      const head = await s.getHead();
      await s.close();
      await s.close();
      await withStore(url, async (r) => {
        assert.deepStrictEqual(await r.getHead(), head);
        assert.equal(head?.cosigned, 'cosigned note');
        assert.equal(await r.indexOf(es[1]!.hash), 1);
        assert.deepStrictEqual((await r.listUnpublished(0, 10)).map((x) => x.index), [1]);
        assert.deepStrictEqual((await r.listPending(10)).map((p) => p.id), [waiting]);
        assert.equal((await r.getSubmitter(new Uint8Array(32).fill(1)))?.name, 'alice');
        assert.deepStrictEqual(await r.listWitnessStates(), [{ name: 'w1', size: 2, updatedAt: 8 }]);
        const next = pendingId(await r.addPending(entry().hash, randomBytes(10), 11));
        assert.ok(next > waiting && next > Math.max(...ids));
        assert.equal((await r.commitBatch({ oldSize: 2, ids: [waiting, next], root: ROOT, checkpoint: checkpoint(4), now: 12 })).size, 4);
      });
    },
  ],
  [
    'a database migrated by a newer lifeboat is refused with store_schema_newer',
    async (h, url) => {
      await withStore(url, async (s) => void (await s.getHead()));
      await h.exec(url, `insert into log_migration (name, timestamp) values ('9999_from_the_future', '2100-01-01')`);
      await rejectsWith(openLogStore(url), 'store_schema_newer');
    },
  ],
];

// ---- what one backend only has ----

const only: Record<LogStoreKind, Case[]> = {
  sqlite: [
    [
      'the file is created 0600 in a 0700 directory, in WAL mode; one others can read is refused; sqlite::memory: works',
      async (_h, url) => {
        const path = sqlitePathOf(url);
        await withStore(url, (s) => sequence(s, entries(2)));
        assert.equal(statSync(path).mode & 0o777, 0o600);
        assert.equal(statSync(dirname(path)).mode & 0o777, 0o700);
        const db = new Database(path, { readonly: true });
        assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
        db.close();
        chmodSync(path, 0o644);
        await rejectsWith(openLogStore(url), 'insecure_permissions');
        await withStore('sqlite::memory:', async (s) => {
          await sequence(s, entries(3));
          assert.equal((await s.getHead())?.size, 3);
        });
      },
    ],
    [
      'a file that is not a database is store_not_a_database; a clashing table is store_migration_failed',
      async (h, url) => {
        const path = sqlitePathOf(url);
        await withStore(url, async () => undefined);
        writeFileSync(path, 'not a database, just text '.repeat(200), { mode: 0o600 });
        await rejectsWith(openLogStore(url), 'store_not_a_database');
        assert.match(readFileSync(path, 'utf8'), /^not a database/, 'the file is left as it was');
        const other = await h.fresh();
        mkdirSync(dirname(sqlitePathOf(other)), { mode: 0o700 });
        writeFileSync(sqlitePathOf(other), '', { mode: 0o600 });
        await h.exec(other, 'create table log_head (x integer)');
        await rejectsWith(openLogStore(other), 'store_migration_failed');
      },
    ],
    [
      'a file locked by another writer past the busy timeout is store_busy, naming the log server, and nothing is written',
      async (h, url) => {
        await withStore(url, async (s) => {
          const lock = new Database(sqlitePathOf(url));
          lock.exec('begin immediate');
          try {
            await rejectsWith(s.addPending(entry().hash, randomBytes(10), 1), 'store_busy');
          } finally {
            lock.exec('rollback');
            lock.close();
          }
          const err = mapError(Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' }));
          assert.ok(isLifeboatError(err, 'store_busy') && /log server/.test(err.hint ?? ''), String(err));
          assert.equal(await countRows(h, url, 'log_entries'), 0);
          assert.equal(pendingId(await s.addPending(entry().hash, randomBytes(10), 1)) > 0, true, 'it works once the lock is gone');
        });
      },
    ],
  ],
  postgres: [
    [
      'holdSequencerLock: one holder per origin across stores (log_running), released by its function or by close',
      async (_h, url) => {
        const a = await openLogStore(url);
        const b = await openLogStore(url);
        try {
          const unlock = await a.holdSequencerLock('one.example/log');
          await rejectsWith(b.holdSequencerLock('one.example/log'), 'log_running');
          const other = await b.holdSequencerLock('two.example/log');
          await other();
          await unlock();
          const again = await b.holdSequencerLock('one.example/log');
          await rejectsWith(a.holdSequencerLock('one.example/log'), 'log_running');
          await b.close(); // releases it
          await (await a.holdSequencerLock('one.example/log'))();
          void again;
        } finally {
          await a.close();
          await b.close();
        }
      },
    ],
    [
      'one database hosts the log store beside the key node and backup stores; a clashing table is store_migration_failed',
      async (h, url) => {
        const node = await openKeyNodeStore(url);
        const backup = await openBackupStore(url);
        try {
          await withStore(url, (s) => sequence(s, entries(2)));
          await node.setMeta('node_epoch', '1');
          await backup.createAccount('acme', randomBytes(32), 1);
          await withStore(url, async (s) => assert.equal((await s.getHead())?.size, 2));
          assert.equal(await node.getMeta('node_epoch'), '1');
        } finally {
          await node.close();
          await backup.close();
        }
        const tables = (await h.query(url, `select tablename from pg_tables where schemaname = 'public' and tablename like 'log%' order by 1`)).map((r) => r.tablename);
        assert.deepStrictEqual(tables, ['log_entries', 'log_head', 'log_migration', 'log_migration_lock', 'log_submitters', 'log_witnesses']);
        const other = await h.fresh();
        await h.exec(other, 'create table log_head (x integer)');
        await rejectsWith(openLogStore(other), 'store_migration_failed');
      },
    ],
    [
      'an unreachable server is store_unavailable, and the password never shows in the error',
      async () => {
        await assert.rejects(openLogStore('postgres://lifeboat:hunter2-secret@127.0.0.1:1/nothing'), (err: unknown) => {
          assert.ok(isLifeboatError(err, 'store_unavailable'), String(err));
          assert.equal(err.status, 503);
          assert.ok(!`${err.message} ${err.hint}`.includes('hunter2'));
          return true;
        });
      },
    ],
  ],
};

only.sqlite.push([
  'holdSequencerLock on SQLite takes nothing: the data directory’s serve.lock is the one sequencer lock',
  (_h, url) =>
    withStore(url, async (s) => {
      const first = await s.holdSequencerLock('one.example/log');
      const second = await s.holdSequencerLock('one.example/log');
      await first();
      await second();
      await rejectsWith(s.holdSequencerLock(''), 'invalid_input');
    }),
]);

for (const h of [sqliteHarness('lifeboat-log-store-', 'log.sqlite'), postgresHarness()]) {
  describe(`log store conformance: ${h.kind}`, { skip: h.skip }, () => {
    before(() => h.setup());
    after(() => h.teardown());
    for (const [name, fn] of [...cases, ...only[h.kind]]) it(name, async () => fn(h, await h.fresh()));
  });
}

describe('log store urls', () => {
  it('parses the store url forms, refuses others without echoing them, and redacts passwords', async () => {
    assert.deepStrictEqual(parseLogStoreUrl('sqlite:./log/log.sqlite'), { kind: 'sqlite', path: './log/log.sqlite' });
    assert.deepStrictEqual(parseLogStoreUrl('sqlite:///var/lib/log.sqlite'), { kind: 'sqlite', path: '/var/lib/log.sqlite' });
    assert.deepStrictEqual(parseLogStoreUrl('postgresql://u:p@db/lb'), { kind: 'postgres', url: 'postgresql://u:p@db/lb' });
    for (const url of ['mysql://root:s3cret@db/x', './log.sqlite', '', 'sqlite:']) {
      await assert.rejects(openLogStore(url), (err: unknown) => {
        assert.ok(isLifeboatError(err, 'invalid_store_url'), `${url}: ${String(err)}`);
        assert.ok(!err.message.includes('s3cret'));
        return true;
      });
    }
    assert.equal(redactStoreUrl('postgres://log:pa55@db:5432/log'), 'postgres://log:***@db:5432/log');
  });
});
