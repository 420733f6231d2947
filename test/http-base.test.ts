/** The reusable HTTP base: error mapping, limits, logging, signed requests, rate limits, listen. */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import * as opaque from '@serenity-kit/opaque';
import { z } from 'zod';
import { createBackupApp } from '../src/backup/server.js';
import { BackupService } from '../src/backup/service.js';
import { openBackupStore } from '../src/backup/store/index.js';
import { ConflictError, isLifeboatError } from '../src/errors.js';
import type { FastifyInstance } from 'fastify';
import { createBaseApp, DEFAULT_REQUEST_TIMEOUT_MS, parseInput, parseTrustProxy, type Refusal, type TrustProxy } from '../src/http/app.js';
import { verifySignedRequest } from '../src/http/auth.js';
import { listen, parseListenAddress } from '../src/http/listen.js';
import { RateLimitedError, RateLimiter, rateLimitHook } from '../src/http/rate-limit.js';
import { generateIdentity, identityFingerprint } from '../src/identity.js';
import { utf8 } from '../src/util/bytes.js';
import { ReplayGuard, signRequest } from '../src/util/request-auth.js';
import { holderFixture } from './helpers/holder.js';
import { startInProcessNodes } from './helpers/keynode.js';
import { trackedTempDir } from './helpers/tmp.js';

function testApp(opts: { refusals?: Refusal[]; logs?: string[] } = {}) {
  const logger = opts.logs
    ? {
        level: 'info',
        stream: new Writable({
          write(chunk: Buffer, _enc, cb) {
            opts.logs!.push(chunk.toString());
            cb();
          },
        }),
      }
    : false;
  const app = createBaseApp({ logger, onRefusal: opts.refusals ? (_req, r) => void opts.refusals!.push(r) : undefined });
  const guard = new ReplayGuard();
  app.post('/echo', { config: { action: 'echo' } }, async (req) => parseInput(z.object({ name: z.string(), n: z.number() }), req.body, 'body'));
  app.post('/big', { bodyLimit: 1024 * 1024 }, async (req) => ({ len: (req.rawBody ?? Buffer.alloc(0)).length }));
  app.get('/conflict', async () => {
    throw new ConflictError('it is there already', 'conflict', 'try another name');
  });
  app.get('/boom', async () => {
    throw new Error('secret-ish detail /etc/passwd');
  });
  app.get('/raw-zod', async () => z.object({ a: z.string() }).parse({ a: 1 }));
  app.post('/signed', async (req) => {
    const v = await verifySignedRequest(req, {
      replay: guard,
      allow: (signer) => {
        if (identityFingerprint(signer) === blockedFp) throw new ConflictError('blocked', 'not_enrolled');
      },
    });
    return { fingerprint: identityFingerprint(v.signer) };
  });
  app.get('/limited', { onRequest: rateLimitHook({ max: 2, windowMs: 60_000 }) }, async () => ({ ok: true }));
  return app;
}

const blocked = generateIdentity('operator');
const blockedFp = identityFingerprint(blocked);

