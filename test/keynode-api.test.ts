/**
 * The key node API through fastify inject (no port) over real stores: three nodes, each with its own
 * data directory, vault and SQLite file (and once more on PostgreSQL). The SDK runs over the same
 * inject transport. Covers issue 3: DKG on every curve with plain verifiers, cheats named, single-use
 * nonces, export/import by policy, self-recovery, and bad input that changes nothing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { schnorr } from '@noble/curves/secp256k1.js';
import { generateBoxKeyPair, openSealed } from '../src/crypto/sealedbox.js';
import { randomBytes } from '../src/crypto/random.js';
import { isLifeboatError } from '../src/errors.js';
import type { KeyShareExport } from '../src/keynode/export.js';
import {
  type DkgRound1Message,
  type DkgRound2Message,
  dkgParticipants,
  type FrostCurve,
  identifierOf,
  makeRound1,
  makeRound2,
  openRound2,
  resolveSession,
  SignatureShareError,
  verifySignature,
} from '../src/keynode/frost/index.js';
import { createKey, type KeyRef, saveExports, sign, signWithRecovery } from '../src/keynode/sdk.js';
import { MESSAGE_LIMIT_DEFAULT } from '../src/keynode/config.js';
import { createKeyNodeApp } from '../src/keynode/server.js';
import { newApiKey } from '../src/keynode/apikeys.js';
import { newKeyId } from '../src/keynode/service.js';
import { NONCE_EPOCH_META } from '../src/keynode/store/index.js';
import { fromB64, fromHex, toB64, toB64u, toHex, utf8 } from '../src/util/bytes.js';
import { type JsonAnswer, type NodeSet, ownTenantOf, startInProcessNodes, tamperAnswers } from './helpers/keynode.js';
import { execSql, postgresSkipReason, startTestPostgres, type TestPostgres } from './helpers/postgres.js';

type Answer = JsonAnswer<Record<string, unknown> & { err_type?: string; message?: string }>;
const CURVES: FrostCurve[] = ['ed25519', 'secp256k1', 'bip340'];
const PAIRS = [
  [0, 1],
  [0, 2],
  [1, 2],
];

/** Verifies a group signature the way an outsider does. */
function verifiesPlainly(curve: FrostCurve, signature: Uint8Array, message: Uint8Array, groupKeyHex: string): boolean {
  const pk = fromHex(groupKeyHex, 'group key');
  if (curve === 'ed25519') return ed25519.verify(signature, message, pk, { zip215: false }); // RFC 8032, strict
  if (curve === 'bip340') return schnorr.verify(signature, message, pk); // BIP-340, x-only key
  // secp256k1 has no outside standard verifier: the suite's verifySignature runs RFC 9591 section 6.5
  // (noble's secp256k1_FROST.verify): the 65-byte R || z is valid when z*G == R + c*PK with
  // c = H2(R || PK || msg). The tests also show it refuses another message.
  return verifySignature(curve, signature, message, pk);
}

function expectError(a: Answer, status: number, errType: string, message?: RegExp): void {
  assert.equal(a.status, status, `expected ${status} ${errType}, got ${a.status} ${JSON.stringify(a.body)}`);
  assert.equal(a.body.err_type, errType);
  assert.equal(typeof a.body.message, 'string');
  if (message) assert.match(a.body.message!, message);
}

/** Runs `fn` (which should be refused) and asserts every node's keys and nonces are as before and the node still answers. */
async function unchanged(s: NodeSet, fn: () => Promise<void>): Promise<void> {
  const before = await s.counts();
  await fn();
  assert.deepEqual(await s.counts(), before, 'a refused request changed the store');
  for (let i = 0; i < s.nodes.length; i++) assert.equal((await s.inject(i, { url: '/v1/health' })).status, 200);
}

function flipLowBit(curve: FrostCurve, scalarHex: string): string {
  const b = fromHex(scalarHex, 'scalar');
  b[curve === 'ed25519' ? 0 : b.length - 1]! ^= 1; // the least significant byte: stays canonical
  return toHex(b);
}

// --- a DKG driven by hand, to see and change what the coordinator relays ---------------------------

interface RawDkg {
  sessionId: string;
  keyId: string;
  curve: FrostCurve;
  tokens: string[];
  round1: DkgRound1Message[];
}

async function dkgStart(s: NodeSet, curve: FrostCurve): Promise<RawDkg> {
  const d = { sessionId: toB64u(randomBytes(12)), keyId: newKeyId(), curve, tokens: s.nodes.map((n) => n.identity.identity), round1: [] as DkgRound1Message[] };
  for (let i = 0; i < s.nodes.length; i++) {
    const a = await s.inject(i, { url: `/v1/dkg/${d.sessionId}/start`, token: s.tokens.client, body: { key_id: d.keyId, curve, threshold: 2, participants: d.tokens } });
    assert.equal(a.status, 200, JSON.stringify(a.body));
    d.round1.push(a.body.round1 as DkgRound1Message);
  }
  return d;
}

function dkgRound2(s: NodeSet, d: RawDkg, i: number, round1: unknown[] = d.round1): Promise<Answer> {
  return s.inject(i, { url: `/v1/dkg/${d.sessionId}/round2`, token: s.tokens.client, body: { round1 } });
}

function dkgFinish(s: NodeSet, d: RawDkg, i: number, round2: unknown[]): Promise<Answer> {
  return s.inject(i, { url: `/v1/dkg/${d.sessionId}/finish`, token: s.tokens.client, body: { round2 } });
}

/** Round 2 on every node; returns all round-2 messages. */
async function dkgRound2All(s: NodeSet, d: RawDkg): Promise<DkgRound2Message[]> {
  const out: DkgRound2Message[] = [];
  for (let i = 0; i < s.nodes.length; i++) {
    const a = await dkgRound2(s, d, i);
    assert.equal(a.status, 200, JSON.stringify(a.body));
    out.push(...(a.body.round2 as DkgRound2Message[]));
  }
  return out;
}

const forNode = (d: RawDkg, msgs: DkgRound2Message[], i: number) => msgs.filter((m) => m.recipient === identifierOf(d.curve, i + 1));
const sessionOf = (d: RawDkg) => resolveSession(d.sessionId, d.curve, 2, dkgParticipants(d.curve, d.tokens));


/**
 * Four copies of one session's start, then of its round 2, sent to node 0 at once: exactly one of each
 * wins (the session's step moves only from the step it was read at), and the DKG still completes with
 * the winner's round-1 package.
 */
