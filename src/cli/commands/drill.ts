/** `lifeboat drill`: the worst day, end to end on this machine, timed, with a report. */
import type { Command } from 'commander';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveOverTls, stopAll } from '../../drill/proc.js';
import { makeDrillTls } from '../../drill/tls.js';
import { runScenarios, type ScenarioResult } from '../../drill/runner.js';
import { vaultScenarios, type VaultDrillContext } from '../../drill/vault-scenarios.js';
import { keynodeScenarios, type KeyNodeDrillContext } from '../../drill/keynode-scenarios.js';
import { backupScenarios } from '../../drill/backup-scenarios.js';
import { walletScenarios } from '../../drill/wallet-scenarios.js';
import { logScenarios, type LogDrillContext } from '../../drill/log-scenarios.js';
import { keyshareScenarios } from '../../drill/keyshare-scenarios.js';
import { ersScenarios } from '../../drill/ers-scenarios.js';
import { coverageAfter, coverageBefore, type CoverageDrillContext } from '../../drill/coverage-scenarios.js';
import { consoleLines, type DrillConsole, startDrillConsole } from '../../drill/console.js';
import { renderReport } from '../../coverage/render.js';
import { createOutput } from '../io.js';
import { LifeboatError } from '../../errors.js';

export function registerDrillCommand(program: Command): void {
  program
    .command('drill')
    .description('run the worst day end to end with real processes on loopback, and report')
    .option('--json', 'print {"ok": …, "scenarios": [{"name", "ok", "ms"}], "coverage": {"before", "after"}} on stdout')
    .option('--keep', 'keep the drill directory for inspection')
    .option('--tls', 'run every server over TLS (https) with a throwaway CA made by openssl, every client given the CA')
    .option('--console', 'afterwards keep the backup fleet up with a console over it (address, sign-in token file and a command that stops one node\'s backup stream printed) until Ctrl-C')
    .action(async (o: { json?: boolean; keep?: boolean; tls?: boolean; console?: boolean }) => {
      const out = createOutput({ quiet: o.json });
      const dir = mkdtempSync(join(tmpdir(), 'lifeboat-drill-'));
      const ctx: VaultDrillContext = { dir, holders: [], holderSpecs: [], operatorKey: '', offlineShare: '', primaryFingerprint: '', oldShares: [], secrets: new Map(), servers: [] };
      // The key node scenarios are independent of the vault's: a vault failure does not skip them.
      const keynode: KeyNodeDrillContext = { dir: join(dir, 'keynode'), servers: ctx.servers };
      const t0 = performance.now();
      out.info(`drill in ${dir}`);
      let caFile: string | null = null;
      if (o.tls) {
        try {
          const files = makeDrillTls(join(dir, 'tls'));
          serveOverTls(files);
          caFile = files.ca;
        } catch (err) {
          if (!o.keep) rmSync(dir, { recursive: true, force: true });
          throw err;
        }
        out.info('every server over TLS, every client given the drill\'s CA');
      }
      // Interrupted (Ctrl-C, a service manager's stop): end every process the drill started, remove its
      // directory (unless --keep), exit 128 + the signal's number. A second signal meanwhile is ignored.
      let interrupted: Promise<void> | undefined;
      let finishOnSignal: (() => number) | undefined;
      const onSignal = (signal: NodeJS.Signals): void => {
        if (interrupted) return;
        out.info(`${finishOnSignal ? 'stopping' : `interrupted (${signal}): stopping`} the drill's processes${o.keep ? '' : ` and removing ${dir}`}`);
        interrupted = stopAll('SIGTERM').catch(() => 0).then(() => {
          if (!o.keep) rmSync(dir, { recursive: true, force: true });
          process.exit(finishOnSignal ? finishOnSignal() : signal === 'SIGINT' ? 130 : 143);
        });
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const report = (r: ScenarioResult) => out.info(`${r.ok ? 'ok  ' : r.skipped ? 'skip' : 'FAIL'} ${r.name} (${r.ms} ms)${r.ok || r.skipped ? '' : `: ${r.error}`}`);
      const backup: CoverageDrillContext = { dir: join(dir, 'backup'), servers: ctx.servers, active: [], coverage: {} };
      let results: ScenarioResult[];
      let kept: DrillConsole | undefined;
      let consoleError: string | undefined;
      try {
        results = [...(await runScenarios(vaultScenarios, ctx, report)), ...(await runScenarios(keynodeScenarios, keynode, report))];
        // Coverage before the worst day (the keys made) and after the node was rebuilt from the service.
        const destroy = backupScenarios[backupScenarios.length - 1]!;
        results.push(...(await runScenarios([...backupScenarios.slice(0, -1), coverageBefore, destroy, coverageAfter], backup, report)));
        results.push(...(await runScenarios(walletScenarios, { dir: join(dir, 'wallet'), servers: ctx.servers }, report)));
        const log: LogDrillContext = { dir: join(dir, 'log'), servers: ctx.servers };
        results.push(...(await runScenarios(logScenarios, log, report)));
        results.push(...(await runScenarios(keyshareScenarios, { dir: join(dir, 'keyshare'), servers: ctx.servers, log }, report)));
        results.push(...(await runScenarios(ersScenarios, { dir: join(dir, 'ers'), servers: ctx.servers }, report)));
        if (o.console && !interrupted) {
          try {
            kept = await startDrillConsole(backup, caFile);
          } catch (err) {
            consoleError = err instanceof LifeboatError ? `${err.code}: ${err.message}` : String(err);
          }
        }
      } finally {
        if (!interrupted && !kept) {
          await Promise.all(ctx.servers.map((s) => s.stop()));
          if (!o.keep) rmSync(dir, { recursive: true, force: true });
        }
      }
      if (interrupted) return await interrupted; // which ends the process
      if (!kept) {
        process.removeListener('SIGINT', onSignal);
        process.removeListener('SIGTERM', onSignal);
      }
      const ok = results.every((r) => r.ok) && !consoleError;
      const total = Math.round(performance.now() - t0);
      if (o.json) out.json({ ok, ms: total, scenarios: results, coverage: { before: backup.coverage.before ?? null, after: backup.coverage.after ?? null }, ...(o.console ? { console: kept ?? null } : {}) });
      else {
        out.out('');
        out.out('lifeboat drill report');
        for (const r of results) out.out(`  ${r.ok ? 'ok  ' : r.skipped ? 'skip' : 'FAIL'}  ${String(r.ms).padStart(6)} ms  ${r.name}${r.ok || r.skipped ? '' : `\n        ${r.error}`}`);
        for (const [when, rep] of [['before the worst day', backup.coverage.before], ['after recovery', backup.coverage.after]] as const) {
          if (!rep) continue;
          out.out(`  coverage ${when}:`);
          for (const line of renderReport(rep)) out.out(`    ${line}`);
        }
        out.out(`  ${ok ? 'PASSED' : 'FAILED'} in ${(total / 1000).toFixed(1)} s`);
        if (consoleError) out.out(`  no console: ${consoleError}`);
        if (kept) for (const line of ['', ...consoleLines(kept)]) out.out(line);
      }
      if (!ok) process.exitCode = 1;
      // --console: the fleet and its console run on; Ctrl-C (or SIGTERM) ends them as above, then the
      // process exits with the drill's own code (130/143 only for a drill interrupted while it ran).
      if (kept) finishOnSignal = () => (ok ? 0 : 1);
    });
}
