/**
 * `lifeboat holder init|serve|release|enrol|show|audit`: running a share holder (docs/holder.md).
 * Each command parses, calls the holder module, prints; results on stdout (JSON with --json),
 * diagnostics on stderr.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ConflictError, FormatError, LifeboatError, UsageError } from '../../errors.js';
import { listen } from '../../http/listen.js';
import { identityFingerprint, loadIdentity, encodePublicIdentity, parsePublicIdentity } from '../../identity.js';
import { readAuditEntries, verifyAuditLog, type AuditEntry } from '../../holder/audit.js';
import { applyEnrol, checkAdminSocket, type EnrolChange, sendAdminRequest, startAdminSocket } from '../../holder/admin.js';
import { createHolderApp } from '../../holder/server.js';
import { HolderService } from '../../holder/service.js';
import { holderPaths, HolderStore, readConfig, resolveHolderDir } from '../../holder/store.js';
import { readFileOrThrow, writeFileAtomic } from '../../util/files.js';
import { utf8 } from '../../util/bytes.js';
import { createOutput, untilSignalled } from '../io.js';
import { MONITORING_HELP, logLevelOption, logStarted, serverLogger, shutDown } from '../server-log.js';
import type { TrustProxy } from '../../http/app.js';
import { TRUST_PROXY_HELP, trustProxyArg, trustProxyOf } from '../options.js';
import { addTlsOptions, serverTls, type TlsOpts } from '../tls-options.js';

const DIR_HELP = 'holder data directory (default: $LIFEBOAT_HOLDER_DIR or ./lifeboat-holder)';

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

const fp = (token: string) => identityFingerprint(parsePublicIdentity(token));

function init(o: { dataDir?: string; primary: string; operator: string[]; autoUnseal: boolean; json?: boolean }): void {
  const dir = resolveHolderDir(o.dataDir);
  const r = HolderService.init(dir, { primary: o.primary, operators: o.operator, autoUnseal: o.autoUnseal });
  const out = createOutput();
  if (o.json) return out.json({ dir, identity: r.identity, fingerprint: r.fingerprint, auto_unseal: r.config.auto_unseal });
  out.out(`identity     ${r.identity}`);
  out.out(`fingerprint  ${r.fingerprint}`);
  out.info(`holder initialised in ${dir} (auto-unseal ${r.config.auto_unseal ? 'on' : 'off'})`);
  out.info('give the primary this holder as URL#FINGERPRINT, e.g. http://THIS-HOST:7301#' + r.fingerprint);
}

async function serve(o: TlsOpts & { dataDir?: string; listen: string; json?: boolean; trustProxy?: Exclude<TrustProxy, false> | true; logLevel?: string }): Promise<void> {
  const tls = serverTls(o);
  const logger = serverLogger(o.logLevel);
  // Listening for SIGTERM from the start: one sent as soon as the URL is printed still shuts down cleanly.
  const signalled = untilSignalled();
  const service = HolderService.open(resolveHolderDir(o.dataDir));
  const app = createHolderApp({ service, logger, tls, trustProxy: trustProxyOf(o.trustProxy) });
  let url: string;
  try {
    url = await listen(app, o.listen);
  } catch (err) {
    await app.close();
    service.close();
    throw err;
  }
  // `holder enrol` and `holder release` reach the running holder through it (src/holder/admin.ts).
  const admin = await startAdminSocket(service, { log: (line) => app.log.info(line) }).catch((err: NodeJS.ErrnoException) => {
    app.log.warn(`no admin socket (${err.code ?? err.message}): \`holder enrol\` and \`holder release\` need the service stopped`);
    return undefined;
  });
  process.stdout.write(o.json ? `${JSON.stringify({ url, fingerprint: service.fingerprint })}\n` : `listening on ${url}\n`);
  logStarted(app.log, 'holder', url, { fingerprint: service.fingerprint, schemes: service.store.listSchemeIds().length, data_dir: service.store.paths.dir, admin_socket: admin !== undefined });
  const signal = await signalled;
  await shutDown(app.log, 'holder', { signal }, async () => {
    await admin?.close();
    await app.close().finally(() => service.close());
  });
}

/**
 * Runs a change on the holder: through the running `holder serve`'s admin socket when there is one
 * (checked first: owned by this user, 0600), else on the directory itself (which takes its lock).
 */
