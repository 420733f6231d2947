/**
 * One measured step of bench/scale.bench.ts, in its own process so that its peak RSS is its own:
 *
 *   floor    DIR N DISTINCT        the node store's plain import of N keys (importSnapshot) into DIR/store.sqlite
 *   compact  DIR URL STREAM        the agent's compaction of DIR/store.sqlite, streamed to the service
 *   restore  DIR URL STREAM        a restore from the service (login, compaction, checks, node written) into DIR/restored
 *
 * The synthetic node keys and backup key are in DIR/../secrets.json (0600; nothing of value). Prints one
 * JSON line: {"seconds", "base_rss_mb" (before the step, modules loaded), "max_rss_mb" (peak), ...}.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BackupAgent } from '../src/backup/agent.js';
import { BackupClient } from '../src/backup/client.js';
import { clientTransport, restoreFromService } from '../src/backup/node-link.js';
import { openSqliteStore } from '../src/keynode/store/sqlite.js';
import { fromHex } from '../src/util/bytes.js';
import { fixtureRecords } from './restore.js';

interface BenchSecrets {
  account: string;
  password: string;
  backupKey: string;
  identity: string;
  storageKey: string;
  exportKey: string;
  wrappingKey: string;
}

const [mode, dir, a, b] = process.argv.slice(2) as [string, string, string, string];
const s = JSON.parse(readFileSync(join(dirname(dir), 'secrets.json'), 'utf8')) as BenchSecrets;
const backupKey = fromHex(s.backupKey, 'backup key', 32);
const secrets = { identity: fromHex(s.identity, 'identity', 64), storageKey: fromHex(s.storageKey, 'storage key', 32), exportKey: fromHex(s.exportKey, 'export key', 32), wrappingKey: fromHex(s.wrappingKey, 'wrapping key', 32) };

async function timed<T>(fn: () => Promise<T>): Promise<{ seconds: number; result: T }> {
  const t0 = performance.now();
  const result = await fn();
  return { seconds: (performance.now() - t0) / 1000, result };
}

// What the process holds before its step (node, the modules, tsx): printed beside the peak.
const baseRss = process.memoryUsage().rss / 2 ** 20;
let out: Record<string, unknown>;
if (mode === 'floor') {
  const record = await fixtureRecords(Number(b));
  const keys = Array.from({ length: Number(a) }, (_, i) => record(i));
  const store = await openSqliteStore(join(dir, 'store.sqlite'));
  const t = await timed(() => store.importSnapshot({ keys, apiKeys: [], meta: [] }));
  await store.close();
  out = { seconds: t.seconds };
} else if (mode === 'compact') {
  const store = await openSqliteStore(join(dir, 'store.sqlite'));
  const client = new BackupClient({ url: a });
  await client.session(s.account, backupKey);
  const head = await client.getStream(b);
  if (!head) throw new Error(`no stream ${b}`);
  const agent = new BackupAgent({ store, backupKey, secrets: () => secrets, stream: b, transport: clientTransport(client, s.account, backupKey) });
  const t = await timed(() => agent.compact({ seq: head.headSeq, hash: head.headHash }));
  await store.close();
  out = { seconds: t.seconds, bytes: t.result.bytes, keys: t.result.keys };
} else if (mode === 'restore') {
  const t = await timed(() => restoreFromService({ server: a, account: s.account, password: s.password, stream: b, dir: join(dir, 'restored') }));
  out = { seconds: t.seconds, keys: t.result.keys };
} else {
  throw new Error(`unknown mode ${mode}`);
}
console.log(JSON.stringify({ ...out, base_rss_mb: baseRss, max_rss_mb: process.resourceUsage().maxRSS / 1024 }));
