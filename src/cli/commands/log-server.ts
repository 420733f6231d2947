/**
 * `lifeboat log init | key | serve | enrol | submitters | revoke | witnesses add|list | identity new |
 * add`: running a log, and submitting to one (docs/log.md, "Running a log"). Results on stdout (JSON
 * with --json), diagnostics on stderr.
 */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { LifeboatError, NotFoundError, UsageError } from '../../errors.js';
import { encodePublicIdentity, generateIdentity, loadIdentity, parsePublicIdentity, saveIdentity } from '../../identity.js';
import { toB64 } from '../../util/bytes.js';
import { writeFileAtomic } from '../../util/files.js';
import { createEntry } from '../../log/entry.js';
import { encodeInclusionDoc } from '../../log/inclusion.js';
import { parseVerifierKey } from '../../log/note.js';
import { addEntryVerified } from '../../log/server/client.js';
import { checkWitness, effectiveQuorum, loadLogConfig, logPaths, parseInterval, resolveLogDir, saveLogConfig } from '../../log/server/config.js';
import { witnessExists } from '../../log/server/errors.js';
import { initLog, logKey, openLogStoreOf, startLogServer } from '../../log/server/serve.js';
import type { LogStore } from '../../log/store/types.js';
import { redactStoreUrl } from '../../log/store/index.js';
import { readStdin } from '../input.js';
import { createOutput, untilSignalled } from '../io.js';
import { MONITORING_HELP, logLevelOption, logStarted, serverLogger, ServerWarnings, shutDown } from '../server-log.js';
import { intIn } from '../options.js';
import { serverTls, TLS_CERT_HELP, TLS_KEY_HELP, type TlsOpts } from '../tls-options.js';

const DIR_HELP = 'the log’s data directory (default: $LIFEBOAT_LOG_DIR or ./lifeboat-log)';

interface DirOpts {
  dataDir?: string;
  json?: boolean;
}

