/**
 * The key node CLI with real processes on loopback (issue 8, points 7 to 9): `sign` with messages from
 * a file and from stdin up to the node's limit (1 MiB by default, checked by verifiers outside the
 * project: OpenSSL through node:crypto for Ed25519, noble's schnorr.verify for BIP-340) and refused
 * past it by name, in round one (no nonce is drawn); `node config get|set` (validated, refusals leave node.json byte-identical, a change
 * applies after a restart); `--wrapping-key` in every form an operator may paste; `key create` naming a
 * pending_backup key and waiting for it only with --wait; `node serve --json` printing its line first.
 * The tests share one fleet of three nodes and run in order.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, verify as osslVerify } from 'node:crypto';
import { closeSync, existsSync, ftruncateSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { schnorr } from '@noble/curves/secp256k1.js';
import { addBackupAccounts, type BackupServiceProc, serveBackupService, setUpNodeBackup, stopBackupService, waitForActive } from '../src/drill/backup-scenarios.js';
import { type RunningServer, runCli, type RunResult } from '../src/drill/proc.js';
import { randomBytes } from '../src/crypto/random.js';
import { KeyNodeClient } from '../src/keynode/client.js';
import { openKeyNodeStore } from '../src/keynode/store/index.js';
import { fromHex, toB64u, toHex, utf8 } from '../src/util/bytes.js';
import { startCli } from './helpers/cli.js';
import { type NodeProcess, ok, serveNode, startNodeProcesses } from './helpers/keynode.js';
import { trackedTempDir } from './helpers/tmp.js';

interface Fleet {
  root: string;
  nodes: NodeProcess[];
  clientToken: string;
  operatorToken: string;
  servers: RunningServer[];
}
const f: Fleet = { root: '', nodes: [], clientToken: '', operatorToken: '', servers: [] };

const urls = (idx = [0, 1, 2]) => idx.map((i) => f.nodes[i]!.url).join(',');
const cli = (args: string[], opts: { token?: string; input?: string } = {}) => runCli(args, { env: { LIFEBOAT_API_KEY: opts.token ?? f.clientToken }, input: opts.input, timeoutMs: 120_000 });

/** Exit 1 in the CLI's voice, naming `pattern` on stderr, nothing on stdout. */
function failsWith(r: RunResult, pattern: RegExp): void {
  assert.equal(r.code, 1, `expected exit 1, got ${r.code}: ${r.stdout}${r.stderr}`);
  assert.match(r.stderr, /^lifeboat: error: /m);
  assert.match(r.stderr, pattern);
  assert.equal(r.stdout, '');
}

/** Ed25519 through node:crypto (OpenSSL), not the project's code nor noble. */
function opensslVerifiesEd25519(sigHex: string, message: Uint8Array, groupKeyHex: string): boolean {
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: toB64u(fromHex(groupKeyHex, 'group key')) }, format: 'jwk' });
  return osslVerify(null, message, key, fromHex(sigHex, 'signature'));
}

async function createKey(curve: string, nodes = urls()): Promise<{ key_id: string; group_public_key: string; status: string; nodes: { url: string; status: string }[] }> {
  return JSON.parse(ok(await cli(['key', 'create', '--nodes', nodes, '--threshold', '2', '--curve', curve, '--json']), 'key create').stdout) as never;
}

/** Stops node i and serves it again on the same port (it reads node.json again). */
async function restart(i: number): Promise<void> {
  const n = f.nodes[i]!;
  await n.server.stop();
  f.nodes[i] = await serveNode(n.dir, new URL(n.url).host, n.fingerprint);
}

