/**
 * What a key node remembers of a key's emergency recovery package (docs/ers.md, "Policy"): one meta
 * entry per key, written only after the node verified the package itself against its own copy of the
 * key's public package and a whitelisted RSA key. It backs `ers.require` (no signing without it), the
 * key info and `node status`.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { ConflictError, ForbiddenError } from '../errors.js';
import { toHex } from '../util/bytes.js';
import type { NodeConfig } from '../keynode/config.js';
import { frostGroupPublicKey, parseFrostPublic } from '../keynode/frost/index.js';
import type { KeyNodeStore, KeyRecord } from '../keynode/store/types.js';
import { parsePackage } from './format.js';
import { reportError, verifyPackage } from './package.js';
import { describeFingerprint, parseErsPublicKey } from './rsa.js';

const META_PREFIX = 'ers_package:';

/** The public record of a key's verified package. */
export interface ErsRecord {
  rsa_fingerprint: string;
  label: string;
  participants: number;
  package_sha256: string;
  verified_at: string;
}

/** The key's record, or undefined when no verified package was registered on this node. */
export async function ersRecordOf(store: KeyNodeStore, keyId: string): Promise<ErsRecord | undefined> {
  const raw = await store.getMeta(META_PREFIX + keyId);
  return raw === undefined ? undefined : (JSON.parse(raw) as ErsRecord);
}

/**
 * Verifies `bytes` as the package of `rec`'s key (its own public package and group key, an RSA key on
 * the node's ERS whitelist) and records it. Throws ForbiddenError `ers_disabled`,
 * `ers_key_not_whitelisted`, FormatError, and the package's first problem (e.g. `ers_proof_invalid`).
 */
export async function registerPackage(store: KeyNodeStore, config: NodeConfig, rec: KeyRecord, bytes: Uint8Array, now = Date.now()): Promise<ErsRecord> {
  if (!config.ers.enabled) throw new ForbiddenError('emergency recovery is disabled on this node', 'ers_disabled');
  const pkg = parsePackage(bytes);
  const fp = toHex(sha256(pkg.spki));
  const listed = config.ers.whitelist.find((w) => w.fingerprint === fp);
  if (!listed) throw new ForbiddenError(`the package's RSA key SHA256:${fp} is not on this node's ERS whitelist`, 'ers_key_not_whitelisted');
  const rsa = parseErsPublicKey(pkg.spki);
  const pub = parseFrostPublic(rec.publicPackage, { curve: rec.curve }).public;
  const report = verifyPackage(pkg, { groupKey: frostGroupPublicKey(rec.curve, pub), rsa });
  if (!report.ok) throw reportError(report);
  const record: ErsRecord = { rsa_fingerprint: describeFingerprint(rsa.fingerprint), label: pkg.label, participants: pkg.parts.length, package_sha256: toHex(sha256(bytes)), verified_at: new Date(now).toISOString() };
  await store.setMeta(META_PREFIX + rec.keyId, JSON.stringify(record));
  return record;
}

/** The signing gate of `ers.require`: a key without a registered package refuses round one. */
export function ersSigningGate(store: KeyNodeStore, config: NodeConfig): ((rec: KeyRecord) => Promise<void>) | undefined {
  if (!config.ers.require) return undefined;
  return async (rec) => {
    if (!(await ersRecordOf(store, rec.keyId))) {
      throw new ConflictError(`key ${rec.keyId} has no verified emergency recovery package on this node and this node requires one`, 'ers_package_required', 'make it with `lifeboat ers backup --key …` (it registers the package with every node), then sign');
    }
  };
}

/** `node status`'s ERS block: the policy and how many of the node's keys have a registered package. */
export async function ersStatus(store: KeyNodeStore, config: NodeConfig): Promise<{ enabled: boolean; require: boolean; whitelist: string[]; keys: number; keys_with_package: number }> {
  let keys = 0;
  let withPackage = 0;
  let after: string | undefined;
  for (;;) {
    const page = await store.listKeys({ afterKeyId: after, limit: 1000 });
    for (const k of page) {
      keys++;
      if (await store.getMeta(META_PREFIX + k.keyId)) withPackage++;
    }
    if (page.length < 1000) break;
    after = page[page.length - 1]!.keyId;
  }
  return { enabled: config.ers.enabled, require: config.ers.require, whitelist: config.ers.whitelist.map((w) => `SHA256:${w.fingerprint}`), keys, keys_with_package: withPackage };
}
