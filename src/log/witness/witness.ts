/**
 * The witness's rule (C2SP tlog-witness, "add-checkpoint"; issue 9 point 3): co-sign a log's new
 * checkpoint only if it carries the log's signature, the client knows the size the witness holds, and
 * a consistency proof from the held checkpoint to the new one verifies; then keep the new checkpoint
 * (atomically, before answering). Check and store run under one lock per log, so two requests from
 * the same old size cannot both succeed. Only a checkpoint of the held size with another root, signed
 * by the log, is a fork (`log_forked`): the pair proves itself, so its evidence is kept and it is named
 * in an error line (`onFork`, once per new pair). A smaller tree is the spec's plain 409 (or 400), and a
 * proof that does not verify is `consistency_proof_invalid`: anyone can send those (old checkpoints are
 * public, proofs are unsigned), so they accuse no one; a well-formed proof that leads to another root is
 * only a warning line (`onWarning`, rate-limited per log).
 */
import { InvalidInputError, LogVerificationError } from '../../errors.js';
import { type Checkpoint, checkpointLabel, openCheckpoint, type OpenedCheckpoint, peekCheckpoint } from '../checkpoint.js';
import { cosignCheckpoint } from '../cosignature.js';
import { LogError } from '../errors.js';
import { EMPTY_ROOT, equalBytes } from '../merkle.js';
import { encodeNote, type NoteSigner, parseSignatureLine } from '../note.js';
import { verifyConsistency } from '../proof.js';
import type { WitnessPaths } from './datadir.js';
import { WitnessError } from './errors.js';
import { describeFork, type ForkKind, keepForkEvidence, MAX_FORK_FILES_PER_LOG } from './forks.js';
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

/** At most one warning line per log in this many ms (and one "evidence not kept" fork line). */
export const WARNING_INTERVAL_MS = 60_000;

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

/**
 * What `onWarning` is told: a checkpoint signed by the log, larger than the held one, whose well-formed
 * consistency proof from the held checkpoint leads to another root. Not evidence of a fork (anyone can
 * pair a genuine checkpoint with a made-up proof), but worth a look if the log's own pushes do it.
 */
export interface WitnessWarning {
  /** `proof_leads_elsewhere`; `smaller_tree`: a checkpoint signed by the log, smaller than the held one. */
  kind: 'proof_leads_elsewhere' | 'smaller_tree';
  origin: string;
  held: Checkpoint;
  offered: Checkpoint;
  /** How many such requests of this log went without a line since the last one. */
  suppressed: number;
  message: string;
}

export interface WitnessOptions {
  paths: WitnessPaths;
  signer: NoteSigner;
  /** Called for a new fork pair once its evidence is written (the server logs an error line). */
  onFork?: (f: ForkReport) => void;
  /** Called for a proof that leads elsewhere, at most once per log per WARNING_INTERVAL_MS. */
  onWarning?: (w: WitnessWarning) => void;
  /** Evidence files kept per log (default MAX_FORK_FILES_PER_LOG). */
  maxForkFilesPerLog?: number;
  /** Clock (ms) for the rate limit. Default Date.now. */
  now?: () => number;
}

