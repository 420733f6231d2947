/**
 * RFC 9591 Appendix E known answers for FROST(Ed25519, SHA-512) (E.1) and FROST(secp256k1, SHA-256)
 * (E.5), transcribed in test/data/rfc9591: the dealer polynomial, the participant shares, the round-one
 * nonces (noble takes the RFC's nonce randomness through its rng argument), our signShare and
 * aggregate, and the final signature under outside verifiers: RFC 8032 for Ed25519, and for secp256k1
 * the RFC 9591 section 6.5 equation computed here with plain point arithmetic.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ed25519 } from '@noble/curves/ed25519.js';
import { secp256k1, secp256k1_hasher } from '@noble/curves/secp256k1.js';
import {
  aggregate,
  encodeFrostPublic,
  type FrostCurve,
  type FrostPublic,
  identifierOf,
  type KeyShare,
  parseFrostPublic,
  signShare,
  type SigningNonces,
  suite,
  verifyShareAgainstPublic,
  verifySignature,
} from '../src/keynode/frost/index.js';
import { concatBytes, fromHex, toHex } from '../src/util/bytes.js';

interface Vector {
  max_participants: number;
  min_participants: number;
  participant_list: number[];
  group_secret_key: string;
  group_public_key: string;
  message: string;
  share_polynomial_coefficients: string[];
  participant_shares: Record<string, string>;
  round_one: Record<string, Record<string, string>>;
  sig_shares: Record<string, string>;
  sig: string;
}

const load = (name: string): Vector => JSON.parse(readFileSync(new URL(`./data/rfc9591/${name}`, import.meta.url), 'utf8')) as Vector;
const h = (s: string): Uint8Array => fromHex(s, 'vector');

/** RFC 9591 section 6.5 verification with plain secp256k1 arithmetic: z*G == R + H2(R || PK || msg)*PK. */
function verifySecp256k1Rfc9591(sig: Uint8Array, msg: Uint8Array, pk: Uint8Array): boolean {
  const R = secp256k1.Point.fromBytes(sig.subarray(0, 33));
  const z = BigInt(`0x${toHex(sig.subarray(33))}`);
  const PK = secp256k1.Point.fromBytes(pk);
  const c = secp256k1_hasher.hashToScalar(concatBytes(sig.subarray(0, 33), pk, msg), { DST: 'FROST-secp256k1-SHA256-v1chal' });
  return secp256k1.Point.BASE.multiply(z).equals(R.add(PK.multiply(c)));
}

const baseMul = (curve: FrostCurve, n: bigint): Uint8Array => (curve === 'ed25519' ? ed25519.Point.BASE.multiply(n).toBytes() : secp256k1.Point.BASE.multiply(n).toBytes());

for (const [curve, file] of [
  ['ed25519', 'frost-ed25519-sha512.json'],
  ['secp256k1', 'frost-secp256k1-sha256.json'],
] as const satisfies readonly (readonly [FrostCurve, string])[]) {
  const v = load(file);
  const frost = suite(curve);
  const Fn = frost.utils.Fn;
  const signers = { min: v.min_participants, max: v.max_participants };
  const msg = h(v.message);

  // The dealer of RFC 9591 Appendix C with the vector's coefficients: commitments and shares f(i).
  const coeffs = v.share_polynomial_coefficients.map((c) => Fn.fromBytes(h(c)));
  const poly = frost.utils.generateSecretPolynomial(signers, h(v.group_secret_key), coeffs);
  const ids = Array.from({ length: v.max_participants }, (_, i) => i + 1);
  const shareOf = (i: number): Uint8Array => Fn.toBytes(poly.coefficients.reduceRight((acc, c) => Fn.add(Fn.mul(acc, BigInt(i)), c), Fn.ZERO));
  const pub: FrostPublic = {
    signers,
    commitments: poly.commitment.map((c) => c.slice()),
    verifyingShares: Object.fromEntries(ids.map((i) => [identifierOf(curve, i), baseMul(curve, Fn.fromBytes(h(v.participant_shares[i]!)))])),
  };
  const key = (i: number): KeyShare => ({ keyId: 'rfc9591', curve, identifier: identifierOf(curve, i), share: h(v.participant_shares[i]!), public: pub });

  test(`${curve}: RFC 9591 dealer polynomial gives the vector's group key and participant shares`, () => {
    assert.equal(toHex(poly.commitment[0]!), v.group_public_key);
    for (const i of ids) assert.equal(toHex(shareOf(i)), v.participant_shares[i], `share of participant ${i}`);
    const parsed = parseFrostPublic(encodeFrostPublic(curve, pub), { curve });
    assert.deepEqual(parsed.public, pub);
    for (const i of ids) {
      verifyShareAgainstPublic(key(i));
      frost.validateSecret({ identifier: identifierOf(curve, i), signingShare: h(v.participant_shares[i]!) }, pub);
    }
  });

  test(`${curve}: RFC 9591 round one, round two and aggregation give the vector's shares and signature`, () => {
    const nonces: SigningNonces[] = [];
    for (const i of v.participant_list) {
      const r = v.round_one[i]!;
      const randomness = [h(r.hiding_nonce_randomness!), h(r.binding_nonce_randomness!)];
      const out = frost.commit({ identifier: identifierOf(curve, i), signingShare: key(i).share }, () => randomness.shift()! as Uint8Array<ArrayBuffer>);
      assert.equal(toHex(out.nonces.hiding), r.hiding_nonce);
      assert.equal(toHex(out.nonces.binding), r.binding_nonce);
      assert.equal(toHex(out.commitments.hiding), r.hiding_nonce_commitment);
      assert.equal(toHex(out.commitments.binding), r.binding_nonce_commitment);
      nonces.push({ keyId: 'rfc9591', curve, identifier: identifierOf(curve, i), hiding: out.nonces.hiding, binding: out.nonces.binding, commitments: out.commitments });
    }
    const list = nonces.map((n) => n.commitments);
    const shares = v.participant_list.map((i, j) => signShare(key(i), nonces[j]!, list, msg));
    v.participant_list.forEach((i, j) => assert.equal(toHex(shares[j]!.share), v.sig_shares[i], `signature share of participant ${i}`));
    const sig = aggregate(curve, pub, list, msg, shares);
    assert.equal(toHex(sig), v.sig);
    assert.ok(verifySignature(curve, sig, msg, h(v.group_public_key)));
    if (curve === 'ed25519') assert.ok(ed25519.verify(sig, msg, h(v.group_public_key)), 'RFC 8032 verifier accepts it');
    else assert.ok(verifySecp256k1Rfc9591(sig, msg, h(v.group_public_key)), 'RFC 9591 section 6.5 equation holds');
  });

  test(`${curve}: the vector's signature fails under another message or key`, () => {
    const sig = h(v.sig);
    assert.equal(verifySignature(curve, sig, h('74657375'), h(v.group_public_key)), false);
    const other = toHex(pub.verifyingShares[identifierOf(curve, 1)]!);
    assert.equal(verifySignature(curve, sig, msg, h(other)), false);
    if (curve === 'secp256k1') assert.equal(verifySecp256k1Rfc9591(sig, h('74657375'), h(v.group_public_key)), false);
  });
}
