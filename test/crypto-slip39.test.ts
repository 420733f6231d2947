/**
 * SLIP-0039: the 45 official vectors (trezor/python-shamir-mnemonic, MIT), interop both ways with the
 * independent npm `slip39`, negative cases named for their fault, and split/combine properties.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InvalidInputError, isLifeboatError, ShareError } from '../src/errors.js';
import { combineMnemonics, decodeMnemonic, encodeMnemonic, generateGroupMnemonics, generateMnemonics, WORDLIST } from '../src/crypto/slip39.js';
import { toHex } from '../src/util/bytes.js';

const SLOW = process.env.SLOW === '1';

/** The part of npm `slip39` (CommonJS, untyped) the tests use. */
interface Slip39Peer {
  fromArray(
    masterSecret: number[],
    opts: { passphrase?: string; threshold?: number; groups?: number[][]; iterationExponent?: number; extendableBackupFlag?: number },
  ): { fromPath(path: string): { mnemonics: string[] } };
  recoverSecret(mnemonics: string[], passphrase?: string): number[];
}
const peer = createRequire(import.meta.url)('slip39') as Slip39Peer;

type Vector = [description: string, mnemonics: string[], masterSecretHex: string, xprv: string];
const vectors = JSON.parse(readFileSync(new URL('./data/slip39-vectors.json', import.meta.url), 'utf8')) as Vector[];

const code = (c: string) => (err: unknown) => isLifeboatError(err, c);
const secret16 = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);
const secret32 = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 5) & 0xff);
const fast = { iterationExponent: 0 };

/** Replaces the 0-based word `i` of a mnemonic. */
function withWord(mnemonic: string, i: number, word: string): string {
  const words = mnemonic.split(' ');
  words[i] = word;
  return words.join(' ');
}

describe('slip39 official vectors', () => {
  it('has all 45', () => assert.equal(vectors.length, 45));
  for (const [description, mnemonics, expected] of vectors) {
    it(description, () => {
      if (expected === '') assert.throws(() => combineMnemonics(mnemonics, 'TREZOR'), ShareError);
      else assert.equal(toHex(combineMnemonics(mnemonics, 'TREZOR')), expected);
    });
  }
});