describe('createBaseApp errors', () => {
  it('answers a LifeboatError with its status, err_type, message and hint', async () => {
    const res = await testApp().inject({ method: 'GET', url: '/conflict' });
    assert.equal(res.statusCode, 409);
    assert.deepEqual(res.json(), { err_type: 'conflict', message: 'it is there already', hint: 'try another name' });
  });

  it('answers invalid input with 400 invalid_input naming the fields, not their values', async () => {
    const res = await testApp().inject({ method: 'POST', url: '/echo', payload: { name: 'hunter2-secret', n: 'x' } });
    assert.equal(res.statusCode, 400);
    const body = res.json();
    assert.equal(body.err_type, 'invalid_input');
    assert.match(body.message, /\bn\b/);
    assert.doesNotMatch(res.body, /hunter2/);
    const raw = await testApp().inject({ method: 'GET', url: '/raw-zod' });
    assert.equal(raw.statusCode, 400);
    assert.equal(raw.json().err_type, 'invalid_input');
    assert.match(raw.json().message, /\ba\b/);
  });

  it('answers malformed json, a wrong content type, an empty json body and an oversized body', async () => {
    const app = testApp();
    const bad = await app.inject({ method: 'POST', url: '/echo', headers: { 'content-type': 'application/json' }, payload: '{"name": "leak-me' });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().err_type, 'malformed_json');
    assert.doesNotMatch(bad.body, /leak-me/);
    const proto = await app.inject({ method: 'POST', url: '/echo', headers: { 'content-type': 'application/json' }, payload: '{"__proto__": {"x": 1}}' });
    assert.equal(proto.json().err_type, 'malformed_json');
    const empty = await app.inject({ method: 'POST', url: '/echo', headers: { 'content-type': 'application/json' }, payload: '' });
    assert.equal(empty.json().err_type, 'malformed_json');
    const text = await app.inject({ method: 'POST', url: '/echo', headers: { 'content-type': 'text/plain' }, payload: 'hello' });
    assert.equal(text.statusCode, 415);
    assert.equal(text.json().err_type, 'unsupported_media_type');
    const big = await app.inject({ method: 'POST', url: '/echo', payload: { name: 'x'.repeat(70 * 1024), n: 1 } });
    assert.equal(big.statusCode, 413);
    assert.equal(big.json().err_type, 'body_too_large');
    // a route may raise its own limit
    const ok = await app.inject({ method: 'POST', url: '/big', payload: { name: 'x'.repeat(500 * 1024) } });
    assert.equal(ok.statusCode, 200);
    const tooBig = await app.inject({ method: 'POST', url: '/big', payload: { name: 'x'.repeat(1100 * 1024) } });
    assert.equal(tooBig.statusCode, 413);
    // and the app still answers
    assert.equal((await app.inject({ method: 'POST', url: '/echo', payload: { name: 'a', n: 1 } })).statusCode, 200);
  });

  it('answers unknown routes with 404 not_found and unexpected errors with a bare 500', async () => {
    const app = testApp();
    const nf = await app.inject({ method: 'GET', url: '/nope' });
    assert.equal(nf.statusCode, 404);
    assert.equal(nf.json().err_type, 'not_found');
    const boom = await app.inject({ method: 'GET', url: '/boom' });
    assert.equal(boom.statusCode, 500);
    assert.deepEqual(boom.json(), { err_type: 'internal_error', message: 'internal error' });
  });

  it('reports every refusal to onRefusal with the route action before answering', async () => {
    const refusals: Refusal[] = [];
    const app = testApp({ refusals });
    await app.inject({ method: 'POST', url: '/echo', payload: { name: 1 } });
    await app.inject({ method: 'POST', url: '/echo', headers: { 'content-type': 'application/json' }, payload: '{' });
    await app.inject({ method: 'GET', url: '/nope' });
    assert.deepEqual(
      refusals.map((r) => [r.action, r.status, r.code]),
      [
        ['echo', 400, 'invalid_input'],
        ['echo', 400, 'malformed_json'],
        [undefined, 404, 'not_found'],
      ],
    );
  });

  it('turns a refusal that cannot be recorded into a 500', async () => {
    const app = createBaseApp({
      onRefusal: () => {
        throw new Error('disk full');
      },
    });
    app.get('/x', async () => {
      throw new ConflictError('no');
    });
    const res = await app.inject({ method: 'GET', url: '/x' });
    assert.equal(res.statusCode, 500);
    assert.equal(res.json().err_type, 'internal_error');
  });
});

describe('createBaseApp logging', () => {
  it('never logs the authorization header or a body', async () => {
    const logs: string[] = [];
    const app = testApp({ logs });
    const id = generateIdentity('primary');
    const body = JSON.stringify({ name: 'correct horse battery staple', n: 1 });
    const auth = signRequest(id, 'POST', '/echo', utf8.encode(body));
    await app.inject({ method: 'POST', url: '/echo', headers: { authorization: auth, 'content-type': 'application/json' }, payload: body });
    await app.inject({ method: 'POST', url: '/echo', headers: { authorization: auth, 'content-type': 'application/json' }, payload: '{"name": "correct horse' });
    await app.inject({ method: 'GET', url: '/boom', headers: { authorization: auth } });
    const all = logs.join('');
    assert.ok(all.includes('request completed'), 'requests are logged');
    assert.ok(!all.includes('Lifeboat-Sig'), 'no authorization header in logs');
    assert.ok(!all.includes(auth.slice(-40)), 'no signature in logs');
    assert.ok(!all.includes('correct horse'), 'no body in logs');
  });
});

