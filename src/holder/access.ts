/**
 * Who may ask a holder for what: the caller of a service call, the role an identity is enrolled in
 * (config.json's primary and operators), and who may sign a release request. The service
 * (./service.ts) applies these; the routes (./server.ts) name the caller.
 */
import { ForbiddenError } from '../errors.js';
import { identityFingerprint, parsePublicIdentity, type PublicIdentity } from '../identity.js';
import { ctEqual } from '../util/bytes.js';
import type { HolderConfig } from './store.js';

/** Who is asking: a command run on the holder itself, or a peer over HTTP (verified identity if signed). */
export type Caller = { kind: 'local' } | { kind: 'remote'; identity?: PublicIdentity; remote?: string };

export type HolderRole = 'primary' | 'operator';

/** The audit log's actor for a caller: `local`, the signer's fingerprint, or `anonymous`. */
export function actorOf(caller: Caller): string {
  if (caller.kind === 'local') return 'local';
  return caller.identity ? identityFingerprint(caller.identity) : 'anonymous';
}

/** The role `id` is enrolled in under `cfg`, or undefined. */
export function roleIn(cfg: HolderConfig, id: PublicIdentity): HolderRole | undefined {
  const fp = identityFingerprint(id);
  if (identityFingerprint(parsePublicIdentity(cfg.primary)) === fp) return 'primary';
  if (cfg.operators.some((t) => identityFingerprint(parsePublicIdentity(t)) === fp)) return 'operator';
  return undefined;
}

/**
 * Whether the signer of a release request (enrolled as `role`) may have it: an operator always, the
 * primary only for an unseal to its own box key while auto_unseal is on (`config`, read only then).
 * Throws ForbiddenError `forbidden` or `not_enrolled`.
 */
export function authorizeReleaseSigner(role: HolderRole | undefined, config: () => HolderConfig, signer: PublicIdentity, purpose: string, requesterPublicKey: Uint8Array): void {
  if (role === 'operator') return;
  if (role === 'primary') {
    const cfg = config();
    const primary = parsePublicIdentity(cfg.primary);
    if (!cfg.auto_unseal) throw new ForbiddenError('this holder releases to the primary only with auto_unseal on', 'forbidden', 'have an operator sign the release request');
    if (purpose !== 'unseal') throw new ForbiddenError(`the primary may only request an unseal, not a ${purpose}`, 'forbidden', 'have an operator sign the release request');
    if (!ctEqual(requesterPublicKey, primary.boxPublicKey)) throw new ForbiddenError("an unseal must re-seal to the primary's own box key", 'forbidden');
    return;
  }
  throw new ForbiddenError(`release request signer ${identityFingerprint(signer)} is not an enrolled operator`, 'not_enrolled', 'have an enrolled operator sign it');
}
