/**
 * Running the real CLI in tests: `runCli` for a command that exits, `startCli` for a server that
 * prints its listening URL as the first stdout line (plain `listening on URL` or `{"url": …}`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { descendants } from './procs.js';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * The node arguments that run the CLI, relative to REPO_ROOT: the compiled CLI in dist/ when
 * LIFEBOAT_TEST_CLI=dist (`npm test` builds first and sets it: a start-up takes a quarter of the
 * time), else the sources through tsx (a single test file run by hand always sees the current code).
 */
export function cliArgs(): string[] {
  if (process.env.LIFEBOAT_TEST_CLI === 'dist') {
    if (!existsSync(join(REPO_ROOT, 'dist/cli/main.js'))) throw new Error('LIFEBOAT_TEST_CLI=dist but dist/cli/main.js is missing: run `npm run build`');
    return ['bin/lifeboat.js'];
  }
  return ['--import', 'tsx', 'src/cli/main.ts'];
}

/**
 * Every CLI child still running; killed when the test file's process exits, however it ends, with
 * every process it started (the drill's servers): those would outlive it, orphaned, otherwise.
 */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  const pids = [...running].flatMap((child) => (child.pid === undefined ? [] : [child.pid, ...descendants(child.pid)]));
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
  }
});

/** Tracks a child so that it is killed if the test process exits first (see `running`); returns it. */
export function tracked<T extends ChildProcess>(child: T): T {
  running.add(child);
  child.on('exit', () => running.delete(child));
  return child;
}

function spawnCli(args: string[], env: Record<string, string> = {}): ChildProcess {
  return tracked(spawn(process.execPath, [...cliArgs(), ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, LIFEBOAT_DEBUG: '', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  }));
}

/** Runs `lifeboat ...args` to completion (stdin: `input`, or closed). */
export function runCli(args: string[], opts: { env?: Record<string, string>; input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  const child = spawnCli(args, opts.env);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin!.end(opts.input ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * Runs `lifeboat ...args` as a person at a pipe would: `input` first, then, each time stderr has grown,
 * `answer(stderr so far)` may return the next line to type (undefined: wait for more). Resolves at exit.
 */
export function runCliAnswering(args: string[], input: string, answer: (stderr: string) => Promise<string | undefined> | string | undefined, opts: { timeoutMs?: number } = {}): Promise<CliResult> {
  const child = spawnCli(args);
  let stdout = '';
  let stderr = '';
  let typing = Promise.resolve();
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    const seen = stderr;
    typing = typing.then(async () => {
      const line = await answer(seen);
      if (line !== undefined && child.stdin!.writable) child.stdin!.write(`${line}\n`);
    });
  });
  child.stdin!.on('error', () => undefined); // the command may exit before reading all of it
  child.stdin!.write(input);
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export interface RunningCli {
  child: ChildProcess;
  url: string;
  stdout(): string;
  stderr(): string;
  /** Resolves when the process has exited. */
  exited: Promise<CliResult>;
  /** Sends a signal and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<CliResult>;
}

/** Starts a server command and resolves once it printed its URL; rejects if it exits first. */
export function startCli(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<RunningCli> {
  const child = spawnCli(args, opts.env);
  let stdout = '';
  let stderr = '';
  child.stdin!.end();
  const exited = new Promise<CliResult>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no listening line within the timeout; stderr: ${stderr}`));
    }, opts.timeoutMs ?? 20_000);
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    let done = false;
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (done) return;
      const first = stdout.split('\n')[0]!;
      if (!stdout.includes('\n')) return;
      done = true;
      const m = /^listening on (\S+)$/.exec(first);
      let url = m?.[1];
      if (!url) {
        try {
          url = (JSON.parse(first) as { url?: string }).url;
        } catch {
          /* not JSON */
        }
      }
      clearTimeout(timer);
      if (!url) {
        child.kill('SIGKILL');
        reject(new Error(`unexpected first stdout line: ${first}`));
        return;
      }
      const u = url;
      resolve({
        child,
        url: u,
        stdout: () => stdout,
        stderr: () => stderr,
        exited,
        stop: (signal = 'SIGTERM') => {
          child.kill(signal);
          return exited;
        },
      });
    });
    void exited.then((r) => {
      clearTimeout(timer);
      reject(new Error(`exited (${r.code ?? r.signal}) before listening; stderr: ${r.stderr}`));
    });
  });
}

/** `r`, asserting the command succeeded (its stderr in the message otherwise). */
export function expectOk(r: CliResult): CliResult {
  assert.equal(r.code, 0, `expected success, got ${r.code}: ${r.stderr}`);
  return r;
}

/** Asserts the command failed with `errType` in the CLI's voice and exit code `exitCode`. */
export function expectFailure(r: CliResult, errType: string, exitCode = 1): void {
  assert.equal(r.code, exitCode, `expected exit ${exitCode}, got ${r.code}: ${r.stderr}`);
  assert.match(r.stderr, new RegExp(`lifeboat: error: .* \\(${errType}\\)\\n`));
}