describe('verifySignedRequest', () => {
  const id = generateIdentity('primary');
  const send = (app: ReturnType<typeof testApp>, signer = id, opts: { now?: number; tamper?: boolean; auth?: string } = {}) => {
    const body = JSON.stringify({ hello: 'world' });
    const auth = opts.auth ?? signRequest(signer, 'POST', '/signed', utf8.encode(body), opts.now);
    return app.inject({ method: 'POST', url: '/signed', headers: { authorization: auth, 'content-type': 'application/json' }, payload: opts.tamper ? body.replace('world', 'w0rld') : body });
  };

  it('returns the signer of a good request, once', async () => {
    const app = testApp();
    const auth = signRequest(id, 'POST', '/signed', utf8.encode(JSON.stringify({ hello: 'world' })));
    const ok = await send(app, id, { auth });
    assert.equal(ok.statusCode, 200);
    assert.equal(ok.json().fingerprint, identityFingerprint(id));
    const again = await send(app, id, { auth });
    assert.equal(again.statusCode, 403);
    assert.equal(again.json().err_type, 'replayed_request');
  });

  it('refuses missing, malformed, bad and expired signatures and disallowed signers', async () => {
    const app = testApp();
    const missing = await app.inject({ method: 'POST', url: '/signed', payload: { hello: 'world' } });
    assert.equal(missing.statusCode, 401);
    assert.equal(missing.json().err_type, 'unauthorized');
    const malformed = await send(app, id, { auth: 'Lifeboat-Sig key=nope' });
    assert.equal(malformed.statusCode, 401);
    const tampered = await send(app, id, { tamper: true });
    assert.equal(tampered.statusCode, 401);
    assert.equal(tampered.json().err_type, 'bad_signature');
    const expired = await send(app, id, { now: Date.now() - 5 * 60_000 });
    assert.equal(expired.statusCode, 403);
    assert.equal(expired.json().err_type, 'request_expired');
    const notAllowed = await send(app, blocked);
    assert.equal(notAllowed.json().err_type, 'not_enrolled');
  });
});

describe('rate limiting', () => {
  it('answers 429 rate_limited with retry-after past the limit, per route', async () => {
    const app = testApp();
    assert.equal((await app.inject({ method: 'GET', url: '/limited' })).statusCode, 200);
    assert.equal((await app.inject({ method: 'GET', url: '/limited' })).statusCode, 200);
    const third = await app.inject({ method: 'GET', url: '/limited' });
    assert.equal(third.statusCode, 429);
    assert.equal(third.json().err_type, 'rate_limited');
    assert.ok(Number(third.headers['retry-after']) >= 1);
    assert.equal((await app.inject({ method: 'GET', url: '/conflict' })).statusCode, 409, 'other routes are not affected');
  });

  it('opens a new window after windowMs, flags only the first refusal, and bounds its memory', () => {
    let now = 0;
    const rl = new RateLimiter({ max: 1, windowMs: 1000 }, 3, () => now);
    rl.hit('a');
    const first = (() => {
      try {
        rl.hit('a');
      } catch (e) {
        return e as { firstInWindow: boolean; code: string };
      }
    })();
    assert.equal(first?.code, 'rate_limited');
    assert.equal(first?.firstInWindow, true);
    assert.throws(() => rl.hit('a'), (e: unknown) => e instanceof RateLimitedError && !e.firstInWindow);
    now = 1000;
    rl.hit('a');
    for (const k of ['b', 'c', 'd', 'e']) rl.hit(k); // more keys than maxKeys: old ones are dropped, no throw
  });
});

describe('listen', () => {
  it('parses host:port forms and refuses others', () => {
    assert.deepEqual(parseListenAddress('127.0.0.1:7301'), { host: '127.0.0.1', port: 7301 });
    assert.deepEqual(parseListenAddress('[::1]:0'), { host: '::1', port: 0 });
    assert.deepEqual(parseListenAddress(':8080'), { host: '0.0.0.0', port: 8080 });
    for (const bad of ['7301', 'host', 'host:99999', 'a b:1', 'http://x:1']) {
      assert.throws(() => parseListenAddress(bad), (e: unknown) => isLifeboatError(e, 'invalid_listen'), bad);
    }
  });

  it('listens on port 0 and returns the actual URL; a taken port is listen_failed', async () => {
    const app = createBaseApp();
    app.get('/hi', async () => ({ hi: true }));
    const url = await listen(app, '127.0.0.1:0');
    try {
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.notEqual(url, 'http://127.0.0.1:0');
      const res = await fetch(`${url}/hi`);
      assert.deepEqual(await res.json(), { hi: true });
      const other = createBaseApp();
      await assert.rejects(listen(other, url.slice('http://'.length)), (e: unknown) => isLifeboatError(e, 'listen_failed'));
      await other.close();
    } finally {
      await app.close();
    }
  });
});

