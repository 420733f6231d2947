/**
 * C2SP signed notes (https://c2sp.org/signed-note@v1.0.0) with Ed25519 keys, byte-compatible with Go's
 * golang.org/x/mod/sumdb/note: key IDs, verifier and signer key strings, signing, parsing and opening
 * a note against known keys. Pure. Byte layout: docs/log-format.md, "Signed note".
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { base64 } from '@scure/base';
import { InvalidInputError } from '../errors.js';
import { randomBytes } from '../crypto/random.js';
import { concatBytes, utf8, wipe } from '../util/bytes.js';
import { LogError, type LogErrorCode } from './errors.js';

/** Signature type of plain Ed25519 note signatures (signed-note, "Signature types"). */
export const SIG_ED25519 = 0x01;
/** Signature type of timestamped Ed25519 witness co-signatures (tlog-cosignature). */
export const SIG_COSIGNATURE_V1 = 0x04;
/** Lifeboat's limits: signed-note asks verifiers to accept at least 16 signatures; Go stops at 100. */
export const MAX_NOTE_BYTES = 65536;
export const MAX_NOTE_SIGNATURES = 100;
export const MAX_KEY_NAME_BYTES = 255;

const EM_DASH_PREFIX = '\u2014 ';
const PRIVATE_PREFIX = 'PRIVATE+KEY+';

/** A key that can check signatures on a note: what a verifier key string decodes to. */
export interface NoteVerifier {
  readonly name: string;
  /** The 32-bit key ID (signed-note, "Signatures"). */
  readonly keyId: number;
  readonly type: number;
  readonly publicKey: Uint8Array;
  /** Whether `signature` (without the 4-byte key ID) is good over the note text. Never throws. */
  verify(text: Uint8Array, signature: Uint8Array): boolean;
}

/** A key that signs notes. The seed stays inside `sign`; it is not a property. */
export interface NoteSigner {
  readonly name: string;
  readonly keyId: number;
  readonly type: number;
  readonly publicKey: Uint8Array;
  /** The signature bytes (without the key ID) over the note text. */
  sign(text: Uint8Array): Uint8Array;
  /** The verifier of this key. */
  verifier(): NoteVerifier;
}

/** One signature line: who (name, key ID) and the signature bytes after the key ID. */
export interface NoteSignature {
  name: string;
  keyId: number;
  signature: Uint8Array;
}

/** A note's text and its signature lines, in order. */
export interface Note {
  /** The signed text, ending in a newline. */
  text: string;
  signatures: NoteSignature[];
}

/** An opened note: the signatures of known keys that verified, and the lines of unknown keys. */
export interface OpenedNote {
  text: string;
  verified: NoteSignature[];
  unverified: NoteSignature[];
}

/** Keeps a leading U+FEFF as text, as Go does: stripping it would verify bytes other than the ones given. */
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const WHITE_SPACE = /\p{White_Space}/u;
const LONE_SURROGATE = /\p{Cs}/u;

/** Throws InvalidInputError naming `what` unless `name` is a valid key name (signed-note, "Format"). */
export function checkKeyName(name: unknown, what = 'key name'): string {
  if (typeof name !== 'string' || name.length === 0) throw new InvalidInputError(`${what} must be a non-empty string`);
  if (LONE_SURROGATE.test(name)) throw new InvalidInputError(`${what} is not valid utf-8`);
  if (WHITE_SPACE.test(name) || name.includes('+')) throw new InvalidInputError(`${what} must not contain spaces or '+'`);
  if (utf8.encode(name).length > MAX_KEY_NAME_BYTES) throw new InvalidInputError(`${what} must be at most ${MAX_KEY_NAME_BYTES} bytes`);
  return name;
}

function isKeyName(name: string): boolean {
  try {
    checkKeyName(name);
    return true;
  } catch {
    return false;
  }
}

/** The key ID: SHA-256(name || 0x0A || type || public key)[:4] as a big-endian u32 (signed-note, "Signatures"). */
export function keyId(name: string, type: number, publicKey: Uint8Array): number {
  checkKeyName(name);
  const h = sha256(concatBytes(utf8.encode(`${name}\n`), new Uint8Array([type]), publicKey));
  return new DataView(h.buffer, h.byteOffset, 4).getUint32(0);
}

