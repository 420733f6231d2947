/**
 * BackupClient's wallet accounts and second factors (docs/backup.md, "Wallet accounts", "Second
 * factor"): a registration signed with a wallet, a wallet login, and TOTP enrolment. The wrap
 * message's signature, and the key made from it, never leave this process; the service gets a
 * Sign-In with Ethereum message and its signature, the wrapped backup key and the auth public key.
 */
import { LifeboatError } from '../errors.js';
import { wipe } from '../util/bytes.js';
import { loginFinishAnswer, okAnswer, totpEnrolAnswer, walletNonceAnswer, encodeBase64 } from './api.js';
import type { BackupClient } from './client.js';
import { accountPath } from './client-http.js';
import { backupAuthKey, checkName, unwrapBackupKeyWith, wrapBackupKeyWith } from './format.js';
import { checkSignedBy, restoreWrapKey, setupWrapKey, siweMessage, type WalletSigner, wrongWalletKey } from './wallet.js';

/** How long a login message stays valid (the service takes at most 10 minutes). */
const LOGIN_MESSAGE_MS = 5 * 60_000;

/** The service's name in the wrap message and the domain of login messages: the host of its URL. */
export function serviceName(client: BackupClient): string {
  return new URL(client.url).host;
}

/**
 * A login message for `account` with a fresh nonce from the service, signed by `signer` and checked
 * against its address. Throws LifeboatError `siwe_domain_mismatch` when the service takes wallet
 * logins for another domain than the URL it was reached at, `wallet_wrong_signer`.
 */
async function signedLogin(client: BackupClient, account: string, signer: WalletSigner): Promise<{ message: string; signature: string }> {
  const n = await client.http.call('POST', `${accountPath(account)}/wallet/nonce`, {}, walletNonceAnswer);
  const host = serviceName(client);
  if (n.domain !== host) {
    throw new LifeboatError('siwe_domain_mismatch', `the backup service takes wallet logins for ${n.domain}, but it was reached as ${host}`, {
      hint: `use the URL the service is known by (its --wallet-domain ${n.domain})`,
    });
  }
  const now = Date.now();
  const message = await siweMessage({
    domain: host,
    uri: client.url,
    address: signer.address,
    account,
    chainId: n.chain_id,
    nonce: n.nonce,
    issuedAt: new Date(now),
    expirationTime: new Date(Math.min(now + LOGIN_MESSAGE_MS, Date.parse(n.expires_at))),
  });
  const signature = await signer.signMessage(message, 'login');
  await checkSignedBy(message, signature, signer.address);
  return { message, signature };
}

/**
 * Registers `account` with the operator's `invite` under a wallet: the wrap message is signed twice
 * first (a wallet whose signatures differ is refused before anything is sent), the backup key is
 * wrapped under the key made from that signature, and a signed login message proves the address.
 * Throws LifeboatError `wallet_not_deterministic`, `wallet_wrong_signer`, `invalid_invite` (403), and
 * what the service's wallet login check refuses (`siwe_*`).
 */
export async function registerWallet(client: BackupClient, account: string, invite: string, signer: WalletSigner, backupKey: Uint8Array): Promise<void> {
  checkName(account, 'account');
  const wrapKey = await setupWrapKey(signer, account, serviceName(client));
  let wrapped: Uint8Array;
  try {
    wrapped = wrapBackupKeyWith(wrapKey, account, backupKey);
  } finally {
    wipe(wrapKey);
  }
  const { message, signature } = await signedLogin(client, account, signer);
  const auth = backupAuthKey(backupKey);
  wipe(auth.secretKey);
  const body = { invite, message, signature, wrapped_key: encodeBase64(wrapped), auth_public_key: encodeBase64(auth.publicKey) };
  await client.http.call('POST', `${accountPath(account)}/register/wallet`, body, okAnswer);
}

/**
 * A wallet login: a signed login message (and `totp`, the second factor's code, when the account has
 * one), then the wrap message signed and checked, and the backup key unwrapped. Returns the backup key
 * (the caller wipes it) and a login token. Throws LifeboatError `wallet_login_failed` (401: another
 * wallet, or no such wallet account), `totp_required`, `totp_invalid`, `totp_reused`,
 * `recovery_code_used`, `wallet_wrong_signer`, `wallet_key_mismatch`, `siwe_*`.
 */
export async function loginWallet(client: BackupClient, account: string, signer: WalletSigner, opts: { totp?: string } = {}): Promise<{ backupKey: Uint8Array; loginToken: string }> {
  checkName(account, 'account');
  const { message, signature } = await signedLogin(client, account, signer);
  const f = await client.http.call('POST', `${accountPath(account)}/wallet/login`, { message, signature, ...(opts.totp ? { totp: opts.totp } : {}) }, loginFinishAnswer);
  const wrapKey = await restoreWrapKey(signer, account, serviceName(client));
  try {
    return { backupKey: unwrapBackupKeyWith(wrapKey, account, client.http.bytes(f.wrapped_key, 'wrapped_key')), loginToken: f.login_token };
  } catch (err) {
    throw wrongWalletKey(err);
  } finally {
    wipe(wrapKey);
  }
}

/** What enrolment shows once (see SecondFactor.enrol). */
export interface TotpShown {
  otpauthUri: string;
  secret: string;
  recoveryCodes: string[];
}

/** Enrols (or replaces) the account's second factor under a login token; the answer is shown once. */
export async function enrolTotp(client: BackupClient, account: string, loginToken: string): Promise<TotpShown> {
  const a = await client.http.call('POST', `${accountPath(account)}/totp`, {}, totpEnrolAnswer, { token: loginToken });
  return { otpauthUri: a.otpauth_uri, secret: a.secret, recoveryCodes: a.recovery_codes };
}

/** Removes the account's second factor under a login token. */
export async function disableTotp(client: BackupClient, account: string, loginToken: string): Promise<void> {
  await client.http.call('DELETE', `${accountPath(account)}/totp`, undefined, okAnswer, { token: loginToken });
}
