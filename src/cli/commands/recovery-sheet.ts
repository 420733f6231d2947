/**
 * Where `recovery init` and `recovery rotate` put the offline shares besides the words: a QR code on
 * the terminal (`--qr`), a printable recovery sheet (`--sheet-fd N`, src/recovery/sheet.ts) and a PNG
 * of the QR code (`--qr-png-fd N`). Each holds the share, so each goes only to a terminal or to a file
 * descriptor the operator opened, never to a path Lifeboat picks. Every destination is checked before
 * the command changes anything: a share that cannot be delivered must not be made.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { existsSync, fchmodSync, fstatSync, readdirSync, readFileSync, readlinkSync, writeSync } from 'node:fs';
import { InvalidInputError, LifeboatError } from '../../errors.js';
import type { Manifest } from '../../recovery/manifest.js';
import { utf8 } from '../../util/bytes.js';
import { createOutput, writeSecret } from '../io.js';
import { intIn } from '../options.js';

/** The `--help` paragraph of `recovery init` and `rotate` on the sheet and QR outputs. */
export const SHEET_HELP =
  '\n\nThe offline share can also be printed: --qr draws it as a QR code on the terminal; --sheet-fd N\n' +
  'writes a one-page recovery sheet (self-contained HTML: the words in numbered columns, the QR code,\n' +
  'scheme id, master and primary fingerprints, threshold, holders, the three steps with lifeboat-kit)\n' +
  'and --qr-png-fd N a PNG of the QR code, each to a descriptor you open, e.g.\n' +
  '  --sheet-fd 3 --qr-png-fd 4 3>sheet.html 4>share.png\n' +
  'The QR code holds exactly the SLIP-0039 words; `recovery reconstruct --share-qr FILE` reads it back.';

export interface ShareOutputOpts {
  secretFd?: number;
  qr?: boolean;
  sheetFd: number[];
  qrPngFd: number[];
}