const hex8 = (id: number): string => id.toString(16).padStart(8, '0');

/** Decodes canonical base64 only: the text must be what encoding the bytes gives back. Null when it is not. */
export function decodeCanonicalB64(s: string): Uint8Array | null {
  try {
    const out = base64.decode(s);
    return base64.encode(out) === s ? out : null;
  } catch {
    return null;
  }
}

function keyFail(code: 'verifier_key_invalid' | 'signer_key_invalid', reason: string): LogError {
  const what = code === 'verifier_key_invalid' ? 'verifier key' : 'signer key';
  return new LogError(code, `${what} is invalid: ${reason}`, `a ${what} reads <name>+<8 hex digits>+<base64>${code === 'signer_key_invalid' ? ' after PRIVATE+KEY+' : ''}`);
}

/** Splits `<name>+<hex8>+<base64>` and checks its syntax; the key data is returned undecoded-checked. */
function splitKey(s: string, code: 'verifier_key_invalid' | 'signer_key_invalid'): { name: string; id: number; data: Uint8Array } {
  const i = s.indexOf('+');
  const j = i < 0 ? -1 : s.indexOf('+', i + 1);
  if (j < 0) throw keyFail(code, 'expected <name>+<key id>+<key>');
  const name = s.slice(0, i);
  const id16 = s.slice(i + 1, j);
  if (!isKeyName(name)) throw keyFail(code, 'the name is empty, too long or has spaces or a +');
  if (!/^[0-9a-fA-F]{8}$/.test(id16)) throw keyFail(code, 'the key id is not 8 hex digits');
  const data = decodeCanonicalB64(s.slice(j + 1));
  if (!data || data.length < 1) throw keyFail(code, 'the key is not canonical base64');
  return { name, id: parseInt(id16, 16), data };
}

function ed25519Verify(publicKey: Uint8Array) {
  return (message: Uint8Array, signature: Uint8Array): boolean => {
    try {
      return signature.length === 64 && ed25519.verify(signature, message, publicKey);
    } catch {
      return false;
    }
  };
}

/**
 * A verifier from its parts. Type 0x01 verifies plain Ed25519 over the text; other types need their
 * own verify function (cosignature.ts builds the 0x04 one). Throws InvalidInputError on a bad name or key.
 */
export function makeVerifier(name: string, type: number, publicKey: Uint8Array, verify?: (text: Uint8Array, sig: Uint8Array) => boolean): NoteVerifier {
  checkKeyName(name);
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) throw new InvalidInputError('public key must be 32 bytes');
  if (!verify && type !== SIG_ED25519) throw new InvalidInputError(`no verify function for signature type ${type}`);
  const pk = publicKey.slice();
  return { name, keyId: keyId(name, type, pk), type, publicKey: pk, verify: verify ?? ed25519Verify(pk) };
}

/** Encodes a verifier key string `<name>+<hex key id>+<base64(type || public key)>`. */
export function encodeVerifierKey(v: { name: string; type: number; publicKey: Uint8Array }): string {
  checkKeyName(v.name);
  const data = concatBytes(new Uint8Array([v.type]), v.publicKey);
  return `${v.name}+${hex8(keyId(v.name, v.type, v.publicKey))}+${base64.encode(data)}`;
}

/** The parts of a verifier key string of any type, checked: name, key ID over the key, 32-byte key. */
export function parseVerifierKeyParts(vkey: string): { name: string; keyId: number; type: number; publicKey: Uint8Array } {
  if (typeof vkey !== 'string' || vkey.length > 1024) throw keyFail('verifier_key_invalid', 'not a key string');
  const { name, id, data } = splitKey(vkey.trim(), 'verifier_key_invalid');
  if (keyId(name, data[0]!, data.subarray(1)) !== id) throw keyFail('verifier_key_invalid', 'the key id does not match the name and key');
  if (data.length !== 33) throw keyFail('verifier_key_invalid', 'the public key is not 32 bytes');
  return { name, keyId: id, type: data[0]!, publicKey: data.slice(1) };
}