describe('key node CLI (real processes)', { timeout: 300_000 }, () => {
  before(async () => {
    f.root = trackedTempDir('lb-keynode-cli-');
    Object.assign(f, await startNodeProcesses(f.root, 3));
  });
  after(async () => {
    await Promise.all([...f.nodes.map((n) => n.server.stop()), ...f.servers.map((s) => s.stop())]);
  });

  it('sign: a 1 MiB message from --message-file and a text from stdin (--message-file -); outside verifiers accept both', async () => {
    const [ed, bip] = [await createKey('ed25519'), await createKey('bip340')];
    assert.equal(ed.status, 'active');
    const message = randomBytes(1024 * 1024);
    const file = join(f.root, 'one-mib.bin');
    writeFileSync(file, message);
    const [edSig, bipSig, stdinSig] = await Promise.all([
      cli(['sign', '--key', ed.key_id, '--nodes', urls([0, 1]), '--message-file', file]),
      cli(['sign', '--key', bip.key_id, '--nodes', urls([1, 2]), '--message-file', file, '--json']),
      cli(['sign', '--key', ed.key_id, '--nodes', urls([2, 0]), '--message-file', '-'], { input: 'pay 3 coins to alice\n' }),
    ]);
    assert.ok(opensslVerifiesEd25519(ok(edSig!, 'sign ed25519').stdout.trim(), message, ed.group_public_key), 'OpenSSL verifies the 1 MiB Ed25519 signature');
    const bipOut = JSON.parse(ok(bipSig!, 'sign bip340').stdout) as { signature: string };
    assert.ok(schnorr.verify(fromHex(bipOut.signature, 'sig'), message, fromHex(bip.group_public_key, 'pk')), 'noble schnorr.verify accepts the 1 MiB BIP-340 signature');
    assert.equal(schnorr.verify(fromHex(bipOut.signature, 'sig'), message.subarray(1), fromHex(bip.group_public_key, 'pk')), false);
    assert.ok(opensslVerifiesEd25519(ok(stdinSig!, 'sign stdin').stdout.trim(), utf8.encode('pay 3 coins to alice\n'), ed.group_public_key), 'stdin bytes are signed as they are');
  });

  it('sign: a message over the limit is refused naming it (just over, far over, over any node’s limit); no message or two is a usage error', async () => {
    const ed = await createKey('ed25519');
    const justOver = join(f.root, 'over.bin');
    writeFileSync(justOver, randomBytes(1024 * 1024 + 1));
    const farOver = join(f.root, 'far-over.bin');
    writeFileSync(farOver, randomBytes(3 * 1024 * 1024));
    const huge = join(f.root, 'huge.bin');
    const fd = openSync(huge, 'w');
    ftruncateSync(fd, 16 * 1024 * 1024 + 1);
    closeSync(fd);
    const base = ['sign', '--key', ed.key_id, '--nodes', urls([0, 1])];
    const unusedNonces = () => Promise.all([0, 1].map(async (i) => (await new KeyNodeClient({ url: f.nodes[i]!.url, apiKey: f.operatorToken }).status()).unused_nonces));
    const noncesBefore = await unusedNonces();
    const [a, b, c, d, e] = await Promise.all([
      cli([...base, '--message-file', justOver]),
      cli([...base, '--message-file', farOver]),
      cli([...base, '--message-file', huge]),
      cli(base),
      cli([...base, '--message-text', 'x', '--message-file', '-'], { input: 'y' }),
    ]);
    failsWith(a!, /the message is 1048577 bytes, over this node's limit of 1048576 bytes \(1 MiB\) \(message_too_large\)\nlifeboat: hint: .*node config set message_limit_bytes/);
    // Refused in round one, which carries the message's length: the size is named, and no nonce is drawn.
    failsWith(b!, /the message is 3145728 bytes, over this node's limit of 1048576 bytes \(1 MiB\)/);
    assert.deepEqual(await unusedNonces(), noncesBefore, 'an over-limit sign leaves no unused nonce on any node');
    failsWith(c!, /over the largest message limit a node can have, 16777216 bytes \(16 MiB\)/);
    // A command line that names no message, or two: a usage error (exit 2).
    for (const r of [d!, e!]) {
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /give exactly one of --message HEX, --message-text TEXT or --message-file PATH \(- for stdin\) \(usage\)/);
    }
    failsWith(await cli([...base, '--message-file', f.root]), /--message-file .* is a directory/);
    failsWith(await cli([...base, '--message-file', join(f.root, 'missing.bin')]), /message file not found at /);
    const help = ok(await cli(['sign', '--help']), 'sign --help').stdout;
    assert.match(help, /--message-file <path>/);
    assert.match(help, /message_limit_bytes setting \(default\s+1048576 bytes \(1 MiB\)/);
  });

  it('node config: refused values change nothing (node.json byte-identical); accepted ones are written 0600 and apply after a restart, as the command says', async () => {
    const dir = f.nodes[0]!.dir;
    const config = join(dir, 'node.json');
    const before = readFileSync(config);
    const refused: [string[], RegExp][] = [
      [['export.plaintext', 'yes'], /export\.plaintext must be true or false, not "yes"/],
      [['export.enabled', '1'], /export\.enabled must be true or false/],
      [['message_limit_bytes', '0'], /message_limit_bytes must be a whole number of bytes from 1 to 16777216/],
      [['message_limit_bytes', '17MiB'], /message_limit_bytes must be a whole number of bytes from 1 to 16777216/],
      [['nonce_ttl_seconds', '5'], /nonce_ttl_seconds must be a whole number of seconds from 10 to 86400/],
      [['backup.wait_ms', '0'], /backup\.wait_ms: this node streams to no backup service/],
      [['failover', 'http://x'], /failover is not set by `node config set` \(invalid_input\)\nlifeboat: hint: use `lifeboat node pair --failover`/],
      [['no_such_setting', '1'], /unknown setting "no_such_setting" \(invalid_input\)\nlifeboat: hint: settings: export\.enabled, export\.plaintext, message_limit_bytes/],
    ];
    const results = await Promise.all(refused.map(([args]) => cli(['node', 'config', 'set', ...args, '--data-dir', dir])));
    results.forEach((r, i) => failsWith(r, refused[i]![1]));
    assert.deepEqual(readFileSync(config), before, 'a refused set leaves node.json byte-identical');

    const set = async (name: string, value: string) => JSON.parse(ok(await cli(['node', 'config', 'set', name, value, '--data-dir', dir, '--json']), `config set ${name}`).stdout) as { value: unknown; previous: unknown; restart_required: boolean };
    const text = ok(await cli(['node', 'config', 'set', 'message_limit_bytes', '1KiB', '--data-dir', dir]), 'config set').stdout;
    assert.equal(text, 'message_limit_bytes: 1048576 -> 1024; restart `lifeboat node serve` to apply (node.json is read at start)\n');
    assert.deepEqual(await set('export.plaintext', 'true'), { ok: true, name: 'export.plaintext', value: true, previous: false, changed: true, restart_required: false, apply: 'sighup' });
    assert.deepEqual(await set('export.plaintext', 'true'), { ok: true, name: 'export.plaintext', value: true, previous: true, changed: false, restart_required: false });
    assert.equal(statSync(config).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dir).filter((n) => n.includes('.tmp')), [], 'no temp file left behind');
    const got = JSON.parse(ok(await cli(['node', 'config', 'get', '--data-dir', dir, '--json']), 'config get').stdout) as { name: string; value: unknown }[];
    assert.deepEqual(
      got.filter((r) => ['export.enabled', 'export.plaintext', 'message_limit_bytes', 'nonce_ttl_seconds'].includes(r.name)).map((r) => [r.name, r.value]),
      [['export.enabled', true], ['export.plaintext', true], ['message_limit_bytes', 1024], ['nonce_ttl_seconds', 600]],
    );
    assert.equal(ok(await cli(['node', 'config', 'get', 'message_limit_bytes', '--data-dir', dir]), 'config get one').stdout, '1024\n');

    // Before the restart the running node still has the old settings; after it, the new ones.
    const ed = await createKey('ed25519');
    const kb = join(f.root, 'kb.bin');
    writeFileSync(kb, randomBytes(1025));
    const plain = join(f.root, 'plain.json');
    const exportPlain = () => cli(['key', 'export', '--node', f.nodes[0]!.url, '--key', ed.key_id, '--type', 'plaintext', '--out', plain], { token: f.operatorToken });
    failsWith(await exportPlain(), /plaintext export is disabled on this node/);
    ok(await cli(['sign', '--key', ed.key_id, '--nodes', urls([0, 1]), '--message-file', kb]), 'sign 1025 bytes before the restart');
    await restart(0);
    ok(await exportPlain(), 'plaintext export after the restart');
    assert.ok(existsSync(plain));
    failsWith(await cli(['sign', '--key', ed.key_id, '--nodes', urls([0, 1]), '--message-file', kb]), /the message is 1025 bytes, over this node's limit of 1024 bytes \(1 KiB\)/);
    writeFileSync(kb, randomBytes(1024));
    ok(await cli(['sign', '--key', ed.key_id, '--nodes', urls([0, 1]), '--message-file', kb]), 'sign 1024 bytes');
  });

  it('--wrapping-key takes the JSON GET /v1/wrapping-key answers, base64 and hex, and names the forms it takes otherwise', async () => {
    const dir = f.nodes[0]!.dir;
    const answer = await (await fetch(`${f.nodes[1]!.url}/v1/wrapping-key`, { headers: { authorization: `Bearer ${f.clientToken}` } })).text();
    const b64 = (JSON.parse(answer) as { wrapping_public_key: string }).wrapping_public_key;
    const hex = toHex(Buffer.from(b64, 'base64'));
    const before = readFileSync(join(dir, 'node.json'));
    for (const bad of ['abcd', hex.slice(2), `${b64.slice(0, -2)}==`, '{"wrapping_public_key": 3}']) {
      failsWith(await cli(['node', 'whitelist', 'add', '--wrapping-key', bad, '--data-dir', dir]), /--wrapping-key is not a wrapping key: expected the 32-byte X25519 wrapping public key as base64 \(44 characters.*\), as hex \(64 characters\), or the JSON GET \/v1\/wrapping-key answers/);
    }
    assert.deepEqual(readFileSync(join(dir, 'node.json')), before);
    assert.match(ok(await cli(['node', 'whitelist', 'add', '--wrapping-key', hex.toUpperCase(), '--label', 'node 2', '--data-dir', dir]), 'whitelist add').stdout, new RegExp(`^whitelisted ${b64.replace(/[+/]/g, '\\$&')}; send SIGHUP to the running \`lifeboat node serve\` to apply`));
    assert.match(ok(await cli(['node', 'whitelist', 'add', '--wrapping-key', b64, '--data-dir', dir]), 'whitelist add again').stdout, /already whitelisted; nothing changed/);
    assert.deepEqual(JSON.parse(ok(await cli(['node', 'whitelist', 'list', '--data-dir', dir, '--json']), 'whitelist list').stdout), [{ label: 'node 2', wrapping_key: b64 }]);
    await restart(0);

    const ed = await createKey('ed25519');
    const file = join(f.root, 'wrapped.json');
    ok(await cli(['key', 'export', '--node', f.nodes[0]!.url, '--key', ed.key_id, '--type', 'wrapped', '--wrapping-key', answer, '--out', file], { token: f.operatorToken }), 'wrapped export with the JSON answer');
    const imported = JSON.parse(ok(await cli(['key', 'import', '--node', f.nodes[1]!.url, '--in', file, '--json'], { token: f.operatorToken }), 'import on node 2').stdout) as { group_public_key: string; status: string };
    assert.equal(imported.group_public_key, ed.group_public_key, 'node 2 opened the share wrapped to its key');
    assert.equal(imported.status, 'active');
    failsWith(await cli(['key', 'export', '--node', f.nodes[0]!.url, '--key', ed.key_id, '--type', 'wrapped', '--wrapping-key', 'not a key', '--out', file], { token: f.operatorToken }), /--wrapping-key is not a wrapping key: expected/);
  });

  it('key create: prints pending_backup (exit 0) while a node’s backup is not acknowledged; --wait waits until it is, then prints active', async () => {
    // Node 3 streams to a backup service and answers a DKG at once (backup.wait_ms 0, set by command).
    const svc: BackupServiceProc = await serveBackupService(f.servers, { dir: join(f.root, 'backup-service'), url: '', server: undefined });
    const [invite] = await addBackupAccounts(svc, ['node-3']);
    const n3 = f.nodes[2]!;
    await n3.server.stop();
    await setUpNodeBackup(n3.dir, svc.url, 'node-3', invite!, 'a long backup passphrase for the cli tests');
    ok(await cli(['node', 'config', 'set', 'backup.wait_ms', '0', '--data-dir', n3.dir]), 'config set backup.wait_ms');
    f.nodes[2] = await serveNode(n3.dir, new URL(n3.url).host, n3.fingerprint);
    await stopBackupService(svc);

    const created = await cli(['key', 'create', '--nodes', urls(), '--threshold', '2']);
    assert.equal(created.code, 0, created.stderr);
    const keyId = /^key (key_[0-9a-f]{32}): ed25519 2-of-3/.exec(created.stdout)?.[1];
    assert.ok(keyId, created.stdout);
    assert.match(created.stdout, new RegExp(`\\nstatus: pending_backup on ${f.nodes[2]!.url}\\n$`));
    assert.match(created.stderr, new RegExp(`lifeboat: warning: key ${keyId} is pending_backup on 1 node\\(s\\) \\(its backup is not acknowledged yet\\): it cannot sign there until the backup service acknowledges it; --wait waits for that`));

    // --wait: the key is created (pending on node 3, as the store shows), and only once the service is back does it finish, active.
    const waiting = cli(['key', 'create', '--nodes', urls(), '--threshold', '2', '--wait', '--json']);
    const pendingIn = async (dir: string) => {
      const store = await openKeyNodeStore(`sqlite:${join(dir, 'store.sqlite')}`);
      try {
        return (await store.listKeys({ limit: 10_000 })).filter((k) => k.status === 'pending_backup').map((k) => k.keyId);
      } finally {
        await store.close();
      }
    };
    let pending: string[] = [];
    for (const deadline = Date.now() + 60_000; pending.length < 2; ) {
      assert.ok(Date.now() < deadline, 'the --wait key never reached node 3');
      await new Promise((r) => setTimeout(r, 200));
      pending = await pendingIn(f.nodes[2]!.dir);
    }
    const waitedKey = pending.find((k) => k !== keyId)!;
    await serveBackupService(f.servers, svc);
    const r = await waiting;
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { key_id: string; status: string; nodes: { url: string; status: string }[] };
    assert.equal(out.key_id, waitedKey);
    assert.equal(out.status, 'active');
    assert.deepEqual(out.nodes.map((n) => n.status), ['active', 'active', 'active']);
    assert.doesNotMatch(r.stderr, /warning/, 'nothing is pending any more');
    // The first key, created without --wait, becomes active too now that the service is back.
    await waitForActive({ nodes: f.nodes.map((n) => ({ url: n.url, keyId: keyId! })) }, f.clientToken, 60_000);
  });

  it('node serve --json: {url, fingerprint} is the first and only stdout line; request logs go to stderr', async () => {
    const dir = join(f.root, 'solo');
    const init = JSON.parse(ok(await runCli(['node', 'init', '--data-dir', dir, '--no-mnemonic', '--json']), 'node init').stdout) as { fingerprint: string };
    const server = await startCli(['node', 'serve', '--data-dir', dir, '--listen', '127.0.0.1:0', '--json']);
    try {
      const first = JSON.parse(server.stdout().split('\n')[0]!) as { url: string; fingerprint: string };
      assert.deepEqual(first, { url: server.url, fingerprint: init.fingerprint });
      assert.equal((await fetch(`${server.url}/v1/health`)).status, 200);
      for (const deadline = Date.now() + 20_000; !server.stderr().includes('/v1/health'); ) {
        assert.ok(Date.now() < deadline, `no request log on stderr: ${server.stderr()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.match(server.stderr(), /"event":"start","server":"node"/);
      assert.equal(server.stdout(), `${JSON.stringify(first)}\n`);
    } finally {
      await server.stop();
    }
  });
});
