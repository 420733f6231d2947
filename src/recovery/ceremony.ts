/**
 * The unseal ceremony, one keyholder at a time, each at their own machine (docs/unseal.md, "The
 * ceremony"; formats in docs/format.md, "Unseal session and step"):
 *   begin  the primary makes a one-time X25519 box key and writes the session file (0600); the session
 *          token (`lbus1.…`: session id, scheme id, box public key, expiry) is what keyholders get;
 *   step   a keyholder checks the typed share against the manifest and seals {session, member, words}
 *          to the session key: the step file, safe to carry;
 *   add    the primary opens a step in memory, checks it, and keeps only the sealed step in the session;
 *          at t distinct members it combines, stores the master key and deletes the session (and key);
 *   reset  deletes the session.
 * No share is on the primary's disk in the clear: the session file holds sealed steps and the box key.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { LifeboatError } from '../errors.js';
import { randomBytes } from '../crypto/random.js';
import { boxPublicKey, type BoxKeyPair, generateBoxKeyPair, openSealed, seal } from '../crypto/sealedbox.js';
import { concatBytes, fromB64, fromB64u, fromHex, toB64, toB64u, toHex, utf8 } from '../util/bytes.js';
import { readFileOrThrow, shredFile, writeFileAtomic, assertPrivateFile } from '../util/files.js';
import { type CheckedShare, checkShareAgainstManifest } from './collect.js';
import type { Manifest } from './manifest.js';

const TOKEN_PREFIX = 'lbus1.';
/** Session id 16 || scheme id 16 || box public key 32 || expiry (ms since 1970, u64 big-endian) 8. */
const TOKEN_BYTES = 72;

export interface SessionToken {
  sessionId: string;
  schemeId: string;
  publicKey: Uint8Array;
  expiresAt: number;
}

const sessionFile = z.object({
  version: z.literal(1),
  type: z.literal('lifeboat-unseal-session'),
  session_id: z.string().regex(/^[0-9a-f]{32}$/),
  scheme_id: z.string().regex(/^[0-9a-f]{32}$/),
  box_secret_key: z.string(),
  created_at: z.string(),
  expires_at: z.string(),
  steps: z.array(z.object({ member_index: z.number().int().min(0).max(15), sealed: z.string() })).max(16),
});
export type UnsealSession = z.infer<typeof sessionFile>;

const stepFile = z.object({
  version: z.literal(1),
  type: z.literal('lifeboat-unseal-step'),
  session_id: z.string().regex(/^[0-9a-f]{32}$/),
  member_index: z.number().int().min(0).max(15),
  sealed: z.string(),
});
export type UnsealStep = z.infer<typeof stepFile>;

const sealedPayload = z.object({ session_id: z.string(), member_index: z.number().int(), mnemonic: z.string() });

function ceremonyError(code: string, message: string, hint: string): LifeboatError {
  return new LifeboatError(code, message, { hint });
}

export function sessionPath(dataDir: string): string {
  return join(dataDir, 'unseal-session.json');
}

export function encodeSessionToken(t: SessionToken): string {
  const exp = new Uint8Array(8);
  new DataView(exp.buffer).setBigUint64(0, BigInt(t.expiresAt));
  return TOKEN_PREFIX + toB64u(concatBytes(fromHex(t.sessionId, 'session id', 16), fromHex(t.schemeId, 'scheme id', 16), t.publicKey, exp));
}

/** Parses `lbus1.…`. Throws InvalidInputError-coded `unseal_session_invalid`. */
export function parseSessionToken(token: string): SessionToken {
  const bad = (): never => {
    throw ceremonyError('unseal_session_invalid', 'the unseal session is not an lbus1.… token', 'copy the session the primary printed at `lifeboat unseal --begin`');
  };
  if (typeof token !== 'string' || !token.startsWith(TOKEN_PREFIX)) bad();
  let raw: Uint8Array;
  try {
    raw = fromB64u(token.slice(TOKEN_PREFIX.length), 'unseal session', TOKEN_BYTES);
  } catch {
    return bad();
  }
  return { sessionId: toHex(raw.slice(0, 16)), schemeId: toHex(raw.slice(16, 32)), publicKey: raw.slice(32, 64), expiresAt: Number(new DataView(raw.buffer, raw.byteOffset + 64, 8).getBigUint64(0)) };
}

