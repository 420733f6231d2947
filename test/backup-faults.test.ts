/**
 * A lying or broken backup service: what a restore reads is checked entry by entry, and every fault
 * is refused by name before anything is written. The stream is written through the real service; the
 * faults are injected between it and the restore.
 */
import { strict as assert } from 'node:assert';
import { after, before, test } from 'node:test';
import { BackupClient } from '../src/backup/client.js';
import { encodeChange, encodeNodeState, type StreamSecrets } from '../src/backup/changes.js';
import { CompactionWriter } from '../src/backup/compaction.js';
import { hashBlob, sealCompaction, sealEntry, ZERO_HASH } from '../src/backup/format.js';
import { clientSource } from '../src/backup/node-link.js';
import { readBackupStream, type RestoreSource } from '../src/backup/restore.js';
import { randomBytes } from '../src/crypto/random.js';
import type { KeyRecord } from '../src/keynode/store/types.js';
import { type BackupFixture, FAST, PASSWORD, startBackupFixture } from './helpers/backup.js';

const STREAM = 'node-faults';
let fx: BackupFixture;
let client: BackupClient;
const backupKey = randomBytes(32);
const secrets = { identity: randomBytes(64), storageKey: randomBytes(32), exportKey: randomBytes(32), wrappingKey: randomBytes(32) };
const entries: Uint8Array[] = [];

function fakeKey(i: number): KeyRecord {
  return {
    keyId: `key_${i}`,
    curve: 'ed25519',
    threshold: 2,
    maxSigners: 3,
    identifier: '01',
    groupPublicKey: randomBytes(32),
    publicPackage: randomBytes(64),
    encryptedShare: randomBytes(80),
    status: 'active',
    origin: 'dkg',
    createdAt: i,
    tenant: 'default',
  };
}

/**
 * A compaction of `keys` at entry `seq` in either version: 1 (JSON in one envelope), 2 (streamed
 * binary records, as the agent writes it now), with the exact flag as given.
 */
function makeCompaction(version: 1 | 2, h: { seq: number; head: Uint8Array; stream?: string }, keys: KeyRecord[], exact = false, s: StreamSecrets = secrets): Uint8Array {
  const at = { stream: STREAM, ...h };
  if (version === 1) return sealCompaction(backupKey, at, encodeNodeState(s, { keys, apiKeys: [] }, 'now', exact));
  const parts: Uint8Array[] = [];
  const w = new CompactionWriter(backupKey, { ...at, createdAt: 1_765_000_000_000 }, (b) => parts.push(b.slice()));
  w.secrets(s);
  for (const k of [...keys].sort((a, b) => (a.keyId < b.keyId ? -1 : 1))) w.key(k);
  w.finish({ exact });
  return new Uint8Array(Buffer.concat(parts));
}

/** A source's chunks of `bytes`, in pieces of `piece` bytes (as the service hands on its parts). */
function chunksOf(bytes: Uint8Array, piece = 1000): RestoreSource['compactionChunks'] {
  return async function* () {
    for (let i = 0; i < bytes.length; i += piece) yield bytes.subarray(i, i + piece);
  };
}

/** Seals the next entry of the test stream. */
function next(change: Uint8Array, key = backupKey, stream = STREAM): Uint8Array {
  const prev = entries.length === 0 ? ZERO_HASH : hashBlob(entries[entries.length - 1]!);
  return sealEntry(key, { stream, seq: entries.length + 1, prev }, change);
}

before(async () => {
  fx = await startBackupFixture();
  client = new BackupClient({ url: fx.url, ...FAST });
  await client.register('acme', await fx.invite('acme'), PASSWORD, backupKey);
  await client.session('acme', backupKey);
  entries.push(next(encodeChange({ op: 'secrets', secrets })));
  for (let i = 1; i <= 9; i++) entries.push(next(encodeChange({ op: 'key_put', key: fakeKey(i) })));
  await client.appendEntries(STREAM, entries);
});

after(async () => {
  client.endSession();
  await fx.close();
});

/** The real source with one method replaced. */
function lying(over: Partial<RestoreSource>): RestoreSource {
  return { ...clientSource(client), ...over };
}

async function refused(source: RestoreSource, expected: string, opts: { key?: Uint8Array; expectSeq?: number } = {}): Promise<void> {
  await assert.rejects(readBackupStream(source, opts.key ?? backupKey, STREAM, { expectSeq: opts.expectSeq }), (err: { code?: string }) => {
    assert.equal(err.code, expected);
    return true;
  });
}

