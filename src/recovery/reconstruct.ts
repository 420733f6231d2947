/**
 * `recovery reconstruct` and `unseal`: gather t checked shares, combine them, check the master key
 * against the vault header's fingerprint, and only then decrypt. Reconstruction also writes the vault
 * for the new primary and enrols the new primary's identity with the holders.
 */
import { existsSync } from 'node:fs';
import { ConflictError, DecryptionError, FormatError, InvalidInputError, LifeboatError, ShareError } from '../errors.js';
import { combineMnemonics } from '../crypto/slip39.js';
import type { BoxKeyPair } from '../crypto/sealedbox.js';
import { encodePublicIdentity, generateIdentity, type Identity, loadIdentity, saveIdentity } from '../identity.js';
import { wipeContents } from '../vault/contents.js';
import { checkMasterKey, openVault, readVaultHeader } from '../vault/format.js';
import { commitPrimaryState } from '../primary/commit.js';
import { type PrimaryPaths, storeMasterKey } from '../primary/datadir.js';
import { ensurePrivateDir } from '../util/files.js';
import { ctEqual, fromHex, toHex, wipe } from '../util/bytes.js';
import { addShare, type CheckedShare, checkShareAgainstManifest, describeFailure, releaseFromHolder, requireThreshold } from './collect.js';
import { type ConfirmedHolder, confirmHolder, type HolderSpec } from './holders.js';
import { enrolPrimary } from './enrol.js';
import { checkManifestBinding, type Manifest } from './manifest.js';
import type { VaultCopy } from './sources.js';
import type { ReleasePurpose } from './release.js';

/** Asks a person for the next share; `index` counts from 1. */
export type ShareAsker = (index: number, needed: number) => Promise<string>;

export interface GatherOptions {
  manifest: Manifest;
  /** Holders to ask, in order, until the threshold is reached. */
  holders: ConfirmedHolder[];
  signer: Identity;
  purpose: ReleasePurpose;
  /** The key holders re-seal to: a fresh one-time key unless given (an unseal uses the primary's own). */
  requesterKey?: BoxKeyPair;
  /** Shares checked already (typed, or from release response files). */
  given?: CheckedShare[];
  progress?: (line: string) => void;
}

/**
 * Collects shares: the given ones first, then holder releases until the threshold is met (no holder is
 * asked once it is, so no more shares leave holders than needed). Throws ShareError
 * `insufficient_shares` listing what could not be obtained, by code.
 */
export async function gatherShares(opts: GatherOptions): Promise<CheckedShare[]> {
  const set = new Map<number, CheckedShare>();
  const failures: string[] = [];
  const progress = opts.progress ?? (() => {});
  for (const s of opts.given ?? []) addShare(set, s, { repeat: 'refuse' });
  for (const h of opts.holders) {
    if (set.size >= opts.manifest.threshold) break;
    // A holder whose member's share was given already would only release it again: not asked.
    const member = opts.manifest.members.find((m) => m.kind === 'holder' && m.fingerprint === h.fingerprint)?.member_index;
    if (member !== undefined && set.has(member)) {
      progress(`holder ${h.url} not asked: the share of its member ${member + 1} was given already`);
      continue;
    }
    try {
      const share = await releaseFromHolder({ manifest: opts.manifest, holder: h, signer: opts.signer, purpose: opts.purpose, requesterKey: opts.requesterKey });
      addShare(set, share);
      progress(`share ${share.memberIndex + 1} released by holder ${h.url}`);
    } catch (err) {
      if (err instanceof ShareError && err.code === 'duplicate_share') throw err;
      failures.push(describeFailure(`holder ${h.url}`, err));
      progress(`holder ${h.url} did not release: ${err instanceof LifeboatError ? err.code : 'error'}`);
    }
  }
  requireThreshold(opts.manifest, set, failures);
  return [...set.values()].slice(0, opts.manifest.threshold);
}

