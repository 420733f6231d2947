/**
 * Node backup and restore (docs/keynode.md, "Backup and restore"; docs/keynode-operations.md).
 *
 * A backup is a consistent snapshot of the store read in one transaction while the node serves (keys,
 * API keys, meta; never nonces or DKG sessions), JSON-encoded and sealed in an envelope
 *   magic "LBNB", version 1, header = node fingerprint (UTF-8), key = node/backup-key from the vault.
 * Restore checks every share against its verifying share BEFORE writing anything, then writes the
 * snapshot into an empty store in one transaction with the nonce epoch advanced: no nonce created
 * before the restore can ever sign. A snapshot holds none; the epoch check voids any that a
 * database-level restore brings back, and `voidNoncesAndVerify` deletes them.
 */
import { ConflictError, FormatError, LifeboatError } from '../errors.js';
import { openEnvelope, parseEnvelope, sealEnvelope } from '../crypto/envelope.js';
import { identityFingerprint } from '../identity.js';
import { ctEqual, fromB64, toB64, utf8 } from '../util/bytes.js';
import { type RestoreProgress, verifyRestoredKeys } from './restore-verify.js';
import type { NodeSecrets } from './secrets.js';
import type { ApiKeyRecord, KeyNodeStore, KeyRecord, StoreSnapshot } from './store/types.js';
import { apiKeyTenantFromBackup, keyTenantFromBackup } from './tenants.js';

export const NODE_BACKUP_MAGIC = 'LBNB';
const VERSION = 1;
const EPOCH_META = 'nonce_epoch';
const PAGE = 10_000;

type Jsonable = Record<string, unknown>;

export { checkRestoredKey, type RestoreProgress, verifyRestoredKeys } from './restore-verify.js';
/** Keys read from the store per verification call (database-level restore): bounded memory, big batches. */
const VERIFY_CHUNK = 50_000;

function bytesToJson(rec: object): Jsonable {
  return Object.fromEntries(Object.entries(rec).map(([k, v]) => [k, v instanceof Uint8Array ? { b64: toB64(v) } : v]));
}

function jsonToBytes<T>(rec: unknown): T {
  if (typeof rec !== 'object' || rec === null) throw new FormatError('malformed', 'node backup body is malformed');
  return Object.fromEntries(Object.entries(rec).map(([k, v]) => [k, v && typeof v === 'object' && 'b64' in v ? fromB64(String((v as { b64: unknown }).b64), k) : v])) as T;
}

/** Reads a consistent snapshot from the store (the node may serve meanwhile) and seals it under the node's backup key. */
export async function createNodeBackup(store: KeyNodeStore, secrets: NodeSecrets): Promise<{ bytes: Uint8Array; keys: number; createdAt: string }> {
  const snap = await store.exportSnapshot();
  const createdAt = new Date().toISOString();
  const body = { version: VERSION, created_at: createdAt, keys: snap.keys.map(bytesToJson), api_keys: snap.apiKeys.map(bytesToJson), meta: snap.meta };
  const bytes = sealEnvelope({ magic: NODE_BACKUP_MAGIC, version: VERSION, header: utf8.encode(identityFingerprint(secrets.identity)), key: secrets.backupKey, plaintext: utf8.encode(JSON.stringify(body)) });
  return { bytes, keys: snap.keys.length, createdAt };
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

/**
 * Restores a backup into an empty store: every share is checked first (`verifyRestoredKeys`: the
 * verdict of `checkRestoredKey` on each key, in batches; nothing is written if one fails), then the
 * snapshot goes in, in one transaction, with the nonce epoch advanced and `restored_at` set. Throws
 * ConflictError `store_not_empty` (checked before and, atomically, again while writing), LifeboatError
 * `share_mismatch` naming the first bad key, and the store's errors.
 */
export async function restoreNodeBackup(store: KeyNodeStore, secrets: NodeSecrets, snap: StoreSnapshot, progress: RestoreProgress = () => {}): Promise<{ keys: number; epoch: number }> {
  if ((await store.countKeys()) > 0 || (await store.countNonces()) > 0) {
    throw new ConflictError('the store is not empty', 'store_not_empty', 'restore into a fresh store (a new sqlite file or an empty database)');
  }
  await verifyRestoredKeys(secrets.storageKey, snap.keys, progress);
  const epoch = Number(snap.meta.find((m) => m.key === EPOCH_META)?.value ?? '0') + 1;
  const meta = [...snap.meta.filter((m) => m.key !== EPOCH_META && m.key !== 'restored_at'), { key: EPOCH_META, value: String(epoch) }, { key: 'restored_at', value: new Date().toISOString() }];
  await store.importSnapshot({ keys: snap.keys, apiKeys: snap.apiKeys, meta });
  return { keys: snap.keys.length, epoch };
}

/**
 * After the database itself was restored (a dump, a file copy, a volume snapshot): deletes every
 * unused nonce and advances the epoch in one transaction, then checks every share. Throws
 * `share_mismatch` naming the first bad key (after the nonces are gone, which is always safe).
 */
export async function voidNoncesAndVerify(store: KeyNodeStore, secrets: NodeSecrets, progress: RestoreProgress = () => {}): Promise<{ keys: number; noncesDeleted: number; epoch: number }> {
  const { noncesDeleted, epoch } = await store.transaction(async (tx) => {
    const next = Number((await tx.getMeta(EPOCH_META)) ?? '0') + 1;
    const n = await tx.deleteAllNonces();
    await tx.setMeta(EPOCH_META, String(next));
    await tx.setMeta('restored_at', new Date().toISOString());
    return { noncesDeleted: n, epoch: next };
  });
  const total = await store.countKeys();
  let done = 0;
  let after: string | undefined;
  for (;;) {
    // Read a chunk page by page, then check it in batches (verifyRestoredKeys), chunk after chunk in key order.
    const chunk: KeyRecord[] = [];
    while (chunk.length < VERIFY_CHUNK) {
      const page = await store.listKeys({ afterKeyId: after, limit: PAGE });
      if (page.length === 0) break;
      chunk.push(...page);
      after = page[page.length - 1]!.keyId;
    }
    if (chunk.length === 0) break;
    const before = done;
    await verifyRestoredKeys(secrets.storageKey, chunk, (d) => progress(before + d, Math.max(total, before + d)));
    done += chunk.length;
  }
  if (done === 0) progress(0, 0);
  return { keys: done, noncesDeleted, epoch };
}
