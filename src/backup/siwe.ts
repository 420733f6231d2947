/**
 * The service's check of a Sign-In with Ethereum message (EIP-4361; docs/format.md, "Login message"):
 * the exact text viem's createSiweMessage makes from the fields, for this service's domain and chain,
 * with the account's statement, an issued-at and an expiry at most 10 minutes apart, and a signature
 * (EIP-191 personal_sign) that recovers to the address the message names. The nonce's single use is
 * the caller's (./wallet-logins.ts takes it from the store).
 */
import { LifeboatError, UnauthorizedError } from '../errors.js';
import { recoverSigner, siweStatement, type WalletHex } from './wallet.js';

/** How long a nonce waits for its signed message (a hardware wallet's confirmation included). */
export const SIWE_NONCE_TTL_MS = 5 * 60_000;
/** The longest a login message may be valid (issued-at to expiry). */
export const SIWE_MAX_VALIDITY_MS = 10 * 60_000;
/** Clock skew allowed for an issued-at in the future. */
export const SIWE_SKEW_MS = 60_000;
/** A service nonce: 32 hex digits (128 random bits; EIP-4361 asks for at least 8 alphanumerics). */
export const SIWE_NONCE_RE = /^[0-9a-f]{32}$/;

/** What a service accepts logins for: its domain (host[:port] of its public URL) and chain id. */
export interface SiweConfig {
  domain: string;
  chainId: number;
}

const refuse = (code: string, message: string, hint?: string) => new UnauthorizedError(message, code, hint);
const malformed = (why: string) =>
  new LifeboatError('siwe_malformed', `the login message is not a lifeboat sign-in with ethereum message: ${why}`, { status: 400, hint: 'let lifeboat write the message (node restore --wallet); sign it unchanged' });

/** The fields of a login message that passed parseLoginMessage. */
export interface LoginMessage {
  address: WalletHex;
  nonce: string;
  domain: string;
  uri: string;
  chainId: number;
  issuedAt: Date;
  expirationTime: Date;
  statement: string;
}

/**
 * Parses a login message and checks it is exactly what createSiweMessage writes for its fields
 * (nothing added, nothing reordered) with the fields Lifeboat uses and no others. Throws LifeboatError
 * `siwe_malformed` (400).
 */
export async function parseLoginMessage(message: string): Promise<LoginMessage> {
  const { parseSiweMessage, createSiweMessage } = await import('viem/siwe');
  let p: ReturnType<typeof parseSiweMessage>;
  try {
    p = parseSiweMessage(message);
  } catch {
    throw malformed('it does not parse');
  }
  if (!p.address || !p.domain || !p.uri || !p.nonce || p.version !== '1' || typeof p.chainId !== 'number' || !p.statement) throw malformed('a required field is missing');
  if (!p.issuedAt || !p.expirationTime) throw malformed('it needs an issued-at and an expiration time');
  if (p.notBefore || p.requestId || p.resources || p.scheme) throw malformed('it has fields lifeboat does not use');
  if (!SIWE_NONCE_RE.test(p.nonce)) throw malformed('the nonce is not one this service issues');
  let again: string;
  try {
    again = createSiweMessage({ address: p.address, domain: p.domain, uri: p.uri, nonce: p.nonce, version: '1', chainId: p.chainId, statement: p.statement, issuedAt: p.issuedAt, expirationTime: p.expirationTime });
  } catch {
    throw malformed('a field is invalid');
  }
  if (again !== message) throw malformed('it is not in the canonical form');
  return { address: p.address.toLowerCase() as WalletHex, nonce: p.nonce, domain: p.domain, uri: p.uri, chainId: p.chainId, issuedAt: p.issuedAt, expirationTime: p.expirationTime, statement: p.statement };
}

/**
 * Checks a parsed login message against this service and `account` at `now`, then its signature.
 * Throws UnauthorizedError (401) `siwe_domain_mismatch` (another domain, or a URI on another host),
 * `siwe_chain_mismatch`, `siwe_expired` (expired, or issued in the future), `siwe_account_mismatch`
 * (a statement for another account), `siwe_signature_invalid` (not signed by the address it names);
 * LifeboatError `siwe_malformed` (valid for longer than 10 minutes).
 */
export async function checkLoginMessage(message: string, m: LoginMessage, signature: string, cfg: SiweConfig & { account: string; now: number }): Promise<void> {
  let uriHost: string | undefined;
  try {
    uriHost = new URL(m.uri).host;
  } catch {
    uriHost = undefined;
  }
  if (m.domain !== cfg.domain || uriHost !== cfg.domain) {
    throw refuse('siwe_domain_mismatch', `the login message is for ${m.domain}, not this service (${cfg.domain})`, 'a message signed for another site never logs in here; if this service runs under another name, its operator sets `backup-server serve --wallet-domain`');
  }
  if (m.chainId !== cfg.chainId) throw refuse('siwe_chain_mismatch', `the login message is for chain ${m.chainId}, this service takes chain ${cfg.chainId}`);
  if (m.statement !== siweStatement(cfg.account)) throw refuse('siwe_account_mismatch', 'the login message is for another account');
  const issued = m.issuedAt.getTime();
  const expires = m.expirationTime.getTime();
  if (expires - issued > SIWE_MAX_VALIDITY_MS || expires <= issued) throw malformed('it must expire within 10 minutes of being issued');
  if (expires <= cfg.now) throw refuse('siwe_expired', 'the login message has expired', 'log in again: a fresh message is made and signed');
  if (issued > cfg.now + SIWE_SKEW_MS) throw refuse('siwe_expired', 'the login message is issued in the future', 'check this machine’s clock');
  let by: string;
  try {
    by = await recoverSigner(message, signature);
  } catch {
    by = '';
  }
  if (by !== m.address) throw refuse('siwe_signature_invalid', 'the login message is not signed by the address it names');
}
