/**
 * The CLI's voice (docs/cli.md), with the real CLI as a child process: every error shows its err_type;
 * with --json a failure is one `{"ok": false, "err_type", "message", "hint"}` document on stdout; exit
 * codes 1 (failed), 2 (usage), 3 (refused for safety); snake_case keys in every --json document; and
 * every prompt documented as reading a stdin line when stdin is not a terminal.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { runCli, type RunResult, type RunningServer, startServer } from '../src/drill/proc.js';
import { generateMnemonics } from '../src/crypto/slip39.js';
import { randomBytes } from '../src/crypto/random.js';
import { SAFETY_CODES } from '../src/errors.js';
import { buildProgram } from '../src/cli/main.js';
import { GROUPS, SUMMARIES } from '../src/cli/commands/index.js';
import { snakeCaseKeys } from '../src/cli/io.js';
import { REPO_ROOT } from './helpers/cli.js';
import { trackedTempDir } from './helpers/tmp.js';

const SECRET = 'correct-horse-battery-staple-4711';

function cli(args: string[], opts: { input?: string; secretFd?: boolean } = {}): Promise<RunResult> {
  return runCli(args, { ...opts, timeoutMs: 120_000 });
}

function ok(r: RunResult, what: string): RunResult {
  assert.equal(r.code, 0, `${what} exited ${r.code}: ${r.stderr}`);
  return r;
}

interface Failure {
  ok: boolean;
  err_type: string;
  message: string;
  hint: string | null;
}

/** Asserts a failure in the CLI's voice: the exit code, `lifeboat: error: … (err_type)` on stderr, and with --json the document on stdout. */
function failed(r: RunResult, exitCode: number, errType: string, json: boolean): Failure | undefined {
  assert.equal(r.code, exitCode, `expected exit ${exitCode}, got ${r.code}: ${r.stdout}${r.stderr}`);
  const line = new RegExp(`^lifeboat: error: (.+) \\(${errType}\\)$`, 'm').exec(r.stderr);
  assert.ok(line, `no "lifeboat: error: … (${errType})" line in: ${r.stderr}`);
  if (!json) {
    assert.equal(r.stdout, '', 'without --json a failure prints nothing on stdout');
    return undefined;
  }
  const doc = JSON.parse(r.stdout) as Failure;
  assert.deepEqual(Object.keys(doc), ['ok', 'err_type', 'message', 'hint']);
  assert.deepEqual([doc.ok, doc.err_type, doc.message], [false, errType, line[1]]);
  const hint = /^lifeboat: hint: (.+)$/m.exec(r.stderr);
  assert.equal(doc.hint, hint ? hint[1] : null);
  return doc;
}

/** Every key of a JSON document, at every depth, with its path. */
function keysOf(value: unknown, path = '$'): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => keysOf(v, `${path}[${i}]`));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => [`${path}.${k}`, ...keysOf(v, `${path}.${k}`)]);
}

function assertSnakeCase(stdout: string, what: string): Record<string, unknown> {
  const doc = JSON.parse(stdout) as Record<string, unknown>;
  const keys = keysOf(doc);
  assert.ok(keys.length > 0, `${what}: no keys`);
  const bad = keys.filter((p) => !/^[a-z][a-z0-9_]*$/.test(p.slice(p.lastIndexOf('.') + 1)));
  assert.deepEqual(bad, [], `${what}: keys that are not snake_case`);
  return doc;
}