function expired(what: string, at: number): LifeboatError {
  return ceremonyError('unseal_session_expired', `the unseal session expired at ${new Date(at).toISOString()}${what}`, 'start a new one on the primary: `lifeboat unseal --reset`, then `lifeboat unseal --begin`');
}

/** Opens a session on the primary. Throws `unseal_session_exists` while one is open and not expired. */
export function beginSession(dataDir: string, manifest: Manifest, ttlMs: number, now = Date.now()): { token: string; expiresAt: number } {
  const path = sessionPath(dataDir);
  if (existsSync(path)) {
    const s = loadSession(dataDir);
    if (Date.parse(s.expires_at) > now) throw ceremonyError('unseal_session_exists', `an unseal session is open until ${s.expires_at} (${s.steps.length} of ${manifest.threshold} steps)`, 'go on with `lifeboat unseal --add FILE`, or abort it with `lifeboat unseal --reset`');
  }
  const kp = generateBoxKeyPair();
  const sessionId = toHex(randomBytes(16));
  const expiresAt = now + ttlMs;
  const doc: UnsealSession = { version: 1, type: 'lifeboat-unseal-session', session_id: sessionId, scheme_id: manifest.scheme_id, box_secret_key: toB64(kp.secretKey), created_at: new Date(now).toISOString(), expires_at: new Date(expiresAt).toISOString(), steps: [] };
  writeFileAtomic(path, `${JSON.stringify(doc)}\n`);
  return { token: encodeSessionToken({ sessionId, schemeId: manifest.scheme_id, publicKey: kp.publicKey, expiresAt }), expiresAt };
}

/** The open session. Throws `unseal_session_not_found`, `insecure_permissions`, `malformed`. */
export function loadSession(dataDir: string): UnsealSession {
  const path = sessionPath(dataDir);
  if (!existsSync(path)) throw ceremonyError('unseal_session_not_found', 'no unseal session is open on this primary', 'start one with `lifeboat unseal --begin`');
  assertPrivateFile(path, 'unseal session');
  try {
    return sessionFile.parse(JSON.parse(utf8.decode(readFileOrThrow(path, 'unseal session'))));
  } catch {
    throw new LifeboatError('malformed', `${path} is not an unseal session`, { hint: 'remove it with `lifeboat unseal --reset`' });
  }
}

/** Ends the session: the file (and the one-time key in it) is overwritten and removed. */
export function resetSession(dataDir: string): boolean {
  const path = sessionPath(dataDir);
  if (!existsSync(path)) return false;
  shredFile(path);
  return true;
}

/**
 * A keyholder's step: the typed share checked against the manifest, sealed to the session key. Throws
 * `unseal_session_expired`, `unseal_session_mismatch` (a manifest of another scheme), ShareError
 * (`share_set_mismatch`, typos).
 */
export function makeStep(token: SessionToken, manifest: Manifest, mnemonic: string, now = Date.now()): UnsealStep {
  if (token.expiresAt <= now) throw expired('', token.expiresAt);
  if (token.schemeId !== manifest.scheme_id) throw ceremonyError('unseal_session_mismatch', `the session is for recovery scheme ${token.schemeId}, the manifest is of ${manifest.scheme_id}`, 'use the manifest of the primary that began the session');
  const share = checkShareAgainstManifest(manifest, mnemonic, 'the typed share');
  const payload = utf8.encode(JSON.stringify({ session_id: token.sessionId, member_index: share.memberIndex, mnemonic: share.mnemonic }));
  return { version: 1, type: 'lifeboat-unseal-step', session_id: token.sessionId, member_index: share.memberIndex, sealed: toB64(seal(payload, token.publicKey)) };
}

