/**
 * Native TLS (docs/operations.md, "TLS"): every server kind started with --tls-cert/--tls-key answers
 * over https a client given the CA (--ca-file, $LIFEBOAT_CA_FILE, a fleet entry's ca_file), and a
 * client without it is refused with tls_untrusted, not a stack trace. A wrong host name, an expired or
 * a self-signed certificate is refused; a bad pair of files stops a server before it listens; a bearer
 * credential over plain http to a non-loopback address gets the plain_http_bearer warning.
 * One throwaway CA made by openssl; one server of each kind, shared by the cases.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, statSync, writeFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { addMonitorToken } from '../src/backup/monitor.js';
import { emptyFleet, encodeFleet, type Fleet } from '../src/coverage/fleet.js';
import type { CoverageReport } from '../src/coverage/report.js';
import { runCli as drillRunCli, serveOverTls, startServer } from '../src/drill/proc.js';
import { makeDrillTls } from '../src/drill/tls.js';
import { isLifeboatError } from '../src/errors.js';
import { apiKeyRecordFromToken, newApiKey } from '../src/keynode/apikeys.js';
import { closeNode, initNode, openNode } from '../src/keynode/runtime.js';
import { isLoopbackHost, setProcessCaFile, tlsFetch } from '../src/util/tls-fetch.js';
import { setupNodeBackup } from '../src/backup/node-link.js';
import { addBackupAccounts } from '../src/drill/backup-scenarios.js';
import { FAST, PASSWORD } from './helpers/backup.js';
import { cliArgs, type CliResult, expectFailure, expectOk, runCli, type RunningCli, startCli, tracked } from './helpers/cli.js';
import { trackedTempDir } from './helpers/tmp.js';

const D = trackedTempDir('lb-tls-');
const at = (f: string) => join(D, f);
const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: D, stdio: ['ignore', 'ignore', 'pipe'] });

/** A P-256 key and a certificate for `san`, signed by the CA (or self-signed with `self`); `days` -1 is expired. */
function issue(name: string, san: string, opts: { self?: boolean; days?: number } = {}): void {
  openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
  writeFileSync(at(`${name}.ext`), `subjectAltName=${san}\n`);
  const signer = opts.self ? ['-signkey', `${name}.key`] : ['-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial'];
  openssl('x509', '-req', '-in', `${name}.csr`, ...signer, '-days', String(opts.days ?? 2), '-extfile', `${name}.ext`, '-out', `${name}.pem`);
}

let node: RunningCli;
let backup: RunningCli;
let holder: RunningCli;
let log: RunningCli;
let witness: RunningCli;
let consoleSrv: RunningCli;
let apiKey: string;
let logKey: string;
let operatorFile: string;
let monitorFile: string;
const side: HttpsServer[] = [];
const CA = at('ca.pem');
const TLS = ['--tls-cert', at('srv.pem'), '--tls-key', at('srv.key')];

/** The subjectAltName of the certificate a fresh TLS connection to 127.0.0.1:port is shown. */
function servedSan(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const san = s.getPeerCertificate().subjectaltname ?? '';
      s.destroy();
      resolve(san);
    });
    s.once('error', reject);
  });
}

/** An https server in this process with certificate `name` (a peer the CLI must refuse), its URL. */
async function sideServer(name: string): Promise<string> {
  const s = createHttpsServer({ cert: readFileSync(at(`${name}.pem`)), key: readFileSync(at(`${name}.key`)) }, (_req, res) => res.end('{}'));
  side.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `https://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

function writeFleet(edit: (f: Fleet) => void): string {
  const f = emptyFleet();
  f.timeout_ms = 10_000;
  f.nodes.push({ name: 'n1', url: node.url, credential: { file: operatorFile } });
  f.backup_services.push({ name: 'b1', url: backup.url, credential: { file: monitorFile } });
  f.holders.push({ name: 'h1', url: holder.url });
  f.logs.push({ name: 'l1', url: log.url });
  edit(f);
  const file = at(`fleet-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, encodeFleet(f), { mode: 0o600 });
  return file;
}

