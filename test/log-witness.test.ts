/**
 * `lifeboat log witness` as real processes on loopback: init and its files, add-log, co-signing a
 * growing log, the refusals of C2SP tlog-witness (unknown log 404, bad log signature 403, stale old
 * size 409 with its size), forks (same size, another root) refused by name with their evidence kept
 * once and capped per log, a smaller tree or a failing proof refused without evidence, state kept across a SIGKILL,
 * one success for two concurrent requests from one old size, and malformed bodies never a 5xx.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { base64 } from '@scure/base';
import { runCli, startCli, type RunningCli } from './helpers/cli.js';
import { trackedTempDir } from './helpers/tmp.js';
import { postAddCheckpoint, TestLog } from './helpers/witness.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { checkpointLabel, peekCheckpoint, signCheckpoint } from '../src/log/checkpoint.js';
import { utf8 } from '../src/util/bytes.js';
import { parseWitnessVerifierKey, verifyCheckpoint } from '../src/log/cosignature.js';
import { addSignatureLines, parseVerifierKey } from '../src/log/note.js';
import { encodeAddCheckpoint } from '../src/log/witness/request.js';
import { originHash } from '../src/log/witness/state.js';
import { VERSION } from '../src/util/version.js';

interface Witness {
  dir: string;
  vkey: string;
  server?: RunningCli;
}

async function newWitness(name: string, logs: TestLog[]): Promise<Witness> {
  const dir = join(trackedTempDir('lb-witness-'), 'w');
  const r = await runCli(['log', 'witness', 'init', '--name', name, '--data-dir', dir, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const vkey = (JSON.parse(r.stdout) as { vkey: string }).vkey;
  for (const l of logs) {
    const a = await runCli(['log', 'witness', 'add-log', '--vkey', l.vkey, '--data-dir', dir]);
    assert.equal(a.code, 0, a.stderr);
  }
  return { dir, vkey };
}

async function serve(w: Witness): Promise<RunningCli> {
  w.server = await startCli(['log', 'witness', 'serve', '--listen', '127.0.0.1:0', '--data-dir', w.dir, '--log-level', 'silent']);
  return w.server;
}

async function logsOf(w: Witness): Promise<{ origin: string; size: number | null; root: string | null }[]> {
  const r = await runCli(['log', 'witness', 'logs', '--data-dir', w.dir, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { origin: string; size: number | null; root: string | null }[];
}

async function add(url: string, log: TestLog, oldSize: number, proofFrom?: TestLog): Promise<{ status: number; type: string; text: string }> {
  const proof = await (proofFrom ?? log).prove(oldSize, log.size);
  return postAddCheckpoint(url, encodeAddCheckpoint({ oldSize, proof, checkpoint: await log.checkpoint() }));
}

/** Waits until the server's stderr has a line matching `re` (the fork line is written before the answer). */
async function stderrLine(s: RunningCli, re: RegExp): Promise<Record<string, string>> {
  for (let i = 0; i < 200; i++) {
    const line = s.stderr().split('\n').find((l) => re.test(l));
    if (line) return JSON.parse(line) as Record<string, string>;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`no stderr line matching ${re}: ${s.stderr()}`);
}

