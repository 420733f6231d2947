/**
 * SLIP-0039: Shamir's Secret-Sharing for Mnemonic Codes
 * (https://github.com/satoshilabs/slips/blob/master/slip-0039.md). Section names in comments refer to
 * that document. Byte and bit layout: docs/format.md, "Shamir over GF(256) and SLIP-0039 shares".
 *
 * This file shares and combines secrets: the master secret's encryption, the split with its digest,
 * and the checks on a set of shares. A share's mnemonic (fields, words, checksum) is ./slip39-mnemonic.ts,
 * re-exported here. Mnemonic words are an encoding of secret data; turning them into numbers and back
 * uses map and array lookups and is not constant-time (as in every SLIP-0039 implementation). The field
 * arithmetic under it (shamir.ts, gf256.ts) and the checksum are.
 */
import { hmac } from '@noble/hashes/hmac.js';
import { pbkdf2 } from '@noble/hashes/pbkdf2.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { InvalidInputError, ShareError } from '../errors.js';
import { concatBytes, ctEqual, wipe } from '../util/bytes.js';
import { randomBytes } from './random.js';
import { interpolate, type ShamirShare } from './shamir.js';
import { checkInt, checkSecret, customization, decodeMnemonic, encodeMnemonic, type Slip39Share } from './slip39-mnemonic.js';

export { decodeMnemonic, encodeMnemonic, normalizeMnemonic, type Slip39Share } from './slip39-mnemonic.js';
export { WORDLIST } from './slip39-wordlist.js';

const DIGEST_INDEX = 254; // "Shamir's secret-sharing": f(254) holds the digest,
const SECRET_INDEX = 255; // f(255) the shared secret
const DIGEST_BYTES = 4;
const ROUND_ITERATIONS = 2500; // "Encryption of the master secret": 10000·2^e in total over 4 rounds

/** "Passphrase": printable ASCII only (code points 32-126), for interoperability. */
function passphraseBytes(passphrase: unknown): Uint8Array {
  if (typeof passphrase !== 'string' || !/^[\x20-\x7e]*$/.test(passphrase)) {
    throw new InvalidInputError('passphrase must be a string of printable ASCII characters (32-126)');
  }
  return Uint8Array.from(passphrase, (ch) => ch.charCodeAt(0));
}

// ---- "Encryption of the master secret": 4-round Feistel network, PBKDF2-HMAC-SHA256 round function ----

function feistel(input: Uint8Array, passphrase: string, e: number, identifier: number, extendable: boolean, rounds: number[]): Uint8Array {
  const pass = passphraseBytes(passphrase);
  // salt_prefix = "shamir" || id (2 bytes, big-endian) when ext = 0, empty when ext = 1.
  const prefix = extendable ? new Uint8Array(0) : Uint8Array.from([...customization(false), identifier >>> 8, identifier & 0xff]);
  const half = input.length / 2;
  let l = input.slice(0, half);
  let r = input.slice(half);
  for (const i of rounds) {
    const password = concatBytes(Uint8Array.of(i), pass);
    const salt = concatBytes(prefix, r);
    const f = pbkdf2(sha256, password, salt, { c: ROUND_ITERATIONS << e, dkLen: half });
    for (let k = 0; k < half; k++) f[k]! ^= l[k]!;
    wipe(l, password, salt);
    [l, r] = [r, f];
  }
  const out = concatBytes(r, l);
  wipe(l, r, pass);
  return out;
}

const encrypt = (ms: Uint8Array, p: string, e: number, id: number, ext: boolean) => feistel(ms, p, e, id, ext, [0, 1, 2, 3]);
const decrypt = (ems: Uint8Array, p: string, e: number, id: number, ext: boolean) => feistel(ems, p, e, id, ext, [3, 2, 1, 0]);

// ---- "Sharing a secret": SplitSecret / RecoverSecret with the digest at x = 254, the secret at 255 ----

