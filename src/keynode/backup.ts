/**
 * Node backup and restore (docs/keynode.md, "Backup and restore").
 *
 * A backup is a consistent snapshot of the store read in one transaction while the node serves (keys,
 * API keys, meta; never nonces or DKG sessions), JSON-encoded and sealed in an envelope
 *   magic "LBNB", version 1, header = node fingerprint (UTF-8), key = node/backup-key from the vault.
 * Restore checks every share against its verifying share BEFORE writing anything, writes the snapshot
 * into an empty store in one transaction with the nonce epoch advanced, so no nonce created before the
 * restore can ever sign (there are none in a snapshot; an epoch check and the nonce TTL void any that a
 * database-level restore brings back).
 */
import { ConflictError, FormatError } from '../errors.js';
import { openEnvelope, parseEnvelope, sealEnvelope } from '../crypto/envelope.js';
import { identityFingerprint } from '../identity.js';
import { fromB64, toB64, utf8 } from '../util/bytes.js';
import type { KeyNodeService } from './service.js';
import type { NodeSecrets } from './secrets.js';
import type { ApiKeyRecord, KeyNodeStore, KeyRecord, StoreSnapshot } from './store/types.js';

const MAGIC = 'LBNB';
const EPOCH_META = 'nonce_epoch';

type Jsonable = Record<string, unknown>;

function bytesToJson(rec: object): Jsonable {
  return Object.fromEntries(Object.entries(rec).map(([k, v]) => [k, v instanceof Uint8Array ? { b64: toB64(v) } : v]));
}

function jsonToBytes<T>(rec: Jsonable): T {
  return Object.fromEntries(Object.entries(rec).map(([k, v]) => [k, v && typeof v === 'object' && 'b64' in v ? fromB64(String((v as { b64: unknown }).b64), k) : v])) as T;
}

/** Reads a consistent snapshot from the store and seals it under the node's backup key. */
export async function createNodeBackup(store: KeyNodeStore, secrets: NodeSecrets): Promise<{ bytes: Uint8Array; keys: number }> {
  const snap = await store.exportSnapshot();
  const body = { version: 1, created_at: new Date().toISOString(), keys: snap.keys.map(bytesToJson), api_keys: snap.apiKeys.map(bytesToJson), meta: snap.meta };
  const bytes = sealEnvelope({ magic: MAGIC, version: 1, header: utf8.encode(identityFingerprint(secrets.identity)), key: secrets.backupKey, plaintext: utf8.encode(JSON.stringify(body)) });
  return { bytes, keys: snap.keys.length };
}

/** Opens a backup. Throws FormatError (not a backup, other version, truncated), DecryptionError (another node's key, altered). */
export function openNodeBackup(bytes: Uint8Array, secrets: NodeSecrets): StoreSnapshot & { createdAt: string } {
  const env = parseEnvelope(bytes, { magic: MAGIC, versions: [1], what: 'node backup' });
  const body = JSON.parse(utf8.decode(openEnvelope(env, secrets.backupKey, 'node backup'))) as { version: number; created_at: string; keys: Jsonable[]; api_keys: Jsonable[]; meta: { key: string; value: string }[] };
  if (body.version !== 1 || !Array.isArray(body.keys) || !Array.isArray(body.api_keys) || !Array.isArray(body.meta)) throw new FormatError('malformed', 'node backup body is malformed');
  return { keys: body.keys.map((k) => jsonToBytes<KeyRecord>(k)), apiKeys: body.api_keys.map((k) => jsonToBytes<ApiKeyRecord>(k)), meta: body.meta, createdAt: body.created_at };
}

/**
 * Restores a backup into an empty store: every share is checked against its verifying share first
 * (LifeboatError `share_mismatch` names the key; nothing is written), then the snapshot goes in with
 * the nonce epoch advanced. Throws ConflictError `store_not_empty`.
 */
export async function restoreNodeBackup(store: KeyNodeStore, service: KeyNodeService, snap: StoreSnapshot, progress: (done: number, total: number) => void = () => {}): Promise<{ keys: number; epoch: number }> {
  if ((await store.countKeys()) > 0) throw new ConflictError('the store is not empty', 'store_not_empty', 'restore into a fresh store (a new sqlite file or an empty database)');
  snap.keys.forEach((k, i) => {
    service.verifyStoredShare(k);
    if (i % 500 === 0 || i === snap.keys.length - 1) progress(i + 1, snap.keys.length);
  });
  const epoch = Number(snap.meta.find((m) => m.key === EPOCH_META)?.value ?? '0') + 1;
  const meta = [...snap.meta.filter((m) => m.key !== EPOCH_META && m.key !== 'restored_at'), { key: EPOCH_META, value: String(epoch) }, { key: 'restored_at', value: new Date().toISOString() }];
  await store.importSnapshot({ keys: snap.keys, apiKeys: snap.apiKeys, meta });
  return { keys: snap.keys.length, epoch };
}

/**
 * After the database itself was restored (a dump or a file copy): deletes every unused nonce, advances
 * the epoch, and checks every share. Throws `share_mismatch` naming the first bad key (after the nonces
 * are gone, which is always safe).
 */
export async function voidNoncesAndVerify(store: KeyNodeStore, service: KeyNodeService, progress: (done: number, total: number) => void = () => {}): Promise<{ keys: number; noncesDeleted: number; epoch: number }> {
  const epoch = Number((await store.getMeta(EPOCH_META)) ?? '0') + 1;
  const noncesDeleted = await store.transaction(async (tx) => {
    const n = await tx.deleteAllNonces();
    await tx.setMeta(EPOCH_META, String(epoch));
    await tx.setMeta('restored_at', new Date().toISOString());
    return n;
  });
  const total = await store.countKeys();
  let done = 0;
  let after: string | undefined;
  for (;;) {
    const page = await store.listKeys({ afterKeyId: after, limit: 500 });
    if (page.length === 0) break;
    for (const k of page) service.verifyStoredShare(k);
    done += page.length;
    progress(done, total);
    after = page[page.length - 1]!.keyId;
  }
  return { keys: done, noncesDeleted, epoch };
}
