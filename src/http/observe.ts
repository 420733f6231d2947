/**
 * Metrics and health for every Lifeboat server (docs/monitoring.md), installed by createBaseApp when a
 * service passes `observe`:
 *   GET /metrics  Prometheus text (prom-client, one Registry per app, never the global one): request
 *                 counts and latency by method, route pattern and status, plus the server's own gauges
 *                 and counters (`lifeboat_*`). Least privilege: with no metrics token, answered only to a
 *                 loopback peer that came through no proxy (no X-Forwarded-For / Forwarded header); with a
 *                 token ($LIFEBOAT_METRICS_TOKEN_FILE), only to `Authorization: Bearer <token>`, compared
 *                 in constant time, from anywhere.
 *   GET /healthz  alive: 200 `{"ok": true, "server", "version", …}`.
 *   GET /readyz   every readiness check passes: 200 `{"ready": true, "checks": {…: "ok"}}`, else 503
 *                 `{"err_type": "not_ready", "message", "checks": {…: "ok" | "failing"}}` (no error text:
 *                 the endpoint is open, so it names the failing check and nothing of its cause).
 * Labels are bounded: route patterns (never paths), methods, status codes, err_types; never an account,
 * a key id or a token.
 */
import { timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ForbiddenError, InvalidInputError, LifeboatError, UnauthorizedError } from '../errors.js';
import { VERSION } from '../util/version.js';

export type ServerKind = 'holder' | 'node' | 'backup-server' | 'log' | 'log-witness' | 'console';

/** A gauge read when /metrics is scraped: one value, or one per label set. A collect that throws leaves it out. */
export interface GaugeSpec {
  name: string;
  /** `counter` for a count that only grows, kept by the server (its name ends in `_total`); default gauge. */
  type?: 'gauge' | 'counter';
  help: string;
  labelNames?: string[];
  collect: () => number | undefined | Promise<number | undefined | Array<{ labels: Record<string, string>; value: number }>>;
}

/** A readiness check: resolves when ready, throws (anything) when not. */
export type ReadyCheck = () => unknown;

export interface ObserveOptions {
  server: ServerKind;
  gauges?: GaugeSpec[];
  /** Named readiness checks for /readyz (each awaited; a throw or a 2 s wait makes it `failing`). */
  ready?: Record<string, ReadyCheck>;
  /** More fields for /healthz; may throw a LifeboatError to answer it (the log's `log_halted`). */
  health?: () => Record<string, unknown> | Promise<Record<string, unknown>>;
  /** The bearer token /metrics asks for; default: the file named by $LIFEBOAT_METRICS_TOKEN_FILE, else none (loopback only). */
  metricsToken?: string | null;
  /**
   * prom-client's default process series too (`process_*` CPU, memory and fds, `nodejs_*` heap, event
   * loop lag, GC), for a server that is alone in its process: they start an event-loop monitor and a GC
   * observer that stay for the life of the process.
   */
  processMetrics?: boolean;
}

// prom-client's `*_total` gauges, which promtool refuses (a `_total` name is a counter's); their
// counterparts without the suffix (nodejs_active_handles, …) say the same.
const NON_COUNTER_TOTALS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

declare module 'fastify' {
  interface FastifyInstance {
    /** The app's own metrics registry (set when createBaseApp got `observe`), for a server's counters. */
    metrics: Registry | undefined;
  }
}

const READY_TIMEOUT_MS = 2000;
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * Reads the metrics token from the file $LIFEBOAT_METRICS_TOKEN_FILE names (none when unset). Throws
 * InvalidInputError `metrics_token_invalid` for a file that cannot be read, is readable by others, or
 * holds fewer than 16 characters.
 */
