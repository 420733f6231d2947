/**
 * lifeboat coverage, the fleet file and the console on a real fleet: a backup service and three key
 * nodes as processes on loopback, node 1 paired with a fail-over node (test/helpers/coverage.ts). Key
 * `cov_b` lives on nodes 1-3 (2-of-3), `cov_f` on nodes 1-2 and `cov_a` on nodes 2-3 (2-of-2). Removing
 * node 1's account on the backup service (its stream gone) must put the keys on node 1, and only them,
 * at risk, first, in the command and on the page (real Chromium); the console answers /healthz, /readyz
 * and, with the metrics token only, /metrics. Then the fail-over paths: node 1's
 * copies keep `cov_f` alive through the loss of one node until the fail-over or the copy is gone.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type CoverageReport, worstLoss } from '../src/coverage/report.js';
import { KeyNodeClient } from '../src/keynode/client.js';
import { VERSION } from '../src/util/version.js';
import { runCli, type RunningCli, startCli } from './helpers/cli.js';
import { promtoolCheck, sample } from './helpers/metrics.js';
import { type CoverageFleet, screenshot, startCoverageFleet, withConsolePage } from './helpers/coverage.js';

let fx: CoverageFleet;
let fleetFile: string;

const status = async (url: string) => (await (await fetch(`${url}/v1/status`, { headers: { authorization: `Bearer ${fx.operator}` } })).json()) as { keys: number; failover: { lag: number } | null };

async function until(what: string, fn: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const coverage = async (args: string[] = []) => {
  const r = await runCli(['coverage', '--fleet', fleetFile, '--json', ...args], { timeoutMs: 60_000 });
  return { ...r, report: JSON.parse(r.stdout) as CoverageReport };
};

before(async () => {
  fx = await startCoverageFleet(3, { failoverOf: 0 });
  await fx.createKey([0, 1, 2], 'cov_b');
  await fx.createKey([1, 2], 'cov_a');
  await fx.createKey([0, 1], 'cov_f');
  fleetFile = fx.writeFleet();
  // node 1's two shares reach its fail-over
  await until('node 1 synced to its fail-over', async () => {
    const [p, f] = await Promise.all([status(fx.nodes[0]!.url), status(fx.failover!.url)]);
    return p.failover?.lag === 0 && f.keys === 2;
  });
});
after(async () => {
  await fx?.stop();
});

describe('lifeboat coverage', () => {
  it('reports every key ok with its members and paths when every stream is acknowledged, exit 0', async () => {
    const { code, report, stderr } = await coverage();
    assert.equal(code, 0, stderr);
    assert.equal(report.ok, true);
    assert.deepEqual(report.keys.map((k) => [k.key_id, k.verdict, k.threshold, k.members]), [['cov_a', 'ok', 2, 2], ['cov_b', 'ok', 2, 3], ['cov_f', 'ok', 2, 2]]);
    const b = report.keys.find((k) => k.key_id === 'cov_b')!;
    assert.equal(b.member_detail.length, 3);
    assert.deepEqual(b.member_detail.map((m) => m.node).sort(), ['node1', 'node2', 'node3']);
    for (const m of b.member_detail) {
      assert.equal(m.paths.backup.state, 'ok');
      assert.ok(typeof m.paths.backup.service_head_seq === 'number' && m.paths.backup.service_head_seq >= (m.paths.backup.seq as number));
      assert.equal(m.durable, true);
    }
    assert.equal(b.survives_one_loss, true);
    assert.equal(b.survives_t_minus_1_losses, true);
    // node 1's fail-over copy: a path of node 1's members (present, with node 1's lag), not a member of its own
    for (const key of report.keys.filter((k) => k.key_id !== 'cov_a')) {
      assert.equal(key.member_detail.length, key.members);
      for (const m of key.member_detail) assert.deepEqual(m.paths.failover, m.node === 'node1' ? { state: 'ok', lag: 0 } : { state: 'none' });
    }
    assert.deepEqual(report.nodes.map((n) => [n.name, n.failover?.lag ?? null]), [['node1', 0], ['node2', null], ['node3', null], ['node1-fo', null]]);
    assert.ok(report.parts.every((p) => p.state === 'ok'));
    assert.ok(!JSON.stringify(report).includes(fx.operator) && !JSON.stringify(report).includes(fx.monitorToken));
  });

  it('the node route is operator-only and the monitor route needs a monitor token', async () => {
    const n1 = fx.nodes[0]!.url;
    assert.equal((await fetch(`${n1}/v1/coverage`)).status, 401);
    assert.equal((await fetch(`${n1}/v1/coverage`, { headers: { authorization: `Bearer ${fx.client}` } })).status, 403);
    const page = (await (await fetch(`${n1}/v1/coverage?limit=1`, { headers: { authorization: `Bearer ${fx.operator}` } })).json()) as { keys: { key_id: string }[]; next: string | null; node: object };
    assert.equal(page.keys.length, 1);
    assert.equal(page.next, 'cov_b');
    const body = JSON.stringify(page);
    assert.ok(!/encrypted|share"|nonce/i.test(body), body);
    assert.equal((await fetch(`${fx.backup.url}/v1/monitor/streams`)).status, 401);
    assert.equal((await fetch(`${fx.backup.url}/v1/monitor/streams`, { headers: { authorization: `Bearer lbm_${'A'.repeat(43)}` } })).status, 401);
  });

  it('a wrong token makes that node unknown, never ok, and its keys not ok; exit 1', async () => {
    const bad = join(fx.root, 'wrong.token');
    writeFileSync(bad, 'lbk_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n', { mode: 0o600 });
    fleetFile = fx.writeFleet((f) => (f.nodes[2]!.credential = { file: bad }));
    try {
      const { code, report } = await coverage();
      assert.equal(code, 1);
      assert.deepEqual(report.parts.filter((p) => p.state === 'unknown').map((p) => [p.name, p.error]), [['node3', 'unauthorized']]);
      assert.deepEqual(report.keys.map((k) => [k.key_id, k.verdict]), [['cov_a', 'at_risk'], ['cov_b', 'at_risk'], ['cov_f', 'ok']], 'the keys with a share on node 3 are not ok; cov_f has none there');
    } finally {
      fleetFile = fx.writeFleet();
    }
  });

  it('a part that hangs shows as unknown (timeout) after the fleet timeout', async () => {
    const sockets: Socket[] = [];
    const hang: Server = createServer((s) => void sockets.push(s));
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    const port = (hang.address() as { port: number }).port;
    fleetFile = fx.writeFleet((f) => {
      f.timeout_ms = 500;
      f.backup_services[0]!.url = `http://127.0.0.1:${port}`;
    });
    try {
      const t0 = performance.now();
      const { code, report } = await coverage();
      assert.equal(code, 1);
      const part = report.parts.find((p) => p.name === 'backup')!;
      assert.equal(part.state, 'unknown');
      assert.equal(part.error, 'timeout');
      assert.ok(performance.now() - t0 < 30_000);
      for (const k of report.keys) for (const m of k.member_detail) assert.equal(m.paths.backup.state, 'unknown');
      assert.ok(report.keys.every((k) => k.verdict === 'at_risk'));
    } finally {
      for (const s of sockets) s.destroy();
      hang.close();
      fleetFile = fx.writeFleet();
    }
  });

  it('a fleet file with an unknown part, an inline token or no credential is refused by name, and fleet add leaves the file as it was', async () => {
    const f = join(fx.root, 'bad-fleet.json');
    writeFileSync(f, JSON.stringify({ lifeboat_fleet: 1, routers: [] }));
    let r = await runCli(['coverage', '--fleet', f, '--json']);
    assert.equal(r.code, 1);
    assert.equal((JSON.parse(r.stdout) as { err_type: string }).err_type, 'fleet_unknown_part');
    writeFileSync(f, JSON.stringify({ lifeboat_fleet: 1, nodes: [{ name: 'n', url: 'http://127.0.0.1:1', credential: { file: '/x' }, token: fx.operator }] }));
    r = await runCli(['coverage', '--fleet', f, '--json']);
    assert.equal((JSON.parse(r.stdout) as { err_type: string }).err_type, 'fleet_inline_secret');
    assert.ok(!r.stdout.includes(fx.operator) && !r.stderr.includes(fx.operator));
    // fleet init and add through the CLI
    const g = join(fx.root, 'made.json');
    assert.equal((await runCli(['fleet', 'init', '--fleet', g])).code, 0);
    assert.equal(statSync(g).mode & 0o777, 0o600);
    assert.equal((await runCli(['fleet', 'add', 'node', 'n1', '--url', `${fx.nodes[0]!.url}#abcd:ef01:2345:6789:abcd:ef01:2345:6789`, '--credential-file', join(fx.root, 'operator.token'), '--fleet', g])).code, 0);
    const before = readFileSync(g, 'utf8');
    r = await runCli(['fleet', 'add', 'node', 'n2', '--url', fx.nodes[1]!.url, '--fleet', g]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /give exactly one of --credential-file.*\(invalid_input\)/);
    r = await runCli(['fleet', 'add', 'node', 'n3', '--url', fx.nodes[1]!.url, '--credential-fd', '5', '--failover', 'nope', '--fleet', g]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\(fleet_name_unknown\)/);
    assert.equal(readFileSync(g, 'utf8'), before);
    const made = JSON.parse(before) as { nodes: { name: string; fingerprint: string; credential: object }[] };
    assert.deepEqual(made.nodes.map((n) => [n.name, n.fingerprint, n.credential]), [['n1', 'abcd:ef01:2345:6789:abcd:ef01:2345:6789', { file: join(fx.root, 'operator.token') }]]);
  });
});

describe('a node’s backup stream stopped: coverage and the console', () => {
  let consoleSrv: RunningCli;
  const token = 'console-token-0123456789abcdef';
  const metricsToken = 'console-metrics-token-5f1c0e9a';
  before(async () => {
    const tf = join(fx.root, 'console.token');
    writeFileSync(tf, `${token}\n`, { mode: 0o600 });
    const mtf = join(fx.root, 'metrics.token');
    writeFileSync(mtf, `${metricsToken}\n`, { mode: 0o600 });
    consoleSrv = await startCli(['console', 'serve', '--fleet', fleetFile, '--listen', '127.0.0.1:0', '--token-file', tf, '--interval', '60', '--json'], { env: { LIFEBOAT_METRICS_TOKEN_FILE: mtf } });
  });
  after(async () => {
    await consoleSrv?.stop();
  });

  it('refuses a page without a session, a wrong token and a CSRF attempt', async () => {
    const u = consoleSrv.url;
    let res = await fetch(`${u}/`, { redirect: 'manual' });
    assert.equal(res.status, 401);
    const page = await res.text();
    assert.match(page, /Operator token/);
    assert.ok(!page.includes('cov_b'));
    assert.equal((await fetch(`${u}/report.json`)).status, 401);
    assert.equal((await fetch(`${u}/refresh`, { method: 'POST', body: new URLSearchParams({ csrf: 'x' }) })).status, 401);
    // the login form's token is bound to its cookie
    const pre = /lb_console_login=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')![1]!;
    const csrfIn = /name="csrf" value="([^"]+)"/.exec(page)![1]!;
    assert.equal(csrfIn, pre);
    res = await fetch(`${u}/login`, { method: 'POST', body: new URLSearchParams({ csrf: csrfIn, token }), redirect: 'manual' });
    assert.equal(res.status, 403, 'a login post without its cookie (from another site) is refused');
    res = await fetch(`${u}/login`, { method: 'POST', headers: { cookie: `lb_console_login=${pre}` }, body: new URLSearchParams({ csrf: csrfIn, token: 'wrong-token-wrong-token' }), redirect: 'manual' });
    assert.equal(res.status, 401);
    assert.ok(!(res.headers.get('set-cookie') ?? '').includes('lb_console='));
    // the form's token is good for one post: the same one again is refused, the new form's is taken
    res = await fetch(`${u}/login`, { method: 'POST', headers: { cookie: `lb_console_login=${pre}` }, body: new URLSearchParams({ csrf: csrfIn, token }), redirect: 'manual' });
    assert.equal(res.status, 403, 'a login CSRF token is single use');
    const again = await fetch(`${u}/login`);
    const pre2 = /lb_console_login=([^;]+)/.exec(again.headers.get('set-cookie') ?? '')![1]!;
    res = await fetch(`${u}/login`, { method: 'POST', headers: { cookie: `lb_console_login=${pre2}` }, body: new URLSearchParams({ csrf: pre2, token }), redirect: 'manual' });
    assert.equal(res.status, 303);
    const setCookie = res.headers.get('set-cookie')!;
    assert.match(setCookie, /lb_console=[^;]+; HttpOnly; SameSite=Strict; Path=\//);
    const sid = /lb_console=([^;]+)/.exec(setCookie)![1]!;
    res = await fetch(`${u}/refresh`, { method: 'POST', headers: { cookie: `lb_console=${sid}` }, body: new URLSearchParams({ csrf: 'forged' }), redirect: 'manual' });
    assert.equal(res.status, 403, 'a post with the session cookie but not its CSRF token is refused');
    res = await fetch(`${u}/refresh`, { method: 'POST', headers: { cookie: `lb_console=${sid}` }, redirect: 'manual' });
    assert.equal(res.status, 403);
  });

  it('answers /healthz and /readyz without a session, and /metrics only with the metrics token: a refused login moves its counter', async () => {
    const u = consoleSrv.url;
    assert.deepEqual(await (await fetch(`${u}/healthz`)).json(), { ok: true, server: 'console', version: VERSION });
    await until('the console holds its first report', async () => (await fetch(`${u}/readyz`)).status === 200);
    assert.deepEqual(await (await fetch(`${u}/readyz`)).json(), { ready: true, server: 'console', checks: { report: 'ok' } });
    for (const authorization of [undefined, 'Bearer wrong-metrics-token-0000', `Basic ${metricsToken}`]) {
      const r = await fetch(`${u}/metrics`, { headers: authorization ? { authorization } : {} });
      assert.equal(r.status, 401, `loopback too needs the token (${authorization})`);
      assert.equal(((await r.json()) as { err_type: string }).err_type, 'metrics_unauthorized');
    }
    const metrics = async () => {
      const r = await fetch(`${u}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } });
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      return r.text();
    };
    const before = await metrics();
    const check = promtoolCheck(before);
    assert.equal(check.status, 0, `promtool: ${check.out}`);
    assert.equal(sample(before, 'lifeboat_build_info', { server: 'console', version: VERSION }), 1);
    assert.deepEqual(['ok', 'at_risk', 'lost_path'].map((verdict) => sample(before, 'lifeboat_console_keys', { verdict })), [3, 0, 0]);
    assert.ok(sample(before, 'lifeboat_console_refreshes_total', { result: 'ok' })! >= 1 && sample(before, 'lifeboat_console_report_age_seconds')! >= 0);
    // a refused login (a fresh form, a wrong token)
    const form = await fetch(`${u}/login`);
    const pre = /lb_console_login=([^;]+)/.exec(form.headers.get('set-cookie') ?? '')![1]!;
    const refused = await fetch(`${u}/login`, { method: 'POST', headers: { cookie: `lb_console_login=${pre}` }, body: new URLSearchParams({ csrf: pre, token: 'wrong-token-wrong-token' }), redirect: 'manual' });
    assert.equal(refused.status, 401);
    const after = await metrics();
    assert.equal(sample(after, 'lifeboat_console_logins_total', { result: 'refused' }), sample(before, 'lifeboat_console_logins_total', { result: 'refused' })! + 1);
    assert.equal(sample(after, 'lifeboat_console_logins_total', { result: 'ok' }), sample(before, 'lifeboat_console_logins_total', { result: 'ok' }));
    assert.ok((sample(after, 'lifeboat_http_requests_total', { route: '/login', method: 'POST', status: '401' }) ?? 0) >= 1);
    for (const secret of [token, metricsToken, 'wrong-token-wrong-token']) assert.ok(!after.includes(secret));
  });

  it('puts the affected key at risk, first, in coverage (exit 1) and on the page in Chromium', async () => {
    await withConsolePage(consoleSrv.url, token, async (page) => {
      assert.deepEqual(await page.$$eval('#keys tr.key', (rows) => rows.map((r) => [r.getAttribute('data-key'), r.getAttribute('data-verdict')])), [['cov_a', 'ok'], ['cov_b', 'ok'], ['cov_f', 'ok']]);
      // stop node 1's stream: its account and streams are gone from the backup service
      const rm = await runCli(['backup-server', 'account', 'rm', 'acct-node1', '--yes', '--data-dir', fx.backupDir]);
      assert.equal(rm.code, 0, rm.stderr);
      const { code, report } = await coverage();
      assert.equal(code, 1);
      assert.deepEqual(report.keys.map((k) => [k.key_id, k.verdict]), [['cov_b', 'at_risk'], ['cov_f', 'at_risk'], ['cov_a', 'ok']]);
      const m1 = report.keys[0]!.member_detail.find((m) => m.node === 'node1')!;
      assert.equal(m1.paths.backup.state, 'missing');
      assert.deepEqual([m1.paths.failover.state, m1.durable], ['ok', true], 'its copy on the fail-over node still outlives node 1');
      const text = await runCli(['coverage', '--fleet', fleetFile, '--key', 'cov_b']);
      assert.equal(text.code, 1);
      assert.match(text.stdout, /AT_RISK\s+cov_b/);
      assert.match(text.stdout, /node1: backup missing/);
      await page.click('#refresh');
      await page.waitForSelector('#keys tr.key[data-verdict="at_risk"]');
      assert.deepEqual(await page.$$eval('#keys tr.key', (rows) => rows.map((r) => [r.getAttribute('data-key'), r.getAttribute('data-verdict')])), [['cov_b', 'at_risk'], ['cov_f', 'at_risk'], ['cov_a', 'ok']]);
      await page.click('#keys tr.key summary');
      assert.match((await page.textContent('#keys')) ?? '', /backup: missing/);
      assert.equal(await page.locator('svg').count(), 2);
      const html = await page.content();
      assert.ok(!html.includes(token) && !html.includes(fx.operator) && !html.includes(fx.monitorToken));
      const shot = await screenshot(page, 'coverage-console.png');
      assert.ok(statSync(shot).size > 1000);
      console.log(`console screenshot: ${shot}`);
    });
  });
});

describe('fail-over paths: node 1’s copies on its fail-over (node 1’s backup stream gone since the test above)', () => {
  const member1 = (r: CoverageReport, key: string) => {
    const k = r.keys.find((x) => x.key_id === key)!;
    // node 1's share: the member whose identifier node 1 (or, while it is down, its fail-over) answered with
    return { k, m: k.member_detail.find((m) => m.node === 'node1' || m.node === null)! };
  };

  it('the worst loss of k nodes takes a member only with every node holding its copies (a shared fail-over too)', () => {
    assert.equal(worstLoss([['a', 'a-fo'], ['b'], ['c']], 1), 1);
    assert.equal(worstLoss([['a', 'a-fo'], ['b'], ['c']], 2), 2, 'b and c');
    assert.equal(worstLoss([['a', 'x'], ['b', 'x'], ['c', 'x']], 2), 1, 'one primary and the fail-over they share');
    assert.equal(worstLoss([['a', 'x'], ['b', 'x'], ['c', 'x']], 3), 2);
    assert.equal(worstLoss([['x'], ['x']], 1), 2, 'two shares whose only copies are on one node');
    assert.equal(worstLoss([], 2), 0);
  });

  it('the copy present: the member is durable through it, and a 2-of-2 key survives the loss of one node', async () => {
    const { code, report } = await coverage();
    assert.equal(code, 1);
    const { k, m } = member1(report, 'cov_f');
    assert.deepEqual([m.paths.backup.state, m.paths.failover, m.durable], ['missing', { state: 'ok', lag: 0 }, true]);
    assert.deepEqual([k.verdict, k.survives_one_loss, k.survives_t_minus_1_losses], ['at_risk', true, true]);
    assert.ok(!k.reasons.some((r) => /one more node/.test(r)), k.reasons.join('; '));
    const text = await runCli(['coverage', '--fleet', fleetFile, '--key', 'cov_f']);
    assert.match(text.stdout, /on node1 up, durable: backup missing( lag \d+)?, failover ok lag 0/);
  });

  it('node 1 stopped: its share lives on the fail-over only, so losing that node loses a 2-of-2 key: at risk, one more loss fatal', async () => {
    await fx.nodes[0]!.stop();
    try {
      const { code, report } = await coverage();
      assert.equal(code, 1);
      assert.deepEqual(report.parts.filter((p) => p.state === 'unknown').map((p) => [p.name, p.error]), [['node1', 'unreachable']]);
      const { k, m } = member1(report, 'cov_f');
      assert.deepEqual([m.node, m.state, m.paths.failover.state, m.durable], [null, 'unknown', 'ok', true]);
      assert.deepEqual([k.verdict, k.survives_one_loss, k.survives_t_minus_1_losses], ['at_risk', false, false]);
      assert.ok(k.reasons.includes('the loss of one more node makes it unrecoverable'), k.reasons.join('; '));
      // a 2-of-3 key keeps nodes 2 and 3 on the backup service: it survives the fail-over's loss too
      const b = member1(report, 'cov_b').k;
      assert.deepEqual([b.verdict, b.survives_one_loss, b.member_detail.length], ['at_risk', true, 3]);
    } finally {
      await fx.serveNode(0);
    }
  });

  it('the fail-over stopped, then the copy gone from it: the path is unknown, then missing, and the 2-of-2 key no longer survives one loss', async () => {
    await fx.failover!.server!.stop();
    let report: CoverageReport;
    try {
      ({ report } = await coverage());
      assert.deepEqual(report.parts.filter((p) => p.state === 'unknown').map((p) => [p.name, p.error]), [['node1-fo', 'unreachable']]);
      const { k, m } = member1(report, 'cov_f');
      assert.equal(m.node, 'node1');
      assert.deepEqual([m.paths.failover.state, m.paths.failover.lag, m.durable], ['unknown', 0, false]);
      assert.match(String(m.paths.failover.why), /fail-over node1-fo did not answer/);
      assert.deepEqual([k.verdict, k.survives_one_loss], ['at_risk', false]);
      assert.ok(k.reasons.includes('the loss of one more node makes it unrecoverable'));
      assert.ok(k.reasons.some((r) => r.startsWith('node1: failover unknown')), k.reasons.join('; '));
      assert.deepEqual(report.keys.find((x) => x.key_id === 'cov_a')!.verdict, 'ok', 'a key without node 1 is not touched');
    } finally {
      await fx.serveFailover();
    }
    const copy = member1(report, 'cov_f').m.key_id!;
    await new KeyNodeClient({ url: fx.failover!.url, apiKey: fx.operator }).deleteKey(copy);
    const { code, report: after } = await coverage();
    assert.equal(code, 1);
    assert.ok(after.parts.every((p) => p.state === 'ok'));
    const { k, m } = member1(after, 'cov_f');
    assert.deepEqual([m.paths.failover.state, m.paths.failover.why, m.durable], ['missing', 'fail-over node1-fo has no copy', false]);
    assert.deepEqual([k.verdict, k.survives_one_loss], ['at_risk', false]);
    assert.deepEqual(member1(after, 'cov_b').m.paths.failover, { state: 'ok', lag: 0 }, 'the other copy is still there');
  });
});