describe('slip39 share encoding', () => {
  it('the wordlist has 1024 sorted words with unique 4-letter prefixes', () => {
    assert.equal(WORDLIST.length, 1024);
    assert.deepEqual([...WORDLIST].sort(), [...WORDLIST]);
    assert.equal(new Set(WORDLIST.map((w) => w.slice(0, 4))).size, 1024);
  });

  it('encode and decode are inverse, for 128- and 256-bit values and both flag values', () => {
    for (const value of [secret16, secret32, new Uint8Array(18), new Uint8Array(20)]) {
      for (const extendable of [false, true]) {
        const share = { identifier: 0x7abc, extendable, iterationExponent: 15, groupIndex: 15, groupThreshold: 3, groupCount: 16, memberIndex: 9, memberThreshold: 16, value };
        const m = encodeMnemonic(share);
        assert.equal(m.split(' ').length, 7 + Math.ceil((value.length * 8) / 10));
        assert.deepEqual(decodeMnemonic(m), share);
      }
    }
  });

  it('decodes the first vector share to its documented fields', () => {
    const share = decodeMnemonic(vectors[0]![1][0]!);
    assert.equal(share.extendable, false);
    assert.equal(share.iterationExponent, 0);
    assert.deepEqual([share.groupThreshold, share.groupCount, share.memberThreshold], [1, 1, 1]);
    assert.equal(encodeMnemonic(share), vectors[0]![1][0]);
  });

  it('normalises case and whitespace', () => {
    const m = vectors[0]![1][0]!;
    assert.deepEqual(decodeMnemonic(`  ${m.toUpperCase().replaceAll(' ', ' \t\n ')}\n`), decodeMnemonic(m));
  });

  it('names the position of a single mistyped word, suggests the close word, quotes no share word', () => {
    const m = vectors[3]![1][0]!;
    const words = m.split(' ');
    for (const pos of [0, 4, 11, words.length - 1]) {
      const typo = words[pos]!.slice(0, 2) + 'q' + words[pos]!.slice(2);
      const err = (() => {
        try {
          decodeMnemonic(withWord(m, pos, typo));
        } catch (e) {
          return e as ShareError;
        }
        assert.fail('accepted a word outside the list');
      })();
      assert.equal(err.code, 'invalid_word');
      assert.match(err.message, new RegExp(`^word ${pos + 1} is not`));
      const tokens = new Set(err.message.split(/[^a-z]+/));
      for (const w of words) assert.ok(!tokens.has(w), 'the message quotes a share word');
      assert.ok(!err.message.includes(typo));
      const hintTokens = new Set((err.hint ?? '').split(/[^a-z]+/));
      for (const w of words) assert.ok(!hintTokens.has(w), 'the hint suggests a share word');
      assert.match(err.hint ?? '', new RegExp(`check word ${pos + 1}`));
    }
  });

  it('reports a mistyped word in combine with the share number', () => {
    const [a, b] = vectors[3]![1] as [string, string];
    assert.throws(() => combineMnemonics([a, withWord(b, 6, 'xylophon')]), (e: ShareError) => e.code === 'invalid_word' && e.message === 'share 2: word 7 is not in the slip-0039 wordlist');
  });

  it('catches swapped words and a wrong list word by checksum', () => {
    const m = vectors[3]![1][0]!;
    const w = m.split(' ');
    const swapped = withWord(withWord(m, 8, w[9]!), 9, w[8]!);
    assert.throws(() => decodeMnemonic(swapped), (e: ShareError) => e.code === 'invalid_checksum' && /probably a typo/.test(e.message));
    const other = WORDLIST[(WORDLIST.indexOf(w[12]!) + 1) % 1024]!;
    assert.throws(() => decodeMnemonic(withWord(m, 12, other)), code('invalid_checksum'));
  });

  it('refuses bad lengths, padding and empty input', () => {
    assert.throws(() => decodeMnemonic(''), code('invalid_share'));
    assert.throws(() => decodeMnemonic(vectors[0]![1][0]!.split(' ').slice(0, 19).join(' ')), code('invalid_share'));
    assert.throws(() => decodeMnemonic(vectors[2]![1][0]!), code('invalid_share'));
    assert.throws(() => decodeMnemonic(42 as unknown as string), InvalidInputError);
  });

  it('refuses to encode fields out of range, naming them', () => {
    const ok = { identifier: 1, extendable: true, iterationExponent: 0, groupIndex: 0, groupThreshold: 1, groupCount: 1, memberIndex: 0, memberThreshold: 1, value: secret16 };
    assert.throws(() => encodeMnemonic({ ...ok, identifier: 0x8000 }), /identifier must be an integer in 0\.\.32767/);
    assert.throws(() => encodeMnemonic({ ...ok, groupThreshold: 2 }), /groupThreshold must be an integer in 1\.\.1/);
    assert.throws(() => encodeMnemonic({ ...ok, memberIndex: 16 }), /memberIndex/);
    assert.throws(() => encodeMnemonic({ ...ok, value: new Uint8Array(17) }), /value must be an even number of bytes/);
  });
});

