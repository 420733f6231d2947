/**
 * Key nodes end to end with real processes: three `lifeboat node serve` on loopback set up by the CLI
 * (`node init`, one client token made by `node apikey create` and registered on the others by
 * `node apikey import`), then `key create`, `sign`, `key export|import` and `node status` as child
 * processes, the SDK over real HTTP, and a self-recovering client after a node lost its database.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { schnorr } from '@noble/curves/secp256k1.js';
import { runCli, type RunResult } from '../src/drill/proc.js';
import { isLifeboatError } from '../src/errors.js';
import { KeyNodeClient } from '../src/keynode/client.js';
import type { KeyShareExport } from '../src/keynode/export.js';
import { type FrostCurve, identifierOf, verifySignature } from '../src/keynode/frost/index.js';
import { createKey, type KeyRef, saveExports, sign, signWithRecovery } from '../src/keynode/sdk.js';
import { newKeyId } from '../src/keynode/service.js';
import { fromHex, utf8 } from '../src/util/bytes.js';
import { type NodeProcess, ok, registerTokenInDir, serveNode, startNodeProcesses, tempDir } from './helpers/keynode.js';

interface World {
  root: string;
  nodes: NodeProcess[];
  clientToken: string;
  operatorToken: string;
}
const w: World = { root: '', nodes: [], clientToken: '', operatorToken: '' };

const urls = (idx = [0, 1, 2]) => idx.map((i) => w.nodes[i]!.url).join(',');
const clients = (token = w.clientToken) => w.nodes.map((n) => new KeyNodeClient({ url: n.url, apiKey: token }));
const cli = (args: string[], env: NodeJS.ProcessEnv = { LIFEBOAT_API_KEY: w.clientToken }) => runCli(args, { env, timeoutMs: 60_000 });

/** A failed command in the CLI's voice: exit 1, `lifeboat: error: …` on stderr, nothing on stdout. */
function failsWith(r: RunResult, pattern: RegExp): void {
  assert.equal(r.code, 1, `expected exit 1, got ${r.code}: ${r.stdout}${r.stderr}`);
  assert.match(r.stderr, /^lifeboat: error: /m);
  assert.match(r.stderr, pattern);
  assert.equal(r.stdout, '');
}

function verifies(curve: FrostCurve, sig: Uint8Array, message: Uint8Array, groupKeyHex: string): boolean {
  const pk = fromHex(groupKeyHex, 'group key');
  if (curve === 'ed25519') return ed25519.verify(sig, message, pk, { zip215: false });
  if (curve === 'bip340') return schnorr.verify(sig, message, pk);
  // secp256k1: RFC 9591 section 6.5 verification (z*G == R + c*PK), the suite's own; no other standard verifier exists.
  return verifySignature(curve, sig, message, pk);
}

