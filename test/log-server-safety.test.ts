/**
 * The log never signs a second root for a size it published, nor rewrites a tile (review H2), all
 * `lifeboat log serve` processes on real SQLite stores: a store put back from an older copy
 * (store_behind), a store of another history at the published size (log_forked), a tile path that
 * already holds other bytes (tile_invalid: the sequencer stops, exit 3), and a witness that co-signed a
 * larger tree than the store's head (store_behind). Each refusal changes no file under public/.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { after, describe, it } from 'node:test';
import { encodePublicIdentity, generateIdentity } from '../src/identity.js';
import { directoryBlobs, removeTempFiles } from '../src/log/server/blobs.js';
import { witnessSafetyRefusal } from '../src/log/server/errors.js';
import { addEntry } from '../src/log/server/client.js';
import { type RunningCli, runCli, startCli } from './helpers/cli.js';
import { testEntry } from './helpers/logserver.js';
import { trackedTempDir } from './helpers/tmp.js';

const alice = generateIdentity('operator');

/** Every file under public/ with the SHA-256 of its bytes. */
function publicFiles(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p), createHash('sha256').update(readFileSync(p)).digest('hex'));
    }
  };
  walk(join(dir, 'public'));
  return out;
}

function copyStore(from: string, to: string): void {
  for (const f of readdirSync(to)) if (f.startsWith('log.sqlite')) rmSync(join(to, f));
  for (const f of readdirSync(from)) if (f.startsWith('log.sqlite')) cpSync(join(from, f), join(to, f));
}

