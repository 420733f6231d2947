/**
 * An Ethereum wallet as a backup account's secret (docs/backup.md, "Wallet accounts"; the byte and
 * text formats are in docs/format.md, "Wallet accounts"):
 *   - the wrap message, a fixed text naming Lifeboat, the account, the service and the address, whose
 *     EIP-191 signature (r ‖ s, low-s) is the input of HKDF for the key that wraps the backup key. It
 *     never leaves the client and is never the login message;
 *   - the login, a Sign-In with Ethereum message (EIP-4361) signed with personal_sign;
 *   - the wallet record the service keeps instead of an OPAQUE record (`LBWR`: the address);
 *   - signers: a local key (tests, headless), a command that signs (`--wallet-sign-command`), or the
 *     message shown and the signature pasted back.
 * viem is loaded only when a signature is made or checked (a dynamic import), so commands that do not
 * use a wallet never load it.
 */
import { spawn } from 'node:child_process';
import { DecryptionError, FormatError, InvalidInputError, LifeboatError } from '../errors.js';
import { deriveKey } from '../crypto/kdf.js';
import { concatBytes, ctEqual, fromHex, lengthPrefixed, toHex, utf8, wipe } from '../util/bytes.js';
import { checkName } from './format.js';

export const WALLET_RECORD_MAGIC = 'LBWR';
const WALLET_RECORD_VERSION = 1;
export const ADDRESS_RE = /^0x[0-9a-fA-F]{40}$/;
export const SIGNATURE_RE = /^0x[0-9a-fA-F]{130}$/;
/** secp256k1's group order: a signature's s is taken as min(s, n - s) (EIP-2's low-s form). */
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

type Hex = `0x${string}`;

/** Throws InvalidInputError `wallet_address_invalid` unless `address` is 0x and 40 hex digits; returns it lowercase. */
export function checkAddress(address: unknown, what = 'wallet address'): Hex {
  if (typeof address !== 'string' || !ADDRESS_RE.test(address)) {
    throw new InvalidInputError(`the ${what} must be 0x and 40 hex digits`, { code: 'wallet_address_invalid', hint: 'give the account’s address, e.g. 0x8ba1f109551bD432803012645Ac136ddd64DBA72' });
  }
  return address.toLowerCase() as Hex;
}

/** The address in its EIP-55 checksummed form (what wallets show). */
export async function checksumAddress(address: string): Promise<Hex> {
  const { getAddress } = await import('viem/utils');
  return getAddress(checkAddress(address));
}

// ---- the wallet record (what the service keeps for a wallet account) ----

/** `LBWR` ‖ 0x01 ‖ address (20 bytes): 25 bytes in the account's record column. */
export function encodeWalletRecord(address: string): Uint8Array {
  return concatBytes(utf8.encode(WALLET_RECORD_MAGIC), new Uint8Array([WALLET_RECORD_VERSION]), fromHex(checkAddress(address).slice(2), 'address', 20));
}

/** Whether an account record is a wallet record (else it is an OPAQUE registration record). */
export function isWalletRecord(record: Uint8Array): boolean {
  // Bytes, not text: an OPAQUE record is random bytes, which need not be UTF-8.
  return record.length >= 4 && ctEqual(record.subarray(0, 4), utf8.encode(WALLET_RECORD_MAGIC));
}

/** The address (lowercase 0x hex) of a wallet record. Throws FormatError `unsupported_version`, `malformed`. */
export function parseWalletRecord(record: Uint8Array): Hex {
  if (!isWalletRecord(record)) throw new FormatError('bad_magic', 'not a wallet record');
  if (record.length < 5) throw new FormatError('truncated', 'the wallet record is truncated');
  if (record[4] !== WALLET_RECORD_VERSION) throw new FormatError('unsupported_version', `wallet record version ${record[4]} is not supported`);
  if (record.length !== 25) throw new FormatError('malformed', 'a wallet record is 25 bytes');
  return `0x${toHex(record.subarray(5))}`;
}

