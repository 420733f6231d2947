/**
 * Witness co-signatures on checkpoints: the Ed25519 `cosignature/v1` type (signature type 0x04) of
 * C2SP tlog-cosignature v1.0.1 (https://c2sp.org/tlog-cosignature@v1.0.1). The later drafts keep this
 * type as is and add an ML-DSA-44 "subtree/v1" type (0x06), which Lifeboat does not implement. Also the
 * client's rule "require k of a configured witness set". Pure. Layout: docs/log-format.md, "Co-signature".
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { InvalidInputError } from '../errors.js';
import { randomBytes } from '../crypto/random.js';
import { concatBytes, utf8, wipe } from '../util/bytes.js';
import { type OpenedCheckpoint, openCheckpoint } from './checkpoint.js';
import { LogError } from './errors.js';
import {
  encodeSignatureLine,
  encodeSignerKey,
  encodeVerifierKey,
  makeSigner,
  makeVerifier,
  type NoteSignature,
  type NoteSigner,
  type NoteVerifier,
  openNote,
  parseSignerKeyParts,
  parseVerifierKeyParts,
  SIG_COSIGNATURE_V1,
} from './note.js';

/** A cosignature/v1 signature: u64 timestamp then a 64-byte Ed25519 signature. */
export const COSIGNATURE_BYTES = 72;
/** Lifeboat's limit on a timestamp: a JavaScript safe integer (the spec allows up to 2^63 - 1). */
export const MAX_TIMESTAMP = Number.MAX_SAFE_INTEGER;

function checkTimestamp(t: unknown): number {
  if (typeof t !== 'number' || !Number.isSafeInteger(t) || t < 0) throw new InvalidInputError('cosignature timestamp must be an integer number of seconds from 0 to 2^53 - 1');
  return t;
}

/** The message a cosignature/v1 signs: "cosignature/v1\ntime <T>\n" then the checkpoint text (tlog-cosignature, "Signed message"). */
export function cosignatureMessage(checkpointText: Uint8Array | string, timestamp: number): Uint8Array {
  checkTimestamp(timestamp);
  const body = typeof checkpointText === 'string' ? utf8.encode(checkpointText) : checkpointText;
  return concatBytes(utf8.encode(`cosignature/v1\ntime ${timestamp}\n`), body);
}

/** The timestamp of a cosignature/v1 signature (after the key ID), or null when it is not 72 bytes or is over the limit. */
export function cosignatureTimestamp(signature: Uint8Array): number | null {
  if (signature.length !== COSIGNATURE_BYTES) return null;
  const t = new DataView(signature.buffer, signature.byteOffset, 8).getBigUint64(0);
  return t <= BigInt(MAX_TIMESTAMP) ? Number(t) : null;
}

/** A witness's verifier from its name and 32-byte Ed25519 public key. Throws InvalidInputError on bad input. */
export function cosignatureVerifier(name: string, publicKey: Uint8Array): NoteVerifier {
  const pk = publicKey.slice();
  return makeVerifier(name, SIG_COSIGNATURE_V1, pk, (text, sig) => {
    const t = cosignatureTimestamp(sig);
    if (t === null) return false;
    try {
      return ed25519.verify(sig.subarray(8), cosignatureMessage(text, t), pk);
    } catch {
      return false;
    }
  });
}

/** A witness's signer from its name and 32-byte Ed25519 seed; `now` gives the timestamp (seconds) of each signature. */
export function cosignatureSigner(name: string, seed: Uint8Array, now: () => number = () => Math.floor(Date.now() / 1000)): NoteSigner {
  return makeSigner(name, SIG_COSIGNATURE_V1, seed, {
    sign: (text, ed) => {
      const t = checkTimestamp(now());
      const out = new Uint8Array(COSIGNATURE_BYTES);
      new DataView(out.buffer).setBigUint64(0, BigInt(t));
      out.set(ed(cosignatureMessage(text, t)), 8);
      return out;
    },
    verifier: (pk) => cosignatureVerifier(name, pk),
  });
}

/** Parses a witness verifier key `<name>+<key id>+<base64(0x04 || public key)>`. Throws LogError `verifier_key_invalid`. */
export function parseWitnessVerifierKey(vkey: string): NoteVerifier {
  const p = parseVerifierKeyParts(vkey);
  if (p.type !== SIG_COSIGNATURE_V1) {
    throw new LogError('verifier_key_invalid', `verifier key is invalid: signature type ${p.type} is not a cosignature/v1 witness key (4)`, 'a witness key is printed by `lifeboat log witness`');
  }
  return cosignatureVerifier(p.name, p.publicKey);
}

