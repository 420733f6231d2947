/**
 * Keeping the holders' vault copies and the primary's vault in step.
 *
 * - After every vault write the primary pushes the new ciphertext to each holder of its manifest. A
 *   holder that is down does not fail the write (it is durable locally); it is reported, `recovery
 *   verify` flags its stale copy, and `recovery sync` catches up. When no holder takes the copy at
 *   all, the write is reported as failed (`not_replicated`), so a script does not take it for safe.
 * - Before every vault write, the holders are asked which copy they hold (generation and hash). A holder
 *   with an authentic newer copy means the primary's vault file was rolled back (`primary_behind`); one
 *   with an authentic different copy means the vault forked (`vault_forked`, see vault-copies.ts).
 *   Either way the write would lose what the holder has, so it is refused, and `recovery sync` (with
 *   `--merge` for a fork) brings the holders' entries back first. A holder's claim counts only if its
 *   copy opens under the master, so a compromised holder cannot block writes by claiming a huge generation.
 */
import { dirname } from 'node:path';
import { existsSync } from 'node:fs';
import { sha256 } from '@noble/hashes/sha2.js';
import { LifeboatError } from '../errors.js';
import type { Identity } from '../identity.js';
import { loadIdentity } from '../identity.js';
import { type MasterKey, type PrimaryPaths, primaryPaths } from '../primary/datadir.js';
import { toHex } from '../util/bytes.js';
import { wipeContents } from '../vault/contents.js';
import { openVault, readVaultHeader } from '../vault/format.js';
import { type OpenedVault, readVaultFile, type VaultWriteGuard, type VaultWriteListener, writeVaultFile } from '../vault/vault.js';
import { describeFailure } from './collect.js';
import { confirmHolder } from './holders.js';
import type { Manifest } from './manifest.js';
import { manifestHolders } from './rotate.js';
import { readManifestFile } from './sources.js';
import { type AuthenticCopy, compareCopies, type CopyComparison, mergeContents, sealMerged, surveyHolders, vaultForked, wipeComparison } from './vault-copies.js';

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

function primaryBehind(ahead: AuthenticCopy, local: number): LifeboatError {
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

/**
 * A vault write guard: refuses to write when a holder holds an authentic copy newer than the primary's
 * (`primary_behind`) or a different one (`vault_forked`), since the write would lose what it has.
 */
export function refuseBehindHolders(vaultPath: string, warn: (line: string) => void): VaultWriteGuard {
  return async (current: OpenedVault, master: MasterKey) => {
    const state = splitState(vaultPath);
    if (!state) return;
    const infos = await surveyHolders(state.primary, state.manifest, warn);
    const cmp = await compareCopies({ infos, manifest: state.manifest, master, local: current.bytes, localContents: current.contents, warn });
    try {
      if (cmp.forked.length) throw vaultForked(cmp.forked, current.header.generation);
      if (cmp.ahead[0]) throw primaryBehind(cmp.ahead[0], current.header.generation);
    } finally {
      wipeComparison(cmp);
    }
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
  /** With merge: the holders whose forked copies were merged in, and the names that differed. */
  merged?: { from: string[]; differed: string[] };
  generation: number;
  /** Holders the current copy could not be pushed to. */
  failures: string[];
}

/**
 * `recovery sync`: brings the primary and the holders to one newest vault, then pushes it to every
 * holder. A newer copy that holds all of the primary's entries replaces the primary's vault (a
 * rolled-back file). A fork (copies with entries the other side lacks) is refused with `vault_forked`
 * unless `merge` is set: then one vault with the newest entry of every name from every side is written
 * as the next generation. Both need the unsealed master (loadMaster); a plain push does not.
 */
export async function syncVault(opts: { paths: PrimaryPaths; primary: Identity; manifest: Manifest; loadMaster: () => MasterKey; merge?: boolean; warn: (line: string) => void }): Promise<SyncResult> {
  let vault = readVaultFile(opts.paths.vault);
  const local = readVaultHeader(vault);
  const localSha = toHex(sha256(vault));
  const infos = await surveyHolders(opts.primary, opts.manifest, opts.warn);
  const result: Omit<SyncResult, 'generation' | 'failures'> = {};
  if (infos.some((i) => i.generation !== null && (i.generation > local.generation || (i.generation === local.generation && i.sha256 !== localSha)))) {
    const master = opts.loadMaster();
    const localContents = openVault(vault, master.key);
    let cmp: CopyComparison = { ahead: [], forked: [] };
    try {
      cmp = await compareCopies({ infos, manifest: opts.manifest, master, local: vault, localContents, warn: opts.warn });
      if (cmp.forked.length && !opts.merge) throw vaultForked(cmp.forked, local.generation);
      if (cmp.forked.length) {
        const sides = [localContents, ...cmp.ahead.map((a) => a.contents), ...cmp.forked.map((f) => f.copy.contents)];
        const { contents, differed } = mergeContents(sides);
        const generations = [local.generation, ...cmp.ahead.map((a) => a.generation), ...cmp.forked.map((f) => f.copy.generation)];
        try {
          vault = sealMerged(contents, master, generations);
        } finally {
          wipeContents(contents);
        }
        await writeVaultFile(opts.paths.vault, vault);
        result.merged = { from: [...cmp.ahead.map((a) => a.url), ...cmp.forked.map((f) => f.copy.url)], differed };
      } else if (cmp.ahead[0]) {
        await writeVaultFile(opts.paths.vault, cmp.ahead[0].bytes);
        vault = cmp.ahead[0].bytes;
        result.pulled = { from: cmp.ahead[0].url, generation: cmp.ahead[0].generation };
      }
    } finally {
      wipeComparison(cmp);
      wipeContents(localContents);
    }
  }
  const failures = await pushVault({ primary: opts.primary, manifest: opts.manifest, vault });
  return { ...result, generation: readVaultHeader(vault).generation, failures };
}