const intervalArg = (v: string): number => {
  try {
    return parseInterval(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
};

async function withStore<T>(o: DirOpts, fn: (store: LogStore) => Promise<T>): Promise<T> {
  const { store } = await openLogStoreOf(resolveLogDir(o.dataDir));
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

async function init(o: DirOpts & { origin: string; store?: string; interval?: number; maxEntryBytes?: number }): Promise<void> {
  const dir = resolveLogDir(o.dataDir);
  const r = await initLog(dir, { origin: o.origin, store: o.store, intervalMs: o.interval, maxEntryBytes: o.maxEntryBytes });
  const out = createOutput();
  if (o.json) return out.json({ origin: r.origin, verifier_key: r.verifierKey, data_dir: dir, store: redactStoreUrl(r.store) });
  out.out(`origin        ${r.origin}`);
  out.out(`verifier key  ${r.verifierKey}`);
  out.info(`log created in ${dir} (store ${redactStoreUrl(r.store)}); give the verifier key to auditors and witnesses; start it with \`lifeboat log serve\``);
}

function key(o: DirOpts): void {
  const r = logKey(resolveLogDir(o.dataDir));
  const out = createOutput();
  if (o.json) return out.json({ origin: r.origin, verifier_key: r.verifierKey });
  out.out(`origin        ${r.origin}`);
  out.out(`verifier key  ${r.verifierKey}`);
}

async function serve(o: TlsOpts & DirOpts & { listen: string; interval?: number; logLevel?: string }): Promise<void> {
  const tls = serverTls(o);
  const logger = serverLogger(o.logLevel);
  // Listening for SIGTERM from the start: one sent as soon as the URL is printed still shuts down cleanly.
  const signalled = untilSignalled();
  const warnings = new ServerWarnings(createOutput().warn);
  const dataDir = resolveLogDir(o.dataDir);
  const log = await startLogServer({ dataDir, listen: o.listen, tls, intervalMs: o.interval, logger, warn: warnings.warn });
  warnings.attach(log.app.log);
  // One line first: supervisors and tests read it.
  process.stdout.write(o.json ? `${JSON.stringify({ url: log.url, origin: log.origin, verifier_key: log.verifierKey, tree_size: log.sequencer.size })}\n` : `listening on ${log.url}\n`);
  logStarted(log.app.log, 'log', log.url, {
    origin: log.origin,
    tree_size: log.sequencer.size,
    witnesses: log.config.witnesses.length,
    data_dir: dataDir,
    store: redactStoreUrl(log.config.store ?? 'sqlite:<data-dir>/log.sqlite'),
  });
  const stopped = await Promise.race([signalled.then((signal) => ({ signal })), log.halted.then((error) => ({ error }))]);
  await shutDown(log.app.log, 'log', stopped, () => log.close());
  // A refusal for safety stops the server (exit 3): a supervisor restarting it gets the same refusal at start.
  if ('error' in stopped) throw stopped.error;
}

async function enrol(o: DirOpts & { name: string; identity: string }): Promise<void> {
  const id = parsePublicIdentity(o.identity, '--identity');
  await withStore(o, (s) => s.enrolSubmitter({ name: o.name, signingKey: id.signingPublicKey, boxKey: id.boxPublicKey, enrolledAt: Date.now() }));
  const out = createOutput();
  if (o.json) return out.json({ name: o.name, identity: encodePublicIdentity(id), enrolled: true });
  out.out(`enrolled ${o.name} (${encodePublicIdentity(id)}): a running log takes its entries from the next add`);
}

async function submitters(o: DirOpts): Promise<void> {
  const rows = await withStore(o, async (s) =>
    (await s.listSubmitters()).map((r) => ({
      name: r.name,
      identity: encodePublicIdentity({ signingPublicKey: r.signingKey, boxPublicKey: r.boxKey }),
      enrolled_at: new Date(r.enrolledAt).toISOString(),
      revoked_at: r.revokedAt === null ? null : new Date(r.revokedAt).toISOString(),
    })),
  );
  const out = createOutput();
  if (o.json) return out.json(rows);
  for (const r of rows) out.out(`${r.name.padEnd(24)}  ${r.revoked_at ? 'revoked ' : 'enrolled'}  ${r.identity}`);
}

async function revoke(o: DirOpts & { name: string }): Promise<void> {
  await withStore(o, (s) => s.revokeSubmitter(o.name, Date.now()));
  const out = createOutput();
  if (o.json) return out.json({ name: o.name, revoked: true });
  out.out(`revoked ${o.name}: a running log refuses its entries from the next add`);
}

function witnessesAdd(o: DirOpts & { vkey: string; url: string; quorum?: number }): void {
  const paths = logPaths(resolveLogDir(o.dataDir));
  const config = loadLogConfig(paths);
  const { name } = checkWitness({ vkey: o.vkey, url: o.url });
  if (config.witnesses.some((w) => w.vkey.split('+')[0] === name)) throw witnessExists(name);
  config.witnesses.push({ vkey: o.vkey, url: o.url });
  if (o.quorum !== undefined) {
    if (o.quorum > config.witnesses.length) throw new UsageError(`a quorum of ${o.quorum} is more than the ${config.witnesses.length} witness(es) configured`);
    config.quorum = o.quorum;
  }
  saveLogConfig(paths, config);
  const out = createOutput();
  if (o.json) return out.json({ witness: name, url: o.url, witnesses: config.witnesses.length, quorum: effectiveQuorum(config) });
  out.out(`witness ${name} at ${o.url} added (${config.witnesses.length} in all, quorum ${effectiveQuorum(config)}); restart \`lifeboat log serve\` to use it`);
}

function witnessesList(o: DirOpts): void {
  const config = loadLogConfig(logPaths(resolveLogDir(o.dataDir)));
  const rows = config.witnesses.map((w) => ({ witness: w.vkey.split('+')[0], vkey: w.vkey, url: w.url }));
  const out = createOutput();
  if (o.json) return out.json({ quorum: effectiveQuorum(config), timeout_ms: config.witness_timeout_ms, witnesses: rows });
  out.out(`quorum ${effectiveQuorum(config)} of ${rows.length}`);
  for (const r of rows) out.out(`${r.witness}  ${r.url}  ${r.vkey}`);
}

function identityNew(o: { out: string; json?: boolean }): void {
  const id = generateIdentity('operator');
  saveIdentity(o.out, id);
  const token = encodePublicIdentity(id);
  const out = createOutput();
  if (o.json) return out.json({ identity: token, file: o.out });
  out.out(token);
  out.info(`identity saved to ${o.out} (0600); give the lb1 token above to the log operator to enrol`);
}

async function add(o: { log: string; logKey: string; identity: string; type: string; payloadFile?: string; payload?: string; out?: string; json?: boolean }): Promise<void> {
  if ((o.payloadFile === undefined) === (o.payload === undefined)) throw new LifeboatError('usage', 'give one of --payload-file F or --payload -', { hint: 'run `lifeboat log add --help` for usage' });
  if (o.payload !== undefined && o.payload !== '-') throw new LifeboatError('usage', '--payload takes only - (stdin)', { hint: 'use --payload-file F for a file' });
  const verifier = parseVerifierKey(o.logKey);
  const identity = loadIdentity(o.identity);
  let payload: Uint8Array;
  if (o.payloadFile !== undefined) {
    try {
      payload = new Uint8Array(readFileSync(o.payloadFile));
    } catch {
      throw new NotFoundError(`cannot read the payload file ${o.payloadFile}`, 'file_not_found');
    }
  } else payload = await readStdin();
  const bytes = createEntry({ recordType: o.type, payload }, identity);
  const { doc, checkpoint } = await addEntryVerified(o.log, bytes, verifier);
  const json = encodeInclusionDoc(doc);
  if (o.out) writeFileAtomic(o.out, `${JSON.stringify(json, null, 2)}\n`, 0o644);
  const out = createOutput();
  if (o.json) return out.json(json);
  out.out(`index      ${doc.index}`);
  out.out(`tree size  ${checkpoint.size}`);
  out.out(`leaf hash  ${toB64(doc.leafHash)}`);
  out.info(o.out ? `inclusion proof (checked against the log's key) written to ${o.out}` : 'inclusion proof checked against the log’s key; pass --out FILE (or --json) to keep it');
}

export function registerLogServerCommands(log: Command): void {
  log
    .command('init')
    .description('create a log: data directory, vault with its signer key, store with the empty tree, public/checkpoint; prints its verifier key')
    .requiredOption('--origin <name>', 'the log’s origin line and key name, e.g. example.org/backup-log')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--store <url>', 'store URL: sqlite:PATH or postgres://… (default: sqlite:<data-dir>/log.sqlite)')
    .option('--interval <duration>', 'how often a batch is sequenced, e.g. 1s, 250ms (default 1s)', intervalArg)
    .option('--max-entry-bytes <n>', 'the largest entry taken (default and most 65535)', intIn(1, 65535))
    .option('--json', 'print {"origin", "verifier_key", "data_dir", "store"}')
    .action(init);
  log
    .command('key')
    .description('print the log’s origin and verifier key (Go note format)')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--json', 'print {"origin", "verifier_key"}')
    .action(key);
  log
    .command('serve')
    .description('serve the log (read API, POST /add) until SIGTERM; first stdout line: listening on URL')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--listen <host:port>', 'address to listen on (port 0 for any free port)', '127.0.0.1:0')
    .option('--tls-cert <file>', TLS_CERT_HELP)
    .option('--tls-key <file>', TLS_KEY_HELP)
    .option('--interval <duration>', 'override log.json’s batch interval, e.g. 1s, 250ms', intervalArg)
    .addOption(logLevelOption())
    .addHelpText('after', MONITORING_HELP)
    .option('--json', 'print {"url", "origin", "verifier_key", "tree_size"} as the first stdout line')
    .action(serve);
  log
    .command('enrol')
    .description('allow a submitter identity to add entries (a running log sees it on the next add)')
    .requiredOption('--name <name>', 'the submitter’s name: 1 to 64 of A-Z a-z 0-9 _ . -')
    .requiredOption('--identity <lb1>', 'its public identity, lb1.… (from `lifeboat log identity new`)')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--json', 'print {"name", "identity", "enrolled"}')
    .action(enrol);
  log.command('submitters').description('list enrolled submitters, revoked ones included').option('--data-dir <dir>', DIR_HELP).option('--json', 'print JSON').action(submitters);
  log
    .command('revoke')
    .description('stop a submitter from adding (its entries stay in the log; its name and key are never enrolled again)')
    .requiredOption('--name <name>', 'the submitter’s name')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--json', 'print {"name", "revoked"}')
    .action(revoke);
  const w = log.command('witnesses').description('the witnesses this log pushes its checkpoints to (log.json; `log serve` reads it at start)');
  w.command('add')
    .description('add a witness (restart `log serve` to use it)')
    .requiredOption('--vkey <vkey>', 'the witness’s verifier key (printed by `lifeboat log witness init`)')
    .requiredOption('--url <url>', 'its tlog-witness URL (the log POSTs <url>/add-checkpoint)')
    .option('--quorum <k>', 'co-signatures the log waits for (default: all witnesses)', intIn(0, 32))
    .option('--data-dir <dir>', DIR_HELP)
    .option('--json', 'print JSON')
    .action(witnessesAdd);
  w.command('list').description('list the configured witnesses and the quorum').option('--data-dir <dir>', DIR_HELP).option('--json', 'print JSON').action(witnessesList);
  log
    .command('identity')
    .description('submitter identities')
    .command('new')
    .description('make a submitter identity file (0600) and print its lb1 token for `log enrol`')
    .requiredOption('--out <file>', 'where to write the identity file')
    .option('--json', 'print {"identity", "file"}')
    .action(identityNew);
  log
    .command('add')
    .description('sign an entry with your identity, add it to a log and check the inclusion proof it answers')
    .requiredOption('--log <url>', 'the log’s URL')
    .requiredOption('--log-key <vkey>', 'the log’s verifier key (`lifeboat log key` prints it)')
    .requiredOption('--identity <file>', 'your identity file (`lifeboat log identity new`)')
    .requiredOption('--type <type>', 'the record type: 1 to 64 of a-z 0-9 . _ / - (e.g. note/v1)')
    .option('--payload-file <file>', 'the payload, from a file')
    .option('--payload <->', 'the payload from stdin: -')
    .option('--out <file>', 'write the inclusion proof document (JSON, with the entry) here')
    .option('--json', 'print the inclusion proof document')
    .action(add);
}

