/**
 * The changes a key node's backup stream carries, one per entry (docs/format.md, "Backup stream"):
 * UTF-8 JSON, byte fields of store records as {"b64": "..."}.
 *
 *   {"op": "secrets", "identity", "storage_key", "export_key", "wrapping_key"}   the node's vault keys (b64)
 *   {"op": "key_put", "key": KeyRecord}           a key stored or replaced (with its tenant; none: `default`)
 *   {"op": "key_status", "key_id", "status"}
 *   {"op": "key_delete", "key_id"}
 *   {"op": "api_key_put", "api_key": ApiKeyRecord}
 *   {"op": "api_key_revoke", "id", "at"}
 *
 * The agent adds `"committed_at"` (ms since the epoch: when the change was committed on the node) as
 * it seals a change into an entry; a point-in-time restore (`node restore --to-time`) reads it. Entries
 * sealed before it existed have none.
 *
 * Every change is a whole-state upsert or an idempotent edit, so replaying a change a compaction
 * already holds leaves the state as it was (a compaction may be taken while changes are in flight).
 */
import { FormatError } from '../errors.js';
import { fromB64, toB64, utf8 } from '../util/bytes.js';
import type { ApiKeyRecord, KeyRecord, KeyStatus, StoreSnapshot } from '../keynode/store/types.js';
import { KEY_STATUSES } from '../keynode/store/types.js';
import { apiKeyTenantFromBackup, keyTenantFromBackup } from '../keynode/tenants.js';

/** The node's vault keys as a stream carries them (raw bytes). */
export interface StreamSecrets {
  identity: Uint8Array;
  storageKey: Uint8Array;
  exportKey: Uint8Array;
  wrappingKey: Uint8Array;
}

export type NodeChange =
  | { op: 'secrets'; secrets: StreamSecrets }
  | { op: 'key_put'; key: KeyRecord }
  | { op: 'key_status'; keyId: string; status: KeyStatus }
  | { op: 'key_delete'; keyId: string }
  | { op: 'api_key_put'; apiKey: ApiKeyRecord }
  | { op: 'api_key_revoke'; id: string; at: number };

type Json = Record<string, unknown>;

/** A store record with its byte fields as {"b64": ...}. */
export function recordToJson(rec: object): Json {
  return Object.fromEntries(Object.entries(rec).map(([k, v]) => [k, v instanceof Uint8Array ? { b64: toB64(v) } : v]));
}

/** The inverse of recordToJson. Shapes are checked by the store when the record is written. */
export function jsonToRecord<T>(rec: unknown, what: string): T {
  if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) throw new FormatError('malformed', `${what} is malformed`);
  return Object.fromEntries(
    Object.entries(rec).map(([k, v]) => [k, v && typeof v === 'object' && 'b64' in v ? fromB64(String((v as { b64: unknown }).b64), `${what}.${k}`) : v]),
  ) as T;
}

/** A KeyRecord from a change or compaction; one written before tenants belongs to `default` (docs/format.md, "Store records"). */
function keyFromJson(rec: unknown): KeyRecord {
  return keyTenantFromBackup(jsonToRecord<KeyRecord>(rec, 'key'), 'backup change: key');
}

/** An ApiKeyRecord from a change or compaction; without a tenant a client key's is `default`, an operator's none. */
function apiKeyFromJson(rec: unknown): ApiKeyRecord {
  return apiKeyTenantFromBackup(jsonToRecord<ApiKeyRecord>(rec, 'api_key'), 'backup change: api_key');
}

