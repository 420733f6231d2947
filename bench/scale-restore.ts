/**
 * The restore step of bench/scale.bench.ts (`DIR URL STREAM`): a restore from the service (login with
 * production OPAQUE stretching, the compaction streamed into the importer, every share checked, a node
 * written into DIR/restored), as `node restore --backup-server` runs it. MODE (the 4th argument):
 * `head` (default), `at:N` (a point-in-time restore to entry N, `--to-seq N`, into DIR/restored-at) or
 * `dry-run` (`--dry-run` to the head: every download and check, nothing written). The bench bundles this file
 * as the CLI is bundled, in chunks (the share checks' worker threads import the chunk of
 * src/keynode/restore-verify.ts), so the RSS it prints is the restore's, not tsx's. Prints one JSON
 * line (./scale-step.ts).
 */
import { join } from 'node:path';
import { restoreFromService } from '../src/backup/node-link.js';
import { args, benchSecrets, report, timed } from './scale-step.js';

const [dir, url, stream, mode = 'head'] = args;
const s = benchSecrets(dir);
const at = mode.startsWith('at:') ? { point: { seq: Number(mode.slice(3)) } } : {};
const dryRun = mode === 'dry-run';
const target = join(dir, at.point ? 'restored-at' : dryRun ? 'dry-run' : 'restored');
const t = await timed(() => restoreFromService({ server: url, account: s.account, password: s.password, stream, dir: target, ...at, dryRun }));
report({ seconds: t.seconds, keys: t.result.keys, head_seq: t.result.headSeq, streams_to: t.result.streamsTo });