test('init makes a private directory and a type 0x04 key; key, add-log and logs; init twice and bad keys refused', async () => {
  const log = TestLog.create('example.org/log-a');
  const w = await newWitness('witness.example/w1', [log]);
  const v = parseWitnessVerifierKey(w.vkey);
  assert.equal(v.name, 'witness.example/w1');
  assert.equal(statSync(w.dir).mode & 0o777, 0o700);
  for (const f of ['master.key', 'vault', 'witness.json']) assert.equal(statSync(join(w.dir, f)).mode & 0o777, 0o600, f);
  // The seed is only in the vault (encrypted): the verifier key's bytes never appear in a plain file as a secret.
  assert.doesNotMatch(readFileSync(join(w.dir, 'witness.json'), 'utf8'), /PRIVATE\+KEY/);
  const k = await runCli(['log', 'witness', 'key', '--data-dir', w.dir]);
  assert.equal(k.stdout.trim(), w.vkey);
  const listed = await logsOf(w);
  assert.equal(listed.length, 1);
  assert.deepEqual({ ...listed[0], added_at: 0, updated_at: 0 }, { origin: log.origin, vkey: log.vkey, size: null, root: null, checkpoint: null, added_at: 0, updated_at: 0 });

  const again = await runCli(['log', 'witness', 'init', '--name', 'other', '--data-dir', w.dir, '--json']);
  assert.equal(again.code, 1);
  assert.equal((JSON.parse(again.stdout) as { err_type: string }).err_type, 'witness_exists');
  const twice = await runCli(['log', 'witness', 'add-log', '--vkey', log.vkey, '--data-dir', w.dir]);
  assert.equal(twice.code, 1);
  assert.match(twice.stderr, /\(log_exists\)/);
  const badKey = await runCli(['log', 'witness', 'add-log', '--vkey', w.vkey, '--data-dir', w.dir]);
  assert.equal(badKey.code, 1);
  assert.match(badKey.stderr, /\(verifier_key_invalid\)/);
  const noWitness = await runCli(['log', 'witness', 'logs', '--data-dir', join(w.dir, 'nothing')]);
  assert.equal(noWitness.code, 1);
  assert.match(noWitness.stderr, /\(witness_not_found\)/);
  const badName = await runCli(['log', 'witness', 'init', '--name', 'has space', '--data-dir', join(w.dir, 'x')]);
  assert.equal(badName.code, 1);
  assert.ok(!existsSync(join(w.dir, 'x', 'vault')));
});

test('co-signs a growing log: each co-signature verifies under the witness key, and the state follows', async () => {
  const log = TestLog.create('example.org/log-grow');
  const w = await newWitness('witness.example/grow', [log]);
  const s = await serve(w);
  try {
    const witnessKey = parseWitnessVerifierKey(w.vkey);
    const logKey = parseVerifierKey(log.vkey);
    let old = 0;
    for (const n of [0, 5, 300, 301, 1000]) {
      await log.grow(n - log.size);
      const r = await add(s.url, log, old);
      assert.equal(r.status, 200, r.text);
      assert.match(r.type, /^text\/plain/);
      assert.match(r.text, /^— witness\.example\/grow [A-Za-z0-9+/=]+\n$/);
      const v = verifyCheckpoint(addSignatureLines(await log.checkpoint(), r.text), logKey, { witnesses: [witnessKey], quorum: 1 });
      assert.equal(v.checkpoint.size, n);
      assert.ok(v.cosignatures[0]!.timestamp > 0);
      old = n;
    }
    const [state] = await logsOf(w);
    assert.equal(state!.origin, log.origin);
    assert.equal(state!.size, 1000);
    assert.equal(state!.root, base64.encode(await log.root()));
    // The same checkpoint again (old = its size): co-signed again, nothing changes.
    assert.equal((await add(s.url, log, 1000)).status, 200);
    // The monitoring API serves the held checkpoint with the log's signature and the co-signature.
    const mon = await fetch(`${s.url}/${originHash(log.origin)}/checkpoint`);
    assert.equal(mon.status, 200);
    verifyCheckpoint(await mon.text(), logKey, { witnesses: [witnessKey], quorum: 1 });
    assert.equal((await fetch(`${s.url}/${'0'.repeat(64)}/checkpoint`)).status, 404);
    // A log added while serving is witnessed at once.
    const second = TestLog.create('example.org/log-added-later');
    await second.grow(9);
    assert.equal((await add(s.url, second, 0)).status, 404);
    assert.equal((await runCli(['log', 'witness', 'add-log', '--vkey', second.vkey, '--data-dir', w.dir])).code, 0);
    assert.equal((await add(s.url, second, 0)).status, 200);
    const health = (await (await fetch(`${s.url}/healthz`)).json()) as { ok: boolean; vkey: string; logs: number };
    assert.deepEqual(health, { ok: true, server: 'log-witness', version: VERSION, name: 'witness.example/grow', vkey: w.vkey, logs: 2 });
  } finally {
    await s.stop();
  }
});

