/**
 * The worst day for the vault (issue: recovery vault): two holders on loopback, init 2-of-3, secrets
 * in the vault, the primary's data directory deleted, reconstruction from one holder plus the offline
 * share, every secret checked, rotation, verification, and the old shares refused.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { LifeboatError } from '../errors.js';
import { type RunningServer, runCli, type RunResult, startServer } from './proc.js';
import { expectOk, type Scenario } from './runner.js';

export interface VaultDrillContext {
  dir: string;
  holders: RunningServer[];
  holderSpecs: string[];
  operatorKey: string;
  offlineShare: string;
  /** The primary's fingerprint, printed with the offline share (it goes on the paper). */
  primaryFingerprint: string;
  oldShares: string[];
  secrets: Map<string, string>;
  /** Every process the drill started, stopped at the end. */
  servers: RunningServer[];
}

function json<T>(r: RunResult): T {
  return JSON.parse(r.stdout) as T;
}

const primaryDir = (c: VaultDrillContext) => join(c.dir, 'primary');

export const vaultScenarios: Scenario<VaultDrillContext>[] = [
  {
    name: 'start two share holders',
    async run(c) {
      const primary = json<{ identity: string }>(expectOk(await runCli(['primary', 'init', '--data-dir', primaryDir(c), '--json']), 'primary init'));
      c.operatorKey = join(c.dir, 'operator.json');
      const op = json<{ identity: string }>(expectOk(await runCli(['operator', 'keygen', '--out', c.operatorKey, '--json']), 'operator keygen'));
      for (const name of ['holder-a', 'holder-b']) {
        const dir = join(c.dir, name);
        const h = json<{ fingerprint: string }>(expectOk(await runCli(['holder', 'init', '--data-dir', dir, '--primary', primary.identity, '--operator', op.identity, '--json']), 'holder init'));
        const server = await startServer(['holder', 'serve', '--data-dir', dir, '--listen', '127.0.0.1:0', '--json']);
        c.servers.push(server);
        c.holders.push(server);
        c.holderSpecs.push(`${server.url}#${h.fingerprint}`);
      }
    },
  },
  {
    name: 'recovery init 2-of-3 (two sealed shares, one offline share)',
    async run(c) {
      const args = ['recovery', 'init', '--data-dir', primaryDir(c), '--threshold', '2', '--shares', '3', '--secret-fd', '3', '--json'];
      for (const h of c.holderSpecs) args.push('--holder', h);
      const r = expectOk(await runCli(args, { secretFd: true }), 'recovery init');
      c.offlineShare = r.secret.trim();
      c.primaryFingerprint = json<{ primary_fingerprint: string }>(r).primary_fingerprint;
      if (c.offlineShare.split(' ').length !== 33) throw new LifeboatError('drill_check_failed', 'the offline share is not 33 words');
    },
  },
  {
    name: 'put secrets in the vault',
    async run(c) {
      for (const name of ['backup-key', 'storage-key', 'api/token']) {
        const value = randomBytes(32).toString('base64');
        c.secrets.set(name, value);
        expectOk(await runCli(['vault', 'put', name, '--data-dir', primaryDir(c)], { input: value }), `vault put ${name}`);
      }
    },
  },
  {
    name: "lose the primary (delete its data directory)",
    async run(c) {
      rmSync(primaryDir(c), { recursive: true, force: true });
    },
  },
  {
    name: 'reconstruct from one holder and the offline share',
    async run(c) {
      const args = ['recovery', 'reconstruct', '--data-dir', primaryDir(c), '--operator-key', c.operatorKey, '--holder', c.holderSpecs[0]!, '--typed-shares', '1', '--primary-fingerprint', c.primaryFingerprint, '--json'];
      const r = json<{ entries: number }>(expectOk(await runCli(args, { input: `${c.offlineShare}\n` }), 'recovery reconstruct'));
      if (r.entries !== c.secrets.size) throw new LifeboatError('drill_check_failed', `reconstructed vault has ${r.entries} entries, expected ${c.secrets.size}`);
    },
  },
  {
    name: 'every secret is intact',
    async run(c) {
      for (const [name, value] of c.secrets) {
        const r = expectOk(await runCli(['vault', 'get', name, '--stdout', '--data-dir', primaryDir(c)]), `vault get ${name}`);
        if (r.stdout !== value) throw new LifeboatError('drill_check_failed', `secret ${name} differs after reconstruction`);
      }
    },
  },
  {
    name: 'rotate (new master, new shares)',
    async run(c) {
      c.oldShares = [c.offlineShare];
      const r = expectOk(await runCli(['recovery', 'rotate', '--data-dir', primaryDir(c), '--secret-fd', '3', '--json'], { secretFd: true }), 'recovery rotate');
      c.offlineShare = r.secret.trim();
      for (const [name, value] of c.secrets) {
        const g = expectOk(await runCli(['vault', 'get', name, '--stdout', '--data-dir', primaryDir(c)]), `vault get ${name}`);
        if (g.stdout !== value) throw new LifeboatError('drill_check_failed', `secret ${name} differs after rotation`);
      }
    },
  },
  {
    name: 'verify every holder and the new offline share',
    async run(c) {
      const r = json<{ ok: boolean; checks: unknown[] }>(expectOk(await runCli(['recovery', 'verify', '--data-dir', primaryDir(c), '--offline-shares', '1', '--json'], { input: `${c.offlineShare}\n` }), 'recovery verify'));
      if (!r.ok || r.checks.length !== 3) throw new LifeboatError('drill_check_failed', 'verification did not pass for every member');
    },
  },
  {
    name: 'the old offline share opens nothing',
    async run(c) {
      const r = await runCli(['recovery', 'verify', '--data-dir', primaryDir(c), '--offline-shares', '1', '--json'], { input: `${c.oldShares[0]}\n` });
      const report = JSON.parse(r.stdout) as { ok: boolean; checks: { kind: string; ok: boolean; code?: string }[] };
      const offline = report.checks.find((x) => x.kind === 'offline');
      if (r.code === 0 || !offline || offline.ok || !['share_set_mismatch', 'invalid_share'].includes(offline.code ?? '')) {
        throw new LifeboatError('drill_check_failed', 'the pre-rotation offline share was not refused as belonging to another share set');
      }
    },
  },
];
