/**
 * The public recovery manifest (docs/format.md, "Recovery manifest"): which scheme, which threshold,
 * which member share is where, and what to check each against. It holds nothing secret: possession
 * keys are one-way derivations of the shares, the master fingerprint a one-way derivation of the
 * master key.
 *
 * Two things protect it. The primary's signature says who wrote it, but on a new machine the reader
 * may not know the primary's key, and a compromised holder can re-sign a copy under a key of its own.
 * So a version 2 manifest also carries `master_binding`, an HMAC over the whole body under a key
 * derived from the master: nobody without the master can make one, and a reconstruction checks it
 * right after combining the shares, before anything is written, enrolled or rotated.
 */
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { z } from 'zod';
import { FormatError, InvalidInputError, LifeboatError } from '../errors.js';
import { deriveKey } from '../crypto/kdf.js';
import { signWithContext, verifyWithContext } from '../crypto/sign.js';
import { type Identity, parsePublicIdentity } from '../identity.js';
import { ctEqual, fromB64, fromHex, toHex, utf8, wipe } from '../util/bytes.js';

const CONTEXT = 'recovery-manifest';
const hex = (n: number) => z.string().regex(new RegExp(`^[0-9a-f]{${n * 2}}$`));

const member = z.object({
  member_index: z.number().int().min(0).max(15),
  kind: z.enum(['holder', 'offline']),
  /** For holders: where it listens, its identity and fingerprint, and the hash of its sealed share. */
  url: z.string().max(2048).optional(),
  holder: z.string().max(200).optional(),
  fingerprint: z.string().optional(),
  sealed_share_sha256: hex(32).optional(),
  /** Ed25519 public key derived from the member's share (src/recovery/possession.ts). */
  possession_key: z.string().max(64),
});

export const manifestBodySchema = z.object({
  /** 2 since the master binding; 1 is still read (see checkManifestBinding for where it is accepted). */
  version: z.union([z.literal(1), z.literal(2)]),
  type: z.literal('lifeboat-recovery-manifest'),
  scheme_id: hex(16),
  created_at: z.string().max(64),
  threshold: z.number().int().min(1).max(16),
  share_count: z.number().int().min(1).max(16),
  slip39_identifier: z.number().int().min(0).max(0x7fff),
  slip39_iteration_exponent: z.number().int().min(0).max(15),
  passphrase_protected: z.boolean(),
  master_fingerprint: hex(32),
  /** Version 2: HMAC-SHA256 under a key from the master over the body without this field (bindingInput). */
  master_binding: hex(32).optional(),
  primary: z.string().max(200),
  operators: z.array(z.string().max(200)).max(32),
  members: z.array(member).min(1).max(16),
});
export const manifestSchema = manifestBodySchema.extend({ signature: z.string().max(200) });

export type ManifestBody = z.infer<typeof manifestBodySchema>;
export type Manifest = z.infer<typeof manifestSchema>;
export type ManifestMember = z.infer<typeof member>;

/** Canonical bytes: JSON with keys in schema order, no whitespace (the manifest is produced only by us). */
function canonical(body: ManifestBody): Uint8Array {
  const ordered = manifestBodySchema.parse(body);
  return utf8.encode(JSON.stringify(ordered));
}

/** The bytes the master binding covers: the canonical body without `master_binding` (docs/format.md). */
function bindingInput(body: ManifestBody): Uint8Array {
  const { master_binding: _omit, ...rest } = manifestBodySchema.parse(body);
  return utf8.encode(JSON.stringify(rest));
}

function bindingOf(body: ManifestBody, master: Uint8Array): Uint8Array {
  const key = deriveKey(master, fromHex(body.scheme_id, 'scheme id', 16), 'manifest-binding');
  try {
    return hmac(sha256, key, bindingInput(body));
  } finally {
    wipe(key);
  }
}

