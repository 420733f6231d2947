/**
 * The compaction step of bench/scale.bench.ts (`DIR URL STREAM`): the agent's streamed compaction of
 * DIR/store.sqlite to the service, as a node runs it. The bench bundles this file as the CLI is bundled,
 * so the RSS it prints is the compaction's, not tsx's. Prints one JSON line (./scale-step.ts).
 */
import { BackupAgent, setRestoredBackupState } from '../src/backup/agent.js';
import { BackupClient } from '../src/backup/client.js';
import { clientTransport } from '../src/backup/node-link.js';
import { openSqliteStore } from '../src/keynode/store/sqlite.js';
import { args, benchSecrets, report, timed } from './scale-step.js';

const [dir, url, stream] = args;
const { account, backupKey, secrets } = benchSecrets(dir);
const store = await openSqliteStore(`${dir}/store.sqlite`);
const client = new BackupClient({ url });
await client.session(account, backupKey);
const head = await client.getStream(stream);
if (!head) throw new Error(`no stream ${stream}`);
// The node's sealed head is the stream's, nothing is unsealed: the compaction is exact (a base for a point-in-time restore).
await store.transaction((tx) => setRestoredBackupState(tx, { seq: head.headSeq, hash: head.headHash }, 0, Date.now()));
const agent = new BackupAgent({ store, backupKey, secrets: () => secrets, stream, transport: clientTransport(client, account, backupKey) });
const t = await timed(() => agent.compact({ seq: head.headSeq, hash: head.headHash }));
await store.close();
report({ seconds: t.seconds, bytes: t.result.bytes, keys: t.result.keys });
