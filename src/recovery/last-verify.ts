/**
 * The last `recovery verify` result, kept in the primary's data directory (`last-verify.json`, 0600,
 * written atomically) for `lifeboat coverage` (docs/coverage.md, "The vault"): when it ran, whether
 * every check passed, and each member's outcome by err_type. No share, no message text, no secret.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/files.js';
import type { VerifyReport } from './verify.js';

export const LAST_VERIFY_FILE = 'last-verify.json';

export interface LastVerify {
  at: string;
  ok: boolean;
  scheme_id: string;
  threshold: number;
  checks: { member: number; kind: 'holder' | 'offline'; url: string | null; ok: boolean; code: string | null }[];
}

/** Writes the record of `report` into `dataDir`. Throws what the write throws. */
export function recordLastVerify(dataDir: string, report: VerifyReport, now = Date.now()): void {
  const rec: LastVerify = {
    at: new Date(now).toISOString(),
    ok: report.ok,
    scheme_id: report.schemeId,
    threshold: report.threshold,
    checks: report.checks.map((c) => ({ member: c.member, kind: c.kind, url: c.url ?? null, ok: c.ok, code: c.code ?? null })),
  };
  writeFileAtomic(join(dataDir, LAST_VERIFY_FILE), `${JSON.stringify(rec)}\n`);
}

/** The last record in `dataDir`, or undefined when `recovery verify` never ran there (or the file does not parse). */
export function readLastVerify(dataDir: string): LastVerify | undefined {
  const path = join(dataDir, LAST_VERIFY_FILE);
  if (!existsSync(path)) return undefined;
  try {
    const r = JSON.parse(readFileSync(path, 'utf8')) as LastVerify;
    return typeof r.at === 'string' && Array.isArray(r.checks) ? r : undefined;
  } catch {
    return undefined;
  }
}
