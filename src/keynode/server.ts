/**
 * The key node's HTTP API: thin routes over KeyNodeService. Clients and operators authenticate with
 * API keys (Bearer lbk_…, hashed in the store, one role each); the paired fail-over primary signs its
 * imports with its node identity (Lifeboat-Sig). Unknown keys answer 404 `key_id_not_exists`, and so do
 * keys of another tenant than a client key's (docs/keynode.md, "Tenants").
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type BaseAppOptions, createBaseApp, parseInput } from '../http/app.js';
import { verifySignedRequest } from '../http/auth.js';
import type { ObserveOptions } from '../http/observe.js';
import { rateLimitHook } from '../http/rate-limit.js';
import { ForbiddenError } from '../errors.js';
import { encodePublicIdentity, parsePublicIdentity } from '../identity.js';
import { ReplayGuard } from '../util/request-auth.js';
import { fromHex } from '../util/bytes.js';
import { authenticateApiKey } from './apikeys.js';
import { runningConfigView } from './reload.js';
import { registerDeleteKeyRoute } from './delete.js';
import { registerCoverageRoute } from './coverage.js';
import {
  API_PREFIX,
  commitmentsBody,
  dkgFinishBody,
  dkgRound2Body,
  dkgStartBody,
  exportQuery,
  importBody,
  keyParams,
  listKeysQuery,
  messageTooLarge,
  sessionParams,
  signatureShareBody,
  signatureShareBodyLimit,
} from './api.js';
import type { Caller } from './caller.js';
import type { KeyNodeService } from './service.js';
import type { ApiKeyRecord, ApiKeyRole, KeyNodeStore, KeyRecord } from './store/types.js';
import { checkMonitorToken, isMonitorBearer } from '../http/monitor-token.js';

export interface KeyNodeAppDeps {
  service: KeyNodeService;
  store: KeyNodeStore;
  logger?: BaseAppOptions['logger'];
  /** Extra status fields (fail-over lag, backup state). */
  status?: () => Promise<Record<string, unknown>>;

  /** Routes of other capabilities that work on keys through the service (emergency recovery parts). */
  routes?: (app: FastifyInstance, auth: { caller: (req: FastifyRequest) => Promise<Caller> }) => void;
  /** More public facts about a key for `GET /keys/{key_id}` (its emergency recovery package). */
  describeKey?: (rec: KeyRecord) => Promise<Record<string, unknown>>;
  /** The node's gauges and readiness checks (src/keynode/metrics.ts); /metrics, /healthz, /readyz are there without them too. */
  observe?: Omit<ObserveOptions, 'server'>;
  /** The node's own recovery paths for `GET /v1/coverage` (backup stream, fail-over); default: its identity only. */
  coverage?: () => Promise<Record<string, unknown>>;
  /** Serve https with this certificate and key (`--tls-cert/--tls-key`, src/http/tls.ts). */
  tls?: BaseAppOptions['tls'];
  /**
   * The hashes of the node's monitor tokens (`lifeboat node monitor-token`, src/http/monitor-token.ts),
   * read per request; a monitor token reads the coverage pages and the status, nothing else.
   */
  monitorHashes?: () => Uint8Array[];
}