/** Encodes one change for an entry. */
export function encodeChange(c: NodeChange): Uint8Array {
  let body: Json;
  switch (c.op) {
    case 'secrets':
      body = { op: c.op, identity: toB64(c.secrets.identity), storage_key: toB64(c.secrets.storageKey), export_key: toB64(c.secrets.exportKey), wrapping_key: toB64(c.secrets.wrappingKey) };
      break;
    case 'key_put':
      body = { op: c.op, key: recordToJson(c.key) };
      break;
    case 'key_status':
      body = { op: c.op, key_id: c.keyId, status: c.status };
      break;
    case 'key_delete':
      body = { op: c.op, key_id: c.keyId };
      break;
    case 'api_key_put':
      body = { op: c.op, api_key: recordToJson(c.apiKey) };
      break;
    case 'api_key_revoke':
      body = { op: c.op, id: c.id, at: c.at };
      break;
  }
  return utf8.encode(JSON.stringify(body));
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 256) throw new FormatError('malformed', `backup change: ${what} is malformed`);
  return v;
}

function parseChangeJson(bytes: Uint8Array): Json {
  let j: Json;
  try {
    j = JSON.parse(utf8.decode(bytes)) as Json;
  } catch {
    throw new FormatError('malformed', 'backup change is not JSON');
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new FormatError('malformed', 'backup change is not an object');
  return j;
}

/** An encoded change with the time it was committed (`committed_at`, ms) added: what the agent seals. */
export function stampChange(change: Uint8Array, committedAt: number): Uint8Array {
  return utf8.encode(JSON.stringify({ ...parseChangeJson(change), committed_at: committedAt }));
}

/**
 * Decodes one change and the time it was committed (null when the entry predates `committed_at`).
 * Throws FormatError `malformed` naming what is wrong (never the values).
 */
export function decodeStampedChange(bytes: Uint8Array): { change: NodeChange; committedAt: number | null } {
  const j = parseChangeJson(bytes);
  const at = j.committed_at;
  if (at !== undefined && (typeof at !== 'number' || !Number.isSafeInteger(at) || at < 0)) throw new FormatError('malformed', 'backup change: committed_at is malformed');
  return { change: changeFromJson(j), committedAt: at ?? null };
}

/** Decodes one change. Throws FormatError `malformed` naming what is wrong (never the values). */
export function decodeChange(bytes: Uint8Array): NodeChange {
  return changeFromJson(parseChangeJson(bytes));
}

function changeFromJson(j: Json): NodeChange {
  switch (j.op) {
    case 'secrets':
      return {
        op: 'secrets',
        secrets: {
          identity: fromB64(str(j.identity, 'identity'), 'identity', 64),
          storageKey: fromB64(str(j.storage_key, 'storage_key'), 'storage_key', 32),
          exportKey: fromB64(str(j.export_key, 'export_key'), 'export_key', 32),
          wrappingKey: fromB64(str(j.wrapping_key, 'wrapping_key'), 'wrapping_key', 32),
        },
      };
    case 'key_put':
      return { op: 'key_put', key: keyFromJson(j.key) };
    case 'key_status': {
      const status = str(j.status, 'status');
      if (!(KEY_STATUSES as readonly string[]).includes(status)) throw new FormatError('malformed', 'backup change: status is unknown');
      return { op: 'key_status', keyId: str(j.key_id, 'key_id'), status: status as KeyStatus };
    }
    case 'key_delete':
      return { op: 'key_delete', keyId: str(j.key_id, 'key_id') };
    case 'api_key_put':
      return { op: 'api_key_put', apiKey: apiKeyFromJson(j.api_key) };
    case 'api_key_revoke':
      if (typeof j.at !== 'number' || !Number.isSafeInteger(j.at)) throw new FormatError('malformed', 'backup change: at is malformed');
      return { op: 'api_key_revoke', id: str(j.id, 'id'), at: j.at };
    default:
      throw new FormatError('malformed', 'backup change has an unknown op', 'upgrade lifeboat: this stream was written by a newer version');
  }
}

/**
 * What the outbox holds in place of the `secrets` change: the store keeps ciphertext only, so the node
 * keys are read from the vault when the agent seals this row into an entry (under the backup key).
 */
export const SECRETS_MARKER = utf8.encode('{"op":"secrets","from":"vault"}');

/** True for the outbox row that stands for the node keys. */
export function isSecretsMarker(change: Uint8Array): boolean {
  return change.length === SECRETS_MARKER.length && change.every((b, i) => b === SECRETS_MARKER[i]);
}

/** A node's state being rebuilt from a compaction and the entries after it. */
export interface NodeState {
  secrets: StreamSecrets | undefined;
  keys: Map<string, KeyRecord>;
  apiKeys: Map<string, ApiKeyRecord>;
}

export function emptyState(): NodeState {
  return { secrets: undefined, keys: new Map(), apiKeys: new Map() };
}

/** Applies one change. Edits of a key or API key the state does not hold are ignored (it was deleted later). */
export function applyChange(state: NodeState, c: NodeChange): void {
  switch (c.op) {
    case 'secrets':
      state.secrets = c.secrets;
      return;
    case 'key_put':
      state.keys.set(c.key.keyId, c.key);
      return;
    case 'key_status': {
      const k = state.keys.get(c.keyId);
      if (k) state.keys.set(c.keyId, { ...k, status: c.status });
      return;
    }
    case 'key_delete':
      state.keys.delete(c.keyId);
      return;
    case 'api_key_put':
      state.apiKeys.set(c.apiKey.id, c.apiKey);
      return;
    case 'api_key_revoke': {
      const a = state.apiKeys.get(c.id);
      if (a && a.revokedAt === null) state.apiKeys.set(c.id, { ...a, revokedAt: c.at });
      return;
    }
  }
}

/** The snapshot a restore writes into the store (sorted by id, as importSnapshot expects). */
export function stateToSnapshot(state: NodeState): StoreSnapshot {
  const byId = <T>(m: Map<string, T>) => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
  return { keys: byId(state.keys), apiKeys: byId(state.apiKeys), meta: [] };
}

/**
 * A compaction's plaintext: the node keys and the whole store state (docs/format.md, "Backup stream").
 * `exact`: the state is the one after the compaction's entry and no later change (the agent saw no
 * change committed while it read the store); only such a compaction is a base for a point-in-time
 * restore to an earlier point than the stream's head.
 */
export function encodeNodeState(secrets: StreamSecrets, snap: Pick<StoreSnapshot, 'keys' | 'apiKeys'>, createdAt: string, exact = false): Uint8Array {
  const body = {
    version: 1,
    created_at: createdAt,
    ...(exact ? { exact: true } : {}),
    secrets: { identity: toB64(secrets.identity), storage_key: toB64(secrets.storageKey), export_key: toB64(secrets.exportKey), wrapping_key: toB64(secrets.wrappingKey) },
    keys: snap.keys.map(recordToJson),
    api_keys: snap.apiKeys.map(recordToJson),
  };
  return utf8.encode(JSON.stringify(body));
}

/** The inverse of encodeNodeState. Throws FormatError `malformed` / `unsupported_version`. */
export function decodeNodeState(bytes: Uint8Array): NodeState & { createdAt: string; exact: boolean } {
  let j: Json;
  try {
    j = JSON.parse(utf8.decode(bytes)) as Json;
  } catch {
    throw new FormatError('malformed', 'backup compaction body is not JSON');
  }
  if (j.version !== 1) throw new FormatError('unsupported_version', 'backup compaction body version is not supported', 'upgrade lifeboat');
  if (typeof j.created_at !== 'string' || !Array.isArray(j.keys) || !Array.isArray(j.api_keys)) throw new FormatError('malformed', 'backup compaction body is malformed');
  const c = decodeChange(utf8.encode(JSON.stringify({ ...(j.secrets as Json), op: 'secrets' })));
  const state = emptyState();
  applyChange(state, c);
  for (const k of j.keys) applyChange(state, { op: 'key_put', key: keyFromJson(k) });
  for (const a of j.api_keys) applyChange(state, { op: 'api_key_put', apiKey: apiKeyFromJson(a) });
  return { ...state, createdAt: j.created_at, exact: j.exact === true };
}
