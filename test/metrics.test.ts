/**
 * Metrics and health on every server (docs/monitoring.md): each kind (`holder serve`, `node serve`,
 * `backup-server serve`, `log serve`, `log witness serve`) started as a real process answers GET
 * /healthz, GET /readyz and GET /metrics (Prometheus text that `promtool check metrics` accepts), with
 * request counts by route pattern (never a path) and its own lifeboat_* gauges. /metrics is loopback
 * only without a token, refused through a proxy, and needs the token when LIFEBOAT_METRICS_TOKEN_FILE
 * is set. A key node whose backup service is down is not ready (503 naming backup_agent) and shows the
 * backup lag; it is ready again once the service is back and the lag drains.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateIdentity, encodePublicIdentity } from '../src/identity.js';
import { VERSION } from '../src/cli/version.js';
import { createBaseApp } from '../src/http/app.js';
import { createKeyNodeApp } from '../src/keynode/server.js';
import { nodeObservability } from '../src/keynode/metrics.js';
import { newApiKey } from '../src/keynode/apikeys.js';
import { runCli, startCli, type RunningCli } from './helpers/cli.js';
import { trackedTempDir } from './helpers/tmp.js';
import { promtoolCheck, sample } from './helpers/metrics.js';
import { enableBackup, eventually, startBackupFixture, type BackupFixture } from './helpers/backup.js';
import { startInProcessNodes, type NodeSet } from './helpers/keynode.js';

const METRICS_TOKEN = 'mt-0123456789abcdef-secret';
const PATH_SECRET = 'path-secret-5e7a1c9b3d';

interface Served {
  name: string;
  server: string;
  proc: RunningCli;
  /** Metric names this kind must expose besides the common ones. */
  own: string[];
}

