/**
 * The log's side of C2SP tlog-witness: after the log signs a new checkpoint, `collectCosignatures`
 * sends it to every configured witness at once (POST <url>/add-checkpoint, with the size the log last
 * saw each witness co-sign and the consistency proof from it), verifies every co-signature it gets
 * back against that witness's key, and returns the checkpoint with the good ones added, plus one
 * outcome per witness for the log's own logging. A witness that refuses, is down or answers garbage is
 * an outcome, never a throw: the log decides what quorum it needs (docs/log.md, "Witnesses").
 *
 * Used by the log server's sequencer (src/log/server/); testable without a store through the small
 * WitnessSizes interface (LogStore satisfies it).
 */
import { addSignatureLines, encodeSignatureLine, type NoteVerifier, openNote } from '../note.js';
import { cosignatureTimestamp, parseWitnessVerifierKey } from '../cosignature.js';
import { peekCheckpoint } from '../checkpoint.js';
import type { WitnessStateRecord } from '../store/types.js';
import { readCappedText } from '../../util/http-body.js';
import { LifeboatError } from '../../errors.js';
import { tlsFetch } from '../../util/tls-fetch.js';
import { encodeAddCheckpoint, parseTlogSize } from './request.js';

/** A witness as the log's configuration (log.json `witnesses`) names it. */
export interface WitnessEndpoint {
  /** The witness's verifier key, `<name>+<key id>+<base64(0x04 || key)>` (printed by `log witness init`). */
  vkey: string;
  /** Its submission prefix: add-checkpoint is POSTed to `<url>/add-checkpoint`. */
  url: string;
}

/** What the log's store knows of its witnesses (src/log/store/types.ts; a LogStore is one). */
export interface WitnessSizes {
  listWitnessStates(): Promise<WitnessStateRecord[]>;
  /** Records the size a witness co-signed; never lowers it. */
  setWitnessSize(name: string, size: number, now: number): Promise<void>;
}

/**
 * Proves that the log's tree of `oldSize` leaves is a prefix of the tree of `newSize` (oldSize <=
 * newSize): the log computes it over its own tiles, e.g. `(a, b) => proveConsistency(a, b, reader)`.
 */
export type ProveConsistency = (oldSize: number, newSize: number) => Promise<Uint8Array[]>;

export interface CollectOptions {
  /** The new checkpoint as a signed note of the log's key (co-signature lines already on it are kept). */
  checkpoint: string;
  witnesses: readonly WitnessEndpoint[];
  prove: ProveConsistency;
  sizes: WitnessSizes;
  /**
   * For each witness's whole exchange (a 409 retry and the store's calls included), counted from the
   * call: the store's list of sizes comes under it too. Default 5,000 ms.
   */
  timeoutMs?: number;
  /** Calls the round off: every request in flight is aborted and every exchange ends (`aborted`). */
  signal?: AbortSignal;
  /**
   * Co-signatures to wait for (default: every witness). The call returns `graceMs` after that many
   * co-signed, or when every witness is done if sooner.
   */
  quorum?: number;
  /** How long the rest get once the quorum is reached. Default 200 ms. */
  graceMs?: number;
  /** Clock for the store's `updatedAt` (ms). Default Date.now. */
  now?: () => number;
}

/** How one witness's exchange ended. */
export type WitnessResult =
  /** It co-signed, and its co-signature verified. */
  | 'cosigned'
  /** It answered a 4xx refusal (unknown log, bad signature, bad proof, a fork, a size it holds past ours). */
  | 'refused'
  /** No answer in time, a connection error, or a 5xx. */
  | 'unreachable'
  /** A 200 whose body is not a good co-signature of its key, or an answer that breaks the protocol. */
  | 'bad_answer'
  /** The log could not build the request (its proof function threw, or the configured key is bad). */
  | 'error'
  /** Still going when the call returned (quorum and grace reached): its final outcome is in `settled`. */
  | 'pending';

