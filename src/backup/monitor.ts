/**
 * Read-only monitoring of the backup service (docs/backup-server.md, "Monitoring"): a monitor token
 * (`lbm_…`, made by `lifeboat backup-server monitor-token`, its SHA-256 kept in the data directory's
 * `monitor-tokens`, 0600) reads every account's stream heads, paged, for `lifeboat coverage`. It can
 * read nothing else: no entry, no compaction, no wrapped key, and it writes nothing.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { randomBytes } from '../crypto/random.js';
import { UnauthorizedError } from '../errors.js';
import { parseInput } from '../http/app.js';
import { ctEqual, fromHex, toB64u, toHex } from '../util/bytes.js';
import { assertPrivateFile, writeFileAtomic } from '../util/files.js';
import type { BackupStore } from './store/types.js';

export const MONITOR_TOKENS_FILE = 'monitor-tokens';
const PREFIX = 'lbm_';
const utf8 = new TextEncoder();

/** The SHA-256 (hex) of each monitor token of the service in `dataDir`; [] when there is none. Throws `insecure_permissions`. */
export function readMonitorHashes(dataDir: string): Uint8Array[] {
  const path = join(dataDir, MONITOR_TOKENS_FILE);
  if (!existsSync(path)) return [];
  assertPrivateFile(path, 'monitor token file');
  return readFileSync(path, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^[0-9a-f]{64}$/.test(l))
    .map((l) => fromHex(l, 'monitor token hash', 32));
}

/** Makes a monitor token, keeps its hash beside the others (0600, atomically) and returns it (shown once). */
export function addMonitorToken(dataDir: string): string {
  const token = PREFIX + toB64u(randomBytes(32));
  const lines = readMonitorHashes(dataDir).map((h) => toHex(h));
  lines.push(toHex(sha256(utf8.encode(token))));
  writeFileAtomic(join(dataDir, MONITOR_TOKENS_FILE), `${lines.join('\n')}\n`);
  return token;
}

/** Throws UnauthorizedError `unauthorized` unless `header` is `Bearer lbm_…` of a known token (constant-time per hash). */
export function checkMonitorToken(header: string | undefined, hashes: Uint8Array[]): void {
  const m = /^Bearer (lbm_[A-Za-z0-9_-]{43})$/.exec(header ?? '');
  const h = sha256(utf8.encode(m?.[1] ?? ''));
  let ok = false;
  for (const known of hashes) ok = ctEqual(h, known) || ok;
  if (!m || !ok) throw new UnauthorizedError('a monitor token is required', 'unauthorized', 'send Authorization: Bearer lbm_… (`lifeboat backup-server monitor-token`)');
}

const streamsQuery = z.object({
  after: z.string().max(200).regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'ACCOUNT/STREAM').optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000),
});

/** `GET /v1/monitor/streams?after=ACCOUNT/STREAM&limit=N`: `{streams: [{account, stream, head_seq, first_seq, updated_at}], next}`. */
export function registerMonitorRoutes(app: FastifyInstance, deps: { store: BackupStore; hashes: () => Uint8Array[] }): void {
  app.get('/v1/monitor/streams', async (req) => {
    checkMonitorToken(req.headers.authorization, deps.hashes());
    const q = parseInput(streamsQuery, req.query, 'query');
    const out: { account: string; stream: string; head_seq: number; first_seq: number; updated_at: string }[] = [];
    let next: string | null = null;
    const [afterAccount, afterStream] = q.after?.split('/') ?? [];
    // Names sort bytewise in the store: compare (account, stream) as a pair, not as one joined string.
    const past = (a: string, s: string) => afterAccount === undefined || a > afterAccount || (a === afterAccount && s > afterStream!);
    for (const a of await deps.store.listAccounts()) {
      if (afterAccount !== undefined && a.name < afterAccount) continue;
      for (const s of await deps.store.listStreams(a.name)) {
        if (!past(s.account, s.stream)) continue;
        if (out.length === q.limit) {
          next = `${out[out.length - 1]!.account}/${out[out.length - 1]!.stream}`;
          break;
        }
        out.push({ account: s.account, stream: s.stream, head_seq: s.headSeq, first_seq: s.firstSeq, updated_at: new Date(s.updatedAt).toISOString() });
      }
      if (next) break;
    }
    return { streams: out, next };
  });
}