async function concurrentDkgRounds(s: NodeSet): Promise<void> {
  const d: RawDkg = { sessionId: toB64u(randomBytes(12)), keyId: newKeyId(), curve: 'ed25519', tokens: s.nodes.map((n) => n.identity.identity), round1: [] };
  const body = { key_id: d.keyId, curve: d.curve, threshold: 2, participants: d.tokens };
  const start = (i: number) => s.inject(i, { url: `/v1/dkg/${d.sessionId}/start`, token: s.tokens.client, body }) as Promise<Answer>;
  const starts = await Promise.all([0, 0, 0, 0].map(start));
  assert.deepEqual(starts.map((a) => a.status).sort(), [200, 409, 409, 409]);
  for (const a of starts.filter((x) => x.status === 409)) assert.equal(a.body.err_type, 'dkg_session_exists');
  d.round1.push(starts.find((a) => a.status === 200)!.body.round1 as DkgRound1Message);
  for (const i of [1, 2]) d.round1.push((await start(i)).body.round1 as DkgRound1Message);
  const round2s = await Promise.all([0, 0, 0, 0].map(() => dkgRound2(s, d, 0)));
  assert.deepEqual(round2s.map((a) => a.status).sort(), [200, 409, 409, 409]);
  for (const a of round2s.filter((x) => x.status === 409)) assert.equal(a.body.err_type, 'dkg_out_of_order');
  const round2 = [...(round2s.find((a) => a.status === 200)!.body.round2 as DkgRound2Message[])];
  for (const i of [1, 2]) round2.push(...((await dkgRound2(s, d, i)).body.round2 as DkgRound2Message[]));
  const finished = await Promise.all([0, 1, 2].map((i) => dkgFinish(s, d, i, forNode(d, round2, i))));
  assert.deepEqual(finished.map((a) => a.status), [200, 200, 200], JSON.stringify(finished.map((a) => a.body)));
  assert.equal(new Set(finished.map((a) => a.body.group_public_key)).size, 1);
}

// ----------------------------------------------------------------------------------------------------

