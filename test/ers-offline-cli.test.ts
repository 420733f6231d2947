/**
 * `lifeboat ers` offline commands without key nodes: a package made in-process from a dealt key, a
 * passphrase-encrypted RSA key from `ers keygen --passphrase` (prompt answered on stdin), verify and
 * recover on every curve, the wrong passphrase, and `--import-public` of an existing SPKI key.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ed25519_FROST } from '@noble/curves/ed25519.js';
import { schnorr_FROST, secp256k1_FROST } from '@noble/curves/secp256k1.js';
import type { FROST } from '@noble/curves/abstract/frost.js';
import { type CliResult, runCli } from './helpers/cli.js';
import { trackedTempDir } from './helpers/tmp.js';
import { encodeFrostPublic, type FrostCurve, frostGroupPublicKey } from '../src/keynode/frost/index.js';
import { encodePackage } from '../src/ers/format.js';
import { provePart } from '../src/ers/proof.js';
import { parseErsPublicKey } from '../src/ers/rsa.js';

const FROSTS: Record<FrostCurve, FROST> = { ed25519: ed25519_FROST as FROST, secp256k1: secp256k1_FROST as FROST, bip340: schnorr_FROST as FROST };

function ok(r: CliResult): CliResult {
  if (r.code !== 0) throw new Error(`exited ${r.code}: ${r.stderr.trim()}`);
  return r;
}
const errType = (stdout: string): string => (JSON.parse(stdout) as { err_type: string }).err_type;

it('ers keygen --passphrase, verify and recover offline on every curve; a wrong passphrase is refused', async () => {
  const dir = trackedTempDir('lifeboat-ers-offline-');
  const key = join(dir, 'ers');
  const pass = 'correct horse battery staple\n';
  ok(await runCli(['ers', 'keygen', '--out', key, '--passphrase'], { input: pass }));
  assert.match(readFileSync(`${key}.key`, 'utf8'), /BEGIN ENCRYPTED PRIVATE KEY/);
  assert.equal(statSync(`${key}.key`).mode & 0o777, 0o600);
  const rsa = parseErsPublicKey(readFileSync(`${key}.pub`));
  // --import-public: the same public key taken as an HSM's would be
  const imported = JSON.parse(ok(await runCli(['ers', 'keygen', '--out', join(dir, 'hsm'), '--import-public', `${key}.pub`, '--json'])).stdout) as { fingerprint: string; private_key: null };
  assert.equal(imported.private_key, null);
  assert.equal(imported.fingerprint, `SHA256:${Buffer.from(rsa.fingerprint).toString('hex')}`);

  for (const curve of ['ed25519', 'secp256k1', 'bip340'] as const) {
    const d = FROSTS[curve].trustedDealer({ min: 2, max: 3 });
    const ids = Object.keys(d.secretShares).sort();
    const pub = { signers: { min: 2, max: 3 }, commitments: d.public.commitments, verifyingShares: d.public.verifyingShares };
    const parts = ids.slice(1).map((id) => provePart({ curve, label: 'offline', groupKey: pub.commitments[0]!, identifier: id, share: d.secretShares[id]!.signingShare, verifyingShare: pub.verifyingShares[id]!, rsa }));
    const pkg = join(dir, `${curve}.ers`);
    writeFileSync(pkg, encodePackage({ curve, label: 'offline', spki: rsa.spki, publicPackage: encodeFrostPublic(curve, pub), parts }));
    const groupKey = Buffer.from(frostGroupPublicKey(curve, pub)).toString('hex');
    const v = ok(await runCli(['ers', 'verify', pkg, '--group-key', groupKey, '--ers-public', `${key}.pub`]));
    assert.match(v.stdout, /ok: this package recovers the key/);
    const out = join(dir, `${curve}.key.json`);
    ok(await runCli(['ers', 'recover', pkg, '--ers-private', `${key}.key`, '--out', out, '--json'], { input: pass }));
    const forms = JSON.parse(readFileSync(out, 'utf8')) as Record<string, string>;
    const secret = FROSTS[curve].combineSecret(ids.slice(0, 2).map((id) => d.secretShares[id]!), { min: 2, max: 3 });
    assert.equal(forms.group_public_key, groupKey);
    assert.equal(curve === 'ed25519' ? forms.secret_scalar_hex : forms.secret_key_hex, Buffer.from(secret).toString('hex'));
  }
  const wrong = await runCli(['ers', 'recover', join(dir, 'ed25519.ers'), '--ers-private', `${key}.key`, '--out', join(dir, 'x'), '--json'], { input: 'not the passphrase\n' });
  assert.equal(errType(wrong.stdout), 'wrong_passphrase');
  // a verify against another group key is a refusal for safety (exit 3)
  const other = await runCli(['ers', 'verify', join(dir, 'ed25519.ers'), '--group-key', '00'.repeat(32), '--ers-public', `${key}.pub`, '--json']);
  assert.equal(other.code, 3);
  assert.equal((JSON.parse(other.stdout) as { ok: boolean; problems: { code: string }[] }).problems[0]!.code, 'ers_group_key_mismatch');
});
