/**
 * The `lifeboat` CLI: one commander program, one file per command group under ./commands, and a
 * single top-level catch that prints every failure in the CLI's voice, `lifeboat: error: … (err_type)`
 * (and as JSON on stdout with --json), and maps it to an exit code: 1 the operation failed, 2 usage,
 * 3 refused for safety (docs/cli.md).
 */
import { Command, CommanderError } from 'commander';
import { LifeboatError, UsageError } from '../errors.js';
import { pathToFileURL } from 'node:url';
import { EXIT, printError, redactOptionValues } from './io.js';
import { registerCommands } from './commands/index.js';
import { addCaFileOptions } from './ca-file.js';
import { VERSION } from './version.js';

export { VERSION } from './version.js';

/** Command groups (or top-level commands) that work on the primary's data directory. */
const PRIMARY_GROUPS = new Set(['vault', 'recovery', 'unseal', 'seal']);

/** The program, with the command groups `args` need (all of them without `args`: see registerCommands). */
export async function buildProgram(args?: readonly string[]): Promise<Command> {
  const program = new Command('lifeboat')
    .description('disaster recovery for keys and key shares')
    .version(VERSION)
    .exitOverride()
    // Commander's own error line is not printed: the top-level catch prints it in the CLI's voice.
    .configureOutput({ outputError: () => {} })
    .addHelpText(
      'after',
      '\nErrors read `lifeboat: error: MESSAGE (err_type)`; with --json a failure is also\n' +
        '{"ok": false, "err_type", "message", "hint"} on stdout. Exit codes: 0 done, 1 the operation\n' +
        'failed, 2 usage, 3 refused for safety (a wrong share, a forged manifest, a rollback: stop, do not\n' +
        'retry). Prompts read a line of stdin each when stdin is not a terminal. See docs/cli.md.',
    );
  await registerCommands(program, args);
  addCaFileOptions(program); // --ca-file on every command that reaches a server (docs/operations.md, "TLS")
  // Every command on the primary's data directory first completes (or discards) an interrupted commit,
  // so vault, manifest and master key always belong to one scheme (src/primary/commit.ts). Loaded
  // here, not at the top: `--help` and `--version` need none of it (start-up, docs/kit.md).
  program.hook('preAction', async (_program, action) => {
    const group = action.parent?.name();
    if (PRIMARY_GROUPS.has(group ?? '') || PRIMARY_GROUPS.has(action.name())) {
      const [{ finishPendingCommit }, { primaryPaths, resolveDataDir }] = await Promise.all([import('../primary/commit.js'), import('../primary/datadir.js')]);
      finishPendingCommit(primaryPaths(resolveDataDir(action.opts<{ dataDir?: string }>().dataDir)));
    }
  });
  return program;
}

/** The words of the command line that name a command, e.g. `lifeboat vault put`, for a usage hint. */
function commandPath(program: Command, args: string[]): string {
  const names = [program.name()];
  let cmd: Command | undefined = program;
  for (const a of args) {
    if (a === '--') break;
    if (a.startsWith('-')) continue;
    cmd = cmd.commands.find((c) => c.name() === a || c.aliases().includes(a));
    if (!cmd) break;
    names.push(cmd.name());
    if (cmd.commands.length === 0) break;
  }
  return names.join(' ');
}

/** A commander parse error as the CLI's `usage` error; option values it echoes are redacted first. */
function usageError(err: CommanderError, program: Command, args: string[]): LifeboatError {
  const help = `run \`${commandPath(program, args)} --help\` for usage`;
  if (err.code === 'commander.help') return new LifeboatError('usage', 'a command is missing', { hint: help });
  const [first = '', ...rest] = redactOptionValues(err.message).split('\n');
  const message = first.replace(/^error: /, '');
  const more = rest.map((l) => l.trim().replace(/^\((.*)\)$/, '$1')).filter(Boolean).join(' ');
  return new LifeboatError('usage', message, { hint: more ? `${more.charAt(0).toLowerCase()}${more.slice(1)} ${help}` : help });
}

/** `--json` among the options, before a `--` (for failures before any action ran, e.g. usage errors). */
function jsonRequested(args: string[]): boolean {
  const end = args.indexOf('--');
  return (end < 0 ? args : args.slice(0, end)).includes('--json');
}

let outputGuarded = false;

/**
 * A reader that stops early (`lifeboat --help | head`) closes the pipe: Node then emits EPIPE on the
 * stream, which unhandled ends the process with a stack trace. The rest of the output goes nowhere
 * instead, and the command ends as it would have (exit 0 for help), its work not cut short.
 */
function quietOnClosedOutput(): void {
  if (outputGuarded) return;
  outputGuarded = true;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
    });
  }
}

let crashGuarded = false;

/**
 * An error no command caught (a background loop of a server, a callback after the command returned)
 * would end the process with Node's stack trace: it is printed in the CLI's voice instead,
 * `lifeboat: error: … (internal_error)` (its stack with LIFEBOAT_DEBUG=1), and the process exits 1.
 */
function voiceOnCrash(): void {
  if (crashGuarded) return;
  crashGuarded = true;
  const crash = (err: unknown): void => {
    const code = printError(err);
    if (process.env.LIFEBOAT_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.exit(code);
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
}

/** Runs the CLI and resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  quietOnClosedOutput();
  voiceOnCrash();
  const args = argv.slice(2);
  const program = await buildProgram(args);
  let action: Command | undefined;
  program.hook('preAction', (_program, a) => void (action = a));
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (err) {
    const json = action ? action.opts<{ json?: boolean }>().json === true : jsonRequested(args);
    if (err instanceof CommanderError) {
      if (err.exitCode === 0 && (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help')) return EXIT.ok;
      return printError(usageError(err, program, args), { json });
    }
    // A usage error an action raised (options that exclude each other, a threshold above its count) points at --help too.
    const failure = err instanceof LifeboatError && err.code === 'usage' && !err.hint ? new UsageError(err.message, { hint: `run \`${commandPath(program, args)} --help\` for usage` }) : err;
    const code = printError(failure, { json });
    if (!(err instanceof LifeboatError) && process.env.LIFEBOAT_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    return code;
  }
}

// Run when executed directly (tsx src/cli/main.ts ...); bin/lifeboat.js and the recovery kit import
// main() instead. No top-level await: the kit's single executable is CommonJS (scripts/build-kit.mjs).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  void main(process.argv).then((code) => void (process.exitCode = code));
}
