/**
 * What the key node's store holds: the record types it takes and returns, the enumerations their
 * fields take, and the meta entries the store itself reads. The interface over them, with its error
 * contract, is ./types.ts (which re-exports everything here).
 */

/** The meta entry that turns the backup journal on (value `on`); any other value or none is off. */
export const BACKUP_JOURNAL_META = 'backup_journal';

/** The meta entry that queues every key insert for publication to the public log (value `on`): set when the node has an operator mnemonic. */
export const KEYSHARE_JOURNAL_META = 'keyshare_journal';
/** The meta row holding the node's nonce epoch (a decimal integer, 0 when absent); a restore advances it. */
export const NONCE_EPOCH_META = 'nonce_epoch';

export const DURABLE_CHANNEL_NAMES = ['backup', 'log', 'ers'] as const;
/** Where a key's share is held outside the node (docs/keynode.md, "Durable channels"). */
export type DurableChannel = (typeof DURABLE_CHANNEL_NAMES)[number];

export const CURVES = ['ed25519', 'secp256k1', 'bip340'] as const;
/** The FROST ciphersuite of a key (RFC 9591 Ed25519-SHA512, secp256k1-SHA256, or its BIP-340 variant). */
export type Curve = (typeof CURVES)[number];

export const KEY_STATUSES = ['active', 'pending_backup'] as const;
/** `pending_backup` keys refuse to sign until their share is durable in a backup channel. */
export type KeyStatus = (typeof KEY_STATUSES)[number];

export const KEY_ORIGINS = ['dkg', 'import', 'failover'] as const;
export type KeyOrigin = (typeof KEY_ORIGINS)[number];

export const ERS_POLICIES = ['off', 'allow', 'require'] as const;
/**
 * A key's own emergency recovery policy (docs/ers.md, "Policy"), chosen when it is created: `off` no
 * part is ever made, `allow` parts may be made, `require` it signs only once a verified package is
 * registered. A key without one (made before, or created without `--ers`) follows the node's settings.
 */
export type ErsPolicy = (typeof ERS_POLICIES)[number];

export const API_KEY_ROLES = ['client', 'operator'] as const;
export type ApiKeyRole = (typeof API_KEY_ROLES)[number];

/** One threshold key as this node holds it: its public data and its own share, encrypted. */
export interface KeyRecord {
  /** Chosen by the caller, e.g. 'key_' + 26 base32 characters; 1 to 64 of [A-Za-z0-9_-]. */
  keyId: string;
  curve: Curve;
  /** FROST min_signers. */
  threshold: number;
  /** FROST max_signers, 1 to 255, at least threshold. */
  maxSigners: number;
  /** This node's FROST participant identifier, lowercase hex (a serialized scalar). */
  identifier: string;
  groupPublicKey: Uint8Array;
  /** The serialized FROST public key package (verifying shares of every participant). */
  publicPackage: Uint8Array;
  /** The node's secret share, encrypted under its storage key. */
  encryptedShare: Uint8Array;
  status: KeyStatus;
  origin: KeyOrigin;
  createdAt: number;
  /** Who owns the key (docs/keynode.md, "Tenants"): a tenant name (src/keynode/tenants.ts). */
  tenant: string;
  /** The key's emergency recovery policy; absent: the node's settings decide. */
  ersPolicy?: ErsPolicy;
  /**
   * The share epoch (docs/keyshare.md): 1 for the first share this node held of the key id (absent
   * means 1); a reshare, a rotation or an import of a different share for the key id raises it, and a
   * node recovered from the log keeps the epoch of the record it came from.
   */
  epoch?: number;
}

/** A key's share epoch: its `epoch`, 1 when absent. */
export function keyEpoch(k: Pick<KeyRecord, 'epoch'>): number {
  return k.epoch ?? 1;
}

/** One round-1 signing nonce pair, encrypted; lives until round 2 consumes it. Never backed up. */
export interface NonceRecord {
  nonceId: string;
  keyId: string;
  encryptedNonces: Uint8Array;
  /** The public round-1 commitments, as sent to the coordinator. */
  commitments: Uint8Array;
  createdAt: number;
  /** The node epoch when the nonce was made; a restore starts a new epoch. */
  epoch: number;
}

