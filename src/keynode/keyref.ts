/**
 * The key reference file (docs/format.md, "Key reference file"): what a client keeps about one
 * threshold key so that `lifeboat sign --key-file` needs nothing else: its id, curve, threshold,
 * group public key, and each node's URL, pinned fingerprint and own key id (ids differ after an
 * import). Public data, yet written 0600 and atomically: a half-written or swapped reference would
 * send signing requests elsewhere. parseKeyRef and encodeKeyRef are a pair; test/keynode-keyref.test.ts
 * holds the round trip and the negative vectors.
 */
import { FormatError, InvalidInputError, LifeboatError } from '../errors.js';
import { concatBytes, utf8 } from '../util/bytes.js';
import { readFileOrThrow, writeFileAtomic } from '../util/files.js';
import { KEY_ID } from './api.js';
import { decodePoint, type FrostCurve, isFrostCurve, MAX_SIGNERS } from './frost/suite.js';

export const KEY_REF_TYPE = 'lifeboat-key-ref';
export const KEY_REF_VERSION = 1;
/** A reference names at most MAX_SIGNERS nodes; its canonical encoding stays far below this. */
export const KEY_REF_MAX_BYTES = 64 * 1024;

/** One node of the key: where it is, who it must be (when pinned), and its own id for the key. */
export interface KeyRefNode {
  url: string;
  keyId: string;
  /** The node's identity fingerprint (docs/format.md, "Identity"); absent: not pinned. */
  fingerprint?: string;
}

/** A parsed key reference. `keyId` is the key's id at creation; each node may hold it under another. */
export interface KeyRefFile {
  keyId: string;
  curve: FrostCurve;
  threshold: number;
  /** Lowercase hex, as `key create` and `key info` print it. */
  groupPublicKey: string;
  nodes: KeyRefNode[];
}

const FINGERPRINT = /^[0-9a-f]{4}(:[0-9a-f]{4}){7}$/;
const HEX = /^(?:[0-9a-f]{2})+$/;
const TOP_FIELDS = ['version', 'type', 'key_id', 'curve', 'threshold', 'group_public_key', 'nodes'];

function bad(message: string, hint?: string): FormatError {
  return new FormatError('malformed', `key reference: ${message}`, hint);
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** A node URL as the reference keeps it: http(s), no credentials, query or fragment, no trailing slash. */
export function normalizeNodeUrl(raw: string, what = 'node URL'): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new InvalidInputError(`${what} ${JSON.stringify(raw.slice(0, 200))} is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new InvalidInputError(`${what} ${u.origin} must be http or https`);
  if (u.username || u.password || u.search || u.hash || raw.includes('#')) throw new InvalidInputError(`${what} must not carry credentials, a query or a fragment`);
  return raw.replace(/\/+$/, '');
}

/** Checks a group public key's hex against the curve: length, and a valid point (x-only for bip340). */
function checkGroupKey(curve: FrostCurve, value: unknown): string {
  if (typeof value !== 'string' || !HEX.test(value)) throw bad('group_public_key must be lowercase hex');
  const bytes = Uint8Array.from(value.match(/../g)!.map((h) => parseInt(h, 16)));
  const len = curve === 'secp256k1' ? 33 : 32;
  if (bytes.length !== len) throw bad(`group_public_key must be ${len} bytes for ${curve}`);
  try {
    decodePoint(curve, curve === 'bip340' ? concatBytes(Uint8Array.of(2), bytes) : bytes, 'group public key');
  } catch {
    throw bad(`group_public_key is not a point on ${curve}`);
  }
  return value;
}

function parseNode(n: unknown, i: number): KeyRefNode {
  if (!isRecord(n)) throw bad(`nodes[${i}] must be an object`);
  const extra = Object.keys(n).filter((k) => !['url', 'key_id', 'fingerprint'].includes(k));
  if (extra.length) throw bad(`nodes[${i}] has unknown field ${JSON.stringify(extra[0]!.slice(0, 64))}`);
  if (typeof n.url !== 'string') throw bad(`nodes[${i}].url must be a string`);
  let url: string;
  try {
    url = normalizeNodeUrl(n.url, `nodes[${i}].url`);
  } catch (err) {
    throw bad((err as Error).message);
  }
  if (url !== n.url) throw bad(`nodes[${i}].url must not end in a slash`);
  if (typeof n.key_id !== 'string' || !KEY_ID.test(n.key_id)) throw bad(`nodes[${i}].key_id must be 1..64 of A-Z a-z 0-9 _ -`);
  if (n.fingerprint !== undefined && (typeof n.fingerprint !== 'string' || !FINGERPRINT.test(n.fingerprint))) throw bad(`nodes[${i}].fingerprint must be 8 groups of 4 lowercase hex digits joined by ':'`);
  return n.fingerprint === undefined ? { url, keyId: n.key_id } : { url, keyId: n.key_id, fingerprint: n.fingerprint };
}

/**
 * Parses a key reference file's bytes. Throws FormatError `malformed` (not JSON, not a key reference,
 * a field missing, unknown, or out of range, a node twice) and `unsupported_version` (another version).
 */
export function parseKeyRef(bytes: Uint8Array): KeyRefFile {
  if (bytes.length > KEY_REF_MAX_BYTES) throw bad(`over ${KEY_REF_MAX_BYTES} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(bytes));
  } catch {
    throw bad('not JSON');
  }
  if (!isRecord(json) || json.type !== KEY_REF_TYPE) {
    throw bad(`not a ${KEY_REF_TYPE} document`, isRecord(json) && 'groupPublicKey' in json ? 'a file from an older `key create --out`: write a new one with `lifeboat key create --out`, or use --key and --nodes' : undefined);
  }
  if (json.version !== KEY_REF_VERSION) throw new FormatError('unsupported_version', `key reference version ${JSON.stringify(json.version)} is not supported (this build reads ${KEY_REF_VERSION})`, 'use the lifeboat that wrote it, or a newer one');
  const extra = Object.keys(json).filter((k) => !TOP_FIELDS.includes(k));
  if (extra.length) throw bad(`unknown field ${JSON.stringify(extra[0]!.slice(0, 64))}`);
  const { key_id: keyId, curve, threshold, nodes } = json;
  if (typeof keyId !== 'string' || !KEY_ID.test(keyId)) throw bad('key_id must be 1..64 of A-Z a-z 0-9 _ -');
  if (!isFrostCurve(curve)) throw bad('curve must be ed25519, secp256k1 or bip340');
  if (!Array.isArray(nodes) || nodes.length < 1 || nodes.length > MAX_SIGNERS) throw bad(`nodes must be a list of 1..${MAX_SIGNERS} nodes`);
  if (!Number.isInteger(threshold) || (threshold as number) < 2 || (threshold as number) > nodes.length) throw bad(`threshold must be an integer from 2 to the number of nodes (${nodes.length})`);
  const groupPublicKey = checkGroupKey(curve, json.group_public_key);
  const parsed = nodes.map(parseNode);
  const seen = new Set<string>();
  for (const n of parsed) {
    if (seen.has(n.url)) throw bad(`node ${n.url} is listed twice`);
    seen.add(n.url);
  }
  return { keyId, curve, threshold: threshold as number, groupPublicKey, nodes: parsed };
}

