/**
 * `lifeboat node show`: the node's public identity from its data directory, offline (no store, no
 * server): the identity token, its fingerprint and the wrapping public key, as `node init` printed them
 * and `GET /v1/identity` answers them (the same labels and JSON keys), with the store (password hidden)
 * and the operator mnemonic's mode.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { LifeboatError, NotFoundError } from '../../errors.js';
import { encodePublicIdentity, identityFingerprint } from '../../identity.js';
import { loadNodeConfig, nodePaths, resolveNodeDir } from '../../keynode/config.js';
import { loadNodeSecrets } from '../../keynode/secrets.js';
import { redactStoreUrl } from '../../keynode/store/index.js';
import { loadMasterKey } from '../../primary/datadir.js';
import { toB64, wipe } from '../../util/bytes.js';
import { checkSecretFd, createOutput, writeSecret } from '../io.js';
import { intIn } from '../options.js';
import { addMonitorToken } from '../../http/monitor-token.js';

/** The public parts of a node, as `node init --json` and `node show --json` print them. */
export interface NodePublicView {
  identity: string;
  fingerprint: string;
  wrapping_public_key: string;
  store: string;
  keyshare_mode: 'passphrase' | 'recipient' | null;
}

/** Prints a node's public parts the way `node init` does (one label per line, aligned). */
export function printNodeView(out: { out(line: string): void }, v: NodePublicView, mnemonic: string): void {
  out.out(`identity:     ${v.identity}`);
  out.out(`fingerprint:  ${v.fingerprint}`);
  out.out(`wrapping key: ${v.wrapping_public_key}`);
  out.out(`store:        ${v.store}`);
  out.out(`mnemonic:     ${mnemonic}`);
}

/**
 * Reads the node's public parts from `dir`. The identity lives in the node's vault, so the master key
 * must be there; throws LifeboatError `sealed` without it, and what loadNodeConfig and the vault throw.
 */
export function readNodeView(dir: string): NodePublicView {
  const paths = nodePaths(dir);
  const config = loadNodeConfig(paths);
  let master;
  try {
    master = loadMasterKey({ dir, identity: '', vault: paths.vault, manifest: '', masterKey: paths.masterKey });
  } catch (err) {
    if (err instanceof LifeboatError && err.code === 'sealed') {
      throw new LifeboatError('sealed', `the node is sealed: its master key is not at ${paths.masterKey}, so the vault that holds the node keys does not open`, {
        status: 503,
        hint: `put the node's master key back at ${paths.masterKey} (mode 0600) from your off-machine copy, or run \`lifeboat node unseal --data-dir ${dir}\` when its vault key is split among share holders`,
      });
    }
    throw err;
  }
  const secrets = loadNodeSecrets(paths.vault, master);
  try {
    return {
      identity: encodePublicIdentity(secrets.identity),
      fingerprint: identityFingerprint(secrets.identity),
      wrapping_public_key: toB64(secrets.wrapping.publicKey),
      store: redactStoreUrl(config.store),
      keyshare_mode: config.keyshare?.mode ?? null,
    };
  } finally {
    wipe(master.key);
    for (const k of [secrets.storageKey, secrets.exportKey, secrets.backupKey, secrets.wrapping.secretKey, secrets.identity.signing.secretKey, secrets.identity.box.secretKey]) wipe(k);
  }
}

export function registerNodeShowCommand(node: Command): void {
  node
    .command('show')
    .description('print the node’s identity token, fingerprint and wrapping public key (public parts only), from its data directory, offline')
    .option('--data-dir <dir>', 'node data directory (default: $LIFEBOAT_NODE_DIR or ./lifeboat-node)')
    .option('--json', 'print JSON: identity, fingerprint, wrapping_public_key, store, keyshare_mode (the keys of `node init --json` and GET /v1/identity)')
    .action((o: { dataDir?: string; json?: boolean }) => {
      const v = readNodeView(resolveNodeDir(o.dataDir));
      const out = createOutput();
      if (o.json) return out.json(v);
      printNodeView(out, v, v.keyshare_mode ? `${v.keyshare_mode} mode` : 'none');
    });
  node
    .command('monitor-token')
    .description('make a read-only monitor token for `lifeboat coverage`: it reads this node’s coverage pages and status (GET /v1/coverage, /v1/status) and nothing else; shown once, its hash kept in DIR/monitor-tokens')
    .option('--data-dir <dir>', 'node data directory (default: $LIFEBOAT_NODE_DIR or ./lifeboat-node)')
    .option('--secret-fd <n>', 'write the token to this file descriptor instead of the terminal', intIn(3, 1023))
    .action((o: { dataDir?: string; secretFd?: number }) => {
      const dir = resolveNodeDir(o.dataDir);
      if (!existsSync(nodePaths(dir).config)) throw new NotFoundError(`no key node in ${dir}`, 'node_not_found', 'pass --data-dir, the one `lifeboat node serve` uses');
      checkSecretFd(o.secretFd);
      writeSecret(addMonitorToken(dir), o.secretFd);
      createOutput().info('a monitor token reads this node’s coverage pages and status and nothing else; a running node takes it at once. Put it in a 0600 file the fleet file names');
    });
}
