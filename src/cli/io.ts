/**
 * The CLI's one voice (after age): diagnostics go to stderr as `lifeboat: error: ...` and
 * `lifeboat: hint: ...`, lowercase, no trailing period. Results go to stdout, as JSON with --json.
 * Secrets are written only to a terminal or to a file descriptor the user named.
 */
import { writeSync } from 'node:fs';
import { LifeboatError } from '../errors.js';

export interface Output {
  /** Result text for people (stdout). */
  out(line: string): void;
  /** Progress and notes for people (stderr), silenced by --quiet. */
  info(line: string): void;
  warn(line: string): void;
  /** A machine-readable result (stdout, one JSON document). */
  json(value: unknown): void;
}

export function createOutput(opts: { quiet?: boolean } = {}): Output {
  return {
    out: (line) => void process.stdout.write(`${line}\n`),
    info: (line) => {
      if (!opts.quiet) process.stderr.write(`lifeboat: ${line}\n`);
    },
    warn: (line) => void process.stderr.write(`lifeboat: warning: ${line}\n`),
    json: (value) => void process.stdout.write(`${JSON.stringify(value, null, 2)}\n`),
  };
}

/** Prints an error (and its hint) on stderr in the CLI's voice. Unknown errors print no details beyond their message. */
export function printError(err: unknown): void {
  if (err instanceof LifeboatError) {
    process.stderr.write(`lifeboat: error: ${err.message} (${err.code})\n`);
    if (err.hint) process.stderr.write(`lifeboat: hint: ${err.hint}\n`);
    return;
  }
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`lifeboat: error: ${msg}\n`);
}

/**
 * Writes secret text to a file descriptor the user chose (`--secret-fd N`), or to the terminal.
 * Throws when neither is available, so a secret never lands in a pipe or a log by accident.
 */
export function writeSecret(text: string, fd: number | undefined): void {
  if (fd !== undefined) {
    writeSync(fd, `${text}\n`);
    return;
  }
  if (!process.stdout.isTTY) {
    throw new LifeboatError('secret_needs_terminal', 'refusing to write a secret to a non-terminal stdout', {
      hint: 'run it in a terminal, or pass --secret-fd N to write it to a file descriptor you opened',
    });
  }
  process.stdout.write(`${text}\n`);
}

/**
 * Commander echoes an unknown option whole, so a mistaken `--value=SECRET` or `--passphrase=…` would
 * reach stderr; every usage error passes through this first.
 */
export function redactOptionValues(str: string): string {
  return str.replace(/unknown option '([^']*)'/g, (_m, flag: string) => {
    const shown = flag.startsWith('--') ? flag.replace(/=.*$/s, '=…') : flag.slice(0, 2) + (flag.length > 2 ? '…' : '');
    return `unknown option '${shown}'`;
  });
}