export function parseStep(bytes: Uint8Array, source: string): UnsealStep {
  try {
    return stepFile.parse(JSON.parse(utf8.decode(bytes)));
  } catch {
    throw new LifeboatError('malformed', `${source} is not an unseal step`, { hint: 'give the file `lifeboat unseal --step` wrote' });
  }
}

function keyPairOf(s: UnsealSession): BoxKeyPair {
  const secretKey = fromB64(s.box_secret_key, 'session key', 32);
  return { secretKey, publicKey: boxPublicKey(secretKey) };
}

/** Opens one sealed step (in memory) and checks it against the manifest and the session. */
function openStep(s: UnsealSession, manifest: Manifest, step: { member_index: number; sealed: string }, source: string): CheckedShare {
  let payload: z.infer<typeof sealedPayload>;
  try {
    payload = sealedPayload.parse(JSON.parse(utf8.decode(openSealed(fromB64(step.sealed, 'sealed step'), keyPairOf(s)))));
  } catch {
    throw ceremonyError('unseal_step_invalid', `${source} does not open with this session's key`, 'the step was made for another session, or altered: ask the keyholder for a new step against the current session');
  }
  if (payload.session_id !== s.session_id || payload.member_index !== step.member_index) {
    throw ceremonyError('unseal_step_invalid', `${source} is bound to another session or member than it says`, 'ask the keyholder for a new step');
  }
  const share = checkShareAgainstManifest(manifest, payload.mnemonic, source);
  if (share.memberIndex !== step.member_index) throw ceremonyError('unseal_step_invalid', `${source} names member ${step.member_index + 1}, its share is member ${share.memberIndex + 1}`, 'ask the keyholder for a new step');
  return share;
}

/**
 * Adds a step to the open session. Returns the distinct members so far; the caller combines when they
 * reach the threshold. Throws `unseal_session_expired`, `unseal_session_mismatch` (a step of another
 * session), `unseal_step_replayed` (a member already in), `unseal_step_invalid`, ShareError.
 */
export function addStep(dataDir: string, manifest: Manifest, step: UnsealStep, source: string, now = Date.now()): { count: number; session: UnsealSession } {
  const s = loadSession(dataDir);
  if (Date.parse(s.expires_at) <= now) throw expired('; nothing was added', Date.parse(s.expires_at));
  if (s.scheme_id !== manifest.scheme_id) throw ceremonyError('unseal_session_mismatch', `the session is for recovery scheme ${s.scheme_id}, the primary's manifest is of ${manifest.scheme_id}`, 'reset it and begin a new one');
  if (step.session_id !== s.session_id) throw ceremonyError('unseal_session_mismatch', `${source} belongs to unseal session ${step.session_id}, not to the open one (${s.session_id}); nothing was added`, 'the keyholder must run `lifeboat unseal --step` with the session this primary printed');
  if (s.steps.some((x) => x.member_index === step.member_index || x.sealed === step.sealed)) {
    throw ceremonyError('unseal_step_replayed', `${source}: member ${step.member_index + 1} already gave its step in this session; nothing was added`, 'each keyholder gives one step; ask another keyholder');
  }
  openStep(s, manifest, step, source);
  const next: UnsealSession = { ...s, steps: [...s.steps, { member_index: step.member_index, sealed: step.sealed }] };
  writeFileAtomic(sessionPath(dataDir), `${JSON.stringify(next)}\n`);
  return { count: next.steps.length, session: next };
}

/** The shares of every step of the session, opened in memory for the combine. */
export function openAllSteps(s: UnsealSession, manifest: Manifest): string[] {
  return s.steps.map((x, i) => openStep(s, manifest, x, `step ${i + 1}`).mnemonic);
}
