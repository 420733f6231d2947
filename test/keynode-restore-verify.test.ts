/**
 * The batch restore check (src/keynode/restore-verify.ts) against the key-at-a-time one: valid keys of
 * the three curves pass in one batch; every kind of bad key (share of another key, verifying share
 * swapped, package, threshold, signer count, group key, torsion on ed25519) is named with the very
 * error checkRestoredKey throws, wherever it sits in a batch, on this thread and in workers; the point
 * decoder accepts exactly what noble accepts. Keys come from noble's trusted dealer (RFC 9591 App. C).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ed25519 } from '@noble/curves/ed25519.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { randomBytes } from '../src/crypto/random.js';
import { isLifeboatError, type LifeboatError } from '../src/errors.js';
import { restoreNodeBackup, voidNoncesAndVerify } from '../src/keynode/backup.js';
import { encodeFrostPublic, type FrostCurve, identifierOf, suite, suiteOf } from '../src/keynode/frost/index.js';
import { parseFrostPublic, type PublicForShare, readCanonicalPublic } from '../src/keynode/frost/public.js';
import { checkRestoredKey, decodePointFast, verifyRestoredKeys } from '../src/keynode/restore-verify.js';
import type { NodeSecrets } from '../src/keynode/secrets.js';
import { dealt, type Material, row, STORAGE_KEY } from './helpers/restore-keys.js';
import { openKeyNodeStore } from '../src/keynode/store/index.js';
import type { KeyRecord } from '../src/keynode/store/types.js';

const CURVES: FrostCurve[] = ['ed25519', 'secp256k1', 'bip340'];

/** `n` valid rows, curves in turn, every fifth 3-of-5, participants in turn. */
function goodRows(n: number, prefix = 'key'): KeyRecord[] {
  return Array.from({ length: n }, (_, i) => {
    const [min, max] = i % 5 === 4 ? [3, 5] : [2, 3];
    return row(`${prefix}_${i}`, dealt(CURVES[i % 3]!, { min, max, me: 1 + (i % max) }));
  });
}

/** The error checkRestoredKey throws for this row (it must throw). */
function perKeyError(r: KeyRecord): LifeboatError {
  try {
    checkRestoredKey(STORAGE_KEY, r);
  } catch (err) {
    return err as LifeboatError;
  }
  assert.fail(`checkRestoredKey accepted ${r.keyId}`);
}

/** verifyRestoredKeys must refuse `rows` with exactly the error checkRestoredKey gives for `bad`. */
async function refusedLike(rows: KeyRecord[], bad: KeyRecord, workers = 0): Promise<void> {
  const expected = perKeyError(bad);
  assert.equal(expected.code, 'share_mismatch');
  await assert.rejects(verifyRestoredKeys(STORAGE_KEY, rows, undefined, { workers }), (err: unknown) => {
    assert.ok(isLifeboatError(err, 'share_mismatch'));
    assert.equal(err.message, expected.message);
    assert.equal(err.hint, expected.hint);
    return true;
  });
}

const negate = (curve: FrostCurve, b: Uint8Array): Uint8Array => (suiteOf(curve).point.fromBytes(b) as unknown as { negate(): { toBytes(): Uint8Array } }).negate().toBytes();

