/**
 * The backup service's accounts and sessions (docs/backup.md, "Accounts and sessions"): invites,
 * OPAQUE registration and login, password change, the auth-key challenge and the tokens they issue.
 * Domain logic over a BackupStore, the OPAQUE server setup and a clock; the routes (./server.ts) only
 * validate and answer. Streams are ./streams.ts; the OPAQUE calls ./opaque-server.ts; how invite codes,
 * tokens and restore tokens are made and hashed ./bearer-codes.ts.
 *
 * What the service never learns: the password (OPAQUE), the backup key (wrapped under a key derived
 * from OPAQUE's export key on the client), or anything it could test a password against offline.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { ForbiddenError, InvalidInputError, LifeboatError, UnauthorizedError } from '../errors.js';
import { randomBytes } from '../crypto/random.js';
import { verifyWithContext } from '../crypto/sign.js';
import { concatBytes, ctEqual, fromB64u, toB64u, utf8 } from '../util/bytes.js';
import { INVITE_RE, RESTORE_TOKEN_RE } from './api.js';
import { checkName, parseWrappedKeyHeader, SESSION_CONTEXT, sessionProofMessage } from './format.js';
import { inviteHash, newInvite, newRestoreToken, newToken, restoreTokenHash, tokenHash } from './bearer-codes.js';
import { checkRecord, checkServerSetup, finishLogin, registrationResponse, serverPublicKey, startLogin } from './opaque-server.js';
import { BackupStreams } from './streams.js';
import type { RateLimit } from '../http/rate-limit.js';
import type { SiweConfig } from './siwe.js';
import { isWalletRecord } from './wallet.js';
import { checkWalletLogin, issueNonce, refuseWalletAccount, SecondFactor, type TotpEnrolment, type WalletContext, walletRegistration } from './wallet-logins.js';
import type { AccountRecord, AccountRegistration, BackupStore, TokenKind, TokenRecord } from './store/types.js';

export interface BackupTtls {
  /** An OPAQUE login between start and finish (60 s). */
  loginMs: number;
  /** An auth challenge (60 s). */
  challengeMs: number;
  /** A login token, good only for a password change (10 min). */
  loginTokenMs: number;
  /** A backup token, for streams (15 min). */
  backupTokenMs: number;
  /** Compaction uploads left incomplete this long are deleted (24 h). */
  staleUploadMs: number;
}

export const DEFAULT_TTLS: BackupTtls = {
  loginMs: 60_000,
  challengeMs: 60_000,
  loginTokenMs: 10 * 60_000,
  backupTokenMs: 15 * 60_000,
  staleUploadMs: 24 * 3600_000,
};

export interface BackupServiceOptions {
  store: BackupStore;
  /** The OPAQUE server setup (opaque.server.createSetup()); the server's long-term secret. */
  serverSetup: string;
  now?: () => number;
  ttls?: Partial<BackupTtls>;
  /** The TOTP seal key (32 bytes, <data-dir>/totp-seal-key); without it no account can enrol a second factor. */
  totpSealKey?: Uint8Array;
  /** Code checks per account (10 a minute). */
  totpLimit?: RateLimit;
  /** The domain and chain wallet logins are for; without it wallet logins are refused (`wallet_unavailable`). */
  siwe?: SiweConfig;
}

/** An issued token: the bearer string (shown once) and when it expires. */
export interface IssuedToken {
  token: string;
  expiresAt: number;
}

const DUMMY_HASH = new Uint8Array(32);

const loginFailed = () => new UnauthorizedError('wrong account name or password', 'login_failed');
const authFailed = () =>
  new UnauthorizedError('the backup key proof failed', 'auth_failed', 'get a fresh challenge and sign it with the auth key of this account’s backup key');
const invalidInvite = () => new ForbiddenError('the invite code is not valid for this account', 'invalid_invite', 'ask the backup service’s operator for a new invite');

/** The backup service (see the file comment). Create with BackupService.create. */
export class BackupService {
  readonly store: BackupStore;
  readonly streams: BackupStreams;
  readonly now: () => number;
  readonly ttls: BackupTtls;
  /** Second factors (TOTP and recovery codes) of accounts. */
  readonly factors: SecondFactor;
  /** Wallet logins: the domain and chain they are for (set by startBackupServer once it listens). */
  siwe: SiweConfig | undefined;
  private readonly serverSetup: string;

  private constructor(opts: BackupServiceOptions) {
    this.store = opts.store;
    this.serverSetup = opts.serverSetup;
    this.now = opts.now ?? Date.now;
    this.ttls = { ...DEFAULT_TTLS, ...opts.ttls };
    this.streams = new BackupStreams(opts.store, this.now);
    this.factors = new SecondFactor(opts.store, opts.totpSealKey, this.now, opts.totpLimit);
    this.siwe = opts.siwe;
  }

