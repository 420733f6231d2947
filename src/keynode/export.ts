/**
 * Key share exports (docs/format.md, "Key share export"). An export answers
 * `{key_id, export_type, key_share, public}` where `public` is the FROST public key package (JSON) and
 * `key_share` (base64) is, by type:
 *   plaintext  the plain key share document below, UTF-8 JSON (only where plaintext export is enabled)
 *   encrypted  sealKeyShare under the key's tenant's export key, derived from the node's (LBKS envelope;
 *              only a node holding that export key in its vault can import it: the same node after a
 *              database loss, or its clone; and a client only into the tenant named in `export_tenant`)
 *   wrapped    crypto_box_seal of the plain document to a whitelisted X25519 wrapping key
 * Plain key share document:
 *   {"version":1,"type":"lifeboat-key-share","key_id","curve","identifier","signing_share":"<hex>","public":{…}}
 */
import { z } from 'zod';
import { FormatError, InvalidInputError } from '../errors.js';
import { openSealed, seal, type BoxKeyPair } from '../crypto/sealedbox.js';
import { deriveKey } from '../crypto/kdf.js';
import { fromB64, fromHex, toB64, utf8, wipe } from '../util/bytes.js';
import { frostPublicFromJson, frostPublicToJson, type KeyShare, openKeyShare, sealKeyShare, verifyShareAgainstPublic, type FrostPublicJson } from './frost/index.js';
import { parseHex, hex } from './frost/suite.js';
import { DEFAULT_TENANT, TENANT_RE } from './tenants.js';

export const EXPORT_TYPES = ['plaintext', 'encrypted', 'wrapped'] as const;
export type ExportType = (typeof EXPORT_TYPES)[number];

export interface KeyShareExport {
  key_id: string;
  export_type: ExportType;
  key_share: string;
  public: FrostPublicJson;
  /** Encrypted exports: the tenant it is sealed for (the key's owner); it opens only under that tenant's key. */
  export_tenant?: string;
}

export const keyShareExportSchema = z.object({
  key_id: z.string().min(1).max(128),
  export_type: z.enum(EXPORT_TYPES),
  key_share: z.string().min(1).max(64 * 1024),
  public: z.unknown(),
  /** Absent in an encrypted export made before tenants: sealed under the node's export key itself, tenant default. */
  export_tenant: z.string().regex(TENANT_RE).optional(),
});

/**
 * The key an encrypted export of `tenant`'s key is sealed under (docs/format.md, "Key share export"):
 * one per tenant, so that the blob opens only as the tenant it names, which a client must be.
 * Without it, a client of one tenant holding another's saved export could import it and sign with it.
 */
export function tenantExportKey(exportKey: Uint8Array, tenant: string): Uint8Array {
  return deriveKey(exportKey, utf8.encode(tenant), 'keynode/export-key/tenant/v1');
}

/** The tenant an encrypted export belongs to: the one it names, else (made before tenants) `default`. */
export function exportTenantOf(exp: { export_tenant?: string }): string {
  return exp.export_tenant ?? DEFAULT_TENANT;
}

const plainSchema = z.object({
  version: z.literal(1),
  type: z.literal('lifeboat-key-share'),
  key_id: z.string().min(1).max(128),
  curve: z.string(),
  identifier: z.string(),
  signing_share: z.string(),
  public: z.unknown(),
});

function encodePlain(key: KeyShare): Uint8Array {
  return utf8.encode(
    JSON.stringify({ version: 1, type: 'lifeboat-key-share', key_id: key.keyId, curve: key.curve, identifier: key.identifier, signing_share: hex(key.share), public: frostPublicToJson(key.curve, key.public) }),
  );
}

function parsePlain(bytes: Uint8Array): KeyShare {
  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(bytes));
  } catch {
    throw new FormatError('malformed', 'the key share is not a lifeboat key share document');
  }
  const r = plainSchema.safeParse(json);
  if (!r.success) throw new FormatError('malformed', `malformed key share: ${r.error.issues.map((i) => i.path.join('.')).join(', ')}`);
  const { curve, public: pub } = frostPublicFromJson(r.data.public);
  if (curve !== r.data.curve) throw new FormatError('malformed', 'key share curve differs from its public package');
  return { keyId: r.data.key_id, curve, identifier: r.data.identifier, share: parseHex(r.data.signing_share, 'signing share', 32), public: pub };
}

/**
 * Builds an export of `key` of the given type. The caller enforces the policy (plaintext allowed,
 * whitelist). An encrypted export is sealed for `tenant`, the key's owner (tenantExportKey). Throws
 * InvalidInputError `tenant_required` for an encrypted export without it, `wrapping_key_required`.
 */