/** Parses a witness signer key `PRIVATE+KEY+<name>+<key id>+<base64(0x04 || seed)>`. Throws LogError `signer_key_invalid`. */
export function parseWitnessSignerKey(skey: string, now?: () => number): NoteSigner {
  const p = parseSignerKeyParts(skey);
  try {
    if (p.type !== SIG_COSIGNATURE_V1) throw new LogError('signer_key_invalid', `signer key is invalid: signature type ${p.type} is not a cosignature/v1 witness key (4)`);
    return cosignatureSigner(p.name, p.seed, now);
  } finally {
    wipe(p.seed);
  }
}

/** A new witness key for `name`: the secret signer key string and the public verifier key string (type 0x04). */
export function generateWitnessKey(name: string): { signerKey: string; verifierKey: string } {
  const seed = randomBytes(32);
  try {
    const verifierKey = encodeVerifierKey({ name, type: SIG_COSIGNATURE_V1, publicKey: ed25519.getPublicKey(seed) });
    return { signerKey: encodeSignerKey(name, SIG_COSIGNATURE_V1, seed), verifierKey };
  } finally {
    wipe(seed);
  }
}

/**
 * A witness's co-signature line over a checkpoint text (what a witness returns and the log appends to
 * its checkpoint note), with its newline. The caller has checked consistency before signing.
 */
export function cosignCheckpoint(checkpointText: string, witness: NoteSigner): string {
  if (witness.type !== SIG_COSIGNATURE_V1) throw new InvalidInputError('a co-signature needs a cosignature/v1 (type 4) witness key');
  const sig: NoteSignature = { name: witness.name, keyId: witness.keyId, signature: witness.sign(utf8.encode(checkpointText)) };
  return encodeSignatureLine(sig);
}

/** A good co-signature found on a checkpoint. */
export interface Cosignature {
  name: string;
  keyId: number;
  /** Seconds since the epoch, as the witness stated. */
  timestamp: number;
}

/** A checkpoint verified with the log's key and the required witnesses. */
export interface VerifiedCheckpoint extends OpenedCheckpoint {
  cosignatures: Cosignature[];
}

/**
 * Verifies a checkpoint note with the log's key and requires good co-signatures of at least `quorum`
 * distinct witnesses of `witnesses`. Unknown signature lines are ignored (signed-note). Throws what
 * openCheckpoint throws; LogError `note_signature_invalid` naming a configured witness whose
 * co-signature does not verify; `witness_quorum_not_met` naming the witnesses that did not co-sign;
 * InvalidInputError when the quorum is not an integer from 0 to the number of witnesses.
 */
export function verifyCheckpoint(
  msg: string | Uint8Array,
  logVerifier: NoteVerifier,
  opts: { witnesses?: readonly NoteVerifier[]; quorum?: number; origin?: string } = {},
): VerifiedCheckpoint {
  const witnesses = opts.witnesses ?? [];
  const quorum = opts.quorum ?? witnesses.length;
  if (!Number.isInteger(quorum) || quorum < 0 || quorum > witnesses.length) {
    throw new InvalidInputError(`the witness quorum must be an integer from 0 to ${witnesses.length}`);
  }
  if (witnesses.some((w) => w.type !== SIG_COSIGNATURE_V1)) throw new InvalidInputError('every witness key must be a cosignature/v1 (type 4) key');
  const opened = openCheckpoint(msg, logVerifier, { origin: opts.origin });
  if (witnesses.length === 0) return { ...opened, cosignatures: [] };
  let verified: NoteSignature[];
  try {
    verified = openNote(msg, witnesses).verified;
  } catch (err) {
    if (err instanceof LogError && err.code === 'note_unverified') verified = [];
    else throw err;
  }
  const cosignatures = verified.map((s) => ({ name: s.name, keyId: s.keyId, timestamp: cosignatureTimestamp(s.signature)! }));
  if (cosignatures.length < quorum) {
    const have = new Set(cosignatures.map((c) => `${c.name}+${c.keyId}`));
    const missing = witnesses.filter((w) => !have.has(`${w.name}+${w.keyId}`)).map((w) => w.name);
    throw new LogError(
      'witness_quorum_not_met',
      `the checkpoint has ${cosignatures.length} of the ${quorum} required witness co-signatures; missing: ${missing.join(', ')}`,
      'wait for the witnesses to co-sign, or check that they are running and reach the log',
    );
  }
  return { ...opened, cosignatures };
}
