/** The add-checkpoint body pair (src/log/witness/request.ts): round trips and negative vectors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { base64 } from '@scure/base';
import { encodeAddCheckpoint, encodeTlogSize, MAX_ADD_CHECKPOINT_BYTES, parseAddCheckpoint, parseTlogSize } from '../src/log/witness/request.js';
import { witnessStateName } from '../src/log/witness/cosigner.js';
import { generateWitnessKey, parseWitnessVerifierKey } from '../src/log/cosignature.js';
import { errorCode } from './helpers/errors.js';

const NOTE = 'example.org/log\n5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n— example.org/log AAAAAAAA\n';
const hash = (b: number): Uint8Array => new Uint8Array(32).fill(b);

test('round trip: old size, proof hashes and the note come back as sent; the spec example parses', () => {
  for (const proof of [[], [hash(1)], Array.from({ length: 63 }, (_, i) => hash(i))]) {
    const body = encodeAddCheckpoint({ oldSize: 3, proof, checkpoint: NOTE });
    const r = parseAddCheckpoint(new TextEncoder().encode(body));
    assert.equal(r.oldSize, 3);
    assert.deepEqual(r.proof, proof);
    assert.equal(r.checkpoint, NOTE);
    assert.equal(encodeAddCheckpoint(r), body);
  }
  const spec = 'old 20852014\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\njrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n';
  const r = parseAddCheckpoint(spec);
  assert.equal(r.oldSize, 20852014);
  assert.equal(r.proof.length, 2);
  assert.ok(r.checkpoint.startsWith('example.com/behind-the-sofa\n20852163\n'));
  assert.equal(parseTlogSize(encodeTlogSize(42)), 42);
});

test('negative vectors are witness_request_malformed; bad values to encode are invalid_input', () => {
  const p = `${base64.encode(hash(7))}\n`;
  const bad: [string, string | Uint8Array][] = [
    ['no blank line', `old 1\n${p}${NOTE}`],
    ['no old line', `${p}\n${NOTE}`],
    ['old with a sign', `old +1\n\n${NOTE}`],
    ['old with a leading zero', `old 01\n\n${NOTE}`],
    ['old over 2^53', `old 9007199254740993\n\n${NOTE}`],
    ['two spaces', `old  1\n\n${NOTE}`],
    ['OLD in capitals', `OLD 1\n\n${NOTE}`],
    ['non-canonical base64', `old 1\n${base64.encode(hash(7)).replace('=', '')}\n\n${NOTE}`],
    ['a 33-byte hash', `old 1\n${base64.encode(new Uint8Array(33))}\n\n${NOTE}`],
    ['64 proof lines', `old 1\n${p.repeat(64)}\n${NOTE}`],
    ['nothing after the blank line', 'old 0\n\n'],
    ['bad utf-8', new Uint8Array([0x6f, 0x6c, 0x64, 0x20, 0x30, 0x0a, 0x0a, 0xc3, 0x28])],
    ['over the limit', `old 0\n\n${'x'.repeat(MAX_ADD_CHECKPOINT_BYTES)}`],
  ];
  for (const [what, body] of bad) assert.equal(errorCode(() => parseAddCheckpoint(body)), 'witness_request_malformed', what);
  assert.equal(errorCode(() => encodeAddCheckpoint({ oldSize: -1, proof: [], checkpoint: NOTE })), 'invalid_input');
  assert.equal(errorCode(() => encodeAddCheckpoint({ oldSize: 1, proof: [new Uint8Array(31)], checkpoint: NOTE })), 'invalid_input');
  assert.equal(errorCode(() => encodeAddCheckpoint({ oldSize: 1, proof: Array.from({ length: 64 }, () => hash(0)), checkpoint: NOTE })), 'invalid_input');
  for (const s of ['', '42', '042\n', '-1\n', '4 2\n']) assert.equal(parseTlogSize(s), null, s);
});

test('witnessStateName fits the store’s name rule and differs for two keys of one name', () => {
  const a = parseWitnessVerifierKey(generateWitnessKey('witness.example.org/w1').verifierKey);
  const b = parseWitnessVerifierKey(generateWitnessKey('witness.example.org/w1').verifierKey);
  const long = parseWitnessVerifierKey(generateWitnessKey(`w/${'x'.repeat(200)}`).verifierKey);
  for (const v of [a, b, long]) assert.match(witnessStateName(v), /^[A-Za-z0-9_.-]{1,64}$/);
  assert.notEqual(witnessStateName(a), witnessStateName(b));
  assert.ok(witnessStateName(a).startsWith('witness.example.org_w1-'));
});