test('unknown log 404, bad log signature 403, old size above the checkpoint 400, stale old size 409 with the held size', async () => {
  const log = TestLog.create('example.org/log-refusals');
  const w = await newWitness('witness.example/refusals', [log]);
  const s = await serve(w);
  try {
    await log.grow(10);
    assert.equal((await add(s.url, log, 0)).status, 200);
    const stranger = TestLog.create('example.org/not-witnessed');
    await stranger.grow(3);
    const unknown = await add(s.url, stranger, 0);
    assert.equal(unknown.status, 404);
    assert.equal((JSON.parse(unknown.text) as { err_type: string }).err_type, 'log_unknown');

    // The same origin signed by another key: not the log's signature.
    const impostor = TestLog.create(log.origin);
    await impostor.grow(20);
    const forged = await add(s.url, impostor, 10, impostor);
    assert.equal(forged.status, 403);
    assert.equal((JSON.parse(forged.text) as { err_type: string }).err_type, 'log_signature_invalid');
    // The log's own signature line, altered.
    await log.grow(10);
    const note = await log.checkpoint();
    const sig = /— \S+ (\S+)\n$/.exec(note)![1]!;
    const bytes = base64.decode(sig);
    bytes[10]! ^= 1;
    const tampered = note.replace(sig, base64.encode(bytes));
    const bad = await postAddCheckpoint(s.url, encodeAddCheckpoint({ oldSize: 10, proof: await log.prove(10), checkpoint: tampered }));
    assert.equal(bad.status, 403);

    const above = await postAddCheckpoint(s.url, encodeAddCheckpoint({ oldSize: 25, proof: [], checkpoint: await log.checkpoint() }));
    assert.equal(above.status, 400);
    const stale = await add(s.url, log, 0);
    assert.equal(stale.status, 409);
    assert.equal(stale.type, 'text/x.tlog.size');
    assert.equal(stale.text, '10\n');
    // A proof that does not lead to the new root from a non-fork: the held size is 10, the proof is for 9 -> 20.
    const wrong = await postAddCheckpoint(s.url, encodeAddCheckpoint({ oldSize: 10, proof: await log.prove(9), checkpoint: await log.checkpoint() }));
    assert.equal(wrong.status, 422);
    assert.equal((await logsOf(w))[0]!.size, 10, 'no refusal changed the state');
    assert.equal((await add(s.url, log, 10)).status, 200);
    assert.equal((await logsOf(w))[0]!.size, 20);
  } finally {
    await s.stop();
  }
});

