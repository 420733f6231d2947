/** Reading secret input: from a hidden prompt on a terminal, otherwise from stdin. Never from argv. */
import { password, isCancel } from '@clack/prompts';
import { LifeboatError } from '../errors.js';

const MAX_STDIN = 16 * 1024 * 1024;

/**
 * The next chunk of stdin, or null at its end. Reads only as far as asked: between calls stdin is
 * paused and unreferenced, so a program answering prompts on a pipe (a pasted signature to a message
 * printed just before) can wait for each prompt, and the process exits without waiting for stdin to close.
 */
function nextStdinChunk(): Promise<Buffer | null> {
  const s = process.stdin as NodeJS.ReadStream & { ref?: () => void; unref?: () => void };
  return new Promise((resolve, reject) => {
    const done = (): void => {
      s.off('data', onData).off('end', onEnd).off('error', onError);
      s.pause();
      s.unref?.();
    };
    const onData = (d: Buffer | string): void => (done(), resolve(Buffer.from(d)));
    const onEnd = (): void => (done(), resolve(null));
    const onError = (e: Error): void => (done(), reject(e));
    if (s.readableEnded) return resolve(null);
    s.on('data', onData).on('end', onEnd).on('error', onError);
    s.ref?.();
    s.resume();
  });
}

/** What was read from stdin and not yet used, whether stdin has ended, and how much was read in all. */
let pending: Buffer = Buffer.alloc(0);
let stdinEnded = false;
let stdinRead = 0;
async function fillUntil(found: () => boolean): Promise<void> {
  while (!found() && !stdinEnded) {
    const chunk = await nextStdinChunk();
    if (chunk === null) stdinEnded = true;
    else {
      stdinRead += chunk.length;
      if (stdinRead > MAX_STDIN) throw new LifeboatError('input_too_large', 'stdin is larger than 16 MiB');
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    }
  }
}

/** Reads the rest of stdin as bytes (up to 16 MiB in all). Throws LifeboatError `input_too_large` past that. */
export async function readStdin(): Promise<Uint8Array> {
  await fillUntil(() => false);
  const all = pending;
  pending = Buffer.alloc(0);
  return new Uint8Array(all);
}

const LF = 0x0a;
const CR = 0x0d;
const hasContent = (): boolean => pending.some((b) => b !== LF && b !== CR);

/** The next line of stdin when it is not a terminal (for scripted input of several secrets), read one at a time. */
async function nextStdinLine(): Promise<string> {
  await fillUntil(() => pending.includes(LF));
  // an empty line counts only when something other than empty lines follows it (as a last, blank line does not)
  if (pending[0] === LF || (pending[0] === CR && pending[1] === LF)) await fillUntil(hasContent);
  if (!hasContent()) {
    pending = Buffer.alloc(0);
    throw new LifeboatError('input_missing', 'expected another line on stdin', { hint: 'pipe one secret per line' });
  }
  const nl = pending.indexOf(LF);
  const line = (nl < 0 ? pending : pending.subarray(0, nl)).toString('utf8');
  pending = nl < 0 ? Buffer.alloc(0) : pending.subarray(nl + 1);
  return line.replace(/\r$/, '');
}

/**
 * Asks for a secret: a hidden prompt when stdin is a terminal, else the next line of stdin.
 * Throws LifeboatError `cancelled` when the user cancels the prompt.
 */
export async function promptSecret(message: string): Promise<string> {
  if (!process.stdin.isTTY) return nextStdinLine();
  const v = await password({ message, mask: '*', output: process.stderr });
  if (isCancel(v)) throw new LifeboatError('cancelled', 'cancelled');
  return v;
}

/**
 * The `--help` paragraph of a command that prompts (promptSecret): a hidden prompt on a terminal,
 * otherwise one line of stdin per prompt, in the order given. docs/cli.md lists every such command.
 */
export function promptsHelp(prompts: string[]): string {
  return `\nPrompts: hidden on a terminal; when stdin is not a terminal, each prompt reads the next\nline of stdin instead, in this order:\n${prompts.map((p, i) => `  ${i + 1}. ${p}`).join('\n')}`;
}
