/**
 * Coverage of the key-share backups in a log (`lifeboat log audit --keys`, docs/keyshare.md, "Can
 * anyone verify that enough key shares are preserved?"): from the public records alone, per key, which
 * members hold a current backup and whether the key is recoverable from the log (at least threshold
 * distinct participants with a current record). A member counts only with the record `keyshare
 * recover` of that node would restore (latestPerKey, select.ts), so the audit and a recovery agree.
 * Nothing is decrypted: the records' own signatures are checked, the ciphertexts are dropped. Pure.
 */
import { encodePublicIdentity, identityFingerprint, type PublicIdentity } from '../identity.js';
import { describeIdentifier, type FrostCurve } from '../keynode/frost/suite.js';
import type { LogEntry } from '../log/entry.js';
import { toHex } from '../util/bytes.js';
import { KEYSHARE_RECORD_TYPE, type KeyshareRecord, verifyRecord } from './record.js';
import { type FoundRecord, latestPerKey } from './select.js';

/**
 * How a node's records of a key stand: `current`, its latest record of the key id is of this key at the
 * key's epoch; `stale`, its latest is of this key at an older epoch; `conflict`, its records at its
 * latest epoch disagree (a recovery restores none of them); `superseded`, its latest record of the key
 * id is of another group key at a higher epoch.
 */
export type MemberStatus = 'current' | 'stale' | 'conflict' | 'superseded';

export interface CoverageMember {
  node: PublicIdentity;
  /** The participant identifier of the member's latest record of this key (64 hex digits). */
  identifier: string;
  /** That record's key epoch and log index. */
  epoch: number;
  index: number;
  status: MemberStatus;
}

/** One key: a key id with its curve and group public key. */
export interface KeyCoverage {
  keyId: string;
  curve: FrostCurve;
  groupKey: Uint8Array;
  /** The highest epoch of any record of the key. */
  epoch: number;
  /** The threshold (and max signers) the records at that epoch state; the highest when they differ. */
  threshold: number;
  maxSigners: number;
  /** Every node with a record of the key, current members first. */
  members: CoverageMember[];
  /** Distinct participant identifiers among the current members. */
  currentMembers: number;
  /** At least `threshold` current members: the log alone brings the key back. */
  recoverable: boolean;
  /** Every member's latest record is of a newer key under the same id: not at risk, not listed as such. */
  replaced: boolean;
}

const nodeHex = (n: PublicIdentity): string => toHex(n.signingPublicKey) + toHex(n.boxPublicKey);
const keyName = (r: KeyshareRecord): string => `${r.keyId}\n${r.curve}\n${toHex(r.groupKey)}`;
const EMPTY = new Uint8Array(0);

/**
 * Collects the verified key-share backup records of a log's entries, by log index. Records taken
 * during an audit run are pending until `commit` (the run passed its tree checks), so a run that
 * fails half way, and is retried against another checkpoint, leaves nothing behind.
 */
export class CoverageCollector {
  private readonly found = new Map<number, FoundRecord>();
  private readonly pending = new Map<number, FoundRecord>();

  /**
   * Takes the `keyshare-backup/v1` record of an entry (others are ignored): its structure and its
   * signature under the node it names. Throws what verifyRecord throws (FormatError `malformed`,
   * `bad_magic`, `truncated`, `unsupported_version`; KeyshareError `keyshare_signature_invalid`).
   */
  add(index: number, entry: LogEntry): void {
    if (entry.recordType !== KEYSHARE_RECORD_TYPE) return;
    const r = verifyRecord(entry.payload);
    // only the public facts are needed: a log of many keys must not hold every ciphertext in memory
    this.pending.set(index, { index, record: { ...r, ciphertext: EMPTY, bytes: EMPTY, signature: EMPTY } });
  }

  /** Keeps the records taken since the last commit or discard. */
  commit(): void {
    for (const [i, f] of this.pending) this.found.set(i, f);
    this.pending.clear();
  }

  /** Forgets the records taken since the last commit. */
  discard(): void {
    this.pending.clear();
  }

  /** The coverage of every key among the committed records, keys at risk first (see sortCoverage). */
  coverage(): KeyCoverage[] {
    return keyCoverage([...this.found.values()]);
  }
}