describe('slip39 generate and combine', () => {
  it('2-of-3 round trip with a passphrase; returns the identifier; extra and repeated shares are fine', () => {
    const { identifier, mnemonics } = generateMnemonics(secret32, { threshold: 2, count: 3, passphrase: 'TREZOR', ...fast });
    assert.equal(mnemonics.length, 3);
    assert.equal(mnemonics[0]!.split(' ').length, 33);
    assert.equal(decodeMnemonic(mnemonics[1]!).identifier, identifier);
    assert.equal(decodeMnemonic(mnemonics[1]!).extendable, true);
    assert.deepEqual(combineMnemonics([mnemonics[2]!, mnemonics[0]!], 'TREZOR'), secret32);
    assert.deepEqual(combineMnemonics([...mnemonics, mnemonics[0]!], 'TREZOR'), secret32);
    assert.notDeepEqual(combineMnemonics([mnemonics[0]!, mnemonics[1]!], 'trezor'), secret32); // "Passphrase": no check by design
  });

  it('non-extendable shares salt with the identifier and still round-trip', () => {
    const { mnemonics } = generateMnemonics(secret16, { threshold: 3, count: 5, extendable: false, ...fast });
    assert.equal(decodeMnemonic(mnemonics[0]!).extendable, false);
    assert.deepEqual(combineMnemonics([mnemonics[4]!, mnemonics[1]!, mnemonics[3]!]), secret16);
  });

  it('two-level sharing needs the group threshold of complete groups', () => {
    const groups = generateGroupMnemonics(secret16, { groupThreshold: 2, groups: [[1, 1], [2, 3], [3, 5]], ...fast });
    assert.deepEqual(groups.map((g) => g.length), [1, 3, 5]);
    assert.deepEqual(combineMnemonics([groups[0]![0]!, groups[2]![4]!, groups[2]![0]!, groups[2]![2]!]), secret16);
    assert.deepEqual(combineMnemonics([groups[1]![2]!, groups[0]![0]!, groups[1]![0]!, groups[2]![3]!]), secret16); // incomplete group 3 unused
    assert.throws(
      () => combineMnemonics([groups[0]![0]!, groups[2]![0]!, groups[2]![1]!]),
      (e: ShareError) => e.code === 'insufficient_shares' && /2 groups must each reach their member threshold, 1 does \(group 3 has 2 of 3\)/.test(e.message),
    );
  });

  it('says how many shares are needed and given', () => {
    const { mnemonics } = generateMnemonics(secret16, { threshold: 3, count: 5, ...fast });
    assert.throws(() => combineMnemonics(mnemonics.slice(0, 2)), (e: ShareError) => e.code === 'insufficient_shares' && e.message === 'not enough shares: 3 different shares are needed, 2 given');
    assert.throws(() => combineMnemonics([mnemonics[0]!, mnemonics[0]!, mnemonics[1]!]), /3 different shares are needed, 2 given/);
    assert.throws(() => combineMnemonics([]), code('insufficient_shares'));
  });

  it('refuses a share from another set by name', () => {
    const a = generateMnemonics(secret16, { threshold: 2, count: 3, ...fast }).mnemonics;
    let b = generateMnemonics(secret16, { threshold: 2, count: 3, ...fast }).mnemonics;
    while (decodeMnemonic(b[0]!).identifier === decodeMnemonic(a[0]!).identifier) b = generateMnemonics(secret16, { threshold: 2, count: 3, ...fast }).mnemonics;
    assert.throws(() => combineMnemonics([a[0]!, b[1]!]), (e: ShareError) => e.code === 'share_set_mismatch' && /different share sets/.test(e.message));
  });

  it('refuses one member with two values, and a tampered value by digest', () => {
    const { mnemonics } = generateMnemonics(secret32, { threshold: 2, count: 3, ...fast });
    const share = decodeMnemonic(mnemonics[1]!);
    const value = share.value.slice();
    value[5]! ^= 0x01;
    const tampered = encodeMnemonic({ ...share, value }); // valid checksum, altered value
    assert.throws(() => combineMnemonics([mnemonics[1]!, tampered]), code('duplicate_share'));
    assert.throws(() => combineMnemonics([mnemonics[0]!, tampered]), (e: ShareError) => e.code === 'invalid_digest');
  });

  it('validates generation arguments by name', () => {
    const gen = (ms: Uint8Array, o: object) => () => generateMnemonics(ms, { threshold: 2, count: 3, ...fast, ...o });
    assert.throws(gen(new Uint8Array(14), {}), /masterSecret must be an even number of bytes in 16\.\.1024, got 14/);
    assert.throws(gen(new Uint8Array(17), {}), InvalidInputError);
    assert.throws(gen(secret16, { threshold: 4 }), /member threshold must be an integer in 1\.\.3/);
    assert.throws(gen(secret16, { count: 17 }), /member count must be an integer in 1\.\.16/);
    assert.throws(gen(secret16, { threshold: 1 }), /a threshold of 1 needs a count of 1/);
    assert.throws(gen(secret16, { passphrase: 'pässword' }), /printable ASCII/);
    assert.throws(gen(secret16, { iterationExponent: 16 }), /iterationExponent must be an integer in 0\.\.15/);
    assert.throws(() => generateGroupMnemonics(secret16, { groupThreshold: 3, groups: [[1, 1], [2, 2]] }), /groupThreshold must be an integer in 1\.\.2/);
    assert.throws(() => combineMnemonics(['x'], 'é'), InvalidInputError);
  });
});

