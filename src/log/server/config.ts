/**
 * A log's data directory (docs/log.md, "Running a log"), 0700:
 *   log.json     configuration (this file's schema): origin, store, interval, entry size limit, witnesses
 *   vault        the log's own Lifeboat vault, holding its Ed25519 checkpoint signer key (log/signer-key)
 *   master.key   the unsealed master key of that vault (0600)
 *   log.sqlite   the default store (sqlite:<dir>/log.sqlite), unless `store` names PostgreSQL
 *   public/      the static read API: checkpoint, tile/<L>/<N>[.p/<W>], tile/entries/<N>[.p/<W>]
 * The directory is --data-dir, else $LIFEBOAT_LOG_DIR, else ./lifeboat-log.
 */
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { z } from 'zod';
import { FormatError, InvalidInputError, LifeboatError } from '../../errors.js';
import { randomBytes } from '../../crypto/random.js';
import { loadMasterKey, storeMasterKey, type MasterKey, type PrimaryPaths } from '../../primary/datadir.js';
import { createVault, openVault, sealVault } from '../../vault/format.js';
import { getEntry } from '../../vault/vault.js';
import { ensurePrivateDir, readFileOrThrow, writeFileAtomic } from '../../util/files.js';
import { utf8, wipe } from '../../util/bytes.js';
import { ENTRY_OVERHEAD, MAX_ENTRY_BYTES } from '../entry.js';
import { SIG_ED25519, checkKeyName, encodeVerifierKey, makeSigner, type NoteSigner } from '../note.js';
import { parseWitnessVerifierKey } from '../cosignature.js';

export const SIGNER_ENTRY = 'log/signer-key';
export const DEFAULT_INTERVAL_MS = 1000;
export const MIN_INTERVAL_MS = 10;
export const MAX_INTERVAL_MS = 3_600_000;
export const DEFAULT_WITNESS_TIMEOUT_MS = 5000;

export interface LogPaths {
  dir: string;
  config: string;
  vault: string;
  masterKey: string;
  public: string;
  defaultStore: string;
}

/** The data directory: `explicit`, else $LIFEBOAT_LOG_DIR, else ./lifeboat-log (absolute). */
export function resolveLogDir(explicit?: string): string {
  return resolve(explicit ?? process.env.LIFEBOAT_LOG_DIR ?? 'lifeboat-log');
}

export function logPaths(dir: string): LogPaths {
  return {
    dir,
    config: join(dir, 'log.json'),
    vault: join(dir, 'vault'),
    masterKey: join(dir, 'master.key'),
    public: join(dir, 'public'),
    defaultStore: `sqlite:${join(dir, 'log.sqlite')}`,
  };
}

const witnessSchema = z.object({
  /** The witness's verifier key (Go note format, cosignature/v1 or Ed25519). */
  vkey: z.string().min(1).max(1024),
  /** Its tlog-witness base URL (POST <url>/add-checkpoint). */
  url: z.string().url().max(2048),
});
export type WitnessConfig = z.infer<typeof witnessSchema>;

export const logConfigSchema = z.object({
  version: z.literal(1),
  type: z.literal('lifeboat-log-config'),
  origin: z.string().min(1).max(255),
  /** `sqlite:PATH` or `postgres://…`; null: the default `sqlite:<data-dir>/log.sqlite`, so the directory can be moved or copied whole. */
  store: z.string().min(1).max(4096).nullable(),
  interval_ms: z.number().int().min(MIN_INTERVAL_MS).max(MAX_INTERVAL_MS),
  max_entry_bytes: z.number().int().min(ENTRY_OVERHEAD + 1).max(MAX_ENTRY_BYTES),
  witnesses: z.array(witnessSchema).max(32),
  /** Co-signatures the log waits for (up to witness_timeout_ms) before publishing; null: all of them. */
  quorum: z.number().int().min(0).max(32).nullable(),
  witness_timeout_ms: z.number().int().min(100).max(120_000),
});
export type LogConfig = z.infer<typeof logConfigSchema>;

/** The store URL of a log: log.json's `store`, or the default store inside its data directory. Never throws. */
export function storeUrlOf(paths: LogPaths, c: LogConfig): string {
  return c.store ?? paths.defaultStore;
}

/** The co-signatures the log waits for: `quorum`, or every witness when unset. */
export function effectiveQuorum(c: LogConfig): number {
  return Math.min(c.quorum ?? c.witnesses.length, c.witnesses.length);
}

/**
 * Parses an interval: `500ms`, `1s`, `2m`, or a bare number of milliseconds. Throws InvalidInputError
 * `invalid_interval` outside 10 ms .. 1 h.
 */
