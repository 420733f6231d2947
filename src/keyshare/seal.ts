/**
 * Sealing a key share into a backup record, with ADR 004's output checks failing closed before
 * anything leaves the node, and opening a record on the worst day: signature, node, words, decryption,
 * and the share against its verifying share and the group key. docs/keyshare.md, "Sealing" and
 * "Opening".
 */
import { boxPublicKey } from '../crypto/sealedbox.js';
import { signingKeyPairFromSeed } from '../crypto/sign.js';
import { LifeboatError } from '../errors.js';
import type { Identity, PublicIdentity } from '../identity.js';
import { ctEqual, utf8, wipe } from '../util/bytes.js';
import { type KeyShare, type FrostPublic, verifyShareAgainstPublic } from '../keynode/frost/index.js';
import { ScryptKeys } from './age-scrypt.js';
import { ageStanza, type BackupMode, decryptWithMnemonic, encryptToPassphrase, encryptToRecipient, mnemonicCheck } from './age.js';
import { KeyshareError } from './errors.js';
import type { Mnemonic } from './mnemonic.js';
import { compressPackage, decompressPackage, encodeKeyPackage, parseKeyPackage } from './package.js';
import { type KeyshareRecord, signRecord, verifyRecord } from './record.js';

/** How a node encrypts: with the words it keeps (passphrase), or to the recipient they derive (recipient). */
export type SealMode = { mode: 'passphrase'; mnemonic: Mnemonic } | { mode: 'recipient'; recipient: string; mnemonicCheck: Uint8Array };

export interface SealInput {
  key: KeyShare;
  tenant: string;
  epoch: number;
  node: Identity;
}

/** Fresh encryptions tried when only the word check fails (three words can turn up in base64 by chance). */
const ATTEMPTS = 4;
/** ADR 004 asks for no word at all; an age header holds words of the list ("age"), so three or more fail. */
export const MAX_WORDS_IN_OUTPUT = 2;

const fail = (what: string): KeyshareError =>
  new KeyshareError('keyshare_output_check_failed', `the sealed backup failed its output check: ${what}; nothing was published`, 'the encryption is broken or the words are not random; run `lifeboat keyshare` checks again, and report it if it persists');

const contains = (hay: Uint8Array, needle: Uint8Array): boolean => needle.length > 0 && Buffer.from(hay.buffer, hay.byteOffset, hay.length).indexOf(Buffer.from(needle.buffer, needle.byteOffset, needle.length)) >= 0;

/** How many distinct words of `phrase` occur in `bytes` (as lowercase ASCII, anywhere). */
export function wordsFound(bytes: Uint8Array, phrase: string): number {
  return new Set(phrase.split(' ').filter((w) => contains(bytes, utf8.encode(w)))).size;
}

/**
 * ADR 004's checks of an output against its inputs, failing closed: the output differs from and does
 * not contain any secret input (the package before and after compression, the share, the identity
 * seeds); with the words, it contains neither the phrase nor more than MAX_WORDS_IN_OUTPUT of its
 * words. Throws KeyshareError `keyshare_output_check_failed` naming the check (never the secret).
 */
export function checkSealedOutput(output: Uint8Array, secrets: readonly Uint8Array[], phrase?: string): void {
  for (const s of secrets) {
    if (ctEqual(output, s)) throw fail('the ciphertext equals its input');
    if (contains(output, s)) throw fail('the ciphertext contains its input');
  }
  if (phrase !== undefined) {
    if (contains(output, utf8.encode(phrase))) throw fail('the ciphertext contains the passphrase');
    if (wordsFound(output, phrase) > MAX_WORDS_IN_OUTPUT) throw fail(`the ciphertext contains more than ${MAX_WORDS_IN_OUTPUT} words of the mnemonic`);
  }
}

/**
 * Seals one key share into a signed record. The share is checked against its package first; then the
 * package is compressed, encrypted and checked (checkSealedOutput on the ciphertext and on the whole
 * record; in passphrase mode it must also decrypt back to the input). `opts.encrypt` replaces the age
 * encryption (tests of the checks only). Throws LifeboatError `share_mismatch`, InvalidInputError,
 * KeyshareError `keyshare_output_check_failed`, `keyshare_recipient_refused`.
 */
export async function sealBackup(input: SealInput, how: SealMode, opts: { encrypt?: (plain: Uint8Array) => Promise<Uint8Array> } = {}): Promise<Uint8Array> {
  const { key, node } = input;
  verifyShareAgainstPublic(key);
  const seeds = new Uint8Array([...node.signing.secretKey, ...node.box.secretKey]);
  const plain = encodeKeyPackage({ identitySeeds: seeds, epoch: input.epoch, keyId: key.keyId, tenant: input.tenant, curve: key.curve, identifier: key.identifier, share: key.share, public: key.public });
  const packed = compressPackage(plain);
  const check = how.mode === 'passphrase' ? mnemonicCheck(how.mnemonic, node) : how.mnemonicCheck;
  const phrase = how.mode === 'passphrase' ? how.mnemonic.phrase : undefined;
  // one scrypt per seal: the decrypt-back check finds the wrapping key the encryption derived
  const keys = how.mode === 'passphrase' ? new ScryptKeys(how.mnemonic.phrase) : undefined;
  const encrypt = opts.encrypt ?? ((p: Uint8Array) => (how.mode === 'passphrase' ? encryptToPassphrase(how.mnemonic.phrase, p, undefined, keys) : encryptToRecipient(how.recipient, p)));
  const secrets = [plain, packed.bytes, key.share, seeds];
  try {
    for (let attempt = 1; ; attempt++) {
      const ciphertext = await encrypt(packed.bytes);
      const record = signRecord(
        {
          mode: how.mode,
          curve: key.curve,
          threshold: key.public.signers.min,
          maxSigners: key.public.signers.max,
          node,
          epoch: input.epoch,
          identifier: key.identifier,
          keyId: key.keyId,
          groupKey: key.public.commitments[0]!,
          verifyingShare: key.public.verifyingShares[key.identifier]!,
          mnemonicCheck: check,
          compression: packed.compression,
          ciphertext,
        },
        node,
      );
      try {
        checkSealedOutput(ciphertext, secrets, phrase);
        checkSealedOutput(record, secrets, phrase);
      } catch (err) {
        // only the word count may be chance: fresh randomness gives other base64
        if (attempt < ATTEMPTS && phrase !== undefined && wordsFound(record, phrase) > MAX_WORDS_IN_OUTPUT && !contains(record, utf8.encode(phrase))) continue;
        throw err;
      }
      if (how.mode === 'passphrase') {
        const back = await decryptWithMnemonic(how.mnemonic, ciphertext, keys).catch(() => null);
        const ok = back !== null && ctEqual(back, packed.bytes);
        wipe(back ?? undefined);
        if (!ok) throw fail('it does not decrypt back to its input');
      }
      return record;
    }
  } finally {
    wipe(plain, packed.bytes, seeds);
    keys?.wipe();
  }
}

