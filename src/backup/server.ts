/**
 * The backup service's HTTP API (docs/backup-server.md): thin routes over BackupService. Each route
 * validates its input with zod, authenticates where it must (a login token for the password change,
 * a backup token of the URL's account for streams), calls the service and answers; typed errors
 * become `{err_type, message, hint}` in the base app. Bodies are never logged, and the Authorization
 * header is redacted. Running it (`backup-server serve`) is ./serve.ts.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { InvalidInputError } from '../errors.js';
import { registerWalletRoutes } from './server-wallet.js';
import { backupObservability, countFailedLogins } from './metrics.js';
import { type BaseAppOptions, createBaseApp, parseInput } from '../http/app.js';
import { type RateLimit, RateLimiter, rateLimitHook } from '../http/rate-limit.js';
import {
  API_PREFIX,
  accountParams,
  appendBody,
  beginCompactionBody,
  chunkParams,
  compactionParams,
  completeCompactionBody,
  decodeBase64,
  encodeBase64,
  ENTRIES_BODY_LIMIT,
  entriesQuery,
  isoTimeOf,
  loginFinishBody,
  loginStartBody,
  MAX_CHUNK_BYTES,
  parseEntryFrames,
  acceptsOctets,
  encodeEntryListFrames,
  OCTETS,
  passwordFinishBody,
  passwordStartBody,
  registerFinishBody,
  registerStartBody,
  sessionBody,
  streamParams,
} from './api.js';
import type { BackupService } from './service.js';
import { registerMonitorRoutes } from './monitor.js';
import type { CompactionRecord, StreamRecord, TokenRecord } from './store/types.js';

export interface BackupRateLimits {
  /**
   * Login starts without a restore token, per account name, from anywhere (10/min). Each start is one
   * password guess (OPAQUE lets the client test a guess against the start's answer), so this bounds
   * online guessing; anyone can use it up, which is why a restore token has its own.
   */
  loginPerAccount: RateLimit;
  /**
   * Login starts without a restore token, per client address and account name (3/min), counted before
   * loginPerAccount: one address cannot use up an account's anonymous lane by itself.
   */
  loginPerAddressAndAccount: RateLimit;
  /** Login starts with the account's restore token, per account name (10/min): the owner's own lane. */
  loginPerRestoreToken: RateLimit;
  /** Login starts per client address (30/min). */
  loginPerAddress: RateLimit;
  /** Register and password change, per client address and route (30/min). */
  authPerAddress: RateLimit;
  /**
   * Challenge and session, per client address and route (120/min): a proof cannot be guessed, so this
   * only bounds the rows a flood leaves; it is higher for fleets of nodes behind one address.
   */
  sessionPerAddress: RateLimit;
  /** Every route, per client address and route (6000/min). */
  general: RateLimit;
  /** Second-factor code checks per account, from anywhere (10/min): each is one guess at a code. */
  totpPerAccount: RateLimit;
}

export const DEFAULT_RATE_LIMITS: BackupRateLimits = {
  loginPerAccount: { max: 10, windowMs: 60_000 },
  loginPerAddressAndAccount: { max: 3, windowMs: 60_000 },
  loginPerRestoreToken: { max: 10, windowMs: 60_000 },
  loginPerAddress: { max: 30, windowMs: 60_000 },
  authPerAddress: { max: 30, windowMs: 60_000 },
  sessionPerAddress: { max: 120, windowMs: 60_000 },
  general: { max: 6000, windowMs: 60_000 },
  totpPerAccount: { max: 10, windowMs: 60_000 },
};

export interface BackupAppDeps {
  service: BackupService;
  /** Base app logging (false by default); `backup-server serve` logs JSON lines to stderr. */
  logger?: BaseAppOptions['logger'];
  /** Serve https with this certificate and key (`--tls-cert/--tls-key`, src/http/tls.ts). */
  tls?: BaseAppOptions['tls'];
  trustProxy?: BaseAppOptions['trustProxy'];
  rateLimits?: Partial<BackupRateLimits>;
  /** The monitor tokens' hashes, read at each monitoring request (src/backup/monitor.ts); none: monitoring is refused. */
  monitorHashes?: () => Uint8Array[];
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The login token a password-change route was called with (set by its onRequest hook). */
    backupLoginToken?: TokenRecord;
  }
}

