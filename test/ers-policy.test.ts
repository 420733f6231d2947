/**
 * A key's own emergency recovery policy (docs/ers.md, "Policy"), black-box with real key node
 * processes: `key create --ers require` cannot sign until `ers backup` registered a verified package
 * with the signing nodes, then signs; `--ers off` gets no part and no package even where ers.enabled is
 * on; a key without a policy follows each node's settings, as before; a node refuses to make a key whose
 * policy it could never honour; the policy shows in the key info, `key list` and `node status`; a
 * fail-over copy keeps the key's policy.
 */
import { describe, it, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { ersSigningGate } from '../src/ers/node-state.js';
import { isLifeboatError } from '../src/errors.js';
import { listen } from '../src/http/listen.js';
import { loadNodeConfig, nodePaths, saveNodeConfig } from '../src/keynode/config.js';
import { exportKeyShare } from '../src/keynode/export.js';
import { applySetting } from '../src/keynode/settings.js';
import { inProcessKeys } from '../src/keynode/frost/bench.js';
import { closeNode, initNode, openNode, type OpenedNode } from '../src/keynode/runtime.js';
import { createKeyNodeApp } from '../src/keynode/server.js';
import type { ErsPolicy } from '../src/keynode/store/types.js';
import { type CliResult, runCli } from './helpers/cli.js';
import { serveNode, startNodeProcesses, type NodeProcess } from './helpers/keynode.js';
import { trackedTempDir } from './helpers/tmp.js';
import { verifySignature } from '../src/keynode/frost/index.js';
import { fromHex } from '../src/util/bytes.js';

function ok(r: CliResult): CliResult {
  if (r.code !== 0) throw new Error(`exited ${r.code}: ${r.stderr.trim()} ${r.stdout.trim()}`);
  return r;
}

const errType = (r: CliResult): string => (JSON.parse(r.stdout) as { err_type: string }).err_type;

interface ErsStatus {
  enabled: boolean;
  require: boolean;
  keys: number;
  keys_with_package: number;
  key_policies: Record<string, number>;
  keys_waiting_for_package: number;
}

describe('per-key ERS policy (black box, real key nodes)', () => {
  let nodes: NodeProcess[] = [];
  after(async () => {
    await Promise.all(nodes.map((n) => n.server.stop()));
  });

  it('--ers require signs only once a package is registered with the signing nodes; --ers off gets no part; a key without a policy follows the node', async () => {
    const root = trackedTempDir('lifeboat-ers-policy-');
    const ers = join(root, 'ers');
    ok(await runCli(['ers', 'keygen', '--out', ers]));
    const started = await startNodeProcesses(root, 3);
    nodes = started.nodes;
    const env = { LIFEBOAT_API_KEY: started.clientToken };
    const dirs = nodes.map((n) => n.dir);
    // ERS on, ers.pub whitelisted on every node; ers.require stays off (the node leaves it to the key)
    for (const d of dirs) {
      ok(await runCli(['node', 'config', 'set', 'ers.enabled', 'true', '--data-dir', d]));
      ok(await runCli(['ers', 'whitelist', 'add', '--ers-public', `${ers}.pub`, '--label', 'escrow', '--data-dir', d]));
    }
    const restart = async () => {
      await Promise.all(nodes.map((n) => n.server.stop()));
      nodes = await Promise.all(dirs.map((d) => serveNode(d)));
    };
    await restart();
    const list = (ns: NodeProcess[]) => ns.map((n) => n.url).join(',');
    const create = (ers?: string, ns = nodes) => runCli(['key', 'create', '--nodes', list(ns), '--threshold', '2', '--curve', 'ed25519', '--json', ...(ers ? ['--ers', ers] : [])], { env, timeoutMs: 120_000 });
    const keyOf = (r: CliResult) => JSON.parse(ok(r).stdout) as { key_id: string; group_public_key: string; ers_policy: string | null };
    const sign = (keyId: string, ns: NodeProcess[], text = 'hello') => runCli(['sign', '--key', keyId, '--nodes', list(ns), '--message-text', text, '--json'], { env });
    const backup = (keyId: string, ns: NodeProcess[], out: string) => runCli(['ers', 'backup', '--key', keyId, '--nodes', list(ns), '--ers-public', `${ers}.pub`, '--label', 'policy', '--out', out, '--json'], { env, timeoutMs: 120_000 });
    const info = async (keyId: string, n: NodeProcess) => JSON.parse(ok(await runCli(['key', 'info', '--node', n.url, '--key', keyId, '--json'], { env })).stdout) as { ers_policy: string | null; ers_required: boolean; ers: { participants: number } | null };
    const status = async (n: NodeProcess) => (JSON.parse(ok(await runCli(['node', 'status', '--data-dir', n.dir, '--json'])).stdout) as { ers: ErsStatus }).ers;

    // a bad policy is refused before any node is asked
    const bad = await create('sometimes');
    assert.equal(bad.code, 2, 'a value out of its list is a usage error');
    assert.equal(errType(bad), 'usage');

    const req = keyOf(await create('require'));
    assert.equal(req.ers_policy, 'require');
    for (const n of nodes) assert.deepEqual(await info(req.key_id, n).then((i) => [i.ers_policy, i.ers_required, i.ers]), ['require', true, null]);
    const refused = await sign(req.key_id, nodes.slice(0, 2));
    assert.equal(refused.code, 1);
    assert.equal(errType(refused), 'ers_package_required');
    assert.deepEqual((await status(nodes[0]!)).key_policies, { none: 0, off: 0, allow: 0, require: 1 });
    assert.equal((await status(nodes[0]!)).keys_waiting_for_package, 1);

    // the package, registered with nodes 1 and 2: they sign; node 3 was not asked and still refuses
    const pkg = join(root, 'req.ers');
    const made = JSON.parse(ok(await backup(req.key_id, nodes.slice(0, 2), pkg)).stdout) as { registered: { ok: boolean }[] };
    assert.deepEqual(made.registered.map((r) => r.ok), [true, true]);
    const signed = JSON.parse(ok(await sign(req.key_id, nodes.slice(0, 2), 'now usable')).stdout) as { signature: string };
    assert.equal(verifySignature('ed25519', fromHex(signed.signature, 's'), new TextEncoder().encode('now usable'), fromHex(req.group_public_key, 'g')), true);
    assert.equal(errType(await sign(req.key_id, nodes.slice(1, 3))), 'ers_package_required', 'node 3 has no package registered');
    assert.equal((await info(req.key_id, nodes[0]!)).ers?.participants, 2);
    const s1 = await status(nodes[0]!);
    assert.equal(s1.keys_with_package, 1);
    assert.equal(s1.keys_waiting_for_package, 0);
    assert.equal((await status(nodes[2]!)).keys_waiting_for_package, 1);

    // --ers off: no part on any node, although every node has ERS on and the RSA key whitelisted
    const off = keyOf(await create('off'));
    assert.equal((await info(off.key_id, nodes[1]!)).ers_policy, 'off');
    const offPkg = join(root, 'off.ers');
    const noPart = await backup(off.key_id, nodes.slice(0, 2), offPkg);
    assert.equal(noPart.code, 1);
    assert.equal(errType(noPart), 'ers_disabled_for_key');
    assert.throws(() => statSync(offPkg), 'no package written');
    ok(await sign(off.key_id, nodes.slice(0, 2)));

    // no policy: the node's settings decide (ERS on, no requirement): signs at once, gets a package
    const plain = keyOf(await create());
    assert.equal(plain.ers_policy, null);
    assert.deepEqual(await info(plain.key_id, nodes[0]!).then((i) => [i.ers_policy, i.ers_required]), [null, false]);
    ok(await sign(plain.key_id, nodes.slice(0, 2)));
    const plainPkg = join(root, 'plain.ers');
    ok(await backup(plain.key_id, nodes.slice(0, 2), plainPkg));
    // a package offered for the off key is refused before it is read, and nothing is recorded
    const api = (path: string, body: unknown) => fetch(`${nodes[0]!.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${started.clientToken}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const offered = await api(`/v1/keys/${off.key_id}/ers-package`, { package: readFileSync(plainPkg).toString('base64') });
    assert.equal(offered.status, 403);
    assert.equal(((await offered.json()) as { err_type: string }).err_type, 'ers_disabled_for_key');
    assert.equal((await info(off.key_id, nodes[0]!)).ers, null);
    // the DKG request's ers_policy is one of the three, checked at the node's boundary
    const badStart = await api('/v1/dkg/session_bad_policy/start', { key_id: 'key_bad_policy', curve: 'ed25519', threshold: 2, participants: ['a', 'b'], ers_policy: 'sometimes' });
    assert.equal(badStart.status, 400);
    assert.equal(((await badStart.json()) as { err_type: string }).err_type, 'invalid_input');

    // key list shows each key's policy
    const listed = JSON.parse(ok(await runCli(['key', 'list', '--node', nodes[0]!.url, '--json'], { env })).stdout) as { key_id: string; ers_policy: string | null }[];
    assert.deepEqual(new Map(listed.map((k) => [k.key_id, k.ers_policy])), new Map([[req.key_id, 'require'], [off.key_id, 'off'], [plain.key_id, null]]));
    const text = ok(await runCli(['key', 'list', '--node', nodes[0]!.url], { env })).stdout;
    assert.match(text, new RegExp(`${req.key_id} .*ers require`));
    assert.deepEqual((await status(nodes[0]!)).key_policies, { none: 1, off: 1, allow: 0, require: 1 });

    // node 1 now requires a package of every key; node 3 turns ERS off
    ok(await runCli(['node', 'config', 'set', 'ers.require', 'true', '--data-dir', dirs[0]!]));
    ok(await runCli(['node', 'config', 'set', 'ers.enabled', 'false', '--data-dir', dirs[2]!]));
    await restart();
    // the key without a policy follows the nodes: node 1 (package registered) signs, node 3 refuses its part
    ok(await sign(plain.key_id, nodes.slice(0, 2)));
    assert.equal(errType(await backup(plain.key_id, nodes.slice(1, 3), join(root, 'plain2.ers'))), 'ers_disabled');
    // the off key has no package, and node 1's requirement covers it as every key
    assert.equal(errType(await sign(off.key_id, nodes.slice(0, 2))), 'ers_package_required');
    assert.equal((await info(off.key_id, nodes[0]!)).ers_required, true);
    ok(await sign(off.key_id, nodes.slice(1, 3)));
    // a node refuses to make a key whose policy it could never honour, and no node keeps it
    const onDisabled = await create('require');
    assert.equal(errType(onDisabled), 'ers_disabled', 'node 3 makes no parts: it cannot hold a require key');
    const offOnRequiring = await create('off', nodes.slice(0, 2));
    assert.equal(errType(offOnRequiring), 'ers_required_by_node');
    const after = JSON.parse(ok(await runCli(['key', 'list', '--node', nodes[1]!.url, '--json'], { env })).stdout) as unknown[];
    assert.equal(after.length, 3, 'the refused DKGs left no key');
    // allow on nodes that make parts
    const allow = keyOf(await create('allow', nodes.slice(0, 2)));
    assert.equal(allow.ers_policy, 'allow');
    assert.equal(errType(await sign(allow.key_id, nodes.slice(0, 2))), 'ers_package_required', "node 1's own requirement");
    ok(await backup(allow.key_id, nodes.slice(0, 2), join(root, 'allow.ers')));
    ok(await sign(allow.key_id, nodes.slice(0, 2)));
  });

  it('key create --help documents --ers', async () => {
    const r = ok(await runCli(['key', 'create', '--help']));
    assert.match(r.stdout, /--ers <policy>/);
    assert.match(r.stdout, /ers_disabled_for_key/);
    assert.match(r.stdout, /ers_package_required/);
  });

  it('durable_channels ers: a new key stays pending_backup until a verified package is registered, then signs', async () => {
    const root = trackedTempDir('lifeboat-ers-durable-');
    const ers = join(root, 'ers');
    ok(await runCli(['ers', 'keygen', '--out', ers]));
    const started = await startNodeProcesses(root, 2);
    nodes.push(...started.nodes);
    const two = started.nodes;
    const env = { LIFEBOAT_API_KEY: started.clientToken };
    await Promise.all(
      two.map(async (n) => {
        // the settings as `node config set` applies them (validated: durable_channels ers needs ers.enabled first)
        const paths = nodePaths(n.dir);
        let c = loadNodeConfig(paths);
        for (const [k, v] of [['ers.enabled', 'true'], ['durable_channels', 'ers'], ['durable_wait_ms', '200']] as const) c = applySetting(c, k, v).config;
        saveNodeConfig(paths, c);
        ok(await runCli(['ers', 'whitelist', 'add', '--ers-public', `${ers}.pub`, '--label', 'escrow', '--data-dir', n.dir]));
      }),
    );
    await Promise.all(two.map((n) => n.server.stop()));
    const served = await Promise.all(two.map((n) => serveNode(n.dir)));
    nodes.push(...served);
    const list = served.map((n) => n.url).join(',');
    const key = JSON.parse(ok(await runCli(['key', 'create', '--nodes', list, '--threshold', '2', '--curve', 'ed25519', '--json'], { env, timeoutMs: 120_000 })).stdout) as { key_id: string; status: string };
    assert.equal(key.status, 'pending_backup');
    const info = async (n: NodeProcess) => JSON.parse(ok(await runCli(['key', 'info', '--node', n.url, '--key', key.key_id, '--json'], { env })).stdout) as { status: string; channels: Record<string, unknown> };
    assert.deepEqual(await info(served[0]!).then((i) => [i.status, i.channels]), ['pending_backup', { ers: false }]);
    const sign = () => runCli(['sign', '--key', key.key_id, '--nodes', list, '--message-text', 'durable', '--json'], { env });
    const refused = await sign();
    assert.equal(refused.code, 1);
    assert.equal(errType(refused), 'key_pending_backup');
    ok(await runCli(['ers', 'backup', '--key', key.key_id, '--nodes', list, '--ers-public', `${ers}.pub`, '--label', 'durable', '--out', join(root, 'k.ers'), '--json'], { env, timeoutMs: 120_000 }));
    for (const n of served) assert.deepEqual(await info(n).then((i) => [i.status, i.channels]), ['active', { ers: true }], 'the registered package activated the key');
    ok(await sign());
  });
});

describe('per-key ERS policy on a fail-over (in process, over HTTP)', () => {
  let primary: OpenedNode;
  let failover: OpenedNode;
  let app: FastifyInstance;
  const exportOf = (node: OpenedNode, keyId: string, index: number) => exportKeyShare(inProcessKeys('ed25519', { keyId })[index]!, 'plaintext', { exportKey: node.secrets.exportKey });

  before(async () => {
    const dir = trackedTempDir('lifeboat-ers-policy-failover-');
    const p = await initNode(join(dir, 'p'));
    const f = await initNode(join(dir, 'f'));
    const fPaths = nodePaths(join(dir, 'f'));
    saveNodeConfig(fPaths, { ...loadNodeConfig(fPaths), paired_primary: p.identity });
    failover = await openNode(join(dir, 'f'));
    app = createKeyNodeApp({ service: failover.service, store: failover.store });
    const url = await listen(app, '127.0.0.1:0');
    const pPaths = nodePaths(join(dir, 'p'));
    const pConfig = loadNodeConfig(pPaths);
    // The primary makes ERS parts and requires nothing itself; the fail-over has ERS off.
    saveNodeConfig(pPaths, { ...pConfig, ers: { ...pConfig.ers, enabled: true }, export: { ...pConfig.export, whitelist: [{ label: 'f', wrapping_key: f.wrapping_public_key }] }, failover: { url, identity: f.identity, wrapping_key: f.wrapping_public_key } });
    primary = await openNode(join(dir, 'p'), { failoverRetryMs: 100 });
  });
  after(async () => {
    await closeNode(primary);
    await app.close();
    await closeNode(failover);
  });

  it('the primary pushes each key with its own policy; the copy of a require key refuses to sign without a package there', async () => {
    const policies: [string, ErsPolicy | undefined][] = [['key_req', 'require'], ['key_off', 'off'], ['key_none', undefined]];
    for (const [keyId, ersPolicy] of policies) {
      await primary.service.importShare(exportOf(primary, keyId, 0), { role: 'operator' }, { threshold: 2, ...(ersPolicy ? { ersPolicy } : {}) });
    }
    // An import names no other key id; the primary's keys are under new ids
    const onPrimary = await primary.store.listKeys({ limit: 10 });
    assert.deepEqual(onPrimary.map((k) => k.ersPolicy ?? null).sort(), ['off', 'require', null].sort());
    primary.failover.start();
    const deadline = Date.now() + 15_000;
    while ((await failover.store.countKeys()) < 3 || (await primary.failover.status()).failover!.lag !== 0) {
      if (Date.now() > deadline) assert.fail('timed out waiting for the fail-over to hold every key');
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const k of onPrimary) {
      const copy = await failover.store.getKey(k.keyId);
      assert.equal(copy?.origin, 'failover');
      assert.equal(copy?.ersPolicy, k.ersPolicy, `${k.keyId} keeps its policy on the fail-over`);
    }
    const gate = ersSigningGate(failover.store, failover.config);
    const req = onPrimary.find((k) => k.ersPolicy === 'require')!;
    await assert.rejects(gate((await failover.store.getKey(req.keyId))!), (err: unknown) => isLifeboatError(err, 'ers_package_required'));
    await gate((await failover.store.getKey(onPrimary.find((k) => k.ersPolicy === undefined)!.keyId))!);
    // another import is held to the node's settings: the fail-over's ERS is off
    await assert.rejects(failover.service.importShare(exportOf(failover, 'key_x', 1), { role: 'operator' }, { threshold: 2, ersPolicy: 'require' }), (err: unknown) => isLifeboatError(err, 'ers_disabled'));
    assert.equal(await failover.store.countKeys(), 3, 'the refused import wrote nothing');
  });
});