test('a fork (same size, another root) is refused by name with its evidence kept once; a smaller tree or a failing proof accuses no one', async () => {
  const log = TestLog.create('example.org/log-forks');
  const w = await newWitness('witness.example/forks', [log]);
  const s = await serve(w);
  const forkLines = (): Record<string, string>[] =>
    s
      .stderr()
      .split('\n')
      .filter((l) => l.includes('"err_type":"log_forked"'))
      .map((l) => JSON.parse(l) as Record<string, string>);
  const kept = async (): Promise<{ kind: string; file: string }[]> => JSON.parse((await runCli(['log', 'witness', 'forks', '--data-dir', w.dir, '--json'])).stdout) as { kind: string; file: string }[];
  try {
    await log.grow(20);
    assert.equal((await add(s.url, log, 0)).status, 200);
    const held = peekCheckpoint(await log.checkpoint());
    const other = await log.fork(12);
    await other.grow(8);
    assert.equal(other.size, 20);

    // 1. Same size, another root (old = the held size): 422 log_forked, naming both.
    const same = await add(s.url, other, 20);
    assert.equal(same.status, 422);
    const e1 = JSON.parse(same.text) as { err_type: string; message: string; hint: string };
    assert.equal(e1.err_type, 'log_forked');
    const offered = peekCheckpoint(await other.checkpoint());
    assert.ok(e1.message.includes(checkpointLabel(held)) && e1.message.includes(checkpointLabel(offered)), e1.message);
    const line = await stderrLine(s, /"kind":"same_size_different_root"/);
    assert.equal(line.err_type, 'log_forked');
    assert.equal(line.held, checkpointLabel(held));
    assert.equal(line.offered, checkpointLabel(offered));
    const evidence = readFileSync(join(w.dir, line.evidence!), 'utf8');
    assert.ok(evidence.includes(await other.checkpoint()), 'the offered note is kept whole');
    assert.ok(evidence.includes(`held: ${checkpointLabel(held)}`));
    assert.equal(statSync(join(w.dir, line.evidence!)).mode & 0o777, 0o600);
    // Same pair again, with old 20 (422) and old 0 (409 with the size, the spec's status): kept once, no new line.
    assert.equal((await add(s.url, other, 20)).status, 422);
    const again = await add(s.url, other, 0);
    assert.equal(again.status, 409);
    assert.equal(again.text, '20\n');
    assert.deepEqual((await kept()).map((f) => f.kind), ['same_size_different_root']);
    assert.equal(forkLines().length, 1, 'a replayed pair writes no second error line');

    // 2. A smaller tree (an old checkpoint replayed): the spec's 409 with the held size, or 400 for an
    // old size above the checkpoint's; no fork, no evidence.
    const older = await log.checkpoint(15);
    const small409 = await postAddCheckpoint(s.url, encodeAddCheckpoint({ oldSize: 0, proof: [], checkpoint: older }));
    assert.equal(small409.status, 409);
    assert.equal(small409.type, 'text/x.tlog.size');
    assert.equal(small409.text, '20\n');
    const small15 = await postAddCheckpoint(s.url, encodeAddCheckpoint({ oldSize: 15, proof: [], checkpoint: older }));
    assert.equal(small15.status, 409);
    const small400 = await postAddCheckpoint(s.url, encodeAddCheckpoint({ oldSize: 20, proof: [], checkpoint: older }));
    assert.equal(small400.status, 400);
    assert.equal((JSON.parse(small400.text) as { err_type: string }).err_type, 'witness_request_malformed');
    // Named in one warning line (rate-limited), both checkpoints in it, and still no evidence.
    const smaller = await stderrLine(s, /"kind":"smaller_tree"/);
    assert.equal(smaller.level, 'warn');
    assert.equal(smaller.held, checkpointLabel(held));
    assert.equal(smaller.offered, checkpointLabel(peekCheckpoint(older)));
    assert.equal(s.stderr().split('\n').filter((l) => l.includes('"kind":"smaller_tree"')).length, 1, 'one line per log per minute');

    // 3. A genuine newer checkpoint with a made-up (well-formed) proof: 422 consistency_proof_invalid and
    // one warning line per log per minute, no evidence. Same for a larger tree that really diverged.
    await log.grow(10);
    const madeUp = (await log.prove(20, 30)).map((h) => Uint8Array.from(h));
    madeUp[madeUp.length - 1]![0]! ^= 1;
    for (let i = 0; i < 3; i++) {
      const r = await postAddCheckpoint(s.url, encodeAddCheckpoint({ oldSize: 20, proof: madeUp, checkpoint: await log.checkpoint() }));
      assert.equal(r.status, 422);
      assert.equal((JSON.parse(r.text) as { err_type: string }).err_type, 'consistency_proof_invalid');
    }
    const warning = await stderrLine(s, /"kind":"proof_leads_elsewhere"/);
    assert.equal(warning.level, 'warn');
    assert.equal(warning.err_type, 'consistency_proof_invalid');
    assert.equal(warning.held, checkpointLabel(held));
    const diverged = await log.fork(19);
    await diverged.grow(11);
    const bad = await add(s.url, diverged, 20);
    assert.equal(bad.status, 422);
    assert.equal((JSON.parse(bad.text) as { err_type: string }).err_type, 'consistency_proof_invalid');
    assert.equal(s.stderr().split('\n').filter((l) => l.includes('"kind":"proof_leads_elsewhere"')).length, 1, 'warning lines are rate-limited');

    assert.deepEqual((await kept()).map((f) => f.kind), ['same_size_different_root']);
    assert.equal(forkLines().length, 1);
    // Nothing moved, and the honest log still gets co-signed.
    assert.equal((await logsOf(w))[0]!.root, base64.encode(held.rootHash));
    assert.equal((await add(s.url, log, 20)).status, 200);
  } finally {
    await s.stop();
  }
});

