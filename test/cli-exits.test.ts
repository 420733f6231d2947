/**
 * One CLI voice, end to end with the real CLI (docs/cli.md): with --json stdout holds one JSON document
 * and nothing else, for every command that has the option; every failure prints its err_type, also an
 * error no command caught; usage errors (a threshold above its count, options that exclude each other,
 * an unknown option, a missing argument) exit 2; a sealed node says so with a hint that works for a
 * node; the same share given twice is `share_repeated` ("duplicate share") and changes nothing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { runCli, type RunResult, type RunningServer, startServer } from '../src/drill/proc.js';
import { buildProgram } from '../src/cli/main.js';
import { REPO_ROOT, cliArgs, startCli, tracked } from './helpers/cli.js';
import { trackedTempDir } from './helpers/tmp.js';

const cli = (args: string[], opts: { input?: string; secretFd?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> => runCli(args, { ...opts, timeoutMs: 120_000 });

/** The failure document and stderr line agree, and the exit code is the one the err_type maps to. */
function assertFailure(r: RunResult, what: string): { err_type: string; message: string; hint: string | null } {
  const doc = JSON.parse(r.stdout) as { ok: boolean; err_type: string; message: string; hint: string | null };
  assert.equal(doc.ok, false, what);
  assert.match(r.stderr, new RegExp(`^lifeboat: error: .+ \\(${doc.err_type}\\)$`, 'm'), `${what}: ${r.stderr}`);
  assert.equal(r.code, doc.err_type === 'usage' ? 2 : r.code === 3 ? 3 : 1, `${what}: exit ${r.code} for ${doc.err_type}`);
  assert.doesNotMatch(r.stderr, /\n\s+at .+:\d+:\d+/, `${what}: a stack trace`);
  return doc;
}

function leaves(cmd: Command, path: string[] = []): { path: string[]; json: boolean }[] {
  return cmd.commands.flatMap((c) => (c.commands.length ? leaves(c, [...path, c.name()]) : [{ path: [...path, c.name()], json: c.options.some((o) => o.long === '--json') }]));
}

/** `lifeboat ARGS` in `cwd` (not the repository), stdin closed, every default directory under `cwd`. */
function runIn(cwd: string, args: string[]): Promise<RunResult> {
  const pre = cliArgs().map((a) => (a === 'tsx' ? import.meta.resolve('tsx') : /\.(ts|js)$/.test(a) ? join(REPO_ROOT, a) : a));
  const env: NodeJS.ProcessEnv = { ...process.env, LIFEBOAT_DEBUG: '', LIFEBOAT_API_KEY: '', LIFEBOAT_MNEMONIC: '', LIFEBOAT_MASTER_KEY_FILE: '', LIFEBOAT_NODE_STORE: '', LIFEBOAT_BACKUP_STORE: '' };
  for (const v of ['DATA', 'NODE', 'HOLDER', 'LOG', 'WITNESS', 'BACKUP_SERVER']) env[`LIFEBOAT_${v}_DIR`] = join(cwd, v.toLowerCase());
  const child = tracked(spawn(process.execPath, [...pre, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] }));
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr, secret: '' })));
}