/** The coverage of every key among verified records (any nodes, any order). */
export function keyCoverage(found: readonly FoundRecord[]): KeyCoverage[] {
  const byNode = new Map<string, FoundRecord[]>();
  const byKey = new Map<string, FoundRecord[]>();
  for (const f of found) {
    push(byNode, nodeHex(f.record.node), f);
    push(byKey, keyName(f.record), f);
  }
  const selections = new Map([...byNode].map(([n, list]) => [n, latestPerKey(list)]));
  const keys: KeyCoverage[] = [];
  for (const list of byKey.values()) {
    const first = list[0]!.record;
    const epoch = Math.max(...list.map((f) => f.record.epoch));
    const atEpoch = list.filter((f) => f.record.epoch === epoch).map((f) => f.record);
    const inKey = new Set(list.map((f) => f.index));
    const members: CoverageMember[] = [];
    const perNode = new Map<string, FoundRecord[]>();
    for (const f of list) push(perNode, nodeHex(f.record.node), f);
    for (const [n, own] of perNode) {
      const sel = selections.get(n)!;
      const top = Math.max(...own.map((f) => f.record.epoch));
      const mine = own.filter((f) => f.record.epoch === top).sort((a, b) => a.index - b.index).at(-1)!;
      const latest = sel.latest.get(first.keyId);
      let status: MemberStatus;
      if (sel.conflicts.some((c) => c.keyId === first.keyId && c.indexes.some((i) => inKey.has(i)))) status = 'conflict';
      else if (latest && inKey.has(latest.index)) status = latest.record.epoch === epoch ? 'current' : 'stale';
      else status = 'superseded';
      const shown = status === 'current' || status === 'stale' ? latest! : mine;
      members.push({ node: shown.record.node, identifier: shown.record.identifier, epoch: shown.record.epoch, index: shown.index, status });
    }
    members.sort((a, b) => rank(a.status) - rank(b.status) || a.identifier.localeCompare(b.identifier) || a.index - b.index);
    const threshold = Math.max(...atEpoch.map((r) => r.threshold));
    const currentMembers = new Set(members.filter((m) => m.status === 'current').map((m) => m.identifier)).size;
    keys.push({
      keyId: first.keyId,
      curve: first.curve,
      groupKey: first.groupKey,
      epoch,
      threshold,
      maxSigners: Math.max(...atEpoch.map((r) => r.maxSigners)),
      members,
      currentMembers,
      recoverable: currentMembers >= threshold,
      replaced: members.every((m) => m.status === 'superseded'),
    });
  }
  return sortCoverage(keys);
}

/** A key is at risk when it is neither recoverable from the log nor replaced by a newer key. */
export const atRisk = (k: KeyCoverage): boolean => !k.recoverable && !k.replaced;

/** Keys at risk first (the fewest current members short of the threshold first), then recoverable, then replaced; then by key id. */
export function sortCoverage(keys: KeyCoverage[]): KeyCoverage[] {
  const group = (k: KeyCoverage): number => (atRisk(k) ? 0 : k.replaced ? 2 : 1);
  return keys.sort(
    (a, b) =>
      group(a) - group(b) ||
      (group(a) === 0 ? b.threshold - b.currentMembers - (a.threshold - a.currentMembers) : 0) ||
      a.keyId.localeCompare(b.keyId) ||
      toHex(a.groupKey).localeCompare(toHex(b.groupKey)),
  );
}

function rank(s: MemberStatus): number {
  return { current: 0, conflict: 1, stale: 2, superseded: 3 }[s];
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}

/** The coverage as the JSON report prints it (camelCase: the CLI turns keys to snake_case). */
export function coverageJson(keys: readonly KeyCoverage[]) {
  return keys.map((k) => ({
    keyId: k.keyId,
    groupKey: toHex(k.groupKey),
    curve: k.curve,
    threshold: k.threshold,
    maxSigners: k.maxSigners,
    epoch: k.epoch,
    members: k.members.map((m) => ({ node: encodePublicIdentity(m.node), fingerprint: identityFingerprint(m.node), identifier: m.identifier, epoch: m.epoch, index: m.index, status: m.status })),
    currentMembers: k.currentMembers,
    recoverable: k.recoverable,
    replaced: k.replaced,
  }));
}

/** The coverage as text lines, after the audit report's. */
export function coverageLines(keys: readonly KeyCoverage[]): string[] {
  const risky = keys.filter(atRisk).length;
  const lines = [`keys         ${keys.length} key${keys.length === 1 ? '' : 's'} with backups in the log, ${risky} at risk`];
  for (const k of keys) {
    const label = atRisk(k) ? 'AT RISK' : k.replaced ? 'replaced' : 'recoverable';
    lines.push(`  ${label.padEnd(12)} ${k.keyId}  ${k.curve}  epoch ${k.epoch}  ${k.currentMembers} current, ${k.threshold} needed (${k.threshold} of ${k.maxSigners})  group ${toHex(k.groupKey)}`);
    for (const m of k.members) lines.push(`    ${m.status.padEnd(10)} ${identityFingerprint(m.node)}  ${describeIdentifier(k.curve, m.identifier)}  epoch ${m.epoch}  #${m.index}`);
  }
  return lines;
}

/** The `keys_at_risk` failure's message: how many, and the first few by name. */
export function atRiskMessage(keys: readonly KeyCoverage[]): string {
  const risky = keys.filter(atRisk);
  const named = risky.slice(0, 5).map((k) => `${k.keyId} (${k.currentMembers} of ${k.threshold})`).join(', ');
  const more = risky.length > 5 ? `, and ${risky.length - 5} more` : '';
  return `${risky.length} of ${keys.length} key${keys.length === 1 ? '' : 's'} in the log cannot be recovered from the log alone: ${named}${more}`;
}

export const AT_RISK_HINT =
  'a key needs current backup records of at least threshold distinct participants; the report lists who has one: each missing node must publish its backup of the key again (see docs/keyshare.md, "Auditing coverage")';