  /** Waits for the OPAQUE module and checks the server setup. Throws InvalidInputError `invalid_opaque_setup`. */
  static async create(opts: BackupServiceOptions): Promise<BackupService> {
    await checkServerSetup(opts.serverSetup);
    return new BackupService(opts);
  }

  /** The OPAQUE server's static public key (base64url), which clients may pin. */
  serverPublicKey(): string {
    return serverPublicKey(this.serverSetup);
  }

  // ---- accounts (operator) ----

  /** Creates an invited account and returns its one-time invite code. Throws ConflictError `account_exists`. */
  async createAccount(name: string): Promise<{ invite: string }> {
    checkName(name, 'account');
    const { invite, hash } = newInvite();
    await this.store.createAccount(name, hash, this.now());
    return { invite };
  }

  listAccounts(): Promise<AccountRecord[]> {
    return this.store.listAccounts();
  }

  /** Deletes an account with everything it holds; false if there was none. */
  deleteAccount(name: string): Promise<boolean> {
    return this.store.deleteAccount(checkName(name, 'account'));
  }

  // ---- registration ----

  /**
   * Compares the invite in constant time against the account's, for any account name, so that an
   * unknown name, a wrong code and a used one look alike. Throws ForbiddenError `invalid_invite`.
   */
  async checkInvite(account: string, invite: string): Promise<Uint8Array> {
    const rec = await this.store.getAccount(account);
    const presented = inviteHash(INVITE_RE.test(invite) ? invite : '');
    const match = ctEqual(presented, rec?.inviteHash ?? DUMMY_HASH);
    if (!match || rec?.inviteHash == null || rec.registration !== null) throw invalidInvite();
    return presented;
  }

  /** OPAQUE registration, step one. Throws ForbiddenError `invalid_invite`, InvalidInputError. */
  async registerStart(account: string, invite: string, registrationRequest: Uint8Array): Promise<Uint8Array> {
    await this.checkInvite(account, invite);
    return registrationResponse(this.serverSetup, account, registrationRequest);
  }

  /**
   * OPAQUE registration, step two: stores the record, the wrapped backup key (whose header must name
   * this account and `authPublicKey`) and the auth public key, and uses up the invite.
   * Throws ForbiddenError `invalid_invite`, FormatError for a malformed wrapped key, InvalidInputError.
   */
  async registerFinish(account: string, invite: string, reg: AccountRegistration): Promise<void> {
    const hash = await this.checkInvite(account, invite);
    if (reg.authPublicKey.length !== 32) throw new InvalidInputError('auth_public_key must be 32 bytes');
    this.checkWrappedKey(account, reg.wrappedKey, reg.authPublicKey);
    checkRecord(this.serverSetup, account, reg.record);
    if (!(await this.store.completeRegistration(account, hash, reg, this.now()))) throw invalidInvite();
  }

  checkWrappedKey(account: string, wrappedKey: Uint8Array, authPublicKey: Uint8Array): void {
    const h = parseWrappedKeyHeader(wrappedKey);
    if (h.account !== account) throw new InvalidInputError(`the wrapped key names account ${h.account}, not ${account}`);
    if (!ctEqual(h.authPublicKey, authPublicKey)) throw new InvalidInputError('the wrapped key names another auth public key than this account’s');
  }

  // ---- login ----

  /**
   * OPAQUE login, step one. An account that does not exist (or is not registered yet) runs against a
   * dummy record and looks the same; the server state waits as a single-use `login` ephemeral.
   * Throws InvalidInputError for a malformed request.
   */
  async loginStart(account: string, startLoginRequest: Uint8Array): Promise<{ loginId: string; loginResponse: Uint8Array }> {
    checkName(account, 'account');
    const found = (await this.store.getAccount(account))?.registration ?? null;
    // A wallet account has no OPAQUE record: its password login runs against the dummy, like an unknown one.
    const reg = found && !isWalletRecord(found.record) ? found : null;
    const r = startLogin(this.serverSetup, account, reg ? reg.record : null, startLoginRequest);
    const loginId = toB64u(randomBytes(16));
    // The record's hash rides along, so a login started before a password change cannot finish after it.
    const value = concatBytes(reg ? sha256(reg.record) : DUMMY_HASH, utf8.encode(r.serverLoginState));
    await this.store.putEphemeral({ kind: 'login', id: loginId, account, value, expiresAt: this.now() + this.ttls.loginMs });
    return { loginId, loginResponse: fromB64u(r.loginResponse, 'login response') };
  }

