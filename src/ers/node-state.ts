/**
 * What a key node remembers of a key's emergency recovery package (docs/ers.md, "Policy"): one meta
 * entry per key, written only after the node verified the package itself against its own copy of the
 * key's public package and a whitelisted RSA key. It backs `ers.require` and a key's own `require`
 * policy (no signing without it), the key info and `node status`.
 *
 * A key's own policy (KeyRecord.ersPolicy, chosen at creation) narrows the node's: `off` refuses the
 * key's part and package even on a node with ers.enabled; `allow` and `require` still need ers.enabled
 * and a whitelisted RSA key; `require` (or the node's ers.require) needs a package before signing. A key
 * without one follows the node's settings, as every key did before.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { ConflictError, ForbiddenError } from '../errors.js';
import { toHex } from '../util/bytes.js';
import type { NodeConfig } from '../keynode/config.js';
import { frostGroupPublicKey, parseFrostPublic } from '../keynode/frost/index.js';
import type { ErsPolicy, KeyNodeStore, KeyRecord } from '../keynode/store/types.js';
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

/** As stored: the record and the group key of the key it was verified for. */
type StoredErsRecord = ErsRecord & { for_group_key?: string };

/**
 * The key's record, or undefined when no verified package was registered on this node for this very
 * key: a record left by a deleted key (`DELETE /v1/keys/{key_id}`) does not count for a new key made
 * under the same id (another group key). Records from before the group key was kept count as before.
 */
export async function ersRecordOf(store: KeyNodeStore, rec: KeyRecord): Promise<ErsRecord | undefined> {
  const raw = await store.getMeta(META_PREFIX + rec.keyId);
  if (raw === undefined) return undefined;
  const { for_group_key: forKey, ...record } = JSON.parse(raw) as StoredErsRecord;
  return forKey === undefined || forKey === toHex(rec.groupPublicKey) ? record : undefined;
}

/**
 * Refuses emergency recovery for `rec`'s key where the node or the key's own policy says no. Throws
 * ForbiddenError `ers_disabled` (the node's ers.enabled is off) or `ers_disabled_for_key` (the key's
 * policy is `off`).
 */
export function checkErsAllowed(config: NodeConfig, rec: KeyRecord): void {
  if (!config.ers.enabled) throw new ForbiddenError('emergency recovery parts are disabled on this node', 'ers_disabled', 'an operator enables them with `lifeboat node config set ers.enabled true` and a restart');
  if (rec.ersPolicy === 'off') {
    throw new ForbiddenError(`key ${rec.keyId} was created with ERS policy off: it has no emergency recovery part or package`, 'ers_disabled_for_key', 'a key\'s policy is chosen when it is created (`lifeboat key create --ers allow|require`)');
  }
}

/** Whether `rec`'s key signs only once a verified package is registered here: its own `require`, or the node's ers.require. */
export function ersRequired(config: NodeConfig, rec: KeyRecord): boolean {
  return rec.ersPolicy === 'require' || config.ers.require;
}

/**
 * Verifies `bytes` as the package of `rec`'s key (its own public package and group key, an RSA key on
 * the node's ERS whitelist) and records it. Throws ForbiddenError `ers_disabled`,
 * `ers_disabled_for_key`, `ers_key_not_whitelisted`, FormatError, and the package's first problem (e.g.
 * `ers_proof_invalid`).
 */
export async function registerPackage(store: KeyNodeStore, config: NodeConfig, rec: KeyRecord, bytes: Uint8Array, now = Date.now()): Promise<ErsRecord> {
  checkErsAllowed(config, rec);
  const pkg = parsePackage(bytes);
  const fp = toHex(sha256(pkg.spki));
  const listed = config.ers.whitelist.find((w) => w.fingerprint === fp);
  if (!listed) throw new ForbiddenError(`the package's RSA key SHA256:${fp} is not on this node's ERS whitelist`, 'ers_key_not_whitelisted');
  const rsa = parseErsPublicKey(pkg.spki);
  const pub = parseFrostPublic(rec.publicPackage, { curve: rec.curve }).public;
  const report = verifyPackage(pkg, { groupKey: frostGroupPublicKey(rec.curve, pub), rsa });
  if (!report.ok) throw reportError(report);
  const record: ErsRecord = { rsa_fingerprint: describeFingerprint(rsa.fingerprint), label: pkg.label, participants: pkg.parts.length, package_sha256: toHex(sha256(bytes)), verified_at: new Date(now).toISOString() };
  const stored: StoredErsRecord = { ...record, for_group_key: toHex(rec.groupPublicKey) };
  await store.setMeta(META_PREFIX + rec.keyId, JSON.stringify(stored));
  return record;
}

/**
 * The signing gate of `ers.require` and of a key's own `require` policy: such a key without a
 * registered package refuses round one (`ers_package_required`, 409).
 */
export function ersSigningGate(store: KeyNodeStore, config: NodeConfig): (rec: KeyRecord) => Promise<void> {
  return async (rec) => {
    if (ersRequired(config, rec) && !(await ersRecordOf(store, rec))) {
      const whose = rec.ersPolicy === 'require' ? 'the key was created with ERS policy require' : 'this node requires one';
      throw new ConflictError(`key ${rec.keyId} has no verified emergency recovery package on this node and ${whose}`, 'ers_package_required', 'make it with `lifeboat ers backup --key …` (it registers the package with every node), then sign');
    }
  };
}


/** How many of a node's keys have each own ERS policy (`none`: the node's settings decide). */
type PolicyCounts = Record<ErsPolicy | 'none', number>;

/**
 * `node status`'s ERS block: the node's policy, how many of its keys have a registered package, how many
 * have each own policy, and how many need a package to sign and have none (they cannot sign yet).
 */
export async function ersStatus(store: KeyNodeStore, config: NodeConfig): Promise<{ enabled: boolean; require: boolean; whitelist: string[]; keys: number; keys_with_package: number; key_policies: PolicyCounts; keys_waiting_for_package: number }> {
  let keys = 0;
  let withPackage = 0;
  let waiting = 0;
  const policies: PolicyCounts = { none: 0, off: 0, allow: 0, require: 0 };
  let after: string | undefined;
  for (;;) {
    const page = await store.listKeys({ afterKeyId: after, limit: 1000 });
    for (const k of page) {
      keys++;
      policies[k.ersPolicy ?? 'none']++;
      const has = (await ersRecordOf(store, k)) !== undefined;
      if (has) withPackage++;
      else if (ersRequired(config, k)) waiting++;
    }
    if (page.length < 1000) break;
    after = page[page.length - 1]!.keyId;
  }
  return { enabled: config.ers.enabled, require: config.ers.require, whitelist: config.ers.whitelist.map((w) => `SHA256:${w.fingerprint}`), keys, keys_with_package: withPackage, key_policies: policies, keys_waiting_for_package: waiting };
}
