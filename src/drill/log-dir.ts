/**
 * $LIFEBOAT_DRILL_LOG_DIR (docs/monitoring.md, "Checking the logs for secrets"): when set, every child
 * the drill starts has its stderr copied to `<dir>/<n>-<command>.stderr.log`, and every secret the
 * drill handed a child or got back from one (stdin input, what a child wrote to its secret fd, the
 * secret fields of its JSON stdout) is appended to `<dir>/secrets.jsonl`, so a test can grep the logs
 * for each. Every file is created 0600: the list holds the drill's secrets. Servers the drill runs
 * silent log at `info` then, so that there is something to check.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';

let counter = 0;
const MIN_SECRET = 8;
/** JSON fields whose string values are secrets (the public ones say so: verifying_share, public_key, fingerprint). */
const SECRET_FIELD = /token|invite|password|passphrase|mnemonic|words|share|secret|recovery_code|master/i;
const PUBLIC_FIELD = /verifying|public|fingerprint|_id$|^id$|url|path|file|dir/i;

function logDir(): string | undefined {
  const dir = process.env.LIFEBOAT_DRILL_LOG_DIR;
  if (!dir) return undefined;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

function appendPrivate(file: string, text: string): void {
  appendFileSync(file, text, { mode: 0o600 });
}

/** Records secrets (8 characters or more) under the command that saw them; nothing when the variable is unset. */
export function recordSecrets(args: string[], secrets: Iterable<string>): void {
  const dir = logDir();
  if (!dir) return;
  const command = args.slice(0, 2).join(' ');
  const lines = [...secrets].map((s) => s.trim()).filter((s) => s.length >= MIN_SECRET).map((secret) => `${JSON.stringify({ command, secret })}\n`);
  if (lines.length > 0) appendPrivate(join(dir, 'secrets.jsonl'), lines.join(''));
}

/** Each line of a text, and the values of its JSON documents' secret fields (any depth). */
export function secretsIn(text: string): string[] {
  const out: string[] = [];
  const walk = (v: unknown, field: string): void => {
    if (typeof v === 'string') {
      if (SECRET_FIELD.test(field) && !PUBLIC_FIELD.test(field)) out.push(v);
    } else if (Array.isArray(v)) v.forEach((x) => walk(x, field));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, k);
  };
  for (const line of text.split('\n')) {
    try {
      walk(JSON.parse(line), '');
    } catch {
      /* not JSON */
    }
  }
  return out;
}

/** Copies the child's stderr to its own 0600 file under the log directory, when the variable is set. */
export function teeStderr(child: ChildProcess, args: string[]): void {
  const dir = logDir();
  if (!dir || !child.stderr) return;
  const name = `${String(++counter).padStart(3, '0')}-${args.slice(0, 3).filter((a) => /^[a-z][a-z-]*$/.test(a)).join('-')}.stderr.log`;
  const file = join(dir, name);
  appendPrivate(file, '');
  child.stderr.on('data', (d: Buffer) => appendPrivate(file, d.toString()));
}

/** The values of a child's environment variables that carry a secret (LIFEBOAT_API_KEY, …_TOKEN, …_PASSWORD). */
export function secretEnv(env: NodeJS.ProcessEnv | undefined): string[] {
  return Object.entries(env ?? {})
    .filter(([k, v]) => /KEY|TOKEN|PASSWORD|SECRET|PASSPHRASE/.test(k) && typeof v === 'string')
    .map(([, v]) => v as string);
}

/** A server's arguments: with the log directory set, its `--log-level silent` becomes `info`, so there is a log to check. */
export function loggedServerArgs(args: string[]): string[] {
  if (!process.env.LIFEBOAT_DRILL_LOG_DIR) return args;
  return args.map((a, i) => (i > 0 && args[i - 1] === '--log-level' ? 'info' : a));
}
