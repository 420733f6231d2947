/**
 * Creating a log (`lifeboat log init`) and running one (`lifeboat log serve`), in-process: the CLI,
 * the tests and the drill call these. Opening order at start: log.json, the signer from the vault, the
 * store, then the sequencer's recovery (tiles of a batch committed before a crash, public/checkpoint
 * rewritten from the store's head), and only then the listening socket.
 */
import type { FastifyInstance } from 'fastify';
import { ConflictError, LifeboatError, isLifeboatError } from '../../errors.js';
import { withLock } from '../../vault/lock.js';
import { type BaseAppOptions } from '../../http/app.js';
import { listen } from '../../http/listen.js';
import { ensureOwnPrivateDir, ensurePrivateDir } from '../../util/files.js';
import { signCheckpoint } from '../checkpoint.js';
import { ENTRY_OVERHEAD, MAX_ENTRY_BYTES } from '../entry.js';
import { EMPTY_ROOT } from '../merkle.js';
import { checkKeyName } from '../note.js';
import { openLogStore } from '../store/index.js';
import type { LogStore } from '../store/types.js';
import { collectCosignatures, type WitnessOutcome } from '../witness/cosigner.js';
import { createLogApp } from './app.js';
import { directoryBlobs, removeTempFiles } from './blobs.js';
import {
  DEFAULT_INTERVAL_MS,
  DEFAULT_WITNESS_TIMEOUT_MS,
  type LogConfig,
  checkInitComplete,
  createLogVault,
  effectiveQuorum,
  storeUrlOf,
  loadLogConfig,
  loadLogSigner,
  logExistsAt,
  logPaths,
  saveLogConfig,
  verifierKeyOf,
} from './config.js';
import type { Cosigner } from './cosign.js';
import { logExists, witnessSafetyRefusal } from './errors.js';
import { Sequencer } from './sequencer.js';

export interface InitLogOptions {
  origin: string;
  /** Store URL (default sqlite:<dir>/log.sqlite). */
  store?: string;
  intervalMs?: number;
  maxEntryBytes?: number;
}

/**
 * Makes a log in `dir`: the directory (0700), the vault with a fresh signer key, log.json, the store
 * with the empty tree committed (size 0), and public/checkpoint. Returns the verifier key (Go note
 * format) and the origin. Throws ConflictError `log_exists`, InvalidInputError for a bad origin or
 * limit, and the store's errors (a store that already has a head: `sequence_conflict`).
 */
export async function initLog(dir: string, opts: InitLogOptions): Promise<{ origin: string; verifierKey: string; store: string }> {
  checkKeyName(opts.origin, 'origin');
  const paths = logPaths(dir);
  checkInitComplete(paths);
  if (logExistsAt(paths)) throw logExists(dir);
  const max = opts.maxEntryBytes ?? MAX_ENTRY_BYTES;
  if (!Number.isInteger(max) || max <= ENTRY_OVERHEAD || max > MAX_ENTRY_BYTES) {
    throw new LifeboatError('invalid_input', `the entry size limit must be from ${ENTRY_OVERHEAD + 1} to ${MAX_ENTRY_BYTES} bytes`);
  }
  ensureOwnPrivateDir(dir);
  const config: LogConfig = {
    version: 1,
    type: 'lifeboat-log-config',
    origin: opts.origin,
    store: opts.store ?? null,
    interval_ms: opts.intervalMs ?? DEFAULT_INTERVAL_MS,
    max_entry_bytes: max,
    witnesses: [],
    quorum: null,
    witness_timeout_ms: DEFAULT_WITNESS_TIMEOUT_MS,
  };
  const storeUrl = storeUrlOf(paths, config);
  const store = await openLogStore(storeUrl);
  try {
    if (await store.getHead()) throw new LifeboatError('log_exists', 'the store already holds a log', { status: 409, hint: 'give each log its own store (--store)' });
    createLogVault(paths);
    const signer = loadLogSigner(paths, opts.origin);
    const checkpoint = signCheckpoint({ origin: opts.origin, size: 0, rootHash: EMPTY_ROOT, extensions: [] }, signer);
    await store.commitBatch({ oldSize: 0, ids: [], root: EMPTY_ROOT, checkpoint, now: Date.now() });
    ensurePrivateDir(paths.public);
    await directoryBlobs(paths.public).put('checkpoint', checkpoint);
    // log.json last: a directory without it is an init cut off (loadLogConfig says so), never a log
    saveLogConfig(paths, config);
    return { origin: opts.origin, verifierKey: verifierKeyOf(signer), store: storeUrl };
  } finally {
    await store.close();
  }
}

