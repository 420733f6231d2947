import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import fc from 'fast-check';
import { randomBytes } from '../src/crypto/random.js';
import { signWithContext, verifyWithContext } from '../src/crypto/sign.js';
import {
  backupAuthKey,
  hashBlob,
  openCompaction,
  openEntry,
  parseCompactionHeader,
  parseEntryHeader,
  parseWrappedKeyHeader,
  sealCompaction,
  sealEntry,
  SESSION_CONTEXT,
  sessionProofMessage,
  unwrapBackupKey,
  wrapBackupKey,
  ZERO_HASH,
} from '../src/backup/format.js';
import { applyChange, decodeChange, decodeNodeState, emptyState, encodeChange, encodeNodeState, type NodeChange } from '../src/backup/changes.js';
import { utf8 } from '../src/util/bytes.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { openEnvelope, parseEnvelope } from '../src/crypto/envelope.js';
import type { KeyRecord } from '../src/keynode/store/types.js';
import type { EntryRecord } from '../src/backup/store/types.js';

const key = randomBytes(32);

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code ?? 'no_code';
  }
  return 'no_error';
}

test('entry: seal/open round trip, and the header is readable without the key', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2048 }), fc.integer({ min: 1, max: 2 ** 40 }), (plaintext, seq) => {
      const prev = randomBytes(32);
      const e = sealEntry(key, { stream: 'node-a', seq, prev }, plaintext);
      assert.deepEqual(parseEntryHeader(e), { stream: 'node-a', seq, link: prev });
      const o = openEntry(key, e, { stream: 'node-a', seq });
      assert.deepEqual(o.plaintext, plaintext);
      assert.deepEqual(o.prev, prev);
    }),
    { numRuns: 50 },
  );
});

test('entry: a replay into another seq or stream, a tampered byte, a wrong key all fail by name', () => {
  const e = sealEntry(key, { stream: 'node-a', seq: 5, prev: ZERO_HASH }, utf8.encode('change'));
  assert.equal(code(() => openEntry(key, e, { stream: 'node-a', seq: 6 })), 'entry_misplaced');
  assert.equal(code(() => openEntry(key, e, { stream: 'node-b', seq: 5 })), 'entry_misplaced');
  assert.equal(code(() => openEntry(randomBytes(32), e, { stream: 'node-a', seq: 5 })), 'decryption_failed');
  for (const i of [0, 4, 8, 20, e.length - 20, e.length - 1]) {
    const t = e.slice();
    t[i]! ^= 1;
    assert.notEqual(code(() => openEntry(key, t, { stream: 'node-a', seq: 5 })), 'no_error', `byte ${i}`);
  }
  // The header's seq rewritten to match the expected one: the AD and the derived key both break.
  const forged = e.slice();
  forged[7 + 2 + 6 + 7] = 6;
  assert.equal(code(() => openEntry(key, forged, { stream: 'node-a', seq: 6 })), 'decryption_failed');
  assert.equal(code(() => openEntry(key, e.subarray(0, 30), { stream: 'node-a', seq: 5 })), 'truncated');
  const v2 = e.slice();
  v2[4] = 2;
  assert.equal(code(() => parseEntryHeader(v2)), 'unsupported_version');
  assert.equal(code(() => parseEntryHeader(utf8.encode('LBBCxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'))), 'bad_magic');
  assert.equal(code(() => sealEntry(key, { stream: 'bad stream', seq: 1, prev: ZERO_HASH }, new Uint8Array())), 'invalid_input');
  assert.equal(code(() => sealEntry(key, { stream: 'a', seq: 0, prev: ZERO_HASH }, new Uint8Array())), 'invalid_input');
});

test('compaction: round trip; an entry is not a compaction and the stream is checked', () => {
  const head = hashBlob(utf8.encode('entry 9'));
  const c = sealCompaction(key, { stream: 's1', seq: 9, head }, utf8.encode('state'));
  assert.deepEqual(parseCompactionHeader(c), { stream: 's1', seq: 9, link: head });
  const o = openCompaction(key, c, { stream: 's1' });
  assert.equal(o.seq, 9);
  assert.equal(utf8.decode(o.plaintext), 'state');
  assert.equal(code(() => openCompaction(key, c, { stream: 's2' })), 'entry_misplaced');
  const e = sealEntry(key, { stream: 's1', seq: 9, prev: head }, utf8.encode('x'));
  assert.equal(code(() => openCompaction(key, e, { stream: 's1' })), 'bad_magic');
});