export interface WitnessOutcome {
  /** The witness key's name (from its vkey). */
  witness: string;
  url: string;
  result: WitnessResult;
  /** The old size of the last request sent (0 when none was sent). */
  oldSize: number;
  /** Whether a 409 made the cosigner try again with the size the witness named. */
  retried: boolean;
  /** The HTTP status of the last answer, if any. */
  status?: number;
  /** The witness's `err_type` (its JSON error body) or the cosigner's own reason, when not cosigned. */
  errType?: string;
  /** A lowercase sentence for the log's log. */
  message: string;
  /** The co-signature's timestamp (seconds), when cosigned. */
  timestamp?: number;
}

export interface CollectResult {
  /** The checkpoint note with every good co-signature line added (the input unchanged when none). */
  checkpoint: string;
  /** How many witnesses co-signed. */
  cosigned: number;
  /** One per configured witness, in the configured order, as they stood when the call returned. */
  outcomes: WitnessOutcome[];
  /**
   * Every witness's final outcome, once all are done (the pending ones go on until their timeout or
   * the signal; a late co-signature still raises the store's size for that witness, but is not on
   * `checkpoint`). Never rejects.
   */
  settled: Promise<WitnessOutcome[]>;
}

const DEFAULT_TIMEOUT_MS = 5_000;
const DEFAULT_GRACE_MS = 200;
const MAX_ANSWER_BYTES = 64 * 1024;

/**
 * The name under which the store keeps a witness's size (src/log/store/types.ts names are 1 to 64 of
 * [A-Za-z0-9_.-]): the key name with other characters as `_`, cut to 55, then `-` and the key ID in
 * hex, so two keys of one name (a rotation) never share a row.
 */
export function witnessStateName(witness: Pick<NoteVerifier, 'name' | 'keyId'>): string {
  const safe = witness.name.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 55);
  return `${safe}-${(witness.keyId >>> 0).toString(16).padStart(8, '0')}`;
}

function errTypeOf(body: string | null): { errType?: string; message?: string } {
  try {
    const j = JSON.parse(body ?? '') as { err_type?: unknown; message?: unknown };
    const errType = typeof j.err_type === 'string' && /^[a-z0-9_]{1,64}$/.test(j.err_type) ? j.err_type : undefined;
    const message = typeof j.message === 'string' ? j.message.slice(0, 500) : undefined;
    return { errType, message };
  } catch {
    return {};
  }
}

interface Attempt {
  status: number;
  body: string | null;
  contentType: string;
}

async function post(url: string, body: string, signal: AbortSignal): Promise<Attempt> {
  const res = await tlsFetch(`${url.replace(/\/+$/, '')}/add-checkpoint`, { method: 'POST', body, headers: { 'content-type': 'text/plain; charset=utf-8' }, signal });
  return { status: res.status, body: await readCappedText(res, MAX_ANSWER_BYTES), contentType: res.headers.get('content-type') ?? '' };
}

/**
 * Checks a 200 answer: one or more signature lines; the lines of this witness's key must verify over
 * the checkpoint (a bad one fails the answer), other keys' lines are dropped. Returns the good lines
 * and their timestamp, or a reason.
 */
function checkAnswer(checkpoint: string, body: string | null, witness: NoteVerifier): { lines: string; timestamp: number } | { reason: string } {
  if (body === null) return { reason: 'the answer is too large' };
  let mine;
  try {
    const withLines = addSignatureLines(checkpoint, body);
    mine = openNote(withLines, [witness]).verified;
  } catch (err) {
    return { reason: `the answer is not a good co-signature of ${witness.name}: ${(err as Error).message}` };
  }
  const sigs = mine.filter((s) => s.name === witness.name && s.keyId === witness.keyId);
  if (sigs.length === 0) return { reason: `the answer has no co-signature of ${witness.name}` };
  const timestamp = cosignatureTimestamp(sigs[0]!.signature);
  if (timestamp === null || timestamp === 0) return { reason: 'the co-signature has no timestamp' };
  return { lines: sigs.map(encodeSignatureLine).join(''), timestamp };
}

