/**
 * How every `serve` command logs (docs/operations.md, "Logs"): pino (fastify's logger) on stderr, one
 * JSON object a line when stderr is not a terminal, one line of text a line on a terminal; the same
 * default level everywhere (`info`; `--log-level`, else $LIFEBOAT_LOG_LEVEL); one line at start-up
 * (what listens where, the version), one per request (src/http/app.ts), one at shutdown (the signal,
 * clean or not). stdout keeps only the listening line.
 */
import { InvalidArgumentError, Option } from 'commander';
import type { FastifyBaseLogger } from 'fastify';
import { UsageError } from '../errors.js';
import { describeFailure } from './io.js';
import { VERSION } from './version.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const LEVEL_LIST = LOG_LEVELS.join(', ');

function isLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/** `--log-level <level>` of a serve command (`.addOption(logLevelOption())`); a value not a level is a usage error. */
export function logLevelOption(what = 'log level on stderr'): Option {
  return new Option('--log-level <level>', `${what}: ${LEVEL_LIST} (default: $LIFEBOAT_LOG_LEVEL, else info)`).argParser((value: string) => {
    if (!isLevel(value)) throw new InvalidArgumentError(`expected one of ${LEVEL_LIST}`);
    return value;
  });
}

/** What every `serve` command's --help says of its metrics and health routes (docs/monitoring.md). */
export const MONITORING_HELP =
  '\nAlso answers GET /healthz (alive), GET /readyz (503 not_ready naming the failing check) and GET /metrics\n' +
  '(Prometheus; loopback only, or with $LIFEBOAT_METRICS_TOKEN_FILE set: Authorization: Bearer <token>). docs/monitoring.md';

/** The level: the option's, else $LIFEBOAT_LOG_LEVEL's, else info. Throws UsageError for a bad variable. */
export function resolveLogLevel(option: string | undefined, env: NodeJS.ProcessEnv = process.env): LogLevel {
  const value = option ?? (env.LIFEBOAT_LOG_LEVEL || 'info');
  if (!isLevel(value)) {
    throw new UsageError(`LIFEBOAT_LOG_LEVEL=${value.slice(0, 16)} is not a log level`, { hint: `set it to one of ${LEVEL_LIST}, or unset it` });
  }
  return value;
}

interface LineSink {
  write(line: string): unknown;
}

const HIDDEN_ON_TERMINAL = new Set(['level', 'time', 'msg', 'pid', 'hostname']);

/** A pino line as one line of text for a person at a terminal: `12:00:01.250 INFO  message key=value …`. */
export function textLine(json: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const time = typeof o.time === 'string' ? o.time.slice(11, 23) : '';
  const level = String(o.level ?? '').toUpperCase().padEnd(5);
  const fields = Object.entries(o)
    .filter(([k, v]) => !HIDDEN_ON_TERMINAL.has(k) && v !== undefined && k !== 'err')
    .map(([k, v]) => `${k}=${typeof v === 'string' && /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v)}`);
  const err = o.err as { stack?: string } | undefined;
  return `${[time, level, String(o.msg ?? ''), ...fields].filter(Boolean).join(' ')}\n${err?.stack ? `${err.stack}\n` : ''}`;
}

/** The logger options of a server: the level, and stderr as JSON lines (text lines on a terminal). */
export function serverLogger(option: string | undefined): { level: LogLevel; stream: LineSink } {
  const level = resolveLogLevel(option);
  const stderr = process.stderr;
  return { level, stream: stderr.isTTY ? { write: (line: string) => stderr.write(textLine(line)) } : stderr };
}

/**
 * Warnings of a server's parts (its backup agent, its store) that may come before its logger exists:
 * as `lifeboat: warning: …` lines until `attach`, as the logger's warn lines after.
 */
export class ServerWarnings {
  private log: FastifyBaseLogger | undefined;

  constructor(private readonly early: (line: string) => void) {}

  readonly warn = (line: string): void => {
    if (this.log) this.log.warn(line);
    else this.early(line);
  };

  attach(log: FastifyBaseLogger): void {
    this.log = log;
  }
}

/** The start-up line: which server, its version, where it listens, and what it serves (`fields`). */
export function logStarted(log: FastifyBaseLogger, server: string, url: string, fields: Record<string, unknown> = {}): void {
  log.info({ event: 'start', server, version: VERSION, url, node_version: process.version, ...fields }, `lifeboat ${VERSION} ${server} listening on ${url}`);
}

/**
 * Closes a server and writes the shutdown line: the signal (or the error) that stopped it, and whether
 * it closed cleanly (`clean`: every request answered, stores closed). A close that throws is logged
 * with `clean: false` and thrown on.
 */
export async function shutDown(log: FastifyBaseLogger, server: string, cause: { signal?: NodeJS.Signals; error?: unknown }, close: () => Promise<void>): Promise<void> {
  const why = cause.signal ? { signal: cause.signal } : { signal: null, err_type: describeFailure(cause.error).err_type };
  const because = cause.signal ? `on ${cause.signal}` : `after ${why.err_type}`;
  try {
    await close();
  } catch (err) {
    log.error({ event: 'stop', server, ...why, clean: false, close_err_type: describeFailure(err).err_type }, `${server} stopped ${because}; closing failed`);
    throw err;
  }
  const line = { event: 'stop', server, ...why, clean: true };
  if (cause.signal) log.info(line, `${server} stopped ${because}, cleanly`);
  else log.error(line, `${server} stopped ${because}`);
}
