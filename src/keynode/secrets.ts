/**
 * The key node's own keys live in its Lifeboat vault, never in the database: a stolen database is
 * ciphertext only. Entries (32 raw bytes each, except the identity):
 *   node/identity      the node identity (Ed25519 + X25519 seeds, 64 bytes)
 *   node/storage-key   encrypts key shares and nonces at rest
 *   node/export-key    encrypts `encrypted` exports (only this node, with its vault, can import them)
 *   node/wrapping-key  X25519 secret: shares wrapped to this node (fail-over, migration) open with it
 *   node/backup-key    encrypts node backups (`lifeboat node backup`) and, later, the backup stream
 *   node/mnemonic      only on a node with a passphrase-mode operator mnemonic (docs/keyshare.md): the
 *                      normalised 24 words, UTF-8; key-share backups are encrypted under them
 */
import { InvalidInputError } from '../errors.js';
import { boxPublicKey, type BoxKeyPair } from '../crypto/sealedbox.js';
import { signingKeyPairFromSeed } from '../crypto/sign.js';
import { randomBytes } from '../crypto/random.js';
import { concatBytes, wipe } from '../util/bytes.js';
import type { Identity } from '../identity.js';
import type { MasterKey } from '../primary/datadir.js';
import { createVault, openVault, sealVault } from '../vault/format.js';
import { getEntry, putEntry, removeEntry } from '../vault/vault.js';

export const NODE_ENTRIES = ['node/identity', 'node/storage-key', 'node/export-key', 'node/wrapping-key', 'node/backup-key'] as const;

export interface NodeSecrets {
  identity: Identity;
  storageKey: Uint8Array;
  exportKey: Uint8Array;
  wrapping: BoxKeyPair;
  backupKey: Uint8Array;
}

/** The node identity from the 64 raw bytes node/identity stores (seeds of its signing and box keys). Throws InvalidInputError. */
export function identityFromSeeds(raw: Uint8Array): Identity {
  if (raw.length !== 64) throw new InvalidInputError('node/identity must be 64 bytes');
  const signing = signingKeyPairFromSeed(raw.slice(0, 32));
  const boxSecret = raw.slice(32);
  const box = { secretKey: boxSecret, publicKey: boxPublicKey(boxSecret) };
  return { role: 'node', signing, box, signingPublicKey: signing.publicKey, boxPublicKey: box.publicKey };
}

/** A new node vault holding fresh node keys, sealed under `master`. */
export function createNodeVault(master: MasterKey): Uint8Array {
  const now = new Date().toISOString();
  const empty = openVault(createVault(master.key, master.schemeId), master.key);
  for (const name of NODE_ENTRIES) empty.entries.set(name, { value: randomBytes(name === 'node/identity' ? 64 : 32), updatedAt: now });
  return sealVault(empty, master.key, master.schemeId, 1);
}

/** A node vault holding the given node keys (a restore), sealed under `master`. */
export function createNodeVaultWith(master: MasterKey, keys: { identity: Uint8Array; storageKey: Uint8Array; exportKey: Uint8Array; wrappingKey: Uint8Array; backupKey: Uint8Array }): Uint8Array {
  const now = new Date().toISOString();
  const vault = openVault(createVault(master.key, master.schemeId), master.key);
  const values: Record<(typeof NODE_ENTRIES)[number], Uint8Array> = {
    'node/identity': keys.identity,
    'node/storage-key': keys.storageKey,
    'node/export-key': keys.exportKey,
    'node/wrapping-key': keys.wrappingKey,
    'node/backup-key': keys.backupKey,
  };
  for (const name of NODE_ENTRIES) {
    const v = values[name];
    if (v.length !== (name === 'node/identity' ? 64 : 32)) throw new InvalidInputError(`${name} has the wrong length`);
    vault.entries.set(name, { value: v.slice(), updatedAt: now });
  }
  return sealVault(vault, master.key, master.schemeId, 1);
}

/** Reads the node keys from the vault. Throws like getEntry (`entry_not_found` when one is missing). */
export function loadNodeSecrets(vaultPath: string, master: MasterKey): NodeSecrets {
  const get = (name: (typeof NODE_ENTRIES)[number]) => getEntry(vaultPath, master, name);
  const wrappingSecret = get('node/wrapping-key');
  return {
    identity: identityFromSeeds(get('node/identity')),
    storageKey: get('node/storage-key'),
    exportKey: get('node/export-key'),
    wrapping: { secretKey: wrappingSecret, publicKey: boxPublicKey(wrappingSecret) },
    backupKey: get('node/backup-key'),
  };
}

export const NODE_MNEMONIC_ENTRY = 'node/mnemonic';

/** The passphrase-mode mnemonic (normalised words, UTF-8; secret, wipe it), or undefined when the vault holds none. */
export function loadNodeMnemonic(vaultPath: string, master: MasterKey): Uint8Array | undefined {
  try {
    return getEntry(vaultPath, master, NODE_MNEMONIC_ENTRY);
  } catch (err) {
    if ((err as { code?: unknown }).code === 'entry_not_found') return undefined;
    throw err;
  }
}

/** Stores the passphrase-mode mnemonic in the vault. Throws ConflictError `entry_exists` if it holds one. */
export async function storeNodeMnemonic(vaultPath: string, master: MasterKey, phrase: Uint8Array): Promise<void> {
  await putEntry(vaultPath, master, NODE_MNEMONIC_ENTRY, phrase);
}

/** Removes the passphrase-mode mnemonic if the vault holds one (a setup cut short before node.json named it). */
export async function removeNodeMnemonic(vaultPath: string, master: MasterKey): Promise<void> {
  const held = loadNodeMnemonic(vaultPath, master);
  if (held === undefined) return;
  wipe(held);
  await removeEntry(vaultPath, master, NODE_MNEMONIC_ENTRY);
}

/** The 64 raw bytes of an identity, as node/identity stores them. */
export function identitySeeds(id: Identity): Uint8Array {
  return concatBytes(id.signing.secretKey, id.box.secretKey);
}
