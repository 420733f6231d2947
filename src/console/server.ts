/**
 * `lifeboat console serve` (docs/coverage.md, "The console"): the coverage report as a web page. It
 * collects the report every `intervalS` (and on "Refresh now"), keeps samples of each node's backup
 * stream for the timeline, and shows them only to a signed-in operator: the login form takes the
 * console's operator token (compared in constant time to the one it was started with), then a session
 * cookie (HttpOnly, SameSite=Strict, Secure behind TLS) carries the session. Every POST carries the
 * session's CSRF token in the form, checked in constant time; a login form's own token is made by this
 * process (an HMAC under a key it drew at start), lives 10 minutes, is good for one post and must match
 * its pre-session cookie too. A POST whose Origin is another origin is refused; login posts are limited
 * per client address (429 with Retry-After); a request must arrive whole within 5 s. Nothing it shows or
 * logs is a secret. GET /metrics, /healthz and /readyz are the shared ones (src/http/observe.ts: no
 * session, /metrics on loopback or with the metrics token), with the console's own series (./metrics.ts).
 */
import type { TlsMaterial } from '../http/tls.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { randomBytes } from '../crypto/random.js';
import { createBaseApp } from '../http/app.js';
import { listen } from '../http/listen.js';
import { RateLimiter } from '../http/rate-limit.js';
import { LifeboatError } from '../errors.js';
import { ctEqual, toB64u } from '../util/bytes.js';
import type { CoverageReport } from '../coverage/report.js';
import { consoleCounters, consoleObservability } from './metrics.js';
import { loginPage, type NodeSample, reportPage } from './page.js';

export const SESSION_COOKIE = 'lb_console';
const PRE_COOKIE = 'lb_console_login';
const SESSION_TTL_MS = 8 * 3600_000;
const MAX_SAMPLES = 720;
/** How long a login form's CSRF token is good for. */
export const LOGIN_CSRF_TTL_MS = 10 * 60_000;
/** Login posts one client address may make in a minute. */
export const LOGIN_POSTS_PER_MINUTE = 10;
/** How long a client has to send a whole request (headers and body). */
export const REQUEST_TIMEOUT_MS = 5000;
const utf8 = new TextEncoder();

export interface ConsoleOptions {
  /** The operator token a login must give. */
  token: string;
  /** Collects a fresh report (asks every part of the fleet). */
  collect: () => Promise<CoverageReport>;
  intervalS: number;
  /** Set the cookies' Secure flag (the console is reached over TLS, e.g. through a proxy). */
  secureCookies: boolean;
  logger?: boolean | { level: string; stream: NodeJS.WritableStream };
  /** Serve https with this certificate and key (`--tls-cert/--tls-key`, src/http/tls.ts). */
  tls?: TlsMaterial;
  /** The bearer token GET /metrics asks for; default: $LIFEBOAT_METRICS_TOKEN_FILE's, else none (loopback only). */
  metricsToken?: string | null;
}