/** The log's origin and verifier key, from its data directory. */
export function logKey(dir: string): { origin: string; verifierKey: string } {
  const paths = logPaths(dir);
  const config = loadLogConfig(paths);
  return { origin: config.origin, verifierKey: verifierKeyOf(loadLogSigner(paths, config.origin)) };
}

/** Opens the store log.json names (or `override`), for the operator commands; the caller closes it. */
export async function openLogStoreOf(dir: string, override?: string): Promise<{ config: LogConfig; store: LogStore }> {
  const paths = logPaths(dir);
  const config = loadLogConfig(paths);
  return { config, store: await openLogStore(override ?? storeUrlOf(paths, config)) };
}

export interface StartLogOptions {
  dataDir: string;
  /** `host:port` (default 127.0.0.1:0). */
  listen?: string;
  /** Overrides log.json's interval. */
  intervalMs?: number;
  /** Overrides log.json's store. */
  store?: string;
  logger?: BaseAppOptions['logger'];
  trustProxy?: BaseAppOptions['trustProxy'];
  /** Serve https with this certificate and key (`--tls-cert/--tls-key`). */
  tls?: BaseAppOptions['tls'];
  warn?: (line: string) => void;
  /** Replaces the witness co-signing of log.json's witnesses (tests). */
  cosign?: Cosigner;
  addTimeoutMs?: number;
  /** The HTTP request and idle-connection timeouts (30 s; the add timeout + 30 s). */
  requestTimeoutMs?: number;
  connectionTimeoutMs?: number;
}

export interface RunningLog {
  url: string;
  origin: string;
  verifierKey: string;
  config: LogConfig;
  sequencer: Sequencer;
  store: LogStore;
  app: FastifyInstance;
  /** Resolves with the refusal for safety that stopped sequencing (the server keeps serving reads). */
  halted: Promise<LifeboatError>;
  /** Stops taking requests, finishes the batch in flight, closes the store. */
  close(): Promise<void>;
}

/**
 * The co-signing hook for log.json's witnesses (src/log/witness/cosigner.ts), warning below the quorum.
 * The log waits for its quorum (plus a short grace), not for every witness; the others go on in the
 * background until the sequencer calls the round off (`req.signal`) or the next round starts, which
 * first aborts what is left of the previous one and waits for it to settle: rounds never overlap.
 */
export function witnessCosigner(config: LogConfig, store: LogStore, warn: (line: string) => void): Cosigner | undefined {
  if (config.witnesses.length === 0) return undefined;
  const quorum = effectiveQuorum(config);
  const say = (o: WitnessOutcome, late = ''): void => warn(`witness ${o.witness} (${o.url}): ${o.result}: ${o.message}${o.errType ? ` (${o.errType})` : ''}${late}`);
  let previous: { stop: AbortController; settled: Promise<unknown> } | undefined;
  return async (req) => {
    if (previous) {
      previous.stop.abort();
      await previous.settled;
    }
    const stop = new AbortController();
    const round = collectCosignatures({
      checkpoint: req.checkpoint,
      witnesses: config.witnesses,
      prove: (oldSize) => req.proveConsistency(oldSize),
      sizes: store,
      timeoutMs: config.witness_timeout_ms,
      signal: AbortSignal.any([req.signal, stop.signal]),
      quorum,
    });
    previous = { stop, settled: round.then((r) => r.settled, () => {}) };
    const r = await round;
    for (const o of r.outcomes) if (o.result !== 'cosigned' && o.result !== 'pending') say(o);
    // A witness that holds a larger tree, or refuses this one as a fork: stop (store_behind / log_forked).
    const refusal = witnessSafetyRefusal(r.outcomes);
    if (refusal) throw refusal;
    if (r.cosigned < quorum) warn(`checkpoint of size ${req.size} has ${r.cosigned} of the ${quorum} co-signatures asked for`);
    const late = r.outcomes.flatMap((o, i) => (o.result === 'pending' ? [i] : []));
    if (late.length > 0) {
      void r.settled.then((all) => {
        for (const i of late) if (all[i]!.result !== 'cosigned') say(all[i]!, `, after the checkpoint of size ${req.size} was published`);
      });
    }
    return r.checkpoint;
  };
}

