/**
 * The public key package of one FROST key (noble's FrostPublic: threshold, VSS commitments, verifying
 * shares) as canonical JSON, and the check that a signing share belongs to it. docs/format.md (key node),
 * "Public key package".
 */
import { FormatError, InvalidInputError, LifeboatError, isLifeboatError } from '../../errors.js';
import { ctEqual, utf8 } from '../../util/bytes.js';
import {
  baseMultiplyEncoded,
  checkSecretScalar,
  decodePoint,
  describeIdentifier,
  evaluateCommitment,
  type FrostCurve,
  groupPublicKey,
  hex,
  isFrostCurve,
  MAX_SIGNERS,
  parseHex,
  parseIdentifier,
  suiteOf,
} from './suite.js';

/** noble's FrostPublic with plain byte arrays: `commitments[0]` is the group key. */
export interface FrostPublic {
  signers: { min: number; max: number };
  commitments: Uint8Array[];
  verifyingShares: Record<string, Uint8Array>;
}

/** The JSON object form (what travels inside API bodies). */
export interface FrostPublicJson {
  type: 'lifeboat-frost-public';
  version: 1;
  curve: FrostCurve;
  min_signers: number;
  max_signers: number;
  commitments: string[];
  verifying_shares: Record<string, string>;
}

/** `full` checks every element and that each verifying share matches the commitments; `structure` only shapes. */
export type PublicCheck = 'full' | 'structure';

const MAX_PUBLIC_BYTES = 64 * 1024;

/** The JSON object form of a public package, keys in canonical order, verifying shares sorted by identifier. */
export function frostPublicToJson(curve: FrostCurve, pub: FrostPublic): FrostPublicJson {
  suiteOf(curve);
  const ids = Object.keys(pub.verifyingShares).sort();
  const verifying_shares: Record<string, string> = {};
  for (const id of ids) verifying_shares[id] = hex(pub.verifyingShares[id]!);
  return {
    type: 'lifeboat-frost-public',
    version: 1,
    curve,
    min_signers: pub.signers.min,
    max_signers: pub.signers.max,
    commitments: pub.commitments.map((c) => hex(c)),
    verifying_shares,
  };
}

/** Canonical bytes: UTF-8 JSON of frostPublicToJson, no whitespace. Throws InvalidInputError on an unknown curve. */
export function encodeFrostPublic(curve: FrostCurve, pub: FrostPublic): Uint8Array {
  return utf8.encode(JSON.stringify(frostPublicToJson(curve, pub)));
}

