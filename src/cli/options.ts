/** Option parsers shared by the commands. */
import { InvalidArgumentError } from 'commander';
import { parseTrustProxy, type TrustProxy } from '../http/trust-proxy.js';
import { LifeboatError, UsageError } from '../errors.js';

/** For repeatable options: `--holder A --holder B`. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Parses a whole number within [min, max] for commander, with a usage error that names the range. */
export function intIn(min: number, max: number): (value: string) => number {
  return (value: string) => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    return n;
  };
}

/** The data directory option every primary-side command takes. */
export const DATA_DIR_HELP = 'primary data directory (default: $LIFEBOAT_DATA_DIR or ./lifeboat-data)';

/** `serve --trust-proxy [hops|addresses]` (holder, backup service): see docs/holder.md, "Behind a proxy". */
export const TRUST_PROXY_HELP =
  'believe X-Forwarded-For from this many proxies in front (alone: 1), or only from these proxy addresses (e.g. 127.0.0.1 or 10.0.0.0/8,loopback); the proxy must set it to $remote_addr. Default: trust nothing';

/** Parses a `--trust-proxy` value for commander (a usage error otherwise). */
export function trustProxyArg(value: string): Exclude<TrustProxy, false> {
  try {
    return parseTrustProxy(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** The option's value as createBaseApp takes it: absent trusts nothing, bare `--trust-proxy` one hop. */
export function trustProxyOf(value: Exclude<TrustProxy, false> | true | undefined): TrustProxy {
  return value === true ? 1 : (value ?? false);
}

/**
 * Runs a check of the command line's own values (a threshold against the count it is taken of): its
 * `invalid_input` becomes a UsageError (exit 2, docs/cli.md); other errors pass unchanged.
 */
export function asUsage(check: () => void): void {
  try {
    check();
  } catch (err) {
    if (err instanceof LifeboatError && err.code === 'invalid_input') throw new UsageError(err.message, { hint: err.hint });
    throw err;
  }
}
