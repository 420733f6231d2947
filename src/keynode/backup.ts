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
import { ctEqual, fromB64, toB64, utf8, wipe } from '../util/bytes.js';
import { encodeFrostPublic, type KeyShare, openKeyShare, verifyShareAgainstPublic } from './frost/index.js';
import type { NodeSecrets } from './secrets.js';
import type { ApiKeyRecord, KeyNodeStore, KeyRecord, StoreSnapshot } from './store/types.js';

export const NODE_BACKUP_MAGIC = 'LBNB';
const VERSION = 1;
const EPOCH_META = 'nonce_epoch';
const PAGE = 500;

type Jsonable = Record<string, unknown>;

/** Reports how many of `total` shares were checked; called at most every `PROGRESS_MS` and at the end. */
export type RestoreProgress = (done: number, total: number) => void;
const PROGRESS_MS = 1000;

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
  return { keys: body.keys.map((k) => jsonToBytes<KeyRecord>(k)), apiKeys: body.api_keys.map((k) => jsonToBytes<ApiKeyRecord>(k)), meta: body.meta as StoreSnapshot['meta'], createdAt: body.created_at };
}

/**
 * The restore check of one stored key, before anything is written: its sealed share opens under this
 * node's storage key for this very row (key id, curve and identifier are bound in the LBKS header), the
 * row's public package is byte for byte the one sealed with the share, G·share equals the verifying
 * share and the VSS commitments at the identifier give it too (verifyShareAgainstPublic), and the row's
 * threshold, signer count and group key are the package's. That is everything this node signs with.
 * The other participants' verifying shares are not re-checked here: they were checked in full when the
 * share was stored, they are authenticated twice (LBKS and the backup's envelope), and the node never
 * uses them; decoding each with a subgroup check was three quarters of a restore's time.
 * Any failure is LifeboatError `share_mismatch` naming the key, with the cause's code in the message.
 */
export function checkRestoredKey(storageKey: Uint8Array, rec: KeyRecord): void {
  let key: KeyShare | undefined;
  try {
    key = openKeyShare(storageKey, rec.encryptedShare, { keyId: rec.keyId, curve: rec.curve, identifier: rec.identifier });
    if (!ctEqual(encodeFrostPublic(key.curve, key.public), rec.publicPackage)) {
      throw new LifeboatError('share_mismatch', 'its public package differs from the one sealed with its share');
    }
    verifyShareAgainstPublic(key);
    const signers = Object.keys(key.public.verifyingShares).length;
    if (rec.threshold !== key.public.commitments.length || rec.maxSigners !== signers) {
      throw new LifeboatError('share_mismatch', `its threshold or signer count (${rec.threshold} of ${rec.maxSigners}) is not the package's`);
    }
    // suite.ts groupPublicKey's encoding, without its point decoding (the package is authenticated).
    const c0 = key.public.commitments[0] ?? new Uint8Array(0);
    if (!ctEqual(rec.curve === 'bip340' ? c0.subarray(1) : c0, rec.groupPublicKey)) {
      throw new LifeboatError('share_mismatch', 'its group public key is not the one of its public package');
    }
  } catch (err) {
    const code = err instanceof LifeboatError ? err.code : 'internal_error';
    const why = err instanceof LifeboatError ? err.message : 'its share cannot be read';
    throw new LifeboatError('share_mismatch', `key ${String(rec.keyId).slice(0, 64)}: the share does not match its verifying share (${code}: ${why})`, {
      hint: 'nothing was restored; this backup or database was altered or mixed with another node’s: use another backup of this node',
      cause: err,
    });
  } finally {
    if (key) wipe(key.share);
  }
}

function throttled(progress: RestoreProgress): RestoreProgress {
  let last = performance.now();
  return (done, total) => {
    const now = performance.now();
    if (done === total || now - last >= PROGRESS_MS) {
      last = now;
      progress(done, total);
    }
  };
}

/**
 * Restores a backup into an empty store: every share is checked first (`checkRestoredKey`; nothing is
 * written if one fails), then the snapshot goes in, in one transaction, with the nonce epoch advanced
 * and `restored_at` set. Throws ConflictError `store_not_empty` (checked before and, atomically, again
 * while writing), LifeboatError `share_mismatch`, and the store's errors.
 */
export async function restoreNodeBackup(store: KeyNodeStore, secrets: NodeSecrets, snap: StoreSnapshot, progress: RestoreProgress = () => {}): Promise<{ keys: number; epoch: number }> {
  if ((await store.countKeys()) > 0 || (await store.countNonces()) > 0) {
    throw new ConflictError('the store is not empty', 'store_not_empty', 'restore into a fresh store (a new sqlite file or an empty database)');
  }
  const report = throttled(progress);
  for (let i = 0; i < snap.keys.length; i++) {
    checkRestoredKey(secrets.storageKey, snap.keys[i]!);
    report(i + 1, snap.keys.length);
    // Let the event loop breathe (stderr, signals) on long restores.
    if (i % PAGE === PAGE - 1) await new Promise<void>((resolve) => setImmediate(resolve));
  }
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
  const report = throttled(progress);
  let done = 0;
  let after: string | undefined;
  for (;;) {
    const page = await store.listKeys({ afterKeyId: after, limit: PAGE });
    if (page.length === 0) break;
    for (const k of page) {
      checkRestoredKey(secrets.storageKey, k);
      report(++done, Math.max(total, done));
    }
    after = page[page.length - 1]!.keyId;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  if (done === 0) progress(0, 0);
  return { keys: done, noncesDeleted, epoch };
}
