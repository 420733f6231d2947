/**
 * The log server's own error codes (docs/log.md, "HTTP API"): the write path's refusals and the
 * operator commands' conflicts. Formats and signatures keep theirs (../errors.ts).
 */
import { ConflictError, ForbiddenError, LifeboatError, NotFoundError } from '../../errors.js';
import type { WitnessOutcome } from '../witness/cosigner.js';

/** An entry whose submitter is not enrolled, or was revoked (403). */
export function submitterNotEnrolled(revoked: boolean): ForbiddenError {
  return new ForbiddenError(
    revoked ? 'the entry’s submitter was revoked and may no longer add' : 'the entry’s submitter is not enrolled in this log',
    'submitter_not_enrolled',
    revoked ? 'ask the log operator; a revoked identity is never enrolled again, so use a new one' : 'ask the log operator to run `lifeboat log enrol --name N --identity lb1.…` for your identity',
  );
}

/** The add waited longer than the server allows for a checkpoint covering it (503): retry, it keeps its index. */
export function sequencingTimeout(seconds: number): LifeboatError {
  return new LifeboatError('sequencing_timeout', `the entry was taken but no checkpoint covered it within ${seconds} s`, {
    status: 503,
    hint: 'send the same entry again: it keeps its index, and the answer comes once it is in a published checkpoint',
  });
}

/** Too many adds are waiting on the next checkpoint (503). */
export function logBusy(): LifeboatError {
  return new LifeboatError('log_busy', 'too many entries are waiting to be sequenced', { status: 503, hint: 'retry in a few seconds' });
}

/** A request on a route with another content type than the route takes (415). */
export function unsupportedMediaType(expected: string): LifeboatError {
  return new LifeboatError('unsupported_media_type', `the request body must be ${expected}`, { status: 415, hint: `send content-type: ${expected}` });
}

/** A tile or bundle the log has not written (404): beyond the tree, or never a tile of it. */
export function tileNotFound(path: string): NotFoundError {
  return new NotFoundError(`the log has no ${path}`, 'tile_not_found', 'read /checkpoint first: only tiles of its tree (and older ones) exist');
}

/** `log init` in a directory that already holds a log. */
export function logExists(dir: string): ConflictError {
  return new ConflictError(`${dir} already holds a log`, 'log_exists', 'pick another --data-dir, or use the log that is there');
}

/** `log witnesses add` of a witness key already configured. */
export function witnessExists(name: string): ConflictError {
  return new ConflictError(`witness ${name} is already configured`, 'witness_exists', 'see `lifeboat log witnesses list`');
}

/**
 * `log serve` on a store whose head is older than the checkpoint the log already published (a store
 * restored from an older backup, a copied data directory, a PostgreSQL fail-over that lost commits),
 * or that a witness has co-signed a larger tree of: a safety refusal, since sequencing on would sign a
 * second root for a size the world has seen.
 */
export function storeBehind(message: string): LifeboatError {
  return new LifeboatError('store_behind', message, {
    status: 500,
    hint: 'the store lost commits the log had published: restore the store from a backup at least as new as public/checkpoint (or the data directory whole from one backup); never delete public/ to get past this',
  });
}

/**
 * The refusal for safety a round of witness outcomes amounts to, if any: a witness holding a larger
 * tree of this log than the checkpoint sent (`witness_ahead`: the store lost commits, store_behind),
 * or one refusing it as a fork (`log_forked`). The sequencer stops on either.
 */
export function witnessSafetyRefusal(outcomes: readonly WitnessOutcome[]): LifeboatError | undefined {
  for (const o of outcomes) {
    if (o.result !== 'refused') continue;
    if (o.errType === 'witness_ahead') return storeBehind(`witness ${o.witness} (${o.url}) co-signed a larger tree of this log than the store's head: ${o.message}`);
    if (o.errType === 'log_forked') {
      return new LifeboatError('log_forked', `witness ${o.witness} (${o.url}) refused the log's checkpoint as a fork: ${o.message}`, {
        status: 500,
        hint: 'the witness holds another checkpoint of this log: compare it with public/checkpoint, and restore the store and public/ from one backup',
      });
    }
  }
  return undefined;
}

/** The sequencer stopped for safety (503 to every add after it): names the cause. */
export function logHalted(cause: LifeboatError): LifeboatError {
  return new LifeboatError('log_halted', `the log stopped sequencing: ${cause.message} (${cause.code})`, { status: 503, hint: 'the operator must look at the log: see `lifeboat log serve`’s stderr' });
}