/** `p`, or a rejection when `signal` aborts first (the promise itself is left to settle on its own). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal, what: string): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error(`${what}: ${abortReason(signal)}`));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new Error(`${what}: ${abortReason(signal)}`));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function abortReason(signal: AbortSignal): string {
  return (signal.reason as Error | undefined)?.name === 'TimeoutError' ? 'no answer in time' : 'the round was called off';
}

async function exchange(
  o: CollectOptions,
  endpoint: WitnessEndpoint,
  known: Map<string, number>,
  size: number,
  signal: AbortSignal,
): Promise<{ outcome: WitnessOutcome; lines?: string }> {
  let witness: NoteVerifier;
  try {
    witness = parseWitnessVerifierKey(endpoint.vkey);
  } catch (err) {
    return { outcome: { witness: '?', url: endpoint.url, result: 'error', oldSize: 0, retried: false, errType: 'verifier_key_invalid', message: (err as Error).message } };
  }
  const stateName = witnessStateName(witness);
  const base = { witness: witness.name, url: endpoint.url };
  let oldSize = Math.min(known.get(stateName) ?? 0, size);
  let retried = false;
  for (;;) {
    let body: string;
    try {
      body = encodeAddCheckpoint({ oldSize, proof: await o.prove(oldSize, size), checkpoint: o.checkpoint });
    } catch (err) {
      return { outcome: { ...base, result: 'error', oldSize, retried, errType: 'proof_unavailable', message: `cannot prove consistency from size ${oldSize} to ${size}: ${(err as Error).message}` } };
    }
    let a: Attempt;
    try {
      a = await post(endpoint.url, body, signal);
    } catch (err) {
      if (signal.aborted && o.signal?.aborted) return { outcome: { ...base, result: 'unreachable', oldSize, retried, errType: 'aborted', message: 'the round was called off before it answered' } };
      const timedOut = signal.aborted;
      // tls_untrusted and its kin keep their own err_type (src/util/tls-fetch.ts)
      const tls = !timedOut && err instanceof LifeboatError ? err.code : undefined;
      const message = timedOut ? `no answer within ${o.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms` : `cannot reach it: ${(err as Error).message}`;
      return { outcome: { ...base, result: 'unreachable', oldSize, retried, errType: timedOut ? 'timeout' : (tls ?? 'peer_unreachable'), message } };
    }
    if (a.status === 200) {
      const checked = checkAnswer(o.checkpoint, a.body, witness);
      if ('reason' in checked) return { outcome: { ...base, result: 'bad_answer', oldSize, retried, status: 200, errType: 'cosignature_invalid', message: checked.reason } };
      let message = `co-signed size ${size}`;
      try {
        await untilAborted(o.sizes.setWitnessSize(stateName, size, (o.now ?? Date.now)()), signal, 'the store did not record it');
      } catch (err) {
        // The co-signature is good either way; the next push starts from an older size and gets a 409.
        message += `; could not record its size: ${(err as Error).message}`;
      }
      return { outcome: { ...base, result: 'cosigned', oldSize, retried, status: 200, message, timestamp: checked.timestamp }, lines: checked.lines };
    }
    if (a.status === 409) {
      const held = a.contentType.startsWith('text/x.tlog.size') ? parseTlogSize(a.body ?? '') : null;
      if (held === null) return { outcome: { ...base, result: 'bad_answer', oldSize, retried, status: 409, errType: 'size_answer_invalid', message: 'a 409 answer without a text/x.tlog.size body' } };
      if (held > size) {
        return {
          outcome: { ...base, result: 'refused', oldSize, retried, status: 409, errType: 'witness_ahead', message: `the witness holds size ${held}, larger than this checkpoint's ${size}: it saw a larger tree of this log` },
        };
      }
      if (!retried && held !== oldSize) {
        oldSize = held;
        retried = true;
        continue;
      }
      return { outcome: { ...base, result: 'refused', oldSize, retried, status: 409, errType: 'old_size_mismatch', message: `the witness still holds size ${held} after a retry` } };
    }
    const e = errTypeOf(a.body);
    const result: WitnessResult = a.status >= 500 || a.status === 429 ? 'unreachable' : a.status >= 400 ? 'refused' : 'bad_answer';
    return { outcome: { ...base, result, oldSize, retried, status: a.status, errType: e.errType ?? `http_${a.status}`, message: e.message ?? `answered ${a.status}` } };
  }
}

/**
 * Sends `checkpoint` to every witness in parallel and collects their co-signatures, returning once
 * `quorum` of them co-signed plus `graceMs` for the rest (see CollectOptions). Per witness: the
 * old size is the one the store has for it (0 at first), with the proof from it; a 409 naming a size
 * at most the checkpoint's is retried once from that size; a returned line counts only if it verifies
 * under the witness's configured key, and then the store's size for it is raised. Each witness has
 * `timeoutMs` from the call for its whole exchange, the store's calls included; `signal` ends them all.
 *
 * Never throws for a witness's failure (see WitnessOutcome); throws only what `peekCheckpoint` throws
 * for a checkpoint note that does not parse, and what `sizes.listWitnessStates` throws (or an Error
 * when it does not answer before the timeout or the signal). Calls for one log must not overlap
 * (await one before starting the next, as a sequencer loop does): two overlapping calls would race
 * each other at the witnesses, and a witness that gets the larger checkpoint first refuses the smaller
 * one as a rollback.
 */
