/**
 * `node backup-setup` (setupNodeBackup) against a real backup service on loopback: the invite is spent
 * by the registration, so a restore token that cannot be made afterwards must not leave the node
 * unconfigured; `node backup-restore-token` makes it later.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { renewRestoreToken, setupNodeBackup } from '../src/backup/node-link.js';
import { loadNodeConfig } from '../src/keynode/config.js';
import { FAST, PASSWORD, startBackupFixture, type BackupFixture } from './helpers/backup.js';
import { type NodeSet, startInProcessNodes } from './helpers/keynode.js';

describe('backup set-up when the restore token cannot be made', { timeout: 120_000 }, () => {
  let s: NodeSet;
  let fx: BackupFixture;
  before(async () => {
    s = await startInProcessNodes(1);
    fx = await startBackupFixture();
  });
  after(async () => {
    await s.close();
    await fx.close();
  });

  it('the registration stands and the node is configured; the token is null with its error code, and backup-restore-token makes one', async () => {
    const node = s.nodes[0]!;
    // The connection drops exactly when the token is asked for, after the account was registered.
    const dropRestoreToken: typeof fetch = (input, init) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      return /\/restore-token$/.test(new URL(url).pathname) ? Promise.reject(new TypeError('fetch failed')) : fetch(input, init);
    };
    const r = await setupNodeBackup(node, { server: fx.url, account: 'acct-drop', invite: await fx.invite('acct-drop'), password: PASSWORD, usableBeforeAck: false, tuning: { ...FAST, fetch: dropRestoreToken } });
    assert.equal(r.restoreToken, null);
    assert.equal(typeof r.restoreTokenError, 'string');
    assert.equal(loadNodeConfig(node.paths).backup?.account, 'acct-drop', 'node.json has its backup section');
    assert.notEqual((await fx.server.store.getAccount('acct-drop'))?.registration, null);
    const renewed = await renewRestoreToken({ ...node, config: loadNodeConfig(node.paths) }, FAST);
    assert.match(renewed.restoreToken, /^lbr_[A-Za-z0-9_-]{43}$/);
    assert.notEqual((await fx.server.store.getAccount('acct-drop'))?.restoreTokenHash, null);
  });
});
