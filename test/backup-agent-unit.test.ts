/**
 * The backup agent against a real SQLite store and a real service, with the transport wrapped to lose
 * acknowledgements and a clock the test moves: compaction by count and by age, idempotent re-sends.
 */
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BackupAgent, type BackupTransport } from '../src/backup/agent.js';
import { BackupClient } from '../src/backup/client.js';
import { clientTransport } from '../src/backup/node-link.js';
import { encodeChange, encodeNodeState } from '../src/backup/changes.js';
import { loadNamedCompaction, readBackupStream } from '../src/backup/restore.js';
import { type BackupCheckError, checkBackupStream } from '../src/backup/check.js';
import { encodeFrostPublic, type FrostPublic, identifierOf, sealKeyShare, suite } from '../src/keynode/frost/index.js';
import { clientSource } from '../src/backup/node-link.js';
import { CompactionUpload } from '../src/backup/client-compaction.js';
import { hashBlob, sealCompaction, sealEntry, ZERO_HASH } from '../src/backup/format.js';
import { readFileSync } from 'node:fs';
import { sha256 } from '@noble/hashes/sha2.js';
import { fromB64, utf8 } from '../src/util/bytes.js';
import { randomBytes } from '../src/crypto/random.js';
import { openKeyNodeStore } from '../src/keynode/store/index.js';
import type { KeyNodeStore, KeyRecord } from '../src/keynode/store/types.js';
import { type BackupFixture, FAST, PASSWORD, startBackupFixture } from './helpers/backup.js';
import { tempDir } from './helpers/keynode.js';

let fx: BackupFixture;
let store: KeyNodeStore;
let client: BackupClient;
const backupKey = randomBytes(32);
const secrets = { identity: randomBytes(64), storageKey: randomBytes(32), exportKey: randomBytes(32), wrappingKey: randomBytes(32) };
let clock = 1_000_000;

function key(i: number, status: KeyRecord['status'] = 'active'): KeyRecord {
  return { keyId: `key_${i}`, curve: 'ed25519', threshold: 2, maxSigners: 3, identifier: '01', groupPublicKey: randomBytes(32), publicPackage: randomBytes(64), encryptedShare: randomBytes(80), status, origin: 'dkg', createdAt: i, tenant: 'default' };
}

before(async () => {
  fx = await startBackupFixture();
  store = await openKeyNodeStore(`sqlite:${join(tempDir(), 'store.sqlite')}`);
  await store.setMeta('backup_journal', 'on');
  await store.appendOutbox(encodeChange({ op: 'secrets', secrets }), clock);
  client = new BackupClient({ url: fx.url, ...FAST });
  await client.register('unit', await fx.invite('unit'), PASSWORD, backupKey);
});

after(async () => {
  await store.close();
  await fx.close();
});

function agent(transport: BackupTransport, opts: { compactEntries?: number; compactSeconds?: number } = {}): BackupAgent {
  return new BackupAgent({ store, backupKey, secrets: () => secrets, stream: 'unit-s', transport, now: () => clock, ...opts });
}

test('a lost acknowledgement: the re-send is byte-identical and the service accepts it once', async () => {
  const real = clientTransport(new BackupClient({ url: fx.url, ...FAST }), 'unit', backupKey);
  let drop = true;
  const lossy: BackupTransport = {
    ...real,
    append: async (stream, entries) => {
      const head = await real.append(stream, entries);
      if (drop) {
        drop = false;
        throw new Error('connection reset after the service committed');
      }
      return head;
    },
  };
  const a = agent(lossy);
  for (let i = 1; i <= 3; i++) await store.insertKey(key(i));
  await assert.rejects(a.step(), /connection reset/);
  assert.equal((await a.status()).ackedSeq, 0, 'nothing counted as acknowledged');
  await a.step();
  const st = await a.status();
  assert.equal(st.ackedSeq, 4);
  assert.equal(st.unacked + st.unsealed, 0);
  assert.equal((await fx.server.store.getStream('unit', 'unit-s'))?.headSeq, 4);
});

test('a pending_backup key is activated by the acknowledgement of its own entry', async () => {
  const a = agent(clientTransport(client, 'unit', backupKey));
  await store.insertKey(key(10, 'pending_backup'));
  assert.equal((await store.getKey('key_10'))?.status, 'pending_backup', 'not before the agent ran');
  await a.step();
  assert.equal((await store.getKey('key_10'))?.status, 'active');
  assert.equal((await a.status()).pendingKeys, 0);
});