function served(transform: (all: Uint8Array[]) => Uint8Array[]): Partial<RestoreSource> {
  return {
    entries: async (stream, afterSeq, limit) => {
      const all = transform(await clientSource(client).entries(stream, 0, 10_000));
      return all.slice(afterSeq, afterSeq + limit);
    },
  };
}

test('the honest stream reads back whole', async () => {
  const r = await readBackupStream(clientSource(client), backupKey, STREAM);
  assert.equal(r.head.seq, 10);
  assert.equal(r.state.keys.size, 9);
  assert.deepEqual(r.state.secrets, secrets);
});

test('a tampered entry is refused (decryption_failed)', async () => {
  await refused(
    lying(
      served((all) => {
        const t = all.map((e) => e.slice());
        t[4]![t[4]!.length - 3]! ^= 0x40;
        return t;
      }),
    ),
    'decryption_failed',
  );
});

test('a truncated stream is refused (backup_truncated)', async () => {
  await refused(lying(served((all) => all.slice(0, 7))), 'backup_truncated');
});

test('reordered entries are refused (entry_misplaced)', async () => {
  await refused(lying(served((all) => [...all.slice(0, 3), all[4]!, all[3]!, ...all.slice(5)])), 'entry_misplaced');
});

test('a replayed entry, from this stream or another, is refused (entry_misplaced)', async () => {
  await refused(lying(served((all) => [...all.slice(0, 6), all[5]!, ...all.slice(7)])), 'entry_misplaced');
  // Entry 7 of another stream sealed with the same backup key (another node of the same operator).
  const foreign = sealEntry(backupKey, { stream: 'node-other', seq: 7, prev: hashBlob(entries[5]!) }, encodeChange({ op: 'key_delete', keyId: 'key_1' }));
  await refused(lying(served((all) => [...all.slice(0, 6), foreign, ...all.slice(7)])), 'entry_misplaced');
});

test('a forked entry (right seq, right key, another history) breaks the chain (backup_chain_broken)', async () => {
  const fork = sealEntry(backupKey, { stream: STREAM, seq: 6, prev: hashBlob(entries[4]!) }, encodeChange({ op: 'key_delete', keyId: 'key_2' }));
  await refused(lying(served((all) => [...all.slice(0, 5), fork, ...all.slice(6)])), 'backup_chain_broken');
});

test('a rolled-back service: a shorter consistent stream is refused against --expect-seq (backup_rolled_back)', async () => {
  const real = clientSource(client);
  const rolledBack = lying({
    stream: async (s) => ({ ...(await real.stream(s)), headSeq: 6, headHash: hashBlob(entries[5]!) }),
    ...served((all) => all.slice(0, 6)),
  });
  // Alone, a consistent prefix reads (that is what rollback means) ...
  assert.equal((await readBackupStream(rolledBack, backupKey, STREAM)).head.seq, 6);
  // ... and the operator's last known head catches it.
  await refused(rolledBack, 'backup_rolled_back', { expectSeq: 10 });
});

test('a compaction other than the one named, or one that does not meet the entries, is refused (version 1 and 2, read by chunks)', async () => {
  const head = hashBlob(entries[4]!);
  for (const version of [1, 2] as const) {
    const good = makeCompaction(version, { seq: 5, head }, [fakeKey(1)]);
    const named = { seq: 5, hash: hashBlob(good), size: good.length };
    const withCompaction = (bytes: Uint8Array, meta = named): Partial<RestoreSource> => ({
      stream: async (s) => ({ ...(await clientSource(client).stream(s)), compaction: meta }),
      compactionChunks: chunksOf(bytes),
    });
    const ok = await readBackupStream(lying(withCompaction(good)), backupKey, STREAM);
    assert.equal(ok.compactionSeq, 5, `v${version}`);
    // Swapped for an older one: its hash is not the named one.
    const older = makeCompaction(version, { seq: 3, head: hashBlob(entries[2]!) }, [fakeKey(1)]);
    await refused(lying(withCompaction(older)), 'backup_chain_broken');
    // The named one with a byte more, or cut short, or one byte altered: the size or hash the reader counts differs.
    await refused(lying(withCompaction(new Uint8Array([...good, 0]))), 'backup_chain_broken');
    await refused(lying(withCompaction(good.subarray(0, good.length - 1))), 'backup_chain_broken');
    const altered = good.slice();
    altered[altered.length - 20]! ^= 1;
    await refused(lying(withCompaction(altered)), 'backup_chain_broken');
    // Named with its own hash, an altered byte is the decryption's to find.
    await refused(lying(withCompaction(altered, { seq: 5, hash: hashBlob(altered), size: altered.length })), 'decryption_failed');
    // Another stream's compaction (same backup key) in its place: not the named bytes, refused as such.
    const foreign = makeCompaction(version, { seq: 5, head, stream: 'node-other' }, [fakeKey(1)]);
    await refused(lying(withCompaction(foreign)), 'backup_chain_broken');
    // Named with its own hash, it is another stream's.
    await refused(lying(withCompaction(foreign, { seq: 5, hash: hashBlob(foreign), size: foreign.length })), 'entry_misplaced');
    // Named at another seq than it covers.
    await refused(lying(withCompaction(good, { ...named, seq: 6 })), 'backup_chain_broken');
    // A compaction whose head is not entry 5's: entry 6 does not follow it.
    const offChain = makeCompaction(version, { seq: 5, head: randomBytes(32) }, [fakeKey(1)]);
    await refused(lying(withCompaction(offChain, { seq: 5, hash: hashBlob(offChain), size: offChain.length })), 'backup_chain_broken');
  }
});

