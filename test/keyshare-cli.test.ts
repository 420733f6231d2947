/**
 * `lifeboat keyshare recover` and `keyshare identity`, run as processes: a log directory (tiles, bundles,
 * a checkpoint co-signed by a witness) holding a node's records among other submitters' entries, read
 * from the directory and over http; the recovered node's identity, keys and shares; refusals by name.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { encodePublicIdentity } from '../src/identity.js';
import { openKeyShare } from '../src/keynode/frost/index.js';
import { closeNode, openNode } from '../src/keynode/runtime.js';
import { deriveAgeRecipient, mnemonicCheck } from '../src/keyshare/age.js';
import { generateOperatorMnemonic } from '../src/keyshare/mnemonic.js';
import { KEYSHARE_RECORD_TYPE } from '../src/keyshare/record.js';
import { sealBackup } from '../src/keyshare/seal.js';
import { createEntry } from '../src/log/entry.js';
import { runCli } from './helpers/cli.js';
import { dealtKey, nodeIdentity } from './helpers/keyshare.js';
import { fixtureKeys, LogFixture, serveDir } from './helpers/log-fixture.js';
import { trackedTempDir } from './helpers/tmp.js';

const m = generateOperatorMnemonic();
const node = nodeIdentity();
const keys = { a: dealtKey('ed25519', 'key_a'), a2: dealtKey('ed25519', 'key_a'), b: dealtKey('secp256k1', 'key_b'), c: dealtKey('bip340', 'key_c') };

async function buildLog(dir: string): Promise<LogFixture> {
  const fk = fixtureKeys({ witnesses: 1, submitters: 2 });
  const log = new LogFixture(dir, fk);
  await log.append(300); // other submitters' entries, a full tile
  const rec = async (k: (typeof keys)['a'][number], epoch: number, how: Parameters<typeof sealBackup>[1]) =>
    createEntry({ recordType: KEYSHARE_RECORD_TYPE, payload: await sealBackup({ key: k, tenant: 'acme', epoch, node }, how) }, node);
  const pass = { mode: 'passphrase', mnemonic: m } as const;
  const rcpt = { mode: 'recipient', recipient: await deriveAgeRecipient(m), mnemonicCheck: mnemonicCheck(m, node) } as const;
  // key_a at epoch 2 is current; its epoch-1 record comes later in the log and must not win
  await log.append([await rec(keys.a2[0]!, 2, pass), await rec(keys.b[0]!, 1, rcpt)]);
  await log.append(20);
  await log.append([await rec(keys.a[0]!, 1, pass), await rec(keys.c[0]!, 1, pass)]);
  // another node's record
  const other = nodeIdentity();
  await log.append([createEntry({ recordType: KEYSHARE_RECORD_TYPE, payload: await sealBackup({ key: keys.a[1]!, tenant: 'acme', epoch: 1, node: other }, { mode: 'passphrase', mnemonic: m }) }, other)]);
  return log;
}

test('keyshare recover rebuilds the node from a log directory and over http: its identity, the latest share of every key, no nonce', async () => {
  const root = trackedTempDir('lifeboat-keyshare-cli-');
  const log = await buildLog(join(root, 'log'));
  const common = ['--log-key', log.keys.logKey, '--witness', log.keys.witnesses[0]!.vkey, '--node-identity', encodePublicIdentity(node), '--json'];
  const env = { LIFEBOAT_MNEMONIC: m.phrase };

  const r = await runCli(['keyshare', 'recover', '--from-dir', log.dir, '--data-dir', join(root, 'n1'), ...common], { env });
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { ok: boolean; keys: { key_id: string; epoch: number; index: number; tenant: string }[]; superseded: number; checkpoint_size: number; nonce_epoch: number };
  assert.equal(doc.ok, true);
  assert.deepEqual(doc.keys.map((k) => [k.key_id, k.epoch, k.tenant]), [['key_a', 2, 'acme'], ['key_b', 1, 'acme'], ['key_c', 1, 'acme']]);
  assert.equal(doc.superseded, 1);
  assert.equal(doc.checkpoint_size, 325);
  assert.ok(!r.stdout.includes(m.phrase) && !r.stderr.includes(m.phrase), 'the words are never printed');

  const n = await openNode(join(root, 'n1'));
  try {
    assert.equal(encodePublicIdentity(n.secrets.identity), encodePublicIdentity(node));
    assert.deepEqual(n.secrets.identity.signing.secretKey, node.signing.secretKey);
    assert.equal(await n.store.countNonces(), 0);
    const rows = await n.store.listKeys({ limit: 10 });
    assert.deepEqual(rows.map((k) => [k.keyId, k.status, k.tenant]), [['key_a', 'active', 'acme'], ['key_b', 'active', 'acme'], ['key_c', 'active', 'acme']]);
    const a = openKeyShare(n.secrets.storageKey, rows[0]!.encryptedShare, { keyId: 'key_a' });
    assert.deepEqual(a.share, keys.a2[0]!.share, 'the epoch-2 share, not the stale one');
    assert.notDeepEqual(a.share, keys.a[0]!.share);
  } finally {
    await closeNode(n);
  }
  assert.deepEqual(readdirSync(root).filter((f) => f.includes('restoring')), []);

  const http = await serveDir(log.dir);
  try {
    const h = await runCli(['keyshare', 'recover', '--log', http.url, '--data-dir', join(root, 'n2'), ...common], { env });
    assert.equal(h.code, 0, h.stderr);
    assert.equal((JSON.parse(h.stdout) as { keys: unknown[] }).keys.length, 3);
  } finally {
    await http.close();
  }
});

test('keyshare recover refuses by name and writes nothing: wrong words, mistyped words, no record of the node, missing witness', async () => {
  const root = trackedTempDir('lifeboat-keyshare-cli-');
  const log = await buildLog(join(root, 'log'));
  const base = ['keyshare', 'recover', '--from-dir', log.dir, '--log-key', log.keys.logKey, '--witness', log.keys.witnesses[0]!.vkey, '--data-dir', join(root, 'n')];
  const run = (extra: string[], words: string) => runCli([...base, ...extra], { env: { LIFEBOAT_MNEMONIC: words } });

  const wrong = await run(['--node-identity', encodePublicIdentity(node)], generateOperatorMnemonic().phrase);
  assert.equal(wrong.code, 3, wrong.stderr);
  assert.match(wrong.stderr, /\(mnemonic_wrong\)/);
  const ws = m.phrase.split(' ');
  ws[4] = 'notaword';
  const typo = await run(['--node-identity', encodePublicIdentity(node)], ws.join(' '));
  assert.equal(typo.code, 1);
  assert.match(typo.stderr, /word 5 .*\(mnemonic_word_unknown\)/);
  assert.ok(!typo.stderr.includes('notaword'));
  const none = await run(['--node-identity', encodePublicIdentity(nodeIdentity())], m.phrase);
  assert.match(none.stderr, /\(keyshare_none_found\)/);
  const quorum = await runCli(['keyshare', 'recover', '--from-dir', log.dir, '--log-key', log.keys.logKey, '--witness', fixtureKeys({ witnesses: 1 }).witnesses[0]!.vkey, '--data-dir', join(root, 'n'), '--node-identity', encodePublicIdentity(node)], { env: { LIFEBOAT_MNEMONIC: m.phrase } });
  assert.notEqual(quorum.code, 0);
  assert.match(quorum.stderr, /witness_quorum_not_met/);
  assert.ok(!existsSync(join(root, 'n')));
  assert.deepEqual(readdirSync(root).sort(), ['log']);
});

test('keyshare identity derives the recipient from the words (env or fd), never writes the identity to a pipe, and refuses a short mnemonic', async () => {
  const r = await runCli(['keyshare', 'identity', '--recipient-only', '--json'], { env: { LIFEBOAT_MNEMONIC: m.phrase } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { recipient: string }).recipient, await deriveAgeRecipient(m));
  const piped = await runCli(['keyshare', 'identity', '--mnemonic-fd', '0'], { input: m.phrase });
  assert.equal(piped.code, 1);
  assert.match(piped.stderr, /secret_needs_terminal/, 'the identity never goes to a pipe');
  const short = await runCli(['keyshare', 'identity', '--recipient-only'], { input: `${m.phrase.split(' ').slice(1).join(' ')}\n` });
  assert.match(short.stderr, /\(mnemonic_length\)/);
});
