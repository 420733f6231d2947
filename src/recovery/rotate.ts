/**
 * `recovery rotate`: a new master key and scheme, the vault re-encrypted under it, new sealed shares on
 * the holders and new offline shares. Order matters for crash safety: the new scheme is stored on every
 * holder first (alongside the old one), then committed locally in one step (src/primary/commit.ts),
 * and only then are the old shares deleted from the holders. After it, the old shares combine to a
 * master that no current vault accepts (the fingerprint check refuses it before any decryption).
 */
import type { Identity } from '../identity.js';
import { reencryptVault } from '../vault/format.js';
import { commitPrimaryState } from '../primary/commit.js';
import type { MasterKey, PrimaryPaths } from '../primary/datadir.js';
import { wipe } from '../util/bytes.js';
import { describeFailure } from './collect.js';
import { type ConfirmedHolder, confirmHolder, type HolderSpec } from './holders.js';
import { checkSplitPlan, distributeScheme, prepareScheme, type SplitPlan } from './init.js';
import { checkManifestBinding, type Manifest } from './manifest.js';

export interface RotateResult {
  manifest: Manifest;
  offlineMnemonics: string[];
  oldSchemeId: string;
  /** Holders that still hold the old scheme (unreachable when it was deleted). */
  oldSchemeLeftOn: string[];
}

/** The holders of a manifest, as specs. */
export function manifestHolders(m: Manifest): HolderSpec[] {
  return m.members.filter((x) => x.kind === 'holder').map((x) => ({ url: x.url!, fingerprint: x.fingerprint! }));
}

/**
 * Rotates the scheme. Holders default to the current manifest's; `holders` replaces them (a
 * compromised holder is dropped this way). Throws PeerError when a new holder is unreachable (nothing
 * changes then), InvalidInputError for a bad plan.
 */
export async function rotate(opts: {
  paths: PrimaryPaths;
  primary: Identity;
  current: { manifest: Manifest; vault: Uint8Array; master: MasterKey };
  holders?: HolderSpec[];
  plan?: SplitPlan;
  passphrase?: string;
  progress?: (line: string) => void;
}): Promise<RotateResult> {
  const progress = opts.progress ?? (() => {});
  const old = opts.current.manifest;
  // The local manifest is the one the holders are taken from: it must be the master's own (a version 1
  // one, from before the binding, is the primary's own file and is replaced by a bound one now).
  checkManifestBinding(old, opts.current.master.key, { unboundOk: true });
  const specs = opts.holders ?? manifestHolders(old);
  const plan = opts.plan ?? { threshold: old.threshold, shareCount: old.share_count };
  checkSplitPlan(plan, specs.length);
  const holders: ConfirmedHolder[] = [];
  for (const s of specs) holders.push(await confirmHolder(s, opts.primary));
  const scheme = prepareScheme({ primary: opts.primary, holders, operators: old.operators, plan, passphrase: opts.passphrase });
  const vault = reencryptVault(opts.current.vault, opts.current.master.key, scheme.master, scheme.schemeId);
  await distributeScheme(scheme, vault, progress);
  await commitPrimaryState(opts.paths, { vault, manifest: scheme.manifest, master: { schemeId: scheme.schemeId, key: scheme.master } });
  wipe(scheme.master);
  progress(`scheme ${scheme.manifest.scheme_id} committed; removing scheme ${old.scheme_id} from holders`);
  const oldSchemeLeftOn: string[] = [];
  for (const spec of manifestHolders(old)) {
    try {
      const h = await confirmHolder(spec, opts.primary);
      await h.client.deleteScheme(old.scheme_id);
    } catch (err) {
      oldSchemeLeftOn.push(describeFailure(spec.url, err));
    }
  }
  return { manifest: scheme.manifest, offlineMnemonics: scheme.offlineMnemonics, oldSchemeId: old.scheme_id, oldSchemeLeftOn };
}
