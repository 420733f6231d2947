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
import { encodeChange } from '../src/backup/changes.js';
import { readBackupStream } from '../src/backup/restore.js';
import { clientSource } from '../src/backup/node-link.js';
import { CompactionUpload } from '../src/backup/client-compaction.js';
import { hashBlob } from '../src/backup/format.js';
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
  c.endSession();
});