test('wrapped key: only the export key of this account opens it, and a foreign key inside is refused', () => {
  const exportKey = randomBytes(64);
  const w = wrapBackupKey(exportKey, 'acme', key);
  const h = parseWrappedKeyHeader(w);
  assert.equal(h.account, 'acme');
  assert.deepEqual(h.authPublicKey, backupAuthKey(key).publicKey);
  assert.deepEqual(unwrapBackupKey(exportKey, 'acme', w), key);
  assert.equal(code(() => unwrapBackupKey(randomBytes(64), 'acme', w)), 'decryption_failed');
  assert.equal(code(() => unwrapBackupKey(exportKey, 'other', w)), 'malformed');
  // A header naming another auth key (a service swapping keys between accounts) is refused.
  const other = wrapBackupKey(exportKey, 'acme', randomBytes(32));
  const spliced = new Uint8Array([...w.subarray(0, 7), ...other.subarray(7, 7 + 2 + 4 + 32), ...w.subarray(7 + 2 + 4 + 32)]);
  assert.equal(code(() => unwrapBackupKey(exportKey, 'acme', spliced)), 'decryption_failed');
});

test('auth key: deterministic from the backup key, signs session proofs the public half verifies', () => {
  const a = backupAuthKey(key);
  assert.deepEqual(backupAuthKey(key).publicKey, a.publicKey);
  assert.notDeepEqual(backupAuthKey(randomBytes(32)).publicKey, a.publicKey);
  const msg = sessionProofMessage('acme', randomBytes(32));
  assert.ok(verifyWithContext(SESSION_CONTEXT, msg, signWithContext(SESSION_CONTEXT, msg, a.secretKey), a.publicKey));
});

const rec: KeyRecord = {
  keyId: 'key_1',
  curve: 'ed25519',
  threshold: 2,
  maxSigners: 3,
  identifier: '01',
  groupPublicKey: randomBytes(32),
  publicPackage: randomBytes(100),
  encryptedShare: randomBytes(80),
  status: 'pending_backup',
  origin: 'dkg',
  createdAt: 1,
  tenant: 'default',
};

test('changes: every op round-trips; replay is idempotent; unknown ops are refused', () => {
  const changes: NodeChange[] = [
    { op: 'secrets', secrets: { identity: randomBytes(64), storageKey: randomBytes(32), exportKey: randomBytes(32), wrappingKey: randomBytes(32) } },
    { op: 'key_put', key: rec },
    { op: 'key_status', keyId: 'key_1', status: 'active' },
    { op: 'api_key_put', apiKey: { id: 'a1', secretHash: randomBytes(32), role: 'client', label: 'x', createdAt: 2, revokedAt: null, tenant: 'default' } },
    { op: 'api_key_revoke', id: 'a1', at: 3 },
    { op: 'key_put', key: { ...rec, keyId: 'key_2' } },
    { op: 'key_delete', keyId: 'key_2' },
  ];
  const once = emptyState();
  const twice = emptyState();
  for (const c of changes) {
    const d = decodeChange(encodeChange(c));
    assert.deepEqual(d, c);
    applyChange(once, d);
  }
  for (const c of [...changes, ...changes]) applyChange(twice, c);
  assert.deepEqual(twice, once);
  assert.equal(once.keys.get('key_1')?.status, 'active');
  assert.equal(once.keys.has('key_2'), false);
  assert.equal(once.apiKeys.get('a1')?.revokedAt, 3);
  assert.equal(code(() => decodeChange(utf8.encode('{"op":"drop_table"}'))), 'malformed');
  assert.equal(code(() => decodeChange(utf8.encode('not json'))), 'malformed');
  // The node state a compaction carries round-trips too.
  const st = decodeNodeState(encodeNodeState(once.secrets!, { keys: [...once.keys.values()], apiKeys: [...once.apiKeys.values()] }, 'now'));
  assert.deepEqual(st.keys, once.keys);
  assert.deepEqual(st.secrets, once.secrets);
});

