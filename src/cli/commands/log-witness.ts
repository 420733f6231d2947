/**
 * `lifeboat log witness init | key | add-log | logs | forks | serve`: co-signing logs' checkpoints
 * (docs/log.md, "Witnesses"). Results on stdout (JSON with --json), diagnostics on stderr; a fork
 * refused while serving is one JSON error line on stderr (`"err_type": "log_forked"`) per new pair, and a
 * proof that leads to another root one warning line per log per minute.
 */
import type { Command } from 'commander';
import { base64 } from '@scure/base';
import { checkpointLabel } from '../../log/checkpoint.js';
import { initWitness, loadWitnessInfo, resolveWitnessDir, witnessPaths } from '../../log/witness/datadir.js';
import { listForks } from '../../log/witness/forks.js';
import { startWitnessServer } from '../../log/witness/server.js';
import { addLog, heldCheckpoint, listLogs, originHash } from '../../log/witness/state.js';
import type { ForkReport, WitnessWarning } from '../../log/witness/witness.js';
import { createOutput, untilSignalled } from '../io.js';
import { MONITORING_HELP, logLevelOption, logStarted, serverLogger, shutDown } from '../server-log.js';
import { serverTls, TLS_CERT_HELP, TLS_KEY_HELP, type TlsOpts } from '../tls-options.js';

const DIR_HELP = 'witness data directory (default: $LIFEBOAT_WITNESS_DIR or ./lifeboat-witness)';

interface DirOpts {
  dataDir?: string;
  json?: boolean;
}

function init(o: DirOpts & { name: string }): void {
  const dir = resolveWitnessDir(o.dataDir);
  const w = initWitness(dir, o.name);
  const out = createOutput();
  if (o.json) return out.json({ name: w.name, vkey: w.vkey, data_dir: dir });
  out.out(w.vkey);
  out.info(`witness ${w.name} created in ${dir}; its key is in the directory's vault (back the directory up)`);
  out.info('give the verifier key above to each log operator (`lifeboat log witnesses add --vkey … --url …`)');
}

function key(o: DirOpts): void {
  const w = loadWitnessInfo(witnessPaths(resolveWitnessDir(o.dataDir)));
  const out = createOutput();
  if (o.json) return out.json({ name: w.name, vkey: w.vkey });
  out.out(w.vkey);
}

function addLogCommand(o: DirOpts & { vkey: string; origin?: string }): void {
  const paths = witnessPaths(resolveWitnessDir(o.dataDir));
  loadWitnessInfo(paths);
  const s = addLog(paths, o.vkey, o.origin);
  const out = createOutput();
  if (o.json) return out.json({ origin: s.origin, vkey: s.vkey, origin_hash: originHash(s.origin) });
  out.out(`witnessing ${s.origin}`);
  out.info('a running `log witness serve` takes it at the next request; the first checkpoint it co-signs starts its history');
}

function logs(o: DirOpts): void {
  const paths = witnessPaths(resolveWitnessDir(o.dataDir));
  loadWitnessInfo(paths);
  const rows = listLogs(paths).map((s) => {
    const c = heldCheckpoint(s);
    return { origin: s.origin, vkey: s.vkey, size: c?.size ?? null, root: c ? base64.encode(c.rootHash) : null, checkpoint: s.checkpoint, addedAt: s.addedAt, updatedAt: s.updatedAt };
  });
  const out = createOutput();
  if (o.json) return out.json(rows);
  if (rows.length === 0) out.info('no logs yet: add one with `lifeboat log witness add-log --vkey LOG_VKEY`');
  for (const r of rows) out.out(r.size === null ? `${r.origin}  no checkpoint yet` : `${r.origin}  size ${r.size}  root ${r.root}  at ${r.updatedAt}`);
}

function forks(o: DirOpts): void {
  const dir = resolveWitnessDir(o.dataDir);
  const paths = witnessPaths(dir);
  loadWitnessInfo(paths);
  const rows = listForks(paths);
  const out = createOutput();
  if (o.json) return out.json(rows);
  if (rows.length === 0) out.info('no fork refused so far');
  for (const r of rows) out.out(`${r.detectedAt}  ${r.kind}  offered ${r.offered}  held ${r.held}  ${r.file}`);
}