export async function collectCosignatures(o: CollectOptions): Promise<CollectResult> {
  const { size } = peekCheckpoint(o.checkpoint);
  // Every witness's clock starts here, before any store call.
  const timeout = AbortSignal.timeout(o.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const signal = o.signal ? AbortSignal.any([timeout, o.signal]) : timeout;
  const known = new Map((await untilAborted(o.sizes.listWitnessStates(), signal, 'the store did not list the witnesses\' sizes')).map((s) => [s.name, s.size]));
  const runs = o.witnesses.map((w) =>
    exchange(o, w, known, size, signal).catch((err: unknown) => ({
      outcome: { witness: witnessName(w.vkey), url: w.url, result: 'error' as const, oldSize: 0, retried: false, errType: 'internal_error', message: (err as Error).message },
      lines: undefined,
    })),
  );
  const done = await untilQuorum(runs, Math.min(o.quorum ?? runs.length, runs.length), o.graceMs ?? DEFAULT_GRACE_MS);
  let checkpoint = o.checkpoint;
  for (const d of done) if (d?.lines) checkpoint = addSignatureLines(checkpoint, d.lines);
  const outcomes = done.map(
    (d, i): WitnessOutcome => d?.outcome ?? { witness: witnessName(o.witnesses[i]!.vkey), url: o.witnesses[i]!.url, result: 'pending', oldSize: 0, retried: false, message: 'still going when the quorum was reached' },
  );
  return { checkpoint, cosigned: done.filter((d) => d?.lines).length, outcomes, settled: Promise.all(runs).then((all) => all.map((r) => r.outcome)) };
}

type Exchanged = { outcome: WitnessOutcome; lines?: string };

/** The configured key's name for an outcome, through the key parser; `?` for a key that does not parse. */
function witnessName(vkey: string): string {
  try {
    return parseWitnessVerifierKey(vkey).name;
  } catch {
    return '?';
  }
}

/**
 * Waits until `quorum` exchanges co-signed, then `graceMs` more, or until all are done if sooner (a
 * quorum out of reach waits for all: every co-signature still counts). Returns what was done by then
 * (undefined: still going).
 */
function untilQuorum(runs: Promise<Exchanged>[], quorum: number, graceMs: number): Promise<(Exchanged | undefined)[]> {
  const done: (Exchanged | undefined)[] = runs.map(() => undefined);
  let finished = 0;
  let cosigned = 0;
  return new Promise((resolve) => {
    let grace: NodeJS.Timeout | undefined;
    const step = (): void => {
      if (finished === runs.length) {
        clearTimeout(grace);
        resolve([...done]);
      } else if (grace === undefined && cosigned >= quorum) {
        grace = setTimeout(() => resolve([...done]), graceMs);
      }
    };
    runs.forEach((p, i) =>
      void p.then((r) => {
        done[i] = r;
        finished++;
        if (r.lines) cosigned++;
        step();
      }),
    );
    step();
  });
}
