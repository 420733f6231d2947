/**
 * The sequencer's intake of adds: each verified add is stored as pending (store.addPending), and the
 * adds that arrive while a write is under way are coalesced into one addPendingBatch, so adds that
 * arrive together cost one transaction and one commit.
 */
import type { EntryStatus, LogStore } from '../store/types.js';

/** Adds per addPendingBatch at most. */
const MAX_INTAKE_BATCH = 1000;

/** The sequencer's one queue of adds on their way to the store (see the file comment). */
export class PendingIntake {
  private queue: { hash: Uint8Array; bytes: Uint8Array; resolve: (s: EntryStatus) => void; reject: (e: unknown) => void }[] = [];
  private running = false;

  constructor(private readonly store: LogStore) {}

  /** store.addPending, with the adds that arrive meanwhile coalesced into one addPendingBatch. Rejects with the store's errors. */
  take(hash: Uint8Array, bytes: Uint8Array): Promise<EntryStatus> {
    return new Promise((resolve, reject) => {
      this.queue.push({ hash, bytes, resolve, reject });
      if (!this.running) {
        this.running = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_INTAKE_BATCH);
      try {
        const statuses = await this.store.addPendingBatch(batch, Date.now());
        batch.forEach((b, i) => b.resolve(statuses[i]!));
      } catch (err) {
        batch.forEach((b) => b.reject(err));
      }
    }
    this.running = false;
  }
}