describe('verifyRestoredKeys: valid keys', () => {
  it('passes a batch of all three curves (2-of-3 and 3-of-5), one decode per commitment, one batch', async () => {
    const rows = goodRows(60);
    const seen: [number, number][] = [];
    const stats = await verifyRestoredKeys(STORAGE_KEY, rows, (d, t) => seen.push([d, t]), { workers: 0 });
    assert.deepEqual(stats, { keys: 60, batches: 1, pointsDecoded: rows.reduce((n, r) => n + r.threshold, 0), workers: 0 });
    assert.deepEqual(seen.at(-1), [60, 60]);
    for (const r of rows) checkRestoredKey(STORAGE_KEY, r);
    const inWorkers = await verifyRestoredKeys(STORAGE_KEY, rows, undefined, { workers: 2 });
    assert.deepEqual(inWorkers, { ...stats, batches: 2, workers: 2 });
  });

  it('empty input: nothing checked, progress (0, 0)', async () => {
    const seen: [number, number][] = [];
    assert.deepEqual(await verifyRestoredKeys(STORAGE_KEY, [], (d, t) => seen.push([d, t])), { keys: 0, batches: 0, pointsDecoded: 0, workers: 0 });
    assert.deepEqual(seen, [[0, 0]]);
  });

  it('repeated and opposite points in one batch (doubling and identity inside the sums) and large identifiers', async () => {
    const rows: KeyRecord[] = [];
    for (const curve of CURVES) {
      const m = dealt(curve);
      const order = suiteOf(curve).order;
      const s = suiteOf(curve).scalarLE ? [...m.share].reverse() : [...m.share];
      const n = s.reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
      const negShare = (order - n).toString(16).padStart(64, '0').match(/../g)!.map((h) => parseInt(h, 16));
      const neg: Material = {
        curve,
        identifier: m.identifier,
        share: new Uint8Array(suiteOf(curve).scalarLE ? negShare.reverse() : negShare),
        pub: { signers: m.pub.signers, commitments: m.pub.commitments.map((c) => negate(curve, c)), verifyingShares: Object.fromEntries(Object.entries(m.pub.verifyingShares).map(([id, v]) => [id, negate(curve, v)])) },
      };
      // bip340 rows carry the x-only group key, the same for a point and its opposite.
      for (let i = 0; i < 12; i++) rows.push(row(`${curve}_same_${i}`, m), row(`${curve}_neg_${i}`, neg));
      const ids = [suite(curve).Identifier.derive('node-a'), suite(curve).Identifier.derive('node-b'), suite(curve).Identifier.derive('node-c')];
      rows.push(row(`${curve}_derived_id`, dealt(curve, { identifiers: ids })));
    }
    const stats = await verifyRestoredKeys(STORAGE_KEY, rows, undefined, { workers: 0 });
    assert.equal(stats.keys, rows.length);
    for (const r of rows) checkRestoredKey(STORAGE_KEY, r);
  });
});