function digestOf(random: Uint8Array, secret: Uint8Array): Uint8Array {
  const mac = hmac(sha256, random, secret);
  const d = mac.slice(0, DIGEST_BYTES);
  wipe(mac);
  return d;
}

function splitSecret(threshold: number, count: number, secret: Uint8Array): Uint8Array[] {
  if (threshold === 1) return Array.from({ length: count }, () => secret.slice());
  const n = secret.length;
  const random = randomBytes((threshold - 2) * n + n - DIGEST_BYTES); // one CSPRNG call
  const r = random.subarray((threshold - 2) * n);
  const digest = concatBytes(digestOf(r, secret), r);
  const base: ShamirShare[] = [];
  for (let x = 0; x < threshold - 2; x++) base.push({ x, y: random.subarray(x * n, (x + 1) * n) });
  base.push({ x: DIGEST_INDEX, y: digest }, { x: SECRET_INDEX, y: secret });
  const shares = Array.from({ length: count }, (_, x) => (x < threshold - 2 ? base[x]!.y.slice() : interpolate(base, x)));
  wipe(random, digest);
  return shares;
}

function recoverSecret(threshold: number, shares: ShamirShare[]): Uint8Array {
  if (threshold === 1) return shares[0]!.y.slice();
  const secret = interpolate(shares, SECRET_INDEX);
  const digest = interpolate(shares, DIGEST_INDEX);
  const expected = digestOf(digest.subarray(DIGEST_BYTES), secret);
  const ok = ctEqual(expected, digest.subarray(0, DIGEST_BYTES));
  wipe(digest, expected);
  if (ok) return secret;
  wipe(secret);
  throw new ShareError('invalid_digest', 'the shares do not fit together: digest mismatch', 'a share was altered, or comes from another set with the same first words');
}

// ---- "Generating the shares" ----

interface GenerateOptions {
  passphrase?: string;
  iterationExponent?: number;
  extendable?: boolean;
}

function checkGroups(groupThreshold: number, groups: [number, number][]): void {
  if (!Array.isArray(groups)) throw new InvalidInputError('groups must be an array of [memberThreshold, memberCount]');
  checkInt(groups.length, 'number of groups', 1, 16);
  checkInt(groupThreshold, 'groupThreshold', 1, groups.length);
  for (const [i, g] of groups.entries()) {
    if (!Array.isArray(g) || g.length !== 2) throw new InvalidInputError(`group ${i + 1} must be [memberThreshold, memberCount]`);
    checkInt(g[1], `group ${i + 1} member count`, 1, 16);
    checkInt(g[0], `group ${i + 1} member threshold`, 1, g[1]);
    // "Generating the shares", step 1: T = 1 with N > 1 only multiplies one share.
    if (g[0] === 1 && g[1] > 1) throw new InvalidInputError(`group ${i + 1}: a threshold of 1 needs a count of 1`, { hint: 'copy the single share instead' });
  }
}

function generate(ms: Uint8Array, groupThreshold: number, groups: [number, number][], opts: GenerateOptions): { identifier: number; mnemonics: string[][] } {
  checkSecret(ms, 'masterSecret');
  const { passphrase = '', iterationExponent = 1, extendable = true } = opts;
  passphraseBytes(passphrase);
  checkInt(iterationExponent, 'iterationExponent', 0, 15);
  if (typeof extendable !== 'boolean') throw new InvalidInputError('extendable must be a boolean');
  checkGroups(groupThreshold, groups);
  const id = randomBytes(2);
  const identifier = ((id[0]! << 8) | id[1]!) & 0x7fff;
  const ems = encrypt(ms, passphrase, iterationExponent, identifier, extendable);
  const groupShares = splitSecret(groupThreshold, groups.length, ems);
  const common = { identifier, extendable, iterationExponent, groupThreshold, groupCount: groups.length };
  const mnemonics = groups.map(([memberThreshold, count], groupIndex) => {
    const values = splitSecret(memberThreshold, count, groupShares[groupIndex]!);
    const words = values.map((value, memberIndex) => encodeMnemonic({ ...common, groupIndex, memberIndex, memberThreshold, value }));
    wipe(...values);
    return words;
  });
  wipe(ems, ...groupShares);
  return { identifier, mnemonics };
}

