#!/usr/bin/env node
/**
 * The end of `npm test`: fails the run if a process it started is still alive.
 *
 *   node scripts/check-leftovers.mjs -- COMMAND [ARGS...]
 *     runs COMMAND with LIFEBOAT_TEST_RUN=<a fresh run id> in its environment (every process it starts
 *     inherits it: test files, CLI servers, the drill's children, PostgreSQL), then scans
 *     /proc/<pid>/environ for that marker. Each process still carrying it is listed with its command
 *     line and SIGKILLed. Exit status: COMMAND's when it failed, else 1 if anything was left, else 0.
 *     Temp directories named lifeboat-* or lb-* that appeared in the temp dir during the run and are
 *     still there are listed as a warning (another run on the same machine may own them).
 *   node scripts/check-leftovers.mjs --run-id ID
 *     the check alone, for the processes carrying LIFEBOAT_TEST_RUN=ID.
 *
 * Linux only (/proc); elsewhere it says so and checks nothing. Reading another process's environment
 * needs the same user (or root): processes of another user are not seen.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const MARKER = 'LIFEBOAT_TEST_RUN';
const TEMP_PREFIX = /^(lifeboat|lb)-/;
const TEMP_KEPT = new Set(['lifeboat-gocache']); // test/helpers/go.ts keeps Go's build cache between runs

/** The processes (not this one) whose environment holds MARKER=runId: [{pid, cmd}]. */
function marked(runId) {
  const want = `${MARKER}=${runId}`;
  const found = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    let env;
    try {
      env = readFileSync(`/proc/${name}/environ`, 'latin1');
    } catch {
      continue; // gone, or not ours to read
    }
    if (!env.split('\0').includes(want)) continue;
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    } catch {
      continue;
    }
    if (cmd) found.push({ pid: Number(name), cmd }); // an empty command line: a zombie, already dead
  }
  return found;
}

/** Lists and kills what is left of run `runId`; true if anything was. */
async function check(runId) {
  if (!existsSync('/proc/self/environ')) {
    process.stderr.write('check-leftovers: no /proc on this system; leftover processes not checked\n');
    return false;
  }
  // A process killed as its parent exited may take a moment to go: look again before naming it.
  let left = marked(runId);
  for (let i = 0; i < 10 && left.length > 0; i++) {
    await sleep(200);
    left = marked(runId);
  }
  if (left.length === 0) return false;
  process.stderr.write(`check-leftovers: ${left.length} process(es) of test run ${runId} still alive after the run, killed:\n`);
  for (const p of left) {
    process.stderr.write(`  pid ${p.pid}: ${p.cmd.length > 300 ? `${p.cmd.slice(0, 300)}…` : p.cmd}\n`);
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
  }
  return true;
}

function tempEntries() {
  try {
    return new Set(readdirSync(tmpdir()).filter((n) => TEMP_PREFIX.test(n) && !TEMP_KEPT.has(n)));
  } catch {
    return new Set();
  }
}

async function main(argv) {
  if (argv[0] === '--run-id' && argv[1]) {
    process.exitCode = (await check(argv[1])) ? 1 : 0;
    return;
  }
  if (argv[0] !== '--' || !argv[1]) {
    process.stderr.write('usage: check-leftovers.mjs -- COMMAND [ARGS...] | --run-id ID\n');
    process.exitCode = 2;
    return;
  }
  const runId = `${process.pid}-${randomBytes(6).toString('hex')}`;
  const tempBefore = tempEntries();
  // Ctrl-C reaches the command too (same process group): let it end, then check.
  const ignore = () => {};
  process.on('SIGINT', ignore);
  process.on('SIGTERM', ignore);
  const child = spawn(argv[1], argv.slice(2), { stdio: 'inherit', env: { ...process.env, [MARKER]: runId } });
  const { code, signal } = await new Promise((resolve) => {
    child.once('error', (err) => {
      process.stderr.write(`check-leftovers: cannot run ${argv[1]}: ${err.message}\n`);
      resolve({ code: 127, signal: null });
    });
    child.once('exit', (c, s) => resolve({ code: c, signal: s }));
  });
  const left = await check(runId);
  const tempLeft = [...tempEntries()].filter((n) => !tempBefore.has(n));
  if (tempLeft.length > 0) {
    process.stderr.write(`check-leftovers: warning: temp directories that appeared during the run are still there (this run's, or another's on this machine):\n`);
    for (const n of tempLeft) process.stderr.write(`  ${join(tmpdir(), n)}\n`);
  }
  if (code !== 0) process.exitCode = code ?? 1;
  else process.exitCode = signal || left ? 1 : 0;
}

await main(process.argv.slice(2));
