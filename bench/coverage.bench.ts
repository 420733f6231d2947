/**
 * Coverage of 100,000 keys across three key nodes and a backup service (docs/coverage.md; DESIGN.md
 * "Performance targets"): `lifeboat coverage`'s collection and report, every part asked in pages
 * (GET /v1/coverage, 5,000 keys a page; GET /v1/monitor/streams), against real `node serve` and
 * `backup-server serve` processes on loopback. Printed beside the floor: a plain listing of the same
 * keys from the three stores (listKeys in pages of 5,000, in this process). Goal: under 5 s.
 * The keys are synthetic rows (random public keys and share ciphertext): coverage reads public
 * columns only, so nothing is decrypted either way. COVERAGE_BENCH_KEYS changes the count.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addMonitorToken } from '../src/backup/monitor.js';
import { collectFleet } from '../src/coverage/collect.js';
import { emptyFleet } from '../src/coverage/fleet.js';
import { buildReport } from '../src/coverage/report.js';
import { randomBytes } from '../src/crypto/random.js';
import { apiKeyRecordFromToken, newApiKey } from '../src/keynode/apikeys.js';
import { initNode, loadNodeConfig, nodePaths } from '../src/keynode/runtime.js';
import { openKeyNodeStore } from '../src/keynode/store/index.js';
import type { KeyRecord } from '../src/keynode/store/types.js';
import { startServer, stopAll } from '../src/drill/proc.js';
import { toHex } from '../src/util/bytes.js';

const N = Number(process.env.COVERAGE_BENCH_KEYS ?? 100_000);
const NODES = 3;
const PAGE = 5000;

function keyRows(node: number, groupKeys: Uint8Array[]): KeyRecord[] {
  const identifier = toHex(new Uint8Array(32).fill(0).map((_, i) => (i === 0 ? node + 1 : 0)));
  const share = randomBytes(96);
  return groupKeys.map((g, i) => ({ keyId: `key_${i.toString(16).padStart(8, '0')}`, curve: 'ed25519', threshold: 2, maxSigners: NODES, identifier, groupPublicKey: g, publicPackage: g, encryptedShare: share, status: 'active', origin: 'dkg', createdAt: 1_700_000_000_000 + i, tenant: 'default' }));
}

export async function benchCoverage(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'lifeboat-bench-coverage-'));
  try {
    const operator = newApiKey('operator', 'bench').token;
    const groupKeys = Array.from({ length: N }, () => randomBytes(32));
    const stores: string[] = [];
    for (let n = 0; n < NODES; n++) {
      const dir = join(root, `node${n + 1}`);
      await initNode(dir);
      const url = loadNodeConfig(nodePaths(dir)).store;
      stores.push(url);
      const store = await openKeyNodeStore(url);
      try {
        await store.importSnapshot({ keys: keyRows(n, groupKeys), apiKeys: [apiKeyRecordFromToken(operator, 'operator', 'bench')], meta: [] });
      } finally {
        await store.close();
      }
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

    const backupDir = join(root, 'backup');
    const svc = await startServer(['backup-server', 'serve', '--data-dir', backupDir, '--listen', '127.0.0.1:0', '--log-level', 'silent', '--json']);
    const monitor = addMonitorToken(backupDir);
    const nodes = await Promise.all(Array.from({ length: NODES }, (_, n) => startServer(['node', 'serve', '--data-dir', join(root, `node${n + 1}`), '--listen', '127.0.0.1:0', '--log-level', 'silent', '--json'])));
    const tokenFile = join(root, 'operator.token');
    writeFileSync(tokenFile, operator, { mode: 0o600 });
    const monitorFile = join(root, 'monitor.token');
    writeFileSync(monitorFile, monitor, { mode: 0o600 });
    const fleet = emptyFleet();
    fleet.timeout_ms = 60_000;
    fleet.nodes = nodes.map((s, n) => ({ name: `node${n + 1}`, url: s.url, credential: { file: tokenFile } }));
    fleet.backup_services = [{ name: 'backup', url: svc.url, credential: { file: monitorFile } }];
    const t1 = performance.now();
    const collected = await collectFleet(fleet, { pageSize: PAGE });
    const t2 = performance.now();
    const report = buildReport(fleet, collected);
    if (process.env.COVERAGE_BENCH_SPLIT) console.log(`collect ${(t2 - t1).toFixed(0)} ms, report ${(performance.now() - t2).toFixed(0)} ms`);
    const ms = performance.now() - t1;
    if (report.summary.keys !== N || report.summary.parts_unknown !== 0) throw new Error(`coverage found ${report.summary.keys} keys, ${report.summary.parts_unknown} parts unknown`);
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
