/**
 * A submitter's client of the log's write path (docs/log.md, "HTTP API"): `addEntry` POSTs an entry
 * and returns the inclusion proof document the log answers; `addEntryVerified` also checks it with
 * the log's verifier key. What key nodes use to publish (and `lifeboat log add`).
 */
import { z } from 'zod';
import { LifeboatError, PeerError } from '../../errors.js';
import { ctEqual, utf8 } from '../../util/bytes.js';
import type { Checkpoint } from '../checkpoint.js';
import { type InclusionDoc, parseInclusionDoc, verifyInclusionDoc } from '../inclusion.js';
import { leafHash } from '../merkle.js';
import type { NoteVerifier } from '../note.js';
import { readCappedBody } from '../../util/http-body.js';
import { tlsFetch } from '../../util/tls-fetch.js';

const errorAnswer = z.object({ err_type: z.string().regex(/^[a-z0-9_]{1,64}$/), message: z.string().max(2000), hint: z.string().max(2000).optional() });

/** Longest an add may wait: the log answers once a checkpoint covers the entry (a batch or two). */
export const DEFAULT_ADD_TIMEOUT_MS = 90_000;
const MAX_ANSWER_BYTES = 1024 * 1024;

/**
 * Adds `bytes` (an LBLE entry) to the log at `url` and returns its inclusion proof document, with
 * `entry` set to the bytes sent. The document is parsed, not verified (see addEntryVerified). Throws
 * LifeboatError with the log's err_type and status when it refuses (e.g. `submitter_not_enrolled`,
 * `entry_signature_invalid`, `entry_too_large`), PeerError `peer_unreachable` (down, timed out) and
 * `peer_bad_answer` (an answer outside the protocol, or a document of another entry).
 */
export async function addEntry(url: string, bytes: Uint8Array, opts: { timeoutMs?: number; fetch?: typeof fetch } = {}): Promise<InclusionDoc> {
  const base = url.replace(/\/+$/, '');
  const timeoutMs = opts.timeoutMs ?? DEFAULT_ADD_TIMEOUT_MS;
  let res: Response;
  let raw: Uint8Array | null;
  try {
    res = await (opts.fetch ?? tlsFetch)(`${base}/add`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', accept: 'application/json' },
      body: bytes,
      signal: AbortSignal.timeout(timeoutMs),
    });
    raw = await readCappedBody(res, MAX_ANSWER_BYTES);
  } catch (err) {
    if (err instanceof LifeboatError) throw err; // tls_untrusted and its kin (src/util/tls-fetch.ts)
    const e = err as Error & { cause?: { code?: string } };
    const why = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.message);
    throw new PeerError('peer_unreachable', `log at ${base} is unreachable: ${why}`, 'check the url and that `lifeboat log serve` runs there; sending the same entry again is safe');
  }
  const bad = (what: string): PeerError => new PeerError('peer_bad_answer', `log at ${base} answered outside the protocol: ${what}`, 'is that url a lifeboat log?');
  if (raw === null) throw bad('the answer is too large');
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(raw));
  } catch {
    throw bad(`HTTP ${res.status} with a body that is not json`);
  }
  if (!res.ok) {
    const e = errorAnswer.safeParse(value);
    if (!e.success) throw bad(`HTTP ${res.status} without an error document`);
    throw new LifeboatError(e.data.err_type, `log at ${base}: ${e.data.message}`, { status: res.status, hint: e.data.hint });
  }
  let doc: InclusionDoc;
  try {
    doc = parseInclusionDoc(value);
  } catch (err) {
    throw bad((err as Error).message);
  }
  if (!ctEqual(doc.leafHash, leafHash(bytes))) throw bad('the proof is of another entry');
  return { ...doc, entry: bytes.slice() };
}

/**
 * addEntry, then checks the answer with the log's verifier key (and a witness quorum when given):
 * the checkpoint's signature and the inclusion path. Throws what addEntry and verifyInclusionDoc
 * throw (`note_*`, `witness_quorum_not_met`, `proof_invalid`).
 */
export async function addEntryVerified(
  url: string,
  bytes: Uint8Array,
  logVerifier: NoteVerifier,
  opts: { timeoutMs?: number; witnesses?: readonly NoteVerifier[]; quorum?: number } = {},
): Promise<{ doc: InclusionDoc; checkpoint: Checkpoint }> {
  const doc = await addEntry(url, bytes, opts);
  return { doc, checkpoint: verifyInclusionDoc(doc, logVerifier, opts) };
}
