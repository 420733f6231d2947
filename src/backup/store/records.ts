/**
 * Argument checks and the mapping between records (camelCase, Uint8Array) and rows (snake_case,
 * driver Buffers) for the backup store. Every store method checks its arguments here before it
 * touches the database; the limits are those of the contract in ./types.ts.
 */
import { InvalidInputError } from '../../errors.js';
import { checkId, checkInt, checkMillis } from '../../keynode/store/records.js';
import { checkName } from '../format.js';
import type { AccountsTable, CompactionsTable, EntriesTable, EphemeralsTable, StreamsTable, TokensTable } from './schema.js';
import {
  type AccountRecord,
  type AccountRegistration,
  type CompactionRecord,
  type CompactionState,
  EPHEMERAL_KINDS,
  type EntryRecord,
  type EphemeralKind,
  type EphemeralRecord,
  type StreamRecord,
  TOKEN_KINDS,
  type TokenKind,
  type TokenRecord,
} from './types.js';

export { checkId, checkInt, checkMillis, checkName };

export const HASH_LEN = 32;
export const MAX_ENTRY_BYTES = 1 << 20;
export const MAX_BATCH = 10_000;
export const MAX_CHUNK_BYTES = 8 << 20;
export const MAX_CHUNKS = 1_000_000;
export const MAX_COMPACTION_SIZE = 2 ** 40;
/** OPAQUE records, wrapped keys and ephemeral states are a few hundred bytes; this is generous. */
const MAX_SMALL_BYTES = 64 << 10;
const MAX_SEQ = Number.MAX_SAFE_INTEGER;

/** A zero-copy Buffer view of checked bytes, as the drivers bind them. */
function checkBytes(value: unknown, name: string, min: number, max: number): Buffer {
  if (!(value instanceof Uint8Array) || value.length < min || value.length > max) {
    throw new InvalidInputError(min === max ? `${name} must be ${min} bytes` : `${name} must be ${min} to ${max} bytes`);
  }
  // A Buffer passes as it is: reading `.buffer` of a small Uint8Array held on V8's heap copies it out.
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

export function checkHash(value: unknown, name: string): Buffer {
  return checkBytes(value, name, HASH_LEN, HASH_LEN);
}

export function checkSmallBytes(value: unknown, name: string): Buffer {
  return checkBytes(value, name, 1, MAX_SMALL_BYTES);
}

export function checkChunk(value: unknown): Buffer {
  return checkBytes(value, 'chunk', 1, MAX_CHUNK_BYTES);
}

/** A seq, or `afterSeq` with min 0. */
export function checkSeq(value: unknown, name: string, min = 1): number {
  return checkInt(value, name, min, MAX_SEQ);
}

export function checkLimit(value: unknown): number {
  return checkInt(value, 'limit', 1, MAX_BATCH);
}

function checkOneOf<T extends string>(value: unknown, name: string, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new InvalidInputError(`${name} must be one of ${allowed.join(', ')}`);
  }
  return value as T;
}

export function checkEphemeralKind(value: unknown): EphemeralKind {
  return checkOneOf(value, 'ephemeral kind', EPHEMERAL_KINDS);
}

export function checkTokenKind(value: unknown): TokenKind {
  return checkOneOf(value, 'token kind', TOKEN_KINDS);
}

function requireObject(value: unknown, name: string): void {
  if (typeof value !== 'object' || value === null) throw new InvalidInputError(`${name} must be an object`);
}

