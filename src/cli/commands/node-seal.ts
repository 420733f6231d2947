/**
 * `lifeboat node seal | unseal`: a key node seals like the primary (docs/keynode-operations.md, "Sealing
 * a node"). The node's data directory is read as a primary's (nodeRecoveryPaths): once its vault key is
 * split with `primary init` + `recovery init --data-dir NODE_DIR`, `node unseal` is `lifeboat unseal` on
 * it (holders release to the directory's identity, typed shares fill in) and `node seal` forgets the key.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { LifeboatError } from '../../errors.js';
import { nodePaths, resolveNodeDir } from '../../keynode/config.js';
import { nodeRecoveryPaths } from '../../keynode/runtime.js';
import { dropMasterKey } from '../../primary/datadir.js';
import { createOutput } from '../io.js';
import { promptsHelp } from '../input.js';
import { intIn } from '../options.js';
import { type UnsealOpts, unsealDataDir } from './primary.js';

const DIR_HELP = 'key node data directory (default: $LIFEBOAT_NODE_DIR or ./lifeboat-node)';

export function registerNodeSealCommands(node: Command): void {
  node
    .command('unseal')
    .description("load the node vault's master key from its share holders and/or typed shares (its vault key split with `recovery init --data-dir NODE_DIR`)")
    .option('--data-dir <dir>', DIR_HELP)
    .option('--typed-shares <n>', 'number of shares to type (hidden prompt, or stdin lines)', intIn(0, 16), 0)
    .option('--no-holders', 'do not ask holders; use typed shares only')
    .option('--passphrase', 'the shares were made with a SLIP-0039 passphrase (prompted)')
    .option('--json', 'print JSON')
    .addHelpText('after', `\nThe master key is written to $LIFEBOAT_MASTER_KEY_FILE when set (e.g. on a tmpfs), else <dir>/master.key.\nStart \`lifeboat node serve\` after it.${promptsHelp(['with --typed-shares N: share 1 (its words), then share 2, … up to N', 'with --passphrase: the SLIP-0039 passphrase'])}`)
    .action(async (o: UnsealOpts) => {
      const paths = nodeRecoveryPaths(nodePaths(resolveNodeDir(o.dataDir)));
      if (!existsSync(paths.manifest)) throw notSplit(paths.dir);
      await unsealDataDir(paths, o, 'node unsealed');
    });

  node
    .command('seal')
    .description("forget the node vault's master key (overwrite and remove the key file); stop `node serve` first, it keeps the keys it loaded until it stops")
    .option('--data-dir <dir>', DIR_HELP)
    .option('--force', 'seal a node whose vault key is not split: only an off-machine copy of master.key brings it back')
    .option('--json', 'print JSON')
    .action((o: { dataDir?: string; force?: boolean; json?: boolean }) => {
      const paths = nodeRecoveryPaths(nodePaths(resolveNodeDir(o.dataDir)));
      if (!existsSync(paths.manifest) && !o.force && existsSync(paths.masterKey)) throw notSplit(paths.dir, true);
      const removed = dropMasterKey(paths);
      const out = createOutput();
      if (o.json) out.json({ ok: true, was_unsealed: removed });
      else out.out(removed ? 'node sealed: the master key was removed; `lifeboat node unseal` brings it back' : 'already sealed');
    });
}

function notSplit(dir: string, sealing = false): LifeboatError {
  return new LifeboatError('node_not_split', `the node's vault key is not split among share holders (no recovery-manifest.json in ${dir})${sealing ? '; nothing was changed' : ''}`, {
    hint: `split it first: \`lifeboat primary init --data-dir ${dir}\`, \`holder init --primary …\` on each holder, then \`lifeboat recovery init --data-dir ${dir} --holder URL#FINGERPRINT …\`${sealing ? '; or --force, when you keep an off-machine copy of master.key' : ''}`,
  });
}
