/**
 * Recovery coverage in the drill (docs/coverage.md): the backup scenarios' fleet (a backup service and
 * three key nodes) written to a fleet file, and `lifeboat coverage --json` run on it before the worst
 * day (every key must be ok) and after the node was rebuilt from the service (every part must answer,
 * and no key may have lost a path for good). The reports go into the drill's report.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { LifeboatError } from '../errors.js';
import type { CoverageReport } from '../coverage/report.js';
import { emptyFleet, encodeFleet, parseFleet } from '../coverage/fleet.js';
import { writeFileAtomic } from '../util/files.js';
import { addMonitorToken } from '../http/monitor-token.js';
import { recordSecrets } from './log-dir.js';
import type { BackupDrillContext } from './backup-scenarios.js';
import { runCli } from './proc.js';
import { expectOk, type Scenario } from './runner.js';

export interface CoverageDrillContext extends BackupDrillContext {
  /** The reports, kept for the drill's output. */
  coverage: { before?: CoverageReport; after?: CoverageReport };
  fleetFile?: string;
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new LifeboatError('drill_check_failed', what);
}

export async function writeFleet(c: CoverageDrillContext): Promise<string> {
  if (c.fleetFile) return c.fleetFile;
  if (!c.fleet || !c.service) throw new LifeboatError('drill_check_failed', 'no backed-up nodes: an earlier scenario failed');
  const dir = join(c.dir, 'coverage');
  const file = join(dir, 'fleet.json');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const monitor = join(dir, 'monitor.token');
  const m = expectOk(await runCli(['backup-server', 'monitor-token', '--data-dir', c.service.dir, '--secret-fd', '3'], { secretFd: true }), 'backup-server monitor-token');
  writeFileAtomic(monitor, m.secret);
  // What `fleet init` and `fleet add` write (test/coverage.test.ts runs those), without six CLI starts.
  const fleet = emptyFleet();
  // Each node read with a monitor token of its own (`node monitor-token`): coverage needs no operator key.
  fleet.nodes = c.fleet.primaries.map((n) => ({ name: n.name, url: n.url, fingerprint: n.fingerprint, credential: { file: nodeTokenFile(dir, n.name) } }));
  fleet.backup_services = [{ name: 'backup', url: c.service.url, credential: { file: monitor } }];
  writeFileAtomic(file, encodeFleet(parseFleet(encodeFleet(fleet))));
  c.fleetFile = file;
  return file;
}

const nodeTokenFile = (dir: string, name: string) => join(dir, `${name}.monitor.token`);

/**
 * A fresh monitor token for each node, as `node monitor-token` makes it, into the file the fleet names:
 * a node rebuilt from its backup has a new data directory, and monitor tokens are not in backups.
 */
export function mintNodeMonitorTokens(c: CoverageDrillContext, fleetFile: string): void {
  for (const n of c.fleet!.primaries) {
    const token = addMonitorToken(n.dir);
    recordSecrets(['node', 'monitor-token'], [token]);
    writeFileAtomic(nodeTokenFile(dirname(fleetFile), n.name), `${token}\n`);
  }
}

async function coverage(c: CoverageDrillContext): Promise<{ code: number; report: CoverageReport }> {
  const fleetFile = await writeFleet(c);
  mintNodeMonitorTokens(c, fleetFile);
  const r = await runCli(['coverage', '--fleet', fleetFile, '--json']);
  try {
    return { code: r.code, report: JSON.parse(r.stdout) as CoverageReport };
  } catch {
    throw new LifeboatError('drill_step_failed', `coverage failed: ${r.stderr.split('\n').find((l) => l.includes('error:')) ?? r.stderr.trim()}`);
  }
}

export const coverageBefore: Scenario<CoverageDrillContext> = {
  name: 'coverage before the worst day: every key ok, each node’s stream confirmed by the backup service',
  async run(c) {
    const { code, report } = await coverage(c);
    c.coverage.before = report;
    check(report.summary.parts_unknown === 0, `${report.summary.parts_unknown} parts did not answer`);
    check(report.summary.keys >= c.active.length, `coverage found ${report.summary.keys} keys, fewer than the ${c.active.length} active`);
    check(code === 0 && report.ok, `coverage is not ok before the worst day: ${report.keys.find((k) => k.verdict !== 'ok')?.reasons.join('; ')}`);
  },
};

export const coverageAfter: Scenario<CoverageDrillContext> = {
  name: 'coverage after recovery: every part answers, no key has lost a path for good',
  async run(c) {
    const { report } = await coverage(c);
    c.coverage.after = report;
    check(report.summary.parts_unknown === 0, `${report.summary.parts_unknown} parts did not answer`);
    check(report.summary.lost_path === 0, `${report.summary.lost_path} keys lost a path for good`);
    const ids = new Set(report.keys.flatMap((k) => k.member_detail.map((m) => m.key_id)));
    for (const key of c.active) check(ids.has(key.nodes[1]!.keyId), `key ${key.nodes[1]!.keyId} is missing from the coverage report`);
  },
};