test('entry frames (the binary append body): round trip, and every malformed frame is refused', async () => {
  const { encodeEntryFrames, parseEntryFrames } = await import('../src/backup/api.js');
  const entries = [randomBytes(10), randomBytes(1), randomBytes(300)];
  assert.deepEqual(parseEntryFrames(encodeEntryFrames(entries)), entries);
  const good = encodeEntryFrames(entries);
  assert.equal(code(() => parseEntryFrames(new Uint8Array(0))), 'invalid_input');
  assert.equal(code(() => parseEntryFrames(good.subarray(0, good.length - 1))), 'invalid_input');
  assert.equal(code(() => parseEntryFrames(good.subarray(0, 2))), 'invalid_input');
  assert.equal(code(() => parseEntryFrames(new Uint8Array([0, 0, 0, 0]))), 'invalid_input');
  assert.equal(code(() => parseEntryFrames(new Uint8Array([0xff, 0xff, 0xff, 0xff, 1]))), 'invalid_input');
});

test('entry list frames (the binary GET entries answer): round trip, and the negative vectors of docs/format.md', async () => {
  const { encodeEntryListFrames, parseEntryListFrames, MAX_ENTRY_BYTES } = await import('../src/backup/api.js');
  const listed = [
    { seq: 4, bytes: randomBytes(10) },
    { seq: 5, bytes: randomBytes(1) },
    { seq: 7, bytes: randomBytes(300) },
  ];
  const good = encodeEntryListFrames(9, listed);
  assert.deepEqual(parseEntryListFrames(good, { after: 3, limit: 10 }), { headSeq: 9, entries: listed });
  assert.deepEqual(parseEntryListFrames(encodeEntryListFrames(9, []), { after: 9, limit: 10 }), { headSeq: 9, entries: [] });
  const frame = (seq: number | bigint, len: number, entry: Uint8Array = new Uint8Array(len)) => {
    const b = Buffer.alloc(12);
    b.writeBigUInt64BE(BigInt(seq));
    b.writeUInt32BE(len, 8);
    return Buffer.concat([b, entry]);
  };
  const head = (n: number | bigint) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(n));
    return b;
  };
  const body = (...parts: Buffer[]) => new Uint8Array(Buffer.concat(parts));
  const q = { after: 3, limit: 10 };
  const cases: [string, Uint8Array, { after: number; limit: number }?][] = [
    ['a body of 7 bytes', good.subarray(0, 7)],
    ['a frame cut inside its seq', good.subarray(0, 8 + 5)],
    ['a frame cut inside its length', good.subarray(0, 8 + 10)],
    ['a frame cut inside its entry', good.subarray(0, good.length - 1)],
    ['a length of 0', body(head(9), frame(4, 0))],
    ['a length over 1 MiB', body(head(9), frame(4, MAX_ENTRY_BYTES + 1))],
    ['a seq not after `after`', good, { after: 4, limit: 10 }],
    ['a seq repeated', body(head(9), frame(4, 1), frame(4, 1))],
    ['a seq going back', body(head(9), frame(5, 1), frame(4, 1))],
    ['a seq past head_seq', body(head(4), frame(4, 1), frame(5, 1))],
    ['a seq over 2^53 - 1', body(head(9), frame(2n ** 53n, 1))],
    ['a head_seq over 2^53 - 1', body(head(2n ** 60n))],
    ['more frames than asked for', good, { after: 3, limit: 2 }],
  ];
  for (const [what, bytes, query] of cases) assert.equal(code(() => parseEntryListFrames(bytes, query ?? q)), 'invalid_input', what);
});

