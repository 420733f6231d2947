/**
 * Continuous backups with real processes on loopback (SQLite default; OPAQUE with its production
 * stretching, as the CLI always runs it): `lifeboat backup-server serve` and three `lifeboat node
 * serve`, each set up with `node backup-setup` under its own account. The tests share that fleet and
 * run in order; each leaves it serving (with node 1 replaced by its restore after the first):
 *   1. the done-means path: key, signature, node 1 killed with its disk, `node restore
 *      --backup-server` with the password on stdin, signatures with the restored node, no nonce;
 *   2. the service SIGKILLed while the nodes stream: a new key is pending_backup and refuses to sign,
 *      then becomes active once the service is back, and nothing acknowledged was lost;
 *   3. the service SIGKILLed during a compaction upload (a proxy kills it when the first chunk
 *      passes): `node backup-now` fails clearly, a restore still has every key from the previous
 *      compaction and the entries after it, and the next `node backup-now` completes;
 *   4. refused restores: a wrong password (login_failed) leaves nothing behind; a directory that
 *      holds a node is refused (node_exists) and left as it was.
 * From the third on, node 3 streams through the test's proxy. Node directories and accounts are made
 * in this process (what `node init` and `backup-server account add` do): each CLI start costs ~1.5 s.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import * as opaque from '@serenity-kit/opaque';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  addBackupAccounts,
  type BackupServiceProc,
  createKeyReporting,
  nodeStatus,
  serveBackupService,
  setUpNodeBackup,
  stopBackupService,
  streamHeads,
  tuneBackup,
  waitForActive,
} from '../src/drill/backup-scenarios.js';
import { type RunningServer, runCli, type RunResult } from '../src/drill/proc.js';
import { newApiKey } from '../src/keynode/apikeys.js';
import { KeyNodeClient } from '../src/keynode/client.js';
import { initNode } from '../src/keynode/runtime.js';
import { verifySignature } from '../src/keynode/frost/index.js';
import { type KeyRef, sign } from '../src/keynode/sdk.js';
import { fromHex, utf8 } from '../src/util/bytes.js';
import { type NodeProcess, ok, registerTokenInDir, serveNode, storeKeyIds } from './helpers/keynode.js';
import { trackedTempDir } from './helpers/tmp.js';

const PASSWORD = 'a long backup passphrase for the process tests';
const WAIT_MS = 500;

interface Fleet {
  root: string;
  service: BackupServiceProc;
  nodes: NodeProcess[];
  fingerprints: string[];
  accounts: string[];
  /** The restore token `node backup-setup` printed for each account. */
  restoreTokens: string[];
  token: string;
  servers: RunningServer[];
  proxies: Proxy[];
  /** The tail of each node process's stderr, by directory name, for failure messages. */
  logs: Map<string, string>;
}

let f: Fleet;

function code(err: unknown): string {
  return (err as { code?: string }).code ?? String(err);
}

function listen(url: string): string {
  return `127.0.0.1:${new URL(url).port}`;
}

/** Serves the node in `dir` (on the port of `url` when given) and tracks the process. */
async function serve(dir: string, url?: string): Promise<NodeProcess> {
  const n = await serveNode(dir, url ? listen(url) : undefined);
  f.servers.push(n.server);
  const name = basename(dir);
  f.logs.set(name, '');
  n.server.child.stderr!.on('data', (d: Buffer) => f.logs.set(name, (f.logs.get(name)! + d.toString()).slice(-2000)));
  return n;
}

/** Awaits `p`; a failure also names what the node processes wrote on stderr (the agent's retries). */
async function withLogs<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    const logs = [...f.logs].map(([name, text]) => `[${name}] ${text.trim() || '(nothing)'}`).join('\n');
    throw new Error(`${(err as Error).message}\nnode stderr:\n${logs}`, { cause: err });
  }
}

/** Stops node i cleanly and serves it again on the same port (it rereads node.json). */
async function restart(i: number): Promise<void> {
  const n = f.nodes[i]!;
  await n.server.stop();
  f.nodes[i] = await serve(n.dir, n.url);
}

function clients(): KeyNodeClient[] {
  return f.nodes.map((n) => new KeyNodeClient({ url: n.url, apiKey: f.token }));
}

async function createActiveKey(): Promise<KeyRef> {
  const { key } = await createKeyReporting(f.nodes, f.token, { threshold: 2, curve: 'ed25519' });
  await withLogs(waitForActive(key, f.token));
  return key;
}

