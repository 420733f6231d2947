/**
 * Runs every benchmark in sequence: `npm run bench`. One line per bench. `BENCH=name[,name]` runs only
 * those (names below, e.g. `BENCH=scale npm run bench`).
 */
const BENCHES: [string, () => Promise<void>][] = [
  ['shamir', async () => (await import('./shamir.js')).benchShamir()],
  ['keynode', async () => (await import('./keynode.js')).benchKeynode()],
  ['bulk-aead', async () => (await import('./bulk-aead.js')).benchBulkAead()],
  ['restore', async () => (await import('./restore.js')).benchRestore()],
  ['restore-import', async () => (await import('./restore-import.bench.js')).benchRestoreImport()],
  ['backup', async () => (await import('./backup.js')).benchBackup()],
  ['scale', async () => (await import('./scale.bench.js')).benchScale()],
  ['log-store', async () => (await import('./log-store.bench.js')).benchLogStore()],
  ['log-append', async () => (await import('./log-append.bench.js')).benchLogAppend()],
  ['log-audit', async () => (await import('./log-audit.bench.js')).benchLogAudit()],
  ['keyshare', async () => (await import('./keyshare.js')).benchKeyshare()],
  ['keyshare-publish', async () => (await import('./keyshare-publish.bench.js')).benchKeysharePublish()],
  ['ers', async () => (await import('./ers.bench.js')).benchErs()],
  ['cli-start', async () => (await import('./cli-start.bench.js')).benchCliStart()],
  ['kit-start', async () => (await import('./kit-start.bench.js')).benchKitStart()],
  ['coverage', async () => (await import('./coverage.bench.js')).benchCoverage()],
];

const only = process.env.BENCH ? process.env.BENCH.split(',').map((s) => s.trim()) : undefined;
const unknown = only?.filter((n) => !BENCHES.some(([name]) => name === n)) ?? [];
if (unknown.length > 0) throw new Error(`BENCH names no bench: ${unknown.join(', ')} (known: ${BENCHES.map(([n]) => n).join(', ')})`);
for (const [name, run] of BENCHES) if (!only || only.includes(name)) await run();