function bad(message: string): FormatError {
  return new FormatError('malformed', `frost public package: ${message}`);
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/**
 * Parses the JSON object form. `check: 'full'` (the default, for anything from outside) also decodes
 * every element and checks that each verifying share equals the commitments evaluated at its identifier.
 * Throws FormatError `unsupported_version` for another version, `malformed` for anything else wrong
 * (shape, counts, element, consistency), and InvalidInputError when `opts.curve` is given and differs.
 */
export function frostPublicFromJson(json: unknown, opts: { curve?: FrostCurve; check?: PublicCheck } = {}): { curve: FrostCurve; public: FrostPublic } {
  if (!isRecord(json) || json.type !== 'lifeboat-frost-public') throw bad('not a lifeboat-frost-public object');
  if (json.version !== 1) throw new FormatError('unsupported_version', `frost public package version ${String(json.version)} is not supported (this build reads 1)`);
  const keys = Object.keys(json).sort().join(',');
  if (keys !== 'commitments,curve,max_signers,min_signers,type,verifying_shares,version') throw bad('unexpected or missing fields');
  const { curve, min_signers: min, max_signers: max, commitments, verifying_shares: vs } = json;
  if (!isFrostCurve(curve)) throw bad('unknown curve');
  if (opts.curve !== undefined && curve !== opts.curve) throw new InvalidInputError(`public package is for ${curve}, expected ${opts.curve}`);
  if (!Number.isInteger(min) || !Number.isInteger(max) || (min as number) < 2 || (min as number) > (max as number) || (max as number) > MAX_SIGNERS) {
    throw bad(`signers must satisfy 2 <= min <= max <= ${MAX_SIGNERS}`);
  }
  if (!Array.isArray(commitments) || commitments.length !== min) throw bad('there must be min_signers commitments');
  if (!isRecord(vs) || Object.keys(vs).length !== max) throw bad('there must be max_signers verifying shares');
  const s = suiteOf(curve);
  const pub: FrostPublic = { signers: { min: min as number, max: max as number }, commitments: [], verifyingShares: {} };
  try {
    commitments.forEach((c, j) => pub.commitments.push(parseHex(c, `commitment ${j}`, s.pointLen)));
    for (const [id, v] of Object.entries(vs)) {
      parseIdentifier(curve, id, 'verifying share identifier');
      pub.verifyingShares[id] = parseHex(v, `verifying share of ${describeIdentifier(curve, id)}`, s.pointLen);
    }
    if ((opts.check ?? 'full') === 'full') checkConsistent(curve, pub);
  } catch (err) {
    if (isLifeboatError(err, 'invalid_input')) throw bad(err.message);
    throw err;
  }
  return { curve, public: pub };
}

/** Every element decodes, and every verifying share is the commitments evaluated at its identifier. */
function checkConsistent(curve: FrostCurve, pub: FrostPublic): void {
  pub.commitments.forEach((c, j) => decodePoint(curve, c, `commitment ${j}`));
  for (const [id, v] of Object.entries(pub.verifyingShares)) {
    const who = describeIdentifier(curve, id);
    decodePoint(curve, v, `verifying share of ${who}`);
    const expected = evaluateCommitment(curve, pub.commitments, parseIdentifier(curve, id)).toBytes();
    if (!ctEqual(expected, v)) throw bad(`the verifying share of ${who} does not match the commitments`);
  }
}

/**
 * Parses canonical public-package bytes (what encodeFrostPublic writes). Refuses any other spelling of
 * the same JSON (whitespace, key order, uppercase hex) so the bytes can be hashed and compared.
 * Throws FormatError (`malformed`, `unsupported_version`) and InvalidInputError as frostPublicFromJson.
 */
export function parseFrostPublic(bytes: Uint8Array, opts: { curve?: FrostCurve; check?: PublicCheck } = {}): { curve: FrostCurve; public: FrostPublic } {
  if (!(bytes instanceof Uint8Array) || bytes.length > MAX_PUBLIC_BYTES) throw bad(`must be at most ${MAX_PUBLIC_BYTES} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(bytes));
  } catch {
    throw bad('not UTF-8 JSON');
  }
  const out = frostPublicFromJson(json, opts);
  if (!ctEqual(encodeFrostPublic(out.curve, out.public), bytes)) throw bad('not in canonical form');
  return out;
}

/** What a restore needs of a package: its sizes, commitments and one participant's verifying share. */
export interface PublicForShare {
  min: number;
  max: number;
  commitments: Uint8Array[];
  verifyingShare: Uint8Array;
}

const LOWER_HEX = /^[0-9a-f]*$/;

/** h is lowercase hex of `hexLen` characters (module level: a closure per call costs more than the test under keepNames). */
function isPointHex(h: unknown, hexLen: number): h is string {
  return typeof h === 'string' && h.length === hexLen && LOWER_HEX.test(h);
}

/**
 * readCanonicalPublic reads canonical package bytes for the restore check without building the
 * package: sizes, commitments and `identifier`'s verifying share, the other shares only checked. It
 * accepts only what parseFrostPublic(bytes, { curve, check: 'structure' }) accepts and that names
 * `identifier`: every field is checked as frostPublicFromJson checks it (each hex string's alphabet and
 * length, each identifier parsed), and the canonical spelling is rebuilt from the parsed fields and
 * compared with the text, as parseFrostPublic compares its re-encoding. Undefined for anything else:
 * the caller then takes parseFrostPublic's own path, which decides. Throws nothing.
 */
export function readCanonicalPublic(bytes: Uint8Array, curve: FrostCurve, identifier: string): PublicForShare | undefined {
  try {
    if (bytes.length > MAX_PUBLIC_BYTES) return undefined;
    const text = utf8.decode(bytes);
    const json: unknown = JSON.parse(text);
    if (!isRecord(json)) return undefined;
    const { min_signers: min, max_signers: max, commitments, verifying_shares: vs } = json;
    if (!Number.isInteger(min) || !Number.isInteger(max) || (min as number) < 2 || (min as number) > (max as number) || (max as number) > MAX_SIGNERS) return undefined;
    if (!Array.isArray(commitments) || commitments.length !== min || !isRecord(vs)) return undefined;
    const ids = Object.keys(vs).sort();
    const own = vs[identifier];
    if (ids.length !== max || typeof own !== 'string' || !Object.hasOwn(vs, identifier)) return undefined;
    const hexLen = 2 * suiteOf(curve).pointLen;
    if (!commitments.every((h) => isPointHex(h, hexLen)) || !ids.every((id) => isPointHex(vs[id], hexLen))) return undefined;
    const spelled = `{"type":"lifeboat-frost-public","version":1,"curve":"${curve}","min_signers":${min as number},"max_signers":${max as number},"commitments":[${commitments.map((c) => `"${c}"`).join(',')}],"verifying_shares":{${ids.map((id) => `"${id}":"${vs[id] as string}"`).join(',')}}}`;
    if (spelled !== text) return undefined;
    for (const id of ids) parseIdentifier(curve, id, 'verifying share identifier');
    return { min: min as number, max: max as number, commitments: commitments.map((c) => parseHex(c, 'commitment')), verifyingShare: parseHex(own, 'verifying share') };
  } catch {
    return undefined;
  }
}

/** The group public key of a package, as plain verifiers take it (see groupPublicKey). */
export function frostGroupPublicKey(curve: FrostCurve, pub: FrostPublic): Uint8Array {
  const c0 = pub.commitments[0];
  if (!c0) throw new InvalidInputError('public package has no commitments');
  return groupPublicKey(curve, c0);
}

/** The fields of a key share that the share check needs. */
export interface ShareToCheck {
  curve: FrostCurve;
  identifier: string;
  /** The 32-byte signing share (secret). */
  share: Uint8Array;
  public: FrostPublic;
}

/**
 * The check an import or restore makes before it trusts a share (RFC 9591 Appendix C.2 vss_verify,
 * the same equation as noble's validateSecret): G * share equals the participant's verifying share,
 * and that verifying share equals the VSS commitments evaluated at the identifier. Constant time in
 * the share. Throws LifeboatError `share_mismatch` (naming the participant, never the share) when the
 * share does not belong to the package; InvalidInputError on an unknown curve.
 */
export function verifyShareAgainstPublic(key: ShareToCheck): void {
  const { curve, identifier } = key;
  suiteOf(curve);
  const who = typeof identifier === 'string' ? describeIdentifier(curve, identifier) : 'participant';
  const mismatch = (why: string): LifeboatError =>
    new LifeboatError('share_mismatch', `key share of ${who} does not match its public key package: ${why}`, {
      hint: 'the share and the public package come from different keys, or one of them is damaged',
    });
  try {
    parseIdentifier(curve, identifier);
    checkSecretScalar(curve, key.share, 'signing share');
  } catch {
    throw mismatch('malformed identifier or share');
  }
  const verifying = key.public?.verifyingShares?.[identifier];
  if (!(verifying instanceof Uint8Array)) throw mismatch('the package has no verifying share for it');
  let ok: boolean;
  try {
    ok = ctEqual(baseMultiplyEncoded(curve, key.share, 'signing share'), verifying);
  } catch {
    ok = false;
  }
  if (!ok) throw mismatch('share times the generator is not its verifying share');
  try {
    ok = ctEqual(evaluateCommitment(curve, key.public.commitments, parseIdentifier(curve, identifier)).toBytes(), verifying);
  } catch {
    ok = false;
  }
  if (!ok) throw mismatch('its verifying share does not match the commitments');
}