/**
 * Parses an Ed25519 (type 0x01) verifier key string, as Go's note.NewVerifier does. Throws LogError
 * `verifier_key_invalid` on any other shape, type, or a key ID that does not match.
 */
export function parseVerifierKey(vkey: string): NoteVerifier {
  const p = parseVerifierKeyParts(vkey);
  if (p.type !== SIG_ED25519) throw keyFail('verifier_key_invalid', `signature type ${p.type} is not ed25519 (1)`);
  return makeVerifier(p.name, p.type, p.publicKey);
}

/**
 * A signer from a 32-byte Ed25519 seed. `type` 0x01 signs the text as is; other types pass a `wrap`
 * that builds the signed message and the signature bytes (cosignature.ts). The seed is copied.
 */
export function makeSigner(
  name: string,
  type: number,
  seed: Uint8Array,
  wrap?: { sign: (text: Uint8Array, ed: (m: Uint8Array) => Uint8Array) => Uint8Array; verifier: (pk: Uint8Array) => NoteVerifier },
): NoteSigner {
  checkKeyName(name);
  if (!(seed instanceof Uint8Array) || seed.length !== 32) throw new InvalidInputError('ed25519 seed must be 32 bytes');
  if (!wrap && type !== SIG_ED25519) throw new InvalidInputError(`no signing function for signature type ${type}`);
  const secret = seed.slice();
  const publicKey = ed25519.getPublicKey(secret);
  const ed = (m: Uint8Array): Uint8Array => ed25519.sign(m, secret);
  return {
    name,
    keyId: keyId(name, type, publicKey),
    type,
    publicKey,
    sign: (text) => (wrap ? wrap.sign(text, ed) : ed(text)),
    verifier: () => (wrap ? wrap.verifier(publicKey) : makeVerifier(name, type, publicKey)),
  };
}

/** Encodes a signer key string `PRIVATE+KEY+<name>+<hex key id>+<base64(type || seed)>`. Secret. */
export function encodeSignerKey(name: string, type: number, seed: Uint8Array): string {
  checkKeyName(name);
  if (!(seed instanceof Uint8Array) || seed.length !== 32) throw new InvalidInputError('ed25519 seed must be 32 bytes');
  const data = concatBytes(new Uint8Array([type]), seed);
  const s = `${PRIVATE_PREFIX}${name}+${hex8(keyId(name, type, ed25519.getPublicKey(seed)))}+${base64.encode(data)}`;
  wipe(data);
  return s;
}

/**
 * The parts of a signer key string of any type: name, type and the 32-byte seed, with the key ID
 * checked against the public key the seed derives. Throws LogError `signer_key_invalid` (never
 * quoting the key).
 */
export function parseSignerKeyParts(skey: string): { name: string; keyId: number; type: number; seed: Uint8Array } {
  if (typeof skey !== 'string' || skey.length > 1024 || !skey.startsWith(PRIVATE_PREFIX)) throw keyFail('signer_key_invalid', 'it does not start with PRIVATE+KEY+');
  const { name, id, data } = splitKey(skey.trim().slice(PRIVATE_PREFIX.length), 'signer_key_invalid');
  try {
    if (data.length !== 33) throw keyFail('signer_key_invalid', 'the seed is not 32 bytes');
    const seed = data.slice(1);
    if (keyId(name, data[0]!, ed25519.getPublicKey(seed)) !== id) {
      wipe(seed);
      throw keyFail('signer_key_invalid', 'the key id does not match the name and key');
    }
    return { name, keyId: id, type: data[0]!, seed };
  } finally {
    wipe(data);
  }
}

/** Parses an Ed25519 (type 0x01) signer key string, as Go's note.NewSigner does. Throws LogError `signer_key_invalid`. */
export function parseSignerKey(skey: string): NoteSigner {
  const p = parseSignerKeyParts(skey);
  try {
    if (p.type !== SIG_ED25519) throw keyFail('signer_key_invalid', `signature type ${p.type} is not ed25519 (1)`);
    return makeSigner(p.name, p.type, p.seed);
  } finally {
    wipe(p.seed);
  }
}

