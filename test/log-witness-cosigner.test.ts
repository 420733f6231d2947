/**
 * The log's cosigner (src/log/witness/cosigner.ts) against real `lifeboat log witness serve`
 * processes on loopback: two witnesses with one down, the 409 retry from the size the witness names,
 * a witness that refuses a fork, a wrong key for a witness, a witness that never answers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { runCli, startCli, type RunningCli } from './helpers/cli.js';
import { trackedTempDir } from './helpers/tmp.js';
import { memoryWitnessSizes, TestLog } from './helpers/witness.js';
import { parseWitnessVerifierKey, verifyCheckpoint } from '../src/log/cosignature.js';
import { parseVerifierKey } from '../src/log/note.js';
import { collectCosignatures, witnessStateName } from '../src/log/witness/cosigner.js';
import { errorCode } from './helpers/errors.js';

async function witness(name: string, log: TestLog): Promise<{ vkey: string; dir: string; server: RunningCli }> {
  const dir = join(trackedTempDir('lb-cosigner-'), 'w');
  const init = await runCli(['log', 'witness', 'init', '--name', name, '--data-dir', dir, '--json']);
  assert.equal(init.code, 0, init.stderr);
  const add = await runCli(['log', 'witness', 'add-log', '--vkey', log.vkey, '--data-dir', dir]);
  assert.equal(add.code, 0, add.stderr);
  const server = await startCli(['log', 'witness', 'serve', '--listen', '127.0.0.1:0', '--data-dir', dir, '--log-level', 'silent']);
  return { vkey: (JSON.parse(init.stdout) as { vkey: string }).vkey, dir, server };
}

test('two witnesses, one down: the checkpoint gets the live one’s verified co-signature, the down one is an outcome', async () => {
  const log = TestLog.create('example.org/cosigner-log');
  const a = await witness('witness.example/a', log);
  const b = await witness('witness.example/b', log);
  const downUrl = b.server.url;
  await b.server.stop();
  try {
    const sizes = memoryWitnessSizes();
    const witnesses = [
      { vkey: a.vkey, url: a.server.url },
      { vkey: b.vkey, url: downUrl },
    ];
    const logKey = parseVerifierKey(log.vkey);
    const keys = [parseWitnessVerifierKey(a.vkey), parseWitnessVerifierKey(b.vkey)];
    for (const n of [7, 70, 700]) {
      await log.grow(n - log.size);
      const r = await collectCosignatures({ checkpoint: await log.checkpoint(), witnesses, prove: (o, s) => log.prove(o, s), sizes, timeoutMs: 3000 });
      assert.equal(r.cosigned, 1);
      assert.deepEqual(
        r.outcomes.map((o) => [o.witness, o.result]),
        [
          ['witness.example/a', 'cosigned'],
          ['witness.example/b', 'unreachable'],
        ],
      );
      assert.equal(r.outcomes[1]!.errType, 'peer_unreachable');
      const v = verifyCheckpoint(r.checkpoint, logKey, { witnesses: keys, quorum: 1 });
      assert.deepEqual(v.cosignatures.map((c) => c.name), ['witness.example/a']);
      assert.equal(errorCode(() => verifyCheckpoint(r.checkpoint, logKey, { witnesses: keys, quorum: 2 })), 'witness_quorum_not_met');
      assert.equal(sizes.sizes.get(witnessStateName(keys[0]!)), n);
      assert.equal(sizes.sizes.get(witnessStateName(keys[1]!)), undefined);
    }
    // b comes back on the same port with its state (size 0 for this log, never co-signed): it catches up.
    const port = new URL(downUrl).port;
    b.server = await startCli(['log', 'witness', 'serve', '--listen', `127.0.0.1:${port}`, '--data-dir', b.dir, '--log-level', 'silent']);
    await log.grow(1);
    const r = await collectCosignatures({ checkpoint: await log.checkpoint(), witnesses, prove: (o, s) => log.prove(o, s), sizes });
    assert.equal(r.cosigned, 2, JSON.stringify(r.outcomes));
    verifyCheckpoint(r.checkpoint, logKey, { witnesses: keys, quorum: 2 });
  } finally {
    await a.server.stop();
    await b.server.stop();
  }
});

test('a stale size in the store: the witness answers 409 with its size and the one retry from it succeeds', async () => {
  const log = TestLog.create('example.org/cosigner-stale');
  const w = await witness('witness.example/stale', log);
  try {
    const endpoint = [{ vkey: w.vkey, url: w.server.url }];
    await log.grow(30);
    // The witness learns size 30 from somewhere the store does not know of (a lost answer, a restored store).
    const first = await collectCosignatures({ checkpoint: await log.checkpoint(), witnesses: endpoint, prove: (o, s) => log.prove(o, s), sizes: memoryWitnessSizes() });
    assert.equal(first.cosigned, 1);
    await log.grow(12);
    const sizes = memoryWitnessSizes();
    const r = await collectCosignatures({ checkpoint: await log.checkpoint(), witnesses: endpoint, prove: (o, s) => log.prove(o, s), sizes });
    assert.equal(r.cosigned, 1, JSON.stringify(r.outcomes));
    assert.equal(r.outcomes[0]!.retried, true);
    assert.equal(r.outcomes[0]!.oldSize, 30);
    assert.equal(sizes.sizes.get(witnessStateName(parseWitnessVerifierKey(w.vkey))), 42);
    verifyCheckpoint(r.checkpoint, parseVerifierKey(log.vkey), { witnesses: [parseWitnessVerifierKey(w.vkey)] });

    // A forked checkpoint of a size the witness holds: refused, by name, and not on the result.
    const fork = await log.fork(40);
    await fork.grow(2);
    const refused = await collectCosignatures({ checkpoint: await fork.checkpoint(), witnesses: endpoint, prove: (o, s) => fork.prove(o, s), sizes: memoryWitnessSizes() });
    assert.equal(refused.cosigned, 0);
    assert.equal(refused.outcomes[0]!.result, 'refused');
    assert.equal(refused.outcomes[0]!.errType, 'log_forked');
    assert.equal(refused.checkpoint, await fork.checkpoint());
    // A smaller tree than the witness holds: no retry (it cannot be proven), refused as witness_ahead.
    const behind = await collectCosignatures({ checkpoint: await log.checkpoint(10), witnesses: endpoint, prove: (o, s) => log.prove(o, s), sizes: memoryWitnessSizes() });
    assert.equal(behind.outcomes[0]!.errType, 'witness_ahead');
    assert.equal(behind.outcomes[0]!.retried, false);
  } finally {
    await w.server.stop();
  }
});

test('an answer that is not the configured witness’s co-signature is dropped; a silent witness times out', async () => {
  const log = TestLog.create('example.org/cosigner-bad');
  const w = await witness('witness.example/real', log);
  const other = parseWitnessVerifierKey(w.vkey);
  // A key of the same name but another public key (the configuration names the wrong key).
  const { generateWitnessKey } = await import('../src/log/cosignature.js');
  const wrong = generateWitnessKey(other.name).verifierKey;
  const silent: Server = createServer(() => {});
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const silentUrl = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
  try {
    await log.grow(5);
    const started = Date.now();
    const r = await collectCosignatures({
      checkpoint: await log.checkpoint(),
      witnesses: [
        { vkey: wrong, url: w.server.url },
        { vkey: generateWitnessKey('witness.example/silent').verifierKey, url: silentUrl },
        { vkey: 'not a key', url: w.server.url },
      ],
      prove: (o, s) => log.prove(o, s),
      sizes: memoryWitnessSizes(),
      timeoutMs: 800,
    });
    assert.equal(r.cosigned, 0);
    assert.deepEqual(
      r.outcomes.map((o) => [o.result, o.errType]),
      [
        ['bad_answer', 'cosignature_invalid'],
        ['unreachable', 'timeout'],
        ['error', 'verifier_key_invalid'],
      ],
    );
    assert.ok(Date.now() - started < 5000, 'the timeout bounds the whole call');
    assert.equal(r.checkpoint, await log.checkpoint());
  } finally {
    silent.close();
    await w.server.stop();
  }
});
