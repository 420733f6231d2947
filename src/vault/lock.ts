/**
 * An advisory lock file beside the vault, so two writers on one primary (a CLI and a server, or two
 * CLIs) never both read generation N and write N + 1, losing one change. The lock is a file created
 * with O_EXCL holding the owner's pid; a lock whose pid is gone (the owner crashed) is taken over.
 */
import { closeSync, linkSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { isProcessAlive } from '../util/files.js';
import { ConflictError } from '../errors.js';

const POLL_MS = 25;
/** A lock file without a pid (a crash between create and write) counts as stale after this. */
const EMPTY_STALE_MS = 5_000;

export interface LockOptions {
  /** How long to wait for another holder before failing; default 10 s. */
  timeoutMs?: number;
}

function holderPid(lockPath: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(lockPath, 'utf8'), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}


/** Removes the lock when its owner is gone. Two processes may race here; re-reading the pid narrows it. */
function removeIfStale(lockPath: string): boolean {
  const pid = holderPid(lockPath);
  let stale: boolean;
  if (pid !== undefined) stale = !isProcessAlive(pid);
  else {
    try {
      stale = Date.now() - statSync(lockPath).mtimeMs > EMPTY_STALE_MS;
    } catch {
      return true; // gone already: the next attempt takes it
    }
  }
  if (!stale || holderPid(lockPath) !== pid) return false;
  rmSync(lockPath, { force: true });
  return true;
}

/**
 * Creates the lock with our pid already in it: the pid goes to a private temp file, which is then
 * hard-linked to the lock path (link fails with EEXIST when a lock exists). A crash can therefore never
 * leave an empty lock that would block writers until it ages out.
 */
function tryCreate(lockPath: string): boolean {
  const tmp = `${lockPath}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, `${process.pid}\n`);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, lockPath);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    rmSync(tmp, { force: true });
  }
}

/**
 * Runs `fn` while holding the lock at `lockPath`, and releases it however `fn` ends. Throws
 * ConflictError `vault_locked` when a live process holds the lock past the timeout.
 */
export async function withLock<T>(lockPath: string, fn: () => T | Promise<T>, opts: LockOptions = {}): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  while (!tryCreate(lockPath)) {
    if (removeIfStale(lockPath)) continue;
    if (Date.now() > deadline) {
      const pid = holderPid(lockPath);
      throw new ConflictError(
        `the vault is locked by another lifeboat process${pid === undefined ? '' : ` (pid ${pid})`}`,
        'vault_locked',
        `wait for it to finish; if no lifeboat process is running, remove ${lockPath}`,
      );
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  try {
    return await fn();
  } finally {
    rmSync(lockPath, { force: true });
  }
}
