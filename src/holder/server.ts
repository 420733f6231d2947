/**
 * The share holder's HTTP API (docs/format.md, "Share holder: HTTP API"): thin routes over
 * HolderService. Each route verifies the request signature (except health, identity and release,
 * whose signed document is its own authorisation), validates its input with zod, calls the service
 * and answers. Refusals the service never saw (bad signature, unknown key, bad body) are audited here,
 * before the answer goes out, through the base app's onRefusal.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Counter } from 'prom-client';
import { type BaseAppOptions, createBaseApp, parseInput } from '../http/app.js';
import { verifySignedRequest } from '../http/auth.js';
import { type RateLimit, rateLimitHook } from '../http/rate-limit.js';
import { identityFingerprint } from '../identity.js';
import { fromB64 } from '../util/bytes.js';
import {
  API_PREFIX,
  challengeBody,
  decodeBase64,
  encodeBase64,
  enrolBody,
  putShareBody,
  putVaultBody,
  releaseBody,
  schemeParams,
  VAULT_BODY_LIMIT,
} from './api.js';
import type { Caller, HolderRole } from './access.js';
import { type HolderService, wasAudited } from './service.js';

export interface HolderAppDeps {
  service: HolderService;
  /** Base app logging (false by default); `holder serve` logs JSON lines to stderr. */
  logger?: BaseAppOptions['logger'];
  trustProxy?: BaseAppOptions['trustProxy'];
  /** Per client IP and route. `sensitive` covers challenge and release (default 30/min), `general` the rest (600/min). */
  rateLimit?: { sensitive?: RateLimit; general?: RateLimit };
  /** Serve https with this certificate and key (`--tls-cert/--tls-key`, src/http/tls.ts). */
  tls?: BaseAppOptions['tls'];
}

const SCHEME_ID = /^[0-9a-f]{32}$/;

function schemeIdOf(req: FastifyRequest): string | undefined {
  const id = (req.params as { scheme_id?: unknown } | undefined)?.scheme_id;
  return typeof id === 'string' && SCHEME_ID.test(id) ? id : undefined;
}

/** Builds the holder's fastify app over an opened HolderService (no port; `listen` it, or inject). */
export function createHolderApp(deps: HolderAppDeps): FastifyInstance {
  const { service } = deps;
  const app = createBaseApp({
    logger: deps.logger,
    tls: deps.tls,
    trustProxy: deps.trustProxy,
    observe: { server: 'holder', ready: { store: () => service.config() } },
    onRefusal: async (req, r) => {
      if (!r.action || r.repeated || wasAudited(r.error)) return;
      await service.recordRefusal({
        action: r.action,
        actor: r.signer ? identityFingerprint(r.signer.signer) : 'anonymous',
        scheme_id: schemeIdOf(req),
        code: r.code,
        remote: r.ip,
      });
    },
  });
  // Possession checks (challenge) and releases by outcome, for alerts on a holder that fails possession.
  const outcomeCounter = (name: string, help: string) => new Counter({ name, help, labelNames: ['result'], registers: [app.metrics!] });
  const checks = outcomeCounter('lifeboat_holder_possession_checks_total', 'possession challenges answered (ok) or refused (refused)');
  const releases = outcomeCounter('lifeboat_holder_releases_total', 'release requests answered with the share (ok) or refused (refused)');
  const countOutcome = (c: Counter) => async (_req: FastifyRequest, reply: FastifyReply) => void c.inc({ result: reply.statusCode < 400 ? 'ok' : 'refused' });
  const general = rateLimitHook(deps.rateLimit?.general ?? { max: 600, windowMs: 60_000 });
  const sensitive = rateLimitHook(deps.rateLimit?.sensitive ?? { max: 30, windowMs: 60_000 });
  app.addHook('onRequest', general);
  app.addHook('onSend', async (_req, reply) => {
    reply.header('cache-control', 'no-store');
  });

  const signed = async (req: FastifyRequest, roles: HolderRole[]): Promise<Caller> => {
    const v = await verifySignedRequest(req, {
      replay: { check: (nonce, ts) => service.checkNonce(nonce, ts) },
      allow: (signer) => service.authorize(signer, roles),
      now: service.now(),
    });
    return { kind: 'remote', identity: v.signer, remote: req.ip };
  };
  const params = (req: FastifyRequest) => parseInput(schemeParams, req.params, 'path').scheme_id;

  app.get(`${API_PREFIX}/health`, async () => ({ ok: true }));
  app.get(`${API_PREFIX}/identity`, async () => ({ identity: service.token, fingerprint: service.fingerprint }));

  app.put(`${API_PREFIX}/schemes/:scheme_id/share`, { config: { action: 'put_share' } }, async (req, reply) => {
    const caller = await signed(req, ['primary']);
    const id = params(req);
    const body = parseInput(putShareBody, req.body, 'body');
    const answer = await service.putShare(caller, id, body);
    return reply.code(answer.created ? 201 : 200).send(answer);
  });

  app.put(`${API_PREFIX}/schemes/:scheme_id/vault`, { config: { action: 'put_vault' }, bodyLimit: VAULT_BODY_LIMIT + 1024 }, async (req) => {
    const caller = await signed(req, ['primary']);
    const id = params(req);
    const body = parseInput(putVaultBody, req.body, 'body');
    return service.putVault(caller, id, decodeBase64(body.vault, 'vault'));
  });

  app.get(`${API_PREFIX}/schemes`, { config: { action: 'list_schemes' } }, async (req) => {
    return service.listSchemes(await signed(req, ['primary', 'operator']));
  });

  app.get(`${API_PREFIX}/schemes/:scheme_id/manifest`, { config: { action: 'get_manifest' } }, async (req, reply) => {
    const caller = await signed(req, ['primary', 'operator']);
    const text = await service.getManifest(caller, params(req));
    return reply.type('application/json').send(text);
  });

  app.get(`${API_PREFIX}/schemes/:scheme_id/vault`, { config: { action: 'get_vault' } }, async (req) => {
    const caller = await signed(req, ['primary', 'operator']);
    const { vault, generation } = await service.getVault(caller, params(req));
    return { vault: encodeBase64(vault), generation };
  });

  app.post(`${API_PREFIX}/schemes/:scheme_id/challenge`, { config: { action: 'challenge' }, onRequest: sensitive, onResponse: countOutcome(checks) }, async (req) => {
    const caller = await signed(req, ['primary', 'operator']);
    const id = params(req);
    const body = parseInput(challengeBody, req.body, 'body');
    return service.challenge(caller, id, fromB64(body.challenge, 'challenge', 32));
  });

  app.post(`${API_PREFIX}/schemes/:scheme_id/release`, { config: { action: 'release' }, onRequest: sensitive, onResponse: countOutcome(releases) }, async (req) => {
    const id = params(req);
    const body = parseInput(releaseBody, req.body, 'body');
    return service.release({ kind: 'remote', remote: req.ip }, body.request, id);
  });

  app.post(`${API_PREFIX}/enrol`, { config: { action: 'enrol' } }, async (req) => {
    const caller = await signed(req, ['operator']);
    const body = parseInput(enrolBody, req.body, 'body');
    return service.enrol(caller, body.primary);
  });

  app.delete(`${API_PREFIX}/schemes/:scheme_id`, { config: { action: 'delete_scheme' } }, async (req) => {
    const caller = await signed(req, ['primary']);
    return service.deleteScheme(caller, params(req));
  });

  return app;
}
