/**
 * What issue 15's black-box tester found in coverage and the console, without a fleet: fake parts as
 * node:http servers in this process (an endless fast answer, a dribbled one, fields out of format),
 * reports built from hand-made facts (no backup service, a node down behind its fail-over, control
 * characters in a stream name, the words of the last line), the fleet file's URLs and credentials at
 * `fleet add`, and the console's doors (login CSRF, Origin, media type, rate limit, body timeout,
 * loopback-only plain http). docs/coverage.md.
 */
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startConsole } from '../src/console/server.js';
import { type Collected, collectFleet, MAX_ANSWER_BYTES } from '../src/coverage/collect.js';
import { emptyFleet, type Fleet, type FleetError, loadFleet, parseFleet } from '../src/coverage/fleet.js';
import { renderReport } from '../src/coverage/render.js';
import { buildReport, withKeys } from '../src/coverage/report.js';
import { VERSION } from '../src/util/version.js';
import { runCli } from './helpers/cli.js';
import { promtoolCheck, sample } from './helpers/metrics.js';
import { trackedTempDir } from './helpers/tmp.js';

const root = trackedTempDir('lifeboat-coverage-bounds-');
/** Console usage errors come before the fleet file is read: any path does. */
const fleetFile = join(root, 'fleet.json');
writeFileSync(join(root, 'operator.token'), 'lbk_x\n', { mode: 0o600 });