describe('key nodes end to end (real processes)', { timeout: 180_000 }, () => {
  before(async () => {
    w.root = tempDir('lb-keynode-e2e-');
    Object.assign(w, await startNodeProcesses(w.root, 3));
  });

  after(async () => {
    await Promise.all(w.nodes.map((n) => n.server.stop()));
    rmSync(w.root, { recursive: true, force: true });
  });

  it('the CLI creates keys by DKG and signs; plain verifiers accept the hex signatures', async () => {
    const created = await Promise.all((['ed25519', 'bip340'] as const).map((curve) => cli(['key', 'create', '--nodes', urls(), '--threshold', '2', '--curve', curve, '--json'])));
    const keys = created.map((r) => JSON.parse(ok(r, 'key create').stdout) as { key_id: string; curve: FrostCurve; threshold: number; group_public_key: string });
    assert.deepEqual(keys.map((k) => [k.curve, k.threshold]), [['ed25519', 2], ['bip340', 2]]);
    const [ed, bip] = keys as [(typeof keys)[0], (typeof keys)[0]];
    const signed = await Promise.all([
      cli(['sign', '--key', ed.key_id, '--nodes', urls([0, 1]), '--message-text', 'hi']),
      cli(['sign', '--key', bip.key_id, '--nodes', urls([2, 0]), '--message', '00ff10', '--json']),
    ]);
    const edSig = ok(signed[0]!, 'sign').stdout.trim();
    assert.match(edSig, /^[0-9a-f]{128}$/);
    assert.ok(ed25519.verify(fromHex(edSig, 'sig'), utf8.encode('hi'), fromHex(ed.group_public_key, 'pk'), { zip215: false }));
    const bipOut = JSON.parse(ok(signed[1]!, 'sign --json').stdout) as { key_id: string; signature: string; group_public_key: string };
    assert.equal(bipOut.group_public_key, bip.group_public_key);
    assert.ok(schnorr.verify(fromHex(bipOut.signature, 'sig'), fromHex('00ff10', 'm'), fromHex(bip.group_public_key, 'pk')));
    // Every node derived the same group key for the CLI's key.
    const infos = await Promise.all(clients().map((c) => c.key(ed.key_id)));
    assert.deepEqual(new Set(infos.map((i) => i.group_public_key)), new Set([ed.group_public_key]));
  });

  it('the SDK over HTTP: 2-of-3 on every curve, every pair signs, one group key on every node', async () => {
    const ids = await Promise.all(clients().map((c) => c.identity()));
    assert.deepEqual(ids.map((i) => i.fingerprint), w.nodes.map((n) => n.fingerprint), 'the nodes `node init` made are the ones serving');
    for (const curve of ['ed25519', 'secp256k1', 'bip340'] as const) {
      const key = await createKey(clients(), { threshold: 2, curve });
      const infos = await Promise.all(clients().map((c, i) => c.key(key.nodes[i]!.keyId)));
      infos.forEach((info, i) => {
        assert.equal(info.group_public_key, key.groupPublicKey);
        assert.equal(info.identifier, identifierOf(curve, i + 1));
      });
      const message = utf8.encode(`over loopback, ${curve}`);
      for (const signers of [[0, 1], [0, 2], [1, 2]]) assert.ok(verifies(curve, await sign(key, clients(), message, { signers }), message, key.groupPublicKey), `${curve} ${signers.join(',')}`);
    }
    await assert.rejects(clients(`lbk_${'0'.repeat(16)}_${'A'.repeat(43)}`)[0]!.key(newKeyId()), (err) => isLifeboatError(err, 'unauthorized') && err.status === 401);
    await assert.rejects(clients(w.operatorToken)[0]!.commitments(newKeyId()), (err) => isLifeboatError(err, 'wrong_role') && err.status === 403);
  });

  it('the CLI exports (0600 file) and imports under a new key id; the imported share signs; node status counts it', async () => {
    const key = await createKey(clients(), { threshold: 2, curve: 'secp256k1' });
    const keyId = key.nodes[0]!.keyId;
    const file = join(w.root, 'export.json');
    const exported = JSON.parse(ok(await cli(['key', 'export', '--node', w.nodes[0]!.url, '--key', keyId, '--out', file, '--json']), 'key export').stdout) as { export_type: string; file: string };
    assert.equal(exported.export_type, 'encrypted');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const exp = JSON.parse(readFileSync(file, 'utf8')) as KeyShareExport;
    assert.equal(exp.key_id, keyId);
    const before = (await clients(w.operatorToken)[0]!.status()).keys as number;
    const imported = JSON.parse(ok(await cli(['key', 'import', '--node', w.nodes[0]!.url, '--in', file, '--json']), 'key import').stdout) as { key_id: string; imported_from: string; group_public_key: string };
    assert.notEqual(imported.key_id, keyId);
    assert.equal(imported.imported_from, keyId);
    assert.equal(imported.group_public_key, key.groupPublicKey);
    const ref: KeyRef = { ...key, nodes: [{ url: w.nodes[0]!.url, keyId: imported.key_id }, ...key.nodes.slice(1)] };
    const message = utf8.encode('imported');
    assert.ok(verifies('secp256k1', await sign(ref, clients(), message), message, key.groupPublicKey));
    // The CLI signs with it too: URL#KEY_ID names the node's own id for the key.
    const viaCli = JSON.parse(ok(await cli(['sign', '--key', keyId, '--nodes', `${w.nodes[0]!.url}#${imported.key_id},${w.nodes[2]!.url}`, '--message-text', 'imported', '--json']), 'sign').stdout) as { signature: string };
    assert.ok(verifies('secp256k1', fromHex(viaCli.signature, 'sig'), message, key.groupPublicKey));
    const status = JSON.parse(ok(await cli(['node', 'status', '--data-dir', w.nodes[0]!.dir, '--json']), 'node status').stdout) as { keys: number; unused_nonces: number };
    assert.equal(status.keys, before + 1);
    assert.equal(status.keys, (await clients(w.operatorToken)[0]!.status()).keys);
  });

  it('errors speak in the CLI voice: no API key, an unknown key, a refused export type; exit 1', async () => {
    const noKey = { LIFEBOAT_API_KEY: '' };
    const results = await Promise.all([
      cli(['sign', '--key', newKeyId(), '--nodes', urls([0, 1]), '--message-text', 'x'], noKey),
      cli(['sign', '--key', newKeyId(), '--nodes', urls([0, 1]), '--message-text', 'x']),
      cli(['key', 'export', '--node', w.nodes[1]!.url, '--key', newKeyId(), '--out', join(w.root, 'never.json'), '--type', 'plaintext']),
    ]);
    failsWith(results[0]!, /lifeboat: error: no API key \(api_key_required\)\nlifeboat: hint: set LIFEBOAT_API_KEY/);
    failsWith(results[1]!, /does not exist on this node \(key_id_not_exists\)\nlifeboat: hint: if this node lost its database, import the saved export/);
    failsWith(results[2]!, /a client may export only the encrypted form/);
    assert.equal(existsSync(join(w.root, 'never.json')), false);
    for (const r of results) assert.doesNotMatch(r.stderr, /lbk_|at .*\.ts:\d+/, 'no token, no stack trace');
  });

  it('a self-recovering client: the node lost its database, sign fails, signWithRecovery imports the saved export and signs under the same key', async () => {
    const key = await createKey(clients(), { threshold: 2, curve: 'ed25519' });
    const saved = await saveExports(key, clients());
    const message = utf8.encode('after the disk died');
    assert.ok(verifies('ed25519', await sign(key, clients(), message, { signers: [0, 1] }), message, key.groupPublicKey));

    // Node 2 loses its store (the vault, and so its export key, survives) and comes back on the same address, empty.
    const lost = w.nodes[1]!;
    await lost.server.stop();
    for (const suffix of ['', '-wal', '-shm']) rmSync(join(lost.dir, `store.sqlite${suffix}`), { force: true });
    await registerTokenInDir(lost.dir, w.clientToken, 'client');
    w.nodes[1] = await serveNode(lost.dir, new URL(lost.url).host, lost.fingerprint);
    assert.equal(w.nodes[1].url, lost.url);

    await assert.rejects(sign(key, clients(), message, { signers: [0, 1] }), (err) => isLifeboatError(err, 'key_id_not_exists') && err.status === 404);
    const recovered: string[] = [];
    const sig = await signWithRecovery(key, clients(), message, saved, { signers: [0, 1], onRecover: (url) => recovered.push(url) });
    assert.ok(verifies('ed25519', sig, message, key.groupPublicKey));
    assert.deepEqual(recovered, [lost.url]);
    assert.equal((await clients()[1]!.key(key.nodes[1]!.keyId)).group_public_key, key.groupPublicKey);
    for (const signers of [[1, 2], [0, 1]]) assert.ok(verifies('ed25519', await sign(key, clients(), message, { signers }), message, key.groupPublicKey));
  });
});