export function metricsTokenFromEnv(env: NodeJS.ProcessEnv = process.env): string | null {
  const file = env.LIFEBOAT_METRICS_TOKEN_FILE;
  if (!file) return null;
  const bad = (why: string) => new InvalidInputError(`LIFEBOAT_METRICS_TOKEN_FILE: ${why}`, { code: 'metrics_token_invalid', hint: 'write a random token of at least 16 characters to a file of mode 0600' });
  let text: string;
  try {
    if (process.platform !== 'win32' && (statSync(file).mode & 0o077) !== 0) throw bad('the file is readable by others (chmod 600 it)');
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    if (err instanceof LifeboatError) throw err;
    throw bad(`cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (text.length < 16 || /\s/.test(text)) throw bad('the token must be at least 16 characters, without spaces');
  return text;
}

/** Whether an address is the loopback interface's (127.0.0.0/8, ::1, or v4-mapped 127.x). */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given, 'utf8');
  const b = Buffer.from(expected, 'utf8');
  // Compare equal-length buffers always, so the time says nothing about the token's length either.
  const same = timingSafeEqual(a.length === b.length ? a : b, b);
  return same && a.length === b.length;
}

function checkMetricsAccess(req: FastifyRequest, token: string | null): void {
  if (token !== null) {
    const h = req.headers.authorization ?? '';
    if (!h.startsWith('Bearer ') || !sameSecret(h.slice(7), token)) {
      throw new UnauthorizedError('metrics need the metrics token', 'metrics_unauthorized', 'send authorization: Bearer <the token in $LIFEBOAT_METRICS_TOKEN_FILE>');
    }
    return;
  }
  const proxied = req.headers['x-forwarded-for'] !== undefined || req.headers.forwarded !== undefined;
  if (proxied || !isLoopback(req.socket.remoteAddress)) {
    throw new ForbiddenError('metrics are answered on loopback only', 'metrics_forbidden', 'scrape from this machine, or set LIFEBOAT_METRICS_TOKEN_FILE and send the token (docs/monitoring.md)');
  }
}

async function withTimeout(check: ReadyCheck): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), READY_TIMEOUT_MS)));
    await Promise.race([Promise.resolve().then(check), late]);
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

function registerGauge(registry: Registry, spec: GaugeSpec): void {
  if (spec.type === 'counter') {
    new Counter({
      name: spec.name,
      help: spec.help,
      registers: [registry],
      async collect() {
        const v = await Promise.resolve().then(spec.collect).catch(() => undefined);
        this.reset();
        if (typeof v === 'number') this.inc(v);
      },
    });
    return;
  }
  new Gauge({
    name: spec.name,
    help: spec.help,
    labelNames: spec.labelNames ?? [],
    registers: [registry],
    async collect() {
      this.reset();
      let v;
      try {
        v = await spec.collect();
      } catch {
        v = undefined; // the part is down: no sample rather than a wrong one (and /readyz says which)
      }
      if (typeof v === 'number') this.set(v);
      else if (Array.isArray(v)) for (const s of v) this.set(s.labels, s.value);
      // reset() leaves a gauge without labels at 0: remove that sample, or "absent" would read as 0.
      else if ((spec.labelNames ?? []).length === 0) this.remove();
    },
  });
}

/** Installs the request metrics hook and /metrics, /healthz, /readyz on `app` (see the file comment). */
export function installObservability(app: FastifyInstance, o: ObserveOptions): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ server: o.server });
  app.decorate('metrics', registry);
  const token = o.metricsToken === undefined ? metricsTokenFromEnv() : o.metricsToken;

  new Gauge({ name: 'lifeboat_build_info', help: 'always 1: the server and its version', labelNames: ['version'], registers: [registry] }).set({ version: VERSION }, 1);
  new Gauge({ name: 'lifeboat_process_start_time_seconds', help: 'when the server process started, unix seconds', registers: [registry] }).set(Math.round(Date.now() / 1000 - process.uptime()));
  const labelNames = ['method', 'route', 'status'] as const;
  const requests = new Counter({ name: 'lifeboat_http_requests_total', help: 'answered requests by method, route pattern and status', labelNames, registers: [registry] });
  const latency = new Histogram({ name: 'lifeboat_http_request_duration_seconds', help: 'time to answer a request, by method, route pattern and status', labelNames, buckets: BUCKETS, registers: [registry] });
  const refusals = new Counter({ name: 'lifeboat_http_refusals_total', help: 'refused requests (4xx, 5xx) by err_type', labelNames: ['err_type'], registers: [registry] });
  app.addHook('onResponse', async (req: FastifyRequest, reply: FastifyReply) => {
    // The route pattern, never the path: unknown paths all count under "unmatched".
    const labels = { method: req.method, route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) };
    requests.inc(labels);
    latency.observe(labels, reply.elapsedTime / 1000);
    if (req.refusal) refusals.inc({ err_type: req.refusal.errType });
  });
  for (const g of o.gauges ?? []) registerGauge(registry, g);
  if (o.processMetrics) {
    collectDefaultMetrics({ register: registry });
    for (const name of NON_COUNTER_TOTALS) registry.removeSingleMetric(name);
  }

  app.get('/metrics', async (req, reply) => {
    checkMetricsAccess(req, token);
    const text = await registry.metrics();
    return reply.header('cache-control', 'no-store').type(registry.contentType).send(text);
  });
  app.get('/healthz', async (_req, reply) => {
    const extra = o.health ? await o.health() : {};
    return reply.header('cache-control', 'no-store').send({ ok: true, server: o.server, version: VERSION, ...extra });
  });
  app.get('/readyz', async (_req, reply) => {
    const names = Object.keys(o.ready ?? {});
    const results = await Promise.all(names.map((n) => withTimeout(o.ready![n]!)));
    const checks = Object.fromEntries(names.map((n, i) => [n, results[i] ? 'ok' : 'failing']));
    const failing = names.filter((_, i) => !results[i]);
    reply.header('cache-control', 'no-store');
    if (failing.length === 0) return reply.send({ ready: true, server: o.server, checks });
    return reply.code(503).send({ err_type: 'not_ready', message: `not ready: ${failing.join(', ')} failing`, server: o.server, checks });
  });
  return registry;
}