before(async () => {
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=lifeboat test ca');
  issue('srv', 'IP:127.0.0.1,DNS:localhost');
  issue('other', 'DNS:other.invalid');
  issue('expired', 'IP:127.0.0.1', { days: -1 });
  issue('rogue', 'IP:127.0.0.1', { self: true });

  const nodeDir = at('node');
  await initNode(nodeDir);
  apiKey = newApiKey('operator', 'tls test').token;
  const n = await openNode(nodeDir);
  try {
    await n.store.insertApiKey(apiKeyRecordFromToken(apiKey, 'operator', 'tls test'));
  } finally {
    await closeNode(n);
  }
  operatorFile = at('operator.token');
  writeFileSync(operatorFile, `${apiKey}\n`, { mode: 0o600 });
  const backupDir = at('backup');
  monitorFile = at('monitor.token');

  const primary = JSON.parse(expectOk(await runCli(['primary', 'init', '--data-dir', at('primary'), '--json'])).stdout) as { identity: string };
  const operator = JSON.parse(expectOk(await runCli(['operator', 'keygen', '--out', at('operator.json'), '--json'])).stdout) as { identity: string };
  expectOk(await runCli(['holder', 'init', '--data-dir', at('holder'), '--primary', primary.identity, '--operator', operator.identity, '--json']));
  logKey = (JSON.parse(expectOk(await runCli(['log', 'init', '--origin', 'tls.lifeboat.example/log', '--data-dir', at('log'), '--interval', '100ms', '--json'])).stdout) as { verifier_key: string }).verifier_key;
  expectOk(await runCli(['log', 'witness', 'init', '--name', 'tls.lifeboat.example/witness', '--data-dir', at('witness'), '--json']));
  const consoleToken = at('console.token');
  writeFileSync(consoleToken, 'a-console-token-of-32-characters\n', { mode: 0o600 });
  writeFileSync(at('console-fleet.json'), encodeFleet(emptyFleet()), { mode: 0o600 });

  [node, backup, holder, log, witness, consoleSrv] = await Promise.all([
    startCli(['node', 'serve', '--data-dir', nodeDir, '--listen', '127.0.0.1:0', '--log-level', 'silent', '--json', ...TLS]),
    startCli(['backup-server', 'serve', '--data-dir', backupDir, '--listen', '127.0.0.1:0', '--log-level', 'silent', '--json', ...TLS]),
    startCli(['holder', 'serve', '--data-dir', at('holder'), '--listen', '127.0.0.1:0', '--log-level', 'silent', '--json', ...TLS]),
    startCli(['log', 'serve', '--data-dir', at('log'), '--listen', '127.0.0.1:0', '--log-level', 'silent', '--json', ...TLS]),
    startCli(['log', 'witness', 'serve', '--data-dir', at('witness'), '--listen', '127.0.0.1:0', '--log-level', 'silent', '--json', ...TLS]),
    startCli(['console', 'serve', '--fleet', at('console-fleet.json'), '--listen', '127.0.0.1:0', '--token-file', consoleToken, '--interval', '600', '--json', ...TLS]),
  ]);
  writeFileSync(monitorFile, `${addMonitorToken(backupDir)}\n`, { mode: 0o600 });
});

after(async () => {
  await Promise.all([node, backup, holder, log, witness, consoleSrv].map((s) => s?.stop()));
  for (const s of side) s.close();
});

