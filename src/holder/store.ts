/**
 * The holder's data directory (docs/format.md, "Share holder: data directory"):
 *
 *   identity.json                 the holder identity (role holder, 0600)
 *   config.json                   enrolled primary and operators, auto_unseal
 *   schemes/<scheme_id>/share.json    the sealed share, its member index and when it was stored
 *   schemes/<scheme_id>/manifest.json the latest manifest copy, as uploaded
 *   schemes/<scheme_id>/vault.lbv     the latest encrypted vault copy
 *   release-ids.json              release request ids already used
 *   http-nonces.json              signed-request nonces inside the replay window
 *   audit.log                     the hash-chained audit log (./audit.ts)
 *   lock                          the pid of the process that owns the directory
 *   admin.sock                    while `holder serve` runs: its admin socket (./admin.ts)
 *
 * Every file is written with writeFileAtomic (0600, temp + fsync + rename + dir fsync), so a crash
 * leaves the old or the new version of each. share.json is a scheme's commit point: a scheme exists
 * when it does. Deleting a scheme renames its directory away first (atomic) and then removes it.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { sha256 } from '@noble/hashes/sha2.js';
import { FormatError, InvalidInputError, LifeboatError } from '../errors.js';
import { randomBytes } from '../crypto/random.js';
import { parsePublicIdentity } from '../identity.js';
import { fromB64, toB64, toHex, utf8 } from '../util/bytes.js';
import { ReplayGuard } from '../util/request-auth.js';
import { ensurePrivateDir, readFileOrThrow, shredFile, writeFileAtomic, isProcessAlive, fsyncDir } from '../util/files.js';
import { readVaultHeader, VAULT_HEADER_LEN } from '../vault/format.js';

export interface HolderPaths {
  dir: string;
  identity: string;
  config: string;
  schemes: string;
  releaseIds: string;
  nonces: string;
  audit: string;
  lock: string;
}

/** The data directory from an explicit option, else $LIFEBOAT_HOLDER_DIR, else ./lifeboat-holder. */
export function resolveHolderDir(explicit?: string): string {
  return resolve(explicit ?? process.env.LIFEBOAT_HOLDER_DIR ?? 'lifeboat-holder');
}

export function holderPaths(dir: string): HolderPaths {
  return {
    dir,
    identity: join(dir, 'identity.json'),
    config: join(dir, 'config.json'),
    schemes: join(dir, 'schemes'),
    releaseIds: join(dir, 'release-ids.json'),
    nonces: join(dir, 'http-nonces.json'),
    audit: join(dir, 'audit.log'),
    lock: join(dir, 'lock'),
  };
}

const configFile = z.object({
  version: z.literal(1),
  type: z.literal('lifeboat-holder-config'),
  primary: z.string(),
  operators: z.array(z.string()),
  auto_unseal: z.boolean(),
});
export type HolderConfig = Omit<z.infer<typeof configFile>, 'version' | 'type'>;

/** Reads config.json. Throws NotFoundError `file_not_found` (not initialised) or FormatError. */
export function readConfig(paths: HolderPaths): HolderConfig {
  const bytes = readFileOrThrow(paths.config, 'holder config', 'run `lifeboat holder init` first, or pass the right --data-dir');
  const r = configFile.safeParse(safeJson(bytes));
  if (!r.success) throw new FormatError('malformed', `${paths.config} is not a lifeboat holder config`);
  for (const t of [r.data.primary, ...r.data.operators]) parsePublicIdentity(t, `identity in ${paths.config}`);
  return { primary: r.data.primary, operators: r.data.operators, auto_unseal: r.data.auto_unseal };
}

export function writeConfig(paths: HolderPaths, cfg: HolderConfig): void {
  const doc = { version: 1, type: 'lifeboat-holder-config', primary: cfg.primary, operators: cfg.operators, auto_unseal: cfg.auto_unseal };
  writeFileAtomic(paths.config, `${JSON.stringify(doc, null, 2)}\n`);
}

function safeJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(utf8.decode(bytes));
  } catch {
    return undefined;
  }
}


const SCHEME_DIR = /^[0-9a-f]{32}$/;

/** A damaged file of the holder's own: the holder's fault, not the caller's (500, no path in the message). */
function corrupt(what: string): LifeboatError {
  return new LifeboatError('state_corrupt', `${what} on this holder is damaged`, { status: 500, hint: 'the holder operator must restore its directory from a backup' });
}