export function exportKeyShare(key: KeyShare, type: ExportType, keys: { exportKey: Uint8Array; wrappingKey?: Uint8Array; tenant?: string }): KeyShareExport {
  let blob: Uint8Array;
  if (type === 'encrypted') {
    if (keys.tenant === undefined) throw new InvalidInputError('an encrypted export is sealed for its key\'s tenant', { code: 'tenant_required' });
    const sealKey = tenantExportKey(keys.exportKey, keys.tenant);
    try {
      blob = sealKeyShare(sealKey, key);
    } finally {
      wipe(sealKey);
    }
    return { key_id: key.keyId, export_type: type, key_share: toB64(blob), public: frostPublicToJson(key.curve, key.public), export_tenant: keys.tenant };
  } else {
    const plain = encodePlain(key);
    if (type === 'plaintext') blob = plain;
    else {
      if (!keys.wrappingKey) throw new InvalidInputError('a wrapped export needs a wrapping key', { code: 'wrapping_key_required' });
      blob = seal(plain, keys.wrappingKey);
      wipe(plain);
    }
  }
  return { key_id: key.keyId, export_type: type, key_share: toB64(blob), public: frostPublicToJson(key.curve, key.public) };
}

/**
 * Opens an export and checks the share against its verifying share before anything trusts it. The
 * caller checks who may import an encrypted export of `export_tenant` (exportTenantOf). Throws
 * FormatError (malformed), DecryptionError (an encrypted export of another node or whose
 * `export_tenant` was changed, or a wrapped one for another wrapping key), LifeboatError `share_mismatch` (share and public package disagree).
 */
export function importKeyShare(exp: z.infer<typeof keyShareExportSchema>, keys: { exportKey: Uint8Array; wrapping: BoxKeyPair }): KeyShare {
  const blob = fromB64(exp.key_share, 'key_share');
  let key: KeyShare;
  if (exp.export_type === 'encrypted') {
    // Made before tenants: under the node's export key itself (its key was tenant default's).
    const openKey = exp.export_tenant === undefined ? keys.exportKey : tenantExportKey(keys.exportKey, exp.export_tenant);
    try {
      key = openKeyShare(openKey, blob, { keyId: exp.key_id });
    } finally {
      if (openKey !== keys.exportKey) wipe(openKey);
    }
  } else key = parsePlain(exp.export_type === 'wrapped' ? openSealed(blob, keys.wrapping) : blob);
  if (key.keyId !== exp.key_id) throw new FormatError('malformed', 'the export names another key id than its share');
  const outer = frostPublicFromJson(exp.public, { curve: key.curve });
  if (JSON.stringify(frostPublicToJson(key.curve, outer.public)) !== JSON.stringify(frostPublicToJson(key.curve, key.public))) {
    throw new FormatError('malformed', "the export's public package differs from the one bound to its share");
  }
  verifyShareAgainstPublic({ curve: key.curve, identifier: key.identifier, share: key.share, public: key.public });
  return key;
}

const WRAPPING_KEY_FORMS =
  'the 32-byte X25519 wrapping public key as base64 (44 characters, as `node init` and GET /v1/wrapping-key print it), as hex (64 characters), or the JSON GET /v1/wrapping-key answers';

/**
 * Reads a wrapping public key as an operator may paste it: base64 (what `node init` prints), hex, or
 * the JSON body of GET /v1/wrapping-key (or /v1/identity) as it is. Returns it as base64, the form
 * whitelists and the API use. Throws InvalidInputError naming `what` and the forms it accepts.
 */
export function parseWrappingKey(text: string, what = '--wrapping-key'): string {
  const s = text.trim();
  let candidate = s;
  if (s.startsWith('{')) {
    let field: unknown;
    try {
      field = (JSON.parse(s) as { wrapping_public_key?: unknown }).wrapping_public_key;
    } catch {
      field = undefined;
    }
    candidate = typeof field === 'string' ? field.trim() : '';
  }
  let key: Uint8Array | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(candidate)) key = fromHex(candidate, what, 32);
  else if (/^[A-Za-z0-9+/]{43}=$/.test(candidate)) {
    try {
      key = fromB64(candidate, what, 32);
    } catch {
      key = undefined;
    }
  }
  if (!key) throw new InvalidInputError(`${what} is not a wrapping key: expected ${WRAPPING_KEY_FORMS}`, { hint: 'read it with `curl -H "Authorization: Bearer $KEY" URL/v1/wrapping-key`, or take what `lifeboat node init` printed on that node' });
  return toB64(key);
}

