/**
 * The bytes of emergency recovery parts (`LBEP`) and packages (`LBER`), as parse/encode pairs
 * (docs/ers.md, "Bytes"). Parsing checks shapes and ranges only; the proofs are checked by proof.ts
 * and package.ts.
 */
import { FormatError, InvalidInputError, isLifeboatError } from '../errors.js';
import { concatBytes, u16be, u32be, utf8 } from '../util/bytes.js';
import { CURVE_CODE, decodeScalar, type FrostCurve, FROST_CURVES, hex, MAX_SIGNERS, parseIdentifier, SCALAR_LEN, suiteOf } from '../keynode/frost/index.js';

export const PART_MAGIC = 'LBEP';
export const PACKAGE_MAGIC = 'LBER';
const VERSION = 1;
/** Version 1's fixed parameters: 64 rows of 4 leaves, one closed per row (4^-64 = 2^-128). */
export const ROWS = 64;
export const WIDTH = 4;
export const DEPTH = 2;
const SEED_LEN = 32;
const MIN_K = 384;
const MAX_K = 1024;
const MAX_PUBLIC = 64 * 1024;

export interface ErsRow {
  /** The ciphertext of the closed leaf (k bytes). */
  closed: Uint8Array;
  /** Δ, a canonical scalar. */
  delta: Uint8Array;
  /** The GGM co-path of the closed leaf: the level-1 sibling, then the sibling leaf. */
  copath: Uint8Array[];
}

/** One participant's encrypted share and its proof. */
export interface ErsPart {
  curve: FrostCurve;
  label: string;
  /** Commitment 0 of the key's public package (pointLen bytes). */
  groupKey: Uint8Array;
  /** SHA-256 of the RSA key's SPKI DER. */
  rsaFingerprint: Uint8Array;
  identifier: string;
  verifyingShare: Uint8Array;
  /** RSA modulus length in bytes. */
  k: number;
  challenge: Uint8Array;
  rows: ErsRow[];
}

export interface ErsPackage {
  curve: FrostCurve;
  label: string;
  /** SPKI DER of the RSA key. */
  spki: Uint8Array;
  /** The canonical bytes of the key's FROST public package. */
  publicPackage: Uint8Array;
  parts: ErsPart[];
}

/** Checks a label: UTF-8, at most 255 bytes, no control characters. Throws InvalidInputError. */
export function checkLabel(label: unknown): asserts label is string {
  if (typeof label !== 'string' || utf8.encode(label).length > 255 || [...label].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f)) {
    throw new InvalidInputError('the label must be at most 255 bytes of UTF-8 text without control characters');
  }
}

class Reader {
  off = 0;
  constructor(
    readonly b: Uint8Array,
    readonly what: string,
  ) {}
  take(n: number, field: string): Uint8Array {
    if (this.off + n > this.b.length) throw new FormatError('truncated', `${this.what} is truncated (in ${field})`);
    const out = this.b.subarray(this.off, this.off + n);
    this.off += n;
    return out;
  }
  u8(field: string): number {
    return this.take(1, field)[0]!;
  }
  u16(field: string): number {
    const x = this.take(2, field);
    return (x[0]! << 8) | x[1]!;
  }
  u32(field: string): number {
    const x = this.take(4, field);
    return ((x[0]! << 24) >>> 0) + (x[1]! << 16) + (x[2]! << 8) + x[3]!;
  }
  end(): void {
    if (this.off !== this.b.length) throw new FormatError('malformed', `${this.what} has ${this.b.length - this.off} trailing bytes`);
  }
}

function header(r: Reader, magic: string): void {
  const m = r.take(4, 'magic');
  if (utf8.decode(m) !== magic) throw new FormatError('bad_magic', `${r.what} does not start with ${magic}`, 'is this file an emergency recovery package?');
  const v = r.u8('version');
  if (v !== VERSION) throw new FormatError('unsupported_version', `${r.what} version ${v} is not supported (this build reads ${VERSION})`);
}