/** A new Ed25519 note key for `name`: the secret signer key string and the public verifier key string. */
export function generateNoteKey(name: string): { signerKey: string; verifierKey: string } {
  checkKeyName(name);
  const seed = randomBytes(32);
  try {
    return { signerKey: encodeSignerKey(name, SIG_ED25519, seed), verifierKey: encodeVerifierKey({ name, type: SIG_ED25519, publicKey: ed25519.getPublicKey(seed) }) };
  } finally {
    wipe(seed);
  }
}

const malformed = (why: string, code: LogErrorCode = 'note_malformed'): LogError =>
  new LogError(code, `signed note is malformed: ${why}`, 'a note is text, a blank line, then lines "— <name> <base64 signature>"');

/** Formats one signature line, with its final newline. */
export function encodeSignatureLine(sig: NoteSignature): string {
  checkKeyName(sig.name, 'signature name');
  const raw = new Uint8Array(4 + sig.signature.length);
  new DataView(raw.buffer).setUint32(0, sig.keyId >>> 0);
  raw.set(sig.signature, 4);
  return `${EM_DASH_PREFIX}${sig.name} ${base64.encode(raw)}\n`;
}

/** Parses one signature line without its newline. Throws LogError `note_malformed`. */
export function parseSignatureLine(line: string): NoteSignature {
  if (!line.startsWith(EM_DASH_PREFIX)) throw malformed('a signature line does not start with an em dash and a space');
  const rest = line.slice(EM_DASH_PREFIX.length);
  const sp = rest.indexOf(' ');
  const name = sp < 0 ? rest : rest.slice(0, sp);
  const raw = sp < 0 ? null : decodeCanonicalB64(rest.slice(sp + 1));
  if (!isKeyName(name)) throw malformed('a signature line has a bad key name');
  if (!raw || raw.length < 5) throw malformed(`the signature of ${name} is not base64 of a key id and a signature`);
  return { name, keyId: new DataView(raw.buffer, raw.byteOffset, 4).getUint32(0), signature: raw.slice(4) };
}

/** Encodes a note: text, blank line, signature lines. Throws InvalidInputError unless the text ends in a newline. */
export function encodeNote(note: Note): string {
  if (typeof note.text !== 'string' || !note.text.endsWith('\n')) throw new InvalidInputError('note text must end with a newline');
  return `${note.text}\n${note.signatures.map(encodeSignatureLine).join('')}`;
}

/**
 * Parses a signed note without verifying it (signed-note, "Format"): UTF-8 with no control character
 * but newline, text up to the last blank line, then 1 to MAX_NOTE_SIGNATURES signature lines. Throws
 * LogError `note_too_large` or `note_malformed`.
 */
export function parseNote(msg: string | Uint8Array): Note {
  let text: string;
  if (msg instanceof Uint8Array) {
    if (msg.length > MAX_NOTE_BYTES) throw malformed(`it is over ${MAX_NOTE_BYTES} bytes`, 'note_too_large');
    try {
      text = STRICT_UTF8.decode(msg);
    } catch {
      throw malformed('it is not utf-8');
    }
  } else if (typeof msg === 'string') {
    if (msg.length > MAX_NOTE_BYTES || utf8.encode(msg).length > MAX_NOTE_BYTES) throw malformed(`it is over ${MAX_NOTE_BYTES} bytes`, 'note_too_large');
    if (LONE_SURROGATE.test(msg)) throw malformed('it is not utf-8');
    text = msg;
  } else {
    throw new InvalidInputError('a note must be a string or bytes');
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0009\u000b-\u001f]/.test(text)) throw malformed('it contains a control character');
  const split = text.lastIndexOf('\n\n');
  if (split < 0) throw malformed('there is no blank line before the signatures');
  const body = text.slice(0, split + 1);
  const block = text.slice(split + 2);
  if (block.length === 0 || !block.endsWith('\n')) throw malformed('there are no signature lines, or the last one has no newline');
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_NOTE_SIGNATURES) throw malformed(`it has more than ${MAX_NOTE_SIGNATURES} signatures`);
  return { text: body, signatures: lines.map(parseSignatureLine) };
}

