/**
 * The node backup file (docs/format.md, "Node backup"): a store snapshot (keys, API keys, meta; never
 * nonces) JSON-encoded and sealed in an envelope
 *   magic "LBNB", version 1, header = node fingerprint (UTF-8), key = node/backup-key from the vault.
 * `node backup` writes it from a serving node, the recovery kit's `keyshare recover` from a node rebuilt
 * from the public log; `node restore --in` loads either into an empty store. Pure: no store, no I/O.
 */
import { FormatError, LifeboatError } from '../errors.js';
import { openEnvelope, parseEnvelope, sealEnvelope } from '../crypto/envelope.js';
import { identityFingerprint } from '../identity.js';
import { ctEqual, fromB64, toB64, utf8 } from '../util/bytes.js';
import type { NodeSecrets } from './secrets.js';
import type { ApiKeyRecord, KeyRecord, StoreSnapshot } from './store/types.js';
import { apiKeyTenantFromBackup, keyTenantFromBackup } from './tenants.js';

export const NODE_BACKUP_MAGIC = 'LBNB';
const VERSION = 1;

type Jsonable = Record<string, unknown>;

function bytesToJson(rec: object): Jsonable {
  return Object.fromEntries(Object.entries(rec).map(([k, v]) => [k, v instanceof Uint8Array ? { b64: toB64(v) } : v]));
}

function jsonToBytes<T>(rec: unknown): T {
  if (typeof rec !== 'object' || rec === null) throw new FormatError('malformed', 'node backup body is malformed');
  return Object.fromEntries(Object.entries(rec).map(([k, v]) => [k, v && typeof v === 'object' && 'b64' in v ? fromB64(String((v as { b64: unknown }).b64), k) : v])) as T;
}

/** Seals `snap` under the node's backup key, its fingerprint in the header. Never throws on a well-typed snapshot. */
export function sealNodeBackup(snap: StoreSnapshot, secrets: Pick<NodeSecrets, 'identity' | 'backupKey'>): { bytes: Uint8Array; createdAt: string } {
  const createdAt = new Date().toISOString();
  const body = { version: VERSION, created_at: createdAt, keys: snap.keys.map(bytesToJson), api_keys: snap.apiKeys.map(bytesToJson), meta: snap.meta };
  const bytes = sealEnvelope({ magic: NODE_BACKUP_MAGIC, version: VERSION, header: utf8.encode(identityFingerprint(secrets.identity)), key: secrets.backupKey, plaintext: utf8.encode(JSON.stringify(body)) });
  return { bytes, createdAt };
}

/**
 * Opens a backup of this node. Throws FormatError `bad_magic` (not a node backup), `unsupported_version`,
 * `truncated`, `malformed`; LifeboatError `backup_of_another_node` (naming both fingerprints, before any
 * decryption); DecryptionError (altered bytes).
 */
export function openNodeBackup(bytes: Uint8Array, secrets: NodeSecrets): StoreSnapshot & { createdAt: string } {
  const env = parseEnvelope(bytes, { magic: NODE_BACKUP_MAGIC, versions: [VERSION], what: 'node backup' });
  const mine = identityFingerprint(secrets.identity);
  if (!ctEqual(env.header, utf8.encode(mine))) {
    const theirs = /^[0-9a-f:]{1,64}$/.test(utf8.decode(env.header)) ? utf8.decode(env.header) : 'an unknown node';
    throw new LifeboatError('backup_of_another_node', `this backup belongs to node ${theirs}, not to this node (${mine})`, {
      hint: 'restore a node from its own backups, with its own vault (vault.lbv and master.key) in the data directory',
    });
  }
  const plaintext = openEnvelope(env, secrets.backupKey, 'node backup');
  let body: { version?: unknown; created_at?: unknown; keys?: unknown; api_keys?: unknown; meta?: unknown };
  try {
    body = JSON.parse(utf8.decode(plaintext)) as typeof body;
  } catch {
    throw new FormatError('malformed', 'node backup body is not JSON');
  }
  if (body.version !== VERSION || typeof body.created_at !== 'string' || !Array.isArray(body.keys) || !Array.isArray(body.api_keys) || !Array.isArray(body.meta)) {
    throw new FormatError('malformed', 'node backup body is malformed');
  }
  // Records written before tenants have none: they read as the store's migration makes them (tenants.ts).
  return {
    keys: body.keys.map((k) => keyTenantFromBackup(jsonToBytes<KeyRecord>(k), 'node backup: key')),
    apiKeys: body.api_keys.map((k) => apiKeyTenantFromBackup(jsonToBytes<ApiKeyRecord>(k), 'node backup: api key')),
    meta: body.meta as StoreSnapshot['meta'],
    createdAt: body.created_at,
  };
}
