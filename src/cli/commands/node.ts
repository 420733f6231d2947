/**
 * `lifeboat node …`: run and administer a threshold-signing key node (init, serve, apikey, whitelist,
 * pair, status, backup, restore).
 */
import type { Command } from 'commander';
import { InvalidInputError, PeerError, UsageError } from '../../errors.js';
import { listen } from '../../http/listen.js';
import { apiKeyRecordFromToken, newApiKey } from '../../keynode/apikeys.js';
import { parseWrappingKey } from '../../keynode/export.js';
import { checkTenantName } from '../../keynode/tenants.js';
import { createNodeBackup, openNodeBackup, restoreNodeBackup, voidNoncesAndVerify } from '../../keynode/backup.js';
import { KeyNodeClient } from '../../keynode/client.js';
import { resolveNodeDir } from '../../keynode/config.js';
import { closeNode, initNode, openNode, saveNodeConfig, storeUrl, voidNoncesBeforeServing, type OpenedNode } from '../../keynode/runtime.js';
import { reloadOnSighup } from '../../keynode/reload.js';
import { createKeyNodeApp } from '../../keynode/server.js';
import { nodeObservability } from '../../keynode/metrics.js';
import { describeErs, registerErsRoutes } from '../../ers/node-route.js';
import { ersSigningGate, ersStatus } from '../../ers/node-state.js';
import { keyEpoch, redactStoreUrl } from '../../keynode/store/index.js';
import { fromB64, toB64, utf8, wipe } from '../../util/bytes.js';
import { promptSecret, promptsHelp, readStdin } from '../input.js';
import { restoreFromService } from '../../backup/node-link.js';
import { readMonitorHashes } from '../../http/monitor-token.js';
import { registerNodeBackupCommands } from './backup.js';
import { accountSecretOf, addWalletOptions, totpOf, WALLET_HELP, type WalletOpts } from './wallet-options.js';
import { addPasswordOptions, PASSWORD_HELP, type PasswordOpts, waitOutLoginLimits } from '../password.js';
import { RESTORE_POINT_HELP, restorePointGiven, restorePointOf, type RestorePointOpts } from './restore-point.js';
import { registerNodeConfigCommands } from './node-config.js';
import { printNodeView, registerNodeShowCommand } from './node-show.js';
import { registerNodeSealCommands } from './node-seal.js';
import { addMnemonicOptions, channelStatus, keyChannelRows, keyshareSetupOf, mnemonicForSetup, type MnemonicOpts, registerNodeKeyshareCommands, showMnemonic } from './node-keyshare.js';
import { keysharePublisher } from '../../keyshare/publisher.js';
import { progressLine } from '../progress.js';
import { readFileOrThrow, writeFileAtomic } from '../../util/files.js';
import { encodePublicIdentity, identityFingerprint, parsePublicIdentity } from '../../identity.js';
import { createOutput, describeFailure, untilSignalled, writeSecret } from '../io.js';
import { MONITORING_HELP, logLevelOption, logStarted, serverLogger, ServerWarnings, shutDown } from '../server-log.js';
import { nodeCoverageFacts } from '../../keynode/coverage.js';
import { intIn } from '../options.js';
import { loadTls, reloadTlsOnSighup, tlsFilesOf } from '../../http/tls.js';
import { caFileFor, setProcessCaFile } from '../../util/tls-fetch.js';
import { TLS_CERT_HELP, TLS_KEY_HELP, type TlsOpts } from '../tls-options.js';

const DIR_HELP = 'node data directory (default: $LIFEBOAT_NODE_DIR or ./lifeboat-node)';
const STORE_HELP = 'store URL: sqlite:PATH or postgres://… (default: the configuration’s, or $LIFEBOAT_NODE_STORE)';
const TENANT_HELP = 'a client key’s tenant: API keys of one tenant share its keys (default: a tenant of its own, apikey-<id>; docs/keynode.md, "Tenants")';

interface DirOpts {
  dataDir?: string;
  store?: string;
  json?: boolean;
}