/**
 * The canonical bytes of a reference: UTF-8 JSON, fields in the documented order, two-space indent, a
 * final newline. Checks its input by parsing the result (throws what parseKeyRef throws).
 */
export function encodeKeyRef(ref: KeyRefFile): Uint8Array {
  const doc = {
    version: KEY_REF_VERSION,
    type: KEY_REF_TYPE,
    key_id: ref.keyId,
    curve: ref.curve,
    threshold: ref.threshold,
    group_public_key: ref.groupPublicKey,
    nodes: ref.nodes.map((n) => (n.fingerprint === undefined ? { url: n.url, key_id: n.keyId } : { url: n.url, key_id: n.keyId, fingerprint: n.fingerprint })),
  };
  const bytes = utf8.encode(`${JSON.stringify(doc, null, 2)}\n`);
  parseKeyRef(bytes);
  return bytes;
}

/** Reads and parses a key reference file. Throws NotFoundError `file_not_found` and what parseKeyRef throws. */
export function readKeyRefFile(path: string): KeyRefFile {
  return parseKeyRef(readFileOrThrow(path, 'key reference file', 'write one with `lifeboat key create --out FILE`'));
}

/** Writes a reference atomically (temp file, fsync, rename), mode 0600. */
export function writeKeyRefFile(path: string, ref: KeyRefFile): void {
  writeFileAtomic(path, encodeKeyRef(ref), 0o600);
}

/**
 * The index of the node at `url` in the reference (trailing slashes ignored). Throws InvalidInputError
 * `node_not_in_key_ref` when the reference does not name it.
 */
export function nodeIndexOf(ref: KeyRefFile, url: string): number {
  const want = normalizeNodeUrl(url, '--node');
  const i = ref.nodes.findIndex((n) => n.url === want);
  if (i < 0) throw new InvalidInputError(`the key reference names no node ${want}`, { code: 'node_not_in_key_ref', hint: `its nodes: ${ref.nodes.map((n) => n.url).join(', ')}` });
  return i;
}

/** `ed25519 2-of-n, group key 3f2a0c…`: a key as an error names it (the group key shortened). */
export function describeKey(curve: string, threshold: number, groupPublicKey: string): string {
  return `${curve} ${threshold}-of-n, group key ${groupPublicKey.slice(0, 16)}…`;
}

/** What a node reported for the key differs from the reference: another key, whatever its id. */
export function keyRefMismatch(what: string): LifeboatError {
  return new LifeboatError('key_ref_mismatch', what, { hint: 'the node holds another key under that id, or the key reference is not this key\'s: check both before going on' });
}
