/** File helpers: secret files are 0600, written atomically (temp file, fsync, rename, fsync dir). */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeSync, existsSync, appendFileSync, chmodSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { InvalidInputError, NotFoundError } from '../errors.js';

/** Creates a directory (and parents) readable only by its owner. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/**
 * ensurePrivateDir for a directory a command makes its own (a new log's or witness's data directory):
 * one that existed before is tightened to 0700 too, when it is empty (never a shared directory like a
 * home or /tmp: those are not empty).
 */
export function ensureOwnPrivateDir(dir: string): void {
  if (existsSync(dir) && readdirSync(dir).length === 0) chmodSync(dir, 0o700);
  ensurePrivateDir(dir);
}

/** Fsyncs a directory so a rename or unlink in it is durable. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes `data` to `path` so that a crash leaves either the old file or the new one, never a half:
 * the bytes go to a temp file in the same directory (mode 0600 from creation), are fsynced, renamed
 * over `path`, and the directory is fsynced. The temp file is removed if anything fails.
 */
export function writeFileAtomic(path: string, data: Uint8Array | string, mode = 0o600): void {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', mode);
  try {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  try {
    chmodSync(tmp, mode); // umask may have narrowed it further; never wider than asked
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(dir);
}

/** Appends one line and fsyncs it before returning (for append-only logs). Creates the file 0600. */
export function appendLineDurable(path: string, line: string): void {
  const fd = openSync(path, 'a', 0o600);
  try {
    writeSync(fd, line.endsWith('\n') ? line : `${line}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Reads a file, mapping a missing file to NotFoundError with a hint. */
export function readFileOrThrow(path: string, what: string, hint?: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`${what} not found at ${path}`, 'file_not_found', hint);
    throw err;
  }
}

/** Refuses a secret file that others can read or write; a leaked permission is worth stopping for. */
export function assertPrivateFile(path: string, what: string): void {
  const st = statSync(path);
  if ((st.mode & 0o077) !== 0) {
    throw new InvalidInputError(`${what} at ${path} is readable by others (mode ${(st.mode & 0o777).toString(8)})`, {
      code: 'insecure_permissions',
      hint: `run: chmod 600 ${path}`,
    });
  }
}

/** Overwrites a secret file with zeros, fsyncs, then unlinks it. Best effort on copy-on-write filesystems. */
export function shredFile(path: string): void {
  if (!existsSync(path)) return;
  const size = statSync(path).size;
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, new Uint8Array(size), 0, size, 0);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  rmSync(path);
  fsyncDir(dirname(path));
}

export { appendFileSync, existsSync };

/** Whether a process with this pid exists (EPERM: it exists but belongs to someone else). For stale lock files. */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
