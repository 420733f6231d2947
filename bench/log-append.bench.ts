/**
 * The public log's append throughput with batching (issue 9, point 8), beside the store's own floor
 * measured in the same run (bench/log-store.bench.ts measureLogStore: the store's whole part of an
 * append, with nothing else). Goal: sequencing at >= 50% of the floor.
 *
 * The log is a real `log init` directory on SQLite, served in this process (startLogServer) with the
 * default 1 s interval. N entries of B bytes, signed beforehand by 4 enrolled submitters, are added
 * in two ways, each timed from the first add to the last answer (every answer carries its inclusion
 * proof in a published checkpoint):
 *   - in-process: Sequencer.add, all at once (what the HTTP route calls);
 *   - over HTTP: POST /add from this process, 256 in flight (the client shares the 2 cores);
 *   - sequencing alone: the N entries already taken (pending in the store, as POST /add leaves them),
 *     timed from the log's start to the last published checkpoint, batches back to back (10 ms
 *     interval): what the goal compares with the store floor. The adds above also pay for
 *     each entry's Ed25519 check and its inclusion proof, which the floor does not.
 *
 *   BENCH_LOG_APPEND_N=10000     entries per run (at most 10,000: the sequencer's waiting limit)
 *   BENCH_LOG_APPEND_BYTES=512   payload bytes per entry
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from '../src/crypto/random.js';
import { generateIdentity } from '../src/identity.js';
import { createEntry } from '../src/log/entry.js';
import { leafHash } from '../src/log/merkle.js';
import { addEntry } from '../src/log/server/client.js';
import { initLog, openLogStoreOf, startLogServer } from '../src/log/server/serve.js';
import { measureLogStore } from './log-store.bench.js';

const N = Math.min(10_000, Number(process.env.BENCH_LOG_APPEND_N ?? 10_000));
const BYTES = Number(process.env.BENCH_LOG_APPEND_BYTES ?? 512);
const IN_FLIGHT = 256;

/** A fresh log with 4 enrolled submitters and N entries signed by them (not added). */
async function freshLog(dir: string): Promise<Uint8Array[]> {
  await initLog(dir, { origin: 'bench.lifeboat.invalid/log' });
  const subs = Array.from({ length: 4 }, () => generateIdentity('operator'));
  const { store } = await openLogStoreOf(dir);
  try {
    for (const [i, s] of subs.entries()) {
      await store.enrolSubmitter({ name: `bench-${i}`, signingKey: s.signingPublicKey, boxKey: s.boxPublicKey, enrolledAt: Date.now() });
    }
  } finally {
    await store.close();
  }
  return Array.from({ length: N }, (_, i) => createEntry({ recordType: 'bench/v1', payload: randomBytes(BYTES) }, subs[i % subs.length]!));
}

/** Entries per second of sequencing alone: all N pending before the log starts. */
async function sequencingRate(dir: string): Promise<number> {
  const entries = await freshLog(dir);
  const { store } = await openLogStoreOf(dir);
  try {
    for (let i = 0; i < entries.length; i += 1000) {
      await store.addPendingBatch(entries.slice(i, i + 1000).map((bytes) => ({ hash: leafHash(bytes), bytes })), Date.now());
    }
  } finally {
    await store.close();
  }
  const t0 = performance.now();
  const log = await startLogServer({ dataDir: dir, intervalMs: 10 });
  try {
    while (log.sequencer.size < entries.length) await new Promise((r) => setTimeout(r, 5));
    return entries.length / ((performance.now() - t0) / 1000);
  } finally {
    await log.close();
  }
}

/** Entries per second through the running log; `viaHttp` posts them, else calls the sequencer. */
async function appendRate(dir: string, viaHttp: boolean): Promise<number> {
  const entries = await freshLog(dir);
  const log = await startLogServer({ dataDir: dir });
  try {
    const t0 = performance.now();
    if (viaHttp) {
      let next = 0;
      const worker = async () => {
        while (next < entries.length) await addEntry(log.url, entries[next++]!, { timeoutMs: 120_000 });
      };
      await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    } else {
      await Promise.all(entries.map((e) => log.sequencer.add(e)));
    }
    const s = (performance.now() - t0) / 1000;
    if (log.sequencer.size !== entries.length) throw new Error(`the log holds ${log.sequencer.size} of ${entries.length} entries`);
    return entries.length / s;
  } finally {
    await log.close();
  }
}

export async function benchLogAppend(): Promise<void> {
  console.log(`log append with batching, ${N.toLocaleString('en-US')} entries of ${BYTES} B payload, interval 1 s, SQLite (node ${process.version}, ${cpus().length} cpus)`);
  const root = mkdtempSync(join(tmpdir(), 'lifeboat-bench-log-append-'));
  try {
    const floor = (await measureLogStore(`sqlite:${join(root, 'floor.sqlite')}`, N, BYTES + 146, 100)).floor;
    const inProcess = await appendRate(join(root, 'a'), false);
    const http = await appendRate(join(root, 'b'), true);
    const sequencing = await sequencingRate(join(root, 'c'));
    const line = (what: string, rate: number) =>
      console.log(`  ${what.padEnd(40)} ${Math.round(rate).toLocaleString('en-US').padStart(8)} entries/s   ${((100 * rate) / floor).toFixed(0).padStart(4)}% of the store floor (goal >= 50%)`);
    console.log(`  ${'store floor (same run)'.padEnd(40)} ${Math.round(floor).toLocaleString('en-US').padStart(8)} entries/s`);
    line('sequencing alone (pending -> published)', sequencing);
    line('append, in-process (Sequencer.add)', inProcess);
    line(`append, POST /add (${IN_FLIGHT} in flight)`, http);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.env.BENCH_LOG_APPEND_ONLY === 'sequencing') console.log(Math.round(await sequencingRate(join(mkdtempSync(join(tmpdir(), 'lb-seq-')), 'l'))));
  else await benchLogAppend();
}
