/**
 * A log for witness tests, built with the pure src/log functions: its entries' stored hashes in
 * memory, checkpoints signed by a test log key, consistency proofs from memoryHashReader. `fork()`
 * gives a log with the same key and the same first leaves that then diverges.
 */
import { signCheckpoint } from '../../src/log/checkpoint.js';
import { appendLeaves, leafHash, memoryHashReader, treeHash } from '../../src/log/merkle.js';
import { generateNoteKey, type NoteSigner, parseSignerKey } from '../../src/log/note.js';
import { proveConsistency } from '../../src/log/proof.js';
import type { WitnessSizes } from '../../src/log/witness/cosigner.js';
import type { WitnessStateRecord } from '../../src/log/store/types.js';
import { utf8 } from '../../src/util/bytes.js';

export class TestLog {
  readonly stored: Uint8Array[] = [];
  readonly leaves: Uint8Array[] = [];

  private constructor(
    readonly origin: string,
    readonly signer: NoteSigner,
    readonly vkey: string,
    private readonly salt: string,
  ) {}

  static create(origin: string): TestLog {
    const k = generateNoteKey(origin);
    return new TestLog(origin, parseSignerKey(k.signerKey), k.verifierKey, 'a');
  }

  get size(): number {
    return this.leaves.length;
  }

  async grow(n: number): Promise<this> {
    for (let i = 0; i < n; i++) {
      const leaf = leafHash(utf8.encode(`${this.origin} entry ${this.size} ${this.salt}`));
      this.stored.push(...(await appendLeaves(this.size, [leaf], memoryHashReader(this.stored))));
      this.leaves.push(leaf);
    }
    return this;
  }

  async root(size = this.size): Promise<Uint8Array> {
    return treeHash(size, memoryHashReader(this.stored));
  }

  /** The checkpoint of the current size (or `size`), signed by the log key. */
  async checkpoint(size = this.size): Promise<string> {
    return signCheckpoint({ origin: this.origin, size, rootHash: await this.root(size), extensions: [] }, this.signer);
  }

  prove(oldSize: number, newSize = this.size): Promise<Uint8Array[]> {
    return proveConsistency(oldSize, newSize, memoryHashReader(this.stored));
  }

  /** Same key, the first `keep` leaves, then other ones: a fork after `keep`. */
  async fork(keep: number): Promise<TestLog> {
    const f = new TestLog(this.origin, this.signer, this.vkey, `fork-${keep}`);
    for (const leaf of this.leaves.slice(0, keep)) {
      f.stored.push(...(await appendLeaves(f.size, [leaf], memoryHashReader(f.stored))));
      f.leaves.push(leaf);
    }
    return f;
  }
}

/** The store's witness sizes in memory (what LogStore.listWitnessStates / setWitnessSize keep). */
export function memoryWitnessSizes(initial: Record<string, number> = {}): WitnessSizes & { sizes: Map<string, number> } {
  const sizes = new Map(Object.entries(initial));
  return {
    sizes,
    listWitnessStates: () => Promise.resolve([...sizes].map(([name, size]): WitnessStateRecord => ({ name, size, updatedAt: 0 }))),
    setWitnessSize: (name, size) => {
      sizes.set(name, Math.max(size, sizes.get(name) ?? 0));
      return Promise.resolve();
    },
  };
}

/** POSTs an add-checkpoint body; returns status, content type and body text. */
export async function postAddCheckpoint(url: string, body: string | Uint8Array, headers: Record<string, string> = { 'content-type': 'text/plain' }): Promise<{ status: number; type: string; text: string }> {
  const res = await fetch(`${url}/add-checkpoint`, { method: 'POST', body, headers });
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
}
