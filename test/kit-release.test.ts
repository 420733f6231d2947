/**
 * The recovery kit's release files (docs/format.md, "Recovery kit release"): the hash file and the
 * signature file as parse/encode pairs with round trips and negative vectors named for their fault,
 * the public key's text form, and verifyKitRelease's refusals in order.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes } from '../src/crypto/random.js';
import { signingKeyPairFromSeed } from '../src/crypto/sign.js';
import { utf8 } from '../src/util/bytes.js';
import { encodeHashFile, encodeKitPublicKey, encodeKitSignature, parseHashFile, parseKitPublicKey, parseKitSignature, signHashFile, verifyKitRelease } from '../src/kit/release.js';
import { errorCode } from './helpers/errors.js';

const seed = randomBytes(32);
const kit = utf8.encode('#!/usr/bin/env node\nthe kit\n');
const hashFile = encodeHashFile([{ name: 'lifeboat-kit', sha256: sha256(kit) }, { name: 'lifeboat-kit.mjs', sha256: sha256(utf8.encode('mjs')) }]);
const signature = encodeKitSignature(signHashFile(hashFile, seed));
const publicKey = signingKeyPairFromSeed(seed).publicKey;

it('hash file, signature and public key round-trip; the hash file is sha256sum\'s format', () => {
  assert.match(utf8.decode(hashFile), /^[0-9a-f]{64} {2}lifeboat-kit\n[0-9a-f]{64} {2}lifeboat-kit\.mjs\n$/);
  assert.deepEqual(encodeHashFile(parseHashFile(hashFile)), hashFile);
  assert.deepEqual(encodeKitSignature(parseKitSignature(signature)), signature);
  assert.match(utf8.decode(signature), /^lifeboat-kit-signature\/v1\nkey: lbkit1\.[A-Za-z0-9_-]{43}\nsignature: [A-Za-z0-9+/]{86}==\n$/);
  assert.deepEqual(parseKitPublicKey(encodeKitPublicKey(publicKey)), publicKey);
  assert.equal(verifyKitRelease({ file: kit, name: 'lifeboat-kit', hashFile, signatureFile: signature, publicKey }).sha256, Buffer.from(sha256(kit)).toString('hex'));
});

it('negative vectors: each malformed hash file, signature file and key is refused by name', () => {
  const hex = 'ab'.repeat(32);
  const badHashFiles: Record<string, string> = {
    fail_no_final_newline: `${hex}  lifeboat-kit`,
    fail_one_space: `${hex} lifeboat-kit\n`,
    fail_uppercase_hex: `${hex.toUpperCase()}  lifeboat-kit\n`,
    fail_short_hash: `${hex.slice(2)}  lifeboat-kit\n`,
    fail_path_in_name: `${hex}  ../lifeboat-kit\n`,
    fail_name_twice: `${hex}  lifeboat-kit\n${hex}  lifeboat-kit\n`,
    fail_empty: '',
    fail_crlf: `${hex}  lifeboat-kit\r\n`,
  };
  for (const [name, text] of Object.entries(badHashFiles)) assert.equal(errorCode(() => parseHashFile(utf8.encode(text))), 'malformed', name);
  assert.equal(errorCode(() => parseHashFile(new Uint8Array([0xff, 0x0a]))), 'malformed', 'fail_not_utf8');
  const lines = utf8.decode(signature).split('\n');
  const badSignatures: Record<string, [string, string]> = {
    fail_other_header: [['lifeboat-signature/v1', ...lines.slice(1)].join('\n'), 'malformed'],
    fail_version_2: [['lifeboat-kit-signature/v2', ...lines.slice(1)].join('\n'), 'unsupported_version'],
    fail_no_final_newline: [lines.slice(0, 3).join('\n'), 'malformed'],
    fail_extra_line: [`${lines.slice(0, 3).join('\n')}\ncomment: x\n`, 'malformed'],
    fail_key_not_lbkit1: [[lines[0], lines[1]!.replace('lbkit1.', 'lb1.'), lines[2], ''].join('\n'), 'malformed'],
    fail_short_signature: [[lines[0], lines[1], lines[2]!.slice(0, -4) + '==', ''].join('\n'), 'malformed'],
    fail_swapped_lines: [[lines[0], lines[2], lines[1], ''].join('\n'), 'malformed'],
  };
  for (const [name, [text, code]] of Object.entries(badSignatures)) assert.equal(errorCode(() => parseKitSignature(utf8.encode(text))), code, name);
  for (const bad of ['lbkit1.', 'lbkit1.AAAA', `lb1.${encodeKitPublicKey(publicKey).slice(7)}`, encodeKitPublicKey(publicKey).slice(0, -2)]) assert.equal(errorCode(() => parseKitPublicKey(bad)), 'invalid_kit_key', bad);
});

it('verifyKitRelease refuses another key, an altered hash file or signature, an unlisted name and an altered kit, each a refusal for safety', () => {
  const other = signingKeyPairFromSeed(randomBytes(32)).publicKey;
  const flip = (b: Uint8Array, i: number): Uint8Array => b.map((x, j) => (j === i ? x ^ 1 : x));
  const base = { file: kit, name: 'lifeboat-kit', hashFile, signatureFile: signature, publicKey };
  const cases: [string, Partial<typeof base>, string][] = [
    ['another key', { publicKey: other }, 'kit_key_mismatch'],
    ['altered hash file', { hashFile: flip(hashFile, 3) }, 'kit_signature_invalid'],
    ['signature of another hash file', { signatureFile: encodeKitSignature(signHashFile(flip(hashFile, 3), seed)) }, 'kit_signature_invalid'],
    ['unlisted name', { name: 'lifeboat-kit-old' }, 'kit_not_listed'],
    ['altered kit', { file: flip(kit, 20) }, 'kit_hash_mismatch'],
  ];
  for (const [what, change, code] of cases) {
    assert.throws(() => verifyKitRelease({ ...base, ...change }), (err: Error & { code?: string; safety?: boolean }) => err.code === code && err.safety === true, what);
  }
});
