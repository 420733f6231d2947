/** The inclusion proof document (src/log/inclusion.ts): round trip, verification, negative vectors. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encodeCheckpoint } from '../src/log/checkpoint.js';
import { encodeInclusionDoc, parseInclusionDoc, verifyInclusionDoc, type InclusionDoc } from '../src/log/inclusion.js';
import { leafHash, memoryHashReader, appendLeaves, treeHash } from '../src/log/merkle.js';
import { generateNoteKey, parseSignerKey, parseVerifierKey, signNote } from '../src/log/note.js';
import { proveInclusion } from '../src/log/proof.js';
import { utf8 } from '../src/util/bytes.js';

const ORIGIN = 'example.com/inclusion-test';

async function fixture(): Promise<{ doc: InclusionDoc; vkey: string }> {
  const { signerKey, verifierKey } = generateNoteKey(ORIGIN);
  const entries = Array.from({ length: 13 }, (_, i) => utf8.encode(`entry ${i}`));
  const stored: Uint8Array[] = [];
  for (let i = 0; i < entries.length; i++) stored.push(...(await appendLeaves(i, [leafHash(entries[i]!)], memoryHashReader(stored))));
  const reader = memoryHashReader(stored);
  const root = await treeHash(entries.length, reader);
  const checkpoint = signNote(encodeCheckpoint({ origin: ORIGIN, size: entries.length, rootHash: root, extensions: [] }), parseSignerKey(signerKey));
  const index = 5;
  const doc = { index, leafHash: leafHash(entries[index]!), entry: entries[index]!, proof: await proveInclusion(index, entries.length, reader), checkpoint };
  return { doc, vkey: verifierKey };
}

const code = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    return (err as { code: string }).code;
  }
  return 'no error';
};

describe('inclusion proof document', () => {
  it('round-trips through JSON and verifies with the log key alone', async () => {
    const { doc, vkey } = await fixture();
    const json = JSON.stringify(encodeInclusionDoc(doc));
    const back = parseInclusionDoc(json);
    assert.equal(back.index, 5);
    assert.equal(verifyInclusionDoc(back, parseVerifierKey(vkey)).size, 13);
    assert.equal(JSON.parse(json).tree_size, 13);
  });

  it('refuses a wrong index, a wrong leaf and another log key', async () => {
    const { doc, vkey } = await fixture();
    const v = parseVerifierKey(vkey);
    assert.equal(code(() => verifyInclusionDoc({ ...doc, index: 6 }, v)), 'proof_invalid');
    assert.equal(code(() => verifyInclusionDoc({ ...doc, leafHash: leafHash(utf8.encode('other')) }, v)), 'proof_invalid');
    assert.equal(code(() => verifyInclusionDoc(doc, parseVerifierKey(generateNoteKey(ORIGIN).verifierKey))), 'note_unverified');
  });

  it('negative vectors: each malformed field is refused by name', async () => {
    const { doc } = await fixture();
    const good = encodeInclusionDoc(doc) as unknown as Record<string, unknown>;
    const cases: [string, Record<string, unknown> | string, string][] = [
      ['not json', '{', 'malformed'],
      ['another type', { ...good, type: 'x' }, 'malformed'],
      ['version 2', { ...good, version: 2 }, 'unsupported_version'],
      ['negative index', { ...good, index: -1 }, 'malformed'],
      ['tree_size off', { ...good, tree_size: 12 }, 'malformed'],
      ['short hash', { ...good, leaf_hash: 'AAAA' }, 'malformed'],
      ['entry of another leaf', { ...good, entry: 'AAAA' }, 'malformed'],
      ['proof not a list', { ...good, proof: 'x' }, 'malformed'],
    ];
    for (const [name, input, want] of cases) {
      assert.equal(code(() => parseInclusionDoc(typeof input === 'string' ? input : JSON.stringify(input))), want, name);
    }
  });
});
