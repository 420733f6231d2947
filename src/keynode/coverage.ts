/**
 * `GET /v1/coverage?after=&limit=` (operator; docs/keynode.md, "Coverage"): one page of the node's keys,
 * in key id order, with the public facts `lifeboat coverage` needs about each (threshold, members,
 * share epoch, the durable channels that hold it at that epoch), and on the first page the node's own
 * paths (backup stream heads, fail-over lag, snapshot time). Never a share, a nonce or a token: the
 * page is built from public columns only (the store never reads the share for it). One query per
 * page, whatever its size.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { parseInput } from '../http/app.js';
import { API_PREFIX, KEY_ID } from './api.js';
import type { DurableChannel, KeyNodeStore } from './store/types.js';

export const COVERAGE_PAGE_MAX = 5000;
export const coverageQuery = z.object({
  after: z.string().regex(KEY_ID, 'a key id is 1..64 of A-Z a-z 0-9 _ -').optional(),
  limit: z.coerce.number().int().min(1).max(COVERAGE_PAGE_MAX).default(1000),
});

/** One key as the coverage page shows it. */
export interface CoverageKey {
  key_id: string;
  curve: string;
  group_public_key: string;
  identifier: string;
  threshold: number;
  max_signers: number;
  status: string;
  epoch: number;
  created_at: string;
  /** The channels holding the key at its current epoch: backup `{seq}`, log `{index, checkpoint_size}`, ers `{}`. */
  channels: Partial<Record<DurableChannel, Record<string, unknown>>>;
}

export interface CoveragePage {
  /** The node's own facts; on the first page only (no `after`). */
  node?: Record<string, unknown>;
  keys: CoverageKey[];
  /** The `after` of the next page, or null after the last one. */
  next: string | null;
}

/** Reads one page (one store query). Throws the store's errors. */
export async function coveragePage(store: KeyNodeStore, after: string | undefined, limit: number): Promise<Omit<CoveragePage, 'node'>> {
  const rows = await store.listCoverageKeys(after, limit);
  const keys = new Array<CoverageKey>(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const k = rows[i]!;
    const held: CoverageKey['channels'] = {};
    for (const c of k.channels) {
      let detail: unknown = {};
      try {
        detail = JSON.parse(c.detail);
      } catch {
        /* an unreadable detail still says the channel holds it */
      }
      held[c.channel] = detail && typeof detail === 'object' ? (detail as Record<string, unknown>) : {};
    }
    keys[i] = { key_id: k.keyId, curve: k.curve, group_public_key: k.groupPublicKey, identifier: k.identifier, threshold: k.threshold, max_signers: k.maxSigners, status: k.status, epoch: k.epoch, created_at: new Date(k.createdAt).toISOString(), channels: held };
  }
  return { keys, next: rows.length < limit ? null : rows[rows.length - 1]!.keyId };
}

/** Registers the route; `reader` authenticates (an operator API key or a monitor token, server.ts: 401/403 otherwise), `facts` gives the node's own paths. */
export function registerCoverageRoute(app: FastifyInstance, deps: { store: KeyNodeStore; facts: () => Promise<Record<string, unknown>> }, reader: (req: FastifyRequest) => Promise<unknown>): void {
  app.get(`${API_PREFIX}/coverage`, async (req): Promise<CoveragePage> => {
    await reader(req);
    const q = parseInput(coverageQuery, req.query, 'query');
    const page = await coveragePage(deps.store, q.after, q.limit);
    return q.after === undefined ? { node: await deps.facts(), ...page } : page;
  });
}

/** What `node serve` reports as its own paths on the first coverage page (no secret: heads, counts, times). */
export async function nodeCoverageFacts(n: { config: { backup?: { account: string } | null }; durable: { required: readonly DurableChannel[] }; failover: { status(): Promise<{ failover: { url: string; fingerprint: string; lag: number; last_error: string | null; last_synced_at: string | null } | null }> }; backup?: { status(): Promise<{ stream: string; sealedSeq: number; ackedSeq: number; compactedSeq: number; compactedAt: string | null; unsealed: number; unacked: number; pendingKeys: number; lastError: string | null; rollbackDetected: boolean }> } }): Promise<Record<string, unknown>> {
  const [fo, b] = await Promise.all([n.failover.status(), n.backup?.status()]);
  return {
    required_channels: [...n.durable.required],
    backup: b ? { stream: b.stream, account: n.config.backup?.account ?? null, sealed_seq: b.sealedSeq, acked_seq: b.ackedSeq, unsealed: b.unsealed, unacked: b.unacked, compacted_seq: b.compactedSeq, compacted_at: b.compactedAt, pending_keys: b.pendingKeys, last_error: b.lastError, rollback_detected: b.rollbackDetected } : null,
    failover: fo.failover ? { url: fo.failover.url, fingerprint: fo.failover.fingerprint, lag: fo.failover.lag, last_error: fo.failover.last_error, last_synced_at: fo.failover.last_synced_at } : null,
    now: new Date().toISOString(),
  };
}