test('fork evidence is capped per log: past 100 pairs a fork is still refused, and another log keeps its own', async () => {
  const log = TestLog.create('example.org/log-cap');
  const second = TestLog.create('example.org/log-cap-2');
  const w = await newWitness('witness.example/cap', [log, second]);
  const s = await serve(w);
  try {
    for (const l of [log, second]) {
      await l.grow(4);
      assert.equal((await add(s.url, l, 0)).status, 200);
    }
    // Checkpoints of the held size with made-up roots, each signed by the log key: 105 distinct pairs.
    const forged = (l: TestLog, i: number): string => signCheckpoint({ origin: l.origin, size: 4, rootHash: sha256(utf8.encode(`root ${i}`)), extensions: [] }, l.signer);
    for (let i = 0; i < 105; i++) {
      const r = await postAddCheckpoint(s.url, encodeAddCheckpoint({ oldSize: 4, proof: [], checkpoint: forged(log, i) }));
      assert.equal(r.status, 422, r.text);
      assert.equal((JSON.parse(r.text) as { err_type: string }).err_type, 'log_forked');
    }
    const prefix = (l: TestLog): string => originHash(l.origin).slice(0, 16);
    const files = (): string[] => readdirSync(join(w.dir, 'forks')).filter((n) => n.endsWith('.txt'));
    assert.equal(files().filter((n) => n.startsWith(prefix(log))).length, 100);
    // 100 lines for the kept pairs, then one (rate-limited) for the pairs not kept.
    const lines = s.stderr().split('\n').filter((l) => l.includes('"err_type":"log_forked"'));
    assert.equal(lines.length, 101);
    assert.match(lines[100]!, /not kept/);
    const r = await postAddCheckpoint(s.url, encodeAddCheckpoint({ oldSize: 4, proof: [], checkpoint: forged(second, 0) }));
    assert.equal(r.status, 422);
    assert.equal(files().filter((n) => n.startsWith(prefix(second))).length, 1);
  } finally {
    await s.stop();
  }
});

test('the state survives a SIGKILL; a restart takes over the stale lock; a second serve is refused', async () => {
  const log = TestLog.create('example.org/log-kill');
  const w = await newWitness('witness.example/kill', [log]);
  let s = await serve(w);
  await log.grow(40);
  assert.equal((await add(s.url, log, 0)).status, 200);
  const second = await runCli(['log', 'witness', 'serve', '--listen', '127.0.0.1:0', '--data-dir', w.dir]);
  assert.equal(second.code, 1);
  assert.match(second.stderr, /\(witness_busy\)/);
  const killed = await s.stop('SIGKILL');
  assert.equal(killed.signal, 'SIGKILL');
  s = await serve(w);
  try {
    const stale = await add(s.url, log, 0);
    assert.equal(stale.status, 409);
    assert.equal(stale.text, '40\n');
    await log.grow(2);
    assert.equal((await add(s.url, log, 40)).status, 200);
  } finally {
    await s.stop();
  }
});

test('two concurrent requests from the same old size: exactly one succeeds', async () => {
  const log = TestLog.create('example.org/log-race');
  const w = await newWitness('witness.example/race', [log]);
  const s = await serve(w);
  try {
    await log.grow(3);
    assert.equal((await add(s.url, log, 0)).status, 200);
    for (let round = 0; round < 5; round++) {
      const held = log.size;
      await log.grow(4);
      const a = encodeAddCheckpoint({ oldSize: held, proof: await log.prove(held), checkpoint: await log.checkpoint() });
      await log.grow(4);
      const b = encodeAddCheckpoint({ oldSize: held, proof: await log.prove(held), checkpoint: await log.checkpoint() });
      const [ra, rb] = await Promise.all([postAddCheckpoint(s.url, a), postAddCheckpoint(s.url, b)]);
      const statuses = [ra.status, rb.status].sort();
      assert.deepEqual(statuses, [200, 409], `round ${round}: ${ra.text} ${rb.text}`);
      // A lost request must not roll the state back: the size held is the winner's.
      const winner = ra.status === 200 ? held + 4 : held + 8;
      assert.equal((await logsOf(w))[0]!.size, winner);
      if (winner === held + 4) assert.equal((await add(s.url, log, held + 4)).status, 200);
    }
  } finally {
    await s.stop();
  }
});

