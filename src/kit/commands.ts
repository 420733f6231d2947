/**
 * The recovery kit's commands (docs/kit.md): the recovery subset of the CLI, registered from the very
 * definitions the full CLI uses (same names, flags and help), nothing that needs a server, a database
 * driver, a native add-on or the network to be useful. scripts/build-kit.mjs bundles src/cli/main.ts
 * with this module in place of src/cli/commands/index.ts, so the kit has the CLI's one voice, exit
 * codes and pending-commit check; it fails the build if a server or driver got into the bundle.
 *
 * Every other command of the full CLI is registered hidden and refuses with `not_in_kit`, naming the
 * full CLI, so that a command typed from a runbook says where it runs instead of "unknown command".
 */
import type { Command } from 'commander';
import { LifeboatError } from '../errors.js';
import { selfPath } from './self.js';

/**
 * What the kit leaves out of the full CLI: whole top-level commands, and the other subcommands of the
 * groups it offers. test/kit-bare.test.ts checks that these and the kit's own cover the full CLI.
 */
export const LEFT_OUT = {
  groups: ['primary', 'operator', 'unseal', 'seal', 'holder', 'node', 'key', 'sign', 'backup', 'log', 'drill', 'backup-server', 'fleet', 'coverage', 'console'],
  commands: { recovery: ['enrol', 'init', 'rotate', 'sync'], vault: ['put', 'rm', 'info'], ers: ['keygen', 'whitelist', 'backup'], keyshare: ['identity'], kit: ['keygen', 'sign'] },
} as const;

function notInKit(path: string): LifeboatError {
  return new LifeboatError('not_in_kit', `\`lifeboat ${path}\` is not in the recovery kit`, {
    hint: `the kit holds only the recovery commands (\`lifeboat-kit --help\`, docs/kit.md); run \`lifeboat ${path}\` with the full CLI (a checkout with \`npm ci && npm run build\`, then \`node bin/lifeboat.js ${path} …\`)`,
  });
}

/** A hidden command that takes anything and refuses with `not_in_kit`. */
function leftOut(parent: Command, name: string, path: string): void {
  parent
    .command(name, { hidden: true })
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[args...]')
    .action(() => {
      throw notInKit(path);
    });
}

/**
 * The kit's groups, each loaded only when its command runs (one bundle, but what a module does when
 * it loads is deferred: `--help` and `--version` stay within 100 ms of a bare node start). The
 * descriptions are the kit's own: what each group offers here.
 */
const KIT_GROUPS: { name: string; description: string; load: () => Promise<(group: Command) => void> }[] = [
  {
    name: 'recovery',
    description: 'rebuild the vault: reconstruct from typed shares and air-gapped holder responses, request a release, verify a typed share',
    load: async () => {
      const [{ registerReconstruct, registerReleaseRequest }, { registerRecoveryVerify }] = await Promise.all([import('../cli/commands/reconstruct.js'), import('../cli/commands/recovery.js')]);
      return (g) => {
        registerReconstruct(g);
        registerReleaseRequest(g);
        registerRecoveryVerify(g);
      };
    },
  },
  {
    name: 'vault',
    description: 'read the rebuilt vault: list and get its secrets',
    load: async () => {
      const { registerGet, registerList } = await import('../cli/commands/vault.js');
      return (g) => {
        registerList(g);
        registerGet(g);
      };
    },
  },
  {
    name: 'ers',
    description: 'emergency recovery packages: verify one, recover its key, sign with it (docs/ers.md)',
    load: async () => {
      const [{ registerErsVerify }, { registerErsRecoverCommands }] = await Promise.all([import('../cli/commands/ers.js'), import('../cli/commands/ers-recover.js')]);
      return (g) => {
        registerErsVerify(g);
        registerErsRecoverCommands(g);
      };
    },
  },
  {
    name: 'keyshare',
    description: 'recover a key node from a log mirror and its 24 words, as a snapshot for `node restore --in` (docs/keyshare.md)',
    load: async () => {
      const [{ registerKeyshareRecover }, { writeNodeSnapshot }] = await Promise.all([import('../cli/commands/keyshare.js'), import('../keyshare/recover-write.js')]);
      return (g) => registerKeyshareRecover(g, writeNodeSnapshot);
    },
  },
  {
    name: 'kit',
    description: 'check this kit (or another) against its signed hashes',
    load: async () => {
      const { registerKitVerify } = await import('../cli/commands/kit.js');
      return (g) => registerKitVerify(g, selfPath());
    },
  },
];

/**
 * Registers the kit's commands on the CLI's program (the signature of src/cli/commands/index.ts's
 * registerCommands): the group `args` name, loaded; the others as their names and descriptions, which
 * is all `--help` shows (`--version` alone registers nothing).
 */
export async function registerCommands(program: Command, args?: readonly string[]): Promise<void> {
  program
    .name('lifeboat-kit')
    .description('the Lifeboat recovery kit: rebuild the vault, open emergency recovery packages and recover key nodes from a log mirror, on a machine with nothing installed (docs/kit.md)');
  if (args && args.length > 0 && args.every((a) => a === '--version' || a === '-V')) return;
  const first = args?.find((a) => !a.startsWith('-'));
  const named = first === 'help' ? args?.filter((a) => !a.startsWith('-'))[1] : first;
  for (const g of KIT_GROUPS) {
    const group = program.command(g.name).description(g.description);
    if (g.name === named) (await g.load())(group);
    for (const name of LEFT_OUT.commands[g.name as keyof typeof LEFT_OUT.commands] ?? []) leftOut(group, name, `${g.name} ${name}`);
  }
  for (const name of LEFT_OUT.groups) leftOut(program, name, name);
}
