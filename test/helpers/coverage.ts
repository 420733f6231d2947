/**
 * A small real fleet for coverage tests: a `backup-server serve` process with a monitor token, three
 * `node serve` processes on loopback, each streaming to it under its own account, an operator and a
 * client token on every node, and a fleet file naming them (credentials in 0600 files). Node
 * directories and backup set-up are made in this process (FAST OPAQUE stretching), as the backup tests do.
 * With `failoverOf: i`, node i+1 is paired with a fail-over node `node<i+1>-fo` (a fourth process, no
 * backup of its own), through `node pair` as test/keynode-failover.test.ts does, and the fleet file names it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { chromium, type Page } from 'playwright-core';
import { join } from 'node:path';
import { addMonitorToken } from '../../src/backup/monitor.js';
import { setupNodeBackup } from '../../src/backup/node-link.js';
import { emptyFleet, encodeFleet, type Fleet } from '../../src/coverage/fleet.js';
import { addBackupAccounts } from '../../src/drill/backup-scenarios.js';
import { apiKeyRecordFromToken, newApiKey } from '../../src/keynode/apikeys.js';
import { KeyNodeClient } from '../../src/keynode/client.js';
import { closeNode, initNode, openNode } from '../../src/keynode/runtime.js';
import { createKey, type KeyRef } from '../../src/keynode/sdk.js';
import { FAST, PASSWORD } from './backup.js';
import { expectOk, REPO_ROOT, runCli, type RunningCli, startCli } from './cli.js';
import { trackedTempDir } from './tmp.js';

export interface CoverageFleet {
  root: string;
  fleetFile: string;
  backupDir: string;
  backup: RunningCli;
  nodes: RunningCli[];
  dirs: string[];
  operator: string;
  client: string;
  monitorToken: string;
  /** The fail-over node, when asked for: its fleet name, directory and server while it runs. */
  failover: { name: string; dir: string; url: string; server: RunningCli | undefined } | undefined;
  /** Serves node `i` again on its former port (after `nodes[i].stop()`); nodes[i] is the new server. */
  serveNode(i: number): Promise<RunningCli>;
  /** Serves the fail-over node, on its former port once it served. */
  serveFailover(): Promise<RunningCli>;
  clients(idx?: number[]): KeyNodeClient[];
  createKey(idx: number[], keyId: string): Promise<KeyRef>;
  writeFleet(edit?: (f: Fleet) => void): string;
  stop(): Promise<void>;
}

const serveArgs = (dir: string, url?: string) => ['node', 'serve', '--data-dir', dir, '--listen', url ? `127.0.0.1:${new URL(url).port}` : '127.0.0.1:0', '--log-level', 'silent', '--json'];

