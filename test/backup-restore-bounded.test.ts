/**
 * A dry run and a point-in-time restore stream as the restore to the head does (issue 17): the keys
 * are checked by the check pool in parts of at most 4,096 while the compaction is still being
 * downloaded (not after the whole state was read into memory), a dry run writes nothing at all, and a
 * restore to a point applies no entry after it; `backup check` streams too. One backup service, one
 * stream of 6,000 real shares.
 */
import { strict as assert } from 'node:assert';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BackupClient } from '../src/backup/client.js';
import { CompactionUpload } from '../src/backup/client-compaction.js';
import { CompactionWriter } from '../src/backup/compaction.js';
import { encodeChange } from '../src/backup/changes.js';
import { hashBlob, sealEntry, ZERO_HASH } from '../src/backup/format.js';
import { type BackupCheckError, checkBackupStream } from '../src/backup/check.js';
import { clientSource, restoreFromService } from '../src/backup/node-link.js';
import type { RestorePhase } from '../src/backup/restore.js';
import { randomBytes } from '../src/crypto/random.js';
import { CHECK_PART_CHANNEL } from '../src/keynode/restore-workers.js';
import { openKeyNodeStore } from '../src/keynode/store/index.js';
import { type BackupFixture, FAST, PASSWORD, startBackupFixture } from './helpers/backup.js';
import { dealt, row, STORAGE_KEY } from './helpers/restore-keys.js';
import { trackedTempDir } from './helpers/tmp.js';

const STREAM = 'node-bounded';
/** More keys than one part (4,096), fewer than two batches: the first part is checked before the compaction's last chunk is read. */
const N = 6_000;
const PART = 4_096;
const backupKey = randomBytes(32);
const secrets = { identity: randomBytes(64), storageKey: STORAGE_KEY, exportKey: randomBytes(32), wrappingKey: randomBytes(32) };
const keyId = (i: number) => `key_${String(i).padStart(5, '0')}`;
let fx: BackupFixture;
let parent: string;
let materials: ReturnType<typeof dealt>[];

before(async () => {
  fx = await startBackupFixture();
  parent = trackedTempDir('lifeboat-restore-bounded-');
  const client = new BackupClient({ url: fx.url, ...FAST });
  await client.register('acme', await fx.invite('acme'), PASSWORD, backupKey);
  await client.session('acme', backupKey);
  materials = [dealt('ed25519'), dealt('secp256k1')];
  // Entry 1: the node keys; an exact compaction at entry 1 with N keys; entry 2 puts one key more, entry 3 deletes key 0.
  const e1 = sealEntry(backupKey, { stream: STREAM, seq: 1, prev: ZERO_HASH }, encodeChange({ op: 'secrets', secrets }));
  await client.appendEntries(STREAM, [e1]);
  const upload = await CompactionUpload.begin(client, STREAM, 1);
  const made: Uint8Array[] = [];
  const w = new CompactionWriter(backupKey, { stream: STREAM, seq: 1, head: hashBlob(e1), createdAt: Date.now() }, (b) => made.push(b.slice()));
  w.secrets(secrets);
  for (let i = 0; i < N; i++) {
    w.key(row(keyId(i), materials[i % 2]!));
    if (made.length > 0) for (const b of made.splice(0)) await upload.write(b);
  }
  w.finish({ exact: true });
  for (const b of made.splice(0)) await upload.write(b);
  await upload.finish();
  const e2 = sealEntry(backupKey, { stream: STREAM, seq: 2, prev: hashBlob(e1) }, encodeChange({ op: 'key_put', key: row(keyId(N), materials[0]!) }));
  const e3 = sealEntry(backupKey, { stream: STREAM, seq: 3, prev: hashBlob(e2) }, encodeChange({ op: 'key_delete', keyId: keyId(0) }));
  await client.appendEntries(STREAM, [e2, e3]);
  client.endSession();
});

