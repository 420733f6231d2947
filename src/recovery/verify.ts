/**
 * `recovery verify`: every holder answers a fresh possession challenge (it still holds the exact
 * sealed share recorded and can open it), its vault copy is current, and, optionally, typed offline
 * shares match the manifest, all without reconstructing anything.
 */
import { ConflictError, LifeboatError, PeerError } from '../errors.js';
import { randomBytes } from '../crypto/random.js';
import type { Identity } from '../identity.js';
import { fromB64, fromHex } from '../util/bytes.js';
import { readVaultHeader } from '../vault/format.js';
import { checkShareAgainstManifest } from './collect.js';
import { confirmHolder } from './holders.js';
import type { Manifest } from './manifest.js';
import { verifyPossession } from './possession.js';

export interface MemberCheck {
  member: number;
  kind: 'holder' | 'offline';
  url?: string;
  ok: boolean;
  /** err_type of the failure, when not ok. */
  code?: string;
  message?: string;
  /** When not ok: whether the failure is a refusal for safety (the CLI then exits 3, docs/cli.md). */
  safety?: boolean;
  ms: number;
}

export interface VerifyReport {
  ok: boolean;
  schemeId: string;
  threshold: number;
  checks: MemberCheck[];
}

/** Challenges one holder member. Never throws: a failure is a check with ok false and its code. */
async function checkHolder(manifest: Manifest, member: Manifest['members'][number], signer: Identity, localGeneration: number | undefined): Promise<MemberCheck> {
  const started = performance.now();
  const base = { member: member.member_index + 1, kind: 'holder' as const, url: member.url };
  try {
    const holder = await confirmHolder({ url: member.url!, fingerprint: member.fingerprint! }, signer);
    const schemeId = fromHex(manifest.scheme_id, 'scheme id', 16);
    const challenge = randomBytes(32);
    const answer = await holder.client.challenge(manifest.scheme_id, challenge);
    const ok = verifyPossession({
      schemeId,
      challenge,
      sealedShareHash: fromHex(answer.sealed_share_sha256, 'sealed share hash', 32),
      expectedSealedShareHash: fromHex(member.sealed_share_sha256!, 'sealed share hash', 32),
      holderBoxPublicKey: holder.identity.boxPublicKey,
      possessionKey: fromB64(member.possession_key, 'possession key', 32),
      signature: fromB64(answer.signature, 'possession signature', 64),
    });
    if (!ok) throw new PeerError('possession_failed', `holder ${member.url} failed its possession challenge: it does not hold the recorded share or cannot open it`, 'the share on this holder is unusable: run `lifeboat recovery rotate`');
    if (localGeneration !== undefined) {
      const copy = readVaultHeader((await holder.client.getVault(manifest.scheme_id)).vault);
      if (copy.generation > localGeneration) {
        throw new LifeboatError('primary_behind', `holder ${member.url} has vault generation ${copy.generation}, newer than the primary's ${localGeneration}: the primary's vault was rolled back`, {
          safety: true,
          hint: 'do not write to the vault; run `lifeboat recovery sync` to bring the newest copy back',
        });
      }
      if (copy.generation < localGeneration) {
        throw new ConflictError(`holder ${member.url} has vault generation ${copy.generation}, the primary ${localGeneration}`, 'stale_vault_copy', 'run `lifeboat recovery sync` to push the current vault');
      }
    }
    return { ...base, ok: true, ms: Math.round(performance.now() - started) };
  } catch (err) {
    const code = err instanceof LifeboatError ? err.code : 'error';
    const message = err instanceof Error ? err.message : String(err);
    return { ...base, ok: false, code, message, safety: err instanceof LifeboatError && err.safety, ms: Math.round(performance.now() - started) };
  }
}

/** Checks every holder (and typed offline shares) against the manifest. */
export async function verifyRecovery(opts: { manifest: Manifest; signer: Identity; offlineShares: string[]; localVault?: Uint8Array }): Promise<VerifyReport> {
  const localGeneration = opts.localVault ? readVaultHeader(opts.localVault).generation : undefined;
  const checks = await Promise.all(
    opts.manifest.members.filter((m) => m.kind === 'holder').map((m) => checkHolder(opts.manifest, m, opts.signer, localGeneration)),
  );
  opts.offlineShares.forEach((mnemonic, i) => {
    const started = performance.now();
    try {
      const s = checkShareAgainstManifest(opts.manifest, mnemonic, `typed share ${i + 1}`);
      checks.push({ member: s.memberIndex + 1, kind: 'offline', ok: true, ms: Math.round(performance.now() - started) });
    } catch (err) {
      const code = err instanceof LifeboatError ? err.code : 'error';
      checks.push({ member: 0, kind: 'offline', ok: false, code, message: (err as Error).message, safety: err instanceof LifeboatError && err.safety, ms: Math.round(performance.now() - started) });
    }
  });
  return { ok: checks.every((c) => c.ok), schemeId: opts.manifest.scheme_id, threshold: opts.manifest.threshold, checks };
}
