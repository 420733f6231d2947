/**
 * Measures the byte-entropy distribution of random 24-word BIP-39 mnemonics (ADR 004: a mnemonic's
 * byte-wise entropy must exceed the minimum seen over many random ones) and prints the minimum,
 * percentiles and mean, from which MIN_BYTE_ENTROPY in src/keyshare/mnemonic.ts is set.
 *   node --import tsx bench/keyshare-entropy.ts [count]      (default 1,000,000; never run by the tests)
 */
import { generateMnemonic } from '@scure/bip39';
import { wordlist } from '@scure/bip39/wordlists/english.js';
import { byteEntropy, MIN_BYTE_ENTROPY } from '../src/keyshare/mnemonic.js';
import { utf8 } from '../src/util/bytes.js';

export function benchKeyshareEntropy(count = 1_000_000): { min: number; mean: number; below: number } {
  const values = new Float64Array(count);
  const t0 = performance.now();
  let sum = 0;
  let below = 0;
  for (let i = 0; i < count; i++) {
    const h = byteEntropy(utf8.encode(generateMnemonic(wordlist, 256)));
    values[i] = h;
    sum += h;
    if (h < MIN_BYTE_ENTROPY) below++;
  }
  values.sort();
  const q = (p: number): string => values[Math.min(count - 1, Math.floor(p * count))]!.toFixed(4);
  const ms = performance.now() - t0;
  console.log(
    `keyshare mnemonic byte entropy over ${count} random 24-word mnemonics (${(ms / 1000).toFixed(1)} s): ` +
      `min ${values[0]!.toFixed(4)}, p0.0001% ${q(0.000001)}, p0.01% ${q(0.0001)}, p1% ${q(0.01)}, median ${q(0.5)}, mean ${(sum / count).toFixed(4)}, max ${values[count - 1]!.toFixed(4)} bits/byte; ` +
      `below the threshold ${MIN_BYTE_ENTROPY}: ${below}`,
  );
  return { min: values[0]!, mean: sum / count, below };
}

if (import.meta.url === `file://${process.argv[1]}`) benchKeyshareEntropy(Number(process.argv[2] ?? 1_000_000));
