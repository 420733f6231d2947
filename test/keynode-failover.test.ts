/**
 * Fail-over with real processes: three `lifeboat node serve` primaries, each paired with its own
 * fail-over node (six processes). Every new share reaches the fail-over under the same key id; a
 * fail-over that is down delays the copy (lag > 0) and loses nothing, even across a primary crash;
 * only the paired primary may import keeping the key id; with the primaries killed, the fail-over
 * nodes sign under the same group key; a primary rebuilt empty gets its keys back by the reverse pairing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../src/drill/proc.js';
import {
  clientsOf,
  createFleetNode,
  failoverLag,
  type KeyNodeFleet,
  refOn,
  registerTokens,
  serveNode,
  signAndCheck,
  startFleet,
  stopNode,
  waitForSync,
  wipeStore,
} from '../src/drill/keynode-scenarios.js';
import { isLifeboatError } from '../src/errors.js';
import { generateIdentity } from '../src/identity.js';
import type { FastifyInstance } from 'fastify';
import { listen } from '../src/http/listen.js';
import { KeyNodeClient } from '../src/keynode/client.js';
import { loadNodeConfig, nodePaths, saveNodeConfig } from '../src/keynode/config.js';
import { exportKeyShare } from '../src/keynode/export.js';
import { inProcessKeys } from '../src/keynode/frost/bench.js';
import { closeNode, initNode, openNode, type OpenedNode } from '../src/keynode/runtime.js';
import { createKeyNodeApp } from '../src/keynode/server.js';
import { createKey, type KeyRef } from '../src/keynode/sdk.js';

let root = '';
let fleet: KeyNodeFleet;
const keys: KeyRef[] = [];

const operator = (url: string) => new KeyNodeClient({ url, apiKey: fleet.tokens.operator });

async function rejects(p: Promise<unknown>, code: string, status?: number): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isLifeboatError(err, code), `expected ${code}, got ${(err as { code?: string }).code}: ${(err as Error).message}`);
    if (status !== undefined) assert.equal(err.status, status);
    return true;
  });
}

async function until(what: string, fn: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('key node fail-over: 3 primaries, each with its own fail-over node (6 processes)', { timeout: 200_000 }, () => {
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'lifeboat-failover-'));
    fleet = await startFleet(root, { failovers: true });
  });
  after(async () => {
    await Promise.all(fleet?.servers.map((s) => s.stop('SIGKILL')) ?? []);
    rmSync(root, { recursive: true, force: true });
  });

  it('status names the paired fail-over with lag 0; a fail-over has none; pairing pins the fingerprint', async () => {
    for (const [i, p] of fleet.primaries.entries()) {
      const s = (await operator(p.url).status()) as { keys: number; failover: { url: string; fingerprint: string; lag: number; last_error: string | null } };
      assert.equal(s.keys, 0);
      assert.deepEqual({ url: s.failover.url, fingerprint: s.failover.fingerprint, lag: s.failover.lag }, { url: fleet.failovers[i]!.url, fingerprint: fleet.failovers[i]!.fingerprint, lag: 0 });
    }
    assert.equal(((await operator(fleet.failovers[0]!.url).status()) as { failover: unknown }).failover, null);
    // A wrong pinned fingerprint: refused by name, the configuration unchanged.
    const other = await createFleetNode(root, 'unpaired', fleet.tokens);
    const before = readFileSync(join(other.dir, 'node.json'), 'utf8');
    const f0 = fleet.failovers[0]!;
    const [wrongFingerprint, wrongWrappingKey] = await Promise.all([
      runCli(['node', 'pair', '--failover', `${f0.url}#0000:0000:0000:0000:0000:0000:0000:0000`, '--data-dir', other.dir]),
      runCli(['node', 'pair', '--failover', `${f0.url}#${f0.fingerprint}`, '--wrapping-key', other.wrappingKey, '--data-dir', other.dir]),
    ]);
    assert.equal(wrongFingerprint.code, 3, 'another identity than the pinned one is a refusal for safety');
    assert.match(wrongFingerprint.stderr, /lifeboat: error: the node at .* is [0-9a-f:]+, not 0000:.* \(peer_identity_mismatch\)/);
    assert.equal(wrongWrappingKey.code, 3);
    assert.match(wrongWrappingKey.stderr, /lifeboat: error: the node at .* offers wrapping key .*, not .* \(peer_identity_mismatch\)/);
    assert.equal(readFileSync(join(other.dir, 'node.json'), 'utf8'), before);
  });

  it('a new key reaches every fail-over under the same key id; the lag returns to 0', async () => {
    const key = await createKey(clientsOf(fleet.primaries, fleet.tokens.client), { threshold: 2, curve: 'ed25519' });
    keys.push(key);
    await waitForSync(fleet.primaries, fleet.tokens.operator);
    for (const [i, f] of fleet.failovers.entries()) {
      const onPrimary = await operator(fleet.primaries[i]!.url).key(key.nodes[i]!.keyId);
      const copy = await operator(f.url).key(key.nodes[i]!.keyId);
      assert.equal(copy.key_id, key.nodes[i]!.keyId);
      assert.equal(copy.group_public_key, key.groupPublicKey);
      assert.equal(copy.identifier, onPrimary.identifier);
      assert.equal(copy.threshold, 2);
      assert.equal(copy.origin, 'failover');
    }
    // The CLI reads the same lag from the store while the node serves.
    const r = await runCli(['node', 'status', '--json', '--data-dir', fleet.primaries[0]!.dir]);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as { keys: number; failover: { lag: number; last_error: string | null } };
    assert.deepEqual([s.keys, s.failover.lag, s.failover.last_error], [1, 0, null]);
  });

  it('a fail-over down while a key is created: lag > 0 across a primary crash, then 0 when it is back; nothing lost', async () => {
    const [p0] = fleet.primaries;
    const [f0] = fleet.failovers;
    await stopNode(f0!, 'SIGKILL');
    const key = await createKey(clientsOf(fleet.primaries, fleet.tokens.client), { threshold: 2, curve: 'secp256k1' });
    keys.push(key);
    assert.equal(await failoverLag(p0!, fleet.tokens.operator), 1);
    await until('the push failure to be reported', async () => ((await operator(p0!.url).status()) as { failover: { last_error: string | null } }).failover.last_error === 'peer_unreachable');
    await waitForSync(fleet.primaries.slice(1), fleet.tokens.operator);
    // The primary crashes with the copy still owed: a restart finds it in the store.
    await stopNode(p0!, 'SIGKILL');
    await serveNode(fleet, p0!);
    assert.equal(await failoverLag(p0!, fleet.tokens.operator), 1);
    await serveNode(fleet, f0!);
    await waitForSync([p0!], fleet.tokens.operator);
    const copy = await operator(f0!.url).key(key.nodes[0]!.keyId);
    assert.equal(copy.group_public_key, key.groupPublicKey);
    assert.equal(((await operator(f0!.url).status()) as { keys: number }).keys, 2);
  });

  it('only the paired primary imports keeping the key id: another signer gets 403, an operator a new key id, a client wrong_role', async () => {
    const [p0] = fleet.primaries;
    const [f0] = fleet.failovers;
    const keyId = keys[0]!.nodes[0]!.keyId;
    const exp = await operator(p0!.url).exportShare(keyId, 'wrapped', f0!.wrappingKey);
    const stranger = new KeyNodeClient({ url: f0!.url, signer: generateIdentity('node') });
    await rejects(stranger.importShare({ ...exp, threshold: 2 }), 'not_enrolled', 403);
    await rejects(new KeyNodeClient({ url: f0!.url, apiKey: fleet.tokens.client }).importShare({ ...exp, threshold: 2 }), 'wrong_role', 403);
    assert.equal(((await operator(f0!.url).status()) as { keys: number }).keys, 2, 'refused imports change nothing');
    const imported = await operator(f0!.url).importShare({ ...exp, threshold: 2 });
    assert.notEqual(imported.key_id, keyId);
    assert.equal(imported.group_public_key, keys[0]!.groupPublicKey);
    // A share wrapped to a key that is not on the primary's whitelist never leaves it.
    await rejects(operator(p0!.url).exportShare(keyId, 'wrapped', fleet.primaries[1]!.wrappingKey), 'wrapping_key_not_whitelisted', 403);
  });

  it('the primaries killed (SIGKILL): the fail-over nodes sign under the same group key and key id', async () => {
    for (const key of keys) await signAndCheck(key, clientsOf(fleet.primaries, fleet.tokens.client), `before the take-over (${key.curve})`);
    await Promise.all(fleet.primaries.map((p) => stopNode(p, 'SIGKILL')));
    for (const key of keys) {
      const onFailovers = refOn(key, fleet.failovers);
      const clients = clientsOf(fleet.failovers, fleet.tokens.client);
      await signAndCheck(onFailovers, clients, `after the take-over (${key.curve})`);
      await signAndCheck(onFailovers, clients, `after the take-over, signers 2 and 3 (${key.curve})`, [1, 2]);
    }
  });

  it('fail-back: a primary rebuilt empty is paired the other way round and gets every key back under its key id', async () => {
    const [p0] = fleet.primaries;
    const [f0] = fleet.failovers;
    wipeStore(p0!);
    await registerTokens(p0!, fleet.tokens);
    let r = await runCli(['node', 'pair', '--primary', f0!.identity, '--data-dir', p0!.dir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    await serveNode(fleet, p0!);
    await stopNode(f0!);
    r = await runCli(['node', 'pair', '--failover', `${p0!.url}#${p0!.fingerprint}`, '--wrapping-key', p0!.wrappingKey, '--data-dir', f0!.dir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    await serveNode(fleet, f0!);
    await waitForSync([f0!], fleet.tokens.operator);
    for (const key of keys) {
      const back = await operator(p0!.url).key(key.nodes[0]!.keyId);
      assert.equal(back.group_public_key, key.groupPublicKey);
      // The rebuilt primary signs with a fail-over under the same key id.
      await signAndCheck(refOn(key, [p0!, fleet.failovers[1]!]), clientsOf([p0!, fleet.failovers[1]!], fleet.tokens.client), `after the fail-back (${key.curve})`);
    }
  });
});

describe('fail-over sync in one process: per-key failures and deleted keys do not hold up the rest', () => {
  let dir = '';
  let primary: OpenedNode;
  let failover: OpenedNode;
  let app: FastifyInstance;

  /** Imports share `index` of a fresh in-process key into `node` under `keyId` (keeping it). */
  async function importInto(node: OpenedNode, keyId: string, index = 0): Promise<void> {
    const share = inProcessKeys('secp256k1', { keyId })[index]!;
    await node.service.importShare(exportKeyShare(share, 'plaintext', { exportKey: node.secrets.exportKey }), { role: 'paired_primary' }, { threshold: 2 });
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lifeboat-failover-sync-'));
    const p = await initNode(join(dir, 'p'));
    const f = await initNode(join(dir, 'f'));
    // Keys committed before the pairing: only the retry loop's scan finds them.
    const unpaired = await openNode(join(dir, 'p'));
    for (const id of ['key_a', 'key_b', 'key_c']) await importInto(unpaired, id);
    await closeNode(unpaired);
    const fPaths = nodePaths(join(dir, 'f'));
    saveNodeConfig(fPaths, { ...loadNodeConfig(fPaths), paired_primary: p.identity });
    failover = await openNode(join(dir, 'f'));
    await importInto(failover, 'key_a', 1); // another share under the id the primary pushes first
    app = createKeyNodeApp({ service: failover.service, store: failover.store });
    const url = await listen(app, '127.0.0.1:0');
    const pPaths = nodePaths(join(dir, 'p'));
    const pConfig = loadNodeConfig(pPaths);
    saveNodeConfig(pPaths, { ...pConfig, export: { ...pConfig.export, whitelist: [{ label: 'f', wrapping_key: f.wrapping_public_key }] }, failover: { url, identity: f.identity, wrapping_key: f.wrapping_public_key } });
    primary = await openNode(join(dir, 'p'), { failoverRetryMs: 100 });
  });
  after(async () => {
    await closeNode(primary);
    await app.close();
    await closeNode(failover);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a key the fail-over refuses stays in the lag; the keys after it are copied; a key gone here leaves the lag', async () => {
    assert.deepEqual(await primary.failover.scan(), ['key_a', 'key_b', 'key_c']);
    primary.failover.start();
    // The assertions are about a finished pass (the lag is recorded after each acknowledgement), not
    // about keys arriving on the fail-over, which happens before the primary has recorded the push.
    await until('a sync pass to finish', async () => (await primary.failover.status()).failover!.last_pass_at !== null);
    assert.equal(await failover.store.countKeys(), 3);
    assert.ok(await failover.store.getKey('key_b'));
    assert.ok(await failover.store.getKey('key_c'));
    let s = (await primary.failover.status()).failover!;
    assert.deepEqual([s.lag, s.last_error], [1, 'key_exists']);
    assert.deepEqual(await primary.failover.scan(), ['key_a']);
    // A commit whose key is deleted before its push: nothing to copy, not counted.
    primary.failover.committed('key_gone');
    assert.equal(await primary.failover.push('key_gone'), false);
    s = (await primary.failover.status()).failover!;
    assert.equal(s.lag, 1);
  });
});