function checkSchemeId(id: string): string {
  // The id becomes a path component: never let anything but 32 hex digits near the file system.
  if (!SCHEME_DIR.test(id)) throw new InvalidInputError('scheme id must be 32 lowercase hex digits');
  return id;
}

const shareFile = z.object({
  version: z.literal(1),
  type: z.literal('lifeboat-holder-share'),
  scheme_id: z.string(),
  member_index: z.number().int().min(0).max(15),
  sealed_share: z.string(),
  created_at: z.string(),
});

/** A sealed share as the holder keeps it. */
export interface StoredShare {
  schemeId: string;
  memberIndex: number;
  sealedShare: Uint8Array;
  /** ISO 8601. */
  createdAt: string;
}

/**
 * The files of one holder directory. Not synchronised itself: HolderService serialises every call
 * through one mutex, and the directory lock keeps other processes out.
 */
export class HolderStore {
  constructor(readonly paths: HolderPaths) {}

  private schemeDir(id: string): string {
    return join(this.paths.schemes, checkSchemeId(id));
  }

  /** Creates the directory layout (0700) and removes what an interrupted delete left behind. */
  prepare(): void {
    ensurePrivateDir(this.paths.dir);
    ensurePrivateDir(this.paths.schemes);
    for (const name of readdirSync(this.paths.schemes)) {
      if (name.startsWith('.deleted-')) rmSync(join(this.paths.schemes, name), { recursive: true, force: true });
    }
  }

  /** The stored share of a scheme, or undefined. Throws FormatError when share.json is damaged. */
  getShare(id: string): StoredShare | undefined {
    const path = join(this.schemeDir(id), 'share.json');
    if (!existsSync(path)) return undefined;
    const r = shareFile.safeParse(safeJson(new Uint8Array(readFileSync(path))));
    if (!r.success || r.data.scheme_id !== id) throw corrupt(`the stored share of scheme ${id}`);
    return { schemeId: id, memberIndex: r.data.member_index, sealedShare: fromB64(r.data.sealed_share, 'stored sealed share'), createdAt: r.data.created_at };
  }

  /** Stores a scheme's manifest copy, then its share (the commit point). */
  putShare(share: StoredShare, manifestJson: string): void {
    const dir = this.schemeDir(share.schemeId);
    if (!existsSync(dir)) {
      mkdirSync(dir, { mode: 0o700 });
      fsyncDir(this.paths.schemes);
    }
    writeFileAtomic(join(dir, 'manifest.json'), manifestJson);
    const doc = { version: 1, type: 'lifeboat-holder-share', scheme_id: share.schemeId, member_index: share.memberIndex, sealed_share: toB64(share.sealedShare), created_at: share.createdAt };
    writeFileAtomic(join(dir, 'share.json'), `${JSON.stringify(doc, null, 2)}\n`);
  }

  putManifest(id: string, manifestJson: string): void {
    writeFileAtomic(join(this.schemeDir(id), 'manifest.json'), manifestJson);
  }

  /** The manifest copy as stored (JSON text), or undefined. */
  getManifestText(id: string): string | undefined {
    const path = join(this.schemeDir(id), 'manifest.json');
    return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
  }

  getVault(id: string): Uint8Array | undefined {
    const path = join(this.schemeDir(id), 'vault.lbv');
    return existsSync(path) ? new Uint8Array(readFileSync(path)) : undefined;
  }

  /** The generation of the stored vault copy read from its header only, or null when there is none. */
  vaultGeneration(id: string): number | null {
    const path = join(this.schemeDir(id), 'vault.lbv');
    if (!existsSync(path)) return null;
    const head = new Uint8Array(7 + VAULT_HEADER_LEN + 24 + 16); // prefix, header, nonce, tag
    const fd = openSync(path, 'r');
    let n: number;
    try {
      n = readSync(fd, head, 0, head.length, 0);
    } finally {
      closeSync(fd);
    }
    // The header is all readVaultHeader looks at; it only checks that a nonce and tag could follow.
    try {
      return readVaultHeader(head.subarray(0, n)).generation;
    } catch {
      throw corrupt(`the stored vault copy of scheme ${id}`);
    }
  }

  /** Hex SHA-256 of the stored vault copy, or null when there is none. */
  vaultHash(id: string): string | null {
    const bytes = this.getVault(id);
    return bytes ? toHex(sha256(bytes)) : null;
  }

  putVault(id: string, vault: Uint8Array): void {
    writeFileAtomic(join(this.schemeDir(id), 'vault.lbv'), vault);
  }