describe('--json: stdout is one JSON document and nothing else, for every command that has it', { timeout: 300_000 }, () => {
  it('each command run bare with --json, in an empty directory: one document; a failure names its err_type and exit code', async () => {
    const cwd = trackedTempDir('lb-sweep-');
    const commands = leaves(await buildProgram()).filter((c) => c.json && !['serve', 'drill'].includes(c.path.at(-1)!) && c.path[0] !== 'drill');
    assert.ok(commands.length > 60, `${commands.length} commands`);
    const queue = [...commands];
    const worker = async (): Promise<void> => {
      for (let c = queue.shift(); c; c = queue.shift()) {
        const r = await runIn(cwd, [...c.path, '--json']);
        const what = `lifeboat ${c.path.join(' ')} --json`;
        assert.doesNotThrow(() => JSON.parse(r.stdout), `${what}: stdout is not one JSON document: ${JSON.stringify(r.stdout.slice(0, 300))} ${r.stderr}`);
        if (r.code !== 0) assertFailure(r, what);
      }
    };
    await Promise.all([worker(), worker(), worker()]);
  });

  it('a representative set of successes prints one document each', async () => {
    const d = trackedTempDir('lb-sweep-ok-');
    const json = async (args: string[]): Promise<Record<string, unknown>> => {
      const r = await cli([...args, '--json']);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      return JSON.parse(r.stdout) as Record<string, unknown>;
    };
    const primary = await json(['primary', 'init', '--data-dir', join(d, 'p')]);
    await json(['primary', 'show', '--data-dir', join(d, 'p')]);
    const op = await json(['operator', 'keygen', '--out', join(d, 'op.json')]);
    await json(['operator', 'show', '--key', join(d, 'op.json')]);
    await json(['holder', 'init', '--data-dir', join(d, 'h'), '--primary', String(primary.identity), '--operator', String(op.identity)]);
    await json(['holder', 'show', '--data-dir', join(d, 'h')]);
    await json(['holder', 'audit', '--data-dir', join(d, 'h')]);
    await json(['node', 'init', '--data-dir', join(d, 'n'), '--no-mnemonic']);
    await json(['node', 'status', '--data-dir', join(d, 'n')]);
    await json(['node', 'config', 'get', '--data-dir', join(d, 'n')]);
    await json(['node', 'whitelist', 'list', '--data-dir', join(d, 'n')]);
    await json(['node', 'apikey', 'list', '--data-dir', join(d, 'n')]);
    await json(['log', 'init', '--origin', 'logs.lifeboat.example/sweep', '--data-dir', join(d, 'l')]);
    await json(['log', 'key', '--data-dir', join(d, 'l')]);
    await json(['log', 'submitters', '--data-dir', join(d, 'l')]);
    await json(['log', 'witnesses', 'list', '--data-dir', join(d, 'l')]);
    await json(['log', 'witness', 'init', '--name', 'w.lifeboat.example/sweep', '--data-dir', join(d, 'w')]);
    await json(['log', 'witness', 'logs', '--data-dir', join(d, 'w')]);
    await json(['backup-server', 'account', 'add', 'sweep', '--data-dir', join(d, 'b')]);
    await json(['backup-server', 'account', 'list', '--data-dir', join(d, 'b')]);
  });
});

describe('failures name their err_type on every path', { timeout: 120_000 }, () => {
  it('an error no command caught (a callback after the command) is internal_error in the CLI voice, exit 1', async () => {
    const script = `import { main } from ${JSON.stringify(join(REPO_ROOT, 'src/cli/main.ts'))};\nsetTimeout(() => { throw new Error('late failure'); }, 50);\nprocess.exitCode = await main(['node', 'lifeboat', '--version']);\nawait new Promise((r) => setTimeout(r, 5000));\n`;
    const file = join(trackedTempDir('lb-crash-'), 'crash.mts');
    writeFileSync(file, script);
    const child = tracked(spawn(process.execPath, ['--import', import.meta.resolve('tsx'), file], { env: { ...process.env, LIFEBOAT_DEBUG: '' }, stdio: ['ignore', 'pipe', 'pipe'] }));
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise((r) => child.on('close', r));
    assert.equal(code, 1, stderr);
    assert.match(stderr, /^lifeboat: error: late failure \(internal_error\)$/m);
    assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace without LIFEBOAT_DEBUG');
  });

  it('an error a server answers is printed with the server’s err_type', async () => {
    const dir = join(trackedTempDir('lb-srv-err-'), 'n');
    assert.equal((await cli(['node', 'init', '--data-dir', dir, '--no-mnemonic'])).code, 0);
    const node = await startCli(['node', 'serve', '--data-dir', dir, '--listen', '127.0.0.1:0', '--json', '--log-level', 'silent']);
    try {
      const r = await cli(['key', 'list', '--node', node.url, '--json'], { env: { LIFEBOAT_API_KEY: 'lbk_not_a_real_key' } });
      assert.notEqual(r.code, 0);
      const doc = assertFailure(r, 'key list with a bad API key');
      assert.match(doc.err_type, /^(unauthorized|invalid_api_key|malformed_api_key|api_key_[a-z_]+)$/);
    } finally {
      await node.stop();
    }
  });
});

