/**
 * The backup service (docs/backup.md), measured against its floors in the same run:
 *   - log ingest: entries per second from one client to the service over loopback HTTP,  batched (1000
 *     per request by default) and one per request, beside the raw insert rate of the same rows into the same kind
 *     of store in one transaction per 10,000 (the floor; target >= 80% of it, issue 17);
 *   - restore from the service (login with the production OPAQUE stretching, session, compaction and
 *     the entries after it, chain check, share checks, node written) for 10,000 and 100,000 key shares
 *     (the compaction streamed, LBBC v2),
 *     beside the floor: the node store's raw import of the same rows.
 *
 *   BENCH_BACKUP_INGEST=20000   entries for the batched ingest
 *   BENCH_BACKUP_N=10000,100000 restore sizes
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeChange } from '../src/backup/changes.js';
import { CompactionWriter } from '../src/backup/compaction.js';
import { BackupClient } from '../src/backup/client.js';
import { hashBlob, parseEntryHeader, sealEntry, ZERO_HASH } from '../src/backup/format.js';
import { restoreFromService } from '../src/backup/node-link.js';
import { runCli, startServer } from '../src/drill/proc.js';
import { openBackupStore } from '../src/backup/store/index.js';
import type { EntryRecord } from '../src/backup/store/types.js';
import { randomBytes } from '../src/crypto/random.js';
import { openSqliteStore } from '../src/keynode/store/sqlite.js';
import type { KeyRecord } from '../src/keynode/store/types.js';
import { fixtures, STORAGE_KEY } from './restore.js';

const INGEST = Number(process.env.BENCH_BACKUP_INGEST ?? 20_000);
const SINGLE = Math.max(1, Math.floor(INGEST / 10));
/** Entries per request when batching (the agent's batch_entries default). */
const BATCH = Number(process.env.BENCH_BACKUP_BATCH ?? 1000);
const SIZES = (process.env.BENCH_BACKUP_N ?? '10000,100000').split(',').map(Number);
const PASSWORD = 'bench password, long enough';

function fakeKey(i: number): KeyRecord {
  return {
    keyId: `key_${i.toString().padStart(12, '0')}`,
    curve: 'ed25519',
    threshold: 2,
    maxSigners: 3,
    identifier: '01',
    groupPublicKey: randomBytes(32),
    publicPackage: randomBytes(400),
    encryptedShare: randomBytes(120),
    status: 'active',
    origin: 'dkg',
    createdAt: Date.now(),
    tenant: 'default',
  };
}

/** Seals `changes` as consecutive entries of `stream` from seq 1. */
function chain(backupKey: Uint8Array, stream: string, changes: Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let prev: Uint8Array = ZERO_HASH;
  for (const [i, c] of changes.entries()) {
    const e = sealEntry(backupKey, { stream, seq: i + 1, prev }, c);
    out.push(e);
    prev = hashBlob(e);
  }
  return out;
}

