/**
 * The service's side of wallet accounts and second factors (docs/backup.md, "Wallet accounts" and
 * "Second factor"), used by BackupService (./service.ts):
 *   - SIWE nonces (single-use ephemerals of kind `siwe`), the check of a signed login message, a
 *     wallet registration and a wallet login;
 *   - TOTP enrolment and the check of a code or a recovery code before a login hands out the wrapped
 *     backup key. The TOTP secret is sealed under the service's TOTP key, which lives in its data
 *     directory (never in the database): the database alone yields no secret.
 */
import { ConflictError, LifeboatError, UnauthorizedError } from '../errors.js';
import { randomBytes } from '../crypto/random.js';
import { RateLimiter, type RateLimit } from '../http/rate-limit.js';
import { ctEqual, toHex, utf8, wipe } from '../util/bytes.js';
import { checkName } from './format.js';
import { checkLoginMessage, parseLoginMessage, SIWE_NONCE_TTL_MS, type SiweConfig } from './siwe.js';
import type { AccountRegistration, BackupStore } from './store/types.js';
import {
  encodeRecoverySlots,
  findRecoveryCode,
  markRecoveryUsed,
  matchTotp,
  newRecoveryCodes,
  newTotpSecret,
  openTotpSecret,
  otpauthUri,
  RECOVERY_CODE_RE,
  recoveryCodesLeft,
  sealTotpSecret,
  TOTP_CODE_RE,
} from './totp.js';
import { encodeWalletRecord, isWalletRecord, parseWalletRecord } from './wallet.js';

/** Every code check of an account, from anywhere (10 a minute): a second factor's online guesses. */
export const DEFAULT_TOTP_LIMIT: RateLimit = { max: 10, windowMs: 60_000 };

const CODE_HINT = 'give the current 6-digit code of the account’s authenticator app, or one of its recovery codes (xxxx-xxxx-xxxx-xxxx)';

/** What an enrolment shows once: the secret as an otpauth:// URI and the ten recovery codes. */
export interface TotpEnrolment {
  otpauthUri: string;
  /** The secret in base32 (what the URI holds), for apps that take it typed. */
  secret: string;
  recoveryCodes: string[];
}

/** The second factor of accounts; see the file comment. */
export class SecondFactor {
  private readonly limiter: RateLimiter;

  constructor(
    private readonly store: BackupStore,
    private readonly sealKey: Uint8Array | undefined,
    private readonly now: () => number,
    limit: RateLimit = DEFAULT_TOTP_LIMIT,
  ) {
    this.limiter = new RateLimiter(limit, 100_000, now);
  }

  private key(): Uint8Array {
    if (!this.sealKey) throw new LifeboatError('totp_unavailable', 'this backup service has no totp key', { status: 500, hint: 'start it with `lifeboat backup-server serve` (which creates <data-dir>/totp-seal-key)' });
    return this.sealKey;
  }

  /**
   * Enrols (or replaces) the account's TOTP secret and ten recovery codes; returns them, shown once.
   * Throws NotFoundError `account_not_found`, LifeboatError `totp_unavailable`.
   */
  async enrol(account: string, issuer = 'Lifeboat'): Promise<TotpEnrolment> {
    checkName(account, 'account');
    const secret = newTotpSecret();
    try {
      const recoveryCodes = newRecoveryCodes();
      const now = this.now();
      await this.store.setTotp(account, { sealedSecret: sealTotpSecret(this.key(), account, secret), lastStep: -1, recoverySlots: encodeRecoverySlots(account, recoveryCodes), createdAt: now, updatedAt: now });
      const uri = otpauthUri(secret, account, issuer);
      return { otpauthUri: uri, secret: new URL(uri).searchParams.get('secret')!, recoveryCodes };
    } finally {
      wipe(secret);
    }
  }

  /** Removes the account's second factor. */
  async disable(account: string): Promise<void> {
    await this.store.setTotp(checkName(account, 'account'), null);
  }

  /** Whether the account has a second factor, and how many recovery codes are left. */
  async status(account: string): Promise<{ enabled: boolean; recoveryCodesLeft: number }> {
    const rec = await this.store.getTotp(checkName(account, 'account'));
    return { enabled: rec !== undefined, recoveryCodesLeft: rec ? recoveryCodesLeft(rec.recoverySlots) : 0 };
  }