function restore(account: string, dir: string, password = PASSWORD, restoreToken?: string): Promise<RunResult> {
  const args = ['node', 'restore', '--backup-server', f.service.url, '--account', account, '--data-dir', dir, '--json', ...(restoreToken ? ['--restore-token'] : [])];
  return runCli(args, { input: restoreToken ? `${password}\n${restoreToken}\n` : `${password}\n` });
}

/** A login start for `account` sent from `localAddress` (any 127.0.0.0/8 address on loopback): its HTTP status. */
async function loginStartFrom(account: string, localAddress: string): Promise<number> {
  await opaque.ready;
  const body = JSON.stringify({ start_login_request: Buffer.from(opaque.client.startLogin({ password: 'a guess' }).startLoginRequest, 'base64url').toString('base64') });
  const { port } = new URL(f.service.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: `/v1/accounts/${account}/login/start`, method: 'POST', localAddress, agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

before(async () => {
  const root = trackedTempDir('lifeboat-backup-proc-');
  const servers: RunningServer[] = [];
  f = { root, service: { dir: join(root, 'service'), url: '', server: undefined }, nodes: [], fingerprints: [], accounts: [], restoreTokens: [], token: newApiKey('client', 'c').token, servers, proxies: [], logs: new Map() };
  await serveBackupService(servers, f.service);
  const dirs = [1, 2, 3].map((i) => join(root, `node-${i}`));
  f.accounts = dirs.map((_, i) => `acct-${i + 1}`);
  const invites = await addBackupAccounts(f.service, f.accounts);
  f.fingerprints = await Promise.all(
    dirs.map(async (dir, i) => {
      const init = await initNode(dir);
      await registerTokenInDir(dir, f.token, 'client');
      f.restoreTokens[i] = await setUpNodeBackup(dir, f.service.url, f.accounts[i]!, invites[i]!, PASSWORD, { wait_ms: WAIT_MS });
      return init.fingerprint;
    }),
  );
  f.nodes = await Promise.all(dirs.map((d) => serve(d)));
});

after(async () => {
  await Promise.all(f.servers.map((s) => s.stop('SIGKILL')));
  await Promise.all(f.proxies.map((p) => p.close()));
});

describe('backups with real processes', () => {
  it('done means: key created and signed, node 1 killed with its disk, restored from the service with the password, signs again with no nonce', async () => {
    const env = { LIFEBOAT_API_KEY: f.token };
    const urls = f.nodes.map((n) => n.url);
    const created = JSON.parse(ok(await runCli(['key', 'create', '--nodes', urls.join(','), '--threshold', '2', '--json'], { env }), 'key create').stdout) as { key_id: string; group_public_key: string };
    const keyId = created.key_id;
    await withLogs(waitForActive({ nodes: urls.map((url) => ({ url, keyId })) }, f.token));
    ok(await runCli(['sign', '--key', keyId, '--nodes', urls.join(','), '--message-text', 'before the loss', '--json'], { env }), 'sign');

    // A signing abandoned after round one leaves an unused nonce on node 1; nonces are never backed up.
    await clients()[0]!.commitments(keyId);
    const lost = f.nodes[0]!;
    await lost.server.stop('SIGKILL');
    rmSync(lost.dir, { recursive: true, force: true });

    const dir = join(f.root, 'node-1-restored');
    const r = restoreJson(ok(await restore(f.accounts[0]!, dir), 'node restore'));
    assert.equal(r.fingerprint, f.fingerprints[0], 'the same node identity');
    assert.equal(r.keys, 1);
    assert.ok(r.api_keys >= 1, 'the API keys come back with the node');
    assert.ok(r.epoch >= 1, 'a new nonce epoch: no nonce from before the restore can sign');
    tuneBackup(dir, { wait_ms: WAIT_MS });
    f.nodes[0] = await serve(dir);

    const message = 'after the restore';
    const signed = ok(await runCli(['sign', '--key', keyId, '--nodes', `${f.nodes[0]!.url},${f.nodes[1]!.url}`, '--message-text', message, '--json'], { env }), 'sign after restore');
    const sig = JSON.parse(signed.stdout) as { signature: string; group_public_key: string };
    assert.equal(sig.group_public_key, created.group_public_key);
    assert.ok(verifySignature('ed25519', fromHex(sig.signature, 'signature'), utf8.encode(message), fromHex(created.group_public_key, 'group key')));
    const st = await nodeStatus(dir);
    assert.equal(st.unused_nonces, 0, 'no nonce from before the restore, none left by the signature');
    assert.equal(st.keys, 1);
    assert.ok(st.backup && st.backup.acked_seq >= r.head_seq && !st.backup.rollback_detected, 'the agent resumed the stream where the service had it');
  });

  it('service SIGKILLed while the nodes stream: a new key is pending_backup and refuses to sign, then activates after the restart; nothing acknowledged is lost', async () => {
    const first = await createActiveKey();
    const before = await Promise.all(f.nodes.map((n) => nodeStatus(n.dir)));
    for (const st of before) assert.ok(st.backup && st.backup.acked_seq > 0 && st.backup.pending_keys === 0);

    await stopBackupService(f.service, 'SIGKILL');
    const { key, statuses } = await createKeyReporting(f.nodes, f.token, { threshold: 2, curve: 'ed25519' });
    assert.deepEqual(statuses, ['pending_backup', 'pending_backup', 'pending_backup'], 'the DKG answers say pending_backup');
    await assert.rejects(sign(key, clients(), utf8.encode('too early')), (err) => code(err) === 'key_pending_backup');
    await sign(first, clients(), utf8.encode('an acknowledged key signs through the outage'));

    await serveBackupService(f.servers, f.service);
    await withLogs(waitForActive(key, f.token, 30_000));
    await sign(key, clients(), utf8.encode('backed up now'));
    const heads = await streamHeads(f.service);
    before.forEach((st, i) => {
      const head = heads.get(`${f.accounts[i]}/${st.backup!.stream}`) ?? 0;
      assert.ok(head >= st.backup!.acked_seq, `${f.accounts[i]}: the service holds entry ${head}, below the acknowledged ${st.backup!.acked_seq}`);
    });
  });

  it('service SIGKILLed during a compaction upload: backup-now fails clearly, a restore has every acknowledged key, the next backup-now completes', async () => {
    const i = 2;
    const node = f.nodes[i]!;
    const proxy = await startProxy(() => f.service.url, () => stopBackupService(f.service, 'SIGKILL'));
    f.proxies.push(proxy);
    // The proxy stays for the tests after this one: node 3 streams through it from now on.
    tuneBackup(node.dir, { server: proxy.url });
    await restart(i);
    const backupNow = () => runCli(['node', 'backup-now', '--data-dir', node.dir, '--json']);

    await createActiveKey();
    const c1 = (JSON.parse(ok(await backupNow(), 'backup-now').stdout) as { compaction: { seq: number } }).compaction.seq;
    await createActiveKey();
    const st = await nodeStatus(node.dir);
    assert.ok(st.backup!.acked_seq > c1, 'entries acknowledged after the compaction');
    const ids = await storeKeyIds(node.dir);
    assert.equal(ids.length, st.keys);

    proxy.armed = true;
    const failed = await backupNow();
    assert.equal(failed.code, 1);
    assert.match(proxy.tripped ?? '', /\/compactions\/[^/]+\/chunks\/0$/, 'the service died as the first chunk was sent');
    assert.match(failed.stderr, /^lifeboat: error: backup service at http:\/\/127\.0\.0\.1:\d+ is unreachable/m);
    assert.equal((JSON.parse(failed.stdout) as { err_type: string }).err_type, 'peer_unreachable', 'with --json, the failure document on stdout');

    await serveBackupService(f.servers, f.service);
    const dir = join(f.root, 'node-3-restored');
    const r = restoreJson(ok(await restore(f.accounts[i]!, dir), 'node restore'));
    assert.equal(r.compaction_seq, c1, 'the previous compaction is still the current one');
    assert.ok(r.head_seq >= st.backup!.acked_seq);
    assert.equal(r.entries, r.head_seq - c1, 'and every entry after it');
    assert.deepEqual(await storeKeyIds(dir), ids, 'every acknowledged key');

    const done = JSON.parse(ok(await backupNow(), 'backup-now after the restart').stdout) as { compaction: { seq: number; keys: number }; acked_seq: number };
    assert.equal(done.compaction.seq, done.acked_seq);
    assert.ok(done.compaction.seq >= st.backup!.acked_seq);
    assert.equal(done.compaction.keys, ids.length);
  });

  it('refused restores: a wrong password fails with login_failed and leaves nothing; a node directory is refused (node_exists) and left as it was', async () => {
    const account = f.accounts[1]!;
    const wrongDir = join(f.root, 'restore-wrong-password');
    const occupied = f.nodes[1]!.dir;
    const occupiedFiles = ['node.json', 'vault.lbv', 'master.key'].map((name) => readFileSync(join(occupied, name)));
    const [wrong, intoNode] = await Promise.all([restore(account, wrongDir, 'not the password at all'), restore(account, occupied)]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /lifeboat: error: backup service at \S+: wrong account name or password/);
    assert.ok(!wrong.stderr.includes('not the password'));
    assert.equal(existsSync(wrongDir), false, 'no node left behind');

    assert.equal(intoNode.code, 1);
    assert.match(intoNode.stderr, /lifeboat: error: \S+ already holds a key node/);
    ['node.json', 'vault.lbv', 'master.key'].forEach((name, j) => assert.deepEqual(readFileSync(join(occupied, name)), occupiedFiles[j], `${name} unchanged`));

    // The node whose directory it was still signs.
    await sign(await createActiveKey(), clients(), utf8.encode('still serving'), { signers: [1, 2] });
  });

  it('a flood of login starts from other addresses does not stop a correct restore with the restore token', async () => {
    const i = 1;
    const account = f.accounts[i]!;
    assert.match(f.restoreTokens[i]!, /^lbr_[A-Za-z0-9_-]{43}$/, 'node backup-setup printed the restore token');
    // Junk starts from four addresses (3 each per minute) fill the account's anonymous lane (10).
    const flood: number[] = [];
    for (const from of ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']) for (let k = 0; k < 3; k++) flood.push(await loginStartFrom(account, from));
    assert.ok(flood.includes(429), `the flood fills the anonymous lane: ${flood.join(' ')}`);
    assert.equal(await loginStartFrom(account, '127.0.0.6'), 429, 'a fresh address finds it full');

    // What remains: a restore without the token waits for the window like everyone else...
    const blocked = await restore(account, join(f.root, 'restore-flooded'));
    assert.equal(blocked.code, 1);
    assert.match(blocked.stderr, /lifeboat: error: backup service at \S+: too many requests/);
    assert.match(blocked.stderr, /restore token/);
    assert.equal(existsSync(join(f.root, 'restore-flooded')), false);
    // ...and with it the owner gets through, and the node comes back whole.
    const dir = join(f.root, 'restore-with-token');
    const r = restoreJson(ok(await restore(account, dir, PASSWORD, f.restoreTokens[i]), 'node restore --restore-token'));
    assert.equal(r.fingerprint, f.fingerprints[i]);
    assert.deepEqual(await storeKeyIds(dir), await storeKeyIds(f.nodes[i]!.dir));
    assert.ok(!JSON.stringify(r).includes(f.restoreTokens[i]!), 'the token is not echoed');

    // A new token from the live node (a proof of the backup key, no password) replaces the old one.
    const renewed = JSON.parse(ok(await runCli(['node', 'backup-restore-token', '--data-dir', f.nodes[i]!.dir, '--json']), 'node backup-restore-token').stdout) as { restore_token: string };
    assert.match(renewed.restore_token, /^lbr_[A-Za-z0-9_-]{43}$/);
    assert.notEqual(renewed.restore_token, f.restoreTokens[i]);
    const stale = await restore(account, join(f.root, 'restore-stale-token'), PASSWORD, f.restoreTokens[i]);
    assert.equal(stale.code, 1);
    assert.match(stale.stderr, /lifeboat: error: backup service at \S+: the restore token is not valid for this account/);
    assert.equal(existsSync(join(f.root, 'restore-stale-token')), false);
  });
});

function restoreJson(r: RunResult): { fingerprint: string; keys: number; api_keys: number; head_seq: number; compaction_seq: number; entries: number; epoch: number } {
  return JSON.parse(r.stdout) as ReturnType<typeof restoreJson>;
}

/**
 * An HTTP proxy in front of the service. Armed, it SIGKILLs the service when a compaction chunk
 * upload (PUT .../compactions/<id>/chunks/<n>) arrives, before forwarding it; a request it cannot
 * forward loses its connection, as it would to a dead service.
 */
interface Proxy {
  url: string;
  /** Armed: the next compaction chunk upload kills the service first. */
  armed: boolean;
  /** The path of the chunk upload that tripped it. */
  tripped: string | undefined;
  close(): Promise<void>;
}

async function startProxy(target: () => string, kill: () => Promise<void>): Promise<Proxy> {
  const server: Server = createServer((req, res) => {
    void (async () => {
      if (proxy.armed && req.method === 'PUT' && /\/compactions\/[^/]+\/chunks\/\d+$/.test(req.url ?? '')) {
        proxy.armed = false;
        proxy.tripped = req.url;
        await kill();
      }
      const to = new URL(req.url ?? '/', target());
      const up = request(to, { method: req.method, headers: { ...req.headers, host: to.host }, agent: false }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const proxy: Proxy = {
    url: `http://127.0.0.1:${port}`,
    armed: false,
    tripped: undefined,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return proxy;
}
