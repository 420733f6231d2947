/** The holder HTTP API through fastify inject: every rule of docs/format.md "Share holder". */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes } from '../src/crypto/random.js';
import { isLifeboatError } from '../src/errors.js';
import { generateBoxKeyPair, openSealed, seal } from '../src/crypto/sealedbox.js';
import { verifyAuditLog, type AuditEntry } from '../src/holder/audit.js';
import { createHolderApp } from '../src/holder/server.js';
import { HolderService } from '../src/holder/service.js';
import { encodePublicIdentity, generateIdentity, identityFingerprint } from '../src/identity.js';
import { signManifest } from '../src/recovery/manifest.js';
import { possessionPublicKey, verifyPossession } from '../src/recovery/possession.js';
import { createReleaseRequest, parseReleaseResponse, type ReleasePurpose } from '../src/recovery/release.js';
import { encodeSharePayload } from '../src/recovery/sealed-share.js';
import { fromB64, fromHex, toB64, toHex, utf8 } from '../src/util/bytes.js';
import { signRequest } from '../src/util/request-auth.js';
import { sealVault } from '../src/vault/format.js';
import { holderFixture, type HolderFixture, json, makeScheme, makeVault, signedInject, snapshotState, type TestScheme } from './helpers/holder.js';

function refused(res: LightMyRequestResponse, status: number, code: string): void {
  assert.equal(res.statusCode, status, `expected ${status} ${code}, got ${res.statusCode} ${res.body}`);
  const body = json(res);
  assert.equal(body.err_type, code);
  assert.equal(typeof body.message, 'string');
}

