/**
 * `lifeboat drill --console` (docs/coverage.md, "Trying it on the drill's fleet"): once the scenarios
 * have run, the backup scenarios' fleet (a backup service and three key nodes, written to a fleet file)
 * stays up with a console over it, until Ctrl-C. What the drill prints is what a new user needs: the
 * console's address, the file holding its sign-in token, the fleet file for `lifeboat coverage`, and
 * the command that stops one node's backup stream, to watch its keys move to at_risk.
 */
import { join } from 'node:path';
import { LifeboatError } from '../errors.js';
import { randomBytes } from '../crypto/random.js';
import { toHex } from '../util/bytes.js';
import { writeFileAtomic } from '../util/files.js';
import { accountOf } from './backup-scenarios.js';
import { type CoverageDrillContext, mintNodeMonitorTokens, writeFleet } from './coverage-scenarios.js';
import { recordSecrets } from './log-dir.js';
import { startServer } from './proc.js';

/** How often the drill's console asks the fleet, and its page reloads (seconds). */
const INTERVAL_S = 5;

export interface DrillConsole {
  url: string;
  /** 0600; what the console's login form asks for. */
  token_file: string;
  fleet_file: string;
  /** The CA the https:// servers are checked against (`drill --tls`), else null. */
  ca_file: string | null;
  /** One node's backup stream, and the command (argv after `lifeboat`) that stops it for good. */
  stop_stream: { node: string; account: string; args: string[] };
  /** The command (argv after `lifeboat`) that prints the coverage report of the fleet. */
  coverage_args: string[];
}

/**
 * Starts `console serve` over the drill's backup fleet (its process joins the drill's, stopped with
 * them). Throws `drill_console_unavailable` when the backup scenarios did not get as far as a fleet.
 */
export async function startDrillConsole(c: CoverageDrillContext, caFile: string | null): Promise<DrillConsole> {
  if (!c.fleet || !c.service) {
    throw new LifeboatError('drill_console_unavailable', 'the backup scenarios did not leave a fleet to show', {
      hint: 'the drill failed before its backup fleet was up: see the FAIL line above',
    });
  }
  // Only the backup fleet stays: every other server the drill started (holders, fail-over nodes, logs,
  // witnesses, the other scenarios' nodes and services) stops now.
  const keep = new Set([...c.fleet.primaries.map((n) => n.server), c.service.server]);
  await Promise.all(c.servers.filter((s) => !keep.has(s)).map((s) => s.stop()));
  const fleetFile = await writeFleet(c);
  mintNodeMonitorTokens(c, fleetFile);
  const tokenFile = join(c.dir, 'coverage', 'console.token');
  const token = toHex(randomBytes(32));
  writeFileAtomic(tokenFile, `${token}\n`);
  recordSecrets(['console', 'serve'], [token]);
  const server = await startServer(['console', 'serve', '--fleet', fleetFile, '--listen', '127.0.0.1:0', '--token-file', tokenFile, '--interval', String(INTERVAL_S), '--json']);
  c.servers.push(server);
  const node = c.fleet.primaries[0]!.name;
  return {
    url: server.url,
    token_file: tokenFile,
    fleet_file: fleetFile,
    ca_file: caFile,
    stop_stream: { node, account: accountOf(node), args: ['backup-server', 'account', 'rm', accountOf(node), '--yes', '--data-dir', c.service.dir] },
    coverage_args: ['coverage', '--fleet', fleetFile],
  };
}

/** Shell-quotes an argv for printing (paths under TMPDIR may hold anything). */
export function shellLine(args: string[]): string {
  return args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** The lines `drill --console` prints (without --json) once its console is up. */
export function consoleLines(k: DrillConsole): string[] {
  const env = k.ca_file ? `LIFEBOAT_CA_FILE=${shellLine([k.ca_file])} ` : '';
  return [
    'the drill’s backup fleet stays up, with a console over it, until Ctrl-C:',
    `  console:   ${k.url}  (sign in with the token in ${k.token_file})`,
    `  coverage:  ${env}lifeboat ${shellLine(k.coverage_args)}`,
    `  stop ${k.stop_stream.node}'s backup stream (its keys go at_risk, on the page within ${INTERVAL_S} s):`,
    `             lifeboat ${shellLine(k.stop_stream.args)}`,
  ];
}
