/**
 * Node backup and restore (docs/keynode.md, "Backup and restore"; docs/keynode-operations.md).
 *
 * A backup is a consistent snapshot of the store read in one transaction while the node serves (keys,
 * API keys, meta; never nonces or DKG sessions), sealed as backup-format.ts writes it (LBNB).
 * Restore checks every share against its verifying share BEFORE writing anything, then writes the
 * snapshot into an empty store in one transaction with the nonce epoch advanced: no nonce created
 * before the restore can ever sign. A snapshot holds none; the epoch check voids any that a
 * database-level restore brings back, and `voidNoncesAndVerify` deletes them.
 */
import { ConflictError } from '../errors.js';
import { sealNodeBackup } from './backup-format.js';
import { type RestoreProgress, verifyRestoredKeys } from './restore-verify.js';
import type { NodeSecrets } from './secrets.js';
import type { KeyNodeStore, KeyRecord, StoreSnapshot } from './store/types.js';

const EPOCH_META = 'nonce_epoch';
const PAGE = 10_000;

export { NODE_BACKUP_MAGIC, openNodeBackup, sealNodeBackup } from './backup-format.js';
export { checkRestoredKey, type RestoreProgress, verifyRestoredKeys } from './restore-verify.js';
/** Keys read from the store per verification call (database-level restore): bounded memory, big batches. */
const VERIFY_CHUNK = 50_000;

/** Reads a consistent snapshot from the store (the node may serve meanwhile) and seals it under the node's backup key. */
export async function createNodeBackup(store: KeyNodeStore, secrets: NodeSecrets): Promise<{ bytes: Uint8Array; keys: number; createdAt: string }> {
  const snap = await store.exportSnapshot();
  const { bytes, createdAt } = sealNodeBackup(snap, secrets);
  return { bytes, keys: snap.keys.length, createdAt };
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
