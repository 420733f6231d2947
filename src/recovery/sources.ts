/**
 * Where a reconstruction gets the manifest and the vault on a machine that has neither: from files the
 * operator kept, or from the holders (each keeps a copy). Copies from holders are not trusted blindly:
 * the manifest's signature is checked, the newest vault generation wins, and in the end the master key
 * must match the vault header's fingerprint before anything is decrypted.
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
 * Fetches the manifest of `schemeId` (or, when not given, of the newest scheme) from the first holder
 * that has it. Throws NotFoundError `scheme_not_found`, ConflictError `ambiguous_scheme`.
 */
export async function fetchManifest(holders: ConfirmedHolder[], schemeId?: string): Promise<Manifest> {
  let lastErr: unknown;
  for (const h of holders) {
    try {
      const schemes = await h.client.listSchemes();
      const chosen = schemeId ? schemes.find((s) => s.scheme_id === schemeId) : [...schemes].sort((a, b) => b.created_at.localeCompare(a.created_at))[0];
      if (!chosen) {
        lastErr = new NotFoundError(schemeId ? `holder ${h.url} has no scheme ${schemeId}` : `holder ${h.url} holds no scheme`, 'scheme_not_found');
        continue;
      }
      if (!schemeId && schemes.length > 1) {
        const others = schemes.filter((s) => s.scheme_id !== chosen.scheme_id).map((s) => s.scheme_id);
        if (others.length) {
          throw new ConflictError(`holder ${h.url} holds ${schemes.length} schemes`, 'ambiguous_scheme', `choose one with --scheme (${schemes.map((s) => s.scheme_id).join(', ')})`);
        }
      }
      return parseManifest(await h.client.getManifest(chosen.scheme_id));
    } catch (err) {
      if (err instanceof LifeboatError && err.code === 'ambiguous_scheme') throw err;
      lastErr = err;
    }
  }
  throw lastErr ?? new NotFoundError('no holder answered with a manifest', 'scheme_not_found');
}

/**
 * Fetches the newest vault copy of the scheme from the holders. Returns the bytes and the holders'
 * generations (a holder behind the others is reported). Throws NotFoundError `vault_not_found`.
 */
export async function fetchVault(holders: ConfirmedHolder[], manifest: Manifest, warn: (line: string) => void): Promise<Uint8Array> {
  let best: { bytes: Uint8Array; generation: number; url: string } | undefined;
  const seen: string[] = [];
  for (const h of holders) {
    try {
      const { vault } = await h.client.getVault(manifest.scheme_id);
      const header = readVaultHeader(vault);
      seen.push(`${h.url}: ${header.generation}`);
      if (!best || header.generation > best.generation) best = { bytes: vault, generation: header.generation, url: h.url };
    } catch (err) {
      warn(`no vault copy from ${h.url}: ${err instanceof LifeboatError ? err.code : (err as Error).message}`);
    }
  }
  if (!best) throw new NotFoundError('no holder has a copy of the vault', 'vault_not_found', 'pass a vault backup with --vault FILE');
  if (new Set(seen.map((s) => s.split(': ')[1])).size > 1) warn(`holders have different vault generations (${seen.join(', ')}); using ${best.generation} from ${best.url}`);
  return best.bytes;
}
