/**
 * The primary's vault beside the holders' copies: which copies are ahead of it, which are a fork of it,
 * and a lossless merge.
 *
 * Generations alone do not order two vaults. When a primary writes while a holder with a newer copy is
 * unreachable (after a reconstruct that could not ask it, or from a rolled-back file), two different
 * vaults of one lineage exist, each with secrets the other lacks; writing on top of either would lose the
 * other's. So a copy is compared by its bytes (the holder lists their SHA-256), only copies that open under
 * the master count (a holder can serve anything), and a copy ahead of the primary is a plain update only if
 * it holds every entry of the primary's vault at least as new; otherwise it is a fork.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { LifeboatError } from '../errors.js';
import type { Identity } from '../identity.js';
import type { MasterKey } from '../primary/datadir.js';
import { toHex } from '../util/bytes.js';
import { type VaultContents, type VaultEntry, wipeContents } from '../vault/contents.js';
import { openVault, readVaultHeader, sealVault } from '../vault/format.js';
import { describeFailure } from './collect.js';
import { confirmHolder, type ConfirmedHolder } from './holders.js';
import type { Manifest } from './manifest.js';
import { manifestHolders } from './rotate.js';

/** What one holder said about its copy of the scheme's vault. */
export interface HolderCopyInfo {
  url: string;
  holder: ConfirmedHolder;
  generation: number | null;
  sha256: string | null;
}

/** Asks every holder of the manifest (in parallel) for its copy's generation and hash; unreachable ones go to `warn`. */
export async function surveyHolders(primary: Identity, manifest: Manifest, warn: (line: string) => void): Promise<HolderCopyInfo[]> {
  const found = await Promise.all(
    manifestHolders(manifest).map(async (spec): Promise<HolderCopyInfo | undefined> => {
      try {
        const holder = await confirmHolder(spec, primary);
        const info = (await holder.client.listSchemes()).find((s) => s.scheme_id === manifest.scheme_id);
        return { url: spec.url, holder, generation: info?.vault_generation ?? null, sha256: info?.vault_sha256 ?? null };
      } catch (err) {
        warn(`could not ask ${describeFailure(spec.url, err)} for its vault copy`);
        return undefined;
      }
    }),
  );
  return found.filter((c): c is HolderCopyInfo => c !== undefined);
}

/** A holder's copy that opens under the master. The caller wipes `contents` when done. */
export interface AuthenticCopy {
  url: string;
  generation: number;
  bytes: Uint8Array;
  contents: VaultContents;
}

/** How the holders' copies stand against the primary's vault. */
export interface CopyComparison {
  /** Newer copies that hold all of the primary's entries (a plain update), newest first. */
  ahead: AuthenticCopy[];
  /** Copies that are neither the primary's nor a plain update of it: a fork, with the names only one side has newer. */
  forked: { copy: AuthenticCopy; onlyHere: string[]; onlyThere: string[] }[];
}

/** Names whose entry in `a` is missing from `b` or newer than b's. */
function newerIn(a: VaultContents, b: VaultContents): string[] {
  const out: string[] = [];
  for (const [name, e] of a.entries) {
    const other = b.entries.get(name);
    if (!other || other.updatedAt < e.updatedAt || (other.updatedAt === e.updatedAt && toHex(other.value) !== toHex(e.value))) out.push(name);
  }
  return out.sort();
}

/**
 * Fetches and opens every copy that differs from the primary's at the same generation or is newer,
 * and sorts them into updates and forks. Copies that do not open are reported through `warn` and ignored
 * (a holder that lies cannot steer anything). The caller wipes the returned contents.
 */
export async function compareCopies(opts: { infos: HolderCopyInfo[]; manifest: Manifest; master: MasterKey; local: Uint8Array; localContents: VaultContents; warn: (line: string) => void }): Promise<CopyComparison> {
  const localGen = readVaultHeader(opts.local).generation;
  const localSha = toHex(sha256(opts.local));
  const out: CopyComparison = { ahead: [], forked: [] };
  for (const info of opts.infos) {
    if (info.generation === null || info.generation < localGen) continue;
    if (info.generation === localGen && info.sha256 === localSha) continue;
    let copy: AuthenticCopy;
    try {
      const { vault } = await info.holder.client.getVault(opts.manifest.scheme_id);
      if (toHex(sha256(vault)) === localSha) continue;
      copy = { url: info.url, generation: readVaultHeader(vault).generation, bytes: vault, contents: openVault(vault, opts.master.key) };
    } catch (err) {
      opts.warn(`holder ${info.url} has vault generation ${info.generation}, but its copy does not open under the master (${err instanceof LifeboatError ? err.code : 'error'}): ignored; run \`lifeboat recovery verify\``);
      continue;
    }
    if (copy.generation < localGen || copy.generation < info.generation) {
      // it claimed a newer copy than it serves: an older copy is no news, and a claim is not a copy
      opts.warn(`holder ${info.url} claims vault generation ${info.generation} but serves generation ${copy.generation}: ignored; run \`lifeboat recovery verify\``);
      wipeContents(copy.contents);
      continue;
    }
    const onlyHere = newerIn(opts.localContents, copy.contents);
    if (copy.generation > localGen && onlyHere.length === 0) out.ahead.push(copy);
    else out.forked.push({ copy, onlyHere, onlyThere: newerIn(copy.contents, opts.localContents) });
  }
  out.ahead.sort((a, b) => b.generation - a.generation);
  return out;
}

/** The refusal for a forked vault: names the holders and the entry names each side would lose. */
export function vaultForked(forks: CopyComparison['forked'], localGen: number): LifeboatError {
  const detail = forks
    .map((f) => `holder ${f.copy.url} has generation ${f.copy.generation} with ${f.onlyThere.length ? f.onlyThere.join(', ') : 'no newer entry'}; the primary's generation ${localGen} has ${f.onlyHere.length ? f.onlyHere.join(', ') : 'no newer entry'}`)
    .join('; ');
  return new LifeboatError('vault_forked', `the vault has forked: ${detail}`, {
    safety: true,
    status: 409,
    hint: 'a write happened while a holder with a newer copy was unreachable; nothing was written: run `lifeboat recovery sync --merge` to write one vault with the newest entry of every name from both sides',
  });
}

/**
 * The union of vaults: for every name the newest entry (by updated_at; equal times keep the first
 * given). Returns the merged contents (fresh copies of the values) and the names that differed.
 */
export function mergeContents(all: VaultContents[]): { contents: VaultContents; differed: string[] } {
  const entries = new Map<string, VaultEntry>();
  const differed = new Set<string>();
  for (const c of all) {
    for (const [name, e] of c.entries) {
      const have = entries.get(name);
      if (have && (have.updatedAt !== e.updatedAt || toHex(have.value) !== toHex(e.value))) differed.add(name);
      if (!have || have.updatedAt < e.updatedAt) entries.set(name, { value: e.value.slice(), updatedAt: e.updatedAt });
    }
  }
  return { contents: { entries }, differed: [...differed].sort() };
}

/** Seals merged contents as the generation after every copy involved. Throws as sealVault. */
export function sealMerged(contents: VaultContents, master: MasterKey, generations: number[]): Uint8Array {
  return sealVault(contents, master.key, master.schemeId, Math.max(...generations));
}

/** Wipes the contents of every copy in a comparison. */
export function wipeComparison(c: CopyComparison): void {
  for (const a of c.ahead) wipeContents(a.contents);
  for (const f of c.forked) wipeContents(f.copy.contents);
}