describe('servers over TLS', () => {
  it('every server kind prints an https:// URL', () => {
    for (const s of [node, backup, holder, log, witness, consoleSrv]) assert.match(s.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  });

  it('a key node answers `key list --ca-file`, and the same command without the CA is refused with tls_untrusted', async () => {
    const env = { LIFEBOAT_API_KEY: apiKey, LIFEBOAT_CA_FILE: '' };
    const ok = expectOk(await runCli(['key', 'list', '--node', node.url, '--ca-file', CA, '--json'], { env }));
    assert.deepEqual(JSON.parse(ok.stdout), []);
    const [viaEnv, bare] = await Promise.all([runCli(['key', 'list', '--node', node.url, '--json'], { env: { ...env, LIFEBOAT_CA_FILE: CA } }), runCli(['key', 'list', '--node', node.url], { env })]);
    assert.deepEqual(JSON.parse(expectOk(viaEnv).stdout), []);
    expectFailure(bare, 'tls_untrusted');
    assert.match(bare.stderr, /lifeboat: hint: .*--ca-file/);
    assert.doesNotMatch(bare.stderr, /\n\s+at /, 'no stack trace');
  });

  it('coverage reaches the node, backup service, holder and log with each fleet entry’s ca_file; without it each part is tls_untrusted', async () => {
    const withCa = writeFleet((f) => {
      for (const p of [...f.nodes, ...f.backup_services, ...f.holders, ...f.logs]) p.ca_file = CA;
    });
    const bare = writeFleet(() => {});
    const run = (args: string[]) => runCli(['coverage', ...args, '--json'], { env: { LIFEBOAT_CA_FILE: '' }, timeoutMs: 60_000 }).then((r) => JSON.parse(r.stdout) as CoverageReport);
    const [report, refused, global] = await Promise.all([run(['--fleet', withCa]), run(['--fleet', bare]), run(['--fleet', bare, '--ca-file', CA])]);
    assert.deepEqual(report.parts.map((p) => [p.name, p.state]), [['n1', 'ok'], ['b1', 'ok'], ['l1', 'ok'], ['h1', 'ok']]);
    assert.ok(refused.parts.length === 4 && refused.parts.every((p) => p.state !== 'ok' && p.error === 'tls_untrusted'), JSON.stringify(refused.parts));
    assert.ok(global.parts.every((p) => p.state === 'ok'), JSON.stringify(global.parts));

    // `fleet add … --ca-file` records it in the entry, as an absolute path
    const added = at('fleet-added.json');
    expectOk(await runCli(['fleet', 'init', '--fleet', added]));
    expectOk(await runCli(['fleet', 'add', 'log', 'l1', '--url', log.url, '--ca-file', CA, '--fleet', added]));
    assert.deepEqual((JSON.parse(readFileSync(added, 'utf8')) as Fleet).logs, [{ name: 'l1', url: log.url, ca_file: CA }]);
  });

  it('a log over TLS passes `log audit --ca-file`', async () => {
    const [r, bare] = await Promise.all([
      runCli(['log', 'audit', '--log', log.url, '--log-key', logKey, '--state', at('audit-state'), '--ca-file', CA, '--json'], { env: { LIFEBOAT_CA_FILE: '' } }),
      runCli(['log', 'audit', '--log', log.url, '--log-key', logKey, '--state', at('audit-state-2')], { env: { LIFEBOAT_CA_FILE: '' } }),
    ]);
    assert.equal((JSON.parse(expectOk(r).stdout) as { ok: boolean }).ok, true);
    expectFailure(bare, 'tls_untrusted');
  });

  it('the witness and the console answer the shared client with the CA, and refuse it without', async () => {
    const health = await tlsFetch(`${witness.url}/healthz`, {}, { caFile: CA });
    assert.equal(health.status, 200);
    assert.equal(((await health.json()) as { name: string }).name, 'tls.lifeboat.example/witness');
    const login = await tlsFetch(`${consoleSrv.url}/login`, {}, { caFile: CA });
    assert.equal(login.status, 200);
    assert.match(login.headers.get('set-cookie') ?? '', /;\s*Secure/i, 'a console served over TLS marks its cookies Secure');
    await login.body?.cancel();
    await assert.rejects(tlsFetch(`${witness.url}/healthz`, {}, { caFile: at('rogue.pem') }), (e: unknown) => isLifeboatError(e, 'tls_untrusted'));
  });
});

describe('node to node over TLS', () => {
  it('a key node streams to a backup service over https with the CA its node.json names (ca_file), no --ca-file nor LIFEBOAT_CA_FILE; SIGHUP reads a new certificate', async () => {
    const dir = at('node-ca');
    await initNode(dir);
    const [invite] = await addBackupAccounts({ dir: at('backup'), url: backup.url, server: undefined }, ['acct-ca']);
    const n = await openNode(dir);
    let queued: number;
    try {
      await n.store.insertApiKey(apiKeyRecordFromToken(apiKey, 'operator', 'tls test'));
      setProcessCaFile(CA); // this process sets the backup up; the node below has only node.json
      queued = (await setupNodeBackup(n, { server: backup.url, account: 'acct-ca', invite: invite!, password: PASSWORD, usableBeforeAck: false, tuning: FAST })).queued;
    } finally {
      setProcessCaFile(undefined);
      await closeNode(n);
    }
    assert.ok(queued >= 1, 'the API key is an entry to stream');
    expectOk(await runCli(['node', 'config', 'set', 'ca_file', CA, '--data-dir', dir]));
    copyFileSync(at('srv.pem'), at('hup.pem'));
    copyFileSync(at('srv.key'), at('hup.key'));
    const served = await startCli(['node', 'serve', '--data-dir', dir, '--listen', '127.0.0.1:0', '--log-level', 'silent', '--json', '--tls-cert', at('hup.pem'), '--tls-key', at('hup.key')], { env: { LIFEBOAT_CA_FILE: '' } });
    try {
      let b: { acked_seq: number; unacked: number; last_error: string | null } | undefined;
      for (const deadline = Date.now() + 60_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
        const res = await tlsFetch(`${served.url}/v1/coverage?limit=1`, { headers: { authorization: `Bearer ${apiKey}` } }, { caFile: CA });
        b = ((await res.json()) as { node: { backup: typeof b } }).node.backup;
        if (b && b.acked_seq >= queued && b.unacked === 0) break;
      }
      assert.ok(b && b.acked_seq >= queued && b.unacked === 0 && b.last_error === null, JSON.stringify(b));

      // a renewed certificate: the files replaced, SIGHUP; new connections get it
      const port = Number(new URL(served.url).port);
      assert.match(await servedSan(port), /IP Address:127\.0\.0\.1/);
      copyFileSync(at('other.pem'), at('hup.pem'));
      copyFileSync(at('other.key'), at('hup.key'));
      served.child.kill('SIGHUP');
      let san = '';
      for (const deadline = Date.now() + 20_000; Date.now() < deadline && !san.includes('other.invalid'); await new Promise((r) => setTimeout(r, 100))) san = await servedSan(port);
      assert.match(san, /DNS:other\.invalid/);
    } finally {
      await served.stop();
    }
  });
});

describe('certificates a client refuses', () => {
  it('another host’s name, an expired and a self-signed certificate: tls_hostname_mismatch, tls_cert_expired, tls_untrusted', async () => {
    const [other, expired, rogue] = [await sideServer('other'), await sideServer('expired'), await sideServer('rogue')];
    const env = { LIFEBOAT_API_KEY: apiKey, LIFEBOAT_CA_FILE: CA };
    const [a, b, c] = await Promise.all([other, expired, rogue].map((u) => runCli(['key', 'list', '--node', u], { env })));
    expectFailure(a!, 'tls_hostname_mismatch');
    expectFailure(b!, 'tls_cert_expired');
    expectFailure(c!, 'tls_untrusted');
  });

  it('an https:// URL to a plain server fails the handshake by name; a CA file that holds no certificate is refused', async () => {
    const plain = createNetServer((s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    try {
      const url = `https://127.0.0.1:${(plain.address() as AddressInfo).port}`;
      expectFailure(await runCli(['key', 'list', '--node', url], { env: { LIFEBOAT_API_KEY: apiKey, LIFEBOAT_CA_FILE: CA } }), 'tls_handshake_failed');
      expectFailure(await runCli(['key', 'list', '--node', node.url, '--ca-file', at('srv.key')], { env: { LIFEBOAT_API_KEY: apiKey } }), 'ca_file_invalid');
    } finally {
      plain.close();
    }
  });
});

describe('a server’s own certificate and key', () => {
  /** A port nothing listens on, to check that a refused start bound nothing. */
  async function freePort(): Promise<number> {
    const s = createNetServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    return port;
  }
  const refusesConnections = (port: number) =>
    new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => (c.destroy(), resolve(false)));
      c.once('error', () => resolve(true));
    });

  it('only one of --tls-cert/--tls-key is a usage error (exit 2), on every server command', async () => {
    const runs: Promise<CliResult>[] = [];
    for (const args of [
      ['holder', 'serve', '--data-dir', at('holder'), '--tls-cert', at('srv.pem')],
      ['node', 'serve', '--data-dir', at('node'), '--tls-key', at('srv.key')],
      ['backup-server', 'serve', '--data-dir', at('backup2'), '--tls-cert', at('srv.pem')],
      ['log', 'serve', '--data-dir', at('log'), '--tls-key', at('srv.key')],
      ['log', 'witness', 'serve', '--data-dir', at('witness'), '--tls-cert', at('srv.pem')],
      ['console', 'serve', '--fleet', at('console-fleet.json'), '--token-file', at('console.token'), '--tls-cert', at('srv.pem')],
    ]) {
      runs.push(runCli([...args, '--listen', '127.0.0.1:0']));
    }
    for (const r of await Promise.all(runs)) {
      expectFailure(r, 'usage', 2);
      assert.match(r.stderr, /--tls-cert and --tls-key go together/);
    }
  });

  it('a key of another certificate (tls_key_mismatch) or an unreadable file (tls_file_unreadable) stops the start, nothing listening', async () => {
    const port = await freePort();
    const mismatch = await runCli(['holder', 'serve', '--data-dir', at('holder'), '--listen', `127.0.0.1:${port}`, '--tls-cert', at('srv.pem'), '--tls-key', at('other.key')]);
    expectFailure(mismatch, 'tls_key_mismatch');
    assert.match(mismatch.stderr, /lifeboat: hint: /);
    assert.ok(await refusesConnections(port));
    const [missing, notCert] = await Promise.all([
      runCli(['node', 'serve', '--data-dir', at('node'), '--listen', `127.0.0.1:${port}`, '--tls-cert', at('srv.pem'), '--tls-key', at('nope.key')]),
      runCli(['log', 'witness', 'serve', '--data-dir', at('witness'), '--listen', `127.0.0.1:${port}`, '--tls-cert', at('srv.key'), '--tls-key', at('srv.key')]),
    ]);
    expectFailure(missing, 'tls_file_unreadable');
    expectFailure(notCert, 'tls_cert_invalid');
    assert.ok(await refusesConnections(port));
  });
});