const idOf = (s: { name: string; keyId: number }): string => `${s.name}+${hex8(s.keyId)}`;

/**
 * Opens a signed note against known verifiers (signed-note, "Signatures"): unknown (name, key ID)
 * lines are kept unverified; a known key's bad signature throws LogError `note_signature_invalid`
 * naming the key; no good known signature throws `note_unverified`; duplicates count once. Throws
 * InvalidInputError when two known verifiers share a name and key ID.
 */
export function openNote(msg: string | Uint8Array, known: readonly NoteVerifier[]): OpenedNote {
  const byId = new Map<string, NoteVerifier>();
  for (const v of known) {
    if (byId.has(idOf(v))) throw new InvalidInputError(`two known keys are both ${idOf(v)}`, { hint: 'remove the duplicate from the configured keys' });
    byId.set(idOf(v), v);
  }
  const note = parseNote(msg);
  const textBytes = utf8.encode(note.text);
  const verified: NoteSignature[] = [];
  const unverified: NoteSignature[] = [];
  const seen = new Set<string>();
  for (const sig of note.signatures) {
    const id = idOf(sig);
    const v = byId.get(id);
    if (!v) {
      const line = encodeSignatureLine(sig);
      if (!seen.has(line)) unverified.push(sig);
      seen.add(line);
      continue;
    }
    if (seen.has(id)) continue;
    seen.add(id);
    if (!v.verify(textBytes, sig.signature)) {
      throw new LogError('note_signature_invalid', `the signature of ${id} on the note does not verify`, 'the note was altered or forged: do not trust it');
    }
    verified.push(sig);
  }
  if (verified.length === 0) {
    const names = known.map(idOf).join(', ') || 'none configured';
    throw new LogError('note_unverified', `the note has no signature of a known key (known: ${names})`, 'check that the verifier key is the right one');
  }
  return { text: note.text, verified, unverified };
}

/**
 * Signs a note: the existing signature lines (minus any of a signer's own key) then one new line per
 * signer, as Go's note.Sign. `note` is a text or a parsed note. Throws InvalidInputError unless the
 * text ends in a newline.
 */
export function signNote(note: string | Note, ...signers: NoteSigner[]): string {
  const n: Note = typeof note === 'string' ? { text: note, signatures: [] } : note;
  if (typeof n.text !== 'string' || !n.text.endsWith('\n')) throw new InvalidInputError('note text must end with a newline');
  if (LONE_SURROGATE.test(n.text)) throw new InvalidInputError('note text is not valid utf-8');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0009\u000b-\u001f]/.test(n.text)) throw new InvalidInputError('note text must not contain control characters');
  const textBytes = utf8.encode(n.text);
  const mine = new Set(signers.map(idOf));
  const kept = n.signatures.filter((s) => !mine.has(idOf(s)));
  const fresh = signers.map((s) => ({ name: s.name, keyId: s.keyId, signature: s.sign(textBytes) }));
  return encodeNote({ text: n.text, signatures: [...kept, ...fresh] });
}

/**
 * Adds signature lines (e.g. a witness's answer, c2sp.org/tlog-witness: one or more lines, each
 * ending in a newline) to a signed note; a new line replaces an existing one of the same (name, key
 * ID). Nothing is verified here. Throws LogError `note_malformed` on a bad note or line, or when the
 * result would carry more than MAX_NOTE_SIGNATURES lines.
 */
export function addSignatureLines(msg: string, lines: string): string {
  const note = parseNote(msg);
  if (typeof lines !== 'string' || lines.length === 0 || !lines.endsWith('\n')) throw malformed('signature lines must end with a newline');
  const added = lines.slice(0, -1).split('\n').map(parseSignatureLine);
  const fresh = new Set(added.map(idOf));
  const signatures = [...note.signatures.filter((s) => !fresh.has(idOf(s))), ...added];
  if (signatures.length > MAX_NOTE_SIGNATURES) throw malformed(`it would have more than ${MAX_NOTE_SIGNATURES} signatures`);
  return encodeNote({ text: note.text, signatures });
}
