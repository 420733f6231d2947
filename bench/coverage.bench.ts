/**
 * Coverage of 100,000 keys across three key nodes and a backup service (docs/coverage.md; DESIGN.md
 * "Performance targets"): `lifeboat coverage`'s collection and report, every part asked in pages
 * (GET /v1/coverage, 5,000 keys a page; GET /v1/monitor/streams), against real `node serve` and
 * `backup-server serve` processes on loopback. Printed beside the floor: a plain listing of the same
 * keys from the three stores (listKeys in pages of 5,000, in this process). Goal: under 5 s.
 * Each node streams to the backup service under its own account (set up as `node backup-setup` does,
 * before the keys are written, so the stream carries a few entries and its head is acknowledged), and
 * every key holds a backup channel record: the report computes every member's backup path against a
 * stream head the service answered. The keys are synthetic rows (random public keys and share
 * ciphertext) written straight into each SQLite store: coverage reads public columns only, so nothing
 * is decrypted either way. COVERAGE_BENCH_KEYS changes the count; COVERAGE_BENCH_SPLIT=1 prints the
 * collection and the report apart.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addMonitorToken } from '../src/backup/monitor.js';
import { collectFleet } from '../src/coverage/collect.js';
import { emptyFleet } from '../src/coverage/fleet.js';
import { buildReport } from '../src/coverage/report.js';
import { randomBytes } from '../src/crypto/random.js';
import { type ClientTuning, setupNodeBackup } from '../src/backup/node-link.js';
import { addBackupAccounts } from '../src/drill/backup-scenarios.js';
import { apiKeyRecordFromToken, newApiKey } from '../src/keynode/apikeys.js';
import { closeNode, initNode, openNode } from '../src/keynode/runtime.js';
import { openKeyNodeStore, parseStoreUrl } from '../src/keynode/store/index.js';
import { keyToRow } from '../src/keynode/store/records.js';
import type { KeyRecord } from '../src/keynode/store/types.js';
import { startServer, stopAll } from '../src/drill/proc.js';
import { toHex } from '../src/util/bytes.js';

const N = Number(process.env.COVERAGE_BENCH_KEYS ?? 100_000);
const NODES = 3;
const PAGE = 5000;
/** The cheapest OPAQUE stretching the service accepts: the bench's accounts guard nothing. */
const FAST: ClientTuning = { keyStretching: { 'argon2id-custom': { iterations: 1, memory: 256, parallelism: 1 } } };

function keyRows(node: number, groupKeys: Uint8Array[]): KeyRecord[] {
  const identifier = toHex(new Uint8Array(32).fill(0).map((_, i) => (i === 0 ? node + 1 : 0)));
  const share = randomBytes(96);
  return groupKeys.map((g, i) => ({ keyId: `key_${i.toString(16).padStart(8, '0')}`, curve: 'ed25519', threshold: 2, maxSigners: NODES, identifier, groupPublicKey: g, publicPackage: g, encryptedShare: share, status: 'active', origin: 'dkg', createdAt: 1_700_000_000_000 + i, tenant: 'default' }));
}

/** Writes the synthetic keys and a backup channel record (`{"seq"}`) per key straight into a node's SQLite file, unjournaled. */
function writeKeys(storeUrl: string, rows: KeyRecord[], seq: number): void {
  const parsed = parseStoreUrl(storeUrl);
  if (parsed.kind !== 'sqlite') throw new Error('the bench writes SQLite stores');
  const db = new Database(parsed.path);
  try {
    const cols = Object.keys(keyToRow(rows[0]!));
    const insertKey = db.prepare(`insert into keys (${cols.join(', ')}) values (${cols.map((c) => `@${c}`).join(', ')})`);
    const insertChannel = db.prepare("insert into key_channels (key_id, channel, epoch, detail, recorded_at) values (?, 'backup', 1, ?, ?)");
    const detail = JSON.stringify({ seq });
    db.transaction(() => {
      for (const k of rows) {
        const row = keyToRow(k) as unknown as Record<string, unknown>;
        for (const c of cols) if (row[c] instanceof Uint8Array) row[c] = Buffer.from(row[c] as Uint8Array);
        insertKey.run(row);
        insertChannel.run(k.keyId, detail, k.createdAt);
      }
    })();
  } finally {
    db.close();
  }
}

