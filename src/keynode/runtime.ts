/** Opening a key node from its data directory: config, vault keys, store, service, fail-over sync. */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ConflictError, LifeboatError } from '../errors.js';
import { randomBytes } from '../crypto/random.js';
import { encodePublicIdentity, identityFingerprint } from '../identity.js';
import { loadMasterKey, storeMasterKey, type PrimaryPaths } from '../primary/datadir.js';
import { ensurePrivateDir, writeFileAtomic } from '../util/files.js';
import { toB64 } from '../util/bytes.js';
import { defaultNodeConfig, loadNodeConfig, type NodeConfig, nodePaths, type NodePaths, saveNodeConfig } from './config.js';
import { FailoverSync } from './failover.js';
import { createNodeVault, loadNodeMnemonic, loadNodeSecrets, type NodeSecrets, removeNodeMnemonic } from './secrets.js';
import { keepKeyshare, type KeyshareSetup } from './keyshare-setup.js';
import { type ChannelAgent, DurabilityGate, requiredChannels } from './durable.js';
import type { Identity } from '../identity.js';
import { KEYSHARE_JOURNAL_META, keyEpoch } from './store/index.js';
import { KeyNodeService } from './service.js';
import { type BackupTransport, type BackupAgent } from '../backup/agent.js';
import { createBackupAgent } from '../backup/node-link.js';
import { openKeyNodeStore, storeUrlWithoutPassword } from './store/index.js';
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
  /** The durable channels a new key waits for, and where channel agents record what they hold. */
  durable: DurabilityGate;
  /** Other channels' agents (the public log's publisher), made by openNode's `channelAgents`; started by `node serve`. */
  agents: ChannelAgent[];
}

/** What a channel agent made outside src/keynode (src/keyshare's publisher) gets from the node. */
export interface ChannelAgentContext {
  paths: NodePaths;
  config: NodeConfig;
  secrets: NodeSecrets;
  store: KeyNodeStore;
  durable: DurabilityGate;
  log?: (line: string) => void;
  /** The passphrase-mode words from the vault (UTF-8, secret: wipe them), or undefined. */
  readMnemonic(): Uint8Array | undefined;
}

export { keepKeyshare, type KeyshareSetup } from './keyshare-setup.js';

/** Default wait of a DKG or import answer for its key's channels when neither durable_wait_ms nor backup.wait_ms is set. */
const DURABLE_WAIT_MS = 10_000;

/**
 * The node's data directory read as a primary's (src/primary/datadir.ts): the layouts agree on
 * vault.lbv and master.key, and a node whose vault key is split (`primary init` + `recovery init
 * --data-dir NODE_DIR`) has identity.json and recovery-manifest.json beside them. docs/keynode-operations.md,
 * "Sealing a node".
 */
export function nodeRecoveryPaths(p: NodePaths): PrimaryPaths {
  return { dir: p.dir, identity: join(p.dir, 'identity.json'), vault: p.vault, manifest: join(p.dir, 'recovery-manifest.json'), masterKey: p.masterKey };
}

/**
 * The master key of the node's vault. A missing file is LifeboatError `sealed` naming what brings the
 * node back: `lifeboat node unseal` when its vault key is split among holders, else its off-machine
 * copy of master.key, or a restore from its backup service.
 */
function loadNodeMasterKey(p: NodePaths): ReturnType<typeof loadMasterKey> {
  if (!existsSync(p.masterKey) && existsSync(p.vault)) {
    const split = existsSync(nodeRecoveryPaths(p).manifest);
    throw new LifeboatError('sealed', `the node is sealed: its vault's master key ${p.masterKey} is missing`, {
      status: 503,
      hint: split
        ? `run \`lifeboat node unseal --data-dir ${p.dir}\` (its share holders release, or type shares with --typed-shares N)`
        : `copy the node’s master.key back to ${p.masterKey} from your off-machine copy (mode 0600), or rebuild the node into a new data directory with \`lifeboat node restore --backup-server URL --account NAME --data-dir NEW_DIR\`; ` +
          'or, once its vault key is split among share holders, `lifeboat node unseal` (docs/keynode-operations.md, "Sealing a node")',
    });
  }
  return loadMasterKey(nodeRecoveryPaths(p));
}

