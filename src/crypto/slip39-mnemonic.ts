/**
 * SLIP-0039 share mnemonics (https://github.com/satoshilabs/slips/blob/master/slip-0039.md): the
 * share's fields ("Format of the share mnemonic"), their words, and the RS1024 checksum ("Checksum").
 * Section names in comments refer to that document; byte and bit layout: docs/format.md, "Shamir over
 * GF(256) and SLIP-0039 shares". Sharing and combining secrets is ./slip39.ts, which re-exports this.
 *
 * Turning words into numbers and back uses map and array lookups and is not constant-time (as in every
 * SLIP-0039 implementation); the checksum is.
 */
import { InvalidInputError, ShareError } from '../errors.js';
import { bytesToWords, wordIndex, WORDLIST, wordsToBytes } from './slip39-wordlist.js';

/** One decoded share ("Format of the share mnemonic"). Thresholds and counts are actual values (1..16); indices are the x values (0..15). */
export interface Slip39Share {
  identifier: number;
  extendable: boolean;
  iterationExponent: number;
  groupIndex: number;
  groupThreshold: number;
  groupCount: number;
  memberIndex: number;
  memberThreshold: number;
  value: Uint8Array;
}

const HEADER_WORDS = 4; // id(15) ext(1) e(4) GI(4) Gt(4) g(4) I(4) t(4) = 40 bits
const CHECKSUM_WORDS = 3;
const MIN_SECRET_BYTES = 16; // "at least 128 bits"
const MAX_SECRET_BYTES = 1024; // ours: keeps a share under MAX_WORDS words
const MIN_WORDS = HEADER_WORDS + Math.ceil((MIN_SECRET_BYTES * 8) / 10) + CHECKSUM_WORDS; // 20
const MAX_WORDS = 1000; // RS1024 codewords are at most 1023 symbols, customization string included

/** Throws InvalidInputError naming `name` unless `v` is an integer in min..max. */
export function checkInt(v: number, name: string, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new InvalidInputError(`${name} must be an integer in ${min}..${max}, got ${String(v)}`);
  }
}

/** Throws InvalidInputError naming `name` unless `v` is a Uint8Array of an even length in 16..1024. */
export function checkSecret(v: unknown, name: string): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array)) throw new InvalidInputError(`${name} must be a Uint8Array`);
  if (v.length < MIN_SECRET_BYTES || v.length > MAX_SECRET_BYTES || v.length % 2 !== 0) {
    throw new InvalidInputError(`${name} must be an even number of bytes in ${MIN_SECRET_BYTES}..${MAX_SECRET_BYTES}, got ${v.length}`);
  }
}

// ---- "Checksum": RS1024 over GF(1024), generator (x−a)(x−a²)(x−a³), a root of x^10 + x^3 + 1 ----

const RS_GEN = [0xe0e040, 0x1c1c080, 0x3838100, 0x7070200, 0xe0e0009, 0x1c0c2412, 0x38086c24, 0x3090fc48, 0x21b1f890, 0x3f3f120];

/** The RS1024 polymod of the spec, with masks instead of branches on the (secret) data. */
function rs1024Polymod(values: readonly number[]): number {
  let chk = 1;
  for (const v of values) {
    const b = chk >>> 20;
    chk = ((chk & 0xfffff) << 10) ^ v;
    for (let i = 0; i < 10; i++) chk ^= RS_GEN[i]! & -((b >>> i) & 1);
  }
  return chk;
}

/** The customization string: "shamir", or "shamir_extendable" when ext = 1. */
export const customization = (extendable: boolean): number[] =>
  Array.from(extendable ? 'shamir_extendable' : 'shamir', (ch) => ch.charCodeAt(0));

function rs1024Checksum(data: readonly number[], extendable: boolean): number[] {
  const pm = rs1024Polymod([...customization(extendable), ...data, 0, 0, 0]) ^ 1;
  return [(pm >>> 20) & 1023, (pm >>> 10) & 1023, pm & 1023];
}

const rs1024Verify = (words: readonly number[], extendable: boolean): boolean =>
  rs1024Polymod([...customization(extendable), ...words]) === 1;

function checkShare(s: Slip39Share): void {
  if (typeof s !== 'object' || s === null) throw new InvalidInputError('share must be an object');
  checkInt(s.identifier, 'identifier', 0, 0x7fff);
  if (typeof s.extendable !== 'boolean') throw new InvalidInputError('extendable must be a boolean');
  checkInt(s.iterationExponent, 'iterationExponent', 0, 15);
  checkInt(s.groupCount, 'groupCount', 1, 16);
  checkInt(s.groupThreshold, 'groupThreshold', 1, s.groupCount);
  checkInt(s.groupIndex, 'groupIndex', 0, 15);
  checkInt(s.memberThreshold, 'memberThreshold', 1, 16);
  checkInt(s.memberIndex, 'memberIndex', 0, 15);
  checkSecret(s.value, 'value');
}