test('compaction by entry count, then by age; the service prunes behind it and a restore reads it', async () => {
  const a = agent(clientTransport(client, 'unit', backupKey), { compactEntries: 3, compactSeconds: 3600 });
  await a.step(); // the first pass starts the age clock; 5 acknowledged entries are >= 3
  const first = (await a.status()).compactedSeq;
  assert.equal(first, 5, 'compacted at the acknowledged head');
  await store.insertKey(key(20));
  await a.step();
  assert.equal((await a.status()).compactedSeq, first, 'one entry since: not due');
  clock += 3601 * 1000;
  await a.step();
  assert.equal((await a.status()).compactedSeq, 6, 'due by age');
  await store.insertKey(key(21));
  await store.insertKey(key(22));
  await store.insertKey(key(23));
  await a.step();
  assert.equal((await a.status()).compactedSeq, 9, 'due by count again');
  // The service keeps the previous compaction (at 6) and every entry after it.
  const s = await fx.server.store.getStream('unit', 'unit-s');
  assert.equal(s?.firstSeq, 7);
  const session = new BackupClient({ url: fx.url, ...FAST });
  await session.session('unit', backupKey);
  const read = await readBackupStream(clientSource(session), backupKey, 'unit-s');
  assert.equal(read.compactionSeq, 9);
  assert.deepEqual([...read.state.keys.keys()].sort(), ['key_1', 'key_10', 'key_2', 'key_20', 'key_21', 'key_22', 'key_23', 'key_3']);  // The compaction went up streamed, as LBBC v2, and every record came back as the store holds it.
  const current = await session.currentCompaction('unit-s');
  const chunk0 = await fx.server.store.getCompactionChunk('unit', 'unit-s', current!.id, 0);
  assert.deepEqual([...chunk0!.subarray(0, 5)], [...utf8.encode('LBBC'), 2]);
  for (const k of await store.listKeys({ limit: 100 })) assert.deepEqual(read.state.keys.get(k.keyId), k);
  assert.deepEqual(read.state.secrets, secrets);
});

test('a streamed compaction of many keys spans several parts and chunks; the service checks what complete names', async () => {
  await store.transaction(async (tx) => {
    for (let i = 100; i < 700; i++) await tx.insertKey(key(i));
  });
  const a = agent(clientTransport(client, 'unit', backupKey));
  await a.step();
  // Parts of 8 KiB through the real service: about 20 of them.
  const small: BackupTransport = { ...clientTransport(client, 'unit', backupKey), beginCompaction: async (stream, seq) => {
    const up = await CompactionUpload.begin(client, stream, seq, 8 << 10);
    return { write: (b) => up.write(b), finish: async () => void (await up.finish()) };
  } };
  const r = await agent(small).compact();
  const current = await client.currentCompaction('unit-s');
  assert.equal(current?.seq, r.seq);
  assert.equal(current?.size, r.bytes);
  assert.ok(current!.chunkCount >= 10, `${current!.chunkCount} parts`);
  const read = await readBackupStream(clientSource(client), backupKey, 'unit-s');
  assert.equal(read.compactionSeq, r.seq);
  assert.equal(read.state.keys.size, await store.countKeys());
  for (const k of await store.listKeys({ afterKeyId: 'key_650', limit: 50 })) assert.deepEqual(read.state.keys.get(k.keyId), k);
  // Completing a streamed upload without its size and hash, with other ones, or with a chunk past the count it names, is refused.
  await store.insertKey(key(700));
  await a.step();
  const seq = (await a.status()).ackedSeq;
  const base = `/v1/accounts/unit/streams/unit-s/compactions`;
  const began = (await client.streamCall('POST', () => base, { seq }, null)) as { id: string };
  const put = (n: number, b: Uint8Array) => client.streamCall('PUT', () => `${base}/${began.id}/chunks/${n}`, undefined, null, { bytes: b });
  const codeOf = (p: Promise<unknown>) => p.then(() => 'no_error', (err: { code?: string }) => err.code);
  const part = randomBytes(100);
  await put(0, part);
  await put(1, part);
  const complete = (body: unknown) => codeOf(client.streamCall('POST', () => `${base}/${began.id}/complete`, body, null));
  assert.equal(await complete(undefined), 'invalid_input');
  assert.equal(await complete({ size: 100, chunk_count: 1, hash: Buffer.from(hashBlob(part)).toString('base64') }), 'compaction_size_mismatch', 'chunk 1 is past the one named');
  assert.equal(await complete({ size: 300, chunk_count: 2, hash: Buffer.from(hashBlob(part)).toString('base64') }), 'compaction_size_mismatch');
  assert.equal(await complete({ size: 200, chunk_count: 2, hash: Buffer.from(hashBlob(part)).toString('base64') }), 'compaction_hash_mismatch');
  assert.equal((await client.currentCompaction('unit-s'))?.seq, r.seq, 'nothing changed');
});