/** A nonce consumed by KeyNodeStore.claimNonce, and when its deletion is on disk. */
export interface NonceClaim {
  nonce: NonceRecord;
  synced: Promise<void>;
}

/** What both signing rounds read of a key, in one query (KeyNodeStoreOps.getKeyForSigning). */
export interface SigningRead {
  key: KeyRecord;
  /** The nonce asked for, when it exists for this key (unused: a consumed one is gone). */
  nonce?: NonceRecord;
  /** The node's current nonce epoch (meta NONCE_EPOCH_META, 0 when unset). */
  nonceEpoch: number;
}

/** The state of a DKG in progress on this node, encrypted. Never backed up: a DKG cut short is rerun. */
export interface DkgSessionRecord {
  sessionId: string;
  /** The key_id the DKG will create. */
  keyId: string;
  state: Uint8Array;
  /** Which DKG round the session has finished (1, 2, ...). */
  step: number;
  expiresAt: number;
  /** The tenant of the API key that started it; the key it makes belongs to that tenant. */
  tenant: string;
  /** The emergency recovery policy the key will have; absent: none (the node's settings decide). */
  ersPolicy?: ErsPolicy;
}

/** An API key; the caller hashes the secret, the store keeps only the hash. */
export interface ApiKeyRecord {
  id: string;
  secretHash: Uint8Array;
  role: ApiKeyRole;
  label: string;
  createdAt: number;
  /** When it was revoked, or null while it is valid. */
  revokedAt: number | null;
  /** The tenant a client key belongs to; null for an operator key (operators see every tenant). */
  tenant: string | null;
}

export interface MetaEntry {
  key: string;
  value: string;
}

/**
 * What `lifeboat node backup` saves: every key, API key and meta entry, read in one consistent
 * transaction. Deliberately without nonces (a restored node must never reuse one) and without DKG
 * sessions (unfinished, and they hold round secrets). Each list is sorted by its id.
 */
export interface StoreSnapshot {
  keys: KeyRecord[];
  apiKeys: ApiKeyRecord[];
  meta: MetaEntry[];
}

/** A change in the backup outbox, not yet sealed into an entry. */
export interface OutboxChange {
  /** Increasing in the order the rows were added. */
  id: number;
  /** The encoded change (src/backup/changes.ts). */
  change: Uint8Array;
  createdAt: number;
}

/** A sealed entry in the backup outbox, held until the backup service acknowledges it. */
export interface OutboxEntry {
  seq: number;
  entry: Uint8Array;
}

/** A key share waiting to be published to the public log(s). */
export interface KeyshareOutboxRow {
  keyId: string;
  epoch: number;
  /** The LBLE entry holding the sealed record, once sealed (sent as is on every retry). */
  entry: Uint8Array | null;
  createdAt: number;
}

/** What a log answered for a key's record. */
export interface KeysharePublication {
  keyId: string;
  epoch: number;
  /** The log's URL as configured. */
  log: string;
  index: number;
  checkpointSize: number;
  /** The inclusion proof document (docs/log-format.md), JSON text. */
  proof: string;
  publishedAt: number;
}

/** A channel holding a key at an epoch. */
export interface KeyChannelRecord {
  channel: DurableChannel;
  epoch: number;
  /** JSON text: what the channel says of it. */
  detail: string;
  recordedAt: number;
}

/** A key as a coverage page reads it: public columns and the channels holding it at its current epoch. */
export interface CoverageKeyRow {
  keyId: string;
  curve: string;
  threshold: number;
  maxSigners: number;
  identifier: string;
  /** Lowercase hex. */
  groupPublicKey: string;
  status: string;
  epoch: number;
  createdAt: number;
  /** By channel name, in name order; `detail` is the channel's JSON text. */
  channels: { channel: DurableChannel; detail: string }[];
}

export interface ListKeysOptions {
  /** Return only keys whose key_id sorts after this one (keyset paging). */
  afterKeyId?: string;
  /** At most this many, 1 to 10,000. */
  limit: number;
  /** Only the keys of this tenant. */
  tenant?: string;
}
