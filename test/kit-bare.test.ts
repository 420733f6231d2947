/**
 * The recovery kit on a bare machine (docs/kit.md): built once for this file (`scripts/build-kit.mjs
 * --out`, the SEA and the .mjs), copied alone into an empty directory and run there with `env -i`,
 * HOME a fresh directory, no node_modules anywhere above it, in a network namespace with no interface
 * up (`unshare -n`). There it rebuilds a vault a real `recovery init` made (real holder processes)
 * from one holder's air-gapped response and the typed offline share, checks its own release signature,
 * opens an emergency recovery package and recovers two key nodes from a log mirror, which the full
 * CLI's `node restore --in` loads and which then sign together. Prints the kit's size and start-up.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { type RunningServer, runCli, type RunResult, startServer } from '../src/drill/proc.js';
import { encodePublicIdentity } from '../src/identity.js';
import { encodeFrostPublic, frostGroupPublicKey } from '../src/keynode/frost/index.js';
import { encodePackage } from '../src/ers/format.js';
import { provePart } from '../src/ers/proof.js';
import { generateErsKeyPair } from '../src/ers/rsa.js';
import { generateOperatorMnemonic } from '../src/keyshare/mnemonic.js';
import { KEYSHARE_RECORD_TYPE } from '../src/keyshare/record.js';
import { sealBackup } from '../src/keyshare/seal.js';
import { createEntry } from '../src/log/entry.js';
import { readManifestFile } from '../src/recovery/sources.js';
import { primaryPaths, storeMasterKey } from '../src/primary/datadir.js';
import { createVault } from '../src/vault/format.js';
import { buildProgram } from '../src/cli/main.js';
import { LEFT_OUT } from '../src/kit/commands.js';
import { REPO_ROOT, tracked } from './helpers/cli.js';
import { dealtKey, nodeIdentity } from './helpers/keyshare.js';
import { fixtureKeys, LogFixture } from './helpers/log-fixture.js';
import { serveNode, type NodeProcess } from './helpers/keynode.js';
import { qrToPng, shareQrMatrix } from '../src/recovery/qr-code.js';
import { trackedTempDir } from './helpers/tmp.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

const k: { build: string; bare: string; home: string; carried: string } = { build: '', bare: '', home: '', carried: '' };

/** Runs a command to its end, tracked (killed with this file's process). */
function run(cmd: string, args: string[], opts: { cwd?: string; input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  const child = tracked(spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] }));
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // A command that exits without reading its stdin (`--version`) closes the pipe: EPIPE, not a failure.
  child.stdin.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
  child.stdin.end(opts.input ?? '');
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** `lifeboat-kit ARGS` in the bare directory: no network, an empty environment but HOME, no PATH. */
function kit(args: string[], input?: string, exe = './lifeboat-kit'): Promise<Run> {
  return run('unshare', ['-n', 'env', '-i', `HOME=${k.home}`, exe, ...args], { cwd: k.bare, input, env: {} });
}

function ok<T extends Run | RunResult>(r: T, what: string): T {
  assert.equal(r.code, 0, `${what} exited ${r.code}: ${r.stderr}`);
  return r;
}

function refused(r: Run, errType: string, exitCode: number): void {
  assert.equal(r.code, exitCode, `expected exit ${exitCode}, got ${r.code}: ${r.stderr}`);
  assert.match(r.stderr, new RegExp(`^lifeboat: error: .* \\(${errType}\\)$`, 'm'));
}

