/**
 * `lifeboat backup-server serve | account add | account list | account rm | monitor-token`: running the multi-tenant
 * backup service (docs/backup-server.md). Results on stdout (JSON with --json), diagnostics on stderr.
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { LifeboatError, NotFoundError, UsageError } from '../../errors.js';
import { backupStoreUrl, resolveBackupServerDir, startBackupServer } from '../../backup/serve.js';
import { newInvite } from '../../backup/bearer-codes.js';
import { checkName } from '../../backup/format.js';
import { openBackupStore, redactStoreUrl } from '../../backup/store/index.js';
import type { BackupStore } from '../../backup/store/types.js';
import { ensurePrivateDir } from '../../util/files.js';
import { addMonitorToken } from '../../backup/monitor.js';
import { checkSecretFd, createOutput, untilSignalled, writeSecret } from '../io.js';
import type { TrustProxy } from '../../http/app.js';
import { MONITORING_HELP, logLevelOption, logStarted, serverLogger, ServerWarnings, shutDown } from '../server-log.js';
import { intIn, TRUST_PROXY_HELP, trustProxyArg, trustProxyOf } from '../options.js';
import { loadOrCreateTotpSealKey } from '../../backup/secret-files.js';
import { SecondFactor } from '../../backup/wallet-logins.js';
import { isWalletRecord } from '../../backup/wallet.js';
import { assertSecretOutput, showTotpEnrolment } from './wallet-options.js';
import { serverTls, TLS_CERT_HELP, TLS_KEY_HELP, type TlsOpts } from '../tls-options.js';

const DIR_HELP = 'data directory: the opaque server setup and the default store (default: $LIFEBOAT_BACKUP_SERVER_DIR or ./lifeboat-backup-server)';
const STORE_HELP = 'store URL: sqlite:PATH or postgres://… (default: $LIFEBOAT_BACKUP_STORE or sqlite:<data-dir>/backup.sqlite)';

interface StoreOpts {
  dataDir?: string;
  store?: string;
  json?: boolean;
}

/** Opens the store for an account command; `create` allows a fresh data directory (account add). */
async function withStore<T>(o: StoreOpts, create: boolean, fn: (store: BackupStore) => Promise<T>): Promise<T> {
  const dir = resolveBackupServerDir(o.dataDir);
  const url = backupStoreUrl(dir, o.store);
  if (url.startsWith('sqlite:')) {
    if (create) ensurePrivateDir(dir);
    else if (!existsSync(dir)) {
      throw new NotFoundError(`no backup server data directory at ${dir}`, 'not_found', 'pass --data-dir (or --store), or run `lifeboat backup-server serve` there first');
    }
  }
  const store = await openBackupStore(url);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

async function serve(o: TlsOpts & StoreOpts & { listen: string; trustProxy?: Exclude<TrustProxy, false> | true; logLevel?: string; walletDomain?: string; walletChainId?: number }): Promise<void> {
  const tls = serverTls(o);
  const logger = serverLogger(o.logLevel);
  // Listening for SIGTERM from the start: one sent as soon as the URL is printed still shuts down cleanly.
  const signalled = untilSignalled();
  const warnings = new ServerWarnings(createOutput().warn);
  const dataDir = resolveBackupServerDir(o.dataDir);
  const server = await startBackupServer({ dataDir, store: o.store, listen: o.listen, tls, trustProxy: trustProxyOf(o.trustProxy), walletDomain: o.walletDomain, walletChainId: o.walletChainId, logger, warn: warnings.warn });
  warnings.attach(server.app.log);
  const key = server.service.serverPublicKey();
  // One line first: supervisors and tests read it.
  process.stdout.write(o.json ? `${JSON.stringify({ url: server.url, opaque_server_public_key: key })}\n` : `listening on ${server.url}\n`);
  logStarted(server.app.log, 'backup-server', server.url, { data_dir: dataDir, store: redactStoreUrl(backupStoreUrl(dataDir, o.store)), opaque_server_public_key: key });
  const signal = await signalled;
  await shutDown(server.app.log, 'backup-server', { signal }, () => server.close());
}

async function accountAdd(name: string, o: StoreOpts & { totp?: boolean; secretFd?: number }): Promise<void> {
  checkName(name, 'account name');
  if (o.totp) assertSecretOutput(o.secretFd);
  const { invite, hash } = newInvite();
  // The TOTP seal key sits beside opaque-server-setup: the store alone never holds a usable secret.
  const sealKey = o.totp ? loadOrCreateTotpSealKey(resolveBackupServerDir(o.dataDir)) : undefined;
  const enrolment = await withStore(o, true, async (store) => {
    await store.createAccount(name, hash, Date.now());
    return sealKey ? new SecondFactor(store, sealKey, Date.now).enrol(name) : undefined;
  });
  const out = createOutput();
  if (enrolment) showTotpEnrolment(enrolment, o.secretFd);
  if (o.json) return out.json({ account: name, invite, totp: enrolment !== undefined });
  out.out(`account  ${name}`);
  out.out(`invite   ${invite}`);
  out.info('give the invite to the account’s owner: it registers once (lifeboat node backup-setup) and is shown only now');
  if (enrolment) out.info('give the owner the totp uri (or qr code) and the recovery codes with it: every login of the account needs a code as well; they are shown only now');
}

async function accountList(o: StoreOpts): Promise<void> {
  const rows = await withStore(o, false, async (store) => {
    const accounts = await store.listAccounts();
    return Promise.all(
      accounts.map(async (a) => {
        const streams = await store.listStreams(a.name);
        return {
          account: a.name,
          state: a.registration ? 'registered' : 'invited',
          secret: a.registration ? (isWalletRecord(a.registration.record) ? 'wallet' : 'password') : null,
          totp: (await store.getTotp(a.name)) !== undefined,
          streams: streams.map((s) => ({ stream: s.stream, head_seq: s.headSeq, first_seq: s.firstSeq, updated_at: new Date(s.updatedAt).toISOString() })),
          created_at: new Date(a.createdAt).toISOString(),
          updated_at: new Date(a.updatedAt).toISOString(),
        };
      }),
    );
  });
  const out = createOutput();
  if (o.json) return out.json(rows);
  for (const r of rows) {
    const streams = r.streams.map((s) => `${s.stream}@${s.head_seq}`).join(' ') || '-';
    out.out(`${r.account.padEnd(24)}  ${r.state.padEnd(10)}  ${(r.secret ?? '-').padEnd(8)}  ${r.totp ? 'totp' : '-   '}  created ${r.created_at}  streams ${streams}`);
  }
}

/** Asks, on a terminal, for the account's name typed again. Throws LifeboatError `cancelled` otherwise. */
async function confirmRm(name: string): Promise<void> {
  const { text, isCancel } = await import('@clack/prompts');
  const v = await text({ message: `delete account ${name} with all its streams and compactions? This cannot be undone. Type the account name to confirm`, output: process.stderr });
  if (isCancel(v) || v !== name) throw new LifeboatError('cancelled', `account ${name} was not deleted`, { hint: 'type the account name exactly, or pass --yes' });
}

async function accountRm(name: string, o: StoreOpts & { yes?: boolean }): Promise<void> {
  checkName(name, 'account name');
  if (!o.yes && !process.stdin.isTTY) throw new UsageError(`refusing to delete account ${name} without confirmation`, { hint: 'pass --yes to delete it without a terminal (it cannot be undone)' });
  const deleted = await withStore(o, false, async (store) => {
    if (!(await store.getAccount(name))) return false;
    if (!o.yes) await confirmRm(name);
    return store.deleteAccount(name);
  });
  if (!deleted) throw new NotFoundError(`no account ${name}`, 'account_not_found', 'see `lifeboat backup-server account list`');
  const out = createOutput();
  if (o.json) return out.json({ account: name, deleted: true });
  out.out(`account ${name} deleted with its streams, compactions and tokens`);
}

/** `backup-server monitor-token`: a read-only token for `lifeboat coverage` (stream heads only), shown once. */
async function monitorToken(o: { dataDir?: string; secretFd?: number }): Promise<void> {
  const dir = resolveBackupServerDir(o.dataDir);
  if (!existsSync(dir)) throw new NotFoundError(`no backup server data directory at ${dir}`, 'not_found', 'pass --data-dir, the one `lifeboat backup-server serve` uses');
  checkSecretFd(o.secretFd);
  const token = addMonitorToken(dir);
  writeSecret(token, o.secretFd);
  createOutput().info('a monitor token reads every stream head (GET /v1/monitor/streams) and nothing else; a running service takes it at once. Put it in a 0600 file the fleet file names');
}

export function registerBackupServerCommands(program: Command): void {
  const bs = program.command('backup-server').description('the backup service: stores nodes’ encrypted backup streams; OPAQUE password login');
  bs.command('serve')
    .description('serve the backup service API (/v1) until SIGTERM (first stdout line: listening on URL)')
    .option('--listen <host:port>', 'address to listen on (port 0 for any free port)', '127.0.0.1:8480')
    .option('--tls-cert <file>', TLS_CERT_HELP)
    .option('--tls-key <file>', TLS_KEY_HELP)
    .option('--data-dir <dir>', DIR_HELP)
    .option('--store <url>', STORE_HELP)
    .option('--trust-proxy [hops|addresses]', TRUST_PROXY_HELP, trustProxyArg)
    .addOption(logLevelOption())
    .addHelpText('after', MONITORING_HELP)
    .option('--wallet-domain <host[:port]>', 'the domain wallet logins (Sign-In with Ethereum) must name: the host of the URL clients use (default: the listen address)')
    .option('--wallet-chain-id <n>', 'the chain id wallet logins must name', intIn(1, Number.MAX_SAFE_INTEGER), 1)
    .option('--json', 'print {"url", "opaque_server_public_key"} as the first stdout line')
    .action(serve);
  const account = bs.command('account').description('accounts: one per key node (or per tenant), registered with a one-time invite');
  account
    .command('add <name>')
    .description('create an account and print its one-time invite code (shown once; the service keeps its hash)')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--store <url>', STORE_HELP)
    .option('--totp', 'also enrol a second factor (TOTP): its otpauth:// URI, QR code and 10 recovery codes are shown once, for the owner')
    .option('--secret-fd <n>', 'with --totp: write the URI and recovery codes to this file descriptor instead of the terminal', intIn(3, 1 << 20))
    .option('--json', 'print {"account", "invite", "totp"}')
    .action(accountAdd);
  account
    .command('list')
    .description('list accounts, whether they registered, and their streams')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--store <url>', STORE_HELP)
    .option('--json', 'print JSON')
    .action(accountList);
  account
    .command('rm <name>')
    .description('delete an account with all its streams and compactions (they cannot be recovered); asks to type its name on a terminal, or --yes')
    .option('--yes', 'delete without asking (needed without a terminal)')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--store <url>', STORE_HELP)
    .option('--json', 'print JSON')
    .action(accountRm);
  bs.command('monitor-token')
    .description('make a read-only monitor token for `lifeboat coverage`: it reads stream heads only (GET /v1/monitor/streams); shown once, its hash kept in DIR/monitor-tokens')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--secret-fd <n>', 'write the token to this file descriptor instead of the terminal', intIn(3, 1023))
    .action(monitorToken);
}
