/**
 * The base every Lifeboat HTTP service is built on (share holder, key node, backup service):
 * `createBaseApp(opts)` returns a fastify instance with
 *   - one error handler: LifeboatError -> its status and `{err_type, message, hint?}`; zod failures ->
 *     400 `invalid_input` naming the fields; fastify's own parse errors -> 413 `body_too_large`,
 *     400 `malformed_json`, 415 `unsupported_media_type`; anything else -> 500 `internal_error`
 *     with no details (the stack goes to the log only);
 *   - 404 `not_found` for unknown routes;
 *   - pino logging, one line per answered request (method, route, path, status, time; never a header,
 *     a query or a body; the Authorization header is redacted even if a later serializer adds headers),
 *     with the level as a word and the time as ISO 8601;
 *   - a JSON parser that keeps the raw body bytes (`req.rawBody`), which signed requests cover;
 *   - a default body limit of 64 KiB, raised per route with fastify's `bodyLimit` route option.
 * A service adds its routes, and may pass `onRefusal` to record every refused request (an audit log)
 * before the answer is sent.
 *
 * Requests Node's HTTP parser rejects before fastify sees them (oversized headers, a bad request line,
 * bad header bytes) are answered by `answerClientError` with the same `{err_type, message}` shape.
 * X-Forwarded-For is believed only as far as `trustProxy` says (a hop count or the proxies'
 * addresses), never from every hop: a client must not be able to choose the address it is counted under.
 */
import type { Socket } from 'node:net';
import { STATUS_CODES } from 'node:http';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { z } from 'zod';
import { InvalidInputError, LifeboatError } from '../errors.js';
import type { VerifiedRequest } from '../util/request-auth.js';
import { RateLimitedError } from './rate-limit.js';
import type { TrustProxy } from './trust-proxy.js';
import { installObservability, type ObserveOptions } from './observe.js';
import type { TlsMaterial } from './tls.js';

export const DEFAULT_BODY_LIMIT = 64 * 1024;

declare module 'fastify' {
  interface FastifyRequest {
    /** The request body exactly as received (empty when there was none); what a signature covers. */
    rawBody: Buffer | undefined;
    /** Set by verifySignedRequest once the signature checks out, so refusals can name the signer. */
    signer: VerifiedRequest | undefined;
    /** Why the request was refused, for its log line (set by the error handler). */
    refusal: { errType: string; err: unknown } | undefined;
  }
  interface FastifyContextConfig {
    /** The audit name of what a route does (`put_share`); refusals on the route are reported under it. */
    action?: string;
  }
}

/** What a refused request looked like, as given to `onRefusal`. */
export interface Refusal {
  status: number;
  code: string;
  /** The route's `config.action`, or undefined for unknown routes. */
  action: string | undefined;
  /** Set when the request carried a verified signature. */
  signer: VerifiedRequest | undefined;
  ip: string;
  /** True for a rate-limited request after the first refusal in its window (skip it in audit logs). */
  repeated: boolean;
  /** What was thrown. */
  error: unknown;
}

export interface BaseAppOptions {
  /** false (default) for silence, true for info on stderr, or pino options (`{ level, stream }`). */
  logger?: FastifyServerOptions['logger'];
  /** Default body limit in bytes (64 KiB); routes raise it with their own `bodyLimit`. */
  bodyLimit?: number;
  /**
   * Which reverse proxies to believe about the client address (X-Forwarded-For), so rate limits and
   * logs see clients rather than the proxy: see TrustProxy. Default: none (the socket's peer counts).
   */
  trustProxy?: TrustProxy;
  /**
   * Called for every refused request (4xx and 5xx) before the answer is sent; awaited. A throw here
   * turns the answer into a 500, since a refusal that cannot be recorded must not look recorded.
   */
  onRefusal?: (req: FastifyRequest, refusal: Refusal) => void | Promise<void>;
  /**
   * How long a client has to send a whole request (headers and body) before a 408 `request_timeout`
   * and the connection closed. Default DEFAULT_REQUEST_TIMEOUT_MS (fastify's own default is none, so a
   * client that sends its headers and stops short of its Content-Length held the connection forever).
   */
  requestTimeoutMs?: number;
  /** How long a connection may sit idle (nothing sent or received) before it is closed. Default: none. */
  connectionTimeoutMs?: number;
  /** GET /metrics, /healthz and /readyz with the request metrics hook (src/http/observe.ts, docs/monitoring.md). */
  observe?: ObserveOptions;
  /** Serve https with this certificate and key (src/http/tls.ts, `--tls-cert/--tls-key`); plain http without. */
  tls?: TlsMaterial;
}

