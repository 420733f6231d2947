/**
 * The key node's domain: DKG (state kept encrypted in the store between calls), the two signing rounds
 * with atomic, single-use nonces, and share export/import under the node's policy. HTTP lives in
 * server.ts; this file knows nothing of requests.
 */
import { ConflictError, ForbiddenError, InvalidInputError, LifeboatError, NotFoundError } from '../errors.js';
import { randomBytes } from '../crypto/random.js';
import { encodePublicIdentity, identityFingerprint } from '../identity.js';
import { fromB64, toB64, toHex, utf8, wipe } from '../util/bytes.js';
import { KEY_ID } from './api.js';
import { checkKeyErsPolicy, type NodeConfig } from './config.js';
import { exportKeyShare, exportTenantOf, type ExportType, importKeyShare, type KeyShareExport, type keyShareExportSchema } from './export.js';
import {
  checkKeyId,
  commit,
  dkgFinish,
  dkgParticipants,
  dkgRound2,
  dkgStart,
  encodeFrostPublic,
  encodeNonceCommitments,
  encodeSignatureShare,
  frostGroupPublicKey,
  frostPublicToJson,
  type FrostCurve,
  type KeyShare,
  nonceId,
  openDkgState,
  openKeyShare,
  openNonces,
  parseCommitmentList,
  parseDkgRound1Message,
  parseDkgRound2Message,
  parseFrostPublic,
  sealDkgState,
  sealKeyShare,
  sealNonces,
  signShare,
  verifyShareAgainstPublic,
  wipeDkgState,
} from './frost/index.js';
import type { NodeSecrets } from './secrets.js';
import { DEFAULT_TENANT } from './tenants.js';
import type { ErsPolicy, KeyNodeStore, KeyOrigin, KeyRecord, SigningRead } from './store/types.js';
import { keyEpoch } from './store/types.js';
import { keyChannelView, requiredChannels } from './durable.js';
import { OpenedKeyCache } from './opened-keys.js';
import type { z } from 'zod';

const DKG_TTL_MS = 10 * 60_000;

/**
 * Who calls: a client API key (its tenant's keys only, and on export/import only the node-bound
 * encrypted form), an operator (every tenant's keys), or the paired fail-over primary (signed imports).
 */
export type Caller = { role: 'client'; tenant: string } | { role: 'operator' } | { role: 'paired_primary' };
/** The node itself (fail-over pushes): sees every key, as an operator. */
export const NODE_CALLER: Caller = { role: 'operator' };