/** The CPU seconds (user + system) process `pid` used so far, from /proc (Linux); undefined elsewhere. */
function cpuSeconds(pid: number | undefined): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/** Polls a node's first coverage page until its backup stream is acknowledged to its sealed head; returns that head. */
async function ackedHead(url: string, token: string): Promise<number> {
  for (let i = 0; i < 300; i++) {
    const page = (await (await fetch(`${url}/v1/coverage?limit=1`, { headers: { authorization: `Bearer ${token}` } })).json()) as { node?: { backup?: { acked_seq: number; sealed_seq: number; unsealed: number } | null } };
    const b = page.node?.backup;
    if (b && b.unsealed === 0 && b.sealed_seq > 0 && b.acked_seq === b.sealed_seq) return b.acked_seq;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the node at ${url} did not get its backup stream acknowledged`);
}

export async function benchCoverage(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'lifeboat-bench-coverage-'));
  try {
    const operator = newApiKey('operator', 'bench').token;
    const groupKeys = Array.from({ length: N }, () => randomBytes(32));
    const backupDir = join(root, 'backup');
    const svc = await startServer(['backup-server', 'serve', '--data-dir', backupDir, '--listen', '127.0.0.1:0', '--log-level', 'silent', '--json']);
    const accounts = Array.from({ length: NODES }, (_, n) => `acct-node${n + 1}`);
    const invites = await addBackupAccounts({ dir: backupDir, url: svc.url, server: undefined }, accounts);
    const stores: string[] = [];
    for (let n = 0; n < NODES; n++) {
      const dir = join(root, `node${n + 1}`);
      await initNode(dir);
      const node = await openNode(dir);
      try {
        await node.store.insertApiKey(apiKeyRecordFromToken(operator, 'operator', 'bench'));
        await setupNodeBackup(node, { server: svc.url, account: accounts[n]!, invite: invites[n]!, password: 'bench password, not a secret', usableBeforeAck: false, tuning: FAST });
        stores.push(node.config.store);
      } finally {
        await closeNode(node);
      }
      // every key's backup entry at seq 1: at or below the head the service acknowledges
      writeKeys(stores[n]!, keyRows(n, groupKeys), 1);
    }
    // the floor: the same keys listed from the three stores, page by page
    const t0 = performance.now();
    let listed = 0;
    for (const url of stores) {
      const store = await openKeyNodeStore(url);
      try {
        let after: string | undefined;
        for (;;) {
          const page = await store.listKeys({ afterKeyId: after, limit: PAGE });
          listed += page.length;
          if (page.length < PAGE) break;
          after = page[page.length - 1]!.keyId;
        }
      } finally {
        await store.close();
      }
    }
    const floorMs = performance.now() - t0;

    const monitor = addMonitorToken(backupDir);
    const nodes = await Promise.all(Array.from({ length: NODES }, (_, n) => startServer(['node', 'serve', '--data-dir', join(root, `node${n + 1}`), '--listen', '127.0.0.1:0', '--log-level', 'silent', '--json'])));
    for (const s of nodes) await ackedHead(s.url, operator);
    const tokenFile = join(root, 'operator.token');
    writeFileSync(tokenFile, operator, { mode: 0o600 });
    const monitorFile = join(root, 'monitor.token');
    writeFileSync(monitorFile, monitor, { mode: 0o600 });
    const fleet = emptyFleet();
    fleet.timeout_ms = 60_000;
    fleet.nodes = nodes.map((s, n) => ({ name: `node${n + 1}`, url: s.url, credential: { file: tokenFile } }));
    fleet.backup_services = [{ name: 'backup', url: svc.url, credential: { file: monitorFile } }];
    const cpu0 = [...nodes.map((s) => cpuSeconds(s.child.pid)), process.cpuUsage()] as const;
    const t1 = performance.now();
    const collected = await collectFleet(fleet, { pageSize: PAGE });
    const t2 = performance.now();
    const report = buildReport(fleet, collected);
    const ms = performance.now() - t1;
    if (process.env.COVERAGE_BENCH_SPLIT) {
      // CPU seconds spent, whatever else shares the machine: the wall time on an idle 2-core machine is about their sum / 2
      const own = process.cpuUsage(cpu0[NODES] as NodeJS.CpuUsage);
      const nodeCpu = nodes.map((s, n) => (cpuSeconds(s.child.pid) ?? NaN) - ((cpu0[n] as number | undefined) ?? NaN));
      console.log(`collect ${(t2 - t1).toFixed(0)} ms, report ${(t1 + ms - t2).toFixed(0)} ms; CPU: coverage ${((own.user + own.system) / 1e6).toFixed(2)} s, nodes ${nodeCpu.map((x) => x.toFixed(2)).join(' + ')} s`);
    }
    if (report.summary.keys !== N || report.summary.parts_unknown !== 0 || report.summary.ok !== N) throw new Error(`coverage found ${report.summary.keys} keys, ${report.summary.ok} ok, ${report.summary.parts_unknown} parts unknown`);
    console.log(
      `coverage: ${N} keys over ${NODES} nodes + a backup service, pages of ${PAGE}: ${(ms / 1000).toFixed(2)} s (goal < 5 s: ${ms < 5000 ? 'met' : 'NOT met'}); ` +
        `floor, a plain listing of the same ${listed} rows from the three stores: ${(floorMs / 1000).toFixed(2)} s (${(ms / floorMs).toFixed(1)}x)`,
    );
    await stopAll('SIGTERM');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchCoverage();