/** What a combine established: the master, and the vault copy that opened under it. */
export interface Combined {
  master: Uint8Array;
  vault: VaultCopy;
  entries: number;
  /** Copies that were not used, and why (another scheme, or they do not open under the master). */
  rejected: string[];
}

/**
 * Combines checked shares and checks, in this order, before anything is written: the master against
 * the manifest's fingerprint (ShareError `wrong_master_key`), the manifest against the master
 * (`manifest_forged` / `manifest_unbound`, see checkManifestBinding), and then opens the vault copies
 * newest first: the first that authenticates wins, so a stale or forged copy never hides a newer one.
 * Throws ShareError `share_set_mismatch` when no copy belongs to the manifest's scheme, and
 * DecryptionError when none opens.
 */
export function combineAndCheck(manifest: Manifest, shares: CheckedShare[], copies: VaultCopy[], opts: { passphrase?: string; unboundOk?: boolean } = {}): Combined {
  const fingerprint = fromHex(manifest.master_fingerprint, 'master fingerprint', 32);
  const rejected: string[] = [];
  const candidates = copies.filter((c) => {
    const header = readVaultHeader(c.bytes);
    if (toHex(header.schemeId) === manifest.scheme_id && ctEqual(header.fingerprint, fingerprint)) return true;
    rejected.push(`${c.source}: a vault of another scheme (${toHex(header.schemeId)})`);
    return false;
  });
  if (candidates.length === 0) {
    throw new ShareError('share_set_mismatch', `no vault copy belongs to scheme ${manifest.scheme_id}${rejected.length ? ` (${rejected.join('; ')})` : ''}`, 'pass the vault of the same scheme with --vault');
  }
  const master = combineMnemonics(shares.map((s) => s.mnemonic), opts.passphrase);
  try {
    checkMasterKey(candidates[0]!.bytes, master);
    checkManifestBinding(manifest, master, { unboundOk: opts.unboundOk });
    for (const copy of [...candidates].sort((x, y) => y.generation - x.generation)) {
      try {
        const contents = openVault(copy.bytes, master);
        const entries = contents.entries.size;
        wipeContents(contents);
        return { master, vault: copy, entries, rejected };
      } catch (err) {
        if (!(err instanceof DecryptionError || err instanceof FormatError)) throw err;
        rejected.push(`${copy.source}: generation ${copy.generation} does not open under the master (${err.code})`);
      }
    }
    throw new DecryptionError(`no vault copy of scheme ${manifest.scheme_id} opens under the master: ${rejected.join('; ')}`, 'every copy was altered; pass an intact backup with --vault');
  } catch (err) {
    wipe(master);
    throw err;
  }
}

/** Confirms every holder spec; the unreachable ones are reported, not fatal (others may suffice). */
export async function confirmReachable(specs: HolderSpec[], signer: Identity, warn: (line: string) => void): Promise<ConfirmedHolder[]> {
  const out: ConfirmedHolder[] = [];
  for (const spec of specs) {
    try {
      out.push(await confirmHolder(spec, signer));
    } catch (err) {
      if (err instanceof LifeboatError && err.code === 'peer_identity_mismatch') throw err;
      warn(describeFailure(`holder ${spec.url}`, err));
    }
  }
  return out;
}

export interface ReconstructResult {
  schemeId: string;
  entries: number;
  /** The vault generation written, and where that copy came from. */
  vaultGeneration: number;
  vaultFrom: string;
  /** Vault copies not used, and why. */
  rejected: string[];
  sharesFrom: string[];
  primary: string;
  enrolled: string[];
  /** Holders of `enrolOn` that did not take the new primary, with the err_type. */
  notEnrolled: { holder: HolderSpec; code: string }[];
}

/**
 * Reconstructs on a new machine: writes vault, manifest and master key into `paths` and enrols the new
 * primary with the holders. Throws ConflictError `vault_exists` if `paths` already has a vault.
 */