// ---- the wrap message and the key it makes ----

/**
 * The fixed message whose signature makes the wrapping key (docs/format.md, "Wrap message"). It names
 * Lifeboat, the account, the service (the host of its URL) and the address, and says in plain words
 * what a signature of it gives. `address` must be checksummed (checksumAddress).
 */
export function wrapMessage(account: string, service: string, address: string): string {
  checkName(account, 'account');
  return [
    'Lifeboat backup key, version 1',
    '',
    `Signing this message makes the key that decrypts the backups of account ${account} on the Lifeboat backup service ${service}.`,
    'Anyone who has this signature can decrypt those backups: sign it only in Lifeboat on your own machine, never on a website, and never send the signature to anyone.',
    '',
    `Account: ${account}`,
    `Service: ${service}`,
    `Wallet: ${address}`,
  ].join('\n');
}

/**
 * r ‖ s of a 65-byte EIP-191 signature with s in low form: the part a deterministic (RFC 6979) signer
 * gives the same every time, whatever form its tool writes v or s in. Throws InvalidInputError
 * `wallet_signature_malformed`.
 */
export function signatureCore(signature: string): Uint8Array {
  if (typeof signature !== 'string' || !SIGNATURE_RE.test(signature)) {
    throw new InvalidInputError('a wallet signature must be 0x and 130 hex digits (65 bytes: r, s, v)', { code: 'wallet_signature_malformed', hint: 'give the signature exactly as the wallet printed it' });
  }
  const b = fromHex(signature.slice(2), 'signature', 65);
  const v = b[64]!;
  if (v !== 0 && v !== 1 && v !== 27 && v !== 28) throw new InvalidInputError(`a wallet signature’s v must be 0, 1, 27 or 28, not ${v}`, { code: 'wallet_signature_malformed' });
  let s = BigInt(`0x${toHex(b.subarray(32, 64))}`);
  if (s > SECP256K1_N / 2n) s = SECP256K1_N - s;
  const sBytes = fromHex(s.toString(16).padStart(64, '0'), 's', 32);
  const core = concatBytes(b.subarray(0, 32), sBytes);
  wipe(b, sBytes);
  return core;
}

/**
 * The wrapping key of a wallet account: HKDF-SHA256(ikm = r ‖ s of the wrap message's signature,
 * salt = lp(account) ‖ lp(service) ‖ lp(address, 20 bytes), info `lifeboat:backup/wallet-wrap/v1`).
 * Throws what signatureCore throws.
 */
export function walletWrapKey(signature: string, account: string, service: string, address: string): Uint8Array {
  const core = signatureCore(signature);
  try {
    const salt = lengthPrefixed(utf8.encode(checkName(account, 'account')), utf8.encode(service), fromHex(checkAddress(address).slice(2), 'address', 20));
    return deriveKey(core, salt, 'backup/wallet-wrap/v1');
  } finally {
    wipe(core);
  }
}

/** The address (lowercase) that signed `message` (EIP-191). Throws InvalidInputError `wallet_signature_malformed`. */
export async function recoverSigner(message: string, signature: string): Promise<Hex> {
  signatureCore(signature);
  const { recoverMessageAddress } = await import('viem/utils');
  try {
    return (await recoverMessageAddress({ message, signature: signature as Hex })).toLowerCase() as Hex;
  } catch {
    throw new InvalidInputError('the wallet signature does not recover to any address', { code: 'wallet_signature_malformed' });
  }
}

/**
 * Checks that `signature` is `address`'s over `message` before anything is derived from it. Throws
 * LifeboatError `wallet_wrong_signer` (another wallet signed), InvalidInputError `wallet_signature_malformed`.
 */
