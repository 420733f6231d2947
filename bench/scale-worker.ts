/**
 * One measured step of bench/scale.bench.ts, in its own process so that its peak RSS is its own:
 *
 *   floor    DIR N DISTINCT        the node store's plain import of N keys (importSnapshot) into DIR/store.sqlite
 *
 * The compaction and restore steps are bench/scale-compact.ts and bench/scale-restore.ts (bundled by
 * the bench). Prints one JSON line (./scale-step.ts).
 */
import { join } from 'node:path';
import { openSqliteStore } from '../src/keynode/store/sqlite.js';
import { fixtureRecords } from './restore.js';
import { args, report, timed } from './scale-step.js';

const [mode, dir, a, b] = args;
let out: Record<string, unknown>;
if (mode === 'floor') {
  const record = await fixtureRecords(Number(b));
  const keys = Array.from({ length: Number(a) }, (_, i) => record(i));
  const store = await openSqliteStore(join(dir, 'store.sqlite'));
  const t = await timed(() => store.importSnapshot({ keys, apiKeys: [], meta: [] }));
  await store.close();
  out = { seconds: t.seconds };
} else {
  throw new Error(`unknown mode ${mode}`);
}
report(out);