describe('usage errors exit 2 (err_type usage), before anything is read, asked or written', { timeout: 120_000 }, () => {
  const FP = (c: string): string => Array(8).fill(c.repeat(4)).join(':');
  const cases: [string, string[]][] = [
    ['key create: a threshold above the node count', ['key', 'create', '--nodes', 'http://127.0.0.1:9,http://127.0.0.1:10', '--threshold', '3']],
    ['recovery init: a threshold above the share count', ['recovery', 'init', '--holder', `http://127.0.0.1:9#${FP('0')}`, '--threshold', '3']],
    ['recovery init: more holders than shares', ['recovery', 'init', '--holder', `http://127.0.0.1:9#${FP('a')}`, '--holder', `http://127.0.0.1:10#${FP('b')}`, '--holder', `http://127.0.0.1:11#${FP('c')}`, '--shares', '2']],
    ['options that exclude each other', ['vault', 'get', 'x', '--out', '/nonexistent/x', '--stdout']],
    ['one of three options needed', ['node', 'restore']],
    ['an unknown option', ['node', 'status', '--no-such-option']],
    ['a missing argument', ['backup-server', 'account', 'add']],
    ['a bad value', ['node', 'serve', '--log-level', 'chatty']],
  ];
  for (const [what, args] of cases) {
    it(what, async () => {
      const cwd = trackedTempDir('lb-usage-');
      const r = await runIn(cwd, [...args, '--json']);
      const doc = assertFailure(r, what);
      assert.equal(doc.err_type, 'usage', `${what}: ${r.stderr}`);
      assert.equal(r.code, 2);
      assert.ok(doc.hint, 'a hint: what to change, or the command’s --help');
      assert.deepEqual(readdirSync(cwd), [], `${what}: nothing written`);
    });
  }
});