export async function startCoverageFleet(n = 3, opts: { failoverOf?: number } = {}): Promise<CoverageFleet> {
  const root = trackedTempDir('lifeboat-coverage-');
  const backupDir = join(root, 'backup');
  const backup = await startCli(['backup-server', 'serve', '--data-dir', backupDir, '--listen', '127.0.0.1:0', '--log-level', 'silent', '--json']);
  const monitorToken = addMonitorToken(backupDir);
  const operator = newApiKey('operator', 'coverage operator').token;
  const client = newApiKey('client', 'coverage client', { tenant: 'default' }).token;
  const accounts = Array.from({ length: n }, (_, i) => `acct-node${i + 1}`);
  const invites = await addBackupAccounts({ dir: backupDir, url: backup.url, server: undefined }, accounts);
  const dirs: string[] = [];
  // The fail-over node is made, paired to its primary (`node pair --primary`) and served while the
  // primaries are set up; the primary is paired to it (`node pair --failover`) before it serves.
  let failoverReady: Promise<{ name: string; dir: string; fingerprint: string; wrappingKey: string; server: RunningCli }> | undefined;
  const startFailover = async (primaryIdentity: string, name: string) => {
    const dir = join(root, name);
    const id = await initNode(dir);
    const node = await openNode(dir);
    try {
      await node.store.insertApiKey(apiKeyRecordFromToken(operator, 'operator', 'coverage operator'));
      await node.store.insertApiKey(apiKeyRecordFromToken(client, 'client', 'coverage client', { tenant: 'default' }));
    } finally {
      await closeNode(node);
    }
    expectOk(await runCli(['node', 'pair', '--primary', primaryIdentity, '--data-dir', dir, '--json']));
    return { name, dir, fingerprint: id.fingerprint, wrappingKey: id.wrapping_public_key, server: await startCli(serveArgs(dir)) };
  };
  for (let i = 0; i < n; i++) {
    const dir = join(root, `node${i + 1}`);
    const { identity } = await initNode(dir);
    if (i === opts.failoverOf) failoverReady = startFailover(identity, `node${i + 1}-fo`);
    const node = await openNode(dir);
    try {
      await node.store.insertApiKey(apiKeyRecordFromToken(operator, 'operator', 'coverage operator'));
      await node.store.insertApiKey(apiKeyRecordFromToken(client, 'client', 'coverage client', { tenant: 'default' }));
      await setupNodeBackup(node, { server: backup.url, account: accounts[i]!, invite: invites[i]!, password: PASSWORD, usableBeforeAck: false, tuning: FAST });
    } finally {
      await closeNode(node);
    }
    dirs.push(dir);
  }
  let failover: CoverageFleet['failover'];
  if (failoverReady) {
    const f = await failoverReady;
    expectOk(await runCli(['node', 'pair', '--failover', `${f.server.url}#${f.fingerprint}`, '--wrapping-key', f.wrappingKey, '--data-dir', dirs[opts.failoverOf!]!, '--json']));
    failover = { name: f.name, dir: f.dir, url: f.server.url, server: f.server };
  }
  const nodes = await Promise.all(dirs.map((d) => startCli(serveArgs(d))));
  const tokenFile = join(root, 'operator.token');
  writeFileSync(tokenFile, `${operator}\n`, { mode: 0o600 });
  const monitorFile = join(root, 'monitor.token');
  writeFileSync(monitorFile, `${monitorToken}\n`, { mode: 0o600 });
  const fleetFile = join(root, 'fleet.json');
  const fx: CoverageFleet = {
    root,
    fleetFile,
    backupDir,
    backup,
    nodes,
    dirs,
    operator,
    client,
    monitorToken,
    failover,
    serveNode: async (i) => (nodes[i] = await startCli(serveArgs(dirs[i]!, nodes[i]!.url))),
    serveFailover: async () => {
      const f = failover!;
      f.server = await startCli(serveArgs(f.dir, f.url));
      return f.server;
    },
    clients: (idx = nodes.map((_, i) => i)) => idx.map((i) => new KeyNodeClient({ url: nodes[i]!.url, apiKey: client })),
    createKey: (idx, keyId) => createKey(fx.clients(idx), { threshold: 2, curve: 'ed25519', keyId }),
    writeFleet: (edit) => {
      const f = emptyFleet();
      f.timeout_ms = 3000;
      f.nodes = nodes.map((s, i) => ({ name: `node${i + 1}`, url: s.url, credential: { file: tokenFile }, ...(failover && i === opts.failoverOf ? { failover: failover.name } : {}) }));
      if (failover) f.nodes.push({ name: failover.name, url: failover.url, credential: { file: tokenFile } });
      f.backup_services = [{ name: 'backup', url: backup.url, credential: { file: monitorFile } }];
      edit?.(f);
      writeFileSync(fleetFile, encodeFleet(f), { mode: 0o600 });
      return fleetFile;
    },
    stop: async () => {
      await Promise.all([...nodes.map((s) => s.stop()), backup.stop(), ...(failover?.server ? [failover.server.stop()] : [])]);
    },
  };
  return fx;
}

/**
 * Opens the console at `url` in headless Chromium, signs in with `token` through the login form, waits
 * for the keys table, and runs `fn` on the page; the browser is closed whatever happens.
 */
export async function withConsolePage(url: string, token: string, fn: (page: Page) => Promise<void>): Promise<void> {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--ignore-certificate-errors'] });
  try {
    const page = await browser.newPage();
    await page.goto(url);
    await page.fill('input[name=token]', token);
    await page.click('button[type=submit]');
    await page.waitForSelector('#keys tr.key');
    await fn(page);
  } finally {
    await browser.close();
  }
}

/** Writes a full-page screenshot into the test output directory ($LIFEBOAT_TEST_OUTPUT or test-output/); returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  const outDir = process.env.LIFEBOAT_TEST_OUTPUT ?? join(REPO_ROOT, 'test-output');
  mkdirSync(outDir, { recursive: true });
  const path = join(outDir, name);
  await page.screenshot({ path, fullPage: true });
  return path;
}
