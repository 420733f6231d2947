/**
 * The point-in-time options of `node restore --backup-server` (docs/backup.md, "Point-in-time
 * restore"): --to-seq N or --to-time T (RFC 3339), and --dry-run.
 */
import { InvalidInputError, UsageError } from '../../errors.js';
import type { RestorePoint } from '../../backup/point.js';

export interface RestorePointOpts {
  toSeq?: number;
  toTime?: string;
  dryRun?: boolean;
}

export const RESTORE_POINT_HELP = `
Point in time: --to-seq N restores the keys as they were after entry N of the stream, --to-time T as
they were at T (RFC 3339, e.g. 2026-12-03T18:00:00Z: the last entry committed at or before T); one of
the two. \`lifeboat backup snapshots\` shows the range the service holds. A node restored to a point
before the head streams its whole state to a new stream (<stream>.at-<seq>-<random>), never on top of
the newer history. --dry-run downloads and checks everything and writes nothing.`;

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

/** Parses an RFC 3339 date-time (with a zone). Throws InvalidInputError `invalid_time`. */
export function parseRfc3339(text: string, what = '--to-time'): number {
  const ms = RFC3339.test(text) ? Date.parse(text.replace(' ', 'T')) : Number.NaN;
  if (!Number.isFinite(ms)) throw new InvalidInputError(`${what} ${JSON.stringify(text.slice(0, 64))} is not an RFC 3339 time`, { code: 'invalid_time', hint: 'for example 2026-12-03T18:00:00Z or 2026-12-03T19:00:00+01:00' });
  return ms;
}

/** True when any of the options is given. */
export function restorePointGiven(o: RestorePointOpts): boolean {
  return o.toSeq !== undefined || o.toTime !== undefined || o.dryRun === true;
}

/** The point the options name, or undefined (the head). Throws UsageError for both, `invalid_time`. */
export function restorePointOf(o: RestorePointOpts): RestorePoint | undefined {
  if (o.toSeq !== undefined && o.toTime !== undefined) throw new UsageError('give one of --to-seq and --to-time');
  if (o.toSeq !== undefined) return { seq: o.toSeq };
  if (o.toTime !== undefined) return { time: parseRfc3339(o.toTime) };
  return undefined;
}
