/**
 * The three DKG calls of a key node (docs/keynode.md, "DKG"): round one draws the node's polynomial,
 * round two checks every round-1 package and seals one round-2 package per other participant, and the
 * finish checks the packages sent to this node and stores the share. Between calls the state is kept
 * in the store, sealed under the storage key (`LBDK`), for 10 minutes.
 *
 * A session's step only moves forward from the step it was read at (insertDkgSession, then
 * advanceDkgSession compare-and-set, then deleted with the key's insert): of concurrent copies of a
 * round, exactly one is answered, and a node sends one set of round-2 packages.
 */
import { ConflictError, NotFoundError } from '../errors.js';
import { wipe } from '../util/bytes.js';
import {
  checkKeyId,
  dkgFinish,
  dkgParticipants,
  dkgRound2,
  dkgStart,
  type FrostCurve,
  type KeyShare,
  openDkgState,
  parseDkgRound1Message,
  parseDkgRound2Message,
  sealDkgState,
  wipeDkgState,
} from './frost/index.js';
import type { NodeSecrets } from './secrets.js';
import type { ErsPolicy, KeyNodeStore, KeyRecord } from './store/types.js';

const DKG_TTL_MS = 10 * 60_000;

export interface DkgStartInput {
  sessionId: string;
  keyId: string;
  curve: FrostCurve;
  threshold: number;
  participants: string[];
  tenant: string;
  ersPolicy?: ErsPolicy;
}

export class DkgRounds {
  constructor(private readonly deps: { store: KeyNodeStore; secrets: NodeSecrets; now: () => number }) {}

  /** Round 1. Throws `key_exists`, `dkg_session_exists` (also when a concurrent start took the id), and the DKG's errors. */
  async start(input: DkgStartInput): Promise<unknown> {
    const { store, secrets } = this.deps;
    checkKeyId(input.keyId);
    if (await store.getKey(input.keyId)) throw new ConflictError(`key ${input.keyId} already exists`, 'key_exists');
    if (await store.getDkgSession(input.sessionId)) throw new ConflictError(`dkg session ${input.sessionId} already exists`, 'dkg_session_exists');
    const participants = dkgParticipants(input.curve, input.participants);
    const { state, round1Message } = dkgStart({ sessionId: input.sessionId, curve: input.curve, threshold: input.threshold, participants, self: secrets.identity });
    try {
      await store.insertDkgSession({ sessionId: input.sessionId, keyId: input.keyId, state: sealDkgState(secrets.storageKey, state), step: 1, expiresAt: this.deps.now() + DKG_TTL_MS, tenant: input.tenant, ...(input.ersPolicy ? { ersPolicy: input.ersPolicy } : {}) });
    } finally {
      wipeDkgState(state);
    }
    return round1Message;
  }

  /** Round 2. Throws `dkg_session_not_found`, `dkg_out_of_order` (also when a concurrent round 2 moved it first), and the DKG's errors. */
  async round2(input: { sessionId: string; round1: unknown[]; tenant: string }): Promise<unknown[]> {
    const { state } = await this.session(input.sessionId, 1, input.tenant);
    const msgs = input.round1.map(parseDkgRound1Message);
    const r = dkgRound2(state, msgs, this.deps.secrets.identity);
    const moved = await this.deps.store.advanceDkgSession(input.sessionId, 1, 2, sealDkgState(this.deps.secrets.storageKey, r.state));
    wipeDkgState(state);
    wipeDkgState(r.state);
    if (!moved) throw outOfOrder(input.sessionId);
    return r.round2Messages;
  }

  /**
   * Round 3: derives the share, makes its record (`toRecord`) and stores it with the session deleted, in
   * one transaction. Returns the record. Throws `dkg_session_not_found` (also when a concurrent finish
   * deleted it first: this one stores nothing), `dkg_out_of_order`, and the DKG's errors.
   */
  async finish(input: { sessionId: string; round2: unknown[]; tenant: string }, toRecord: (key: KeyShare, threshold: number, tenant: string) => KeyRecord): Promise<KeyRecord> {
    const { rec, state } = await this.session(input.sessionId, 2, input.tenant);
    const result = dkgFinish(state, input.round2.map(parseDkgRound2Message), this.deps.secrets.identity);
    wipeDkgState(state);
    const key: KeyShare = { keyId: rec.keyId, curve: result.curve, identifier: result.identifier, share: result.share, public: result.public };
    const record = { ...toRecord(key, state.threshold, rec.tenant), ...(rec.ersPolicy ? { ersPolicy: rec.ersPolicy } : {}) };
    wipe(result.share);
    await this.deps.store.transaction(async (tx) => {
      if (!(await tx.deleteDkgSession(input.sessionId))) throw new NotFoundError(`no dkg session ${input.sessionId} (finished meanwhile)`, 'dkg_session_not_found');
      await tx.insertKey(record);
    });
    return record;
  }

  /** A session of `tenant`'s at `step`; another tenant's answers as an unknown one. */
  private async session(sessionId: string, step: number, tenant: string) {
    const rec = await this.deps.store.getDkgSession(sessionId);
    if (!rec || rec.expiresAt < this.deps.now() || rec.tenant !== tenant) throw new NotFoundError(`no dkg session ${sessionId} (unknown or expired)`, 'dkg_session_not_found');
    if (rec.step !== step) throw outOfOrder(sessionId, `is at step ${rec.step}, not ${step}`);
    return { rec, state: openDkgState(this.deps.secrets.storageKey, rec.state, { sessionId }) };
  }
}

function outOfOrder(sessionId: string, why = 'moved on meanwhile'): ConflictError {
  return new ConflictError(`dkg session ${sessionId} ${why}`, 'dkg_out_of_order', 'a replayed or reordered round message');
}
