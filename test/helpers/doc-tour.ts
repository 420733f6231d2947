/**
 * Running a document's ```sh blocks as written (issue 13): `shBlocks` reads them with the heading each
 * sits under, `runTour` runs a chosen list of them in order in one bash process of its own process
 * group, in a directory of its own, and cuts its output into one part per block.
 *
 * A block preceded by a `<!-- tour: skip REASON -->` line is not meant to run on one machine: it is
 * returned with that reason, and a test names the ones it leaves out.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO_ROOT, tracked } from './cli.js';

export interface ShBlock {
  /** The nearest heading above the block, without its #s. */
  heading: string;
  /** 1-based line of the block's first code line in the document. */
  line: number;
  code: string;
  /** Why the block does not run here (its `<!-- tour: skip … -->` marker), if it has one. */
  skip?: string;
  /** Where the block comes from, when not from the document (a test's own steps). */
  source?: string;
}

/** Every ```sh block of a Markdown file under the repository root, in order. */
export function shBlocks(doc: string): ShBlock[] {
  const lines = readFileSync(join(REPO_ROOT, doc), 'utf8').split('\n');
  const blocks: ShBlock[] = [];
  let heading = '';
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (/^#{1,6} /.test(l)) heading = l.replace(/^#+ /, '');
    if (l !== '```sh') continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && lines[end] !== '```') end++;
    const marker = /^<!-- tour: skip (.+) -->$/.exec(lines[i - 1] ?? '');
    blocks.push({ heading, line: start + 1, code: lines.slice(start, end).join('\n'), ...(marker ? { skip: marker[1] } : {}) });
    i = end;
  }
  return blocks;
}

/** The blocks under a heading that starts with `prefix` (asserted to exist). */
export function blocksUnder(blocks: ShBlock[], prefix: string): ShBlock[] {
  const found = blocks.filter((b) => b.heading.startsWith(prefix));
  assert.ok(found.length > 0, `no sh block under a heading starting with "${prefix}"`);
  return found;
}

export interface TourPart {
  block: ShBlock;
  /** What the block's commands wrote to stdout. */
  stdout: string;
  /** Each variable named in `vars`, as the shell had it after this block ('' when unset). */
  vars: Record<string, string>;
}

export interface TourResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** One part per block that ran to its end. */
  parts: TourPart[];
  /** Whether every process of the tour had exited before the test killed what was left. */
  stoppedByItself: boolean;
  /** Where the tour stopped, as DOC:LINE and the command, when a command failed. */
  failedAt?: string;
  ms: number;
}

/** Live processes of a process group, from /proc. */
function groupMembers(pgid: number): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] !== 'Z' && Number(fields[2]) === pgid) found.push(Number(name));
    } catch {
      /* gone meanwhile */
    }
  }
  return found;
}

async function groupGone(pgid: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (groupMembers(pgid).length === 0) return true;
    await sleep(50);
  }
  return groupMembers(pgid).length === 0;
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    /* already gone */
  }
}

const MARK = '@@doc-tour-block';

/**
 * Runs `blocks` of `doc` in order in one `bash` (errexit, pipefail) started in the repository root,
 * with HOME and TMPDIR in `dir` (the blocks' `mktemp -d` lands there, audit state stays there). A
 * failing command stops the tour and is reported as DOC:LINE. `vars` are read after each block.
 * `prelude` runs first (functions a test puts in place of what one machine lacks), `env` is added.
 * At the end, every process left in the tour's process group is sent SIGTERM, then SIGKILL.
 */
