/**
 * The CLI's one voice (after age): diagnostics go to stderr as `lifeboat: error: ... (err_type)` and
 * `lifeboat: hint: ...`, lowercase, no trailing period. Results go to stdout, as JSON with --json, whose
 * keys are snake_case; a failure with --json is also `{"ok": false, "err_type", "message", "hint"}` on
 * stdout. Exit codes (docs/cli.md): 0 done, 1 the operation failed, 2 usage, 3 refused for safety.
 * Secrets are written only to a terminal or to a file descriptor the user named.
 */
import { writeSync } from 'node:fs';
import { InvalidInputError, LifeboatError } from '../errors.js';
import { fdNotGivenReason } from '../util/fd.js';

/** The exit codes, one table in docs/cli.md. */
export const EXIT = {
  ok: 0,
  /** The operation failed: fix the input, or try again once the cause (a peer down, a busy file) is gone. */
  failed: 1,
  /** The command line does not parse: an unknown option or command, a missing or malformed argument. */
  usage: 2,
  /** Refused for safety (LifeboatError.safety): a wrong share, a forged manifest, a rollback. Stop and look. */
  safety: 3,
} as const;

export interface Output {
  /** Result text for people (stdout). */
  out(line: string): void;
  /** Progress and notes for people (stderr), silenced by --quiet. */
  info(line: string): void;
  warn(line: string): void;
  /** A machine-readable result (stdout, one JSON document), its keys in snake_case (see snakeCaseKeys). */
  json(value: unknown): void;
}

export function createOutput(opts: { quiet?: boolean } = {}): Output {
  return {
    out: (line) => void process.stdout.write(`${line}\n`),
    info: (line) => {
      if (!opts.quiet) process.stderr.write(`lifeboat: ${line}\n`);
    },
    warn: (line) => void process.stderr.write(`lifeboat: warning: ${line}\n`),
    json: (value) => void process.stdout.write(`${JSON.stringify(snakeCaseKeys(value), null, 2)}\n`),
  };
}

const CAMEL_KEY = /^[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)+$/;

/**
 * The CLI's JSON is snake_case everywhere, while domain objects are camelCase TypeScript: every
 * `--json` document passes through here, so a result printed whole (`{ ok: true, ...r }`) cannot leak
 * a camelCase key. Only keys shaped like camelCase identifiers change (`ackedSeq` -> `acked_seq`);
 * other keys and all values are kept. A map keyed by data (names a user chose) must therefore be
 * printed as an array of objects, as every command does.
 */
export function snakeCaseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(snakeCaseKeys);
  if (value === null || typeof value !== 'object') return value;
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[CAMEL_KEY.test(k) ? k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`) : k] = snakeCaseKeys(v);
  return out;
}

/** What a failure prints: its err_type, lowercase message and hint, and the exit code it maps to. */
export interface CliFailure {
  err_type: string;
  message: string;
  hint: string | null;
  exitCode: number;
}

/**
 * Maps anything thrown to the CLI's failure: a LifeboatError keeps its code (`usage` exits 2, a
 * refusal for safety 3, any other 1); anything else is `internal_error`, exit 1, with its message only.
 */
export function describeFailure(err: unknown): CliFailure {
  if (err instanceof LifeboatError) {
    const exitCode = err.code === 'usage' ? EXIT.usage : err.safety ? EXIT.safety : EXIT.failed;
    return { err_type: err.code, message: err.message, hint: err.hint ?? null, exitCode };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { err_type: 'internal_error', message, hint: 'an unexpected error: run again with LIFEBOAT_DEBUG=1 for its stack trace, and report it', exitCode: EXIT.failed };
}

/**
 * Prints a failure in the CLI's voice on stderr (`lifeboat: error: MESSAGE (err_type)`, then the hint),
 * and with `json` also `{"ok": false, "err_type", "message", "hint"}` on stdout. Returns the exit code.
 */
export function printError(err: unknown, opts: { json?: boolean } = {}): number {
  const f = describeFailure(err);
  process.stderr.write(`lifeboat: error: ${f.message} (${f.err_type})\n`);
  if (f.hint) process.stderr.write(`lifeboat: hint: ${f.hint}\n`);
  if (opts.json) process.stdout.write(`${JSON.stringify({ ...detailsOf(err), ok: false, err_type: f.err_type, message: f.message, hint: f.hint }, null, 2)}\n`);
  return f.exitCode;
}

/** Fields an error adds to its `--json` failure document through `failureDetails()` (`sign`'s per-node `failures`). */
function detailsOf(err: unknown): Record<string, unknown> {
  const d = err instanceof LifeboatError ? (err as { failureDetails?: unknown }).failureDetails : undefined;
  return typeof d === 'function' ? (snakeCaseKeys(d.call(err)) as Record<string, unknown>) : {};
}

/**
 * Throws InvalidInputError `output_unwritable` when `--secret-fd N` names a descriptor the caller did
 * not open for this command (src/util/fd.ts): call it before making the secret, so nothing changes.
 */
export function checkSecretFd(fd: number | undefined): void {
  const not = fd === undefined ? undefined : fdNotGivenReason(fd);
  if (not) throw new InvalidInputError(`refusing to write a secret to file descriptor ${fd}: ${not}`, { code: 'output_unwritable', hint: `open it for this command, e.g. ${fd}>secret-file` });
}

/**
 * Writes secret text to a file descriptor the user chose (`--secret-fd N`), or to the terminal.
 * Throws when neither is available, so a secret never lands in a pipe or a log by accident.
 */
export function writeSecret(text: string, fd: number | undefined): void {
  if (fd !== undefined) {
    checkSecretFd(fd);
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

/** Resolves with the first SIGTERM or SIGINT (then stops listening for both): when a server should shut down. */
export function untilSignalled(): Promise<NodeJS.Signals> {
  return new Promise<NodeJS.Signals>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve(signal);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
