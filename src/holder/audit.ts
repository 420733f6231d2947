/**
 * The holder's audit log (docs/format.md, "Share holder: audit log"): one JSON object per line,
 *
 *   {seq, at, action, actor, scheme_id?, outcome, code?, remote?, request_id?, subject?, prev, hash}
 *
 * chained by hash = hex(SHA-256(prev || canonical JSON of the entry without `hash`)), prev of the first
 * entry = 64 zeros, seq counting from 1. Canonical JSON sorts keys and has no whitespace. An entry is
 * appended and fsynced before the action it records is answered. It never holds a secret: names,
 * fingerprints, scheme ids, request ids and error codes only.
 */
import { closeSync, existsSync, fsyncSync, ftruncateSync, openSync, readFileSync } from 'node:fs';
import { sha256 } from '@noble/hashes/sha2.js';
import { LifeboatError } from '../errors.js';
import { toHex, utf8 } from '../util/bytes.js';
import { appendLineDurable } from '../util/files.js';

export const AUDIT_GENESIS = '0'.repeat(64);

/** What a caller records; the log adds seq, at, prev and hash. */
export interface AuditRecord {
  action: string;
  /** The caller's identity fingerprint, 'local' for a command on the holder, 'anonymous' for an unverified request. */
  actor: string;
  scheme_id?: string;
  outcome: 'ok' | 'refused';
  /** The err_type when refused. */
  code?: string;
  /** The client address of an HTTP request. */
  remote?: string;
  /** For releases: the single-use request id. */
  request_id?: string;
  /** The fingerprint the action is about: the new primary of an enrol, the signer of a local release. */
  subject?: string;
}

export interface AuditEntry extends AuditRecord {
  seq: number;
  at: string;
  prev: string;
  hash: string;
}

/** JSON with object keys sorted at every level, no whitespace; undefined members are left out. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

/** The chain hash of an entry: hex SHA-256 over prev (as its 64 hex characters) || canonical JSON without `hash`. */
export function auditEntryHash(entry: Omit<AuditEntry, 'hash'>): string {
  return toHex(sha256(utf8.encode(entry.prev + canonicalJson(entry))));
}

export type AuditVerification =
  | { ok: true; entries: number; head: string }
  | { ok: false; entries: number; head: string; line: number; reason: string };

/**
 * Checks a whole log: every line parses, seq counts from 1, prev is the previous hash and hash is
 * right. Returns the first broken line (1-based) and why; `entries` and `head` cover the good prefix.
 * Removing entries from the end cannot be seen here: compare `head` with a copy noted elsewhere.
 */
export function verifyAuditLog(text: string): AuditVerification {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  let prev = AUDIT_GENESIS;
  for (let i = 0; i < lines.length; i++) {
    const fail = (reason: string): AuditVerification => ({ ok: false, entries: i, head: prev, line: i + 1, reason });
    let e: AuditEntry;
    try {
      e = JSON.parse(lines[i]!) as AuditEntry;
    } catch {
      return fail('not json');
    }
    if (typeof e !== 'object' || e === null || typeof e.hash !== 'string') return fail('not an audit entry');
    if (e.seq !== i + 1) return fail(`seq is ${String(e.seq)}, expected ${i + 1} (an entry was removed or inserted)`);
    if (e.prev !== prev) return fail('prev does not match the previous entry (an entry was removed, inserted or edited)');
    const { hash, ...rest } = e;
    if (auditEntryHash(rest) !== hash) return fail('hash does not match the entry (the entry was edited)');
    prev = hash;
  }
  return { ok: true, entries: lines.length, head: prev };
}

/** Reads the log's entries (no verification). Returns [] when there is no log yet. */
export function readAuditEntries(path: string): AuditEntry[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as AuditEntry);
}

/**
 * An open audit log: knows the last seq and hash, appends durably. Only one process may append at
 * a time (the holder's directory lock sees to that).
 */
export class AuditLog {
  private seq: number;
  private prev: string;

  private constructor(
    readonly path: string,
    head: { seq: number; hash: string },
    private readonly now: () => number,
  ) {
    this.seq = head.seq;
    this.prev = head.hash;
  }

  /**
   * Opens (or starts) the log at `path`. A final line without its newline is an append cut short by a
   * crash, never acknowledged, and is cut off. Throws LifeboatError `audit_log_corrupt` when the last
   * complete line is not an entry, since the chain could not be continued.
   */
  static open(path: string, now: () => number = Date.now): AuditLog {
    if (!existsSync(path)) return new AuditLog(path, { seq: 0, hash: AUDIT_GENESIS }, now);
    let text = readFileSync(path, 'utf8');
    if (text.length && !text.endsWith('\n')) {
      const keep = text.lastIndexOf('\n') + 1;
      const fd = openSync(path, 'r+');
      try {
        ftruncateSync(fd, Buffer.byteLength(text.slice(0, keep)));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      text = text.slice(0, keep);
    }
    const last = text.trimEnd().split('\n').pop();
    if (!last) return new AuditLog(path, { seq: 0, hash: AUDIT_GENESIS }, now);
    try {
      const e = JSON.parse(last) as AuditEntry;
      if (!Number.isSafeInteger(e.seq) || !/^[0-9a-f]{64}$/.test(e.hash)) throw new Error('not an entry');
      return new AuditLog(path, { seq: e.seq, hash: e.hash }, now);
    } catch {
      throw new LifeboatError('audit_log_corrupt', `the last line of the audit log ${path} is not an audit entry`, {
        status: 500,
        hint: 'run `lifeboat holder audit --verify`; keep the file as evidence and move it aside to start a new log',
      });
    }
  }

  /** The last entry's seq and hash (0 and zeros for an empty log). */
  head(): { seq: number; hash: string } {
    return { seq: this.seq, hash: this.prev };
  }

  /** Appends one entry and fsyncs it. Throws the file system's error when it cannot. */
  append(rec: AuditRecord): AuditEntry {
    const body: Omit<AuditEntry, 'hash'> = { seq: this.seq + 1, at: new Date(this.now()).toISOString(), ...rec, prev: this.prev };
    for (const k of Object.keys(body) as (keyof typeof body)[]) if (body[k] === undefined) delete body[k];
    const entry: AuditEntry = { ...body, hash: auditEntryHash(body) };
    appendLineDurable(this.path, JSON.stringify(entry));
    this.seq = entry.seq;
    this.prev = entry.hash;
    return entry;
  }
}
