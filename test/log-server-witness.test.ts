/**
 * A log with two real witnesses, all processes (`lifeboat log witness serve`, `lifeboat log serve`):
 * every checkpoint the log answers and publishes carries both co-signatures; with one witness down the
 * log keeps answering with the other's; back up, the witness is caught up (a consistency proof from the
 * size it last co-signed) and co-signs again.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { generateIdentity, encodePublicIdentity } from '../src/identity.js';
import { parseWitnessVerifierKey, verifyCheckpoint } from '../src/log/cosignature.js';
import { parseVerifierKey } from '../src/log/note.js';
import { addEntry } from '../src/log/server/client.js';
import { type RunningCli, runCli, startCli } from './helpers/cli.js';
import { testEntry } from './helpers/logserver.js';
import { trackedTempDir } from './helpers/tmp.js';

describe('log server with two witnesses (processes)', { timeout: 240_000 }, () => {
  const root = trackedTempDir('lifeboat-log-witnessed-');
  const running: RunningCli[] = [];
  after(async () => {
    for (const r of running) if (r.child.exitCode === null && r.child.signalCode === null) await r.stop('SIGKILL');
  });
  const ok = async (args: string[]) => {
    const r = await runCli(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const start = async (args: string[]) => {
    const r = await startCli(args);
    running.push(r);
    return r;
  };

  it('publishes checkpoints co-signed by its witnesses, and keeps going with one down', async () => {
    const logDir = join(root, 'log');
    const init = JSON.parse(await ok(['log', 'init', '--origin', 'witnessed.lifeboat.example/log', '--data-dir', logDir, '--interval', '100ms', '--json'])) as { verifier_key: string };
    const vkey = init.verifier_key;
    const alice = generateIdentity('operator');
    await ok(['log', 'enrol', '--name', 'alice', '--identity', encodePublicIdentity(alice), '--data-dir', logDir]);
    const witnesses: { dir: string; vkey: string; server: RunningCli; port: string }[] = [];
    for (const name of ['w1.lifeboat.example', 'w2.lifeboat.example']) {
      const dir = join(root, name);
      const w = JSON.parse(await ok(['log', 'witness', 'init', '--name', name, '--data-dir', dir, '--json'])) as { vkey: string };
      await ok(['log', 'witness', 'add-log', '--vkey', vkey, '--data-dir', dir]);
      const server = await start(['log', 'witness', 'serve', '--data-dir', dir, '--listen', '127.0.0.1:0', '--log-level', 'silent', '--json']);
      witnesses.push({ dir, vkey: w.vkey, server, port: new URL(server.url).port });
      await ok(['log', 'witnesses', 'add', '--vkey', w.vkey, '--url', server.url, '--quorum', '1', '--data-dir', logDir]);
    }
    const verifiers = witnesses.map((w) => parseWitnessVerifierKey(w.vkey));
    const log = await start(['log', 'serve', '--data-dir', logDir, '--json']);
    const cosigners = (note: string): string[] =>
      verifyCheckpoint(note, parseVerifierKey(vkey), { witnesses: verifiers, quorum: 1 }).cosignatures.map((c) => c.name).sort();

    for (let i = 0; i < 3; i++) {
      const doc = await addEntry(log.url, testEntry(alice, `witnessed ${i}`));
      assert.deepEqual(cosigners(doc.checkpoint), ['w1.lifeboat.example', 'w2.lifeboat.example'], `add ${i}`);
    }
    const published = await (await fetch(`${log.url}/checkpoint`)).text();
    assert.deepEqual(cosigners(published), ['w1.lifeboat.example', 'w2.lifeboat.example']);

    // w2 down: the log still answers, co-signed by w1 alone
    await witnesses[1]!.server.stop('SIGTERM');
    const alone = await addEntry(log.url, testEntry(alice, 'one witness down'));
    assert.deepEqual(cosigners(alone.checkpoint), ['w1.lifeboat.example']);
    assert.match(log.stderr(), /w2\.lifeboat\.example/);

    // w2 back on its port: it is sent the new checkpoint with a proof from the size it last co-signed
    const w2 = witnesses[1]!;
    w2.server = await start(['log', 'witness', 'serve', '--data-dir', w2.dir, '--listen', `127.0.0.1:${w2.port}`, '--log-level', 'silent', '--json']);
    const back = await addEntry(log.url, testEntry(alice, 'both again'));
    assert.deepEqual(cosigners(back.checkpoint), ['w1.lifeboat.example', 'w2.lifeboat.example']);
  });
});
