/**
 * The log server's whole path on a PostgreSQL store, as processes: `log init --store postgres://…`,
 * enrol, serve, concurrent adds (the same entry twice too), a SIGKILL while adds run, a restart, and
 * the log read back through its tiles with every acknowledged entry at its index; a second data
 * directory on the same store is refused by the store's sequencer lock (log_running).
 */
import assert from 'node:assert/strict';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encodePublicIdentity, generateIdentity } from '../src/identity.js';
import { verifyInclusionDoc } from '../src/log/inclusion.js';
import { parseVerifierKey } from '../src/log/note.js';
import { addEntry } from '../src/log/server/client.js';
import { ctEqual } from '../src/util/bytes.js';
import { type RunningCli, runCli, startCli } from './helpers/cli.js';
import { readWholeLog, testEntry } from './helpers/logserver.js';
import { postgresSkipReason, startTestPostgres, type TestPostgres } from './helpers/postgres.js';
import { trackedTempDir } from './helpers/tmp.js';

describe('log server on postgresql (processes)', { skip: postgresSkipReason(), timeout: 180_000 }, () => {
  let pg: TestPostgres;
  const dir = join(trackedTempDir('lifeboat-log-pg-'), 'log');
  const servers: RunningCli[] = [];
  before(async () => {
    pg = await startTestPostgres();
  });
  after(async () => {
    for (const s of servers) if (s.child.exitCode === null && s.child.signalCode === null) await s.stop('SIGKILL');
    await pg?.stop();
  });

  it('sequences, survives a SIGKILL and keeps every acknowledged entry', async () => {
    const init = await runCli(['log', 'init', '--origin', 'pg.lifeboat.example/log', '--data-dir', dir, '--store', pg.url, '--interval', '50ms', '--json']);
    assert.equal(init.code, 0, init.stderr);
    const vkey = (JSON.parse(init.stdout) as { verifier_key: string }).verifier_key;
    assert.ok(!init.stdout.includes(new URL(pg.url).password || '\u0000'), 'no password printed');
    const alice = generateIdentity('operator');
    const enrol = await runCli(['log', 'enrol', '--name', 'alice', '--identity', encodePublicIdentity(alice), '--data-dir', dir]);
    assert.equal(enrol.code, 0, enrol.stderr);
    const serve = async () => {
      const s = await startCli(['log', 'serve', '--data-dir', dir, '--json']);
      servers.push(s);
      return s;
    };
    let s = await serve();
    const acked = new Map<number, Uint8Array>();
    const add = async (url: string, e: Uint8Array) => {
      const doc = await addEntry(url, e);
      verifyInclusionDoc(doc, parseVerifierKey(vkey));
      const prev = acked.get(doc.index);
      assert.ok(prev === undefined || ctEqual(prev, e), `index ${doc.index} acknowledged for two entries`);
      acked.set(doc.index, e);
      return doc.index;
    };
    const same = testEntry(alice, 'same');
    const [i1, i2] = await Promise.all([add(s.url, same), add(s.url, same)]);
    assert.equal(i1, i2);
    await Promise.all(Array.from({ length: 30 }, (_, i) => add(s.url, testEntry(alice, `pg ${i}`))));
    // SIGKILL while adds are in flight
    const inflight = Array.from({ length: 20 }, (_, i) => add(s.url, testEntry(alice, `cut ${i}`)).catch(() => -1));
    await new Promise((r) => setTimeout(r, 120));
    s.child.kill('SIGKILL');
    await s.exited;
    await Promise.all(inflight);
    s = await serve();
    assert.equal(await add(s.url, same), i1, 'the same index after the restart');
    // a copy of the data directory (without its serve.lock) on the same store: the store's lock refuses it
    const copy = join(trackedTempDir('lifeboat-log-pg-copy-'), 'log');
    cpSync(dir, copy, { recursive: true, filter: (src) => !src.endsWith('.tmp') }); // the running log's temp files come and go
    rmSync(join(copy, 'serve.lock'), { force: true });
    const second = await runCli(['log', 'serve', '--data-dir', copy, '--json']);
    assert.equal(second.code, 1, second.stdout + second.stderr);
    const refusal = JSON.parse(second.stdout) as { err_type: string; message: string };
    assert.equal(refusal.err_type, 'log_running');
    assert.match(refusal.message, /on this store/);
    const whole = await readWholeLog(s.url, vkey);
    for (const [index, e] of acked) assert.ok(ctEqual(whole.entries[index]!, e), `entry ${index}`);
    await s.stop('SIGTERM');
  });
});