/** True if `caller` may see `rec`: a client only its own tenant's keys (docs/keynode.md, "Tenants"). */
function visibleTo(rec: KeyRecord, caller: Caller): boolean {
  return caller.role !== 'client' || rec.tenant === caller.tenant;
}

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

  constructor(private readonly deps: KeyNodeServiceDeps) {
    this.now = deps.now ?? Date.now;
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

  // --- DKG -----------------------------------------------------------------------------------------
  // A session's step only moves forward from the step it was read at (insertDkgSession, then
  // advanceDkgSession compare-and-set, then deleted with the key's insert): of concurrent copies of a
  // round, exactly one is answered.

  /** Round 1: draws this node's polynomial; answers its signed round-1 package. The key will belong to `tenant`. */
  async dkgStart(input: { sessionId: string; keyId: string; curve: FrostCurve; threshold: number; participants: string[]; tenant: string; ersPolicy?: ErsPolicy }): Promise<unknown> {
    checkKeyId(input.keyId);
    checkKeyErsPolicy(this.deps.config, input.ersPolicy);
    if (await this.deps.store.getKey(input.keyId)) throw new ConflictError(`key ${input.keyId} already exists`, 'key_exists');
    if (await this.deps.store.getDkgSession(input.sessionId)) throw new ConflictError(`dkg session ${input.sessionId} already exists`, 'dkg_session_exists');
    const participants = dkgParticipants(input.curve, input.participants);
    const { state, round1Message } = dkgStart({ sessionId: input.sessionId, curve: input.curve, threshold: input.threshold, participants, self: this.deps.secrets.identity });
    await this.deps.store.insertDkgSession({ sessionId: input.sessionId, keyId: input.keyId, state: sealDkgState(this.deps.secrets.storageKey, state), step: 1, expiresAt: this.now() + DKG_TTL_MS, tenant: input.tenant, ...(input.ersPolicy ? { ersPolicy: input.ersPolicy } : {}) });
    wipeDkgState(state);
    return round1Message;
  }

  /** A session of `tenant`'s; another tenant's answers as an unknown one. */
  private async session(sessionId: string, step: number, tenant: string) {
    const rec = await this.deps.store.getDkgSession(sessionId);
    if (!rec || rec.expiresAt < this.now() || rec.tenant !== tenant) throw new NotFoundError(`no dkg session ${sessionId} (unknown or expired)`, 'dkg_session_not_found');
    if (rec.step !== step) throw outOfOrder(sessionId, `is at step ${rec.step}, not ${step}`);
    return { rec, state: openDkgState(this.deps.secrets.storageKey, rec.state, { sessionId }) };
  }

  /** Round 2: checks every round-1 package; answers one sealed round-2 package per other participant. */
  async dkgRound2(input: { sessionId: string; round1: unknown[]; tenant: string }): Promise<unknown[]> {
    const { state } = await this.session(input.sessionId, 1, input.tenant);
    const msgs = input.round1.map(parseDkgRound1Message);
    const r = dkgRound2(state, msgs, this.deps.secrets.identity);
    const moved = await this.deps.store.advanceDkgSession(input.sessionId, 1, 2, sealDkgState(this.deps.secrets.storageKey, r.state));
    wipeDkgState(state);
    wipeDkgState(r.state);
    // Another round 2 of this session moved it first: only one set of round-2 packages leaves a node.
    if (!moved) throw outOfOrder(input.sessionId);
    return r.round2Messages;
  }

  /** Round 3: checks the packages sent to this node, derives and stores the share. */
  async dkgFinish(input: { sessionId: string; round2: unknown[]; tenant: string }): Promise<KeyInfo> {
    const { rec, state } = await this.session(input.sessionId, 2, input.tenant);
    const result = dkgFinish(state, input.round2.map(parseDkgRound2Message), this.deps.secrets.identity);
    wipeDkgState(state);
    const key: KeyShare = { keyId: rec.keyId, curve: result.curve, identifier: result.identifier, share: result.share, public: result.public };
    const record = { ...this.toRecord(key, 'dkg', state.threshold, rec.tenant), ...(rec.ersPolicy ? { ersPolicy: rec.ersPolicy } : {}) };
    wipe(result.share);
    await this.deps.store.transaction(async (tx) => {
      // A concurrent finish of the same session deleted it first: this one stores nothing.
      if (!(await tx.deleteDkgSession(input.sessionId))) throw new NotFoundError(`no dkg session ${input.sessionId} (finished meanwhile)`, 'dkg_session_not_found');
      await tx.insertKey(record);
    });
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

  // --- signing -------------------------------------------------------------------------------------

  /**
   * The key as `caller` may see it for signing, with what getKeyForSigning reads alongside in the same
   * query (the nonce asked for, the node's nonce epoch). Throws as keyRecord, and ConflictError
   * `key_pending_backup` for a key that cannot sign yet.
   */
  private async signingRead(keyId: string, caller: Caller, nonceId?: string): Promise<SigningRead> {
    const read = KEY_ID.test(keyId) ? await this.deps.store.getKeyForSigning(keyId, nonceId) : undefined;
    if (!read || !visibleTo(read.key, caller)) throw new NotFoundError(`key ${keyId.slice(0, 128)} does not exist on this node`, 'key_id_not_exists', 'if this node lost its database, import the saved export');
    if (read.key.status !== 'active') throw new ConflictError(`key ${keyId} is ${read.key.status} and cannot sign yet`, 'key_pending_backup', 'wait until its durable channels hold it (`lifeboat node status --keys`)');
    return read;
  }

  /** Round 1: a fresh nonce pair, stored encrypted with the epoch read with the key; answers its commitments and id. */
  async commitments(keyId: string, caller: Caller): Promise<{ nonce_id: string; commitments: unknown }> {
    const { key: rec, nonceEpoch } = await this.signingRead(keyId, caller);
    await this.signingGate?.(rec);
    const key = this.openedKeys.open(this.deps.secrets.storageKey, rec);
    const { nonces, commitments } = commit(key);
    wipe(key.share);
    const id = nonceId(commitments);
    // A restore between the read and this insert leaves the nonce an older epoch: round two refuses it.
    await this.deps.store.insertNonce({ nonceId: id, keyId, encryptedNonces: sealNonces(this.deps.secrets.storageKey, nonces), commitments: utf8.encode(JSON.stringify(encodeNonceCommitments(commitments))), createdAt: this.now(), epoch: nonceEpoch });
    wipe(nonces.hiding, nonces.binding);
    return { nonce_id: id, commitments: encodeNonceCommitments(commitments) };
  }

  /**
   * Round 2: consumes the nonce atomically (a second request with it finds nothing) and signs. The
   * key, the nonce and the current epoch come from one query; the nonce is consumed only once the
   * request is known to be well formed, and the share is answered only once that consumption is on
   * disk (store.claimNonce: the sync runs while the share is computed; LifeboatError
   * `store_sync_failed` if it fails). Throws NotFoundError `key_id_not_exists`,
   * ConflictError `nonce_not_found` (unknown, used, or voided by a restore), `nonce_expired`, and the
   * FROST checks' errors (`commitment_mismatch` for a replayed or reordered commitment list).
   */
  async signatureShare(keyId: string, caller: Caller, input: { nonceId: string; message: Uint8Array; commitmentList: unknown }): Promise<unknown> {
    const { key: rec, nonce, nonceEpoch } = await this.signingRead(keyId, caller, input.nonceId);
    // Shape only here: signShare gives the list to noble, which validates every element (signing.ts).
    const list = parseCommitmentList(input.commitmentList, rec.curve, { decode: false });
    // The DELETE decides: of concurrent requests with one nonce, one gets it; a restore since the read deleted it.
    const claim = nonce && (await this.deps.store.claimNonce(keyId, input.nonceId));
    if (!nonce || !claim) throw new ConflictError('unknown or already used nonce', 'nonce_not_found', 'run round one (commitments) again');
    // The share is computed while the deletion is synced to disk, and leaves only once it is.
    claim.synced.catch(() => undefined); // awaited below; a refusal before then sends no share
    if (nonce.epoch !== nonceEpoch) throw new ConflictError('this nonce was created before a restore and is void', 'nonce_not_found', 'run round one again');
    if (nonce.createdAt + this.deps.config.nonce_ttl_seconds * 1000 < this.now()) throw new ConflictError('this nonce has expired', 'nonce_expired', 'run round one again');
    const nonces = openNonces(this.deps.secrets.storageKey, nonce.encryptedNonces, { keyId, nonceId: input.nonceId });
    const key = this.openedKeys.open(this.deps.secrets.storageKey, rec);
    let share: unknown;
    try {
      share = encodeSignatureShare(signShare(key, nonces, list, input.message));
    } finally {
      wipe(key.share, nonces.hiding, nonces.binding);
    }
    await claim.synced;
    return share;
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

function outOfOrder(sessionId: string, why = 'moved on meanwhile'): ConflictError {
  return new ConflictError(`dkg session ${sessionId} ${why}`, 'dkg_out_of_order', 'a replayed or reordered round message');
}
