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
  { commands: ['recovery'], load: async () => (await import('./recovery.js')).registerRecoveryCommands },
  { commands: ['holder'], load: async () => (await import('./holder.js')).registerHolderCommands },
  { commands: ['node'], load: async () => (await import('./node.js')).registerNodeCommands },
  { commands: ['key', 'sign'], load: async () => (await import('./key.js')).registerKeyCommands },
  { commands: ['backup'], load: async () => (await import('./backup.js')).registerBackupCommands },
  { commands: ['log'], load: async () => (await import('./log.js')).registerLogCommands },
  { commands: ['keyshare'], load: async () => (await import('./keyshare.js')).registerKeyshareCommands },
  { commands: ['ers'], load: async () => (await import('./ers.js')).registerErsCommands },
  { commands: ['drill'], load: async () => (await import('./drill.js')).registerDrillCommand },
  { commands: ['fleet', 'coverage'], load: async () => (await import('./coverage.js')).registerCoverageCommands },
  { commands: ['console'], load: async () => (await import('./console.js')).registerConsoleCommands },
  { commands: ['backup-server'], load: async () => (await import('./backup-server.js')).registerBackupServerCommands },
];

/**
 * Registers the group that `args` (the words after `lifeboat`) name, or every group when they name
 * none of them (`--help`, `help`, an unknown command: commander then lists or suggests them all).
 * `--version` alone loads nothing.
 */
export async function registerCommands(program: Command, args?: readonly string[]): Promise<void> {
  const first = args?.find((a) => !a.startsWith('-'));
  if (args && first === undefined && args.length > 0 && args.every((a) => a === '--version' || a === '-V')) return;
  const named = first === undefined ? [] : GROUPS.filter((g) => g.commands.includes(first));
  const groups = named.length > 0 ? named : GROUPS;
  for (const register of await Promise.all(groups.map((g) => g.load()))) register(program);
}
