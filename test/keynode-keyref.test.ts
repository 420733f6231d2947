/**
 * The key reference file (docs/format.md, "Key reference file"): parseKeyRef and encodeKeyRef as a
 * pair (round trip, canonical bytes), and one negative vector per rule, each refused with its code.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isLifeboatError } from '../src/errors.js';
import { inProcessKeys } from '../src/keynode/frost/bench.js';
import { encodeKeyRef, type KeyRefFile, nodeIndexOf, parseKeyRef } from '../src/keynode/keyref.js';
import { toHex, utf8 } from '../src/util/bytes.js';
import { groupPublicKey } from '../src/keynode/frost/suite.js';

const groupKeyOf = (curve: 'ed25519' | 'secp256k1' | 'bip340') => toHex(groupPublicKey(curve, inProcessKeys(curve, { count: 2 })[0]!.public.commitments[0]!));

const ed: KeyRefFile = {
  keyId: 'key_00112233445566778899aabbccddeeff',
  curve: 'ed25519',
  threshold: 2,
  groupPublicKey: groupKeyOf('ed25519'),
  nodes: [
    { url: 'http://127.0.0.1:7401', keyId: 'key_new_id_after_import', fingerprint: '3f2a:0000:1111:2222:3333:4444:5555:91c0' },
    { url: 'https://node-2.example:7402', keyId: 'key_00112233445566778899aabbccddeeff' },
    { url: 'http://127.0.0.1:7403', keyId: 'key_00112233445566778899aabbccddeeff' },
  ],
};

/** The canonical document of `ed`, as JSON, with `edit` applied: one field wrong per negative vector. */
function vector(edit: (doc: Record<string, unknown> & { nodes: Record<string, unknown>[] }) => void): Uint8Array {
  const doc = JSON.parse(utf8.decode(encodeKeyRef(ed))) as Record<string, unknown> & { nodes: Record<string, unknown>[] };
  edit(doc);
  return utf8.encode(JSON.stringify(doc));
}

describe('key reference file: parse/encode', () => {
  it('round trip on every curve; the encoding is canonical (fields in order, two-space indent, final newline)', () => {
    for (const curve of ['ed25519', 'secp256k1', 'bip340'] as const) {
      const ref: KeyRefFile = { ...ed, curve, groupPublicKey: groupKeyOf(curve) };
      const bytes = encodeKeyRef(ref);
      assert.deepEqual(parseKeyRef(bytes), ref);
      assert.deepEqual(encodeKeyRef(parseKeyRef(bytes)), bytes);
    }
    const text = utf8.decode(encodeKeyRef(ed));
    assert.ok(text.endsWith('}\n'));
    assert.deepEqual(Object.keys(JSON.parse(text) as object), ['version', 'type', 'key_id', 'curve', 'threshold', 'group_public_key', 'nodes']);
    assert.match(text, /^\{\n {2}"version": 1,\n {2}"type": "lifeboat-key-ref",/);
    assert.equal(nodeIndexOf(ed, 'http://127.0.0.1:7403/'), 2, 'a trailing slash names the same node');
    assert.throws(() => nodeIndexOf(ed, 'http://127.0.0.1:7404'), (e) => isLifeboatError(e, 'node_not_in_key_ref'));
  });

  const negatives: [string, string, Uint8Array][] = [
    ['not JSON', 'malformed', utf8.encode('{"version": 1,')],
    ['another type', 'malformed', vector((d) => (d.type = 'lifeboat-key-share'))],
    ['version 2', 'unsupported_version', vector((d) => (d.version = 2))],
    ['version "1"', 'unsupported_version', vector((d) => (d.version = '1'))],
    ['an unknown field', 'malformed', vector((d) => (d.public = {}))],
    ['no key_id', 'malformed', vector((d) => delete d.key_id)],
    ['a key id with a space', 'malformed', vector((d) => (d.key_id = 'key 1'))],
    ['an unknown curve', 'malformed', vector((d) => (d.curve = 'p256'))],
    ['threshold 1', 'malformed', vector((d) => (d.threshold = 1))],
    ['threshold over the node count', 'malformed', vector((d) => (d.threshold = 4))],
    ['threshold 2.5', 'malformed', vector((d) => (d.threshold = 2.5))],
    ['group key in upper case', 'malformed', vector((d) => (d.group_public_key = (d.group_public_key as string).toUpperCase()))],
    ['group key one byte short', 'malformed', vector((d) => (d.group_public_key = (d.group_public_key as string).slice(2)))],
    ['group key of the wrong curve (33 bytes for ed25519)', 'malformed', vector((d) => (d.group_public_key = groupKeyOf('secp256k1')))],
    ['group key that is no point', 'malformed', vector((d) => (d.group_public_key = `${'ff'.repeat(31)}7f`))],
    ['no nodes', 'malformed', vector((d) => (d.nodes = []))],
    ['a node twice', 'malformed', vector((d) => (d.nodes[2]!.url = d.nodes[0]!.url))],
    ['a node URL with a fragment', 'malformed', vector((d) => (d.nodes[1]!.url = 'http://127.0.0.1:7402#key_x'))],
    ['a node URL with a trailing slash', 'malformed', vector((d) => (d.nodes[1]!.url = 'http://127.0.0.1:7402/'))],
    ['a node URL that is not http', 'malformed', vector((d) => (d.nodes[1]!.url = 'ftp://127.0.0.1:7402'))],
    ['a node without key_id', 'malformed', vector((d) => delete d.nodes[1]!.key_id)],
    ['a bad fingerprint', 'malformed', vector((d) => (d.nodes[0]!.fingerprint = '3f2a:0000'))],
    ['an unknown node field', 'malformed', vector((d) => (d.nodes[0]!.status = 'active'))],
    ['over 64 KiB', 'malformed', utf8.encode(' '.repeat(64 * 1024 + 1))],
    ['an older `key create --out` file', 'malformed', utf8.encode(JSON.stringify({ curve: 'ed25519', threshold: 2, groupPublicKey: ed.groupPublicKey, public: {}, nodes: [] }))],
  ];
  for (const [name, code, bytes] of negatives) {
    it(`refuses ${name} (${code})`, () => {
      assert.throws(() => parseKeyRef(bytes), (e) => isLifeboatError(e, code) && /^key reference/.test((e as Error).message));
    });
  }

  it('encode refuses what parse would refuse', () => {
    assert.throws(() => encodeKeyRef({ ...ed, threshold: 9 }), (e) => isLifeboatError(e, 'malformed'));
  });
});