describe('errors in the CLI voice, without any set-up', () => {
  it('an error shows its err_type; with --json it is one failure document on stdout; exit 1', async () => {
    const empty = trackedTempDir('lb-voice-');
    const [plain, json] = await Promise.all([cli(['vault', 'list', '--data-dir', empty]), cli(['vault', 'list', '--data-dir', empty, '--json'])]);
    failed(plain, 1, 'vault_not_found', false);
    assert.match(plain.stderr, /^lifeboat: error: no vault at .*vault\.lbv \(vault_not_found\)\nlifeboat: hint: run `lifeboat recovery init` first/);
    const doc = failed(json, 1, 'vault_not_found', true)!;
    assert.match(doc.hint!, /recovery init/);
  });

  it('an unexpected error is internal_error, exit 1, in the same voice', async () => {
    const file = join(trackedTempDir('lb-voice-'), 'not-a-dir');
    writeFileSync(file, 'x');
    const r = await cli(['vault', 'list', '--data-dir', file, '--json']);
    const doc = failed(r, 1, 'internal_error', true)!;
    assert.match(doc.hint!, /LIFEBOAT_DEBUG=1/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace without LIFEBOAT_DEBUG');
  });

  it('a usage error exits 2 as `usage`, points at the command’s --help, and is a JSON document with --json; values stay redacted', async () => {
    const [missing, unknown, secretOpt, typo, group, help, version] = await Promise.all([
      cli(['vault', 'put']),
      cli(['recovery', 'verify', '--no-such-option', '--json']),
      cli(['vault', 'put', 'k', `--value=${SECRET}`, '--json']),
      cli(['vault', 'lisst', '--json']),
      cli(['vault']),
      cli(['vault', 'put', '--help']),
      cli(['--version']),
    ]);
    failed(missing, 2, 'usage', false);
    assert.match(missing.stderr, /^lifeboat: error: missing required argument 'name' \(usage\)\nlifeboat: hint: run `lifeboat vault put --help` for usage\n$/);
    assert.match(failed(unknown, 2, 'usage', true)!.hint!, /`lifeboat recovery verify --help`/);
    const redacted = failed(secretOpt, 2, 'usage', true)!;
    assert.equal(redacted.message, "unknown option '--value=…'");
    for (const r of [secretOpt]) assert.ok(!r.stdout.includes(SECRET) && !r.stderr.includes(SECRET), 'an option value reached the output');
    assert.match(failed(typo, 2, 'usage', true)!.hint!, /did you mean list\?/);
    failed(group, 2, 'usage', false);
    assert.match(group.stderr, /lifeboat: error: a command is missing \(usage\)/);
    assert.equal(help.code, 0);
    assert.equal(version.code, 0);
  });

  it('snakeCaseKeys: camelCase keys become snake_case at every depth; other keys and every value are kept', () => {
    const at = new Date(0);
    assert.deepEqual(snakeCaseKeys({ ok: true, schemeId: 'a', backup: { ackedSeq: 1, lastError: null, rollbackDetected: false }, checks: [{ apiKeys: 2 }], 'db/password': 1, AcmeCorp: 2, key_id: 'x', at, note: 'camelCase value' }), {
      ok: true,
      scheme_id: 'a',
      backup: { acked_seq: 1, last_error: null, rollback_detected: false },
      checks: [{ api_keys: 2 }],
      'db/password': 1,
      AcmeCorp: 2,
      key_id: 'x',
      at,
      note: 'camelCase value',
    });
  });
});

describe('docs/cli.md holds', () => {
  const doc = readFileSync(join(REPO_ROOT, 'docs', 'cli.md'), 'utf8');
  const section = (title: string): string => {
    const start = doc.indexOf(title);
    assert.ok(start >= 0, `docs/cli.md has no "${title}"`);
    const end = doc.indexOf('\n#', start + title.length);
    return doc.slice(start, end < 0 ? undefined : end);
  };
  /** The backticked names in the first column of the first table after `title`. */
  const firstColumn = (text: string): string[] => {
    const table = text.slice(text.indexOf('\n|')).split('\n\n')[0]!;
    return table
      .split('\n')
      .filter((l) => l.startsWith('| `'))
      .flatMap((l) => [...l.split('|')[1]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!));
  };

  it('the refusals for safety listed are exactly SAFETY_CODES of src/errors.ts, and every error raised with safety: true is documented', () => {
    const safety = section('### What is a refusal for safety');
    assert.deepEqual(firstColumn(safety).sort(), [...SAFETY_CODES].sort());
    const documented = new Set([...safety.matchAll(/`([a-z][a-z0-9_]*)`/g)].map((m) => m[1]!));
    const sources = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
    const undocumented: string[] = [];
    for (const file of sources(join(REPO_ROOT, 'src')).filter((f) => !f.endsWith(join('src', 'errors.ts')))) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/safety: true/g)) {
        // the error's code is a quoted snake_case name in the same `new …Error(` expression
        const start = text.lastIndexOf('new ', m.index);
        const codes = [...text.slice(start, m.index).matchAll(/'([a-z]+_[a-z0-9_]+)'/g)].map((c) => c[1]!);
        if (!codes.some((c) => documented.has(c))) undocumented.push(`${file.slice(REPO_ROOT.length)}: ${codes.join(', ') || '?'}`);
      }
    }
    assert.deepEqual(undocumented, [], 'errors raised with safety: true whose err_type docs/cli.md does not name');
  });

  it('every command whose prompts read stdin lines says so in --help, and the prompt table lists exactly those', async () => {
    const commands = (c: Command, path: string[] = []): [string, Command][] =>
      c.commands.flatMap((s) => [[[...path, s.name()].join(' '), s] as [string, Command], ...commands(s, [...path, s.name()])]);
    const saying: string[] = [];
    for (const [name, cmd] of commands(await buildProgram())) {
      let help = '';
      cmd.configureOutput({ writeOut: (s) => void (help += s), writeErr: (s) => void (help += s) });
      cmd.outputHelp();
      if (/when stdin is not a terminal, each prompt reads the next\s+line of stdin/.test(help)) saying.push(name);
    }
    const listed = firstColumn(section('## Prompts read stdin when it is not a terminal'));
    assert.deepEqual(saying.sort(), listed.sort());
    assert.ok(listed.length >= 8, 'every prompting command is listed');
  });

  it('each command group, loaded alone for its own command, registers exactly the top-level commands it is listed under', async () => {
    const all = (await buildProgram()).commands.map((c) => c.name());
    assert.deepEqual([...all].sort(), GROUPS.flatMap((g) => g.commands).sort(), 'every top-level command belongs to one group');
    for (const g of GROUPS) {
      for (const name of g.commands) {
        const alone = await buildProgram([name, '--help']);
        assert.deepEqual(alone.commands.map((c) => c.name()).sort(), [...g.commands].sort(), name);
      }
    }
    assert.deepEqual((await buildProgram(['--version'])).commands, [], '--version loads no group');
    assert.deepEqual((await buildProgram(['no-such-command'])).commands.map((c) => c.name()), all, 'an unknown command sees them all, for suggestions');
  });

  it('`lifeboat --help` loads no group, and shows what the loaded commands would: SUMMARIES matches them', async () => {
    const full = await buildProgram();
    for (const c of full.commands) {
      assert.equal(SUMMARIES[c.name()]?.description, c.description(), `${c.name()}: description`);
      assert.equal(SUMMARIES[c.name()]?.options === true, c.options.length > 0, `${c.name()}: [options]`);
    }
    const summaries = await buildProgram(['--help']);
    assert.ok(summaries.commands.every((c) => c.commands.length === 0), 'no group loaded: no command has subcommands');
    assert.equal(summaries.helpInformation(), full.helpInformation(), 'the same top-level help');
    const named = await buildProgram(['help', 'vault']);
    assert.deepEqual(named.commands.map((c) => c.name()), ['vault'], '`help vault` loads the vault group');
  });
});