/** The error line of a refused fork: JSON on stderr, whatever the log level. */
function forkLine(f: ForkReport): string {
  return JSON.stringify({
    level: 'error',
    time: new Date().toISOString(),
    err_type: 'log_forked',
    kind: f.kind,
    origin: f.origin,
    held: checkpointLabel(f.held),
    offered: checkpointLabel(f.offered),
    evidence: f.evidence,
    message: f.message,
  });
}

/** The warning line of a proof that leads to another root (not a fork: see docs/log.md). */
function warningLine(w: WitnessWarning): string {
  return JSON.stringify({
    level: 'warn',
    time: new Date().toISOString(),
    err_type: w.kind === 'smaller_tree' ? 'smaller_tree' : 'consistency_proof_invalid',
    kind: w.kind,
    origin: w.origin,
    held: checkpointLabel(w.held),
    offered: checkpointLabel(w.offered),
    suppressed: w.suppressed,
    message: w.message,
  });
}

async function serve(o: TlsOpts & DirOpts & { listen: string; logLevel?: string }): Promise<void> {
  const tls = serverTls(o);
  // Listening for SIGTERM from the start: one sent as soon as the URL is printed still shuts down cleanly.
  const signalled = untilSignalled();
  const dir = resolveWitnessDir(o.dataDir);
  const server = await startWitnessServer({
    dir,
    listen: o.listen,
    tls,
    logger: serverLogger(o.logLevel),
    onFork: (f) => void process.stderr.write(`${forkLine(f)}\n`),
    onWarning: (w) => void process.stderr.write(`${warningLine(w)}\n`),
  });
  // One line first: supervisors and tests read it.
  process.stdout.write(o.json ? `${JSON.stringify({ url: server.url, name: server.info.name, vkey: server.info.vkey })}\n` : `listening on ${server.url}\n`);
  logStarted(server.app.log, 'log-witness', server.url, { name: server.info.name, vkey: server.info.vkey, data_dir: dir });
  const signal = await signalled;
  await shutDown(server.app.log, 'log-witness', { signal }, () => server.close());
}

export function registerLogWitnessCommands(log: Command): void {
  const w = log
    .command('witness')
    .description('run a witness: co-sign a log’s checkpoints only when they extend the last one it saw (C2SP tlog-witness)');
  w.command('init')
    .description('create a witness: its data directory and cosignature/v1 key (kept in the directory’s vault); prints its verifier key')
    .requiredOption('--name <name>', 'the witness’s key name, e.g. witness.example.org/w1 (no spaces or +)')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--json', 'print {"name", "vkey", "data_dir"}')
    .action(init);
  w.command('key')
    .description('print the witness’s verifier key (type 0x04), which logs and auditors configure')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--json', 'print {"name", "vkey"}')
    .action(key);
  w.command('add-log')
    .description('witness a log: its Ed25519 verifier key (printed by `lifeboat log init`); takes effect at once, also for a running serve')
    .requiredOption('--vkey <vkey>', 'the log’s verifier key, <name>+<key id>+<base64>')
    .option('--origin <origin>', 'the log’s origin line (default: the key’s name)')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--json', 'print {"origin", "vkey", "origin_hash"}')
    .action(addLogCommand);
  w.command('logs')
    .description('list the witnessed logs, each with the last checkpoint this witness verified and co-signed')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--json', 'print [{"origin", "vkey", "size", "root", "checkpoint", "added_at", "updated_at"}]')
    .action(logs);
  w.command('forks')
    .description('list the forks refused so far, with the evidence file that holds both signed checkpoints')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--json', 'print [{"file", "kind", "origin", "held", "offered", "detected_at"}]')
    .action(forks);
  w.command('serve')
    .description('serve POST /add-checkpoint (C2SP tlog-witness) until SIGTERM (first stdout line: listening on URL)')
    .option('--listen <host:port>', 'address to listen on (port 0 for any free port)', '127.0.0.1:7380')
    .option('--tls-cert <file>', TLS_CERT_HELP)
    .option('--tls-key <file>', TLS_KEY_HELP)
    .option('--data-dir <dir>', DIR_HELP)
    .addOption(logLevelOption('log level on stderr (fork and proof warning lines are always written)'))
    .addHelpText('after', MONITORING_HELP)
    .option('--json', 'print {"url", "name", "vkey"} as the first stdout line')
    .action(serve);
}
