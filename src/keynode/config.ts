/**
 * A key node's data directory and configuration (docs/keynode.md):
 *   node.json      configuration (this file's schema)
 *   vault.lbv      the node's Lifeboat vault: identity, storage, export, wrapping and backup keys
 *   master.key     the unsealed master key of that vault (0600)
 *   store.sqlite   the default store (sqlite:<dir>/store.sqlite), unless `store` names PostgreSQL
 */
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { NAME_RE } from '../backup/format.js';
import { ConflictError, ForbiddenError, FormatError, InvalidInputError } from '../errors.js';
import { readFileOrThrow, writeFileAtomic } from '../util/files.js';
import { utf8 } from '../util/bytes.js';
import type { ErsPolicy } from './store/types.js';

/** The default and the largest message a node signs (`message_limit_bytes`). */
export const MESSAGE_LIMIT_DEFAULT = 1024 * 1024;
export const MESSAGE_LIMIT_MAX = 16 * 1024 * 1024;

export const backupConfigSchema = z.object({
  /** The backup service's base URL. */
  server: z.string().url().max(2048),
  account: z.string().regex(NAME_RE),
  stream: z.string().regex(NAME_RE),
  /** true: a new key signs at once and its backup follows; false (default): it is pending_backup until acknowledged. */
  usable_before_ack: z.boolean().default(false),
  /** How long a DKG or import answer waits for the acknowledgement before reporting pending_backup. */
  wait_ms: z.number().int().min(0).max(120_000).default(10_000),
  /** Entries per upload. */
  batch_entries: z.number().int().min(1).max(10_000).default(1000),
  /** Compact after this many acknowledged entries since the last compaction... */
  compact_entries: z.number().int().min(1).max(10_000_000).default(10_000),
  /** ...or after this many seconds if anything changed. */
  compact_seconds: z.number().int().min(10).max(30 * 86_400).default(86_400),
});
export type BackupConfig = z.infer<typeof backupConfigSchema>;

/** A public log the node publishes its key-share backups to (docs/keyshare.md, "Operating a node"). */
export const logTargetSchema = z.object({
  /** The log's base URL (`POST <url>/add`). */
  url: z.string().url().max(2048),
  /** The log's verifier key (note format): every answer's checkpoint must verify under it. */
  log_key: z.string().min(1).max(512),
  /** Witness verifier keys whose co-signatures count. */
  witness_keys: z.array(z.string().min(1).max(512)).max(32).default([]),
  /** Co-signatures of witness_keys an answer's checkpoint must carry (as `keyshare recover --quorum`). */
  quorum: z.number().int().min(0).max(32).default(0),
});
export type LogTarget = z.infer<typeof logTargetSchema>;

/** The operator mnemonic's mode (docs/keyshare.md, "Two modes"); passphrase keeps the words in the vault (`node/mnemonic`). */
export const keyshareConfigSchema = z.object({
  mode: z.enum(['passphrase', 'recipient']),
  /** recipient mode: the hybrid age recipient (age1pq1…) the words derive; null in passphrase mode. */
  recipient: z.string().max(4096).nullable(),
  /** recipient mode: the 16-byte mnemonic check of the words for this node (base64); null in passphrase mode. */
  mnemonic_check: z.string().max(64).nullable(),
});
export type KeyshareConfig = z.infer<typeof keyshareConfigSchema>;

