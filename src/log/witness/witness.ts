/**
 * The witness's rule (C2SP tlog-witness, "add-checkpoint"; issue 9 point 3): co-sign a log's new
 * checkpoint only if it carries the log's signature, the client knows the size the witness holds, and
 * a consistency proof from the held checkpoint to the new one verifies; then keep the new checkpoint
 * (atomically, before answering). Check and store run under one lock per log, so two requests from
 * the same old size cannot both succeed. A checkpoint that cannot extend the held one is a fork: it is
 * refused with the spec's status, named in an error line (`onFork`), and its evidence is kept.
 */
import { InvalidInputError, LogVerificationError } from '../../errors.js';
import { type Checkpoint, openCheckpoint, type OpenedCheckpoint, peekCheckpoint } from '../checkpoint.js';
import { cosignCheckpoint } from '../cosignature.js';
import { LogError } from '../errors.js';
import { EMPTY_ROOT, equalBytes } from '../merkle.js';
import { encodeNote, type NoteSigner, parseSignatureLine } from '../note.js';
import { verifyConsistency } from '../proof.js';
import type { WitnessPaths } from './datadir.js';
import { WitnessError } from './errors.js';
import { describeFork, type ForkKind, keepForkEvidence } from './forks.js';
import { type AddCheckpointRequest, parseAddCheckpoint } from './request.js';
import { heldCheckpoint, type LogState, logVerifier, originHash, readLog, readLogByHash, saveCheckpoint } from './state.js';

/** A 409: the client's old size is not the witness's. The answer's body is `heldSize` (text/x.tlog.size). */
export class OldSizeMismatchError extends WitnessError {
  constructor(
    readonly heldSize: number,
    oldSize: number,
  ) {
    super('old_size_mismatch', `the old size ${oldSize} is not the size this witness holds (${heldSize})`, 'send the size in the answer as old, with the proof from it');
  }
}

/** What `onFork` is told: both checkpoints by label, and where the evidence is kept. */
export interface ForkReport {
  kind: ForkKind;
  origin: string;
  held: Checkpoint;
  offered: Checkpoint;
  /** `forks/<file>` under the witness directory. */
  evidence: string;
  /** The sentence naming both checkpoints. */
  message: string;
}

export interface WitnessOptions {
  paths: WitnessPaths;
  signer: NoteSigner;
  /** Called once per refused fork, after its evidence is written (the server logs an error line). */
  onFork?: (f: ForkReport) => void;
}

/** A witness over its data directory: `addCheckpoint` is the add-checkpoint endpoint without HTTP. */
export class Witness {
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(private readonly o: WitnessOptions) {}