describe('verifyRestoredKeys: a bad key among good ones is named as checkRestoredKey names it', () => {
  const good = goodRows(90, 'good');
  const at = (rows: KeyRecord[], i: number, bad: KeyRecord) => [...rows.slice(0, i), bad, ...rows.slice(i)];

  for (const curve of CURVES) {
    it(`${curve}: the share of another key, sealed validly with this key's package (only the batch sees it)`, async () => {
      const m = dealt(curve);
      const bad = row(`bad_${curve}`, { ...m, share: dealt(curve).share });
      for (const i of curve === 'ed25519' ? [0, 37, 90] : [61]) await refusedLike(at(good, i, bad), bad);
    });

    it(`${curve}: its verifying share swapped with another participant's in the sealed package`, async () => {
      const m = dealt(curve, { me: 2 });
      const [id1, id2] = [identifierOf(curve, 1), identifierOf(curve, 2)];
      const vs = { ...m.pub.verifyingShares, [id1]: m.pub.verifyingShares[id2]!, [id2]: m.pub.verifyingShares[id1]! };
      const bad = row(`swapped_${curve}`, { ...m, pub: { ...m.pub, verifyingShares: vs } });
      await refusedLike(at(good, 45, bad), bad);
    });
  }

  const cases: [string, (r: KeyRecord) => void][] = [
    ['package bytes differ from the sealed ones', (r) => (r.publicPackage = encodeFrostPublic(r.curve, dealt(r.curve).pub))],
    ['threshold differs', (r) => (r.threshold = 3)],
    ['signer count differs', (r) => (r.maxSigners = 4)],
    ['group key differs', (r) => (r.groupPublicKey = r.groupPublicKey.map((b, i) => (i === 5 ? b ^ 1 : b)))],
    ['sealed for another key id', (r) => (r.keyId = 'another_key')],
    ['ciphertext altered', (r) => (r.encryptedShare = r.encryptedShare.map((b, i, a) => (i === a.length - 3 ? b ^ 1 : b)))],
  ];
  for (const [name, edit] of cases) {
    it(`row: ${name}`, async () => {
      const bad = row('bad_row', dealt('secp256k1'), { edit });
      await refusedLike(at(good, 50, bad), bad);
    });
  }

  it('a commitment that is not on the curve', async () => {
    const m = dealt('ed25519');
    const notOnCurve = new Uint8Array(32).fill(0);
    notOnCurve[0] = 2; // y = 2: u/v is not a square on edwards25519
    assert.throws(() => ed25519.Point.fromBytes(notOnCurve));
    const bad = row('bad_commitment', { ...m, pub: { ...m.pub, commitments: [m.pub.commitments[0]!, notOnCurve] } });
    await refusedLike(at(good, 10, bad), bad);
  });

  it('ed25519: a key whose commitments and verifying shares carry a torsion point is refused every time', async () => {
    // Adding the point of order 2, (0, -1), to C_0 adds it to every verifying share: the package is
    // consistent, but G·share is not the verifying share. A plain random combination misses it half the time.
    const t2 = ed25519.Point.fromAffine({ x: 0n, y: ed25519.Point.Fp.ORDER - 1n });
    const m = dealt('ed25519');
    const add = (b: Uint8Array) => ed25519.Point.fromBytes(b).add(t2).toBytes();
    const bad = row('torsion', { ...m, pub: { ...m.pub, commitments: [add(m.pub.commitments[0]!), m.pub.commitments[1]!], verifyingShares: Object.fromEntries(Object.entries(m.pub.verifyingShares).map(([id, v]) => [id, add(v)])) } });
    for (let run = 0; run < 8; run++) await refusedLike(at(good, 20, bad), bad);
  });

  it('ed25519: a torsion point of order 8 in the commitments and verifying shares is refused every time', async () => {
    const t8 = ed25519.Point.fromHex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a');
    assert.ok(!t8.multiplyUnsafe(4n).is0() && t8.multiplyUnsafe(8n).is0(), 'a point of order 8');
    const m = dealt('ed25519');
    const add = (b: Uint8Array) => ed25519.Point.fromBytes(b).add(t8).toBytes();
    const bad = row('torsion8', { ...m, pub: { ...m.pub, commitments: [add(m.pub.commitments[0]!), m.pub.commitments[1]!], verifyingShares: Object.fromEntries(Object.entries(m.pub.verifyingShares).map(([id, v]) => [id, add(v)])) } });
    for (let run = 0; run < 8; run++) await refusedLike(at(good, 20, bad), bad);
  });

  it('ed25519: commitments are evaluated with the powers of the identifier mod ℓ, as checkRestoredKey does', async () => {
    // Identifier ℓ - 1, threshold 3: (ℓ-1)^2 is 1 mod ℓ but 0 mod 8, so a torsion point of order 8 added
    // to C_2 changes Σ (id^k mod ℓ)·C_k (checkRestoredKey refuses the key) but not Σ id^k·C_k.
    const L = ed25519.Point.Fn.ORDER;
    const le = (n: bigint) => Buffer.from(n.toString(16).padStart(64, '0'), 'hex').reverse().toString('hex');
    const ids = [le(L - 1n), le(2n), le(3n)];
    const t8 = ed25519.Point.fromHex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a');
    const m = dealt('ed25519', { min: 3, max: 3, identifiers: ids });
    const c = m.pub.commitments;
    const bad = row('torsion_power', { ...m, pub: { ...m.pub, commitments: [c[0]!, c[1]!, ed25519.Point.fromBytes(c[2]!).add(t8).toBytes()] } });
    assert.equal(perKeyError(bad).code, 'share_mismatch');
    await refusedLike(at(good, 5, bad), bad);
    // The same identifier with consistent commitments passes.
    await verifyRestoredKeys(STORAGE_KEY, [...good.slice(0, 10), row('large_id', m)], undefined, { workers: 0 });
  });

  it('two bad keys: the first in order is named; across worker threads too', async () => {
    const first = row('bad_first', { ...dealt('bip340'), share: dealt('bip340').share });
    const second = row('bad_second', dealt('ed25519'), { edit: (r) => (r.threshold = 3) });
    const rows = at(at(good, 70, second), 30, first);
    await refusedLike(rows, first);
    // Worker threads: a bad key in each part, then in the second part only (the first part passes).
    await refusedLike(rows, first, 2);
    await refusedLike(at(good, 80, second), second, 2);
  });
});

