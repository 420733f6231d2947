/**
 * The backup service (src/backup/{service,streams,server,client}.ts) by fastify inject over a real
 * SQLite store in a temp dir, with BackupClient on a fetch that goes through inject. OPAQUE's key
 * stretching is lowered (the client's test-only option) so each login takes milliseconds. The last
 * block runs a smoke path against a real PostgreSQL.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import * as opaque from '@serenity-kit/opaque';
import type { FastifyInstance } from 'fastify';
import { randomBytes } from '../src/crypto/random.js';
import { isLifeboatError, type LifeboatError } from '../src/errors.js';
import { BackupClient, type CompactionInfo, type KeyStretching } from '../src/backup/client.js';
import { encodeBase64 } from '../src/backup/api.js';
import { hashBlob, sealCompaction, sealEntry, ZERO_HASH } from '../src/backup/format.js';
import { type BackupRateLimits, createBackupApp } from '../src/backup/server.js';
import { BackupService } from '../src/backup/service.js';
import { openBackupStore } from '../src/backup/store/index.js';
import type { BackupStore } from '../src/backup/store/types.js';
import { utf8 } from '../src/util/bytes.js';
import { injectFetch } from './helpers/holder.js';
import { postgresSkipReason, startTestPostgres, type TestPostgres } from './helpers/postgres.js';
import { trackedTempDir } from './helpers/tmp.js';

const FAST: KeyStretching = { 'argon2id-custom': { memory: 8, iterations: 1, parallelism: 1 } };
const URL_BASE = 'http://backup.test';
const HIGH: Partial<BackupRateLimits> = {
  loginPerAccount: { max: 1000, windowMs: 60_000 },
  loginPerAddressAndAccount: { max: 1000, windowMs: 60_000 },
  loginPerAddress: { max: 1000, windowMs: 60_000 },
  authPerAddress: { max: 1000, windowMs: 60_000 },
  sessionPerAddress: { max: 1000, windowMs: 60_000 },
};

interface Fixture {
  store: BackupStore;
  service: BackupService;
  app: FastifyInstance;
  clock: { offsetMs: number };
  logs: string[];
  client(): BackupClient;
  /** An invited account; returns the invite. */
  invite(name: string): Promise<string>;
  /** A registered account with a fresh backup key and a client in session. */
  account(name: string, password?: string): Promise<{ client: BackupClient; backupKey: Uint8Array; invite: string; password: string }>;
  close(): Promise<void>;
}

async function fixture(opts: { storeUrl?: string; rateLimits?: Partial<BackupRateLimits> } = {}): Promise<Fixture> {
  const store = await openBackupStore(opts.storeUrl ?? `sqlite:${trackedTempDir('lifeboat-backup-')}/backup.sqlite`);
  await opaque.ready;
  const clock = { offsetMs: 0 };
  const service = await BackupService.create({ store, serverSetup: opaque.server.createSetup(), now: () => Date.now() + clock.offsetMs });
  const logs: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(chunk.toString());
      done();
    },
  });
  const app = createBackupApp({ service, logger: { level: 'trace', stream }, rateLimits: opts.rateLimits ?? HIGH });
  await app.ready();
  const f: Fixture = {
    store,
    service,
    app,
    clock,
    logs,
    client: () => new BackupClient({ url: URL_BASE, fetch: injectFetch(app), keyStretching: FAST }),
    invite: async (name) => (await service.createAccount(name)).invite,
    async account(name, password = `pw of ${name}`) {
      const invite = await f.invite(name);
      const backupKey = randomBytes(32);
      const client = f.client();
      await client.register(name, invite, password, backupKey);
      await client.session(name, backupKey);
      return { client, backupKey, invite, password };
    },
    async close() {
      await app.close();
      await store.close();
    },
  };
  return f;
}

/** Rejects with a LifeboatError of `code` (and `status` when given). */
async function rejectsWith(p: Promise<unknown>, code: string, status?: number): Promise<LifeboatError> {
  let caught: unknown;
  await assert.rejects(p, (err) => {
    caught = err;
    return true;
  });
  assert.ok(isLifeboatError(caught, code), `expected ${code}, got ${(caught as LifeboatError).code}: ${(caught as Error).message}`);
  if (status !== undefined) assert.equal((caught as LifeboatError).status, status);
  return caught as LifeboatError;
}