export async function runTour(opts: {
  doc: string;
  blocks: ShBlock[];
  dir: string;
  vars?: string[];
  prelude?: string;
  env?: Record<string, string>;
  /** What the tour reads on stdin (a `read` in a block); else stdin is empty. */
  stdin?: string;
  timeoutMs?: number;
  /** Where bash starts: the checkout for the README (it runs "from the checkout"); a doc's machine directory otherwise, so a relative file a block writes never lands in the repository. */
  cwd?: string;
}): Promise<TourResult> {
  assert.ok(existsSync(join(REPO_ROOT, 'dist/cli/main.js')), 'the docs run bin/lifeboat.js: run `npm run build` first');
  const home = join(opts.dir, 'home');
  mkdirSync(home, { recursive: true });
  const vars = opts.vars ?? [];
  const script: string[] = [];
  const origin: string[] = []; // script line (1-based) -> DOC:LINE
  const push = (text: string, from?: string): void => {
    for (const l of text.split('\n')) {
      script.push(l);
      origin.push(from ?? 'harness');
    }
  };
  push(`set -eE -o pipefail`);
  push(`trap 'echo "${MARK}-failed $LINENO $BASH_COMMAND" >&2' ERR`);
  if (opts.prelude) push(opts.prelude);
  opts.blocks.forEach((b, i) => {
    push(`echo "${MARK} ${i}"`);
    b.code.split('\n').forEach((l, j) => push(l, b.source ?? `${opts.doc}:${b.line + j}`));
    push(`{ echo "${MARK}-end ${i}"; for __v in ${vars.map((v) => `'${v}'`).join(' ')}; do printf '%s\\t%s\\n' "$__v" "\${!__v-}"; done; echo "${MARK}-vars-end"; }`);
  });
  const started = Date.now();
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, TMPDIR: opts.dir, LIFEBOAT_DEBUG: '', ...opts.env };
  delete env.LIFEBOAT_API_KEY;
  const child = tracked(spawn('bash', ['-c', script.join('\n')], { cwd: opts.cwd ?? REPO_ROOT, env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] }));
  child.stdin!.end(opts.stdin ?? '');
  const pgid = child.pid!;
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const timer = setTimeout(() => killGroup(pgid, 'SIGKILL'), opts.timeoutMs ?? 240_000);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(timer);
  // The tour's servers are in its group: whatever it did not stop is stopped now, also after a failure.
  const stoppedByItself = await groupGone(pgid, 5_000);
  if (!stoppedByItself) {
    killGroup(pgid, 'SIGTERM');
    if (!(await groupGone(pgid, 10_000))) killGroup(pgid, 'SIGKILL');
  }
  await closed;
  const failed = new RegExp(`^${MARK}-failed (\\d+) (.*)$`, 'm').exec(stderr);
  const parts: TourPart[] = [];
  opts.blocks.forEach((block, i) => {
    const m = new RegExp(`^${MARK} ${i}\\n([\\s\\S]*?)^${MARK}-end ${i}\\n([\\s\\S]*?)^${MARK}-vars-end$`, 'm').exec(stdout);
    if (!m) return;
    const values = Object.fromEntries(m[2]!.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('\t')), l.slice(l.indexOf('\t') + 1)]));
    parts.push({ block, stdout: m[1]!, vars: values });
  });
  return {
    code,
    stdout,
    stderr,
    parts,
    stoppedByItself,
    ...(failed ? { failedAt: `${origin[Number(failed[1]) - 1] ?? 'line ' + failed[1]}: ${failed[2]}` } : {}),
    ms: Date.now() - started,
  };
}

/** A test's own steps between a document's blocks (setting up what the document assumes, checking what it did). */
export function testStep(name: string, code: string): ShBlock {
  return { heading: name, line: 0, code, source: `test step "${name}"` };
}

/** Asserts the tour ran every block to its end; the message names where it stopped and its stderr's tail. */
export function assertTourRan(r: TourResult, blocks: ShBlock[]): void {
  const tail = r.stderr.split('\n').filter((l) => !l.startsWith('{"level"')).slice(-40).join('\n');
  assert.equal(r.failedAt, undefined, `the tour stopped at ${r.failedAt}\n${tail}`);
  assert.equal(r.code, 0, `the tour exited ${r.code}\n${tail}`);
  assert.equal(r.parts.length, blocks.length, `only ${r.parts.length} of ${blocks.length} blocks ran\n${tail}`);
}