after(async () => {
  await fx.close();
});

/**
 * Runs `fn` watching the check pool's parts and the restore's progress: every part's size, and how
 * much of the compaction had been downloaded when the first part went to a worker.
 */
async function watched<T>(fn: (progress: (phase: RestorePhase, done: number, total: number) => void) => Promise<T>): Promise<{ result: T; parts: number[]; downloadedAtFirstPart: number; compactionSize: number }> {
  const parts: number[] = [];
  let downloaded = 0;
  let size = 0;
  let downloadedAtFirstPart = -1;
  const onPart = (m: unknown) => {
    if (parts.length === 0) downloadedAtFirstPart = downloaded;
    parts.push((m as { keys: number }).keys);
  };
  subscribe(CHECK_PART_CHANNEL, onPart);
  try {
    const result = await fn((phase, done, total) => {
      if (phase !== 'compaction') return;
      downloaded = done;
      size = total;
    });
    return { result, parts, downloadedAtFirstPart, compactionSize: size };
  } finally {
    unsubscribe(CHECK_PART_CHANNEL, onPart);
  }
}

const access = () => ({ server: fx.url, account: 'acme', password: PASSWORD, stream: STREAM, tuning: FAST });

function assertBounded(w: { parts: number[]; downloadedAtFirstPart: number; compactionSize: number }, keys: number, what: string): void {
  assert.ok(w.parts.length > 0, `${what}: the keys went through the check pool`);
  assert.ok(Math.max(...w.parts) <= PART, `${what}: parts of at most ${PART} keys (${Math.max(...w.parts)})`);
  assert.ok(w.parts.reduce((a, b) => a + b, 0) >= keys, `${what}: every key was checked in a part`);
  assert.ok(w.compactionSize > 0 && w.downloadedAtFirstPart >= 0 && w.downloadedAtFirstPart < w.compactionSize, `${what}: the first part was checked at ${w.downloadedAtFirstPart} of ${w.compactionSize} compaction bytes, before the whole state was read`);
}

test('a dry run streams: parts of at most 4,096 keys checked as the compaction comes, and the target directory is left untouched', async () => {
  // A directory that already holds something: a dry run neither refuses it nor touches it.
  const dir = join(parent, 'dry');
  mkdirSync(dir);
  writeFileSync(join(dir, 'keep.txt'), 'untouched');
  const before = { parent: readdirSync(parent).sort(), dir: readdirSync(dir), mtime: statSync(dir).mtimeMs };
  const w = await watched((progress) => restoreFromService({ ...access(), dir, dryRun: true, progress }));
  assert.deepEqual([w.result.dryRun, w.result.keys, w.result.headSeq, w.result.compactionSeq, w.result.entries, w.result.streamsTo, w.result.store], [true, N, 3, 1, 2, STREAM, null]);
  assertBounded(w, N, 'dry run');
  assert.deepEqual({ parent: readdirSync(parent).sort(), dir: readdirSync(dir), mtime: statSync(dir).mtimeMs }, before, 'nothing created, renamed or removed');
});

test('a point-in-time restore streams the same way, applies no entry after its point, and forks to a new stream', async () => {
  const dir = join(parent, 'at-2');
  const w = await watched((progress) => restoreFromService({ ...access(), dir, point: { seq: 2 }, progress }));
  assertBounded(w, N + 1, 'restore to entry 2');
  const r = w.result;
  assert.deepEqual([r.dryRun, r.keys, r.headSeq, r.streamHeadSeq, r.compactionSeq, r.entries], [false, N + 1, 2, 3, 1, 1]);
  assert.match(r.streamsTo, /^node-bounded\.at-2-[0-9a-f]{6}$/);
  const store = await openKeyNodeStore(r.store!);
  try {
    // Entry 3 (the delete of key 0) is after the point: key 0 is there, and so is entry 2's key.
    assert.equal(await store.countKeys(), N + 1);
    assert.ok(await store.getKey(keyId(0)), 'entry 3 was not applied');
    assert.ok(await store.getKey(keyId(N)), 'entry 2 was applied');
  } finally {
    await store.close();
  }
});

