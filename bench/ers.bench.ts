/**
 * Emergency recovery proof per share (DESIGN.md "Performance targets"): prove, verify and recover
 * time and package size per share, per curve, beside the prototype's figures (cut-and-choose,
 * secp256k1, RSA-3072, 2^-128: prove 70 ms, verify 47 ms, 33 KB), and beside the prover as first
 * built (bench/ers-reference.ts, 71.8 ms = 1.03x the prototype when it was measured), timed in the same
 * run, interleaved run by run, so that a shared machine's load weighs on both alike. Medians of N runs
 * in one process. Run: `npx tsx bench/ers.bench.ts` (also the last step of `npm run bench`).
 */
import { generateKeyPairSync } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { ed25519_FROST } from '@noble/curves/ed25519.js';
import { schnorr_FROST, secp256k1_FROST } from '@noble/curves/secp256k1.js';
import type { FROST } from '@noble/curves/abstract/frost.js';
import type { FrostCurve } from '../src/keynode/frost/index.js';
import { encodePart } from '../src/ers/format.js';
import { provePart, verifyPartProof } from '../src/ers/proof.js';
import { recoverShare } from '../src/ers/recover.js';
import { ersPublicKeyFromKeyObject, oaepDecrypt } from '../src/ers/rsa.js';
import { provePartReference } from './ers-reference.js';

const PROTOTYPE = { prove: 70, verify: 47, kb: 33 };
const N = Number(process.env.ERS_BENCH_RUNS ?? 15);
const FROSTS: Record<FrostCurve, FROST> = { ed25519: ed25519_FROST as FROST, secp256k1: secp256k1_FROST as FROST, bip340: schnorr_FROST as FROST };

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function time(fn: () => unknown | Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

export async function benchErs(): Promise<void> {
  const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');
  console.log(`\nemergency recovery proof per share (${N} runs each, median; ${cpus().length} cores, Node ${process.version}; load average ${load()})`);
  console.log('| curve | RSA | prove | first prover, same run | verify | recover (1 decryption) | size per share | prototype (secp256k1, RSA-3072) |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const bits of [3072, 4096]) {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: bits });
    const rsa = ersPublicKeyFromKeyObject(publicKey, 'bench key');
    for (const curve of ['secp256k1', 'bip340', 'ed25519'] as const) {
      const d = FROSTS[curve].trustedDealer({ min: 2, max: 3 });
      const id = Object.keys(d.secretShares)[0]!;
      const input = { curve, label: 'bench', groupKey: d.public.commitments[0]!, identifier: id, share: d.secretShares[id]!.signingShare, verifyingShare: d.public.verifyingShares[id]!, rsa };
      provePart(input); // warm-up (precomputed tables)
      if (!verifyPartProof(provePartReference(input), rsa)) throw new Error('reference part does not verify');
      const prove: number[] = [];
      const reference: number[] = [];
      const verify: number[] = [];
      const recover: number[] = [];
      let size = 0;
      const parts: ReturnType<typeof provePart>[] = [];
      for (let i = 0; i < N; i++) {
        let part = provePart(input);
        reference.push(await time(() => provePartReference(input)));
        prove.push(await time(() => (part = provePart(input))));
        parts.push(part);
        recover.push(
          await time(async () => {
            if (!(await recoverShare(part, async (c) => oaepDecrypt(privateKey, c)))) throw new Error('bench part does not recover');
          }),
        );
        size = encodePart(part).length;
      }
      // A verifier checks a package's parts one after another (`ers verify`): timed in its own phase,
      // not between proofs, whose tables would evict its own from the caches.
      for (const part of parts) {
        verify.push(
          await time(() => {
            if (!verifyPartProof(part, rsa)) throw new Error('bench part does not verify');
          }),
        );
      }
      const p = median(prove);
      const r = median(reference);
      const v = median(verify);
      const proto = curve === 'secp256k1' && bits === 3072 ? `prove ${PROTOTYPE.prove} ms (${(p / PROTOTYPE.prove).toFixed(2)}x), verify ${PROTOTYPE.verify} ms (${(v / PROTOTYPE.verify).toFixed(2)}x), ${PROTOTYPE.kb} KB (${(size / 1000 / PROTOTYPE.kb).toFixed(2)}x)` : '';
      console.log(`| ${curve} | ${bits} | ${p.toFixed(1)} ms | ${r.toFixed(1)} ms (${(p / r).toFixed(2)}x) | ${v.toFixed(1)} ms | ${median(recover).toFixed(1)} ms | ${(size / 1000).toFixed(1)} KB | ${proto} |`);
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchErs();
