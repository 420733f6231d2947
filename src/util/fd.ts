/**
 * File descriptors a user names on the command line (`--credential-fd 3`, `--token-fd`, `--mnemonic-fd`,
 * `--secret-fd` …). Only one the caller opened for this command may be read or written: Node opens
 * descriptors of its own from 3 up (the event loop's epoll and eventfd, and pipes such as the signal
 * pipe), and reading its signal pipe blocked forever, while writing to one hands a secret to the process
 * itself. On Linux /proc/self tells them apart: an `anon_inode` (epoll, eventfd) is never a caller's,
 * and neither is a pipe whose other end this process holds too (a caller's pipe has its other end in
 * the caller). Elsewhere the check is skipped.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync, readSync } from 'node:fs';
import { InvalidInputError } from '../errors.js';

const ACCESS = 3; // O_RDONLY 0, O_WRONLY 1, O_RDWR 2

function linkOf(fd: number | string): string | undefined {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}

function accessOf(fd: number | string): number | undefined {
  try {
    const m = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    return m ? parseInt(m[1]!, 8) & ACCESS : undefined;
  } catch {
    return undefined;
  }
}

/** Why descriptor `fd` is not one the caller gave this command, or undefined when it may be. */
export function fdNotGivenReason(fd: number): string | undefined {
  if (!existsSync('/proc/self/fd')) return undefined;
  const link = linkOf(fd);
  if (link === undefined) return 'it is not open';
  if (link.startsWith('anon_inode:')) return 'it is one this process opened for itself (not a file, pipe or socket)';
  if (link.startsWith('pipe:')) {
    const mine = accessOf(fd);
    const otherEnd = readdirSync('/proc/self/fd').some((n) => Number(n) !== fd && linkOf(n) === link && accessOf(n) !== mine);
    if (otherEnd) return 'it is a pipe this process holds both ends of, one it opened for itself';
  }
  return undefined;
}

/**
 * Reads all of descriptor `fd` (at most `maxBytes`) as UTF-8, once the descriptor is shown to be the
 * caller's. Throws InvalidInputError with `code` (default `invalid_input`) naming `what`, with a hint
 * to open it for the command.
 */
export function readGivenFd(fd: number, what: string, opts: { code?: string; maxBytes?: number } = {}): string {
  const fail = (why: string) => new InvalidInputError(`cannot read ${what} from file descriptor ${fd}: ${why}`, { code: opts.code, hint: `open it for this command, e.g. ${fd}<file` });
  const not = fdNotGivenReason(fd);
  if (not) throw fail(not);
  const max = opts.maxBytes ?? 1 << 20;
  const chunks: Buffer[] = [];
  let total = 0;
  const buf = Buffer.alloc(65536);
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      total += n;
      if (total > max) throw fail(`more than ${max} bytes`);
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
  } catch (err) {
    if (err instanceof InvalidInputError) throw err;
    throw fail((err as NodeJS.ErrnoException).code ?? 'error');
  }
  return Buffer.concat(chunks).toString('utf8');
}
