/**
 * `--ca-file FILE` on every command that reaches a server (CA_FILE_COMMANDS), which sets the CA the
 * process's clients trust besides the system roots (src/util/tls-fetch.ts; docs/operations.md, "TLS").
 */
import type { Command } from 'commander';
import { CA_FILE_HELP, setProcessCaFile } from '../util/tls-fetch.js';

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
    if (!reachesServer(path)) continue;
    // fleet add records it in the part's entry (docs/format.md, "Fleet file")
    cmd.option('--ca-file <file>', path.startsWith('fleet add ') ? 'PEM file of the CA this part’s https:// URL is checked against, recorded in the fleet file as ca_file' : CA_FILE_HELP);
  }
  program.hook('preAction', (_program, action) => {
    const caFile = action.opts<{ caFile?: string }>().caFile;
    if (caFile) setProcessCaFile(caFile);
  });
}
