/**
 * Vault operations on a file: list, get, put, rm, and writing a whole vault (init, rotation,
 * restore). Every write is read-modify-write under a lock file (./lock.ts) and lands with
 * writeFileAtomic (temp file, fsync, rename), so a crash at any instant leaves the old vault or the
 * new one, never a half. Bad input is refused before the file is touched. After a write has landed,
 * an optional listener receives the new bytes (to push the copy to share holders).
 */
import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConflictError, FormatError, NotFoundError } from '../errors.js';
import type { MasterKey } from '../primary/datadir.js';
import { ctEqual, toHex } from '../util/bytes.js';
import { ensurePrivateDir, readFileOrThrow, writeFileAtomic } from '../util/files.js';
import { assertEntryName, assertEntryValue, describeEntries, wipeContents, MAX_VAULT_FILE_BYTES, type VaultContents, type VaultEntryInfo } from './contents.js';
import { checkMasterKey, openVault, readVaultHeader, sealVault, type VaultHeader } from './format.js';
import { withLock, type LockOptions } from './lock.js';


/** What changed in a write, for the listener and for logs (never a value). */
export type VaultChange = { kind: 'put'; name: string; replaced: boolean } | { kind: 'rm'; name: string } | { kind: 'replace' };

export interface VaultWriteEvent {
  /** The vault file that was written. */
  path: string;
  /** The new vault, as now on disk (ciphertext; safe to send to share holders). */
  bytes: Uint8Array;
  header: VaultHeader;
  change: VaultChange;
}

/**
 * Called after a write has landed on disk (the lock is already released). If it throws or rejects,
 * the operation rejects with that error, but the new vault stays written.
 */
export type VaultWriteListener = (event: VaultWriteEvent) => void | Promise<void>;

/**
 * Runs under the vault lock before a write, with the vault about to be replaced (as already opened:
 * it must not keep or wipe the contents); it throws to refuse the write (nothing is written then). The
 * primary uses it to refuse writing over a newer or forked copy a share holder holds.
 */
export type VaultWriteGuard = (current: OpenedVault, master: MasterKey) => void | Promise<void>;

/** A vault as read and opened: its bytes, header and decrypted contents (owned by the caller that opened it). */
export interface OpenedVault {
  bytes: Uint8Array;
  header: VaultHeader;
  contents: VaultContents;
}

export interface VaultWriteOptions extends LockOptions {
  listener?: VaultWriteListener;
  guard?: VaultWriteGuard;
}

export interface PutOptions extends VaultWriteOptions {
  /** Replace an entry that already exists (default: refuse with `entry_exists`). */
  replace?: boolean;
}

const lockPathOf = (path: string): string => `${path}.lock`;

/**
 * Runs `fn` holding the lock of the vault at `path` (the file `${path}.lock`), for writers outside
 * this module (e.g. a commit that replaces vault, manifest and master key together), so that no
 * put or rm interleaves. Throws ConflictError `vault_locked` past the timeout.
 */
export function withVaultLock<T>(path: string, fn: () => T | Promise<T>, opts: LockOptions = {}): Promise<T> {
  return withLock(lockPathOf(path), fn, opts);
}

/**
 * Reads a vault file. Throws NotFoundError `vault_not_found` (hint: run `lifeboat recovery init`
 * first) when it does not exist, FormatError `malformed` when it is larger than any valid vault.
 */
export function readVaultFile(path: string): Uint8Array {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NotFoundError(`no vault at ${path}`, 'vault_not_found', 'run `lifeboat recovery init` first, or pass --data-dir');
    }
    throw err;
  }
  if (size > MAX_VAULT_FILE_BYTES) throw new FormatError('malformed', `${path} is ${size} bytes, larger than any vault`);
  return readFileOrThrow(path, 'vault');
}

/**
 * Reads the vault at `path` and opens it with `mk`, checking the scheme id and the fingerprint
 * before decrypting. Throws as readVaultFile and openVault, and ConflictError `scheme_mismatch`
 * when the master key belongs to another recovery scheme than the vault.
 */
export function openVaultFile(path: string, mk: MasterKey): { bytes: Uint8Array; header: VaultHeader; contents: VaultContents } {
  const bytes = readVaultFile(path);
  const header = readVaultHeader(bytes);
  if (!ctEqual(header.schemeId, mk.schemeId)) {
    throw new ConflictError(
      `the vault belongs to recovery scheme ${toHex(header.schemeId)}, the loaded master key to ${toHex(mk.schemeId)}`,
      'scheme_mismatch',
      'finish the rotation (`lifeboat recovery rotate`), or unseal with shares of the vault\'s scheme',
      { safety: true },
    );
  }
  checkMasterKey(header, mk.key);
  return { bytes, header, contents: openVault(bytes, mk.key) };
}

