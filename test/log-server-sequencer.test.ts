/**
 * The sequencer in-process on a real SQLite store and a real public/ directory, with a blob store or a
 * store wrapped to fail or count at chosen moments: a checkpoint write that fails once after the batch
 * was committed and marked published (review H3), and the bounds on what waiting adds may hold (M4).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { generateIdentity } from '../src/identity.js';
import { verifyInclusionDoc } from '../src/log/inclusion.js';
import { parseVerifierKey } from '../src/log/note.js';
import { type BlobStore, directoryBlobs } from '../src/log/server/blobs.js';
import { loadLogConfig, loadLogSigner, logPaths, storeUrlOf } from '../src/log/server/config.js';
import { Sequencer, type SequencerOptions } from '../src/log/server/sequencer.js';
import { initLog } from '../src/log/server/serve.js';
import { openLogStore } from '../src/log/store/index.js';
import type { LogStore } from '../src/log/store/types.js';
import { testEntry } from './helpers/logserver.js';
import { trackedTempDir } from './helpers/tmp.js';

const alice = generateIdentity('operator');

async function makeLog(name: string): Promise<{ dir: string; vkey: string; store: LogStore; opts: Pick<SequencerOptions, 'signer' | 'maxEntryBytes'> }> {
  const dir = join(trackedTempDir(`lifeboat-seq-${name}-`), 'log');
  const { verifierKey } = await initLog(dir, { origin: `${name}.lifeboat.example/log` });
  const paths = logPaths(dir);
  const config = loadLogConfig(paths);
  const store = await openLogStore(storeUrlOf(paths, config));
  await store.enrolSubmitter({ name: 'alice', signingKey: alice.signingPublicKey, boxKey: alice.boxPublicKey, enrolledAt: Date.now() });
  return { dir, vkey: verifierKey, store, opts: { signer: loadLogSigner(paths, config.origin), maxEntryBytes: config.max_entry_bytes } };
}

const code = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'ok',
    (err: { code?: string }) => err.code ?? 'no_code',
  );

describe('sequencer (in-process, SQLite)', () => {
  const open: { seq: Sequencer; store: LogStore }[] = [];
  after(async () => {
    for (const o of open) {
      await o.seq.stop();
      await o.store.close();
    }
  });

  it('publishes a committed batch whose checkpoint write failed once, and answers its adds and their retries (H3)', async () => {
    const { dir, vkey, store, opts } = await makeLog('h3');
    const disk = directoryBlobs(join(dir, 'public'));
    let failNext = false;
    let failed = 0;
    const blobs: BlobStore = {
      get: (p) => disk.get(p),
      put: (p, d) => {
        if (p === 'checkpoint' && failNext) {
          failNext = false;
          failed++;
          return Promise.reject(new Error('disk full (injected)'));
        }
        return disk.put(p, d);
      },
    };
    const warnings: string[] = [];
    const seq = new Sequencer({ ...opts, store, blobs, intervalMs: 30, addTimeoutMs: 5000, warn: (l) => warnings.push(l) });
    open.push({ seq, store });
    await seq.start();
    assert.equal(seq.size, 0);
    failNext = true;
    const entry = testEntry(alice, 'checkpoint write fails once');
    const [first, retry] = await Promise.all([
      seq.add(entry),
      // the same entry again once the batch is committed: it finds it sequenced and waits for the publish
      (async () => {
        while ((await store.getHead())!.size === 0) await new Promise((r) => setTimeout(r, 10));
        return seq.add(entry);
      })(),
    ]);
    assert.equal(failed, 1, warnings.join('\n'));
    assert.equal(first.index, 0);
    assert.equal(retry.index, 0);
    verifyInclusionDoc({ ...first, entry }, parseVerifierKey(vkey));
    assert.equal(seq.size, 1, 'the published size caught up');
    const note = Buffer.from((await disk.get('checkpoint'))!).toString();
    assert.equal(Number(note.split('\n')[1]), 1, 'public/checkpoint is of size 1');
    assert.ok(warnings.some((w) => w.includes('injected')), warnings.join('\n'));
  });
});

describe('sequencer admission (in-process, SQLite; M4)', () => {
  const open: { seq: Sequencer; store: LogStore }[] = [];
  after(async () => {
    for (const o of open) {
      await o.seq.stop().catch(() => {});
      await o.store.close();
    }
  });

  it('looks the submitter up before checking the signature, once for concurrent adds, and a revocation holds within 1 s', async () => {
    const { store, opts } = await makeLog('m4-lookup');
    let lookups = 0;
    const counting: LogStore = Object.create(store, {
      getSubmitter: { value: (k: Uint8Array) => (lookups++, store.getSubmitter(k)) },
    }) as LogStore;
    const seq = new Sequencer({ ...opts, store: counting, blobs: directoryBlobs(join(trackedTempDir('lifeboat-seq-blobs-'), 'public')), intervalMs: 20 });
    // a fresh public/ would not match the store's tiles: use the log's own (no tiles yet at size 0)
    open.push({ seq, store });
    await seq.start();
    // an unenrolled submitter's entry with a broken signature: refused for the enrolment, the signature never checked
    const mallory = generateIdentity('operator');
    const forged = testEntry(mallory, 'forged');
    forged[forged.length - 1]! ^= 1;
    assert.equal(await code(seq.add(forged)), 'submitter_not_enrolled');
    lookups = 0;
    const docs = await Promise.all(Array.from({ length: 20 }, (_, i) => seq.add(testEntry(alice, `concurrent ${i}`))));
    assert.equal(new Set(docs.map((d) => d.index)).size, 20);
    assert.equal(lookups, 1, 'one lookup shared by 20 concurrent adds');
    await store.revokeSubmitter('alice', Date.now());
    const revokedAt = Date.now();
    while ((await code(seq.add(testEntry(alice, `after revoke ${Date.now()}`)))) === 'ok') assert.ok(Date.now() - revokedAt < 1500, 'still accepted 1.5 s after the revocation');
    assert.equal(await code(seq.add(testEntry(alice, 'revoked'))), 'submitter_not_enrolled');
  });

  it('refuses adds past the byte budget of waiting adds and past the waiters of one entry (log_busy)', async () => {
    const { dir, store, opts } = await makeLog('m4-budget');
    // an interval of an hour: every add waits
    const seq = new Sequencer({ ...opts, store, blobs: directoryBlobs(join(dir, 'public')), intervalMs: 3_600_000, maxWaitingBytes: 3000, maxWaitersPerEntry: 2 });
    open.push({ seq, store });
    await seq.start();
    const big = (i: number) => testEntry(alice, `${i} ${'x'.repeat(1000)}`);
    const waiting = [seq.add(big(1)), seq.add(big(2))].map((p) => code(p));
    assert.equal(await code(seq.add(big(3))), 'log_busy', 'the third ~1.1 kB add is past a 3,000-byte budget');
    const small = testEntry(alice, 'small');
    const same = [seq.add(small), seq.add(small)].map((p) => code(p));
    // the budget counts bytes: a small entry still fits, but not a third add of the same one
    assert.equal(await code(seq.add(small)), 'log_busy', 'a third waiter of one entry');
    await seq.stop();
    assert.deepEqual(await Promise.all([...waiting, ...same]), ['log_stopping', 'log_stopping', 'log_stopping', 'log_stopping']);
  });
});
