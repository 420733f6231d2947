/**
 * `lifeboat fleet init | add` and `lifeboat coverage`: the fleet file, and every key's recovery paths
 * from it (docs/coverage.md). Coverage prints the report (JSON with --json) and exits 1 when a key is
 * not ok, a part did not answer or the vault's last verify is missing, failed or old.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { ConflictError, InvalidInputError } from '../../errors.js';
import { collectFleet } from '../../coverage/collect.js';
import { type CredentialRef, emptyFleet, encodeFleet, type Fleet, FleetError, loadFleet, parseFleet } from '../../coverage/fleet.js';
import { renderReport } from '../../coverage/render.js';
import { buildReport, type CoverageReport } from '../../coverage/report.js';
import { loadMasterKey, primaryPaths } from '../../primary/datadir.js';
import { getEntry } from '../../vault/vault.js';
import { writeFileAtomic } from '../../util/files.js';
import { createOutput, EXIT } from '../io.js';
import { intIn } from '../options.js';

export const FLEET_HELP = 'the fleet file (default: $LIFEBOAT_FLEET or ./fleet.json; docs/coverage.md)';

/** The fleet file path: --fleet, else $LIFEBOAT_FLEET, else ./fleet.json. */
export function fleetPath(explicit?: string): string {
  return resolve(explicit ?? process.env.LIFEBOAT_FLEET ?? 'fleet.json');
}

/** Reads a vault entry of the fleet's primary (unsealed) as text: credentials `{"vault": NAME}`. */
export function vaultReader(fleet: Fleet): ((entry: string) => string) | undefined {
  if (!fleet.vault) return undefined;
  const paths = primaryPaths(fleet.vault.data_dir);
  return (entry) => new TextDecoder().decode(getEntry(paths.vault, loadMasterKey(paths), entry));
}

/** Runs coverage on a fleet: asks every part, builds the report. */
export async function runCoverage(fleet: Fleet): Promise<CoverageReport> {
  return buildReport(fleet, await collectFleet(fleet, { readVault: vaultReader(fleet) }));
}

function credentialOf(o: { credentialFile?: string; credentialFd?: number; credentialVault?: string }): CredentialRef {
  const given = [o.credentialFile !== undefined, o.credentialFd !== undefined, o.credentialVault !== undefined].filter(Boolean).length;
  if (given !== 1) throw new InvalidInputError('give exactly one of --credential-file FILE, --credential-fd N or --credential-vault ENTRY', { hint: 'the token itself never goes in the fleet file: a 0600 file, a descriptor or a vault entry holds it' });
  if (o.credentialFile !== undefined) return { file: resolve(o.credentialFile) };
  if (o.credentialFd !== undefined) return { fd: o.credentialFd };
  return { vault: o.credentialVault! };
}

/** `--ca-file` of `fleet add`, recorded in the entry as an absolute path (docs/coverage.md, "The fleet file"). */
function caOf(o: { caFile?: string }): { ca_file?: string } {
  return o.caFile ? { ca_file: resolve(o.caFile) } : {};
}

function splitFingerprint(url: string): { url: string; fingerprint?: string } {
  const i = url.lastIndexOf('#');
  return i < 0 ? { url } : { url: url.slice(0, i), fingerprint: url.slice(i + 1) };
}

/** Adds a part to the fleet file: parsed again before it is written, so the file stays valid. */
function addPart(o: { fleet?: string }, edit: (f: Fleet) => void, what: string): void {
  const path = fleetPath(o.fleet);
  const fleet = loadFleet(path);
  edit(fleet);
  const text = encodeFleet(fleet);
  parseFleet(text);
  writeFileAtomic(path, text);
  createOutput().info(`added ${what} to ${path}`);
}

const CRED_OPTS = (c: Command, token: string): Command =>
  c
    .option('--credential-file <file>', `a 0600 file holding the ${token}`)
    .option('--credential-fd <n>', `a file descriptor coverage will read the ${token} from`, intIn(3, 1023))
    .option('--credential-vault <entry>', `an entry of the primary's vault holding the ${token} (the fleet's vault data dir, unsealed)`);

