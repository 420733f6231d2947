/**
 * Writing a node recovered from the log (recover.ts): its directory is built beside the target and
 * renamed into place last, as the other restores, so a recovery killed at any point leaves no node (at
 * most a `.NAME.restoring-…` directory to delete). It holds the vault (the node's own identity, fresh
 * other keys, a fresh master key, and its words in passphrase mode) and node.json (its words' mode, the
 * log it was read from); a writer fills its storage:
 *   - the CLI's (recover-store.ts) writes every key into the store, as `node restore --in` would;
 *   - the recovery kit's, writeNodeSnapshot, which has no database driver, writes them as a node backup
 *     file (docs/format.md, "Node backup"), `restore-snapshot.lbnb` in the directory, that the full
 *     CLI's `node restore --in` loads into the store later.
 */
import { existsSync, mkdirSync, renameSync, rmdirSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from '../crypto/random.js';
import { toHex } from '../util/bytes.js';
import { ensurePrivateDir, fsyncDir, writeFileAtomic } from '../util/files.js';
import { sealNodeBackup } from '../keynode/backup-format.js';
import { defaultNodeConfig, type LogTarget, type NodeConfig, nodePaths, type NodePaths, saveNodeConfig } from '../keynode/config.js';
import { encodeFrostPublic, groupPublicKey, sealKeyShare } from '../keynode/frost/index.js';
import { keepKeyshare, type KeyshareSetup } from '../keynode/keyshare-setup.js';
import { createNodeVaultWith, loadNodeSecrets, type NodeSecrets } from '../keynode/secrets.js';
import { KEYSHARE_JOURNAL_META, type KeyRecord } from '../keynode/store/types.js';
import { storeMasterKey } from '../primary/datadir.js';
import type { OpenedBackup } from './seal.js';

/** A record opened from the log, with its entry index and the time the log took it. */
export type OpenedRecord = OpenedBackup & { index: number; timestamp: number };

/** The snapshot file the kit writes into the node directory. */
export const NODE_SNAPSHOT_FILE = 'restore-snapshot.lbnb';

/** What a writer fills: the node being built (its paths are the build directory's), and where it will end up. */
export interface RecoveredNodeParts {
  paths: NodePaths;
  target: string;
  secrets: NodeSecrets;
  /** Every key, active, sealed under the node's fresh storage key, at the epoch of its record. */
  keys: KeyRecord[];
  /** The store's meta to start with: when it was recovered, and the publication journal on. */
  meta: { key: string; value: string }[];
  opened: readonly OpenedRecord[];
  checkpointSize: number;
}

/** Fills the node's storage. Returns the nonce epoch it starts at (null: not yet) and the snapshot it wrote (null: none). */
export type RecoveredNodeWriter = (parts: RecoveredNodeParts, storeUrl: string | undefined) => Promise<{ epoch: number | null; snapshot: string | null }>;

/**
 * Writes the recovered node into `dir` (checked absent or empty by the caller). Throws what the vault,
 * the files and the writer throw; nothing is left at `dir` then.
 */
export async function writeRecoveredNode(
  dir: string,
  opened: readonly OpenedRecord[],
  opts: { store?: string; setup: KeyshareSetup; logs: LogTarget[]; checkpointSize: number; writer: RecoveredNodeWriter },
): Promise<{ epoch: number | null; store: string; snapshot: string | null }> {
  const storeUrl = opts.store;
  const target = resolve(dir);
  mkdirSync(dirname(target), { recursive: true });
  const build = join(dirname(target), `.${basename(target)}.restoring-${toHex(randomBytes(6))}`);
  const paths = nodePaths(build);
  let config: NodeConfig = { ...defaultNodeConfig(nodePaths(target)), ...(storeUrl ? { store: storeUrl } : {}), logs: opts.logs };
  try {
    ensurePrivateDir(build);
    const master = { schemeId: randomBytes(16), key: randomBytes(32) };
    const fresh = { storageKey: randomBytes(32), exportKey: randomBytes(32), wrappingKey: randomBytes(32), backupKey: randomBytes(32) };
    writeFileAtomic(paths.vault, createNodeVaultWith(master, { identity: opened[0]!.identitySeeds, ...fresh }));
    storeMasterKey({ dir: build, identity: '', vault: paths.vault, manifest: '', masterKey: paths.masterKey }, master);
    const secrets = loadNodeSecrets(paths.vault, master);
    config = await keepKeyshare(paths, master, config, opts.setup);
    const keys: KeyRecord[] = opened.map((o) => ({
      keyId: o.key.keyId,
      curve: o.key.curve,
      threshold: o.key.public.signers.min,
      maxSigners: o.key.public.signers.max,
      identifier: o.key.identifier,
      groupPublicKey: groupPublicKey(o.key.curve, o.key.public.commitments[0]!),
      publicPackage: encodeFrostPublic(o.key.curve, o.key.public),
      encryptedShare: sealKeyShare(secrets.storageKey, o.key),
      status: 'active',
      origin: 'import',
      createdAt: o.timestamp,
      tenant: o.tenant,
      // the epoch of the record it came from: the next record this node publishes must not look older
      epoch: o.record.epoch,
    }));
    const meta = [{ key: 'keyshare_recovered_at', value: new Date().toISOString() }, { key: KEYSHARE_JOURNAL_META, value: 'on' }];
    const written = await opts.writer({ paths, target, secrets, keys, meta, opened, checkpointSize: opts.checkpointSize }, storeUrl);
    saveNodeConfig(paths, config);
    if (existsSync(target)) rmdirSync(target);
    renameSync(build, target);
    fsyncDir(dirname(target));
    return { ...written, store: config.store };
  } catch (err) {
    rmSync(build, { recursive: true, force: true });
    throw err;
  }
}

/**
 * The kit's writer: the keys as a node backup file (LBNB, sealed under the node's fresh backup key in
 * its vault) at `NODE_SNAPSHOT_FILE`, 0600; `lifeboat node restore --in FILE --data-dir DIR` loads it
 * into the node's store, checking every share and starting a new nonce epoch.
 */
export const writeNodeSnapshot: RecoveredNodeWriter = async (parts) => {
  const { bytes } = sealNodeBackup({ keys: parts.keys, apiKeys: [], meta: parts.meta }, parts.secrets);
  writeFileAtomic(join(parts.paths.dir, NODE_SNAPSHOT_FILE), bytes, 0o600);
  return { epoch: null, snapshot: join(parts.target, NODE_SNAPSHOT_FILE) };
};