export const nodeConfigSchema = z.object({
  version: z.literal(1),
  type: z.literal('lifeboat-node-config'),
  /** `sqlite:PATH` or `postgres://…`; overridden by --store or $LIFEBOAT_NODE_STORE. */
  store: z.string().min(1).max(2048),
  export: z.object({
    /** Export as a whole; off refuses every export with `export_disabled`. */
    enabled: z.boolean(),
    /** Plaintext exports; off by default (invariant 5). */
    plaintext: z.boolean(),
    /** Wrapping keys (X25519, b64) a share may be wrapped to. Anything else is refused. */
    whitelist: z.array(z.object({ label: z.string().max(128), wrapping_key: z.string().max(64) })).max(256),
  }),
  /** This node pushes every new share, wrapped, to this fail-over node. */
  failover: z.object({ url: z.string().url().max(2048), identity: z.string().max(200), wrapping_key: z.string().max(64) }).nullable(),
  /** This node is the fail-over of this primary node (lb1 identity): it accepts key-id-keeping imports signed by it. */
  paired_primary: z.string().max(200).nullable(),
  /** Unused signing nonces older than this are refused and deleted (a restored old database never signs with them). */
  nonce_ttl_seconds: z.number().int().min(10).max(86_400),
  /** The largest message this node signs, in bytes; a larger one is refused with `message_too_large` (413). */
  message_limit_bytes: z.number().int().min(1).max(MESSAGE_LIMIT_MAX).default(MESSAGE_LIMIT_DEFAULT),
  /**
   * Emergency recovery parts (docs/ers.md): off by default; when on, the node encrypts a key's share
   * only to an RSA key on this whitelist (SHA-256 fingerprint of the SPKI DER, hex; SPKI DER base64).
   */
  ers: z
    .object({
      enabled: z.boolean(),
      /** true: a key signs only once a verified emergency recovery package is registered for it (`ers_package_required`). */
      require: z.boolean().default(false),
      whitelist: z.array(z.object({ label: z.string().max(128), fingerprint: z.string().regex(/^[0-9a-f]{64}$/), spki: z.string().max(4096) })).max(256),
    })
    .default({ enabled: false, require: false, whitelist: [] }),
  /** Continuous backup to a backup service (docs/backup.md); null when the node does not stream. */
  backup: backupConfigSchema.nullable().default(null),
  /** The operator mnemonic's mode (docs/keyshare.md); null: the node publishes no key-share backups. */
  keyshare: keyshareConfigSchema.nullable().default(null),
  /** The public logs the node publishes its key-share backups to (`node log-setup`). */
  logs: z.array(logTargetSchema).max(8).default([]),
  /**
   * The channels that must hold a new key before it signs (docs/keynode.md, "Durable channels"); null:
   * the ones configured (backup unless backup.usable_before_ack, and log once a mnemonic and a log are set).
   */
  durable_channels: z.array(z.enum(['backup', 'log', 'ers'])).max(3).nullable().default(null),
  /** How long a DKG or import answer waits for the durable channels; null: backup.wait_ms, else 10 s. */
  durable_wait_ms: z.number().int().min(0).max(120_000).nullable().default(null),
  /**
   * The CA file (PEM) the node's own calls trust for https:// peers (fail-over, backup service, logs),
   * besides the system roots; null: none. `node serve --ca-file` and $LIFEBOAT_CA_FILE override it.
   */
  ca_file: z.string().min(1).max(4096).nullable().optional(),
});
export type NodeConfig = z.infer<typeof nodeConfigSchema>;

export interface NodePaths {
  dir: string;
  config: string;
  vault: string;
  masterKey: string;
  defaultStore: string;
}

/** Resolves the node directory: --data-dir, else $LIFEBOAT_NODE_DIR, else ./lifeboat-node. */
export function resolveNodeDir(explicit?: string): string {
  return resolve(explicit ?? process.env.LIFEBOAT_NODE_DIR ?? 'lifeboat-node');
}

/** The node's files; the vault's master key is $LIFEBOAT_MASTER_KEY_FILE when set (e.g. on a tmpfs), as a primary's. */
export function nodePaths(dir: string): NodePaths {
  return { dir, config: join(dir, 'node.json'), vault: join(dir, 'vault.lbv'), masterKey: process.env.LIFEBOAT_MASTER_KEY_FILE ?? join(dir, 'master.key'), defaultStore: `sqlite:${join(dir, 'store.sqlite')}` };
}