export async function reconstruct(opts: {
  paths: PrimaryPaths;
  operator: Identity;
  manifest: Manifest;
  /** Candidate vault copies (every reachable holder's, and a file given); the newest that opens wins. */
  vaults: VaultCopy[];
  holders: ConfirmedHolder[];
  /** Holders to enrol the new primary with (every reachable holder of the manifest). */
  enrolOn: ConfirmedHolder[];
  typed: string[];
  released: CheckedShare[];
  passphrase?: string;
  /** A version 1 manifest (no master binding) is acceptable: the caller pinned its signing primary. */
  unboundOk?: boolean;
  progress?: (line: string) => void;
}): Promise<ReconstructResult> {
  if (existsSync(opts.paths.vault)) {
    throw new ConflictError(`a vault already exists at ${opts.paths.vault}`, 'vault_exists', 'reconstruct into an empty --data-dir');
  }
  const given = [...opts.released, ...opts.typed.map((m, i) => checkShareAgainstManifest(opts.manifest, m, `typed share ${i + 1}`))];
  const shares = await gatherShares({ manifest: opts.manifest, holders: opts.holders, signer: opts.operator, purpose: 'reconstruct', given, progress: opts.progress });
  const { master, vault, entries, rejected } = combineAndCheck(opts.manifest, shares, opts.vaults, { passphrase: opts.passphrase, unboundOk: opts.unboundOk });
  ensurePrivateDir(opts.paths.dir);
  let primary: Identity;
  if (existsSync(opts.paths.identity)) primary = loadIdentity(opts.paths.identity, 'primary');
  else {
    primary = generateIdentity('primary');
    saveIdentity(opts.paths.identity, primary);
  }
  await commitPrimaryState(opts.paths, { vault: vault.bytes, manifest: opts.manifest, master: { schemeId: fromHex(opts.manifest.scheme_id, 'scheme id', 16), key: master } });
  wipe(master);
  const token = encodePublicIdentity(primary);
  const enrolment = await enrolPrimary(opts.enrolOn, token);
  return {
    schemeId: opts.manifest.scheme_id,
    entries,
    vaultGeneration: vault.generation,
    vaultFrom: vault.source,
    rejected,
    sharesFrom: shares.map((s) => s.source),
    primary: token,
    enrolled: enrolment.enrolled.map((h) => h.url),
    notEnrolled: enrolment.failed,
  };
}

/**
 * Unseals a running primary: holders release to the primary's own identity (purpose `unseal`), and
 * typed shares fill in. Writes the master key file. Throws as gatherShares and combineAndCheck.
 */
export async function unseal(opts: {
  paths: PrimaryPaths;
  primary: Identity;
  manifest: Manifest;
  vault: Uint8Array;
  holders: ConfirmedHolder[];
  typed: string[];
  passphrase?: string;
  progress?: (line: string) => void;
}): Promise<{ entries: number; sharesFrom: string[] }> {
  if (opts.manifest.primary !== encodePublicIdentity(opts.primary)) {
    opts.progress?.('the manifest names another primary; holders release only to the primary enrolled with them');
  }
  const given = opts.typed.map((m, i) => checkShareAgainstManifest(opts.manifest, m, `typed share ${i + 1}`));
  if (given.length === 0 && opts.holders.length === 0) throw new InvalidInputError('no share source', { hint: 'give --typed-shares N, or make sure the holders in the manifest are reachable' });
  const shares = await gatherShares({ manifest: opts.manifest, holders: opts.holders, signer: opts.primary, purpose: 'unseal', requesterKey: opts.primary.box, given, progress: opts.progress });
  // The manifest here is the primary's own local file, checked when it was written; a version 1 one
  // (from before the master binding) still unseals, and the next rotate writes a bound one.
  const local: VaultCopy = { bytes: opts.vault, generation: readVaultHeader(opts.vault).generation, source: 'the local vault' };
  const { master, entries } = combineAndCheck(opts.manifest, shares, [local], { passphrase: opts.passphrase, unboundOk: true });
  storeMasterKey(opts.paths, { schemeId: fromHex(opts.manifest.scheme_id, 'scheme id', 16), key: master });
  wipe(master);
  return { entries, sharesFrom: shares.map((s) => s.source) };
}
