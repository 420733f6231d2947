/**
 * `--offline-recipient age1… --offline-out FILE` on `recovery init` and `recovery rotate`: the offline
 * shares go encrypted to age recipients (src/recovery/age-delivery.ts) instead of to the terminal or a
 * descriptor. Outputs that would put the same share in the clear are refused with it.
 */
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { type AgeDelivery, checkAgeDeliveries, deliverSharesToAge } from '../../recovery/age-delivery.js';
import { collect } from '../options.js';
import type { ShareOutputOpts } from './recovery-sheet.js';

export interface AgeOpts {
  offlineRecipient: string[];
  offlineOut: string[];
}

export const AGE_HELP =
  '\n\nInstead of showing the offline shares, --offline-recipient age1… --offline-out FILE (once per offline\n' +
  'share, in order) writes each encrypted to an age recipient (X25519 from age-keygen, or age1pq1…) as an\n' +
  'armored age file; `age -d -i KEY FILE` gives its words. No share is then shown: --secret-fd, --qr,\n' +
  '--sheet-fd and --qr-png-fd are refused with it.';

export function addAgeOptions(cmd: Command): Command {
  return cmd
    .option('--offline-recipient <age1…>', 'deliver the offline share encrypted to this age recipient instead of showing it (repeat once per offline share)', collect, [])
    .option('--offline-out <file>', 'where to write the age-encrypted offline share (new file; repeat, one per --offline-recipient)', collect, []);
}

/**
 * The deliveries asked for, checked before anything changes, or undefined when the shares are shown as
 * usual. Throws UsageError for an output that would show the share in the clear as well, or
 * `--offline-out` without a recipient; checkAgeDeliveries' errors.
 */
export function prepareAgeDelivery(o: AgeOpts & ShareOutputOpts, offlineCount: number): AgeDelivery[] | undefined {
  if (o.offlineRecipient.length === 0) {
    if (o.offlineOut.length > 0) throw new UsageError('--offline-out goes with --offline-recipient');
    return undefined;
  }
  const clear = [o.secretFd !== undefined && '--secret-fd', o.qr && '--qr', o.sheetFd.length > 0 && '--sheet-fd', o.qrPngFd.length > 0 && '--qr-png-fd'].filter(Boolean);
  if (clear.length > 0) {
    throw new UsageError(`--offline-recipient delivers the offline shares encrypted only; ${clear.join(', ')} would put them in the clear too`, { hint: 'drop those options, or drop --offline-recipient to show the shares' });
  }
  return checkAgeDeliveries(o.offlineRecipient, o.offlineOut, offlineCount);
}

export { deliverSharesToAge };
