import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { trackedTempDir } from './helpers/tmp.js';
import { cliArgs, tracked } from './helpers/cli.js';
import { screenshot, withConsolePage } from './helpers/coverage.js';
import { runCli, type RunResult } from '../src/drill/proc.js';
import { runScenarios } from '../src/drill/runner.js';
import { LifeboatError } from '../src/errors.js';
import type { CoverageReport } from '../src/coverage/report.js';
import type { DrillConsole } from '../src/drill/console.js';

// One drill run, over TLS (--tls: a throwaway openssl CA, every server on https, every client given the
// CA; the rest of the suite runs the same servers over plain http), shared by the tests that read its
// report. It keeps its directory (under TMP, removed after the file) and tees its children's stderr and
// its secrets list into LOGS (docs/monitoring.md). With --console its backup fleet and a console stay
// up once its report is out: the first test uses them as a new user would, then Ctrl-C ends the drill.
const TMP = trackedTempDir('lb-drill-');
const LOGS = join(TMP, 'logs');

interface Started { report: { ok: boolean; console: DrillConsole | null }; exited: Promise<RunResult>; interrupt(): void; pid: number }
let started: Promise<Started> | undefined;
function startDrill(): Promise<Started> {
  return (started ??= new Promise((resolve, reject) => {
    const child = tracked(spawn(process.execPath, [...cliArgs(), 'drill', '--tls', '--json', '--keep', '--console'], { env: { ...process.env, TMPDIR: TMP, LIFEBOAT_DRILL_LOG_DIR: LOGS }, stdio: ['ignore', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    let announced = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 540_000);
    const exited = new Promise<RunResult>((done) => child.on('close', (code) => {
      clearTimeout(timer);
      done({ code: code ?? 1, stdout, stderr, secret: '' });
      if (!announced) reject(new Error(`the drill exited (${code}) before its report: ${stderr}`));
    }));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (announced) return;
      try {
        const report = JSON.parse(stdout) as Started['report'];
        announced = true;
        resolve({ report, exited, interrupt: () => child.kill('SIGINT'), pid: child.pid! });
      } catch {
        // not the whole document yet
      }
    });
  }));
}
let drill: Promise<RunResult> | undefined;
/** The drill's whole run: its report, then (the console test done or not) Ctrl-C, and its exit. */
const runDrill = () => (drill ??= startDrill().then((s) => {
  s.interrupt();
  return s.exited;
}));

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

/** The secrets the drill left in files of its kept directory: master keys, the wallet key, the ERS key, the services' setups. */
function fileSecrets(dir: string): string[] {
  const out: string[] = [];
  for (const f of filesUnder(dir)) {
    const name = basename(f);
    if (name === 'master.key') {
      const key = (JSON.parse(readFileSync(f, 'utf8')) as { key: string }).key;
      out.push(key, Buffer.from(key, 'base64').toString('hex'), Buffer.from(key, 'base64').toString('base64url'));
    } else if (name === 'wallet.key' || name === 'totp-seal-key' || name === 'opaque-server-setup') out.push(readFileSync(f, 'utf8').trim());
    else if (name === 'ers.key') out.push(readFileSync(f, 'utf8').split('\n')[1]!);
    else if (name === 'console.token') out.push(readFileSync(f, 'utf8').trim());
  }
  return out.filter((s) => s.length >= 16);
}

test('lifeboat drill --console: the fleet stays up; stopping one node’s backup stream moves its keys to at_risk in coverage and on the console page; Ctrl-C ends it', { timeout: 550_000 }, async () => {
  const { report, exited, pid } = await startDrill();
  assert.equal(report.ok, true);
  const k = report.console;
  assert.ok(k, 'the console is in the report');
  // Only the backup fleet stays up with the console: a backup service, three key nodes and the console.
  const children = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[1] === String(pid);
    } catch {
      return false; // exited meanwhile
    }
  });
  assert.equal(children.length, 5, `the drill's children: ${children.length}`);
  assert.match(k.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(statSync(k.token_file).mode & 0o777, 0o600);
  const token = readFileSync(k.token_file, 'utf8').trim();
  const env = { ...process.env, LIFEBOAT_CA_FILE: k.ca_file! };
  const coverage = async () => {
    const r = await runCli([...k.coverage_args, '--json'], { env });
    return { code: r.code, report: JSON.parse(r.stdout) as CoverageReport };
  };
  const before = await coverage();
  assert.equal(before.code, 0);
  assert.ok(before.report.keys.length >= 4 && before.report.keys.every((key) => key.verdict === 'ok'));
  await withConsolePage(k.url, token, async (page) => {
    const verdicts = () => page.$$eval('#keys tr.key', (rows) => rows.map((r) => r.getAttribute('data-verdict')));
    assert.ok((await verdicts()).every((v) => v === 'ok'));
    // The printed command, as a user runs it: node-a's account and stream are gone from the service.
    const stop = await runCli(k.stop_stream.args, { env });
    assert.equal(stop.code, 0, stop.stderr);
    const after = await coverage();
    assert.equal(after.code, 1, 'coverage exits non-zero once a key is at risk');
    const onA = after.report.keys.filter((key) => key.member_detail.some((m) => m.node === k.stop_stream.node));
    assert.ok(onA.length >= 4 && onA.every((key) => key.verdict === 'at_risk' && key.member_detail.find((m) => m.node === k.stop_stream.node)!.paths.backup.state === 'missing'));
    // The page reloads itself (every 5 s) and shows them at risk, first.
    await page.waitForSelector('#keys tr.key[data-verdict="at_risk"]', { timeout: 60_000 });
    const shown = await verdicts();
    assert.equal(shown.filter((v) => v === 'at_risk').length, onA.length);
    assert.deepEqual(shown.slice(0, onA.length), onA.map(() => 'at_risk'), 'at-risk keys first');
    const html = await page.content();
    assert.ok(!html.includes(token));
    await screenshot(page, 'drill-console.png');
  });
  const r = await runDrill();
  assert.equal(r.code, 0, 'Ctrl-C ends a drill that passed with 0');
  assert.equal(await exited, r);
  const port = Number(new URL(k.url).port);
  const listening = await new Promise<boolean>((done) => {
    const sock = connect(port, '127.0.0.1', () => done(!sock.destroy())).on('error', () => done(false));
  });
  assert.equal(listening, false, 'the console stopped with the drill');
  assert.ok(existsSync(k.fleet_file), '--keep keeps the directory');
});