export interface RunningConsole {
  url: string;
  app: FastifyInstance;
  /** Collects now and waits for it. */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

const eq = (a: string, b: string) => ctEqual(sha256(utf8.encode(a)), sha256(utf8.encode(b)));

function cookies(req: FastifyRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

/** Builds the console's app and its collection loop (not started). */
export function createConsoleApp(o: ConsoleOptions): { app: FastifyInstance; refresh: () => Promise<void>; stop: () => void; start: () => void } {
  const sessions = new Map<string, { csrf: string; expires: number }>();
  let report: CoverageReport | undefined;
  const liveSessions = () => {
    const now = Date.now();
    let n = 0;
    for (const s of sessions.values()) if (s.expires >= now) n++;
    return n;
  };
  // metricsToken undefined: the shared code reads $LIFEBOAT_METRICS_TOKEN_FILE (and throws metrics_token_invalid).
  const observe = { ...consoleObservability({ report: () => report, sessions: liveSessions, intervalS: o.intervalS }), metricsToken: o.metricsToken };
  const app = createBaseApp({ logger: o.logger ?? false, tls: o.tls, bodyLimit: 8 * 1024, requestTimeoutMs: REQUEST_TIMEOUT_MS, observe });
  const count = consoleCounters(app);
  // Login CSRF tokens: `nonce.expiry.mac`, the mac under a key of this process only; each used once.
  const loginKey = randomBytes(32);
  const usedLogin = new Map<string, number>();
  const loginMac = (body: string) => toB64u(hmac(sha256, loginKey, utf8.encode(body)));
  const newLoginCsrf = () => {
    const body = `${toB64u(randomBytes(18))}.${Date.now() + LOGIN_CSRF_TTL_MS}`;
    return `${body}.${loginMac(body)}`;
  };
  /** Whether `token` is a login CSRF token this process made, unexpired and unused; it is used up. */
  const takeLoginCsrf = (token: string): boolean => {
    const m = /^([A-Za-z0-9_-]{24})\.(\d{13})\.([A-Za-z0-9_-]{43})$/.exec(token);
    if (!m || !eq(m[3]!, loginMac(`${m[1]}.${m[2]}`))) return false;
    const now = Date.now();
    const exp = Number(m[2]);
    if (exp < now || usedLogin.has(m[1]!)) return false;
    for (const [n, e] of usedLogin) if (e < now) usedLogin.delete(n);
    usedLogin.set(m[1]!, exp);
    return true;
  };
  const loginLimit = new RateLimiter({ max: LOGIN_POSTS_PER_MINUTE, windowMs: 60_000 });
  const samples = new Map<string, NodeSample[]>();
  let running: Promise<void> | undefined;
  const refresh = (): Promise<void> =>
    (running ??= (async () => {
      const t0 = performance.now();
      let result: 'ok' | 'failed' = 'failed';
      try {
        const r = await o.collect();
        report = r;
        result = 'ok';
        for (const n of r.nodes) {
          const list = samples.get(n.name) ?? [];
          list.push({ at: Date.parse(r.generated_at), acked_seq: n.backup?.acked_seq ?? null, lag: n.backup ? n.backup.lag : null });
          if (list.length > MAX_SAMPLES) list.shift();
          samples.set(n.name, list);
        }
      } finally {
        count.refreshed(result, (performance.now() - t0) / 1000);
        running = undefined;
      }
    })());
  let timer: NodeJS.Timeout | undefined;
  const secure = o.secureCookies ? '; Secure' : '';
  const cookie = (name: string, value: string, maxAgeS: number) => `${name}=${value}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${maxAgeS}${secure}`;

  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 8 * 1024 }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });
  // The console's forms are urlencoded, and nothing else is taken (JSON included).
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('*', (_req, _payload, done) => done(new LifeboatError('unsupported_media_type', 'request body must be application/x-www-form-urlencoded (the console’s forms)', { status: 415, hint: 'post the form as the page sends it' }), undefined));
  // Every POST: an Origin header, when the browser sends one, must be this console's own.
  app.addHook('onRequest', async (req, reply) => {
    if (req.method !== 'POST') return;
    const origin = req.headers.origin;
    if (origin === undefined) return;
    let host: string | undefined;
    try {
      host = new URL(origin).host;
    } catch {
      host = undefined;
    }
    // The scheme is not compared: behind a TLS proxy the browser's origin is https, the console's plain http.
    if (!host || host !== req.headers.host) return html(reply, 403, '<!doctype html><p>refused: the post comes from another origin (origin_mismatch)</p>');
  });
  app.addHook('onSend', async (_req, reply) => {
    reply.header('cache-control', 'no-store');
    reply.header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
    reply.header('x-frame-options', 'DENY');
    reply.header('x-content-type-options', 'nosniff');
    // same-origin, not no-referrer: with no-referrer the browser's own form posts carry `Origin: null`.
    reply.header('referrer-policy', 'same-origin');
  });

  const session = (req: FastifyRequest) => {
    const sid = cookies(req)[SESSION_COOKIE];
    if (!sid) return undefined;
    const s = sessions.get(sid);
    if (!s || s.expires < Date.now()) {
      sessions.delete(sid);
      return undefined;
    }
    return { sid, ...s };
  };
  const html = (reply: FastifyReply, status: number, body: string) => reply.code(status).type('text/html; charset=utf-8').send(body);
  const showLogin = (reply: FastifyReply, status: number, error?: string) => {
    const pre = newLoginCsrf();
    reply.header('set-cookie', cookie(PRE_COOKIE, pre, 600));
    return html(reply, status, loginPage(pre, error));
  };
  const form = (req: FastifyRequest): Record<string, string> => (req.body && typeof req.body === 'object' ? (req.body as Record<string, string>) : {});
  /** A POST from a signed-in operator with the session's CSRF token; else 401 (no session) or 403 (csrf). */
  const guardPost = (req: FastifyRequest, reply: FastifyReply) => {
    const s = session(req);
    if (!s) {
      void html(reply.header('www-authenticate', 'Cookie'), 401, loginPage('', 'sign in first'));
      return undefined;
    }
    const csrf = form(req).csrf;
    if (typeof csrf !== 'string' || !eq(csrf, s.csrf)) {
      void html(reply, 403, '<!doctype html><p>refused: the form’s CSRF token is missing or wrong (csrf_invalid)</p>');
      return undefined;
    }
    return s;
  };

  app.get('/login', async (_req, reply) => showLogin(reply, 200));
  app.post('/login', async (req, reply) => {
    try {
      loginLimit.hit(req.ip);
    } catch (err) {
      count.login('rate_limited');
      throw err;
    }
    const f = form(req);
    const pre = cookies(req)[PRE_COOKIE];
    if (!pre || typeof f.csrf !== 'string' || !eq(f.csrf, pre) || !takeLoginCsrf(f.csrf)) {
      count.login('refused');
      return html(reply, 403, '<!doctype html><p>refused: the login form’s CSRF token is missing, wrong, used or expired (csrf_invalid): load the form again</p>');
    }
    if (typeof f.token !== 'string' || !eq(f.token, o.token)) {
      count.login('refused');
      return showLogin(reply, 401, 'wrong token (unauthorized)');
    }
    const sid = toB64u(randomBytes(32));
    sessions.set(sid, { csrf: toB64u(randomBytes(32)), expires: Date.now() + SESSION_TTL_MS });
    count.login('ok');
    reply.header('set-cookie', [cookie(SESSION_COOKIE, sid, SESSION_TTL_MS / 1000), cookie(PRE_COOKIE, '', 0)]);
    return reply.code(303).header('location', '/').send();
  });
  app.post('/logout', async (req, reply) => {
    const s = guardPost(req, reply);
    if (!s) return reply;
    sessions.delete(s.sid);
    reply.header('set-cookie', cookie(SESSION_COOKIE, '', 0));
    return reply.code(303).header('location', '/login').send();
  });
  app.post('/refresh', async (req, reply) => {
    if (!guardPost(req, reply)) return reply;
    await refresh().catch(() => undefined);
    return reply.code(303).header('location', '/').send();
  });
  app.get('/', async (req, reply) => {
    const s = session(req);
    if (!s) return showLogin(reply, 401);
    return html(reply, 200, reportPage(report, samples, s.csrf, o.intervalS));
  });
  app.get('/report.json', async (req, reply) => {
    if (!session(req)) return reply.code(401).send({ err_type: 'unauthorized', message: 'sign in first', hint: 'POST /login with the operator token' });
    return report ?? { pending: true };
  });
  return {
    app,
    refresh,
    start: () => {
      void refresh().catch(() => undefined);
      timer = setInterval(() => void refresh().catch(() => undefined), o.intervalS * 1000);
      timer.unref();
    },
    stop: () => clearInterval(timer),
  };
}

/** Starts the console on `address` and its collection loop. Throws what listen throws. */
export async function startConsole(o: ConsoleOptions & { listen: string }): Promise<RunningConsole> {
  const c = createConsoleApp(o);
  const url = await listen(c.app, o.listen);
  c.start();
  return {
    url,
    app: c.app,
    refresh: c.refresh,
    close: async () => {
      c.stop();
      await c.app.close();
    },
  };
}
