/**
 * ERS core (src/ers): the OAEP encoding against node's standard decryption, prove/verify on every
 * curve, tampering, cheating provers (every one of many random cheats caught), package verification
 * (short of t, interpolation, label, RSA key), recovery (right and wrong RSA key), the RSA key rules,
 * and the byte formats' negative vectors (docs/ers.md).
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { constants, generateKeyPairSync, privateDecrypt, randomBytes, type KeyObject } from 'node:crypto';
import { ed25519, ed25519_FROST } from '@noble/curves/ed25519.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { schnorr_FROST, secp256k1_FROST } from '@noble/curves/secp256k1.js';
import type { FROST } from '@noble/curves/abstract/frost.js';
import { encodeFrostPublic, type FrostCurve, verifySignature } from '../src/keynode/frost/index.js';
import { emeOaepEncode, oaepEncryptWithSeed } from '../src/ers/oaep.js';
import { ersPublicKeyFromKeyObject, type ErsPublicKey, generateErsKeyPair, oaepDecrypt, parseErsPrivateKey, parseErsPublicKey } from '../src/ers/rsa.js';
import { encodePackage, encodePart, encodePartContext, type ErsPackage, type ErsPart, parsePackage, parsePart, ROWS, WIDTH } from '../src/ers/format.js';
import { challengeOf, closedIndices, copathOf, leafSeed, leafValue, provePart, rowLeaves, verifyPartProof } from '../src/ers/proof.js';
import { groupOf } from '../src/ers/group.js';
import { verifyPackage } from '../src/ers/package.js';
import { keyForms, recoverKey, signWithRecovered } from '../src/ers/recover.js';
import { isLifeboatError } from '../src/errors.js';

const FROSTS: Record<FrostCurve, FROST> = { ed25519: ed25519_FROST as FROST, secp256k1: secp256k1_FROST as FROST, bip340: schnorr_FROST as FROST };

let rsa: ErsPublicKey;
let priv: KeyObject;
let other: ErsPublicKey;
let otherPriv: KeyObject;

before(() => {
  const a = generateKeyPairSync('rsa', { modulusLength: 3072 });
  rsa = ersPublicKeyFromKeyObject(a.publicKey, 'test key');
  priv = a.privateKey;
  const b = generateKeyPairSync('rsa', { modulusLength: 3072 });
  other = ersPublicKeyFromKeyObject(b.publicKey, 'other key');
  otherPriv = b.privateKey;
});

/** A t-of-n dealer key and an honest package of the given participants' parts. */
function dealt(curve: FrostCurve, t = 2, n = 3, label = 'customer 42') {
  const d = FROSTS[curve].trustedDealer({ min: t, max: n });
  const ids = Object.keys(d.secretShares).sort();
  const pub = { signers: { min: t, max: n }, commitments: d.public.commitments, verifyingShares: d.public.verifyingShares };
  const part = (id: string, opts: { label?: string; share?: Uint8Array; key?: ErsPublicKey } = {}): ErsPart =>
    provePart({ curve, label: opts.label ?? label, groupKey: pub.commitments[0]!, identifier: id, share: opts.share ?? d.secretShares[id]!.signingShare, verifyingShare: pub.verifyingShares[id]!, rsa: opts.key ?? rsa });
  const pkg = (parts: ErsPart[], key = rsa): ErsPackage => ({ curve, label, spki: key.spki, publicPackage: encodeFrostPublic(curve, pub), parts });
  const groupKey = curve === 'bip340' ? pub.commitments[0]!.slice(1) : pub.commitments[0]!;
  return { d, ids, pub, part, pkg, groupKey, label };
}

const privDecrypt = (k: KeyObject) => async (c: Uint8Array) => oaepDecrypt(k, c);

