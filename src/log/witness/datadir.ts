/**
 * A witness's data directory (docs/log.md, "Witnesses"), 0700:
 *   witness.json   public configuration: the witness's name and verifier key (0600)
 *   vault          its own Lifeboat vault, holding `witness/key` (the cosignature/v1 Ed25519 seed)
 *   master.key     the vault's master key (0600), as a key node keeps its own
 *   logs/          one file per witnessed log: its key and the last checkpoint co-signed (state.ts)
 *   forks/         evidence of every fork refused (forks.ts)
 *   serve.lock     held by the one `log witness serve` running on the directory
 * The directory is --data-dir, else $LIFEBOAT_WITNESS_DIR, else ./lifeboat-witness.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { LifeboatError } from '../../errors.js';
import { randomBytes } from '../../crypto/random.js';
import { loadMasterKey, type PrimaryPaths, storeMasterKey } from '../../primary/datadir.js';
import { ensureOwnPrivateDir, ensurePrivateDir, writeFileAtomic } from '../../util/files.js';
import { wipe } from '../../util/bytes.js';
import { createVault, openVault, sealVault } from '../../vault/format.js';
import { getEntry } from '../../vault/vault.js';
import { cosignatureSigner, parseWitnessVerifierKey } from '../cosignature.js';
import { checkKeyName, encodeVerifierKey, type NoteSigner, SIG_COSIGNATURE_V1 } from '../note.js';
import { WitnessError } from './errors.js';

/** The vault entry holding the witness's 32-byte Ed25519 seed. */
export const WITNESS_KEY_ENTRY = 'witness/key';

export interface WitnessPaths {
  dir: string;
  config: string;
  vault: string;
  masterKey: string;
  logs: string;
  forks: string;
  lock: string;
}

/** Resolves the data directory from an explicit option, the environment, or the default. */
export function resolveWitnessDir(explicit?: string): string {
  return resolve(explicit ?? process.env.LIFEBOAT_WITNESS_DIR ?? 'lifeboat-witness');
}

export function witnessPaths(dir: string): WitnessPaths {
  return {
    dir,
    config: join(dir, 'witness.json'),
    vault: join(dir, 'vault'),
    masterKey: join(dir, 'master.key'),
    logs: join(dir, 'logs'),
    forks: join(dir, 'forks'),
    lock: join(dir, 'serve.lock'),
  };
}

function masterPaths(p: WitnessPaths): PrimaryPaths {
  return { dir: p.dir, identity: '', vault: p.vault, manifest: '', masterKey: p.masterKey };
}

const configSchema = z.object({
  version: z.literal(1),
  type: z.literal('lifeboat-log-witness'),
  name: z.string(),
  vkey: z.string(),
  created_at: z.string(),
});

/** The public facts of a witness. */
export interface WitnessInfo {
  name: string;
  /** The verifier key (type 0x04) logs are configured with. */
  vkey: string;
  createdAt: string;
}

/**
 * Creates a witness in `dir`: a fresh cosignature/v1 key in a new vault under a new master key, and
 * witness.json. Throws InvalidInputError for a bad name (signed-note key name rules), WitnessError
 * `witness_exists` when the directory already holds one.
 */
export function initWitness(dir: string, name: string): WitnessInfo {
  checkKeyName(name, 'witness name');
  const paths = witnessPaths(dir);
  if (existsSync(paths.config) || existsSync(paths.vault)) throw new WitnessError('witness_exists', `${dir} already holds a witness`, 'use another --data-dir, or `lifeboat log witness key` to see this one');
  ensureOwnPrivateDir(dir);
  ensurePrivateDir(paths.logs);
  ensurePrivateDir(paths.forks);
  const master = { schemeId: randomBytes(16), key: randomBytes(32) };
  const seed = randomBytes(32);
  try {
    const now = new Date().toISOString();
    const vault = openVault(createVault(master.key, master.schemeId), master.key);
    vault.entries.set(WITNESS_KEY_ENTRY, { value: seed.slice(), updatedAt: now });
    writeFileAtomic(paths.vault, sealVault(vault, master.key, master.schemeId, 1));
    storeMasterKey(masterPaths(paths), master);
    const vkey = encodeVerifierKey({ name, type: SIG_COSIGNATURE_V1, publicKey: cosignatureSigner(name, seed).publicKey });
    writeFileAtomic(paths.config, `${JSON.stringify({ version: 1, type: 'lifeboat-log-witness', name, vkey, created_at: now }, null, 2)}\n`);
    return { name, vkey, createdAt: now };
  } finally {
    wipe(seed, master.key);
  }
}

/** Reads witness.json. Throws WitnessError `witness_not_found`, LifeboatError `witness_config_invalid`. */
export function loadWitnessInfo(paths: WitnessPaths): WitnessInfo {
  if (!existsSync(paths.config)) {
    throw new WitnessError('witness_not_found', `no witness in ${paths.dir}`, 'run `lifeboat log witness init --name NAME` first, or pass --data-dir (or set LIFEBOAT_WITNESS_DIR)');
  }
  try {
    const c = configSchema.parse(JSON.parse(readFileSync(paths.config, 'utf8')));
    parseWitnessVerifierKey(c.vkey);
    return { name: c.name, vkey: c.vkey, createdAt: c.created_at };
  } catch {
    throw new LifeboatError('witness_config_invalid', `${paths.config} is not a lifeboat witness configuration`, { status: 500, hint: 'restore it from your backup of the witness directory' });
  }
}

/**
 * The witness's signer, from its vault. Throws what loadWitnessInfo throws; LifeboatError `sealed`
 * when master.key is missing, `witness_key_mismatch` when the vault's key is not witness.json's.
 */
export function loadWitnessSigner(paths: WitnessPaths, now?: () => number): { info: WitnessInfo; signer: NoteSigner } {
  const info = loadWitnessInfo(paths);
  if (!existsSync(paths.masterKey)) {
    throw new LifeboatError('sealed', `the witness key is locked: ${paths.masterKey} is missing`, { status: 503, hint: 'restore master.key from your backup of the witness directory' });
  }
  const seed = getEntry(paths.vault, loadMasterKey(masterPaths(paths)), WITNESS_KEY_ENTRY);
  try {
    const signer = cosignatureSigner(info.name, seed, now);
    if (encodeVerifierKey(signer) !== info.vkey) {
      throw new LifeboatError('witness_key_mismatch', 'the key in the vault is not the one witness.json names', { status: 500, hint: 'restore the witness directory whole from one backup' });
    }
    return { info, signer };
  } finally {
    wipe(seed);
  }
}