test('lifeboat drill --json: the worst day passes end to end with real processes', { timeout: 550_000 }, async () => {
  const r = await runDrill();
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as { ok: boolean; scenarios: { name: string; ok: boolean; ms: number }[] };
  assert.equal(report.ok, true);
  assert.match(r.stdout + r.stderr, /https:\/\/127\.0\.0\.1:\d+/, 'the servers answered over https');
  const names = report.scenarios.map((s) => s.name);
  for (const expected of [/start two share holders/, /recovery init 2-of-3/, /put secrets/, /delete its data directory/, /reconstruct from one holder and the offline share/, /every secret is intact/, /rotate/, /verify every holder/, /old offline share opens nothing/, /the company is gone: a 2-of-3 key/, /every node destroyed; the key recovered with openssl/]) {
    assert.ok(names.some((n) => expected.test(n)), `missing scenario ${expected}`);
  }
  for (const s of report.scenarios) {
    assert.equal(s.ok, true, s.name);
    assert.ok(Number.isInteger(s.ms) && s.ms >= 0);
  }
  assert.equal(r.stderr, '', 'with --json, progress is quiet');
});

test('lifeboat drill --json: the key node scenarios sign before and after, in the same report', { timeout: 550_000 }, async () => {
  const r = await runDrill();
  const report = JSON.parse(r.stdout) as { ok: boolean; ms: number; scenarios: { name: string; ok: boolean; ms: number }[] };
  const names = report.scenarios.map((s) => s.name);
  const expected = [/three nodes, each paired with a fail-over node/, /a 2-of-3 key by DKG/, /the signing node lost and restored/, /client self-recovery/, /fail-over take-over/];
  const at = expected.map((e) => names.findIndex((n) => e.test(n)));
  assert.ok(at.every((i) => i >= 0), `missing key node scenarios in ${names.join('; ')}`);
  assert.deepEqual([...at].sort((a, b) => a - b), at, 'in order');
  assert.ok(at[0]! > names.findIndex((n) => /old offline share/.test(n)), 'after the vault scenarios');
  for (const i of at) assert.equal(report.scenarios[i]!.ok, true, names[i]);
  assert.deepEqual(Object.keys(report.scenarios[at[0]!]!).sort(), ['ms', 'name', 'ok']);
});

