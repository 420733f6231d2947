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
