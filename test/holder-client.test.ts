/** HolderClient: every method against a holder (through inject), and its typed failures on real sockets. */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, createServer as createTcpServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { randomBytes } from '../src/crypto/random.js';
import { generateBoxKeyPair, openSealed } from '../src/crypto/sealedbox.js';
import { isLifeboatError, LifeboatError } from '../src/errors.js';
import { HolderClient } from '../src/holder/client.js';
import { encodePublicIdentity, generateIdentity, identityFingerprint } from '../src/identity.js';
import { parseManifest } from '../src/recovery/manifest.js';
import { createReleaseRequest } from '../src/recovery/release.js';
import { fromB64, toB64 } from '../src/util/bytes.js';
import { holderFixture, type HolderFixture, injectFetch, makeScheme, makeVault, type TestScheme } from './helpers/holder.js';

describe('HolderClient against a holder', () => {
  let f: HolderFixture;
  let s: TestScheme;
  let primary: HolderClient;
  let operator: HolderClient;
  before(async () => {
    f = await holderFixture();
    s = makeScheme({ primary: f.primary, holderToken: f.token, operators: [f.operator], memberIndex: 1 });
    primary = new HolderClient({ url: 'http://holder.test', signer: f.primary, expectedFingerprint: f.fingerprint, fetch: injectFetch(f.app) });
    operator = new HolderClient({ url: 'http://holder.test/', signer: f.operator, fetch: injectFetch(f.app) });
  });
  after(() => f.close());

  it('reads health and identity, and checks the expected fingerprint', async () => {
    assert.deepEqual(await primary.health(), { ok: true });
    assert.deepEqual(await primary.identity(), { identity: f.token, fingerprint: f.fingerprint });
    const wrong = new HolderClient({ url: 'http://holder.test', expectedFingerprint: identityFingerprint(generateIdentity('holder')), fetch: injectFetch(f.app) });
    await assert.rejects(wrong.identity(), (e: unknown) => isLifeboatError(e, 'peer_identity_mismatch'));
  });

  it('uploads a share (bytes or base64) and a vault, lists, reads back', async () => {
    assert.equal((await primary.putShare(s.schemeId, { member_index: 1, sealed_share: s.sealedShare, manifest: s.manifest })).created, true);
    assert.equal((await primary.putShare(s.schemeHex, { member_index: 1, sealed_share: toB64(s.sealedShare), manifest: s.manifest })).created, false);
    const v = makeVault(s, 3);
    assert.deepEqual(await primary.putVault(s.schemeHex, v), { scheme_id: s.schemeHex, generation: 3, stored: true });
    const list = await operator.listSchemes();
    assert.equal(list.length, 1);
    assert.equal(list[0]!.vault_generation, 3);
    assert.equal(parseManifest(await operator.getManifest(s.schemeHex)).scheme_id, s.schemeHex);
    const got = await operator.getVault(s.schemeHex);
    assert.equal(got.generation, 3);
    assert.deepEqual(got.vault, v);
  });

  it('answers a challenge and a release (the release is sent unsigned)', async () => {
    const a = await operator.challenge(s.schemeHex, randomBytes(32));
    assert.match(a.sealed_share_sha256, /^[0-9a-f]{64}$/);
    const oneTime = generateBoxKeyPair();
    const req = createReleaseRequest({ signer: f.operator, schemeId: s.schemeId, holderFingerprint: f.fingerprint, purpose: 'reconstruct', requesterPublicKey: oneTime.publicKey });
    const anonymous = new HolderClient({ url: 'http://holder.test', fetch: injectFetch(f.app) });
    const res = await anonymous.release(s.schemeHex, req);
    assert.deepEqual(openSealed(fromB64(res.sealed_share, 's'), oneTime), s.payload);
  });

  it('turns refusals into LifeboatErrors with the holder err_type and status', async () => {
    const stranger = new HolderClient({ url: 'http://holder.test', signer: f.stranger, fetch: injectFetch(f.app) });
    await assert.rejects(stranger.listSchemes(), (e: unknown) => {
      assert.ok(e instanceof LifeboatError);
      assert.equal(e.code, 'not_enrolled');
      assert.equal(e.status, 403);
      assert.match(e.message, /^holder at http:\/\/holder\.test: /);
      assert.ok(e.hint);
      return true;
    });
    const unsigned = new HolderClient({ url: 'http://holder.test', fetch: injectFetch(f.app) });
    await assert.rejects(unsigned.listSchemes(), (e: unknown) => isLifeboatError(e, 'unauthorized') && e.status === 401);
    await assert.rejects(primary.putVault(s.schemeHex, makeVault(s, 2)), (e: unknown) => isLifeboatError(e, 'stale_generation') && e.status === 409);
    await assert.rejects(operator.getVault('ab'.repeat(16)), (e: unknown) => isLifeboatError(e, 'scheme_not_found'));
  });

  it('enrols a new primary and deletes a scheme', async () => {
    const next = generateIdentity('primary');
    assert.equal((await operator.enrol(encodePublicIdentity(next))).changed, true);
    const nextClient = new HolderClient({ url: 'http://holder.test', signer: next, fetch: injectFetch(f.app) });
    assert.deepEqual(await nextClient.deleteScheme(s.schemeId), { scheme_id: s.schemeHex, deleted: true });
    assert.deepEqual(await nextClient.listSchemes(), []);
  });
});

async function serveRaw(handler: Parameters<typeof createServer>[1]): Promise<{ url: string; server: Server }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('HolderClient failures', () => {
  it('reports a down holder as peer_unreachable naming the URL, with a hint', async () => {
    const { url, server } = await serveRaw((_q, s) => s.end());
    await new Promise((r) => server.close(r));
    const c = new HolderClient({ url });
    await assert.rejects(c.identity(), (e: unknown) => {
      assert.ok(isLifeboatError(e, 'peer_unreachable'));
      assert.ok(e.message.includes(url));
      assert.ok(e.hint);
      return true;
    });
  });

  it('times out on a holder that accepts but never answers', async () => {
    const tcp = createTcpServer(() => {});
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
    try {
      const c = new HolderClient({ url: `http://127.0.0.1:${(tcp.address() as AddressInfo).port}`, timeoutMs: 200 });
      await assert.rejects(c.health(), (e: unknown) => isLifeboatError(e, 'peer_unreachable') && /no answer within 200 ms/.test(e.message));
    } finally {
      tcp.close();
    }
  });

  it('reports answers outside the protocol as peer_bad_answer', async () => {
    const answers: [number, string, string][] = [
      [200, 'text/html', '<html>hello</html>'],
      [500, 'text/plain', 'oops'],
      [404, 'application/json', '{"error": "nope"}'],
      [200, 'application/json', '{"identity": 5}'],
      [200, 'application/json', ''],
    ];
    let i = 0;
    const { url, server } = await serveRaw((_q, s) => {
      const [status, type, body] = answers[i++]!;
      s.writeHead(status, { 'content-type': type }).end(body);
    });
    try {
      const c = new HolderClient({ url, signer: generateIdentity('operator') });
      for (let k = 0; k < 4; k++) await assert.rejects(c.identity(), (e: unknown) => isLifeboatError(e, 'peer_bad_answer'), `answer ${k}`);
      await assert.rejects(c.getManifest('ab'.repeat(16)), (e: unknown) => isLifeboatError(e, 'peer_bad_answer'));
    } finally {
      server.close();
    }
  });
});
