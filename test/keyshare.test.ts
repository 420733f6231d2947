/**
 * Key-share backups, the pure layer: the mnemonic's checks, the record's bytes (round trips and
 * negative vectors), sealing with the output checks, opening with every refusal of issue 11 point 8
 * that needs no log, and the latest-record-per-key selection.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateMnemonic } from '@scure/bip39';
import { wordlist } from '@scure/bip39/wordlists/english.js';
import { type FrostCurve, identifierOf } from '../src/keynode/frost/index.js';
import { ageStanza, checkRecipient, deriveAgeIdentity, deriveAgeRecipient, mnemonicCheck, PASSPHRASE_LOG_N } from '../src/keyshare/age.js';
import { byteEntropy, checkMnemonic, generateOperatorMnemonic, MIN_BYTE_ENTROPY, mnemonicFromEntropy } from '../src/keyshare/mnemonic.js';
import { encodeRecord, KEYSHARE_RECORD_TYPE, MAX_RECORD_BYTES, parseRecord, type RecordFields, signRecord, verifyRecord } from '../src/keyshare/record.js';
import { checkSealedOutput, openBackup, sealBackup } from '../src/keyshare/seal.js';
import { latestPerKey } from '../src/keyshare/select.js';
import { utf8 } from '../src/util/bytes.js';
import { createEntry, MAX_ENTRY_BYTES } from '../src/log/entry.js';
import { errorCode } from './helpers/errors.js';
import { dealtKey, FIXED_MNEMONIC, nodeIdentity, words } from './helpers/keyshare.js';

const rejectsWith = async (p: Promise<unknown>, code: string): Promise<void> => {
  await assert.rejects(p, (e: { code?: string }) => {
    assert.equal(e.code, code);
    return true;
  });
};

test('mnemonic: 24 words, each in the wordlist (named by position), checksum, byte entropy, each refused by name', () => {
  const m = checkMnemonic(`  ${FIXED_MNEMONIC.toUpperCase().replace(/ /g, '  \n')} `);
  assert.equal(m.phrase, FIXED_MNEMONIC);
  assert.deepEqual([...m.entropy], Array.from({ length: 32 }, (_, i) => i + 1));
  const ws = FIXED_MNEMONIC.split(' ');
  assert.equal(errorCode(() => checkMnemonic(ws.slice(0, 23).join(' '))), 'mnemonic_length');
  assert.equal(errorCode(() => checkMnemonic(generateMnemonic(wordlist, 128))), 'mnemonic_length');
  assert.equal(errorCode(() => checkMnemonic('')), 'mnemonic_length');
  const typo = [...ws];
  typo[6] = `${typo[6]!.slice(0, -1)}q`;
  assert.throws(() => checkMnemonic(typo.join(' ')), (e: Error & { code: string; hint: string }) => {
    assert.equal(e.code, 'mnemonic_word_unknown');
    assert.match(e.message, /word 7 /);
    assert.ok(!e.message.includes(typo[6]!) && !e.hint.includes(typo[6]!), 'the typed word is not quoted');
    return true;
  });
  const swapped = [...ws];
  swapped[3] = ws[3] === 'zoo' ? 'abandon' : 'zoo';
  assert.equal(errorCode(() => checkMnemonic(swapped.join(' '))), 'mnemonic_checksum');
  // valid BIP-39 mnemonics made by hand, not by a random generator
  const lowEntropy = mnemonicFromEntropy(new Uint8Array(32)); // abandon x23 art
  assert.equal(errorCode(() => checkMnemonic(lowEntropy)), 'mnemonic_low_entropy');
  assert.ok(byteEntropy(utf8.encode(lowEntropy)) < MIN_BYTE_ENTROPY);
  assert.equal(errorCode(() => checkMnemonic(mnemonicFromEntropy(new Uint8Array(32).fill(0xff)))), 'mnemonic_low_entropy');
});

test('mnemonic: 20,000 random mnemonics all pass the entropy threshold; generated ones are 24 checked words', () => {
  for (let i = 0; i < 20_000; i++) assert.ok(byteEntropy(utf8.encode(generateMnemonic(wordlist, 256))) >= MIN_BYTE_ENTROPY);
  const g = generateOperatorMnemonic();
  assert.equal(g.phrase.split(' ').length, 24);
  assert.equal(checkMnemonic(g.phrase).phrase, g.phrase);
  assert.notEqual(generateOperatorMnemonic().phrase, g.phrase);
});

test('age: the identity and recipient derived from the words are fixed (known answer); plain X25519 refused', async () => {
  const m = words();
  assert.equal(deriveAgeIdentity(m), 'AGE-SECRET-KEY-PQ-15SMLD9WM509DTW25W78DG7FEA59FDGEHZCTD39SGZGLP45U4K38QPEPJKF');
  const r = await deriveAgeRecipient(m);
  assert.match(r, /^age1pq1[02-9ac-hj-np-z]+$/);
  assert.equal(checkRecipient(r), r);
  assert.equal(errorCode(() => checkRecipient('age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p')), 'keyshare_recipient_refused');
  assert.equal(errorCode(() => checkRecipient(`${r.slice(0, -1)}${r.endsWith('q') ? 'p' : 'q'}`)), 'invalid_input');
  assert.equal(errorCode(() => checkRecipient('ssh-ed25519 AAAA')), 'invalid_input');
  assert.notEqual(await deriveAgeRecipient(generateOperatorMnemonic()), r);
});

async function fields(curve: FrostCurve = 'ed25519'): Promise<{ f: RecordFields; node: ReturnType<typeof nodeIdentity> }> {
  const node = nodeIdentity();
  const k = dealtKey(curve, 'key_01')[1]!;
  const f: RecordFields = {
    mode: 'passphrase',
    curve,
    threshold: 2,
    maxSigners: 3,
    node,
    epoch: 7,
    identifier: k.identifier,
    keyId: k.keyId,
    groupKey: k.public.commitments[0]!,
    verifyingShare: k.public.verifyingShares[k.identifier]!,
    mnemonicCheck: new Uint8Array(16).fill(9),
    compression: 'brotli',
    ciphertext: utf8.encode('age-encryption.org/v1\n-> scrypt AAAAAAAAAAAAAAAAAAAAAA 10\nx\n--- y\nz'),
  };
  return { f, node };
}

test('record: encode/parse round trip on every curve, signature over every byte, fits a log entry', async () => {
  for (const curve of ['ed25519', 'secp256k1', 'bip340'] as FrostCurve[]) {
    const { f, node } = await fields(curve);
    const bytes = signRecord(f, node);
    const r = verifyRecord(bytes);
    assert.deepEqual({ ...r, bytes: undefined, signature: undefined }, { ...f, node: { signingPublicKey: f.node.signingPublicKey, boxPublicKey: f.node.boxPublicKey }, bytes: undefined, signature: undefined });
    assert.deepEqual(encodeRecord(r), bytes);
    assert.equal(bytes.length, 114 + 6 + 2 * (curve === 'ed25519' ? 32 : 33) + 16 + 5 + f.ciphertext.length + 64);
    // every byte is signed: flipping any one fails parse or signature
    for (let i = 0; i < bytes.length; i += 7) {
      const t = bytes.slice();
      t[i]! ^= 0x01;
      assert.notEqual(errorCode(() => verifyRecord(t)), 'no_error', `byte ${i}`);
    }
    const entry = createEntry({ recordType: KEYSHARE_RECORD_TYPE, payload: bytes }, node);
    assert.ok(entry.length <= MAX_ENTRY_BYTES);
  }
});

test('record: negative vectors, each refused by name', async () => {
  const { f, node } = await fields();
  const good = signRecord(f, node);
  const at = (i: number, v: number): Uint8Array => {
    const t = good.slice();
    t[i] = v;
    return t;
  };
  const idOff = 114 + f.keyId.length;
  const cases: [string, Uint8Array, string][] = [
    ['bad magic', at(0, 0x58), 'bad_magic'],
    ['magic prefix only', good.slice(0, 3), 'truncated'],
    ['version 2', at(4, 2), 'unsupported_version'],
    ['header cut', good.slice(0, 100), 'truncated'],
    ['mode 3', at(5, 3), 'malformed'],
    ['curve 9', at(6, 9), 'malformed'],
    ['threshold 1', at(7, 1), 'malformed'],
    ['threshold over max', at(7, 4), 'malformed'],
    ['max 101', at(8, 101), 'malformed'],
    ['epoch 0', (() => { const t = good.slice(); t.fill(0, 73, 81); return t; })(), 'malformed'],
    ['epoch 2^53', (() => { const t = good.slice(); t[74] = 0x20; return t; })(), 'malformed'],
    ['identifier 0', (() => { const t = good.slice(); t.fill(0, 81, 113); return t; })(), 'malformed'],
    ['key id with a space', at(114, 0x20), 'malformed'],
    ['key id length 0', at(113, 0), 'malformed'],
    ['group key not a point', (() => { const t = good.slice(); t.fill(0xff, idOff, idOff + 32); return t; })(), 'malformed'],
    ['compression 7', at(idOff + 64 + 16, 7), 'malformed'],
    ['ciphertext cut', good.slice(0, -65), 'truncated'],
    ['byte after the signature', new Uint8Array([...good, 0]), 'malformed'],
    ['over the entry limit', new Uint8Array(MAX_RECORD_BYTES + 1), 'malformed'],
  ];
  for (const [name, bytes, code] of cases) assert.equal(errorCode(() => parseRecord(bytes)), code, name);
  const sig = good.slice();
  sig[sig.length - 1]! ^= 1;
  assert.equal(errorCode(() => parseRecord(sig)), 'no_error');
  assert.equal(errorCode(() => verifyRecord(sig)), 'keyshare_signature_invalid');
  assert.equal(errorCode(() => signRecord(f, nodeIdentity())), 'invalid_input');
  assert.equal(errorCode(() => signRecord({ ...f, ciphertext: new Uint8Array(0) }, node)), 'invalid_input');
  assert.equal(errorCode(() => signRecord({ ...f, epoch: 0 }, node)), 'invalid_input');
  assert.equal(errorCode(() => signRecord({ ...f, ciphertext: new Uint8Array(MAX_RECORD_BYTES) }, node)), 'invalid_input');
});

for (const mode of ['passphrase', 'recipient'] as const) {
  test(`seal and open (${mode} mode) on every curve: the share, tenant and node identity come back, checked`, async () => {
    const m = words();
    const node = nodeIdentity();
    const how = mode === 'passphrase' ? ({ mode, mnemonic: m } as const) : ({ mode, recipient: await deriveAgeRecipient(m), mnemonicCheck: mnemonicCheck(m, node) } as const);
    for (const curve of ['ed25519', 'secp256k1', 'bip340'] as FrostCurve[]) {
      const key = dealtKey(curve, `key-${curve}`, { min: 3, max: 5 })[2]!;
      const rec = await sealBackup({ key, tenant: 'acme', epoch: 1, node }, how);
      const stanza = ageStanza(parseRecord(rec).ciphertext);
      assert.deepEqual(stanza, mode === 'passphrase' ? { kind: 'scrypt', logN: PASSPHRASE_LOG_N } : { kind: 'mlkem768x25519' });
      const o = await openBackup(rec, node, checkMnemonic(FIXED_MNEMONIC));
      assert.deepEqual(o.key.share, key.share);
      assert.equal(o.key.identifier, identifierOf(curve, 3));
      assert.equal(o.tenant, 'acme');
      assert.deepEqual(o.identitySeeds, new Uint8Array([...node.signing.secretKey, ...node.box.secretKey]));
      assert.equal(o.record.threshold, 3);
      assert.equal(o.record.compression, 'brotli');
    }
  });
}

test('open: a wrong or mistyped mnemonic, another node\'s record, a tampered ciphertext, each refused by name', async () => {
  const m = words();
  const node = nodeIdentity();
  const key = dealtKey('ed25519', 'key_a')[0]!;
  const rec = await sealBackup({ key, tenant: 'default', epoch: 1, node }, { mode: 'passphrase', mnemonic: m });
  await rejectsWith(openBackup(rec, node, generateOperatorMnemonic()), 'mnemonic_wrong');
  const typo = FIXED_MNEMONIC.split(' ');
  typo[0] = 'abandonn';
  assert.equal(errorCode(() => checkMnemonic(typo.join(' '))), 'mnemonic_word_unknown');
  await rejectsWith(openBackup(rec, nodeIdentity(), m), 'keyshare_other_node');
  // tampered in the log without the node key: the signature breaks
  const r = parseRecord(rec);
  const flipped = r.ciphertext.slice();
  flipped[flipped.length - 5]! ^= 1;
  await rejectsWith(openBackup(encodeRecord({ ...r, ciphertext: flipped }), node, m), 'keyshare_signature_invalid');
  // tampered and re-signed by someone holding the node key: decryption fails, by name
  await rejectsWith(openBackup(signRecord({ ...r, ciphertext: flipped }, node), node, m), 'keyshare_decrypt_failed');
  // another key's ciphertext moved into this record
  const other = parseRecord(await sealBackup({ key: dealtKey('ed25519', 'key_b')[0]!, tenant: 'default', epoch: 1, node }, { mode: 'passphrase', mnemonic: m }));
  await rejectsWith(openBackup(signRecord({ ...r, ciphertext: other.ciphertext }, node), node, m), 'keyshare_decrypt_failed');
  // a passphrase-mode record holding a hybrid-recipient file
  const pq = parseRecord(await sealBackup({ key, tenant: 'default', epoch: 1, node }, { mode: 'recipient', recipient: await deriveAgeRecipient(m), mnemonicCheck: mnemonicCheck(m, node) }));
  await rejectsWith(openBackup(signRecord({ ...r, ciphertext: pq.ciphertext }, node), node, m), 'keyshare_recipient_refused');
});

test('open: a record whose verifying share or group key is not the package\'s is share_mismatch; sealing a share that does not match refuses', async () => {
  const m = words();
  const node = nodeIdentity();
  const shares = dealtKey('secp256k1', 'key_v');
  const rec = parseRecord(await sealBackup({ key: shares[0]!, tenant: 'default', epoch: 1, node }, { mode: 'passphrase', mnemonic: m }));
  const otherShare = shares[1]!.public.verifyingShares[shares[1]!.identifier]!;
  await rejectsWith(openBackup(signRecord({ ...rec, verifyingShare: otherShare }, node), node, m), 'share_mismatch');
  const otherKey = dealtKey('secp256k1', 'key_w')[0]!.public.commitments[0]!;
  await rejectsWith(openBackup(signRecord({ ...rec, groupKey: otherKey }, node), node, m), 'share_mismatch');
  await rejectsWith(openBackup(signRecord({ ...rec, threshold: 3 }, node), node, m), 'share_mismatch');
  // a share that is not its package's is never sealed
  await rejectsWith(sealBackup({ key: { ...shares[0]!, share: shares[1]!.share }, tenant: 'default', epoch: 1, node }, { mode: 'passphrase', mnemonic: m }), 'share_mismatch');
});

test('seal: the output checks fail closed (an encryption that copies, leaks the words, or does not decrypt back)', async () => {
  const m = words();
  const node = nodeIdentity();
  const key = dealtKey('ed25519', 'key_c')[0]!;
  const seal = (encrypt: (p: Uint8Array) => Promise<Uint8Array>) => sealBackup({ key, tenant: 'default', epoch: 1, node }, { mode: 'passphrase', mnemonic: m }, { encrypt });
  await rejectsWith(seal(async (p) => p.slice()), 'keyshare_output_check_failed');
  await rejectsWith(seal(async (p) => new Uint8Array([1, 2, ...p, 3])), 'keyshare_output_check_failed');
  await rejectsWith(seal(async () => utf8.encode(`age-encryption.org/v1\n${m.phrase}`)), 'keyshare_output_check_failed');
  const three = m.phrase.split(' ').slice(5, 8).join('');
  await rejectsWith(seal(async () => utf8.encode(`random ${three} bytes`)), 'keyshare_output_check_failed');
  await rejectsWith(seal(async () => new Uint8Array(200).fill(7)), 'keyshare_output_check_failed'); // does not decrypt back
  assert.equal(errorCode(() => checkSealedOutput(utf8.encode(`xx${m.phrase.split(' ').slice(0, 2).join('')}`), [], m.phrase)), 'no_error');
  assert.equal(errorCode(() => checkSealedOutput(key.share, [key.share])), 'keyshare_output_check_failed');
});

test('select: the highest epoch per key wins, lower epochs are superseded, disagreeing records at one epoch are a conflict', async () => {
  const m = words();
  const node = nodeIdentity();
  const how = { mode: 'passphrase', mnemonic: m } as const;
  const a1 = dealtKey('ed25519', 'key_a')[0]!;
  const a2 = dealtKey('ed25519', 'key_a')[0]!; // the key after a reshare: a new share
  const b = dealtKey('ed25519', 'key_b')[0]!;
  const rec = async (key: typeof a1, epoch: number) => parseRecord(await sealBackup({ key, tenant: 'default', epoch, node }, how));
  const found = [
    { record: await rec(a2, 2), index: 3 },
    { record: await rec(a1, 1), index: 10 }, // stale, published late
    { record: await rec(b, 1), index: 5 },
    { record: await rec(b, 1), index: 8 }, // the same share re-published: fine
  ];
  const s = latestPerKey(found);
  assert.equal(s.latest.get('key_a')!.index, 3);
  assert.equal(s.latest.get('key_a')!.record.epoch, 2);
  assert.equal(s.latest.get('key_b')!.index, 8);
  assert.deepEqual(s.superseded.map((f) => f.index), [10]);
  assert.deepEqual(s.conflicts, []);
  const opened = await openBackup(s.latest.get('key_a')!.record.bytes, node, m);
  assert.deepEqual(opened.key.share, a2.share);
  const c = latestPerKey([...found, { record: await rec(dealtKey('ed25519', 'key_a')[0]!, 2), index: 12 }]);
  assert.deepEqual(c.conflicts, [{ keyId: 'key_a', epoch: 2, indexes: [3, 12] }]);
  assert.ok(!c.latest.has('key_a'));
});
