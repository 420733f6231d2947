/**
 * The log's cosigner (src/log/witness/cosigner.ts) against real `lifeboat log witness serve`
 * processes on loopback: two witnesses with one down, the 409 retry from the size the witness names,
 * a witness that refuses a fork, a wrong key for a witness, a witness that never answers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { runCli, startCli, type RunningCli } from './helpers/cli.js';
import { trackedTempDir } from './helpers/tmp.js';
import { memoryWitnessSizes, TestLog } from './helpers/witness.js';
import { parseWitnessVerifierKey, verifyCheckpoint } from '../src/log/cosignature.js';
import { parseVerifierKey } from '../src/log/note.js';
import { collectCosignatures, witnessStateName } from '../src/log/witness/cosigner.js';
import { errorCode } from './helpers/errors.js';
import { generateWitnessKey } from '../src/log/cosignature.js';
import type { LogConfig } from '../src/log/server/config.js';
import { witnessCosigner } from '../src/log/server/serve.js';
import type { LogStore } from '../src/log/store/types.js';

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

/** A TCP server that accepts connections and never answers; `connected` resolves at the n-th connection. */
async function silentServer(): Promise<{ url: string; close: () => void; connections: () => number; connected: (n: number) => Promise<void> }> {
  let count = 0;
  const waiting: { n: number; resolve: () => void }[] = [];
  const sockets = new Set<import('node:net').Socket>();
  const server: Server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    count++;
    for (const w of waiting.filter((x) => x.n <= count)) w.resolve();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    connections: () => count,
    connected: (n) => (count >= n ? Promise.resolve() : new Promise((resolve) => waiting.push({ n, resolve }))),
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

test('the signal calls a round off at once; the timeout also bounds the store’s calls', async () => {
  const log = TestLog.create('example.org/cosigner-abort');
  const w = await witness('witness.example/abort', log);
  const silent = await silentServer();
  try {
    await log.grow(5);
    const checkpoint = await log.checkpoint();
    const prove = (o: number, s: number): Promise<Uint8Array[]> => log.prove(o, s);
    // A silent witness and a long timeout: aborting the signal ends the round, not the timeout.
    const ac = new AbortController();
    const silentKey = generateWitnessKey('witness.example/silent').verifierKey;
    const round = collectCosignatures({ checkpoint, witnesses: [{ vkey: silentKey, url: silent.url }], prove, sizes: memoryWitnessSizes(), timeoutMs: 120_000, signal: ac.signal });
    await silent.connected(1);
    ac.abort();
    const r = await round;
    assert.deepEqual(r.outcomes.map((o) => [o.result, o.errType]), [['unreachable', 'aborted']]);

    // A store that never lists: the call fails within the timeout instead of hanging.
    const hung = { listWitnessStates: () => new Promise<never>(() => {}), setWitnessSize: () => Promise.resolve() };
    await assert.rejects(collectCosignatures({ checkpoint, witnesses: [{ vkey: w.vkey, url: w.server.url }], prove, sizes: hung, timeoutMs: 300 }), /did not list the witnesses' sizes: no answer in time/);
    // A store that never records: the co-signature still counts, and the call ends at the timeout.
    const slowWrite = { listWitnessStates: () => Promise.resolve([]), setWitnessSize: () => new Promise<never>(() => {}) };
    const cosigned = await collectCosignatures({ checkpoint, witnesses: [{ vkey: w.vkey, url: w.server.url }], prove, sizes: slowWrite, timeoutMs: 5_000 });
    assert.equal(cosigned.cosigned, 1, JSON.stringify(cosigned.outcomes));
    assert.match(cosigned.outcomes[0]!.message, /could not record its size: the store did not record it: no answer in time/);
  } finally {
    silent.close();
    await w.server.stop();
  }
});

test('the log’s co-signing hook never starts a round before the previous one settled', async () => {
  const log = TestLog.create('example.org/cosigner-rounds');
  const silent = await silentServer();
  const events: string[] = [];
  const store = {
    listWitnessStates: () => {
      events.push('list');
      return Promise.resolve([]);
    },
    setWitnessSize: () => Promise.resolve(),
  } as unknown as LogStore;
  const config = { witnesses: [{ vkey: generateWitnessKey('witness.example/slow').verifierKey, url: silent.url }], quorum: null, witness_timeout_ms: 120_000 } as unknown as LogConfig;
  // The hook's warning for round 1's witness is written as soon as that round settled.
  const hook = witnessCosigner(config, store, (line) => void (line.includes('(aborted)') && events.push('round 1 settled')))!;
  try {
    const ask = async (n: number): Promise<(signal: AbortSignal) => Promise<string>> => {
      await log.grow(n);
      const [checkpoint, size] = [await log.checkpoint(), log.size];
      return (signal) => hook({ checkpoint, size, signal, proveConsistency: (o) => log.prove(o, size) });
    };
    const [round1, round2] = [await ask(3), await ask(2)];
    // Round 1 is called off by the sequencer (its timeout) while the witness is silent; round 2 follows at once.
    const ac1 = new AbortController();
    const first = round1(ac1.signal);
    await silent.connected(1);
    ac1.abort();
    const ac2 = new AbortController();
    const second = round2(ac2.signal);
    await silent.connected(2);
    assert.deepEqual(events.slice(0, 3), ['list', 'round 1 settled', 'list']);
    ac2.abort();
    await Promise.all([first, second]);
  } finally {
    silent.close();
  }
});

test('the call returns once the quorum co-signed (plus a short grace); the rest go on until the signal, and settle with their outcome', async () => {
  const log = TestLog.create('example.org/cosigner-quorum');
  const w = await witness('witness.example/quick', log);
  const silent = await silentServer();
  try {
    await log.grow(9);
    const ac = new AbortController();
    const sizes = memoryWitnessSizes();
    const r = await collectCosignatures({
      checkpoint: await log.checkpoint(),
      witnesses: [
        { vkey: w.vkey, url: w.server.url },
        { vkey: generateWitnessKey('witness.example/silent').verifierKey, url: silent.url },
      ],
      prove: (o, s) => log.prove(o, s),
      sizes,
      timeoutMs: 120_000,
      quorum: 1,
      signal: ac.signal,
    });
    assert.equal(r.cosigned, 1);
    assert.deepEqual(r.outcomes.map((o) => o.result), ['cosigned', 'pending']);
    verifyCheckpoint(r.checkpoint, parseVerifierKey(log.vkey), { witnesses: [parseWitnessVerifierKey(w.vkey)], quorum: 1 });
    // The silent witness is still being asked until the signal calls it off.
    await silent.connected(1);
    ac.abort();
    const all = await r.settled;
    assert.deepEqual(all.map((o) => [o.result, o.errType]), [['cosigned', undefined], ['unreachable', 'aborted']]);
  } finally {
    silent.close();
    await w.server.stop();
  }
});

test('an answer larger than the cap is refused without reading it: by its Content-Length, or as it grows', async () => {
  const log = TestLog.create('example.org/cosigner-large');
  const server = createHttpServer((req, res) => {
    req.resume();
    if (req.url === '/declared/add-checkpoint') {
      // Says 10 MB, sends one byte, then nothing: only the declared length can end this early.
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '10000000' });
      res.write('x');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    const chunk = Buffer.alloc(16 * 1024, 0x61);
    for (let i = 0; i < 5; i++) res.write(chunk); // 80 KiB chunked, past the 64 KiB cap, and never ended
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  try {
    await log.grow(3);
    const key = generateWitnessKey('witness.example/large').verifierKey;
    for (const path of ['declared', 'grown']) {
      const r = await collectCosignatures({ checkpoint: await log.checkpoint(), witnesses: [{ vkey: key, url: `${base}/${path}` }], prove: (o, s) => log.prove(o, s), sizes: memoryWitnessSizes(), timeoutMs: 60_000 });
      assert.deepEqual(r.outcomes.map((o) => [o.result, o.errType, o.message]), [['bad_answer', 'cosignature_invalid', 'the answer is too large']], path);
    }
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
