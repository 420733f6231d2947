/**
 * Key-share backups: the cost of an scrypt stanza per work factor (what PASSPHRASE_LOG_N was chosen
 * from), and sealing and opening one record per mode and curve beside the raw key package's size.
 *   node --import tsx bench/keyshare.ts        (never run by the tests)
 */
import { Decrypter } from 'age-encryption';
import { deriveAgeRecipient, encryptToPassphrase, mnemonicCheck, PASSPHRASE_LOG_N } from '../src/keyshare/age.js';
import { generateOperatorMnemonic } from '../src/keyshare/mnemonic.js';
import { encodeKeyPackage } from '../src/keyshare/package.js';
import { openBackup, sealBackup } from '../src/keyshare/seal.js';
import { generateIdentity } from '../src/identity.js';
import { type FrostCurve, type FrostPublic, identifierOf, type KeyShare, suite } from '../src/keynode/frost/index.js';

const p50 = (xs: number[]): number => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function time(n: number, fn: () => Promise<unknown>): Promise<number> {
  await fn();
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    xs.push(performance.now() - t);
  }
  return p50(xs);
}

function dealt(curve: FrostCurve): KeyShare {
  const ids = [1, 2, 3].map((i) => identifierOf(curve, i));
  const d = suite(curve).trustedDealer({ min: 2, max: 3 }, ids);
  const pub: FrostPublic = { signers: { min: 2, max: 3 }, commitments: d.public.commitments, verifyingShares: d.public.verifyingShares };
  return { keyId: 'key_01hzyq3m0000000000000000', curve, identifier: ids[0]!, share: d.secretShares[ids[0]!]!.signingShare, public: pub };
}

export async function benchKeyshare(): Promise<void> {
  const m = generateOperatorMnemonic();
  const plain = new Uint8Array(520);
  for (const logN of [8, 10, 12, 14, 16, 18]) {
    const file = await encryptToPassphrase(m.phrase, plain, logN);
    const runs = logN >= 16 ? 3 : 15;
    const dec = await time(runs, async () => {
      const d = new Decrypter();
      d.addPassphrase(m.phrase);
      await d.decrypt(file);
    });
    console.log(`keyshare scrypt log2(N)=${logN}: decrypt p50 ${dec.toFixed(1)} ms (${(2 ** logN * 128 * 8) / 2 ** 20} MiB); 10,000 keys ≈ ${((dec * 10_000) / 1000).toFixed(0)} s${logN === PASSPHRASE_LOG_N ? '  <- PASSPHRASE_LOG_N' : ''}`);
  }
  const node = generateIdentity('node');
  const recipient = await deriveAgeRecipient(m);
  for (const curve of ['ed25519', 'secp256k1', 'bip340'] as FrostCurve[]) {
    const key = dealt(curve);
    const raw = encodeKeyPackage({ identitySeeds: new Uint8Array(64), epoch: 1, keyId: key.keyId, tenant: 'default', curve, identifier: key.identifier, share: key.share, public: key.public }).length;
    for (const how of [{ mode: 'passphrase', mnemonic: m } as const, { mode: 'recipient', recipient, mnemonicCheck: mnemonicCheck(m, node) } as const]) {
      let rec: Uint8Array = new Uint8Array(0);
      const seal = await time(15, async () => {
        rec = await sealBackup({ key, tenant: 'default', epoch: 1, node }, how);
      });
      const open = await time(15, () => openBackup(rec, node, m));
      console.log(`keyshare ${curve} ${how.mode}: seal p50 ${seal.toFixed(1)} ms, open p50 ${open.toFixed(1)} ms; record ${rec.length} B beside the raw key package ${raw} B`);
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchKeyshare();