  /**
   * Checks the second factor of an account that has one (nothing to check otherwise): a TOTP code of
   * the current step or one either side, later than the last one accepted, or an unused recovery code,
   * which is then used up. Counted per account (RateLimitedError `rate_limited`, 429). Throws
   * UnauthorizedError (401) `totp_required`, `totp_invalid` (wrong, expired or malformed),
   * `totp_reused`, `recovery_code_used`.
   */
  async check(account: string, code: string | undefined): Promise<void> {
    const rec = await this.store.getTotp(account);
    if (!rec) return;
    if (code === undefined || code === '') throw new UnauthorizedError('this account needs a second factor as well', 'totp_required', `${CODE_HINT} (node restore --totp)`);
    this.limiter.hit(account, 'wait: every code of this account counts');
    const now = this.now();
    if (TOTP_CODE_RE.test(code)) {
      const secret = openTotpSecret(this.key(), account, rec.sealedSecret);
      const step = matchTotp(secret, code, now);
      wipe(secret);
      if (step === undefined) throw new UnauthorizedError('the code is wrong or expired', 'totp_invalid', CODE_HINT);
      if (!(await this.store.advanceTotpStep(account, step, now))) {
        throw new UnauthorizedError('this code (or a later one) was used already: each code logs in once', 'totp_reused', 'wait for the next code of the authenticator app');
      }
      return;
    }
    if (!RECOVERY_CODE_RE.test(code)) throw new UnauthorizedError('a second factor is 6 digits or a recovery code xxxx-xxxx-xxxx-xxxx', 'totp_invalid', CODE_HINT);
    const found = findRecoveryCode(rec.recoverySlots, account, code);
    if (!found) throw new UnauthorizedError('the recovery code is wrong', 'totp_invalid', CODE_HINT);
    const used = () => new UnauthorizedError('this recovery code was used already: each one logs in once', 'recovery_code_used', 'use another recovery code, or the authenticator app');
    if (found.used) throw used();
    if (!(await this.store.replaceRecoverySlots(account, rec.recoverySlots, markRecoveryUsed(rec.recoverySlots, found.index), now))) throw used();
  }
}

/** What wallet logins need of the service. */
export interface WalletContext {
  store: BackupStore;
  now: () => number;
  siwe: SiweConfig;
}

const walletLoginFailed = () => new UnauthorizedError('this wallet does not log in to this account', 'wallet_login_failed', 'sign with the wallet the account was set up with, and check the account name');

/** A fresh single-use nonce for a login message of `account` (any name, existing or not). */
export async function issueNonce(ctx: WalletContext, account: string): Promise<{ nonce: string; expiresAt: number }> {
  checkName(account, 'account');
  const nonce = toHex(randomBytes(16));
  const expiresAt = ctx.now() + SIWE_NONCE_TTL_MS;
  await ctx.store.putEphemeral({ kind: 'siwe', id: nonce, account, value: utf8.encode('siwe'), expiresAt });
  return { nonce, expiresAt };
}

/**
 * Checks a signed login message for `account`: its form, its nonce (used up whatever the outcome),
 * the service's domain and chain, the expiry and the signature. Returns the address that signed.
 * Throws LifeboatError `siwe_malformed`, UnauthorizedError `siwe_nonce_invalid` (unknown, used,
 * expired or another account's: a replay) and what checkLoginMessage throws.
 */
export async function verifySignedLogin(ctx: WalletContext, account: string, message: string, signature: string): Promise<string> {
  checkName(account, 'account');
  const m = await parseLoginMessage(message);
  const e = await ctx.store.takeEphemeral('siwe', m.nonce);
  const now = ctx.now();
  if (!e || e.account !== account || e.expiresAt <= now) {
    throw new UnauthorizedError('the login message’s nonce is unknown, used or expired (a message logs in once)', 'siwe_nonce_invalid', 'log in again: a fresh nonce is fetched and signed');
  }
  await checkLoginMessage(message, m, signature, { ...ctx.siwe, account, now });
  return m.address;
}

/**
 * The wallet account's registration: its record (`LBWR`, the address that signed `message`).
 * Throws what verifySignedLogin throws.
 */
export async function walletRegistration(ctx: WalletContext, account: string, message: string, signature: string, rest: Omit<AccountRegistration, 'record'>): Promise<AccountRegistration> {
  const address = await verifySignedLogin(ctx, account, message, signature);
  return { record: encodeWalletRecord(address), ...rest };
}

/**
 * A wallet login's first factor: the signed message, and the account's address. Returns the
 * account's registration. Throws UnauthorizedError `wallet_login_failed` (an unknown account, a
 * password account and another address alike), and what verifySignedLogin throws.
 */
export async function checkWalletLogin(ctx: WalletContext, account: string, message: string, signature: string): Promise<AccountRegistration> {
  const address = await verifySignedLogin(ctx, account, message, signature);
  const reg = (await ctx.store.getAccount(account))?.registration;
  if (!reg || !isWalletRecord(reg.record)) throw walletLoginFailed();
  let registered: string;
  try {
    registered = parseWalletRecord(reg.record);
  } catch {
    throw walletLoginFailed();
  }
  if (!ctEqual(utf8.encode(registered), utf8.encode(address))) throw walletLoginFailed();
  return reg;
}

/** Refuses a password operation on a wallet account. Throws ConflictError `wallet_account`. */
export function refuseWalletAccount(reg: AccountRegistration | null | undefined): void {
  if (reg && isWalletRecord(reg.record)) throw new ConflictError('this account logs in with a wallet, not a password', 'wallet_account', 'use --wallet');
}
