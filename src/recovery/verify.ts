/**
 * `recovery verify`: every holder answers a fresh possession challenge (it still holds the exact
 * sealed share recorded and can open it), its vault copy is current, and, optionally, typed offline
 * shares match the manifest, all without reconstructing anything.
 */
import { ConflictError, LifeboatError, PeerError } from '../errors.js';
import { randomBytes } from '../crypto/random.js';
import type { Identity } from '../identity.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { ctEqual, fromB64, fromHex } from '../util/bytes.js';
import { wipeContents } from '../vault/contents.js';
import { openVault, readVaultHeader } from '../vault/format.js';
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

/** The primary's own vault, and its master when unsealed (then holders' copies are authenticated too). */
interface LocalVault {
  bytes: Uint8Array;
  generation: number;
  master?: Uint8Array;
}

/**
 * Compares a holder's vault copy with the primary's. Throws (as a failed check): `vault_copy_invalid`
 * when it does not open under the master, `primary_behind` when it is newer, `vault_forked` when it
 * is another vault of the same generation, `stale_vault_copy` when it is older.
 */
function checkVaultCopy(url: string, copy: Uint8Array, local: LocalVault): void {
  const generation = readVaultHeader(copy).generation;
  if (local.master) {
    try {
      wipeContents(openVault(copy, local.master));
    } catch (err) {
      throw new LifeboatError('vault_copy_invalid', `holder ${url} serves a vault copy (generation ${generation}) that does not open under the master (${err instanceof LifeboatError ? err.code : 'error'})`, {
        safety: true,
        hint: 'the holder altered or lost its copy: run `lifeboat recovery sync` to replace it, and check the holder',
      });
    }
  }
  const checked = local.master ? '' : ' (not authenticated: the primary is sealed)';
  if (generation > local.generation) {
    throw new LifeboatError('primary_behind', `holder ${url} has vault generation ${generation}, newer than the primary's ${local.generation}${checked}: the primary's vault was rolled back`, {
      safety: true,
      hint: 'do not write to the vault; run `lifeboat recovery sync` to bring the newest copy back',
    });
  }
  if (generation === local.generation && !ctEqual(sha256(copy), sha256(local.bytes))) {
    throw new LifeboatError('vault_forked', `holder ${url} has another vault of generation ${generation}${checked}: the vault forked`, {
      safety: true,
      hint: 'do not write to the vault; run `lifeboat recovery sync --merge` to write one vault with the entries of both',
    });
  }
  if (generation < local.generation) {
    throw new ConflictError(`holder ${url} has vault generation ${generation}, the primary ${local.generation}`, 'stale_vault_copy', 'run `lifeboat recovery sync` to push the current vault');
  }
}

/** Challenges one holder member. Never throws: a failure is a check with ok false and its code. */
async function checkHolder(manifest: Manifest, member: Manifest['members'][number], signer: Identity, local: LocalVault | undefined): Promise<MemberCheck> {
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
    if (local) checkVaultCopy(member.url!, (await holder.client.getVault(manifest.scheme_id)).vault, local);
    return { ...base, ok: true, ms: Math.round(performance.now() - started) };
  } catch (err) {
    const code = err instanceof LifeboatError ? err.code : 'error';
    const message = err instanceof Error ? err.message : String(err);
    return { ...base, ok: false, code, message, safety: err instanceof LifeboatError && err.safety, ms: Math.round(performance.now() - started) };
  }
}

/** Checks every holder (none without a `signer`: offline) and typed offline shares against the manifest. */
export async function verifyRecovery(opts: { manifest: Manifest; signer: Identity | undefined; offlineShares: string[]; localVault?: Uint8Array; master?: Uint8Array }): Promise<VerifyReport> {
  const local = opts.localVault ? { bytes: opts.localVault, generation: readVaultHeader(opts.localVault).generation, master: opts.master } : undefined;
  const signer = opts.signer;
  const checks = signer === undefined ? [] : await Promise.all(
    opts.manifest.members.filter((m) => m.kind === 'holder').map((m) => checkHolder(opts.manifest, m, signer, local)),
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