function readCurve(r: Reader): FrostCurve {
  const code = r.u8('curve');
  const curve = FROST_CURVES.find((c) => CURVE_CODE[c] === code);
  if (!curve) throw new FormatError('malformed', `${r.what}: unknown curve code ${code}`);
  return curve;
}

function readLabel(r: Reader): string {
  const len = r.u8('label length');
  let label: string;
  try {
    label = new TextDecoder('utf-8', { fatal: true }).decode(r.take(len, 'label'));
    checkLabel(label);
  } catch (err) {
    if (isLifeboatError(err, 'truncated')) throw err;
    throw new FormatError('malformed', `${r.what}: the label is not valid text`);
  }
  return label;
}

const encodeLabel = (label: string): Uint8Array => {
  checkLabel(label);
  const b = utf8.encode(label);
  return concatBytes(new Uint8Array([b.length]), b);
};

/** The part's context: the bytes from `curve` through `ct_len`, hashed into the challenge. */
export function encodePartContext(p: Omit<ErsPart, 'challenge' | 'rows'>): Uint8Array {
  const s = suiteOf(p.curve);
  if (p.groupKey.length !== s.pointLen || p.verifyingShare.length !== s.pointLen || p.rsaFingerprint.length !== 32) throw new InvalidInputError('part fields have the wrong length');
  if (!Number.isInteger(p.k) || p.k < MIN_K || p.k > MAX_K) throw new InvalidInputError('rsa modulus length out of range');
  return concatBytes(
    new Uint8Array([CURVE_CODE[p.curve]]),
    encodeLabel(p.label),
    p.groupKey,
    p.rsaFingerprint,
    fromIdentifier(p.curve, p.identifier),
    p.verifyingShare,
    new Uint8Array([ROWS, WIDTH]),
    u16be(p.k),
  );
}

function fromIdentifier(curve: FrostCurve, id: string): Uint8Array {
  parseIdentifier(curve, id);
  return Uint8Array.from(Buffer.from(id, 'hex'));
}

/** The part's bytes. Throws InvalidInputError on fields of the wrong shape. */
export function encodePart(p: ErsPart): Uint8Array {
  if (p.rows.length !== ROWS || p.challenge.length !== 32) throw new InvalidInputError('a part has 64 rows and a 32-byte challenge');
  const rows = p.rows.map((row) => {
    if (row.closed.length !== p.k || row.delta.length !== SCALAR_LEN || row.copath.length !== DEPTH || row.copath.some((c) => c.length !== SEED_LEN)) throw new InvalidInputError('a row has fields of the wrong length');
    return concatBytes(row.closed, row.delta, ...row.copath);
  });
  return concatBytes(utf8.encode(PART_MAGIC), new Uint8Array([VERSION]), encodePartContext(p), p.challenge, ...rows);
}

/** Parses a part. Throws FormatError `bad_magic`, `unsupported_version`, `truncated`, `malformed`. */
export function parsePart(bytes: Uint8Array, what = 'emergency recovery part'): ErsPart {
  const r = new Reader(bytes, what);
  header(r, PART_MAGIC);
  const curve = readCurve(r);
  const s = suiteOf(curve);
  const label = readLabel(r);
  const groupKey = r.take(s.pointLen, 'group key').slice();
  const rsaFingerprint = r.take(32, 'rsa fingerprint').slice();
  const identifier = hex(r.take(SCALAR_LEN, 'identifier'));
  try {
    parseIdentifier(curve, identifier);
  } catch {
    throw new FormatError('malformed', `${what}: the identifier is not a non-zero scalar`);
  }
  const verifyingShare = r.take(s.pointLen, 'verifying share').slice();
  const rows = r.u8('rows');
  const width = r.u8('width');
  if (rows !== ROWS || width !== WIDTH) throw new FormatError('malformed', `${what}: version 1 has ${ROWS} rows of ${WIDTH}, not ${rows} of ${width}`);
  const k = r.u16('ct_len');
  if (k < MIN_K || k > MAX_K) throw new FormatError('malformed', `${what}: ciphertext length ${k} is outside ${MIN_K}..${MAX_K} (3072..8192-bit RSA)`);
  const challenge = r.take(32, 'challenge').slice();
  const out: ErsRow[] = [];
  for (let j = 0; j < ROWS; j++) {
    const closed = r.take(k, `row ${j} ciphertext`).slice();
    const delta = r.take(SCALAR_LEN, `row ${j} delta`).slice();
    try {
      decodeScalar(curve, delta, `row ${j} delta`);
    } catch {
      throw new FormatError('malformed', `${what}: row ${j} delta is not a canonical scalar`);
    }
    const copath = [r.take(SEED_LEN, `row ${j} co-path`).slice(), r.take(SEED_LEN, `row ${j} co-path`).slice()];
    out.push({ closed, delta, copath });
  }
  r.end();
  return { curve, label, groupKey, rsaFingerprint, identifier, verifyingShare, k, challenge, rows: out };
}