/**
 * Holds `serve.lock` in the data directory (O_EXCL, with the pid; taken over from a dead process) for
 * as long as the log runs: one sequencer per log. Throws ConflictError `log_running`.
 */
async function holdServeLock(dir: string): Promise<() => Promise<void>> {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let acquired!: () => void;
  const got = new Promise<void>((r) => (acquired = r));
  const done = withLock(
    `${dir}/serve.lock`,
    async () => {
      acquired();
      await held;
    },
    { timeoutMs: 0 },
  );
  await Promise.race([
    got,
    done.then(
      () => {},
      (err: unknown) => {
        if (isLifeboatError(err, 'vault_locked')) throw new ConflictError(`another \`lifeboat log serve\` runs on ${dir}`, 'log_running', 'stop it first: one sequencer per log');
        throw err;
      },
    ),
  ]);
  return async () => {
    release();
    await done;
  };
}

/**
 * Starts a log from its data directory: recovery first, then the HTTP API. Throws what loadLogConfig,
 * loadLogSigner, openLogStore and Sequencer.start throw, ConflictError `log_running` when another
 * server holds the directory, and `listen_failed`.
 */
export async function startLogServer(o: StartLogOptions): Promise<RunningLog> {
  const paths = logPaths(o.dataDir);
  const config = loadLogConfig(paths);
  const unlock = await holdServeLock(paths.dir);
  try {
    return await startLocked(o, config, unlock);
  } catch (err) {
    await unlock();
    throw err;
  }
}

async function startLocked(o: StartLogOptions, config: LogConfig, unlock: () => Promise<void>): Promise<RunningLog> {
  const paths = logPaths(o.dataDir);
  const signer = loadLogSigner(paths, config.origin);
  const warn = o.warn ?? (() => {});
  const store = await openLogStore(o.store ?? storeUrlOf(paths, config));
  // serve.lock is per directory; the store's lock (PostgreSQL) also stops a second data directory on the same store
  let unlockStore: () => Promise<void>;
  try {
    unlockStore = await store.holdSequencerLock(config.origin);
  } catch (err) {
    await store.close();
    throw err;
  }
  const leftovers = removeTempFiles(paths.public);
  if (leftovers > 0) warn(`removed ${leftovers} temporary file(s) an earlier run left in public/ when it was killed`);
  const blobs = directoryBlobs(paths.public);
  const sequencer = new Sequencer({
    store,
    blobs,
    signer,
    intervalMs: o.intervalMs ?? config.interval_ms,
    maxEntryBytes: config.max_entry_bytes,
    cosign: o.cosign ?? witnessCosigner(config, store, warn),
    // the cosigner bounds each witness by witness_timeout_ms; this bounds the whole round
    cosignTimeoutMs: config.witness_timeout_ms + 1000,
    addTimeoutMs: o.addTimeoutMs,
    warn,
  });
  let app: FastifyInstance | undefined;
  try {
    ensurePrivateDir(paths.public);
    await sequencer.start();
    app = createLogApp({
      sequencer,
      blobs,
      logger: o.logger,
      tls: o.tls,
      trustProxy: o.trustProxy,
      requestTimeoutMs: o.requestTimeoutMs,
      connectionTimeoutMs: o.connectionTimeoutMs ?? (o.addTimeoutMs ?? 60_000) + 30_000,
    });
    const url = await listen(app, o.listen ?? '127.0.0.1:0');
    const running = app;
    return {
      url,
      origin: config.origin,
      verifierKey: verifierKeyOf(signer),
      config,
      sequencer,
      store,
      app: running,
      halted: sequencer.halted,
      async close() {
        await sequencer.stop();
        await running.close();
        await unlockStore();
        await store.close();
        await unlock();
      },
    };
  } catch (err) {
    await sequencer.stop().catch(() => {});
    await app?.close().catch(() => {});
    await store.close();
    throw err;
  }
}
