/**
 * The CLI's TLS options (docs/operations.md, "TLS"): `--tls-cert/--tls-key` on every server command,
 * and `--ca-file` on every command that reaches a server (CA_FILE_COMMANDS), which sets the CA the
 * process's clients trust (src/util/tls-fetch.ts).
 */
import type { Command } from 'commander';
import { loadTls, tlsFilesOf, type TlsMaterial } from '../http/tls.js';
import { CA_FILE_HELP, setProcessCaFile } from '../util/tls-fetch.js';

export interface TlsOpts {
  tlsCert?: string;
  tlsKey?: string;
}

/** Adds `--tls-cert FILE --tls-key FILE` to a server command. */
export function addTlsOptions(cmd: Command): Command {
  return cmd.option('--tls-cert <file>', TLS_CERT_HELP).option('--tls-key <file>', TLS_KEY_HELP);
}

export const TLS_CERT_HELP = 'serve https with this PEM certificate (its chain after it); needs --tls-key';
export const TLS_KEY_HELP = 'the PEM private key of --tls-cert (keep it 0600)';

/**
 * The server's TLS from its options: undefined for plain http. Throws UsageError when only one of the
 * two is given, and what loadTls throws (tls_file_unreadable, tls_cert_invalid, tls_key_invalid,
 * tls_key_mismatch), before anything listens.
 */
export function serverTls(o: TlsOpts): TlsMaterial | undefined {
  const files = tlsFilesOf(o);
  return files ? loadTls(files) : undefined;
}

/**
 * The commands that reach a server (a command path, or a group prefix ending in a space): each takes
 * `--ca-file`. Servers that call others (node serve, log serve, console serve) are among them.
 */
export const CA_FILE_COMMANDS: readonly string[] = [
  'unseal',
  'vault put',
  'vault rm',
  'kit sign',
  'recovery ',
  'node ',
  'key ',
  'sign',
  'backup ',
  'log serve',
  'log add',
  'log audit',
  'log prove',
  'keyshare recover',
  'ers backup',
  'ers recover',
  'fleet add node',
  'fleet add backup-service',
  'fleet add holder',
  'fleet add log',
  'coverage',
  'console serve',
];

const NODE_LOCAL = new Set(['node init', 'node show', 'node status', 'node backup', 'node seal', 'node apikey create', 'node apikey import', 'node apikey list', 'node apikey revoke', 'node whitelist add', 'node whitelist list', 'node whitelist remove', 'node mnemonic setup', 'node config get', 'node config set', 'node backup-restore-token']);

function reachesServer(path: string): boolean {
  if (NODE_LOCAL.has(path)) return false;
  return CA_FILE_COMMANDS.some((c) => (c.endsWith(' ') ? path.startsWith(c) : path === c));
}

function leaves(cmd: Command, path: string[], out: { cmd: Command; path: string }[]): void {
  if (cmd.commands.length === 0) out.push({ cmd, path: path.join(' ') });
  for (const sub of cmd.commands) leaves(sub, [...path, sub.name()], out);
}

/**
 * Adds `--ca-file FILE` to every registered command that reaches a server, and sets the process's CA
 * from it before the command runs (else $LIFEBOAT_CA_FILE holds).
 */
export function addCaFileOptions(program: Command): void {
  const found: { cmd: Command; path: string }[] = [];
  for (const top of program.commands) leaves(top, [top.name()], found);
  for (const { cmd, path } of found) {
    if (reachesServer(path)) cmd.option('--ca-file <file>', CA_FILE_HELP);
  }
  program.hook('preAction', (_program, action) => {
    const caFile = action.opts<{ caFile?: string }>().caFile;
    if (caFile) setProcessCaFile(caFile);
  });
}