/** The package's bytes. Throws InvalidInputError on a bad field or parts out of identifier order. */
export function encodePackage(p: ErsPackage): Uint8Array {
  if (p.parts.length < 1 || p.parts.length > MAX_SIGNERS) throw new InvalidInputError(`a package holds 1..${MAX_SIGNERS} parts`);
  if (p.spki.length < 1 || p.spki.length > 0xffff || p.publicPackage.length > MAX_PUBLIC) throw new InvalidInputError('package fields too long');
  const sorted = [...p.parts].sort((a, b) => (a.identifier < b.identifier ? -1 : a.identifier > b.identifier ? 1 : 0));
  for (let i = 1; i < sorted.length; i++) if (sorted[i]!.identifier === sorted[i - 1]!.identifier) throw new InvalidInputError('two parts of one participant');
  const parts = sorted.map((part) => {
    const b = encodePart(part);
    return concatBytes(u32be(b.length), b);
  });
  return concatBytes(utf8.encode(PACKAGE_MAGIC), new Uint8Array([VERSION, CURVE_CODE[p.curve]]), encodeLabel(p.label), u16be(p.spki.length), p.spki, u32be(p.publicPackage.length), p.publicPackage, new Uint8Array([parts.length]), ...parts);
}

/**
 * Parses a package. Throws FormatError `bad_magic`, `unsupported_version`, `truncated`, `malformed`
 * (also for parts not in strictly increasing identifier order, i.e. a duplicate participant).
 */
export function parsePackage(bytes: Uint8Array, what = 'emergency recovery package'): ErsPackage {
  const r = new Reader(bytes, what);
  header(r, PACKAGE_MAGIC);
  const curve = readCurve(r);
  const label = readLabel(r);
  const spki = r.take(r.u16('spki length'), 'spki').slice();
  const publen = r.u32('public package length');
  if (publen > MAX_PUBLIC) throw new FormatError('malformed', `${what}: the public package is over ${MAX_PUBLIC} bytes`);
  const publicPackage = r.take(publen, 'public package').slice();
  const count = r.u8('part count');
  if (count < 1 || count > MAX_SIGNERS) throw new FormatError('malformed', `${what}: ${count} parts (1..${MAX_SIGNERS})`);
  const parts: ErsPart[] = [];
  for (let i = 0; i < count; i++) {
    const len = r.u32(`part ${i} length`);
    const part = parsePart(r.take(len, `part ${i}`), `${what}, part ${i}`);
    if (part.curve !== curve) throw new FormatError('malformed', `${what}: part ${i} is for ${part.curve}, the package for ${curve}`);
    if (i > 0 && !(parts[i - 1]!.identifier < part.identifier)) throw new FormatError('malformed', `${what}: parts are not in increasing identifier order (a participant twice?)`);
    parts.push(part);
  }
  r.end();
  return { curve, label, spki, publicPackage, parts };
}
