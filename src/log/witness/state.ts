/**
 * What a witness keeps per log: `logs/<origin hash>.json` (0600), the log's origin and verifier key,
 * and the last checkpoint it co-signed (the note with the log's signature and its own co-signature),
 * or null before the first. The origin hash is the lowercase hex SHA-256 of the origin, as C2SP
 * tlog-witness names logs. Every write is atomic (temp, fsync, rename, dir fsync), so a SIGKILL leaves
 * the old state or the new one; adding a log never replaces a file.
 */
import { linkSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { sha256 } from '@noble/hashes/sha2.js';
import { z } from 'zod';
import { LifeboatError } from '../../errors.js';
import { toHex, utf8 } from '../../util/bytes.js';
import { ensurePrivateDir, fsyncDir, writeFileAtomic } from '../../util/files.js';
import { type Checkpoint, peekCheckpoint } from '../checkpoint.js';
import { checkKeyName, type NoteVerifier, parseVerifierKey } from '../note.js';
import { WitnessError } from './errors.js';
import type { WitnessPaths } from './datadir.js';

/** A witnessed log as its state file holds it. */
export interface LogState {
  origin: string;
  /** The log's Ed25519 verifier key (type 0x01). */
  vkey: string;
  addedAt: string;
  /** The last checkpoint co-signed (a signed note), or null. */
  checkpoint: string | null;
  updatedAt: string;
}

const stateSchema = z.object({
  version: z.literal(1),
  origin: z.string(),
  vkey: z.string(),
  added_at: z.string(),
  checkpoint: z.string().nullable(),
  updated_at: z.string(),
});

/** SHA-256 of the origin, lowercase hex (tlog-witness, "Monitor Retrieval Mechanism"). */
export function originHash(origin: string): string {
  return toHex(sha256(utf8.encode(origin)));
}

function stateFile(paths: WitnessPaths, origin: string): string {
  return join(paths.logs, `${originHash(origin)}.json`);
}

function encodeState(s: LogState): string {
  return `${JSON.stringify({ version: 1, origin: s.origin, vkey: s.vkey, added_at: s.addedAt, checkpoint: s.checkpoint, updated_at: s.updatedAt }, null, 2)}\n`;
}

function corrupt(file: string): LifeboatError {
  // Never treat a damaged state as "no state": that would let a log roll this witness back.
  return new LifeboatError('witness_state_invalid', `the witness state ${file} does not parse`, { status: 503, hint: 'restore the file from a backup of the witness directory; do not delete it' });
}

function decodeState(file: string, text: string): LogState {
  try {
    const d = stateSchema.parse(JSON.parse(text));
    parseVerifierKey(d.vkey);
    if (d.checkpoint !== null && peekCheckpoint(d.checkpoint).origin !== d.origin) throw new Error('origin');
    return { origin: d.origin, vkey: d.vkey, addedAt: d.added_at, checkpoint: d.checkpoint, updatedAt: d.updated_at };
  } catch {
    throw corrupt(file);
  }
}

/**
 * Starts witnessing a log: its verifier key (Ed25519, type 0x01) and origin (default: the key's name).
 * Throws LogError `verifier_key_invalid`, InvalidInputError for a bad origin, WitnessError `log_exists`
 * when the origin is already witnessed (its file is never replaced).
 */
export function addLog(paths: WitnessPaths, vkey: string, origin?: string): LogState {
  const verifier = parseVerifierKey(vkey);
  const o = checkKeyName(origin ?? verifier.name, 'origin');
  const now = new Date().toISOString();
  const state: LogState = { origin: o, vkey: vkey.trim(), addedAt: now, checkpoint: null, updatedAt: now };
  ensurePrivateDir(paths.logs);
  const file = stateFile(paths, o);
  const tmp = join(paths.logs, `.add.${randomBytes(6).toString('hex')}.tmp`);
  writeFileSync(tmp, encodeState(state), { mode: 0o600, flush: true });
  try {
    linkSync(tmp, file); // fails with EEXIST: an existing log's state is never overwritten
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new WitnessError('log_exists', `the witness already witnesses ${o}`, 'see `lifeboat log witness logs`');
    throw err;
  } finally {
    rmSync(tmp, { force: true });
  }
  fsyncDir(paths.logs);
  return state;
}

/** The state of the log of `origin`, or undefined when it is not witnessed. Throws `witness_state_invalid` on a damaged file. */
export function readLog(paths: WitnessPaths, origin: string): LogState | undefined {
  return readStateFile(stateFile(paths, origin), (s) => s.origin === origin);
}

/** The state of the log whose origin hashes to `hash` (64 lowercase hex), or undefined. */
export function readLogByHash(paths: WitnessPaths, hash: string): LogState | undefined {
  if (!/^[0-9a-f]{64}$/.test(hash)) return undefined;
  return readStateFile(join(paths.logs, `${hash}.json`), (s) => originHash(s.origin) === hash);
}

/** A state file, or undefined when there is none; `belongs` must hold (it is the file of that log), else `witness_state_invalid`. */
function readStateFile(file: string, belongs: (s: LogState) => boolean): LogState | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const s = decodeState(file, text);
  if (!belongs(s)) throw corrupt(file);
  return s;
}

/** How many logs are witnessed, from the state files' names alone (none is read). */
export function countLogs(paths: WitnessPaths): number {
  try {
    return readdirSync(paths.logs).filter((n) => /^[0-9a-f]{64}\.json$/.test(n)).length;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
}

/** Every witnessed log, ordered by origin. */
export function listLogs(paths: WitnessPaths): LogState[] {
  let names: string[];
  try {
    names = readdirSync(paths.logs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names
    .filter((n) => /^[0-9a-f]{64}\.json$/.test(n))
    .map((n) => decodeState(join(paths.logs, n), readFileSync(join(paths.logs, n), 'utf8')))
    .sort((a, b) => (a.origin < b.origin ? -1 : a.origin > b.origin ? 1 : 0));
}

/** Replaces a log's checkpoint, atomically. The caller holds the log's lock and has verified it. */
export function saveCheckpoint(paths: WitnessPaths, state: LogState, checkpoint: string): LogState {
  const next = { ...state, checkpoint, updatedAt: new Date().toISOString() };
  writeFileAtomic(stateFile(paths, state.origin), encodeState(next));
  return next;
}

/** The log's verifier. */
export function logVerifier(state: LogState): NoteVerifier {
  return parseVerifierKey(state.vkey);
}

/** The checkpoint a state holds, parsed (not re-verified: it was when stored), or null. */
export function heldCheckpoint(state: LogState): Checkpoint | null {
  return state.checkpoint === null ? null : peekCheckpoint(state.checkpoint);
}
