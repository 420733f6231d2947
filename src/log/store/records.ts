/**
 * Argument checks and the mapping between records (camelCase, Uint8Array) and rows (snake_case,
 * driver Buffers) for the log's sequencing store. Every store method checks its arguments here before
 * it touches the database; the limits are those of the contract in ./types.ts.
 */
import { InvalidInputError } from '../../errors.js';
import { MAX_ENTRY_BYTES } from '../entry.js';
import { MAX_NOTE_BYTES } from '../note.js';
import type { EntriesTable, HeadTable, SubmittersTable, WitnessesTable } from './schema.js';
import type { EntryStatus, PendingRecord, SequencedRecord, SubmitterRecord, TreeHeadRecord, WitnessStateRecord } from './types.js';

export const HASH_BYTES = 32;
export const KEY_BYTES = 32;
/** The most rows listPending, listUnpublished, commitBatch and addPendingBatch take at once. */
export const MAX_BATCH = 100_000;
/** Tree sizes, indexes and ids: below 2^53, as every BIGINT the store holds. */
const MAX_INT = Number.MAX_SAFE_INTEGER;
const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** A zero-copy Buffer view of checked bytes, as the drivers bind them. */
function checkBytes(value: unknown, name: string, min: number, max: number): Buffer {
  if (!(value instanceof Uint8Array) || value.length < min || value.length > max) {
    throw new InvalidInputError(min === max ? `${name} must be ${min} bytes` : `${name} must be ${min} to ${max} bytes`);
  }
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

export function checkHash(value: unknown, name = 'leaf hash'): Buffer {
  return checkBytes(value, name, HASH_BYTES, HASH_BYTES);
}

export function checkKey(value: unknown, name: string): Buffer {
  return checkBytes(value, name, KEY_BYTES, KEY_BYTES);
}

/** An entry's bytes: 1 to 65,535 (MAX_ENTRY_BYTES of ../entry.ts). */
export function checkEntryBytes(value: unknown): Buffer {
  return checkBytes(value, 'entry bytes', 1, MAX_ENTRY_BYTES);
}

export function checkInt(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new InvalidInputError(`${name} must be an integer from ${min} to ${max}`);
  }
  return value;
}

export function checkMillis(value: unknown, name = 'now'): number {
  return checkInt(value, name, 0, MAX_INT);
}

/** A tree size or an entry index, 0 to 2^53 - 1. */
export function checkSize(value: unknown, name: string): number {
  return checkInt(value, name, 0, MAX_INT);
}

export function checkLimit(value: unknown): number {
  return checkInt(value, 'limit', 1, MAX_BATCH);
}

/** A submitter or witness name: 1 to 64 of A-Z a-z 0-9 _ . - */
export function checkName(value: unknown, what: string): string {
  if (typeof value !== 'string' || !NAME.test(value)) throw new InvalidInputError(`${what} name must be 1 to 64 of A-Z a-z 0-9 _ . -`);
  return value;
}

/** A signed note (a checkpoint, maybe co-signed): a non-empty string of at most MAX_NOTE_BYTES UTF-8 bytes. */
export function checkNote(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length === 0 || Buffer.byteLength(value, 'utf8') > MAX_NOTE_BYTES) {
    throw new InvalidInputError(`${name} must be a note of 1 to ${MAX_NOTE_BYTES} bytes`);
  }
  return value;
}

export function requireObject(value: unknown, name: string): void {
  if (typeof value !== 'object' || value === null) throw new InvalidInputError(`${name} must be an object`);
}

/** commitBatch's ids: an array of 0 to MAX_BATCH pending ids (positive integers). Repeats are checked by the caller. */
export function checkIds(value: unknown): number[] {
  if (!Array.isArray(value) || value.length > MAX_BATCH) throw new InvalidInputError(`ids must be an array of 0 to ${MAX_BATCH} pending ids`);
  for (const id of value) {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) throw new InvalidInputError(`ids must be integers from 1 to ${MAX_INT}`);
  }
  return value as number[];
}

/** Copies driver bytes (a Buffer, maybe a view into a pool) into a plain Uint8Array of their own. */
function own(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

export function submitterToRow(rec: Omit<SubmitterRecord, 'revokedAt'>): SubmittersTable {
  requireObject(rec, 'submitter');
  return {
    name: checkName(rec.name, 'submitter'),
    signing_key: checkKey(rec.signingKey, 'signingKey'),
    box_key: checkKey(rec.boxKey, 'boxKey'),
    enrolled_at: checkMillis(rec.enrolledAt, 'enrolledAt'),
    revoked_at: null,
  };
}

export function rowToSubmitter(r: SubmittersTable): SubmitterRecord {
  return {
    name: r.name,
    signingKey: own(r.signing_key),
    boxKey: own(r.box_key),
    enrolledAt: Number(r.enrolled_at),
    revokedAt: r.revoked_at === null ? null : Number(r.revoked_at),
  };
}

export function rowToStatus(r: Pick<EntriesTable, 'id' | 'idx'>): EntryStatus {
  return r.idx === null ? { state: 'pending', id: Number(r.id) } : { state: 'sequenced', index: Number(r.idx) };
}

export function rowToPending(r: Pick<EntriesTable, 'id' | 'hash' | 'bytes' | 'received_at'>): PendingRecord {
  return { id: Number(r.id), hash: own(r.hash), bytes: own(r.bytes!), receivedAt: Number(r.received_at) };
}

export function rowToSequenced(r: Pick<EntriesTable, 'idx' | 'hash' | 'bytes'>): SequencedRecord {
  return { index: Number(r.idx), hash: own(r.hash), bytes: own(r.bytes!) };
}

export function rowToHead(r: HeadTable): TreeHeadRecord {
  return {
    size: Number(r.size),
    root: own(r.root),
    checkpoint: r.checkpoint,
    cosigned: r.cosigned,
    publishedSize: Number(r.published_size),
    updatedAt: Number(r.updated_at),
  };
}

export function rowToWitness(r: WitnessesTable): WitnessStateRecord {
  return { name: r.name, size: Number(r.size), updatedAt: Number(r.updated_at) };
}
