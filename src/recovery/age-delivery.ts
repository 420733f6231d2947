/**
 * `recovery init|rotate --offline-recipient age1…`: each offline share is delivered encrypted to an age
 * recipient (as Vault's `-pgp-keys`), written as an ASCII-armored age v1 file, instead of being shown.
 * The plaintext is the share's words and a newline, so `age -d -i KEY FILE | lifeboat … --typed-shares 1`
 * types it. Recipients: X25519 (`age1…`, what `age-keygen` makes) or hybrid post-quantum (`age1pq1…`,
 * age 1.3+). The files and recipients are checked before anything changes (docs/operations.md).
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { bech32 } from '@scure/base';
import { armor, Encrypter } from 'age-encryption';
import { InvalidInputError, LifeboatError } from '../errors.js';
import { utf8 } from '../util/bytes.js';
import { writeFileAtomic } from '../util/files.js';

/** One offline share's delivery: the recipient it is encrypted to and the file it is written to. */
export interface AgeDelivery {
  recipient: string;
  file: string;
}

/**
 * Checks an age recipient: `age1…` with 32 bytes (X25519) or `age1pq1…` with 1216 bytes (ML-KEM-768 +
 * X25519). Throws InvalidInputError `age_recipient_invalid` for anything else (an SSH key, a plugin
 * recipient, a typo).
 */
export function checkAgeRecipient(recipient: string): string {
  let ok = false;
  try {
    const { prefix, words } = bech32.decode(recipient.toLowerCase() as `${string}1${string}`, false);
    const n = bech32.fromWords(words).length;
    ok = (prefix === 'age' && n === 32) || (prefix === 'age1pq' && n === 1216);
  } catch {
    ok = false;
  }
  if (!ok) throw new InvalidInputError(`--offline-recipient ${recipient.slice(0, 24)}… is not an age recipient`, { code: 'age_recipient_invalid', hint: 'give the public key age-keygen printed (age1…), or a hybrid age1pq1… recipient' });
  return recipient.toLowerCase();
}

/**
 * Checks the deliveries before anything changes: one recipient and one output file per offline share,
 * each file new, in an existing directory, and given once. Throws InvalidInputError.
 */
export function checkAgeDeliveries(recipients: string[], files: string[], offlineCount: number): AgeDelivery[] {
  if (recipients.length !== offlineCount) {
    throw new InvalidInputError(`--offline-recipient is given ${recipients.length} times, but there ${offlineCount === 1 ? 'is 1 offline share' : `are ${offlineCount} offline shares`}`, { hint: 'give one --offline-recipient per offline share, in order' });
  }
  if (files.length !== recipients.length) {
    throw new InvalidInputError(`--offline-out is given ${files.length} times for ${recipients.length} --offline-recipient`, { hint: 'give one --offline-out FILE per --offline-recipient, in the same order' });
  }
  const seen = new Set<string>();
  return recipients.map((r, i) => {
    const file = resolve(files[i]!);
    if (seen.has(file)) throw new InvalidInputError(`--offline-out ${files[i]} is given twice`, { hint: 'each encrypted share gets a file of its own' });
    seen.add(file);
    if (existsSync(file)) throw new LifeboatError('file_exists', `--offline-out ${files[i]} already exists; nothing was changed`, { hint: 'give a new file name; an existing file is never overwritten' });
    if (!existsSync(dirname(file)) || !statSync(dirname(file)).isDirectory()) {
      throw new LifeboatError('output_unwritable', `cannot write --offline-out ${files[i]}: its directory does not exist; nothing was changed`, { hint: 'give a path in an existing, writable directory' });
    }
    return { recipient: checkAgeRecipient(r), file };
  });
}

/** Encrypts each share to its recipient and writes the armored age files (0600, atomic). */
export async function deliverSharesToAge(mnemonics: string[], deliveries: AgeDelivery[]): Promise<void> {
  const files: { file: string; text: string }[] = [];
  for (const [i, m] of mnemonics.entries()) {
    const d = deliveries[i]!;
    const e = new Encrypter();
    e.addRecipient(d.recipient);
    files.push({ file: d.file, text: armor.encode(await e.encrypt(utf8.encode(`${m}\n`))) });
  }
  for (const f of files) writeFileAtomic(f.file, f.text);
}