describe('EME-OAEP from a chosen seed with raw RSA (RFC 8017 7.1.1)', () => {
  it('decrypts with the standard RSA-OAEP-SHA256 decryption, and is deterministic in (message, seed)', () => {
    for (let i = 0; i < 20; i++) {
      const m = randomBytes(32);
      const seed = randomBytes(32);
      const c = oaepEncryptWithSeed(rsa.key, rsa.k, m, seed);
      assert.equal(c.length, 384);
      const back = privateDecrypt({ key: priv, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, c);
      assert.deepEqual(new Uint8Array(back), new Uint8Array(m));
      assert.deepEqual(oaepEncryptWithSeed(rsa.key, rsa.k, m, seed), c);
    }
    assert.throws(() => emeOaepEncode(new Uint8Array(400), new Uint8Array(32), 384), /too long/);
  });
});

describe('prove and verify one share', () => {
  for (const curve of ['ed25519', 'secp256k1', 'bip340'] as const) {
    it(`${curve}: an honest part verifies, round-trips through its bytes, and the closed ciphertexts decrypt to shares that add up`, () => {
      const k = dealt(curve);
      const p = k.part(k.ids[0]!);
      assert.equal(verifyPartProof(p, rsa), true);
      const bytes = encodePart(p);
      assert.equal(bytes.length, 4 + 1 + encodePartContext(p).length + 32 + ROWS * (384 + 32 + 64));
      assert.deepEqual(encodePart(parsePart(bytes)), bytes);
      assert.equal(verifyPartProof(parsePart(bytes), rsa), true);
      assert.equal(verifyPartProof(p, other), false, 'another RSA key');
    });
  }

  it('the base multiplications (the prover\'s constant-time 10-bit windows; the verifier\'s variable-time ones for public scalars) are noble\'s n*G for edge and random scalars', () => {
    for (const curve of ['ed25519', 'secp256k1'] as const) {
      const g = groupOf(curve);
      const edges = [0n, 1n, 2n, g.order - 1n, g.order - 2n, (1n << 252n) + 1n, (1n << 10n) - 1n, 1n << 10n, 511n, 512n, 513n, 1536n, (1n << 20n) - 1n, (1n << 255n) % g.order];
      const random = Array.from({ length: 40 }, () => BigInt(`0x${randomBytes(40).toString('hex')}`) % g.order);
      const ns = [...edges, ...random];
      const secret = g.encodeAll(ns.map((n) => g.mulBaseSecret(n)));
      const pub = g.encodeAll(ns.map((n) => g.mulBasePublic(n)));
      const want = g.encodeAll(ns.map((n) => (n === 0n ? g.ZERO : g.BASE.multiply(n))));
      assert.deepEqual(secret, want, `${curve}: mulBaseSecret`);
      assert.deepEqual(pub, want, `${curve}: mulBasePublic`);
    }
  });

  it('refuses to encrypt a share that is not behind the verifying share (share_mismatch)', () => {
    const k = dealt('secp256k1');
    assert.throws(() => k.part(k.ids[0]!, { share: k.d.secretShares[k.ids[1]!]!.signingShare }), (e) => isLifeboatError(e, 'share_mismatch'));
  });

  it('a tampered ciphertext, Δ, co-path or challenge, or a proof moved to another label or group key, fails', () => {
    const k = dealt('secp256k1');
    const p = k.part(k.ids[0]!);
    const flip = (b: Uint8Array, i = 7) => {
      const c = b.slice();
      c[i]! ^= 1;
      return c;
    };
    const cases: [string, ErsPart][] = [
      ['ciphertext', { ...p, rows: p.rows.map((r, j) => (j === 5 ? { ...r, closed: flip(r.closed, 100) } : r)) }],
      ['delta', { ...p, rows: p.rows.map((r, j) => (j === 9 ? { ...r, delta: flip(r.delta, 31) } : r)) }],
      ['co-path', { ...p, rows: p.rows.map((r, j) => (j === 63 ? { ...r, copath: [r.copath[0]!, flip(r.copath[1]!)] } : r)) }],
      ['challenge', { ...p, challenge: flip(p.challenge, 31) }],
      ['label', { ...p, label: 'someone else' }],
      ['group key', { ...p, groupKey: k.pub.verifyingShares[k.ids[1]!]! }],
      ['verifying share', { ...p, verifyingShare: k.pub.verifyingShares[k.ids[1]!]! }],
      ['identifier', { ...p, identifier: k.ids[1]! }],
    ];
    for (const [what, bad] of cases) assert.equal(verifyPartProof(bad, rsa), false, what);
  });
});

/**
 * A cheating prover built from the exported blocks: per row it corrupts the plaintext of one or more
 * leaves (or encrypts a wrong share outright), keeps the commitments honest, and otherwise follows the
 * protocol, grinding `tries` challenges. It passes only if every corrupted row's closed leaf is the
 * corrupted one: 4^-64 per try.
 */
function cheat(curve: FrostCurve, k: ReturnType<typeof dealt>, id: string, rng: () => number, tries: number): { part: ErsPart; recoverable: boolean }[] {
  const g = groupOf(curve);
  const x = g.decodeScalar(k.d.secretShares[id]!.signingShare, 'x');
  const X = g.fromBytes(k.pub.verifyingShares[id]!);
  const meta = { curve, label: k.label, groupKey: k.pub.commitments[0]!, rsaFingerprint: rsa.fingerprint, identifier: id, verifyingShare: k.pub.verifyingShares[id]!, k: rsa.k };
  const out: { part: ErsPart; recoverable: boolean }[] = [];
  const mode = Math.floor(rng() * 3); // 0: one bad leaf per row, 1: two bad leaves, 2: a wrong share everywhere
  for (let t = 0; t < tries; t++) {
    const roots: Uint8Array[] = [];
    const rows = [];
    const points = [];
    for (let j = 0; j < ROWS; j++) {
      const root = randomBytes(32);
      roots.push(root);
      const leaves = rowLeaves(root);
      const v = leaves.map((l) => leafValue(g, l));
      const target = mode === 2 ? (x + 1n) % g.order : x;
      const delta = (((target - v[0]! - v[1]! - v[2]! - v[3]!) % g.order) + 3n * g.order) % g.order;
      const s = [v[0]!, v[1]!, v[2]!, (v[3]! + delta) % g.order];
      const bad = new Set<number>([Math.floor(rng() * WIDTH)]);
      if (mode === 1) bad.add(Math.floor(rng() * WIDTH));
      const plain = s.map((si, i) => (mode !== 2 && bad.has(i) ? (si + 1n + BigInt(Math.floor(rng() * 1000))) % g.order : si));
      const ciphertexts = plain.map((si, i) => oaepEncryptWithSeed(rsa.key, rsa.k, g.encodeScalar(si), leafSeed(leaves[i]!)));
      // Honest commitments to the honest s_i (summing to X), whatever was encrypted.
      const a = [0, 1, 2].map((i) => g.BASE.multiply(s[i]!));
      points.push(...a, X.subtract(a[0]!).subtract(a[1]!).subtract(a[2]!));
      rows.push({ ciphertexts, delta: g.encodeScalar(delta) });
    }
    const enc = g.encodeAll(points);
    const transcripts = rows.map((r, j) => ({ ...r, commitments: enc.slice(4 * j, 4 * j + 4) }));
    const challenge = challengeOf(encodePartContext(meta), transcripts);
    const closed = closedIndices(challenge);
    const part: ErsPart = { ...meta, challenge, rows: rows.map((r, j) => ({ closed: r.ciphertexts[closed[j]!]!, delta: r.delta, copath: copathOf(roots[j]!, closed[j]!) })) };
    out.push({ part, recoverable: false });
  }
  return out;
}

describe('cheating provers', () => {
  it('every one of many random cheats (a wrong share, one or two corrupted leaves per row) is caught by verify', () => {
    let seed = 0x1234567;
    const rng = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
    const runs = process.env.SLOW ? 60 : 12;
    let caught = 0;
    for (let r = 0; r < runs; r++) {
      const curve = (['ed25519', 'secp256k1', 'bip340'] as const)[r % 3]!;
      const k = dealt(curve);
      for (const { part } of cheat(curve, k, k.ids[r % 3]!, rng, 2)) {
        assert.equal(verifyPartProof(part, rsa), false, `cheat ${r} on ${curve} passed`);
        caught++;
      }
    }
    assert.equal(caught, runs * 2);
  });

  it('a package whose only part for a participant is a cheat does not verify and does not recover that share', async () => {
    const k = dealt('secp256k1');
    const [bad] = cheat('secp256k1', k, k.ids[1]!, () => 0.99, 1);
    const pkg = k.pkg([k.part(k.ids[0]!), bad!.part]);
    const report = verifyPackage(pkg, { groupKey: k.groupKey, rsa });
    assert.equal(report.ok, false);
    assert.ok(report.problems.some((p) => p.code === 'ers_proof_invalid'));
    assert.ok(report.problems.some((p) => p.code === 'ers_insufficient_parts'));
  });
});

describe('package verify and recover', () => {
  for (const curve of ['ed25519', 'secp256k1', 'bip340'] as const) {
    it(`${curve}: a 2-of-3 package verifies, recovers the group key's secret, and signs what a plain verifier accepts`, async () => {
      const k = dealt(curve);
      const pkg = parsePackage(encodePackage(k.pkg(k.ids.map((id) => k.part(id)))));
      const report = verifyPackage(pkg, { groupKey: k.groupKey, rsa, label: k.label });
      assert.deepEqual(report.problems, []);
      assert.equal(report.ok, true);
      const key = await recoverKey(pkg, privDecrypt(priv));
      const expected = FROSTS[curve].combineSecret(k.ids.slice(0, 2).map((id) => k.d.secretShares[id]!), { min: 2, max: 3 });
      assert.deepEqual(key.secret, expected);
      assert.deepEqual(key.groupPublicKey, k.groupKey);
      const msg = new TextEncoder().encode('the company is gone');
      assert.equal(verifySignature(curve, signWithRecovered(key, msg), msg, k.groupKey), true);
      const forms = keyForms(key);
      if (curve === 'ed25519') {
        // RFC 8032 5.1.6 signing from the expanded key as it is (scalar ‖ prefix, no hashing or clamping)
        const ex = Buffer.from(forms.expanded_secret_key_hex!, 'hex');
        const L = ed25519.Point.Fn.ORDER;
        const le = (b: Uint8Array) => BigInt(`0x${Buffer.from(b).reverse().toString('hex')}`);
        const a = le(ex.subarray(0, 32));
        const r = le(sha512(new Uint8Array([...ex.subarray(32), ...msg]))) % L;
        const R = ed25519.Point.BASE.multiply(r).toBytes();
        const k = le(sha512(new Uint8Array([...R, ...key.groupPublicKey, ...msg]))) % L;
        const S = Buffer.from(((r + k * a) % L).toString(16).padStart(64, '0'), 'hex').reverse();
        assert.equal(ed25519.verify(new Uint8Array([...R, ...S]), msg, key.groupPublicKey), true, 'the expanded key signs as RFC 8032');
      }
      else assert.match(forms.wif!, /^[KL][1-9A-HJ-NP-Za-km-z]{51}$/);
    });
  }

  it('a package short of t parts, for another label, group key or RSA key, fails by name', () => {
    const k = dealt('ed25519', 3, 4);
    const two = k.pkg([k.part(k.ids[0]!), k.part(k.ids[1]!)]);
    const codes = (r: ReturnType<typeof verifyPackage>) => r.problems.map((p) => p.code);
    assert.deepEqual(codes(verifyPackage(two, { groupKey: k.groupKey, rsa })), ['ers_insufficient_parts']);
    const full = k.pkg([k.part(k.ids[0]!), k.part(k.ids[1]!), k.part(k.ids[2]!)]);
    assert.equal(verifyPackage(full, { groupKey: k.groupKey, rsa }).ok, true);
    assert.ok(codes(verifyPackage(full, { groupKey: k.groupKey, rsa, label: 'other' })).includes('ers_label_mismatch'));
    // named once: the package's shares do interpolate, to its own key (no ers_interpolation_failed besides)
    assert.deepEqual(codes(verifyPackage(full, { groupKey: dealt('ed25519').groupKey, rsa })), ['ers_group_key_mismatch']);
    // another RSA key is named once; proofs made for the package's own key are not called failed
    const otherKey = verifyPackage(full, { groupKey: k.groupKey, rsa: other });
    assert.deepEqual(codes(otherKey), ['ers_key_mismatch']);
    assert.deepEqual(otherKey.parts.map((p) => p.proof_ok), [null, null, null]);
    // a part made for another label inside this package
    const mixed = k.pkg([k.part(k.ids[0]!), k.part(k.ids[1]!), k.part(k.ids[2]!, { label: 'elsewhere' })]);
    assert.ok(codes(verifyPackage(mixed, { groupKey: k.groupKey, rsa })).includes('ers_label_mismatch'));
  });

  it('the wrong RSA private key recovers nothing (decryption_failed), and never a wrong key', async () => {
    const k = dealt('secp256k1');
    const pkg = k.pkg(k.ids.map((id) => k.part(id)));
    await assert.rejects(recoverKey(pkg, privDecrypt(otherPriv)), (e) => isLifeboatError(e, 'decryption_failed'));
  });
});

describe('RSA keys', () => {
  it('keygen writes PKCS#8 and SPKI that parse back with the same fingerprint; a passphrase is needed and checked', () => {
    const kp = generateErsKeyPair(3072, 'correct horse');
    assert.match(kp.privatePem, /BEGIN ENCRYPTED PRIVATE KEY/);
    const pub = parseErsPublicKey(kp.publicPem);
    assert.deepEqual(pub.fingerprint, kp.public.fingerprint);
    assert.equal(pub.bits, 3072);
    const enc = new TextEncoder();
    assert.throws(() => parseErsPrivateKey(enc.encode(kp.privatePem)), (e) => isLifeboatError(e, 'passphrase_required'));
    assert.throws(() => parseErsPrivateKey(enc.encode(kp.privatePem), 'wrong'), (e) => isLifeboatError(e, 'wrong_passphrase'));
    assert.deepEqual(parseErsPrivateKey(enc.encode(kp.privatePem), 'correct horse').public.fingerprint, pub.fingerprint);
  });

  it('a key under 3072 bits is refused (rsa_key_too_small), and malformed PEM is invalid_pem', () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = small.publicKey.export({ type: 'spki', format: 'pem' }) as string;
    assert.throws(() => parseErsPublicKey(pem), (e) => isLifeboatError(e, 'rsa_key_too_small'));
    assert.throws(() => generateErsKeyPair(2048), (e) => isLifeboatError(e, 'rsa_key_too_small'));
    assert.throws(() => parseErsPublicKey('-----BEGIN PUBLIC KEY-----\nnot base64 at all\n-----END PUBLIC KEY-----\n'), (e) => isLifeboatError(e, 'invalid_pem'));
    assert.throws(() => parseErsPublicKey(pem.replace(/A/g, 'B')), (e) => isLifeboatError(e, 'invalid_pem') || isLifeboatError(e, 'invalid_rsa_key'));
    assert.throws(() => parseErsPrivateKey(new TextEncoder().encode('hello')), (e) => isLifeboatError(e, 'invalid_pem'));
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
    assert.throws(() => parseErsPublicKey(ec), (e) => isLifeboatError(e, 'invalid_rsa_key'));
  });
});