function collectFd(value: string, previous: number[] = []): number[] {
  try {
    return [...previous, intIn(3, 1023)(value)];
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** Adds `--qr`, `--sheet-fd N` and `--qr-png-fd N` to a command that shows offline shares. */
export function addShareOutputOptions(cmd: Command): Command {
  return cmd
    .option('--qr', 'also show each offline share as a QR code on the terminal (only to a terminal)')
    .option('--sheet-fd <fd>', 'also write a printable one-page recovery sheet (HTML: words, QR code, fingerprints, steps) to this file descriptor; repeat once per offline share', collectFd, [])
    .option('--qr-png-fd <fd>', "also write a PNG of the offline share's QR code to this file descriptor; repeat once per offline share", collectFd, []);
}

function unwritable(fd: number, flag: string, why: string): LifeboatError {
  return new LifeboatError('output_unwritable', `cannot write to file descriptor ${fd} (${flag}): ${why}; nothing was changed`, { hint: `open it for writing in the shell, e.g. ${flag} ${fd} ${fd}>file` });
}

/**
 * Checks one output descriptor: open, writable, and opened by whoever started lifeboat. Node keeps
 * descriptors of its own from 3 up (its event loop's epoll and eventfd, pipes whose both ends it holds,
 * /dev/null); a number the shell did not open may be one of them, and a share written there would be
 * lost (on Linux, where /proc/self/fd tells them apart).
 */
function checkOutputFd(fd: number, flag: string): void {
  try {
    fstatSync(fd);
  } catch {
    throw unwritable(fd, flag, 'it is not open');
  }
  if (existsSync('/proc/self/fd')) {
    const target = (n: number | string): string | undefined => {
      try {
        return readlinkSync(`/proc/self/fd/${n}`);
      } catch {
        return undefined;
      }
    };
    const readEnd = (n: string): boolean => {
      try {
        const flags = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${n}`, 'utf8'))?.[1];
        return flags !== undefined && (parseInt(flags, 8) & 3) === 0; // O_RDONLY
      } catch {
        return false;
      }
    };
    const mine = target(fd) ?? '';
    // A pipe whose read end this process holds too: what is written would come back to lifeboat itself.
    const ownPipe = mine.startsWith('pipe:') && readdirSync('/proc/self/fd').some((n) => Number(n) !== fd && target(n) === mine && readEnd(n));
    if (mine.startsWith('anon_inode:') || ownPipe) throw unwritable(fd, flag, 'it is not one the shell opened for this command');
    if (mine === '/dev/null') throw unwritable(fd, flag, 'it is /dev/null, where the share would be lost');
  }
  try {
    writeSync(fd, new Uint8Array(0));
  } catch (err) {
    throw unwritable(fd, flag, `it is not open for writing (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/**
 * Checks the share outputs before anything changes. Throws LifeboatError `secret_needs_terminal` for
 * `--qr` without a terminal, InvalidInputError when a descriptor is given twice or `--sheet-fd` /
 * `--qr-png-fd` are not given once per offline share, `output_unwritable` for a descriptor that is not
 * open for writing (including `--secret-fd`).
 */
export function checkShareOutputs(o: ShareOutputOpts, offlineCount: number): void {
  if (o.qr && !process.stdout.isTTY) {
    throw new LifeboatError('secret_needs_terminal', 'refusing to draw the share as a qr code on a non-terminal stdout; nothing was changed', { hint: 'run it in a terminal, or write a png of the qr code with --qr-png-fd N' });
  }
  for (const [flag, fds] of [['--sheet-fd', o.sheetFd], ['--qr-png-fd', o.qrPngFd]] as const) {
    if (fds.length > 0 && fds.length !== offlineCount) {
      throw new InvalidInputError(`${flag} is given ${fds.length} times, but there ${offlineCount === 1 ? 'is 1 offline share' : `are ${offlineCount} offline shares`}`, { hint: `give ${flag} once per offline share, in order; each share belongs on a paper of its own` });
    }
  }
  const all: [number, string][] = [...(o.secretFd === undefined ? [] : [[o.secretFd, '--secret-fd'] as [number, string]]), ...o.sheetFd.map((fd) => [fd, '--sheet-fd'] as [number, string]), ...o.qrPngFd.map((fd) => [fd, '--qr-png-fd'] as [number, string])];
  const seen = new Set<number>();
  for (const [fd, flag] of all) {
    if (seen.has(fd)) throw new InvalidInputError(`file descriptor ${fd} is given for two outputs`, { hint: 'give each output a descriptor of its own' });
    seen.add(fd);
    checkOutputFd(fd, flag);
  }
}

/** Writes all of `bytes` to `fd`, waiting out a full non-blocking pipe. */
function writeAll(fd: number, bytes: Uint8Array): void {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let off = 0; off < bytes.length; ) {
    try {
      off += writeSync(fd, bytes, off, bytes.length - off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      Atomics.wait(pause, 0, 0, 5);
    }
  }
}

/** A descriptor that is a regular file others may read (`4>sheet.html` under umask 022) is set to 0600 first. */
function tightenFile(fd: number, flag: string): void {
  const st = fstatSync(fd);
  if (!st.isFile() || (st.mode & 0o077) === 0) return;
  fchmodSync(fd, 0o600);
  createOutput().info(`${flag} ${fd} is a file others could read (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); set it to 0600 before writing the share`);
}

/**
 * Writes what `--qr`, `--sheet-fd` and `--qr-png-fd` ask for (checked by checkShareOutputs first),
 * after the words were shown. The QR code library is loaded only then.
 */
export async function writeShareOutputs(o: ShareOutputOpts, shares: { mnemonics: string[]; manifest: Manifest; primaryFingerprint: string }, info: (line: string) => void): Promise<void> {
  if (!o.qr && o.sheetFd.length === 0 && o.qrPngFd.length === 0) return;
  const [{ shareQrMatrix, qrToPng, qrToTerminal }, { renderRecoverySheet }] = await Promise.all([import('../../recovery/qr-code.js'), import('../../recovery/sheet.js')]);
  const count = shares.mnemonics.length;
  const printedAt = new Date();
  for (const [i, mnemonic] of shares.mnemonics.entries()) {
    const matrix = shareQrMatrix(mnemonic);
    if (o.qr) writeSecret(`\nqr code of offline share ${i + 1} of ${count} (the same words):\n${qrToTerminal(matrix)}\n`, undefined);
    const sheetFd = o.sheetFd[i];
    if (sheetFd !== undefined) {
      tightenFile(sheetFd, '--sheet-fd');
      writeAll(sheetFd, utf8.encode(renderRecoverySheet({ mnemonic, manifest: shares.manifest, primaryFingerprint: shares.primaryFingerprint, offlineNumber: i + 1, offlineCount: count, printedAt })));
      info(`recovery sheet of offline share ${i + 1} written to file descriptor ${sheetFd}: print it, then delete the file`);
    }
    const pngFd = o.qrPngFd[i];
    if (pngFd !== undefined) {
      tightenFile(pngFd, '--qr-png-fd');
      writeAll(pngFd, qrToPng(matrix));
      info(`qr code of offline share ${i + 1} written as png to file descriptor ${pngFd}`);
    }
  }
}

/**
 * Reads the share of each `--share-qr` image (src/recovery/qr.ts, loaded only when one is given).
 * Throws as readShareQrFile: `file_not_found`, `qr_image_invalid`, `qr_not_found`, `qr_not_a_share`.
 */
export async function readShareQrFiles(files: string[]): Promise<string[]> {
  if (files.length === 0) return [];
  const { readShareQrFile } = await import('../../recovery/qr.js');
  return files.map((f) => readShareQrFile(f));
}
