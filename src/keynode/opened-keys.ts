/**
 * What a signing round opens of a key, done once per key instead of once per request: the public key
 * package held in the key's sealed share, parsed. Never the share itself: it is decrypted for every
 * round and wiped after it.
 *
 * An entry is found by key id and stands only for the very sealed bytes it was opened from: a key
 * replaced under the same id (a re-import or fail-over push, a restore, a delete and a new key with
 * that id, a new share epoch) has other sealed bytes, and is opened and parsed afresh. So nothing has
 * to tell the cache that a key changed; a stale entry can never be used. Bounded: the least recently
 * used entry leaves first.
 */
import { ctEqual } from '../util/bytes.js';
import { type FrostPublic, type KeyShare, openKeyShare } from './frost/index.js';
import type { KeyRecord } from './store/types.js';

/** How many keys a node keeps parsed by default: about 2 KB each for a 2-of-3 key, at most ~20 KB for 100 signers. */
export const OPENED_KEYS_MAX = 1024;

export class OpenedKeyCache {
  readonly #entries = new Map<string, { sealed: Uint8Array; public: FrostPublic }>();

  constructor(readonly max = OPENED_KEYS_MAX) {}

  /** How many keys are held. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * The key's share (wipe it when done) with its public package, parsed on the first round of these
   * sealed bytes and reused after. Throws what openKeyShare throws.
   */
  open(storageKey: Uint8Array, rec: KeyRecord): KeyShare {
    const expected = { keyId: rec.keyId, curve: rec.curve, identifier: rec.identifier };
    const hit = this.#entries.get(rec.keyId);
    if (hit && ctEqual(hit.sealed, rec.encryptedShare)) {
      this.#entries.delete(rec.keyId);
      this.#entries.set(rec.keyId, hit);
      return openKeyShare(storageKey, rec.encryptedShare, expected, { public: hit.public });
    }
    const key = openKeyShare(storageKey, rec.encryptedShare, expected);
    this.#entries.delete(rec.keyId);
    if (this.#entries.size >= this.max) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(rec.keyId, { sealed: rec.encryptedShare.slice(), public: key.public });
    return key;
  }
}
