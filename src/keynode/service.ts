/**
 * The key node's domain: DKG (state kept encrypted in the store between calls), the two signing rounds
 * with atomic, single-use nonces, and share export/import under the node's policy. HTTP lives in
 * server.ts; this file knows nothing of requests. The rounds themselves are ./dkg-rounds.ts and
 * ./signing-rounds.ts; who may see which key is ./caller.ts.
 */
import { ConflictError, ForbiddenError, InvalidInputError, LifeboatError, NotFoundError } from '../errors.js';
import { randomBytes } from '../crypto/random.js';
import { encodePublicIdentity, identityFingerprint } from '../identity.js';
import { fromB64, toB64, toHex, wipe } from '../util/bytes.js';
import { KEY_ID } from './api.js';
import { type Caller, visibleTo } from './caller.js';
import { checkKeyErsPolicy, type NodeConfig } from './config.js';
import { exportKeyShare, exportTenantOf, type ExportType, importKeyShare, type KeyShareExport, type keyShareExportSchema } from './export.js';
import { encodeFrostPublic, frostGroupPublicKey, frostPublicToJson, type FrostCurve, type KeyShare, openKeyShare, parseFrostPublic, sealKeyShare, verifyShareAgainstPublic } from './frost/index.js';
import type { NodeSecrets } from './secrets.js';
import { DEFAULT_TENANT } from './tenants.js';
import type { ErsPolicy, KeyNodeStore, KeyOrigin, KeyRecord } from './store/types.js';
import { keyEpoch } from './store/types.js';
import { keyChannelView, requiredChannels } from './durable.js';
import { OpenedKeyCache } from './opened-keys.js';
import { DkgRounds, type DkgStartInput } from './dkg-rounds.js';
import { SigningRounds } from './signing-rounds.js';
import type { z } from 'zod';

export interface KeyNodeServiceDeps {
  store: KeyNodeStore;
  secrets: NodeSecrets;
  config: NodeConfig;
  now?: () => number;
  /** Called after a key share is committed (DKG or import): fail-over push, backup stream. */
  onKeyCommitted?: (keyId: string) => void;
  /**
   * Set when new keys must be held by durable channels first (src/keynode/durable.ts): they are stored
   * `pending_backup` and the answer waits up to `waitMs` for the activation (`wait` resolves true then).
   */
  durableGate?: { waitMs: number; wait: (keyId: string, timeoutMs: number) => Promise<boolean> };
}

/** Public facts about a key on this node. */
export interface KeyInfo {
  key_id: string;
  curve: FrostCurve;
  threshold: number;
  max_signers: number;
  identifier: string;
  group_public_key: string;
  status: string;
  origin: KeyOrigin;
  created_at: string;
  /** Who owns the key (docs/keynode.md, "Tenants"). */
  tenant: string;
  /** The FROST public key package: verifying shares and VSS commitments. */
  public: unknown;
  /** The key's own ERS policy (off, allow, require); null: this node's ers settings decide (docs/ers.md). */
  ers_policy: ErsPolicy | null;
  /** The key's share epoch on this node (docs/keyshare.md). */
  epoch: number;
  /** In `key info` and `key list` answers: the durable channels that hold the key at its epoch (keyChannelView). */
  channels?: Record<string, unknown>;
}

export function newKeyId(): string {
  return `key_${toHex(randomBytes(16))}`;
}

export class KeyNodeService {
  private readonly now: () => number;
  private signingGate: ((rec: KeyRecord) => Promise<void>) | undefined;
  /** Each key's public package, parsed once per key for the signing rounds (opened-keys.ts). */
  readonly openedKeys = new OpenedKeyCache();
  private loaded: { loadedAt: string; restartRequired: string[] };

  private readonly dkg: DkgRounds;
  private readonly signing: SigningRounds;

  constructor(private readonly deps: KeyNodeServiceDeps) {
    this.now = deps.now ?? Date.now;
    this.dkg = new DkgRounds({ store: deps.store, secrets: deps.secrets, now: this.now });
    // `deps` itself, so a reloaded config (setConfig) is the one round two reads.
    this.signing = new SigningRounds(deps, this.openedKeys, this.now, () => this.signingGate);
    this.loaded = { loadedAt: new Date(this.now()).toISOString(), restartRequired: [] };
  }

  /**
   * A check every signing round one passes before a nonce is drawn (another capability's policy, e.g.
   * "a verified emergency recovery package exists", src/ers); it throws to refuse.
   */
  setSigningGate(gate: ((rec: KeyRecord) => Promise<void>) | undefined): void {
    this.signingGate = gate;
  }

  get config(): NodeConfig {
    return this.deps.config;
  }