/**
 * A whole request's time limit on every service that sets none of its own: five minutes, node's own
 * default for its http servers (fastify turns it off). The largest body a service takes, a holder's
 * 32 MiB vault, needs 110 KB/s within it; a client that stops sending holds its connection no longer.
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 300_000;

export { parseTrustProxy, type TrustProxy } from './trust-proxy.js';

/**
 * The trust function fastify asks per hop (0 = the socket's peer, then X-Forwarded-For right to left):
 * a hop count trusts the first N; an address list is compiled by fastify (proxy-addr).
 */
function trustProxyFn(t: TrustProxy | undefined): false | string[] | ((address: string, hop: number) => boolean) {
  if (t === undefined || t === false) return false;
  if (typeof t === 'number') return (_address, hop) => hop < t;
  return t;
}

// Node's HTTP parser errors (the `code` of a clientError), mapped to our stable err_types.
const CLIENT_ERRORS: Record<string, { status: number; code: string; message: string }> = {
  HPE_HEADER_OVERFLOW: { status: 431, code: 'headers_too_large', message: 'the request line and headers are too large' },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, code: 'request_timeout', message: 'the request was not received in time' },
  ERR_HTTP_HEADERS_TIMEOUT: { status: 408, code: 'request_timeout', message: 'the request headers were not received in time' },
};
const MALFORMED_HTTP = { status: 400, code: 'malformed_request', message: 'the request is not valid http' };

/**
 * Fastify's `clientErrorHandler`: answers a request Node's HTTP parser refused (oversized headers, a
 * bad request line, bad header bytes, a timeout) with `{err_type, message}` and closes the connection.
 * Nothing of the request is echoed or logged beyond the parser's error code.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Socket, log?: { info: (o: object, msg: string) => void }): void {
  // A reset connection, or one already gone: nobody to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const e = (err.code && CLIENT_ERRORS[err.code]) || MALFORMED_HTTP;
  log?.info({ err_type: e.code, status: e.status, parser_code: err.code }, 'request refused by the http parser');
  // An answer already under way on this connection cannot be followed by another one.
  const pending = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (socket.writable && !pending?.headersSent) {
    const body = JSON.stringify({ err_type: e.code, message: e.message });
    socket.write(
      `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status]}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

// Fastify's parse errors, by code, mapped to our stable err_types.
const FASTIFY_ERRORS: Record<string, { status: number; code: string; message: string; hint?: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'body_too_large', message: 'request body is too large' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    status: 415,
    code: 'unsupported_media_type',
    message: 'request body must be application/json',
    hint: 'send content-type: application/json',
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'malformed_json', message: 'request body is empty but declared as json' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'malformed_json', message: 'request body is not valid json' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'malformed_request', message: 'request body length does not match content-length' },
};

/** Names the fields a zod error complains about, never their values. */
export function describeZodError(err: z.ZodError): string {
  const fields = [...new Set(err.issues.map((i) => (i.path.length ? i.path.join('.') : 'body')))];
  return `invalid ${fields.join(', ')}`;
}

/**
 * Parses untrusted input with a zod schema. Throws InvalidInputError (`invalid_input`) naming the
 * offending fields of `what` (never their values).
 */
export function parseInput<T extends z.ZodType>(schema: T, value: unknown, what: string): z.infer<T> {
  const r = schema.safeParse(value);
  if (!r.success) throw new InvalidInputError(`${what}: ${describeZodError(r.error)}`);
  return r.data;
}

