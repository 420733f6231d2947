/**
 * Keeping the holders' vault copies and the primary's vault in step.
 *
 * - After every vault write the primary pushes the new ciphertext to each holder of its manifest. A
 *   holder that is down does not fail the write (it is durable locally); it is reported, `recovery
 *   verify` flags its stale copy, and `recovery sync` catches up. When no holder takes the copy at
 *   all, the write is reported as failed (`not_replicated`), so a script does not take it for safe.
 * - Before every vault write, the holders are asked which generation they hold. A holder with an
 *   authentic copy at or above the generation about to be written means the primary's vault file was
 *   rolled back (an older copy restored): writing would overwrite the holders' newer secrets with a
 *   vault that lacks them, so the write is refused (`primary_behind`) and `recovery sync` pulls the
 *   newest copy back first. A holder's claim counts only if its copy opens under the master, so a
 *   compromised holder cannot block writes by claiming a huge generation.
 */
import { dirname } from 'node:path';
import { existsSync } from 'node:fs';
import { LifeboatError } from '../errors.js';
import type { Identity } from '../identity.js';
import { loadIdentity } from '../identity.js';
import { type MasterKey, type PrimaryPaths, primaryPaths } from '../primary/datadir.js';
import { wipeContents } from '../vault/contents.js';
import { openVault, readVaultHeader, type VaultHeader } from '../vault/format.js';
import { readVaultFile, type VaultWriteGuard, type VaultWriteListener, writeVaultFile } from '../vault/vault.js';
import { describeFailure } from './collect.js';
import { confirmHolder, type ConfirmedHolder } from './holders.js';
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

/** A holder whose copy is newer than the primary's, checked against the master. */
interface AheadCopy {
  url: string;
  generation: number;
  bytes: Uint8Array;
}

/**
 * Asks every reachable holder which generation of the scheme it holds, and returns the copies above
 * `localGeneration` that open under `master`, newest first. Claims that do not hold up (a copy that
 * does not open, or of another scheme) and unreachable holders are reported through `warn`.
 */
async function authenticCopiesAhead(opts: { primary: Identity; manifest: Manifest; master: MasterKey; localGeneration: number; warn: (line: string) => void }): Promise<AheadCopy[]> {
  const found = await Promise.all(
    manifestHolders(opts.manifest).map(async (spec): Promise<AheadCopy | undefined> => {
      let h: ConfirmedHolder;
      let generation: number | null | undefined;
      try {
        h = await confirmHolder(spec, opts.primary);
        generation = (await h.client.listSchemes()).find((s) => s.scheme_id === opts.manifest.scheme_id)?.vault_generation;
      } catch (err) {
        opts.warn(`could not ask ${describeFailure(spec.url, err)} for its vault generation`);
        return undefined;
      }
      if (generation === null || generation === undefined || generation <= opts.localGeneration) return undefined;
      try {
        const { vault } = await h.client.getVault(opts.manifest.scheme_id);
        // The claim counts only as far as the copy backs it: an authentic but older copy (a holder has
        // every generation it was sent) must not pass for a newer one, or one holder could block writes.
        const copy = readVaultHeader(vault).generation;
        if (copy <= opts.localGeneration) {
          opts.warn(`holder ${spec.url} claims vault generation ${generation}, but its copy is generation ${copy}, not newer than the primary's ${opts.localGeneration}: ignored; run \`lifeboat recovery verify\``);
          return undefined;
        }
        wipeContents(openVault(vault, opts.master.key));
        return { url: spec.url, generation: copy, bytes: vault };
      } catch (err) {
        opts.warn(`holder ${spec.url} claims vault generation ${generation}, but its copy does not open under the master (${err instanceof LifeboatError ? err.code : 'error'}): ignored; run \`lifeboat recovery verify\``);
        return undefined;
      }
    }),
  );
  return found.filter((c): c is AheadCopy => c !== undefined).sort((a, b) => b.generation - a.generation);
}