  /** When the configuration in force was loaded, and the node.json fields that wait for a restart. */
  get configState(): { loadedAt: string; restartRequired: string[] } {
    return this.loaded;
  }

  /** Swaps the configuration the next call reads (a SIGHUP reload, src/keynode/reload.ts). */
  setConfig(config: NodeConfig, restartRequired: string[]): void {
    this.deps.config = config;
    this.loaded = { loadedAt: new Date(this.now()).toISOString(), restartRequired };
  }

  identity(): { identity: string; fingerprint: string; wrapping_public_key: string } {
    const id = this.deps.secrets.identity;
    return { identity: encodePublicIdentity(id), fingerprint: identityFingerprint(id), wrapping_public_key: toB64(this.deps.secrets.wrapping.publicKey) };
  }

  // --- DKG (./dkg-rounds.ts) ----------------------------------------------------------------------

  /** Round 1: draws this node's polynomial; answers its signed round-1 package. The key will belong to `tenant`. */
  async dkgStart(input: DkgStartInput): Promise<unknown> {
    checkKeyErsPolicy(this.deps.config, input.ersPolicy);
    return this.dkg.start(input);
  }

  /** Round 2: checks every round-1 package; answers one sealed round-2 package per other participant. */
  dkgRound2(input: { sessionId: string; round1: unknown[]; tenant: string }): Promise<unknown[]> {
    return this.dkg.round2(input);
  }

  /** Round 3: checks the packages sent to this node, derives and stores the share. */
  async dkgFinish(input: { sessionId: string; round2: unknown[]; tenant: string }): Promise<KeyInfo> {
    const record = await this.dkg.finish(input, (key, threshold, tenant) => this.toRecord(key, 'dkg', threshold, tenant));
    this.deps.onKeyCommitted?.(record.keyId);
    return this.info(await this.awaitBackup(record));
  }

  /** With a durable gate, waits for the key's channels and returns the record as it now is. */
  private async awaitBackup(record: KeyRecord): Promise<KeyRecord> {
    const gate = this.deps.durableGate;
    if (!gate || record.status !== 'pending_backup') return record;
    if (await gate.wait(record.keyId, gate.waitMs)) return (await this.deps.store.getKey(record.keyId)) ?? record;
    return record;
  }

  private toRecord(key: KeyShare, origin: KeyOrigin, threshold: number, tenant: string): KeyRecord {
    return {
      keyId: key.keyId,
      curve: key.curve,
      threshold,
      maxSigners: Object.keys(key.public.verifyingShares).length,
      identifier: key.identifier,
      groupPublicKey: frostGroupPublicKey(key.curve, key.public),
      publicPackage: encodeFrostPublic(key.curve, key.public),
      encryptedShare: sealKeyShare(this.deps.secrets.storageKey, key),
      status: this.deps.durableGate ? 'pending_backup' : 'active',
      origin,
      createdAt: this.now(),
      tenant,
    };
  }

  // --- keys ----------------------------------------------------------------------------------------

  /**
   * The key as `caller` may see it. Throws NotFoundError `key_id_not_exists` (404) for a key this node
   * does not hold and, with the very same error, for a key of another tenant than a client's.
   */
  async keyRecord(keyId: string, caller: Caller): Promise<KeyRecord> {
    const found = KEY_ID.test(keyId) ? await this.deps.store.getKey(keyId) : undefined;
    const rec = found && visibleTo(found, caller) ? found : undefined;
    if (!rec) throw new NotFoundError(`key ${keyId.slice(0, 128)} does not exist on this node`, 'key_id_not_exists', 'if this node lost its database, import the saved export');
    return rec;
  }

  info(rec: KeyRecord): KeyInfo {
    return {
      key_id: rec.keyId,
      curve: rec.curve,
      threshold: rec.threshold,
      max_signers: rec.maxSigners,
      identifier: rec.identifier,
      group_public_key: toHex(rec.groupPublicKey),
      status: rec.status,
      origin: rec.origin,
      created_at: new Date(rec.createdAt).toISOString(),
      tenant: rec.tenant,
      public: frostPublicToJson(rec.curve, parseFrostPublic(rec.publicPackage, { curve: rec.curve }).public),
      ers_policy: rec.ersPolicy ?? null,
      epoch: keyEpoch(rec),
    };
  }

  /** info() with the durable channels that hold the key (docs/keynode.md, "Pending keys and durable channels"). Throws the store's errors. */
  async infoWithChannels(rec: KeyRecord): Promise<KeyInfo> {
    return { ...this.info(rec), channels: await keyChannelView(this.deps.store, rec, requiredChannels(this.deps.config)) };
  }