describe('metrics and health: every server kind as a real process', { timeout: 300_000 }, () => {
  const served: Served[] = [];
  let witnessDir = '';

  before(async () => {
    const root = trackedTempDir('lb-metrics-');
    const dir = (n: string) => join(root, n);
    witnessDir = dir('witness');
    const inits = await Promise.all([
      runCli(['holder', 'init', '--data-dir', dir('holder'), '--primary', encodePublicIdentity(generateIdentity('primary')), '--operator', encodePublicIdentity(generateIdentity('operator'))]),
      runCli(['node', 'init', '--data-dir', dir('node'), '--no-mnemonic']),
      runCli(['log', 'init', '--origin', 'logs.lifeboat.example/metrics', '--data-dir', dir('log')]),
      runCli(['log', 'witness', 'init', '--name', 'w.lifeboat.example/metrics', '--data-dir', witnessDir]),
    ]);
    for (const r of inits) assert.equal(r.code, 0, r.stderr);
    const tokenFile = join(root, 'metrics-token');
    writeFileSync(tokenFile, `${METRICS_TOKEN}\n`, { mode: 0o600 });
    chmodSync(tokenFile, 0o600);
    const kinds: (Omit<Served, 'proc'> & { args: string[]; env?: Record<string, string> })[] = [
      { name: 'holder', server: 'holder', args: ['holder', 'serve', '--data-dir', dir('holder')], own: ['lifeboat_holder_possession_checks_total', 'lifeboat_holder_releases_total'], env: { LIFEBOAT_METRICS_TOKEN_FILE: tokenFile } },
      { name: 'node', server: 'node', args: ['node', 'serve', '--data-dir', dir('node')], own: ['lifeboat_node_keys', 'lifeboat_node_pending_backup_keys', 'lifeboat_node_unused_nonces', 'lifeboat_node_keyshare_outbox_entries'] },
      { name: 'backup-server', server: 'backup-server', args: ['backup-server', 'serve', '--data-dir', dir('backup')], own: ['lifeboat_backup_accounts', 'lifeboat_backup_streams', 'lifeboat_backup_failed_logins_total'] },
      { name: 'log', server: 'log', args: ['log', 'serve', '--data-dir', dir('log')], own: ['lifeboat_log_tree_size', 'lifeboat_log_pending_entries', 'lifeboat_log_cosignature_failures_total', 'lifeboat_log_halted'] },
      { name: 'log-witness', server: 'log-witness', args: ['log', 'witness', 'serve', '--data-dir', witnessDir], own: ['lifeboat_witness_logs'] },
    ];
    const procs = await Promise.all(
      kinds.map(async (k) => {
        const proc = await startCli([...k.args, '--listen', '127.0.0.1:0', '--json'], { env: { LIFEBOAT_LOG_LEVEL: 'warn', ...k.env } });
        return { name: k.name, server: k.server, own: k.own, proc };
      }),
    );
    served.push(...procs);
  });

  after(async () => {
    await Promise.all(served.map((s) => s.proc.stop('SIGTERM')));
  });

  const metricsOf = async (s: Served): Promise<Response> => fetch(`${s.proc.url}/metrics`, s.name === 'holder' ? { headers: { authorization: `Bearer ${METRICS_TOKEN}` } } : {});

  it('GET /healthz answers 200 {ok, server, version} on every server', async () => {
    for (const s of served) {
      const r = await fetch(`${s.proc.url}/healthz`);
      assert.equal(r.status, 200, s.name);
      const body = (await r.json()) as Record<string, unknown>;
      assert.deepEqual([body.ok, body.server, body.version], [true, s.server, VERSION], s.name);
      assert.equal(r.headers.get('cache-control'), 'no-store');
    }
  });

  it('GET /readyz answers 200 {ready: true, checks} with every check ok', async () => {
    for (const s of served) {
      const r = await fetch(`${s.proc.url}/readyz`);
      const body = (await r.json()) as { ready: boolean; checks: Record<string, string> };
      assert.equal(r.status, 200, `${s.name}: ${JSON.stringify(body)}`);
      assert.equal(body.ready, true);
      assert.ok(Object.keys(body.checks).length >= 1, s.name);
      assert.ok(Object.values(body.checks).every((v) => v === 'ok'), s.name);
    }
  });

  it('GET /metrics is Prometheus text promtool accepts: request counts by route pattern, the server label, its own gauges', async () => {
    for (const s of served) {
      // A request to an unknown path carrying a secret: counted under "unmatched", the path nowhere.
      assert.equal((await fetch(`${s.proc.url}/no/such/${PATH_SECRET}`)).status, 404);
      const r = await metricsOf(s);
      assert.equal(r.status, 200, s.name);
      assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      const text = await r.text();
      const check = promtoolCheck(text);
      assert.equal(check.status, 0, `${s.name}: promtool: ${check.out}`);
      assert.ok((sample(text, 'lifeboat_http_requests_total', { route: '/healthz', status: '200', server: s.server }) ?? 0) >= 1, `${s.name}: ${text}`);
      assert.ok((sample(text, 'lifeboat_http_requests_total', { route: 'unmatched', status: '404' }) ?? 0) >= 1, s.name);
      assert.ok((sample(text, 'lifeboat_http_request_duration_seconds_count', { route: '/healthz' }) ?? 0) >= 1, s.name);
      assert.equal(sample(text, 'lifeboat_build_info', { version: VERSION, server: s.server }), 1, s.name);
      assert.ok(!text.includes(PATH_SECRET), `${s.name}: a path reached a label`);
      for (const name of s.own) assert.ok(text.includes(`# TYPE ${name} `), `${s.name}: no ${name}`);
    }
    const node = served.find((s) => s.name === 'node')!;
    const text = await (await metricsOf(node)).text();
    assert.equal(sample(text, 'lifeboat_node_keys'), 0);
    assert.equal(sample(text, 'lifeboat_node_keyshare_outbox_entries', { state: 'unsealed' }), 0);
  });

  it('a failed login counts in lifeboat_backup_failed_logins_total, a refused possession check in lifeboat_holder_possession_checks_total', async () => {
    const backup = served.find((s) => s.server === 'backup-server')!;
    const failedLogins = async () => sample(await (await metricsOf(backup)).text(), 'lifeboat_backup_failed_logins_total', { err_type: 'login_failed' });
    assert.equal(await failedLogins(), 0);
    const login = await fetch(`${backup.proc.url}/v1/accounts/acme/login/finish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ login_id: 'nope', finish_login_request: 'AAAA' }) });
    assert.equal(login.status, 401);
    assert.equal(await failedLogins(), 1);
    assert.ok(!(await (await metricsOf(backup)).text()).includes('acme'), 'no account name in a label');

    const holder = served.find((s) => s.name === 'holder')!;
    const checks = async (result: string) => sample(await (await metricsOf(holder)).text(), 'lifeboat_holder_possession_checks_total', { result });
    const challenge = await fetch(`${holder.proc.url}/v1/schemes/${'ab'.repeat(16)}/challenge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ challenge: 'AA' }) });
    assert.equal(challenge.status, 401);
    assert.equal(await checks('refused'), 1);
    assert.equal(await checks('ok'), undefined);
  });

  it('/metrics without a token: loopback only, and refused (403 metrics_forbidden) through a proxy', async () => {
    const log = served.find((s) => s.name === 'log')!;
    for (const headers of [{ 'x-forwarded-for': '203.0.113.9' }, { forwarded: 'for=203.0.113.9' }] as Record<string, string>[]) {
      const r = await fetch(`${log.proc.url}/metrics`, { headers });
      assert.equal(r.status, 403);
      assert.equal(((await r.json()) as { err_type: string }).err_type, 'metrics_forbidden');
    }
  });

  it('/metrics with LIFEBOAT_METRICS_TOKEN_FILE: 401 metrics_unauthorized without the token or with another, 200 with it', async () => {
    const holder = served.find((s) => s.name === 'holder')!;
    for (const headers of [{}, { authorization: `Bearer ${METRICS_TOKEN}x` }, { authorization: `Bearer ${METRICS_TOKEN.slice(0, -1)}` }, { authorization: METRICS_TOKEN }] as Record<string, string>[]) {
      const r = await fetch(`${holder.proc.url}/metrics`, { headers });
      assert.equal(r.status, 401, JSON.stringify(headers));
      const body = (await r.json()) as { err_type: string; message: string };
      assert.equal(body.err_type, 'metrics_unauthorized');
      assert.ok(!JSON.stringify(body).includes(METRICS_TOKEN));
    }
    assert.equal((await metricsOf(holder)).status, 200);
    // /healthz and /readyz stay open: an orchestrator's probe carries no token.
    assert.equal((await fetch(`${holder.proc.url}/readyz`)).status, 200);
  });

  it('/readyz answers 503 not_ready naming the failing check (and nothing of its cause)', async () => {
    const witness = served.find((s) => s.server === 'log-witness')!;
    rmSync(join(witnessDir, 'logs'), { recursive: true, force: true });
    const r = await fetch(`${witness.proc.url}/readyz`);
    const body = (await r.json()) as { err_type: string; checks: Record<string, string>; message: string };
    assert.equal(r.status, 503);
    assert.deepEqual([body.err_type, body.checks.state], ['not_ready', 'failing']);
    assert.ok(!body.message.includes(witnessDir), 'no path in an open answer');
    // Alive all the same.
    assert.equal((await fetch(`${witness.proc.url}/healthz`)).status, 200);
  });

  it('every serve command’s --help names /healthz, /readyz, /metrics and LIFEBOAT_METRICS_TOKEN_FILE', async () => {
    const helps = await Promise.all([['holder'], ['node'], ['backup-server'], ['log'], ['log', 'witness'], ['console']].map((c) => runCli([...c, 'serve', '--help'])));
    for (const h of helps) {
      assert.equal(h.code, 0, h.stderr);
      for (const word of ['GET /healthz', 'GET /readyz', 'GET /metrics', '$LIFEBOAT_METRICS_TOKEN_FILE', 'docs/monitoring.md']) assert.ok(h.stdout.includes(word), `${word} in ${h.stdout}`);
    }
  });

  it('a bad LIFEBOAT_METRICS_TOKEN_FILE (too short, readable by others) stops the server at start-up with metrics_token_invalid', async () => {
    const root = trackedTempDir('lb-metrics-bad-');
    const short = join(root, 'short');
    writeFileSync(short, 'abc\n', { mode: 0o600 });
    const open = join(root, 'open');
    writeFileSync(open, `${METRICS_TOKEN}\n`);
    chmodSync(open, 0o644);
    for (const file of [short, open]) {
      const r = await runCli(['backup-server', 'serve', '--data-dir', join(root, 'backup'), '--listen', '127.0.0.1:0'], { env: { LIFEBOAT_METRICS_TOKEN_FILE: file } });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /\(metrics_token_invalid\)/);
      assert.ok(!r.stderr.includes(METRICS_TOKEN));
    }
  });
});