export function registerCoverageCommands(program: Command): void {
  const fleet = program.command('fleet').description('the fleet file: the parts `lifeboat coverage` asks (docs/coverage.md)');
  fleet
    .command('init')
    .description('write an empty fleet file (JSON, mode 0600)')
    .option('--fleet <file>', FLEET_HELP)
    .option('--timeout-ms <ms>', 'how long each part may take to answer one request', intIn(100, 600_000))
    .option('--force', 'replace an existing file')
    .action((o: { fleet?: string; timeoutMs?: number; force?: boolean }) => {
      const path = fleetPath(o.fleet);
      if (existsSync(path) && !o.force) throw new ConflictError(`${path} exists`, 'fleet_exists', 'pass --force to replace it, or `lifeboat fleet add` to extend it');
      const f = emptyFleet();
      if (o.timeoutMs) f.timeout_ms = o.timeoutMs;
      writeFileAtomic(path, encodeFleet(f));
      createOutput().info(`wrote ${path}`);
    });
  const add = fleet.command('add').description('add a part to the fleet file');
  CRED_OPTS(add.command('node <name>').description('a key node, read with a monitor token of its own (`lifeboat node monitor-token`)').requiredOption('--url <url>', 'its URL, optionally URL#FINGERPRINT to pin it'), 'node monitor token (or operator API key)')
    .option('--failover <name>', 'its fail-over node (add that node first)')
    .option('--fleet <file>', FLEET_HELP)
    .action((name: string, o: { caFile?: string; url: string; failover?: string; fleet?: string; credentialFile?: string; credentialFd?: number; credentialVault?: string }) => {
      const { url, fingerprint } = splitFingerprint(o.url);
      addPart(o, (f) => {
        if (f.nodes.some((n) => n.name === name)) throw new FleetError('fleet_name_taken', `the fleet already has a node ${name}`);
        f.nodes.push({ name, url, ...(fingerprint ? { fingerprint } : {}), ...caOf(o), credential: credentialOf(o), ...(o.failover ? { failover: o.failover } : {}) });
      }, `node ${name}`);
    });
  CRED_OPTS(add.command('backup-service <name>').description('a backup service, read with a monitor token (`lifeboat backup-server monitor-token`)').requiredOption('--url <url>', 'its URL'), 'monitor token')
    .option('--fleet <file>', FLEET_HELP)
    .action((name: string, o: { caFile?: string; url: string; fleet?: string; credentialFile?: string; credentialFd?: number; credentialVault?: string }) => {
      addPart(o, (f) => void f.backup_services.push({ name, url: o.url, ...caOf(o), credential: credentialOf(o) }), `backup service ${name}`);
    });
  add
    .command('holder <name>')
    .description('a share holder (its identity is public: no credential)')
    .requiredOption('--url <url>', 'URL#FINGERPRINT as `recovery init --holder` takes it')
    .option('--fleet <file>', FLEET_HELP)
    .action((name: string, o: { caFile?: string; url: string; fleet?: string }) => {
      const { url, fingerprint } = splitFingerprint(o.url);
      addPart(o, (f) => void f.holders.push({ name, url, ...(fingerprint ? { fingerprint } : {}), ...caOf(o) }), `holder ${name}`);
    });
  add
    .command('log <name>')
    .description('a public log (read anonymously: its checkpoint)')
    .requiredOption('--url <url>', 'its URL')
    .option('--fleet <file>', FLEET_HELP)
    .action((name: string, o: { caFile?: string; url: string; fleet?: string }) => addPart(o, (f) => void f.logs.push({ name, url: o.url, ...caOf(o) }), `log ${name}`));
  add
    .command('vault')
    .description('the primary whose last `recovery verify` coverage reports (and whose vault may hold credentials)')
    .requiredOption('--data-dir <dir>', 'the primary’s data directory')
    .option('--fleet <file>', FLEET_HELP)
    .action((o: { dataDir: string; fleet?: string }) => addPart(o, (f) => void (f.vault = { data_dir: resolve(o.dataDir) }), 'the vault'));

  program
    .command('coverage')
    .description('every key’s recovery paths and whether it survives the loss of a node, from every part of the fleet at once (read-only); exit 1 if any key is not ok')
    .option('--fleet <file>', FLEET_HELP)
    .option('--key <id>', 'only this key (a key id on any node), with every member’s paths')
    .option('--json', 'print the report as JSON')
    .action(async (o: { fleet?: string; key?: string; json?: boolean }) => {
      const out = createOutput({ quiet: o.json });
      const report = await runCoverage(loadFleet(fleetPath(o.fleet)));
      if (o.key) {
        const k = report.keys.filter((x) => x.member_detail.some((m) => m.key_id === o.key) || x.key_id === o.key);
        if (k.length === 0) throw new InvalidInputError(`no node of the fleet that answered holds a key ${o.key}`, { code: 'key_id_not_exists', hint: 'run `lifeboat coverage` to list every key' });
        report.keys = k;
        report.ok = k.every((x) => x.verdict === 'ok');
      }
      if (o.json) out.json(report);
      else for (const line of renderReport(report, !!o.key)) out.out(line);
      if (!report.ok) process.exitCode = EXIT.failed;
    });
}