/**
 * Splits `masterSecret` into `count` single-group shares, any `threshold` of which recover it
 * ("Generating the shares" with GT = 1, G = 1, as "Two-level scheme" recommends for T-of-N).
 * Options: passphrase (printable ASCII, default ""), iterationExponent (0..15, default 1: 20000 PBKDF2
 * iterations), extendable (default true, as the spec advises for new shares).
 * Throws InvalidInputError unless masterSecret is an even number of bytes in 16..1024,
 * 1 ≤ threshold ≤ count ≤ 16, threshold 1 comes with count 1, and the options are in range.
 */
export function generateMnemonics(
  masterSecret: Uint8Array,
  opts: { threshold: number; count: number } & GenerateOptions,
): { identifier: number; mnemonics: string[] } {
  if (typeof opts !== 'object' || opts === null) throw new InvalidInputError('options must be an object');
  const { identifier, mnemonics } = generate(masterSecret, 1, [[opts.threshold, opts.count]], opts);
  return { identifier, mnemonics: mnemonics[0]! };
}

/**
 * Two-level sharing ("Two-level scheme", "Generating the shares"): `groupThreshold` of the groups must
 * each reach their member threshold. `groups` lists [memberThreshold, memberCount] per group; the result
 * lists each group's mnemonics in order. Other options and errors as generateMnemonics, plus
 * InvalidInputError unless there are 1..16 groups and 1 ≤ groupThreshold ≤ number of groups.
 */
export function generateGroupMnemonics(
  masterSecret: Uint8Array,
  opts: { groupThreshold: number; groups: [number, number][] } & GenerateOptions,
): string[][] {
  if (typeof opts !== 'object' || opts === null) throw new InvalidInputError('options must be an object');
  return generate(masterSecret, opts.groupThreshold, opts.groups, opts).mnemonics;
}

// ---- "Combining the shares" ----

type ShareCode = ConstructorParameters<typeof ShareError>[0];

function decodeNumbered(mnemonics: readonly string[]): Slip39Share[] {
  return mnemonics.map((m, i) => {
    try {
      return decodeMnemonic(m);
    } catch (err) {
      if (!(err instanceof ShareError)) throw err;
      throw new ShareError(err.code as ShareCode, `share ${i + 1}: ${err.message}`, err.hint);
    }
  });
}

const COMMON_FIELDS = ['identifier', 'extendable', 'iterationExponent', 'groupThreshold', 'groupCount'] as const;

/** Groups shares by group index and member index, after checking they come from one set. */
function groupShares(shares: Slip39Share[]): Map<number, Map<number, Slip39Share>> {
  const first = shares[0]!;
  const groups = new Map<number, Map<number, Slip39Share>>();
  for (const [i, s] of shares.entries()) {
    const field = COMMON_FIELDS.find((f) => s[f] !== first[f]) ?? (s.value.length !== first.value.length ? 'length' : undefined);
    const group = groups.get(s.groupIndex) ?? new Map<number, Slip39Share>();
    const peer = group.values().next().value;
    if (field !== undefined || (peer !== undefined && peer.memberThreshold !== s.memberThreshold)) {
      const what = field ?? `member threshold within group ${s.groupIndex + 1}`;
      throw new ShareError('share_set_mismatch', `these shares belong to different share sets: share ${i + 1} differs from share 1 in its ${what}`);
    }
    const twin = group.get(s.memberIndex);
    if (twin !== undefined && !ctEqual(twin.value, s.value)) {
      throw new ShareError('duplicate_share', `share ${i + 1} repeats member ${s.memberIndex + 1} of group ${s.groupIndex + 1} with a different value`, 'one of the two was mistyped or altered');
    }
    group.set(s.memberIndex, s);
    groups.set(s.groupIndex, group);
  }
  return groups;
}

