/**
 * The in-process floor of FROST signing, for bench/ to compare the HTTP path with: a 2-of-3 key (made
 * by this module's DKG), then per signature both signers' round one, both round twos and the
 * aggregate, in one process, timed. Not run by the tests.
 */
import { generateBoxKeyPair } from '../../crypto/sealedbox.js';
import { generateSigningKeyPair } from '../../crypto/sign.js';
import { encodePublicIdentity } from '../../identity.js';
import { utf8, wipe } from '../../util/bytes.js';
import { dkgFinish, dkgRound2, dkgStart } from './dkg.js';
import { dkgParticipants, type DkgSelf } from './dkg-messages.js';
import type { KeyShare } from './keyshare.js';
import { aggregate, commit, signShare } from './signing.js';
import type { FrostCurve } from './suite.js';

export interface FrostBenchResult {
  sigsPerSec: number;
  p50ms: number;
  p99ms: number;
}

/**
 * Runs a whole DKG among `count` fresh in-process nodes (default 2-of-3) and returns every node's key
 * share. For benchmarks and tests; throws whatever the DKG throws.
 */
export function inProcessKeys(curve: FrostCurve, opts: { threshold?: number; count?: number; keyId?: string } = {}): KeyShare[] {
  const count = opts.count ?? 3;
  const keyId = opts.keyId ?? 'bench';
  const selves: DkgSelf[] = Array.from({ length: count }, () => ({ signing: generateSigningKeyPair(), box: generateBoxKeyPair() }));
  const participants = dkgParticipants(curve, selves.map((s) => encodePublicIdentity({ signingPublicKey: s.signing.publicKey, boxPublicKey: s.box.publicKey })));
  const starts = selves.map((self) => dkgStart({ sessionId: `in-process-${curve}`, curve, threshold: opts.threshold ?? 2, participants, self }));
  const r1 = starts.map((s) => s.round1Message);
  const r2 = starts.map((s, i) => dkgRound2(s.state, r1, selves[i]!));
  const all = r2.flatMap((r) => r.round2Messages);
  return r2.map((r, i) => {
    const res = dkgFinish(r.state, all.filter((m) => m.recipient === r.state.identifier), selves[i]!);
    return { keyId, curve, identifier: res.identifier, share: res.share, public: res.public };
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * One whole signature in one process, the floor's unit: both signers' round one, both round twos and
 * the aggregate (which verifies it). Throws only if signing itself fails.
 */
export function signInProcess(signers: KeyShare[], message: Uint8Array): Uint8Array {
  const round1 = signers.map((k) => commit(k));
  const list = round1.map((r) => r.commitments);
  const shares = signers.map((k, j) => signShare(k, round1[j]!.nonces, list, message));
  return aggregate(signers[0]!.curve, signers[0]!.public, list, message, shares);
}

/**
 * Signs `iterations` messages (after `warmup` untimed ones) with two of three shares and returns the
 * rate and the p50/p99 latency of one whole signature. Throws only if signing itself fails.
 */
export async function benchFrostInProcess(curve: FrostCurve, opts: { iterations?: number; warmup?: number } = {}): Promise<FrostBenchResult> {
  const iterations = opts.iterations ?? 200;
  const warmup = opts.warmup ?? 20;
  const keys = inProcessKeys(curve);
  const signers = keys.slice(0, 2);
  const times: number[] = [];
  for (let i = 0; i < warmup + iterations; i++) {
    const message = utf8.encode(`lifeboat frost bench ${i}`);
    const t0 = performance.now();
    signInProcess(signers, message);
    const dt = performance.now() - t0;
    if (i >= warmup) times.push(dt);
    if (i % 25 === 24) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  for (const k of keys) wipe(k.share);
  return summarize(times);
}

/** Rate, p50 and p99 of a list of whole-signature times (ms). */
export function summarize(times: number[]): FrostBenchResult {
  const total = times.reduce((a, b) => a + b, 0);
  const sorted = [...times].sort((a, b) => a - b);
  return { sigsPerSec: (1000 * sorted.length) / total, p50ms: percentile(sorted, 50), p99ms: percentile(sorted, 99) };
}