describe('log serve refuses to sign over what it published (processes)', { timeout: 240_000 }, () => {
  const root = trackedTempDir('lifeboat-log-safety-');
  const running: RunningCli[] = [];
  after(async () => {
    for (const r of running) if (r.child.exitCode === null && r.child.signalCode === null) await r.stop('SIGKILL');
  });
  const ok = async (args: string[]): Promise<string> => {
    const r = await runCli(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const serve = async (dir: string, extra: string[] = []): Promise<RunningCli> => {
    const r = await startCli(['log', 'serve', '--data-dir', dir, '--interval', '50ms', '--log-level', 'silent', '--json', ...extra]);
    running.push(r);
    return r;
  };
  const makeLog = async (name: string): Promise<string> => {
    const dir = join(root, name);
    await ok(['log', 'init', '--origin', `${name}.lifeboat.example/log`, '--data-dir', dir, '--json']);
    await ok(['log', 'enrol', '--name', 'alice', '--identity', encodePublicIdentity(alice), '--data-dir', dir]);
    return dir;
  };
  const refusedAtStart = async (dir: string, code: string): Promise<string> => {
    const r = await runCli(['log', 'serve', '--data-dir', dir, '--json']);
    assert.equal(r.code, 3, `exit 3 for ${code}: ${r.stdout} ${r.stderr}`);
    const doc = JSON.parse(r.stdout) as { ok: boolean; err_type: string; message: string };
    assert.equal(doc.err_type, code, r.stdout);
    return doc.message;
  };

  it('an older store (store_behind) or a store of another history at the published size (log_forked)', async () => {
    const dir = await makeLog('behind');
    let log = await serve(dir);
    await addEntry(log.url, testEntry(alice, 'one'));
    await log.stop('SIGTERM');
    const atOne = join(root, 'behind-at-1');
    cpSync(dir, atOne, { recursive: true }); // a copied data directory, size 1
    log = await serve(dir);
    for (const t of ['two', 'three']) await addEntry(log.url, testEntry(alice, t));
    await log.stop('SIGTERM');
    const published = publicFiles(dir);

    // the store copied at size 1, put back under public/ of size 3
    const keep = join(root, 'behind-store-3');
    cpSync(dir, keep, { recursive: true });
    copyStore(atOne, dir);
    const message = await refusedAtStart(dir, 'store_behind');
    assert.match(message, /size 1\b.*size 3 root/);
    assert.deepEqual(publicFiles(dir), published, 'no file under public/ changed');

    // the copy grown on its own to size 3: another root for the published size
    const other = await serve(atOne);
    await Promise.all(['other two', 'other three'].map((t) => addEntry(other.url, testEntry(alice, t))));
    await other.stop('SIGTERM');
    copyStore(atOne, dir);
    const forked = await refusedAtStart(dir, 'log_forked');
    assert.match(forked, /size 3 root .* size 3 root /);
    assert.deepEqual(publicFiles(dir), published, 'no file under public/ changed');

    // the right store back: it serves again, with the same tree
    copyStore(keep, dir);
    log = await serve(dir);
    assert.equal((await addEntry(log.url, testEntry(alice, 'four'))).index, 3);
    await log.stop('SIGTERM');
  });

  it('a tile path holding other bytes: the add is refused, the sequencer stops (exit 3, tile_invalid), the file is kept', async () => {
    const dir = await makeLog('tiles');
    const log = await serve(dir);
    await addEntry(log.url, testEntry(alice, 'one'));
    // what the next batch of one entry writes: tile/0/000.p/2, planted with other bytes
    const planted = join(dir, 'public', 'tile', '0', '000.p', '2');
    const junk = Buffer.alloc(64, 7);
    writeFileSync(planted, junk);
    const refused = await addEntry(log.url, testEntry(alice, 'two')).then(
      () => 'accepted',
      (err: { code?: string }) => err.code,
    );
    assert.equal(refused, 'log_halted');
    const exit = await log.exited;
    assert.equal(exit.code, 3, exit.stderr);
    assert.match(exit.stderr, /tile_invalid/);
    assert.ok(readFileSync(planted).equals(junk), 'the tile file was not replaced');
    assert.equal(Number(readFileSync(join(dir, 'public', 'checkpoint'), 'utf8').split('\n')[1]), 1, 'no checkpoint of size 2 published');
  });

  it('the blob store: a tile is create-only (same bytes fine, other bytes tile_invalid), the checkpoint is replaced', async () => {
    const dir = join(trackedTempDir('lifeboat-log-blobs-'), 'public');
    const blobs = directoryBlobs(dir);
    const a = new Uint8Array(32).fill(1);
    await blobs.put('tile/0/000.p/1', a);
    await blobs.put('tile/0/000.p/1', a.slice());
    await assert.rejects(blobs.put('tile/0/000.p/1', new Uint8Array(32).fill(2)), { code: 'tile_invalid' });
    assert.deepEqual(await blobs.get('tile/0/000.p/1'), a);
    await blobs.put('checkpoint', 'one');
    await blobs.put('checkpoint', 'two');
    assert.equal(Buffer.from((await blobs.get('checkpoint'))!).toString(), 'two');
    assert.deepEqual(readdirSync(join(dir, 'tile', '0', '000.p')), ['1'], 'no temporary file left behind');
    // what a writer killed between its temp file and the link leaves: removed at the next start, nothing else
    writeFileSync(join(dir, 'tile', '0', '000.p', '.2.0123456789ab.tmp'), 'half');
    writeFileSync(join(dir, '.checkpoint.abcdef012345.tmp'), 'half');
    writeFileSync(join(dir, '.well-known'), 'an operator file');
    assert.equal(removeTempFiles(dir), 2);
    assert.deepEqual(readdirSync(join(dir, 'tile', '0', '000.p')), ['1']);
    assert.deepEqual(readdirSync(dir).sort(), ['.well-known', 'checkpoint', 'tile']);
  });

  it('a witness that co-signed a larger tree: the log stops (store_behind, exit 3) and publishes nothing new', async () => {
    const dir = await makeLog('witnessed');
    const vkey = (JSON.parse(await ok(['log', 'key', '--data-dir', dir, '--json'])) as { verifier_key: string }).verifier_key;
    const wdir = join(root, 'w1');
    const w = JSON.parse(await ok(['log', 'witness', 'init', '--name', 'w1.lifeboat.example', '--data-dir', wdir, '--json'])) as { vkey: string };
    await ok(['log', 'witness', 'add-log', '--vkey', vkey, '--data-dir', wdir]);
    const witness = await startCli(['log', 'witness', 'serve', '--data-dir', wdir, '--listen', '127.0.0.1:0', '--log-level', 'silent', '--json']);
    running.push(witness);
    await ok(['log', 'witnesses', 'add', '--vkey', w.vkey, '--url', witness.url, '--quorum', '1', '--data-dir', dir]);
    let log = await serve(dir);
    await addEntry(log.url, testEntry(alice, 'one'));
    await log.stop('SIGTERM');
    const atOne = join(root, 'witnessed-at-1');
    cpSync(dir, atOne, { recursive: true });
    log = await serve(dir);
    for (const t of ['two', 'three']) await addEntry(log.url, testEntry(alice, t));
    await log.stop('SIGTERM');

    // the whole directory put back as it was at size 1: only the witness knows of size 3
    rmSync(dir, { recursive: true });
    cpSync(atOne, dir, { recursive: true });
    log = await serve(dir);
    const published = publicFiles(dir);
    const refused = await addEntry(log.url, testEntry(alice, 'another two')).then(
      () => 'accepted',
      (err: { code?: string }) => err.code,
    );
    assert.equal(refused, 'log_halted');
    const exit = await log.exited;
    assert.equal(exit.code, 3, exit.stderr);
    // store_behind: the witness answers with the larger size it holds (a witness before the H1 fix answered log_forked)
    assert.match(exit.stderr, /store_behind|log_forked/);
    assert.match(exit.stderr, /w1\.lifeboat\.example/);
    assert.equal(publicFiles(dir).get('public/checkpoint'), published.get('public/checkpoint'), 'public/checkpoint not replaced');
  });

  it('maps a witness refusing the checkpoint as a fork to log_forked, and one holding a larger tree to store_behind', () => {
    const base = { witness: 'w', url: 'http://w', oldSize: 1, retried: false, message: 'm' };
    assert.equal(witnessSafetyRefusal([{ ...base, result: 'refused', status: 409, errType: 'log_forked' }])?.code, 'log_forked');
    assert.equal(witnessSafetyRefusal([{ ...base, result: 'refused', status: 409, errType: 'witness_ahead' }])?.code, 'store_behind');
    assert.equal(witnessSafetyRefusal([{ ...base, result: 'unreachable', errType: 'timeout' }]), undefined);
    assert.equal(witnessSafetyRefusal([{ ...base, result: 'refused', status: 422, errType: 'consistency_proof_invalid' }]), undefined);
  });
});