describe('restore paths use the batch check', () => {
  const secrets = { storageKey: STORAGE_KEY } as NodeSecrets;

  it('restoreNodeBackup writes nothing when a key is bad, everything when all are good; voidNoncesAndVerify names the bad key', async () => {
    const rows = goodRows(30, 'rest');
    const bad = row('rest_bad', { ...dealt('ed25519'), share: dealt('ed25519').share });
    const store = await openKeyNodeStore('sqlite::memory:');
    try {
      await assert.rejects(restoreNodeBackup(store, secrets, { keys: [...rows, bad], apiKeys: [], meta: [] }), (err: unknown) => isLifeboatError(err, 'share_mismatch') && err.message === perKeyError(bad).message);
      assert.equal(await store.countKeys(), 0);
      const seen: number[] = [];
      const r = await restoreNodeBackup(store, secrets, { keys: rows, apiKeys: [], meta: [] }, (d) => seen.push(d));
      assert.deepEqual([r.keys, r.epoch, seen.at(-1)], [30, 1, 30]);
      assert.deepEqual((await voidNoncesAndVerify(store, secrets)).keys, 30);
      await store.insertKey(bad);
      await assert.rejects(voidNoncesAndVerify(store, secrets), (err: unknown) => isLifeboatError(err, 'share_mismatch') && err.message === perKeyError(bad).message);
    } finally {
      await store.close();
    }
  });
});

describe('decodePointFast', () => {
  it('accepts exactly what noble accepts (fromBytes and assertValidity), with the same point', () => {
    const le = (n: bigint, sign = 0) => {
      const b = new Uint8Array(32);
      for (let i = 0; i < 32; i++, n >>= 8n) b[i] = Number(n & 0xffn);
      b[31]! |= sign << 7;
      return b;
    };
    const p = ed25519.Point.Fp.ORDER;
    const q = secp256k1.Point.Fp.ORDER;
    const sec = (x: bigint, head: number) => Uint8Array.of(head, ...le(x).reverse());
    const cases: ['ed25519' | 'secp256k1', Uint8Array][] = [];
    for (let i = 0; i < 300; i++) {
      cases.push(['ed25519', randomBytes(32)], ['ed25519', ed25519.Point.BASE.multiply(BigInt(i + 1)).toBytes()]);
      cases.push(['secp256k1', Uint8Array.of(2 + (i & 1), ...randomBytes(32))], ['secp256k1', secp256k1.Point.BASE.multiply(BigInt(i + 1)).toBytes()]);
    }
    for (const y of [0n, 1n, 2n, p - 1n, p, p + 1n, (1n << 255n) - 1n]) for (const s of [0, 1]) cases.push(['ed25519', le(y, s)]);
    const t8 = ed25519.Point.fromHex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a');
    for (let k = 1n; k < 8n; k++) cases.push(['ed25519', t8.multiplyUnsafe(k).toBytes()], ['ed25519', t8.multiplyUnsafe(k).add(ed25519.Point.BASE).toBytes()]);
    for (const x of [0n, 1n, q - 1n, q, (1n << 256n) - 1n]) for (const h of [0, 2, 3, 4]) cases.push(['secp256k1', sec(x, h)]);
    for (const [group, bytes] of cases) {
      const cls = group === 'ed25519' ? ed25519.Point : secp256k1.Point;
      let expected: { x: bigint; y: bigint } | undefined;
      try {
        const pt = cls.fromBytes(bytes);
        pt.assertValidity();
        expected = pt.toAffine();
      } catch {
        expected = undefined;
      }
      let got: { x: bigint; y: bigint } | undefined;
      try {
        got = decodePointFast(group, bytes);
      } catch {
        got = undefined;
      }
      assert.deepEqual(got, expected, `${group} ${Buffer.from(bytes).toString('hex')}`);
    }
  });
});

