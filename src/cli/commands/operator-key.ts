/**
 * Reading the operator key file: plain, or encrypted under a passphrase by `operator keygen
 * --passphrase` (src/identity-age.ts, loaded only for an encrypted file). The passphrase comes from
 * `--operator-passphrase-fd N`, else a hidden prompt on a terminal, else the next line of stdin.
 */
import type { Command } from 'commander';
import { type Identity, isAgeEncrypted, loadIdentity } from '../../identity.js';
import { readFileOrThrow } from '../../util/files.js';
import { promptSecret } from '../input.js';
import { intIn } from '../options.js';
import { readGivenFd } from '../../util/fd.js';

/** The prompt line of a command that reads an operator key, for promptsHelp. */
export const OPERATOR_PASSPHRASE_PROMPT = 'for an operator key encrypted under a passphrase, without --operator-passphrase-fd: its passphrase (asked first)';

export function addOperatorPassphraseOption(cmd: Command, flag = '--operator-passphrase-fd'): Command {
  return cmd.option(`${flag} <fd>`, 'read the passphrase of an encrypted operator key file from this file descriptor', intIn(0, 1023));
}

/** A passphrase from file descriptor `fd` (a file, pipe or socket), without its line end. Throws InvalidInputError `passphrase_unreadable`. */
export function readPassphraseFd(fd: number): string {
  return readGivenFd(fd, 'the passphrase', { code: 'passphrase_unreadable' }).replace(/\r?\n$/, '');
}

/** Loads the operator identity at `file`, asking for its passphrase when it is encrypted. */
export async function loadOperatorKey(file: string, passphraseFd: number | undefined): Promise<Identity> {
  if (!isAgeEncrypted(readFileOrThrow(file, 'identity file'))) return loadIdentity(file, 'operator');
  const { loadIdentityFile } = await import('../../identity-age.js');
  return loadIdentityFile(file, 'operator', async () => (passphraseFd !== undefined ? readPassphraseFd(passphraseFd) : promptSecret(`passphrase of the operator key ${file}`)));
}