  /**
   * One page of the keys `caller` may see, in key id order after `after`: a client's own tenant's, an
   * operator's of every tenant or of `tenant`. Throws ForbiddenError `wrong_role` for a client naming
   * another tenant than its own.
   */
  async listKeys(caller: Caller, opts: { after?: string; limit: number; tenant?: string }): Promise<{ keys: KeyInfo[]; next_after: string | null }> {
    if (caller.role === 'client' && opts.tenant !== undefined && opts.tenant !== caller.tenant) throw new ForbiddenError('a client lists its own tenant’s keys only', 'wrong_role');
    const tenant = caller.role === 'client' ? caller.tenant : opts.tenant;
    const page = await this.deps.store.listKeys({ afterKeyId: opts.after, limit: opts.limit, tenant });
    const keys: KeyInfo[] = [];
    for (const r of page) keys.push(await this.infoWithChannels(r));
    return { keys, next_after: page.length === opts.limit ? page[page.length - 1]!.keyId : null };
  }

  /**
   * Runs `use` with the key's share as `caller` may see it (keyRecord's rules), and wipes the share
   * after. For capabilities that work on a share inside the node (emergency recovery parts, src/ers).
   * Throws NotFoundError `key_id_not_exists`, and what `use` throws.
   */
  async withKeyShare<T>(keyId: string, caller: Caller, use: (key: KeyShare, rec: KeyRecord) => T | Promise<T>): Promise<T> {
    const rec = await this.keyRecord(keyId, caller);
    const key = this.openShare(rec);
    try {
      return await use(key, rec);
    } finally {
      wipe(key.share);
    }
  }

  private openShare(rec: KeyRecord): KeyShare {
    return openKeyShare(this.deps.secrets.storageKey, rec.encryptedShare, { keyId: rec.keyId, curve: rec.curve, identifier: rec.identifier });
  }

  // --- signing (./signing-rounds.ts) -------------------------------------------------------------

  /** Round 1: a fresh nonce pair, stored encrypted; answers its commitments and id. Throws as SigningRounds.commitments. */
  commitments(keyId: string, caller: Caller): Promise<{ nonce_id: string; commitments: unknown }> {
    return this.signing.commitments(keyId, caller);
  }

  /** Round 2: consumes the nonce atomically and signs. Throws as SigningRounds.signatureShare (`nonce_not_found`, `nonce_expired`, ...). */
  signatureShare(keyId: string, caller: Caller, input: { nonceId: string; message: Uint8Array; commitmentList: unknown }): Promise<unknown> {
    return this.signing.signatureShare(keyId, caller, input);
  }

  /**
   * Deletes nonces past their TTL and expired DKG sessions, so abandoned signings and DKGs cannot grow
   * the tables without bound. `node serve` runs it every minute.
   */
  async purgeExpired(): Promise<{ nonces: number; dkgSessions: number }> {
    const now = this.now();
    const nonces = await this.deps.store.deleteNoncesCreatedBefore(now - this.deps.config.nonce_ttl_seconds * 1000);
    const dkgSessions = await this.deps.store.deleteExpiredDkgSessions(now);
    return { nonces, dkgSessions };
  }

  // --- export / import -----------------------------------------------------------------------------

  /**
   * Exports a share in the form the configuration allows (invariant 5). Throws ForbiddenError
   * `export_disabled`, `plaintext_export_disabled`, `wrapping_key_not_whitelisted`, `wrong_role`.
   */
  async exportShare(keyId: string, type: ExportType, caller: Caller, wrappingKeyB64?: string): Promise<KeyShareExport> {
    const policy = this.deps.config.export;
    if (!policy.enabled) throw new ForbiddenError('share export is disabled on this node', 'export_disabled');
    if (caller.role === 'client' && type !== 'encrypted') throw new ForbiddenError(`a client may export only the encrypted form, not ${type}`, 'wrong_role');
    if (type === 'plaintext' && !policy.plaintext) throw new ForbiddenError('plaintext export is disabled on this node', 'plaintext_export_disabled');
    let wrappingKey: Uint8Array | undefined;
    if (type === 'wrapped') {
      if (!wrappingKeyB64) throw new InvalidInputError('a wrapped export needs wrapping_key', { code: 'wrapping_key_required' });
      wrappingKey = fromB64(wrappingKeyB64, 'wrapping_key', 32);
      const listed = policy.whitelist.some((w) => w.wrapping_key === toB64(wrappingKey!));
      if (!listed) throw new ForbiddenError('that wrapping key is not on this node’s export whitelist', 'wrapping_key_not_whitelisted', 'add it with `lifeboat node whitelist add`');
    }
    const rec = await this.keyRecord(keyId, caller);
    const key = this.openShare(rec);
    try {
      return exportKeyShare(key, type, { exportKey: this.deps.secrets.exportKey, wrappingKey, tenant: rec.tenant });
    } finally {
      wipe(key.share);
    }
  }

