/**
 * Building and checking a package from public data only (docs/ers.md): every proof, at least t
 * distinct participants, verifying shares that interpolate to the group key (Lagrange in the
 * exponent), the label and the RSA key. The report says what failed, by participant.
 */
import { ctEqual } from '../util/bytes.js';
import { LifeboatError } from '../errors.js';
import { decodePoint, describeIdentifier, frostGroupPublicKey, type FrostCurve, type FrostPublic, hex, parseFrostPublic, parseIdentifier } from '../keynode/frost/index.js';
import { type ErsPackage, type ErsPart } from './format.js';
import { groupOf, lagrangeAtZero, type Pt } from './group.js';
import { verifyPartProof } from './proof.js';
import { describeFingerprint, type ErsPublicKey } from './rsa.js';

/** One failed check: a stable code (the CLI's err_type) and a lowercase message. */
export interface Problem {
  code: string;
  message: string;
}

export interface PackageReport {
  ok: boolean;
  curve: FrostCurve;
  label: string;
  threshold: number;
  max_signers: number;
  group_key: string;
  rsa_fingerprint: string;
  /** proof_ok null: not checked, the package is encrypted to another RSA key than the one given. */
  parts: { identifier: string; participant: string; proof_ok: boolean | null }[];
  problems: Problem[];
}

/** Codes that make a failed verify a refusal for safety (exit 3): the package lies about the key. */
export const SAFETY_PROBLEMS = new Set(['ers_proof_invalid', 'ers_group_key_mismatch', 'ers_interpolation_failed']);

/**
 * Checks a package against the group key and RSA key the caller trusts (and the label when given).
 * Never throws on a bad package: every failure is a problem in the report; `ok` only when the
 * package will recover the key.
 */
export function verifyPackage(pkg: ErsPackage, expect: { groupKey: Uint8Array; rsa: ErsPublicKey; label?: string }): PackageReport {
  const problems: Problem[] = [];
  const add = (code: string, message: string) => problems.push({ code, message });
  let pub: FrostPublic | undefined;
  try {
    pub = parseFrostPublic(pkg.publicPackage, { curve: pkg.curve }).public;
  } catch (err) {
    add('ers_group_key_mismatch', `the package's public key package is invalid: ${(err as Error).message}`);
  }
  const report: PackageReport = {
    ok: false,
    curve: pkg.curve,
    label: pkg.label,
    threshold: pub?.signers.min ?? 0,
    max_signers: pub?.signers.max ?? 0,
    group_key: pub ? hex(frostGroupPublicKey(pkg.curve, pub)) : '',
    rsa_fingerprint: describeFingerprint(expect.rsa.fingerprint),
    parts: [],
    problems,
  };
  if (pub && !ctEqual(frostGroupPublicKey(pkg.curve, pub), expect.groupKey)) add('ers_group_key_mismatch', `the package is for group key ${report.group_key}, not the one given`);
  // Proofs made for another RSA key say nothing to a caller who trusts this one: that is named once,
  // and no proof is called failed for it.
  const rsaMatches = ctEqual(pkg.spki, expect.rsa.spki);
  if (!rsaMatches) add('ers_key_mismatch', `the package is encrypted to another RSA key than the one given (its parts' proofs were not checked)`);
  if (expect.label !== undefined && pkg.label !== expect.label) add('ers_label_mismatch', `the package's label is ${JSON.stringify(pkg.label)}, not ${JSON.stringify(expect.label)}`);
  const c0 = pub?.commitments[0];
  for (const part of pkg.parts) {
    const who = describeIdentifier(pkg.curve, part.identifier);
    const proofOk = rsaMatches ? verifyPartProof(part, expect.rsa) : null;
    report.parts.push({ identifier: part.identifier, participant: who, proof_ok: proofOk });
    if (part.label !== pkg.label) add('ers_label_mismatch', `the part of ${who} is bound to another label than the package`);
    if (c0 && !ctEqual(part.groupKey, c0)) add('ers_group_key_mismatch', `the part of ${who} is bound to another group key`);
    if (rsaMatches && !ctEqual(part.rsaFingerprint, expect.rsa.fingerprint)) add('ers_key_mismatch', `the part of ${who} is encrypted to another RSA key`);
    const vs = pub?.verifyingShares[part.identifier];
    if (pub && !(vs && ctEqual(vs, part.verifyingShare))) add('ers_group_key_mismatch', `the part of ${who} names a verifying share the key's public package does not have`);
    if (proofOk === false) add('ers_proof_invalid', `the proof of ${who} does not verify: its ciphertexts may not hold its share`);
  }
  if (pub && rsaMatches) {
    const t = pub.signers.min;
    const good = pkg.parts.filter((p, i) => report.parts[i]!.proof_ok);
    if (good.length < t) add('ers_insufficient_parts', `${good.length} participant(s) with a valid proof; the key needs ${t}`);
    // Against the package's own group key: a package for another key than the caller's is named once,
    // above, not also as a package whose shares are not its key's.
    else if (!interpolates(pkg.curve, good, pub)) add('ers_interpolation_failed', 'the parts\u2019 verifying shares do not interpolate to the group key');
  }
  report.ok = problems.length === 0;
  return report;
}

/**
 * Lagrange in the exponent: the first t parts' verifying shares interpolate at 0 to commitment 0 (the
 * group key), and every further part's lies on the same polynomial.
 */
function interpolates(curve: FrostCurve, parts: ErsPart[], pub: FrostPublic): boolean {
  try {
    const g = groupOf(curve);
    const t = pub.signers.min;
    const xs = parts.map((p) => parseIdentifier(curve, p.identifier));
    const pts = parts.map((p) => decodePoint(curve, p.verifyingShare, 'verifying share') as unknown as Pt);
    const base = xs.slice(0, t);
    const at = (x: bigint): Pt => {
      let acc = g.ZERO;
      base.forEach((xi, i) => {
        // Lagrange coefficient of xi evaluated at x: shift the set so the target is 0.
        const shifted = base.map((xj) => (((xj - x) % g.order) + g.order) % g.order);
        const l = x === 0n ? lagrangeAtZero(xi, base, g.order) : lagrangeAtZero(shifted[i]!, shifted, g.order);
        acc = acc.add(pts[i]!.multiplyUnsafe(l));
      });
      return acc;
    };
    if (!ctEqual(at(0n).toBytes(), pub.commitments[0]!)) return false;
    for (let i = t; i < parts.length; i++) if (!at(xs[i]!).equals(pts[i]!)) return false;
    return true;
  } catch {
    return false;
  }
}

/** The first problem as a typed error (safety codes exit 3). */
export function reportError(report: PackageReport): LifeboatError {
  const p = report.problems[0]!;
  const hint =
    p.code === 'ers_insufficient_parts'
      ? 'make a new package with `lifeboat ers backup` while the nodes are up'
      : p.code === 'ers_proof_invalid'
        ? 'a node encrypted something else than its share, or the package was altered: do not rely on it; make a new one and investigate that node'
        : undefined;
  return new LifeboatError(p.code, p.message, { hint, safety: SAFETY_PROBLEMS.has(p.code) });
}
