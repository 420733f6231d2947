/**
 * `lifeboat backup-server` as real processes: serve on a loopback port with the SQLite default,
 * account add/list/rm, a BackupClient round trip over HTTP, SIGKILL in the middle of appends and a
 * restart that keeps everything acknowledged (and the OPAQUE setup: the same password still logs in).
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import * as opaque from '@serenity-kit/opaque';
import { randomBytes } from '../src/crypto/random.js';
import { BackupClient, type KeyStretching } from '../src/backup/client.js';
import { hashBlob, sealCompaction, sealEntry, ZERO_HASH } from '../src/backup/format.js';
import { ctEqual, utf8 } from '../src/util/bytes.js';
import { runCli, type RunningCli, startCli } from './helpers/cli.js';
import { trackedTempDir } from './helpers/tmp.js';

const FAST: KeyStretching = { 'argon2id-custom': { memory: 8, iterations: 1, parallelism: 1 } };
const S = 'node-cli-test';

describe('lifeboat backup-server (processes)', () => {
  const dir = trackedTempDir('lifeboat-backup-cli-');
  const data = join(dir, 'server');
  const running: RunningCli[] = [];
  after(async () => {
    for (const r of running) if (r.child.exitCode === null && r.child.signalCode === null) await r.stop('SIGKILL');
  });
  const serve = async (extra: string[] = []) => {
    const r = await startCli(['backup-server', 'serve', '--listen', '127.0.0.1:0', ...extra], { env: { LIFEBOAT_BACKUP_SERVER_DIR: data } });
    running.push(r);
    return r;
  };
  const cli = (...args: string[]) => runCli(['backup-server', ...args, '--data-dir', data]);

  it('prints help for every command', async () => {
    for (const args of [['backup-server', 'serve', '--help'], ['backup-server', 'account', 'add', '--help']]) {
      const r = await runCli(args);
      assert.equal(r.code, 0, args.join(' '));
      assert.match(r.stdout, /Usage: lifeboat backup-server/);
    }
  });

  it('serves, adds an account, round-trips a backup, survives SIGKILL mid-append, and stops on SIGTERM', async () => {
    let server = await serve();
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(statSync(join(data, 'opaque-server-setup')).mode & 0o777, 0o600);
    assert.equal(statSync(join(data, 'backup.sqlite')).mode & 0o077, 0);

    const added = await cli('account', 'add', 'alice', '--json');
    assert.equal(added.code, 0, added.stderr);
    const invite = (JSON.parse(added.stdout) as { invite: string }).invite;
    assert.match(invite, /^lbi_/);
    assert.equal((await cli('account', 'add', 'alice')).code, 1);

    const password = 'the cli test password';
    const backupKey = randomBytes(32);
    let client = new BackupClient({ url: server.url, keyStretching: FAST });
    await client.register('alice', invite, password, backupKey);
    await client.session('alice', backupKey);
    // entries 1..5 and a compaction at 5, then appends one by one until the kill
    const entries: Uint8Array[] = [];
    let prev: Uint8Array = ZERO_HASH;
    const next = () => {
      const e = sealEntry(backupKey, { stream: S, seq: entries.length + 1, prev }, utf8.encode(`change ${entries.length + 1}`));
      entries.push(e);
      prev = hashBlob(e);
      return e;
    };
    for (let i = 0; i < 5; i++) next();
    assert.equal((await client.appendEntries(S, entries)).headSeq, 5);
    const comp = sealCompaction(backupKey, { stream: S, seq: 5, head: hashBlob(entries[4]!) }, randomBytes(50_000));
    await client.uploadCompaction(S, 5, hashBlob(comp), comp, 16_384);

    let acked = 5;
    let stop = false;
    const writer = (async () => {
      while (!stop) {
        const e = next();
        try {
          acked = (await client.appendEntries(S, [e])).headSeq;
        } catch {
          return;
        }
      }
    })();
    // Kill once appends are being acknowledged (not after a fixed time, which a busy machine may not meet).
    const deadline = Date.now() + 30_000;
    while (acked < 8 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const killed = await server.stop('SIGKILL');
    stop = true;
    await writer;
    assert.equal(killed.signal, 'SIGKILL');
    assert.ok(acked > 5, 'some appends were acknowledged before the kill');

    server = await serve();
    client = new BackupClient({ url: server.url, keyStretching: FAST });
    const login = await client.login('alice', password);
    assert.deepEqual(login.backupKey, backupKey);
    await client.session('alice', backupKey);
    const s = await client.getStream(S);
    assert.ok(s && s.headSeq >= acked, `head ${s?.headSeq} is below the acknowledged ${acked}`);
    assert.equal(s.compaction?.seq, 5);
    assert.deepEqual(await client.downloadCompaction(S, s.compaction), comp);
    const listed = await client.listEntries(S, 0, 10_000);
    assert.deepEqual(
      listed.map((e) => e.seq),
      Array.from({ length: s.headSeq }, (_, i) => i + 1),
    );
    for (let i = 0; i < listed.length; i++) assert.ok(ctEqual(listed[i]!.bytes, entries[i]!), `entry ${i + 1} is the one sent`);

    const list = await cli('account', 'list', '--json');
    assert.equal(list.code, 0, list.stderr);
    const rows = JSON.parse(list.stdout) as { account: string; state: string; streams: { stream: string; head_seq: number }[] }[];
    assert.deepEqual(
      rows.map((r) => [r.account, r.state, r.streams[0]?.stream, r.streams[0]?.head_seq]),
      [['alice', 'registered', S, s.headSeq]],
    );

    // a second server on the same port is refused with a clear error
    const busy = await runCli(['backup-server', 'serve', '--listen', `127.0.0.1:${new URL(server.url).port}`, '--data-dir', data]);
    assert.equal(busy.code, 1);
    assert.match(busy.stderr, /lifeboat: error: cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/);

    const term = await server.stop('SIGTERM');
    assert.equal(term.code, 0, term.stderr);
    for (const secret of [password, invite, invite.slice(4), login.loginToken, login.loginToken.slice(4)]) {
      assert.ok(!term.stderr.includes(secret) && !term.stdout.includes(secret), 'a secret reached the server output');
    }
    assert.match(term.stderr, /"path":"\/v1\/accounts\/alice\/login\/start"/, 'requests are logged on stderr');

    // Without a terminal to confirm on, rm needs --yes: refused (usage), the account stays.
    const unconfirmed = await cli('account', 'rm', 'alice');
    assert.equal(unconfirmed.code, 2, unconfirmed.stderr);
    assert.match(unconfirmed.stderr, /refusing to delete account alice without confirmation \(usage\)\nlifeboat: hint: pass --yes/);
    assert.match((await cli('account', 'list')).stdout, /^alice /m);
    const rm = await cli('account', 'rm', 'alice', '--yes');
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal((await cli('account', 'rm', 'alice', '--yes')).code, 1);
    assert.equal((await cli('account', 'list')).stdout, '');
  });

  it('--trust-proxy 1 behind a proxy that appends X-Forwarded-For: a spoofed address does not reset the per-address limit', async () => {
    const bad = await runCli(['backup-server', 'serve', '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'unused'), '--trust-proxy', 'everyone']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /--trust-proxy everyone is neither a hop count nor a list of proxy addresses/);
    const server = await startCli(['backup-server', 'serve', '--listen', '127.0.0.1:0', '--trust-proxy', '1', '--log-level', 'silent'], {
      env: { LIFEBOAT_BACKUP_SERVER_DIR: join(dir, 'proxied') },
    });
    running.push(server);
    const proxy = await appendingProxy(server.url);
    await opaque.ready;
    try {
      const start = { start_login_request: Buffer.from(opaque.client.startLogin({ password: 'x' }).startLoginRequest, 'base64url').toString('base64') };
      // 30 login starts a minute per client address (each for another account, so only that limit counts).
      const statuses: number[] = [];
      for (let i = 0; i < 31; i++) statuses.push((await proxy.post(`/v1/accounts/acct-${i}/login/start`, start, '127.0.0.2', `203.0.113.${i}`)).status);
      assert.deepEqual(statuses, [...Array(30).fill(200), 429], 'a new spoofed X-Forwarded-For each time is still the same client');
      // Another client behind the same proxy has its own count.
      assert.equal((await proxy.post('/v1/accounts/acct-x/login/start', start, '127.0.0.3', '127.0.0.2')).status, 200);
    } finally {
      await proxy.close();
    }
  });
});

/**
 * A reverse proxy as nginx with `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for` behaves:
 * the client's own header, then the address the proxy saw. `post` sends from `localAddress` (any
 * 127.0.0.0/8 address works on loopback) with the spoofed header given.
 */
async function appendingProxy(target: string): Promise<{ post(path: string, body: unknown, from: string, spoofed: string): Promise<{ status: number }>; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const xff = [req.headers['x-forwarded-for'], req.socket.remoteAddress].filter(Boolean).join(', ');
    const to = new URL(req.url ?? '/', target);
    const up = request(to, { method: req.method, headers: { ...req.headers, host: to.host, 'x-forwarded-for': xff }, agent: false }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    post: (path, body, from, spoofed) =>
      new Promise((resolve, reject) => {
        const payload = JSON.stringify(body);
        const req = request(
          { host: '127.0.0.1', port, path, method: 'POST', localAddress: from, agent: false, headers: { 'content-type': 'application/json', 'x-forwarded-for': spoofed } },
          (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
          },
        );
        req.on('error', reject);
        req.end(payload);
      }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
