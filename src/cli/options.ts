/** Option parsers shared by the commands. */
import { InvalidArgumentError } from 'commander';

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