/** A witness over its data directory: `addCheckpoint` is the add-checkpoint endpoint without HTTP. */
export class Witness {
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Per origin hash and line kind: when the last rate-limited line was written, and how many were skipped since. */
  private readonly lastLine = new Map<string, { at: number; suppressed: number }>();

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
   * `log_unknown` (404), `log_signature_invalid` (403), OldSizeMismatchError (409: also a smaller tree
   * than the held one), `checkpoint_invalid` or `consistency_proof_invalid` (422), `log_forked` (422 for
   * the held size with another root; 400/409 where the spec's earlier rule answers first: then the
   * thrown error is that one, and the fork is reported all the same).
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
    // The held size with another root, both signed by the log: a fork that proves itself.
    const fork = heldCp !== null && offered.size === heldCp.size && !equalBytes(offered.rootHash, heldCp.rootHash);
    const refuse = (status: number, instead?: Error): never => {
      const report = this.reportFork('same_size_different_root', state, held, offered, req);
      throw instead ?? new WitnessError('log_forked', report.message, `do not trust this log; the witness kept both signed checkpoints in ${report.evidence}`, status);
    };
    // A smaller tree than the held one, signed by the log: refused below (409 or 400) and named in a
    // warning line (rate-limited): a log that went back shows here, but so does anyone replaying an old
    // public checkpoint, so it is not kept as evidence.
    if (heldCp !== null && offered.size < heldCp.size) this.warnSmaller(state.origin, heldCp, offered);
    // The spec's order: the old size against the checkpoint's (400), then against the held one (409).
    // A smaller tree than the held one always ends here: its size is below the held size.
    if (req.oldSize > offered.size) {
      const e = new WitnessError('witness_request_malformed', `the old size ${req.oldSize} is larger than the checkpoint's size ${offered.size}`);
      if (fork) refuse(400, e);
      throw e;
    }
    if (req.oldSize !== held.size) {
      const e = new OldSizeMismatchError(held.size, req.oldSize);
      if (fork) refuse(409, e);
      throw e;
    }
    if (fork) refuse(422);
    // The held checkpoint again (same size, same root, no proof): co-signed again, the state left as it is.
    const replay = heldCp !== null && offered.size === heldCp.size && req.proof.length === 0;
    if (!replay) {
      try {
        verifyConsistency(req.proof, held.size, held.rootHash, offered.size, offered.rootHash);
      } catch (err) {
        if (err instanceof InvalidInputError) throw new WitnessError('witness_request_malformed', `add-checkpoint request is malformed: ${err.message}`);
        if (!(err instanceof LogVerificationError)) throw err;
        if (offered.size === 0) throw new WitnessError('checkpoint_invalid', 'a checkpoint of size 0 must have the root of the empty tree', 'the log is broken: check its checkpoint');
        // A well-formed proof from the held checkpoint that leads to another root: a warning, not evidence.
        if (heldCp && heldCp.size > 0 && err.reason === 'root_mismatch') this.warnProof(state.origin, heldCp, offered);
        throw new WitnessError('consistency_proof_invalid', `the consistency proof does not verify: ${err.message}`, 'send the RFC 6962 consistency proof from the old size to the checkpoint size');
      }
    }
    const line = cosignCheckpoint(opened.text, this.o.signer);
    // What is kept: the text, the log's verified signature(s) and this co-signature.
    const kept = encodeNote({ text: opened.text, signatures: [...opened.note.verified, ...line.trimEnd().split('\n').map(parseSignatureLine)] });
    if (!replay) saveCheckpoint(this.o.paths, state, kept);
    return line;
  }

  /** Keeps the pair's evidence; tells onFork about a new pair (a full log's new pairs: rate-limited). */
  private reportFork(kind: ForkKind, state: LogState, held: Checkpoint, offered: Checkpoint, req: AddCheckpointRequest): ForkReport {
    const kept = keepForkEvidence(
      this.o.paths,
      { kind, origin: state.origin, held: state.checkpoint!, offered: req.checkpoint, oldSize: req.oldSize, proof: req.proof },
      new Date(),
      this.o.maxForkFilesPerLog ?? MAX_FORK_FILES_PER_LOG,
    );
    const report = { kind, origin: state.origin, held, offered, evidence: kept.evidence, message: describeFork(kind, held, offered) };
    if (kept.status === 'kept' || (kept.status === 'full' && this.lineDue(`fork:${state.origin}`) !== null)) this.o.onFork?.(report);
    return report;
  }

  private warnProof(origin: string, held: Checkpoint, offered: Checkpoint): void {
    const suppressed = this.lineDue(`proof:${origin}`);
    if (suppressed === null) return;
    const message = `a checkpoint signed by log ${origin}, ${checkpointLabel(offered)}, came with a consistency proof from ${checkpointLabel(held)} that leads to another root; refused as consistency_proof_invalid (not evidence of a fork: proofs are unsigned, check the log with \`lifeboat log audit\`)`;
    this.o.onWarning?.({ kind: 'proof_leads_elsewhere', origin, held, offered, suppressed, message });
  }

  private warnSmaller(origin: string, held: Checkpoint, offered: Checkpoint): void {
    const suppressed = this.lineDue(`smaller:${origin}`);
    if (suppressed === null) return;
    const message = `log ${origin} offered ${checkpointLabel(offered)}, smaller than ${checkpointLabel(held)} this witness co-signed; refused (not evidence of a fork by itself: anyone can replay an older checkpoint; if the log itself sends it, it went back: check it with \`lifeboat log audit\`)`;
    this.o.onWarning?.({ kind: 'smaller_tree', origin, held, offered, suppressed, message });
  }

  /** Null when a line of this key was written in the last WARNING_INTERVAL_MS; else how many were skipped. */
  private lineDue(key: string): number | null {
    const now = (this.o.now ?? Date.now)();
    const last = this.lastLine.get(key);
    if (last && now - last.at < WARNING_INTERVAL_MS) {
      last.suppressed++;
      return null;
    }
    this.lastLine.set(key, { at: now, suppressed: 0 });
    return last?.suppressed ?? 0;
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
