/**
 * `recovery init`: a new master key, split t-of-n with SLIP-0039. One share is sealed to each holder,
 * the rest are offline shares for the operator to print; the vault is created under the master key.
 * Nothing is written locally until every holder has acknowledged its share and the vault copy, so a
 * failure leaves the primary as it was (holders may keep an unused scheme, which opens nothing).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { existsSync } from 'node:fs';
import { ConflictError, InvalidInputError, LifeboatError, PeerError } from '../errors.js';
import { randomBytes } from '../crypto/random.js';
import { seal } from '../crypto/sealedbox.js';
import { decodeMnemonic, generateMnemonics } from '../crypto/slip39.js';
import { encodePublicIdentity, type Identity, parsePublicIdentity } from '../identity.js';
import { createVault, masterFingerprint, reencryptVault } from '../vault/format.js';
import { commitPrimaryState } from '../primary/commit.js';
import { loadMasterKey, type PrimaryPaths } from '../primary/datadir.js';
import { readFileOrThrow } from '../util/files.js';
import { toB64, toHex, wipe } from '../util/bytes.js';
import { type ConfirmedHolder, confirmHolder, type HolderSpec } from './holders.js';
import { bindManifest, type Manifest, type ManifestMember, signManifest } from './manifest.js';
import { possessionPublicKey } from './possession.js';
import { encodeSharePayload } from './sealed-share.js';

export interface SplitPlan {
  threshold: number;
  shareCount: number;
}

/** Checks t-of-n against the holders given. Throws InvalidInputError with what to change. */
export function checkSplitPlan(plan: SplitPlan, holderCount: number): void {
  const { threshold: t, shareCount: n } = plan;
  if (!Number.isInteger(n) || n < 2 || n > 16) throw new InvalidInputError(`share count must be 2..16, got ${n}`);
  if (!Number.isInteger(t) || t < 2 || t > n) throw new InvalidInputError(`threshold must be 2..${n}, got ${t}`, { hint: 'a threshold of 1 would make every single share the whole key' });
  if (holderCount > n) throw new InvalidInputError(`${holderCount} holders but only ${n} shares`);
  if (holderCount === 0) throw new InvalidInputError('at least one holder is needed', { hint: 'give holders with --holder URL#FINGERPRINT' });
  if (n - holderCount >= t) {
    throw new InvalidInputError(`the ${n - holderCount} offline shares alone would reach the threshold ${t}`, { hint: 'add holders or raise the threshold' });
  }
}

/** What a split produced, before anything is stored. */
export interface PreparedScheme {
  schemeId: Uint8Array;
  master: Uint8Array;
  manifest: Manifest;
  /** Per holder, in order: its member index and sealed share. */
  sealed: { holder: ConfirmedHolder; memberIndex: number; sealedShare: Uint8Array }[];
  offlineMnemonics: string[];
}

/** Splits a fresh master key among confirmed holders and offline members and signs the manifest. */
export function prepareScheme(opts: {
  primary: Identity;
  holders: ConfirmedHolder[];
  operators: string[];
  plan: SplitPlan;
  passphrase?: string;
  master?: Uint8Array;
}): PreparedScheme {
  const schemeId = randomBytes(16);
  const master = opts.master ?? randomBytes(32);
  const { identifier, mnemonics } = generateMnemonics(master, {
    threshold: opts.plan.threshold,
    count: opts.plan.shareCount,
    passphrase: opts.passphrase,
  });
  const { iterationExponent } = decodeMnemonic(mnemonics[0]!);
  const members: ManifestMember[] = [];
  const sealed: PreparedScheme['sealed'] = [];
  mnemonics.forEach((mnemonic: string, memberIndex: number) => {
    const possession_key = toB64(possessionPublicKey(schemeId, mnemonic));
    const holder = opts.holders[memberIndex];
    if (!holder) {
      members.push({ member_index: memberIndex, kind: 'offline', possession_key });
      return;
    }
    const sealedShare = seal(encodeSharePayload({ schemeId, memberIndex, mnemonic }), holder.identity.boxPublicKey);
    sealed.push({ holder, memberIndex, sealedShare });
    members.push({
      member_index: memberIndex,
      kind: 'holder',
      url: holder.url,
      holder: holder.token,
      fingerprint: holder.fingerprint,
      sealed_share_sha256: toHex(sha256(sealedShare)),
      possession_key,
    });
  });
  const vaultFingerprint = masterFingerprint(master, schemeId);
  const manifest = signManifest(
    bindManifest(
      {
        type: 'lifeboat-recovery-manifest',
        scheme_id: toHex(schemeId),
        created_at: new Date().toISOString(),
        threshold: opts.plan.threshold,
        share_count: opts.plan.shareCount,
        slip39_identifier: identifier,
        slip39_iteration_exponent: iterationExponent,
        passphrase_protected: Boolean(opts.passphrase),
        master_fingerprint: toHex(vaultFingerprint),
        primary: encodePublicIdentity(opts.primary),
        operators: opts.operators.map((o) => encodePublicIdentity(parsePublicIdentity(o, 'operator'))),
        members,
      },
      master,
    ),
    opts.primary,
  );
  return { schemeId, master, manifest, sealed, offlineMnemonics: mnemonics.slice(opts.holders.length) };
}

