/**
 * The passphrase-mode age file on Node's native scrypt (src/keyshare/age-scrypt.ts): it opens with
 * age-encryption's own scrypt identity (an independent implementation; the `age` CLI opens node
 * backups in test/keyshare-age-cli.test.ts), files age-encryption made open with ours, and the
 * identity keeps age's rules for the stanza.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Decrypter, Encrypter, Stanza } from 'age-encryption';
import { base64nopad } from '@scure/base';
import { decryptWithMnemonic, encryptToPassphrase, PASSPHRASE_LOG_N } from '../src/keyshare/age.js';
import { ScryptIdentity, ScryptKeys } from '../src/keyshare/age-scrypt.js';
import { checkMnemonic, generateOperatorMnemonic } from '../src/keyshare/mnemonic.js';
import { randomBytes } from '../src/crypto/random.js';
import { FIXED_MNEMONIC } from './helpers/keyshare.js';

const m = checkMnemonic(FIXED_MNEMONIC);
const plain = randomBytes(700);

test('native scrypt files open with age-encryption\'s scrypt identity, and its files open with ours', async () => {
  const ours = await encryptToPassphrase(m.phrase, plain);
  assert.match(Buffer.from(ours.subarray(0, 80)).toString('latin1'), new RegExp(`^age-encryption\\.org/v1\\n-> scrypt [A-Za-z0-9+/]{22} ${PASSPHRASE_LOG_N}\\n`));
  const d = new Decrypter();
  d.addPassphrase(m.phrase);
  assert.deepEqual(await d.decrypt(ours), plain);

  const e = new Encrypter();
  e.setPassphrase(m.phrase);
  e.setScryptWorkFactor(12);
  const theirs = await e.encrypt(plain);
  assert.deepEqual(await decryptWithMnemonic(m, theirs), plain);
  // each file its own salt: two encryptions of one input differ
  assert.notDeepEqual(await encryptToPassphrase(m.phrase, plain), ours);
});

test('a wrong passphrase or an altered file does not open (null); the key the encryption derived is reused by its check', async () => {
  const file = await encryptToPassphrase(m.phrase, plain);
  assert.equal(await decryptWithMnemonic(generateOperatorMnemonic(), file), null);
  const altered = file.slice();
  altered[altered.length - 1]! ^= 1;
  assert.equal(await decryptWithMnemonic(m, altered), null);

  const keys = new ScryptKeys(m.phrase);
  const salt = randomBytes(16);
  const a = await keys.derive(salt, 10);
  assert.equal(await keys.derive(salt, 10), a, 'same salt and work factor: the same key, not a second scrypt');
  assert.notDeepEqual(await keys.derive(salt, 11), a);
  keys.wipe();
  assert.ok(a.every((b) => b === 0), 'wipe() zeroes every derived key');
});

test('the identity keeps age\'s stanza rules: alone in the header, 16-byte salt, canonical work factor within the limit', async () => {
  const keys = new ScryptKeys(m.phrase);
  const id = new ScryptIdentity(keys, 16);
  const salt = base64nopad.encode(randomBytes(16));
  const body = randomBytes(32);
  const cases: [string, Stanza[]][] = [
    ['two stanzas', [new Stanza(['scrypt', salt, '10'], body), new Stanza(['X25519', 'x'], body)]],
    ['a short salt', [new Stanza(['scrypt', base64nopad.encode(randomBytes(15)), '10'], body)]],
    ['a non-canonical work factor', [new Stanza(['scrypt', salt, '010'], body)]],
    ['a work factor over the limit', [new Stanza(['scrypt', salt, '17'], body)]],
    ['a body of 31 bytes', [new Stanza(['scrypt', salt, '10'], body.subarray(0, 31))]],
    ['a missing argument', [new Stanza(['scrypt', salt], body)]],
  ];
  for (const [what, stanzas] of cases) await assert.rejects(id.unwrapFileKey(stanzas), Error, what);
  assert.equal(await id.unwrapFileKey([new Stanza(['scrypt', salt, '10'], body)]), null, 'a body that does not open is not this passphrase\'s');
  assert.equal(await id.unwrapFileKey([new Stanza(['X25519', 'x'], body)]), null, 'another stanza type is not ours');
  keys.wipe();
});
