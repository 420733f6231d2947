/**
 * Which record of a key is current: the highest key epoch wins, so a record from before a reshare or
 * rotation is never taken for the current one, however late the log carries it. Two records of one
 * key and epoch must agree on every public fact (a retried publication re-encrypts, so ciphertexts may
 * differ); when they do not, the key is in conflict and nothing is restored for it. Pure.
 */
import { ctEqual } from '../util/bytes.js';
import type { KeyshareRecord } from './record.js';

/** A verified record and where it was found (its log index, or its position in a directory listing). */
export interface FoundRecord {
  record: KeyshareRecord;
  index: number;
}

export interface Selection {
  /** The current record of each key id, at its highest epoch (the last one found among equals). */
  latest: Map<string, FoundRecord>;
  /** Records of a lower epoch than their key's current one. */
  superseded: FoundRecord[];
  /** Keys whose highest epoch has records that disagree. They are not in `latest`. */
  conflicts: { keyId: string; epoch: number; indexes: number[] }[];
}

function samePublicFacts(a: KeyshareRecord, b: KeyshareRecord): boolean {
  return (
    a.curve === b.curve &&
    a.threshold === b.threshold &&
    a.maxSigners === b.maxSigners &&
    a.identifier === b.identifier &&
    ctEqual(a.groupKey, b.groupKey) &&
    ctEqual(a.verifyingShare, b.verifyingShare) &&
    ctEqual(a.mnemonicCheck, b.mnemonicCheck)
  );
}

/** The current record per key id of records that are all one node's (the caller filters by node first). */
export function latestPerKey(found: readonly FoundRecord[]): Selection {
  const byKey = new Map<string, FoundRecord[]>();
  for (const f of found) {
    const list = byKey.get(f.record.keyId);
    if (list) list.push(f);
    else byKey.set(f.record.keyId, [f]);
  }
  const latest = new Map<string, FoundRecord>();
  const superseded: FoundRecord[] = [];
  const conflicts: Selection['conflicts'] = [];
  for (const [keyId, list] of byKey) {
    const top = Math.max(...list.map((f) => f.record.epoch));
    const current = list.filter((f) => f.record.epoch === top).sort((a, b) => a.index - b.index);
    superseded.push(...list.filter((f) => f.record.epoch < top));
    if (current.some((f) => !samePublicFacts(f.record, current[0]!.record))) {
      conflicts.push({ keyId, epoch: top, indexes: current.map((f) => f.index) });
      continue;
    }
    latest.set(keyId, current[current.length - 1]!);
  }
  superseded.sort((a, b) => a.index - b.index);
  return { latest, superseded, conflicts };
}
