/**
 * Hex parsing at the boundary (src/util/bytes.ts fromHex, src/keynode/frost/suite.ts parseHex): what
 * is accepted, and that everything else is a typed invalid_input before any byte is decoded (node's
 * decoder alone would stop silently at a bad character).
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { fromHex } from '../src/util/bytes.js';
import { parseHex } from '../src/keynode/frost/suite.js';

describe('fromHex', () => {
  it('decodes lowercase and uppercase hex into a plain Uint8Array of its own', () => {
    assert.deepEqual(fromHex('', 'x'), new Uint8Array(0));
    const a = fromHex('00aBcDfF', 'x');
    assert.deepEqual([...a], [0x00, 0xab, 0xcd, 0xff]);
    assert.equal(Object.getPrototypeOf(a), Uint8Array.prototype, 'not a Buffer');
    const b = fromHex('00abcdff', 'x');
    a[0] = 7;
    assert.equal(b[0], 0, 'no shared memory between results');
    assert.equal(fromHex('ab'.repeat(32), 'x', 32).length, 32);
  });

  it('refuses odd length, a non-hex character anywhere, a non-string and a wrong length, naming what', () => {
    for (const bad of ['abc', 'zz', '0g', 'ab cd', 'abcd\n', '+1', '０１']) {
      assert.throws(() => fromHex(bad, 'the thing'), (e: unknown) => (e as { code?: string }).code === 'invalid_input' && /the thing is not hex/.test((e as Error).message), JSON.stringify(bad));
    }
    assert.throws(() => fromHex(12 as unknown as string, 'x'), { code: 'invalid_input' });
    assert.throws(() => fromHex('abcd', 'key', 32), { code: 'invalid_input', message: 'key must be 32 bytes, got 2' });
  });
});

describe('parseHex', () => {
  it('takes lowercase hex only', () => {
    assert.deepEqual([...parseHex('0aff', 'c')], [0x0a, 0xff]);
    for (const bad of ['0AFF', 'abc', 'xy', 5]) assert.throws(() => parseHex(bad, 'commitment'), { code: 'invalid_input', message: 'commitment must be lowercase hex' });
  });
});
