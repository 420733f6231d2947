/**
 * The `lifeboat` CLI: one commander program, one file per command group under ./commands, and a
 * single top-level catch that prints typed errors in the CLI's voice and maps them to exit codes
 * (1: the operation failed; 2: usage error).
 */
import { Command, CommanderError } from 'commander';
import { LifeboatError } from '../errors.js';
import { pathToFileURL } from 'node:url';
import { printError, redactOptionValues } from './io.js';
import { finishPendingCommit } from '../primary/commit.js';
import { primaryPaths, resolveDataDir } from '../primary/datadir.js';
import { registerCommands } from './commands/index.js';
import { registerBackupServerCommands } from './commands/backup-server.js';

export const VERSION = '0.1.0';

/** Command groups (or top-level commands) that work on the primary's data directory. */
const PRIMARY_GROUPS = new Set(['vault', 'recovery', 'unseal', 'seal']);

export function buildProgram(): Command {
  const program = new Command('lifeboat')
    .description('disaster recovery for keys and key shares')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(redactOptionValues(str.startsWith('error: ') ? `lifeboat: ${str}` : str)) });
  registerCommands(program);
  registerBackupServerCommands(program);
  // Every command on the primary's data directory first completes (or discards) an interrupted commit,
  // so vault, manifest and master key always belong to one scheme (src/primary/commit.ts).
  program.hook('preAction', (_program, action) => {
    const group = action.parent?.name();
    if (PRIMARY_GROUPS.has(group ?? '') || PRIMARY_GROUPS.has(action.name())) {
      finishPendingCommit(primaryPaths(resolveDataDir(action.opts<{ dataDir?: string }>().dataDir)));
    }
  });
  return program;
}

/** Runs the CLI and resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return 2;
    }
    printError(err);
    if (!(err instanceof LifeboatError) && process.env.LIFEBOAT_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    return 1;
  }
}

// Run when executed directly (tsx src/cli/main.ts ...); bin/lifeboat.js imports main() instead.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv);
}