/** The store URL: --store, else $LIFEBOAT_NODE_STORE, else the configuration's. */
export function storeUrl(config: NodeConfig, override?: string): string {
  return override ?? process.env.LIFEBOAT_NODE_STORE ?? config.store;
}

/**
 * Creates a node: its vault (fresh node keys under a fresh master key, unsealed), configuration and
 * store. With `keyshare`, the node gets its operator mnemonic (docs/keyshare.md): `keyshare` is called
 * with the new identity and answers what the node keeps; the words go into the vault (passphrase mode)
 * and every key the node will hold is queued for the public log. Throws ConflictError `node_exists` if
 * the directory already holds a node, and what `keyshare` and the store throw; a failed init removes
 * what it made (the directory itself when it made it), so a retry starts from the same place.
 */
export async function initNode(
  dir: string,
  opts: { store?: string; keyshare?: (identity: Identity) => Promise<KeyshareSetup> } = {},
): Promise<{ identity: string; fingerprint: string; wrapping_public_key: string; store: string; keyshare_mode: KeyshareSetup['mode'] | null }> {
  const paths = nodePaths(dir);
  if (existsSync(paths.config) || existsSync(paths.vault)) {
    throw new ConflictError(`${dir} already holds a key node`, 'node_exists', 'pick another --data-dir, or move this one away first if it is a node you mean to replace (its vault holds the node keys)');
  }
  if (existsSync(paths.masterKey)) {
    throw new ConflictError(`a master key already exists at ${paths.masterKey} (LIFEBOAT_MASTER_KEY_FILE), another node's`, 'master_key_exists', 'give this node its own LIFEBOAT_MASTER_KEY_FILE; one node per key file');
  }
  const before = existsSync(dir) ? new Set(readdirSync(dir)) : undefined;
  ensurePrivateDir(dir);
  try {
    return await makeNode(paths, opts);
  } catch (err) {
    // Leave the directory as it was: a half-made node would make the retry fail with node_exists.
    if (!before) rmSync(dir, { recursive: true, force: true });
    else for (const name of readdirSync(dir)) if (!before.has(name)) rmSync(join(dir, name), { recursive: true, force: true });
    throw err;
  }
}

async function makeNode(
  paths: NodePaths,
  opts: { store?: string; keyshare?: (identity: Identity) => Promise<KeyshareSetup> },
): Promise<{ identity: string; fingerprint: string; wrapping_public_key: string; store: string; keyshare_mode: KeyshareSetup['mode'] | null }> {
  const master = { schemeId: randomBytes(16), key: randomBytes(32) };
  writeFileAtomic(paths.vault, createNodeVault(master));
  storeMasterKey(nodeRecoveryPaths(paths), master);
  const secrets = loadNodeSecrets(paths.vault, master);
  // node.json keeps the URL without its password; the store is made with the whole URL
  let config: NodeConfig = { ...defaultNodeConfig(paths), ...(opts.store ? { store: storeUrlWithoutPassword(opts.store) } : {}) };
  if (opts.keyshare) config = await keepKeyshare(paths, master, config, await opts.keyshare(secrets.identity));
  const store = await openKeyNodeStore(opts.store ?? config.store);
  try {
    if (config.keyshare) await store.setMeta(KEYSHARE_JOURNAL_META, 'on');
  } finally {
    await store.close();
  }
  saveNodeConfig(paths, config);
  return { identity: encodePublicIdentity(secrets.identity), fingerprint: identityFingerprint(secrets.identity), wrapping_public_key: toB64(secrets.wrapping.publicKey), store: config.store, keyshare_mode: config.keyshare?.mode ?? null };
}

/**
 * Gives a node made without one its operator mnemonic (`node mnemonic setup`): keeps what `setup`
 * answers, then, in one store transaction, turns the publication journal on and queues every key the
 * node holds (at its epoch); then writes node.json. Returns how many keys were queued. Throws
 * ConflictError `mnemonic_configured` when the node has one.
 */