async function withNode<T>(o: DirOpts, fn: (n: OpenedNode) => Promise<T>): Promise<T> {
  const node = await openNode(resolveNodeDir(o.dataDir), { store: o.store });
  try {
    return await fn(node);
  } finally {
    await closeNode(node);
  }
}

/** `URL` or `URL#FINGERPRINT` (as holder specs): the fingerprint, when given, pins the fail-over's identity. */
function parseFailoverSpec(spec: string): { url: string; fingerprint?: string } {
  const i = spec.lastIndexOf('#');
  const url = i < 0 ? spec : spec.slice(0, i);
  const fingerprint = i < 0 ? undefined : spec.slice(i + 1);
  if (!/^https?:\/\/\S+$/.test(url)) throw new InvalidInputError(`--failover ${url} is not an http(s) URL`, { hint: 'for example https://failover-a.internal:7401#<its fingerprint>' });
  return { url, fingerprint };
}

/** `node serve`: voids old nonces, listens, runs the fail-over and backup loops until SIGTERM. */
async function serveNode(o: DirOpts & TlsOpts & { listen: string; logLevel?: string }): Promise<void> {
  const tlsFiles = tlsFilesOf(o);
  const tls = tlsFiles && loadTls(tlsFiles);
  const logger = serverLogger(o.logLevel);
  // Listening for SIGTERM from the start: one sent as soon as the URL is printed still shuts down cleanly.
  const signalled = untilSignalled();
  const warnings = new ServerWarnings(createOutput().warn);
  const dir = resolveNodeDir(o.dataDir);
  const n = await openNode(dir, { store: o.store, log: warnings.warn, channelAgents: [keysharePublisher] });
  // node.json's ca_file for the node's own calls (fail-over, backup service, logs), unless --ca-file or $LIFEBOAT_CA_FILE says otherwise
  if (!caFileFor() && n.config.ca_file) setProcessCaFile(n.config.ca_file);
  const voided = await voidNoncesBeforeServing(n.store);
  const app = createKeyNodeApp({ service: n.service, store: n.store, logger, status: () => n.failover.status(), routes: (a, auth) => registerErsRoutes(a, { service: n.service, config: n.config, store: n.store, onRegistered: (rec) => n.durable.record(rec.keyId, 'ers', keyEpoch(rec)) }, auth), describeKey: (rec) => describeErs(n.store, n.config, rec), coverage: () => nodeCoverageFacts(n), observe: nodeObservability(n), tls, monitorHashes: () => readMonitorHashes(dir) });
  warnings.attach(app.log);
  n.service.setSigningGate(ersSigningGate(n.store, n.config));
  const url = await listen(app, o.listen);
  n.failover.start();
  n.backup?.start();
  for (const a of n.agents) a.start();
  const stopReload = reloadOnSighup(n, { info: (line) => app.log.info(line), warn: (line) => app.log.warn(line) }); // docs/keynode.md, "Reloading the configuration"
  const stopTlsReload = tlsFiles ? reloadTlsOnSighup(app, tlsFiles) : () => {};
  // Abandoned signings and DKGs must not grow the tables without bound (docs/keynode.md, "Housekeeping").
  const purge = setInterval(() => void n.service.purgeExpired().catch((err: Error) => app.log.warn({ err_type: describeFailure(err).err_type }, `purge failed: ${err.message}`)), 60_000);
  purge.unref();
  const fp = n.service.identity().fingerprint;
  // One line, the first on stdout (request logs go to stderr): supervisors and tests read it as JSON.
  process.stdout.write(o.json ? `${JSON.stringify({ url, fingerprint: fp })}\n` : `listening on ${url} (node ${fp})\n`);
  logStarted(app.log, 'node', url, { fingerprint: fp, data_dir: dir, store: redactStoreUrl(storeUrl(n.config, o.store)), nonces_voided: voided });
  const signal = await signalled;
  clearInterval(purge);
  stopReload();
  stopTlsReload();
  await shutDown(app.log, 'node', { signal }, async () => {
    await app.close();
    await closeNode(n);
  });
}