/** A key share recovered from a record, checked. */
export interface OpenedBackup {
  record: KeyshareRecord;
  key: KeyShare;
  tenant: string;
  /** The node identity's secret seeds (64 bytes, as `node/identity`). Secret. */
  identitySeeds: Uint8Array;
}

const samePublic = (a: PublicIdentity, b: PublicIdentity): boolean => ctEqual(a.signingPublicKey, b.signingPublicKey) && ctEqual(a.boxPublicKey, b.boxPublicKey);

/** Whether the 64 seeds are the secret half of `node`. */
function seedsOf(seeds: Uint8Array, node: PublicIdentity): boolean {
  try {
    return ctEqual(signingKeyPairFromSeed(seeds.slice(0, 32)).publicKey, node.signingPublicKey) && ctEqual(boxPublicKey(seeds.slice(32, 64)), node.boxPublicKey);
  } catch {
    return false;
  }
}

function packageMatchesRecord(r: KeyshareRecord, pub: FrostPublic): string | undefined {
  if (pub.signers.min !== r.threshold || pub.signers.max !== r.maxSigners) return 'its threshold or signer count';
  if (!ctEqual(pub.commitments[0]!, r.groupKey)) return 'its group key';
  const v = pub.verifyingShares[r.identifier];
  if (!v || !ctEqual(v, r.verifyingShare)) return 'its verifying share';
  return undefined;
}

/**
 * Opens a record for `node` with the words. Checks, in order: the structure and signature
 * (verifyRecord), that the record is `node`'s (KeyshareError `keyshare_other_node`), that the words are
 * this node's (`mnemonic_wrong`), the age stanza against the mode (`keyshare_recipient_refused`), the
 * decryption and the package (`keyshare_decrypt_failed`: altered, or another key's, or another node's
 * identity inside), the package against the record's public facts and the share against its verifying
 * share and the commitments (LifeboatError `share_mismatch`).
 */
export async function openBackup(bytes: Uint8Array, node: PublicIdentity, m: Mnemonic): Promise<OpenedBackup> {
  const r = verifyRecord(bytes);
  if (!samePublic(r.node, node)) {
    throw new KeyshareError('keyshare_other_node', `the backup record of key ${r.keyId} is signed by another node than the one being recovered`, 'pass the --node-identity of the node whose words these are');
  }
  if (!ctEqual(mnemonicCheck(m, node), r.mnemonicCheck)) {
    throw new KeyshareError('mnemonic_wrong', 'these words are not the ones this node\'s backups were made under', 'a valid mnemonic of another node, or of an earlier set-up: find the words written down for this node');
  }
  const stanza = ageStanza(r.ciphertext);
  const expected: Record<BackupMode, string> = { passphrase: 'scrypt', recipient: 'mlkem768x25519' };
  if (stanza.kind !== expected[r.mode]) throw new KeyshareError('keyshare_recipient_refused', `the ${r.mode}-mode record of key ${r.keyId} holds an age ${stanza.kind} stanza`);
  const undecryptable = (why: string): KeyshareError =>
    new KeyshareError('keyshare_decrypt_failed', `the backup of key ${r.keyId} ${why}`, 'the words are right, so the ciphertext was altered or made wrongly by the node that signed it; nothing is restored from it');
  const packed = await decryptWithMnemonic(m, r.ciphertext);
  if (packed === null) throw undecryptable('does not decrypt with these words');
  let plain: Uint8Array | undefined;
  try {
    plain = decompressPackage(r.compression, packed);
    let p;
    try {
      p = parseKeyPackage(plain, r.curve);
    } catch {
      throw undecryptable('decrypts to something that is not a key package');
    }
    if (p.keyId !== r.keyId || p.epoch !== r.epoch || p.identifier !== r.identifier) throw undecryptable('holds the package of another key, epoch or participant');
    if (!seedsOf(p.identitySeeds, node)) throw undecryptable('holds another node\'s identity');
    const differs = packageMatchesRecord(r, p.public);
    if (differs) {
      throw new LifeboatError('share_mismatch', `the backup of key ${r.keyId} holds a public package whose ${differs.replace(/^its /, '')} is not the record's`, { hint: 'the record and its ciphertext are of different keys; nothing is restored from it' });
    }
    const key: KeyShare = { keyId: p.keyId, curve: p.curve, identifier: p.identifier, share: p.share, public: p.public };
    verifyShareAgainstPublic(key);
    return { record: r, key, tenant: p.tenant, identitySeeds: p.identitySeeds };
  } finally {
    wipe(packed, plain);
  }
}