export async function checkSignedBy(message: string, signature: string, address: string): Promise<void> {
  const by = await recoverSigner(message, signature);
  if (!ctEqual(utf8.encode(by), utf8.encode(checkAddress(address)))) {
    throw new LifeboatError('wallet_wrong_signer', `the signature is by ${await checksumAddress(by)}, not by the account’s wallet ${await checksumAddress(address)}`, {
      status: 400,
      hint: 'sign with the wallet this account was set up with (--wallet-address names it)',
    });
  }
}

/**
 * Signs the wrap message twice and derives the wrapping key, refusing a wallet whose two signatures
 * differ: it signs with random nonces (a randomised signer, a smart-contract or MPC wallet), so it
 * could never make the same key again. Throws LifeboatError `wallet_not_deterministic`, and what
 * checkSignedBy throws.
 */
export async function setupWrapKey(signer: WalletSigner, account: string, service: string): Promise<Uint8Array> {
  const address = await checksumAddress(signer.address);
  const message = wrapMessage(account, service, address);
  const first = await signer.signMessage(message, 'wrap');
  await checkSignedBy(message, first, address);
  const second = await signer.signMessage(message, 'wrap');
  await checkSignedBy(message, second, address);
  const a = signatureCore(first);
  const b = signatureCore(second);
  const same = ctEqual(a, b);
  wipe(a, b);
  if (!same) {
    throw new LifeboatError('wallet_not_deterministic', 'the wallet signed the same message twice with two different signatures, so it could never make the same key again', {
      status: 400,
      hint: 'use a wallet that signs deterministically (RFC 6979: hardware wallets, MetaMask, cast, ethers, viem); randomised signers, smart-contract and MPC wallets cannot hold a backup key. Nothing was registered',
    });
  }
  return walletWrapKey(first, account, service, address);
}

/** Signs the wrap message once (a restore) and derives the wrapping key. Throws what checkSignedBy throws. */
export async function restoreWrapKey(signer: WalletSigner, account: string, service: string): Promise<Uint8Array> {
  const address = await checksumAddress(signer.address);
  const message = wrapMessage(account, service, address);
  const signature = await signer.signMessage(message, 'wrap');
  await checkSignedBy(message, signature, address);
  return walletWrapKey(signature, account, service, address);
}

/** A wrapped key that does not open under the wallet's key: say so in the wallet's terms. */
export function wrongWalletKey(err: unknown): unknown {
  if (err instanceof DecryptionError) {
    return new LifeboatError('wallet_key_mismatch', 'the wallet’s signature does not unwrap this account’s backup key', {
      status: 400,
      hint: 'was the account set up under another service name (the host of --backup-server)? use the URL it was set up with',
    });
  }
  return err;
}

// ---- sign-in with ethereum ----

/** The statement of a login message: one line, naming the account. */
export function siweStatement(account: string): string {
  return `Log in to the Lifeboat backup service as account ${checkName(account, 'account')}. This signature unlocks nothing by itself.`;
}

export interface SiweFields {
  domain: string;
  uri: string;
  address: string;
  account: string;
  chainId: number;
  nonce: string;
  issuedAt: Date;
  expirationTime: Date;
}

/** The EIP-4361 message of a login (viem's createSiweMessage, version 1). */
export async function siweMessage(f: SiweFields): Promise<string> {
  const { createSiweMessage } = await import('viem/siwe');
  return createSiweMessage({
    domain: f.domain,
    uri: f.uri,
    address: await checksumAddress(f.address),
    statement: siweStatement(f.account),
    version: '1',
    chainId: f.chainId,
    nonce: f.nonce,
    issuedAt: f.issuedAt,
    expirationTime: f.expirationTime,
  });
}

// ---- signers ----

/** Where signatures come from; see the file comment. */
export interface WalletSigner {
  /** The wallet's address (0x and 40 hex digits), known before anything is signed. */
  address: string;
  /**
   * An EIP-191 personal_sign signature of `message` (0x and 130 hex digits). `purpose` says which
   * message it is (`login`: a SIWE message; `wrap`: the wrap message, whose signature is the key).
   */
  signMessage(message: string, purpose: 'login' | 'wrap'): Promise<string>;
}