test('backup check streams the same way: the keys of each compaction in parts of at most 4,096 as it comes, the state at the head counted', async () => {
  const client = new BackupClient({ url: fx.url, ...FAST });
  await client.session('acme', backupKey);
  try {
    const w = await watched((progress) => checkBackupStream(clientSource(client), backupKey, STREAM, progress));
    assertBounded(w, N, 'backup check');
    const r = w.result;
    assert.deepEqual([r.headSeq, r.firstSeq, r.entries, r.keys, r.compactions.map((c) => [c.seq, c.keys, c.exact])], [3, 1, 3, 1, [[1, N, true]]], "entry 1 is held: the state at the head is replayed from it (entry 2's key), the compaction checked on its own");
  } finally {
    client.endSession();
  }
});

test('backup check refuses a listing that names a compaction twice (it would open a second check over the first and never end)', async () => {
  const client = new BackupClient({ url: fx.url, ...FAST });
  await client.session('acme', backupKey);
  try {
    const real = clientSource(client);
    const source = { ...real, compactions: async (s: string) => [...(await real.compactions(s)), ...(await real.compactions(s))] };
    const err = await checkBackupStream(source, backupKey, STREAM).then(
      () => assert.fail('the check passed'),
      (e: unknown) => e as BackupCheckError,
    );
    assert.equal(err.code, 'backup_check_failed');
    assert.deepEqual([err.item, err.seq], ['compaction', 1]);
    assert.match(err.message, /lists the compaction at entry 1 twice/);
  } finally {
    client.endSession();
  }
});

test('a point-in-time restore whose compaction turns out inexact at its end drops what it imported and starts over from entry 1', async () => {
  const stream = 'node-inexact';
  const client = new BackupClient({ url: fx.url, ...FAST });
  await client.session('acme', backupKey);
  // Entries 1-3: the node keys, key a, key b; a compaction at entry 3 read while key c was put (inexact); entry 4 puts key d.
  const changes = [encodeChange({ op: 'secrets', secrets }), ...['a', 'b', 'd'].map((k) => encodeChange({ op: 'key_put', key: row(`key_${k}`, materials[0]!) }))];
  const entries: Uint8Array[] = [];
  for (const c of changes) entries.push(sealEntry(backupKey, { stream, seq: entries.length + 1, prev: entries.length ? hashBlob(entries.at(-1)!) : ZERO_HASH }, c));
  await client.appendEntries(stream, entries.slice(0, 3));
  const upload = await CompactionUpload.begin(client, stream, 3);
  const made: Uint8Array[] = [];
  const w = new CompactionWriter(backupKey, { stream, seq: 3, head: hashBlob(entries[2]!), createdAt: Date.now() }, (b) => made.push(b.slice()));
  w.secrets(secrets);
  for (const k of ['a', 'b', 'c']) w.key(row(`key_${k}`, materials[1]!));
  w.finish({ exact: false });
  for (const b of made) await upload.write(b);
  await upload.finish();
  await client.appendEntries(stream, entries.slice(3));
  client.endSession();
  const r = await restoreFromService({ ...access(), stream, dir: join(parent, 'inexact'), point: { seq: 3 } });
  assert.deepEqual([r.keys, r.headSeq, r.compactionSeq, r.entries], [2, 3, 0, 3], 'replayed from entry 1, the compaction dropped');
  const store = await openKeyNodeStore(r.store!);
  try {
    assert.deepEqual((await store.listKeys({ limit: 10 })).map((k) => [k.keyId, k.curve]), [['key_a', 'ed25519'], ['key_b', 'ed25519']], 'nothing of the inexact compaction is left');
  } finally {
    await store.close();
  }
});
