/**
 * What the backup service exposes on /metrics and /readyz (docs/monitoring.md, "Backup service"):
 * failed logins by err_type, accounts by state, streams. No label names an account or a stream.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Counter } from 'prom-client';
import type { ObserveOptions } from '../http/observe.js';
import type { BackupStore } from './store/types.js';

/** The refusals that are a failed login or proof: a wrong password, a bad auth-key proof or wallet signature, a bad second factor. */
export const FAILED_LOGIN_TYPES = new Set(['login_failed', 'auth_failed', 'totp_invalid', 'totp_reused', 'totp_required']);

/** Gauges over the store and its readiness check, for createBackupApp's `observe`. */
export function backupObservability(store: BackupStore): ObserveOptions {
  const accounts = () => store.listAccounts();
  return {
    server: 'backup-server',
    ready: { store: () => store.getAccount('readyz-probe') },
    gauges: [
      {
        name: 'lifeboat_backup_accounts',
        help: 'accounts by state (registered, invited)',
        labelNames: ['state'],
        collect: async () => {
          const all = await accounts();
          const registered = all.filter((a) => a.registration !== null).length;
          return [
            { labels: { state: 'registered' }, value: registered },
            { labels: { state: 'invited' }, value: all.length - registered },
          ];
        },
      },
      {
        name: 'lifeboat_backup_streams',
        help: 'backup streams over all accounts',
        collect: async () => {
          let n = 0;
          for (const a of await accounts()) n += (await store.listStreams(a.name)).length;
          return n;
        },
      },
    ],
  };
}

/** Counts failed logins (`lifeboat_backup_failed_logins_total{err_type}`) from the answers refused with one of FAILED_LOGIN_TYPES. */
export function countFailedLogins(app: FastifyInstance): void {
  const failed = new Counter({ name: 'lifeboat_backup_failed_logins_total', help: 'failed logins and auth proofs, by err_type', labelNames: ['err_type'], registers: [app.metrics!] });
  for (const t of FAILED_LOGIN_TYPES) failed.inc({ err_type: t }, 0);
  app.addHook('onResponse', async (req: FastifyRequest, _reply: FastifyReply) => {
    const t = req.refusal?.errType;
    if (t !== undefined && FAILED_LOGIN_TYPES.has(t)) failed.inc({ err_type: t });
  });
}