describe('the CLI voice on a real recovery set-up (one holder process)', { timeout: 300_000 }, () => {
  const w = { dir: '', primary: '', operatorKey: '', spec: '', offline: '', holder: undefined as RunningServer | undefined };

  before(async () => {
    w.dir = trackedTempDir('lb-voice-rec-');
    w.primary = join(w.dir, 'primary');
    w.operatorKey = join(w.dir, 'operator.json');
    const primary = JSON.parse(ok(await cli(['primary', 'init', '--data-dir', w.primary, '--json']), 'primary init').stdout) as { identity: string };
    const op = JSON.parse(ok(await cli(['operator', 'keygen', '--out', w.operatorKey, '--json']), 'operator keygen').stdout) as { identity: string };
    const holderDir = join(w.dir, 'holder');
    const h = JSON.parse(ok(await cli(['holder', 'init', '--data-dir', holderDir, '--primary', primary.identity, '--operator', op.identity, '--json']), 'holder init').stdout) as { fingerprint: string };
    w.holder = await startServer(['holder', 'serve', '--data-dir', holderDir, '--listen', '127.0.0.1:0', '--log-level', 'silent', '--json']);
    w.spec = `${w.holder.url}#${h.fingerprint}`;
    // 2 of 2: the holder's share and one offline share
    const init = ok(await cli(['recovery', 'init', '--data-dir', w.primary, '--holder', w.spec, '--secret-fd', '3', '--json'], { secretFd: true }), 'recovery init');
    assertSnakeCase(init.stdout, 'recovery init --json');
    w.offline = init.secret.trim();
    ok(await cli(['vault', 'put', 'backup-key', '--data-dir', w.primary], { input: SECRET }), 'vault put');
  });

  after(async () => {
    await w.holder?.stop();
  });

  const reconstruct = (dataDir: string, typed: string): Promise<RunResult> =>
    cli(['recovery', 'reconstruct', '--data-dir', dataDir, '--operator-key', w.operatorKey, '--holder', w.spec, '--typed-shares', '1', '--json'], { input: `${typed}\n` });

  const nothingWritten = (dataDir: string): void => {
    const files = existsSync(dataDir) ? readdirSync(dataDir) : [];
    assert.ok(!files.includes('vault.lbv') && !files.includes('master.key'), `files written: ${files.join(', ')}`);
  };

  it('a typed share of another set is refused for safety: exit 3, share_set_mismatch, on stdout with --json; nothing written', async () => {
    const other = generateMnemonics(randomBytes(32), { threshold: 2, count: 2 }).mnemonics[1]!;
    const d = join(w.dir, 'new-primary-1');
    const doc = failed(await reconstruct(d, other), 3, 'share_set_mismatch', true)!;
    assert.match(doc.message, /another share set/);
    nothingWritten(d);
  });

  it('a mistyped word is not a refusal for safety: exit 1, invalid_word', async () => {
    const words = w.offline.split(' ');
    words[6] = 'notaword';
    const d = join(w.dir, 'new-primary-2');
    assert.match(failed(await reconstruct(d, words.join(' ')), 1, 'invalid_word', true)!.message, /word 7/);
    nothingWritten(d);
  });

  it('recovery verify --json: snake_case keys; a typed share of another set makes it exit 3, its check marked safety', async () => {
    const good = ok(await cli(['recovery', 'verify', '--data-dir', w.primary, '--offline-shares', '1', '--json'], { input: `${w.offline}\n` }), 'recovery verify');
    const report = assertSnakeCase(good.stdout, 'recovery verify --json');
    assert.match(String(report.scheme_id), /^[0-9a-f]{32}$/);
    const other = generateMnemonics(randomBytes(32), { threshold: 2, count: 2 }).mnemonics[0]!;
    const bad = await cli(['recovery', 'verify', '--data-dir', w.primary, '--offline-shares', '1', '--json'], { input: `${other}\n` });
    assert.equal(bad.code, 3, bad.stderr);
    const checks = (assertSnakeCase(bad.stdout, 'recovery verify --json (failed)') as { checks: { kind: string; ok: boolean; code?: string; safety?: boolean }[] }).checks;
    assert.deepEqual(checks.map((c) => [c.kind, c.ok, c.code, c.safety]), [['holder', true, undefined, undefined], ['offline', false, 'share_set_mismatch', true]]);
    // a typo in the typed share fails the check too, but is no reason to stop: exit 1
    const typo = await cli(['recovery', 'verify', '--data-dir', w.primary, '--offline-shares', '1', '--json'], { input: `${w.offline.replace(/^\S+/, 'notaword')}\n` });
    assert.equal(typo.code, 1, typo.stderr);
  });
});

