/**
 * What an audit counts: entries per submitter (its `lb1.` token and fingerprint) and per record type,
 * and the first and last entry timestamps. A summary covers entries [0, size) of a tree; the audit
 * state keeps it, so an audit of a grown log only counts the new entries on top.
 */
import { identityFingerprint, parsePublicIdentity } from '../../identity.js';
import { type LogEntry, entrySubmitter } from '../entry.js';

export interface SubmitterCount {
  submitter: string;
  fingerprint: string;
  entries: number;
  /** Milliseconds since the epoch, as the entries state. */
  firstTimestamp: number;
  lastTimestamp: number;
}

export interface RecordTypeCount {
  recordType: string;
  entries: number;
}

/** The counts as stored (audit state) and reported: arrays sorted by count, then name. */
export interface Summary {
  entries: number;
  firstTimestamp: number | null;
  lastTimestamp: number | null;
  submitters: SubmitterCount[];
  recordTypes: RecordTypeCount[];
}

export const emptySummary = (): Summary => ({ entries: 0, firstTimestamp: null, lastTimestamp: null, submitters: [], recordTypes: [] });

/** Counts entries on top of a summary. */
export class Tally {
  private entries: number;
  private first: number | null;
  private last: number | null;
  private readonly submitters = new Map<string, SubmitterCount>();
  private readonly types = new Map<string, number>();
  /** Submitter keys seen, by the hex of their 64 key bytes: one token encoding per submitter. */
  private readonly tokens = new Map<string, string>();

  constructor(from: Summary = emptySummary()) {
    this.entries = from.entries;
    this.first = from.firstTimestamp;
    this.last = from.lastTimestamp;
    for (const s of from.submitters) this.submitters.set(s.submitter, { ...s });
    for (const t of from.recordTypes) this.types.set(t.recordType, t.entries);
  }

  add(e: LogEntry): void {
    const key = Buffer.from(e.submitter.signingPublicKey).toString('hex') + Buffer.from(e.submitter.boxPublicKey).toString('hex');
    let token = this.tokens.get(key);
    if (token === undefined) {
      token = entrySubmitter(e);
      this.tokens.set(key, token);
    }
    const s = this.submitters.get(token);
    if (s) {
      s.entries++;
      s.firstTimestamp = Math.min(s.firstTimestamp, e.timestamp);
      s.lastTimestamp = Math.max(s.lastTimestamp, e.timestamp);
    } else {
      this.submitters.set(token, { submitter: token, fingerprint: identityFingerprint(e.submitter), entries: 1, firstTimestamp: e.timestamp, lastTimestamp: e.timestamp });
    }
    this.types.set(e.recordType, (this.types.get(e.recordType) ?? 0) + 1);
    this.first = this.first === null ? e.timestamp : Math.min(this.first, e.timestamp);
    this.last = this.last === null ? e.timestamp : Math.max(this.last, e.timestamp);
    this.entries++;
  }

  summary(): Summary {
    return {
      entries: this.entries,
      firstTimestamp: this.first,
      lastTimestamp: this.last,
      submitters: [...this.submitters.values()].map((s) => ({ ...s })).sort((a, b) => b.entries - a.entries || a.submitter.localeCompare(b.submitter)),
      recordTypes: [...this.types].map(([recordType, entries]) => ({ recordType, entries })).sort((a, b) => b.entries - a.entries || a.recordType.localeCompare(b.recordType)),
    };
  }
}

/** Checks a summary read back from a file: counts add up, tokens parse, fingerprints match. Returns why not, or null. */
export function summaryProblem(s: Summary, size: number): string | null {
  if (s.entries !== size) return `it counts ${s.entries} entries for a tree of ${size}`;
  const bySubmitter = s.submitters.reduce((n, x) => n + x.entries, 0);
  const byType = s.recordTypes.reduce((n, x) => n + x.entries, 0);
  if (bySubmitter !== size || byType !== size) return 'its counts per submitter or record type do not add up to its entries';
  for (const x of s.submitters) {
    try {
      if (identityFingerprint(parsePublicIdentity(x.submitter)) !== x.fingerprint) return `the fingerprint of ${x.submitter} is not its own`;
    } catch {
      return 'a submitter is not an lb1 token';
    }
  }
  if ((s.firstTimestamp === null) !== (size === 0)) return 'its timestamps do not fit its entries';
  return null;
}

/** An entry timestamp for people: ISO 8601, or the raw milliseconds when out of Date's range. */
export function isoTime(ms: number | null): string | null {
  if (ms === null) return null;
  return Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : String(ms);
}
