/**
 * What BackupClient (./client.ts) takes and returns: its options and timeouts, and the shapes of the
 * service's streams, entries and compactions as the client hands them on.
 */
import type * as opaque from '@serenity-kit/opaque';

export const DEFAULT_TIMEOUT_MS = 30_000;
/** Entry batches and compaction chunks (up to 16 MiB) get longer. */
export const TRANSFER_TIMEOUT_MS = 120_000;
export const DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024;

/** OPAQUE's key stretching (Argon2id) on the client; see BackupClientOptions.keyStretching. */
export type KeyStretching = NonNullable<opaque.client.FinishLoginParams['keyStretching']>;

export interface BackupClientOptions {
  /** The service's base URL, e.g. `https://backup.example.net` (a path prefix is kept). */
  url: string;
  timeoutMs?: number;
  /** For tests: a fetch implementation (defaults to the global fetch, which keeps connections alive). */
  fetch?: typeof fetch;
  /**
   * FOR TESTS ONLY: OPAQUE's password stretching. The default, 'memory-constrained' (Argon2id m = 64 MiB,
   * t = 3, p = 4), is what protects a password against a stolen registration record; never lower it
   * in production. A registration and every later login must use the same setting.
   */
  keyStretching?: KeyStretching;
  /**
   * The password stretching (a preset: the production one or stronger) on a short-lived worker thread
   * (./opaque-worker.ts) rather than this one, where OPAQUE's WebAssembly memory would keep about
   * 70 MB to the end of the process: for a process that goes on for long after its login (a
   * restore). Costs a thread start per login (0.1 to 0.3 s). Default false.
   */
  stretchApart?: boolean;
  /** A backup token is renewed this long before it expires (60 s). */
  renewBeforeMs?: number;
  /**
   * When set, a password login refused by the service's login limit (`rate_limited`, docs/backup-server.md
   * "Rate limits") with a Retry-After of at most a minute, and not of a limit anyone can fill, is told
   * here, waited out and tried again (twice at most); without it the refusal is thrown at once.
   */
  onRateLimited?: (waitSeconds: number) => void;
}

export interface StreamHead {
  headSeq: number;
  /** SHA-256 of entry headSeq (32 zero bytes when headSeq is 0). */
  headHash: Uint8Array;
}

export interface CompactionInfo {
  id: string;
  seq: number;
  /** SHA-256 of the whole compaction. */
  hash: Uint8Array;
  size: number;
  chunkCount: number;
  state: 'uploading' | 'complete';
  createdAt: string;
  completedAt: string | null;
}

export interface StreamSummary extends StreamHead {
  stream: string;
  /** The lowest seq the service still holds (headSeq + 1 when none). */
  firstSeq: number;
  updatedAt: string;
}

export interface StreamInfo extends StreamSummary {
  /** The current (complete) compaction, or null. */
  compaction: CompactionInfo | null;
}

export interface EntryInfo {
  seq: number;
  /** SHA-256 of `bytes`, checked on receipt. */
  hash: Uint8Array;
  bytes: Uint8Array;
}