describe('snake_case --json of key node and backup commands (a backup-server process; prompts from stdin)', { timeout: 300_000 }, () => {
  const root = trackedTempDir('lb-voice-node-');
  let service: RunningServer | undefined;

  after(async () => {
    await service?.stop();
  });

  it('node init, backup-setup, status, backup-now, restore --database and restore --backup-server print only snake_case keys', async () => {
    service = await startServer(['backup-server', 'serve', '--data-dir', join(root, 'service'), '--listen', '127.0.0.1:0', '--log-level', 'silent', '--json']);
    const added = ok(await cli(['backup-server', 'account', 'add', 'voice', '--data-dir', join(root, 'service'), '--json']), 'account add');
    const { invite } = assertSnakeCase(added.stdout, 'backup-server account add') as { invite: string };
    const node = join(root, 'node');
    assertSnakeCase(ok(await cli(['node', 'init', '--data-dir', node, '--no-mnemonic', '--json']), 'node init').stdout, 'node init');
    const password = 'a long voice test password';
    // three prompts, answered by three stdin lines (docs/cli.md)
    const setup = ok(await cli(['node', 'backup-setup', '--backup-server', service.url, '--account', 'voice', '--data-dir', node, '--json'], { input: `${invite}\n${password}\n${password}\n` }), 'backup-setup');
    assertSnakeCase(setup.stdout, 'node backup-setup');
    const now = assertSnakeCase(ok(await cli(['node', 'backup-now', '--data-dir', node, '--json']), 'backup-now').stdout, 'node backup-now') as { acked_seq: number };
    assert.ok(now.acked_seq >= 1, 'the node keys entry was acknowledged');
    const status = assertSnakeCase(ok(await cli(['node', 'status', '--data-dir', node, '--json']), 'node status').stdout, 'node status') as { backup: Record<string, unknown> };
    assert.deepEqual(
      Object.keys(status.backup).filter((k) => ['acked_seq', 'sealed_seq', 'pending_keys', 'last_error', 'rollback_detected'].includes(k)).sort(),
      ['acked_seq', 'last_error', 'pending_keys', 'rollback_detected', 'sealed_seq'],
    );
    assert.equal(status.backup.acked_seq, now.acked_seq);
    const db = assertSnakeCase(ok(await cli(['node', 'restore', '--database', '--data-dir', node, '--json']), 'restore --database').stdout, 'node restore --database');
    assert.equal(db.nonces_deleted, 0);
    const restored = join(root, 'restored');
    const r = ok(await cli(['node', 'restore', '--backup-server', service.url, '--account', 'voice', '--data-dir', restored, '--json'], { input: `${password}\n` }), 'restore --backup-server');
    const doc = assertSnakeCase(r.stdout, 'node restore --backup-server');
    assert.equal(doc.head_seq, now.acked_seq);
    // the wrong password is a failed operation, not a refusal for safety
    failed(await cli(['node', 'restore', '--backup-server', service.url, '--account', 'voice', '--data-dir', join(root, 'wrong'), '--json'], { input: 'not the password\n' }), 1, 'login_failed', true);
  });
});
