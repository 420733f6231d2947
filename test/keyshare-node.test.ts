/**
 * Key nodes publishing their key shares to the public log, all real processes on loopback: one `log
 * serve` with one `log witness serve`, three `node serve` made by `node init` with 24 words (two in
 * passphrase mode, one in recipient mode), `key create` and `sign` through the CLI. A key is usable only
 * once the log holds every node's record; the log down at creation keeps it pending until the log is
 * back; a node SIGKILLed with its record sealed but unacknowledged sends those very bytes after restart;
 * a node made without words publishes what it holds after `node mnemonic setup`; and a node destroyed
 * with its data directory comes back from the log and its words alone, and signs.
 */
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ctEqual } from '../src/util/bytes.js';
import { newApiKey } from '../src/keynode/apikeys.js';
import { KeyNodeClient } from '../src/keynode/client.js';
import { encodeFrostPublic, groupPublicKey, sealKeyShare } from '../src/keynode/frost/index.js';
import { closeNode, openNode } from '../src/keynode/runtime.js';
import { openKeyNodeStore } from '../src/keynode/store/index.js';
import { generateOperatorMnemonic, type Mnemonic } from '../src/keyshare/mnemonic.js';
import { KEYSHARE_RECORD_TYPE, parseRecord } from '../src/keyshare/record.js';
import { entrySubmitter, parseEntry } from '../src/log/entry.js';
import { addEntry } from '../src/log/server/client.js';
import { type CliResult, type RunningCli, runCli, startCli } from './helpers/cli.js';
import { registerTokenInDir } from './helpers/keynode.js';
import { dealtKey } from './helpers/keyshare.js';
import { readWholeLog } from './helpers/logserver.js';
import { trackedTempDir } from './helpers/tmp.js';

/** Keys made in-process for the bulk publication (node 4). */
const BULK = 200;
const bulkId = (i: number) => `bulk_${String(i).padStart(4, '0')}`;

interface Node {
  name: string;
  dir: string;
  words: Mnemonic | undefined;
  identity: string;
  port: string;
  server?: RunningCli;
}

function ok(r: CliResult, what: string): string {
  assert.equal(r.code, 0, `${what}: ${r.stderr}`);
  return r.stdout;
}

async function okJson<T = Record<string, unknown>>(args: string[], opts: Parameters<typeof runCli>[1] = {}): Promise<T> {
  return JSON.parse(ok(await runCli(args, opts), args.slice(0, 2).join(' '))) as T;
}