const ACCOUNT = `${API_PREFIX}/accounts/:account`;
const STREAM = `${ACCOUNT}/streams/:stream`;
const COMPACTION = `${STREAM}/compactions/:id`;

function headJson(s: StreamRecord) {
  return { head_seq: s.headSeq, head_hash: encodeBase64(s.headHash) };
}

function streamJson(s: StreamRecord) {
  return { stream: s.stream, ...headJson(s), first_seq: s.firstSeq, updated_at: isoTimeOf(s.updatedAt) };
}

function compactionJson(c: CompactionRecord) {
  return {
    id: c.id,
    seq: c.seq,
    hash: encodeBase64(c.hash),
    size: c.size,
    chunk_count: c.chunkCount,
    state: c.state,
    created_at: isoTimeOf(c.createdAt),
    completed_at: c.completedAt === null ? null : isoTimeOf(c.completedAt),
  };
}

/** Builds the backup service's fastify app (no port; `listen` it, or inject). */
export function createBackupApp(deps: BackupAppDeps): FastifyInstance {
  const { service } = deps;
  const limits = { ...DEFAULT_RATE_LIMITS, ...deps.rateLimits };
  const app = createBaseApp({ logger: deps.logger, trustProxy: deps.trustProxy, tls: deps.tls, observe: backupObservability(service.store) });
  countFailedLogins(app);
  app.decorateRequest('backupLoginToken', undefined);
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.addHook('onRequest', rateLimitHook(limits.general, service.now));
  app.addHook('onSend', async (_req, reply) => {
    reply.header('cache-control', 'no-store');
  });
  const loginPerAddress = rateLimitHook(limits.loginPerAddress, service.now);
  const authPerAddress = rateLimitHook(limits.authPerAddress, service.now);
  const sessionPerAddress = rateLimitHook(limits.sessionPerAddress, service.now);
  const loginPerAccount = new RateLimiter(limits.loginPerAccount, 100_000, service.now, true);
  const loginPerAddressAndAccount = new RateLimiter(limits.loginPerAddressAndAccount, 100_000, service.now);
  const loginPerRestoreToken = new RateLimiter(limits.loginPerRestoreToken, 100_000, service.now);

  const account = (req: FastifyRequest) => parseInput(accountParams, req.params, 'path').account;
  const b64 = (s: string, what: string, len?: number) => decodeBase64(s, what, len);
  /** The token is checked before the body is read: an unauthenticated 16 MiB batch is never parsed. */
  const backupToken = async (req: FastifyRequest) => {
    await service.authenticate(req.headers.authorization, account(req), 'backup');
  };
  const loginToken = async (req: FastifyRequest) => {
    req.backupLoginToken = await service.authenticate(req.headers.authorization, account(req), 'login');
  };
  const streamOf = (req: FastifyRequest) => parseInput(streamParams, req.params, 'path');
  const compactionOf = (req: FastifyRequest) => parseInput(compactionParams, req.params, 'path');
  const chunkOf = (req: FastifyRequest) => parseInput(chunkParams, req.params, 'path');

  app.get(`${API_PREFIX}/health`, async () => ({ ok: true }));
  app.get(`${API_PREFIX}/info`, async () => ({
    opaque_server_public_key: service.serverPublicKey(),
    wallet: service.siwe ? { domain: service.siwe.domain, chain_id: service.siwe.chainId } : null,
  }));

  // ---- registration, login, password ----
  app.post(`${ACCOUNT}/register/start`, { onRequest: authPerAddress }, async (req) => {
    const name = account(req);
    const b = parseInput(registerStartBody, req.body, 'body');
    const response = await service.registerStart(name, b.invite, b64(b.registration_request, 'registration_request'));
    return { registration_response: encodeBase64(response) };
  });
  app.post(`${ACCOUNT}/register/finish`, { onRequest: authPerAddress }, async (req) => {
    const name = account(req);
    const b = parseInput(registerFinishBody, req.body, 'body');
    await service.registerFinish(name, b.invite, {
      record: b64(b.record, 'record'),
      wrappedKey: b64(b.wrapped_key, 'wrapped_key'),
      authPublicKey: b64(b.auth_public_key, 'auth_public_key', 32),
    });
    return { ok: true };
  });
  app.post(`${ACCOUNT}/login/start`, { onRequest: loginPerAddress }, async (req) => {
    const name = account(req);
    const b = parseInput(loginStartBody, req.body, 'body');
    // Each start is a password guess. The per-address limit (onRequest) counts first; then the
    // account's lane: the restore token's own, which only the token's holder can use up, or the
    // anonymous one, which anyone can, but one address only to its per-address-and-account share.
    if (b.restore_token !== undefined) {
      await service.checkRestoreToken(name, b.restore_token);
      loginPerRestoreToken.hit(name);
    } else {
      const hint = "log in with the account's restore token (node restore --restore-token)";
      loginPerAddressAndAccount.hit(`${req.ip} ${name}`, hint);
      loginPerAccount.hit(name, hint);
    }
    const r = await service.loginStart(name, b64(b.start_login_request, 'start_login_request'));
    return { login_id: r.loginId, login_response: encodeBase64(r.loginResponse) };
  });
  app.post(`${ACCOUNT}/login/finish`, { onRequest: loginPerAddress }, async (req) => {
    const name = account(req);
    const b = parseInput(loginFinishBody, req.body, 'body');
    const r = await service.loginFinish(name, b.login_id, b64(b.finish_login_request, 'finish_login_request'), b.totp);
    return { wrapped_key: encodeBase64(r.wrappedKey), login_token: r.token, expires_at: isoTimeOf(r.expiresAt) };
  });
  app.post(`${ACCOUNT}/password/start`, { onRequest: [authPerAddress, loginToken] }, async (req) => {
    const b = parseInput(passwordStartBody, req.body, 'body');
    return { registration_response: encodeBase64(await service.passwordStart(req.backupLoginToken!, b64(b.registration_request, 'registration_request'))) };
  });
  app.post(`${ACCOUNT}/password/finish`, { onRequest: [authPerAddress, loginToken] }, async (req) => {
    const b = parseInput(passwordFinishBody, req.body, 'body');
    await service.passwordFinish(req.backupLoginToken!, b64(b.record, 'record'), b64(b.wrapped_key, 'wrapped_key'));
    return { ok: true };
  });

  // A new restore token, shown once, for a proof of the backup key (the live node, never the password).
  app.post(`${ACCOUNT}/restore-token`, { onRequest: authPerAddress }, async (req) => {
    const token = await service.authenticate(req.headers.authorization, account(req), 'backup');
    return { restore_token: await service.createRestoreToken(token) };
  });

  registerWalletRoutes(app, service, { sessionPerAddress, authPerAddress, loginToken, account });

  // ---- proof of the backup key ----
  app.post(`${ACCOUNT}/challenge`, { onRequest: sessionPerAddress }, async (req) => {
    const c = await service.challenge(account(req));
    return { challenge: encodeBase64(c.challenge), expires_at: isoTimeOf(c.expiresAt) };
  });
  app.post(`${ACCOUNT}/session`, { onRequest: sessionPerAddress }, async (req) => {
    const name = account(req);
    const b = parseInput(sessionBody, req.body, 'body');
    const t = await service.session(name, b64(b.challenge, 'challenge'), b64(b.signature, 'signature'));
    return { backup_token: t.token, expires_at: isoTimeOf(t.expiresAt) };
  });

  // ---- streams (a backup token of the URL's account) ----
  registerMonitorRoutes(app, { store: service.store, hashes: deps.monitorHashes ?? (() => []) });
  app.get(`${ACCOUNT}/streams`, { onRequest: backupToken }, async (req) => {
    return { streams: (await service.streams.listStreams(account(req))).map(streamJson) };
  });
  app.get(STREAM, { onRequest: backupToken }, async (req) => {
    const p = streamOf(req);
    const s = await service.streams.getStream(p.account, p.stream);
    return { ...streamJson(s.head), compaction: s.compaction ? compactionJson(s.compaction) : null };
  });
  app.post(`${STREAM}/entries`, { onRequest: backupToken, bodyLimit: ENTRIES_BODY_LIMIT }, async (req) => {
    const p = streamOf(req);
    // application/octet-stream: framed entries (what the client sends; no base64, no JSON); or JSON.
    const entries = Buffer.isBuffer(req.body) ? parseEntryFrames(req.body) : parseInput(appendBody, req.body, 'body').entries.map((e, i) => b64(e, `entries[${i}]`));
    return headJson(await service.streams.append(p.account, p.stream, entries));
  });
  app.get(`${STREAM}/entries`, { onRequest: backupToken }, async (req, reply) => {
    const p = streamOf(req);
    const q = parseInput(entriesQuery, req.query, 'query');
    const r = await service.streams.listEntries(p.account, p.stream, q.after, q.limit);
    // Binary frames for a client that asks for them (docs/format.md, "Entry batches over HTTP"); else JSON.
    if (acceptsOctets(req.headers.accept)) return reply.type(OCTETS).send(Buffer.from(encodeEntryListFrames(r.headSeq, r.entries)));
    return { head_seq: r.headSeq, entries: r.entries.map((e) => ({ seq: e.seq, hash: encodeBase64(e.hash), entry: encodeBase64(e.bytes) })) };
  });

  // ---- compactions ----
  app.post(`${STREAM}/compactions`, { onRequest: backupToken }, async (req, reply) => {
    const p = streamOf(req);
    const b = parseInput(beginCompactionBody, req.body, 'body');
    const c = await service.streams.beginCompaction(p.account, p.stream, 'hash' in b ? { seq: b.seq, hash: b64(b.hash, 'hash', 32), size: b.size, chunkCount: b.chunk_count } : { seq: b.seq });
    return reply.code(201).send(compactionJson(c));
  });
  app.get(`${STREAM}/compactions`, { onRequest: backupToken }, async (req) => {
    const p = streamOf(req);
    return { compactions: (await service.streams.listCompactions(p.account, p.stream)).map(compactionJson) };
  });
  app.get(`${STREAM}/compactions/current`, { onRequest: backupToken }, async (req) => {
    const p = streamOf(req);
    return compactionJson(await service.streams.currentCompaction(p.account, p.stream));
  });
  app.put(`${COMPACTION}/chunks/:n`, { onRequest: backupToken, bodyLimit: MAX_CHUNK_BYTES }, async (req) => {
    const p = chunkOf(req);
    if (!Buffer.isBuffer(req.body)) throw new InvalidInputError('a chunk is sent as application/octet-stream', { hint: 'send content-type: application/octet-stream' });
    const bytes = new Uint8Array(req.body.buffer, req.body.byteOffset, req.body.byteLength);
    await service.streams.putChunk(p.account, p.stream, p.id, p.n, bytes);
    return { id: p.id, n: p.n, size: bytes.length };
  });
  app.get(`${COMPACTION}/chunks/:n`, { onRequest: backupToken }, async (req, reply) => {
    const p = chunkOf(req);
    const bytes = await service.streams.getChunk(p.account, p.stream, p.id, p.n);
    return reply.type('application/octet-stream').send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  });
  app.post(`${COMPACTION}/complete`, { onRequest: backupToken }, async (req) => {
    const p = compactionOf(req);
    // A streamed upload names its size, chunk count and hash here (a body-less complete names none).
    const b = req.body === undefined || req.body === null ? undefined : parseInput(completeCompactionBody, req.body, 'body');
    const declared = b ? { hash: b64(b.hash, 'hash', 32), size: b.size, chunkCount: b.chunk_count } : undefined;
    return compactionJson(await service.streams.complete(p.account, p.stream, p.id, declared));
  });
  return app;
}
