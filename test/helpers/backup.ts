/**
 * Fixtures for backup tests: a real backup service on a loopback port (its SQLite store in a temp
 * directory), accounts with invites, and in-process key nodes set up to stream to it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackupServer, type RunningBackupServer } from '../../src/backup/serve.js';
import { setupNodeBackup, type ClientTuning } from '../../src/backup/node-link.js';
import { loadNodeConfig, saveNodeConfig } from '../../src/keynode/config.js';
import { openNode } from '../../src/keynode/runtime.js';
import { createKeyNodeApp } from '../../src/keynode/server.js';
import type { NodeSet, TestNode } from './keynode.js';

/** Fast OPAQUE stretching for in-process tests only (the CLI always uses the default). */
export const FAST: ClientTuning = { keyStretching: { 'argon2id-custom': { iterations: 1, memory: 256, parallelism: 1 } } };
export const PASSWORD = 'correct horse battery staple';

export interface BackupFixture {
  dir: string;
  server: RunningBackupServer;
  url: string;
  /** Creates an account and returns its invite. */
  invite(account: string): Promise<string>;
  /** Stops the service (as a crash would, minus the kill: see the process tests for SIGKILL). */
  stop(): Promise<void>;
  /** Starts it again on the same port and data directory. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function startBackupFixture(): Promise<BackupFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'lifeboat-backup-'));
  let server = await startBackupServer({ dataDir: dir, listen: '127.0.0.1:0' });
  const port = new URL(server.url).port;
  let stopped = false;
  const fx: BackupFixture = {
    dir,
    server,
    url: server.url,
    invite: async (account) => (await fx.server.service.createAccount(account)).invite,
    stop: async () => {
      stopped = true;
      await fx.server.close();
    },
    restart: async () => {
      server = await startBackupServer({ dataDir: dir, listen: `127.0.0.1:${port}` });
      fx.server = server;
      stopped = false;
    },
    close: async () => {
      if (!stopped) await fx.server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return fx;
}

/**
 * Sets node i up for backups under account `node-i` (registering with the fixture's invite), applies
 * `config` to its backup section, and reopens it so its agent runs; returns the reopened node.
 */
export async function enableBackup(set: NodeSet, i: number, fx: BackupFixture, config: Record<string, unknown> = {}): Promise<TestNode> {
  const old = set.nodes[i]!;
  const account = `acct-${old.name}`;
  await setupNodeBackup(old, { server: fx.url, account, invite: await fx.invite(account), password: PASSWORD, usableBeforeAck: false, tuning: FAST });
  const cfg = loadNodeConfig(old.paths);
  saveNodeConfig(old.paths, { ...cfg, backup: { ...cfg.backup!, ...config } });
  return reopenNode(set, i);
}

/** Closes node i (app, loops, store) and opens it again from its directory, agent started. */
export async function reopenNode(set: NodeSet, i: number): Promise<TestNode> {
  const old = set.nodes[i]!;
  await old.app.close();
  await old.failover.stop();
  await old.backup?.stop();
  await old.store.close();
  return openAsNode(set, i, old.dir);
}

/** Opens the node in `dir` as node i of the set (its old handles already closed), agent started. */
export async function openAsNode(set: NodeSet, i: number, dir: string): Promise<TestNode> {
  const old = set.nodes[i]!;
  const opened = await openNode(dir);
  const app = createKeyNodeApp({ service: opened.service, store: opened.store, status: () => opened.failover.status() });
  await app.ready();
  opened.backup?.start();
  const node: TestNode = { ...opened, name: old.name, dir, url: old.url, app, identity: opened.service.identity() };
  set.nodes[i] = node;
  return node;
}

/** Waits until `check` resolves true, polling every 50 ms; throws after `ms`. */
export async function eventually(check: () => Promise<boolean>, ms = 15_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}