function primaryBehind(ahead: AheadCopy, local: number): LifeboatError {
  return new LifeboatError(
    'primary_behind',
    `holder ${ahead.url} holds vault generation ${ahead.generation}, the primary only ${local}: the primary's vault file was rolled back, and writing it would lose what the holders have`,
    { safety: true, status: 409, hint: 'nothing was written; run `lifeboat recovery sync` to bring the newest copy back from the holders, then try again' },
  );
}

function splitState(vaultPath: string): { paths: PrimaryPaths; manifest: Manifest; primary: Identity } | undefined {
  const paths = primaryPaths(dirname(vaultPath));
  if (!existsSync(paths.manifest) || !existsSync(paths.identity)) return undefined; // not split yet: no holders
  return { paths, manifest: readManifestFile(paths.manifest), primary: loadIdentity(paths.identity, 'primary') };
}

/** A vault write guard that refuses to write at or below a generation a holder holds (see above). */
export function refuseBehindHolders(vaultPath: string, warn: (line: string) => void): VaultWriteGuard {
  return async (current: VaultHeader, master: MasterKey) => {
    const state = splitState(vaultPath);
    if (!state) return;
    const ahead = await authenticCopiesAhead({ ...state, master, localGeneration: current.generation, warn });
    if (ahead[0]) throw primaryBehind(ahead[0], current.generation);
  };
}

/**
 * A vault write listener that pushes the new copy to the holders and warns about the ones it missed.
 * Throws LifeboatError `not_replicated` (after the local write, which stands) when no holder took it.
 */
export function pushToHoldersListener(warn: (line: string) => void): VaultWriteListener {
  return async (event) => {
    const state = splitState(event.path);
    if (!state) return;
    const failures = await pushVault({ primary: state.primary, manifest: state.manifest, vault: event.bytes });
    const holders = manifestHolders(state.manifest).length;
    if (holders > 0 && failures.length === holders) {
      throw new LifeboatError('not_replicated', `stored in the primary's vault as generation ${event.header.generation}, but no share holder took the copy: ${failures.join('; ')}`, {
        status: 503,
        hint: 'until a holder has it, losing the primary loses this change; run `lifeboat recovery sync` when a holder is back',
      });
    }
    for (const f of failures) warn(`vault copy not pushed to ${f}; run \`lifeboat recovery sync\` when it is back`);
  };
}

export interface SyncResult {
  /** The holder whose newer copy replaced the primary's vault, and its generation. */
  pulled?: { from: string; generation: number };
  generation: number;
  /** Holders the current copy could not be pushed to. */
  failures: string[];
}

/**
 * `recovery sync`: first brings back the newest authentic copy when a holder is ahead of the primary
 * (a rolled-back vault file; needs the unsealed master), then pushes the primary's copy to every
 * holder. Throws as loadMasterKey when a pull is needed on a sealed primary.
 */
export async function syncVault(opts: { paths: PrimaryPaths; primary: Identity; manifest: Manifest; loadMaster: () => MasterKey; warn: (line: string) => void }): Promise<SyncResult> {
  let vault = readVaultFile(opts.paths.vault);
  const local = readVaultHeader(vault).generation;
  let pulled: SyncResult['pulled'];
  const listed = await Promise.all(
    manifestHolders(opts.manifest).map(async (spec) => {
      try {
        const h = await confirmHolder(spec, opts.primary);
        return (await h.client.listSchemes()).find((s) => s.scheme_id === opts.manifest.scheme_id)?.vault_generation ?? 0;
      } catch {
        return 0;
      }
    }),
  );
  if (listed.some((g) => g > local)) {
    const ahead = await authenticCopiesAhead({ primary: opts.primary, manifest: opts.manifest, master: opts.loadMaster(), localGeneration: local, warn: opts.warn });
    if (ahead[0]) {
      await writeVaultFile(opts.paths.vault, ahead[0].bytes);
      vault = ahead[0].bytes;
      pulled = { from: ahead[0].url, generation: ahead[0].generation };
    }
  }
  const failures = await pushVault({ primary: opts.primary, manifest: opts.manifest, vault });
  return { pulled, generation: readVaultHeader(vault).generation, failures };
}