describe('what a part answers, bounded and checked; the report’s words (fake parts in this process)', () => {
  const facts = (stream: string) => ({ backup: { stream, account: `acct-${stream}`, sealed_seq: 3, acked_seq: 3, unsealed: 0, unacked: 0, compacted_seq: 0, compacted_at: null, last_error: null, rollback_detected: false }, failover: null });
  const key = (identifier: string, t = 2, n = 2) => ({ key_id: 'k1', curve: 'ed25519', group_public_key: 'ab'.repeat(32), identifier, threshold: t, max_signers: n, status: 'active', epoch: 0, created_at: new Date().toISOString(), channels: { backup: { seq: 2 } } });
  /** n1 and n2 hold a 2-of-2 key, each streaming to the backup service `bk`, which holds both streams. */
  const setup = (edit: (f: Fleet, c: Collected) => void = () => {}) => {
    const f = emptyFleet();
    f.nodes = [{ name: 'n1', url: 'http://127.0.0.1:1', credential: { fd: 3 } }, { name: 'n2', url: 'http://127.0.0.1:2', credential: { fd: 3 } }];
    f.backup_services = [{ name: 'bk', url: 'http://127.0.0.1:3', credential: { fd: 3 } }];
    const c: Collected = { at: Date.now(), parts: ['n1', 'n2', 'bk'].map((name) => ({ name, kind: name === 'bk' ? 'backup_service' : 'node', url: null, state: 'ok', error: null, ms: 1 })), nodes: new Map([['n1', { facts: facts('s1'), keys: [key('01')] }], ['n2', { facts: facts('s2'), keys: [key('02')] }]]), streams: new Map([['bk', new Map([['acct-s1/s1', 3], ['acct-s2/s2', 3]])]]), logs: new Map(), holders: new Map(), vault: undefined };
    edit(f, c);
    return buildReport(f, c);
  };

  it('with no backup service in the fleet a node’s backup path is unknown, never ok, and the key is not ok', () => {
    assert.equal(setup().keys[0]!.verdict, 'ok');
    const r = setup((f, c) => {
      f.backup_services = [];
      c.streams.clear();
      c.parts.pop();
    });
    assert.deepEqual(r.keys[0]!.member_detail.map((m) => m.paths.backup.state), ['unknown', 'unknown']);
    assert.match(String(r.keys[0]!.member_detail[0]!.paths.backup.why), /names no backup service/);
    assert.equal(r.keys[0]!.verdict, 'at_risk');
    assert.equal(r.ok, false);
  });

  it('a node that did not answer has its paths unknown, never none, when only its fail-over copy answered', () => {
    const r = setup((f, c) => {
      f.nodes[0]!.failover = 'n1fo';
      f.nodes.push({ name: 'n1fo', url: 'http://127.0.0.1:4', credential: { fd: 3 } });
      c.nodes.set('n1fo', { facts: { backup: null, failover: null }, keys: [key('01')] });
      c.nodes.delete('n1');
      c.parts[0]!.state = 'unknown';
    });
    const m = r.keys[0]!.member_detail.find((x) => x.node === null)!;
    assert.deepEqual([m.paths.backup.state, m.paths.snapshot.state, m.paths.log.state, m.paths.ers.state, m.paths.failover.state], ['unknown', 'unknown', 'unknown', 'unknown', 'ok']);
  });

  it('the text report neutralises control characters, counts losses in the singular, says what is wrong and prints the vault’s n', () => {
    const evil = 's1\x1b]0;pwned\x07\x1b[2J';
    let r = setup((f, c) => {
      c.nodes.get('n1')!.facts.backup!.stream = evil;
      c.streams.get('bk')!.set(`acct-${evil}/${evil}`, 3);
    });
    const text = renderReport(r).join('\n');
    assert.ok(renderReport(r).every((l) => !/\p{Cc}/u.test(l)), JSON.stringify(text));
    assert.match(text, /s1\\x1b\]0;pwned\\x07\\x1b\[2J/);
    assert.match(text, /one loss: LOST, 1 loss: LOST/);
    assert.ok(!/\([^()]*\(/.test(text), 'no nested parentheses');
    // every key ok, one part unknown and the vault 2-of-3 stale: the last line names those, not the keys
    r = setup((f, c) => {
      f.vault = { data_dir: '/nowhere' };
      f.logs = [{ name: 'lg', url: 'http://127.0.0.1:5' }];
      c.parts.push({ name: 'lg', kind: 'log', url: null, state: 'unknown', error: 'timeout', ms: 1 });
      c.vault = { lastVerify: { at: new Date(Date.now() - 40 * 86_400_000).toISOString(), ok: true, scheme_id: 'x', threshold: 2, checks: [1, 2, 3].map((member) => ({ member, kind: 'offline' as const, url: null, ok: true, code: null })) } };
    });
    const lines = renderReport(r);
    assert.match(lines.join('\n'), /vault: stale, .*, 2-of-3/);
    assert.equal(lines.at(-1), 'NOT covered: 1 part did not answer; the vault is stale (every key shown is ok as far as the parts that answered tell): see above');
    // --key: the summary is about the keys shown
    const one = withKeys(setup(), setup().keys);
    assert.deepEqual([one.summary.keys, one.summary.ok, one.ok], [1, 1, true]);
    assert.equal(renderReport(withKeys(setup(), [])).at(-1), 'every key (0) survives the loss of a node');
  });

  it('a part’s answer is bounded in bytes and in time (headers and body), and a field out of format makes it bad_answer', async () => {
    const tokenFile = join(root, 'fake.token');
    writeFileSync(tokenFile, 'lbk_fake\n', { mode: 0o600 });
    const chunk = Buffer.alloc(1 << 20, '{"a":1},');
    const pages: Record<string, string> = {
      '/evil-stream': JSON.stringify({ node: facts('s1\x1b]0;pwned\x07'), keys: [], next: null }),
      '/evil-key': JSON.stringify({ node: facts('s1'), keys: [{ ...key('01'), key_id: 'k\x1b[2J' }], next: null }),
      '/evil-curve': JSON.stringify({ node: facts('s1'), keys: [{ ...key('01'), curve: 'rsa' }], next: null }),
      '/evil-svc': JSON.stringify({ streams: [{ account: 'a', stream: 's\x1b[2J', head_seq: 1 }], next: null }),
    };
    const srv = createHttpServer((req, res) => {
      const path = (req.url ?? '').split('/v1/')[0]!;
      if (path === '/flood') {
        // a fast stream with no end: only the byte cap stops it
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('[');
        const pump = () => {
          while (res.write(chunk));
          res.once('drain', pump);
        };
        pump();
        res.on('close', () => res.removeAllListeners('drain'));
      } else if (path === '/drip') {
        // headers at once, then a byte every 100 ms: the timeout covers the body too
        res.writeHead(200, { 'content-type': 'application/json' });
        const t = setInterval(() => res.write(' '), 100);
        res.on('close', () => clearInterval(t));
      } else res.writeHead(200, { 'content-type': 'application/json' }).end(pages[path] ?? '{}');
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const u = `http://127.0.0.1:${(srv.address() as { port: number }).port}`;
    try {
      const f = emptyFleet();
      f.timeout_ms = 60_000;
      f.nodes = ['flood', 'evil-stream', 'evil-key', 'evil-curve'].map((name) => ({ name, url: `${u}/${name}`, credential: { file: tokenFile } }));
      f.backup_services = [{ name: 'bk', url: `${u}/evil-svc`, credential: { file: tokenFile } }];
      const c = await collectFleet(f);
      assert.deepEqual(Object.fromEntries(c.parts.map((p) => [p.name, [p.state, p.error]])), {
        flood: ['unknown', 'answer_too_large'],
        'evil-stream': ['unknown', 'bad_answer'],
        'evil-key': ['unknown', 'bad_answer'],
        'evil-curve': ['unknown', 'bad_answer'],
        bk: ['unknown', 'bad_answer'],
      });
      f.timeout_ms = 500;
      f.nodes = [{ name: 'drip', url: `${u}/drip`, credential: { file: tokenFile } }];
      f.backup_services = [];
      const t0 = performance.now();
      const d = await collectFleet(f);
      assert.deepEqual(d.parts.map((p) => [p.name, p.state, p.error]), [['drip', 'unknown', 'timeout']]);
      assert.ok(performance.now() - t0 < 5000);
      assert.equal(MAX_ANSWER_BYTES, 32 * 1024 * 1024, 'docs/coverage.md states the cap');
    } finally {
      srv.closeAllConnections();
      srv.close();
    }
  });
});

describe('the fleet file’s URLs and credentials at fleet add, and the console’s doors', () => {
  it('refuses a URL with userinfo or a query (fleet_inline_secret, never echoed), a vault credential without a vault and a 0640 credential file, at fleet add as coverage would; usage errors for console serve', async () => {
    const g = join(root, 'urls.json');
    const loose = join(root, 'loose.token');
    writeFileSync(loose, 'lbk_x\n', { mode: 0o640 });
    const secret = `lbk_${'Z'.repeat(20)}`;
    const tf = join(root, 'console2.token');
    writeFileSync(tf, 'console-token-0123456789abcdef\n', { mode: 0o600 });
    assert.equal((await runCli(['fleet', 'init', '--fleet', g])).code, 0);
    const empty = readFileSync(g, 'utf8');
    const add = (url: string, ...cred: string[]) => runCli(['fleet', 'add', 'node', 'x', '--url', url, ...(cred.length ? cred : ['--credential-file', join(root, 'operator.token')]), '--fleet', g]);
    const [userinfo, query, vault, perms, noToken, publicListen] = await Promise.all([
      add(`http://op:${secret}@127.0.0.1:45079`),
      add(`http://127.0.0.1:45079/?key=${secret}#abcd:ef01:2345:6789:abcd:ef01:2345:6789`),
      add('http://127.0.0.1:45079', '--credential-vault', 'op-token'),
      add('http://127.0.0.1:45079', '--credential-file', loose),
      runCli(['console', 'serve', '--fleet', fleetFile, '--listen', '127.0.0.1:0']),
      runCli(['console', 'serve', '--fleet', fleetFile, '--listen', '0.0.0.0:0', '--token-file', tf]),
    ]);
    for (const r of [userinfo, query]) {
      assert.equal(r.code, 1);
      assert.match(r.stderr, /\(fleet_inline_secret\)/);
      assert.ok(!r.stderr.includes(secret) && !r.stdout.includes(secret));
    }
    assert.match(vault.stderr, /the credential is the vault entry op-token, and the fleet names no vault.*\(credential_unreadable\)/);
    assert.match(perms.stderr, /\(insecure_permissions\)/);
    assert.equal(readFileSync(g, 'utf8'), empty, 'nothing was written');
    assert.deepEqual([noToken.code, publicListen.code], [2, 2]);
    assert.match(noToken.stderr, /give one of --token-file FILE or --token-fd N \(usage\)/);
    assert.match(publicListen.stderr, /not loopback.*plain http \(usage\)[\s\S]*--tls-cert/);
    // in the file itself too, and fleet_not_found's hint names the option there is
    assert.throws(() => parseFleet(JSON.stringify({ lifeboat_fleet: 1, logs: [{ name: 'l', url: 'https://log.example/?token=abc' }] })), (e: FleetError) => e.code === 'fleet_inline_secret' && !e.message.includes('abc'));
    assert.throws(() => loadFleet(join(root, 'none.json')), (e: FleetError) => e.code === 'fleet_not_found' && /`lifeboat fleet init --fleet FILE`/.test(e.hint ?? ''));
  });

  it('the console: a self-made login CSRF pair, another Origin and a multipart post are refused; login posts are rate-limited, and counted in /metrics; a body shorter than its length is cut off', async () => {
    const token = 'console-token-0123456789abcdef';
    const empty: Collected = { at: Date.now(), parts: [], nodes: new Map(), streams: new Map(), logs: new Map(), holders: new Map(), vault: undefined };
    // The first collection fails (the fleet is down), the next ones give an empty report.
    let collections = 0;
    const collect = async () => {
      if (collections++ === 0) throw new Error('fleet down');
      return buildReport(emptyFleet(), empty);
    };
    const srv = await startConsole({ token, collect, intervalS: 3600, secureCookies: false, listen: '127.0.0.1:0', metricsToken: null });
    const u = srv.url;
    const form = (body: Record<string, string>, headers: Record<string, string> = {}) => fetch(`${u}/login`, { method: 'POST', headers, body: new URLSearchParams(body), redirect: 'manual' });
    const metrics = async () => {
      const r = await fetch(`${u}/metrics`);
      assert.equal(r.status, 200, 'on loopback, without a session');
      return r.text();
    };
    try {
      // /healthz, /readyz and /metrics need no session; /readyz fails until a report is in
      for (const deadline = Date.now() + 15_000; sample(await metrics(), 'lifeboat_console_refreshes_total', { result: 'failed' }) !== 1; ) {
        assert.ok(Date.now() < deadline, 'timed out waiting for the first collection to fail');
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.deepEqual(await (await fetch(`${u}/healthz`)).json(), { ok: true, server: 'console', version: VERSION });
      let ready = await fetch(`${u}/readyz`);
      assert.equal(ready.status, 503);
      assert.deepEqual(await ready.json(), { err_type: 'not_ready', message: 'not ready: report failing', server: 'console', checks: { report: 'failing' } });
      assert.equal(sample(await metrics(), 'lifeboat_console_report_age_seconds'), undefined, 'no report, no age');
      await srv.refresh();
      ready = await fetch(`${u}/readyz`);
      assert.deepEqual([ready.status, await ready.json()], [200, { ready: true, server: 'console', checks: { report: 'ok' } }]);
      const proxied = await fetch(`${u}/metrics`, { headers: { 'x-forwarded-for': '203.0.113.9' } });
      assert.deepEqual([proxied.status, ((await proxied.json()) as { err_type: string }).err_type], [403, 'metrics_forbidden']);
      // a POST whose body never comes whole: answered 408 and closed within seconds, not held open
      const slow = new Promise<{ ms: number; answer: string }>((resolve, reject) => {
        const t0 = performance.now();
        const sock = connect(Number(new URL(u).port), '127.0.0.1', () => sock.write('POST /login HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\ncsrf=abc'));
        let answer = '';
        sock.on('data', (d) => (answer += d.toString()));
        sock.on('close', () => resolve({ ms: performance.now() - t0, answer }));
        sock.on('error', reject);
      });
      const forged = 'A'.repeat(43);
      assert.equal((await form({ csrf: forged, token }, { cookie: `lb_console_login=${forged}` })).status, 403, 'a pair the client chose itself');
      const page = await fetch(`${u}/login`);
      const pre = /lb_console_login=([^;]+)/.exec(page.headers.get('set-cookie') ?? '')![1]!;
      assert.equal((await form({ csrf: pre, token }, { cookie: `lb_console_login=${pre}`, origin: 'http://127.0.0.1:1' })).status, 403, 'another origin');
      const multi = new FormData();
      multi.set('csrf', pre);
      const mp = await fetch(`${u}/login`, { method: 'POST', body: multi });
      assert.equal(mp.status, 415);
      assert.match(await mp.text(), /application\/x-www-form-urlencoded/);
      const ok = await form({ csrf: pre, token }, { cookie: `lb_console_login=${pre}`, origin: u });
      assert.equal(ok.status, 303, 'its own origin is fine');
      const statuses: number[] = [];
      for (let i = 0; i < 10; i++) statuses.push((await form({ csrf: forged, token: 'wrong' }, { cookie: `lb_console_login=${forged}` })).status);
      const first = statuses.indexOf(429);
      assert.ok(first > 0 && statuses.slice(0, first).every((s) => s === 403) && statuses.slice(first).every((s) => s === 429), `${statuses}`);
      const limited = await form({ csrf: forged, token: 'wrong' });
      assert.equal(limited.status, 429);
      assert.ok(Number(limited.headers.get('retry-after')) >= 1);
      // Login posts the console judged, by result (the other Origin and the multipart post never reached it)
      const text = await metrics();
      const check = promtoolCheck(text);
      assert.equal(check.status, 0, `promtool: ${check.out}`);
      const logins = Object.fromEntries(['ok', 'refused', 'rate_limited'].map((result) => [result, sample(text, 'lifeboat_console_logins_total', { result, server: 'console' })]));
      assert.deepEqual(logins, { ok: 1, refused: 1 + first, rate_limited: 10 - first + 1 });
      assert.deepEqual([sample(text, 'lifeboat_console_refreshes_total', { result: 'ok' }), sample(text, 'lifeboat_console_refresh_duration_seconds_count'), sample(text, 'lifeboat_console_sessions')], [1, 2, 1]);
      assert.deepEqual([sample(text, 'lifeboat_console_report_ok'), sample(text, 'lifeboat_console_keys', { verdict: 'at_risk' })], [1, 0]);
      assert.ok(sample(text, 'lifeboat_console_report_age_seconds')! >= 0 && sample(text, 'process_resident_memory_bytes')! > 0);
      assert.ok(!text.includes(token), 'no token in the metrics');
      const { ms, answer } = await slow;
      assert.match(answer, /^HTTP\/1\.1 408/);
      assert.ok(ms < 15_000, `${ms} ms`);
    } finally {
      await srv.close();
    }
  });
});
