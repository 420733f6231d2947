/**
 * Defects found by running the README and the production docs as written (issue 13, point 1):
 *   - `node init` whose store cannot be opened leaves the directory as it was, so a retry works;
 *   - `node init` makes its store where $LIFEBOAT_NODE_STORE says, as `node serve` reads it;
 *   - `node backup-now` with nothing new exits 0 and says so.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runCli, type RunResult, type RunningServer, startServer } from '../src/drill/proc.js';
import { trackedTempDir } from './helpers/tmp.js';

function cli(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return runCli(args, { ...opts, timeoutMs: 120_000 });
}

function ok(r: RunResult, what: string): RunResult {
  assert.equal(r.code, 0, `${what} exited ${r.code}: ${r.stderr}`);
  return r;
}

/** A PostgreSQL URL nothing answers: port 1 on loopback refuses the connection at once. */
const UNREACHABLE = 'postgres://lifeboat_node@127.0.0.1:1/node_a';

describe('node init cleans up after a failure', { timeout: 120_000 }, () => {
  const root = trackedTempDir('lb-defects-init-');

  it('an unreachable postgres store: init fails, a new directory is not left behind, and a retry works', async () => {
    const dir = join(root, 'fresh');
    const failed = await cli(['node', 'init', '--data-dir', dir, '--no-mnemonic', '--store', UNREACHABLE]);
    assert.equal(failed.code, 1, failed.stderr);
    assert.match(failed.stderr, /^lifeboat: error: /m);
    assert.ok(!failed.stderr.includes('already holds'), failed.stderr);
    assert.equal(existsSync(dir), false, 'the directory init made is gone');
    const retried = JSON.parse(ok(await cli(['node', 'init', '--data-dir', dir, '--no-mnemonic', '--json']), 'node init retry').stdout) as { fingerprint: string; store: string };
    assert.match(retried.fingerprint, /\S/);
    assert.ok(existsSync(join(dir, 'store.sqlite')), 'the retry made its store');
  });

  it('an existing directory keeps what it held and nothing more', async () => {
    const dir = join(root, 'existing');
    mkdirSync(dir, { mode: 0o700 });
    writeFileSync(join(dir, 'notes.txt'), 'the operator’s own file\n');
    const failed = await cli(['node', 'init', '--data-dir', dir, '--no-mnemonic', '--store', UNREACHABLE]);
    assert.equal(failed.code, 1, failed.stderr);
    assert.deepEqual(readdirSync(dir), ['notes.txt'], 'only what was there before');
    ok(await cli(['node', 'init', '--data-dir', dir, '--no-mnemonic']), 'node init retry');
    assert.ok(existsSync(join(dir, 'node.json')) && existsSync(join(dir, 'notes.txt')), 'the retry made a node beside the operator’s file');
  });
});

describe('node init takes $LIFEBOAT_NODE_STORE, as node serve does', { timeout: 60_000 }, () => {
  it('the store is made where the variable says and node.json names it; --store still wins', async () => {
    const root = trackedTempDir('lb-defects-env-store-');
    const custom = join(root, 'elsewhere.sqlite');
    const dir = join(root, 'node');
    const r = JSON.parse(ok(await cli(['node', 'init', '--data-dir', dir, '--no-mnemonic', '--json'], { env: { LIFEBOAT_NODE_STORE: `sqlite:${custom}` } }), 'node init').stdout) as { store: string };
    assert.equal(r.store, `sqlite:${custom}`);
    assert.ok(existsSync(custom) && !existsSync(join(dir, 'store.sqlite')), 'the store is where the variable says');
    assert.equal((JSON.parse(readFileSync(join(dir, 'node.json'), 'utf8')) as { store: string }).store, `sqlite:${custom}`);
    const flag = join(root, 'flag.sqlite');
    ok(await cli(['node', 'init', '--data-dir', join(root, 'node2'), '--no-mnemonic', '--store', `sqlite:${flag}`], { env: { LIFEBOAT_NODE_STORE: `sqlite:${custom}-not` } }), 'node init --store');
    assert.ok(existsSync(flag) && !existsSync(`${custom}-not`), '--store wins over the variable');
  });
});

describe('node backup-now with nothing new', { timeout: 180_000 }, () => {
  const root = trackedTempDir('lb-defects-backup-');
  let service: RunningServer | undefined;

  after(async () => {
    await service?.stop();
  });

  it('exits 0 and says nothing new was there, twice in a row', async () => {
    service = await startServer(['backup-server', 'serve', '--data-dir', join(root, 'service'), '--listen', '127.0.0.1:0', '--log-level', 'silent', '--json']);
    const { invite } = JSON.parse(ok(await cli(['backup-server', 'account', 'add', 'node1', '--data-dir', join(root, 'service'), '--json']), 'account add').stdout) as { invite: string };
    const node = join(root, 'node1');
    ok(await cli(['node', 'init', '--data-dir', node, '--no-mnemonic']), 'node init');
    const password = 'a long enough backup password';
    ok(await cli(['node', 'backup-setup', '--backup-server', service.url, '--account', 'node1', '--data-dir', node], { input: `${invite}\n${password}\n${password}\n` }), 'backup-setup');
    const first = JSON.parse(ok(await cli(['node', 'backup-now', '--data-dir', node, '--json']), 'first backup-now').stdout) as { acked_seq: number; compaction: { seq: number } | null };
    assert.ok(first.acked_seq >= 1);
    assert.equal(first.compaction?.seq, first.acked_seq);

    const again = ok(await cli(['node', 'backup-now', '--data-dir', node]), 'backup-now with nothing new');
    assert.match(again.stdout, /nothing new/);
    const json = JSON.parse(ok(await cli(['node', 'backup-now', '--data-dir', node, '--json']), 'backup-now --json with nothing new').stdout) as { ok: boolean; nothing_new: boolean; acked_seq: number; compaction: unknown };
    assert.equal(json.ok, true);
    assert.equal(json.nothing_new, true);
    assert.equal(json.acked_seq, first.acked_seq);
    assert.equal(json.compaction, null);
  });
});