/** Returns the body as version 2 with its master binding. Throws InvalidInputError on a bad master length. */
export function bindManifest(body: Omit<ManifestBody, 'version' | 'master_binding'>, master: Uint8Array): ManifestBody {
  if (master.length !== 32) throw new InvalidInputError('master key must be 32 bytes');
  const v2: ManifestBody = { ...body, version: 2, master_binding: undefined };
  return { ...v2, master_binding: toHex(bindingOf(v2, master)) };
}

/**
 * Checks that `manifest` was written by whoever held `master` (constant time). Call it after combining
 * and before the manifest is trusted for anything: holders to enrol, seal to or rotate onto.
 * A version 1 manifest has no binding; it is accepted only when `unboundOk` says why that is safe (the
 * caller pinned the signing primary, or the manifest is the primary's own local file).
 * Throws LifeboatError (a refusal for safety) `manifest_forged` when the binding does not verify, and
 * `manifest_unbound` for a version 1 manifest without `unboundOk`.
 */
export function checkManifestBinding(manifest: Manifest, master: Uint8Array, opts: { unboundOk?: boolean } = {}): void {
  if (manifest.version === 1) {
    if (opts.unboundOk) return;
    throw new LifeboatError('manifest_unbound', `recovery manifest of scheme ${manifest.scheme_id} is version 1, not bound to its master key, so a holder could have altered it`, {
      safety: true,
      hint: 'pin the lost primary with --primary-fingerprint FP (the fingerprint written with the offline share); run `lifeboat recovery rotate` afterwards to write a bound manifest',
    });
  }
  const { signature: _sig, ...body } = manifest;
  const expected = bindingOf(body, master);
  const ok = ctEqual(expected, fromHex(manifest.master_binding ?? '', 'master binding', 32));
  wipe(expected);
  if (!ok) {
    throw new LifeboatError('manifest_forged', `the recovery manifest of scheme ${manifest.scheme_id} was not written by the holder of its master key: its holders, operators or primary may have been replaced`, {
      safety: true,
      hint: 'nothing was written or enrolled; a holder that served this manifest is compromised: reconstruct from a manifest you kept (--manifest) or from another holder, then rotate without it',
    });
  }
}

/** Signs a manifest body with the primary's identity. */
export function signManifest(body: ManifestBody, primary: Identity): Manifest {
  const sig = signWithContext(CONTEXT, canonical(body), primary.signing.secretKey);
  return { ...body, signature: Buffer.from(sig).toString('base64') };
}

/**
 * Parses untrusted JSON as a manifest and verifies the primary's signature and internal consistency.
 * Throws FormatError `malformed` (naming the fields) or `bad_signature`-coded InvalidInputError.
 */
export function parseManifest(value: unknown): Manifest {
  const r = manifestSchema.safeParse(value);
  if (!r.success) throw new FormatError('malformed', `malformed recovery manifest: ${r.error.issues.map((i) => i.path.join('.') || 'body').join(', ')}`);
  const m = r.data;
  const { signature, ...body } = m;
  const primary = parsePublicIdentity(m.primary, 'manifest primary');
  if (!verifyWithContext(CONTEXT, canonical(body), fromB64(signature, 'manifest signature', 64), primary.signingPublicKey)) {
    throw new InvalidInputError('recovery manifest signature does not verify', { code: 'bad_signature', hint: 'the manifest was altered; fetch it from another holder', safety: true });
  }
  if ((m.version === 2) !== (m.master_binding !== undefined)) throw new FormatError('malformed', 'recovery manifest: master_binding is required in version 2 and absent in version 1');
  if (m.threshold > m.share_count || m.members.length !== m.share_count) throw new FormatError('malformed', 'recovery manifest threshold and members disagree');
  const idx = new Set(m.members.map((x) => x.member_index));
  if (idx.size !== m.members.length) throw new FormatError('malformed', 'recovery manifest lists a member twice');
  return m;
}

/** The manifest's member for a SLIP-0039 member index, or undefined. */
export function memberByIndex(m: Manifest, index: number): ManifestMember | undefined {
  return m.members.find((x) => x.member_index === index);
}
