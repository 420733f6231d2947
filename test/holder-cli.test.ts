/**
 * The holder CLI as real processes: init, serve (SIGKILL and restart keep what was acknowledged; a
 * release stays used), the air-gapped release, local enrol, show, audit (verify, and an edited line).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateBoxKeyPair, openSealed } from '../src/crypto/sealedbox.js';
import { isLifeboatError } from '../src/errors.js';
import { HolderClient } from '../src/holder/client.js';
import { encodePublicIdentity, generateIdentity, identityFingerprint } from '../src/identity.js';
import { createReleaseRequest, parseReleaseResponse } from '../src/recovery/release.js';
import { fromB64 } from '../src/util/bytes.js';
import { runCli, startCli } from './helpers/cli.js';
import { makeScheme, makeVault, tempDir, type TestScheme } from './helpers/holder.js';

const mode = (p: string) => statSync(p).mode & 0o777;

describe('holder CLI', () => {
  const dir = tempDir('lifeboat-holder-cli-');
  const primary = generateIdentity('primary');
  const operator = generateIdentity('operator');
  let token = '';
  let fingerprint = '';
  let scheme: TestScheme;
  const request = () => {
    const oneTime = generateBoxKeyPair();
    const req = createReleaseRequest({ signer: operator, schemeId: scheme.schemeId, holderFingerprint: fingerprint, purpose: 'reconstruct', requesterPublicKey: oneTime.publicKey });
    return { req, oneTime };
  };
  after(() => rmSync(dir, { recursive: true, force: true }));

  before(async () => {
    const r = await runCli(['holder', 'init', '--data-dir', dir, '--primary', encodePublicIdentity(primary), '--operator', encodePublicIdentity(operator), '--json']);
    assert.equal(r.code, 0, r.stderr);
    ({ identity: token, fingerprint } = JSON.parse(r.stdout) as { identity: string; fingerprint: string });
    scheme = makeScheme({ primary, holderToken: token, operators: [operator] });
  });

  it('init writes a 0600 identity, prints it, and refuses to run twice', async () => {
    assert.match(token, /^lb1\./);
    assert.match(fingerprint, /^([0-9a-f]{4}:){7}[0-9a-f]{4}$/);
    assert.equal(mode(join(dir, 'identity.json')), 0o600);
    assert.equal(mode(join(dir, 'config.json')), 0o600);
    const before = readFileSync(join(dir, 'identity.json'));
    const again = await runCli(['holder', 'init', '--data-dir', dir, '--primary', encodePublicIdentity(primary), '--operator', encodePublicIdentity(operator)]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^lifeboat: error: .*initialised already \([a-z_]+\)\nlifeboat: hint: /);
    assert.deepEqual(readFileSync(join(dir, 'identity.json')), before);
  });

  it('serve keeps acknowledged uploads and used releases across SIGKILL', async () => {
    let server = await startCli(['holder', 'serve', '--data-dir', dir, '--listen', '127.0.0.1:0', '--log-level', 'silent']);
    try {
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      const client = new HolderClient({ url: server.url, signer: primary, expectedFingerprint: fingerprint });
      assert.equal((await client.identity()).fingerprint, fingerprint);
      assert.equal((await client.putShare(scheme.schemeHex, { member_index: 0, sealed_share: scheme.sealedShare, manifest: scheme.manifest })).created, true);
      const vault = makeVault(scheme, 4);
      assert.equal((await client.putVault(scheme.schemeHex, vault)).stored, true);
      const { req, oneTime } = request();
      const released = await client.release(scheme.schemeHex, req);
      assert.deepEqual(openSealed(fromB64(released.sealed_share, 's'), oneTime), scheme.payload);
      const killed = await server.stop('SIGKILL');
      assert.equal(killed.signal, 'SIGKILL');

      server = await startCli(['holder', 'serve', '--data-dir', dir, '--listen', '127.0.0.1:0', '--json', '--log-level', 'silent']);
      const again = new HolderClient({ url: server.url, signer: operator, expectedFingerprint: fingerprint });
      const list = await again.listSchemes();
      assert.deepEqual(
        list.map((s) => [s.scheme_id, s.vault_generation]),
        [[scheme.schemeHex, 4]],
      );
      assert.deepEqual((await again.getVault(scheme.schemeHex)).vault, vault);
      await assert.rejects(again.release(scheme.schemeHex, req), (e: unknown) => isLifeboatError(e, 'replayed_request') && e.status === 403);

      // the directory is locked while serve runs: a local release goes through serve's admin socket
      const reqFile = join(dir, '..', `${fingerprint.slice(0, 4)}-busy.json`);
      writeFileSync(reqFile, JSON.stringify(request().req));
      const viaServe = await runCli(['holder', 'release', '--data-dir', dir, '--request', reqFile, '--out', `${reqFile}.out`]);
      assert.equal(viaServe.code, 0, viaServe.stderr);
      assert.match(readFileSync(join(dir, 'lock'), 'utf8'), new RegExp(`^${server.child.pid}\\n`));
      rmSync(reqFile);
      rmSync(`${reqFile}.out`);
    } finally {
      const stopped = await server.stop('SIGTERM');
      assert.equal(stopped.code, 0, stopped.stderr);
    }
    assert.equal(existsSync(join(dir, 'lock')), false, 'a graceful stop releases the lock');
  });

  it('serve --trust-proxy 127.0.0.1: the audit log names the address the proxy saw, not one the client made up', async () => {
    const bad = await runCli(['holder', 'serve', '--data-dir', dir, '--listen', '127.0.0.1:0', '--trust-proxy', '10.0.0.0/40']);
    assert.equal(bad.code, 2, bad.stderr);
    const server = await startCli(['holder', 'serve', '--data-dir', dir, '--listen', '127.0.0.1:0', '--trust-proxy', '127.0.0.1', '--log-level', 'silent']);
    try {
      // As nginx's $proxy_add_x_forwarded_for on 127.0.0.1 sends it: the client's own header, then its address.
      const res = await fetch(`${server.url}/v1/schemes/${scheme.schemeHex}/release`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': '198.51.100.66, 203.0.113.5' },
        body: '{}',
      });
      assert.equal(res.status, 400);
    } finally {
      const stopped = await server.stop('SIGTERM');
      assert.equal(stopped.code, 0, stopped.stderr);
    }
    const lines = readFileSync(join(dir, 'audit.log'), 'utf8').trim().split('\n');
    const last = JSON.parse(lines[lines.length - 1]!) as { action: string; outcome: string; remote?: string };
    assert.deepEqual([last.action, last.outcome, last.remote], ['release', 'refused', '203.0.113.5']);
  });

  it('release answers a request file locally (0600), once', async () => {
    const work = tempDir('lifeboat-airgap-');
    try {
      const { req, oneTime } = request();
      writeFileSync(join(work, 'req.json'), JSON.stringify(req));
      const r = await runCli(['holder', 'release', '--data-dir', dir, '--request', join(work, 'req.json'), '--out', join(work, 'resp.json')]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /released member 1 of scheme/);
      assert.equal(mode(join(work, 'resp.json')), 0o600);
      const resp = parseReleaseResponse(JSON.parse(readFileSync(join(work, 'resp.json'), 'utf8')));
      assert.deepEqual(openSealed(fromB64(resp.sealed_share, 's'), oneTime), scheme.payload);
      const replay = await runCli(['holder', 'release', '--data-dir', dir, '--request', join(work, 'req.json'), '--out', join(work, 'resp2.json')]);
      assert.equal(replay.code, 1);
      assert.match(replay.stderr, /already/);
      assert.equal(existsSync(join(work, 'resp2.json')), false);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  it('enrol replaces the primary locally; show reports it', async () => {
    const next = generateIdentity('primary');
    const op2 = generateIdentity('operator');
    const args = ['holder', 'enrol', '--data-dir', dir, '--primary', encodePublicIdentity(next), '--add-operator', encodePublicIdentity(op2), '--remove-operator', identityFingerprint(operator), '--json'];
    const e = await runCli(args);
    assert.equal(e.code, 0, e.stderr);
    assert.deepEqual((JSON.parse(e.stdout) as { changes: unknown[] }).changes, [
      { what: 'operator added', fingerprint: identityFingerprint(op2), changed: true },
      { what: 'operator removed', fingerprint: identityFingerprint(operator), changed: true },
      { what: 'primary enrolled', fingerprint: identityFingerprint(next), changed: true },
    ]);
    const show = await runCli(['holder', 'show', '--data-dir', dir, '--json']);
    assert.equal(show.code, 0, show.stderr);
    const doc = JSON.parse(show.stdout) as { fingerprint: string; primary: { fingerprint: string }; operators: { fingerprint: string }[]; auto_unseal: boolean; schemes: { scheme_id: string; vault_generation: number }[] };
    assert.equal(doc.fingerprint, fingerprint);
    assert.deepEqual(doc.operators.map((o) => o.fingerprint), [identityFingerprint(op2)]);
    assert.equal(doc.primary.fingerprint, identityFingerprint(next));
    assert.equal(doc.auto_unseal, true);
    assert.deepEqual(doc.schemes.map((s) => [s.scheme_id, s.vault_generation]), [[scheme.schemeHex, 4]]);
  });

  it('audit prints the log, verifies the chain, and names an edited line', async () => {
    const list = await runCli(['holder', 'audit', '--data-dir', dir, '--json']);
    assert.equal(list.code, 0, list.stderr);
    const entries = JSON.parse(list.stdout) as { action: string; actor: string; outcome: string; code?: string; subject?: string }[];
    assert.ok(entries.some((x) => x.action === 'release' && x.actor === 'local' && x.outcome === 'ok' && x.subject === identityFingerprint(operator)));
    assert.ok(entries.some((x) => x.action === 'release' && x.actor === 'local' && x.code === 'replayed_request'));
    assert.ok(entries.some((x) => x.action === 'release' && x.code === 'replayed_request' && x.actor === identityFingerprint(operator)));
    const ok = await runCli(['holder', 'audit', '--data-dir', dir, '--verify']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^audit log ok: \d+ entries, head [0-9a-f]{64}\n$/);
    const path = join(dir, 'audit.log');
    const lines = readFileSync(path, 'utf8').split('\n');
    lines[2] = lines[2]!.replace('"outcome":"ok"', '"outcome":"refused"');
    writeFileSync(path, lines.join('\n'));
    const broken = await runCli(['holder', 'audit', '--data-dir', dir, '--verify']);
    assert.equal(broken.code, 3, 'a broken audit chain is evidence of tampering: a refusal for safety');
    assert.match(broken.stderr, /breaks at line 3: hash does not match .* \(audit_log_broken\)/);
    const brokenJson = await runCli(['holder', 'audit', '--data-dir', dir, '--verify', '--json']);
    assert.equal(brokenJson.code, 3);
    const doc = JSON.parse(brokenJson.stdout) as { ok: boolean; err_type: string; message: string };
    assert.deepEqual([doc.ok, doc.err_type], [false, 'audit_log_broken'], 'one document on stdout: the failure');
    assert.match(doc.message, /breaks at line 3/);
  });

  it('has --help for every command', async () => {
    const [r, top] = await Promise.all([runCli(['holder', 'serve', '--help']), runCli(['holder', '--help'])]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /--listen <host:port>/);
    assert.match(r.stdout, /--data-dir <dir>/);
    for (const c of ['init', 'serve', 'release', 'enrol', 'show', 'audit']) assert.match(top.stdout, new RegExp(`\\b${c}\\b`));
  });
});
