/** Reading secret input: from a hidden prompt on a terminal, otherwise from stdin. Never from argv. */
import { password, isCancel } from '@clack/prompts';
import { LifeboatError } from '../errors.js';

const MAX_STDIN = 16 * 1024 * 1024;

/** Reads all of stdin as bytes (up to 16 MiB). Throws LifeboatError `input_too_large` past that. */
export async function readStdin(): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of process.stdin) {
    const b = chunk as Buffer;
    n += b.length;
    if (n > MAX_STDIN) throw new LifeboatError('input_too_large', 'stdin is larger than 16 MiB');
    chunks.push(b);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

/** Reads lines from stdin when it is not a terminal (for scripted input of several secrets). */
let stdinLines: string[] | undefined;
async function nextStdinLine(): Promise<string> {
  if (stdinLines === undefined) {
    const text = Buffer.from(await readStdin()).toString('utf8');
    stdinLines = text.split(/\r?\n/);
  }
  const line = stdinLines.shift();
  if (line === undefined || (line === '' && stdinLines.every((l) => l === ''))) {
    throw new LifeboatError('input_missing', 'expected another line on stdin', { hint: 'pipe one secret per line' });
  }
  return line;
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