/**
 * Uploads each holder's sealed share (with the manifest) and then the vault copy. If any upload
 * fails, what was uploaded is withdrawn (deleted from the holders that took it) before the error is
 * rethrown, so an aborted init or rotate leaves no second scheme behind to choose from on the worst
 * day; a holder that cannot be cleaned is named in the error, which keeps its code.
 */
export async function distributeScheme(scheme: PreparedScheme, vault: Uint8Array, progress: (line: string) => void = () => {}): Promise<void> {
  const id = scheme.manifest.scheme_id;
  const touched: PreparedScheme['sealed'] = [];
  try {
    for (const s of scheme.sealed) {
      try {
        await s.holder.client.putShare(id, { member_index: s.memberIndex, sealed_share: toB64(s.sealedShare), manifest: scheme.manifest });
      } catch (err) {
        if (err instanceof PeerError) touched.push(s); // lost on the way: it may have been stored
        throw err;
      }
      touched.push(s);
      progress(`sealed share ${s.memberIndex + 1} stored on holder ${s.holder.url} (${s.holder.fingerprint})`);
    }
    for (const s of scheme.sealed) await s.holder.client.putVault(id, vault);
  } catch (err) {
    const left = await withdrawScheme(id, touched);
    if (left.length === 0 || !(err instanceof LifeboatError)) throw err;
    throw new LifeboatError(err.code, `${err.message}; the uncommitted scheme ${id} could not be withdrawn from ${left.join(', ')}`, {
      status: err.status,
      safety: err.safety,
      hint: `${err.hint ? `${err.hint}; ` : ''}it opens nothing (its offline shares were never shown), and reconstruct skips a scheme that has no vault copy`,
    });
  }
}

/** Deletes an uncommitted scheme from the holders that may have it; returns the ones where that failed. */
async function withdrawScheme(schemeId: string, touched: PreparedScheme['sealed']): Promise<string[]> {
  const left: string[] = [];
  for (const s of touched) {
    try {
      await s.holder.client.deleteScheme(schemeId);
    } catch (err) {
      if (!(err instanceof LifeboatError && err.code === 'scheme_not_found')) left.push(s.holder.url);
    }
  }
  return left;
}

/** The result of `recovery init`: the manifest and the offline shares to print once. */
export interface InitResult {
  manifest: Manifest;
  offlineMnemonics: string[];
}

/**
 * Runs `recovery init` on a primary that has no vault yet, or on a data directory whose vault was never
 * split (no manifest beside it: a key node's, docs/keynode-operations.md "Sealing a node"): that vault is
 * re-encrypted under the new master, so its old master.key opens nothing afterwards. Throws
 * ConflictError `vault_exists` when a split vault is there, LifeboatError `sealed` for an unsplit vault
 * whose master key is not loaded, PeerError for an unreachable or mismatching holder, InvalidInputError
 * for a bad plan.
 */
export async function recoveryInit(opts: {
  paths: PrimaryPaths;
  primary: Identity;
  holders: HolderSpec[];
  operators: string[];
  plan: SplitPlan;
  passphrase?: string;
  progress?: (line: string) => void;
}): Promise<InitResult> {
  if (existsSync(opts.paths.vault) && existsSync(opts.paths.manifest)) {
    throw new ConflictError(`a vault already exists at ${opts.paths.vault}`, 'vault_exists', 'use `lifeboat recovery rotate` to re-split it');
  }
  // An unsplit vault (a key node's) is taken over: its current master key must be loaded.
  const current = existsSync(opts.paths.vault) ? { bytes: readFileOrThrow(opts.paths.vault, 'vault'), master: loadMasterKey(opts.paths) } : undefined;
  checkSplitPlan(opts.plan, opts.holders.length);
  const fps = new Set(opts.holders.map((h) => h.fingerprint));
  if (fps.size !== opts.holders.length) throw new InvalidInputError('the same holder is given twice');
  const progress = opts.progress ?? (() => {});
  const holders: ConfirmedHolder[] = [];
  for (const h of opts.holders) {
    holders.push(await confirmHolder(h, opts.primary));
    progress(`holder ${h.url} confirmed by fingerprint ${h.fingerprint}`);
  }
  const scheme = prepareScheme({ primary: opts.primary, holders, operators: opts.operators, plan: opts.plan, passphrase: opts.passphrase });
  const vault = current ? reencryptVault(current.bytes, current.master.key, scheme.master, scheme.schemeId) : createVault(scheme.master, scheme.schemeId);
  if (current) wipe(current.master.key);
  await distributeScheme(scheme, vault, progress);
  await commitPrimaryState(opts.paths, { vault, manifest: scheme.manifest, master: { schemeId: scheme.schemeId, key: scheme.master } });
  wipe(scheme.master);
  return { manifest: scheme.manifest, offlineMnemonics: scheme.offlineMnemonics };
}