describe('plain_http_bearer', () => {
  it('a bearer token over plain http to a non-loopback address warns once on stderr', async () => {
    // 192.0.2.1 (TEST-NET-1) routes nowhere: the warning comes before the connection attempt, which is cut short
    const child = tracked(spawn(process.execPath, [...cliArgs(), 'key', 'list', '--node', 'http://192.0.2.1:7401'], { env: { ...process.env, LIFEBOAT_API_KEY: apiKey }, stdio: ['ignore', 'pipe', 'pipe'] }));
    let stderr = '';
    await new Promise<void>((resolve) => {
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes('\n')) resolve();
      });
      child.once('exit', () => resolve());
    });
    child.kill('SIGKILL');
    const first = stderr.split('\n')[0]!;
    assert.match(first, /^lifeboat: warning: .*http:\/\/192\.0\.2\.1:7401.*\(plain_http_bearer\)$/);
    assert.ok(!stderr.includes(apiKey), 'the token is never echoed');
  });

  it('loopback stays silent', async () => {
    const r = await runCli(['key', 'list', '--node', 'http://127.0.0.1:1'], { env: { LIFEBOAT_API_KEY: apiKey } });
    expectFailure(r, 'peer_unreachable');
    assert.doesNotMatch(r.stderr, /plain_http_bearer/);
    for (const h of ['127.0.0.1', '127.8.9.10', 'localhost', '[::1]', '::1']) assert.equal(isLoopbackHost(h), true, h);
    for (const h of ['192.0.2.1', '10.0.0.5', 'example.com', '[2001:db8::1]', '128.0.0.1']) assert.equal(isLoopbackHost(h), false, h);
  });
});

