/**
 * One measured step of bench/scale.bench.ts, in its own process so that its peak RSS is its own:
 *
 *   floor    DIR N DISTINCT        the node store's plain import of N keys (importSnapshot) into DIR/store.sqlite
 *   restore  DIR URL STREAM        a restore from the service (login, compaction, checks, node written) into DIR/restored
 *
 * The compaction step is bench/scale-compact.ts (bundled by the bench). Prints one JSON line (./scale-step.ts).
 */
import { join } from 'node:path';
import { restoreFromService } from '../src/backup/node-link.js';
import { openSqliteStore } from '../src/keynode/store/sqlite.js';
import { fixtureRecords } from './restore.js';
import { args, benchSecrets, report, timed } from './scale-step.js';

const [mode, dir, a, b] = args;
const s = benchSecrets(dir);
let out: Record<string, unknown>;
if (mode === 'floor') {
  const record = await fixtureRecords(Number(b));
  const keys = Array.from({ length: Number(a) }, (_, i) => record(i));
  const store = await openSqliteStore(join(dir, 'store.sqlite'));
  const t = await timed(() => store.importSnapshot({ keys, apiKeys: [], meta: [] }));
  await store.close();
  out = { seconds: t.seconds };
} else if (mode === 'restore') {
  const t = await timed(() => restoreFromService({ server: a, account: s.account, password: s.password, stream: b, dir: join(dir, 'restored') }));
  out = { seconds: t.seconds, keys: t.result.keys };
} else {
  throw new Error(`unknown mode ${mode}`);
}
report(out);