it('a path parameter longer than the router allows answers a typed 414, not fastify’s own body', async () => {
  const app = createBaseApp();
  app.get('/v1/things/:id', async () => ({ ok: true }));
  const res = await app.inject({ method: 'GET', url: `/v1/things/${'a'.repeat(300)}` });
  assert.equal(res.statusCode, 414);
  assert.deepEqual(JSON.parse(res.body), { err_type: 'uri_too_long', message: 'a path parameter is too long' });
  const ok = await app.inject({ method: 'GET', url: '/v1/things/abc' });
  assert.equal(ok.statusCode, 200, 'the server keeps answering');
  await app.close();
});

/** Writes `data` on a fresh connection to `url` and resolves to everything the server sent before closing. */
function rawRequest(url: string, data: string | Buffer): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let out = '';
    socket.on('data', (d: Buffer) => (out += d.toString('latin1')));
    socket.on('close', () => resolve(out));
    socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' || err.code === 'EPIPE' ? resolve(out) : reject(err)));
    socket.write(data);
  });
}

/** The status and JSON body of a raw HTTP answer. */
function parseRawAnswer(raw: string): { status: number; body: unknown } {
  const m = /^HTTP\/1\.1 (\d{3}) [^\r]*\r\n([\s\S]*?)\r\n\r\n([\s\S]*)$/.exec(raw);
  assert.ok(m, `not an http answer: ${JSON.stringify(raw.slice(0, 200))}`);
  assert.match(m[2]!, /^content-type: application\/json/im);
  return { status: Number(m[1]), body: JSON.parse(m[3]!) };
}