  /**
   * OPAQUE login, step two: returns the wrapped backup key and a login token. Every failure (unknown,
   * expired or used login, unknown account, wrong password) is UnauthorizedError `login_failed`; then an
   * account with a second factor needs `totp` (SecondFactor.check: `totp_required`, `totp_invalid`,
   * `totp_reused`, `recovery_code_used`, `rate_limited`).
   */
  async loginFinish(account: string, loginId: string, finishLoginRequest: Uint8Array, totp?: string): Promise<{ wrappedKey: Uint8Array } & IssuedToken> {
    checkName(account, 'account');
    const e = await this.store.takeEphemeral('login', loginId);
    if (!e || e.account !== account || e.expiresAt <= this.now() || e.value.length < 32) throw loginFailed();
    const reg = (await this.store.getAccount(account))?.registration;
    if (!reg || !ctEqual(sha256(reg.record), e.value.subarray(0, 32))) throw loginFailed();
    const serverLoginState = utf8.decode(e.value.subarray(32));
    finishLogin(serverLoginState, finishLoginRequest, loginFailed);
    await this.factors.check(account, totp);
    const t = await this.issueToken(account, 'login', this.ttls.loginTokenMs);
    return { wrappedKey: reg.wrappedKey, ...t };
  }

  // ---- restore token ----

  /**
   * Makes a new restore token for the account of `token` (a backup token: proof of the backup key),
   * replacing any earlier one; the store keeps its SHA-256. Shown once. Throws NotFoundError
   * `account_not_found` if the account is gone meanwhile.
   */
  async createRestoreToken(token: TokenRecord): Promise<string> {
    const { restoreToken, hash } = newRestoreToken();
    await this.store.setRestoreTokenHash(token.account, hash, this.now());
    return restoreToken;
  }

  /**
   * Checks a restore token against the account's in constant time, for any account name, so that an
   * unknown account, one without a token and a wrong token look alike. Throws UnauthorizedError
   * `restore_token_invalid`.
   */
  async checkRestoreToken(account: string, restoreToken: string): Promise<void> {
    checkName(account, 'account');
    const rec = await this.store.getAccount(account);
    const presented = restoreTokenHash(RESTORE_TOKEN_RE.test(restoreToken) ? restoreToken : '');
    const match = ctEqual(presented, rec?.restoreTokenHash ?? DUMMY_HASH);
    if (!match || !rec?.restoreTokenHash || !rec.registration) {
      throw new UnauthorizedError('the restore token is not valid for this account', 'restore_token_invalid', 'use the restore token `node backup-setup` or `node backup-restore-token` printed for this account, or leave it out');
    }
  }

  // ---- password change ----

  /** A new OPAQUE registration under a login token (see authenticate). Throws InvalidInputError, ConflictError `wallet_account`. */
  async passwordStart(token: TokenRecord, registrationRequest: Uint8Array): Promise<Uint8Array> {
    refuseWalletAccount((await this.store.getAccount(token.account))?.registration);
    return registrationResponse(this.serverSetup, token.account, registrationRequest);
  }

  // ---- wallet accounts (docs/backup.md, "Wallet accounts") ----

  private wallet(): WalletContext {
    if (!this.siwe) throw new LifeboatError('wallet_unavailable', 'this backup service takes no wallet logins', { status: 501, hint: 'run it with `lifeboat backup-server serve`' });
    return { store: this.store, now: this.now, siwe: this.siwe };
  }

  /** A single-use nonce (5 minutes) for a login message of `account`, with the domain and chain it must name. */
  async walletNonce(account: string): Promise<{ nonce: string; expiresAt: number } & SiweConfig> {
    const ctx = this.wallet();
    return { ...(await issueNonce(ctx, account)), ...ctx.siwe };
  }

  /**
   * Registers an invited account with a wallet: the signed login message proves the address, which the
   * service keeps (a wallet record) with the wrapped key and the auth public key; the invite is used
   * up. Throws ForbiddenError `invalid_invite`, what verifySignedLogin throws, FormatError, InvalidInputError.
   */
  async walletRegister(account: string, invite: string, message: string, signature: string, rest: { wrappedKey: Uint8Array; authPublicKey: Uint8Array }): Promise<void> {
    const hash = await this.checkInvite(account, invite);
    if (rest.authPublicKey.length !== 32) throw new InvalidInputError('auth_public_key must be 32 bytes');
    this.checkWrappedKey(account, rest.wrappedKey, rest.authPublicKey);
    const reg = await walletRegistration(this.wallet(), account, message, signature, rest);
    if (!(await this.store.completeRegistration(account, hash, reg, this.now()))) throw invalidInvite();
  }

  /**
   * A wallet login: the signed message (checkWalletLogin), then the second factor if the account has
   * one; returns the wrapped backup key and a login token. Throws what checkWalletLogin and
   * SecondFactor.check throw.
   */
  async walletLogin(account: string, message: string, signature: string, totp?: string): Promise<{ wrappedKey: Uint8Array } & IssuedToken> {
    const reg = await checkWalletLogin(this.wallet(), account, message, signature);
    await this.factors.check(account, totp);
    const t = await this.issueToken(account, 'login', this.ttls.loginTokenMs);
    return { wrappedKey: reg.wrappedKey, ...t };
  }