  /** Removes a scheme: one atomic rename makes it gone, then its files are removed (the share shredded). */
  deleteScheme(id: string): void {
    const dir = this.schemeDir(id);
    const tomb = join(this.paths.schemes, `.deleted-${id}-${toHex(randomBytes(4))}`);
    renameSync(dir, tomb);
    fsyncDir(this.paths.schemes);
    shredFile(join(tomb, 'share.json'));
    rmSync(tomb, { recursive: true, force: true });
  }

  /** Ids of the schemes whose share is stored, sorted. */
  listSchemeIds(): string[] {
    if (!existsSync(this.paths.schemes)) return [];
    return readdirSync(this.paths.schemes)
      .filter((n) => SCHEME_DIR.test(n) && existsSync(join(this.paths.schemes, n, 'share.json')))
      .sort();
  }

  /** Release request ids already used, with their expiry (unix ms). */
  readReleaseIds(): Map<string, number> {
    if (!existsSync(this.paths.releaseIds)) return new Map();
    const doc = safeJson(new Uint8Array(readFileSync(this.paths.releaseIds))) as { ids?: unknown } | undefined;
    if (!doc || typeof doc.ids !== 'object' || doc.ids === null) {
      // Failing closed: without the list no replay could be told apart, so refuse every release.
      throw corrupt('the list of used release requests');
    }
    return new Map(Object.entries(doc.ids as Record<string, unknown>).filter((e): e is [string, number] => typeof e[1] === 'number'));
  }

  /** Records a used release request id (durably). Ids expired for over 30 days are forgotten. */
  addReleaseId(id: string, expiresAt: number, now: number): void {
    const ids = this.readReleaseIds();
    for (const [k, exp] of ids) if (exp < now - RELEASE_ID_RETENTION_MS) ids.delete(k);
    ids.set(id, expiresAt);
    writeFileAtomic(this.paths.releaseIds, `${JSON.stringify({ version: 1, type: 'lifeboat-holder-release-ids', ids: Object.fromEntries(ids) })}\n`);
  }

  /** A ReplayGuard for signed requests that persists every nonce it accepts before the request goes on. */
  nonceStore(): { check(nonce: string, ts: number, now?: number): void } {
    let entries: [string, number][] = [];
    if (existsSync(this.paths.nonces)) {
      const doc = safeJson(new Uint8Array(readFileSync(this.paths.nonces)));
      if (Array.isArray(doc)) entries = doc.filter((e): e is [string, number] => Array.isArray(e) && typeof e[0] === 'string' && typeof e[1] === 'number');
    }
    const guard = new ReplayGuard(entries);
    return {
      check: (nonce, ts, now = Date.now()) => {
        guard.check(nonce, ts, now);
        writeFileAtomic(this.paths.nonces, `${JSON.stringify(guard.snapshot())}\n`);
      },
    };
  }
}

/**
 * A release request is valid for at most 15 minutes, so an id only matters until it expires; ids are
 * kept 30 days past that in case the holder's clock is set back.
 */
export const RELEASE_ID_RETENTION_MS = 30 * 24 * 3600_000;

/** Serialises async sections: one at a time, in call order. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  run<T>(fn: () => T | Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

const heldLocks = new Set<string>();

function busy(paths: HolderPaths, who: string): LifeboatError {
  return new LifeboatError('holder_busy', `the holder directory ${paths.dir} is in use by ${who}`, {
    status: 409,
    hint: 'stop `lifeboat holder serve` first, or use the HTTP API',
  });
}

/**
 * Takes the directory lock (a `lock` file with our pid, created exclusively). A lock left by a dead
 * process is taken over. Throws LifeboatError `holder_busy` when a live process (or this one) holds
 * it. Returns the function that releases it.
 */
export function acquireDirLock(paths: HolderPaths): () => void {
  if (heldLocks.has(paths.lock)) throw busy(paths, 'this process');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(paths.lock, 'wx', 0o600);
      try {
        writeSync(fd, `${process.pid}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      heldLocks.add(paths.lock);
      return () => {
        heldLocks.delete(paths.lock);
        rmSync(paths.lock, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number.parseInt(readFileSync(paths.lock, 'utf8'), 10);
      // Our own pid in a lock this process does not hold is a leftover from before a reboot.
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isProcessAlive(pid)) throw busy(paths, `process ${pid}`);
      rmSync(paths.lock, { force: true }); // stale: its process is gone
    }
  }
  throw busy(paths, 'another process');
}

