/**
 * The log server in-process over real loopback HTTP with its real SQLite store: the write path (an
 * add answered with a proof in a published checkpoint, the same entry twice, enrolment and its
 * refusals), malformed input on every route, restarts, the republish of a batch committed before a
 * crash, and the witness hook.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateIdentity } from '../src/identity.js';
import { openCheckpoint, signCheckpoint } from '../src/log/checkpoint.js';
import { cosignCheckpoint, cosignatureSigner, generateWitnessKey, parseWitnessVerifierKey, verifyCheckpoint } from '../src/log/cosignature.js';
import { createEntry } from '../src/log/entry.js';
import { encodeInclusionDoc, parseInclusionDoc, verifyInclusionDoc } from '../src/log/inclusion.js';
import { leafHash, rootOfEntries } from '../src/log/merkle.js';
import { parseVerifierKey } from '../src/log/note.js';
import { addEntry, addEntryVerified } from '../src/log/server/client.js';
import { loadLogConfig, loadLogSigner, logPaths, saveLogConfig, storeUrlOf } from '../src/log/server/config.js';
import { initLog, startLogServer, type RunningLog } from '../src/log/server/serve.js';
import { SUBMITTER_CACHE_MS } from '../src/log/server/submitters.js';
import { openLogStore } from '../src/log/store/index.js';
import { ctEqual, utf8 } from '../src/util/bytes.js';
import { addSignatureLines, parseSignerKeyParts } from '../src/log/note.js';
import { fetchCheckpoint, raw, readWholeLog, testEntry } from './helpers/logserver.js';
import { trackedTempDir } from './helpers/tmp.js';

const ORIGIN = 'test.lifeboat.example/log';
const alice = generateIdentity('operator');
const bob = generateIdentity('operator');

async function enrol(log: RunningLog, name: string, id = alice): Promise<void> {
  await log.store.enrolSubmitter({ name, signingKey: id.signingPublicKey, boxKey: id.boxPublicKey, enrolledAt: Date.now() });
}

async function refusal(p: Promise<unknown>): Promise<{ code: string; status: number }> {
  try {
    await p;
  } catch (err) {
    return { code: (err as { code: string }).code, status: (err as { status: number }).status };
  }
  return { code: 'no_error', status: 0 };
}

describe('log server (in-process, SQLite)', () => {
  const dir = join(trackedTempDir('lifeboat-log-server-'), 'log');
  let vkey: string;
  let log: RunningLog;
  const start = async () => (log = await startLogServer({ dataDir: dir, intervalMs: 50 }));
  before(async () => {
    vkey = (await initLog(dir, { origin: ORIGIN, maxEntryBytes: 2000 })).verifierKey;
    await start();
    await enrol(log, 'alice');
  });
  after(async () => log?.close());

  it('answers an add only with its proof in a published checkpoint, and the log reads back through its tiles', async () => {
    const e0 = testEntry(alice, 'first');
    const { doc, checkpoint } = await addEntryVerified(log.url, e0, parseVerifierKey(vkey));
    assert.equal(doc.index, 0);
    assert.ok(ctEqual(doc.leafHash, leafHash(e0)));
    const published = await fetchCheckpoint(log.url, vkey);
    assert.ok(published.checkpoint.size >= checkpoint.size, 'the answer’s checkpoint is published');
    const many = await Promise.all(Array.from({ length: 40 }, (_, i) => addEntryVerified(log.url, testEntry(alice, `entry ${i}`), parseVerifierKey(vkey))));
    const indexes = many.map((m) => m.doc.index).sort((a, b) => a - b);
    assert.deepEqual(indexes, Array.from({ length: 40 }, (_, i) => i + 1));
    const whole = await readWholeLog(log.url, vkey);
    assert.equal(whole.entries.length, 41);
    for (const m of many) assert.ok(ctEqual(leafHash(whole.entries[m.doc.index]!), m.doc.leafHash));
  });

  it('gives the same entry the same index, also when the first add is still pending', async () => {
    const e = testEntry(alice, 'twice');
    const [a, b] = await Promise.all([addEntry(log.url, e), addEntry(log.url, e)]);
    assert.equal(a.index, b.index);
    const c = await addEntry(log.url, e);
    assert.equal(c.index, a.index);
    verifyInclusionDoc(c, parseVerifierKey(vkey));
    const whole = await readWholeLog(log.url, vkey);
    assert.equal(whole.entries.filter((x) => ctEqual(x, e)).length, 1, 'stored once');
  });

  it('refuses an unenrolled submitter, a revoked one, a bad signature and an oversized entry', async () => {
    const before = (await fetchCheckpoint(log.url, vkey)).checkpoint.size;
    assert.deepEqual(await refusal(addEntry(log.url, testEntry(bob, 'not enrolled'))), { code: 'submitter_not_enrolled', status: 403 });
    await enrol(log, 'bob', bob);
    assert.equal((await addEntry(log.url, testEntry(bob, 'enrolled now'))).index, before);
    await log.store.revokeSubmitter('bob', Date.now());
    await new Promise((r) => setTimeout(r, SUBMITTER_CACHE_MS)); // a revocation takes effect within SUBMITTER_CACHE_MS
    assert.deepEqual(await refusal(addEntry(log.url, testEntry(bob, 'revoked'))), { code: 'submitter_not_enrolled', status: 403 });
    const forged = testEntry(alice, 'forged');
    forged[forged.length - 1]! ^= 1;
    assert.deepEqual(await refusal(addEntry(log.url, forged)), { code: 'entry_signature_invalid', status: 401 });
    const altered = testEntry(alice, 'altered payload');
    altered[altered.length - 70]! ^= 1;
    assert.equal((await refusal(addEntry(log.url, altered))).code, 'entry_signature_invalid');
    const big = createEntry({ recordType: 'test/v1', payload: new Uint8Array(2500) }, alice);
    assert.deepEqual(await refusal(addEntry(log.url, big)), { code: 'entry_too_large', status: 413 });
    const huge = new Uint8Array(70_000);
    assert.deepEqual(await refusal(addEntry(log.url, huge)), { code: 'body_too_large', status: 413 });
    // an identity whose signing key is enrolled but with another box key names someone else
    const mixed = { ...bob, signingPublicKey: alice.signingPublicKey, signing: alice.signing };
    assert.equal((await refusal(addEntry(log.url, testEntry(mixed, 'mixed')))).code, 'submitter_not_enrolled');
    const whole = await readWholeLog(log.url, vkey);
    assert.equal(whole.entries.length, before + 1, 'only the enrolled add went in');
  });

  it('answers malformed input on every route with a typed 4xx and keeps serving', async () => {
    const e = testEntry(alice, 'for the malformed test');
    const cases: [string, string, (Uint8Array | string)?, Record<string, string>?, number?, string?][] = [
      ['GET', '/tile/garbage', undefined, undefined, 400, 'tile_path_invalid'],
      ['GET', '/tile/0/1', undefined, undefined, 400, 'tile_path_invalid'],
      ['GET', '/tile/0/001.p/0', undefined, undefined, 400, 'tile_path_invalid'],
      ['GET', '/tile/64/000', undefined, undefined, 400, 'tile_path_invalid'],
      ['GET', '/tile/../../log.json', undefined, undefined, 400, 'tile_path_invalid'],
      ['GET', '/../log.json', undefined, undefined, 404, 'not_found'],
      ['GET', '/tile/0/../../../log.json', undefined, undefined, 400, 'tile_path_invalid'],
      ['GET', '/tile/0/%2e%2e/%2e%2e/log.json', undefined, undefined, 400, 'tile_path_invalid'],
      ['GET', '/tile/0/999', undefined, undefined, 404, 'tile_not_found'],
      ['GET', '/tile/entries/x001/000', undefined, undefined, 404, 'tile_not_found'],
      ['GET', '/log.json', undefined, undefined, 404, 'not_found'],
      ['GET', '/master.key', undefined, undefined, 404, 'not_found'],
      ['GET', '/add', undefined, undefined, 404, 'not_found'],
      ['DELETE', '/checkpoint', undefined, undefined, 404, 'not_found'],
      ['PUT', '/tile/0/000.p/1', 'x', { 'content-type': 'application/octet-stream' }, 404, 'not_found'],
      ['POST', '/add', e, { 'content-type': 'text/plain' }, 415, 'unsupported_media_type'],
      ['POST', '/add', '{"entry":1}', { 'content-type': 'application/json' }, 415, 'unsupported_media_type'],
      ['POST', '/add', '{bad json', { 'content-type': 'application/json' }, 400, 'malformed_json'],
      ['POST', '/add', undefined, {}, 415, 'unsupported_media_type'],
      ['POST', '/add', new Uint8Array(0), { 'content-type': 'application/octet-stream' }, 400, 'truncated'],
      ['POST', '/add', e.subarray(0, 50), { 'content-type': 'application/octet-stream' }, 400, 'truncated'],
      ['POST', '/add', utf8.encode('GARBAGE GARBAGE GARBAGE'), { 'content-type': 'application/octet-stream' }, 400, 'bad_magic'],
      ['POST', '/add', new Uint8Array(100_000), { 'content-type': 'application/octet-stream' }, 413, 'body_too_large'],
      ['POST', '/add', e, { 'content-type': 'application/octet-stream', 'content-length': '5' }, 400, undefined],
    ];
    for (const [method, path, body, headers, status, code] of cases) {
      const r = await raw(log.url, method, path, body, headers);
      assert.equal(r.status, status, `${method} ${path} ${JSON.stringify(headers)}: ${r.body.toString().slice(0, 200)}`);
      if (code) assert.equal(r.json().err_type, code, `${method} ${path}`);
    }
    const ok = await raw(log.url, 'GET', '/checkpoint');
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(ok.headers['cache-control'], 'no-store');
    const tile = await raw(log.url, 'GET', '/tile/0/000.p/1');
    assert.equal(tile.status, 200);
    assert.equal(tile.headers['content-type'], 'application/octet-stream');
    assert.equal(tile.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(tile.body.length, 32);
    assert.equal((await raw(log.url, 'GET', '/healthz')).status, 200);
    assert.equal((await addEntry(log.url, e)).index >= 0, true, 'still adds');
  });

  it('refuses a second server on the same data directory (log_running)', async () => {
    await assert.rejects(startLogServer({ dataDir: dir }), (err: { code?: string }) => err.code === 'log_running');
    assert.equal((await raw(log.url, 'GET', '/healthz')).status, 200, 'the first keeps serving');
  });

  it('keeps every entry, index and its checkpoint across a restart', async () => {
    const before = await readWholeLog(log.url, vkey);
    const e = testEntry(alice, 'before restart');
    const first = await addEntry(log.url, e);
    await log.close();
    await start();
    const again = await readWholeLog(log.url, vkey);
    assert.equal(again.entries.length, before.entries.length + 1);
    assert.equal((await addEntry(log.url, e)).index, first.index);
    const next = await addEntry(log.url, testEntry(alice, 'after restart'));
    assert.equal(next.index, before.entries.length + 1);
  });

  it('publishes at start a batch committed before a crash, and rewrites public/checkpoint from the store', async () => {
    await log.close();
    const paths = logPaths(dir);
    const store = await openLogStore(storeUrlOf(paths, loadLogConfig(paths)));
    const head = (await store.getHead())!;
    const old = await startLogServer({ dataDir: dir, intervalMs: 3_600_000 }); // no batches: read the entries back
    const { entries } = await readWholeLog(old.url, vkey);
    await old.close();
    // What a sequencer killed right after commitBatch leaves: the commit, no tiles, an old checkpoint.
    const fresh = [testEntry(alice, 'crash 1'), testEntry(alice, 'crash 2'), testEntry(alice, 'crash 3')];
    for (const f of fresh) await store.addPending(leafHash(f), f, Date.now());
    const pending = await store.listPending(10);
    const all = [...entries, ...pending.map((p) => p.bytes)];
    const root = rootOfEntries(all);
    const signer = loadLogSigner(paths, ORIGIN);
    const checkpoint = signCheckpoint({ origin: ORIGIN, size: all.length, rootHash: root, extensions: [] }, signer);
    await store.commitBatch({ oldSize: head.size, ids: pending.map((p) => p.id), root, checkpoint, now: Date.now() });
    assert.equal((await store.getHead())!.publishedSize, head.size);
    await store.close();
    await start();
    const whole = await readWholeLog(log.url, vkey);
    assert.equal(whole.checkpoint.size, all.length);
    assert.ok(ctEqual(whole.checkpoint.rootHash, root));
    assert.equal(whole.note, checkpoint, 'the committed checkpoint, signed once');
    for (const f of fresh) assert.equal((await addEntry(log.url, f)).index, all.findIndex((x) => ctEqual(x, f)));
  });

  it('refuses to start on tiles that do not match the store (tile_invalid)', async () => {
    await log.close();
    const tile = join(dir, 'public', 'tile', '0', '000.p', String(publishedSize(dir) % 256));
    const bytes = readFileSync(tile);
    const bad = Buffer.from(bytes);
    bad[0]! ^= 1;
    writeFileSync(tile, bad);
    await assert.rejects(startLogServer({ dataDir: dir }), (err: { code?: string }) => err.code === 'tile_invalid');
    writeFileSync(tile, bytes);
    await start();
  });

  it('refuses to start without its master key (sealed), and with another log’s vault (log_key_mismatch)', async () => {
    await log.close();
    const paths = logPaths(dir);
    renameSync(paths.masterKey, `${paths.masterKey}.away`);
    await assert.rejects(startLogServer({ dataDir: dir }), (err: { code?: string; message?: string }) => err.code === 'sealed' && /log's master key/.test(err.message ?? ''));
    renameSync(`${paths.masterKey}.away`, paths.masterKey);
    const other = join(trackedTempDir('lifeboat-log-other-'), 'log');
    await initLog(other, { origin: ORIGIN });
    for (const f of ['vault', 'master.key']) copyFileSync(join(other, f), join(dir, `${f}.other`));
    for (const f of ['vault', 'master.key']) renameSync(join(dir, f), join(dir, `${f}.mine`));
    for (const f of ['vault', 'master.key']) renameSync(join(dir, `${f}.other`), join(dir, f));
    await assert.rejects(startLogServer({ dataDir: dir }), (err: { code?: string }) => err.code === 'log_key_mismatch');
    for (const f of ['vault', 'master.key']) renameSync(join(dir, `${f}.mine`), join(dir, f));
    await start();
  });

  it('publishes the co-signatures a witness hook returns, and publishes without them when it fails', async () => {
    await log.close();
    const w = generateWitnessKey('witness.test/w1');
    const seed = parseSignerKeyParts(w.signerKey).seed;
    const witness = cosignatureSigner('witness.test/w1', seed);
    let calls = 0;
    log = await startLogServer({
      dataDir: dir,
      intervalMs: 50,
      cosign: async (req) => {
        calls++;
        if (req.size % 2 === 1) throw new Error('witness down');
        return addSignatureLines(req.checkpoint, cosignCheckpoint(openCheckpoint(req.checkpoint, parseVerifierKey(vkey)).text, witness));
      },
    });
    const vw = parseWitnessVerifierKey(w.verifierKey);
    for (let i = 0; i < 4; i++) {
      const doc = await addEntry(log.url, testEntry(alice, `witnessed ${i}`));
      const size = openCheckpoint(doc.checkpoint, parseVerifierKey(vkey)).checkpoint.size;
      if (size % 2 === 0) verifyCheckpoint(doc.checkpoint, parseVerifierKey(vkey), { witnesses: [vw], quorum: 1 });
      else assert.throws(() => verifyCheckpoint(doc.checkpoint, parseVerifierKey(vkey), { witnesses: [vw], quorum: 1 }), { code: 'witness_quorum_not_met' });
    }
    assert.ok(calls >= 4);
  });

  it('keeps sequencing when a configured witness is down', async () => {
    await log.close();
    const paths = logPaths(dir);
    const config = loadLogConfig(paths);
    const w = generateWitnessKey('witness.test/down');
    saveLogConfig(paths, { ...config, witnesses: [{ vkey: w.verifierKey, url: 'http://127.0.0.1:9' }], quorum: 1, witness_timeout_ms: 500 });
    const warnings: string[] = [];
    log = await startLogServer({ dataDir: dir, intervalMs: 50, warn: (l) => warnings.push(l) });
    const doc = parseInclusionDoc(JSON.stringify(encodeInclusionDoc(await addEntry(log.url, testEntry(alice, 'no witness')))));
    verifyInclusionDoc(doc, parseVerifierKey(vkey));
    assert.ok(warnings.some((l) => l.includes('witness.test/down')), warnings.join('\n'));
    saveLogConfig(paths, config);
  });
});

function publishedSize(dir: string): number {
  const note = readFileSync(join(dir, 'public', 'checkpoint'), 'utf8');
  return Number(note.split('\n')[1]);
}