test('the streamed compaction is exact only when no change landed while the agent read it (the end record’s flag)', async () => {
  const src = clientSource(client);
  const current = async () => {
    const listed = await src.compactions('unit-s');
    return loadNamedCompaction(src, backupKey, 'unit-s', listed[listed.length - 1]!);
  };
  // A key committed on the node while the agent reads its first page: the compaction may hold it.
  let landed = false;
  const busy = new Proxy(store, {
    get(target, prop, recv) {
      if (prop !== 'listKeys') return Reflect.get(target, prop, recv) as unknown;
      return async (...args: Parameters<KeyNodeStore['listKeys']>) => {
        const page = await target.listKeys(...args);
        if (!landed) {
          landed = true;
          await target.insertKey(key(800));
        }
        return page;
      };
    },
  });
  const mk = (s: KeyNodeStore) => new BackupAgent({ store: s, backupKey, secrets: () => secrets, stream: 'unit-s', transport: clientTransport(client, 'unit', backupKey), now: () => clock });
  const r1 = await mk(busy).compact();
  assert.ok(landed);
  const c1 = await current();
  assert.deepEqual([c1.version, c1.seq, c1.exact, c1.createdAt], [2, r1.seq, false, new Date(clock).toISOString()]);
  // Sealed and acknowledged, then read with nothing landing: exact.
  await mk(store).step();
  clock += 1000;
  const r2 = await mk(store).compact();
  const c2 = await current();
  assert.deepEqual([c2.seq, c2.exact, c2.createdAt], [r2.seq, true, new Date(clock).toISOString()]);
  assert.ok(c2.state.keys.has('key_800'));
});

test('a stored version-1 stream (entries and an LBBC v1 compaction) still restores through the service', async () => {
  const v1 = JSON.parse(readFileSync(new URL('./data/backup-compaction-v1.json', import.meta.url), 'utf8')) as { backup_key_label: string; stream: string; entries: string[]; compaction: string };
  const k = sha256(utf8.encode(v1.backup_key_label));
  const c = new BackupClient({ url: fx.url, ...FAST });
  await c.register('v1', await fx.invite('v1'), PASSWORD, k);
  await c.session('v1', k);
  await c.appendEntries(v1.stream, v1.entries.map((e) => fromB64(e, 'entry')));
  const bytes = fromB64(v1.compaction, 'compaction');
  await c.uploadCompaction(v1.stream, 4, hashBlob(bytes), bytes);
  const read = await readBackupStream(clientSource(c), k, v1.stream);
  assert.equal(read.compactionSeq, 4);
  assert.equal(read.entries, 0);
  assert.deepEqual([...read.state.keys.keys()], ['key_v1_1', 'key_v1_2']);
  assert.equal(read.state.apiKeys.get('0123456789abcdef')?.role, 'operator');
  // backup check opens it as a restore does (its listed hash, its encryption, its records) and gets as
  // far as the shares: this fixture's are stand-ins, not sealed shares.
  await assert.rejects(checkBackupStream(clientSource(c), k, v1.stream), (err: BackupCheckError) => {
    assert.deepEqual([err.item, err.seq, err.causeCode], ['compaction', 4, 'share_mismatch']);
    return true;
  });
  c.endSession();
});

test('a version-1 compaction of real shares, as the agent wrote it before version 2: backup check passes it and a restore reads it', async () => {
  const stream = 'v1-real';
  // Two keys of a trusted dealer, this node participant 1, each share sealed under the node's storage key.
  const keys = (['ed25519', 'secp256k1'] as const).map((curve, i): KeyRecord => {
    const d = suite(curve).trustedDealer({ min: 2, max: 3 });
    const identifier = identifierOf(curve, 1);
    const pub: FrostPublic = { signers: { min: 2, max: 3 }, commitments: d.public.commitments, verifyingShares: d.public.verifyingShares };
    const keyId = `key_real_${i}`;
    const share = sealKeyShare(secrets.storageKey, { keyId, curve, identifier, share: d.secretShares[identifier]!.signingShare, public: pub });
    return { ...key(900 + i), keyId, curve, identifier, groupPublicKey: d.public.commitments[0]!.slice(), publicPackage: encodeFrostPublic(curve, pub), encryptedShare: share };
  });
  const changes = [encodeChange({ op: 'secrets', secrets }), ...keys.map((k) => encodeChange({ op: 'key_put', key: k }))];
  const entries: Uint8Array[] = [];
  for (const ch of changes) entries.push(sealEntry(backupKey, { stream, seq: entries.length + 1, prev: entries.length ? hashBlob(entries[entries.length - 1]!) : ZERO_HASH }, ch));
  await client.session('unit', backupKey);
  await client.appendEntries(stream, entries);
  const v1 = sealCompaction(backupKey, { stream, seq: 3, head: hashBlob(entries[2]!) }, encodeNodeState(secrets, { keys, apiKeys: [] }, '2026-12-01T00:00:00.000Z', true));
  await client.uploadCompaction(stream, 3, hashBlob(v1), v1);
  const checked = await checkBackupStream(clientSource(client), backupKey, stream);
  assert.deepEqual(checked.compactions.map((x) => [x.seq, x.keys, x.exact, x.createdAt]), [[3, 2, true, '2026-12-01T00:00:00.000Z']]);
  assert.equal(checked.keys, 2);
  const read = await readBackupStream(clientSource(client), backupKey, stream);
  assert.deepEqual([read.compactionSeq, read.entries, [...read.state.keys.keys()].sort()], [3, 0, ['key_real_0', 'key_real_1']]);
});
