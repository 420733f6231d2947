/**
 * The public recovery manifest (docs/format.md, "Recovery manifest"): which scheme, which threshold,
 * which member share is where, and what to check each against. It holds nothing secret: possession
 * keys are one-way derivations of the shares, the master fingerprint a one-way derivation of the
 * master key. It is signed by the primary that wrote it, so a holder cannot alter the copy it serves
 * without the signature failing; on a new machine the final check is the master fingerprint anyway.
 */
import { z } from 'zod';
import { FormatError, InvalidInputError } from '../errors.js';
import { signWithContext, verifyWithContext } from '../crypto/sign.js';
import { type Identity, parsePublicIdentity } from '../identity.js';
import { fromB64, utf8 } from '../util/bytes.js';

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
  version: z.literal(1),
  type: z.literal('lifeboat-recovery-manifest'),
  scheme_id: hex(16),
  created_at: z.string().max(64),
  threshold: z.number().int().min(1).max(16),
  share_count: z.number().int().min(1).max(16),
  slip39_identifier: z.number().int().min(0).max(0x7fff),
  slip39_iteration_exponent: z.number().int().min(0).max(15),
  passphrase_protected: z.boolean(),
  master_fingerprint: hex(32),
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
  if (m.threshold > m.share_count || m.members.length !== m.share_count) throw new FormatError('malformed', 'recovery manifest threshold and members disagree');
  const idx = new Set(m.members.map((x) => x.member_index));
  if (idx.size !== m.members.length) throw new FormatError('malformed', 'recovery manifest lists a member twice');
  return m;
}

/** The manifest's member for a SLIP-0039 member index, or undefined. */
export function memberByIndex(m: Manifest, index: number): ManifestMember | undefined {
  return m.members.find((x) => x.member_index === index);
}
