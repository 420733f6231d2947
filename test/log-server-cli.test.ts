/**
 * `lifeboat log init | key | serve | enrol | submitters | revoke | witnesses | identity new | add` as
 * real processes: a log made and served from the CLI, a submitter identity enrolled while it runs,
 * entries added from a file and from stdin with their proofs checked, revocation seen by the running
 * log, the witness configuration, and the refusals' exit codes.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openCheckpoint } from '../src/log/checkpoint.js';
import { generateWitnessKey } from '../src/log/cosignature.js';
import { parseInclusionDoc, verifyInclusionDoc } from '../src/log/inclusion.js';
import { EMPTY_ROOT, leafHash } from '../src/log/merkle.js';
import { parseVerifierKey } from '../src/log/note.js';
import { parseEntry } from '../src/log/entry.js';
import { ctEqual, utf8 } from '../src/util/bytes.js';
import { type RunningCli, runCli, startCli } from './helpers/cli.js';
import { buildGoPeer } from './helpers/go.js';
import { readWholeLog } from './helpers/logserver.js';
import { SUBMITTER_CACHE_MS } from '../src/log/server/submitters.js';
import { trackedTempDir } from './helpers/tmp.js';

const ORIGIN = 'cli.lifeboat.example/log';

describe('lifeboat log (server commands, processes)', () => {
  const root = trackedTempDir('lifeboat-log-cli-');
  const dir = join(root, 'log');
  const idFile = join(root, 'alice.json');
  let vkey: string;
  let token: string;
  let server: RunningCli;
  const log = (...args: string[]) => runCli(['log', ...args, '--data-dir', dir]);
  before(async () => {
    const r = await runCli(['log', 'init', '--origin', ORIGIN, '--data-dir', dir, '--interval', '100ms', '--max-entry-bytes', '4000', '--json']);
    assert.equal(r.code, 0, r.stderr);
    vkey = (JSON.parse(r.stdout) as { verifier_key: string }).verifier_key;
    server = await startCli(['log', 'serve', '--data-dir', dir, '--json']);
  });
  after(async () => {
    if (server && server.child.exitCode === null && server.child.signalCode === null) await server.stop('SIGKILL');
  });

  it('init makes a private data directory with the empty tree; key prints the same verifier key', async () => {
    const v = parseVerifierKey(vkey);
    assert.equal(v.name, ORIGIN);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(join(dir, 'master.key')).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'vault')).mode & 0o777, 0o600);
    const cp = openCheckpoint(readFileSync(join(dir, 'public', 'checkpoint')), v).checkpoint;
    assert.equal(cp.size, 0);
    assert.ok(ctEqual(cp.rootHash, EMPTY_ROOT));
    const k = await log('key', '--json');
    assert.deepEqual(JSON.parse(k.stdout), { origin: ORIGIN, verifier_key: vkey });
    const text = await log('key');
    assert.match(text.stdout, new RegExp(`verifier key  ${vkey.replace(/[+/]/g, (c) => `\\${c}`)}`));
    const again = await runCli(['log', 'init', '--origin', ORIGIN, '--data-dir', dir]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /\(log_exists\)/);
    const bad = await runCli(['log', 'init', '--origin', 'has space', '--data-dir', join(root, 'other')]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /\(invalid_input\)/);
    assert.equal((await runCli(['log', 'init', '--origin', 'x', '--interval', 'soon', '--data-dir', join(root, 'other')])).code, 2);
  });

  it('serve prints its url first and serves the checkpoint init published', async () => {
    const first = JSON.parse(server.stdout().split('\n')[0]!) as { url: string; verifier_key: string; tree_size: number };
    assert.equal(first.verifier_key, vkey);
    assert.equal(first.tree_size, 0);
    const res = await fetch(`${server.url}/checkpoint`);
    assert.equal(openCheckpoint(await res.text(), parseVerifierKey(vkey)).checkpoint.size, 0);
  });

  it('enrols an identity while the log runs, adds from a file and from stdin, and checks the proofs', async () => {
    const idr = await runCli(['log', 'identity', 'new', '--out', idFile, '--json']);
    assert.equal(idr.code, 0, idr.stderr);
    token = (JSON.parse(idr.stdout) as { identity: string }).identity;
    assert.match(token, /^lb1\./);
    assert.equal(statSync(idFile).mode & 0o777, 0o600);
    const add = (extra: string[], input?: string) => runCli(['log', 'add', '--log', server.url, '--log-key', vkey, '--identity', idFile, '--type', 'note/v1', ...extra], { input });
    const payload = join(root, 'payload.bin');
    writeFileSync(payload, 'hello log');
    const refused = await add(['--payload-file', payload]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /\(submitter_not_enrolled\)/);
    const e = await log('enrol', '--name', 'alice', '--identity', token, '--json');
    assert.equal(e.code, 0, e.stderr);
    const twice = await log('enrol', '--name', 'alice2', '--identity', token);
    assert.match(twice.stderr, /\(submitter_exists\)/);
    const proofFile = join(root, 'proof.json');
    const a = await add(['--payload-file', payload, '--out', proofFile]);
    assert.equal(a.code, 0, a.stderr);
    assert.match(a.stdout, /^index\s+0$/m);
    const doc = parseInclusionDoc(readFileSync(proofFile, 'utf8'));
    verifyInclusionDoc(doc, parseVerifierKey(vkey));
    assert.equal(utf8.decode(parseEntry(doc.entry!).payload), 'hello log');
    const b = await add(['--payload', '-', '--json'], 'from stdin');
    assert.equal(b.code, 0, b.stderr);
    const docB = parseInclusionDoc(b.stdout);
    assert.equal(docB.index, 1);
    verifyInclusionDoc(docB, parseVerifierKey(vkey));
    const whole = await readWholeLog(server.url, vkey);
    assert.ok(ctEqual(leafHash(whole.entries[1]!), docB.leafHash));
    const wrongKey = await add(['--payload-file', payload, '--log-key', 'other.example/log+12345678+AcubdzpHui5MEmOUCJb3HGdOaNH73/rA/DuLeN6/p8DS']);
    assert.equal(wrongKey.code, 1);
    const neither = await add([]);
    assert.equal(neither.code, 2);
    const list = await log('submitters', '--json');
    assert.deepEqual(
      (JSON.parse(list.stdout) as { name: string; identity: string; revoked_at: string | null }[]).map((s) => [s.name, s.identity, s.revoked_at]),
      [['alice', token, null]],
    );
    assert.equal((await log('revoke', '--name', 'alice')).code, 0);
    await new Promise((r) => setTimeout(r, SUBMITTER_CACHE_MS)); // a running log sees a revocation within SUBMITTER_CACHE_MS
    const after = await add(['--payload', '-'], 'after revoke');
    assert.equal(after.code, 1);
    assert.match(after.stderr, /revoked.*\(submitter_not_enrolled\)/);
    assert.match((await log('revoke', '--name', 'nobody')).stderr, /\(submitter_not_found\)/);
  });

  it("Go's note.Open verifies the served checkpoint with the verifier key init printed", async () => {
    const peer = await buildGoPeer('note_peer');
    const note = await (await fetch(`${server.url}/checkpoint`)).text();
    assert.ok(openCheckpoint(note, parseVerifierKey(vkey)).checkpoint.size >= 2);
    const r = spawnSync(peer, ['open', `log:${vkey}`], { input: note, encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    const opened = JSON.parse(r.stdout) as { text: string; sigs: { name: string }[] };
    assert.equal(opened.text, openCheckpoint(note, parseVerifierKey(vkey)).text);
    assert.deepEqual(opened.sigs.map((x) => x.name), [ORIGIN]);
  });

  it('configures witnesses in log.json', async () => {
    const w1 = generateWitnessKey('w1.example');
    const w2 = generateWitnessKey('w2.example');
    const bad = await log('witnesses', 'add', '--vkey', 'nonsense', '--url', 'http://127.0.0.1:1');
    assert.match(bad.stderr, /\(verifier_key_invalid\)/);
    assert.equal((await log('witnesses', 'add', '--vkey', w1.verifierKey, '--url', 'http://127.0.0.1:7381')).code, 0);
    const tooMany = await log('witnesses', 'add', '--vkey', w2.verifierKey, '--url', 'http://127.0.0.1:7382', '--quorum', '3');
    assert.equal(tooMany.code, 2, tooMany.stderr);
    assert.match(tooMany.stderr, /\(usage\)/);
    assert.equal((await log('witnesses', 'add', '--vkey', w2.verifierKey, '--url', 'http://127.0.0.1:7382', '--quorum', '1')).code, 0);
    assert.match((await log('witnesses', 'add', '--vkey', w2.verifierKey, '--url', 'http://127.0.0.1:7383')).stderr, /\(witness_exists\)/);
    const list = JSON.parse((await log('witnesses', 'list', '--json')).stdout) as { quorum: number; witnesses: { witness: string; url: string }[] };
    assert.equal(list.quorum, 1);
    assert.deepEqual(list.witnesses.map((w) => [w.witness, w.url]), [['w1.example', 'http://127.0.0.1:7381'], ['w2.example', 'http://127.0.0.1:7382']]);
  });

  it('an init cut off before its end leaves no log.json, and init and serve name it (log_init_incomplete)', async () => {
    const cut = join(root, 'cut');
    mkdirSync(cut, { mode: 0o700 });
    writeFileSync(join(cut, 'public'), 'not a directory'); // the last steps (public/) fail
    const first = await runCli(['log', 'init', '--origin', ORIGIN, '--data-dir', cut, '--json']);
    assert.equal(first.code, 1, first.stdout + first.stderr);
    assert.ok(existsSync(join(cut, 'vault')), 'the vault was made');
    assert.ok(!existsSync(join(cut, 'log.json')), 'log.json is written last');
    for (const args of [['init', '--origin', ORIGIN], ['serve'], ['key']]) {
      const r = await runCli(['log', ...args, '--data-dir', cut, '--json']);
      assert.equal(r.code, 1, `${args[0]}: ${r.stdout} ${r.stderr}`);
      const doc = JSON.parse(r.stdout) as { err_type: string; hint: string };
      assert.equal(doc.err_type, 'log_init_incomplete', args[0]);
      assert.match(doc.hint, /log init/);
    }
  });

  it('has --help for every command', async () => {
    for (const c of [['init'], ['key'], ['serve'], ['enrol'], ['submitters'], ['revoke'], ['witnesses', 'add'], ['witnesses', 'list'], ['identity', 'new'], ['add']]) {
      const r = await runCli(['log', ...c, '--help']);
      assert.equal(r.code, 0, c.join(' '));
      assert.match(r.stdout, /Usage: lifeboat log/);
    }
  });
});
