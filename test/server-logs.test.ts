/**
 * Every server logs in one voice (docs/operations.md, "Logs"): each kind (`holder serve`, `node serve`,
 * `backup-server serve`, `log serve`, `log witness serve`) started as a real process with its stderr a
 * pipe writes only pino JSON lines there, at the same default level (info): one line at start-up (what
 * listens where, the version), one per request (method, route, status, time; never the Authorization
 * header, a query or a body), one at shutdown (the signal, clean). stdout holds only the `{"url", …}`
 * document. `--log-level` and $LIFEBOAT_LOG_LEVEL change the level; a bad level is a usage error.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { generateIdentity, encodePublicIdentity } from '../src/identity.js';
import { VERSION } from '../src/cli/version.js';
import { textLine } from '../src/cli/server-log.js';
import { runCli, startCli, type CliResult } from './helpers/cli.js';
import { trackedTempDir } from './helpers/tmp.js';

const HEADER_SECRET = 'hdr-secret-7f3a9c1e5b';
const QUERY_SECRET = 'qry-secret-2d8e4b6a0c';
const BODY_SECRET = 'body-secret-9a1c3e5f7b';
const NO_ENV_LEVEL = { LIFEBOAT_LOG_LEVEL: '' };

interface Kind {
  name: string;
  /** The serve command line (without --json and --listen). */
  serve: string[];
  /** A route answering 200 (its route pattern is the path). */
  ok: string;
  /** A route that takes an authenticated POST, refused here. */
  guarded: string;
  /** The route pattern the guarded path is logged under. */
  guardedRoute: string;
}

interface Run {
  kind: Kind;
  url: string;
  exit: CliResult;
  lines: Record<string, unknown>[];
}

async function initAll(root: string): Promise<Kind[]> {
  const dir = (n: string) => join(root, n);
  const primary = encodePublicIdentity(generateIdentity('primary'));
  const operator = encodePublicIdentity(generateIdentity('operator'));
  const inits = await Promise.all([
    runCli(['holder', 'init', '--data-dir', dir('holder'), '--primary', primary, '--operator', operator]),
    runCli(['node', 'init', '--data-dir', dir('node'), '--no-mnemonic']),
    runCli(['log', 'init', '--origin', 'logs.lifeboat.example/voice', '--data-dir', dir('log')]),
    runCli(['log', 'witness', 'init', '--name', 'w.lifeboat.example/voice', '--data-dir', dir('witness')]),
  ]);
  for (const r of inits) assert.equal(r.code, 0, r.stderr);
  const scheme = '00'.repeat(16);
  return [
    { name: 'holder', serve: ['holder', 'serve', '--data-dir', dir('holder')], ok: '/v1/health', guarded: `/v1/schemes/${scheme}/challenge`, guardedRoute: '/v1/schemes/:scheme_id/challenge' },
    { name: 'node', serve: ['node', 'serve', '--data-dir', dir('node')], ok: '/v1/health', guarded: '/v1/dkg/s1/start', guardedRoute: '/v1/dkg/:session_id/start' },
    { name: 'backup-server', serve: ['backup-server', 'serve', '--data-dir', dir('backup')], ok: '/v1/health', guarded: '/v1/accounts/acme/streams/s1/entries', guardedRoute: '/v1/accounts/:account/streams/:stream/entries' },
    { name: 'log', serve: ['log', 'serve', '--data-dir', dir('log')], ok: '/healthz', guarded: '/add', guardedRoute: '/add' },
    { name: 'log-witness', serve: ['log', 'witness', 'serve', '--data-dir', dir('witness')], ok: '/healthz', guarded: '/add-checkpoint', guardedRoute: '/add-checkpoint' },
  ];
}