/** `node restore --backup-server`: a fresh machine, the password (or the wallet), the service; nothing else. */
async function restoreFromServiceCommand(o: DirOpts & WalletOpts & PasswordOpts & RestorePointOpts & TlsOpts & { backupServer: string; account?: string; stream?: string; expectSeq?: number; restoreToken?: boolean; totp?: boolean; serve?: boolean; listen: string; logLevel?: string }): Promise<void> {
  if (!o.account) throw new UsageError('--backup-server needs --account NAME');
  const point = restorePointOf(o);
  if (o.dryRun && o.serve) throw new UsageError('--dry-run writes nothing, so there is nothing to --serve');
  // With --serve, a bad certificate stops it before the restore, not after
  const tlsFiles = o.serve ? tlsFilesOf(o) : undefined;
  if (tlsFiles) loadTls(tlsFiles);
  // With --serve, stdout belongs to serve (its first line, JSON with --json); the restore reports on stderr.
  const out = createOutput({ quiet: o.json });
  const secret = await accountSecretOf(o, (t) => process.stderr.write(`lifeboat: ${t}\n`));
  const restoreToken = o.restoreToken ? await promptSecret('restore token') : undefined;
  const totp = await totpOf(o.totp);
  const bar = progressLine(out.info);
  const r = await restoreFromService({
    server: o.backupServer.replace(/\/+$/, ''),
    account: o.account,
    ...secret,
    restoreToken,
    totp,
    stream: o.stream,
    expectSeq: o.expectSeq,
    point,
    dryRun: o.dryRun,
    dir: resolveNodeDir(o.dataDir),
    store: o.store,
    progress: bar,
    tuning: waitOutLoginLimits(out.info),
  });
  const at = `entry ${r.headSeq}${r.headSeq < r.streamHeadSeq ? ` of ${r.streamHeadSeq}` : ''}${r.committedAt ? `, committed ${r.committedAt}` : ''}`;
  if (o.json && !o.serve) return out.json({ ok: true, mode: 'backup-server', ...r, store: r.store === null ? null : redactStoreUrl(r.store) });
  if (r.dryRun) {
    out.out(`dry run: would restore node ${r.fingerprint}: ${r.keys} keys and ${r.apiKeys} API keys from ${r.stream} (${at}${r.compactionSeq ? `; compaction at ${r.compactionSeq}` : ''})`);
    out.out(`every entry and share checked; nothing was written${r.streamsTo !== r.stream ? `; the node would stream to ${r.streamsTo}` : ''}`);
    return;
  }
  if (o.serve) out.info(`restored node ${r.fingerprint}: ${r.keys} keys from ${r.stream} (${at}); serving`);
  else {
    out.out(`restored node ${r.fingerprint}: ${r.keys} keys and ${r.apiKeys} API keys from ${r.stream} (${at}${r.compactionSeq ? `, compaction at ${r.compactionSeq}` : ''})`);
    if (r.streamsTo !== r.stream) out.out(`restored to a point before the head: the node streams its whole state to the new stream ${r.streamsTo}`);
    out.out(`every share matches its verifying share; no signing nonce survives (epoch ${r.epoch}); start it with \`lifeboat node serve\``);
  }
  if (o.serve) await serveNode(o);
}