test('a wrong backup key opens nothing, and cannot even get a session', async () => {
  await refused(clientSource(client), 'decryption_failed', { key: randomBytes(32) });
  const other = new BackupClient({ url: fx.url, ...FAST });
  await assert.rejects(other.session('acme', randomBytes(32)), (err: { code?: string }) => err.code === 'auth_failed');
});

test('another account cannot read or write this account’s stream', async () => {
  const mallory = new BackupClient({ url: fx.url, ...FAST });
  const malloryKey = randomBytes(32);
  await mallory.register('mallory', await fx.invite('mallory'), 'mallory password', malloryKey);
  const token = await mallory.session('mallory', malloryKey);
  for (const [method, path, body] of [
    ['GET', `/v1/accounts/acme/streams/${STREAM}`, undefined],
    ['GET', `/v1/accounts/acme/streams/${STREAM}/entries?after=0&limit=10`, undefined],
    ['POST', `/v1/accounts/acme/streams/${STREAM}/entries`, JSON.stringify({ entries: [Buffer.from(entries[0]!).toString('base64')] })],
  ] as const) {
    const res = await fetch(`${fx.url}${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body });
    assert.equal(res.status, 403, `${method} ${path}`);
    assert.equal(((await res.json()) as { err_type: string }).err_type, 'forbidden');
  }
  // Its own streams do not include acme's.
  assert.deepEqual(await mallory.listStreams(), []);
  // And acme's head is unchanged.
  assert.equal((await client.getStream(STREAM))?.headSeq, 10);
});

test('a restore that fails at the share check leaves nothing behind: no node, no half-written directory', async () => {
  const { readdirSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { trackedTempDir } = await import('./helpers/tmp.js');
  const { writeRestoredNode } = await import('../src/backup/restore.js');
  const read = await readBackupStream(clientSource(client), backupKey, STREAM);
  const parent = trackedTempDir('lifeboat-restore-fail-');
  const backup = { server: fx.url, account: 'acme', stream: STREAM, usable_before_ack: false, wait_ms: 0, batch_entries: 1, compact_entries: 1, compact_seconds: 10 };
  // The stream's keys are not real shares under its storage key: the check refuses the first.
  await assert.rejects(writeRestoredNode(join(parent, 'node'), read, { backup, backupKey }), (err: { code?: string }) => err.code === 'share_mismatch');
  assert.deepEqual(readdirSync(parent), []);
});

test('a streamed restore refused by a check made only at its end rolls back the keys it had imported: no node, the store empty', async () => {
  const { readdirSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { trackedTempDir } = await import('./helpers/tmp.js');
  const { restoreStreamToNode } = await import('../src/backup/restore-stream.js');
  const { openKeyNodeStore } = await import('../src/keynode/store/index.js');
  const { encodeFrostPublic, identifierOf, sealKeyShare, suite } = await import('../src/keynode/frost/index.js');
  // Real shares under the stream's storage key, in a compaction at entry 5: every one passes the check.
  const d = suite('ed25519').trustedDealer({ min: 2, max: 3 });
  const identifier = identifierOf('ed25519', 1);
  const pub = { signers: { min: 2, max: 3 }, commitments: d.public.commitments, verifyingShares: d.public.verifyingShares };
  const real = Array.from({ length: 40 }, (_, i): KeyRecord => {
    const keyId = `key_real_${String(i).padStart(3, '0')}`;
    const share = sealKeyShare(secrets.storageKey, { keyId, curve: 'ed25519', identifier, share: d.secretShares[identifier]!.signingShare, public: pub });
    return { ...fakeKey(i), keyId, identifier, groupPublicKey: d.public.commitments[0]!.slice(), publicPackage: encodeFrostPublic('ed25519', pub), encryptedShare: share };
  });
  const bytes = makeCompaction(2, { seq: 5, head: hashBlob(entries[4]!) }, real);
  const named = { seq: 5, hash: hashBlob(bytes), size: bytes.length };
  const parent = trackedTempDir('lifeboat-restore-stream-fail-');
  const store = `sqlite:${join(parent, 'outside', 'node.sqlite')}`;
  const backup = { server: fx.url, account: 'acme', stream: STREAM, usable_before_ack: false, wait_ms: 0, batch_entries: 1, compact_entries: 1, compact_seconds: 10 };
  const cases: [string, Partial<RestoreSource>][] = [
    // The service serves no entry after the compaction, yet states its head is 10.
    ['backup_truncated', served((all) => all.slice(0, 5))],
    // Entry 6 puts a key whose share is not one: refused after the compaction's keys went in.
    ['share_mismatch', {}],
  ];
  for (const [code, over] of cases) {
    let checked = 0;
    const source = lying({ stream: async (s) => ({ ...(await clientSource(client).stream(s)), compaction: named }), compactionChunks: chunksOf(bytes, 4096), ...over });
    const restoring = restoreStreamToNode(source, backupKey, STREAM, join(parent, 'node'), { backup, store, progress: (phase, done) => void (phase === 'verify' && (checked = done)) });
    await assert.rejects(restoring, (err: { code?: string }) => err.code === code);
    assert.ok(checked >= real.length, `${code}: the compaction's keys were checked before the refusal (${checked})`);
    assert.deepEqual(readdirSync(parent), ['outside'], code);
    const s = await openKeyNodeStore(store);
    assert.deepEqual([await s.countKeys(), await s.getMeta('nonce_epoch'), (await s.listApiKeys()).length], [0, undefined, 0], code);
    await s.close();
  }
});

test('point in time: the base is the latest exact compaction at or before the point, an inexact one is passed over, and a time needs commit times', async () => {
  const { chooseCompaction, readStreamAt } = await import('../src/backup/point.js');
  // Entry 1 holds the node keys, entry s >= 2 key_(s-1). A compaction at 5 that also holds key_9 (a
  // change committed while it was read): only an exact one may be the base of a point before the head.
  for (const version of [1, 2] as const) {
    const sealed = (exact: boolean) => makeCompaction(version, { seq: 5, head: hashBlob(entries[4]!) }, [1, 2, 3, 4, 9].map(fakeKey), exact);
    const listing = (bytes: Uint8Array): Partial<RestoreSource> => ({ compactions: async () => [{ seq: 5, hash: hashBlob(bytes), size: bytes.length }], compactionChunks: chunksOf(bytes) });
    const ids = (r: { state: { keys: Map<string, unknown> } }) => [...r.state.keys.keys()].sort();
    const then = ['key_1', 'key_2', 'key_3', 'key_4', 'key_5'];

    const passedOver = await readStreamAt(lying(listing(sealed(false))), backupKey, STREAM, { seq: 6 });
    assert.deepEqual([passedOver.compactionSeq, passedOver.entries, passedOver.head.seq], [0, 6, 6], `v${version}: replayed from entry 1`);
    assert.deepEqual(ids(passedOver), then);
    const based = await readStreamAt(lying(listing(sealed(true))), backupKey, STREAM, { seq: 6 });
    assert.deepEqual([based.compactionSeq, based.entries], [5, 1], `v${version}: the exact compaction, then entry 6`);
    assert.deepEqual(ids(based), [...then, 'key_9'].sort(), 'what the compaction holds is what comes back');
    const atHead = await readStreamAt(lying(listing(sealed(false))), backupKey, STREAM, { seq: 10 });
    assert.equal(atHead.compactionSeq, 5, 'at the head any compaction serves');
    // The base is checked against its listing as a restore's is.
    const other = sealed(true);
    await assert.rejects(readStreamAt(lying({ ...listing(other), compactionChunks: chunksOf(sealed(true)) }), backupKey, STREAM, { seq: 6 }), (err: { code?: string }) => err.code === 'backup_chain_broken');
  }

  // These entries were sealed without commit times: a time cannot be placed among them.
  await assert.rejects(readStreamAt(clientSource(client), backupKey, STREAM, { time: Date.now() }), (err: { code?: string }) => err.code === 'backup_time_unknown');
  await assert.rejects(readStreamAt(clientSource(client), backupKey, STREAM, { seq: 11 }), (err: { code?: string }) => err.code === 'backup_point_after_end');
  assert.equal(chooseCompaction([{ seq: 3 }, { seq: 7 }, { seq: 5 }].map((c) => ({ ...c, hash: ZERO_HASH, size: 1 })), 6)?.seq, 5);
});