test('the key derivation labels are the ones docs/backup.md and docs/format.md give (lifeboat:backup/…)', () => {
  const backupKey = randomBytes(32);
  const lp = (b: Uint8Array) => {
    const out = new Uint8Array(4 + b.length);
    new DataView(out.buffer).setUint32(0, b.length);
    out.set(b, 4);
    return out;
  };
  const u64 = (n: number) => {
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, BigInt(n));
    return out;
  };
  const hk = (ikm: Uint8Array, salt: Uint8Array, info: string) => hkdf(sha256, ikm, salt, utf8.encode(info), 32);
  // entry and compaction keys: HKDF(backup key, lp(stream) ‖ lp(u64 seq), "lifeboat:backup/{entry,compaction}/v1")
  const salt = new Uint8Array([...lp(utf8.encode('s-1')), ...lp(u64(7))]);
  const entry = sealEntry(backupKey, { stream: 's-1', seq: 7, prev: ZERO_HASH }, utf8.encode('a change'));
  const env = parseEnvelope(entry, { magic: 'LBBE', versions: [1], what: 'entry' });
  assert.deepEqual(openEnvelope(env, hk(backupKey, salt, 'lifeboat:backup/entry/v1')), utf8.encode('a change'));
  assert.throws(() => openEnvelope(env, hk(backupKey, salt, 'lifeboat/backup/entry/v1')));
  const comp = sealCompaction(backupKey, { stream: 's-1', seq: 7, head: ZERO_HASH }, utf8.encode('a state'));
  const cenv = parseEnvelope(comp, { magic: 'LBBC', versions: [1], what: 'compaction' });
  assert.deepEqual(openEnvelope(cenv, hk(backupKey, salt, 'lifeboat:backup/compaction/v1')), utf8.encode('a state'));
  // auth key: Ed25519 seed HKDF(backup key, empty salt, "lifeboat:backup/auth/v1")
  const seed = hk(backupKey, new Uint8Array(0), 'lifeboat:backup/auth/v1');
  assert.deepEqual(backupAuthKey(backupKey).publicKey, ed25519.getPublicKey(seed));
  // session proof: Ed25519 over "lifeboat:lifeboat/backup/session/v1" ‖ 0x00 ‖ lp(account) ‖ challenge
  const challenge = randomBytes(32);
  const signed = new Uint8Array([...utf8.encode('lifeboat:lifeboat/backup/session/v1'), 0, ...lp(utf8.encode('acct')), ...challenge]);
  const sig = signWithContext(SESSION_CONTEXT, sessionProofMessage('acct', challenge), seed);
  assert.ok(ed25519.verify(sig, signed, ed25519.getPublicKey(seed)));
  // wrap key: HKDF(export key, salt = account, "lifeboat:backup/wrap/v1")
  const exportKey = randomBytes(64);
  const wrapped = wrapBackupKey(exportKey, 'acct', backupKey);
  const wenv = parseEnvelope(wrapped, { magic: 'LBBK', versions: [1], what: 'wrapped key' });
  assert.deepEqual(openEnvelope(wenv, hk(exportKey, utf8.encode('acct'), 'lifeboat:backup/wrap/v1')), backupKey);
});

test('the ingest path: entries reach the store as views of the request body, each hashed once, bound without a copy', async () => {
  const { encodeEntryFrames, parseEntryFrames } = await import('../src/backup/api.js');
  const { BackupStreams } = await import('../src/backup/streams.js');
  const { openBackupStore } = await import('../src/backup/store/index.js');
  const { checkEntries } = await import('../src/backup/store/records.js');
  const store = await openBackupStore('sqlite::memory:');
  try {
    await store.createAccount('acct', randomBytes(32), Date.now());
    // The real store, watched: what BackupStreams hands its appendEntries.
    const seen: EntryRecord[][] = [];
    const watched = new Proxy(store, {
      get(target, prop) {
        if (prop === 'appendEntries') return (...a: Parameters<typeof store.appendEntries>) => (seen.push(a[2]), target.appendEntries(...a));
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const key = randomBytes(32);
    const entries: Uint8Array[] = [];
    for (let seq = 1, prev: Uint8Array = ZERO_HASH; seq <= 3; seq++, prev = sha256(entries[entries.length - 1]!)) {
      entries.push(sealEntry(key, { stream: 's', seq, prev }, randomBytes(50 * seq)));
    }
    const body = Buffer.from(encodeEntryFrames(entries));
    const head = await new BackupStreams(watched, () => Date.now()).append('acct', 's', parseEntryFrames(body));
    assert.deepEqual(head.headHash, sha256(entries[2]!));
    const records = seen[0]!;
    let at = body.byteOffset;
    for (const [i, r] of records.entries()) {
      at += 4;
      assert.ok(Buffer.isBuffer(r.bytes) && r.bytes.buffer === body.buffer && r.bytes.byteOffset === at, `entries[${i}] is a view of the body`);
      at += r.bytes.length;
      assert.ok(Buffer.isBuffer(r.hash) && Buffer.isBuffer(r.prevHash), `entries[${i}]: hash and link are Buffers`);
      assert.deepEqual(new Uint8Array(r.hash), sha256(entries[i]!));
      assert.deepEqual(new Uint8Array(r.prevHash), i === 0 ? ZERO_HASH : sha256(entries[i - 1]!));
    }
    // The store's checks pass them on as they are: the driver binds the same objects.
    for (const [i, c] of checkEntries(records).entries()) {
      assert.ok(c.bytes === records[i]!.bytes && c.hash === records[i]!.hash && c.prevHash === records[i]!.prevHash, `entries[${i}] bound as handed over`);
    }
    assert.deepEqual((await store.listEntries('acct', 's', 0, 10)).map((e) => e.bytes), entries);
  } finally {
    await store.close();
  }
});
