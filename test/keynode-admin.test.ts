/**
 * Administration of a running key node (docs/keynode.md, "Reloading the configuration"): `node
 * whitelist add|rm` and `node pair` change node.json, SIGHUP makes `node serve` apply them, GET
 * /v1/config (operator) and `node config running` show what the running node holds, and the
 * behaviour follows (a newly whitelisted key exported to, a new fail-over fed). A bad file is refused,
 * logged and the old configuration kept; fields read only at start are reported, not applied. And
 * `node show`: the node's public parts offline, as `node init` printed them and the node serves them.
 */
import assert from 'node:assert/strict';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isLifeboatError } from '../src/errors.js';
import { newApiKey } from '../src/keynode/apikeys.js';
import { KeyNodeClient } from '../src/keynode/client.js';
import type { RunningConfig } from '../src/keynode/reload.js';
import { createKey } from '../src/keynode/sdk.js';
import { runCli, type RunningCli, startCli } from './helpers/cli.js';
import { registerTokenInDir, tempDir } from './helpers/keynode.js';

interface Node {
  dir: string;
  identity: string;
  fingerprint: string;
  wrapping: string;
  server: RunningCli;
  op: KeyNodeClient;
}

/** Polls `check` until it answers a value (not undefined), failing after `ms`. */
async function until<T>(what: string, check: () => Promise<T | undefined> | T | undefined, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('node serve reloads node.json on SIGHUP', () => {
  const root = tempDir('lb-reload-');
  const operatorToken = newApiKey('operator', 'o').token;
  const clientToken = newApiKey('client', 'c').token;
  const nodes: Node[] = [];
  let keyId = '';
  const a = () => nodes[0]!;
  const b = () => nodes[1]!;
  const c = () => nodes[2]!;
  const cli = async (args: string[]) => {
    const r = await runCli(args, { env: { LIFEBOAT_API_KEY: operatorToken } });
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r;
  };
  /** Sends SIGHUP and waits until the running node reports a reload after the one it had. */
  const reload = async (n: Node): Promise<RunningConfig> => {
    const before = (await n.op.runningConfig()).loaded_at;
    const lines = n.server.stderr().length;
    n.server.child.kill('SIGHUP');
    await until('the reload line', () => (/node\.json reloaded/.test(n.server.stderr().slice(lines)) ? true : undefined));
    const now = await n.op.runningConfig();
    assert.ok(now.loaded_at >= before);
    return now;
  };

  before(async () => {
    for (const i of [1, 2, 3]) {
      const dir = join(root, `node-${i}`);
      const init = JSON.parse((await cli(['node', 'init', '--data-dir', dir, '--no-mnemonic', '--json'])).stdout) as { identity: string; fingerprint: string; wrapping_public_key: string };
      await registerTokenInDir(dir, operatorToken, 'operator');
      await registerTokenInDir(dir, clientToken, 'client');
      const server = await startCli(['node', 'serve', '--data-dir', dir, '--listen', '127.0.0.1:0', '--json']);
      nodes.push({ dir, identity: init.identity, fingerprint: init.fingerprint, wrapping: init.wrapping_public_key, server, op: new KeyNodeClient({ url: server.url, apiKey: operatorToken }) });
    }
    const clients = [a(), b()].map((n) => new KeyNodeClient({ url: n.server.url, apiKey: clientToken }));
    keyId = (await createKey(clients, { threshold: 2, curve: 'ed25519' })).nodes[0]!.keyId;
  });
  after(async () => {
    for (const n of nodes) await n.server.stop('SIGTERM');
  });

  it('GET /v1/config answers an operator key only, with what the node loaded', async () => {
    const asClient = new KeyNodeClient({ url: a().server.url, apiKey: clientToken });
    await assert.rejects(asClient.runningConfig(), (e: unknown) => isLifeboatError(e, 'wrong_role'));
    const cfg = await a().op.runningConfig();
    assert.deepEqual([cfg.failover, cfg.paired_primary, cfg.whitelist, cfg.export, cfg.restart_required], [null, null, [], { enabled: true, plaintext: false }, []]);
  });

  it('whitelist add then SIGHUP: the running node exports to the new key; whitelist rm then SIGHUP: refused again', async () => {
    await assert.rejects(a().op.exportShare(keyId, 'wrapped', c().wrapping), (e: unknown) => isLifeboatError(e, 'wrapping_key_not_whitelisted'));
    const added = await cli(['node', 'whitelist', 'add', '--wrapping-key', c().wrapping, '--label', 'node 3', '--data-dir', a().dir]);
    assert.match(added.stdout, /send SIGHUP to the running `lifeboat node serve` to apply/);
    await assert.rejects(a().op.exportShare(keyId, 'wrapped', c().wrapping), (e: unknown) => isLifeboatError(e, 'wrapping_key_not_whitelisted'), 'not before the reload');
    const cfg = await reload(a());
    assert.deepEqual(cfg.whitelist, [{ label: 'node 3', wrapping_key: c().wrapping }]);
    assert.equal((await a().op.exportShare(keyId, 'wrapped', c().wrapping)).key_id, keyId);
    await cli(['node', 'whitelist', 'rm', '--wrapping-key', c().wrapping, '--data-dir', a().dir]);
    assert.deepEqual((await reload(a())).whitelist, []);
    await assert.rejects(a().op.exportShare(keyId, 'wrapped', c().wrapping), (e: unknown) => isLifeboatError(e, 'wrapping_key_not_whitelisted'));
  });

  it('pair on both nodes then SIGHUP: the new fail-over receives the key, and `node config running` shows the pairs', async () => {
    await assert.rejects(c().op.key(keyId), (e: unknown) => isLifeboatError(e, 'key_id_not_exists'));
    await Promise.all([
      cli(['node', 'pair', '--primary', a().identity, '--data-dir', c().dir]),
      cli(['node', 'pair', '--failover', `${c().server.url}#${c().fingerprint}`, '--wrapping-key', c().wrapping, '--data-dir', a().dir]),
    ]);
    assert.deepEqual((await reload(c())).paired_primary, { identity: a().identity, fingerprint: a().fingerprint });
    const cfg = await reload(a());
    assert.deepEqual(cfg.failover, { url: c().server.url, identity: c().identity, fingerprint: c().fingerprint, wrapping_key: c().wrapping });
    const copied = await until('the fail-over copy', () => c().op.key(keyId).catch(() => undefined));
    assert.equal(copied.key_id, keyId);
    const shown = await cli(['node', 'config', 'running', '--url', a().server.url]);
    assert.match(shown.stdout, new RegExp(`^fail-over +${c().server.url.replace(/[.]/g, '\\.')} \\(${c().fingerprint}\\)$`, 'm'));
    const json = JSON.parse((await cli(['node', 'config', 'running', '--url', c().server.url, '--json'])).stdout) as RunningConfig;
    assert.equal(json.paired_primary?.fingerprint, a().fingerprint);
  });

  it('a bad node.json is refused and logged; the running configuration is kept', async () => {
    const path = join(a().dir, 'node.json');
    const good = readFileSync(path, 'utf8');
    const before = await a().op.runningConfig();
    try {
      writeFileSync(path, JSON.stringify({ ...JSON.parse(good), paired_primary: 'lb1.not-an-identity', nonce_ttl_seconds: 30 }));
      const lines = a().server.stderr().length;
      a().server.child.kill('SIGHUP');
      const line = await until('the refusal line', () => /^\{.*node\.json not reloaded.*\}$/m.exec(a().server.stderr().slice(lines))?.[0]);
      const logged = JSON.parse(line) as { level: string; msg: string };
      assert.equal(logged.level, 'warn');
      assert.match(logged.msg, /the running configuration is kept: node\.json: paired_primary is not an lb1 identity \(malformed\)$/);
      assert.deepEqual(await a().op.runningConfig(), before, 'nothing of the file was applied');
      assert.equal((await a().op.exportShare(keyId, 'wrapped', c().wrapping)).key_id, keyId, 'the fail-over key is still whitelisted');
    } finally {
      writeFileSync(path, good);
    }
  });

  it('fields read only at start are reported as waiting for a restart, not applied', async () => {
    const set = await cli(['node', 'config', 'set', 'message_limit_bytes', '1024', '--data-dir', b().dir, '--json']);
    assert.deepEqual(JSON.parse(set.stdout), { ok: true, name: 'message_limit_bytes', value: 1024, previous: 1048576, changed: true, restart_required: true, apply: 'restart' });
    const cfg = await reload(b());
    assert.deepEqual(cfg.restart_required, ['message_limit_bytes']);
    assert.match(b().server.stderr(), /node\.json reloaded: nothing to apply; waiting for a restart: message_limit_bytes/);
    const client = new KeyNodeClient({ url: b().server.url, apiKey: clientToken });
    assert.ok((await client.commitments(keyId, { messageLength: 4096 })).nonce_id, 'the running limit is still 1 MiB');
  });

  it('node show prints, offline, what node init printed and GET /v1/identity answers; a sealed node says so', async () => {
    const dir = join(root, 'node-fresh');
    const [showA, initFresh] = await Promise.all([cli(['node', 'show', '--data-dir', a().dir, '--json']), cli(['node', 'init', '--data-dir', dir, '--no-mnemonic'])]);
    const shown = JSON.parse(showA.stdout) as Record<string, unknown>;
    const served = await new KeyNodeClient({ url: a().server.url }).identity();
    assert.deepEqual({ identity: shown.identity, fingerprint: shown.fingerprint, wrapping_public_key: shown.wrapping_public_key }, served);
    assert.deepEqual([shown.fingerprint, shown.wrapping_public_key, shown.keyshare_mode], [a().fingerprint, a().wrapping, null]);
    assert.match(String(shown.store), /^sqlite:.*store\.sqlite$/);

    const init = initFresh.stdout.split('\n');
    const text = (await cli(['node', 'show', '--data-dir', dir])).stdout.split('\n');
    assert.deepEqual(text.slice(0, 4), init.slice(0, 4), 'identity, fingerprint, wrapping key and store lines as init printed them');
    assert.match(text[0]!, /^identity: {5}lb1\./);
    renameSync(join(dir, 'master.key'), join(root, 'fresh-master.key'));
    const sealed = await runCli(['node', 'show', '--data-dir', dir]);
    assert.equal(sealed.code, 1);
    assert.match(sealed.stderr, /^lifeboat: error: the node is sealed: .* \(sealed\)\nlifeboat: hint: put the node's master key back at /);
    assert.equal(sealed.stdout, '');
  });
});
