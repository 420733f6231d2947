/**
 * The witness's HTTP API (docs/log.md, "Witnesses"), on the common base app (src/http/app.ts):
 *   POST /add-checkpoint          C2SP tlog-witness: 200 co-signature line(s) (text/plain), 409 the held
 *                                 size (text/x.tlog.size), else `{err_type, message, hint}`
 *   GET  /<origin hash>/checkpoint the checkpoint last co-signed for that log (tlog-witness monitoring)
 *   GET  /healthz                 `{"ok": true, "name", "vkey", "logs"}`
 * One `serve` per data directory (serve.lock); state changes only through Witness.addCheckpoint.
 */
import { statSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { ConflictError, LifeboatError } from '../../errors.js';
import { type BaseAppOptions, createBaseApp } from '../../http/app.js';
import { listen } from '../../http/listen.js';
import { withLock } from '../../vault/lock.js';
import { loadWitnessSigner, type WitnessInfo, witnessPaths, type WitnessPaths } from './datadir.js';
import { WitnessError } from './errors.js';
import { encodeTlogSize, MAX_ADD_CHECKPOINT_BYTES, TLOG_SIZE_TYPE } from './request.js';
import { countLogs } from './state.js';
import { type ForkReport, OldSizeMismatchError, Witness, type WitnessWarning } from './witness.js';

export interface WitnessAppOptions {
  witness: Witness;
  info: WitnessInfo;
  paths: WitnessPaths;
  logger?: BaseAppOptions['logger'];
  /** Serve https with this certificate and key (`--tls-cert/--tls-key`, src/http/tls.ts). */
  tls?: BaseAppOptions['tls'];
}

/** The witness's fastify app (not listening). */
export function createWitnessApp(o: WitnessAppOptions): FastifyInstance {
  // The count of logs by their files' names, listed again only when logs/ changed (or after 1 s).
  let logs = { count: 0, mtimeMs: -1, at: 0 };
  const logCount = (): number => {
    const mtimeMs = statSync(o.paths.logs, { throwIfNoEntry: false })?.mtimeMs ?? 0;
    if (mtimeMs !== logs.mtimeMs || Date.now() - logs.at > 1000) logs = { count: countLogs(o.paths), mtimeMs, at: Date.now() };
    return logs.count;
  };
  const app = createBaseApp({
    logger: o.logger,
    tls: o.tls,
    observe: {
      server: 'log-witness',
      health: () => ({ name: o.info.name, vkey: o.info.vkey, logs: logCount() }),
      ready: { state: () => statSync(o.paths.logs) },
      gauges: [{ name: 'lifeboat_witness_logs', help: 'logs this witness holds a checkpoint of', collect: logCount }],
    },
  });
  // The body is text (tlog-witness names no media type): take any content type as raw bytes.
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.addContentTypeParser('text/plain', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.post('/add-checkpoint', { bodyLimit: MAX_ADD_CHECKPOINT_BYTES, config: { action: 'add_checkpoint' } }, async (req, reply) => {
    const raw = Buffer.isBuffer(req.body) ? req.body : req.rawBody;
    if (!raw || raw.length === 0) throw new WitnessError('witness_request_malformed', 'add-checkpoint request is malformed: the body is empty');
    try {
      const lines = await o.witness.addCheckpoint(new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength));
      return reply.code(200).type('text/plain; charset=utf-8').header('cache-control', 'no-store').send(lines);
    } catch (err) {
      if (err instanceof OldSizeMismatchError) return reply.code(409).type(TLOG_SIZE_TYPE).send(encodeTlogSize(err.heldSize));
      throw err;
    }
  });

  app.get<{ Params: { hash: string } }>('/:hash/checkpoint', async (req, reply) => {
    const note = o.witness.heldNote(req.params.hash);
    if (note === undefined) throw new LifeboatError('not_found', 'this witness has co-signed no checkpoint of a log with that origin hash', { status: 404, hint: 'the path is /<lowercase hex sha-256 of the origin>/checkpoint' });
    return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-store').send(note);
  });

  return app;
}

export interface WitnessServer {
  url: string;
  info: WitnessInfo;
  app: FastifyInstance;
  /** Stops listening (requests in flight finish) and releases serve.lock. */
  close(): Promise<void>;
}

/**
 * Starts the witness of `dir` on `listen` (host:port). Throws what loadWitnessSigner throws,
 * WitnessError `witness_busy` when another live process serves the directory, and `listen_failed`.
 */
export async function startWitnessServer(o: {
  dir: string;
  listen: string;
  logger?: BaseAppOptions['logger'];
  tls?: BaseAppOptions['tls'];
  onFork?: (f: ForkReport) => void;
  onWarning?: (w: WitnessWarning) => void;
}): Promise<WitnessServer> {
  const paths = witnessPaths(o.dir);
  const { info, signer } = loadWitnessSigner(paths);
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let locked!: Promise<void>;
  await new Promise<void>((acquired, failed) => {
    locked = withLock(
      paths.lock,
      () => {
        acquired();
        return released;
      },
      { timeoutMs: 0 },
    ).catch((err: unknown) => {
      failed(err instanceof ConflictError ? new WitnessError('witness_busy', `another process serves the witness in ${o.dir}`, `stop it first; if none runs, remove ${paths.lock}`) : err);
    });
  });
  const witness = new Witness({ paths, signer, onFork: o.onFork, onWarning: o.onWarning });
  const app = createWitnessApp({ witness, info, paths, logger: o.logger, tls: o.tls });
  let url: string;
  try {
    url = await listen(app, o.listen);
  } catch (err) {
    await app.close();
    release();
    await locked;
    throw err;
  }
  return {
    url,
    info,
    app,
    close: async () => {
      await app.close();
      release();
      await locked;
    },
  };
}