describe('slip39 interop with npm slip39', () => {
  for (const extendable of [true, false]) {
    it(`ours combine in theirs (extendable ${extendable}, passphrase)`, () => {
      const { mnemonics } = generateMnemonics(secret32, { threshold: 2, count: 3, passphrase: 'TREZOR', extendable, ...fast });
      assert.deepEqual(peer.recoverSecret([mnemonics[2]!, mnemonics[1]!], 'TREZOR'), [...secret32]);
      const groups = generateGroupMnemonics(secret16, { groupThreshold: 2, groups: [[1, 1], [2, 3]], extendable, ...fast });
      assert.deepEqual(peer.recoverSecret([groups[0]![0]!, groups[1]![2]!, groups[1]![0]!]), [...secret16]);
    });

    it(`theirs combine in ours (extendable ${extendable}, passphrase)`, () => {
      const opts = { passphrase: 'TREZOR', threshold: 2, groups: [[1, 1], [2, 3], [3, 5]], iterationExponent: 0, extendableBackupFlag: Number(extendable) };
      const slip = peer.fromArray([...secret32], opts);
      const mnemonics = [...slip.fromPath('r/0').mnemonics, ...slip.fromPath('r/1').mnemonics.slice(1)];
      assert.deepEqual(combineMnemonics(mnemonics, 'TREZOR'), secret32);
      assert.equal(decodeMnemonic(mnemonics[0]!).extendable, extendable);
    });
  }
});

describe('slip39 properties', () => {
  it('combine(any qualifying subset of generate(s)) == s', () => {
    const groupSpec = fc.integer({ min: 1, max: 4 }).chain((n) => fc.tuple(fc.integer({ min: n === 1 ? 1 : 2, max: n }), fc.constant(n)));
    const scheme = fc.array(groupSpec, { minLength: 1, maxLength: 4 }).chain((groups) =>
      fc.record({ groups: fc.constant(groups as [number, number][]), groupThreshold: fc.integer({ min: 1, max: groups.length }) }),
    );
    const secret = fc.integer({ min: 8, max: 32 }).chain((half) => fc.uint8Array({ minLength: 2 * half, maxLength: 2 * half }));
    fc.assert(
      fc.property(scheme, secret, fc.string({ unit: fc.integer({ min: 32, max: 126 }).map((c) => String.fromCharCode(c)), maxLength: 12 }), fc.nat(), (s, ms, passphrase, seed) => {
        const all = generateGroupMnemonics(ms, { ...s, passphrase, ...fast });
        const rotate = <T>(xs: T[], k: number) => xs.map((_, i) => xs[(i + k) % xs.length]!);
        const picked = rotate(all, seed).slice(0, s.groupThreshold);
        const chosen = picked.flatMap((g) => rotate(g, seed).slice(0, decodeMnemonic(g[0]!).memberThreshold));
        assert.deepEqual(combineMnemonics(rotate(chosen, seed), passphrase), ms);
      }),
      { numRuns: SLOW ? 200 : 12 },
    );
  });
});