/** Copies driver bytes (a Buffer, maybe a view into a pool) into a plain Uint8Array of their own. */
function own(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

export function checkRegistration(reg: AccountRegistration): { record: Buffer; wrapped_key: Buffer; auth_public_key: Buffer } {
  requireObject(reg, 'registration');
  return {
    record: checkSmallBytes(reg.record, 'record'),
    wrapped_key: checkSmallBytes(reg.wrappedKey, 'wrappedKey'),
    auth_public_key: checkBytes(reg.authPublicKey, 'authPublicKey', 32, 32),
  };
}

export function checkPasswordChange(reg: Pick<AccountRegistration, 'record' | 'wrappedKey'>): { record: Buffer; wrapped_key: Buffer } {
  requireObject(reg, 'registration');
  return { record: checkSmallBytes(reg.record, 'record'), wrapped_key: checkSmallBytes(reg.wrappedKey, 'wrappedKey') };
}

export function rowToAccount(r: AccountsTable): AccountRecord {
  const registered = r.record !== null && r.wrapped_key !== null && r.auth_public_key !== null;
  return {
    name: r.name,
    inviteHash: r.invite_hash === null ? null : own(r.invite_hash),
    registration: registered ? { record: own(r.record!), wrappedKey: own(r.wrapped_key!), authPublicKey: own(r.auth_public_key!) } : null,
    restoreTokenHash: r.restore_token_hash === null || r.restore_token_hash === undefined ? null : own(r.restore_token_hash),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

export function ephemeralToRow(e: EphemeralRecord): EphemeralsTable {
  requireObject(e, 'ephemeral');
  return {
    kind: checkEphemeralKind(e.kind),
    id: checkId(e.id, 'ephemeral id'),
    account: checkName(e.account, 'account'),
    value: checkSmallBytes(e.value, 'value'),
    expires_at: checkMillis(e.expiresAt, 'expiresAt'),
  };
}

export function rowToEphemeral(r: EphemeralsTable): EphemeralRecord {
  return { kind: r.kind as EphemeralKind, id: r.id, account: r.account, value: own(r.value), expiresAt: Number(r.expires_at) };
}

export function tokenToRow(t: TokenRecord): TokensTable {
  requireObject(t, 'token');
  return {
    hash: checkHash(t.hash, 'token hash'),
    account: checkName(t.account, 'account'),
    kind: checkTokenKind(t.kind),
    expires_at: checkMillis(t.expiresAt, 'expiresAt'),
  };
}

export function rowToToken(r: TokensTable): TokenRecord {
  return { hash: own(r.hash), account: r.account, kind: r.kind as TokenKind, expiresAt: Number(r.expires_at) };
}

export function rowToStream(r: StreamsTable): StreamRecord {
  return {
    account: r.account,
    stream: r.stream,
    headSeq: Number(r.head_seq),
    headHash: own(r.head_hash),
    firstSeq: Number(r.first_seq),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

/** An entry of a batch as checked: Buffers ready to bind. */
export interface CheckedEntry {
  seq: number;
  prevHash: Buffer;
  hash: Buffer;
  bytes: Buffer;
}

/** Checks a batch for appendEntries: 1 to 10,000 entries, consecutive seqs, each well formed. */
export function checkEntries(entries: EntryRecord[]): CheckedEntry[] {
  if (!Array.isArray(entries) || entries.length < 1 || entries.length > MAX_BATCH) {
    throw new InvalidInputError(`entries must be an array of 1 to ${MAX_BATCH}`);
  }
  const out: CheckedEntry[] = new Array<CheckedEntry>(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    requireObject(e, 'entry');
    const seq = checkSeq(e!.seq, 'entry seq');
    if (i > 0 && seq !== out[i - 1]!.seq + 1) throw new InvalidInputError('entries must have consecutive seqs in ascending order');
    out[i] = {
      seq,
      prevHash: checkHash(e!.prevHash, 'entry prevHash'),
      hash: checkHash(e!.hash, 'entry hash'),
      bytes: checkBytes(e!.bytes, 'entry bytes', 1, MAX_ENTRY_BYTES),
    };
  }
  return out;
}

export function rowToEntry(r: Pick<EntriesTable, 'seq' | 'prev_hash' | 'hash' | 'bytes'>): EntryRecord {
  return { seq: Number(r.seq), prevHash: own(r.prev_hash), hash: own(r.hash), bytes: own(r.bytes) };
}

export function compactionToRow(c: Omit<CompactionRecord, 'state' | 'completedAt'>): CompactionsTable {
  requireObject(c, 'compaction');
  return {
    id: checkId(c.id, 'compaction id'),
    account: checkName(c.account, 'account'),
    stream: checkName(c.stream, 'stream'),
    seq: checkSeq(c.seq, 'compaction seq'),
    hash: checkHash(c.hash, 'compaction hash'),
    size: checkInt(c.size, 'compaction size', 1, MAX_COMPACTION_SIZE),
    chunk_count: checkInt(c.chunkCount, 'chunkCount', 1, MAX_CHUNKS),
    state: 'uploading',
    created_at: checkMillis(c.createdAt, 'createdAt'),
    completed_at: null,
  };
}

export function rowToCompaction(r: CompactionsTable): CompactionRecord {
  return {
    id: r.id,
    account: r.account,
    stream: r.stream,
    seq: Number(r.seq),
    hash: own(r.hash),
    size: Number(r.size),
    chunkCount: Number(r.chunk_count),
    state: r.state as CompactionState,
    createdAt: Number(r.created_at),
    completedAt: r.completed_at === null ? null : Number(r.completed_at),
  };
}
