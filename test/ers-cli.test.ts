/**
 * `lifeboat ers …` black-box, with real key node processes: keygen (0600, fingerprint, small keys
 * refused), the node's policy (disabled, not whitelisted), backup, verify (label, tampering), then the
 * company is gone (every node directory deleted) and recover and sign run with openssl doing every
 * decryption (`--decrypt-cmd`), and with the wrong RSA key.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { type CliResult, runCli } from './helpers/cli.js';
import { ownTenantOf, serveNode, startNodeProcesses, type NodeProcess } from './helpers/keynode.js';
import { trackedTempDir } from './helpers/tmp.js';
import { verifySignature } from '../src/keynode/frost/index.js';
import { fromHex } from '../src/util/bytes.js';
import { writeKeyRefFile } from '../src/keynode/keyref.js';

function ok(r: CliResult): CliResult {
  if (r.code !== 0) throw new Error(`exited ${r.code}: ${r.stderr.trim()}`);
  return r;
}

const errType = (stdout: string): string => (JSON.parse(stdout) as { err_type: string }).err_type;
const OPENSSL = (key: string) => `openssl pkeyutl -decrypt -inkey ${key} -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256`;

describe('lifeboat ers (black box, real key nodes, openssl decryptions)', () => {
  let nodes: NodeProcess[] = [];
  after(async () => {
    await Promise.all(nodes.map((n) => n.server.stop()));
  });

  it('keygen, node policy, backup, verify, then the fleet is gone: recover and sign with openssl as the decryptor', async () => {
    const root = trackedTempDir('lifeboat-ers-');
    const ers = join(root, 'ers');
    const kg = JSON.parse(ok(await runCli(['ers', 'keygen', '--out', ers, '--json'])).stdout) as { fingerprint: string; bits: number };
    assert.match(kg.fingerprint, /^SHA256:[0-9a-f]{64}$/);
    assert.equal(kg.bits, 3072);
    assert.equal(statSync(`${ers}.key`).mode & 0o777, 0o600);
    assert.match(readFileSync(`${ers}.key`, 'utf8'), /BEGIN PRIVATE KEY/);
    const other = join(root, 'other');
    ok(await runCli(['ers', 'keygen', '--out', other]));
    // an RSA key under 3072 bits, and malformed PEM
    const small = await runCli(['ers', 'keygen', '--out', join(root, 'small'), '--bits', '2048', '--json']);
    assert.equal(small.code, 1);
    assert.equal(errType(small.stdout), 'rsa_key_too_small');
    writeFileSync(join(root, 'bad.pem'), '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n');
    const bad = await runCli(['ers', 'keygen', '--out', join(root, 'x'), '--import-public', join(root, 'bad.pem'), '--json']);
    assert.equal(errType(bad.stdout), 'invalid_pem');

    const started = await startNodeProcesses(root, 3);
    nodes = started.nodes;
    const env = { LIFEBOAT_API_KEY: started.clientToken };
    const urls = () => nodes.map((n) => n.url).join(',');
    const created = JSON.parse(ok(await runCli(['key', 'create', '--nodes', urls(), '--threshold', '2', '--curve', 'secp256k1', '--json'], { env })).stdout) as { key_id: string; group_public_key: string };
    const pkg = join(root, 'key.ers');
    const backup = (list: string, pub = `${ers}.pub`) => runCli(['ers', 'backup', '--key', created.key_id, '--nodes', list, '--ers-public', pub, '--label', 'customer 7', '--out', pkg, '--json'], { env, timeoutMs: 120_000 });

    // ERS is off by default: the node refuses and nothing is written
    const off = await backup(urls());
    assert.equal(errType(off.stdout), 'ers_disabled');
    // enable on every node, whitelist ers.pub on nodes 1 and 2 only, restart
    for (const [i, n] of nodes.entries()) {
      ok(await runCli(['node', 'config', 'set', 'ers.enabled', 'true', '--data-dir', n.dir]));
      if (i === 0) ok(await runCli(['node', 'config', 'set', 'ers.require', 'true', '--data-dir', n.dir]));
      if (i < 2) ok(await runCli(['ers', 'whitelist', 'add', '--ers-public', `${ers}.pub`, '--label', 'escrow', '--data-dir', n.dir]));
    }
    const dirs = nodes.map((n) => n.dir);
    await Promise.all(nodes.map((n) => n.server.stop()));
    nodes = await Promise.all(dirs.map((d) => serveNode(d)));
    const notListed = await backup(urls());
    assert.equal(errType(notListed.stdout), 'ers_key_not_whitelisted');
    const otherKey = await backup(nodes.slice(0, 2).map((n) => n.url).join(','), `${other}.pub`);
    assert.equal(errType(otherKey.stdout), 'ers_key_not_whitelisted');
    assert.throws(() => statSync(pkg), 'no package written by a refused backup');
    // node 1 requires a verified package before its key signs
    const sign = () => runCli(['sign', '--key', created.key_id, '--nodes', nodes.slice(0, 2).map((n) => n.url).join(','), '--message-text', 'hi', '--json'], { env });
    assert.equal(errType((await sign()).stdout), 'ers_package_required');

    const made = JSON.parse(ok(await backup(nodes.slice(0, 2).map((n) => n.url).join(','))).stdout) as { ok: boolean; parts: unknown[]; bytes: number };
    assert.equal(made.ok, true);
    assert.equal(made.parts.length, 2);
    assert.equal(statSync(pkg).mode & 0o777, 0o600);
    assert.deepEqual((made as unknown as { registered: { ok: boolean }[] }).registered.map((r) => r.ok), [true, true]);
    ok(await sign());
    // the key info and node status show the package and its RSA key
    const info = (await (await fetch(`${nodes[0]!.url}/v1/keys/${created.key_id}`, { headers: { authorization: `Bearer ${started.clientToken}` } })).json()) as { ers: { rsa_fingerprint: string; participants: number } | null };
    assert.equal(info.ers?.rsa_fingerprint, kg.fingerprint);
    assert.equal(info.ers?.participants, 2);
    const third = (await (await fetch(`${nodes[2]!.url}/v1/keys/${created.key_id}`, { headers: { authorization: `Bearer ${started.clientToken}` } })).json()) as { ers: unknown };
    assert.equal(third.ers, null, 'node 3 took no part and registered nothing');
    const status = JSON.parse(ok(await runCli(['node', 'status', '--data-dir', nodes[0]!.dir, '--json'])).stdout) as { ers: { enabled: boolean; require: boolean; keys_with_package: number; whitelist: string[] } };
    assert.deepEqual(status.ers, { enabled: true, require: true, whitelist: [kg.fingerprint], keys: 1, keys_with_package: 1, key_policies: { none: 1, off: 0, allow: 0, require: 0 }, keys_waiting_for_package: 0 });

    // --key-file: the nodes and their ids from a key reference; every node it names must make a part
    const refFile = join(root, 'key.ref');
    const writeRef = (groupKey: string, fingerprint?: string) =>
      writeKeyRefFile(refFile, { keyId: created.key_id, curve: 'secp256k1', threshold: 2, groupPublicKey: groupKey, nodes: nodes.map((n, i) => ({ url: n.url, keyId: created.key_id, ...(i === 0 && fingerprint ? { fingerprint } : {}) })) });
    const pkg2 = join(root, 'key-file.ers');
    const byRef = () => runCli(['ers', 'backup', '--key-file', refFile, '--ers-public', `${ers}.pub`, '--out', pkg2, '--json'], { env, timeoutMs: 120_000 });
    writeRef(created.group_public_key);
    assert.equal(errType((await byRef()).stdout), 'ers_key_not_whitelisted', 'node 3, named by the reference, is asked too');
    writeRef(created.group_public_key, '0000:0000:0000:0000:0000:0000:0000:0000');
    const pinned = await byRef();
    assert.equal(pinned.code, 3);
    assert.equal(errType(pinned.stdout), 'peer_identity_mismatch');
    const port3 = new URL(nodes[2]!.url).port;
    ok(await runCli(['ers', 'whitelist', 'add', '--ers-public', `${ers}.pub`, '--label', 'escrow', '--data-dir', dirs[2]!]));
    await nodes[2]!.server.stop();
    nodes[2] = await serveNode(dirs[2]!, `127.0.0.1:${port3}`);
    const otherGroup = Buffer.from(secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true)).toString('hex'); // a valid key, not this one
    writeRef(otherGroup);
    const mismatch = await byRef();
    assert.equal(mismatch.code, 3);
    assert.equal(errType(mismatch.stdout), 'key_ref_mismatch');
    assert.throws(() => statSync(pkg2), 'nothing written for a reference of another key');
    writeRef(created.group_public_key);
    const viaRef = JSON.parse(ok(await byRef()).stdout) as { parts: unknown[]; label: string };
    assert.equal(viaRef.parts.length, 3);
    assert.equal(viaRef.label, created.key_id, 'the label defaults to the reference\'s key id');

    const verify = (args: string[] = [], file = pkg) => runCli(['ers', 'verify', file, '--group-key', created.group_public_key, '--ers-public', `${ers}.pub`, '--json', ...args]);
    const good = await verify(['--label', 'customer 7']);
    assert.equal(good.code, 0, good.stderr);
    assert.equal((JSON.parse(good.stdout) as { ok: boolean }).ok, true);
    const wrongLabel = await verify(['--label', 'customer 8']);
    assert.equal(wrongLabel.code, 1);
    assert.equal((JSON.parse(wrongLabel.stdout) as { problems: { code: string }[] }).problems[0]!.code, 'ers_label_mismatch');
    const bytes = readFileSync(pkg);
    const tampered = Buffer.from(bytes);
    tampered[tampered.length - 500]! ^= 0x01; // inside the last part's last ciphertext
    writeFileSync(join(root, 'tampered.ers'), tampered);
    const t = await verify([], join(root, 'tampered.ers'));
    assert.equal(t.code, 3, 'a proof that fails is a refusal for safety');
    assert.match(t.stderr, /ers_proof_invalid/);

    // the company is gone: every node, its store and its vault
    await Promise.all(nodes.map((n) => n.server.stop()));
    nodes = [];
    for (const d of dirs) rmSync(d, { recursive: true, force: true });

    const keyFile = join(root, 'recovered.txt');
    const rec = await runCli(['ers', 'recover', pkg, '--decrypt-cmd', OPENSSL(`${ers}.key`), '--out', keyFile, '--json']);
    assert.equal(rec.code, 0, rec.stderr);
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    const forms = JSON.parse(readFileSync(keyFile, 'utf8')) as { secret_key_hex: string; wif: string; group_public_key: string };
    assert.equal(forms.group_public_key, created.group_public_key);
    assert.equal(Buffer.from(secp256k1.getPublicKey(fromHex(forms.secret_key_hex, 'k'), true)).toString('hex'), created.group_public_key);
    assert.match(forms.wif, /^[KL]/);
    assert.ok(!rec.stdout.includes(forms.secret_key_hex) && !rec.stderr.includes(forms.secret_key_hex), 'the key only in the file');

    // no terminal and no --out: the key is not written to a pipe
    const pipe = await runCli(['ers', 'recover', pkg, '--ers-private', `${ers}.key`, '--json']);
    assert.equal(errType(pipe.stdout), 'secret_needs_terminal');
    // the wrong RSA private key: refused by fingerprint; through openssl: nothing decrypts
    const wrong = await runCli(['ers', 'recover', pkg, '--ers-private', `${other}.key`, '--out', join(root, 'no.txt'), '--json']);
    assert.equal(errType(wrong.stdout), 'ers_key_mismatch');
    const wrongCmd = await runCli(['ers', 'recover', pkg, '--decrypt-cmd', OPENSSL(`${other}.key`), '--out', join(root, 'no.txt'), '--json']);
    assert.equal(errType(wrongCmd.stdout), 'decryption_failed');
    assert.throws(() => statSync(join(root, 'no.txt')));

    const signed = JSON.parse(ok(await runCli(['ers', 'sign', pkg, '--decrypt-cmd', OPENSSL(`${ers}.key`), '--message-text', 'the company is gone', '--json'])).stdout) as { signature: string };
    assert.equal(verifySignature('secp256k1', fromHex(signed.signature, 's'), new TextEncoder().encode('the company is gone'), fromHex(created.group_public_key, 'g')), true);

    // --reshare-to: another provider's three fresh nodes take the key 2-of-3 under the same group key
    const next = await startNodeProcesses(join(root, 'next'), 3);
    nodes = next.nodes;
    const reshared = await runCli(['ers', 'recover', pkg, '--ers-private', `${ers}.key`, '--reshare-to', nodes.map((n) => n.url).join(','), '--tenant', ownTenantOf(next.clientToken), '--json'], { env: { LIFEBOAT_API_KEY: next.operatorToken }, timeoutMs: 120_000 });
    assert.equal(reshared.code, 0, reshared.stderr);
    const ref = JSON.parse(reshared.stdout) as { group_public_key: string; threshold: number; nodes: { url: string; key_id: string }[] };
    assert.equal(ref.group_public_key, created.group_public_key);
    assert.equal(ref.threshold, 2);
    assert.ok(!reshared.stdout.includes(forms.secret_key_hex), 'resharing prints no key');
    const specs = [ref.nodes[1]!, ref.nodes[2]!].map((n) => `${n.url}#${n.key_id}`).join(',');
    const again = JSON.parse(ok(await runCli(['sign', '--key', ref.nodes[1]!.key_id, '--nodes', specs, '--message-text', 'new provider', '--json'], { env: { LIFEBOAT_API_KEY: next.clientToken } })).stdout) as { signature: string };
    assert.equal(verifySignature('secp256k1', fromHex(again.signature, 's'), new TextEncoder().encode('new provider'), fromHex(created.group_public_key, 'g')), true);
  });

  it('--help names the commands and the openssl decryptor', async () => {
    const r = ok(await runCli(['ers', 'recover', '--help']));
    assert.match(r.stdout, /rsa_oaep_md:sha256/);
    const top = ok(await runCli(['ers', '--help']));
    for (const c of ['keygen', 'whitelist', 'backup', 'verify', 'recover', 'sign']) assert.match(top.stdout, new RegExp(`\\b${c}\\b`));
  });
});
