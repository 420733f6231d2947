/**
 * The audit report as `lifeboat log audit` prints it: one JSON document (--json, snake_case), the
 * same facts as text, and the one-line form of --follow.
 */
import { toB64 } from '../../util/bytes.js';
import type { AuditReport } from './audit.js';
import { isoTime } from './summary.js';

/** What happened to the state file in this run. */
export interface StateNote {
  path: string;
  advanced: boolean;
}

/** The report as a JSON value (camelCase keys: the CLI's output turns them to snake_case). */
export function reportJson(r: AuditReport, state: StateNote | null, required: { witnesses: number; quorum: number }) {
  const ok = r.badEntryCount === 0;
  const s = r.summary;
  return {
    ok,
    ...(ok
      ? {}
      : {
          errType: 'log_entry_invalid',
          message: badEntriesMessage(r),
          hint: badEntriesHint(r),
        }),
    origin: r.checkpoint.origin,
    treeSize: r.checkpoint.size,
    rootHash: toB64(r.checkpoint.rootHash),
    checkpoint: r.note,
    witnesses: r.cosignatures.map((c) => ({ name: c.name, keyId: c.keyId.toString(16).padStart(8, '0'), timestamp: isoTime(c.timestamp * 1000) })),
    witnessesRequired: required.quorum,
    witnessesConfigured: required.witnesses,
    previous: r.previous ? { treeSize: r.previous.size, rootHash: toB64(r.previous.rootHash) } : null,
    checked: { tiles: r.tilesRead, bundles: r.bundlesRead, entries: r.entriesChecked, entriesFrom: r.entriesFrom },
    entries: r.checkpoint.size,
    firstTimestamp: isoTime(s.firstTimestamp),
    lastTimestamp: isoTime(s.lastTimestamp),
    submitters: s.submitters.map((x) => ({ submitter: x.submitter, fingerprint: x.fingerprint, entries: x.entries, firstTimestamp: isoTime(x.firstTimestamp), lastTimestamp: isoTime(x.lastTimestamp) })),
    recordTypes: s.recordTypes.map((t) => ({ recordType: t.recordType, entries: t.entries })),
    badEntryCount: r.badEntryCount,
    badEntries: r.badEntries.map((b) => ({ index: b.index, errType: b.errType, message: b.message })),
    stateFile: state?.path ?? null,
    stateAdvanced: state?.advanced ?? false,
  };
}

export function badEntriesMessage(r: AuditReport): string {
  const first = r.badEntries[0];
  const which = first ? `, the first at index ${first.index} (${first.errType})` : '';
  return `${r.badEntryCount} entr${r.badEntryCount === 1 ? 'y' : 'ies'} in the log fail their own checks${which}`;
}

export function badEntriesHint(r: AuditReport): string {
  return r.tampered
    ? 'the log signed a tree holding entries their submitters did not sign, that do not parse, or (--keys) whose key-share backup record fails its own checks: keep the report and the checkpoint as evidence, and tell the log operator and witnesses'
    : 'these entries are of a version this lifeboat cannot read: upgrade lifeboat and audit again';
}

/** The report as text lines for people. */
export function reportLines(r: AuditReport, state: StateNote | null, required: { witnesses: number; quorum: number }): string[] {
  const j = reportJson(r, state, required);
  const lines = [
    `log          ${j.origin}`,
    `tree size    ${j.treeSize}`,
    `root         ${j.rootHash}`,
    `witnesses    ${j.witnesses.length ? j.witnesses.map((w) => w.name).join(', ') : 'none'} (${required.quorum} of ${required.witnesses} required)`,
    `previous     ${j.previous ? `size ${j.previous.treeSize} root ${j.previous.rootHash}: consistent` : 'none (first audit of this log here)'}`,
    `checked      ${j.checked.tiles} hash tiles, ${j.checked.bundles} entry bundles, ${j.checked.entries} entries${j.checked.entriesFrom > 0 ? ` (from index ${j.checked.entriesFrom})` : ''}`,
    `entries      ${j.entries}${j.firstTimestamp ? `, from ${j.firstTimestamp} to ${j.lastTimestamp}` : ''}`,
  ];
  if (j.submitters.length) {
    lines.push('submitters');
    for (const x of j.submitters) lines.push(`  ${x.submitter}  ${x.fingerprint}  ${x.entries} entries, ${x.firstTimestamp} to ${x.lastTimestamp}`);
  }
  if (j.recordTypes.length) {
    lines.push('record types');
    for (const t of j.recordTypes) lines.push(`  ${t.recordType.padEnd(32)} ${t.entries}`);
  }
  if (j.badEntryCount > 0) {
    lines.push(`bad entries  ${j.badEntryCount}${j.badEntries.length < j.badEntryCount ? ` (the first ${j.badEntries.length} listed)` : ''}`);
    for (const b of j.badEntries) lines.push(`  #${b.index}  ${b.errType}  ${b.message}`);
  }
  if (state) lines.push(`state        ${state.path} (${state.advanced ? 'advanced' : 'not advanced'})`);
  return lines;
}

/** The one line per checkpoint of --follow (text). */
export function followLine(r: AuditReport): string {
  const w = r.cosignatures.length ? ` witnesses ${r.cosignatures.map((c) => c.name).join(',')}` : '';
  const bad = r.badEntryCount ? ` BAD ENTRIES ${r.badEntryCount}` : '';
  return `${new Date().toISOString()} size ${r.checkpoint.size} root ${toB64(r.checkpoint.rootHash)}${w} new entries ${r.entriesChecked}${bad}`;
}