async function onHolder<T>(dir: string, viaSocket: () => Promise<T | undefined>, direct: (service: HolderService) => Promise<T>): Promise<T> {
  if (checkAdminSocket(dir)) {
    const r = await viaSocket();
    if (r !== undefined) return r;
  }
  const service = HolderService.open(dir);
  try {
    return await direct(service);
  } finally {
    service.close();
  }
}

async function release(o: { dataDir?: string; request: string; out: string; json?: boolean }): Promise<void> {
  if (existsSync(o.out)) throw new ConflictError(`${o.out} already exists`, 'file_exists', 'choose a new --out file; a response is written once');
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(readFileOrThrow(o.request, 'release request')));
  } catch (err) {
    if (err instanceof LifeboatError) throw err;
    throw new FormatError('malformed', `${o.request} is not json`);
  }
  const dir = resolveHolderDir(o.dataDir);
  const response = await onHolder(
    dir,
    () => sendAdminRequest(dir, { op: 'release', request: value }),
    (service) => service.release({ kind: 'local' }, value),
  );
  writeFileAtomic(o.out, `${JSON.stringify(response, null, 2)}\n`);
  const out = createOutput();
  if (o.json) return out.json({ out: o.out, request_id: response.request_id, scheme_id: response.scheme_id, member_index: response.member_index });
  out.out(`released member ${response.member_index + 1} of scheme ${response.scheme_id} to ${o.out}`);
  out.info('the share inside is sealed to the requester; carry the file back to them');
}

async function enrol(o: { dataDir?: string; primary?: string; addOperator: string[]; removeOperator: string[]; json?: boolean }): Promise<void> {
  if (!o.primary && o.addOperator.length === 0 && o.removeOperator.length === 0) {
    throw new UsageError('nothing to change', { hint: 'pass --primary, --add-operator or --remove-operator' });
  }
  const dir = resolveHolderDir(o.dataDir);
  const changes: EnrolChange[] = await onHolder(
    dir,
    async () => (await sendAdminRequest(dir, { op: 'enrol', primary: o.primary, add_operators: o.addOperator, remove_operators: o.removeOperator }))?.changes,
    (service) => applyEnrol(service, { primary: o.primary, addOperators: o.addOperator, removeOperators: o.removeOperator }),
  );
  const out = createOutput();
  if (o.json) return out.json({ changes });
  for (const c of changes) out.out(`${c.what} ${c.fingerprint}${c.changed ? '' : ' (no change)'}`);
}

/** Reads a holder directory without opening it for writing (works while `serve` runs). */
function show(o: { dataDir?: string; json?: boolean }): void {
  const paths = holderPaths(resolveHolderDir(o.dataDir));
  const cfg = readConfig(paths);
  const id = loadIdentity(paths.identity, 'holder');
  const store = new HolderStore(paths);
  const schemes = store.listSchemeIds().map((sid) => {
    const s = store.getShare(sid)!;
    return { scheme_id: sid, member_index: s.memberIndex, created_at: s.createdAt, vault_generation: store.vaultGeneration(sid) };
  });
  const doc = {
    dir: paths.dir,
    identity: encodePublicIdentity(id),
    fingerprint: identityFingerprint(id),
    primary: { identity: cfg.primary, fingerprint: fp(cfg.primary) },
    operators: cfg.operators.map((t) => ({ identity: t, fingerprint: fp(t) })),
    auto_unseal: cfg.auto_unseal,
    schemes,
  };
  const out = createOutput();
  if (o.json) return out.json(doc);
  out.out(`identity     ${doc.identity}`);
  out.out(`fingerprint  ${doc.fingerprint}`);
  out.out(`primary      ${doc.primary.fingerprint}`);
  for (const op of doc.operators) out.out(`operator     ${op.fingerprint}`);
  out.out(`auto-unseal  ${cfg.auto_unseal ? 'on' : 'off'}`);
  out.out(`schemes      ${schemes.length}`);
  for (const s of schemes) {
    out.out(`  ${s.scheme_id}  member ${s.member_index + 1}  stored ${s.created_at}  vault ${s.vault_generation === null ? 'none' : `generation ${s.vault_generation}`}`);
  }
}

