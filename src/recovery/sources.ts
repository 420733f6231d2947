/**
 * Where a reconstruction gets the manifest and the vault on a machine that has neither: from files the
 * operator kept, or from the holders (each keeps a copy). Copies from holders are not trusted blindly:
 * the manifest's signature is checked here and its master binding once the shares combine; every
 * holder is asked for its vault copy, and the newest one that opens under the master wins.
 */
import { ConflictError, LifeboatError, NotFoundError } from '../errors.js';
import { readVaultHeader } from '../vault/format.js';
import { readFileOrThrow } from '../util/files.js';
import { utf8 } from '../util/bytes.js';
import type { ConfirmedHolder } from './holders.js';
import { type Manifest, parseManifest } from './manifest.js';

/** Reads a manifest file. Throws NotFoundError, FormatError, or InvalidInputError `bad_signature`. */
export function readManifestFile(path: string): Manifest {
  const text = utf8.decode(readFileOrThrow(path, 'recovery manifest'));
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new LifeboatError('malformed', `${path} is not JSON`);
  }
  return parseManifest(json);
}

/**
 * Fetches the manifest of `schemeId` (or, when not given, of the newest committed scheme) from the
 * first holder that has it. A scheme a holder keeps without any vault copy was never committed (an
 * init or rotate that died between uploads) and is skipped when another scheme has one. The manifest
 * is only signature-checked here: it is trusted after the shares combine (checkManifestBinding).
 * Throws NotFoundError `scheme_not_found`, ConflictError `ambiguous_scheme`.
 */
export async function fetchManifest(holders: ConfirmedHolder[], schemeId?: string): Promise<Manifest> {
  let lastErr: unknown;
  for (const h of holders) {
    try {
      const all = await h.client.listSchemes();
      const committed = all.filter((s) => s.vault_generation !== null);
      const schemes = schemeId || committed.length === 0 ? all : committed;
      const chosen = schemeId ? schemes.find((s) => s.scheme_id === schemeId) : [...schemes].sort((a, b) => b.created_at.localeCompare(a.created_at))[0];
      if (!chosen) {
        lastErr = new NotFoundError(schemeId ? `holder ${h.url} has no scheme ${schemeId}` : `holder ${h.url} holds no scheme`, 'scheme_not_found');
        continue;
      }
      if (!schemeId && schemes.length > 1) {
        throw new ConflictError(`holder ${h.url} holds ${schemes.length} schemes with a vault copy`, 'ambiguous_scheme', `choose one with --scheme (${schemes.map((s) => s.scheme_id).join(', ')})`);
      }
      return parseManifest(await h.client.getManifest(chosen.scheme_id));
    } catch (err) {
      if (err instanceof LifeboatError && err.code === 'ambiguous_scheme') throw err;
      lastErr = err;
    }
  }
  throw lastErr ?? new NotFoundError('no holder answered with a manifest', 'scheme_not_found');
}

/** A candidate vault: bytes whose header is read but not yet authenticated (that needs the master). */
export interface VaultCopy {
  bytes: Uint8Array;
  generation: number;
  /** Where it came from, for reports: `holder URL` or `file PATH`. */
  source: string;
}

/**
 * Asks every holder for its vault copy of the scheme (in parallel). Copies are candidates: a holder
 * can serve anything, so the newest one that opens under the combined master wins later
 * (combineAndCheck). Holders that answer with no copy or an error are reported through `warn`.
 */
export async function fetchVaultCopies(holders: ConfirmedHolder[], manifest: Manifest, warn: (line: string) => void): Promise<VaultCopy[]> {
  const copies = await Promise.all(
    holders.map(async (h): Promise<VaultCopy | undefined> => {
      try {
        const { vault } = await h.client.getVault(manifest.scheme_id);
        return { bytes: vault, generation: readVaultHeader(vault).generation, source: `holder ${h.url}` };
      } catch (err) {
        warn(`no vault copy from ${h.url}: ${err instanceof LifeboatError ? err.code : (err as Error).message}`);
        return undefined;
      }
    }),
  );
  return copies.filter((c): c is VaultCopy => c !== undefined);
}
