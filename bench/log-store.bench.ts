/**
 * The public log's sequencing store on its own (src/log/store/): the "store floor" that the log's
 * append benchmark compares its throughput against (DESIGN.md: sequencing at >= 50% of it). Per
 * backend, for N entries of B bytes:
 *   - addPending, one call at a time (each its own commit: on SQLite one fsync per entry);
 *   - addPendingBatch of 1,000 entries per call (one commit per call), then listPending, commitBatch
 *     and listUnpublished of all N at once, and markPublished;
 *   - addPendingBatch of 10,000 entries per call, into the store that now holds N entries;
 *   - the floor: entries/s through the store's whole part of an append (added in batches of 1,000,
 *     listed, committed, listed for tiles, published), which no log on this store can beat.
 * SQLite is a file in a temp directory (WAL, synchronous=FULL, as `log serve` opens it). PostgreSQL is
 * $LIFEBOAT_BENCH_POSTGRES_URL (an empty database, a role that may create tables), or else a throwaway cluster
 * (test/helpers/postgres.ts; fsync off, so its figures are above a durable server's), or skipped when
 * PostgreSQL is not installed.
 *
 *   BENCH_LOG_STORE_N=100000   entries per run
 *   BENCH_LOG_STORE_BYTES=512  bytes per entry
 *   BENCH_LOG_STORE_SINGLE=2000 entries added one call at a time
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from '../src/crypto/random.js';
import { leafHash } from '../src/log/merkle.js';
import { type EntryStatus, openLogStore } from '../src/log/store/index.js';

const N = Number(process.env.BENCH_LOG_STORE_N ?? 100_000);
const BYTES = Number(process.env.BENCH_LOG_STORE_BYTES ?? 512);
const SINGLE = Number(process.env.BENCH_LOG_STORE_SINGLE ?? 2000);

/** Entries per second of each step, and the floor (see the top of this file). */
export interface LogStoreFigures {
  addOne: number;
  addBatch1k: number;
  addBatch10k: number;
  listPending: number;
  commitBatch: number;
  listUnpublished: number;
  markPublished: number;
  floor: number;
}

interface Entry {
  hash: Uint8Array;
  bytes: Uint8Array;
}

function makeEntries(n: number, size: number): Entry[] {
  return Array.from({ length: n }, () => {
    const bytes = randomBytes(size);
    return { hash: leafHash(bytes), bytes };
  });
}

async function seconds(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

const pendingIds = (statuses: EntryStatus[]): number[] =>
  statuses.map((s) => {
    if (s.state !== 'pending') throw new Error(`expected a new pending entry, got ${JSON.stringify(s)}`);
    return s.id;
  });

/**
 * Measures the store at `url` (an empty store: a fresh file or database) with `n` entries of `size`
 * bytes, `single` of them added one call at a time. Returns entries per second of each step and the
 * floor. Throws what the store throws.
 */
export async function measureLogStore(url: string, n = N, size = BYTES, single = SINGLE): Promise<LogStoreFigures> {
  const store = await openLogStore(url);
  try {
    const now = () => Date.now();
    await store.commitBatch({ oldSize: 0, ids: [], root: new Uint8Array(32), checkpoint: 'bench\n0\n\n', now: now() });
    let size0 = 0;
    /** Lists and commits everything pending, then publishes it; returns the three timings. */
    const sequenceAll = async (count: number) => {
      let ids: number[] = [];
      const tList = await seconds(async () => (ids = (await store.listPending(count)).map((p) => p.id)));
      if (ids.length !== count) throw new Error(`listPending gave ${ids.length} of ${count}`);
      const tCommit = await seconds(() => store.commitBatch({ oldSize: size0, ids, root: randomBytes(32), checkpoint: `bench\n${size0 + count}\n\n`, now: now() }));
      let held = 0;
      const tUnpub = await seconds(async () => (held = (await store.listUnpublished(size0, count)).length));
      if (held !== count) throw new Error(`listUnpublished gave ${held} of ${count}`);
      size0 += count;
      const tPub = await seconds(() => store.markPublished(size0, now()));
      return { tList, tCommit, tUnpub, tPub };
    };

    const one = makeEntries(single, size);
    const tOne = await seconds(async () => {
      for (const e of one) await store.addPending(e.hash, e.bytes, now());
    });
    await sequenceAll(single);

    const add = async (entries: Entry[], per: number) =>
      seconds(async () => {
        for (let i = 0; i < entries.length; i += per) pendingIds(await store.addPendingBatch(entries.slice(i, i + per), now()));
      });
    // The floor's run first, on a store of `single` entries; the larger batches then on one of n more.
    const t1k = await add(makeEntries(n, size), 1000);
    const { tList, tCommit, tUnpub, tPub } = await sequenceAll(n);
    const t10k = await add(makeEntries(n, size), 10_000);
    return {
      addOne: single / tOne,
      addBatch1k: n / t1k,
      addBatch10k: n / t10k,
      listPending: n / tList,
      commitBatch: n / tCommit,
      listUnpublished: n / tUnpub,
      markPublished: n / tPub,
      floor: n / (t1k + tList + tCommit + tUnpub + tPub),
    };
  } finally {
    await store.close();
  }
}

const fmt = (x: number) => Math.round(x).toLocaleString('en-US').padStart(10);

function print(label: string, f: LogStoreFigures): void {
  const line = (what: string, rate: number, note = '') => console.log(`  ${label.padEnd(10)} ${what.padEnd(44)} ${fmt(rate)} entries/s${note}`);
  line(`addPending, one call at a time (${SINGLE.toLocaleString('en-US')})`, f.addOne);
  line('addPendingBatch, 1,000 per call', f.addBatch1k);
  line('addPendingBatch, 10,000 per call', f.addBatch10k);
  line(`listPending, ${N.toLocaleString('en-US')} at once`, f.listPending);
  line(`commitBatch, ${N.toLocaleString('en-US')} at once`, f.commitBatch);
  line(`listUnpublished, ${N.toLocaleString('en-US')} at once`, f.listUnpublished);
  line('markPublished', f.markPublished);
  line('store floor (add by 1,000 .. publish)', f.floor, '   the log append benchmark compares with this');
}

/** Runs the bench on SQLite and, when available, PostgreSQL, and prints one line per figure. */
export async function benchLogStore(): Promise<void> {
  console.log(`log sequencing store, ${N.toLocaleString('en-US')} entries of ${BYTES} B (node ${process.version}, ${cpus().length} cpus)`);
  const dir = mkdtempSync(join(tmpdir(), 'lifeboat-bench-log-store-'));
  try {
    print('sqlite', await measureLogStore(`sqlite:${join(dir, 'log.sqlite')}`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const external = process.env.LIFEBOAT_BENCH_POSTGRES_URL;
  if (external) {
    print('postgres', await measureLogStore(external));
    return;
  }
  const { postgresSkipReason, startTestPostgres } = await import('../test/helpers/postgres.js');
  const skip = postgresSkipReason();
  if (skip !== false) {
    console.log(`  postgres   skipped: ${skip}`);
    return;
  }
  const pg = await startTestPostgres();
  try {
    print('postgres', await measureLogStore(pg.url));
    console.log('  postgres   (a throwaway cluster with fsync off; set LIFEBOAT_BENCH_POSTGRES_URL for a real server)');
  } finally {
    await pg.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchLogStore();
