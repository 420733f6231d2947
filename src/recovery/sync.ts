/**
 * Keeping the holders' vault copies current: after every vault write the primary pushes the new
 * ciphertext to each holder of its manifest. A holder that is down does not fail the write (it is
 * durable locally); it is reported, `recovery verify` flags its stale copy, and `recovery sync` catches up.
 */
import { dirname } from 'node:path';
import { existsSync } from 'node:fs';
import type { Identity } from '../identity.js';
import { loadIdentity } from '../identity.js';
import { primaryPaths } from '../primary/datadir.js';
import type { VaultWriteListener } from '../vault/vault.js';
import { describeFailure } from './collect.js';
import { confirmHolder } from './holders.js';
import type { Manifest } from './manifest.js';
import { manifestHolders } from './rotate.js';
import { readManifestFile } from './sources.js';

/** Pushes the vault copy to every holder of the manifest; returns the failures (by code, never a secret). */
export async function pushVault(opts: { primary: Identity; manifest: Manifest; vault: Uint8Array }): Promise<string[]> {
  const results = await Promise.all(
    manifestHolders(opts.manifest).map(async (spec) => {
      try {
        const h = await confirmHolder(spec, opts.primary);
        await h.client.putVault(opts.manifest.scheme_id, opts.vault);
        return undefined;
      } catch (err) {
        return describeFailure(spec.url, err);
      }
    }),
  );
  return results.filter((r): r is string => r !== undefined);
}

/** A vault write listener that pushes the new copy to the holders and warns about the ones it missed. */
export function pushToHoldersListener(warn: (line: string) => void): VaultWriteListener {
  return async (event) => {
    const paths = primaryPaths(dirname(event.path));
    if (!existsSync(paths.manifest) || !existsSync(paths.identity)) return; // not split yet: nothing to push to
    const failures = await pushVault({ primary: loadIdentity(paths.identity, 'primary'), manifest: readManifestFile(paths.manifest), vault: event.bytes });
    for (const f of failures) warn(`vault copy not pushed to ${f}; run \`lifeboat recovery sync\` when it is back`);
  };
}