async function post(app: FastifyInstance, url: string, body: unknown, token?: string) {
  const res = await app.inject({ method: 'POST', url, payload: body as object, headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.statusCode, json: res.json() as Record<string, unknown>, headers: res.headers };
}

/** A chain of `n` sealed entries of `stream` starting at seq 1. */
function chain(backupKey: Uint8Array, stream: string, n: number, from: { seq: number; prev: Uint8Array } = { seq: 1, prev: ZERO_HASH }): Uint8Array[] {
  const out: Uint8Array[] = [];
  let prev = from.prev;
  for (let i = 0; i < n; i++) {
    const e = sealEntry(backupKey, { stream, seq: from.seq + i, prev }, utf8.encode(`change ${from.seq + i}`));
    out.push(e);
    prev = hashBlob(e);
  }
  return out;
}

/** A backup token for a registered account (the raw route, for tests that call the API directly). */
async function backupToken(f: Fixture, account: string, backupKey: Uint8Array): Promise<string> {
  return f.client().session(account, backupKey);
}

describe('backup service: registration and login', () => {
  let f: Fixture;
  before(async () => (f = await fixture()));
  after(() => f.close());

  it('registers with the invite, logs in and gets the same backup key back', async () => {
    const invite = await f.invite('alice');
    assert.match(invite, /^lbi_[A-Za-z0-9_-]{43}$/);
    const backupKey = randomBytes(32);
    const c = f.client();
    await c.register('alice', invite, 'correct horse', backupKey);
    const r = await c.login('alice', 'correct horse');
    assert.deepEqual(r.backupKey, backupKey);
    assert.match(r.loginToken, /^lbt_[A-Za-z0-9_-]{43}$/);
    const acc = await f.store.getAccount('alice');
    assert.equal(acc?.inviteHash, null);
    assert.ok(acc?.registration);
  });

  it('stretchApart: the production stretching (Argon2id, 64 MiB) runs on a worker thread, this process keeps none of its memory, a wrong password is still login_failed', async () => {
    const invite = await f.invite('erin');
    const backupKey = randomBytes(32);
    // The OPAQUE module's WebAssembly memory never shrinks: stretched on this thread, it would hold 64 MiB and more from here on.
    const external = () => process.memoryUsage().external;
    const before = external();
    const c = new BackupClient({ url: URL_BASE, fetch: injectFetch(f.app), stretchApart: true });
    await c.register('erin', invite, 'a production password', backupKey);
    assert.deepEqual((await c.login('erin', 'a production password')).backupKey, backupKey);
    await rejectsWith(c.login('erin', 'not the password'), 'login_failed', 401);
    const grown = external() - before;
    assert.ok(grown < 32 * 2 ** 20, `external memory grew by ${(grown / 2 ** 20).toFixed(0)} MiB`);
  });

  it('refuses a registration without an invite, with a wrong one, a used one, or for an unknown account', async () => {
    const c = f.client();
    const missing = await post(f.app, '/v1/accounts/bob/register/start', { registration_request: encodeBase64(new Uint8Array(32)) });
    assert.equal(missing.status, 400);
    assert.equal(missing.json.err_type, 'invalid_input');
    await f.invite('bob');
    const wrong = `lbi_${'A'.repeat(43)}`;
    await rejectsWith(c.register('bob', wrong, 'pw', randomBytes(32)), 'invalid_invite', 403);
    await rejectsWith(c.register('nobody', wrong, 'pw', randomBytes(32)), 'invalid_invite', 403);
    const invite = await f.invite('carol');
    await c.register('carol', invite, 'pw', randomBytes(32));
    await rejectsWith(c.register('carol', invite, 'other', randomBytes(32)), 'invalid_invite', 403);
    // bob's invite still works after the failed attempts
    assert.equal((await f.store.getAccount('bob'))?.registration, null);
  });

  it('refuses a wrapped key that names another account or another auth key', async () => {
    const invite = await f.invite('dave');
    const start = opaque.client.startRegistration({ password: 'pw' });
    const toStd = (s: string) => encodeBase64(Buffer.from(s, 'base64url'));
    const a = await post(f.app, '/v1/accounts/dave/register/start', { invite, registration_request: toStd(start.registrationRequest) });
    assert.equal(a.status, 200);
    const done = opaque.client.finishRegistration({
      clientRegistrationState: start.clientRegistrationState,
      registrationResponse: Buffer.from(a.json.registration_response as string, 'base64').toString('base64url'),
      password: 'pw',
      keyStretching: FAST,
    });
    const exportKey = new Uint8Array(Buffer.from(done.exportKey, 'base64url'));
    const backupKey = randomBytes(32);
    const { backupAuthKey, wrapBackupKey } = await import('../src/backup/format.js');
    const body = (wrapped: Uint8Array, authPub: Uint8Array) => ({ invite, record: toStd(done.registrationRecord), wrapped_key: encodeBase64(wrapped), auth_public_key: encodeBase64(authPub) });
    const other = await post(f.app, '/v1/accounts/dave/register/finish', body(wrapBackupKey(exportKey, 'eve', backupKey), backupAuthKey(backupKey).publicKey));
    assert.equal(other.status, 400);
    const otherAuth = await post(f.app, '/v1/accounts/dave/register/finish', body(wrapBackupKey(exportKey, 'dave', backupKey), backupAuthKey(randomBytes(32)).publicKey));
    assert.equal(otherAuth.status, 400);
    const badRecord = await post(f.app, '/v1/accounts/dave/register/finish', { ...body(wrapBackupKey(exportKey, 'dave', backupKey), backupAuthKey(backupKey).publicKey), record: encodeBase64(new Uint8Array(10)) });
    assert.equal(badRecord.status, 400);
    const ok = await post(f.app, '/v1/accounts/dave/register/finish', body(wrapBackupKey(exportKey, 'dave', backupKey), backupAuthKey(backupKey).publicKey));
    assert.equal(ok.status, 200);
  });

  it('answers a wrong password, an unknown account and an unregistered one alike', async () => {
    const c = f.client();
    const invite = await f.invite('frank');
    await c.register('frank', invite, 'right', randomBytes(32));
    await f.invite('grace'); // invited, never registered
    const errs = [await rejectsWith(c.login('frank', 'wrong'), 'login_failed', 401), await rejectsWith(c.login('nobody', 'x'), 'login_failed', 401), await rejectsWith(c.login('grace', 'x'), 'login_failed', 401)];
    assert.equal(new Set(errs.map((e) => e.message)).size, 1);
    // The server's answer to start has the same shape for all three.
    const lengths = new Set<number>();
    for (const name of ['frank', 'nobody', 'grace']) {
      const r = await post(f.app, `/v1/accounts/${name}/login/start`, { start_login_request: encodeBase64(Buffer.from(opaque.client.startLogin({ password: 'x' }).startLoginRequest, 'base64url')) });
      assert.equal(r.status, 200);
      lengths.add((r.json.login_response as string).length);
    }
    assert.equal(lengths.size, 1);
  });

  it('finish refuses a forged request, a used login and an expired one with login_failed', async () => {
    const start = opaque.client.startLogin({ password: 'right' });
    const toStd = (s: string) => encodeBase64(Buffer.from(s, 'base64url'));
    const begin = async () => (await post(f.app, '/v1/accounts/frank/login/start', { start_login_request: toStd(start.startLoginRequest) })).json;
    const forged = await begin();
    const r1 = await post(f.app, '/v1/accounts/frank/login/finish', { login_id: forged.login_id, finish_login_request: encodeBase64(randomBytes(64)) });
    assert.deepEqual([r1.status, r1.json.err_type], [401, 'login_failed']);
    const real = async () => {
      const s = opaque.client.startLogin({ password: 'right' });
      const a = (await post(f.app, '/v1/accounts/frank/login/start', { start_login_request: toStd(s.startLoginRequest) })).json;
      const done = opaque.client.finishLogin({ clientLoginState: s.clientLoginState, loginResponse: Buffer.from(a.login_response as string, 'base64').toString('base64url'), password: 'right', keyStretching: FAST });
      assert.ok(done);
      return { login_id: a.login_id, finish_login_request: toStd(done.finishLoginRequest) };
    };
    const ok = await real();
    assert.equal((await post(f.app, '/v1/accounts/frank/login/finish', ok)).status, 200);
    const reused = await post(f.app, '/v1/accounts/frank/login/finish', ok);
    assert.deepEqual([reused.status, reused.json.err_type], [401, 'login_failed']);
    const late = await real();
    f.clock.offsetMs = 61_000;
    try {
      const r = await post(f.app, '/v1/accounts/frank/login/finish', late);
      assert.deepEqual([r.status, r.json.err_type], [401, 'login_failed']);
    } finally {
      f.clock.offsetMs = 0;
    }
    const other = await real();
    const wrongAccount = await post(f.app, '/v1/accounts/alice/login/finish', other);
    assert.deepEqual([wrongAccount.status, wrongAccount.json.err_type], [401, 'login_failed']);
  });

  it('changes the password: the old one stops working, the new one works, the backup key stays, other login tokens are revoked', async () => {
    const { client, backupKey, password } = await f.account('henry');
    const before = await client.login('henry', password);
    await client.changePassword('henry', password, 'new password');
    await rejectsWith(client.login('henry', password), 'login_failed', 401);
    const after = await client.login('henry', 'new password');
    assert.deepEqual(after.backupKey, backupKey);
    const start = opaque.client.startRegistration({ password: 'third' });
    const r = await post(f.app, '/v1/accounts/henry/password/start', { registration_request: encodeBase64(Buffer.from(start.registrationRequest, 'base64url')) }, before.loginToken);
    assert.deepEqual([r.status, r.json.err_type], [401, 'unauthorized']);
    // the backup key still opens the streams: the auth key did not change
    await client.session('henry', backupKey);
    assert.deepEqual(await client.listStreams(), []);
  });

  it('password change refuses another auth key and needs a login token of this account', async () => {
    const { client, password, backupKey } = await f.account('ivan');
    const { loginToken } = await client.login('ivan', password);
    const start = opaque.client.startRegistration({ password: 'x' });
    const body = { registration_request: encodeBase64(Buffer.from(start.registrationRequest, 'base64url')) };
    const bt = await backupToken(f, 'ivan', backupKey);
    assert.deepEqual((await post(f.app, '/v1/accounts/ivan/password/start', body, bt)).json.err_type, 'forbidden');
    assert.deepEqual((await post(f.app, '/v1/accounts/alice/password/start', body, loginToken)).json.err_type, 'forbidden');
    assert.deepEqual((await post(f.app, '/v1/accounts/ivan/password/start', body)).json.err_type, 'unauthorized');
    const a = await post(f.app, '/v1/accounts/ivan/password/start', body, loginToken);
    const done = opaque.client.finishRegistration({
      clientRegistrationState: start.clientRegistrationState,
      registrationResponse: Buffer.from(a.json.registration_response as string, 'base64').toString('base64url'),
      password: 'x',
      keyStretching: FAST,
    });
    const { wrapBackupKey } = await import('../src/backup/format.js');
    const wrapped = wrapBackupKey(new Uint8Array(Buffer.from(done.exportKey, 'base64url')), 'ivan', randomBytes(32));
    const r = await post(f.app, '/v1/accounts/ivan/password/finish', { record: encodeBase64(Buffer.from(done.registrationRecord, 'base64url')), wrapped_key: encodeBase64(wrapped) }, loginToken);
    assert.deepEqual([r.status, r.json.err_type], [400, 'invalid_input']);
    assert.deepEqual((await client.login('ivan', password)).backupKey, backupKey);
  });
});

describe('backup service: challenge and session', () => {
  let f: Fixture;
  before(async () => (f = await fixture()));
  after(() => f.close());

  const session = (challenge: string, signature: Uint8Array, account = 'alice') =>
    post(f.app, `/v1/accounts/${account}/session`, { challenge, signature: encodeBase64(signature) });

  it('issues a backup token for a proof with the auth key; refuses a wrong key, a reused, an expired or an unknown challenge', async () => {
    const { backupKey } = await f.account('alice');
    const { backupAuthKey, SESSION_CONTEXT, sessionProofMessage } = await import('../src/backup/format.js');
    const { signWithContext } = await import('../src/crypto/sign.js');
    const sign = (key: Uint8Array, challengeB64: string, account = 'alice') =>
      signWithContext(SESSION_CONTEXT, sessionProofMessage(account, new Uint8Array(Buffer.from(challengeB64, 'base64'))), backupAuthKey(key).secretKey);
    const challenge = async (account = 'alice') => (await post(f.app, `/v1/accounts/${account}/challenge`, {})).json.challenge as string;

    const c1 = await challenge();
    const ok = await session(c1, sign(backupKey, c1));
    assert.equal(ok.status, 200);
    assert.match(ok.json.backup_token as string, /^lbt_/);
    const reused = await session(c1, sign(backupKey, c1));
    assert.deepEqual([reused.status, reused.json.err_type], [401, 'auth_failed']);

    const c2 = await challenge();
    const wrong = await session(c2, sign(randomBytes(32), c2));
    assert.deepEqual([wrong.status, wrong.json.err_type], [401, 'auth_failed']);
    // the challenge was used up by the failed attempt
    assert.equal((await session(c2, sign(backupKey, c2))).json.err_type, 'auth_failed');

    const c3 = await challenge();
    f.clock.offsetMs = 61_000;
    try {
      assert.equal((await session(c3, sign(backupKey, c3))).json.err_type, 'auth_failed');
    } finally {
      f.clock.offsetMs = 0;
    }
    assert.equal((await session(encodeBase64(randomBytes(32)), sign(backupKey, encodeBase64(randomBytes(32))))).json.err_type, 'auth_failed');
    // a challenge for one account does not serve another
    const c4 = await challenge('alice');
    assert.equal((await session(c4, sign(backupKey, c4, 'bob'), 'bob')).json.err_type, 'auth_failed');
    // challenges are issued for any name; the session still fails for an unknown account
    const c5 = await challenge('nobody');
    assert.equal((await session(c5, sign(backupKey, c5, 'nobody'), 'nobody')).json.err_type, 'auth_failed');
    await rejectsWith(f.client().session('nobody', backupKey), 'auth_failed', 401);
  });

  it('a backup token expires after 15 minutes; the client renews its session', async () => {
    const { client } = await f.account('bob');
    const token = await client.session('bob', (await f.account('bob2')).backupKey).catch(() => 'x');
    assert.equal(token, 'x'); // bob2's key is not bob's
    const { backupKey } = await f.account('carl');
    const t = await backupToken(f, 'carl', backupKey);
    const get = () => f.app.inject({ method: 'GET', url: '/v1/accounts/carl/streams', headers: { authorization: `Bearer ${t}` } });
    assert.equal((await get()).statusCode, 200);
    f.clock.offsetMs = 15 * 60_000 + 1;
    try {
      const r = await get();
      assert.deepEqual([r.statusCode, r.json().err_type], [401, 'token_expired']);
      const c = f.client();
      await c.session('carl', backupKey);
      assert.deepEqual(await c.listStreams(), []);
    } finally {
      f.clock.offsetMs = 0;
    }
  });

  it('deleteExpired purges logins, challenges and tokens past their time', async () => {
    await post(f.app, '/v1/accounts/zed/challenge', {});
    f.clock.offsetMs = 16 * 60_000;
    try {
      const r = await f.service.deleteExpired();
      assert.ok(r.ephemerals >= 1);
      assert.ok(r.tokens >= 1);
    } finally {
      f.clock.offsetMs = 0;
    }
  });
});

describe('backup service: streams', () => {
  let f: Fixture;
  let alice: Awaited<ReturnType<Fixture['account']>>;
  const S = 'node-0123456789abcdef';
  let entries: Uint8Array[];
  before(async () => {
    f = await fixture();
    alice = await f.account('alice');
    entries = chain(alice.backupKey, S, 8);
  });
  after(() => f.close());

  it('appends, answers idempotently for entries it holds, and lists them', async () => {
    const c = alice.client;
    assert.equal(await c.getStream(S), undefined);
    const h3 = await c.appendEntries(S, entries.slice(0, 3));
    assert.equal(h3.headSeq, 3);
    assert.deepEqual(h3.headHash, hashBlob(entries[2]!));
    assert.equal((await c.appendEntries(S, entries.slice(0, 3))).headSeq, 3);
    assert.equal((await c.appendEntries(S, entries.slice(1, 5))).headSeq, 5);
    const s = await c.getStream(S);
    assert.deepEqual([s?.headSeq, s?.firstSeq, s?.compaction], [5, 1, null]);
    assert.deepEqual((await c.listStreams()).map((x) => [x.stream, x.headSeq]), [[S, 5]]);
    const listed = await c.listEntries(S, 1, 2);
    assert.deepEqual(
      listed.map((e) => e.seq),
      [2, 3],
    );
    assert.deepEqual(listed[0]!.bytes, entries[1]);
    assert.deepEqual(await c.listEntries(S, 5), []);
    await rejectsWith(c.listEntries('node-none', 0), 'stream_not_found', 404);
  });

  it('GET entries answers binary frames to a client that asks for them, JSON otherwise; the client reads both forms', async () => {
    const token = await backupToken(f, 'alice', alice.backupKey);
    const get = (accept?: string, query = 'after=1&limit=3') =>
      f.app.inject({ method: 'GET', url: `/v1/accounts/alice/streams/${S}/entries?${query}`, headers: { authorization: `Bearer ${token}`, ...(accept ? { accept } : {}) } });
    const bin = await get('application/octet-stream');
    assert.equal(bin.statusCode, 200);
    assert.match(String(bin.headers['content-type']), /^application\/octet-stream/);
    // u64 head_seq, then u64 seq ‖ u32 len ‖ entry for entries 2 to 4, byte for byte (docs/format.md).
    const u = (n: number, bytes: 4 | 8) => {
      const b = Buffer.alloc(bytes);
      if (bytes === 8) b.writeBigUInt64BE(BigInt(n));
      else b.writeUInt32BE(n);
      return b;
    };
    const frames = Buffer.concat([u(5, 8), ...[2, 3, 4].flatMap((seq) => [u(seq, 8), u(entries[seq - 1]!.length, 4), Buffer.from(entries[seq - 1]!)])]);
    assert.deepEqual(bin.rawPayload, frames);
    for (const accept of [undefined, 'application/json', 'application/json, application/octet-stream', '*/*']) {
      const r = await get(accept);
      assert.match(String(r.headers['content-type']), /^application\/json/, String(accept));
      assert.deepEqual((r.json() as { entries: { seq: number }[] }).entries.map((e) => e.seq), [2, 3, 4]);
    }
    // Refusals stay JSON documents whatever the client accepts.
    const bad = await get('application/octet-stream', 'after=-1');
    assert.deepEqual([bad.statusCode, (bad.json() as { err_type: string }).err_type], [400, 'invalid_input']);
    // The client asks for frames; it still reads the JSON of a service from before them.
    const viaJson = alice.client.http.entryListing(new Uint8Array((await get()).rawPayload), 1, 3);
    const viaFrames = alice.client.http.entryListing(new Uint8Array(bin.rawPayload), 1, 3);
    assert.deepEqual(viaFrames, viaJson);
    assert.deepEqual(viaFrames.map((e) => [e.seq, e.hash]), [2, 3, 4].map((seq) => [seq, hashBlob(entries[seq - 1]!)]));
    assert.deepEqual((await alice.client.listEntries(S, 1, 3)).map((e) => e.bytes), entries.slice(1, 4));
  });

  it('refuses a gap, a conflicting entry, a broken chain, another stream, a tampered header, a non-consecutive batch', async () => {
    const c = alice.client;
    await rejectsWith(c.appendEntries(S, [entries[6]!]), 'sequence_gap', 409);
    const resealed = sealEntry(alice.backupKey, { stream: S, seq: 2, prev: hashBlob(entries[0]!) }, utf8.encode('change 2'));
    await rejectsWith(c.appendEntries(S, [resealed]), 'entry_conflict', 409);
    const badPrev = sealEntry(alice.backupKey, { stream: S, seq: 6, prev: randomBytes(32) }, utf8.encode('x'));
    await rejectsWith(c.appendEntries(S, [badPrev]), 'chain_mismatch', 409);
    const other = chain(alice.backupKey, 'node-other', 1);
    await rejectsWith(c.appendEntries(S, other), 'entry_misplaced', 400);
    const badMagic = entries[5]!.slice();
    badMagic[0] = badMagic[0]! ^ 1;
    await rejectsWith(c.appendEntries(S, [badMagic]), 'bad_magic', 400);
    const badLen = entries[5]!.slice();
    badLen[7] = 0xff; // the stream name's length prefix in the header
    const e = await rejectsWith(c.appendEntries(S, [badLen]), 'malformed', 400);
    assert.match(e.message, /entries\[0\]/);
    const truncated = entries[5]!.slice(0, 20);
    await rejectsWith(c.appendEntries(S, [truncated]), 'truncated', 400);
    await rejectsWith(c.appendEntries(S, [entries[5]!, entries[7]!]), 'invalid_input', 400);
    // a good batch after the refusals, and nothing of them was written
    const head = await c.appendEntries(S, entries.slice(5, 8));
    assert.equal(head.headSeq, 8);
    assert.deepEqual(
      (await c.listEntries(S, 0, 100)).map((x) => x.seq),
      [1, 2, 3, 4, 5, 6, 7, 8],
    );
  });
});

describe('backup service: compactions', () => {
  let f: Fixture;
  let a: Awaited<ReturnType<Fixture['account']>>;
  const S = 'node-aaaaaaaaaaaaaaaa';
  let entries: Uint8Array[];
  let first: CompactionInfo | undefined;
  const compaction = (seq: number, head = hashBlob(entries[seq - 1]!), stream = S, size = 1000) => sealCompaction(a.backupKey, { stream, seq, head }, randomBytes(size));
  before(async () => {
    f = await fixture();
    a = await f.account('alice');
    entries = chain(a.backupKey, S, 10);
    await a.client.appendEntries(S, entries.slice(0, 6));
  });
  after(() => f.close());

  it('uploads in chunks, completes, serves it back; later compactions prune what no restore needs', async () => {
    const c = a.client;
    const c3 = compaction(3);
    const done = await c.uploadCompaction(S, 3, hashBlob(c3), c3, 100);
    assert.deepEqual([done.seq, done.state, done.chunkCount, done.size], [3, 'complete', Math.ceil(c3.length / 100), c3.length]);
    const cur = await c.currentCompaction(S);
    assert.equal(cur?.id, done.id);
    assert.deepEqual(await c.downloadCompaction(S, cur!), c3);
    assert.equal((await c.getStream(S))?.compaction?.id, done.id);
    // the first compaction prunes nothing (a restore in flight may still read from 1)
    assert.equal((await c.getStream(S))?.firstSeq, 1);
    const c5 = compaction(5);
    await c.uploadCompaction(S, 5, hashBlob(c5), c5);
    const s = await c.getStream(S);
    assert.deepEqual([s?.firstSeq, s?.compaction?.seq], [4, 5]);
    assert.deepEqual(
      (await c.listEntries(S, 0)).map((e) => e.seq),
      [4, 5, 6],
    );
    await rejectsWith(c.appendEntries(S, [entries[1]!]), 'entry_pruned', 409);
    // the previous compaction stays downloadable
    assert.deepEqual(await c.downloadCompaction(S, done), c3);
    first = done;
  });

  it('refuses a stale compaction, one beyond the head, and checks hash, size, count, placement and head at completion', async () => {
    const c = a.client;
    const c4 = compaction(4);
    await rejectsWith(c.uploadCompaction(S, 4, hashBlob(c4), c4), 'compaction_stale', 409);
    const c9 = compaction(6, randomBytes(32));
    await rejectsWith(c.uploadCompaction(S, 9, hashBlob(c9), c9), 'compaction_beyond_head', 409);
    const c6 = compaction(6);
    await rejectsWith(c.uploadCompaction(S, 6, randomBytes(32), c6), 'compaction_hash_mismatch', 409);
    await rejectsWith(c.uploadCompaction(S, 6, hashBlob(compaction(6, randomBytes(32))), compaction(6, randomBytes(32))), 'compaction_hash_mismatch', 409);
    const wrongHead = compaction(6, randomBytes(32));
    await rejectsWith(c.uploadCompaction(S, 6, hashBlob(wrongHead), wrongHead), 'compaction_head_mismatch', 409);
    const wrongStream = compaction(6, hashBlob(entries[5]!), 'node-other');
    await rejectsWith(c.uploadCompaction(S, 6, hashBlob(wrongStream), wrongStream), 'compaction_misplaced', 409);
    const wrongSeq = sealCompaction(a.backupKey, { stream: S, seq: 5, head: hashBlob(entries[4]!) }, randomBytes(10));
    await rejectsWith(c.uploadCompaction(S, 6, hashBlob(wrongSeq), wrongSeq), 'compaction_misplaced', 409);
    const notCompaction = entries[5]!;
    await rejectsWith(c.uploadCompaction(S, 6, hashBlob(notCompaction), notCompaction), 'bad_magic', 400);

    // a missing chunk and a wrong size, by the raw routes
    const token = await backupToken(f, 'alice', a.backupKey);
    const base = `/v1/accounts/alice/streams/${S}/compactions`;
    const begin = await post(f.app, base, { seq: 6, hash: encodeBase64(hashBlob(c6)), size: c6.length, chunk_count: 2 }, token);
    assert.equal(begin.status, 201);
    const id = begin.json.id as string;
    const put = (n: number, bytes: Uint8Array) =>
      f.app.inject({ method: 'PUT', url: `${base}/${id}/chunks/${n}`, payload: Buffer.from(bytes), headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' } });
    assert.equal((await put(0, c6.subarray(0, 500))).statusCode, 200);
    assert.equal((await put(2, c6.subarray(0, 10))).json().err_type, 'invalid_input');
    assert.equal((await post(f.app, `${base}/${id}/complete`, undefined, token)).json.err_type, 'compaction_incomplete');
    assert.equal((await put(1, c6.subarray(500, c6.length - 1))).statusCode, 200);
    assert.equal((await post(f.app, `${base}/${id}/complete`, undefined, token)).json.err_type, 'compaction_size_mismatch');
    assert.equal((await put(1, c6.subarray(500))).statusCode, 200);
    const ok = await post(f.app, `${base}/${id}/complete`, undefined, token);
    assert.deepEqual([ok.status, ok.json.state, ok.json.seq], [200, 'complete', 6]);
    assert.equal((await post(f.app, `${base}/${id}/complete`, undefined, token)).status, 200); // idempotent
    assert.equal((await put(0, c6.subarray(0, 500))).json().err_type, 'compaction_complete');
    assert.equal(
      (await post(f.app, base, { seq: 6, hash: encodeBase64(hashBlob(c6)), size: 10, chunk_count: 11 }, token)).json.err_type,
      'invalid_input',
    );
    assert.equal((await a.client.currentCompaction(S))?.seq, 6);
    // two compactions later the first one is gone
    await rejectsWith(a.client.downloadCompaction(S, first!), 'compaction_not_found', 404);
    assert.equal(await a.client.currentCompaction('node-none'), undefined);
  });
});

describe('backup service: isolation, limits and hygiene', () => {
  let f: Fixture;
  let a: Awaited<ReturnType<Fixture['account']>>;
  let b: Awaited<ReturnType<Fixture['account']>>;
  const S = 'node-1111111111111111';
  before(async () => {
    f = await fixture();
    a = await f.account('alice');
    b = await f.account('bob');
    const e = chain(a.backupKey, S, 3);
    await a.client.appendEntries(S, e);
    const c = sealCompaction(a.backupKey, { stream: S, seq: 3, head: hashBlob(e[2]!) }, randomBytes(100));
    await a.client.uploadCompaction(S, 3, hashBlob(c), c);
  });
  after(() => f.close());

  it("B's backup token cannot read or write A's streams; a login token opens no stream; no token is 401", async () => {
    const bToken = await backupToken(f, 'bob', b.backupKey);
    const { loginToken } = await a.client.login('alice', a.password);
    const cur = await a.client.currentCompaction(S);
    const base = `/v1/accounts/alice/streams/${S}`;
    const routes: { method: 'GET' | 'POST' | 'PUT'; url: string; payload?: unknown; type?: string }[] = [
      { method: 'GET', url: '/v1/accounts/alice/streams' },
      { method: 'GET', url: base },
      { method: 'GET', url: `${base}/entries?after=0` },
      { method: 'POST', url: `${base}/entries`, payload: { entries: chain(b.backupKey, S, 1).map(encodeBase64) } },
      { method: 'POST', url: `${base}/compactions`, payload: { seq: 3, hash: encodeBase64(randomBytes(32)), size: 10, chunk_count: 1 } },
      { method: 'GET', url: `${base}/compactions/current` },
      { method: 'GET', url: `${base}/compactions/${cur!.id}/chunks/0` },
      { method: 'PUT', url: `${base}/compactions/${cur!.id}/chunks/0`, payload: Buffer.from('x'), type: 'application/octet-stream' },
      { method: 'POST', url: `${base}/compactions/${cur!.id}/complete` },
    ];
    for (const r of routes) {
      const send = (auth?: string) =>
        f.app.inject({
          method: r.method,
          url: r.url,
          payload: r.payload as object,
          headers: { ...(auth ? { authorization: auth } : {}), ...(r.type ? { 'content-type': r.type } : {}) },
        });
      const asB = await send(`Bearer ${bToken}`);
      assert.deepEqual([asB.statusCode, asB.json().err_type], [403, 'forbidden'], `${r.method} ${r.url} as bob`);
      const asLogin = await send(`Bearer ${loginToken}`);
      assert.deepEqual([asLogin.statusCode, asLogin.json().err_type], [403, 'forbidden'], `${r.method} ${r.url} with a login token`);
      assert.equal((await send()).statusCode, 401, `${r.method} ${r.url} without a token`);
      assert.equal((await send('Bearer lbt_short')).statusCode, 401);
      assert.equal((await send(`Bearer lbt_${'A'.repeat(43)}`)).json().err_type, 'unauthorized');
    }
    // the token is checked before the body is read: no token and a broken body is still 401
    const early = await f.app.inject({ method: 'POST', url: `/v1/accounts/alice/streams/${S}/entries`, payload: '{"entries": [', headers: { 'content-type': 'application/json' } });
    assert.deepEqual([early.statusCode, early.json().err_type], [401, 'unauthorized']);
    // and nothing changed
    const s = await a.client.getStream(S);
    assert.deepEqual([s?.headSeq, s?.compaction?.id], [3, cur!.id]);
    assert.deepEqual(await b.client.listStreams(), []);
  });

  it('answers malformed and oversized bodies with clear errors and keeps working', async () => {
    const token = await backupToken(f, 'alice', a.backupKey);
    const auth = { authorization: `Bearer ${token}` };
    const send = async (opts: { method: 'GET' | 'POST' | 'PUT'; url: string; payload?: string | object | Buffer; headers?: Record<string, string> }) => {
      const r = await f.app.inject(opts);
      return [r.statusCode, r.json().err_type as string];
    };
    const json = { 'content-type': 'application/json' };
    assert.deepEqual(await send({ method: 'POST', url: '/v1/accounts/alice/login/start', payload: '{"start_login_request":', headers: json }), [400, 'malformed_json']);
    assert.deepEqual(await send({ method: 'POST', url: '/v1/accounts/alice/login/start', payload: { start_login_request: 'x'.repeat(70_000) } }), [413, 'body_too_large']);
    assert.deepEqual(await send({ method: 'POST', url: '/v1/accounts/alice/login/start', payload: { start_login_request: 'not base64!' } }), [400, 'invalid_input']);
    assert.deepEqual(await send({ method: 'POST', url: '/v1/accounts/alice/login/start', payload: { start_login_request: encodeBase64(randomBytes(7)) } }), [400, 'invalid_input']);
    assert.deepEqual(await send({ method: 'POST', url: '/v1/accounts/bad name!/challenge', payload: {} }), [400, 'invalid_input']);
    assert.deepEqual(await send({ method: 'POST', url: `/v1/accounts/${'a'.repeat(65)}/challenge`, payload: {} }), [400, 'invalid_input']);
    const base = `/v1/accounts/alice/streams/${S}`;
    const big = JSON.stringify({ entries: ['A'.repeat(17 * 1024 * 1024)] });
    assert.deepEqual(await send({ method: 'POST', url: `${base}/entries`, payload: big, headers: { ...auth, ...json } }), [413, 'body_too_large']);
    assert.deepEqual(await send({ method: 'POST', url: `${base}/entries`, payload: { entries: [] }, headers: auth }), [400, 'invalid_input']);
    assert.deepEqual(await send({ method: 'POST', url: `${base}/entries`, payload: { entries: ['A==='] }, headers: auth }), [400, 'invalid_input']);
    assert.deepEqual(await send({ method: 'GET', url: `${base}/entries?after=-1`, headers: auth }), [400, 'invalid_input']);
    assert.deepEqual(await send({ method: 'GET', url: `${base}/entries?limit=10001`, headers: auth }), [400, 'invalid_input']);
    const cur = await a.client.currentCompaction(S);
    const chunkUrl = `${base}/compactions/${cur!.id}/chunks/0`;
    const octet = { ...auth, 'content-type': 'application/octet-stream' };
    assert.deepEqual(await send({ method: 'PUT', url: chunkUrl, payload: Buffer.alloc(8 * 1024 * 1024 + 1), headers: octet }), [413, 'body_too_large']);
    assert.deepEqual(await send({ method: 'PUT', url: chunkUrl, payload: { x: 1 }, headers: auth }), [400, 'invalid_input']);
    assert.deepEqual(await send({ method: 'PUT', url: chunkUrl, payload: 'x', headers: { ...auth, 'content-type': 'text/plain' } }), [415, 'unsupported_media_type']);
    assert.deepEqual(await send({ method: 'GET', url: `${base}/compactions/${cur!.id}/chunks/abc`, headers: auth }), [400, 'invalid_input']);
    assert.deepEqual(await send({ method: 'GET', url: `${base}/compactions/${cur!.id}/chunks/7`, headers: auth }), [404, 'chunk_not_found']);
    assert.deepEqual(await send({ method: 'GET', url: `${base}/compactions/nope/chunks/0`, headers: auth }), [404, 'compaction_not_found']);
    assert.deepEqual(await send({ method: 'GET', url: '/v1/nothing' }), [404, 'not_found']);
    // still serving
    assert.equal((await a.client.getStream(S))?.headSeq, 3);
    assert.deepEqual((await a.client.login('alice', a.password)).backupKey, a.backupKey);
  });

  it('logs neither passwords, invites, tokens nor opaque messages', async () => {
    const invite = await f.invite('carol');
    const backupKey = randomBytes(32);
    const c = f.client();
    const password = 'a very secret password 12345';
    await c.register('carol', invite, password, backupKey);
    const { loginToken } = await c.login('carol', password);
    const backup = await c.session('carol', backupKey);
    await rejectsWith(c.login('carol', 'another secret attempt'), 'login_failed');
    await c.changePassword('carol', password, 'the next secret password');
    const start = opaque.client.startLogin({ password: 'x' }).startLoginRequest;
    await post(f.app, '/v1/accounts/carol/login/start', { start_login_request: encodeBase64(Buffer.from(start, 'base64url')) });
    await f.app.inject({ method: 'GET', url: '/v1/accounts/carol/streams', headers: { authorization: `Bearer ${backup}` } });
    await f.app.inject({ method: 'GET', url: '/v1/accounts/alice/streams', headers: { authorization: `Bearer ${backup}` } });
    const text = f.logs.join('');
    assert.ok(text.includes('/v1/accounts/carol/login/start'), 'the logger captured requests');
    const b64 = (s: string) => encodeBase64(Buffer.from(s, 'base64url'));
    for (const secret of [password, 'another secret attempt', 'the next secret password', invite, loginToken, backup, backup.slice(4), loginToken.slice(4), invite.slice(4), start, b64(start)]) {
      assert.ok(!text.includes(secret), `the log holds ${secret.slice(0, 12)}…`);
    }
    assert.ok(!text.toLowerCase().includes('bearer'));
  });

  it('rate limits login starts per account name and per address, and challenges per address, with Retry-After', async () => {
    const g = await fixture({ rateLimits: { loginPerAccount: { max: 3, windowMs: 60_000 }, loginPerAddress: { max: 5, windowMs: 60_000 }, sessionPerAddress: { max: 4, windowMs: 60_000 } } });
    try {
      const body = () => ({ start_login_request: encodeBase64(Buffer.from(opaque.client.startLogin({ password: 'x' }).startLoginRequest, 'base64url')) });
      for (let i = 0; i < 3; i++) assert.equal((await post(g.app, '/v1/accounts/alice/login/start', body())).status, 200);
      const limited = await post(g.app, '/v1/accounts/alice/login/start', body());
      assert.deepEqual([limited.status, limited.json.err_type], [429, 'rate_limited']);
      assert.ok(Number(limited.headers['retry-after']) >= 1);
      assert.equal((await post(g.app, '/v1/accounts/bob/login/start', body())).status, 200);
      // five from this address in the window: the sixth is refused whatever the name
      assert.equal((await post(g.app, '/v1/accounts/carol/login/start', body())).status, 429);
      for (let i = 0; i < 4; i++) assert.equal((await post(g.app, '/v1/accounts/x/challenge', {})).status, 200);
      assert.equal((await post(g.app, '/v1/accounts/x/challenge', {})).status, 429);
      // another address is counted apart (the per-account limit still holds for alice)
      const other = await g.app.inject({ method: 'POST', url: '/v1/accounts/dave/login/start', payload: body(), remoteAddress: '10.9.8.7' });
      assert.equal(other.statusCode, 200);
      g.clock.offsetMs = 61_000;
      assert.equal((await post(g.app, '/v1/accounts/alice/login/start', body())).status, 200);
    } finally {
      await g.close();
    }
  });

  it('a client given onRateLimited waits out a short Retry-After and logs in; a long one, a shared one, or a client without it, gets rate_limited at once', async () => {
    /** A service with `limits`, its account `owner`, and a client that records each wait it is told of. */
    const patiently = async (limits: Partial<BackupRateLimits>, fn: (g: Fixture, patient: BackupClient, waits: number[], owner: { backupKey: Uint8Array }) => Promise<void>) => {
      const g = await fixture({ rateLimits: limits });
      try {
        const owner = await g.account('owner', 'the owner password');
        const waits: number[] = [];
        await fn(g, new BackupClient({ url: URL_BASE, fetch: injectFetch(g.app), keyStretching: FAST, onRateLimited: (s) => waits.push(s) }), waits, owner);
      } finally {
        await g.close();
      }
    };
    await patiently({ loginPerAddressAndAccount: { max: 2, windowMs: 2000 } }, async (g, patient, waits, owner) => {
      const plain = g.client();
      for (let i = 0; i < 2; i++) await plain.login('owner', 'the owner password');
      await rejectsWith(plain.login('owner', 'the owner password'), 'rate_limited', 429);
      const t0 = Date.now();
      const back = await patient.login('owner', 'the owner password');
      assert.deepEqual(back.backupKey, owner.backupKey);
      assert.equal(waits.length, 1);
      assert.ok(waits[0]! >= 1 && waits[0]! <= 2, `waited ${waits[0]} s`);
      assert.ok(Date.now() - t0 >= waits[0]! * 1000);
    });
    await patiently({ loginPerAddressAndAccount: { max: 1, windowMs: 120_000 } }, async (_g, patient, waits) => {
      await patient.login('owner', 'the owner password');
      await rejectsWith(patient.login('owner', 'the owner password'), 'rate_limited', 429);
      assert.deepEqual(waits, [], 'over a minute: not waited');
    });
    // The account's anonymous lane counts everyone's logins (Lifeboat-Rate-Limit: shared): never waited out.
    await patiently({ loginPerAccount: { max: 1, windowMs: 2000 } }, async (_g, patient, waits) => {
      await patient.login('owner', 'the owner password');
      const err = await patient.login('owner', 'the owner password').then(() => undefined, (e: unknown) => e as { code: string; sharedLimit?: boolean });
      assert.deepEqual([err?.code, err?.sharedLimit, waits], ['rate_limited', true, []]);
    });
  });
});

describe('backup service: restore token (a flood of logins cannot block a restore)', () => {
  const startBody = (restoreToken?: string) => ({
    start_login_request: encodeBase64(Buffer.from(opaque.client.startLogin({ password: 'a guess' }).startLoginRequest, 'base64url')),
    ...(restoreToken ? { restore_token: restoreToken } : {}),
  });
  const startFrom = async (app: FastifyInstance, account: string, address: string, restoreToken?: string) => {
    const res = await app.inject({ method: 'POST', url: `/v1/accounts/${account}/login/start`, payload: startBody(restoreToken), remoteAddress: address });
    return { status: res.statusCode, json: res.json() as { err_type?: string; hint?: string } };
  };

  it('a flood of login starts from many addresses holds the anonymous lane, not a login with the restore token', async () => {
    // The production limits (10 per account, 3 per address and account, 30 per address).
    const g = await fixture({ rateLimits: {} });
    try {
      const owner = await g.account('owner', 'the owner password');
      const restoreToken = await owner.client.createRestoreToken();
      assert.match(restoreToken, /^lbr_[A-Za-z0-9_-]{43}$/);
      // One address gets 3 starts an account a minute: it cannot use up the account's 10 by itself.
      const one = [];
      for (let i = 0; i < 5; i++) one.push((await startFrom(g.app, 'owner', '198.51.100.1')).status);
      assert.deepEqual(one, [200, 200, 200, 429, 429]);
      // Four addresses can: 3 + 3 + 3 + 1, then the account's anonymous lane is full for everyone.
      const many = [];
      for (const a of ['198.51.100.2', '198.51.100.3', '198.51.100.4']) for (let i = 0; i < 3; i++) many.push((await startFrom(g.app, 'owner', a)).status);
      assert.deepEqual(many, [200, 200, 200, 200, 200, 200, 200, 429, 429]);
      const anonymous = await startFrom(g.app, 'owner', '192.0.2.50');
      assert.deepEqual([anonymous.status, anonymous.json.err_type], [429, 'rate_limited']);
      assert.match(anonymous.json.hint ?? '', /restore token/);
      await rejectsWith(g.client().login('owner', 'the owner password'), 'rate_limited', 429);
      // The owner's login with the restore token has its own lane.
      const back = await g.client().login('owner', 'the owner password', { restoreToken });
      assert.deepEqual(back.backupKey, owner.backupKey);
      // ...which a wrong password still cannot pass: the token is no password.
      await rejectsWith(g.client().login('owner', 'not the password', { restoreToken }), 'login_failed', 401);
      // The token's lane has a limit of its own (10 a minute): 2 used above.
      const lane = [];
      for (let i = 0; i < 9; i++) lane.push((await startFrom(g.app, 'owner', '192.0.2.60', restoreToken)).status);
      assert.deepEqual(lane, [200, 200, 200, 200, 200, 200, 200, 200, 429]);
    } finally {
      await g.close();
    }
  });

  it('a wrong token, an account without one and an unknown account answer alike; a token needs a proof of the backup key', async () => {
    const g = await fixture();
    try {
      const a = await g.account('alice');
      await g.account('bob');
      const token = await a.client.createRestoreToken();
      const forged = `lbr_${Buffer.from(randomBytes(32)).toString('base64url')}`;
      for (const [account, t] of [
        ['alice', forged],
        ['bob', token],
        ['nobody', token],
      ] as const) {
        const r = await startFrom(g.app, account, '127.0.0.1', t);
        assert.deepEqual([r.status, r.json.err_type], [401, 'restore_token_invalid'], `${account}`);
      }
      const malformed = await startFrom(g.app, 'alice', '127.0.0.1', 'lbr_short');
      assert.deepEqual([malformed.status, malformed.json.err_type], [400, 'invalid_input']);
      // Made only under a backup token of the account: none, a login token, another account's.
      assert.equal((await post(g.app, '/v1/accounts/alice/restore-token', {})).status, 401);
      const { loginToken } = await g.client().login('alice', a.password);
      assert.deepEqual((await post(g.app, '/v1/accounts/alice/restore-token', {}, loginToken)).json.err_type, 'forbidden');
      const bobs = await backupToken(g, 'bob', (await g.client().login('bob', 'pw of bob')).backupKey);
      assert.equal((await post(g.app, '/v1/accounts/alice/restore-token', {}, bobs)).status, 403);
      // A new token replaces the old; a password change keeps it.
      const next = await a.client.createRestoreToken();
      await rejectsWith(g.client().login('alice', a.password, { restoreToken: token }), 'restore_token_invalid', 401);
      await g.client().changePassword('alice', a.password, 'a new password for alice');
      assert.deepEqual((await g.client().login('alice', 'a new password for alice', { restoreToken: next })).backupKey, a.backupKey);
    } finally {
      await g.close();
    }
  });
});

describe('backup service on postgresql (smoke)', { skip: postgresSkipReason() }, () => {
  let pg: TestPostgres;
  let f: Fixture;
  before(async () => {
    pg = await startTestPostgres();
    f = await fixture({ storeUrl: pg.url });
  });
  after(async () => {
    await f?.close();
    await pg?.stop();
  });

  it('registers, logs in, changes the password, appends, compacts, lists and isolates accounts', async () => {
    const a = await f.account('alice');
    const b = await f.account('bob');
    await rejectsWith(f.client().login('alice', 'wrong'), 'login_failed', 401);
    await rejectsWith(f.client().login('nobody', 'wrong'), 'login_failed', 401);
    await a.client.changePassword('alice', a.password, 'new');
    assert.deepEqual((await a.client.login('alice', 'new')).backupKey, a.backupKey);
    const S = 'node-pg';
    const e = chain(a.backupKey, S, 5);
    assert.equal((await a.client.appendEntries(S, e.slice(0, 3))).headSeq, 3);
    assert.equal((await a.client.appendEntries(S, e)).headSeq, 5);
    await rejectsWith(a.client.appendEntries(S, chain(a.backupKey, S, 1, { seq: 7, prev: ZERO_HASH })), 'sequence_gap', 409);
    for (const seq of [2, 4]) {
      const c = sealCompaction(a.backupKey, { stream: S, seq, head: hashBlob(e[seq - 1]!) }, randomBytes(3000));
      const done = await a.client.uploadCompaction(S, seq, hashBlob(c), c, 1000);
      assert.deepEqual(await a.client.downloadCompaction(S, done), c);
    }
    const s = await a.client.getStream(S);
    assert.deepEqual([s?.headSeq, s?.firstSeq, s?.compaction?.seq], [5, 3, 4]);
    assert.deepEqual(
      (await a.client.listEntries(S, 0)).map((x) => x.seq),
      [3, 4, 5],
    );
    const bToken = await backupToken(f, 'bob', b.backupKey);
    const r = await f.app.inject({ method: 'GET', url: `/v1/accounts/alice/streams/${S}`, headers: { authorization: `Bearer ${bToken}` } });
    assert.equal(r.statusCode, 403);
  });
});