export async function addKeyshareToNode(n: OpenedNode, setup: (identity: Identity) => Promise<KeyshareSetup>): Promise<{ queued: number; mode: KeyshareSetup['mode'] }> {
  if (n.config.keyshare) {
    throw new ConflictError(`this node already has a ${n.config.keyshare.mode}-mode operator mnemonic`, 'mnemonic_configured', 'its words cannot be changed: a node recovered from the log would no longer open its earlier backups');
  }
  const master = loadNodeMasterKey(n.paths);
  const made = await setup(n.secrets.identity);
  if (made.mode === 'passphrase') {
    // A run cut short before node.json was written left its words here: nothing was published under them.
    await removeNodeMnemonic(n.paths.vault, master);
  }
  const config = await keepKeyshare(n.paths, master, n.config, made);
  const queued = await n.store.transaction(async (tx) => {
    await tx.setMeta(KEYSHARE_JOURNAL_META, 'on');
    let count = 0;
    let after: string | undefined;
    for (;;) {
      const page = await tx.listKeys({ afterKeyId: after, limit: 1000 });
      for (const k of page) if (await tx.enqueueKeyshare(k.keyId, keyEpoch(k), Date.now())) count++;
      if (page.length < 1000) break;
      after = page[page.length - 1]!.keyId;
    }
    return count;
  });
  saveNodeConfig(n.paths, config);
  return { queued, mode: made.mode };
}

/**
 * Opens a node for serving or maintenance. The caller stops `failover` and closes `store` (closeNode).
 * Throws what loadNodeConfig, loadNodeSecrets and openKeyNodeStore throw.
 */
export async function openNode(
  dir: string,
  opts: {
    store?: string;
    log?: (line: string) => void;
    failoverRetryMs?: number;
    backupTransport?: BackupTransport;
    /** Makers of other channels' agents (wired in the CLI layer: src/keynode does not import them). */
    channelAgents?: ((ctx: ChannelAgentContext) => ChannelAgent | undefined)[];
  } = {},
): Promise<OpenedNode> {
  const paths = nodePaths(dir);
  const config = loadNodeConfig(paths);
  const master = loadNodeMasterKey(paths);
  const secrets = loadNodeSecrets(paths.vault, master);
  const store = await openKeyNodeStore(storeUrl(config, opts.store));
  const durable = new DurabilityGate(store, requiredChannels(config), config.durable_wait_ms ?? config.backup?.wait_ms ?? DURABLE_WAIT_MS);
  const backup = config.backup ? createBackupAgent(store, secrets, config.backup, { log: opts.log, transport: opts.backupTransport, durable }) : undefined;
  if (backup) durable.onWait(() => backup.kick());
  const ctx: ChannelAgentContext = { paths, config, secrets, store, durable, log: opts.log, readMnemonic: () => loadNodeMnemonic(paths.vault, master) };
  const agents = (opts.channelAgents ?? []).map((make) => make(ctx)).filter((a): a is ChannelAgent => a !== undefined);
  for (const a of agents) durable.onWait(() => a.kick());
  // The service reports commits to the fail-over sync (which exports through the service) and the channel
  // agents; the sync is read from the opened node at each commit, as a reload may replace it.
  const ref: { node?: OpenedNode } = {};
  const service = new KeyNodeService({
    store,
    secrets,
    config,
    durableGate: durable.gated ? { waitMs: durable.waitMs, wait: (keyId, ms) => durable.wait(keyId, ms) } : undefined,
    onKeyCommitted: (keyId) => {
      ref.node?.failover.committed(keyId);
      backup?.kick();
      for (const a of agents) a.kick();
    },
  });
  ref.node = { paths, config, secrets, store, service, failover: new FailoverSync({ store, service, secrets, config, log: opts.log, retryMs: opts.failoverRetryMs }), backup, durable, agents };
  return ref.node;
}

/** Stops the fail-over loop and the channel agents (waiting for work in flight) and closes the store. */
export async function closeNode(n: OpenedNode): Promise<void> {
  await n.failover.stop();
  await n.backup?.stop();
  for (const a of n.agents) await a.stop();
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