describe('key node api (sqlite)', { timeout: 120_000 }, () => {
  let s: NodeSet;
  const keys = new Map<FrostCurve, KeyRef>();

  before(async () => {
    s = await startInProcessNodes(3);
  });
  after(() => s.close());

  describe('DKG through the SDK, then signing with every pair', () => {
    for (const curve of CURVES) {
      it(`${curve}: 2-of-3, one group key on every node, plain verifiers accept every pair's signature`, async () => {
        const key = await createKey(s.clients(), { threshold: 2, curve });
        keys.set(curve, key);
        assert.equal(key.groupPublicKey.length, curve === 'secp256k1' ? 66 : 64);
        const infos = await Promise.all(s.clients().map((c, i) => c.key(key.nodes[i]!.keyId)));
        for (const [i, info] of infos.entries()) {
          assert.equal(info.group_public_key, key.groupPublicKey);
          assert.deepEqual(info.public, key.public);
          assert.equal(info.identifier, identifierOf(curve, i + 1));
          assert.equal(info.origin, 'dkg');
          assert.equal(info.status, 'active');
        }
        const message = utf8.encode(`pay 1 BTC, ${curve}`);
        for (const signers of PAIRS) {
          const sig = await sign(key, s.clients(), message, { signers });
          assert.ok(verifiesPlainly(curve, sig, message, key.groupPublicKey), `pair ${signers.join(',')}`);
          assert.equal(verifiesPlainly(curve, sig, utf8.encode('another message'), key.groupPublicKey), false);
        }
      });
    }

    it('the SDK checks a key\'s public package once per process, by its content: a key reference changed in place to another package is checked anew', async () => {
      const ref = structuredClone(keys.get('ed25519')!);
      const message = utf8.encode('checked once');
      assert.ok(verifiesPlainly('ed25519', await sign(ref, s.clients(), message), message, ref.groupPublicKey));
      // The same object now holds bip340's package: a cache keyed by the object would sign with the old one.
      const pub = ref.public as Record<string, unknown>;
      for (const k of Object.keys(pub)) delete pub[k];
      Object.assign(pub, structuredClone(keys.get('bip340')!.public));
      await assert.rejects(sign(ref, s.clients(), message), (err) => isLifeboatError(err, 'invalid_input') && /bip340/.test(err.message));
    });

    it('a message of the default limit (1 MiB) signs; one byte more is 413 message_too_large naming the limit, and spends no nonce', async () => {
      const key = keys.get('ed25519')!;
      const message = randomBytes(1024 * 1024);
      assert.ok(verifiesPlainly('ed25519', await sign(key, s.clients(), message), message, key.groupPublicKey));
      const over = new Uint8Array(1024 * 1024 + 1);
      over.set(message);
      await assert.rejects(sign(key, s.clients(), over), (err) => isLifeboatError(err, 'message_too_large') && err.status === 413 && /limit of 1048576 bytes \(1 MiB\)/.test(err.message));
      // Round one was answered; round two refused before consuming the nonce (the TTL purge takes it).
      const c = await Promise.all([0, 1].map(async (i) => (await s.inject(i, { url: `/v1/keys/${key.nodes[i]!.keyId}/commitments`, token: s.tokens.client, body: {} })).body as { nonce_id: string; commitments: unknown }));
      const req = (m: Uint8Array) => s.inject(0, { url: `/v1/keys/${key.nodes[0]!.keyId}/signature-shares`, token: s.tokens.client, body: { nonce_id: c[0]!.nonce_id, message: toHex(m), commitments: c.map((x) => x.commitments) } });
      const nonces = await s.nodes[0]!.store.countNonces();
      expectError(await req(over), 413, 'message_too_large', /the message is 1048577 bytes, over this node's limit of 1048576 bytes \(1 MiB\)/);
      assert.equal(await s.nodes[0]!.store.countNonces(), nonces, 'the refused message spent no nonce');
      assert.ok((await req(utf8.encode('within the limit'))).body.signature_share, 'the same nonce still signs');
    });

    it('message_limit_bytes is the node\'s setting: a node started with 1 KiB signs 1024 bytes, refuses 1025 and any larger body by name; unauthenticated bodies are refused before they are read', async () => {
      const key = keys.get('ed25519')!;
      const n = s.nodes[0]!;
      n.config.message_limit_bytes = 1024;
      const small = createKeyNodeApp({ service: n.service, store: n.store });
      n.config.message_limit_bytes = MESSAGE_LIMIT_DEFAULT;
      try {
        const c = async () => Promise.all([0, 1].map(async (i) => (await s.inject(i, { url: `/v1/keys/${key.nodes[i]!.keyId}/commitments`, token: s.tokens.client, body: {} })).body as { nonce_id: string; commitments: unknown }));
        const share = async (m: string, token?: string) => {
          const r = await c();
          const res = await small.inject({ method: 'POST', url: `/v1/keys/${key.nodes[0]!.keyId}/signature-shares`, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, payload: JSON.stringify({ nonce_id: r[0]!.nonce_id, message: m, commitments: r.map((x) => x.commitments) }) });
          return { status: res.statusCode, body: JSON.parse(res.body) as Answer['body'] };
        };
        assert.equal((await share(toHex(randomBytes(1024)), s.tokens.client)).status, 200);
        expectError(await share(toHex(randomBytes(1025)), s.tokens.client), 413, 'message_too_large', /1025 bytes, over this node's limit of 1024 bytes \(1 KiB\)/);
        // Past the body limit (2 x 1 KiB + room): fastify stops reading, and the answer still names the limit.
        expectError(await share(toHex(randomBytes(64 * 1024)), s.tokens.client), 413, 'message_too_large', /over this node's limit of 1024 bytes \(1 KiB\)/);
        expectError(await share(toHex(randomBytes(64 * 1024))), 401, 'unauthorized');
        expectError(await share(toHex(randomBytes(16)), s.tokens.operator), 403, 'wrong_role');
        expectError(await share('abc', s.tokens.client), 400, 'invalid_input', /message/);
      } finally {
        await small.close();
      }
    });

    it('the coordinator cannot read round-2 packages: sealed to the recipient, no share bytes in what it relays', async () => {
      const d = await dkgStart(s, 'ed25519');
      const round2 = await dkgRound2All(s, d);
      assert.equal(round2.length, 6);
      const relayed = JSON.stringify(round2);
      const session = sessionOf(d);
      const stranger = generateBoxKeyPair();
      for (const m of round2) {
        const to = session.members.findIndex((x) => x.identifier === m.recipient);
        const from = session.members.findIndex((x) => x.identifier === m.sender);
        const sealed = fromB64(m.sealed, 'sealed');
        // The recipient (and only it) opens it; the share inside appears nowhere in what was relayed.
        const { share } = openRound2(session, session.members[to]!, session.members[from]!, m, s.nodes[to]!.secrets.identity.box);
        assert.equal(share.length, 32);
        assert.ok(!relayed.includes(toHex(share)) && !relayed.includes(toB64(share)) && !relayed.includes(toB64u(share)));
        assert.equal(Buffer.from(sealed).indexOf(Buffer.from(share)), -1);
        assert.throws(() => openSealed(sealed, stranger));
        assert.throws(() => openSealed(sealed, s.nodes[from]!.secrets.identity.box));
      }
      const finished = await Promise.all(s.nodes.map((_, i) => dkgFinish(s, d, i, forNode(d, round2, i))));
      assert.deepEqual(finished.map((f) => f.status), [200, 200, 200]);
      assert.equal(new Set(finished.map((f) => f.body.group_public_key)).size, 1);
    });
  });

  describe('a cheating participant aborts the DKG by name', () => {
    const namesNode3 = (a: Answer, code: string) => {
      assert.equal(a.status, 400, JSON.stringify(a.body));
      assert.equal(a.body.err_type, code);
      assert.match(a.body.message!, /participant 3\b/);
      assert.ok(a.body.message!.includes(s.nodes[2]!.identity.fingerprint), a.body.message);
    };

    it('round 1 changed in transit (one proof byte): dkg_message_rejected naming the claimed sender', async () => {
      const d = await dkgStart(s, 'secp256k1');
      const proof = fromHex(d.round1[2]!.proof_of_knowledge, 'proof');
      proof[proof.length - 1]! ^= 1;
      const bad = { ...d.round1[2]!, proof_of_knowledge: toHex(proof) };
      await unchanged(s, async () => {
        for (const i of [0, 1]) namesNode3(await dkgRound2(s, d, i, [d.round1[0], d.round1[1], bad]), 'dkg_message_rejected');
      });
    });

    it('round 1 with a bad proof of knowledge, properly signed by its sender: dkg_participant_cheated', async () => {
      const d = await dkgStart(s, 'ed25519');
      const m3 = d.round1[2]!;
      const proof = fromHex(m3.proof_of_knowledge, 'proof');
      proof[32]! ^= 1; // z's lowest byte
      const cheat = makeRound1(sessionOf(d), m3.sender, m3.commitment.map((c) => fromHex(c, 'c')), proof, s.nodes[2]!.secrets.identity.signing.secretKey);
      await unchanged(s, async () => {
        for (const i of [0, 1]) namesNode3(await dkgRound2(s, d, i, [d.round1[0], d.round1[1], cheat]), 'dkg_participant_cheated');
      });
    });

    it('round 2 changed in transit: dkg_message_rejected; a signed share off its commitments: dkg_participant_cheated', async () => {
      const d = await dkgStart(s, 'ed25519');
      const round2 = await dkgRound2All(s, d);
      const toNode1 = forNode(d, round2, 0);
      const from3 = toNode1.find((m) => m.sender === identifierOf('ed25519', 3))!;
      const sealed = fromB64(from3.sealed, 'sealed');
      sealed[60]! ^= 1;
      const session = sessionOf(d);
      const opened = openRound2(session, session.members[0]!, session.members[2]!, from3, s.nodes[0]!.secrets.identity.box);
      const badShare = fromHex(flipLowBit('ed25519', toHex(opened.share)), 'share');
      const cheat = makeRound2(session, session.members[2]!, session.members[0]!, opened.digests, badShare, s.nodes[2]!.secrets.identity.signing.secretKey);
      await unchanged(s, async () => {
        namesNode3(await dkgFinish(s, d, 0, toNode1.map((m) => (m === from3 ? { ...m, sealed: toB64(sealed) } : m))), 'dkg_message_rejected');
        const a = await dkgFinish(s, d, 0, toNode1.map((m) => (m === from3 ? cheat : m)));
        namesNode3(a, 'dkg_participant_cheated');
        assert.match(a.body.message!, /share that does not match its commitments/);
      });
    });
  });

  describe('DKG rounds replayed or out of order change nothing', () => {
    it('start twice, finish before round 2, round 2 twice, finish twice, unknown session, taken key id, not a participant', async () => {
      const d = await dkgStart(s, 'bip340');
      const start = { key_id: d.keyId, curve: d.curve, threshold: 2, participants: d.tokens };
      await unchanged(s, async () => {
        expectError(await s.inject(0, { url: `/v1/dkg/${d.sessionId}/start`, token: s.tokens.client, body: start }), 409, 'dkg_session_exists');
        expectError(await dkgFinish(s, d, 0, []), 400, 'invalid_input');
        expectError(await dkgFinish(s, d, 0, [{}]), 409, 'dkg_out_of_order');
        expectError(await s.inject(0, { url: '/v1/dkg/NoSuchSession1/round2', token: s.tokens.client, body: { round1: d.round1 } }), 404, 'dkg_session_not_found');
        const outsider = { ...start, participants: [d.tokens[1], d.tokens[2]] };
        expectError(await s.inject(0, { url: '/v1/dkg/OutsiderSession/start', token: s.tokens.client, body: outsider }), 400, 'dkg_not_a_participant');
      });
      // A round-1 package replayed from another session, as it was and with its session id rewritten.
      const other = await dkgStart(s, 'bip340');
      await unchanged(s, async () => {
        for (const replayed of [d.round1[2]!, { ...d.round1[2]!, session_id: other.sessionId }]) {
          const a = await dkgRound2(s, other, 0, [other.round1[0], other.round1[1], replayed]);
          expectError(a, 400, 'dkg_message_rejected', /participant 3\b.*(another session|bad signature)/);
        }
      });
      const round2 = await dkgRound2All(s, d);
      await unchanged(s, async () => {
        expectError(await dkgRound2(s, d, 0), 409, 'dkg_out_of_order', /replayed or reordered|step 2/);
      });
      for (let i = 0; i < 3; i++) assert.equal((await dkgFinish(s, d, i, forNode(d, round2, i))).status, 200);
      await unchanged(s, async () => {
        expectError(await dkgFinish(s, d, 0, forNode(d, round2, 0)), 404, 'dkg_session_not_found');
        expectError(await s.inject(0, { url: '/v1/dkg/AnotherSession1/start', token: s.tokens.client, body: start }), 409, 'key_exists');
      });
    });

    it('concurrent copies of a start and of a round 2: exactly one of each wins, and the DKG completes', () => concurrentDkgRounds(s));
  });

  describe('signing: single-use nonces, replayed lists, bad shares', () => {
    let key: KeyRef;
    const msgHex = toHex(utf8.encode('transfer'));
    const commit = async (i: number) => (await s.inject(i, { url: `/v1/keys/${key.nodes[i]!.keyId}/commitments`, token: s.tokens.client, body: {} })).body as { nonce_id: string; commitments: unknown };
    const shareReq = (i: number, nonceId: string, commitments: unknown[], message = msgHex) =>
      s.inject(i, { url: `/v1/keys/${key.nodes[i]!.keyId}/signature-shares`, token: s.tokens.client, body: { nonce_id: nonceId, message, commitments } });

    before(() => {
      key = keys.get('ed25519')!;
    });

    it('round 2 consumes the nonce: the same nonce_id again is 409 nonce_not_found', async () => {
      const [a, b] = [await commit(0), await commit(1)];
      const noncesBefore = await s.nodes[0]!.store.countNonces(key.nodes[0]!.keyId);
      assert.equal((await shareReq(0, a.nonce_id, [a.commitments, b.commitments])).status, 200);
      assert.equal(await s.nodes[0]!.store.countNonces(key.nodes[0]!.keyId), noncesBefore - 1);
      await unchanged(s, async () => {
        expectError(await shareReq(0, a.nonce_id, [a.commitments, b.commitments]), 409, 'nonce_not_found');
        expectError(await shareReq(0, 'f'.repeat(32), [a.commitments, b.commitments]), 409, 'nonce_not_found');
      });
    });

    it('each round reads the store once: the key, the nonce and the nonce epoch in one query; round two writes only its consume', async () => {
      const store = s.nodes[0]!.store;
      const spied = ['getKey', 'getMeta', 'getKeyForSigning', 'insertNonce', 'consumeNonce', 'claimNonce'] as const;
      const calls: string[] = [];
      const own = spied.map((name) => [name, Object.getOwnPropertyDescriptor(store, name)] as const);
      for (const name of spied) {
        const real = (store[name] as (...a: unknown[]) => Promise<unknown>).bind(store);
        Object.defineProperty(store, name, { configurable: true, value: (...a: unknown[]) => (calls.push(name), real(...a)) });
      }
      try {
        const [a, b] = [await commit(0), await commit(1)];
        assert.deepEqual(calls, ['getKeyForSigning', 'insertNonce'], 'round one');
        calls.length = 0;
        assert.equal((await shareReq(0, a.nonce_id, [a.commitments, b.commitments])).status, 200);
        assert.deepEqual(calls, ['getKeyForSigning', 'claimNonce'], 'round two: the consume, synced apart (claimNonce)');
        calls.length = 0;
        expectError(await shareReq(0, a.nonce_id, [a.commitments, b.commitments]), 409, 'nonce_not_found');
        assert.deepEqual(calls, ['getKeyForSigning'], 'a nonce the read does not find is refused without a write');
      } finally {
        for (const [name, d] of own) {
          if (d) Object.defineProperty(store, name, d);
          else delete (store as unknown as Record<string, unknown>)[name];
        }
      }
    });

    it('the nonce epoch is read with the key, never kept: a nonce of the epoch before a restore is refused, the next one carries the new epoch and signs', async () => {
      const store = s.nodes[0]!.store;
      const keyId = key.nodes[0]!.keyId;
      const [old, peer] = [await commit(0), await commit(1)];
      const epoch = (await store.getKeyForSigning(keyId, old.nonce_id))!;
      assert.equal(epoch.nonce?.epoch, epoch.nonceEpoch, 'round one stamps the current epoch');
      // What a restore does to the epoch, with the old nonce left in place (as a database-level restore
      // could bring one back before `node restore --database`): only the epoch check stands in its way.
      await store.setMeta(NONCE_EPOCH_META, String(epoch.nonceEpoch + 1));
      try {
        expectError(await shareReq(0, old.nonce_id, [old.commitments, peer.commitments]), 409, 'nonce_not_found', /before a restore/);
        assert.equal((await store.getKeyForSigning(keyId, old.nonce_id))!.nonce, undefined, 'the void nonce is gone');
        const [a, b] = [await commit(0), await commit(1)];
        assert.equal((await store.getKeyForSigning(keyId, a.nonce_id))!.nonce?.epoch, epoch.nonceEpoch + 1, 'the next round one has the new epoch');
        assert.equal((await shareReq(0, a.nonce_id, [a.commitments, b.commitments])).status, 200);
      } finally {
        await store.setMeta(NONCE_EPOCH_META, String(epoch.nonceEpoch));
      }
    });

    it('concurrent requests with one nonce: exactly one gets a share', async () => {
      for (let round = 0; round < 5; round++) {
        const [a, b] = [await commit(0), await commit(1)];
        const answers = await Promise.all([0, 1, 2, 3].map(() => shareReq(0, a.nonce_id, [a.commitments, b.commitments])));
        assert.deepEqual(answers.map((x) => x.status).sort(), [200, 409, 409, 409]);
        for (const x of answers.filter((y) => y.status !== 200)) assert.equal(x.body.err_type, 'nonce_not_found');
      }
    });

    it('a replayed or mixed commitment list is refused (commitment_mismatch), and the nonce is spent', async () => {
      const [a0, a1] = [await commit(0), await commit(1)];
      assert.equal((await shareReq(0, a0.nonce_id, [a0.commitments, a1.commitments])).status, 200);
      const [b0, b1] = [await commit(0), await commit(1)];
      // Node 2's fresh nonce with the previous round's list (replayed), and with node 1's new entry but its own old one (mixed).
      expectError(await shareReq(1, b1.nonce_id, [a0.commitments, a1.commitments]), 409, 'commitment_mismatch', /participant 2/);
      const [c0, c1] = [await commit(0), await commit(1)];
      expectError(await shareReq(1, c1.nonce_id, [c0.commitments, b1.commitments]), 409, 'commitment_mismatch');
      // Refused attempts spend their nonce: it is never used with another list.
      expectError(await shareReq(1, c1.nonce_id, [c0.commitments, c1.commitments]), 409, 'nonce_not_found');
      await unchanged(s, async () => {
        const lone = await commit(2);
        expectError(await shareReq(0, b0.nonce_id, [b0.commitments]), 400, 'invalid_input');
        await s.nodes[2]!.store.consumeNonce(key.nodes[2]!.keyId, lone.nonce_id);
      });
      assert.equal((await shareReq(0, b0.nonce_id, [b0.commitments, b1.commitments], 'zz')).status, 400, 'a malformed body is refused before the nonce is touched');
      assert.equal((await shareReq(0, b0.nonce_id, [b0.commitments, b1.commitments])).status, 200);
    });

    it('a nonce older than the TTL is refused (nonce_expired)', async () => {
      const [a, b] = [await commit(0), await commit(1)];
      s.nodes[0]!.config.nonce_ttl_seconds = -1;
      try {
        expectError(await shareReq(0, a.nonce_id, [a.commitments, b.commitments]), 409, 'nonce_expired');
      } finally {
        s.nodes[0]!.config.nonce_ttl_seconds = 600;
      }
      expectError(await shareReq(0, a.nonce_id, [a.commitments, b.commitments]), 409, 'nonce_not_found');
    });

    it('a commitment list with an invalid element (the identity, a low-order point) is refused and signs nothing', async () => {
      const [a, b] = [await commit(0), await commit(1)];
      const identity = `01${'00'.repeat(31)}`;
      const lowOrder = `ec${'ff'.repeat(30)}7f`; // -1 in y: a point of order 2 on edwards25519
      for (const bad of [identity, lowOrder]) {
        const list = [a.commitments, { ...(b.commitments as Record<string, string>), hiding: bad }];
        const res = await shareReq(0, a.nonce_id, list);
        assert.ok(res.status === 400 || res.status === 409, `status ${res.status}`);
        assert.ok(!('signature_share' in (res.body as object)), 'no signature share for an invalid list');
      }
      const again = [await commit(0), await commit(1)];
      assert.equal((await shareReq(0, again[0]!.nonce_id, [again[0]!.commitments, again[1]!.commitments])).status, 200, 'the node keeps signing');
    });

    it('purgeExpired deletes nonces past the TTL (a purged nonce never signs) and keeps fresh ones', async () => {
      const node = s.nodes[0]!;
      await node.store.deleteAllNonces();
      const [old, peer] = [await commit(0), await commit(1)];
      node.config.nonce_ttl_seconds = -1;
      try {
        assert.deepEqual(await node.service.purgeExpired(), { nonces: 1, dkgSessions: 0 });
      } finally {
        node.config.nonce_ttl_seconds = 600;
      }
      const fresh = await commit(0);
      assert.deepEqual(await node.service.purgeExpired(), { nonces: 0, dkgSessions: 0 });
      assert.equal(await node.store.countNonces(), 1);
      expectError(await shareReq(0, old.nonce_id, [old.commitments, peer.commitments]), 409, 'nonce_not_found');
      void fresh;
    });

    it('aggregation names the node whose signature share is bad (invalid_signature_share)', async () => {
      const liar = tamperAnswers((path, body) => {
        if (!path.endsWith('/signature-shares')) return undefined;
        const share = (body as { signature_share: { identifier: string; share: string } }).signature_share;
        return { signature_share: { ...share, share: flipLowBit('ed25519', share.share) } };
      });
      const clients = [s.client(0), s.client(1, s.tokens.client, liar), s.client(2)];
      await assert.rejects(sign(key, clients, utf8.encode('x'), { signers: [0, 1] }), (err) => {
        assert.ok(err instanceof SignatureShareError);
        assert.equal(err.code, 'invalid_signature_share');
        assert.deepEqual(err.participants, [identifierOf('ed25519', 2)]);
        assert.match(err.message, /participant 2\b/);
        assert.doesNotMatch(err.message, /participant 1\b/);
        return true;
      });
      assert.ok(verifiesPlainly('ed25519', await sign(key, clients, utf8.encode('x'), { signers: [0, 2] }), utf8.encode('x'), key.groupPublicKey));
    });
  });

  describe('export and import by policy (invariant 5)', () => {
    let key: KeyRef;
    const exportUrl = (keyId: string, type: string, wrapping?: string) => `/v1/backup/export-key-share/${keyId}?export_type=${type}${wrapping ? `&wrapping_key=${encodeURIComponent(wrapping)}` : ''}`;
    const exportAs = (i: number, token: string, type: string, wrapping?: string, keyId = key.nodes[i]!.keyId) => s.inject(i, { url: exportUrl(keyId, type, wrapping), token });
    const importAs = (i: number, token: string, exp: unknown) => s.inject(i, { url: '/v1/backup/import-key-share', token, body: exp });
    /** Signs with the share of node `i` under `keyId` together with node `j`'s original one. */
    const signsWith = async (i: number, keyId: string, j: number) => {
      const ref: KeyRef = { ...key, nodes: [{ url: s.nodes[i]!.url, keyId }, key.nodes[j]!] };
      const message = utf8.encode('after import');
      assert.ok(verifiesPlainly('secp256k1', await sign(ref, [s.client(i), s.client(j)], message), message, key.groupPublicKey));
    };

    before(() => {
      key = keys.get('secp256k1')!;
    });

    it('plaintext: refused unless enabled; then exported, imported under a new key id, imported again, and it signs', async () => {
      await unchanged(s, async () => expectError(await exportAs(0, s.tokens.operator, 'plaintext'), 403, 'plaintext_export_disabled'));
      s.nodes[0]!.config.export.plaintext = true;
      try {
        const a = await exportAs(0, s.tokens.operator, 'plaintext');
        assert.equal(a.status, 200);
        const exp = a.body as unknown as KeyShareExport;
        assert.deepEqual(Object.keys(exp).sort(), ['export_type', 'key_id', 'key_share', 'public']);
        assert.equal(exp.export_type, 'plaintext');
        const doc = JSON.parse(utf8.decode(fromB64(exp.key_share, 'share'))) as { type: string; signing_share: string; identifier: string };
        assert.equal(doc.type, 'lifeboat-key-share');
        assert.equal(doc.identifier, identifierOf('secp256k1', 1));
        // An operator's import names the owner: here the client's tenant, so the client signs with it.
        const first = await importAs(0, s.tokens.operator, { ...exp, tenant: ownTenantOf(s.tokens.client) });
        const again = await importAs(0, s.tokens.operator, { ...exp, tenant: ownTenantOf(s.tokens.client) });
        for (const imp of [first, again]) {
          assert.equal(imp.status, 200, JSON.stringify(imp.body));
          assert.notEqual(imp.body.key_id, key.nodes[0]!.keyId);
          assert.match(imp.body.key_id as string, /^key_[0-9a-f]{32}$/);
          assert.equal(imp.body.imported_from, key.nodes[0]!.keyId);
          assert.equal(imp.body.group_public_key, key.groupPublicKey);
          assert.equal(imp.body.origin, 'import');
        }
        assert.notEqual(first.body.key_id, again.body.key_id);
        await signsWith(0, again.body.key_id as string, 2);
        await unchanged(s, async () => expectError(await exportAs(0, s.tokens.client, 'plaintext'), 403, 'wrong_role'));
      } finally {
        s.nodes[0]!.config.export.plaintext = false;
      }
    });

    it('encrypted: a client exports it; it imports on the same node (new key id), not on another node', async () => {
      const a = await exportAs(1, s.tokens.client, 'encrypted');
      assert.equal(a.status, 200);
      const exp = a.body as unknown as KeyShareExport;
      assert.equal(exp.export_type, 'encrypted');
      assert.equal(utf8.decode(fromB64(exp.key_share, 'share').subarray(0, 4)), 'LBKS');
      await unchanged(s, async () => {
        expectError(await importAs(0, s.tokens.client, exp), 400, 'decryption_failed');
        expectError(await importAs(2, s.tokens.operator, exp), 400, 'decryption_failed');
      });
      const imp = await importAs(1, s.tokens.client, exp);
      assert.equal(imp.status, 200);
      assert.notEqual(imp.body.key_id, key.nodes[1]!.keyId);
      await signsWith(1, imp.body.key_id as string, 0);
    });

    it("encrypted exports are sealed for the key's tenant: a client of another tenant holding one cannot import it, even relabelled; an operator may give it an owner", async () => {
      const { token: other, record } = newApiKey('client', 'another tenant');
      await s.nodes[1]!.store.insertApiKey(record);
      const { token: ofDefault, record: defaultRecord } = newApiKey('client', 'tenant default', { tenant: 'default' });
      await s.nodes[1]!.store.insertApiKey(defaultRecord);
      const exp = (await exportAs(1, s.tokens.client, 'encrypted')).body as unknown as KeyShareExport;
      await unchanged(s, async () => {
        expectError(await importAs(1, other, exp), 403, 'wrong_role');
        // Naming its own tenant or none (as an export made before tenants) does not open it.
        expectError(await importAs(1, other, { ...exp, export_tenant: ownTenantOf(other) }), 400, 'decryption_failed');
        // Without export_tenant it reads as an export made before tenants (tenant default, the node's
        // export key itself): not this client's tenant, and for a client of default it does not open.
        const { export_tenant: _drop, ...unnamed } = exp;
        expectError(await importAs(1, other, unnamed), 403, 'wrong_role');
        expectError(await importAs(1, ofDefault, unnamed), 400, 'decryption_failed');
      });
      assert.equal(exp.export_tenant, ownTenantOf(s.tokens.client));
      assert.deepEqual((await s.inject(1, { url: '/v1/keys', token: other })).body.keys, []);
      // An operator's import without a tenant keeps the export's owner, not tenant default (whose client keys would get it).
      const kept = await importAs(1, s.tokens.operator, exp);
      assert.equal(kept.status, 200, JSON.stringify(kept.body));
      assert.equal(kept.body.tenant, ownTenantOf(s.tokens.client));
      assert.equal((await s.inject(1, { url: `/v1/keys/${kept.body.key_id as string}`, token: ofDefault })).status, 404);
      const moved = await importAs(1, s.tokens.operator, { ...exp, tenant: ownTenantOf(other) });
      assert.equal(moved.status, 200, JSON.stringify(moved.body));
      assert.equal(moved.body.tenant, ownTenantOf(other));
    });

    it('wrapped: only to a whitelisted wrapping key; the holder of that key imports it', async () => {
      const target = (await s.inject(1, { url: '/v1/wrapping-key', token: s.tokens.client })).body.wrapping_public_key as string;
      await unchanged(s, async () => {
        expectError(await exportAs(0, s.tokens.operator, 'wrapped', target), 403, 'wrapping_key_not_whitelisted', /whitelist/);
        expectError(await exportAs(0, s.tokens.operator, 'wrapped'), 400, 'wrapping_key_required');
        expectError(await exportAs(0, s.tokens.operator, 'wrapped', 'not-base64!'), 400, 'invalid_input');
        expectError(await exportAs(0, s.tokens.client, 'wrapped', target), 403, 'wrong_role');
      });
      s.nodes[0]!.config.export.whitelist.push({ label: 'node 2', wrapping_key: target });
      try {
        const other = toB64(generateBoxKeyPair().publicKey);
        await unchanged(s, async () => expectError(await exportAs(0, s.tokens.operator, 'wrapped', other), 403, 'wrapping_key_not_whitelisted'));
        const a = await exportAs(0, s.tokens.operator, 'wrapped', target);
        assert.equal(a.status, 200);
        const exp = a.body as unknown as KeyShareExport;
        assert.equal(exp.export_type, 'wrapped');
        assert.equal(openSealed(fromB64(exp.key_share, 'share'), s.nodes[1]!.secrets.wrapping).length > 0, true);
        await unchanged(s, async () => {
          expectError(await importAs(2, s.tokens.operator, exp), 400, 'decryption_failed');
          expectError(await importAs(1, s.tokens.client, exp), 403, 'wrong_role');
        });
        // Node 2 now also holds participant 1's share (a migration) and signs with it beside node 3.
        const imp = await importAs(1, s.tokens.operator, { ...exp, tenant: ownTenantOf(s.tokens.client) });
        assert.equal(imp.status, 200, JSON.stringify(imp.body));
        assert.equal(imp.body.identifier, identifierOf('secp256k1', 1));
        await signsWith(1, imp.body.key_id as string, 2);
      } finally {
        s.nodes[0]!.config.export.whitelist.length = 0;
      }
    });

    it('export disabled as a whole: export_disabled for every type and role', async () => {
      s.nodes[2]!.config.export.enabled = false;
      try {
        await unchanged(s, async () => {
          for (const [token, type] of [
            [s.tokens.client, 'encrypted'],
            [s.tokens.operator, 'encrypted'],
            [s.tokens.operator, 'plaintext'],
            [s.tokens.operator, 'wrapped'],
          ] as const) {
            expectError(await exportAs(2, token, type, toB64(s.nodes[0]!.secrets.wrapping.publicKey)), 403, 'export_disabled');
          }
        });
      } finally {
        s.nodes[2]!.config.export.enabled = true;
      }
    });

    it('import checks the share against its verifying share: a changed share is share_mismatch and stores nothing', async () => {
      s.nodes[0]!.config.export.plaintext = true;
      let exp: KeyShareExport;
      try {
        exp = (await exportAs(0, s.tokens.operator, 'plaintext')).body as unknown as KeyShareExport;
      } finally {
        s.nodes[0]!.config.export.plaintext = false;
      }
      const doc = JSON.parse(utf8.decode(fromB64(exp.key_share, 'share'))) as Record<string, unknown>;
      const withDoc = (d: Record<string, unknown>, pub: unknown = exp.public) => ({ ...exp, key_share: toB64(utf8.encode(JSON.stringify(d))), public: pub });
      const otherKey = keys.get('bip340')!;
      const encrypted = (await exportAs(0, s.tokens.client, 'encrypted')).body as unknown as KeyShareExport;
      const blob = fromB64(encrypted.key_share, 'share');
      blob[blob.length - 1]! ^= 1;
      await unchanged(s, async () => {
        expectError(await importAs(0, s.tokens.operator, withDoc({ ...doc, signing_share: flipLowBit('secp256k1', doc.signing_share as string) })), 400, 'share_mismatch', /participant 1/);
        // Another participant's identifier for this share: its verifying share does not match either.
        expectError(await importAs(0, s.tokens.operator, withDoc({ ...doc, identifier: identifierOf('secp256k1', 2) })), 400, 'share_mismatch');
        // The share bound to another key's public package, consistently inside and out.
        const otherSecp = { ...(otherKey.public as Record<string, unknown>), curve: 'secp256k1' };
        expectError(await importAs(0, s.tokens.operator, withDoc({ ...doc, public: otherSecp }, otherSecp)), 400, 'share_mismatch');
        // Outer public package differing from the one inside.
        expectError(await importAs(0, s.tokens.operator, withDoc(doc, otherSecp)), 400, 'malformed', /public package differs/);
        expectError(await importAs(0, s.tokens.operator, withDoc(doc, keys.get('ed25519')!.public)), 400, 'invalid_input');
        expectError(await importAs(0, s.tokens.client, { ...encrypted, key_share: toB64(blob) }), 400, 'decryption_failed');
        // The package fixes the threshold: a caller may repeat it, not change it.
        for (const threshold of [1, 3]) expectError(await importAs(0, s.tokens.client, { ...encrypted, threshold }), 400, 'invalid_input', /threshold/);
        // The outer key id must be the one sealed in the envelope's header.
        expectError(await importAs(0, s.tokens.client, { ...encrypted, key_id: newKeyId() }), 400, 'key_share_mismatch');
      });
    });

    it('GET /v1/wrapping-key answers the node wrapping public key to clients and operators', async () => {
      for (let i = 0; i < 3; i++) {
        for (const token of [s.tokens.client, s.tokens.operator]) {
          const a = await s.inject(i, { url: '/v1/wrapping-key', token });
          assert.equal(a.status, 200);
          assert.deepEqual(a.body, { wrapping_public_key: toB64(s.nodes[i]!.secrets.wrapping.publicKey) });
        }
      }
      expectError(await s.inject(0, { url: '/v1/wrapping-key' }), 401, 'unauthorized');
    });
  });

  describe('bad input: a clear typed error that changes nothing, and the node keeps answering', () => {
    let keyId: string;
    before(() => {
      keyId = keys.get('ed25519')!.nodes[0]!.keyId;
    });

    it('unknown key ids answer 404 key_id_not_exists on every route; malformed ones 400', async () => {
      const unknown = newKeyId();
      const c = (await s.inject(0, { url: `/v1/keys/${keyId}/commitments`, token: s.tokens.client, body: {} })).body;
      await unchanged(s, async () => {
        const asked: Answer[] = [
          await s.inject(0, { url: `/v1/keys/${unknown}`, token: s.tokens.client }),
          await s.inject(0, { url: `/v1/keys/${unknown}/commitments`, token: s.tokens.client, body: {} }),
          await s.inject(0, { url: `/v1/keys/${unknown}/signature-shares`, token: s.tokens.client, body: { nonce_id: c.nonce_id, message: '00', commitments: [c.commitments, c.commitments] } }),
          await s.inject(0, { url: `/v1/backup/export-key-share/${unknown}`, token: s.tokens.client }),
        ];
        for (const a of asked) {
          expectError(a, 404, 'key_id_not_exists');
          assert.deepEqual(Object.keys(a.body).sort(), ['err_type', 'hint', 'message']);
        }
        for (const bad of ['key%20id', 'a.b', 'x'.repeat(65), '%00', 'k%2F..%2Fx']) {
          expectError(await s.inject(0, { url: `/v1/keys/${bad}`, token: s.tokens.client }), 400, 'invalid_input', /key_id/);
          expectError(await s.inject(0, { url: `/v1/keys/${bad}/commitments`, token: s.tokens.client, body: {} }), 400, 'invalid_input');
          expectError(await s.inject(0, { url: `/v1/backup/export-key-share/${bad}`, token: s.tokens.client }), 400, 'invalid_input');
        }
        const start = { key_id: 'a.b', curve: 'ed25519', threshold: 2, participants: s.nodes.map((n) => n.identity.identity) };
        expectError(await s.inject(0, { url: '/v1/dkg/SessionBadKey/start', token: s.tokens.client, body: start }), 400, 'invalid_input', /key_id/);
      });
    });

    it('wrong, unknown, malformed and revoked API keys are 401 alike; the wrong role is 403', async () => {
      const [, id] = /^lbk_([0-9a-f]{16})_/.exec(s.tokens.client)!;
      const wrongSecret = `lbk_${id}_${toB64u(randomBytes(32))}`;
      const unknownId = `lbk_${'0'.repeat(16)}_${toB64u(randomBytes(32))}`;
      await unchanged(s, async () => {
        const answers: Answer[] = [];
        const nonCanonical = `lbk_${id}_${'B'.repeat(43)}`; // the right shape, but 2 trailing bits set
        for (const token of [undefined, wrongSecret, unknownId, 'lbk_nope', nonCanonical, s.tokens.revoked]) {
          answers.push(await s.inject(0, { url: `/v1/keys/${keyId}/commitments`, token, body: {} }));
          answers.push(await s.inject(0, { url: `/v1/keys/${keyId}`, token }));
        }
        answers.push(await s.inject(0, { url: `/v1/keys/${keyId}`, headers: { authorization: s.tokens.client } }));
        for (const a of answers) expectError(a, 401, 'unauthorized');
        assert.equal(new Set(answers.map((a) => a.body.message)).size, 1, 'every 401 reads the same');
        expectError(await s.inject(0, { url: `/v1/keys/${keyId}/commitments`, token: s.tokens.operator, body: {} }), 403, 'wrong_role');
        expectError(await s.inject(0, { url: '/v1/dkg/SessionOperator/start', token: s.tokens.operator, body: {} }), 403, 'wrong_role');
        expectError(await s.inject(0, { url: '/v1/status', token: s.tokens.client }), 403, 'wrong_role');
      });
      const status = await s.inject(0, { url: '/v1/status', token: s.tokens.operator });
      assert.equal(status.status, 200);
      assert.equal(status.body.keys, await s.nodes[0]!.store.countKeys());
    });

    it('oversized bodies are 413, malformed JSON 400, other media types 415', async () => {
      const big = JSON.stringify({ key_id: 'x', export_type: 'encrypted', key_share: 'A'.repeat(70 * 1024), public: {} });
      const huge = JSON.stringify({ nonce_id: '0'.repeat(32), message: '00'.repeat(1100 * 1024), commitments: [] });
      await unchanged(s, async () => {
        expectError(await s.inject(0, { url: '/v1/backup/import-key-share', token: s.tokens.operator, body: big }), 413, 'body_too_large');
        expectError(await s.inject(0, { url: '/v1/dkg/SessionTooBig/start', token: s.tokens.client, body: big }), 413, 'body_too_large');
        expectError(await s.inject(0, { url: `/v1/keys/${keyId}/signature-shares`, token: s.tokens.client, body: huge }), 413, 'message_too_large', /limit of 1048576 bytes/);
        expectError(await s.inject(0, { url: '/v1/backup/import-key-share', token: s.tokens.operator, body: '{"key_id":' }), 400, 'malformed_json');
        expectError(await s.inject(0, { url: `/v1/keys/${keyId}/signature-shares`, token: s.tokens.client, body: '[1,2' }), 400, 'malformed_json');
        expectError(await s.inject(0, { url: '/v1/backup/import-key-share', token: s.tokens.operator, body: 'key_id=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 415, 'unsupported_media_type');
        expectError(await s.inject(0, { url: '/v1/backup/import-key-share', token: s.tokens.operator, body: { key_id: 'x' } }), 400, 'invalid_input');
        expectError(await s.inject(0, { url: '/v1/dkg/SessionJunk01/start', token: s.tokens.client, body: [] }), 400, 'invalid_input');
      });
      const key = keys.get('ed25519')!;
      const message = utf8.encode('still serving');
      assert.ok(verifiesPlainly('ed25519', await sign(key, s.clients(), message), message, key.groupPublicKey));
    });
  });

  describe('self-recovering client (node database wiped)', () => {
    it('sign fails with key_id_not_exists; signWithRecovery imports the saved export and signs under the same group key', async () => {
      const key = await createKey(s.clients(), { threshold: 2, curve: 'bip340' });
      const saved = await saveExports(key, s.clients());
      const message = utf8.encode('recover me');
      await s.replaceStore(1, `sqlite:${join(s.root, 'node-2-new.sqlite')}`);
      assert.equal(await s.nodes[1]!.store.countKeys(), 0);
      await assert.rejects(sign(key, s.clients(), message), (err) => isLifeboatError(err, 'key_id_not_exists') && (err as { status: number }).status === 404);
      const lostId = key.nodes[1]!.keyId;
      const recovered: [string, string][] = [];
      const sig = await signWithRecovery(key, s.clients(), message, saved, { onRecover: (url, id) => recovered.push([url, id]) });
      assert.ok(verifiesPlainly('bip340', sig, message, key.groupPublicKey));
      assert.deepEqual(recovered, [[s.nodes[1]!.url, key.nodes[1]!.keyId]]);
      assert.notEqual(key.nodes[1]!.keyId, lostId);
      const info = await s.client(1).key(key.nodes[1]!.keyId);
      assert.equal(info.group_public_key, key.groupPublicKey);
      assert.equal(info.origin, 'import');
      for (const signers of PAIRS) assert.ok(verifiesPlainly('bip340', await sign(key, s.clients(), message, { signers }), message, key.groupPublicKey));
    });
  });
});

describe('key node api (postgresql)', { skip: postgresSkipReason(), timeout: 120_000 }, () => {
  let pg: TestPostgres;
  let s: NodeSet;
  const extra: string[] = [];

  before(async () => {
    pg = await startTestPostgres();
    const urls = [pg.url];
    for (const n of [2, 3]) {
      const name = `${new URL(pg.url).pathname.slice(1)}_node${n}`;
      await execSql(pg.url, `create database ${name}`);
      extra.push(name);
      const u = new URL(pg.url);
      u.pathname = `/${name}`;
      urls.push(u.toString());
    }
    s = await startInProcessNodes(3, { storeUrls: urls });
  });
  after(async () => {
    await s?.close();
    for (const name of extra) await execSql(pg.url, `drop database if exists ${name} with (force)`);
    await pg?.stop();
  });

  it('DKG and signing with every pair, on every curve', async () => {
    assert.equal(s.nodes[0]!.store.kind, 'postgres');
    for (const curve of CURVES) {
      const key = await createKey(s.clients(), { threshold: 2, curve });
      const message = utf8.encode(`postgres ${curve}`);
      for (const signers of PAIRS) assert.ok(verifiesPlainly(curve, await sign(key, s.clients(), message, { signers }), message, key.groupPublicKey));
    }
  });

  it('concurrent copies of a DKG start and of a round 2: exactly one of each wins, and the DKG completes', () => concurrentDkgRounds(s));

  it('a nonce is consumed once: reuse is nonce_not_found, and of concurrent requests exactly one wins', async () => {
    const key = await createKey(s.clients(), { threshold: 2, curve: 'ed25519' });
    const commit = async (i: number) => (await s.inject(i, { url: `/v1/keys/${key.nodes[i]!.keyId}/commitments`, token: s.tokens.client, body: {} })).body;
    const shareReq = (nonceId: unknown, list: unknown[]) =>
      s.inject(0, { url: `/v1/keys/${key.nodes[0]!.keyId}/signature-shares`, token: s.tokens.client, body: { nonce_id: nonceId, message: 'abcd', commitments: list } });
    for (let round = 0; round < 5; round++) {
      const [a, b] = [await commit(0), await commit(1)];
      const answers = await Promise.all([0, 1, 2, 3].map(() => shareReq(a.nonce_id, [a.commitments, b.commitments])));
      assert.deepEqual(answers.map((x) => x.status).sort(), [200, 409, 409, 409]);
      expectError((await shareReq(a.nonce_id, [a.commitments, b.commitments])) as Answer, 409, 'nonce_not_found');
    }
    assert.equal(await s.nodes[0]!.store.countNonces(), 0);
  });
});
