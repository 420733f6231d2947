/**
 * The restore step of bench/scale.bench.ts (`DIR URL STREAM`): a restore from the service (login with
 * production OPAQUE stretching, the compaction streamed into the importer, every share checked, a node
 * written into DIR/restored), as `node restore --backup-server` runs it. The bench bundles this file
 * as the CLI is bundled, in chunks (the share checks' worker threads import the chunk of
 * src/keynode/restore-verify.ts), so the RSS it prints is the restore's, not tsx's. Prints one JSON
 * line (./scale-step.ts).
 */
import { join } from 'node:path';
import { restoreFromService } from '../src/backup/node-link.js';
import { args, benchSecrets, report, timed } from './scale-step.js';

const [dir, url, stream] = args;
const s = benchSecrets(dir);
const t = await timed(() => restoreFromService({ server: url, account: s.account, password: s.password, stream, dir: join(dir, 'restored') }));
report({ seconds: t.seconds, keys: t.result.keys });
