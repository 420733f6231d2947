/**
 * Read-only monitoring of the backup service (docs/backup-server.md, "Monitoring"): a monitor token
 * (`lbm_…`, made by `lifeboat backup-server monitor-token`, its SHA-256 kept in the data directory's
 * `monitor-tokens`, 0600) reads every account's stream heads, paged, for `lifeboat coverage`. It can
 * read nothing else: no entry, no compaction, no wrapped key, and it writes nothing.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { checkMonitorToken as checkToken } from '../http/monitor-token.js';
import { parseInput } from '../http/app.js';
import type { BackupStore } from './store/types.js';

export { addMonitorToken, MONITOR_TOKENS_FILE, readMonitorHashes } from '../http/monitor-token.js';

/** Throws UnauthorizedError `unauthorized` unless `header` is `Bearer lbm_…` of a known token (constant-time per hash). */
export function checkMonitorToken(header: string | undefined, hashes: Uint8Array[]): void {
  checkToken(header, hashes, 'send Authorization: Bearer lbm_… (`lifeboat backup-server monitor-token`)');
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