/** Maps anything thrown while handling a request to the status and JSON body answered. */
export function toErrorAnswer(err: unknown): { status: number; body: { err_type: string; message: string; hint?: string } } {
  if (err instanceof LifeboatError) return { status: err.status, body: err.toJSON() };
  if (err instanceof z.ZodError) return { status: 400, body: { err_type: 'invalid_input', message: describeZodError(err) } };
  const code = (err as FastifyError | undefined)?.code;
  const known = typeof code === 'string' ? FASTIFY_ERRORS[code] : undefined;
  if (known) {
    const body: { err_type: string; message: string; hint?: string } = { err_type: known.code, message: known.message };
    if (known.hint) body.hint = known.hint;
    return { status: known.status, body };
  }
  // A fastify 4xx we did not name (e.g. a bad header): keep the status, not the message.
  const status = (err as FastifyError | undefined)?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) return { status, body: { err_type: 'bad_request', message: 'request rejected' } };
  return { status: 500, body: { err_type: 'internal_error', message: 'internal error' } };
}

/**
 * Fields no log line may carry, wherever a caller puts them (top level, one object down, in headers):
 * pino writes `[redacted]` instead. Lines never log bodies (see the serializers); this is the net under that.
 */
const SECRET_FIELDS = [
  'authorization', 'cookie', 'password', 'passphrase', 'token', 'api_key', 'apiKey', 'secret', 'share', 'shares',
  'mnemonic', 'words', 'master_key', 'masterKey', 'private_key', 'privateKey', 'key_share', 'keyShare', 'restore_token',
  'restoreToken', 'invite', 'totp', 'seed', 'signing_share', 'wrapped_key', 'wrappedKey',
];
export const REDACT_PATHS = [
  ...SECRET_FIELDS,
  ...SECRET_FIELDS.map((f) => `*.${f}`),
  'req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie',
  'request.headers.authorization', 'request.headers.cookie', 'req.headers["x-api-key"]',
];

function loggerOptions(logger: BaseAppOptions['logger']): FastifyServerOptions['logger'] {
  if (!logger) return false;
  const base = logger === true ? {} : logger;
  return {
    level: 'info',
    ...base,
    // `"level":"info"` and an ISO time rather than pino's numbers: read by people and log shippers alike.
    formatters: { level: (label: string) => ({ level: label }) },
    timestamp: () => `,"time":"${new Date().toISOString()}"`,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: {
      // Method, path and peer only: no headers, no bodies, ever.
      req: (req: { method?: string; url?: string; ip?: string; socket?: { remoteAddress?: string } }) => ({
        method: req.method,
        url: req.url === undefined ? undefined : pathOf(req.url),
        remote: req.ip ?? req.socket?.remoteAddress,
      }),
      res: (res: { statusCode?: number }) => ({ status: res.statusCode }),
      // Only 5xx errors are logged with their error; those are ours or the platform's, never a body.
      err: (err: FastifyError) => ({ type: err.name, code: err.code, message: err.message, stack: err.stack ?? '' }),
    },
  };
}

/** A request's path without its query (which could carry anything), at most 256 characters. */
function pathOf(url: string): string {
  const q = url.indexOf('?');
  return (q < 0 ? url : url.slice(0, q)).slice(0, 256);
}

/** The one log line of an answered request: info, or error (with the error) for a 5xx. */
function logRequest(req: FastifyRequest, reply: FastifyReply): void {
  const status = reply.statusCode;
  const line = {
    method: req.method,
    route: req.routeOptions.url ?? null,
    path: pathOf(req.url),
    status,
    ms: Math.round(reply.elapsedTime * 10) / 10,
    remote: req.ip,
    ...(req.refusal ? { err_type: req.refusal.errType } : {}),
  };
  if (status >= 500) req.log.error({ ...line, err: req.refusal?.err }, 'request completed');
  else req.log.info(line, 'request completed');
}

async function sendError(app: FastifyInstance, opts: BaseAppOptions, err: unknown, req: FastifyRequest, reply: FastifyReply): Promise<void> {
  let { status, body } = toErrorAnswer(err);
  req.refusal = { errType: body.err_type, err };
  if (opts.onRefusal) {
    try {
      const repeated = err instanceof RateLimitedError && !err.firstInWindow;
      await opts.onRefusal(req, { status, code: body.err_type, action: req.routeOptions.config.action, signer: req.signer, ip: req.ip, repeated, error: err });
    } catch (hookErr) {
      app.log.error({ err: hookErr }, 'could not record a refused request');
      ({ status, body } = { status: 500, body: { err_type: 'internal_error', message: 'internal error' } });
      req.refusal = { errType: body.err_type, err: hookErr };
    }
  }
  if (err instanceof RateLimitedError) reply.header('retry-after', String(err.retryAfterSeconds)).header('lifeboat-rate-limit', err.shared ? 'shared' : 'own');
  await reply.code(status).type('application/json').send(body);
}