test('lifeboat drill --json: the backup scenarios restore a node destroyed mid-stream, after the key node scenarios', { timeout: 550_000 }, async () => {
  const r = await runDrill();
  const report = JSON.parse(r.stdout) as { ok: boolean; scenarios: { name: string; ok: boolean; ms: number }[] };
  const names = report.scenarios.map((s) => s.name);
  const expected = [/backups: a backup service and three key nodes/, /backups: keys created while the nodes stream, two of them while the service is down/, /backups: `backup check` verifies a stream end to end; a point-in-time restore/, /backups: a node destroyed mid-stream and restored from the service/];
  const at = expected.map((e) => names.findIndex((n) => e.test(n)));
  assert.ok(at.every((i) => i >= 0), `missing backup scenarios in ${names.join('; ')}`);
  assert.deepEqual([...at].sort((a, b) => a - b), at, 'in order');
  assert.ok(at[0]! > names.findIndex((n) => /fail-over take-over/.test(n)), 'after the key node scenarios');
  for (const i of at) assert.equal(report.scenarios[i]!.ok, true, names[i]);
});

test('lifeboat drill --json: a node backed up under a wallet and a TOTP code is destroyed and restored with both; without the code it is refused', { timeout: 550_000 }, async () => {
  const r = await runDrill();
  const report = JSON.parse(r.stdout) as { ok: boolean; scenarios: { name: string; ok: boolean; ms: number }[] };
  const names = report.scenarios.map((s) => s.name);
  const expected = [/wallet backups: a node backed up under an Ethereum wallet with a TOTP second factor/, /wallet backups: the node destroyed; a restore with the wallet but no code is refused/];
  const at = expected.map((e) => names.findIndex((n) => e.test(n)));
  assert.ok(at.every((i) => i >= 0), `missing wallet scenarios in ${names.join('; ')}`);
  assert.ok(at[0]! > names.findIndex((n) => /backups: a node destroyed mid-stream/.test(n)), 'after the backup scenarios');
  for (const i of at) assert.equal(report.scenarios[i]!.ok, true, names[i]);
});

test('lifeboat drill --json: the coverage report before the worst day (every key ok) and after the node is rebuilt, in the report', { timeout: 550_000 }, async () => {
  const r = await runDrill();
  const report = JSON.parse(r.stdout) as { scenarios: { name: string; ok: boolean }[]; coverage: { before: CoverageReport | null; after: CoverageReport | null } };
  const names = report.scenarios.map((s) => s.name);
  const at = [/backups: keys created while/, /coverage before the worst day/, /backups: a node destroyed mid-stream/, /coverage after recovery/].map((e) => names.findIndex((n) => e.test(n)));
  assert.ok(at.every((i) => i >= 0), `missing coverage scenarios in ${names.join('; ')}`);
  assert.deepEqual([...at].sort((a, b) => a - b), at, 'in order');
  const { before, after } = report.coverage;
  assert.ok(before && after);
  assert.equal(before.ok, true);
  assert.ok(before.summary.keys >= 4 && before.keys.every((k) => k.verdict === 'ok' && k.member_detail.every((m) => m.paths.backup.state === 'ok')));
  assert.deepEqual(before.parts.map((p) => [p.kind, p.state]), [['node', 'ok'], ['node', 'ok'], ['node', 'ok'], ['backup_service', 'ok']]);
  assert.equal(after.summary.parts_unknown, 0);
  assert.equal(after.summary.lost_path, 0);
  assert.ok(after.summary.keys > before.summary.keys, 'the keys made while the node died are in the second report');
});

test('lifeboat drill --json: the public log scenarios: witnessed, killed, audited, and a fork refused', { timeout: 550_000 }, async () => {
  const r = await runDrill();
  const report = JSON.parse(r.stdout) as { ok: boolean; scenarios: { name: string; ok: boolean; ms: number }[] };
  const names = report.scenarios.map((s) => s.name);
  const expected = [/public log: a log with two witnesses and three enrolled submitters/, /the log is SIGKILLed and restarts/, /an audit from another directory/, /a forked log .* is refused by both witnesses, which keep the evidence, and by the audit/];
  const at = expected.map((e) => names.findIndex((n) => e.test(n)));
  assert.ok(at.every((i) => i >= 0), `missing log scenarios in ${names.join('; ')}`);
  assert.deepEqual([...at].sort((a, b) => a - b), at, 'in order');
  for (const i of at) assert.equal(report.scenarios[i]!.ok, true, names[i]);
});

