/** Opening a key node from its data directory: config, vault keys, store, service, fail-over sync. */
import { existsSync } from 'node:fs';
import { ConflictError } from '../errors.js';
import { randomBytes } from '../crypto/random.js';
import { encodePublicIdentity, identityFingerprint } from '../identity.js';
import { loadMasterKey, storeMasterKey, type PrimaryPaths } from '../primary/datadir.js';
import { ensurePrivateDir, writeFileAtomic } from '../util/files.js';
import { toB64 } from '../util/bytes.js';
import { defaultNodeConfig, loadNodeConfig, type NodeConfig, nodePaths, type NodePaths, saveNodeConfig } from './config.js';
import { FailoverSync } from './failover.js';
import { createNodeVault, loadNodeSecrets, type NodeSecrets } from './secrets.js';
import { KeyNodeService } from './service.js';
import { type BackupTransport, type BackupAgent } from '../backup/agent.js';
import { createBackupAgent } from '../backup/node-link.js';
import { openKeyNodeStore } from './store/index.js';
import type { KeyNodeStore } from './store/types.js';

export interface OpenedNode {
  paths: NodePaths;
  config: NodeConfig;
  secrets: NodeSecrets;
  store: KeyNodeStore;
  service: KeyNodeService;
  failover: FailoverSync;
  /** The backup stream's agent when the configuration names a backup service (started by `node serve`). */
  backup: BackupAgent | undefined;
}

function masterPaths(p: NodePaths): PrimaryPaths {
  return { dir: p.dir, identity: '', vault: p.vault, manifest: '', masterKey: p.masterKey };
}

/** The store URL: --store, else $LIFEBOAT_NODE_STORE, else the configuration's. */
export function storeUrl(config: NodeConfig, override?: string): string {
  return override ?? process.env.LIFEBOAT_NODE_STORE ?? config.store;
}

/**
 * Creates a node: its vault (fresh node keys under a fresh master key, unsealed), configuration and
 * store. Throws ConflictError `node_exists` if the directory already holds a node.
 */
export async function initNode(dir: string, opts: { store?: string } = {}): Promise<{ identity: string; fingerprint: string; wrapping_public_key: string; store: string }> {
  const paths = nodePaths(dir);
  if (existsSync(paths.config) || existsSync(paths.vault)) throw new ConflictError(`${dir} already holds a key node`, 'node_exists');
  ensurePrivateDir(dir);
  const master = { schemeId: randomBytes(16), key: randomBytes(32) };
  writeFileAtomic(paths.vault, createNodeVault(master));
  storeMasterKey(masterPaths(paths), master);
  const config = { ...defaultNodeConfig(paths), ...(opts.store ? { store: opts.store } : {}) };
  const store = await openKeyNodeStore(config.store);
  await store.close();
  saveNodeConfig(paths, config);
  const secrets = loadNodeSecrets(paths.vault, master);
  return { identity: encodePublicIdentity(secrets.identity), fingerprint: identityFingerprint(secrets.identity), wrapping_public_key: toB64(secrets.wrapping.publicKey), store: config.store };
}

/**
 * Opens a node for serving or maintenance. The caller stops `failover` and closes `store` (closeNode).
 * Throws what loadNodeConfig, loadNodeSecrets and openKeyNodeStore throw.
 */
export async function openNode(
  dir: string,
  opts: { store?: string; log?: (line: string) => void; failoverRetryMs?: number; backupTransport?: BackupTransport } = {},
): Promise<OpenedNode> {
  const paths = nodePaths(dir);
  const config = loadNodeConfig(paths);
  const secrets = loadNodeSecrets(paths.vault, loadMasterKey(masterPaths(paths)));
  const store = await openKeyNodeStore(storeUrl(config, opts.store));
  const backup = config.backup ? createBackupAgent(store, secrets, config.backup, { log: opts.log, transport: opts.backupTransport }) : undefined;
  // The service reports commits to the fail-over sync (which exports through the service) and the backup agent.
  const sync: { failover?: FailoverSync } = {};
  const gate = backup && config.backup && !config.backup.usable_before_ack ? { waitMs: config.backup.wait_ms, wait: (keyId: string, ms: number) => backup.waitForKey(keyId, ms) } : undefined;
  const service = new KeyNodeService({
    store,
    secrets,
    config,
    backupGate: gate,
    onKeyCommitted: (keyId) => {
      sync.failover?.committed(keyId);
      backup?.kick();
    },
  });
  const failover = new FailoverSync({ store, service, secrets, config, log: opts.log, retryMs: opts.failoverRetryMs });
  sync.failover = failover;
  return { paths, config, secrets, store, service, failover, backup };
}

/** Stops the fail-over loop and the backup agent (waiting for work in flight) and closes the store. */
export async function closeNode(n: OpenedNode): Promise<void> {
  await n.failover.stop();
  await n.backup?.stop();
  await n.store.close();
}

/**
 * What `node serve` does before it answers anything: deletes every unused signing nonce. A nonce is
 * worth nothing across a restart (a client simply runs round one again), and after a database-level
 * restore (a file copy, a dump, a snapshot of the volume) the store may hold nonces that were already
 * used after the copy was taken: signing with one of those again would reveal the key share. Deleting
 * them at every start makes a forgotten `node restore --database` harmless for a restarted node.
 * Returns how many were deleted.
 */
export async function voidNoncesBeforeServing(store: KeyNodeStore): Promise<number> {
  return store.deleteAllNonces();
}

export { saveNodeConfig, loadNodeConfig, nodePaths };
