/**
 * How a node keeps its operator mnemonic (docs/keyshare.md, "Two modes"), apart from runtime.ts so that
 * a node can be written (init, `keyshare recover`, the recovery kit) without loading a store.
 */
import type { NodeConfig, NodePaths } from './config.js';
import { storeNodeMnemonic } from './secrets.js';

/** The words (passphrase mode), or only the recipient and check (recipient mode). */
export type KeyshareSetup = { mode: 'passphrase'; phrase: Uint8Array } | { mode: 'recipient'; recipient: string; mnemonicCheck: string };

/** Stores the words (passphrase mode) in the vault at `paths` and returns `config` naming the mode. Throws what the vault throws. */
export async function keepKeyshare(paths: NodePaths, master: { schemeId: Uint8Array; key: Uint8Array }, config: NodeConfig, setup: KeyshareSetup): Promise<NodeConfig> {
  if (setup.mode === 'passphrase') {
    await storeNodeMnemonic(paths.vault, master, setup.phrase);
    return { ...config, keyshare: { mode: 'passphrase', recipient: null, mnemonic_check: null } };
  }
  return { ...config, keyshare: { mode: 'recipient', recipient: setup.recipient, mnemonic_check: setup.mnemonicCheck } };
}