/** Starts a server, sends it a good request and a refused one carrying secrets, and stops it with SIGTERM. */
async function exercise(kind: Kind): Promise<Run> {
  const server = await startCli([...kind.serve, '--listen', '127.0.0.1:0', '--json'], { env: NO_ENV_LEVEL });
  try {
    assert.equal((await fetch(`${server.url}${kind.ok}?token=${QUERY_SECRET}`)).status, 200);
    const refused = await fetch(`${server.url}${kind.guarded}?token=${QUERY_SECRET}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${HEADER_SECRET}`, 'content-type': 'application/json' },
      body: JSON.stringify({ secret: BODY_SECRET }),
    });
    assert.ok(refused.status >= 400 && refused.status < 500, `${kind.name}: ${refused.status}`);
    // The request line is written once the answer is sent: wait for it, not for luck.
    for (const deadline = Date.now() + 20_000; !server.stderr().includes(kind.guardedRoute); ) {
      assert.ok(Date.now() < deadline, `${kind.name}: no request line: ${server.stderr()}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  } catch (err) {
    await server.stop('SIGKILL');
    throw err;
  }
  const exit = await server.stop('SIGTERM');
  const lines = exit.stderr
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        assert.fail(`${kind.name}: a stderr line that is not JSON: ${l}`);
      }
    });
  return { kind, url: server.url, exit, lines };
}

describe('server logs: every server kind as a real process, stderr a pipe', { timeout: 300_000 }, () => {
  let runs: Run[] = [];
  let root = '';

  before(async () => {
    root = trackedTempDir('lb-serverlogs-');
    runs = await Promise.all((await initAll(root)).map(exercise));
  });

  it('stdout is only the {"url", …} document; the process exits 0 on SIGTERM', () => {
    for (const r of runs) {
      assert.deepEqual([r.exit.code, r.exit.signal], [0, null], `${r.kind.name}: ${r.exit.stderr}`);
      const out = r.exit.stdout.split('\n');
      assert.deepEqual(out.slice(1), [''], `${r.kind.name}: one stdout line: ${r.exit.stdout}`);
      assert.equal((JSON.parse(out[0]!) as { url: string }).url, r.url);
    }
  });

  it('every stderr line is a pino JSON line with the level as a word and an ISO time', () => {
    for (const r of runs) {
      assert.ok(r.lines.length >= 4, `${r.kind.name}: ${r.exit.stderr}`);
      for (const l of r.lines) {
        assert.ok(['info', 'warn', 'error'].includes(l.level as string), `${r.kind.name}: ${JSON.stringify(l)}`);
        assert.match(l.time as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        assert.equal(typeof l.msg, 'string');
      }
    }
  });

  it('one start-up line first: the server, its version and its URL, at info (the default level everywhere)', () => {
    for (const r of runs) {
      const first = r.lines[0]!;
      assert.deepEqual([first.level, first.event, first.server, first.version, first.url], ['info', 'start', r.kind.name, VERSION, r.url], JSON.stringify(first));
      assert.equal(r.lines.filter((l) => l.event === 'start').length, 1);
      assert.ok(!r.exit.stderr.includes('Server listening at'), 'no second start-up line from fastify');
    }
  });

  it('one line per request: method, route, path, status, time; the refused one with its err_type', () => {
    for (const r of runs) {
      const requests = r.lines.filter((l) => l.msg === 'request completed');
      assert.equal(requests.length, 2, `${r.kind.name}: ${r.exit.stderr}`);
      const [good, refused] = requests as [Record<string, unknown>, Record<string, unknown>];
      assert.deepEqual([good.method, good.route, good.path, good.status], ['GET', r.kind.ok, r.kind.ok, 200]);
      assert.deepEqual([refused.method, refused.route, refused.path], ['POST', r.kind.guardedRoute, r.kind.guarded]);
      assert.ok((refused.status as number) >= 400, JSON.stringify(refused));
      assert.match(refused.err_type as string, /^[a-z][a-z0-9_]*$/);
      for (const l of requests) assert.ok(typeof l.ms === 'number' && l.ms >= 0);
    }
  });

  it('no header, query or body reaches the log', () => {
    for (const r of runs) {
      for (const secret of [HEADER_SECRET, QUERY_SECRET, BODY_SECRET, 'Bearer', 'authorization']) {
        assert.ok(!r.exit.stderr.toLowerCase().includes(secret.toLowerCase()), `${r.kind.name} logged ${secret}`);
      }
    }
  });

  it('one shutdown line last: the signal, clean', () => {
    for (const r of runs) {
      const last = r.lines.at(-1)!;
      assert.deepEqual([last.event, last.server, last.signal, last.clean], ['stop', r.kind.name, 'SIGTERM', true], JSON.stringify(last));
    }
  });

  it('--log-level and $LIFEBOAT_LOG_LEVEL change the level; a bad level is a usage error (exit 2)', async () => {
    const holder = ['holder', 'serve', '--data-dir', join(root, 'holder'), '--listen', '127.0.0.1:0', '--json'];
    for (const [args, env] of [
      [['--log-level', 'warn'], NO_ENV_LEVEL],
      [[], { LIFEBOAT_LOG_LEVEL: 'warn' }],
    ] as const) {
      const s = await startCli([...holder, ...args], { env });
      assert.equal((await fetch(`${s.url}/v1/health`)).status, 200);
      const exit = await s.stop('SIGTERM');
      assert.equal(exit.code, 0, exit.stderr);
      assert.equal(exit.stderr, '', `nothing at info with ${JSON.stringify(args)} ${JSON.stringify(env)}`);
    }
    const s = await startCli([...holder, '--log-level', 'debug'], { env: { LIFEBOAT_LOG_LEVEL: 'error' } });
    const exit = await s.stop('SIGTERM');
    assert.match(exit.stderr, /"event":"start"/, 'the option wins over the variable');
    for (const [args, env, what] of [
      [['--log-level', 'loud'], NO_ENV_LEVEL, /--log-level/],
      [[], { LIFEBOAT_LOG_LEVEL: 'loud' }, /LIFEBOAT_LOG_LEVEL/],
    ] as const) {
      const bad = await runCli([...holder, ...args], { env });
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, /^lifeboat: error: .* \(usage\)$/m);
      assert.match(bad.stderr, what);
      assert.equal(JSON.parse(bad.stdout).err_type, 'usage');
    }
  });

  it('on a terminal a line reads as text: time, level, message, fields', () => {
    const line = textLine('{"level":"info","time":"2026-01-02T03:04:05.678Z","pid":1,"hostname":"h","method":"GET","route":"/v1/health","status":200,"msg":"request completed"}\n');
    assert.equal(line, '03:04:05.678 INFO  request completed method=GET route=/v1/health status=200\n');
  });
});