  /** Runs `fn` after every earlier call for the same origin has finished (one chain per log). */
  private async serialized<T>(origin: string, fn: () => T): Promise<T> {
    const key = originHash(origin);
    const prev = this.locks.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => {});
    this.locks.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    }
  }

  /**
   * Handles one add-checkpoint body. Returns the co-signature line(s) to answer 200 with. Throws
   * WitnessError: `witness_request_malformed` (400: also an old size above the checkpoint's),
   * `log_unknown` (404), `log_signature_invalid` (403), OldSizeMismatchError (409), `checkpoint_invalid`
   * or `consistency_proof_invalid` (422), `log_forked` (422, or 400/409 where the spec's earlier rule
   * answers first: then the thrown error is that one, and the fork is reported all the same).
   */
  async addCheckpoint(body: Uint8Array | string): Promise<string> {
    const req = parseAddCheckpoint(body);
    let origin: string;
    try {
      origin = peekCheckpoint(req.checkpoint).origin;
    } catch (err) {
      throw new WitnessError('witness_request_malformed', `add-checkpoint request is malformed: ${(err as Error).message}`, (err as LogError).hint);
    }
    return this.serialized(origin, () => this.decide(req, origin));
  }

  private decide(req: AddCheckpointRequest, origin: string): string {
    const state = readLog(this.o.paths, origin);
    if (!state) throw new WitnessError('log_unknown', `this witness does not witness the log ${origin}`, 'the witness operator adds logs with `lifeboat log witness add-log --vkey LOG_VKEY`');
    const opened = openLogCheckpoint(req.checkpoint, state);
    const offered = opened.checkpoint;
    const heldCp = heldCheckpoint(state);
    const held = heldCp ?? { origin, size: 0, rootHash: EMPTY_ROOT, extensions: [] };
    let fork: ForkKind | null = null;
    if (heldCp && offered.size === heldCp.size && !equalBytes(offered.rootHash, heldCp.rootHash)) fork = 'same_size_different_root';
    if (heldCp && offered.size < heldCp.size) fork = 'smaller_tree';
    const refuse = (kind: ForkKind, status: number, instead?: Error): never => {
      const report = this.reportFork(kind, state, held, offered, req);
      throw instead ?? new WitnessError('log_forked', report.message, `do not trust this log; the witness kept both signed checkpoints in ${report.evidence}`, status);
    };
    // The spec's order: the old size against the checkpoint's (400), then against the held one (409).
    if (req.oldSize > offered.size) {
      const e = new WitnessError('witness_request_malformed', `the old size ${req.oldSize} is larger than the checkpoint's size ${offered.size}`);
      if (fork) refuse(fork, 400, fork === 'smaller_tree' ? undefined : e);
      throw e;
    }
    if (req.oldSize !== held.size) {
      const e = new OldSizeMismatchError(held.size, req.oldSize);
      if (fork) refuse(fork, 409, e);
      throw e;
    }
    if (fork) refuse(fork, 422);
    try {
      verifyConsistency(req.proof, held.size, held.rootHash, offered.size, offered.rootHash);
    } catch (err) {
      if (err instanceof InvalidInputError) throw new WitnessError('witness_request_malformed', `add-checkpoint request is malformed: ${err.message}`);
      if (!(err instanceof LogVerificationError)) throw err;
      if (offered.size === 0) throw new WitnessError('checkpoint_invalid', 'a checkpoint of size 0 must have the root of the empty tree', 'the log is broken: check its checkpoint');
      // A wrong root at the end of a well-formed proof from a checkpoint this witness co-signed.
      if (heldCp && heldCp.size > 0 && err.reason === 'root_mismatch') refuse('proof_failed', 422);
      throw new WitnessError('consistency_proof_invalid', `the consistency proof does not verify: ${err.message}`, 'send the RFC 6962 consistency proof from the old size to the checkpoint size');
    }
    const line = cosignCheckpoint(opened.text, this.o.signer);
    // What is kept: the text, the log's verified signature(s) and this co-signature.
    const kept = encodeNote({ text: opened.text, signatures: [...opened.note.verified, ...line.trimEnd().split('\n').map(parseSignatureLine)] });
    saveCheckpoint(this.o.paths, state, kept);
    return line;
  }

  private reportFork(kind: ForkKind, state: LogState, held: Checkpoint, offered: Checkpoint, req: AddCheckpointRequest): ForkReport {
    const evidence = keepForkEvidence(this.o.paths, { kind, origin: state.origin, held: state.checkpoint!, offered: req.checkpoint, oldSize: req.oldSize, proof: req.proof });
    const report = { kind, origin: state.origin, held, offered, evidence, message: describeFork(kind, held, offered) };
    this.o.onFork?.(report);
    return report;
  }

  /** The checkpoint last co-signed for the log of this origin hash (the monitoring API), or undefined. */
  heldNote(hash: string): string | undefined {
    return readLogByHash(this.o.paths, hash)?.checkpoint ?? undefined;
  }
}

/** Opens the checkpoint with the log's key: a bad or missing log signature is 403, a bad body 400. */
function openLogCheckpoint(note: string, state: LogState): OpenedCheckpoint {
  try {
    return openCheckpoint(note, logVerifier(state), { origin: state.origin });
  } catch (err) {
    if (err instanceof LogError && (err.code === 'note_unverified' || err.code === 'note_signature_invalid')) {
      throw new WitnessError('log_signature_invalid', `the checkpoint has no good signature of the log ${state.origin}: ${err.message}`, 'the checkpoint must be signed by the log key the witness was given');
    }
    if (err instanceof LogError) throw new WitnessError('witness_request_malformed', `add-checkpoint request is malformed: ${err.message}`, err.hint);
    throw err;
  }
}
