/**
 * The sequencer's submitter lookups (an add's enrolment check, before its signature is verified):
 * concurrent adds of one submitter share one store lookup, and an enrolled or revoked record is reused
 * for SUBMITTER_CACHE_MS, so a revocation takes effect in a running log within that time (docs/log.md,
 * "Running a log"). An unknown key is not kept (an enrolment takes effect at once), nor a failed lookup.
 */
import { toHex } from '../../util/bytes.js';
import type { LogStore, SubmitterRecord } from '../store/types.js';

export const SUBMITTER_CACHE_MS = 1000;
const MAX_KEPT = 10_000;

export class SubmitterCache {
  private readonly kept = new Map<string, { at: number; value: Promise<SubmitterRecord | undefined> }>();

  constructor(private readonly store: Pick<LogStore, 'getSubmitter'>) {}

  /** The submitter of that signing key (revoked or not), or undefined; throws what the store throws. */
  get(signingKey: Uint8Array): Promise<SubmitterRecord | undefined> {
    const key = toHex(signingKey);
    const now = Date.now();
    const hit = this.kept.get(key);
    if (hit && now - hit.at < SUBMITTER_CACHE_MS) return hit.value;
    const entry = { at: now, value: this.store.getSubmitter(signingKey) };
    this.kept.delete(key);
    this.kept.set(key, entry);
    if (this.kept.size > MAX_KEPT) this.kept.delete(this.kept.keys().next().value!);
    const forget = (): unknown => this.kept.get(key) === entry && this.kept.delete(key);
    entry.value.then((sub) => sub === undefined && forget(), forget);
    return entry.value;
  }
}
