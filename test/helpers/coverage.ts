/**
 * A small real fleet for coverage tests: a `backup-server serve` process with a monitor token, three
 * `node serve` processes on loopback, each streaming to it under its own account, an operator and a
 * client token on every node, and a fleet file naming them (credentials in 0600 files). Node
 * directories and backup set-up are made in this process (FAST OPAQUE stretching), as the backup tests do.
 */
import { writeFileSync } from 'node:fs';
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
import { type RunningCli, startCli } from './cli.js';
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
  clients(idx?: number[]): KeyNodeClient[];
  createKey(idx: number[], keyId: string): Promise<KeyRef>;
  writeFleet(edit?: (f: Fleet) => void): string;
  stop(): Promise<void>;
}

export async function startCoverageFleet(n = 3): Promise<CoverageFleet> {
  const root = trackedTempDir('lifeboat-coverage-');
  const backupDir = join(root, 'backup');
  const backup = await startCli(['backup-server', 'serve', '--data-dir', backupDir, '--listen', '127.0.0.1:0', '--log-level', 'silent', '--json']);
  const monitorToken = addMonitorToken(backupDir);
  const operator = newApiKey('operator', 'coverage operator').token;
  const client = newApiKey('client', 'coverage client', { tenant: 'default' }).token;
  const accounts = Array.from({ length: n }, (_, i) => `acct-node${i + 1}`);
  const invites = await addBackupAccounts({ dir: backupDir, url: backup.url, server: undefined }, accounts);
  const dirs: string[] = [];
  for (let i = 0; i < n; i++) {
    const dir = join(root, `node${i + 1}`);
    await initNode(dir);
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
  const nodes = await Promise.all(dirs.map((d) => startCli(['node', 'serve', '--data-dir', d, '--listen', '127.0.0.1:0', '--log-level', 'silent', '--json'])));
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
    clients: (idx = nodes.map((_, i) => i)) => idx.map((i) => new KeyNodeClient({ url: nodes[i]!.url, apiKey: client })),
    createKey: (idx, keyId) => createKey(fx.clients(idx), { threshold: 2, curve: 'ed25519', keyId }),
    writeFleet: (edit) => {
      const f = emptyFleet();
      f.timeout_ms = 3000;
      f.nodes = nodes.map((s, i) => ({ name: `node${i + 1}`, url: s.url, credential: { file: tokenFile } }));
      f.backup_services = [{ name: 'backup', url: backup.url, credential: { file: monitorFile } }];
      edit?.(f);
      writeFileSync(fleetFile, encodeFleet(f), { mode: 0o600 });
      return fleetFile;
    },
    stop: async () => {
      await Promise.all([...nodes.map((s) => s.stop()), backup.stop()]);
    },
  };
  return fx;
}