const memberThreshold = (g: Map<number, Slip39Share>): number => g.values().next().value!.memberThreshold;

/** The first GT groups (by index) holding at least their member threshold of distinct members. */
function completeGroups(groups: Map<number, Map<number, Slip39Share>>, first: Slip39Share): Slip39Share[][] {
  const sorted = [...groups.entries()].sort(([a], [b]) => a - b);
  const complete = sorted.filter(([, g]) => g.size >= memberThreshold(g));
  if (complete.length >= first.groupThreshold) {
    return complete.slice(0, first.groupThreshold).map(([, g]) => {
      const members = [...g.values()].sort((a, b) => a.memberIndex - b.memberIndex);
      return members.slice(0, memberThreshold(g));
    });
  }
  if (first.groupCount === 1) {
    const given = sorted[0]![1].size;
    throw new ShareError('insufficient_shares', `not enough shares: ${first.memberThreshold} different shares are needed, ${given} given`);
  }
  const partial = sorted.filter(([, g]) => g.size < memberThreshold(g)).map(([gi, g]) => `group ${gi + 1} has ${g.size} of ${memberThreshold(g)}`);
  const detail = partial.length > 0 ? ` (${partial.join(', ')})` : '';
  const needed = `${first.groupThreshold} groups must each reach their member threshold`;
  throw new ShareError('insufficient_shares', `not enough shares: ${needed}, ${complete.length} ${complete.length === 1 ? 'does' : 'do'}${detail}`);
}

/**
 * Recovers the master secret from share mnemonics ("Combining the shares", "Decryption of the master
 * secret"). Shares beyond what the thresholds need are checked for membership in the set, then unused;
 * an exact repeat of a share is ignored. A wrong passphrase yields a different secret, by design
 * ("Passphrase"); anything else wrong raises, and no wrong secret is returned.
 * Throws ShareError: any decodeMnemonic error, prefixed with the share's 1-based position;
 * 'share_set_mismatch' for shares from different sets (identifier, flag, iteration exponent, group
 * parameters, length or member threshold differ); 'duplicate_share' for one member with two values;
 * 'insufficient_shares' saying how many are needed and given; 'invalid_digest' when the shares do not
 * fit together. Throws InvalidInputError when `mnemonics` is not an array of 1..256 strings or the
 * passphrase is not printable ASCII.
 */
export function combineMnemonics(mnemonics: string[], passphrase = ''): Uint8Array {
  if (!Array.isArray(mnemonics) || mnemonics.some((m) => typeof m !== 'string')) {
    throw new InvalidInputError('mnemonics must be an array of strings');
  }
  passphraseBytes(passphrase);
  if (mnemonics.length === 0) throw new ShareError('insufficient_shares', 'not enough shares: none were given');
  if (mnemonics.length > 256) throw new InvalidInputError(`at most 256 shares can be combined, got ${mnemonics.length}`);
  const shares = decodeNumbered(mnemonics);
  const first = shares[0]!;
  const groupSecrets: ShamirShare[] = [];
  try {
    for (const members of completeGroups(groupShares(shares), first)) {
      const points = members.map((m) => ({ x: m.memberIndex, y: m.value }));
      groupSecrets.push({ x: members[0]!.groupIndex, y: recoverSecret(members[0]!.memberThreshold, points) });
    }
    const ems = recoverSecret(first.groupThreshold, groupSecrets);
    const ms = decrypt(ems, passphrase, first.iterationExponent, first.identifier, first.extendable);
    wipe(ems);
    return ms;
  } finally {
    wipe(...groupSecrets.map((g) => g.y), ...shares.map((s) => s.value));
  }
}