describe('bytes: negative vectors (docs/ers.md)', () => {
  it('bad magic, version, truncation, trailing bytes, rows, Δ and duplicate parts are refused by name', () => {
    const k = dealt('ed25519');
    const a = k.part(k.ids[0]!);
    const pkgBytes = encodePackage(k.pkg([a, k.part(k.ids[1]!)]));
    const partBytes = encodePart(a);
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return isLifeboatError(e) ? e.code : 'other';
      }
      return 'none';
    };
    const with_ = (b: Uint8Array, i: number, v: number) => {
      const c = b.slice();
      c[i] = v;
      return c;
    };
    assert.equal(code(() => parsePackage(with_(pkgBytes, 3, 0x58))), 'bad_magic'); // fail_bad_magic
    assert.equal(code(() => parsePackage(with_(pkgBytes, 4, 2))), 'unsupported_version'); // fail_version_2
    assert.equal(code(() => parsePart(with_(partBytes, 4, 2))), 'unsupported_version');
    for (const n of [1, 5, 100, pkgBytes.length - 1]) assert.equal(code(() => parsePackage(pkgBytes.subarray(0, n))), 'truncated'); // fail_truncated
    assert.equal(code(() => parsePackage(new Uint8Array([...pkgBytes, 0]))), 'malformed'); // fail_trailing
    const rowsAt = 4 + 1 + encodePartContext(a).length - 4;
    assert.equal(code(() => parsePart(with_(partBytes, rowsAt, 63))), 'malformed'); // fail_rows_63
    const deltaAt = 4 + 1 + encodePartContext(a).length + 32 + 384;
    const badDelta = partBytes.slice();
    badDelta.fill(0xff, deltaAt, deltaAt + 32);
    assert.equal(code(() => parsePart(badDelta)), 'malformed'); // fail_delta_not_canonical
    assert.equal(code(() => encodePackage(k.pkg([a, a]))), 'invalid_input');
    // fail_duplicate_part: the same part twice, written by hand
    const single = encodePackage(k.pkg([a]));
    const lenAt = single.length - partBytes.length - 4;
    const dup = new Uint8Array([...single.subarray(0, lenAt - 1), 2, ...single.subarray(lenAt), ...single.subarray(lenAt)]);
    assert.equal(code(() => parsePackage(dup)), 'malformed');
    assert.deepEqual(encodePackage(parsePackage(pkgBytes)), pkgBytes);
  });
});
