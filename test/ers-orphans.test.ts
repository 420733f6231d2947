/**
 * Orphan shares (docs/ers.md, "--reshare-to"; docs/keynode.md, "Deleting a key share"), on real key
 * node processes shared by every case: `DELETE /v1/keys/{key_id}` and `lifeboat key delete` (operator
 * only, confirmed, journaled as key_delete, a typed 404 for an unknown key), and `ers recover
 * --reshare-to` deleting the shares it imported when a node fails the import midway: a node that
 * refuses, one that stores the share and then fails its answer, one stopped after the pre-checks.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { secp256k1_FROST } from '@noble/curves/secp256k1.js';
import type { FROST } from '@noble/curves/abstract/frost.js';
import { spawn } from 'node:child_process';
import { type CliResult, REPO_ROOT, runCli, tracked } from './helpers/cli.js';
import { trackedTempDir } from './helpers/tmp.js';
import { ownTenantOf, serveNode, startNodeProcesses, type NodeProcess } from './helpers/keynode.js';
import { KeyNodeClient } from '../src/keynode/client.js';
import { encodeFrostPublic } from '../src/keynode/frost/index.js';
import { openKeyNodeStore } from '../src/keynode/store/index.js';
import { BACKUP_JOURNAL_META } from '../src/keynode/store/types.js';
import { decodeChange } from '../src/backup/changes.js';
import { isLifeboatError } from '../src/errors.js';
import { encodePackage } from '../src/ers/format.js';
import { provePart } from '../src/ers/proof.js';
import { generateErsKeyPair } from '../src/ers/rsa.js';
import { ersRecordOf, ersSigningGate, registerPackage } from '../src/ers/node-state.js';
import type { NodeConfig } from '../src/keynode/config.js';
import type { KeyRecord } from '../src/keynode/store/types.js';
import { frostGroupPublicKey } from '../src/keynode/frost/index.js';

const errOf = (r: CliResult): { err_type: string; message: string; hint?: string } => {
  assert.notEqual(r.code, 0, `expected a failure: ${r.stdout}`);
  return JSON.parse(r.stdout) as { err_type: string; message: string; hint?: string };
};

/** Runs `lifeboat key delete` on a pseudo-terminal (util-linux `script`), typing `typed` at the confirmation. */
async function deleteOnTerminal(url: string, keyId: string, token: string, typed: string): Promise<{ code: number | null; text: string }> {
  const cmd = `stty cols 200 rows 50; exec ${JSON.stringify(process.execPath)} --import tsx src/cli/main.ts key delete --node ${url} --key ${keyId}`;
  const child = tracked(spawn('script', ['-qfec', cmd, '/dev/null'], { cwd: REPO_ROOT, env: { ...process.env, LIFEBOAT_DEBUG: '', LIFEBOAT_API_KEY: token }, stdio: ['pipe', 'pipe', 'pipe'] }));
  let text = '';
  child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  let done = false;
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  void exited.then(() => (done = true));
  while (!/type the key id to confirm/.test(text) && !done) await new Promise((r) => setTimeout(r, 50));
  child.stdin!.write(`${typed}\r`);
  child.stdin!.end();
  return { code: await exited, text };
}

/** What a proxy in front of node 3 does with a share import. */
type ImportMode = 'forward' | 'refuse' | 'store-then-fail' | 'stop-node';

