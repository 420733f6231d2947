/**
 * The operator mnemonic: 24 BIP-39 English words (256 bits of entropy, @scure/bip39), written down once
 * when a node is created. Every check runs before any use and refuses by name (docs/keyshare.md,
 * "The mnemonic"): 24 words, each in the wordlist (named by position, never quoted), the checksum, and
 * the byte-entropy check of ADR 004 with a threshold measured by bench/keyshare-entropy.ts. Pure.
 */
import { entropyToMnemonic, generateMnemonic, mnemonicToEntropy } from '@scure/bip39';
import { wordlist } from '@scure/bip39/wordlists/english.js';
import { InvalidInputError } from '../errors.js';
import { utf8, wipe } from '../util/bytes.js';
import { KeyshareError } from './errors.js';

export const MNEMONIC_WORDS = 24;
/**
 * The least byte entropy (bits per byte, Shannon, over the normalised mnemonic's UTF-8 bytes) a
 * mnemonic must have. Over 10^6 random mnemonics the minimum was 3.7450 (p0.01% 3.8471, median 4.1142):
 * bench/keyshare-entropy.ts, docs/keyshare.md. Set just below that minimum, so a random mnemonic is
 * refused with probability below about 10^-6, while one of few distinct letters is refused.
 */
export const MIN_BYTE_ENTROPY = 3.74;

const WORD_INDEX: ReadonlyMap<string, number> = new Map(wordlist.map((w, i) => [w, i]));

/** A checked mnemonic: its normalised text (the passphrase) and its 32 bytes of entropy (secret; wipe when done). */
export interface Mnemonic {
  /** Lowercase words separated by single spaces, NFKD: exactly what `age -d` must be typed. */
  phrase: string;
  entropy: Uint8Array;
}

/** NFKD, lowercase, words split on any whitespace and joined by one space. */
export function normaliseMnemonic(text: string): string {
  if (typeof text !== 'string') throw new InvalidInputError('the mnemonic must be text');
  return text.normalize('NFKD').toLowerCase().trim().split(/\s+/u).filter((w) => w.length > 0).join(' ');
}

/** Shannon entropy in bits per byte of the byte-wise distribution of `bytes` (ADR 004's check). */
export function byteEntropy(bytes: Uint8Array): number {
  if (bytes.length === 0) return 0;
  const counts = new Uint32Array(256);
  for (const b of bytes) counts[b]! += 1;
  let h = 0;
  for (const c of counts) {
    if (c === 0) continue;
    const p = c / bytes.length;
    h -= p * Math.log2(p);
  }
  return h;
}

/**
 * Checks a mnemonic and returns its normalised phrase and entropy. Throws KeyshareError, in this order:
 * `mnemonic_length` (not 24 words), `mnemonic_word_unknown` (naming the first such word's position),
 * `mnemonic_checksum`, `mnemonic_low_entropy`.
 */
export function checkMnemonic(text: string): Mnemonic {
  const phrase = normaliseMnemonic(text);
  const words = phrase.length === 0 ? [] : phrase.split(' ');
  if (words.length !== MNEMONIC_WORDS) {
    throw new KeyshareError('mnemonic_length', `the mnemonic has ${words.length} words, not ${MNEMONIC_WORDS}`, 'type all 24 words as written down, separated by spaces');
  }
  const bad = words.findIndex((w) => !WORD_INDEX.has(w));
  if (bad >= 0) {
    throw new KeyshareError('mnemonic_word_unknown', `word ${bad + 1} of the mnemonic is not in the bip-39 english wordlist`, `check word ${bad + 1} against what was written down`);
  }
  let entropy: Uint8Array;
  try {
    entropy = mnemonicToEntropy(phrase, wordlist);
  } catch {
    throw new KeyshareError('mnemonic_checksum', 'the mnemonic\'s checksum does not match: a word is wrong or two are swapped', 'every word is a real word, so compare each one, and their order, with what was written down');
  }
  const h = byteEntropy(utf8.encode(phrase));
  if (h < MIN_BYTE_ENTROPY) {
    wipe(entropy);
    throw new KeyshareError(
      'mnemonic_low_entropy',
      `the mnemonic's byte entropy is ${h.toFixed(3)} bits per byte, below the ${MIN_BYTE_ENTROPY} no random mnemonic falls under`,
      'it was not made by a random generator: let `lifeboat node init` generate one',
    );
  }
  return { phrase, entropy };
}

/** A new random 24-word mnemonic that passes checkMnemonic (a rare low-entropy draw is redrawn). */
export function generateOperatorMnemonic(): Mnemonic {
  for (;;) {
    try {
      return checkMnemonic(generateMnemonic(wordlist, 256));
    } catch (err) {
      if (!(err instanceof KeyshareError && err.code === 'mnemonic_low_entropy')) throw err;
    }
  }
}

/** The mnemonic of 32 bytes of entropy (tests, vectors). Throws InvalidInputError on another length. */
export function mnemonicFromEntropy(entropy: Uint8Array): string {
  if (!(entropy instanceof Uint8Array) || entropy.length !== 32) throw new InvalidInputError('mnemonic entropy must be 32 bytes');
  return entropyToMnemonic(entropy, wordlist);
}