function auditEntries(f: HolderFixture): AuditEntry[] {
  return readFileSync(join(f.dir, 'audit.log'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as AuditEntry);
}

function lastAudit(f: HolderFixture): AuditEntry {
  return auditEntries(f).pop()!;
}

const shareBody = (s: TestScheme, over: Record<string, unknown> = {}) => ({ member_index: s.memberIndex, sealed_share: toB64(s.sealedShare), manifest: s.manifest, ...over });

async function putShare(f: HolderFixture, s: TestScheme) {
  const res = await signedInject(f.app, f.primary, 'PUT', `/v1/schemes/${s.schemeHex}/share`, shareBody(s));
  assert.ok(res.statusCode === 201 || res.statusCode === 200, res.body);
  return res;
}

/** Runs `fn`, asserting state files are byte-identical after and the server still answers. */
async function unchanged(f: HolderFixture, fn: () => Promise<void>): Promise<void> {
  const before = snapshotState(f.dir);
  await fn();
  assert.deepEqual(snapshotState(f.dir), before, 'state files changed');
  assert.equal((await f.app.inject({ method: 'GET', url: '/v1/health' })).statusCode, 200);
}

describe('holder API: identity and health', () => {
  let f: HolderFixture;
  before(async () => (f = await holderFixture()));
  after(() => f.close());

  it('answers health and identity unauthenticated', async () => {
    assert.deepEqual(json(await f.app.inject({ method: 'GET', url: '/v1/health' })), { ok: true });
    const id = json(await f.app.inject({ method: 'GET', url: '/v1/identity' }));
    assert.deepEqual(id, { identity: f.token, fingerprint: f.fingerprint });
  });

  it('answers unknown routes 404 not_found', async () => {
    refused(await f.app.inject({ method: 'GET', url: '/v2/anything' }), 404, 'not_found');
  });
});

describe('holder API: share upload', () => {
  let f: HolderFixture;
  let s: TestScheme;
  before(async () => {
    f = await holderFixture();
    s = makeScheme({ primary: f.primary, holderToken: f.token, operators: [f.operator], memberIndex: 1 });
  });
  after(() => f.close());

  it('refuses uploads that are not from the enrolled primary, changing nothing', async () => {
    const url = `/v1/schemes/${s.schemeHex}/share`;
    await unchanged(f, async () => {
      refused(await signedInject(f.app, f.stranger, 'PUT', url, shareBody(s)), 403, 'not_enrolled');
      assert.equal(lastAudit(f).code, 'not_enrolled');
      assert.equal(lastAudit(f).actor, identityFingerprint(f.stranger));
      refused(await signedInject(f.app, f.operator, 'PUT', url, shareBody(s)), 403, 'forbidden');
      refused(await signedInject(f.app, null, 'PUT', url, shareBody(s)), 401, 'unauthorized');
      assert.equal(lastAudit(f).actor, 'anonymous');
      // a signature over other bytes
      const body = JSON.stringify(shareBody(s));
      const auth = signRequest(f.primary, 'PUT', url, utf8.encode(body.replace('"member_index":1', '"member_index":2')));
      refused(await f.app.inject({ method: 'PUT', url, headers: { authorization: auth, 'content-type': 'application/json' }, payload: body }), 401, 'bad_signature');
      // a signature for another path
      const auth2 = signRequest(f.primary, 'PUT', `/v1/schemes/${'0'.repeat(32)}/share`, utf8.encode(body));
      refused(await f.app.inject({ method: 'PUT', url, headers: { authorization: auth2, 'content-type': 'application/json' }, payload: body }), 401, 'bad_signature');
      refused(await signedInject(f.app, f.primary, 'PUT', url, shareBody(s), { now: Date.now() - 120_000 }), 403, 'request_expired');
      refused(await signedInject(f.app, f.primary, 'PUT', url, shareBody(s), { now: Date.now() + 120_000 }), 403, 'request_expired');
    });
  });

  it('refuses malformed, oversized and mismatched uploads, changing nothing', async () => {
    const url = `/v1/schemes/${s.schemeHex}/share`;
    await unchanged(f, async () => {
      refused(await signedInject(f.app, f.primary, 'PUT', url, undefined, { rawBody: '{"member_index": 1,' }), 400, 'malformed_json');
      refused(await signedInject(f.app, f.primary, 'PUT', url, shareBody(s, { junk: 'x'.repeat(70_000) })), 413, 'body_too_large');
      refused(await signedInject(f.app, f.primary, 'PUT', url, shareBody(s, { member_index: 'one' })), 400, 'invalid_input');
      refused(await signedInject(f.app, f.primary, 'PUT', '/v1/schemes/NOT-HEX/share', shareBody(s)), 400, 'invalid_input');
      refused(await signedInject(f.app, f.primary, 'PUT', url, shareBody(s, { sealed_share: '***' })), 400, 'invalid_input');
      refused(await signedInject(f.app, f.primary, 'PUT', url, shareBody(s, { member_index: 0 })), 400, 'manifest_mismatch');
      const other = makeScheme({ primary: f.primary, holderToken: f.token, memberIndex: 1 });
      refused(await signedInject(f.app, f.primary, 'PUT', `/v1/schemes/${other.schemeHex}/share`, shareBody(s)), 400, 'manifest_mismatch');
      refused(await signedInject(f.app, f.primary, 'PUT', url, shareBody(s, { sealed_share: toB64(other.sealedShare) })), 400, 'manifest_mismatch');
      // the manifest was altered after signing
      refused(await signedInject(f.app, f.primary, 'PUT', url, shareBody(s, { manifest: { ...s.manifest, threshold: 3 } })), 400, 'bad_signature');
      // a manifest signed by someone else than the enrolled primary
      const foreign = makeScheme({ primary: f.stranger, holderToken: f.token, memberIndex: 1, schemeId: s.schemeId });
      refused(await signedInject(f.app, f.primary, 'PUT', url, shareBody(foreign)), 400, 'manifest_mismatch');
      // a manifest for another holder
      const elsewhere = makeScheme({ primary: f.primary, holderToken: encodePublicIdentity(generateIdentity('holder')), memberIndex: 1, schemeId: s.schemeId });
      refused(await signedInject(f.app, f.primary, 'PUT', url, shareBody(elsewhere)), 400, 'manifest_mismatch');
    });
  });

  it('refuses a tampered sealed share or a payload for another scheme or member (invalid_share)', async () => {
    const url = `/v1/schemes/${s.schemeHex}/share`;
    await unchanged(f, async () => {
      // tampered box, with a manifest that matches the tampered bytes (the holder must open it)
      const tampered = s.sealedShare.slice();
      tampered[60]! ^= 1;
      const t = makeScheme({ primary: f.primary, holderToken: f.token, memberIndex: 1, schemeId: s.schemeId });
      const tm = rehash(t, tampered, f);
      refused(await signedInject(f.app, f.primary, 'PUT', url, { member_index: 1, sealed_share: toB64(tampered), manifest: tm }), 400, 'invalid_share');
      // a box sealed to another key
      const toOther = seal(s.payload, generateBoxKeyPair().publicKey);
      refused(await signedInject(f.app, f.primary, 'PUT', url, { member_index: 1, sealed_share: toB64(toOther), manifest: rehash(t, toOther, f) }), 400, 'invalid_share');
      // a well-sealed payload naming member 2 under member 1
      const wrongMember = seal(encodeSharePayload({ schemeId: s.schemeId, memberIndex: 2, mnemonic: 'x y z' }), f.service.identity.boxPublicKey);
      refused(await signedInject(f.app, f.primary, 'PUT', url, { member_index: 1, sealed_share: toB64(wrongMember), manifest: rehash(t, wrongMember, f) }), 400, 'invalid_share');
      assert.equal(lastAudit(f).code, 'invalid_share');
    });
  });

  it('stores a share, answers a retry idempotently and refuses a different share with conflict', async () => {
    const first = await signedInject(f.app, f.primary, 'PUT', `/v1/schemes/${s.schemeHex}/share`, shareBody(s));
    assert.equal(first.statusCode, 201);
    assert.deepEqual(json(first), { scheme_id: s.schemeHex, member_index: 1, sealed_share_sha256: s.manifest.members[0]!.sealed_share_sha256, created: true });
    const again = await signedInject(f.app, f.primary, 'PUT', `/v1/schemes/${s.schemeHex}/share`, shareBody(s));
    assert.equal(again.statusCode, 200);
    assert.equal(json(again).created, false);
    const other = makeScheme({ primary: f.primary, holderToken: f.token, memberIndex: 1, schemeId: s.schemeId, mnemonic: 'another share entirely' });
    await unchanged(f, async () => {
      refused(await signedInject(f.app, f.primary, 'PUT', `/v1/schemes/${s.schemeHex}/share`, shareBody(other)), 409, 'conflict');
    });
    const list = json<unknown[]>(await signedInject(f.app, f.operator, 'GET', '/v1/schemes'));
    assert.equal(list.length, 1);
    assert.deepEqual(list[0], { scheme_id: s.schemeHex, member_index: 1, created_at: (list[0] as { created_at: string }).created_at, vault_generation: null, vault_sha256: null });
    const manifest = json(await signedInject(f.app, f.operator, 'GET', `/v1/schemes/${s.schemeHex}/manifest`));
    assert.deepEqual(manifest, JSON.parse(JSON.stringify(s.manifest)));
    refused(await signedInject(f.app, f.stranger, 'GET', '/v1/schemes'), 403, 'not_enrolled');
    refused(await signedInject(f.app, f.operator, 'GET', `/v1/schemes/${'ab'.repeat(16)}/manifest`), 404, 'scheme_not_found');
  });

  it('keeps the audit chain intact across all of it, without secrets', () => {
    const text = readFileSync(join(f.dir, 'audit.log'), 'utf8');
    const v = verifyAuditLog(text);
    assert.equal(v.ok, true);
    assert.ok(!text.includes(toB64(s.sealedShare)));
    assert.ok(!text.includes(s.mnemonic));
    const refusals = auditEntries(f).filter((e) => e.outcome === 'refused');
    assert.ok(refusals.length >= 20, `every refusal is audited (${refusals.length})`);
    assert.ok(refusals.every((e) => typeof e.code === 'string' && ['put_share', 'list_schemes', 'get_manifest'].includes(e.action)));
  });
});

/** The manifest of `t` with its holder member's hash replaced for `sealed` (re-signed by the fixture primary). */
function rehash(t: TestScheme, sealed: Uint8Array, f: HolderFixture) {
  const { signature: _sig, ...body } = t.manifest;
  const members = body.members.map((m) => (m.kind === 'holder' ? { ...m, sealed_share_sha256: toHex(sha256(sealed)) } : m));
  return signManifest({ ...body, members }, f.primary);
}

describe('holder API: vault copies', () => {
  let f: HolderFixture;
  let s: TestScheme;
  before(async () => {
    f = await holderFixture();
    s = makeScheme({ primary: f.primary, holderToken: f.token });
  });
  after(() => f.close());
  const put = (v: Uint8Array, who = f.primary, id = s.schemeHex) => signedInject(f.app, who, 'PUT', `/v1/schemes/${id}/vault`, { vault: toB64(v) });

  it('refuses a vault for a scheme it has no share of', async () => {
    await unchanged(f, async () => refused(await put(makeVault(s, 1)), 404, 'scheme_not_found'));
  });

  it('stores newer generations only, idempotent on the same bytes', async () => {
    await putShare(f, s);
    const v1 = makeVault(s, 1);
    assert.deepEqual(json(await put(v1)), { scheme_id: s.schemeHex, generation: 1, stored: true });
    assert.deepEqual(json(await put(v1)), { scheme_id: s.schemeHex, generation: 1, stored: false });
    // bigger than the default 64 KiB body limit: the vault route allows up to 32 MiB
    const v2 = sealVault({ entries: new Map([['big', { value: randomBytes(200_000), updatedAt: new Date().toISOString() }]]) }, s.master, s.schemeId, 1);
    const r2 = await put(v2);
    assert.equal(r2.statusCode, 200, r2.body);
    assert.equal(json(r2).generation, 2);
    await unchanged(f, async () => {
      refused(await put(v1), 409, 'stale_generation');
      refused(await put(makeVault(s, 2)), 409, 'conflict');
      refused(await put(makeVault(s, 3), f.operator), 403, 'forbidden');
      const other = makeScheme({ primary: f.primary, holderToken: f.token });
      refused(await put(makeVault(other, 5)), 400, 'scheme_mismatch');
      // same scheme id, another master key than the manifest names
      refused(await put(makeVault({ schemeId: s.schemeId, master: randomBytes(32) }, 5)), 400, 'scheme_mismatch');
      refused(await put(utf8.encode('not a vault at all, no')), 400, 'bad_magic');
      refused(await signedInject(f.app, f.primary, 'PUT', `/v1/schemes/${s.schemeHex}/vault`, { vault: 'no base64!' }), 400, 'invalid_input');
    });
    const got = json<{ vault: string; generation: number }>(await signedInject(f.app, f.operator, 'GET', `/v1/schemes/${s.schemeHex}/vault`));
    assert.equal(got.generation, 2);
    assert.deepEqual(fromB64(got.vault, 'vault'), v2);
    const list = json<{ vault_generation: number; vault_sha256: string }[]>(await signedInject(f.app, f.primary, 'GET', '/v1/schemes'));
    assert.equal(list[0]!.vault_generation, 2);
    assert.equal(list[0]!.vault_sha256, Buffer.from(sha256(v2)).toString('hex'), 'the listing names the stored copy by its hash');
  });

  it('answers vault_not_found for a scheme without a vault copy', async () => {
    const t = makeScheme({ primary: f.primary, holderToken: f.token });
    await putShare(f, t);
    refused(await signedInject(f.app, f.operator, 'GET', `/v1/schemes/${t.schemeHex}/vault`), 404, 'vault_not_found');
  });
});

describe('holder API: possession challenge', () => {
  let f: HolderFixture;
  let s: TestScheme;
  before(async () => {
    f = await holderFixture();
    s = makeScheme({ primary: f.primary, holderToken: f.token, memberIndex: 2 });
    await putShare(f, s);
  });
  after(() => f.close());

  it('proves possession to the primary and to an operator; the proof verifies', async () => {
    for (const who of [f.primary, f.operator]) {
      const challenge = randomBytes(32);
      const res = await signedInject(f.app, who, 'POST', `/v1/schemes/${s.schemeHex}/challenge`, { challenge: toB64(challenge) });
      assert.equal(res.statusCode, 200, res.body);
      const a = json<{ sealed_share_sha256: string; signature: string }>(res);
      const member = s.manifest.members.find((m) => m.kind === 'holder')!;
      const args = {
        schemeId: s.schemeId,
        challenge,
        sealedShareHash: fromHex(a.sealed_share_sha256, 'hash', 32),
        expectedSealedShareHash: fromHex(member.sealed_share_sha256!, 'hash', 32),
        holderBoxPublicKey: f.service.identity.boxPublicKey,
        possessionKey: fromB64(member.possession_key, 'pk', 32),
        signature: fromB64(a.signature, 'sig', 64),
      };
      assert.equal(verifyPossession(args), true);
      assert.equal(verifyPossession({ ...args, challenge: randomBytes(32) }), false, 'bound to the challenge');
      assert.equal(verifyPossession({ ...args, possessionKey: possessionPublicKey(s.schemeId, 'other words') }), false);
    }
  });

  it('refuses strangers, bad challenges and unknown schemes', async () => {
    const url = `/v1/schemes/${s.schemeHex}/challenge`;
    await unchanged(f, async () => {
      refused(await signedInject(f.app, f.stranger, 'POST', url, { challenge: toB64(randomBytes(32)) }), 403, 'not_enrolled');
      refused(await signedInject(f.app, f.primary, 'POST', url, { challenge: toB64(randomBytes(16)) }), 400, 'invalid_input');
      refused(await signedInject(f.app, f.primary, 'POST', url, {}), 400, 'invalid_input');
      refused(await signedInject(f.app, f.primary, 'POST', `/v1/schemes/${'cd'.repeat(16)}/challenge`, { challenge: toB64(randomBytes(32)) }), 404, 'scheme_not_found');
    });
  });
});

describe('holder API: release', () => {
  let f: HolderFixture;
  let s: TestScheme;
  before(async () => {
    f = await holderFixture({ app: { rateLimit: { sensitive: { max: 1000, windowMs: 60_000 } } } });
    s = makeScheme({ primary: f.primary, holderToken: f.token, memberIndex: 1 });
    await putShare(f, s);
  });
  after(() => f.close());

  const request = (opts: { signer?: ReturnType<typeof generateIdentity>; purpose?: ReleasePurpose; key?: Uint8Array; holder?: string; schemeId?: Uint8Array; now?: number } = {}) => {
    const oneTime = generateBoxKeyPair();
    const req = createReleaseRequest({
      signer: opts.signer ?? f.operator,
      schemeId: opts.schemeId ?? s.schemeId,
      holderFingerprint: opts.holder ?? f.fingerprint,
      purpose: opts.purpose ?? 'reconstruct',
      requesterPublicKey: opts.key ?? oneTime.publicKey,
      now: opts.now,
    });
    return { req, oneTime };
  };
  const post = (req: unknown, id = s.schemeHex) => f.app.inject({ method: 'POST', url: `/v1/schemes/${id}/release`, payload: { request: req } });

  it('releases to an operator-signed request: the response opens to the original payload', async () => {
    const { req, oneTime } = request();
    const res = await post(req);
    assert.equal(res.statusCode, 200, res.body);
    const response = parseReleaseResponse(json(res));
    assert.equal(response.request_id, req.request_id);
    assert.equal(response.member_index, 1);
    assert.equal(response.holder_fingerprint, f.fingerprint);
    assert.deepEqual(openSealed(fromB64(response.sealed_share, 'share'), oneTime), s.payload);
    const e = lastAudit(f);
    assert.equal(e.action, 'release');
    assert.equal(e.outcome, 'ok');
    assert.equal(e.actor, identityFingerprint(f.operator));
    assert.equal(e.request_id, req.request_id);
    // the same request again, even with a fresh HTTP request around it
    await unchanged(f, async () => refused(await post(req), 403, 'replayed_request'));
  });

  it('refuses a replayed release request after the holder is reopened', async () => {
    const { req } = request();
    assert.equal((await post(req)).statusCode, 200);
    await f.app.close();
    f.service.close();
    const service = HolderService.open(f.dir, { now: () => Date.now() + f.clock.offsetMs });
    const app = createHolderApp({ service });
    try {
      refused(await app.inject({ method: 'POST', url: `/v1/schemes/${s.schemeHex}/release`, payload: { request: req } }), 403, 'replayed_request');
      const fresh = request();
      assert.equal((await app.inject({ method: 'POST', url: `/v1/schemes/${s.schemeHex}/release`, payload: { request: fresh.req } })).statusCode, 200);
    } finally {
      await app.close();
      service.close();
      // reopen for the remaining tests
      f.service = HolderService.open(f.dir, { now: () => Date.now() + f.clock.offsetMs });
      f.app = createHolderApp({ service: f.service, rateLimit: { sensitive: { max: 1000, windowMs: 60_000 } } });
    }
  });

  it('refuses requests for another holder, by non-operators, expired, tampered or mismatched', async () => {
    const { req } = request();
    await unchanged(f, async () => {
      const other = generateIdentity('holder');
      refused(await post(request({ holder: identityFingerprint(other) }).req), 403, 'wrong_holder');
      refused(await post(request({ signer: f.stranger }).req), 403, 'not_enrolled');
      refused(await post(request({ signer: f.primary, purpose: 'reconstruct', key: f.primary.boxPublicKey }).req), 403, 'forbidden');
      refused(await post(request({ signer: f.primary, purpose: 'unseal' }).req), 403, 'forbidden');
      refused(await post(request({ now: Date.now() - 20 * 60_000 }).req), 403, 'request_expired');
      refused(await post({ ...req, purpose: 'unseal' }), 401, 'bad_signature');
      refused(await post({ ...req, signature: 'AAAA' }), 401, 'bad_signature');
      refused(await post({ ...req, request_id: 'short' }), 400, 'malformed');
      refused(await post(req, 'ef'.repeat(16)), 400, 'scheme_mismatch');
      const unknown = randomBytes(16);
      refused(await post(request({ schemeId: unknown }).req, toHex(unknown)), 404, 'scheme_not_found');
      refused(await f.app.inject({ method: 'POST', url: `/v1/schemes/${s.schemeHex}/release`, payload: [] }), 400, 'invalid_input');
      refused(await f.app.inject({ method: 'POST', url: `/v1/schemes/${s.schemeHex}/release`, headers: { 'content-type': 'application/json' }, payload: 'nope' }), 400, 'malformed_json');
    });
    // refusals did not burn the request id: sent right, the same request is answered
    assert.equal((await post(req)).statusCode, 200);
  });

  it('releases to the enrolled primary for an unseal to its own box key when auto_unseal is on', async () => {
    const { req } = request({ signer: f.primary, purpose: 'unseal', key: f.primary.boxPublicKey });
    const res = await post(req);
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(openSealed(fromB64(json<{ sealed_share: string }>(res).sealed_share, 's'), f.primary.box), s.payload);
  });

  it('does not release to the primary when auto_unseal is off', async () => {
    const g = await holderFixture({ autoUnseal: false });
    try {
      const t = makeScheme({ primary: g.primary, holderToken: g.token });
      await putShare(g, t);
      const req = createReleaseRequest({ signer: g.primary, schemeId: t.schemeId, holderFingerprint: g.fingerprint, purpose: 'unseal', requesterPublicKey: g.primary.boxPublicKey });
      refused(await g.app.inject({ method: 'POST', url: `/v1/schemes/${t.schemeHex}/release`, payload: { request: req } }), 403, 'forbidden');
    } finally {
      await g.close();
    }
  });

  it('rate limits releases and audits the first refusal of a window only', async () => {
    const g = await holderFixture({ app: { rateLimit: { sensitive: { max: 2, windowMs: 60_000 } } } });
    try {
      const url = `/v1/schemes/${'aa'.repeat(16)}/release`;
      const codes: number[] = [];
      for (let i = 0; i < 5; i++) codes.push((await g.app.inject({ method: 'POST', url, payload: { request: {} } })).statusCode);
      assert.deepEqual(codes, [400, 400, 429, 429, 429]);
      const limited = auditEntries(g).filter((e) => e.code === 'rate_limited');
      assert.equal(limited.length, 1);
    } finally {
      await g.close();
    }
  });
});

describe('holder API: enrol and delete', () => {
  let f: HolderFixture;
  let s: TestScheme;
  before(async () => {
    f = await holderFixture();
    s = makeScheme({ primary: f.primary, holderToken: f.token });
    await putShare(f, s);
  });
  after(() => f.close());

  it('lets an operator enrol a new primary; the old one is then not enrolled', async () => {
    const next = generateIdentity('primary');
    await unchanged(f, async () => {
      refused(await signedInject(f.app, f.primary, 'POST', '/v1/enrol', { primary: encodePublicIdentity(next) }), 403, 'forbidden');
      refused(await signedInject(f.app, f.stranger, 'POST', '/v1/enrol', { primary: encodePublicIdentity(next) }), 403, 'not_enrolled');
      refused(await signedInject(f.app, f.operator, 'POST', '/v1/enrol', { primary: 'lb1.nope' }), 400, 'invalid_input');
    });
    const res = await signedInject(f.app, f.operator, 'POST', '/v1/enrol', { primary: encodePublicIdentity(next) });
    assert.deepEqual(json(res), { primary: encodePublicIdentity(next), fingerprint: identityFingerprint(next), changed: true });
    assert.equal(lastAudit(f).subject, identityFingerprint(next));
    assert.equal(json(await signedInject(f.app, f.operator, 'POST', '/v1/enrol', { primary: encodePublicIdentity(next) })).changed, false);
    refused(await signedInject(f.app, f.primary, 'GET', '/v1/schemes'), 403, 'not_enrolled');
    assert.equal((await signedInject(f.app, next, 'GET', '/v1/schemes')).statusCode, 200);
    f.primary = next;
  });

  it('lets the primary delete a scheme; then it is gone', async () => {
    const url = `/v1/schemes/${s.schemeHex}`;
    await unchanged(f, async () => {
      refused(await signedInject(f.app, f.operator, 'DELETE', url), 403, 'forbidden');
      refused(await signedInject(f.app, f.primary, 'DELETE', `/v1/schemes/${'01'.repeat(16)}`), 404, 'scheme_not_found');
    });
    assert.deepEqual(json(await signedInject(f.app, f.primary, 'DELETE', url)), { scheme_id: s.schemeHex, deleted: true });
    refused(await signedInject(f.app, f.primary, 'GET', `${url}/manifest`), 404, 'scheme_not_found');
    assert.deepEqual(json(await signedInject(f.app, f.primary, 'GET', '/v1/schemes')), []);
    assert.deepEqual([...snapshotState(f.dir).keys()].filter((k) => k.startsWith('schemes/')), []);
  });
});

describe('holder API: logs', () => {
  it('logs no share, release, body or authorization with logging on', async () => {
    const logs: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        logs.push(chunk.toString());
        cb();
      },
    });
    const f = await holderFixture({ app: { logger: { level: 'debug', stream } } });
    try {
      const s = makeScheme({ primary: f.primary, holderToken: f.token });
      await putShare(f, s);
      const oneTime = generateBoxKeyPair();
      const req = createReleaseRequest({ signer: f.operator, schemeId: s.schemeId, holderFingerprint: f.fingerprint, purpose: 'reconstruct', requesterPublicKey: oneTime.publicKey });
      const res = await f.app.inject({ method: 'POST', url: `/v1/schemes/${s.schemeHex}/release`, payload: { request: req } });
      await f.app.inject({ method: 'POST', url: `/v1/schemes/${s.schemeHex}/release`, payload: { request: req } });
      const all = logs.join('');
      assert.ok(all.includes('request completed'));
      for (const secret of [toB64(s.sealedShare), json<{ sealed_share: string }>(res).sealed_share, s.mnemonic, req.signature, 'Lifeboat-Sig']) {
        assert.ok(!all.includes(secret), `log holds ${secret.slice(0, 12)}`);
      }
    } finally {
      await f.close();
    }
  });
});

