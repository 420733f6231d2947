/**
 * The log's HTTP API (docs/log.md, "HTTP API"): the C2SP tlog-tiles read API served from public/ at
 * the root of the URL (GET /checkpoint, GET /tile/...), the write path POST /add, and GET /healthz.
 * Every refusal is `{err_type, message, hint}` with a 4xx status (createBaseApp); nothing a client
 * sends reaches a file path except a tile path parsed to its one canonical spelling.
 */
import type { FastifyInstance } from 'fastify';
import { type BaseAppOptions, createBaseApp } from '../../http/app.js';
import type { ObserveOptions } from '../../http/observe.js';
import { LifeboatError } from '../../errors.js';
import { MAX_ENTRY_BYTES } from '../entry.js';
import { encodeInclusionDoc } from '../inclusion.js';
import { parseTilePath, tilePath } from '../tiles.js';
import type { BlobStore } from './blobs.js';
import { logHalted, tileNotFound, unsupportedMediaType } from './errors.js';
import type { Sequencer } from './sequencer.js';

export interface LogAppDeps {
  sequencer: Sequencer;
  blobs: BlobStore;
  logger?: BaseAppOptions['logger'];
  /** Serve https with this certificate and key (`--tls-cert/--tls-key`, src/http/tls.ts). */
  tls?: BaseAppOptions['tls'];
  trustProxy?: BaseAppOptions['trustProxy'];
  /** A whole request must arrive within this (30 s), else 408 `request_timeout`. */
  requestTimeoutMs?: number;
  /** An idle connection is closed after this; longer than an add may wait for its checkpoint (90 s). */
  connectionTimeoutMs?: number;
}

export const LOG_REQUEST_TIMEOUT_MS = 30_000;
export const LOG_CONNECTION_TIMEOUT_MS = 90_000;

const OCTET = 'application/octet-stream';

/** /metrics gauges (tree size, pending entries, co-signature failures, halted) and /healthz, /readyz of the log. */
function logObservability(seq: Sequencer): ObserveOptions {
  return {
    server: 'log',
    // Halted for safety is not alive as a log: 503 log_halted, as documented (docs/log.md).
    health: () => {
      if (seq.fault) throw logHalted(seq.fault);
      return { tree_size: seq.size };
    },
    ready: {
      sequencer: () => {
        if (seq.fault) throw seq.fault;
      },
    },
    gauges: [
      { name: 'lifeboat_log_tree_size', help: 'the tree size of the checkpoint last published', collect: () => seq.size },
      { name: 'lifeboat_log_pending_entries', help: 'entries added and waiting for a published checkpoint', collect: () => seq.pendingEntries },
      { name: 'lifeboat_log_cosignature_failures_total', help: 'checkpoints published without witness co-signatures since start', type: 'counter', collect: () => seq.cosignFailures },
      { name: 'lifeboat_log_halted', help: '1 when the log stopped sequencing for safety (log_halted)', collect: () => (seq.fault ? 1 : 0) },
    ],
  };
}

export function createLogApp(deps: LogAppDeps): FastifyInstance {
  const app = createBaseApp({
    logger: deps.logger,
    tls: deps.tls,
    trustProxy: deps.trustProxy,
    requestTimeoutMs: deps.requestTimeoutMs ?? LOG_REQUEST_TIMEOUT_MS,
    connectionTimeoutMs: deps.connectionTimeoutMs ?? LOG_CONNECTION_TIMEOUT_MS,
    observe: logObservability(deps.sequencer),
  });
  // Any other content type is read as bytes too, so the route can refuse it by name (415).
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.get('/checkpoint', async (_req, reply) => {
    const data = await deps.blobs.get('checkpoint');
    if (data === undefined) throw new LifeboatError('not_found', 'the log has not published a checkpoint', { status: 404 });
    return reply.header('cache-control', 'no-store').type('text/plain; charset=utf-8').send(Buffer.from(data));
  });

  app.get('/tile/*', async (req, reply) => {
    const rest = (req.params as { '*': string })['*'];
    const path = tilePath(parseTilePath(`tile/${rest}`));
    const data = await deps.blobs.get(path);
    if (data === undefined) throw tileNotFound(path);
    return reply.header('cache-control', 'public, max-age=31536000, immutable').type(OCTET).send(Buffer.from(data));
  });

  // The body limit is the format's; the log's own (smaller) limit is verifyEntry's `entry_too_large`.
  app.post('/add', { bodyLimit: MAX_ENTRY_BYTES }, async (req) => {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== OCTET || !Buffer.isBuffer(req.body)) throw unsupportedMediaType(OCTET);
    const bytes = new Uint8Array(req.body.buffer, req.body.byteOffset, req.body.byteLength).slice();
    return encodeInclusionDoc(await deps.sequencer.add(bytes));
  });

  return app;
}