/**
 * Encodes a share as its mnemonic, words joined by single spaces ("Format of the share mnemonic",
 * "Checksum"). Throws InvalidInputError for a field out of range (see Slip39Share), a group threshold
 * above the group count, or a value that is not an even number of bytes in 16..1024.
 */
export function encodeMnemonic(share: Slip39Share): string {
  checkShare(share);
  const idExp = (share.identifier << 5) | (Number(share.extendable) << 4) | share.iterationExponent;
  const params =
    (share.groupIndex << 16) |
    ((share.groupThreshold - 1) << 12) |
    ((share.groupCount - 1) << 8) |
    (share.memberIndex << 4) |
    (share.memberThreshold - 1);
  const data = [idExp >>> 10, idExp & 1023, params >>> 10, params & 1023, ...bytesToWords(share.value)];
  return [...data, ...rs1024Checksum(data, share.extendable)].map((i) => WORDLIST[i]!).join(' ');
}

/** A mnemonic as SLIP-0039 reads it: lowercase words separated by single spaces. */
export function normalizeMnemonic(mnemonic: string): string {
  return mnemonic.trim().toLowerCase().split(/\s+/).join(' ');
}

function mnemonicToIndices(mnemonic: string): number[] {
  const normalized = normalizeMnemonic(mnemonic);
  if (normalized === '') throw new ShareError('invalid_share', 'the share is empty');
  const words = normalized.split(' ');
  if (words.length > MAX_WORDS) throw new ShareError('invalid_share', `a share has at most ${MAX_WORDS} words, got ${words.length}`);
  return words.map((w, i) => {
    const index = wordIndex(w);
    if (index !== undefined) return index;
    // No "did you mean": the nearest list word is most likely the real share word, and a hint is
    // printed and may be logged; an error never carries share material (DESIGN invariant 1).
    throw new ShareError('invalid_word', `word ${i + 1} is not in the slip-0039 wordlist`, `check word ${i + 1} against the written share; every word is unique by its first four letters`);
  });
}

/**
 * Decodes a share mnemonic; case and runs of whitespace are normalised ("Format of the share mnemonic").
 * Throws ShareError: 'invalid_word' naming the 1-based position of a word not in the list (with a
 * hint to check it, never a suggested word), 'invalid_checksum' when the RS1024 checksum fails
 * (usually a typo), 'invalid_share' for a bad length, padding or group threshold above the group count.
 * Throws InvalidInputError when `mnemonic` is not a string. Messages never quote the share's words.
 */
export function decodeMnemonic(mnemonic: string): Slip39Share {
  if (typeof mnemonic !== 'string') throw new InvalidInputError('mnemonic must be a string');
  const w = mnemonicToIndices(mnemonic);
  const padBits = ((w.length - HEADER_WORDS - CHECKSUM_WORDS) * 10) % 16;
  if (w.length < MIN_WORDS || padBits > 8) {
    throw new ShareError('invalid_share', `a share cannot have ${w.length} words`, `a share has ${MIN_WORDS} words (128-bit secret) or 33 (256-bit)`);
  }
  const extendable = ((w[1]! >>> 4) & 1) === 1;
  if (!rs1024Verify(w, extendable)) {
    throw new ShareError('invalid_checksum', 'invalid share checksum: probably a typo', 'compare each word with the written share');
  }
  const params = (w[2]! << 10) | w[3]!;
  const value = wordsToBytes(w.slice(HEADER_WORDS, -CHECKSUM_WORDS), padBits);
  if (value === undefined) throw new ShareError('invalid_share', 'invalid share padding: the share is corrupt or not slip-0039');
  const share: Slip39Share = {
    identifier: (w[0]! << 5) | (w[1]! >>> 5),
    extendable,
    iterationExponent: w[1]! & 15,
    groupIndex: params >>> 16,
    groupThreshold: ((params >>> 12) & 15) + 1,
    groupCount: ((params >>> 8) & 15) + 1,
    memberIndex: (params >>> 4) & 15,
    memberThreshold: (params & 15) + 1,
    value,
  };
  if (share.groupThreshold > share.groupCount) throw new ShareError('invalid_share', 'invalid share: group threshold exceeds group count');
  return share;
}
