/**
 * `lifeboat sign` with any t of a key's nodes, and key reference files (issue 13, point 4), on three
 * real `node serve` processes: a node that lost the key, a node that is down, a node that refuses
 * (its message limit), and one that fails in round two (behind a proxy that cuts that request) are
 * each replaced by the next node; fewer than t fails naming every node; `key create --out` writes a
 * reference that `sign --key-file` reads and `key import --key-file` updates, validated against the
 * nodes. Signatures are checked by OpenSSL (node:crypto), not by the project's code.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, verify as osslVerify } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, type RunResult } from '../src/drill/proc.js';
import { KeyNodeClient } from '../src/keynode/client.js';
import { fromHex, toB64u, utf8 } from '../src/util/bytes.js';
import { type NodeProcess, ok, serveNode, startNodeProcesses } from './helpers/keynode.js';
import { trackedTempDir } from './helpers/tmp.js';

const f = { root: '', nodes: [] as NodeProcess[], clientToken: '', operatorToken: '' };
const url = (i: number) => f.nodes[i]!.url;
const cli = (args: string[], token = f.clientToken) => runCli(args, { env: { LIFEBOAT_API_KEY: token }, timeoutMs: 120_000 });

interface Created {
  key_id: string;
  group_public_key: string;
}
interface Signed {
  signature: string;
  signers: string[];
  failures: { url: string; err_type: string; message: string }[];
}
interface Failed {
  ok: false;
  err_type: string;
  message: string;
  failures: { url: string; err_type: string; message: string; hint: string | null }[];
}

async function createKey(extra: string[] = []): Promise<Created> {
  return JSON.parse(ok(await cli(['key', 'create', '--nodes', [0, 1, 2].map(url).join(','), '--threshold', '2', '--curve', 'ed25519', '--json', ...extra]), 'key create').stdout) as Created;
}

function verifies(sigHex: string, message: string, groupKeyHex: string): boolean {
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: toB64u(fromHex(groupKeyHex, 'group key')) }, format: 'jwk' });
  return osslVerify(null, utf8.encode(message), key, fromHex(sigHex, 'signature'));
}

function signedOk(r: RunResult, message: string, key: Created): Signed {
  const s = JSON.parse(ok(r, 'sign').stdout) as Signed;
  assert.ok(verifies(s.signature, message, key.group_public_key), 'OpenSSL accepts the signature under the group key');
  return s;
}

function failed(r: RunResult, code = 1): Failed {
  assert.equal(r.code, code, `expected exit ${code}: ${r.stdout}${r.stderr}`);
  assert.match(r.stderr, /^lifeboat: error: /m);
  return JSON.parse(r.stdout) as Failed;
}

async function restart(i: number): Promise<void> {
  const n = f.nodes[i]!;
  await n.server.stop();
  f.nodes[i] = await serveNode(n.dir, new URL(n.url).host, n.fingerprint);
}

const unusedNonces = async (i: number) => (await new KeyNodeClient({ url: url(i), apiKey: f.operatorToken }).status()).unused_nonces as number;

describe('sign with any t nodes; key reference files (real processes)', { timeout: 300_000 }, () => {
  before(async () => {
    f.root = trackedTempDir('lb-sign-any-');
    Object.assign(f, await startNodeProcesses(f.root, 3));
  });
  after(async () => {
    await Promise.all(f.nodes.map((n) => n.server.stop()));
  });

  it('a node that lost the key (key_id_not_exists) is replaced by the next one; the warning and --json name it', async () => {
    const key = await createKey();
    ok(await cli(['key', 'delete', '--node', url(0), '--key', key.key_id, '--yes'], f.operatorToken), 'key delete');
    const r = await cli(['sign', '--key', key.key_id, '--nodes', [0, 1, 2].map(url).join(','), '--message-text', 'lost on node 1', '--json']);
    const s = signedOk(r, 'lost on node 1', key);
    assert.deepEqual(s.signers, [url(1), url(2)]);
    assert.deepEqual(s.failures.map((x) => [x.url, x.err_type]), [[url(0), 'key_id_not_exists']]);
    assert.match(r.stderr, new RegExp(`lifeboat: warning: key node at ${url(0)}: .*\\(key_id_not_exists\\); asking another node`));
    // Text output: the signature alone on stdout.
    const text = await cli(['sign', '--key', key.key_id, '--nodes', [0, 1, 2].map(url).join(','), '--message-text', 'plain']);
    assert.ok(verifies(ok(text).stdout.trim(), 'plain', key.group_public_key));
  });

  it('a node that is down (peer_unreachable) is replaced; with it and a lost key fewer than t remain: the failure names both', async () => {
    const key = await createKey();
    await f.nodes[1]!.server.stop();
    try {
      const s = signedOk(await cli(['sign', '--key', key.key_id, '--nodes', [1, 0, 2].map(url).join(','), '--message-text', 'node 2 is down', '--json']), 'node 2 is down', key);
      assert.deepEqual(s.signers, [url(0), url(2)]);
      assert.deepEqual(s.failures.map((x) => [x.url, x.err_type]), [[url(1), 'peer_unreachable']]);

      ok(await cli(['key', 'delete', '--node', url(2), '--key', key.key_id, '--yes'], f.operatorToken), 'key delete');
      const r = await cli(['sign', '--key', key.key_id, '--nodes', [0, 1, 2].map(url).join(','), '--message-text', 'too few', '--json']);
      const d = failed(r);
      assert.equal(d.err_type, 'insufficient_signers');
      assert.deepEqual(d.failures.map((x) => [x.url, x.err_type]), [[url(1), 'peer_unreachable'], [url(2), 'key_id_not_exists']]);
      for (const x of d.failures) assert.match(x.message, new RegExp(`key node at ${x.url}`));
      assert.match(d.message, /^1 of 3 nodes could sign, 2 needed: /);
      const line = r.stderr.split('\n').find((l) => l.startsWith('lifeboat: error: '))!;
      assert.match(line, new RegExp(`${url(1)}.*\\(peer_unreachable\\).*${url(2)}.*\\(key_id_not_exists\\) \\(insufficient_signers\\)$`));
      // All failing alike: the nodes' own err_type, with their hint.
      const alike = failed(await cli(['sign', '--key', 'key_nowhere', '--nodes', [0, 2].map(url).join(','), '--message-text', 'x', '--json']));
      assert.equal(alike.err_type, 'key_id_not_exists');
      assert.equal(alike.failures.length, 2);
    } finally {
      await restart(1);
    }
  });

  it('a node that refuses (its message limit is lower: message_too_large in round one) is replaced', async () => {
    const key = await createKey();
    ok(await runCli(['node', 'config', 'set', 'message_limit_bytes', '1KiB', '--data-dir', f.nodes[0]!.dir]), 'config set');
    await restart(0);
    try {
      const message = 'x'.repeat(2000);
      const s = signedOk(await cli(['sign', '--key', key.key_id, '--nodes', [0, 1, 2].map(url).join(','), '--message-text', message, '--json']), message, key);
      assert.deepEqual(s.signers, [url(1), url(2)]);
      assert.deepEqual(s.failures.map((x) => [x.url, x.err_type]), [[url(0), 'message_too_large']]);
    } finally {
      ok(await runCli(['node', 'config', 'set', 'message_limit_bytes', '1MiB', '--data-dir', f.nodes[0]!.dir]), 'config set');
      await restart(0);
    }
  });

  it('a node failing in round two: the round starts again with a fresh nonce on every signer, none reused', async () => {
    const key = await createKey();
    // A proxy in front of node 1 that passes round one on and cuts round two off.
    const target = url(0);
    let cut = 0;
    const proxy: Server = createServer((req, res) => {
      if (req.url?.includes('/signature-shares')) {
        cut++;
        req.socket.destroy();
        return;
      }
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        void fetch(target + req.url!, { method: req.method, headers: req.headers as Record<string, string>, body: chunks.length ? Buffer.concat(chunks) : undefined }).then(async (a) => {
          res.writeHead(a.status, { 'content-type': a.headers.get('content-type') ?? 'application/json' });
          res.end(Buffer.from(await a.arrayBuffer()));
        });
      });
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
    try {
      const before = await Promise.all([0, 1, 2].map(unusedNonces));
      const s = signedOk(await cli(['sign', '--key', key.key_id, '--nodes', [proxyUrl, url(1), url(2)].join(','), '--message-text', 'cut in round two', '--json']), 'cut in round two', key);
      assert.equal(cut, 1);
      assert.deepEqual(s.signers, [url(1), url(2)]);
      assert.deepEqual(s.failures.map((x) => [x.url, x.err_type]), [[proxyUrl, 'peer_unreachable']]);
      // Node 2's first nonce was spent by the cut round and its second by the signature: none left over.
      // Node 1 keeps the nonce whose round two never reached it (deleted at its TTL).
      assert.deepEqual(await Promise.all([0, 1, 2].map(unusedNonces)), [before[0]! + 1, before[1]!, before[2]!]);
    } finally {
      await new Promise((r) => proxy.close(r));
    }
  });

  it('key create --out writes a 0600 key reference; sign --key-file signs with it; key import --key-file records a node\'s new id', async () => {
    const ref = join(f.root, 'key.ref');
    const key = await createKey(['--out', ref]);
    assert.equal(statSync(ref).mode & 0o777, 0o600);
    const doc = JSON.parse(readFileSync(ref, 'utf8')) as { version: number; key_id: string; group_public_key: string; threshold: number; nodes: { url: string; key_id: string; fingerprint: string }[] };
    assert.deepEqual([doc.version, doc.key_id, doc.group_public_key, doc.threshold], [1, key.key_id, key.group_public_key, 2]);
    assert.deepEqual(doc.nodes.map((n) => [n.url, n.key_id, n.fingerprint]), f.nodes.map((n) => [n.url, key.key_id, n.fingerprint]));
    // An existing file is never overwritten: no key is made.
    const keysBefore = (await new KeyNodeClient({ url: url(0), apiKey: f.operatorToken }).status()).keys;
    assert.equal(failed(await cli(['key', 'create', '--nodes', [0, 1, 2].map(url).join(','), '--out', ref, '--json'])).err_type, 'file_exists');
    assert.equal((await new KeyNodeClient({ url: url(0), apiKey: f.operatorToken }).status()).keys, keysBefore);

    signedOk(await cli(['sign', '--key-file', ref, '--message-text', 'by reference', '--json']), 'by reference', key);
    // Node 1 loses the key; its saved export is imported again under a new id, which the reference records.
    const exp = join(f.root, 'node1.export');
    ok(await cli(['key', 'export', '--node', url(0), '--key', key.key_id, '--out', exp]), 'key export');
    ok(await cli(['key', 'delete', '--node', url(0), '--key', key.key_id, '--yes'], f.operatorToken), 'key delete');
    const stale = signedOk(await cli(['sign', '--key-file', ref, '--message-text', 'node 1 lost it', '--json']), 'node 1 lost it', key);
    assert.deepEqual(stale.failures.map((x) => x.err_type), ['key_id_not_exists']);
    // key import --key-file naming a node the reference does not have: refused before anything is imported.
    const bytes = readFileSync(ref);
    assert.equal(failed(await cli(['key', 'import', '--node', 'http://127.0.0.1:9', '--in', exp, '--key-file', ref, '--json'])).err_type, 'node_not_in_key_ref');
    assert.deepEqual(readFileSync(ref), bytes);
    const imported = JSON.parse(ok(await cli(['key', 'import', '--node', `${url(0)}/`, '--in', exp, '--key-file', ref, '--json']), 'key import').stdout) as { key_id: string; key_file: string };
    assert.notEqual(imported.key_id, key.key_id);
    const updated = JSON.parse(readFileSync(ref, 'utf8')) as typeof doc;
    assert.deepEqual(updated.nodes.map((n) => n.key_id), [imported.key_id, key.key_id, key.key_id]);
    assert.equal(statSync(ref).mode & 0o777, 0o600);
    const fresh = signedOk(await cli(['sign', '--key-file', ref, '--message-text', 'no #NEW_ID by hand', '--json']), 'no #NEW_ID by hand', key);
    assert.deepEqual([fresh.signers, fresh.failures], [[url(0), url(1)], []]);
    // key info --key-file: every node, each under its own id.
    const info = JSON.parse(ok(await cli(['key', 'info', '--key-file', ref, '--json'])).stdout) as { ok: boolean; nodes: { url: string; key_id: string; status: string }[] };
    assert.equal(info.ok, true);
    assert.deepEqual(info.nodes.map((n) => [n.key_id, n.status]), [[imported.key_id, 'active'], [key.key_id, 'active'], [key.key_id, 'active']]);
  });

  it('a key reference is validated: another version is refused before any node is asked; a group key the nodes do not report, or another node at a pinned URL, is a refusal for safety', async () => {
    const ref = join(f.root, 'checked.ref');
    const key = await createKey(['--out', ref]);
    const other = await createKey();
    const doc = JSON.parse(readFileSync(ref, 'utf8')) as Record<string, unknown> & { nodes: { url: string; fingerprint: string }[] };
    const write = (name: string, edit: (d: typeof doc) => void): string => {
      const d = structuredClone(doc);
      edit(d);
      const p = join(f.root, name);
      writeFileSync(p, JSON.stringify(d), { mode: 0o600 });
      return p;
    };
    const v2 = failed(await cli(['sign', '--key-file', write('v2.ref', (d) => (d.version = 2)), '--message-text', 'x', '--json']));
    assert.equal(v2.err_type, 'unsupported_version');
    assert.equal(failed(await cli(['sign', '--key-file', ref, '--key', key.key_id, '--message-text', 'x', '--json']), 2).err_type, 'usage');
    // Another key's group key under this key's id: every node is set aside, exit 3.
    const wrong = failed(await cli(['sign', '--key-file', write('wrong.ref', (d) => (d.group_public_key = other.group_public_key)), '--message-text', 'x', '--json']), 3);
    assert.equal(wrong.err_type, 'key_ref_mismatch');
    assert.equal(wrong.failures.length, 3);
    const wrongInfo = await cli(['key', 'info', '--key-file', join(f.root, 'wrong.ref'), '--json']);
    assert.equal(wrongInfo.code, 1);
    assert.deepEqual((JSON.parse(wrongInfo.stdout) as { nodes: { err_type: string }[] }).nodes.map((n) => n.err_type), ['key_ref_mismatch', 'key_ref_mismatch', 'key_ref_mismatch']);
    // Node 1's URL pinned to node 2's fingerprint: node 1 is set aside, nodes 2 and 3 sign.
    const pinned = write('pinned.ref', (d) => (d.nodes[0]!.fingerprint = d.nodes[1]!.fingerprint));
    const s = signedOk(await cli(['sign', '--key-file', pinned, '--message-text', 'pinned', '--json']), 'pinned', key);
    assert.deepEqual(s.failures.map((x) => [x.url, x.err_type]), [[url(0), 'peer_identity_mismatch']]);
  });
});
