/**
 * The key node's own keys live in its Lifeboat vault, never in the database: a stolen database is
 * ciphertext only. Entries (32 raw bytes each, except the identity):
 *   node/identity      the node identity (Ed25519 + X25519 seeds, 64 bytes)
 *   node/storage-key   encrypts key shares and nonces at rest
 *   node/export-key    encrypts `encrypted` exports (only this node, with its vault, can import them)
 *   node/wrapping-key  X25519 secret: shares wrapped to this node (fail-over, migration) open with it
 *   node/backup-key    encrypts node backups (`lifeboat node backup`) and, later, the backup stream
 */
import { InvalidInputError } from '../errors.js';
import { boxPublicKey, type BoxKeyPair } from '../crypto/sealedbox.js';
import { signingKeyPairFromSeed } from '../crypto/sign.js';
import { randomBytes } from '../crypto/random.js';
import { concatBytes } from '../util/bytes.js';
import type { Identity } from '../identity.js';
import type { MasterKey } from '../primary/datadir.js';
import { createVault, openVault, sealVault } from '../vault/format.js';
import { getEntry } from '../vault/vault.js';

export const NODE_ENTRIES = ['node/identity', 'node/storage-key', 'node/export-key', 'node/wrapping-key', 'node/backup-key'] as const;

export interface NodeSecrets {
  identity: Identity;
  storageKey: Uint8Array;
  exportKey: Uint8Array;
  wrapping: BoxKeyPair;
  backupKey: Uint8Array;
}

function identityFromSeeds(raw: Uint8Array): Identity {
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

/** The 64 raw bytes of an identity, as node/identity stores them. */
export function identitySeeds(id: Identity): Uint8Array {
  return concatBytes(id.signing.secretKey, id.box.secretKey);
}