test('malformed requests are 4xx, never 5xx, and change nothing', async () => {
  const log = TestLog.create('example.org/log-malformed');
  const w = await newWitness('witness.example/malformed', [log]);
  const s = await serve(w);
  try {
    await log.grow(8);
    assert.equal((await add(s.url, log, 0)).status, 200);
    await log.grow(8);
    const cp = await log.checkpoint();
    const proof = (await log.prove(8)).map((h) => `${base64.encode(h)}\n`).join('');
    const hash = `${base64.encode(new Uint8Array(32))}\n`;
    const cases: [string, string | Uint8Array, number][] = [
      ['empty body', '', 400],
      ['no old line', `${proof}\n${cp}`, 400],
      ['old -1', `old -1\n${proof}\n${cp}`, 400],
      ['old with a leading zero', `old 08\n${proof}\n${cp}`, 400],
      ['old too large', `old 99999999999999999999\n\n${cp}`, 400],
      ['old without a number', `old \n${proof}\n${cp}`, 400],
      ['bad base64 proof line', `old 8\n!!notbase64!!\n\n${cp}`, 400],
      ['short proof hash', `old 8\n${base64.encode(new Uint8Array(31))}\n\n${cp}`, 400],
      ['64 proof lines', `old 8\n${hash.repeat(64)}\n${cp}`, 400],
      ['no blank line', `old 8\n${proof}${cp}`, 400],
      ['no checkpoint', `old 8\n${proof}\n`, 400],
      ['bad note', `old 8\n${proof}\nnot a checkpoint\n`, 400],
      ['checkpoint without signatures', `old 8\n${proof}\n${cp.split('\n\n')[0]}\n`, 400],
      ['bad utf-8', new Uint8Array([0x6f, 0x6c, 0x64, 0x20, 0x38, 0x0a, 0x0a, 0xff, 0xfe, 0x0a]), 400],
      ['control characters', `old 8\n${proof}\n${cp.replace('\n', '\u0001\n')}`, 400],
      ['oversized body', `old 8\n${proof}\n${cp}${'x'.repeat(80_000)}`, 413],
    ];
    for (const [what, body, status] of cases) {
      const r = await postAddCheckpoint(s.url, body);
      assert.equal(r.status, status, `${what}: ${r.text}`);
      const e = JSON.parse(r.text) as { err_type: string };
      assert.match(e.err_type, /^[a-z_]+$/, what);
    }
    const wrongMethod = await fetch(`${s.url}/add-checkpoint`);
    assert.equal(wrongMethod.status, 404);
    const json = await postAddCheckpoint(s.url, `old 8\n${proof}\n${cp}`, { 'content-type': 'application/json' });
    assert.equal(json.status, 400);
    const noType = await postAddCheckpoint(s.url, `old 8\n${proof}\n${cp}`, { 'content-type': 'application/octet-stream' });
    assert.equal(noType.status, 200, noType.text);
    assert.equal((await logsOf(w))[0]!.size, 16);
    assert.equal((await fetch(`${s.url}/healthz`)).status, 200);
  } finally {
    await s.stop();
  }
});

test('replaying the held checkpoint is co-signed again without rewriting the state; /healthz reads no state file', async () => {
  const log = TestLog.create('example.org/log-replay');
  const other = TestLog.create('example.org/log-replay-other');
  const w = await newWitness('witness.example/replay', [log, other]);
  const s = await serve(w);
  try {
    await log.grow(6);
    assert.equal((await add(s.url, log, 0)).status, 200);
    const file = join(w.dir, 'logs', `${originHash(log.origin)}.json`);
    const before = statSync(file);
    const text = readFileSync(file, 'utf8');
    for (let i = 0; i < 3; i++) {
      const again = await add(s.url, log, 6);
      assert.equal(again.status, 200);
      verifyCheckpoint(addSignatureLines(await log.checkpoint(), again.text), parseVerifierKey(log.vkey), { witnesses: [parseWitnessVerifierKey(w.vkey)], quorum: 1 });
    }
    // An atomic write renames a new file into place: the same inode and bytes mean no write at all.
    assert.equal(statSync(file).ino, before.ino);
    assert.equal(readFileSync(file, 'utf8'), text);
    // A damaged state file takes down its own log (503 witness_state_invalid), not /healthz.
    writeFileSync(join(w.dir, 'logs', `${originHash(other.origin)}.json`), '{ damaged');
    await other.grow(2);
    const broken = await add(s.url, other, 0);
    assert.equal(broken.status, 503);
    assert.equal((JSON.parse(broken.text) as { err_type: string }).err_type, 'witness_state_invalid');
    const health = await fetch(`${s.url}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(((await health.json()) as { logs: number }).logs, 2);
  } finally {
    await s.stop();
  }
});
