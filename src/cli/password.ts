/**
 * Where a backup password comes from (as restic's --password-file and --password-command): a file
 * (0600), the stdout of a command, or the prompt (promptSecret: hidden on a terminal, else the next
 * line of stdin). Either way the password is the text with one trailing newline removed. Shared by every
 * command that asks for the backup password (node backup-setup, node restore, backup snapshots, check,
 * passwd, totp), never from argv.
 */
import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { InvalidInputError, LifeboatError, UsageError } from '../errors.js';
import { assertPrivateFile, readFileOrThrow } from '../util/files.js';
import { promptSecret } from './input.js';

export interface PasswordOpts {
  passwordFile?: string;
  passwordCommand?: string;
}

const MAX_PASSWORD_BYTES = 64 * 1024;

/** The `--help` lines of the options addPasswordOptions adds. */
export const PASSWORD_HELP = `
Password: --password-file FILE (mode 0600) or --password-command CMD (run with sh -c; its stdout is
the password) instead of the prompt; one trailing newline is removed. A command that fails is an error
(password_command_failed) and its output is never shown.`;

/** Adds --password-file and --password-command to a command that asks for the backup password. */
export function addPasswordOptions(cmd: Command, what = 'the backup password'): Command {
  return cmd
    .option('--password-file <file>', `read ${what} from FILE (mode 0600) instead of prompting`)
    .option('--password-command <cmd>', `run CMD (sh -c) and use its stdout as ${what} (e.g. \`pass show lifeboat/backup\`)`);
}

function oneNewlineOff(text: string): string {
  return text.endsWith('\r\n') ? text.slice(0, -2) : text.endsWith('\n') ? text.slice(0, -1) : text;
}

function checked(password: string, source: string): string {
  if (password.length === 0) throw new InvalidInputError(`${source} gave an empty password`, { code: 'password_empty', hint: 'put the password in it, followed by at most one newline' });
  return password;
}

/**
 * Runs `command` with `sh -c` and returns its stdout less one trailing newline. The command's stderr
 * goes to ours (it may ask for a passphrase), its stdin is the terminal when there is one. Throws
 * LifeboatError `password_command_failed` (it could not start, exited non-zero, was killed, or wrote more
 * than 64 KiB), never with its output.
 */
export function runPasswordCommand(command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const fail = (why: string) => new LifeboatError('password_command_failed', `the password command ${why}`, { hint: 'check --password-command: it must print the password on stdout and exit 0' });
    const child = spawn('/bin/sh', ['-c', command], { stdio: [process.stdin.isTTY ? 'inherit' : 'ignore', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    child.stdout!.on('data', (d: Buffer) => {
      size += d.length;
      if (size > MAX_PASSWORD_BYTES) {
        tooLarge = true;
        child.kill('SIGKILL');
      } else chunks.push(d);
    });
    child.on('error', () => reject(fail('could not start')));
    child.on('close', (code, signal) => {
      const out = Buffer.concat(chunks);
      const text = out.toString('utf8');
      out.fill(0);
      if (tooLarge) return reject(fail(`wrote more than ${MAX_PASSWORD_BYTES} bytes`));
      if (code !== 0) return reject(fail(signal ? `was killed (${signal})` : `exited with status ${code}`));
      resolve(oneNewlineOff(text));
    });
  });
}

/**
 * The backup password from --password-file, --password-command, or the prompt `prompt`. Throws
 * UsageError when both options are given, InvalidInputError `insecure_permissions` (a file readable by
 * others), NotFoundError `file_not_found`, `password_empty`, LifeboatError `password_command_failed`.
 */
export async function readPassword(o: PasswordOpts, prompt = 'backup password'): Promise<string> {
  if (o.passwordFile !== undefined && o.passwordCommand !== undefined) throw new UsageError('give one of --password-file and --password-command');
  if (o.passwordFile !== undefined) {
    const bytes = readFileOrThrow(o.passwordFile, 'password file');
    assertPrivateFile(o.passwordFile, 'password file');
    if (bytes.length > MAX_PASSWORD_BYTES) throw new InvalidInputError(`the password file is larger than ${MAX_PASSWORD_BYTES} bytes`, { code: 'password_too_long' });
    const text = Buffer.from(bytes).toString('utf8');
    bytes.fill(0);
    return checked(oneNewlineOff(text), 'the password file');
  }
  if (o.passwordCommand !== undefined) return checked(await runPasswordCommand(o.passwordCommand), 'the password command');
  return promptSecret(prompt);
}

/** True when the password comes from a file or a command (no prompt, so none is asked twice). */
export function passwordGiven(o: PasswordOpts): boolean {
  return o.passwordFile !== undefined || o.passwordCommand !== undefined;
}

/**
 * What the backup commands give the client (BackupClient `onRateLimited`): a password login the
 * service refuses for its per-minute limit (3 a minute from one address to one account) is waited
 * out, said on `info`, and tried again, so that commands run one after another do not fail.
 */
export function waitOutLoginLimits(info: (line: string) => void): { onRateLimited: (waitSeconds: number) => void } {
  return {
    onRateLimited: (s) => info(`the backup service limits password logins per minute (docs/backup-server.md, "Rate limits"): waiting ${s} s, then trying again (Ctrl-C to stop)`),
  };
}