  /** Enrols (or replaces) the second factor of the login token's account; shown once. */
  totpEnrol(token: TokenRecord): Promise<TotpEnrolment> {
    return this.factors.enrol(token.account);
  }

  /**
   * Replaces the record and wrapped key in one step (the new wrapped key must name the same auth public
   * key) and revokes every login token of the account, the one used included. Throws FormatError,
   * InvalidInputError, UnauthorizedError `unauthorized` when the token was revoked meanwhile.
   */
  async passwordFinish(token: TokenRecord, record: Uint8Array, wrappedKey: Uint8Array): Promise<void> {
    const account = token.account;
    const reg = (await this.store.getAccount(account))?.registration;
    if (!reg) throw new UnauthorizedError('the account is not registered', 'unauthorized');
    this.checkWrappedKey(account, wrappedKey, reg.authPublicKey);
    checkRecord(this.serverSetup, account, record);
    await this.store.transaction(async (tx) => {
      // A concurrent password change may have revoked this token since it was checked.
      if (!(await tx.getToken(token.hash))) throw new UnauthorizedError('the login token was revoked', 'unauthorized', 'log in again');
      await tx.replacePassword(account, { record, wrappedKey }, this.now());
      await tx.deleteTokens(account, 'login');
    });
  }

  // ---- proof of the backup key ----

  /** A fresh single-use challenge for any account name (existing or not). */
  async challenge(account: string): Promise<{ challenge: Uint8Array; expiresAt: number }> {
    checkName(account, 'account');
    const challenge = randomBytes(32);
    const expiresAt = this.now() + this.ttls.challengeMs;
    await this.store.putEphemeral({ kind: 'challenge', id: toB64u(challenge), account, value: challenge, expiresAt });
    return { challenge, expiresAt };
  }

  /**
   * Checks the Ed25519 proof over sessionProofMessage(account, challenge) against the account's auth
   * public key and issues a backup token. The challenge is used up whatever the outcome. Every failure
   * (unknown, expired or used challenge, unknown account, bad signature) is UnauthorizedError `auth_failed`.
   */
  async session(account: string, challenge: Uint8Array, signature: Uint8Array): Promise<IssuedToken> {
    checkName(account, 'account');
    if (challenge.length !== 32) throw authFailed();
    const e = await this.store.takeEphemeral('challenge', toB64u(challenge));
    if (!e || e.account !== account || e.expiresAt <= this.now()) throw authFailed();
    const reg = (await this.store.getAccount(account))?.registration;
    if (!reg || !verifyWithContext(SESSION_CONTEXT, sessionProofMessage(account, challenge), signature, reg.authPublicKey)) throw authFailed();
    return this.issueToken(account, 'backup', this.ttls.backupTokenMs);
  }

  // ---- tokens ----

  private async issueToken(account: string, kind: TokenKind, ttlMs: number): Promise<IssuedToken> {
    const { token, hash } = newToken();
    const expiresAt = this.now() + ttlMs;
    await this.store.putToken({ hash, account, kind, expiresAt });
    return { token, expiresAt };
  }

  /**
   * The token of an `Authorization: Bearer lbt_…` header, which must be of `kind` and for `account`.
   * Throws UnauthorizedError `unauthorized` (missing, malformed, unknown or revoked), `token_expired`;
   * ForbiddenError `forbidden` for another account's token or a token of the other kind.
   */
  async authenticate(authorization: string | undefined, account: string, kind: TokenKind): Promise<TokenRecord> {
    const m = /^Bearer (lbt_[A-Za-z0-9_-]{43})$/.exec(authorization ?? '');
    const hint = kind === 'backup' ? 'prove the backup key: POST /v1/accounts/NAME/challenge, then /session' : 'log in with the password first';
    if (!m) throw new UnauthorizedError('a bearer token is required', 'unauthorized', hint);
    const rec = await this.store.getToken(tokenHash(m[1]!));
    if (!rec) throw new UnauthorizedError('unknown or revoked token', 'unauthorized', hint);
    if (rec.expiresAt <= this.now()) throw new UnauthorizedError('the token has expired', 'token_expired', hint);
    if (rec.account !== account) throw new ForbiddenError('the token belongs to another account', 'forbidden');
    if (rec.kind !== kind) {
      throw new ForbiddenError(kind === 'backup' ? 'a login token does not open streams' : 'changing the password needs a login token', 'forbidden', hint);
    }
    return rec;
  }

  /** Deletes expired logins, challenges and tokens, and uploads left incomplete for a day. */
  async deleteExpired(): Promise<{ ephemerals: number; tokens: number; uploads: number }> {
    const now = this.now();
    return this.store.deleteExpired(now, now - this.ttls.staleUploadMs);
  }
}