export function createKeyNodeApp(deps: KeyNodeAppDeps): FastifyInstance {
  const { service, store } = deps;
  const app = createBaseApp({ logger: deps.logger, tls: deps.tls, observe: { server: 'node', ready: { store: () => store.countKeys() }, ...deps.observe } });
  app.addHook('onRequest', rateLimitHook({ max: 6000, windowMs: 60_000 }));
  app.addHook('onSend', async (_req, reply) => {
    reply.header('cache-control', 'no-store');
  });
  const replay = new ReplayGuard();
  const auth = (req: FastifyRequest, roles: readonly ApiKeyRole[]) => authenticateApiKey(store, req.headers.authorization, roles);
  /** A client key's tenant; the store holds one for every client key (records.ts). */
  const tenantOf = (k: ApiKeyRecord): string => k.tenant!;
  /** The authenticated API key as a Caller: a client with its tenant, or an operator. */
  const apiCaller = async (req: FastifyRequest, roles: readonly ApiKeyRole[]): Promise<Caller> => {
    const k = await auth(req, roles);
    return k.role === 'client' ? { role: 'client', tenant: tenantOf(k) } : { role: 'operator' };
  };
  /** The read-only routes (coverage, status): an operator API key, or a monitor token and nothing more. */
  const monitorOrOperator = async (req: FastifyRequest): Promise<void> => {
    if (!isMonitorBearer(req.headers.authorization)) return void (await auth(req, ['operator']));
    checkMonitorToken(req.headers.authorization, deps.monitorHashes?.() ?? [], 'send an operator API key or a monitor token of this node (`lifeboat node monitor-token`)');
  };
  const CLIENT: ApiKeyRole[] = ['client'];
  const ANY: ApiKeyRole[] = ['client', 'operator'];

  /** Import and export callers: an API key's role, or the paired primary's signature. */
  const caller = async (req: FastifyRequest): Promise<Caller> => {
    if (req.headers.authorization?.startsWith('Lifeboat-Sig ')) {
      const paired = service.config.paired_primary;
      await verifySignedRequest(req, {
        replay,
        allow: (signer) => {
          if (!paired || encodePublicIdentity(signer) !== encodePublicIdentity(parsePublicIdentity(paired))) {
            throw new ForbiddenError('the signer is not this node’s paired primary', 'not_enrolled');
          }
        },
      });
      return { role: 'paired_primary' };
    }
    return apiCaller(req, ANY);
  };

  app.get(`${API_PREFIX}/health`, async () => ({ ok: true }));
  app.get(`${API_PREFIX}/identity`, async () => service.identity());
  app.get(`${API_PREFIX}/wrapping-key`, async (req) => {
    await auth(req, ANY);
    return { wrapping_public_key: service.identity().wrapping_public_key };
  });

  app.post(`${API_PREFIX}/dkg/:session_id/start`, async (req) => {
    const tenant = tenantOf(await auth(req, CLIENT));
    const { session_id } = parseInput(sessionParams, req.params, 'path');
    const b = parseInput(dkgStartBody, req.body, 'body');
    return { round1: await service.dkgStart({ sessionId: session_id, keyId: b.key_id, curve: b.curve, threshold: b.threshold, participants: b.participants, tenant, ...(b.ers_policy ? { ersPolicy: b.ers_policy } : {}) }) };
  });
  app.post(`${API_PREFIX}/dkg/:session_id/round2`, async (req) => {
    const tenant = tenantOf(await auth(req, CLIENT));
    const { session_id } = parseInput(sessionParams, req.params, 'path');
    return { round2: await service.dkgRound2({ sessionId: session_id, round1: parseInput(dkgRound2Body, req.body, 'body').round1, tenant }) };
  });
  app.post(`${API_PREFIX}/dkg/:session_id/finish`, async (req) => {
    const tenant = tenantOf(await auth(req, CLIENT));
    const { session_id } = parseInput(sessionParams, req.params, 'path');
    return service.dkgFinish({ sessionId: session_id, round2: parseInput(dkgFinishBody, req.body, 'body').round2, tenant });
  });

  app.get(`${API_PREFIX}/keys`, async (req) => {
    const who = await apiCaller(req, ANY);
    const q = parseInput(listKeysQuery, req.query, 'query');
    return service.listKeys(who, { after: q.after, limit: q.limit, tenant: q.tenant });
  });
  app.get(`${API_PREFIX}/keys/:key_id`, async (req) => {
    const who = await apiCaller(req, ANY);
    const rec = await service.keyRecord(parseInput(keyParams, req.params, 'path').key_id, who);
    return { ...(await service.infoWithChannels(rec)), ...(deps.describeKey ? await deps.describeKey(rec) : {}) };
  });
  const messageLimit = service.config.message_limit_bytes;
  app.post(`${API_PREFIX}/keys/:key_id/commitments`, async (req) => {
    const who = await apiCaller(req, CLIENT);
    const { key_id } = parseInput(keyParams, req.params, 'path');
    // A stated message length over the limit is refused here, before a nonce is drawn (docs/keynode.md).
    const b = parseInput(commitmentsBody, req.body ?? {}, 'body');
    if (b.message_length !== undefined && b.message_length > messageLimit) throw messageTooLarge(messageLimit, b.message_length);
    return service.commitments(key_id, who);
  });
  // The message travels as hex: the body limit is twice the node's message limit plus room for the
  // rest. The caller is authenticated before the body is read, so only clients make the node buffer it.
  const shareCallers = new WeakMap<FastifyRequest, Caller>();
  app.post(
    `${API_PREFIX}/keys/:key_id/signature-shares`,
    {
      bodyLimit: signatureShareBodyLimit(messageLimit),
      onRequest: async (req) => void shareCallers.set(req, await apiCaller(req, CLIENT)),
      // A body over the limit is a message over the limit: say so, naming it (the app's handler answers).
      errorHandler: (err: { code?: string }) => {
        throw err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? messageTooLarge(messageLimit) : err;
      },
    },
    async (req) => {
      const who = shareCallers.get(req)!;
      const { key_id } = parseInput(keyParams, req.params, 'path');
      const b = parseInput(signatureShareBody, req.body, 'body');
      if (b.message.length / 2 > messageLimit) throw messageTooLarge(messageLimit, b.message.length / 2);
      return { signature_share: await service.signatureShare(key_id, who, { nonceId: b.nonce_id, message: fromHex(b.message, 'message'), commitmentList: b.commitments }) };
    },
  );

  app.get(`${API_PREFIX}/backup/export-key-share/:key_id`, async (req) => {
    const who = await apiCaller(req, ANY);
    const { key_id } = parseInput(keyParams, req.params, 'path');
    const q = parseInput(exportQuery, req.query, 'query');
    return service.exportShare(key_id, q.export_type, who, q.wrapping_key);
  });
  app.post(`${API_PREFIX}/backup/import-key-share`, async (req) => {
    const who = await caller(req);
    const b = parseInput(importBody, req.body, 'body');
    return service.importShare(b, who, { threshold: b.threshold, tenant: b.tenant, ...(b.ers_policy ? { ersPolicy: b.ers_policy } : {}) });
  });

  registerDeleteKeyRoute(app, { service, store }, (req) => auth(req, ['operator']));
  registerCoverageRoute(app, { store, facts: async () => ({ fingerprint: service.identity().fingerprint, ...(deps.coverage ? await deps.coverage() : {}) }) }, monitorOrOperator);
  deps.routes?.(app, { caller: (req) => apiCaller(req, ANY) });

  // What the running node sees after start and every reload (SIGHUP): pairs, whitelist, export policy.
  app.get(`${API_PREFIX}/config`, async (req) => {
    await auth(req, ['operator']);
    return runningConfigView(service.config, service.configState);
  });

  app.get(`${API_PREFIX}/status`, async (req) => {
    await monitorOrOperator(req);
    return { keys: await store.countKeys(), unused_nonces: await store.countNonces(), ...(deps.status ? await deps.status() : {}) };
  });
  return app;
}