export function defaultNodeConfig(paths: NodePaths): NodeConfig {
  return {
    version: 1,
    type: 'lifeboat-node-config',
    store: paths.defaultStore,
    export: { enabled: true, plaintext: false, whitelist: [] },
    failover: null,
    paired_primary: null,
    nonce_ttl_seconds: 600,
    message_limit_bytes: MESSAGE_LIMIT_DEFAULT,
    ers: { enabled: false, require: false, whitelist: [] },
    backup: null,
    keyshare: null,
    logs: [],
    durable_channels: null,
    durable_wait_ms: null,
  };
}

/**
 * Refuses to take part in making a key whose own ERS policy (docs/ers.md, "Policy") this node could
 * never honour: `allow` or `require` on a node whose ers.enabled is off (it makes no part at all), and
 * `off` on a node whose ers.require is on (the key could never sign here). Throws ForbiddenError
 * `ers_disabled` or `ers_required_by_node`; a key without a policy follows the node's settings.
 */
export function checkKeyErsPolicy(config: NodeConfig, policy: ErsPolicy | undefined): void {
  if ((policy === 'allow' || policy === 'require') && !config.ers.enabled) {
    throw new ForbiddenError(`this node makes no emergency recovery parts, so it cannot hold a key with ERS policy ${policy}`, 'ers_disabled', 'create the key with `--ers off` or without --ers, or an operator enables ERS on the node (`lifeboat node config set ers.enabled true` and a restart)');
  }
  if (policy === 'off' && config.ers.require) {
    throw new ForbiddenError('this node requires a verified emergency recovery package for every key it holds, so a key with ERS policy off could never sign here', 'ers_required_by_node', 'create the key with `--ers allow`, `--ers require` or without --ers, on nodes whose ERS settings allow it');
  }
}

/** Loads node.json. Throws NotFoundError (hint: node init) or FormatError naming the bad fields. */
export function loadNodeConfig(paths: NodePaths): NodeConfig {
  const bytes = readFileOrThrow(paths.config, 'node configuration', 'run `lifeboat node init` first');
  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(bytes));
  } catch {
    throw new FormatError('malformed', `${paths.config} is not JSON`);
  }
  const r = nodeConfigSchema.safeParse(json);
  if (!r.success) throw new FormatError('malformed', `${paths.config}: ${r.error.issues.map((i) => i.path.join('.') || 'body').join(', ')} invalid`);
  return r.data;
}

/** Writes node.json (0600, atomic) after validating it. */
export function saveNodeConfig(paths: NodePaths, config: NodeConfig): void {
  const r = nodeConfigSchema.safeParse(config);
  if (!r.success) throw new InvalidInputError(`invalid node configuration: ${r.error.issues.map((i) => i.path.join('.')).join(', ')}`);
  writeFileAtomic(paths.config, `${JSON.stringify(r.data, null, 2)}\n`);
}

/**
 * Throws ConflictError `node_exists` unless `dir` is absent or empty (or, with a store URL, holds no
 * node), and `master_key_exists` when LIFEBOAT_MASTER_KEY_FILE names a key that is already there
 * (another node's: a restore writes a new one, and must not overwrite it).
 */
export function assertRestorableDir(dir: string, store?: string): void {
  const paths = nodePaths(dir);
  if (existsSync(paths.config) || existsSync(paths.vault)) throw new ConflictError(`${dir} already holds a key node`, 'node_exists', 'restore into a new, empty directory');
  if (process.env.LIFEBOAT_MASTER_KEY_FILE && existsSync(paths.masterKey)) {
    throw new ConflictError(`a master key already exists at ${paths.masterKey} (LIFEBOAT_MASTER_KEY_FILE), another node's`, 'master_key_exists', 'give the restored node its own LIFEBOAT_MASTER_KEY_FILE; one node per key file');
  }
  if (existsSync(dir) && readdirSync(dir).length > 0 && !store) {
    throw new ConflictError(`${dir} is not empty`, 'node_exists', 'restore into a new, empty directory');
  }
}