test('lifeboat drill --json: the key-share scenarios, after the public log ones: nodes with words publish, one is destroyed and recovered with its 24 words alone', { timeout: 550_000 }, async () => {
  const r = await runDrill();
  const report = JSON.parse(r.stdout) as { ok: boolean; scenarios: { name: string; ok: boolean; ms: number }[] };
  const names = report.scenarios.map((s) => s.name);
  const expected = [/key shares: three key nodes made with 24 words publish to the public log .*a 2-of-3 key is active once the log holds every share/, /key shares: a node destroyed with its data directory comes back from the log with its 24 words alone \(keyshare recover\), and the key signs/];
  const at = expected.map((e) => names.findIndex((n) => e.test(n)));
  assert.ok(at.every((i) => i >= 0), `missing key-share scenarios in ${names.join('; ')}`);
  assert.deepEqual([...at].sort((a, b) => a - b), at, 'in order');
  assert.ok(at[0]! > names.findIndex((n) => /a forked log/.test(n)), 'after the public log scenarios');
  for (const i of at) assert.equal(report.scenarios[i]!.ok, true, names[i]);
});

test('drill runner: a failed scenario is reported with its code and the ones after it are skipped, not ok', async () => {
  const ran: string[] = [];
  const results = await runScenarios(
    [
      { name: 'one', run: async () => void ran.push('one') },
      { name: 'two', run: async () => { throw new LifeboatError('drill_check_failed', 'secret x differs'); } },
      { name: 'three', run: async () => void ran.push('three') },
    ],
    {},
  );
  assert.deepEqual(ran, ['one']);
  assert.deepEqual(results.map((r) => [r.name, r.ok, r.skipped ?? false]), [['one', true, false], ['two', false, false], ['three', false, true]]);
  assert.equal(results[1]!.error, 'drill_check_failed: secret x differs');
});

test('lifeboat drill with LIFEBOAT_DRILL_LOG_DIR: every child’s stderr is kept (0600), and no log holds a secret the drill made', { timeout: 550_000 }, async () => {
  const r = await runDrill();
  assert.equal(r.code, 0, r.stderr);
  const logFiles = readdirSync(LOGS).filter((n) => n.endsWith('.stderr.log'));
  assert.ok(logFiles.length >= 50, `${logFiles.length} log files`);
  for (const n of [...logFiles, 'secrets.jsonl']) assert.equal(statSync(join(LOGS, n)).mode & 0o777, 0o600, n);
  const logs = logFiles.map((n) => ({ name: n, text: readFileSync(join(LOGS, n), 'utf8') }));
  logs.push({ name: 'the drill’s own stderr', text: r.stderr });
  // The servers did log: a start-up line and request lines from each kind.
  const all = logs.map((l) => l.text).join('\n');
  for (const server of ['holder', 'node', 'backup-server', 'log', 'log-witness']) assert.ok(all.includes(`"server":"${server}"`), `no log line of ${server}`);
  assert.ok(all.includes('"msg":"request completed"'));

  const listed = readFileSync(join(LOGS, 'secrets.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { command: string; secret: string }));
  const commands = new Set(listed.map((s) => s.command));
  for (const c of ['recovery init', 'vault put', 'node apikey', 'node backup-setup', 'node init', 'backup-server account']) assert.ok(commands.has(c), `no secret of ${c} listed`);
  const drillDir = readdirSync(TMP).find((n) => n.startsWith('lifeboat-drill-'));
  assert.ok(drillDir, 'the kept drill directory');
  const secrets = new Set([...listed.map((s) => s.secret), ...fileSecrets(join(TMP, drillDir))]);
  assert.ok(secrets.size >= 40, `${secrets.size} secrets`);
  for (const secret of secrets) {
    for (const l of logs) assert.ok(!l.text.includes(secret), `a secret (${secret.slice(0, 6)}…) is in ${l.name}`);
  }
});
