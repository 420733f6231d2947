/**
 * The second factor's and the wallet's formats, pure (docs/format.md, "Wallet accounts", "TOTP
 * record"): HOTP/TOTP against RFC 4226 Appendix D and RFC 6238 Appendix B (the SHA-1 rows) and against
 * an independent implementation (npm otpauth), the otpauth:// URI as an app reads it, the ±1 step
 * window, recovery codes, the sealed TOTP secret and the wallet record with their negative vectors,
 * and the wrapping key made from a wallet's signature.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as OTPAuth from 'otpauth';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import {
  encodeRecoverySlots,
  findRecoveryCode,
  hotp,
  markRecoveryUsed,
  matchTotp,
  newRecoveryCodes,
  newTotpSecret,
  openTotpSecret,
  otpauthUri,
  RECOVERY_CODE_RE,
  sealTotpSecret,
  totp,
  totpStep,
} from '../src/backup/totp.js';
import { checkSignedBy, encodeWalletRecord, parseWalletRecord, signatureCore, walletWrapKey, wrapMessage } from '../src/backup/wallet.js';
import { randomBytes } from '../src/crypto/random.js';
import { toHex, utf8 } from '../src/util/bytes.js';

const code = (err: unknown) => (err as { code?: string }).code;
const RFC_SECRET = utf8.encode('12345678901234567890');

describe('TOTP (RFC 6238) and HOTP (RFC 4226)', () => {
  it('RFC 4226 Appendix D: HOTP values for counters 0 to 9', () => {
    const expected = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489'];
    expected.forEach((v, i) => assert.equal(hotp(RFC_SECRET, i), v, `counter ${i}`));
  });

  it('RFC 6238 Appendix B: the SHA-1 rows (8 digits)', () => {
    const rows: [number, string][] = [
      [59, '94287082'],
      [1111111109, '07081804'],
      [1111111111, '14050471'],
      [1234567890, '89005924'],
      [2000000000, '69279037'],
      [20000000000, '65353130'],
    ];
    for (const [t, v] of rows) assert.equal(totp(RFC_SECRET, t * 1000, 8), v, `T = ${t}`);
  });

  it('agrees with npm otpauth on random secrets and times, and an app reads the otpauth:// URI', () => {
    for (let i = 0; i < 50; i++) {
      const secret = newTotpSecret();
      const at = Math.floor(Math.random() * 4e12);
      const theirs = new OTPAuth.TOTP({ secret: new OTPAuth.Secret({ buffer: secret.slice().buffer }), algorithm: 'SHA1', digits: 6, period: 30 });
      assert.equal(totp(secret, at), theirs.generate({ timestamp: at }));
      const parsed = OTPAuth.URI.parse(otpauthUri(secret, 'acct-1.x')) as OTPAuth.TOTP;
      assert.equal(parsed.generate({ timestamp: at }), theirs.generate({ timestamp: at }));
      assert.equal(parsed.issuer, 'Lifeboat');
      assert.equal(parsed.label, 'acct-1.x');
    }
  });

  it('accepts the current step and one either side, and no other', () => {
    const secret = newTotpSecret();
    const now = 1_700_000_000_000;
    const step = totpStep(now);
    for (const d of [-1, 0, 1]) assert.equal(matchTotp(secret, hotp(secret, step + d), now), step + d);
    for (const d of [-3, -2, 2, 3]) {
      const c = hotp(secret, step + d);
      // A code of another step that happens to equal one in the window would match: skip that 3-in-a-million case.
      if ([-1, 0, 1].some((w) => hotp(secret, step + w) === c)) continue;
      assert.equal(matchTotp(secret, c, now), undefined, `step ${d}`);
    }
    for (const bad of ['', '12345', '1234567', 'abcdef', ' 12345']) assert.equal(matchTotp(secret, bad, now), undefined);
  });

  it('recovery codes: 80 bits each, found by hash, used once', () => {
    const codes = newRecoveryCodes();
    assert.equal(codes.length, 10);
    assert.equal(new Set(codes).size, 10);
    for (const c of codes) assert.match(c, RECOVERY_CODE_RE);
    const slots = encodeRecoverySlots('acct', codes);
    assert.equal(slots.length, 330);
    assert.equal(Buffer.from(slots).includes(Buffer.from(codes[0]!)), false, 'stored hashed');
    assert.deepEqual(findRecoveryCode(slots, 'acct', codes[4]!), { index: 4, used: false });
    assert.equal(findRecoveryCode(slots, 'other', codes[4]!), undefined, 'hashes are bound to the account');
    assert.equal(findRecoveryCode(slots, 'acct', 'aaaa-aaaa-aaaa-aaaa'), undefined);
    assert.deepEqual(findRecoveryCode(markRecoveryUsed(slots, 4), 'acct', codes[4]!), { index: 4, used: true });
    assert.throws(() => findRecoveryCode(slots.subarray(1), 'acct', codes[0]!), (e) => code(e) === 'malformed');
  });
});

describe('the sealed TOTP secret (LBTS v1): round trip and negative vectors', () => {
  const key = randomBytes(32);
  const secret = newTotpSecret();
  const sealed = sealTotpSecret(key, 'acct', secret);

  it('opens under its key and account', () => {
    assert.deepEqual(openTotpSecret(key, 'acct', sealed), secret);
    assert.equal(Buffer.from(sealed).includes(Buffer.from(secret)), false);
  });

  it('refuses another account, another key, a flipped byte, a bad magic, version 2, a truncation', () => {
    assert.throws(() => openTotpSecret(key, 'acct2', sealed), (e) => code(e) === 'malformed');
    assert.throws(() => openTotpSecret(randomBytes(32), 'acct', sealed), (e) => code(e) === 'decryption_failed');
    const flipped = sealed.slice();
    flipped[flipped.length - 1]! ^= 1;
    assert.throws(() => openTotpSecret(key, 'acct', flipped), (e) => code(e) === 'decryption_failed');
    const magic = sealed.slice();
    magic[0] = 0x58;
    assert.throws(() => openTotpSecret(key, 'acct', magic), (e) => code(e) === 'bad_magic');
    const v2 = sealed.slice();
    v2[4] = 2;
    assert.throws(() => openTotpSecret(key, 'acct', v2), (e) => code(e) === 'unsupported_version');
    assert.throws(() => openTotpSecret(key, 'acct', sealed.subarray(0, 10)), (e) => ['truncated', 'malformed'].includes(code(e)!));
  });
});

describe('the wallet record (LBWR v1) and the wrapping key', () => {
  it('round trip and negative vectors', () => {
    const address = '0x8ba1f109551bd432803012645ac136ddd64dba72';
    const rec = encodeWalletRecord(address);
    assert.equal(toHex(rec), `4c425752${'01'}${address.slice(2)}`);
    assert.equal(parseWalletRecord(rec), address);
    const v2 = rec.slice();
    v2[4] = 2;
    assert.throws(() => parseWalletRecord(v2), (e) => code(e) === 'unsupported_version');
    assert.throws(() => parseWalletRecord(rec.subarray(0, 24)), (e) => code(e) === 'malformed');
    assert.throws(() => parseWalletRecord(rec.subarray(0, 4)), (e) => code(e) === 'truncated');
    assert.throws(() => parseWalletRecord(utf8.encode('XBWR')), (e) => code(e) === 'bad_magic');
    assert.throws(() => encodeWalletRecord('0x1234'), (e) => code(e) === 'wallet_address_invalid');
  });

  it('the same wallet makes the same key from its (deterministic) signature, whatever form v and s come in', async () => {
    const wallet = privateKeyToAccount(generatePrivateKey());
    const message = wrapMessage('acct', 'backup.example.net', wallet.address);
    assert.match(message, /Anyone who has this signature can decrypt those backups/);
    const sig = await wallet.signMessage({ message });
    assert.equal(await wallet.signMessage({ message }), sig, 'RFC 6979: deterministic');
    await checkSignedBy(message, sig, wallet.address);
    const k = walletWrapKey(sig, 'acct', 'backup.example.net', wallet.address);
    // v as 0/1 (some hardware wallets) and s in high form (malleated) make the same key.
    const b = Buffer.from(sig.slice(2), 'hex');
    const v01 = `0x${Buffer.concat([b.subarray(0, 64), Buffer.from([b[64]! - 27])]).toString('hex')}`;
    assert.deepEqual(walletWrapKey(v01, 'acct', 'backup.example.net', wallet.address), k);
    const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
    const highS = (n - BigInt(`0x${b.subarray(32, 64).toString('hex')}`)).toString(16).padStart(64, '0');
    assert.deepEqual(walletWrapKey(`0x${b.subarray(0, 32).toString('hex')}${highS}${b.subarray(64).toString('hex')}`, 'acct', 'backup.example.net', wallet.address), k);
    // Another account, service or message: another key.
    assert.notDeepEqual(walletWrapKey(sig, 'acct2', 'backup.example.net', wallet.address), k);
    assert.notDeepEqual(walletWrapKey(sig, 'acct', 'other.example.net', wallet.address), k);
    // Another wallet's signature is refused before any key is made.
    const other = privateKeyToAccount(generatePrivateKey());
    await assert.rejects(checkSignedBy(message, await other.signMessage({ message }), wallet.address), (e) => code(e) === 'wallet_wrong_signer');
    for (const bad of ['0x', `0x${'00'.repeat(64)}1c`.slice(0, 100), `${sig.slice(0, -2)}1d`, sig.slice(2)]) {
      assert.throws(() => signatureCore(bad), (e) => code(e) === 'wallet_signature_malformed', bad.slice(0, 12));
    }
  });
});
