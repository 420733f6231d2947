/**
 * Key share exports (docs/format.md, "Key share export"). An export answers
 * `{key_id, export_type, key_share, public}` where `public` is the FROST public key package (JSON) and
 * `key_share` (base64) is, by type:
 *   plaintext  the plain key share document below, UTF-8 JSON (only where plaintext export is enabled)
 *   encrypted  sealExportedKeyShare under the node's export key (LBKS version 2 envelope; only a node
 *              holding that export key in its vault can import it: the same node after a database loss,
 *              or its clone)
 *   wrapped    crypto_box_seal of the plain document to a whitelisted X25519 wrapping key
 * Plain key share document:
 *   {"version":2,"type":"lifeboat-key-share","key_id","tenant","curve","identifier","signing_share":"<hex>","public":{…}}
 * Every export names its owner, the key's tenant, bound to the share (the encrypted form: in the
 * envelope's associated data), so a client's import can refuse another tenant's export. Exports of
 * before (LBKS version 1, document version 1) have no owner. docs/format.md, "Key share export".
 */
import { z } from 'zod';
import { FormatError, ForbiddenError, InvalidInputError, LifeboatError } from '../errors.js';
import { openSealed, seal, type BoxKeyPair } from '../crypto/sealedbox.js';
import { fromB64, fromHex, toB64, utf8, wipe } from '../util/bytes.js';
import { checkExpected, frostPublicFromJson, frostPublicToJson, type KeyShare, parseExportedKeyShare, sealExportedKeyShare, verifyShareAgainstPublic, type FrostPublicJson } from './frost/index.js';
import { TENANT_RE } from './tenants.js';
import { parseHex, hex } from './frost/suite.js';

export const EXPORT_TYPES = ['plaintext', 'encrypted', 'wrapped'] as const;
export type ExportType = (typeof EXPORT_TYPES)[number];

export interface KeyShareExport {
  key_id: string;
  export_type: ExportType;
  key_share: string;
  public: FrostPublicJson;
}

export const keyShareExportSchema = z.object({
  key_id: z.string().min(1).max(128),
  export_type: z.enum(EXPORT_TYPES),
  key_share: z.string().min(1).max(64 * 1024),
  public: z.unknown(),
});

const plainSchema = z.object({
  version: z.union([z.literal(1), z.literal(2)]),
  type: z.literal('lifeboat-key-share'),
  key_id: z.string().min(1).max(128),
  /** The owner: required from version 2 on, absent before. */
  tenant: z.string().regex(TENANT_RE).optional(),
  curve: z.string(),
  identifier: z.string(),
  signing_share: z.string(),
  public: z.unknown(),
});

function encodePlain(key: KeyShare, owner: string): Uint8Array {
  return utf8.encode(
    JSON.stringify({ version: 2, type: 'lifeboat-key-share', key_id: key.keyId, tenant: owner, curve: key.curve, identifier: key.identifier, signing_share: hex(key.share), public: frostPublicToJson(key.curve, key.public) }),
  );
}

function parsePlain(bytes: Uint8Array): { key: KeyShare; owner: string | null } {
  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(bytes));
  } catch {
    throw new FormatError('malformed', 'the key share is not a lifeboat key share document');
  }
  const r = plainSchema.safeParse(json);
  if (!r.success) throw new FormatError('malformed', `malformed key share: ${r.error.issues.map((i) => i.path.join('.')).join(', ')}`);
  if ((r.data.version === 2) !== (r.data.tenant !== undefined)) throw new FormatError('malformed', 'malformed key share: tenant (required from version 2 on, absent before)');
  const { curve, public: pub } = frostPublicFromJson(r.data.public);
  if (curve !== r.data.curve) throw new FormatError('malformed', 'key share curve differs from its public package');
  return { key: { keyId: r.data.key_id, curve, identifier: r.data.identifier, share: parseHex(r.data.signing_share, 'signing share', 32), public: pub }, owner: r.data.tenant ?? null };
}

/**
 * Builds an export of `key` of the given type, naming `owner` (the key's tenant). The caller enforces
 * the policy (plaintext allowed, whitelist). Throws InvalidInputError.
 */
export function exportKeyShare(key: KeyShare, type: ExportType, keys: { exportKey: Uint8Array; wrappingKey?: Uint8Array }, owner: string): KeyShareExport {
  let blob: Uint8Array;
  if (type === 'encrypted') blob = sealExportedKeyShare(keys.exportKey, key, owner);
  else {
    const plain = encodePlain(key, owner);
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
 * Opens an export and checks the share against its verifying share before anything trusts it; returns
 * the share and the export's owner (null for an export written before owners were bound). With
 * `owner`, the export must name exactly that owner, checked before the share is opened (an encrypted
 * export's header, which its tag then vouches for). Throws FormatError (malformed), ForbiddenError
 * `export_of_another_tenant` (a refusal for safety) or `export_without_owner`, DecryptionError (an
 * encrypted export of another node or altered, a wrapped one for another wrapping key), LifeboatError
 * `key_share_mismatch` (the header names another key id), `share_mismatch` (share and public package
 * disagree).
 */
export function importKeyShare(exp: z.infer<typeof keyShareExportSchema>, keys: { exportKey: Uint8Array; wrapping: BoxKeyPair }, opts: { owner?: string } = {}): { key: KeyShare; owner: string | null } {
  const blob = fromB64(exp.key_share, 'key_share');
  let opened: { key: KeyShare; owner: string | null };
  if (exp.export_type === 'encrypted') {
    const parsed = parseExportedKeyShare(blob);
    checkExpected('exported key share', parsed, { keyId: exp.key_id });
    checkOwner(parsed.owner, opts.owner);
    opened = { key: parsed.open(keys.exportKey), owner: parsed.owner };
  } else {
    opened = parsePlain(exp.export_type === 'wrapped' ? openSealed(blob, keys.wrapping) : blob);
    try {
      checkOwner(opened.owner, opts.owner);
    } catch (err) {
      wipe(opened.key.share);
      throw err;
    }
  }
  const key = opened.key;
  if (key.keyId !== exp.key_id) throw new FormatError('malformed', 'the export names another key id than its share');
  const outer = frostPublicFromJson(exp.public, { curve: key.curve });
  if (JSON.stringify(frostPublicToJson(key.curve, outer.public)) !== JSON.stringify(frostPublicToJson(key.curve, key.public))) {
    throw new FormatError('malformed', "the export's public package differs from the one bound to its share");
  }
  verifyShareAgainstPublic({ curve: key.curve, identifier: key.identifier, share: key.share, public: key.public });
  return opened;
}

/** Refuses an export whose owner is not `required` (when one is). Says nothing the export does not. */
function checkOwner(owner: string | null, required: string | undefined): void {
  if (required === undefined) return;
  if (owner === null) {
    throw new ForbiddenError('this export names no owner (it was written before exports were bound to their tenant), so a client may not import it', 'export_without_owner', 'export the key again from a node that holds it, or ask the node’s operator to import it with `lifeboat key import --tenant NAME`');
  }
  if (owner !== required) {
    throw new LifeboatError('export_of_another_tenant', 'this export belongs to another tenant than your API key’s', { status: 403, hint: 'import it with an API key of the tenant that exported it' });
  }
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