const cli = (args: string[], opts: { input?: string; secretFd?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> => runCli(args, { ...opts, timeoutMs: 60_000 });
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe('the recovery kit on a bare machine', { timeout: 300_000 }, () => {
  before(async () => {
    assert.equal((await run('unshare', ['-n', 'true'])).code, 0, 'unshare -n must work here (root, util-linux)');
    k.build = trackedTempDir('lb-kit-build-');
    ok(await run(process.execPath, ['scripts/build-kit.mjs', '--out', k.build], { cwd: REPO_ROOT }), 'build-kit');
    k.bare = trackedTempDir('lb-kit-bare-');
    k.home = trackedTempDir('lb-kit-home-');
    k.carried = join(k.bare, 'carried');
    mkdirSync(k.carried);
    for (const f of ['lifeboat-kit', 'lifeboat-kit.mjs', 'lifeboat-kit.sha256']) copyFileSync(join(k.build, f), join(k.bare, f));
    assert.ok(!existsSync(join(k.bare, 'node_modules')) && !k.bare.startsWith(REPO_ROOT), 'no node_modules reachable');
    const floor: number[] = [];
    const version: number[] = [];
    for (let i = 0; i < 7; i++) {
      let t = performance.now();
      ok(await run(process.execPath, ['-e', '0']), 'node -e 0');
      floor.push(performance.now() - t);
      t = performance.now();
      ok(await run(join(k.bare, 'lifeboat-kit'), ['--version'], { env: {} }), 'kit --version');
      version.push(performance.now() - t);
    }
    const size = statSync(join(k.bare, 'lifeboat-kit')).size;
    console.log(`recovery kit: lifeboat-kit ${(size / 1e6).toFixed(1)} MB, lifeboat-kit.mjs ${(statSync(join(k.bare, 'lifeboat-kit.mjs')).size / 1e6).toFixed(2)} MB; start-up (--version, p50 of 7) ${median(version).toFixed(0)} ms beside node -e 0 ${median(floor).toFixed(0)} ms`);
  });

  it('rebuilds a real vault from one air-gapped holder response and the paper share\'s QR code, checks its own signature, and says what it leaves out', async () => {
    const dir = trackedTempDir('lb-kit-primary-');
    const primaryDir = join(dir, 'primary');
    const operatorKey = join(dir, 'operator.json');
    const primary = JSON.parse(ok(await cli(['primary', 'init', '--data-dir', primaryDir, '--json']), 'primary init').stdout) as { identity: string; fingerprint: string };
    const op = JSON.parse(ok(await cli(['operator', 'keygen', '--out', operatorKey, '--json']), 'operator keygen').stdout) as { identity: string };
    const holders: RunningServer[] = [];
    const specs: string[] = [];
    try {
      for (const name of ['a', 'b']) {
        const hdir = join(dir, `holder-${name}`);
        const h = JSON.parse(ok(await cli(['holder', 'init', '--data-dir', hdir, '--primary', primary.identity, '--operator', op.identity, '--json']), 'holder init').stdout) as { fingerprint: string };
        const s = await startServer(['holder', 'serve', '--data-dir', hdir, '--listen', '127.0.0.1:0', '--json']);
        holders.push(s);
        specs.push(`${s.url}#${h.fingerprint}`);
      }
      const init = ok(await cli(['recovery', 'init', '--data-dir', primaryDir, '--holder', specs[0]!, '--holder', specs[1]!, '--secret-fd', '3', '--json'], { secretFd: true }), 'recovery init');
      const offline = init.secret.trim();
      const secrets = new Map([['backup-key', randomBytes(24).toString('base64')], ['db/password', randomBytes(24).toString('base64')]]);
      for (const [name, value] of secrets) ok(await cli(['vault', 'put', name, '--data-dir', primaryDir], { input: value }), 'vault put');
      // The release: a key in the vault signs the kit's hashes (written beside the kit in the bare directory).
      const keygen = JSON.parse(ok(await cli(['kit', 'keygen', '--data-dir', primaryDir, '--json']), 'kit keygen').stdout) as { public_key: string };
      ok(await cli(['kit', 'sign', '--dir', k.bare, '--data-dir', primaryDir]), 'kit sign');
      const manifest = readManifestFile(join(primaryDir, 'recovery-manifest.json'));
      // What is carried to the new machine: the operator key, the manifest and a vault copy kept with the paper.
      for (const f of ['recovery-manifest.json', 'vault.lbv']) copyFileSync(join(primaryDir, f), join(k.carried, f));
      copyFileSync(operatorKey, join(k.carried, 'operator.json'));

      const self = JSON.parse(ok(await kit(['kit', 'verify', '--public-key', keygen.public_key, '--json']), 'kit verify').stdout) as { ok: boolean; name: string };
      assert.deepEqual([self.ok, self.name], [true, 'lifeboat-kit']);
      ok(await kit(['kit', 'verify', 'lifeboat-kit.mjs', '--public-key', keygen.public_key]), 'kit verify .mjs');

      const fpB = specs[1]!.split('#')[1]!;
      await holders[1]!.stop();
      ok(await kit(['recovery', 'request', '--data-dir', 'new-primary', '--operator-key', 'carried/operator.json', '--scheme', manifest.scheme_id, '--holder-fingerprint', fpB, '--out', 'carried/req.json']), 'kit recovery request');
      copyFileSync(join(k.carried, 'req.json'), join(dir, 'req.json'));
      ok(await cli(['holder', 'release', '--data-dir', join(dir, 'holder-b'), '--request', join(dir, 'req.json'), '--out', join(dir, 'resp.json')]), 'holder release');
      copyFileSync(join(dir, 'resp.json'), join(k.carried, 'resp.json'));

      // The offline share checked against the manifest, without any holder.
      ok(await kit(['recovery', 'verify', '--no-holders', '--offline-shares', '1', '--manifest', 'carried/recovery-manifest.json', '--data-dir', 'new-primary'], `${offline}\n`), 'kit recovery verify');
      // Holder a still listens on loopback, but not in this namespace: nothing is asked of it.
      // The paper share from a scan of the sheet's QR code (the PNG `recovery init --qr-png-fd` writes,
      // from the same module), nothing typed; a typed share would do as well (`--typed-shares 1`).
      writeFileSync(join(k.carried, 'share.png'), qrToPng(shareQrMatrix(offline)));
      const rebuilt = JSON.parse(
        ok(
          await kit(['recovery', 'reconstruct', '--data-dir', 'new-primary', '--operator-key', 'carried/operator.json', '--manifest', 'carried/recovery-manifest.json', '--vault', 'carried/vault.lbv', '--release-response', 'carried/resp.json', '--share-qr', 'carried/share.png', '--primary-fingerprint', primary.fingerprint, '--json']),
          'kit recovery reconstruct',
        ).stdout,
      ) as { entries: number; scheme_id: string };
      assert.deepEqual([rebuilt.entries, rebuilt.scheme_id], [secrets.size + 1, manifest.scheme_id]);
      for (const f of ['vault.lbv', 'master.key', 'recovery-manifest.json']) assert.ok(existsSync(join(k.bare, 'new-primary', f)), f);
      const listed = JSON.parse(ok(await kit(['vault', 'list', '--data-dir', 'new-primary', '--json']), 'kit vault list').stdout) as { entries: { name: string }[] };
      assert.deepEqual(listed.entries.map((e) => e.name).sort(), [...secrets.keys(), 'kit/release-key'].sort());
      for (const [name, value] of secrets) assert.equal(ok(await kit(['vault', 'get', name, '--data-dir', 'new-primary', '--stdout']), 'kit vault get').stdout, value);

      refused(await kit(['node', 'serve', '--data-dir', 'x']), 'not_in_kit', 1);
      refused(await kit(['recovery', 'init', '--holder', specs[0]!]), 'not_in_kit', 1);
      assert.match((await kit(['vault', 'put', 'x'])).stderr, /run `lifeboat vault put` with the full CLI/);
    } finally {
      await Promise.all(holders.map((h) => h.stop()));
    }
  });

  it('refuses, exit 3, a kit signed by another key, an altered kit and an altered hash file (the full CLI and the kit alike)', async () => {
    const dir = trackedTempDir('lb-kit-sig-');
    const primaryDir = join(dir, 'p');
    ok(await cli(['primary', 'init', '--data-dir', primaryDir]), 'primary init');
    // A release key in a vault of its own: an unsealed primary's vault is all `kit keygen` needs.
    const master = { schemeId: randomBytes(16), key: randomBytes(32) };
    const paths = primaryPaths(primaryDir);
    writeFileSync(paths.vault, createVault(master.key, master.schemeId), { mode: 0o600 });
    storeMasterKey(paths, master);
    const key = (JSON.parse(ok(await cli(['kit', 'keygen', '--data-dir', primaryDir, '--json']), 'keygen').stdout) as { public_key: string }).public_key;
    const other = (JSON.parse(ok(await cli(['kit', 'keygen', '--name', 'kit/other', '--data-dir', primaryDir, '--json']), 'keygen 2').stdout) as { public_key: string }).public_key;
    const rel = join(dir, 'rel');
    mkdirSync(rel);
    for (const f of ['lifeboat-kit', 'lifeboat-kit.mjs']) copyFileSync(join(k.build, f), join(rel, f));
    ok(await cli(['kit', 'sign', '--dir', rel, '--data-dir', primaryDir]), 'kit sign');
    const verify = (file: string, pk = key) => cli(['kit', 'verify', join(rel, file), '--public-key', pk]);
    ok(await verify('lifeboat-kit.mjs'), 'verify');
    refused(await verify('lifeboat-kit.mjs', other), 'kit_key_mismatch', 3);
    const mjs = readFileSync(join(rel, 'lifeboat-kit.mjs'));
    writeFileSync(join(rel, 'lifeboat-kit.mjs'), Buffer.concat([mjs, Buffer.from('\n// one more line\n')]));
    refused(await verify('lifeboat-kit.mjs'), 'kit_hash_mismatch', 3);
    writeFileSync(join(rel, 'lifeboat-kit.mjs'), mjs);
    const hashes = readFileSync(join(rel, 'lifeboat-kit.sha256'), 'utf8');
    const forged = `${'0'.repeat(64)}${hashes.slice(64)}`;
    writeFileSync(join(rel, 'lifeboat-kit.sha256'), forged);
    refused(await verify('lifeboat-kit'), 'kit_signature_invalid', 3);
    // the kit itself refuses the same altered hash file
    copyFileSync(join(rel, 'lifeboat-kit.sha256'), join(k.bare, 'forged.sha256'));
    copyFileSync(join(rel, 'lifeboat-kit.sha256.sig'), join(k.bare, 'forged.sha256.sig'));
    refused(await kit(['kit', 'verify', '--public-key', key, '--sha256', 'forged.sha256']), 'kit_signature_invalid', 3);
  });

  it('opens an emergency recovery package and recovers two nodes from a log mirror, bare; the full CLI loads their snapshots and they sign', async () => {
    const dir = trackedTempDir('lb-kit-keys-');
    // An emergency recovery package of a dealt 2-of-3 ed25519 key, and its RSA key pair.
    const rsa = generateErsKeyPair(3072);
    writeFileSync(join(k.carried, 'ers.key'), rsa.privatePem, { mode: 0o600 });
    writeFileSync(join(k.carried, 'ers.pub'), rsa.publicPem);
    const shares = dealtKey('ed25519', 'key_a');
    const pub = shares[0]!.public;
    const groupKey = Buffer.from(frostGroupPublicKey('ed25519', pub)).toString('hex');
    const parts = shares.slice(0, 2).map((s) => provePart({ curve: 'ed25519', label: 'kit', groupKey: pub.commitments[0]!, identifier: s.identifier, share: s.share, verifyingShare: pub.verifyingShares[s.identifier]!, rsa: rsa.public }));
    writeFileSync(join(k.carried, 'key_a.ers'), encodePackage({ curve: 'ed25519', label: 'kit', spki: rsa.public.spki, publicPackage: encodeFrostPublic('ed25519', pub), parts }));
    ok(await kit(['ers', 'verify', 'carried/key_a.ers', '--group-key', groupKey, '--ers-public', 'carried/ers.pub']), 'kit ers verify');
    ok(await kit(['ers', 'recover', 'carried/key_a.ers', '--ers-private', 'carried/ers.key', '--out', 'carried/key_a.json', '--json']), 'kit ers recover');
    assert.equal((JSON.parse(readFileSync(join(k.carried, 'key_a.json'), 'utf8')) as { group_public_key: string }).group_public_key, groupKey);
    const sig = ok(await kit(['ers', 'sign', 'carried/key_a.ers', '--ers-private', 'carried/ers.key', '--message-text', 'from the kit']), 'kit ers sign').stdout.trim();
    assert.ok(ed25519.verify(Buffer.from(sig, 'hex'), Buffer.from('from the kit'), Buffer.from(groupKey, 'hex')), 'the recovered key signs for the group key');

    // A log mirror holding two nodes' records of that key (and other submitters' entries).
    const words = generateOperatorMnemonic();
    const nodes = [nodeIdentity(), nodeIdentity()];
    const log = new LogFixture(join(k.carried, 'log'), fixtureKeys({ witnesses: 1, submitters: 2 }));
    await log.append(40);
    await log.append(await Promise.all(nodes.map(async (node, i) => createEntry({ recordType: KEYSHARE_RECORD_TYPE, payload: await sealBackup({ key: shares[i]!, tenant: 'acme', epoch: 1, node }, { mode: 'passphrase', mnemonic: words }) }, node))));
    const served: NodeProcess[] = [];
    try {
      for (const [i, node] of nodes.entries()) {
        const r = JSON.parse(
          ok(await kit(['keyshare', 'recover', '--from-dir', 'carried/log', '--log-key', log.keys.logKey, '--witness', log.keys.witnesses[0]!.vkey, '--node-identity', encodePublicIdentity(node), '--data-dir', `node-${i + 1}`, '--mnemonic-fd', '0', '--json'], `${words.phrase}\n`), 'kit keyshare recover').stdout,
        ) as { snapshot: string; nonce_epoch: number | null; keys: { key_id: string }[] };
        assert.deepEqual([r.snapshot, r.nonce_epoch, r.keys.map((x) => x.key_id)], [join(k.bare, `node-${i + 1}`, 'restore-snapshot.lbnb'), null, ['key_a']]);
        assert.ok(!existsSync(join(k.bare, `node-${i + 1}`, 'store.sqlite')), 'the kit writes no database');
      }
      // Back where the full CLI runs: load each snapshot into the node's store, a client key, serve.
      const nodeDirs = nodes.map((_, i) => join(dir, `node-${i + 1}`));
      for (const [i, d] of nodeDirs.entries()) {
        ok(await run('cp', ['-a', join(k.bare, `node-${i + 1}`), d]), 'carry the node back');
        const restored = JSON.parse(ok(await cli(['node', 'restore', '--in', join(d, 'restore-snapshot.lbnb'), '--data-dir', d, '--json']), 'node restore --in').stdout) as { keys: number };
        assert.equal(restored.keys, 1);
      }
      const token = ok(await cli(['node', 'apikey', 'create', '--role', 'client', '--tenant', 'acme', '--data-dir', nodeDirs[0]!, '--secret-fd', '3'], { secretFd: true }), 'apikey create').secret.trim();
      ok(await cli(['node', 'apikey', 'import', '--role', 'client', '--tenant', 'acme', '--data-dir', nodeDirs[1]!], { input: `${token}\n` }), 'apikey import');
      for (const d of nodeDirs) served.push(await serveNode(d));
      const signed = ok(await cli(['sign', '--key', 'key_a', '--nodes', served.map((n) => n.url).join(','), '--message-text', 'after the worst day'], { env: { ...process.env, LIFEBOAT_API_KEY: token } }), 'sign').stdout.trim();
      assert.ok(ed25519.verify(Buffer.from(signed, 'hex'), Buffer.from('after the worst day'), Buffer.from(groupKey, 'hex')), 'the restored nodes sign for the group key');
    } finally {
      await Promise.all(served.map((n) => n.server.stop()));
    }
  });

  it('the kit leaves out exactly the full CLI\'s other commands, each refused by name', async () => {
    const full = await buildProgram();
    const offered: Record<string, string[]> = { recovery: ['reconstruct', 'request', 'verify'], vault: ['list', 'get'], ers: ['verify', 'recover', 'sign'], keyshare: ['recover'], kit: ['verify'] };
    const fullTop = full.commands.map((c) => c.name()).sort();
    assert.deepEqual(fullTop, [...LEFT_OUT.groups, ...Object.keys(offered)].sort());
    for (const [group, names] of Object.entries(offered)) {
      const subs = full.commands.find((c) => c.name() === group)!.commands.map((c) => c.name()).sort();
      assert.deepEqual(subs, [...names, ...LEFT_OUT.commands[group as keyof typeof LEFT_OUT.commands]].sort(), group);
    }
    const help = ok(await kit(['--help']), 'kit --help').stdout;
    for (const group of Object.keys(offered)) assert.match(help, new RegExp(`^  ${group} `, 'm'));
    assert.doesNotMatch(help, /^ {2}(node|holder|drill) /m);
  });
});
