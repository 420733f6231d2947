/**
 * Committing the primary's recovery state (vault, manifest, master key) as one step.
 *
 * Three files cannot be renamed at once, so a commit first writes all three as `*.next` (each atomic,
 * fsynced), then writes a `commit.pending` marker, renames the three into place and removes the marker.
 * A crash before the marker leaves the old state (the .next files are discarded); after it, the next
 * command rolls the renames forward (`finishPendingCommit`). Either way vault, manifest and master key
 * always belong to the same scheme.
 */
import { existsSync, renameSync, rmSync } from 'node:fs';
import { ensurePrivateDir, writeFileAtomic } from '../util/files.js';
import { type MasterKey, type PrimaryPaths, storeMasterKey } from './datadir.js';
import type { Manifest } from '../recovery/manifest.js';
import { join } from 'node:path';
import { withVaultLock } from '../vault/vault.js';

function markerPath(paths: PrimaryPaths): string {
  return join(paths.dir, 'commit.pending');
}

function nextPaths(paths: PrimaryPaths): PrimaryPaths {
  return { ...paths, vault: `${paths.vault}.next`, manifest: `${paths.manifest}.next`, masterKey: `${paths.masterKey}.next` };
}

/** Completes a commit interrupted after its marker was written; discards one interrupted before. */
export function finishPendingCommit(paths: PrimaryPaths): void {
  const next = nextPaths(paths);
  if (existsSync(markerPath(paths))) {
    for (const k of ['vault', 'manifest', 'masterKey'] as const) {
      if (existsSync(next[k])) renameSync(next[k], paths[k]);
    }
    rmSync(markerPath(paths));
    return;
  }
  for (const k of ['vault', 'manifest', 'masterKey'] as const) rmSync(next[k], { force: true });
}

/**
 * Writes vault, manifest and master key as one commit, under the vault's write lock so that a
 * concurrent `vault put` can neither interleave nor overwrite the new scheme's vault with an old one.
 * With `crashAfter` (tests only) it stops after the named step, as a killed process would.
 */
export async function commitPrimaryState(
  paths: PrimaryPaths,
  state: { vault: Uint8Array; manifest: Manifest; master: MasterKey },
  opts: { crashAfter?: 'next-files' | 'marker' | 'first-rename' } = {},
): Promise<void> {
  ensurePrivateDir(paths.dir);
  await withVaultLock(paths.vault, () => commitLocked(paths, state, opts));
}

function commitLocked(paths: PrimaryPaths, state: { vault: Uint8Array; manifest: Manifest; master: MasterKey }, opts: { crashAfter?: string }): void {
  finishPendingCommit(paths);
  const next = nextPaths(paths);
  writeFileAtomic(next.vault, state.vault);
  writeFileAtomic(next.manifest, `${JSON.stringify(state.manifest, null, 2)}\n`, 0o644);
  storeMasterKey(next, state.master);
  if (opts.crashAfter === 'next-files') return;
  writeFileAtomic(markerPath(paths), 'commit\n');
  if (opts.crashAfter === 'marker') return;
  renameSync(next.vault, paths.vault);
  if (opts.crashAfter === 'first-rename') return;
  finishPendingCommit(paths);
}
