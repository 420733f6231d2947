/**
 * The base every Lifeboat HTTP service is built on (share holder, key node, backup service):
 * `createBaseApp(opts)` returns a fastify instance with
 *   - one error handler: LifeboatError -> its status and `{err_type, message, hint?}`; zod failures ->
 *     400 `invalid_input` naming the fields; fastify's own parse errors -> 413 `body_too_large`,
 *     400 `malformed_json`, 415 `unsupported_media_type`; anything else -> 500 `internal_error`
 *     with no details (the stack goes to the log only);
 *   - 404 `not_found` for unknown routes;
 *   - pino logging that never logs a header or a body (the Authorization header is redacted even if
 *     a later serializer adds headers);
 *   - a JSON parser that keeps the raw body bytes (`req.rawBody`), which signed requests cover;
 *   - a default body limit of 64 KiB, raised per route with fastify's `bodyLimit` route option.
 * A service adds its routes, and may pass `onRefusal` to record every refused request (an audit log)
 * before the answer is sent.
 */
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { z } from 'zod';
import { InvalidInputError, LifeboatError } from '../errors.js';
import type { VerifiedRequest } from '../util/request-auth.js';
import { RateLimitedError } from './rate-limit.js';

export const DEFAULT_BODY_LIMIT = 64 * 1024;

declare module 'fastify' {
  interface FastifyRequest {
    /** The request body exactly as received (empty when there was none); what a signature covers. */
    rawBody: Buffer | undefined;
    /** Set by verifySignedRequest once the signature checks out, so refusals can name the signer. */
    signer: VerifiedRequest | undefined;
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
  /** Honour X-Forwarded-For from these proxies (fastify's trustProxy) so rate limits see client IPs. */
  trustProxy?: boolean | string | string[];
  /**
   * Called for every refused request (4xx and 5xx) before the answer is sent; awaited. A throw here
   * turns the answer into a 500, since a refusal that cannot be recorded must not look recorded.
   */
  onRefusal?: (req: FastifyRequest, refusal: Refusal) => void | Promise<void>;
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

function loggerOptions(logger: BaseAppOptions['logger']): FastifyServerOptions['logger'] {
  if (!logger) return false;
  const base = logger === true ? {} : logger;
  return {
    level: 'info',
    ...base,
    redact: { paths: ['req.headers.authorization', 'headers.authorization', 'request.headers.authorization'], censor: '[redacted]' },
    serializers: {
      // Method, path and peer only: no headers, no bodies, ever.
      req: (req: { method?: string; url?: string; ip?: string; socket?: { remoteAddress?: string } }) => ({
        method: req.method,
        url: req.url,
        remote: req.ip ?? req.socket?.remoteAddress,
      }),
      res: (res: { statusCode?: number }) => ({ status: res.statusCode }),
      // Only 5xx errors are logged with their error; those are ours or the platform's, never a body.
      err: (err: FastifyError) => ({ type: err.name, code: err.code, message: err.message, stack: err.stack ?? '' }),
    },
  };
}

async function sendError(app: FastifyInstance, opts: BaseAppOptions, err: unknown, req: FastifyRequest, reply: FastifyReply): Promise<void> {
  let { status, body } = toErrorAnswer(err);
  if (status >= 500) req.log.error({ err }, 'request failed');
  else req.log.info({ err_type: body.err_type, status }, 'request refused');
  if (opts.onRefusal) {
    try {
      const repeated = err instanceof RateLimitedError && !err.firstInWindow;
      await opts.onRefusal(req, { status, code: body.err_type, action: req.routeOptions.config.action, signer: req.signer, ip: req.ip, repeated, error: err });
    } catch (hookErr) {
      app.log.error({ err: hookErr }, 'could not record a refused request');
      ({ status, body } = { status: 500, body: { err_type: 'internal_error', message: 'internal error' } });
    }
  }
  if (err instanceof RateLimitedError) reply.header('retry-after', String(err.retryAfterSeconds));
  await reply.code(status).type('application/json').send(body);
}

/** Creates the fastify instance every Lifeboat service starts from (see the file comment). */
export function createBaseApp(opts: BaseAppOptions = {}): FastifyInstance {
  const app = Fastify({
    logger: loggerOptions(opts.logger),
    bodyLimit: opts.bodyLimit ?? DEFAULT_BODY_LIMIT,
    trustProxy: opts.trustProxy ?? false,
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
  app.decorateRequest('rawBody', undefined);
  app.decorateRequest('signer', undefined);

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