/**
 * The request timeout's body half: node's own check (`requestTimeout`) stops once the headers are in,
 * so a body that stops short of its Content-Length would hold the connection for ever. A request whose
 * body is not whole `ms` after it began gets 408 `request_timeout` (unless an answer has started) and
 * its connection closed.
 */
function bodyDeadline(ms: number): (req: FastifyRequest, reply: FastifyReply) => Promise<void> {
  return async (req, reply) => {
    if (req.raw.complete) return;
    const timer = setTimeout(() => {
      if (req.raw.complete) return;
      const raw = reply.raw;
      if (!raw.headersSent) {
        const body = JSON.stringify({ err_type: 'request_timeout', message: 'the request was not received in time' });
        raw.writeHead(408, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' }).end(body);
      }
      req.raw.socket.destroySoon();
    }, ms);
    timer.unref();
    const done = () => clearTimeout(timer);
    req.raw.once('end', done);
    req.raw.once('close', done);
    reply.raw.once('close', done);
  };
}

/** Creates the fastify instance every Lifeboat service starts from (see the file comment). */
export function createBaseApp(opts: BaseAppOptions = {}): FastifyInstance {
  // The client error handler runs on the instance's logger, which exists only once the instance does.
  const logRef: { log?: FastifyBaseLogger } = {};
  const app = Fastify({
    ...(opts.tls ? { https: { cert: opts.tls.cert, key: opts.tls.key } } : {}),
    logger: loggerOptions(opts.logger),
    bodyLimit: opts.bodyLimit ?? DEFAULT_BODY_LIMIT,
    trustProxy: trustProxyFn(opts.trustProxy),
    requestTimeout: opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    connectionTimeout: opts.connectionTimeoutMs ?? 0,
    // Fastify's two lines a request (incoming, completed) become one, written by logRequest.
    logController: new LogController({ disableRequestLogging: true }),
    // Node checks request timeouts on this interval (30 s by default): a quarter of the timeout keeps it near its word.
    http: { connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor((opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS) / 4))) },
    clientErrorHandler: (err, socket) => answerClientError(err, socket, logRef.log),
    // Errors fastify raises before routing (a path parameter over 100 characters, a malformed URL)
    // would otherwise answer fastify's own body; every answer carries an err_type.
    frameworkErrors: (err, _req, rawReply) => {
      const tooLong = err.code === 'FST_ERR_MAX_PARAM_LENGTH';
      const reply = rawReply as unknown as FastifyReply;
      void reply
        .code(tooLong ? 414 : 400)
        .header('content-type', 'application/json; charset=utf-8')
        .send({ err_type: tooLong ? 'uri_too_long' : 'malformed_url', message: tooLong ? 'a path parameter is too long' : 'the request url is malformed' });
    },
  });
  logRef.log = app.log;
  app.decorateRequest('rawBody', undefined);
  app.decorateRequest('signer', undefined);
  app.decorateRequest('refusal', undefined);
  if (opts.observe) installObservability(app, opts.observe);
  else app.decorate('metrics', undefined);
  if (opts.logger) app.addHook('onResponse', async (req, reply) => logRequest(req, reply));
  app.addHook('onRequest', bodyDeadline(opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS));

  const jsonParser = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    req.rawBody = body as Buffer;
    jsonParser(req, (body as Buffer).toString('utf8'), done);
  });

  app.setErrorHandler((err, req, reply) => sendError(app, opts, err, req, reply));
  app.setNotFoundHandler((req, reply) => sendError(app, opts, new LifeboatError('not_found', 'no such route', { status: 404 }), req, reply));
  return app;
}

/** The bytes a signature over this request covers: the raw body, or nothing. */
export function requestBodyBytes(req: FastifyRequest): Uint8Array {
  return req.rawBody ? new Uint8Array(req.rawBody.buffer, req.rawBody.byteOffset, req.rawBody.byteLength) : new Uint8Array(0);
}
