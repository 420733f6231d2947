/**
 * Enrolling a new primary with the holders (after a reconstruction): an operator-signed `POST
 * /v1/enrol` to each, and, for each holder that did not take it, the exact commands that fix it: on
 * the holder itself (`lifeboat holder enrol --primary`, which a running holder applies through its
 * admin socket, docs/holder.md), or from the new primary once the holder answers (`lifeboat recovery
 * enrol`, the same signed request again).
 */
import { LifeboatError } from '../errors.js';
import type { ConfirmedHolder, HolderSpec } from './holders.js';

/** A holder that did not enrol the new primary: why (an err_type), and the two ways to fix it. */
export interface NotEnrolled {
  url: string;
  fingerprint: string;
  /** The err_type of the refusal or of the failure to reach it (`peer_unreachable`). */
  reason: string;
  /** Run on that holder machine, as the holder's service user (works while `holder serve` runs). */
  on_holder: string;
  /** Run here, once the holder answers: the operator-signed enrolment again. */
  from_here: string;
}

/** Quotes a word for a POSIX shell when it needs it. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./#-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The fix commands for one holder; `operatorKey` and `dataDir` as the operator gave them. */
export function enrolFix(holder: HolderSpec, reason: string, opts: { primary: string; operatorKey: string; dataDir: string }): NotEnrolled {
  return {
    url: holder.url,
    fingerprint: holder.fingerprint,
    reason,
    on_holder: `lifeboat holder enrol --primary ${opts.primary}`,
    from_here: ['lifeboat', 'recovery', 'enrol', '--operator-key', opts.operatorKey, '--holder', `${holder.url}#${holder.fingerprint}`, '--data-dir', opts.dataDir].map(shellQuote).join(' '),
  };
}

/**
 * Enrols the primary `token` with each holder (an operator-signed request through its client).
 * Never throws for one holder: returns those that took it and those that did not, with the err_type.
 */
export async function enrolPrimary(holders: ConfirmedHolder[], token: string): Promise<{ enrolled: ConfirmedHolder[]; failed: { holder: HolderSpec; code: string }[] }> {
  const enrolled: ConfirmedHolder[] = [];
  const failed: { holder: HolderSpec; code: string }[] = [];
  for (const h of holders) {
    try {
      await h.client.enrol(token);
      enrolled.push(h);
    } catch (err) {
      failed.push({ holder: { url: h.url, fingerprint: h.fingerprint }, code: err instanceof LifeboatError ? err.code : 'internal_error' });
    }
  }
  return { enrolled, failed };
}