describe('readCanonicalPublic (the restore check reads packages without building them)', () => {
  /** parseFrostPublic's verdict, as readCanonicalPublic would give it: undefined when it refuses or lacks `id`. */
  function reference(bytes: Uint8Array, curve: FrostCurve, id: string): PublicForShare | undefined {
    try {
      const { public: pub } = parseFrostPublic(bytes, { curve, check: 'structure' });
      const own = pub.verifyingShares[id];
      if (!own) return undefined;
      return { min: pub.signers.min, max: Object.keys(pub.verifyingShares).length, commitments: pub.commitments, verifyingShare: own };
    } catch {
      return undefined;
    }
  }
  const plain = (p: PublicForShare | undefined) =>
    p && { min: p.min, max: p.max, commitments: p.commitments.map((c) => Buffer.from(c).toString('hex')), verifyingShare: Buffer.from(p.verifyingShare).toString('hex') };

  it('accepts only what parseFrostPublic accepts, with the same fields: canonical bytes, spelled-differently and mutated ones', () => {
    let accepted = 0;
    for (const curve of CURVES) {
      const m = dealt(curve, { min: 3, max: 5, me: 2 });
      const bytes = encodeFrostPublic(curve, m.pub);
      const text = Buffer.from(bytes).toString('utf8');
      const other = identifierOf(curve, 9);
      const variants: string[] = [
        text,
        text.replace('{', '{ '),
        text.replace('"type":"lifeboat-frost-public",', '') + '',
        text.replace('"version":1,"curve"', '"curve"').replace('}}', '},"version":1}'),
        text.replace(/"commitments":\["([0-9a-f]{2})/, (_, h: string) => `"commitments":["${h.toUpperCase()}`),
        text.replace('"min_signers":3', '"min_signers":3.0'),
        text.replace('"min_signers":3', '"min_signers":2'),
        text.replace('"max_signers":5', '"max_signers":6'),
        text.replace('"version":1', '"version":2'),
        text.replace(`"curve":"${curve}"`, `"curve":"${curve === 'ed25519' ? 'secp256k1' : 'ed25519'}"`),
        text.replace(m.identifier, other),
        text.replace(/("commitments":\["[0-9a-f]+)"/, '$100"'),
        text.replace('}}', ',"extra":1}}'),
        text.replace('"lifeboat-frost-public"', '"lifeboat-frost-publi\\u0063"'),
      ];
      for (let i = 0; i < 400; i++) {
        const b = Buffer.from(text, 'utf8');
        b[i % b.length] = (b[i % b.length]! + 1 + (i % 7)) & 0x7f;
        variants.push(b.toString('latin1'));
      }
      for (const v of variants) {
        const b = Buffer.from(v, 'latin1');
        const got = readCanonicalPublic(b, curve, m.identifier);
        assert.deepEqual(plain(got), plain(reference(b, curve, m.identifier)), v);
        if (got) accepted++;
      }
      assert.equal(readCanonicalPublic(bytes, curve, other), undefined, 'an identifier the package does not name');
    }
    assert.ok(accepted >= CURVES.length, 'the canonical bytes are read');
  });
});