describe('orphan shares: key delete, and --reshare-to rolling back a failed deal (real key node processes)', () => {
  let nodes: NodeProcess[] = [];
  let proxy: Server | undefined;
  let proxyUrl = '';
  let mode: ImportMode = 'forward';
  let operatorToken = '';
  let clientToken = '';
  let dir = '';
  let pkg = '';
  let ersKey = '';
  let register: (store: Awaited<ReturnType<typeof openKeyNodeStore>>) => Promise<{ rec: KeyRecord; config: NodeConfig }>;
  const operator = (url: string) => new KeyNodeClient({ url, apiKey: operatorToken });
  const keyIds = async (url: string) => (await operator(url).keys({ limit: 1000 })).keys.map((k) => k.key_id).sort();

  before(async () => {
    dir = trackedTempDir('lifeboat-ers-orphans-');
    const rsa = generateErsKeyPair(3072);
    ersKey = join(dir, 'ers.key');
    writeFileSync(ersKey, rsa.privatePem, { mode: 0o600 });
    const frost = secp256k1_FROST as FROST;
    const d = frost.trustedDealer({ min: 2, max: 3 });
    const ids = Object.keys(d.secretShares).sort();
    const pub = { signers: { min: 2, max: 3 }, commitments: d.public.commitments, verifyingShares: d.public.verifyingShares };
    const parts = ids.slice(0, 2).map((id) => provePart({ curve: 'secp256k1', label: 'orphans', groupKey: pub.commitments[0]!, identifier: id, share: d.secretShares[id]!.signingShare, verifyingShare: pub.verifyingShares[id]!, rsa: rsa.public }));
    pkg = join(dir, 'key.ers');
    writeFileSync(pkg, encodePackage({ curve: 'secp256k1', label: 'orphans', spki: rsa.public.spki, publicPackage: encodeFrostPublic('secp256k1', pub), parts }));
    register = async (store) => {
      const config = { ers: { enabled: true, require: true, whitelist: [{ label: 'escrow', fingerprint: Buffer.from(rsa.public.fingerprint).toString('hex'), spki: Buffer.from(rsa.public.spki).toString('base64') }] } } as unknown as NodeConfig;
      const rec = { keyId: 'key_reused', curve: 'secp256k1', identifier: ids[0]!, groupPublicKey: frostGroupPublicKey('secp256k1', pub), publicPackage: encodeFrostPublic('secp256k1', pub) } as unknown as KeyRecord;
      await registerPackage(store, config, rec, encodePackage({ curve: 'secp256k1', label: 'orphans', spki: rsa.public.spki, publicPackage: encodeFrostPublic('secp256k1', pub), parts }));
      return { rec, config };
    };
    ({ nodes, operatorToken, clientToken } = await startNodeProcesses(dir, 3));
    // Node 1 journals its changes for a backup stream (as after `node backup-setup`): the outbox shows them.
    const store = await openKeyNodeStore(`sqlite:${join(nodes[0]!.dir, 'store.sqlite')}`);
    await store.setMeta(BACKUP_JOURNAL_META, 'on');
    await store.close();
    proxy = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const isImport = req.method === 'POST' && req.url === '/v1/backup/import-key-share';
        const fail = () => res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ err_type: 'unavailable', message: 'injected failure' }));
        if (isImport && mode === 'refuse') return fail();
        const forward = () =>
          fetch(nodes[2]!.url + req.url, { method: req.method, headers: { ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}), ...(req.headers['content-type'] ? { 'content-type': req.headers['content-type'] } : {}) }, body: chunks.length ? Buffer.concat(chunks) : undefined });
        if (isImport && mode === 'stop-node') {
          // The node goes away after the pre-checks, as the import arrives: the caller gets no answer.
          void nodes[2]!.server.stop().then(() => req.socket.destroy());
          return;
        }
        forward()
          .then(async (r) => {
            if (isImport && mode === 'store-then-fail') return fail(); // the node stored the share; its answer is lost
            res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json' }).end(Buffer.from(await r.arrayBuffer()));
          })
          .catch(() => res.writeHead(502, { 'content-type': 'text/plain' }).end('node down'));
      });
    });
    await new Promise<void>((resolve) => proxy!.listen(0, '127.0.0.1', resolve));
    proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.server.stop()));
    proxy?.close();
  });

  const reshare = (extra: string[] = []) =>
    runCli(['ers', 'recover', pkg, '--ers-private', ersKey, '--reshare-to', [nodes[0]!.url, nodes[1]!.url, proxyUrl].join(','), '--tenant', ownTenantOf(clientToken), '--threshold', '3', ...extra, '--json'], { env: { LIFEBOAT_API_KEY: operatorToken }, timeoutMs: 120_000 });
  const keyDelete = (url: string, keyId: string, token: string, extra: string[] = ['--yes']) => runCli(['key', 'delete', '--node', url, '--key', keyId, ...extra, '--json'], { env: { LIFEBOAT_API_KEY: token } });

  it('key delete: a client key is refused (wrong_role, 403), no confirmation refuses, an unknown key is a typed 404; an operator deletes, journaled as key_delete; on a terminal the key id must be typed', async () => {
    mode = 'forward';
    const dealt = await reshare();
    assert.equal(dealt.code, 0, dealt.stderr);
    const ref = JSON.parse(dealt.stdout) as { nodes: { url: string; key_id: string }[] };
    const { url, key_id: keyId } = ref.nodes[0]!;

    const byClient = await keyDelete(url, keyId, clientToken);
    assert.equal(errOf(byClient).err_type, 'wrong_role');
    await assert.rejects(new KeyNodeClient({ url, apiKey: clientToken }).deleteKey(keyId), (e) => isLifeboatError(e, 'wrong_role') && e.status === 403);
    const unconfirmed = await keyDelete(url, keyId, operatorToken, []);
    assert.equal(errOf(unconfirmed).err_type, 'confirmation_required');
    assert.match(errOf(unconfirmed).hint ?? '', /--yes/);
    assert.equal((await operator(url).key(keyId)).key_id, keyId, 'still there after both refusals');

    const deleted = await keyDelete(url, keyId, operatorToken);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal((JSON.parse(deleted.stdout) as { deleted: boolean; key_id: string }).key_id, keyId);
    await assert.rejects(operator(url).key(keyId), (e) => isLifeboatError(e, 'key_id_not_exists'));
    const store = await openKeyNodeStore(`sqlite:${join(nodes[0]!.dir, 'store.sqlite')}`);
    try {
      const changes = (await store.listUnsealedOutbox(1000)).map((c) => decodeChange(c.change));
      assert.deepEqual(changes.at(-1), { op: 'key_delete', keyId });
    } finally {
      await store.close();
    }

    const unknown = await keyDelete(url, keyId, operatorToken);
    assert.equal(errOf(unknown).err_type, 'key_id_not_exists');
    await assert.rejects(operator(url).deleteKey('key_unknown'), (e) => isLifeboatError(e, 'key_id_not_exists') && e.status === 404);
    // on a terminal: the key id typed wrong deletes nothing; typed right, the share goes
    const second = ref.nodes[1]!;
    const wrong = await deleteOnTerminal(second.url, second.key_id, operatorToken, 'key_not_this_one');
    assert.equal(wrong.code, 1);
    assert.match(wrong.text, /confirmation_mismatch/);
    assert.equal((await operator(second.url).key(second.key_id)).key_id, second.key_id);
    const typed = await deleteOnTerminal(second.url, second.key_id, operatorToken, second.key_id);
    assert.equal(typed.code, 0, typed.text);
    await assert.rejects(operator(second.url).key(second.key_id), (e) => isLifeboatError(e, 'key_id_not_exists'));
    assert.equal((await keyDelete(ref.nodes[2]!.url, ref.nodes[2]!.key_id, operatorToken)).code, 0);
  });

  it('a package registered for a deleted key does not count for a new key made under the same id (ers.require still refuses it)', async () => {
    const store = await openKeyNodeStore(`sqlite:${join(dir, 'reuse.sqlite')}`);
    try {
      const { rec, config } = await register(store);
      assert.equal((await ersRecordOf(store, rec))?.label, 'orphans');
      await ersSigningGate(store, config)(rec);
      const other = secp256k1_FROST.trustedDealer({ min: 2, max: 3 });
      const reused = { ...rec, groupPublicKey: other.public.commitments[0]! };
      assert.equal(await ersRecordOf(store, reused), undefined);
      await assert.rejects(ersSigningGate(store, config)(reused), (e) => isLifeboatError(e, 'ers_package_required'));
    } finally {
      await store.close();
    }
  });

  it('a node that refuses the import midway: the shares already imported are deleted (reshare_rolled_back); no node keeps one', async () => {
    const before = await Promise.all(nodes.map((n) => keyIds(n.url)));
    mode = 'refuse';
    const r = await reshare();
    const e = errOf(r);
    assert.equal(e.err_type, 'reshare_rolled_back', e.message);
    assert.match(e.message, /injected failure/);
    assert.match(e.message, new RegExp(`deleted the shares it had imported: ${nodes[0]!.url}#key_\\w+, ${nodes[1]!.url}#key_\\w+`));
    assert.deepEqual(await Promise.all(nodes.map((n) => keyIds(n.url))), before);
  });

  it('a node that stores the share and then fails its answer: its share of this deal is found and deleted too', async () => {
    const before = await Promise.all(nodes.map((n) => keyIds(n.url)));
    mode = 'store-then-fail';
    const r = await reshare();
    const e = errOf(r);
    assert.equal(e.err_type, 'reshare_rolled_back', e.message);
    assert.match(e.message, new RegExp(`${proxyUrl}#key_\\w+`), 'names the share deleted behind the failed answer');
    assert.deepEqual(await Promise.all(nodes.map((n) => keyIds(n.url))), before);
  });

  it('a node stopped after the pre-checks: the others keep nothing; the unchecked node is named with the command to remove a share', async () => {
    const before = await Promise.all(nodes.map((n) => keyIds(n.url)));
    mode = 'stop-node';
    const r = await reshare();
    const e = errOf(r);
    assert.equal(e.err_type, 'reshare_incomplete', e.message);
    assert.match(e.message, /peer_unreachable/);
    assert.match(e.message, new RegExp(`${proxyUrl}, not checked`));
    assert.match(e.message, new RegExp(`lifeboat key delete --node ${proxyUrl} --key KEY_ID`));
    assert.doesNotMatch(e.message, new RegExp(`${nodes[0]!.url}#key_\\w+ \\(`), 'nothing left on node 1');
    assert.deepEqual(await Promise.all(nodes.slice(0, 2).map((n) => keyIds(n.url))), before.slice(0, 2));
    nodes[2] = await serveNode(nodes[2]!.dir);
    assert.deepEqual(await keyIds(nodes[2].url), before[2], 'the stopped node took nothing');
  });
});