export function registerNodeCommands(program: Command): void {
  const node = program.command('node').description('a threshold-signing (FROST) key node');
  registerNodeBackupCommands(node);
  registerNodeConfigCommands(node);
  registerNodeKeyshareCommands(node);
  registerNodeShowCommand(node);
  registerNodeSealCommands(node);

  addMnemonicOptions(
    node
      .command('init')
      .description('create a key node: its vault of node keys, configuration and store, and its operator mnemonic (shown once)')
      .option('--data-dir <dir>', DIR_HELP)
      .option('--store <url>', 'sqlite:PATH or postgres://… (default: $LIFEBOAT_NODE_STORE, else <dir>/store.sqlite); node.json keeps it without its password')
      .option('--json', 'print JSON (generated words still go to the terminal or --secret-fd)'),
    true,
  )
    .addHelpText('after', '\nThe 24 words are generated and shown once (terminal or --secret-fd N), or taken from --mnemonic-fd N;\nevery key share the node holds is published under them to the log(s) `node log-setup` names (docs/keyshare.md).')
    .action(async (o: DirOpts & MnemonicOpts) => {
      // The words are checked, and their way out found, before anything is written.
      const words = o.mnemonic === false ? undefined : mnemonicForSetup(o);
      if (!words && (o.mnemonicFd !== undefined || o.secretFd !== undefined)) throw new UsageError('--no-mnemonic takes no --mnemonic-fd or --secret-fd');
      try {
        const store = o.store ?? (process.env.LIFEBOAT_NODE_STORE || undefined);
        const r = await initNode(resolveNodeDir(o.dataDir), { store, keyshare: words && keyshareSetupOf(words.m, words.mode) });
        if (words?.generated) showMnemonic(words.m, o.secretFd, r.identity);
        const out = createOutput();
        if (o.json) out.json({ ...r, store: redactStoreUrl(r.store) });
        else printNodeView(out, { ...r, store: redactStoreUrl(r.store) }, r.keyshare_mode ? `${r.keyshare_mode} mode; name the log with \`lifeboat node log-setup\`` : 'none (`lifeboat node mnemonic setup` adds one)');
      } finally {
        wipe(words?.m.entropy);
      }
    });

  node
    .command('serve')
    .description('serve the key node API (/v1) until SIGTERM; SIGHUP reloads node.json (pairing, whitelist, export policy, nonce lifetime)')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--store <url>', STORE_HELP)
    .option('--listen <host:port>', 'address to listen on', '127.0.0.1:7401')
    .option('--tls-cert <file>', `${TLS_CERT_HELP}; SIGHUP reads it and the key again`)
    .option('--tls-key <file>', TLS_KEY_HELP)
    .addOption(logLevelOption())
    .addHelpText('after', MONITORING_HELP)
    .option('--json', 'print {"url", "fingerprint"} as the first and only stdout line; logs and notes go to stderr')
    .action(serveNode);

  const apikey = node.command('apikey').description('API keys (stored hashed; shown once)');
  apikey
    .command('create')
    .description('create an API key; the token goes to the terminal or --secret-fd, once')
    .requiredOption('--role <role>', 'client (DKG, signing, encrypted export/import) or operator (all exports, imports, status)')
    .option('--label <text>', 'what it is for', '')
    .option('--tenant <name>', TENANT_HELP)
    .option('--secret-fd <fd>', 'write the token to this file descriptor instead of the terminal', intIn(3, 1023))
    .option('--data-dir <dir>', DIR_HELP)
    .option('--store <url>', STORE_HELP)
    .option('--json', 'print the key id as JSON (the token still goes to the terminal or --secret-fd)')
    .action(async (o: DirOpts & { role: string; label: string; tenant?: string; secretFd?: number }) => {
      if (o.role !== 'client' && o.role !== 'operator') throw new UsageError('--role must be client or operator');
      const { token, record } = newApiKey(o.role, o.label, { tenant: o.tenant === undefined ? undefined : checkTenantName(o.tenant) });
      await withNode(o, (n) => n.store.insertApiKey(record));
      writeSecret(token, o.secretFd);
      const out = createOutput();
      if (o.json) out.json({ id: record.id, role: record.role, label: record.label, tenant: record.tenant });
      else if (o.secretFd !== undefined) out.out(`api key ${record.id} (${record.role}${record.tenant ? `, tenant ${record.tenant}` : ''}) created`);
    });
  apikey
    .command('import')
    .description('register an existing token (read from stdin) on this node, so one client key works on all its nodes (give the same --tenant on every node)')
    .requiredOption('--role <role>', 'client or operator')
    .option('--label <text>', 'what it is for', '')
    .option('--tenant <name>', TENANT_HELP)
    .option('--data-dir <dir>', DIR_HELP)
    .option('--store <url>', STORE_HELP)
    .action(async (o: DirOpts & { role: string; label: string; tenant?: string }) => {
      if (o.role !== 'client' && o.role !== 'operator') throw new UsageError('--role must be client or operator');
      const tenant = o.tenant === undefined ? undefined : checkTenantName(o.tenant);
      const record = apiKeyRecordFromToken(utf8.decode(await readStdin()), o.role, o.label, { tenant });
      await withNode(o, (n) => n.store.insertApiKey(record));
      createOutput().out(`api key ${record.id} (${record.role}${record.tenant ? `, tenant ${record.tenant}` : ''}) registered`);
    });
  apikey
    .command('list')
    .description('list API keys (ids, roles, tenants, labels; never secrets)')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--store <url>', STORE_HELP)
    .option('--json', 'print JSON')
    .action(async (o: DirOpts) => {
      const keys = await withNode(o, (n) => n.store.listApiKeys());
      const rows = keys.map((k) => ({ id: k.id, role: k.role, tenant: k.tenant, label: k.label, created_at: new Date(k.createdAt).toISOString(), revoked_at: k.revokedAt ? new Date(k.revokedAt).toISOString() : null }));
      const out = createOutput();
      if (o.json) out.json(rows);
      else for (const r of rows) out.out(`${r.id}  ${r.role.padEnd(8)}  ${r.revoked_at ? 'revoked' : 'active '}  ${(r.tenant ?? '(all tenants)').padEnd(24)}  ${r.label}`);
    });
  apikey
    .command('revoke <id>')
    .description('revoke an API key')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--store <url>', STORE_HELP)
    .action(async (id: string, o: DirOpts) => {
      const ok = await withNode(o, (n) => n.store.revokeApiKey(id, Date.now()));
      if (!ok) throw new InvalidInputError(`no active api key ${id}`, { code: 'api_key_not_found' });
      createOutput().out(`revoked ${id}`);
    });

  node
    .command('pair')
    .description('pair a primary node with its fail-over: on the primary --failover URL, on the fail-over --primary IDENTITY')
    .option('--failover <url>', 'this node pushes every new share, wrapped, to the fail-over node at URL (URL#FINGERPRINT pins its identity)')
    .option('--wrapping-key <key>', 'with --failover: the wrapping key the fail-over printed at init (pins it; the fingerprint does not cover it): base64, hex, or the JSON GET /v1/wrapping-key answers')
    .option('--primary <identity>', 'this node is the fail-over of the primary node with this identity (lb1.…)')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--json', 'print JSON')
    .action(async (o: DirOpts & { failover?: string; primary?: string; wrappingKey?: string }) => {
      if (!o.failover === !o.primary) throw new UsageError('give exactly one of --failover URL or --primary IDENTITY');
      const pinnedKey = o.wrappingKey === undefined ? undefined : parseWrappingKey(o.wrappingKey);
      const out = createOutput();
      const result = await withNode(o, async (n) => {
        if (o.primary) {
          parsePublicIdentity(o.primary, '--primary');
          saveNodeConfig(n.paths, { ...n.config, paired_primary: o.primary });
          return { paired_primary: o.primary, fingerprint: identityFingerprint(parsePublicIdentity(o.primary)) };
        }
        const spec = parseFailoverSpec(o.failover!);
        const answer = await new KeyNodeClient({ url: spec.url }).identity();
        // Trust nothing the peer claims: the fingerprint is computed from its identity token.
        let id: { identity: string; fingerprint: string; wrapping_public_key: string };
        try {
          const token = encodePublicIdentity(parsePublicIdentity(answer.identity));
          id = { identity: token, fingerprint: identityFingerprint(parsePublicIdentity(token)), wrapping_public_key: toB64(fromB64(answer.wrapping_public_key, 'wrapping key', 32)) };
        } catch {
          throw new PeerError('peer_bad_answer', `the node at ${spec.url} answered a malformed identity`);
        }
        if (spec.fingerprint !== undefined && spec.fingerprint !== id.fingerprint) {
          throw new PeerError('peer_identity_mismatch', `the node at ${spec.url} is ${id.fingerprint}, not ${spec.fingerprint}`, 'check the URL, and the fingerprint printed by `lifeboat node init` on the fail-over');
        }
        // The wrapping key is not covered by the fingerprint: pin it too when it is known.
        if (pinnedKey !== undefined && pinnedKey !== id.wrapping_public_key) {
          throw new PeerError('peer_identity_mismatch', `the node at ${spec.url} offers wrapping key ${id.wrapping_public_key}, not ${pinnedKey}`, 'compare with the wrapping key `lifeboat node init` printed on the fail-over');
        }
        if (id.identity === n.service.identity().identity) throw new InvalidInputError('a node cannot be its own fail-over');
        const whitelist = n.config.export.whitelist.some((w) => w.wrapping_key === id.wrapping_public_key)
          ? n.config.export.whitelist
          : [...n.config.export.whitelist, { label: `fail-over ${id.fingerprint}`, wrapping_key: id.wrapping_public_key }];
        saveNodeConfig(n.paths, { ...n.config, export: { ...n.config.export, whitelist }, failover: { url: spec.url, identity: id.identity, wrapping_key: id.wrapping_public_key } });
        if (!n.config.export.enabled) out.warn('export is disabled in node.json: the fail-over copy is an export and will fail until it is enabled');
        return { failover: spec.url, fingerprint: id.fingerprint, wrapping_key: id.wrapping_public_key, pinned: spec.fingerprint !== undefined && o.wrappingKey !== undefined };
      });
      const apply = 'send SIGHUP to this node’s running `lifeboat node serve` to apply (or restart it)';
      if (o.json) out.json({ ...result, apply: 'sighup' });
      else if ('paired_primary' in result) out.out(`fail-over of primary ${result.fingerprint}; ${apply}`);
      else {
        out.out(`primary of fail-over ${result.fingerprint} at ${result.failover}, wrapping key ${result.wrapping_key} whitelisted; ${apply}`);
        if (!result.pinned) out.info('hint: compare that fingerprint and wrapping key with what `lifeboat node init` printed on the fail-over, or pass URL#FINGERPRINT and --wrapping-key');
      }
    });

  node
    .command('backup')
    .description('write a consistent, encrypted snapshot of the node (keys, API keys; never nonces) while it serves')
    .requiredOption('--out <file>', 'backup file (written 0600, atomically)')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--store <url>', STORE_HELP)
    .option('--json', 'print JSON')
    .action(async (o: DirOpts & { out: string }) => {
      const r = await withNode(o, (n) => createNodeBackup(n.store, n.secrets));
      writeFileAtomic(o.out, r.bytes);
      const out = createOutput();
      if (o.json) out.json({ ok: true, keys: r.keys, file: o.out, bytes: r.bytes.length, created_at: r.createdAt });
      else out.out(`backed up ${r.keys} keys to ${o.out} (signing nonces are never backed up)`);
    });

  const restore = node
    .command('restore')
    .description('restore a node: from its backup service onto a fresh machine, from a backup file into an empty store, or --database after a database-level restore')
    .option('--backup-server <url>', 'rebuild the node from this backup service (password prompted) into a new --data-dir')
    .option('--account <name>', 'with --backup-server: the account')
    .option('--stream <name>', 'with --backup-server: the stream (default: the account’s only one)')
    .option('--expect-seq <n>', 'with --backup-server: refuse a stream whose head is below entry N (a rolled-back service)', intIn(0, Number.MAX_SAFE_INTEGER))
    .option('--to-seq <n>', 'with --backup-server: restore the keys as they were after entry N (a point in time; see `lifeboat backup snapshots`)', intIn(0, Number.MAX_SAFE_INTEGER))
    .option('--to-time <rfc3339>', 'with --backup-server: restore the keys as they were at this time, e.g. 2026-12-03T18:00:00Z (the last entry committed at or before it)')
    .option('--dry-run', 'with --backup-server: download and check everything, print what would be restored, write nothing')
    .option('--restore-token', 'with --backup-server: also prompt for the account’s restore token (after the password), which gets the login past a flood of others’ logins')
    .option('--totp', 'with --backup-server: the account has a second factor: prompt for its code (or a recovery code) after the password and restore token')
    .option('--serve', 'with --backup-server: serve the restored node right away (as `node serve`)')
    .option('--listen <host:port>', 'with --serve: address to listen on', '127.0.0.1:7401')
    .option('--tls-cert <file>', `with --serve: ${TLS_CERT_HELP}`)
    .option('--tls-key <file>', `with --serve: ${TLS_KEY_HELP}`)
    .addOption(logLevelOption('with --serve: log level on stderr'))
    .option('--in <file>', 'backup file written by `lifeboat node backup`, or the snapshot the recovery kit\'s `keyshare recover` wrote (restore-snapshot.lbnb, docs/kit.md)')
    .option('--database', 'the database itself was restored (dump or copy): void every unused nonce and check every share')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--store <url>', STORE_HELP)
    .option('--json', 'print JSON');
  addPasswordOptions(addWalletOptions(restore))
    .addHelpText('after', promptsHelp(['with --backup-server: the backup password (with --wallet, --password-file or --password-command: no prompt)', 'with --restore-token: the restore token', 'with --totp: the code of the authenticator app (or a recovery code)']) + PASSWORD_HELP + RESTORE_POINT_HELP + WALLET_HELP)
    .action(async (o: DirOpts & { in?: string; database?: boolean; backupServer?: string; account?: string; stream?: string; expectSeq?: number }) => {
      if ([o.in, o.database, o.backupServer].filter(Boolean).length !== 1) throw new UsageError('give exactly one of --backup-server URL, --in FILE or --database');
      if (!o.backupServer && restorePointGiven(o as RestorePointOpts)) throw new UsageError('--to-seq, --to-time and --dry-run go with --backup-server');
      if (o.backupServer) return restoreFromServiceCommand(o as Parameters<typeof restoreFromServiceCommand>[0]);
      const out = createOutput({ quiet: o.json });
      const progress = (done: number, total: number) => out.info(`checked ${done}/${total} shares against their verifying shares`);
      const r = await withNode(o, async (n) => {
        if (o.database) return { mode: 'database', ...(await voidNoncesAndVerify(n.store, n.secrets, progress)) };
        const snap = openNodeBackup(readFileOrThrow(o.in!, 'node backup'), n.secrets);
        return { mode: 'backup', created_at: snap.createdAt, ...(await restoreNodeBackup(n.store, n.secrets, snap, progress)) };
      });
      if (o.json) out.json({ ok: true, ...r });
      else {
        const nonces = 'noncesDeleted' in r ? `; deleted ${r.noncesDeleted} unused signing nonces` : '';
        out.out(`restored ${r.keys} keys (${r.mode}); every share matches its verifying share${nonces}; nonce epoch is now ${r.epoch}: no earlier nonce can sign`);
      }
    });

  node
    .command('status')
    .description('local status: keys, unused nonces, fail-over lag, backup, durable channels and the public log, emergency recovery (ERS policy; keys with a verified package)')
    .option('--keys', 'also list every key with its status, share epoch and the channels that hold it (the log with its entry index and checkpoint size)')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--store <url>', STORE_HELP)
    .option('--json', 'print JSON')
    .action(async (o: DirOpts & { keys?: boolean }) => {
      const s = await withNode(o, async (n) => ({
        keys: await n.store.countKeys(),
        unused_nonces: await n.store.countNonces(),
        ...(await n.failover.status()),
        backup: n.backup ? { server: n.config.backup!.server, account: n.config.backup!.account, ...(await n.backup.status()) } : null,
        channels: await channelStatus(n),
        ers: await ersStatus(n.store, n.config),
        ...(o.keys ? { key_channels: await keyChannelRows(n) } : {}),
      }));
      const out = createOutput();
      if (o.json) out.json(s);
      else {
        const { key_channels: rows, ...rest } = s as typeof s & { key_channels?: Awaited<ReturnType<typeof keyChannelRows>> };
        for (const [k, v] of Object.entries(rest)) out.out(`${k.padEnd(14)} ${typeof v === 'object' ? JSON.stringify(v) : v}`);
        for (const r of rows ?? []) out.out(`${r.key_id}  ${r.status.padEnd(14)}  epoch ${r.epoch}  ${JSON.stringify(r.channels)}`);
      }
    });
}