/** Polls `check` until it holds (a condition, not a sleep): fails after `ms`. */
async function until(what: string, check: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('key nodes publishing key shares to the public log (processes)', { timeout: 300_000 }, () => {
  const root = trackedTempDir('lifeboat-ksnode-');
  const logDir = join(root, 'log');
  const running: RunningCli[] = [];
  const token = newApiKey('client', 'c').token;
  let logKey = '';
  let witnessKey = '';
  let logUrl = '';
  let log: RunningCli | undefined;
  const nodes: Node[] = [];

  const start = async (args: string[]): Promise<RunningCli> => {
    const r = await startCli(args, { timeoutMs: 30_000 });
    running.push(r);
    return r;
  };
  const startLog = async () => {
    log = await start(['log', 'serve', '--data-dir', logDir, '--listen', logUrl ? `127.0.0.1:${new URL(logUrl).port}` : '127.0.0.1:0', '--log-level', 'silent', '--json']);
    logUrl = log.url;
  };
  const serve = async (n: Node) => {
    n.server = await start(['node', 'serve', '--data-dir', n.dir, '--listen', `127.0.0.1:${n.port}`, '--json']);
    n.port = new URL(n.server.url).port;
  };
  const url = (n: Node) => `http://127.0.0.1:${n.port}`;
  const urls = (...ns: Node[]) => ns.map(url).join(',');
  const client = (n: Node) => new KeyNodeClient({ url: url(n), apiKey: token });
  const keyStatus = async (n: Node, keyId: string) => (await client(n).key(keyId)).status;
  const withStore = async <T>(n: Node, fn: (s: Awaited<ReturnType<typeof openKeyNodeStore>>) => Promise<T>): Promise<T> => {
    const s = await openKeyNodeStore(`sqlite:${join(n.dir, 'store.sqlite')}`);
    try {
      return await fn(s);
    } finally {
      await s.close();
    }
  };
  const logSetup = (n: Node) => ['node', 'log-setup', '--log', logUrl, '--log-key', logKey, '--witness-key', witnessKey, '--data-dir', n.dir, '--json'];
  /** A node made by `node init`: with words given on fd 0 (mode), or --no-mnemonic. */
  const makeNode = async (name: string, mode: 'passphrase' | 'recipient' | 'none'): Promise<Node> => {
    const dir = join(root, name);
    const words = mode === 'none' ? undefined : generateOperatorMnemonic();
    const args = ['node', 'init', '--data-dir', dir, '--json', ...(words ? ['--mnemonic-fd', '0', '--keyshare-mode', mode] : ['--no-mnemonic'])];
    const init = await okJson<{ identity: string; keyshare_mode: string | null }>(args, { input: words?.phrase });
    assert.equal(init.keyshare_mode, words ? mode : null);
    if (words) await okJson(logSetup({ dir } as Node));
    ok(await runCli(['node', 'config', 'set', 'durable_wait_ms', '1500', '--data-dir', dir]), 'config set');
    ok(await runCli(['log', 'enrol', '--name', name, '--identity', init.identity, '--data-dir', logDir]), 'log enrol');
    await registerTokenInDir(dir, token, 'client');
    return { name, dir, words, identity: init.identity, port: '0' };
  };
  const createKey = async (ns: Node[], wait: boolean) =>
    okJson<{ key_id: string; status: string }>(['key', 'create', '--nodes', urls(...ns), '--threshold', '2', '--curve', 'ed25519', ...(wait ? ['--wait'] : []), '--json'], { env: { LIFEBOAT_API_KEY: token } });
  const sign = (keyId: string, ns: Node[]) => runCli(['sign', '--key', keyId, '--nodes', urls(...ns), '--message-text', 'hello', '--json'], { env: { LIFEBOAT_API_KEY: token } });
  const audit = async () => {
    const r = await runCli(['log', 'audit', '--log', logUrl, '--log-key', logKey, '--witness', witnessKey, '--keys', '--json', '--state', join(root, `audit-${Date.now()}.json`)]);
    return JSON.parse(r.stdout) as { keys: { key_id: string; recoverable: boolean; members: { node: string; status: string }[] }[] };
  };
  /** The keyshare entries of `identity`'s node for `keyId` in the whole log, as bytes. */
  const recordsInLog = async (identity: string, keyId: string): Promise<Uint8Array[]> => {
    const { entries } = await readWholeLog(logUrl, logKey);
    return entries.filter((b) => {
      const e = parseEntry(b);
      return e.recordType === KEYSHARE_RECORD_TYPE && parseRecord(e.payload).keyId === keyId && entrySubmitter(e) === identity;
    });
  };

  /** Puts `count` trusted-dealer ed25519 keys into a stopped node's store, as an import would. */
  const insertBulkKeys = async (n: Node, count: number): Promise<void> => {
    const opened = await openNode(n.dir);
    try {
      for (let i = 0; i < count; i++) {
        const share = dealtKey('ed25519', bulkId(i))[i % 3]!;
        await opened.store.insertKey({
          keyId: share.keyId,
          curve: share.curve,
          threshold: 2,
          maxSigners: 3,
          identifier: share.identifier,
          groupPublicKey: groupPublicKey(share.curve, share.public.commitments[0]!),
          publicPackage: encodeFrostPublic(share.curve, share.public),
          encryptedShare: sealKeyShare(opened.secrets.storageKey, share),
          status: 'active',
          origin: 'import',
          createdAt: Date.now(),
          tenant: 'default',
        });
      }
    } finally {
      await closeNode(opened);
    }
  };

  before(async () => {
    const init = await okJson<{ verifier_key: string }>(['log', 'init', '--origin', 'ksnode.lifeboat.example/log', '--data-dir', logDir, '--interval', '100ms', '--json']);
    logKey = init.verifier_key;
    const wDir = join(root, 'witness');
    witnessKey = (await okJson<{ vkey: string }>(['log', 'witness', 'init', '--name', 'w1.lifeboat.example', '--data-dir', wDir, '--json'])).vkey;
    ok(await runCli(['log', 'witness', 'add-log', '--vkey', logKey, '--data-dir', wDir]), 'add-log');
    const w = await start(['log', 'witness', 'serve', '--data-dir', wDir, '--listen', '127.0.0.1:0', '--log-level', 'silent', '--json']);
    ok(await runCli(['log', 'witnesses', 'add', '--vkey', witnessKey, '--url', w.url, '--quorum', '1', '--data-dir', logDir]), 'witnesses add');
    await startLog();
    nodes.push(...(await Promise.all([makeNode('node1', 'passphrase'), makeNode('node2', 'passphrase'), makeNode('node3', 'recipient')])));
    await Promise.all(nodes.map(serve));
  });
  after(async () => {
    for (const r of running) if (r.child.exitCode === null && r.child.signalCode === null) await r.stop('SIGKILL');
  });

  it('a mistyped mnemonic at node init is refused by name, and nothing is written', async () => {
    const m = generateOperatorMnemonic();
    const words = m.phrase.split(' ');
    const dir = join(root, 'typo');
    const typo = [...words.slice(0, 6), 'abandonn', ...words.slice(7)].join(' ');
    const r1 = await runCli(['node', 'init', '--data-dir', dir, '--mnemonic-fd', '0', '--json'], { input: typo });
    assert.equal(r1.code, 1);
    assert.equal(JSON.parse(r1.stdout).err_type, 'mnemonic_word_unknown');
    assert.match(JSON.parse(r1.stdout).message, /word 7/);
    const swapped = [words[1], words[0], ...words.slice(2)].join(' ');
    const r2 = await runCli(['node', 'init', '--data-dir', dir, '--mnemonic-fd', '0', '--json'], { input: swapped });
    if (words[0] !== words[1]) assert.equal(JSON.parse(r2.stdout).err_type, 'mnemonic_checksum');
    const r3 = await runCli(['node', 'init', '--data-dir', dir, '--json']);
    assert.equal(JSON.parse(r3.stdout).err_type, 'secret_needs_terminal', 'generated words never go to a pipe');
    for (const r of [r1, r2, r3]) assert.ok(!r.stdout.includes(words.slice(7).join(' ')) && !r.stderr.includes(words.slice(7).join(' ')), 'the words are never echoed');
    assert.equal(existsSync(dir), false, 'nothing was written');
  });

  let keyA = '';
  it('a key is usable once the log holds every node’s record: node status --keys shows the entry, log audit --keys finds it recoverable', async () => {
    const k = await createKey(nodes, true);
    keyA = k.key_id;
    assert.equal(k.status, 'active');
    const st = await okJson<{ channels: { required: string[]; held: { log: number }; pending_keys: number; keyshare: { mode: string } }; key_channels: { key_id: string; status: string; epoch: number; channels: { log: { index: number; checkpoint_size: number } } }[] }>(['node', 'status', '--keys', '--json', '--data-dir', nodes[2]!.dir]);
    assert.deepEqual(st.channels.required, ['log']);
    assert.equal(st.channels.keyshare.mode, 'recipient');
    const row = st.key_channels.find((r) => r.key_id === keyA)!;
    assert.equal(row.status, 'active');
    assert.equal(row.epoch, 1);
    assert.ok(Number.isInteger(row.channels.log.index) && row.channels.log.checkpoint_size > row.channels.log.index);
    const pubs = await withStore(nodes[2]!, (s) => s.listKeysharePublications(keyA));
    assert.equal(pubs.length, 1);
    assert.equal(JSON.parse(pubs[0]!.proof).type, 'lifeboat-log-inclusion-proof', 'the inclusion proof document is kept');
    const cov = (await audit()).keys.find((c) => c.key_id === keyA)!;
    assert.equal(cov.recoverable, true);
    assert.deepEqual(cov.members.map((m) => m.status), ['current', 'current', 'current']);
    ok(await sign(keyA, nodes.slice(0, 2)), 'sign');
    // key info and key list show the same, over the API
    const env = { LIFEBOAT_API_KEY: token };
    const info = await okJson<{ epoch: number; channels: { log: { index: number } } }>(['key', 'info', '--node', url(nodes[2]!), '--key', keyA, '--json'], { env });
    assert.deepEqual([info.epoch, info.channels.log.index], [1, row.channels.log.index]);
    const line = ok(await runCli(['key', 'list', '--node', url(nodes[2]!)], { env }), 'key list').split('\n').find((l) => l.startsWith(keyA))!;
    assert.match(line, new RegExp(`epoch 1  held log#${row.channels.log.index}$`));
  });

  it('the log down at key creation: the key stays pending_backup and refuses to sign, then activates on its own when the log is back', async () => {
    await log!.stop('SIGTERM');
    const k = await createKey(nodes, false);
    assert.equal(k.status, 'pending_backup');
    for (const n of nodes) assert.equal(await keyStatus(n, k.key_id), 'pending_backup');
    const refused = await sign(k.key_id, nodes.slice(0, 2));
    assert.notEqual(refused.code, 0);
    assert.match(refused.stdout + refused.stderr, /key_pending_backup/);
    const st = await okJson<{ channels: { pending_keys: number; keyshare: { last_error: string | null } } }>(['node', 'status', '--json', '--data-dir', nodes[0]!.dir]);
    assert.ok(st.channels.pending_keys >= 1);
    await until('the publisher reports the log unreachable', async () => (await withStore(nodes[0]!, (s) => s.getMeta('keyshare_last_error'))) !== '');
    await startLog();
    await until('the key is active on every node', async () => (await Promise.all(nodes.map((n) => keyStatus(n, k.key_id)))).every((s) => s === 'active'));
    ok(await sign(k.key_id, nodes.slice(1, 3)), 'sign after the log came back');
  });

  it('a node SIGKILLed between the DKG commit and the publication sends the very entry it sealed after restart, once', async () => {
    const [n1] = nodes as [Node];
    await log!.stop('SIGTERM');
    const k = await createKey(nodes, false);
    assert.equal(k.status, 'pending_backup');
    // the record is sealed and stored before the first send, which fails with the log down
    let sealed: Uint8Array | null = null;
    await until('node 1 sealed its entry', async () => {
      sealed = await withStore(n1, async (s) => (await s.listKeyshareOutbox(100)).find((r) => r.keyId === k.key_id)?.entry ?? null);
      return sealed !== null;
    });
    await n1.server!.stop('SIGKILL');
    await startLog();
    // as if the node's send had reached the log just before the kill: the log holds those bytes already
    const sent = await addEntry(logUrl, sealed!);
    await serve(n1);
    await until('the key is active on node 1', async () => (await keyStatus(n1, k.key_id)) === 'active');
    const pub = (await withStore(n1, (s) => s.listKeysharePublications(k.key_id)))[0]!;
    assert.equal(pub.index, sent.index, 'the log answered the index it had given those bytes');
    const inLog = await recordsInLog(n1.identity, k.key_id);
    assert.equal(inLog.length, 1, 'one record of the key by node 1, not a second with other bytes');
    assert.ok(ctEqual(inLog[0]!, sealed!));
    await until('every node published', async () => (await Promise.all(nodes.map((n) => keyStatus(n, k.key_id)))).every((s) => s === 'active'));
  });

  let keyOld = '';
  it('node mnemonic setup on a node made without one publishes the keys it already holds, many at a time: 200 adds share checkpoints', async () => {
    const n4 = await makeNode('node4', 'none');
    await serve(n4);
    const k = await createKey([nodes[0]!, nodes[1]!, n4], true);
    keyOld = k.key_id;
    assert.equal(await keyStatus(n4, keyOld), 'active', 'no channel required on node 4');
    assert.equal((await audit()).keys.find((c) => c.key_id === keyOld)!.members.length, 2, 'node 4 has published nothing');
    await n4.server!.stop('SIGTERM');
    await insertBulkKeys(n4, BULK);
    const words = generateOperatorMnemonic();
    const setup = await okJson<{ queued: number; keyshare_mode: string }>(['node', 'mnemonic', 'setup', '--mnemonic-fd', '0', '--data-dir', n4.dir, '--json'], { input: words.phrase });
    assert.deepEqual([setup.queued, setup.keyshare_mode], [BULK + 1, 'passphrase']);
    const again = await runCli(['node', 'mnemonic', 'setup', '--mnemonic-fd', '0', '--data-dir', n4.dir, '--json'], { input: words.phrase });
    assert.equal(JSON.parse(again.stdout).err_type, 'mnemonic_configured');
    await okJson(logSetup(n4));
    await serve(n4);
    await until('node 4 published the key it held', async () => (await withStore(n4, (s) => s.listKeyChannels(keyOld))).some((c) => c.channel === 'log'));
    const cov = (await audit()).keys.find((c) => c.key_id === keyOld)!;
    assert.deepEqual(cov.members.map((m) => m.status), ['current', 'current', 'current']);
    assert.ok(cov.members.some((m) => m.node === n4.identity));
    await until('node 4 published every key', async () => (await withStore(n4, (s) => s.countKeyChannels())).log === BULK + 1, 120_000);
    // One add at a time waits for a checkpoint each: one distinct checkpoint per key. Many in flight share them.
    const sizes = new Set<number>();
    await withStore(n4, async (s) => {
      for (let i = 0; i < BULK; i++) for (const p of await s.listKeysharePublications(bulkId(i))) sizes.add(p.checkpointSize);
    });
    assert.ok(sizes.size <= BULK / 4, `${BULK} publications came back with ${sizes.size} distinct checkpoints`);
    assert.deepEqual(await withStore(n4, (s) => s.countKeyshareOutbox()), { unsealed: 0, sealed: 0 });
    await n4.server!.stop('SIGTERM');
  });

  it('end to end: node 1 destroyed with its data directory is recovered from the log with its 24 words alone, and signs', async () => {
    const n1 = nodes[0]!;
    await n1.server!.stop('SIGTERM');
    rmSync(n1.dir, { recursive: true, force: true });
    const r = await okJson<{ keys: { key_id: string; epoch: number }[]; identity: string; configured: unknown }>(
      ['keyshare', 'recover', '--log', logUrl, '--log-key', logKey, '--witness', witnessKey, '--node-identity', n1.identity, '--data-dir', n1.dir, '--json'],
      { env: { LIFEBOAT_MNEMONIC: n1.words!.phrase } },
    );
    assert.equal(r.identity, n1.identity);
    assert.ok(r.keys.some((k) => k.key_id === keyA) && r.keys.some((k) => k.key_id === keyOld));
    await registerTokenInDir(n1.dir, token, 'client');
    await serve(n1);
    const signed = JSON.parse(ok(await sign(keyA, [n1, nodes[1]!]), 'sign with the recovered node')) as { signature: string };
    assert.match(signed.signature, /^[0-9a-f]{128}$/);
    // it came back with its words and its log: the log holds what it recovered, and it publishes its next keys
    assert.deepEqual(r.configured, { keyshare_mode: 'passphrase', logs: [logUrl] });
    const st = await okJson<{ channels: { required: string[]; keyshare: { mode: string; logs: string[] } }; key_channels: { key_id: string; channels: { log: { index: number } } }[] }>(['node', 'status', '--keys', '--json', '--data-dir', n1.dir]);
    assert.deepEqual([st.channels.required, st.channels.keyshare.mode, st.channels.keyshare.logs], [['log'], 'passphrase', [logUrl]]);
    assert.ok(Number.isInteger(st.key_channels.find((k) => k.key_id === keyA)!.channels.log.index), 'the log holds the recovered key');
    const k = await createKey(nodes, true);
    assert.equal(k.status, 'active', 'the recovered node published its part of a new key');
    const cov = (await audit()).keys.find((c) => c.key_id === k.key_id)!;
    assert.ok(cov.members.some((m) => m.node === n1.identity && m.status === 'current'));
  });
});
