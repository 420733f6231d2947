/**
 * Running the lifeboat CLI as real child processes, for the drill (and tests): one-shot commands with
 * stdin and an optional secret file descriptor, and servers that print their URL when listening.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LifeboatError } from '../errors.js';
import { loggedServerArgs, recordSecrets, secretEnv, secretsIn, teeStderr } from './log-dir.js';
import { setProcessCaFile } from '../util/tls-fetch.js';

/** `drill --tls`: what every server gets (its certificate) and every child's environment (the CA). */
let tlsServerArgs: string[] = [];
let tlsEnv: NodeJS.ProcessEnv = {};

/**
 * From now on every server this module starts serves https with `cert`/`key`, and every child, and
 * this process's own clients, trust `ca` (`lifeboat drill --tls`, src/drill/tls.ts).
 */
export function serveOverTls(files: { cert: string; key: string; ca: string }): void {
  tlsServerArgs = ['--tls-cert', files.cert, '--tls-key', files.key];
  tlsEnv = { LIFEBOAT_CA_FILE: files.ca };
  setProcessCaFile(files.ca);
}

/**
 * The command line that runs this same CLI: compiled (dist/) or through tsx (src/). Run from src/
 * with LIFEBOAT_TEST_CLI=dist (`npm test`, after building), the compiled one, which starts faster.
 */
export function cliCommand(): { cmd: string; args: string[] } {
  const here = fileURLToPath(import.meta.url);
  if (!here.endsWith('.ts')) return { cmd: process.execPath, args: [join(dirname(here), '..', 'cli', 'main.js')] };
  if (process.env.LIFEBOAT_TEST_CLI === 'dist') return { cmd: process.execPath, args: [join(dirname(here), '..', '..', 'dist', 'cli', 'main.js')] };
  return { cmd: process.execPath, args: ['--import', 'tsx', join(dirname(here), '..', 'cli', 'main.ts')] };
}

/** Every child this process started and that has not exited yet: what `stopAll` ends. */
const live = new Set<ChildProcess>();
// This process ending any other way (an uncaught error, a test file's exit) takes them with it.
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});
/** Set by `stopAll`: nothing new is started after it. */
let stopping = false;

function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once('exit', () => live.delete(child));
  child.once('error', () => live.delete(child));
  return child;
}

function refuseIfStopping(args: string[]): void {
  if (stopping) throw new LifeboatError('interrupted', `not starting lifeboat ${args.slice(0, 2).join(' ')}: stopping`);
}

/**
 * Ends every child started through this module (servers and one-shot commands alike): `signal`, then
 * SIGKILL after `graceMs`; resolves once all have exited. Nothing is started after it (`interrupted`).
 * The drill calls it when it is interrupted (SIGINT, SIGTERM).
 */
export async function stopAll(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<number> {
  stopping = true;
  const children = [...live];
  await Promise.all(
    children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    }),
  );
  return children.length;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** What the command wrote to file descriptor 3, when `secretFd` was asked for. */
  secret: string;
}

/** Runs `lifeboat ARGS` to completion. Rejects only if it cannot be started or exceeds `timeoutMs`. */
export function runCli(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; secretFd?: boolean; timeoutMs?: number } = {}): Promise<RunResult> {
  const { cmd, args: pre } = cliCommand();
  return new Promise((resolve, reject) => {
    refuseIfStopping(args);
    const child = track(spawn(cmd, [...pre, ...args], {
      env: { ...process.env, ...tlsEnv, ...opts.env },
      stdio: opts.secretFd ? ['pipe', 'pipe', 'pipe', 'pipe'] : ['pipe', 'pipe', 'pipe'],
    }));
    let stdout = '';
    let stderr = '';
    let secret = '';
    teeStderr(child, args);
    if (opts.input) recordSecrets(args, opts.input.split('\n'));
    recordSecrets(args, secretEnv(opts.env));
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    if (opts.secretFd) (child.stdio[3] as NodeJS.ReadableStream).on('data', (d: Buffer) => (secret += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new LifeboatError('timeout', `lifeboat ${args[0]} ${args[1] ?? ''} did not finish in ${opts.timeoutMs ?? 60000} ms`));
    }, opts.timeoutMs ?? 60_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      recordSecrets(args, [...secret.split('\n'), ...secretsIn(secret), ...secretsIn(stdout)]);
      resolve({ code: code ?? 1, stdout, stderr, secret });
    });
    child.stdin!.end(opts.input ?? '');
  });
}

/** A server started from the CLI. */
export interface RunningServer {
  url: string;
  child: ChildProcess;
  /** SIGTERM, then SIGKILL after a grace period; resolves when it has exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts `lifeboat ARGS` (a `serve` command with --json) and waits for its first stdout line
 * `{"url": ...}`. Rejects with its stderr when it exits or does not listen within `timeoutMs`.
 */
export function startServer(given: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunningServer> {
  const { cmd, args: pre } = cliCommand();
  const args = loggedServerArgs([...given, ...tlsServerArgs]);
  try {
    refuseIfStopping(args);
  } catch (err) {
    return Promise.reject(err);
  }
  const child = track(spawn(cmd, [...pre, ...args], { env: { ...process.env, ...tlsEnv, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] }));
  let stderr = '';
  let stdout = '';
  teeStderr(child, args);
  recordSecrets(args, secretEnv(opts.env));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new LifeboatError('timeout', `lifeboat ${args.join(' ')} did not start listening: ${stderr.trim()}`));
    }, opts.timeoutMs ?? 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      const nl = stdout.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      try {
        const url = (JSON.parse(stdout.slice(0, nl)) as { url: string }).url;
        resolve({ url, child, stop });
      } catch {
        child.kill('SIGKILL');
        reject(new LifeboatError('peer_bad_answer', `unexpected first line from lifeboat ${args[0]}: ${stdout.slice(0, nl)}`));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new LifeboatError('server_exited', `lifeboat ${args.join(' ')} exited with ${code}: ${stderr.trim()}`));
    });
  });
}