describe('drill --tls', () => {
  // The whole drill over TLS takes minutes (test/drill.test.ts runs it over plain http); here its two
  // pieces: the throwaway CA it makes, and its process runner giving servers the certificate and every
  // child the CA.
  it('makes a CA and a 127.0.0.1 certificate with openssl; its servers print https:// and its children trust them', async () => {
    const files = makeDrillTls(at('drill-tls'));
    assert.equal(statSync(files.key).mode & 0o777, 0o600, 'the server key is 0600');
    serveOverTls(files);
    const server = await startServer(['backup-server', 'serve', '--data-dir', at('drill-backup'), '--listen', '127.0.0.1:0', '--log-level', 'silent', '--json']);
    try {
      assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      const token = at('drill-monitor.token');
      writeFileSync(token, `${addMonitorToken(at('drill-backup'))}\n`, { mode: 0o600 });
      const f = emptyFleet();
      f.backup_services.push({ name: 'b', url: server.url, credential: { file: token } });
      writeFileSync(at('drill-fleet.json'), encodeFleet(f), { mode: 0o600 });
      const r = await drillRunCli(['coverage', '--fleet', at('drill-fleet.json'), '--json']);
      assert.deepEqual((JSON.parse(r.stdout) as CoverageReport).parts.map((p) => [p.name, p.state]), [['b', 'ok']], r.stderr);
      const health = await tlsFetch(`${server.url}/healthz`);
      assert.equal(health.status, 200, 'this process trusts the drill CA too');
      await health.body?.cancel();
    } finally {
      await server.stop();
    }
  });
});
