/**
 * Keys scoped to their owners (issue 8, point 6; docs/keynode.md, "Tenants"), with real processes:
 * three `lifeboat node serve` nodes and a fail-over of the first, set up by the CLI. Tenant `acme` has
 * two client API keys (`apikey create|import --tenant acme`), the other client key has a tenant of
 * its own (no --tenant). Each tenant's keys are invisible to the other: get, list, sign and export
 * answer exactly as an unknown key id. Operators see all; the fail-over and a node restored from its
 * backup keep every owner. The backup stream's records carry the owner and read old records as
 * tenant `default` (the store's migration is in test/keynode-store.test.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { type RunResult, runCli } from '../src/drill/proc.js';
import { applyChange, decodeChange, decodeNodeState, emptyState, encodeChange, encodeNodeState, stateToSnapshot } from '../src/backup/changes.js';
import { randomBytes } from '../src/crypto/random.js';
import { isLifeboatError } from '../src/errors.js';
import { sealEnvelope } from '../src/crypto/envelope.js';
import { generateBoxKeyPair } from '../src/crypto/sealedbox.js';
import { generateIdentity, identityFingerprint } from '../src/identity.js';
import { newApiKey } from '../src/keynode/apikeys.js';
import { openNodeBackup } from '../src/keynode/backup.js';
import type { NodeSecrets } from '../src/keynode/secrets.js';
import { KeyNodeClient } from '../src/keynode/client.js';
import { createKey, type KeyRef, sign } from '../src/keynode/sdk.js';
import { newKeyId } from '../src/keynode/service.js';
import type { ApiKeyRecord, KeyRecord } from '../src/keynode/store/types.js';
import { fromHex, utf8 } from '../src/util/bytes.js';
import { type NodeProcess, ok, ownTenantOf, registerTokenInDir, serveNode, tempDir } from './helpers/keynode.js';

interface World {
  root: string;
  nodes: NodeProcess[];
  failover: NodeProcess | undefined;
  acme: string;
  acme2: string;
  solo: string;
  operator: string;
  keyA: KeyRef | undefined;
  keyB: KeyRef | undefined;
}
const w: World = { root: '', nodes: [], failover: undefined, acme: '', acme2: '', solo: '', operator: '', keyA: undefined, keyB: undefined };

const cli = (args: string[], opts: Parameters<typeof runCli>[1] = {}) => runCli(args, { timeoutMs: 60_000, ...opts });
const clientsOf = (token: string, nodes = w.nodes) => nodes.map((n) => new KeyNodeClient({ url: n.url, apiKey: token }));

/** A raw request: the status and the JSON body exactly as the node answered. */
async function raw(url: string, token: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/**
 * Every way a client reaches one key: get, round one, round two, export. For `keyId` held by another
 * tenant, each answer must be the one an unknown key id of the same length gets (its id swapped in).
 */
async function assertInvisible(url: string, token: string, keyId: string): Promise<void> {
  const unknown = `key_${'0'.repeat(keyId.length - 4)}`;
  const sig = { nonce_id: '0'.repeat(32), message: '00', commitments: [{}, {}] };
  const probes = (id: string) =>
    [
      ['GET', `/v1/keys/${id}`, undefined],
      ['POST', `/v1/keys/${id}/commitments`, {}],
      ['POST', `/v1/keys/${id}/signature-shares`, sig],
      ['GET', `/v1/backup/export-key-share/${id}?export_type=encrypted`, undefined],
    ] as const;
  for (const [[method, path, body], [, unknownPath, unknownBody]] of probes(keyId).map((p, i) => [p, probes(unknown)[i]!] as const)) {
    const theirs = await raw(url, token, method, path, body);
    const none = await raw(url, token, method, unknownPath, unknownBody);
    assert.equal(theirs.status, 404, `${method} ${path}: ${JSON.stringify(theirs.body)}`);
    assert.equal(theirs.body.err_type, 'key_id_not_exists');
    assert.deepEqual(theirs.body, JSON.parse(JSON.stringify(none.body).replaceAll(unknown, keyId)), `${method} ${path}: the same answer as an unknown id`);
  }
}

/** All pages of GET /v1/keys for `token`, as key ids. */
async function listed(url: string, token: string, tenant?: string): Promise<string[]> {
  const c = new KeyNodeClient({ url, apiKey: token });
  const ids: string[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await c.keys({ limit: 2, ...(after ? { after } : {}), ...(tenant ? { tenant } : {}) });
    ids.push(...page.keys.map((k) => k.key_id));
    if (page.next_after === null) return ids;
    after = page.next_after;
  }
}

async function signs(key: KeyRef, token: string, nodes: NodeProcess[], text: string): Promise<void> {
  const ref: KeyRef = { ...key, nodes: key.nodes.map((n, i) => ({ ...n, url: nodes[i]!.url })) };
  const message = utf8.encode(text);
  const sigBytes = await sign(ref, clientsOf(token, nodes), message, { signers: [0, 1] });
  assert.ok(ed25519.verify(sigBytes, message, fromHex(key.groupPublicKey, 'group key'), { zip215: false }), text);
}

async function until(what: string, fn: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A refused command: a non-zero exit (usage or operation failed), the reason on stderr, nothing written. */
function failsWith(r: RunResult, pattern: RegExp): void {
  assert.notEqual(r.code, 0, `${r.stdout}${r.stderr}`);
  assert.match(r.stderr, pattern);
}

describe('tenants: two tenants on the same three nodes (real processes)', { timeout: 240_000 }, () => {
  before(async () => {
    w.root = tempDir('lb-tenants-');
    const dirs = ['node-1', 'node-2', 'node-3', 'node-1-failover'].map((d) => join(w.root, d));
    const inits = (await Promise.all(dirs.map((d) => cli(['node', 'init', '--data-dir', d, '--no-mnemonic', '--json'])))).map((r, i) => JSON.parse(ok(r, `init ${i}`).stdout) as { identity: string; fingerprint: string; wrapping_public_key: string });
    // Tenant acme: two API keys, made on node 1 and imported with the same --tenant everywhere else.
    const made = async (args: string[]) => ok(await cli(['node', 'apikey', 'create', '--role', 'client', '--data-dir', dirs[0]!, '--secret-fd', '3', ...args], { secretFd: true }), 'apikey create').secret.trim();
    w.acme = await made(['--tenant', 'acme']);
    w.acme2 = await made(['--tenant', 'acme']);
    w.solo = await made([]);
    for (const d of dirs.slice(1)) {
      for (const t of [w.acme, w.acme2]) ok(await cli(['node', 'apikey', 'import', '--role', 'client', '--tenant', 'acme', '--data-dir', d], { input: `${t}\n` }), 'apikey import --tenant');
      ok(await cli(['node', 'apikey', 'import', '--role', 'client', '--data-dir', d], { input: `${w.solo}\n` }), 'apikey import');
    }
    w.operator = newApiKey('operator', 'ops').token;
    for (const d of dirs) await registerTokenInDir(d, w.operator, 'operator');
    // Node 1's fail-over: paired both ways before node 1 serves.
    ok(await cli(['node', 'pair', '--primary', inits[0]!.identity, '--data-dir', dirs[3]!, '--json']), 'pair --primary');
    w.failover = await serveNode(dirs[3]!, undefined, inits[3]!.fingerprint);
    ok(await cli(['node', 'pair', '--failover', `${w.failover.url}#${inits[3]!.fingerprint}`, '--wrapping-key', inits[3]!.wrapping_public_key, '--data-dir', dirs[0]!, '--json']), 'pair --failover');
    w.nodes = await Promise.all(dirs.slice(0, 3).map((d, i) => serveNode(d, undefined, inits[i]!.fingerprint)));
  });

  after(async () => {
    await Promise.all([...w.nodes, ...(w.failover ? [w.failover] : [])].map((n) => n.server.stop()));
    rmSync(w.root, { recursive: true, force: true });
  });

  it('apikey create|import put each client key in its tenant on every node; list shows it; operators have none', async () => {
    for (const n of w.nodes) {
      const rows = JSON.parse(ok(await cli(['node', 'apikey', 'list', '--data-dir', n.dir, '--json'])).stdout) as { id: string; role: string; tenant: string | null }[];
      const byId = new Map(rows.map((r) => [r.id, r]));
      assert.equal(byId.get(w.acme.slice(4, 20))?.tenant, 'acme');
      assert.equal(byId.get(w.acme2.slice(4, 20))?.tenant, 'acme');
      assert.equal(byId.get(w.solo.slice(4, 20))?.tenant, ownTenantOf(w.solo), 'no --tenant: its own, the same on every node');
      assert.equal(byId.get(w.operator.slice(4, 20))?.tenant, null);
    }
    const dir = w.nodes[0]!.dir;
    failsWith(await cli(['node', 'apikey', 'create', '--role', 'client', '--tenant', 'Not A Name', '--data-dir', dir]), /invalid_tenant|not a tenant name/);
    failsWith(await cli(['node', 'apikey', 'create', '--role', 'client', '--tenant', 'apikey-0011', '--data-dir', dir]), /reserved/);
    failsWith(await cli(['node', 'apikey', 'create', '--role', 'operator', '--tenant', 'acme', '--data-dir', dir]), /belongs to none/);
  });

  it("a tenant's key is invisible to the other: get, sign (both rounds), export and list answer as for an unknown key id", async () => {
    w.keyA = await createKey(clientsOf(w.acme), { threshold: 2, curve: 'ed25519' });
    w.keyB = await createKey(clientsOf(w.solo), { threshold: 2, curve: 'ed25519' });
    const before = await Promise.all(w.nodes.map(async (n) => (await new KeyNodeClient({ url: n.url, apiKey: w.operator }).status()).unused_nonces));
    for (const [i, n] of w.nodes.entries()) {
      await assertInvisible(n.url, w.solo, w.keyA.nodes[i]!.keyId);
      await assertInvisible(n.url, w.acme, w.keyB.nodes[i]!.keyId);
      await assertInvisible(n.url, w.acme2, w.keyB.nodes[i]!.keyId);
      assert.deepEqual(await listed(n.url, w.solo), [w.keyB.nodes[i]!.keyId]);
      assert.deepEqual(await listed(n.url, w.acme), [w.keyA.nodes[i]!.keyId]);
      // A client may not list another tenant by name.
      await assert.rejects(clientsOf(w.solo)[i]!.keys({ tenant: 'acme' }), (err) => isLifeboatError(err, 'wrong_role') && err.status === 403);
    }
    const after = await Promise.all(w.nodes.map(async (n) => (await new KeyNodeClient({ url: n.url, apiKey: w.operator }).status()).unused_nonces));
    assert.deepEqual(after, before, 'a refused round one leaves no nonce');
    // The SDK and the CLI see the same: key_id_not_exists, 404.
    await assert.rejects(sign(w.keyA, clientsOf(w.solo), utf8.encode('not yours')), (err) => isLifeboatError(err, 'key_id_not_exists') && err.status === 404);
    const viaCli = await cli(['sign', '--key', w.keyA.nodes[0]!.keyId, '--nodes', w.nodes.map((n) => n.url).join(','), '--message-text', 'x'], { env: { LIFEBOAT_API_KEY: w.solo } });
    failsWith(viaCli, /does not exist on this node/);
    // Each owner signs; so does the second API key of tenant acme.
    await signs(w.keyA, w.acme, w.nodes, 'acme signs');
    await signs(w.keyA, w.acme2, w.nodes, 'acme, second api key');
    await signs(w.keyB, w.solo, w.nodes, 'solo signs');
  });

  it('a DKG belongs to the tenant that started it: rounds from another tenant find no session', async () => {
    const ids = await Promise.all(clientsOf(w.acme).map((c) => c.identity()));
    const sessionId = `sess_${Buffer.from(randomBytes(12)).toString('hex')}`;
    const start = { key_id: newKeyId(), curve: 'ed25519', threshold: 2, participants: ids.map((i) => i.identity) };
    const r1 = await clientsOf(w.acme)[0]!.dkgStart(sessionId, start);
    for (const path of ['round2', 'finish']) {
      const body = path === 'round2' ? { round1: [r1.round1, r1.round1] } : { round2: [{}] };
      const a = await raw(w.nodes[0]!.url, w.solo, 'POST', `/v1/dkg/${sessionId}/${path}`, body);
      assert.equal(a.status, 404, JSON.stringify(a.body));
      assert.equal(a.body.err_type, 'dkg_session_not_found');
    }
    // The owner's own round two still runs on it (step 1 untouched by the refused calls): it gets past the
    // session lookup and fails only on the round-1 packages it was given.
    const mine = await raw(w.nodes[0]!.url, w.acme2, 'POST', `/v1/dkg/${sessionId}/round2`, { round1: [r1.round1, r1.round1] });
    assert.notEqual(mine.body.err_type, 'dkg_session_not_found');
  });

  it('operators see every tenant: get with the owner, list all or one tenant', async () => {
    const n = w.nodes[1]!;
    const op = new KeyNodeClient({ url: n.url, apiKey: w.operator });
    assert.equal((await op.key(w.keyA!.nodes[1]!.keyId)).tenant, 'acme');
    assert.equal((await op.key(w.keyB!.nodes[1]!.keyId)).tenant, ownTenantOf(w.solo));
    const all = await listed(n.url, w.operator);
    assert.deepEqual(new Set(all), new Set([w.keyA!.nodes[1]!.keyId, w.keyB!.nodes[1]!.keyId]));
    assert.deepEqual(await listed(n.url, w.operator, 'acme'), [w.keyA!.nodes[1]!.keyId]);
    // An operator's import names the owner; a client's goes to its own tenant and cannot name another.
    const exp = await clientsOf(w.acme)[1]!.exportShare(w.keyA!.nodes[1]!.keyId, 'encrypted');
    const forSolo = await op.importShare({ ...exp, tenant: ownTenantOf(w.solo) });
    assert.equal(forSolo.tenant, ownTenantOf(w.solo));
    await assertInvisible(n.url, w.acme, forSolo.key_id);
    await assert.rejects(clientsOf(w.acme)[1]!.importShare({ ...exp, tenant: 'other' }), (err) => isLifeboatError(err, 'wrong_role') && err.status === 403);
    const own = await clientsOf(w.acme2)[1]!.importShare(exp);
    assert.equal(own.tenant, 'acme');
    // The CLI's `key import --tenant` with an operator key does the same.
    const file = join(w.root, 'acme.export');
    writeFileSync(file, JSON.stringify(exp), { mode: 0o600 });
    const viaCli = JSON.parse(ok(await cli(['key', 'import', '--node', n.url, '--in', file, '--tenant', 'acme', '--json'], { env: { LIFEBOAT_API_KEY: w.operator } }), 'key import').stdout) as { key_id: string };
    assert.equal((await op.key(viaCli.key_id)).tenant, 'acme');
    assert.ok((await listed(n.url, w.acme)).includes(viaCli.key_id));
  });

  it("another tenant cannot take a key over through its encrypted exports: the client import is refused, the owner's re-import and an operator's import keep tenant acme; key import names the tenant", async () => {
    const [n2, n3] = [w.nodes[1]!, w.nodes[2]!];
    const asAcme = { env: { LIFEBOAT_API_KEY: w.acme } };
    const files = [n2, n3].map((_, i) => join(w.root, `ka${i + 1}.export`));
    for (const [i, n] of [n2, n3].entries()) {
      ok(await cli(['key', 'export', '--node', n.url, '--key', w.keyA!.nodes[i + 1]!.keyId, '--out', files[i]!], asAcme), `acme exports from node ${i + 2}`);
    }
    const op = (n: NodeProcess) => new KeyNodeClient({ url: n.url, apiKey: w.operator });
    const countsBefore = await Promise.all([n2, n3].map(async (n) => (await op(n).status()).keys));
    const soloBefore = await Promise.all([n2, n3].map((n) => listed(n.url, w.solo)));
    // The attack: tenant solo imports both of acme's exports with its own API key.
    for (const [i, n] of [n2, n3].entries()) {
      for (const json of [false, true]) {
        const r = await cli(['key', 'import', '--node', n.url, '--in', files[i]!, ...(json ? ['--json'] : [])], { env: { LIFEBOAT_API_KEY: w.solo } });
        assert.equal(r.code, 1, `refused: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, /^lifeboat: error: .*a client imports only encrypted exports of its own tenant’s keys \(wrong_role\)$/m);
        if (json) assert.equal((JSON.parse(r.stdout) as { err_type: string }).err_type, 'wrong_role');
        else assert.equal(r.stdout, '');
      }
    }
    assert.deepEqual(await Promise.all([n2, n3].map(async (n) => (await op(n).status()).keys)), countsBefore, 'nothing stored');
    assert.deepEqual(await Promise.all([n2, n3].map((n) => listed(n.url, w.solo))), soloBefore);
    // The same tenant's re-import (another API key of acme) works, and says where the key landed.
    const again = JSON.parse(ok(await cli(['key', 'import', '--node', n2.url, '--in', files[0]!, '--json'], { env: { LIFEBOAT_API_KEY: w.acme2 } }), 'acme re-imports').stdout) as { key_id: string; tenant: string };
    assert.equal(again.tenant, 'acme');
    assert.ok((await listed(n2.url, w.acme)).includes(again.key_id));
    // An operator's import without --tenant keeps the export's owner; the text output names it.
    const byOp = ok(await cli(['key', 'import', '--node', n3.url, '--in', files[1]!], { env: { LIFEBOAT_API_KEY: w.operator } }), 'operator imports').stdout;
    const m = /^imported as (\S+) \(from \S+\) into tenant acme, /.exec(byOp);
    assert.ok(m, byOp);
    assert.equal((await op(n3).key(m[1]!)).tenant, 'acme');
    await assertInvisible(n3.url, w.solo, m[1]!);
  });

  it('the fail-over keeps the owner: same tenant, the other tenant still sees nothing, the owner signs through it', async () => {
    const f = w.failover!;
    const op = new KeyNodeClient({ url: w.nodes[0]!.url, apiKey: w.operator });
    // Wait on what the assertions are about: the primary's fail-over has acknowledged every key.
    await until('fail-over lag 0', async () => ((await op.status()) as { failover: { lag: number } }).failover.lag === 0);
    const fop = new KeyNodeClient({ url: f.url, apiKey: w.operator });
    assert.equal((await fop.key(w.keyA!.nodes[0]!.keyId)).tenant, 'acme');
    assert.equal((await fop.key(w.keyB!.nodes[0]!.keyId)).tenant, ownTenantOf(w.solo));
    await assertInvisible(f.url, w.solo, w.keyA!.nodes[0]!.keyId);
    await assertInvisible(f.url, w.acme, w.keyB!.nodes[0]!.keyId);
    assert.deepEqual(await listed(f.url, w.acme), [w.keyA!.nodes[0]!.keyId]);
    await signs(w.keyA!, w.acme, [f, w.nodes[1]!, w.nodes[2]!], 'acme through the fail-over');
  });

  it('a node restored from its backup keeps every owner', async () => {
    const n = w.nodes[2]!;
    const file = join(w.root, 'node-3.lbnb');
    ok(await cli(['node', 'backup', '--out', file, '--data-dir', n.dir, '--json']), 'node backup');
    await n.server.stop();
    for (const suffix of ['', '-wal', '-shm']) rmSync(join(n.dir, `store.sqlite${suffix}`), { force: true });
    ok(await cli(['node', 'restore', '--in', file, '--data-dir', n.dir, '--json']), 'node restore');
    w.nodes[2] = await serveNode(n.dir, new URL(n.url).host, n.fingerprint);
    const r = w.nodes[2];
    assert.equal((await new KeyNodeClient({ url: r.url, apiKey: w.operator }).key(w.keyA!.nodes[2]!.keyId)).tenant, 'acme');
    await assertInvisible(r.url, w.solo, w.keyA!.nodes[2]!.keyId);
    await assertInvisible(r.url, w.acme2, w.keyB!.nodes[2]!.keyId);
    assert.deepEqual(await listed(r.url, w.solo), [w.keyB!.nodes[2]!.keyId]);
    const rows = JSON.parse(ok(await cli(['node', 'apikey', 'list', '--data-dir', r.dir, '--json'])).stdout) as { id: string; tenant: string | null }[];
    assert.equal(rows.find((x) => x.id === w.acme.slice(4, 20))?.tenant, 'acme', 'the API keys keep their tenant too');
    const order = [w.nodes[2]!, w.nodes[0]!, w.nodes[1]!];
    const rotate = (k: KeyRef): KeyRef => ({ ...k, nodes: [k.nodes[2]!, k.nodes[0]!, k.nodes[1]!] });
    await signs(rotate(w.keyA!), w.acme, order, 'acme after the restore');
    await signs(rotate(w.keyB!), w.solo, order, 'solo after the restore');
  });
});

describe('tenants in the backup stream (docs/format.md, "Store records")', () => {
  const key: KeyRecord = {
    keyId: 'key_1',
    curve: 'ed25519',
    threshold: 2,
    maxSigners: 3,
    identifier: '01',
    groupPublicKey: randomBytes(32),
    publicPackage: randomBytes(64),
    encryptedShare: randomBytes(80),
    status: 'active',
    origin: 'dkg',
    createdAt: 1,
    tenant: 'acme',
  };
  const apiKey: ApiKeyRecord = { id: '00112233445566aa', secretHash: randomBytes(32), role: 'client', label: 'x', createdAt: 2, revokedAt: null, tenant: 'acme' };
  const operator: ApiKeyRecord = { ...apiKey, id: '00112233445566bb', role: 'operator', tenant: null };
  const secrets = { identity: randomBytes(64), storageKey: randomBytes(32), exportKey: randomBytes(32), wrappingKey: randomBytes(32) };
  /** A change as a record written before tenants: the same JSON without `tenant`. */
  const legacy = (bytes: Uint8Array, field: 'key' | 'api_key') => {
    const j = JSON.parse(utf8.decode(bytes)) as Record<string, Record<string, unknown>>;
    delete j[field]!.tenant;
    return utf8.encode(JSON.stringify(j));
  };
  const edited = (bytes: Uint8Array, field: 'key' | 'api_key', tenant: unknown) => {
    const j = JSON.parse(utf8.decode(bytes)) as Record<string, Record<string, unknown>>;
    j[field]!.tenant = tenant;
    return utf8.encode(JSON.stringify(j));
  };

  it('key_put, api_key_put and a compaction carry the owner; replay and snapshot keep it', () => {
    const state = emptyState();
    for (const c of [{ op: 'key_put', key }, { op: 'api_key_put', apiKey }, { op: 'api_key_put', apiKey: operator }] as const) {
      const back = decodeChange(encodeChange(c));
      assert.deepEqual(back, c);
      applyChange(state, back);
    }
    const snap = stateToSnapshot(state);
    assert.deepEqual([snap.keys[0]!.tenant, ...snap.apiKeys.map((a) => a.tenant)], ['acme', 'acme', null]);
    const compacted = decodeNodeState(encodeNodeState(secrets, snap, 'now'));
    assert.equal(compacted.keys.get('key_1')!.tenant, 'acme');
    assert.equal(compacted.apiKeys.get(operator.id)!.tenant, null);
  });

  it('records written before tenants read as tenant default (keys, client API keys) and none (operator keys)', () => {
    const k = decodeChange(legacy(encodeChange({ op: 'key_put', key }), 'key'));
    assert.equal(k.op === 'key_put' && k.key.tenant, 'default');
    const a = decodeChange(legacy(encodeChange({ op: 'api_key_put', apiKey }), 'api_key'));
    assert.equal(a.op === 'api_key_put' && a.apiKey.tenant, 'default');
    const o = decodeChange(legacy(encodeChange({ op: 'api_key_put', apiKey: operator }), 'api_key'));
    assert.equal(o.op === 'api_key_put' && o.apiKey.tenant, null);
    const body = JSON.parse(utf8.decode(encodeNodeState(secrets, { keys: [key], apiKeys: [apiKey] }, 'then'))) as { keys: Record<string, unknown>[]; api_keys: Record<string, unknown>[] };
    delete body.keys[0]!.tenant;
    delete body.api_keys[0]!.tenant;
    const old = decodeNodeState(utf8.encode(JSON.stringify(body)));
    assert.equal(old.keys.get('key_1')!.tenant, 'default');
    assert.equal(old.apiKeys.get(apiKey.id)!.tenant, 'default');
  });

  it('a node backup file (LBNB) written before tenants restores its keys and client API keys into tenant default', () => {
    const node: NodeSecrets = { identity: generateIdentity('node'), storageKey: randomBytes(32), exportKey: randomBytes(32), wrapping: generateBoxKeyPair(), backupKey: randomBytes(32) };
    const asJson = (rec: object) => {
      const j = Object.fromEntries(Object.entries(rec).map(([k, v]) => [k, v instanceof Uint8Array ? { b64: Buffer.from(v).toString('base64') } : v]));
      delete j.tenant;
      return j;
    };
    const body = { version: 1, created_at: 'then', keys: [asJson(key)], api_keys: [asJson(apiKey), asJson(operator)], meta: [] };
    const bytes = sealEnvelope({ magic: 'LBNB', version: 1, header: utf8.encode(identityFingerprint(node.identity)), key: node.backupKey, plaintext: utf8.encode(JSON.stringify(body)) });
    const snap = openNodeBackup(bytes, node);
    assert.deepEqual([snap.keys[0]!.tenant, ...snap.apiKeys.map((a) => a.tenant)], ['default', 'default', null]);
    assert.deepEqual(snap.keys[0]!.encryptedShare, key.encryptedShare);
  });

  it('negative vectors: a malformed tenant, a client API key without one, an operator API key with one are malformed', () => {
    const malformed = (bytes: Uint8Array) => assert.throws(() => decodeChange(bytes), (err) => isLifeboatError(err, 'malformed'));
    for (const t of [5, '', 'A B', 'Acme', 'a'.repeat(65), null]) malformed(edited(encodeChange({ op: 'key_put', key }), 'key', t));
    for (const t of [5, '', 'A B', null]) malformed(edited(encodeChange({ op: 'api_key_put', apiKey }), 'api_key', t));
    malformed(edited(encodeChange({ op: 'api_key_put', apiKey: operator }), 'api_key', 'acme'));
    const body = JSON.parse(utf8.decode(encodeNodeState(secrets, { keys: [key], apiKeys: [] }, 'then'))) as { keys: Record<string, unknown>[] };
    body.keys[0]!.tenant = 'Bad Tenant';
    assert.throws(() => decodeNodeState(utf8.encode(JSON.stringify(body))), (err) => isLifeboatError(err, 'malformed'));
  });
});