function formatEntry(e: AuditEntry): string {
  const parts = [String(e.seq).padStart(5), e.at, e.action, e.actor, e.outcome + (e.code ? ` ${e.code}` : '')];
  if (e.scheme_id) parts.push(`scheme ${e.scheme_id}`);
  if (e.subject) parts.push(`subject ${e.subject}`);
  if (e.request_id) parts.push(`request ${e.request_id}`);
  if (e.remote) parts.push(`from ${e.remote}`);
  return parts.join('  ');
}

function audit(o: { dataDir?: string; verify?: boolean; json?: boolean }): void {
  const paths = holderPaths(resolveHolderDir(o.dataDir));
  const out = createOutput();
  if (o.verify) {
    const text = existsSync(paths.audit) ? readFileSync(paths.audit, 'utf8') : '';
    const r = verifyAuditLog(text);
    // A broken log is a failure (with --json, the failure document, not the report: one document on stdout).
    if (r.ok && o.json) out.json(r);
    else if (r.ok) out.out(`audit log ok: ${r.entries} entries, head ${r.head}`);
    if (!r.ok) {
      throw new LifeboatError('audit_log_broken', `audit log ${paths.audit} breaks at line ${r.line}: ${r.reason}`, {
        hint: `the ${r.entries} entries before it verify (head ${r.head}); keep the file as evidence`,
      });
    }
    return;
  }
  let entries: AuditEntry[];
  try {
    entries = readAuditEntries(paths.audit);
  } catch {
    throw new FormatError('malformed', `audit log ${paths.audit} has a line that is not json`, 'run `lifeboat holder audit --verify` to find it');
  }
  if (o.json) return out.json(entries);
  for (const e of entries) out.out(formatEntry(e));
}

export function registerHolderCommands(program: Command): void {
  const holder = program.command('holder').description('a share holder: keeps sealed recovery shares and releases them when authorised');
  holder
    .command('init')
    .description('create the holder identity and enrol the primary and operators')
    .option('--data-dir <dir>', DIR_HELP)
    .requiredOption('--primary <lb1>', 'the primary public identity (`lifeboat primary show`)')
    .requiredOption('--operator <lb1>', 'an operator public identity (repeat for several)', collect, [])
    .option('--no-auto-unseal', 'never release to the primary itself; every release needs an operator')
    .option('--json', 'print JSON')
    .action(init);
  const serveCmd = holder
    .command('serve')
    .description('serve the holder HTTP API (first stdout line: listening on URL)')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--listen <host:port>', 'address to listen on (port 0 for any free port)', '127.0.0.1:7301')
    .option('--trust-proxy [hops|addresses]', TRUST_PROXY_HELP, trustProxyArg)
    .addOption(logLevelOption())
    .addHelpText('after', MONITORING_HELP)
    .option('--json', 'print the listening line as JSON');
  addTlsOptions(serveCmd).action(serve);
  holder
    .command('release')
    .description('answer a release request file on this machine (air-gapped holder); while `holder serve` runs, through its admin socket')
    .option('--data-dir <dir>', DIR_HELP)
    .requiredOption('--request <file>', 'the signed release request (JSON)')
    .requiredOption('--out <file>', 'where to write the release response (0600)')
    .option('--json', 'print JSON')
    .action(release);
  holder
    .command('enrol')
    .description('replace the enrolled primary (after a reconstruction), or add and remove operators; while `holder serve` runs, it applies the change at once (admin socket)')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--primary <lb1>', 'the new primary public identity')
    .option('--add-operator <lb1>', 'enrol an operator (repeatable)', collect, [])
    .option('--remove-operator <lb1|fingerprint>', 'remove an operator, e.g. a lost or suspected key (repeatable)', collect, [])
    .option('--json', 'print JSON')
    .action(enrol);
  holder.command('show').description('print the holder identity, enrolments and schemes').option('--data-dir <dir>', DIR_HELP).option('--json', 'print JSON').action(show);
  holder
    .command('audit')
    .description('print the audit log, or check its hash chain')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--verify', 'check the hash chain and name the first broken line')
    .option('--json', 'print JSON')
    .action(audit);
}
