/**
 * The primary's data directory (docs/operations.md):
 *   identity.json           the primary's identity (0600)
 *   vault.lbv               the encrypted vault
 *   recovery-manifest.json  the public recovery manifest
 *   master.key              the unsealed master key (0600); absent while the primary is sealed
 * The directory is chosen by --data-dir, else $LIFEBOAT_DATA_DIR, else ./lifeboat-data.
 */
import { join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { FormatError, LifeboatError } from '../errors.js';
import { fromB64, fromHex, toB64, toHex, utf8 } from '../util/bytes.js';
import { assertPrivateFile, ensurePrivateDir, readFileOrThrow, shredFile, writeFileAtomic } from '../util/files.js';

export interface PrimaryPaths {
  dir: string;
  identity: string;
  vault: string;
  manifest: string;
  masterKey: string;
}

/** Resolves the data directory from an explicit option, the environment, or the default. */
export function resolveDataDir(explicit?: string): string {
  return resolve(explicit ?? process.env.LIFEBOAT_DATA_DIR ?? 'lifeboat-data');
}

export function primaryPaths(dataDir: string): PrimaryPaths {
  return {
    dir: dataDir,
    identity: join(dataDir, 'identity.json'),
    vault: join(dataDir, 'vault.lbv'),
    manifest: join(dataDir, 'recovery-manifest.json'),
    masterKey: process.env.LIFEBOAT_MASTER_KEY_FILE ?? join(dataDir, 'master.key'),
  };
}

const masterKeyFile = z.object({
  version: z.literal(1),
  type: z.literal('lifeboat-master-key'),
  scheme_id: z.string(),
  key: z.string(),
});

/** An unsealed master key and the recovery scheme it belongs to. */
export interface MasterKey {
  schemeId: Uint8Array;
  key: Uint8Array;
}

/** Writes the unsealed master key (0600, atomic). */
export function storeMasterKey(paths: PrimaryPaths, mk: MasterKey): void {
  ensurePrivateDir(paths.dir);
  const doc = { version: 1, type: 'lifeboat-master-key', scheme_id: toHex(mk.schemeId), key: toB64(mk.key) };
  writeFileAtomic(paths.masterKey, `${JSON.stringify(doc)}\n`);
}

/**
 * Loads the unsealed master key. Throws LifeboatError `sealed` (with a hint to unseal) when the
 * primary is sealed, InvalidInputError when the file is readable by others, FormatError when malformed.
 */
export function loadMasterKey(paths: PrimaryPaths): MasterKey {
  if (!existsSync(paths.masterKey)) {
    throw new LifeboatError('sealed', 'the primary is sealed: no master key is loaded', {
      status: 503,
      hint: 'run `lifeboat unseal` (from holders or typed shares), or `lifeboat recovery init` on a new primary',
    });
  }
  assertPrivateFile(paths.masterKey, 'master key file');
  let doc: z.infer<typeof masterKeyFile>;
  try {
    doc = masterKeyFile.parse(JSON.parse(utf8.decode(readFileOrThrow(paths.masterKey, 'master key file'))));
  } catch {
    throw new FormatError('malformed', `${paths.masterKey} is not a lifeboat master key file`);
  }
  return { schemeId: fromHex(doc.scheme_id, 'scheme id', 16), key: fromB64(doc.key, 'master key', 32) };
}

/** Seals the primary: overwrites and removes the unsealed master key. */
export function dropMasterKey(paths: PrimaryPaths): boolean {
  if (!existsSync(paths.masterKey)) return false;
  shredFile(paths.masterKey);
  return true;
}