describe('holder API: damaged state', () => {
  it('answers 500 state_corrupt (no path) for damaged files and fails closed on releases', async () => {
    const f = await holderFixture();
    try {
      const s = makeScheme({ primary: f.primary, holderToken: f.token });
      await putShare(f, s);
      writeFileSync(join(f.dir, 'release-ids.json'), 'garbage');
      const req = createReleaseRequest({ signer: f.operator, schemeId: s.schemeId, holderFingerprint: f.fingerprint, purpose: 'reconstruct', requesterPublicKey: generateBoxKeyPair().publicKey });
      const res = await f.app.inject({ method: 'POST', url: `/v1/schemes/${s.schemeHex}/release`, payload: { request: req } });
      refused(res, 500, 'state_corrupt');
      assert.ok(!res.body.includes(f.dir));
      writeFileSync(join(f.dir, 'schemes', s.schemeHex, 'share.json'), '{}');
      refused(await signedInject(f.app, f.operator, 'GET', '/v1/schemes'), 500, 'state_corrupt');
      assert.equal((await f.app.inject({ method: 'GET', url: '/v1/health' })).statusCode, 200);
    } finally {
      await f.close();
    }
  });
});

describe('holder operators (local only)', () => {
  it('adds and removes operators on the holder, never over HTTP, never the last one', async () => {
    const f = await holderFixture();
    try {
      const op2 = generateIdentity('operator');
      const local = { kind: 'local' as const };
      refused(await signedInject(f.app, op2, 'GET', '/v1/schemes'), 403, 'not_enrolled');
      assert.deepEqual(await f.service.addOperator(local, encodePublicIdentity(op2)), { fingerprint: identityFingerprint(op2), changed: true });
      assert.equal((await f.service.addOperator(local, encodePublicIdentity(op2))).changed, false);
      assert.equal((await signedInject(f.app, op2, 'GET', '/v1/schemes')).statusCode, 200);
      await f.service.removeOperator(local, identityFingerprint(f.operator));
      refused(await signedInject(f.app, f.operator, 'GET', '/v1/schemes'), 403, 'not_enrolled');
      await assert.rejects(f.service.removeOperator(local, encodePublicIdentity(op2)), (e: unknown) => isLifeboatError(e, 'last_operator'));
      await assert.rejects(f.service.removeOperator(local, identityFingerprint(f.operator)), (e: unknown) => isLifeboatError(e, 'operator_not_found'));
      await assert.rejects(f.service.addOperator({ kind: 'remote', identity: op2 }, encodePublicIdentity(f.stranger)), (e: unknown) => isLifeboatError(e, 'forbidden'));
      assert.equal(lastAudit(f).action, 'add_operator');
      assert.equal(lastAudit(f).code, 'forbidden');
    } finally {
      await f.close();
    }
  });
});

describe('holder API: signed-request replay across a restart', () => {
  it('refuses a captured signed request after the holder is reopened', async () => {
    const f = await holderFixture();
    try {
      const auth = signRequest(f.primary, 'GET', '/v1/schemes', new Uint8Array(0));
      assert.equal((await f.app.inject({ method: 'GET', url: '/v1/schemes', headers: { authorization: auth } })).statusCode, 200);
      await f.app.close();
      f.service.close();
      f.service = HolderService.open(f.dir);
      f.app = createHolderApp({ service: f.service });
      refused(await f.app.inject({ method: 'GET', url: '/v1/schemes', headers: { authorization: auth } }), 403, 'replayed_request');
    } finally {
      await f.close();
    }
  });
});
