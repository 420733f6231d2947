/**
 * The wallet and second-factor options of the backup commands (docs/backup.md, "Wallet accounts",
 * "Second factor"; docs/cli.md): which wallet signs and how (a local key, a command, or the message
 * shown and the signature pasted back), and showing a TOTP enrolment once.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import QRCode from 'qrcode';
import { InvalidInputError, LifeboatError, UsageError } from '../../errors.js';
import { checkAddress, commandSigner, localKeySigner, pasteSigner, type WalletSigner } from '../../backup/wallet.js';
import { qrToTerminal } from '../../recovery/qr-code.js';
import { assertPrivateFile } from '../../util/files.js';
import { promptSecret } from '../input.js';
import { passwordGiven, type PasswordOpts, readPassword } from '../password.js';
import { intIn } from '../options.js';
import { writeSecret } from '../io.js';
import { readGivenFd } from '../../util/fd.js';

export interface WalletOpts {
  wallet?: boolean;
  walletAddress?: string;
  walletKeyFile?: string;
  walletKeyFd?: number;
  walletSignCommand?: string;
}

/** Adds --wallet and how the wallet signs. */
export function addWalletOptions(cmd: Command): Command {
  return cmd
    .option('--wallet', 'the account’s secret is an Ethereum wallet instead of a password (any option below implies it)')
    .option('--wallet-address <0x…>', 'the wallet’s address (needed with --wallet-sign-command and for pasted signatures; checked against a key)')
    .option('--wallet-key-file <path>', 'sign with this private key (hex, file mode 0600): headless machines and tests')
    .option('--wallet-key-fd <n>', 'sign with the private key read from this file descriptor', intIn(0, 1 << 20))
    .option('--wallet-sign-command <cmd>', 'sign by running CMD (sh -c): the exact message on its stdin, the 0x signature on its stdout (a hardware wallet’s CLI, `cast wallet sign`)');
}

/** The `--help` note on how a wallet signs. */
export const WALLET_HELP = `
Wallet: the wallet signs a fixed message whose signature makes the key that wraps the backup key
(never sent), and a Sign-In with Ethereum message to log in (docs/backup.md, "Wallet accounts").
Without --wallet-key-file/--wallet-key-fd/--wallet-sign-command, each message is printed on stderr
and its signature (0x…) is prompted for, as a secret, after the prompts above.`;

function readKey(o: WalletOpts): string {
  if (o.walletKeyFile !== undefined) {
    assertPrivateFile(o.walletKeyFile, 'wallet key file');
    return readFileSync(o.walletKeyFile, 'utf8');
  }
  return readGivenFd(o.walletKeyFd!, 'the wallet key');
}

/**
 * The signer the options name, or undefined without any wallet option. Throws InvalidInputError
 * `wallet_address_invalid`, `wallet_key_invalid`, `wallet_address_mismatch` (a key that is not the
 * given address's), `usage` for incompatible options.
 */
export async function walletSignerOf(o: WalletOpts, show: (text: string) => void): Promise<WalletSigner | undefined> {
  const any = o.wallet || o.walletAddress !== undefined || o.walletKeyFile !== undefined || o.walletKeyFd !== undefined || o.walletSignCommand !== undefined;
  if (!any) return undefined;
  const sources = [o.walletKeyFile, o.walletKeyFd, o.walletSignCommand].filter((v) => v !== undefined).length;
  if (sources > 1) throw new InvalidInputError('give one of --wallet-key-file, --wallet-key-fd and --wallet-sign-command', { code: 'usage' });
  const address = o.walletAddress === undefined ? undefined : checkAddress(o.walletAddress, '--wallet-address');
  if (o.walletKeyFile !== undefined || o.walletKeyFd !== undefined) {
    const signer = await localKeySigner(readKey(o));
    if (address && signer.address.toLowerCase() !== address) {
      throw new InvalidInputError(`the wallet key is the key of ${signer.address}, not of --wallet-address ${o.walletAddress}`, { code: 'wallet_address_mismatch' });
    }
    return signer;
  }
  if (!address) throw new InvalidInputError('without a key, give the wallet’s address: --wallet-address 0x…', { code: 'usage' });
  if (o.walletSignCommand !== undefined) return commandSigner(o.walletSignCommand, address);
  return pasteSigner(address, show, promptSecret);
}

/** The secret options of a command that logs in: a wallet signer, or the password (--password-file, --password-command or prompted). */
export async function accountSecretOf(o: WalletOpts & PasswordOpts, show: (text: string) => void, prompt = 'backup password'): Promise<{ password: string } | { wallet: WalletSigner }> {
  const wallet = await walletSignerOf(o, show);
  if (wallet && passwordGiven(o)) throw new UsageError('a wallet account has no password: leave out --password-file and --password-command');
  return wallet ? { wallet } : { password: await readPassword(o, prompt) };
}

/** Prompts for the second factor's code when `want` (--totp). */
export async function totpOf(want: boolean | undefined): Promise<string | undefined> {
  if (!want) return undefined;
  const code = (await promptSecret('code of the authenticator app (or a recovery code)')).trim();
  if (code === '') throw new LifeboatError('totp_required', 'no code was given', { hint: 'give the 6-digit code of the authenticator app, or a recovery code' });
  return code;
}

/** Refuses, before anything changes, a secret that could only go to a pipe. Throws `secret_needs_terminal`. */
export function assertSecretOutput(secretFd: number | undefined): void {
  if (secretFd === undefined && !process.stdout.isTTY) {
    throw new LifeboatError('secret_needs_terminal', 'the totp secret and recovery codes go to a terminal only; nothing was changed', { hint: 'run it in a terminal, or pass --secret-fd N' });
  }
}

/**
 * Shows a TOTP enrolment once, as secrets are shown (a terminal, or --secret-fd N): the otpauth://
 * URI, its QR code (terminal only) and the ten recovery codes. Throws `secret_needs_terminal`.
 */
export function showTotpEnrolment(e: { otpauthUri: string; recoveryCodes: string[] }, secretFd: number | undefined): void {
  const lines = [e.otpauthUri];
  if (secretFd === undefined) {
    const code = QRCode.create(e.otpauthUri, { errorCorrectionLevel: 'M' });
    const dark = new Uint8Array(code.modules.size * code.modules.size);
    for (let i = 0; i < dark.length; i++) dark[i] = code.modules.data[i] ? 1 : 0;
    lines.push(qrToTerminal({ size: code.modules.size, dark }));
  }
  lines.push('recovery codes (each logs in once instead of a code; keep them apart from the authenticator):', ...e.recoveryCodes.map((c) => `  ${c}`));
  writeSecret(lines.join('\n'), secretFd);
}

/** A backup service URL from the command line (http or https), without trailing slashes. Throws InvalidInputError. */
export function checkServer(url: string): string {
  if (!/^https?:\/\/\S+$/.test(url)) throw new InvalidInputError(`--backup-server ${url} is not an http(s) URL`, { hint: 'for example https://backup.example.net' });
  return url.replace(/\/+$/, '');
}