async function seconds(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

export async function benchBackup(): Promise<void> {
  console.log(`backup service (a backup-server serve process) over loopback HTTP, sqlite stores (node ${process.version}, ${cpus().length} cpus)`);
  const dir = mkdtempSync(join(tmpdir(), 'lifeboat-bench-backup-'));
  // The service in its own process (`backup-server serve`), as in production; the client here.
  const serviceDir = join(dir, 'service');
  const added = await runCli(['backup-server', 'account', 'add', 'bench', '--data-dir', serviceDir, '--json']);
  if (added.code !== 0) throw new Error(`account add failed: ${added.stderr}`);
  const invite = (JSON.parse(added.stdout) as { invite: string }).invite;
  const server = await startServer(['backup-server', 'serve', '--listen', '127.0.0.1:0', '--data-dir', serviceDir, '--log-level', 'silent', '--json']);
  try {
    const client = new BackupClient({ url: server.url });
    const backupKey = randomBytes(32);
    await client.register('bench', invite, PASSWORD, backupKey);
    await client.session('bench', backupKey);

    // --- ingest ---
    const changes = Array.from({ length: INGEST }, (_, i) => encodeChange({ op: 'key_put', key: fakeKey(i) }));
    const batched = chain(backupKey, 'ingest-batched', changes);
    const single = chain(backupKey, 'ingest-single', changes.slice(0, SINGLE));
    const floorRows = chain(backupKey, 'ingest-floor', changes);
    const tBatched = await seconds(async () => {
      for (let i = 0; i < batched.length; i += BATCH) await client.appendEntries('ingest-batched', batched.slice(i, i + BATCH));
    });
    const tSingle = await seconds(async () => {
      for (const e of single) await client.appendEntries('ingest-single', [e]);
    });
    const floorStore = await openBackupStore(`sqlite:${join(dir, 'floor.sqlite')}`);
    await floorStore.createAccount('bench', new Uint8Array(32), Date.now());
    const records: EntryRecord[] = floorRows.map((bytes) => {
      const h = parseEntryHeader(bytes);
      return { seq: h.seq, prevHash: h.link, hash: hashBlob(bytes), bytes };
    });
    const tFloor = await seconds(async () => {
      for (let i = 0; i < records.length; i += 10_000) await floorStore.appendEntries('bench', 'ingest-floor', records.slice(i, i + 10_000), Date.now());
    });
    await floorStore.close();
    // The same store work at the service's own batch size: whether committing per request is the gap.
    const batchStore = await openBackupStore(`sqlite:${join(dir, 'floor-batch.sqlite')}`);
    await batchStore.createAccount('bench', new Uint8Array(32), Date.now());
    const tFloorBatch = await seconds(async () => {
      for (let i = 0; i < records.length; i += BATCH) await batchStore.appendEntries('bench', 'ingest-floor', records.slice(i, i + BATCH), Date.now());
    });
    await batchStore.close();
    const entryBytes = Math.round(batched.reduce((s, e) => s + e.length, 0) / batched.length);
    const floorRate = INGEST / tFloor;
    console.log(`  store insert, 10,000 rows per transaction (floor)  ${fmt(floorRate).padStart(9)} entries/s   (${fmt(INGEST)} entries of ${entryBytes} B)`);
    console.log(`  store insert, ${fmt(BATCH).padStart(6)} rows per transaction           ${fmt(INGEST / tFloorBatch).padStart(9)} entries/s   (the service's batch; no parse, no hash)`);
    console.log(`  ingest over HTTP, ${String(BATCH).padStart(5)} entries per request        ${fmt(INGEST / tBatched).padStart(9)} entries/s   ${((INGEST / tBatched / floorRate) * 100).toFixed(0)}% of the floor (target >= 80%)`);
    console.log(`  ingest over HTTP, 1 entry per request              ${fmt(SINGLE / tSingle).padStart(9)} entries/s   ${((SINGLE / tSingle / floorRate) * 100).toFixed(1)}% of the floor (${fmt(SINGLE)} entries)`);

    // --- restore ---
    const secrets = { identity: randomBytes(64), storageKey: STORAGE_KEY, exportKey: randomBytes(32), wrappingKey: randomBytes(32) };
    const all = await fixtures(Math.max(...SIZES));
    for (const n of SIZES) {
      const keys = all.slice(0, n);
      const stream = `restore-${n}`;
      // A compaction of 99% of the keys, and 1% in entries after it: what a running agent leaves.
      const inCompaction = Math.floor(n * 0.99);
      const head = [encodeChange({ op: 'secrets', secrets }), ...keys.slice(0, inCompaction).map((key) => encodeChange({ op: 'key_put', key }))];
      const tail = keys.slice(inCompaction).map((key) => encodeChange({ op: 'key_put', key }));
      const entries = chain(backupKey, stream, [...head, ...tail]);
      for (let i = 0; i < entries.length; i += 2000) await client.appendEntries(stream, entries.slice(i, i + 2000));
      // A streamed compaction (LBBC v2), as the agent writes one, gathered here to upload in one call.
      const parts: Uint8Array[] = [];
      const w = new CompactionWriter(backupKey, { stream, seq: head.length, head: hashBlob(entries[head.length - 1]!), createdAt: Date.now() }, (b) => parts.push(b.slice()));
      w.secrets(secrets);
      for (const key of [...keys.slice(0, inCompaction)].sort((x, y) => (x.keyId < y.keyId ? -1 : 1))) w.key(key);
      w.finish({ exact: true });
      const compaction = new Uint8Array(Buffer.concat(parts));
      await client.uploadCompaction(stream, head.length, hashBlob(compaction), compaction);

      const floorDir = mkdtempSync(join(dir, 'floor-'));
      const nodeStore = await openSqliteStore(join(floorDir, 'store.sqlite'));
      const tImport = await seconds(() => nodeStore.importSnapshot({ keys, apiKeys: [], meta: [] }));
      await nodeStore.close();
      const target = join(dir, `restored-${n}`);
      let keysRestored = 0;
      const tRestore = await seconds(async () => {
        keysRestored = (await restoreFromService({ server: server.url, account: 'bench', password: PASSWORD, stream, dir: target })).keys;
      });
      if (keysRestored !== n) throw new Error(`restored ${keysRestored} keys, expected ${n}`);
      console.log(`  node store import of ${fmt(n).padStart(7)} keys (floor)           ${tImport.toFixed(2).padStart(7)} s`);
      console.log(
        `  restore of ${fmt(n).padStart(7)} keys from the service            ${tRestore.toFixed(2).padStart(7)} s   ${(tRestore / tImport).toFixed(1)}x the floor; compaction ${(compaction.length / 1e6).toFixed(1)} MB + ${tail.length} entries${n >= 100_000 ? `; target <= 30 s: ${tRestore <= 30 ? 'met' : 'NOT met'}` : ''}`,
      );
      rmSync(target, { recursive: true, force: true });
    }
    client.endSession();
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchBackup();
