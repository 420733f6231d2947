/** Runs every benchmark in sequence: `npm run bench`. One line per bench. */
import { benchShamir } from './shamir.js';

await benchShamir();
await (await import('./keynode.js')).benchKeynode();
await (await import('./bulk-aead.js')).benchBulkAead();
await (await import('./restore.js')).benchRestore();
await (await import('./backup.js')).benchBackup();
await (await import('./log-store.bench.js')).benchLogStore();
await (await import('./log-append.bench.js')).benchLogAppend();
await (await import('./log-audit.bench.js')).benchLogAudit();
await (await import('./keyshare.js')).benchKeyshare();
await (await import('./keyshare-publish.bench.js')).benchKeysharePublish();
await (await import('./ers.bench.js')).benchErs();
await (await import('./cli-start.bench.js')).benchCliStart();
await (await import('./kit-start.bench.js')).benchKitStart();
await (await import('./coverage.bench.js')).benchCoverage();