/**
 * A local private key (viem's local account; RFC 6979, so deterministic). `hexKey` is 0x and 64 hex
 * digits (or without 0x), surrounding whitespace ignored. Throws InvalidInputError `wallet_key_invalid`.
 */
export async function localKeySigner(hexKey: string): Promise<WalletSigner> {
  const k = hexKey.trim();
  const key = (k.startsWith('0x') ? k : `0x${k}`) as Hex;
  if (!/^0x[0-9a-fA-F]{64}$/.test(key)) throw new InvalidInputError('a wallet key is 0x and 64 hex digits', { code: 'wallet_key_invalid', hint: 'the file holds the private key as hex (as `cast wallet new` prints it)' });
  const { privateKeyToAccount } = await import('viem/accounts');
  let account;
  try {
    account = privateKeyToAccount(key);
  } catch {
    throw new InvalidInputError('the wallet key is not a valid secp256k1 private key', { code: 'wallet_key_invalid' });
  }
  return { address: account.address, signMessage: (message) => account.signMessage({ message }) };
}

const SIGN_COMMAND_TIMEOUT_MS = 5 * 60_000;

/**
 * A command that signs (`--wallet-sign-command`): run by /bin/sh with the exact message on stdin
 * (no newline added), it prints the 0x signature on stdout; its stderr and the terminal stay the
 * user's (a hardware wallet's prompts). It gets LIFEBOAT_WALLET_ADDRESS and LIFEBOAT_SIGN_PURPOSE
 * (`login` or `wrap`). Throws LifeboatError `wallet_sign_failed` (exit status, timeout after 5 minutes).
 */
export function commandSigner(command: string, address: string): WalletSigner {
  checkAddress(address);
  return {
    address,
    signMessage: (message, purpose) =>
      new Promise((resolve, reject) => {
        const child = spawn('/bin/sh', ['-c', command], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, LIFEBOAT_WALLET_ADDRESS: address, LIFEBOAT_SIGN_PURPOSE: purpose } });
        let out = '';
        const timer = setTimeout(() => child.kill('SIGKILL'), SIGN_COMMAND_TIMEOUT_MS);
        child.stdout!.on('data', (d: Buffer) => {
          if (out.length < 4096) out += d.toString('utf8');
        });
        child.stdin!.on('error', () => {}); // a command that does not read its stdin
        child.on('error', (err) => {
          clearTimeout(timer);
          reject(new LifeboatError('wallet_sign_failed', `the wallet sign command could not start: ${err.message}`, { hint: 'check --wallet-sign-command' }));
        });
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          if (code !== 0) {
            reject(new LifeboatError('wallet_sign_failed', `the wallet sign command ${signal ? `was killed (${signal})` : `exited with status ${code}`}`, { hint: 'it gets the message on stdin and prints the 0x signature on stdout' }));
            return;
          }
          resolve(out.trim());
        });
        child.stdin!.end(message);
      }),
  };
}

/**
 * The message shown (`show`, on stderr) and the signature pasted back (`ask`, a hidden prompt on a
 * terminal, else the next line of stdin): for a wallet on another device.
 */
export function pasteSigner(address: string, show: (text: string) => void, ask: (prompt: string) => Promise<string>): WalletSigner {
  checkAddress(address);
  return {
    address,
    async signMessage(message, purpose) {
      const what = purpose === 'wrap' ? 'the backup key message (its signature is a secret: paste it only here)' : 'this login message';
      show(`sign ${what} with the wallet ${address} (personal_sign), exactly as below between the lines:\n-----\n${message}\n-----`);
      return (await ask('signature (0x…)')).trim();
    },
  };
}

/** A 0x-prefixed hex string (an address or a signature), as viem types it. */
export type WalletHex = Hex;
