/**
 * Running the backup service (`lifeboat backup-server serve`, docs/backup-server.md): its data
 * directory and store URL, the OPAQUE server setup kept there, and a started server that purges expired
 * rows until it is closed. The routes are ./server.ts; the domain ./service.ts.
 */
import { join, resolve } from 'node:path';
import * as opaque from '@serenity-kit/opaque';
import type { FastifyInstance } from 'fastify';
import type { BaseAppOptions } from '../http/app.js';
import { listen } from '../http/listen.js';
import { ensurePrivateDir } from '../util/files.js';
import { readMonitorHashes } from './monitor.js';
import { loadOrCreateSecretFile, loadOrCreateTotpSealKey } from './secret-files.js';
import { type BackupRateLimits, createBackupApp, DEFAULT_RATE_LIMITS } from './server.js';
import { BackupService, type BackupTtls } from './service.js';
import { openBackupStore } from './store/index.js';
import type { BackupStore } from './store/types.js';

/** The data directory: `dir`, else $LIFEBOAT_BACKUP_SERVER_DIR, else ./lifeboat-backup-server; absolute. */
export function resolveBackupServerDir(dir?: string): string {
  return resolve(dir ?? process.env.LIFEBOAT_BACKUP_SERVER_DIR ?? 'lifeboat-backup-server');
}

/** The store URL: `override`, else $LIFEBOAT_BACKUP_STORE, else sqlite:<dir>/backup.sqlite. */
export function backupStoreUrl(dir: string, override?: string): string {
  return override ?? process.env.LIFEBOAT_BACKUP_STORE ?? `sqlite:${join(dir, 'backup.sqlite')}`;
}

export const OPAQUE_SETUP_FILE = 'opaque-server-setup';

/**
 * Reads the OPAQUE server setup from `<dir>/opaque-server-setup`, creating it on first use. It is the
 * server's long-term secret: losing it invalidates every registration (every account must register
 * again), so it is backed up with the database. Created 0600 and exclusively (temp file, fsync, link),
 * so two servers started at once on one directory end up with the same setup.
 * Throws InvalidInputError `insecure_permissions` for a file others can read.
 */
export async function loadOrCreateServerSetup(dir: string): Promise<string> {
  await opaque.ready;
  return loadOrCreateSecretFile(dir, OPAQUE_SETUP_FILE, 'opaque server setup', () => opaque.server.createSetup());
}

export interface BackupServerOptions {
  dataDir: string;
  /** Store URL (see backupStoreUrl). */
  store?: string;
  /** host:port (port 0 for any free one). */
  listen: string;
  logger?: BaseAppOptions['logger'];
  /** Serve https with this certificate and key (`--tls-cert/--tls-key`, src/http/tls.ts). */
  tls?: BaseAppOptions['tls'];
  trustProxy?: BaseAppOptions['trustProxy'];
  rateLimits?: Partial<BackupRateLimits>;
  ttls?: Partial<BackupTtls>;
  /** The domain wallet logins are for (host[:port] of the URL clients use); default: the listen address. */
  walletDomain?: string;
  /** The chain id wallet logins name (1, Ethereum mainnet). */
  walletChainId?: number;
  /** How often expired logins, challenges, tokens and stale uploads are deleted (60 s). */
  purgeIntervalMs?: number;
  /** Where a failed purge is reported. */
  warn?: (line: string) => void;
}

export interface RunningBackupServer {
  url: string;
  app: FastifyInstance;
  service: BackupService;
  store: BackupStore;
  /** Stops answering, waits for requests in flight, closes the store; idempotent. */
  close(): Promise<void>;
}

/**
 * Opens the store, loads (or creates) the OPAQUE server setup, listens, and purges expired rows
 * periodically. Throws what openBackupStore, loadOrCreateServerSetup and listen throw.
 */
export async function startBackupServer(opts: BackupServerOptions): Promise<RunningBackupServer> {
  ensurePrivateDir(opts.dataDir);
  const serverSetup = await loadOrCreateServerSetup(opts.dataDir);
  const store = await openBackupStore(backupStoreUrl(opts.dataDir, opts.store));
  let app: FastifyInstance | undefined;
  try {
    const limits = { ...DEFAULT_RATE_LIMITS, ...opts.rateLimits };
    const totpSealKey = loadOrCreateTotpSealKey(opts.dataDir);
    const service = await BackupService.create({ store, serverSetup, ttls: opts.ttls, totpSealKey, totpLimit: limits.totpPerAccount });
    app = createBackupApp({ service, logger: opts.logger, tls: opts.tls, trustProxy: opts.trustProxy, rateLimits: opts.rateLimits, monitorHashes: () => readMonitorHashes(opts.dataDir) });
    const url = await listen(app, opts.listen);
    service.siwe = { domain: opts.walletDomain ?? new URL(url).host, chainId: opts.walletChainId ?? 1 };
    const purge = setInterval(() => {
      service.deleteExpired().catch((err: Error) => opts.warn?.(`purge of expired rows failed: ${err.message}`));
    }, opts.purgeIntervalMs ?? 60_000);
    purge.unref();
    let closing: Promise<void> | undefined;
    const running = app;
    return {
      url,
      app: running,
      service,
      store,
      close: () =>
        (closing ??= (async () => {
          clearInterval(purge);
          try {
            await running.close();
          } finally {
            await store.close();
          }
        })()),
    };
  } catch (err) {
    await app?.close();
    await store.close();
    throw err;
  }
}