export function parseInterval(s: string): number {
  const m = /^(\d{1,7})(ms|s|m)?$/.exec(s.trim());
  const ms = m ? Number(m[1]) * (m[2] === 's' ? 1000 : m[2] === 'm' ? 60_000 : 1) : NaN;
  if (!(ms >= MIN_INTERVAL_MS && ms <= MAX_INTERVAL_MS)) {
    throw new InvalidInputError(`interval "${s}" is not a duration from 10ms to 60m`, { code: 'invalid_interval', hint: 'for example 1s, 250ms or 2m' });
  }
  return ms;
}

/**
 * Throws LifeboatError `log_init_incomplete` for a directory a `log init` was cut off in: its vault or
 * default store is there but not log.json, which init writes last.
 */
export function checkInitComplete(paths: LogPaths): void {
  if (existsSync(paths.config)) return;
  const left = [paths.vault, paths.defaultStore.slice('sqlite:'.length)].filter((p) => existsSync(p));
  if (left.length === 0) return;
  throw new LifeboatError('log_init_incomplete', `${paths.dir} holds a log whose \`log init\` did not finish (no log.json, but ${left.map((p) => basename(p)).join(', ')})`, {
    status: 409,
    hint: 'nothing was published from it: move the directory aside (and, with --store postgres://…, drop its log_ tables) and run `lifeboat log init` again',
  });
}

/**
 * Reads log.json. Throws NotFoundError `file_not_found` (no log there), LifeboatError
 * `log_init_incomplete` (an init cut off), or FormatError `malformed`.
 */
export function loadLogConfig(paths: LogPaths): LogConfig {
  checkInitComplete(paths);
  const bytes = readFileOrThrow(paths.config, 'log configuration', 'run `lifeboat log init --origin NAME` first, or pass --data-dir');
  try {
    return logConfigSchema.parse(JSON.parse(utf8.decode(bytes)));
  } catch {
    throw new FormatError('malformed', `${paths.config} is not a lifeboat log configuration`);
  }
}

/** Writes log.json (0600, atomic). */
export function saveLogConfig(paths: LogPaths, c: LogConfig): void {
  writeFileAtomic(paths.config, `${JSON.stringify(logConfigSchema.parse(c), null, 2)}\n`);
}

/** Checks a witness entry before it goes into log.json. Throws LogError `verifier_key_invalid` or InvalidInputError. */
export function checkWitness(w: WitnessConfig): { name: string } {
  const v = parseWitnessVerifierKey(w.vkey);
  let url: URL;
  try {
    url = new URL(w.url);
  } catch {
    throw new InvalidInputError(`witness url ${JSON.stringify(w.url.slice(0, 100))} is not a url`, { hint: 'for example http://127.0.0.1:7380' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidInputError('witness url must be http or https');
  return { name: v.name };
}

function masterPaths(p: LogPaths): PrimaryPaths {
  return { dir: p.dir, identity: '', vault: p.vault, manifest: '', masterKey: p.masterKey };
}

/**
 * Makes the directory's vault holding a fresh signer seed under a fresh master key. Throws
 * ConflictError via the caller's check first (`log_exists`); nothing here overwrites.
 */
export function createLogVault(paths: LogPaths): void {
  ensurePrivateDir(paths.dir);
  const master: MasterKey = { schemeId: randomBytes(16), key: randomBytes(32) };
  const vault = openVault(createVault(master.key, master.schemeId), master.key);
  const seed = randomBytes(32);
  vault.entries.set(SIGNER_ENTRY, { value: seed, updatedAt: new Date().toISOString() });
  writeFileAtomic(paths.vault, sealVault(vault, master.key, master.schemeId, 1));
  wipe(seed);
  storeMasterKey(masterPaths(paths), master);
}

/** Whether the directory already holds a log (its configuration or its vault). */
export function logExistsAt(paths: LogPaths): boolean {
  return existsSync(paths.config) || existsSync(paths.vault);
}

/**
 * The log's checkpoint signer (named by the origin), from its vault. Throws what loadMasterKey and
 * getEntry throw (`sealed`, `entry_not_found`, `wrong_master_key`, …).
 */
export function loadLogSigner(paths: LogPaths, origin: string): NoteSigner {
  checkKeyName(origin, 'origin');
  if (!existsSync(paths.masterKey)) {
    throw new LifeboatError('sealed', `the log's master key is not at ${paths.masterKey}`, { status: 503, hint: 'restore master.key (0600) beside the vault from the backup of the data directory' });
  }
  const seed = getEntry(paths.vault, loadMasterKey(masterPaths(paths)), SIGNER_ENTRY);
  try {
    return makeSigner(origin, SIG_ED25519, seed);
  } finally {
    wipe(seed);
  }
}

/** The log's verifier key in Go's note format (`note.NewVerifier` accepts it). */
export function verifierKeyOf(signer: NoteSigner): string {
  return encodeVerifierKey({ name: signer.name, type: signer.type, publicKey: signer.publicKey });
}