  /**
   * Imports an export after checking the share against its verifying share. A new key id unless the
   * caller is the paired fail-over primary (keeps it). The key goes to a client's own tenant, or to the
   * `tenant` an operator or the paired primary names (default: an encrypted export's own tenant, else
   * `default`). Throws FormatError,
   * DecryptionError, LifeboatError `share_mismatch`, InvalidInputError (a `threshold` other than the
   * package's), ForbiddenError `wrong_role` (also a client naming another tenant, or importing an
   * encrypted export of another tenant's key), ConflictError
   * `key_exists` (the paired primary's key id held with another share or by another tenant).
   */
  async importShare(exp: z.infer<typeof keyShareExportSchema>, caller: Caller, opts: { threshold?: number; tenant?: string; ersPolicy?: ErsPolicy } = {}): Promise<KeyInfo & { imported_from: string }> {
    const role = caller.role;
    // A fail-over keeps the primary's policy as it is; another import is held to this node's settings.
    if (role !== 'paired_primary') checkKeyErsPolicy(this.deps.config, opts.ersPolicy);
    if (caller.role === 'client' && opts.tenant !== undefined && opts.tenant !== caller.tenant) throw new ForbiddenError('a client imports into its own tenant only', 'wrong_role');
    // Without a named owner an encrypted export keeps its own (a default of `default` would hand the key
    // to every client key of that tenant); the other forms name none.
    const tenant = caller.role === 'client' ? caller.tenant : (opts.tenant ?? (exp.export_type === 'encrypted' ? exportTenantOf(exp) : DEFAULT_TENANT));
    const threshold = opts.threshold;
    if (role === 'client' && exp.export_type !== 'encrypted') throw new ForbiddenError(`a client may import only the encrypted form, not ${exp.export_type}`, 'wrong_role');
    // An encrypted export opens only under its tenant's key (export.ts): a client of another tenant
    // holding it must not make the key its own. An operator may give it another owner.
    if (role === 'client' && exportTenantOf(exp) !== tenant) throw new ForbiddenError('a client imports only encrypted exports of its own tenant’s keys', 'wrong_role');
    const key = importKeyShare(exp, { exportKey: this.deps.secrets.exportKey, wrapping: this.deps.secrets.wrapping });
    // The public package fixes the threshold; a caller's `threshold` may only repeat it.
    const t = key.public.signers.min;
    if (threshold !== undefined && threshold !== t) {
      wipe(key.share);
      throw new InvalidInputError(`threshold ${threshold} differs from the key's public package (${t} of ${key.public.signers.max})`);
    }
    const keep = role === 'paired_primary';
    const stored: KeyShare = { ...key, keyId: keep ? key.keyId : newKeyId() };
    const record = { ...this.toRecord(stored, keep ? 'failover' : 'import', t, tenant), ...(opts.ersPolicy ? { ersPolicy: opts.ersPolicy } : {}) };
    wipe(key.share);
    if (keep && (await this.deps.store.getKey(record.keyId))) {
      const existing = await this.deps.store.getKey(record.keyId);
      const same = existing && toHex(existing.groupPublicKey) === toHex(record.groupPublicKey) && existing.identifier === record.identifier && existing.tenant === record.tenant;
      if (existing && same) {
        return { ...this.info(existing), imported_from: exp.key_id };
      }
      throw new ConflictError(`key ${record.keyId} exists with another share or owner`, 'key_exists');
    }
    await this.deps.store.insertKey(record);
    this.deps.onKeyCommitted?.(record.keyId);
    return { ...this.info(await this.awaitBackup(record)), imported_from: exp.key_id };
  }

  /** The verifying-share check every stored share must pass (restore). Throws `share_mismatch`. */
  verifyStoredShare(rec: KeyRecord): void {
    const key = this.openShare(rec);
    try {
      const pub = parseFrostPublic(rec.publicPackage, { curve: rec.curve }).public;
      if (JSON.stringify(frostPublicToJson(rec.curve, pub)) !== JSON.stringify(frostPublicToJson(key.curve, key.public))) {
        throw new LifeboatError('share_mismatch', `key ${rec.keyId}: stored public package differs from the one bound to its share`);
      }
      verifyShareAgainstPublic({ curve: key.curve, identifier: key.identifier, share: key.share, public: pub });
    } finally {
      wipe(key.share);
    }
  }
}