describe('the shared logger redacts secret fields', () => {
  it('a password, a token, a share or an authorization header in a log line is written as [redacted]', async () => {
    const lines: string[] = [];
    const app = createBaseApp({ logger: { level: 'info', stream: { write: (l: string) => void lines.push(l) } } });
    app.get('/x', async (req) => {
      req.log.info({ password: 'pw-secret-1', nested: { token: 'tok-secret-2', share: 'share-secret-3' }, headers: { authorization: 'Bearer hdr-secret-4' }, master_key: 'mk-secret-5', keep: 'visible' }, 'a line');
      return { ok: true };
    });
    await app.inject('/x');
    await app.close();
    const line = lines.find((l) => l.includes('"a line"'))!;
    assert.ok(line.includes('"keep":"visible"'), line);
    for (const secret of ['pw-secret-1', 'tok-secret-2', 'share-secret-3', 'hdr-secret-4', 'mk-secret-5']) assert.ok(!line.includes(secret), `${secret} in ${line}`);
    assert.equal(line.match(/\[redacted\]/g)?.length, 5);
  });
});

describe('metrics and readiness of a key node whose backup service goes down', { timeout: 120_000 }, () => {
  let set: NodeSet;
  let fx: BackupFixture;

  before(async () => {
    set = await startInProcessNodes(1);
    fx = await startBackupFixture();
  });
  after(async () => {
    await set.close();
    await fx.close();
  });

  it('backup_agent failing and the lag grows while the service is down; ready and drained once it is back', async () => {
    const node = await enableBackup(set, 0, fx);
    const app = createKeyNodeApp({ service: node.service, store: node.store, observe: nodeObservability(node) });
    try {
      const get = async (url: string) => app.inject({ url });
      await eventually(async () => (await get('/readyz')).statusCode === 200 && sample((await get('/metrics')).body, 'lifeboat_node_backup_lag_entries') === 0, 15_000, 'ready and drained with the service up');
      let text = (await get('/metrics')).body;
      assert.equal(sample(text, 'lifeboat_node_backup_connected'), 1, text);
      assert.equal(sample(text, 'lifeboat_node_backup_lag_entries'), 0);

      await fx.stop();
      await node.store.insertApiKey(newApiKey('operator', 'while-down').record); // a journaled change the agent must upload
      node.backup!.kick();
      await eventually(async () => (await get('/readyz')).statusCode === 503, 15_000, 'not ready with the service down');
      const r = await get('/readyz');
      assert.deepEqual([r.json().err_type, r.json().checks], ['not_ready', { store: 'ok', backup_agent: 'failing' }]);
      text = (await get('/metrics')).body;
      assert.equal(sample(text, 'lifeboat_node_backup_connected'), 0);
      assert.ok((sample(text, 'lifeboat_node_backup_lag_entries') ?? 0) >= 1, text);

      await fx.restart();
      node.backup!.kick();
      await eventually(async () => (await get('/readyz')).statusCode === 200 && sample((await get('/metrics')).body, 'lifeboat_node_backup_lag_entries') === 0, 30_000, 'ready and drained again');
      assert.ok((sample((await get('/metrics')).body, 'lifeboat_node_backup_acked_seq') ?? 0) >= 1);
    } finally {
      await app.close();
    }
  });
});
