/**
 * The command groups. Each group lives in its own file and exports one register function; a group is
 * loaded only when its command runs (`lifeboat key create` never loads the backup service, the log
 * server or the age library), so start-up stays short. `--help` and an unknown command load them all.
 */
import type { Command } from 'commander';

type Register = (program: Command) => void;

interface Group {
  /** The top-level commands the group registers (test/cli-voice.test.ts checks this list). */
  commands: readonly string[];
  load: () => Promise<Register>;
}

export const GROUPS: readonly Group[] = [
  { commands: ['primary', 'operator', 'unseal', 'seal'], load: async () => (await import('./primary.js')).registerPrimaryCommands },
  {
    commands: ['vault'],
    load: async () => {
      const [{ registerVaultCommands }, { pushToHoldersListener, refuseBehindHolders }, { createOutput }] = await Promise.all([import('./vault.js'), import('../../recovery/sync.js'), import('../io.js')]);
      return (program) => {
        const { warn } = createOutput();
        registerVaultCommands(program, { onWrite: pushToHoldersListener(warn), guard: (path) => refuseBehindHolders(path, warn) });
      };
    },
  },
  {
    commands: ['kit'],
    load: async () => {
      const [{ registerKitCommands }, { pushToHoldersListener, refuseBehindHolders }, { createOutput }] = await Promise.all([import('./kit.js'), import('../../recovery/sync.js'), import('../io.js')]);
      return (program) => {
        const { warn } = createOutput();
        registerKitCommands(program, { onWrite: pushToHoldersListener(warn), guard: (path) => refuseBehindHolders(path, warn) });
      };
    },
  },
  { commands: ['recovery'], load: async () => (await import('./recovery.js')).registerRecoveryCommands },
  { commands: ['holder'], load: async () => (await import('./holder.js')).registerHolderCommands },
  { commands: ['node'], load: async () => (await import('./node.js')).registerNodeCommands },
  { commands: ['key', 'sign'], load: async () => (await import('./key.js')).registerKeyCommands },
  { commands: ['backup'], load: async () => (await import('./backup.js')).registerBackupCommands },
  { commands: ['log'], load: async () => (await import('./log.js')).registerLogCommands },
  {
    commands: ['keyshare'],
    load: async () => {
      const [{ registerKeyshareCommands }, { writeNodeStore }] = await Promise.all([import('./keyshare.js'), import('../../keyshare/recover-store.js')]);
      return (program) => registerKeyshareCommands(program, writeNodeStore);
    },
  },
  { commands: ['ers'], load: async () => (await import('./ers.js')).registerErsCommands },
  { commands: ['drill'], load: async () => (await import('./drill.js')).registerDrillCommand },
  { commands: ['fleet', 'coverage'], load: async () => (await import('./coverage.js')).registerCoverageCommands },
  { commands: ['console'], load: async () => (await import('./console.js')).registerConsoleCommands },
  { commands: ['backup-server'], load: async () => (await import('./backup-server.js')).registerBackupServerCommands },
];

/**
 * What the top-level help shows of each command, so `lifeboat --help` (and an unknown command's
 * suggestions) need no group loaded: its description, and whether it takes options (the help's
 * `[options]`). test/cli-voice.test.ts checks it against the loaded commands.
 */
export const SUMMARIES: Readonly<Record<string, { description: string; options?: true }>> = {
  primary: { description: 'the primary server identity' },
  operator: { description: "an operator's signing identity (authorises share releases)" },
  unseal: { description: 'load the master key: holders release to this primary, typed shares fill in; or a ceremony, one keyholder at a time (--begin, --step, --add, --reset)', options: true },
  seal: { description: 'forget the master key on this primary (overwrite and remove the unsealed key file)', options: true },
  vault: { description: 'named secrets in the encrypted vault (backup key, storage key, API tokens)' },
  kit: { description: "the recovery kit's release signature: a release key in the vault signs the kit's hashes (docs/kit.md)" },
  recovery: { description: "split, check and rebuild the vault's master key" },
  holder: { description: 'a share holder: keeps sealed recovery shares and releases them when authorised' },
  node: { description: 'a threshold-signing (FROST) key node' },
  key: { description: 'threshold keys on key nodes' },
  sign: { description: 'sign a message (up to the nodes’ message limit, 1 MiB by default) with any t of the key’s nodes (two FROST rounds; a node that cannot sign is replaced by the next); prints the signature hex', options: true },
  backup: { description: 'backup service accounts and streams, from the client side: snapshots, check, passwd, totp' },
  log: { description: 'the public backup log: an append-only transparency log (C2SP tlog-tiles) that anyone can audit' },
  keyshare: { description: "key-share backups under the operator's 24-word mnemonic (docs/keyshare.md)" },
  ers: { description: 'emergency recovery packages: every share verifiably encrypted to an offline RSA key (docs/ers.md)' },
  drill: { description: 'run the worst day end to end with real processes on loopback, and report', options: true },
  'backup-server': { description: 'the backup service: stores nodes’ encrypted backup streams; OPAQUE password login' },
  fleet: { description: 'the fleet file: the parts `lifeboat coverage` asks (docs/coverage.md)' },
  coverage: { description: 'every key’s recovery paths and whether it survives the loss of a node, from every part of the fleet at once (read-only); exit 1 if any key is not ok', options: true },
  console: { description: 'the coverage console: a web page of `lifeboat coverage` (docs/coverage.md)' },
};

/** A stand-in that only lists the command in the help: it is never run (a command named loads its group). */
function registerSummaries(program: Command): void {
  for (const g of GROUPS) {
    for (const name of g.commands) {
      const s = SUMMARIES[name];
      const stub = program.command(name).description(s?.description ?? '');
      if (s?.options) stub.option('--help-placeholder', '', undefined).helpOption(false);
    }
  }
}

/**
 * Registers what `args` (the words after `lifeboat`) need: the group of the command they name; or,
 * when they name none (`--help`, `help` alone, an unknown command), each command's summary only
 * (commander lists or suggests them; nothing is loaded). Without `args`, every group (the tests').
 * `--version` alone registers nothing.
 */
export async function registerCommands(program: Command, args?: readonly string[]): Promise<void> {
  const words = args?.filter((a) => !a.startsWith('-')) ?? [];
  const first = words[0];
  if (args && first === undefined && args.length > 0 && args.every((a) => a === '--version' || a === '-V')) return;
  // `help CMD` is `CMD --help`
  const named = first === 'help' ? words[1] : first;
  const groups = named === undefined ? [] : GROUPS.filter((g) => g.commands.includes(named));
  if (args && groups.length === 0) return registerSummaries(program);
  for (const register of await Promise.all((groups.length > 0 ? groups : GROUPS).map((g) => g.load()))) register(program);
}