/** Names, sizes and update times of the entries, sorted by name. Throws as openVaultFile. */
export function listEntries(path: string, mk: MasterKey): VaultEntryInfo[] {
  const { contents } = openVaultFile(path, mk);
  const list = describeEntries(contents);
  wipeContents(contents);
  return list;
}

/**
 * The value of entry `name` (a copy the caller should wipe when done). Throws InvalidInputError
 * `invalid_name`, NotFoundError `entry_not_found`, and as openVaultFile.
 */
export function getEntry(path: string, mk: MasterKey, name: string): Uint8Array {
  assertEntryName(name);
  const { contents } = openVaultFile(path, mk);
  try {
    const entry = contents.entries.get(name);
    if (!entry) throw entryNotFound(name);
    return entry.value.slice();
  } finally {
    wipeContents(contents);
  }
}

function entryNotFound(name: string): NotFoundError {
  return new NotFoundError(`no entry named ${name} in the vault`, 'entry_not_found', 'run `lifeboat vault list` to see the names');
}

/** Read, change, seal as the next generation and write atomically, all under the lock; then notify. */
async function modify(path: string, mk: MasterKey, opts: VaultWriteOptions, change: (c: VaultContents) => VaultChange): Promise<VaultHeader> {
  const event = await withLock(
    lockPathOf(path),
    async () => {
      const opened = openVaultFile(path, mk);
      const { header, contents } = opened;
      try {
        await opts.guard?.(opened, mk);
        const what = change(contents);
        const bytes = sealVault(contents, mk.key, header.schemeId, header.generation);
        writeFileAtomic(path, bytes);
        return { path, bytes, header: readVaultHeader(bytes), change: what };
      } finally {
        wipeContents(contents);
      }
    },
    opts,
  );
  await opts.listener?.(event);
  return event.header;
}

/**
 * Stores `value` under `name` and returns the new header. Throws InvalidInputError (`invalid_name`,
 * `value_too_large`, `too_many_entries`, `vault_too_large`), ConflictError `entry_exists` when the
 * name is taken and `replace` is not set, `vault_locked`, and as openVaultFile. On any error the
 * file is unchanged. The caller keeps ownership of `value`.
 */
export async function putEntry(path: string, mk: MasterKey, name: string, value: Uint8Array, opts: PutOptions = {}): Promise<VaultHeader> {
  assertEntryName(name);
  assertEntryValue(name, value);
  return modify(path, mk, opts, (contents) => {
    const replaced = contents.entries.has(name);
    if (replaced && !opts.replace) {
      throw new ConflictError(`an entry named ${name} already exists`, 'entry_exists', 'pass --force to replace it (the old value is lost)');
    }
    contents.entries.set(name, { value: value.slice(), updatedAt: new Date().toISOString() });
    return { kind: 'put', name, replaced };
  });
}

/**
 * Removes entry `name` and returns the new header. Throws InvalidInputError `invalid_name`,
 * NotFoundError `entry_not_found`, `vault_locked`, and as openVaultFile. On any error the file is
 * unchanged.
 */
export async function removeEntry(path: string, mk: MasterKey, name: string, opts: VaultWriteOptions = {}): Promise<VaultHeader> {
  assertEntryName(name);
  return modify(path, mk, opts, (contents) => {
    const entry = contents.entries.get(name);
    if (!entry) throw entryNotFound(name);
    entry.value.fill(0);
    contents.entries.delete(name);
    return { kind: 'rm', name };
  });
}

/**
 * Writes a whole vault (a new one from createVault, a rotated one from reencryptVault, or a copy
 * restored from a share holder) atomically, 0600. Refuses a rollback: when a vault already exists,
 * the new generation must be greater. Throws FormatError when `bytes` is not a vault, ConflictError
 * `vault_rollback` or `vault_locked`. The bytes are not decrypted here: check them with the key
 * (openVault) before calling when they come from elsewhere.
 */
export async function writeVaultFile(path: string, bytes: Uint8Array, opts: VaultWriteOptions = {}): Promise<VaultHeader> {
  const header = readVaultHeader(bytes);
  ensurePrivateDir(dirname(path));
  const event = await withLock(
    lockPathOf(path),
    () => {
      let current: VaultHeader | undefined;
      try {
        current = readVaultHeader(readVaultFile(path));
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
      }
      if (current && header.generation <= current.generation) {
        throw new ConflictError(
          `refusing to replace vault generation ${current.generation} with generation ${header.generation}`,
          'vault_rollback',
          'a vault only moves forward; remove the existing vault file yourself if you really mean to go back',
        );
      }
      writeFileAtomic(path, bytes);
      return { path, bytes, header, change: { kind: 'replace' } as const };
    },
    opts,
  );
  await opts.listener?.(event);
  return header;
}
