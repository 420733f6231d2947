/**
 * A key node's monitor token (`lifeboat node monitor-token`, docs/coverage.md): what `lifeboat coverage`
 * reads a node with instead of an operator API key. It reads GET /v1/coverage and /v1/status of a real
 * `node serve` process, and nothing else: no key list, no export, no deletion, no configuration, no
 * signing. A new token works at once; an unknown or malformed one is 401 like a missing one.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../src/drill/proc.js';
import { newApiKey } from '../src/keynode/apikeys.js';
import { ok, registerTokenInDir, serveNode, type NodeProcess } from './helpers/keynode.js';
import { trackedTempDir } from './helpers/tmp.js';

describe('key node monitor token', () => {
  const root = trackedTempDir('lb-monitor-');
  const dir = join(root, 'node');
  const operator = newApiKey('operator', 'o').token;
  const client = newApiKey('client', 'c').token;
  let node: NodeProcess;
  let monitor: string;
  const get = (path: string, token?: string, method = 'GET') => fetch(`${node.url}${path}`, { method, headers: token ? { authorization: `Bearer ${token}` } : {} });

  before(async () => {
    ok(await runCli(['node', 'init', '--data-dir', dir, '--no-mnemonic', '--json']), 'node init');
    await registerTokenInDir(dir, operator, 'operator');
    await registerTokenInDir(dir, client, 'client');
    node = await serveNode(dir);
  });
  after(async () => {
    await node?.server.stop();
  });

  it('is made while the node serves, shown once on the secret fd, kept hashed in a 0600 file, and works at once', async () => {
    assert.equal((await get('/v1/coverage?limit=1', 'lbm_' + 'A'.repeat(43))).status, 401, 'no token yet');
    const r = ok(await runCli(['node', 'monitor-token', '--data-dir', dir, '--secret-fd', '3'], { secretFd: true }), 'node monitor-token');
    monitor = r.secret.trim();
    assert.match(monitor, /^lbm_[A-Za-z0-9_-]{43}$/);
    assert.ok(!r.stdout.includes(monitor) && !r.stderr.includes(monitor));
    const file = join(dir, 'monitor-tokens');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const page = await get('/v1/coverage?limit=1', monitor);
    assert.equal(page.status, 200);
    assert.match(((await page.json()) as { node: { fingerprint: string } }).node.fingerprint, /^[0-9a-f:]+$/i);
    assert.equal((await get('/v1/status', monitor)).status, 200);
    assert.equal((await get('/v1/coverage?limit=1', operator)).status, 200, 'an operator key still reads it');
  });

  it('reads nothing else: keys, a key, export, deletion, configuration and signing answer 401', async () => {
    assert.ok(monitor, 'made by the test above');
    for (const [path, method] of [
      ['/v1/keys', 'GET'],
      ['/v1/keys/key_00000000000000000000000000000000', 'GET'],
      ['/v1/keys/key_00000000000000000000000000000000', 'DELETE'],
      ['/v1/backup/export-key-share/key_00000000000000000000000000000000?export_type=encrypted', 'GET'],
      ['/v1/config', 'GET'],
      ['/v1/wrapping-key', 'GET'],
      ['/v1/keys/key_00000000000000000000000000000000/commitments', 'POST'],
    ] as const) {
      const res = await get(path, monitor, method);
      assert.equal(res.status, 401, `${method} ${path}: ${res.status}`);
      assert.equal(((await res.json()) as { err_type: string }).err_type, 'unauthorized');
    }
  });

  it('an unknown, altered or malformed monitor token, and a client key, are refused on the read-only routes', async () => {
    const altered = monitor.slice(0, -1) + (monitor.endsWith('A') ? 'B' : 'A');
    for (const bad of ['lbm_' + 'A'.repeat(43), altered, 'lbm_short', `${monitor}x`]) {
      assert.equal((await get('/v1/coverage', bad)).status, 401, bad.slice(0, 8));
      assert.equal((await get('/v1/status', bad)).status, 401);
    }
    assert.equal((await get('/v1/coverage', client)).status, 403);
    assert.equal((await get('/v1/coverage')).status, 401);
  });
});
