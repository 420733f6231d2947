/**
 * The two FROST signing rounds of a key node (RFC 9591, section 5.1 and 5.2; docs/keynode.md): round
 * one draws a nonce pair and stores it sealed under the storage key with the node's nonce epoch; round
 * two consumes it atomically and answers the signature share only once that consumption is on disk.
 * Who may sign which key (./caller.ts) and the signing gate are the service's (./service.ts).
 */
import { ConflictError, NotFoundError } from '../errors.js';
import { utf8, wipe } from '../util/bytes.js';
import { KEY_ID } from './api.js';
import { type Caller, visibleTo } from './caller.js';
import type { NodeConfig } from './config.js';
import { commit, encodeNonceCommitments, encodeSignatureShare, nonceId, openNonces, parseCommitmentList, sealNonces, signShare } from './frost/index.js';
import type { OpenedKeyCache } from './opened-keys.js';
import type { NodeSecrets } from './secrets.js';
import type { KeyNodeStore, KeyRecord, SigningRead } from './store/types.js';

/** What the rounds read: the store, the node's secrets, and its configuration in force. */
export interface SigningRoundsDeps {
  store: KeyNodeStore;
  secrets: NodeSecrets;
  /** Read at every call: the service swaps it on a reload (KeyNodeService.setConfig). */
  config: NodeConfig;
}

/** The signing rounds of one node, on its store and secrets (see the file comment). */
export class SigningRounds {
  constructor(
    private readonly deps: SigningRoundsDeps,
    private readonly openedKeys: OpenedKeyCache,
    private readonly now: () => number,
    /** The signing gate in force (KeyNodeService.setSigningGate), read at every round one. */
    private readonly gate: () => ((rec: KeyRecord) => Promise<void>) | undefined,
  ) {}

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

  /**
   * Round 1: a fresh nonce pair, stored encrypted with the epoch read with the key; answers its
   * commitments and id. Throws as signingRead, and what the signing gate throws.
   */
  async commitments(keyId: string, caller: Caller): Promise<{ nonce_id: string; commitments: unknown }> {
    const { key: rec, nonceEpoch } = await this.signingRead(keyId, caller);
    await this.gate()?.(rec);
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
}