describe('requests the http parser rejects answer {err_type, message} on every server', () => {
  const servers: { name: string; url: string; close: () => Promise<void>; app: FastifyInstance }[] = [];
  before(async () => {
    const holder = await holderFixture();
    servers.push({ name: 'holder', url: await listen(holder.app, '127.0.0.1:0'), close: () => holder.close(), app: holder.app });
    const nodes = await startInProcessNodes(1);
    servers.push({ name: 'key node', url: await listen(nodes.nodes[0]!.app, '127.0.0.1:0'), close: () => nodes.close(), app: nodes.nodes[0]!.app });
    await opaque.ready;
    const store = await openBackupStore(`sqlite:${trackedTempDir('lifeboat-http-base-')}/backup.sqlite`);
    const backup = createBackupApp({ service: await BackupService.create({ store, serverSetup: opaque.server.createSetup() }) });
    servers.push({ name: 'backup service', url: await listen(backup, '127.0.0.1:0'), close: async () => (await backup.close(), await store.close()), app: backup });
  });
  after(async () => {
    for (const s of servers) await s.close();
  });

  const cases: { what: string; request: string; status: number; errType: string }[] = [
    { what: 'oversized headers', request: `GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(20_000)}\r\n\r\n`, status: 431, errType: 'headers_too_large' },
    { what: 'an oversized request line', request: `GET /${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, status: 431, errType: 'headers_too_large' },
    { what: 'a bad request line', request: 'NOT HTTP AT ALL\r\n\r\n', status: 400, errType: 'malformed_request' },
    { what: 'a bad method', request: 'G@T /v1/health HTTP/1.1\r\nHost: x\r\n\r\n', status: 400, errType: 'malformed_request' },
    { what: 'bad header bytes', request: 'GET /v1/health HTTP/1.1\r\nHost: x\r\nX-B\x01d: 1\r\n\r\n', status: 400, errType: 'malformed_request' },
    { what: 'a bad content-length', request: 'POST /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n', status: 400, errType: 'malformed_request' },
  ];

  it('every server bounds a whole request in time (DEFAULT_REQUEST_TIMEOUT_MS), where fastify sets no bound', () => {
    for (const s of servers) assert.equal((s.app.server as { requestTimeout?: number }).requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS, s.name);
  });

  it('oversized headers, bad request lines and bad header bytes: 431 or 400 with an err_type, and the server keeps answering', async () => {
    for (const s of servers) {
      for (const c of cases) {
        const a = parseRawAnswer(await rawRequest(s.url, c.request));
        assert.equal(a.status, c.status, `${s.name}: ${c.what}`);
        assert.deepEqual(Object.keys(a.body as object).sort(), ['err_type', 'message'], `${s.name}: ${c.what}`);
        assert.equal((a.body as { err_type: string }).err_type, c.errType, `${s.name}: ${c.what}`);
      }
      const health = await fetch(`${s.url}/v1/health`);
      assert.ok(health.status === 200 || health.status === 401 || health.status === 404, `${s.name} still answers (${health.status})`);
    }
  });
});

describe('a request that stops short is answered 408 and closed, on every server', () => {
  it('a body shorter than its Content-Length: 408 request_timeout once the request timeout passes, the connection closed', async () => {
    const app = createBaseApp({ requestTimeoutMs: 400 });
    app.post('/big', { bodyLimit: 1024 * 1024 }, async (req) => ({ len: (req.rawBody ?? Buffer.alloc(0)).length }));
    const url = await listen(app, '127.0.0.1:0');
    try {
      const started = Date.now();
      const raw = await rawRequest(url, 'POST /big HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":');
      const a = parseRawAnswer(raw);
      assert.equal(a.status, 408);
      assert.equal((a.body as { err_type: string }).err_type, 'request_timeout');
      assert.ok(Date.now() - started < 5000, `closed after ${Date.now() - started} ms`);
    } finally {
      await app.close();
    }
  });
});

describe('trusting proxies', () => {
  it('parses a hop count or a list of proxy addresses, and nothing else', () => {
    assert.equal(parseTrustProxy('1'), 1);
    assert.equal(parseTrustProxy('2'), 2);
    assert.deepEqual(parseTrustProxy('127.0.0.1'), ['127.0.0.1']);
    assert.deepEqual(parseTrustProxy('10.0.0.0/8, loopback,::1,fd00::/8'), ['10.0.0.0/8', 'loopback', '::1', 'fd00::/8']);
    for (const bad of ['0', '17', 'true', 'all', '*', '', '10.0.0.0/33', '::1/129', 'example.net', '1.2.3.4,']) {
      assert.throws(() => parseTrustProxy(bad), (e: unknown) => isLifeboatError(e, 'invalid_trust_proxy'), bad);
    }
  });

  /** An app whose /limited allows 2 requests a minute per client address, trusting `trustProxy`. */
  function limitedApp(trustProxy: TrustProxy) {
    const app = createBaseApp({ trustProxy });
    app.get('/limited', { onRequest: rateLimitHook({ max: 2, windowMs: 60_000 }) }, async (req) => ({ ip: req.ip }));
    return app;
  }
  // What nginx's `$proxy_add_x_forwarded_for` sends: the client's header, then the address it saw.
  const viaProxy = (app: ReturnType<typeof limitedApp>, spoofed: string, proxy = '127.0.0.1') =>
    app.inject({ method: 'GET', url: '/limited', remoteAddress: proxy, headers: { 'x-forwarded-for': `${spoofed}, 203.0.113.7` } });

  for (const [what, trust] of [
    ['one trusted hop', 1],
    ['the proxy by address', ['127.0.0.1']],
  ] as const) {
    it(`${what}: the client is the address the proxy saw; a spoofed X-Forwarded-For does not reset the limit`, async () => {
      const app = limitedApp(trust as TrustProxy);
      for (let i = 0; i < 2; i++) {
        const r = await viaProxy(app, `198.51.100.${i}`);
        assert.equal(r.statusCode, 200);
        assert.equal(r.json().ip, '203.0.113.7');
      }
      const third = await viaProxy(app, '198.51.100.99');
      assert.equal(third.statusCode, 429, 'a new spoofed address is the same client');
      assert.equal(third.json().err_type, 'rate_limited');
    });
  }

  it('by address: X-Forwarded-For from a peer that is not the proxy is ignored; by default nothing is trusted', async () => {
    const app = limitedApp(['127.0.0.1']);
    const direct = await app.inject({ method: 'GET', url: '/limited', remoteAddress: '192.0.2.1', headers: { 'x-forwarded-for': '198.51.100.1' } });
    assert.equal(direct.json().ip, '192.0.2.1');
    const plain = limitedApp(false);
    const r = await plain.inject({ method: 'GET', url: '/limited', remoteAddress: '192.0.2.1', headers: { 'x-forwarded-for': '198.51.100.1' } });
    assert.equal(r.json().ip, '192.0.2.1');
  });
});