describe('node serve on a sealed node', { timeout: 120_000 }, () => {
  it('says "the node is sealed" with a hint naming what works for a node; putting master.key back serves again', async () => {
    const root = trackedTempDir('lb-sealed-');
    const dir = join(root, 'n');
    assert.equal((await cli(['node', 'init', '--data-dir', dir, '--no-mnemonic'])).code, 0);
    renameSync(join(dir, 'master.key'), join(root, 'master.key.offsite'));
    const r = await cli(['node', 'serve', '--data-dir', dir, '--listen', '127.0.0.1:0', '--json']);
    const doc = assertFailure(r, 'node serve, sealed');
    assert.equal(doc.err_type, 'sealed');
    assert.match(doc.message, /^the node is sealed/);
    assert.doesNotMatch(`${doc.message} ${doc.hint}`, /primary|`lifeboat unseal`|recovery init/, 'no primary-only advice');
    // The hint's command exists with the options it names.
    const named = /`lifeboat (node restore[^`]*)`/.exec(doc.hint ?? '');
    assert.ok(named, doc.hint ?? '');
    const help = (await cli([...named[1]!.split(' ').slice(0, 2), '--help'])).stdout;
    for (const opt of named[1]!.match(/--[a-z-]+/g)!) assert.ok(help.includes(opt), `node restore --help has no ${opt}`);
    // Its other remedy: the off-machine copy of master.key, put back.
    assert.match(doc.hint ?? '', /master\.key/);
    renameSync(join(root, 'master.key.offsite'), join(dir, 'master.key'));
    const node = await startCli(['node', 'serve', '--data-dir', dir, '--listen', '127.0.0.1:0', '--json', '--log-level', 'silent']);
    assert.equal((await fetch(`${node.url}/v1/health`)).status, 200);
    await node.stop();
  });
});

describe('the same share given twice (one holder process, 2 of 2)', { timeout: 300_000 }, () => {
  const w = { dir: '', primary: '', op: '', offline: '', scheme: '', holderDir: '', fingerprint: '', holder: undefined as RunningServer | undefined };

  before(async () => {
    w.dir = trackedTempDir('lb-dup-');
    w.primary = join(w.dir, 'primary');
    w.op = join(w.dir, 'operator.json');
    w.holderDir = join(w.dir, 'holder');
    const p = JSON.parse((await cli(['primary', 'init', '--data-dir', w.primary, '--json'])).stdout) as { identity: string };
    const o = JSON.parse((await cli(['operator', 'keygen', '--out', w.op, '--json'])).stdout) as { identity: string };
    const h = JSON.parse((await cli(['holder', 'init', '--data-dir', w.holderDir, '--primary', p.identity, '--operator', o.identity, '--json'])).stdout) as { fingerprint: string };
    w.fingerprint = h.fingerprint;
    w.holder = await startServer(['holder', 'serve', '--data-dir', w.holderDir, '--listen', '127.0.0.1:0', '--log-level', 'silent', '--json']);
    const init = await cli(['recovery', 'init', '--data-dir', w.primary, '--holder', `${w.holder.url}#${h.fingerprint}`, '--secret-fd', '3', '--json'], { secretFd: true });
    assert.equal(init.code, 0, init.stderr);
    w.offline = init.secret.trim();
    w.scheme = (JSON.parse(init.stdout) as { scheme_id: string }).scheme_id;
    await w.holder.stop();
  });

  after(async () => {
    await w.holder?.stop();
  });

  const reconstruct = (dataDir: string, extra: string[], input = ''): Promise<RunResult> =>
    cli(['recovery', 'reconstruct', '--data-dir', dataDir, '--operator-key', w.op, '--manifest', join(w.primary, 'recovery-manifest.json'), '--vault', join(w.primary, 'vault.lbv'), ...extra, '--json'], { input });

  const noVault = (dataDir: string): void => {
    const files = existsSync(dataDir) ? readdirSync(dataDir) : [];
    assert.ok(!files.includes('vault.lbv') && !files.includes('master.key'), `written: ${files.join(', ')}`);
  };

  it('a share typed twice: "duplicate share", share_repeated, exit 1; nothing written', async () => {
    const d = join(w.dir, 'typed-twice');
    const doc = assertFailure(await reconstruct(d, ['--typed-shares', '2'], `${w.offline}\n${w.offline}\n`), 'typed twice');
    assert.equal(doc.err_type, 'share_repeated');
    assert.match(doc.message, /^duplicate share: typed share 2 is the share of member \d+ again, as typed share 1$/);
    noVault(d);
  });

  it('a release response given twice: share_repeated; the response still works afterwards (nothing was spent)', async () => {
    const d = join(w.dir, 'response-twice');
    const req = join(w.dir, 'request.json');
    const resp = join(w.dir, 'response.json');
    assert.equal((await cli(['recovery', 'request', '--operator-key', w.op, '--scheme', w.scheme, '--holder-fingerprint', w.fingerprint, '--out', req, '--data-dir', d])).code, 0);
    const released = await cli(['holder', 'release', '--data-dir', w.holderDir, '--request', req, '--out', resp]);
    assert.equal(released.code, 0, released.stderr);
    const doc = assertFailure(await reconstruct(d, ['--release-response', resp, '--release-response', resp]), 'response twice');
    assert.equal(doc.err_type, 'share_repeated');
    assert.match(doc.message, /^duplicate share: response file .* again, as response file /);
    noVault(d);
    const ok = await reconstruct(d, ['--release-response', resp, '--typed-shares', '1'], `${w.offline}\n`);
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(existsSync(join(d, 'vault.lbv')));
  });
});
