/**
 * The payload sealed to a share holder (docs/format.md, "Sealed share"):
 *
 *   "LBSH"(4) || version(1)=1 || scheme_id(16) || member_index(1) || mnemonic (UTF-8 SLIP-0039 words)
 *
 * sealed with crypto_box_seal to the holder's X25519 key. The scheme id and member index inside the
 * box tie the share to its scheme, so a box cannot be replayed into another scheme unnoticed.
 */
import { FormatError, InvalidInputError } from '../errors.js';
import { concatBytes, utf8 } from '../util/bytes.js';

const MAGIC = utf8.encode('LBSH');
export const SCHEME_ID_LEN = 16;

export interface SharePayload {
  schemeId: Uint8Array;
  memberIndex: number;
  mnemonic: string;
}

export function encodeSharePayload(p: SharePayload): Uint8Array {
  if (p.schemeId.length !== SCHEME_ID_LEN) throw new InvalidInputError('scheme id must be 16 bytes');
  if (!Number.isInteger(p.memberIndex) || p.memberIndex < 0 || p.memberIndex > 15) throw new InvalidInputError('member index must be 0..15');
  return concatBytes(MAGIC, new Uint8Array([1]), p.schemeId, new Uint8Array([p.memberIndex]), utf8.encode(p.mnemonic));
}

/** Parses a share payload. Throws FormatError on bad magic, an unknown version or truncation. */
export function parseSharePayload(b: Uint8Array): SharePayload {
  if (b.length < 4 + 1 + SCHEME_ID_LEN + 1 + 1) throw new FormatError('truncated', 'share payload is truncated');
  for (let i = 0; i < 4; i++) if (b[i] !== MAGIC[i]) throw new FormatError('bad_magic', 'not a lifeboat share payload');
  if (b[4] !== 1) throw new FormatError('unsupported_version', `share payload version ${b[4]} is not supported`);
  const memberIndex = b[5 + SCHEME_ID_LEN]!;
  if (memberIndex > 15) throw new FormatError('malformed', 'share payload member index out of range');
  let mnemonic: string;
  try {
    mnemonic = utf8.decode(b.subarray(6 + SCHEME_ID_LEN));
  } catch {
    throw new FormatError('malformed', 'share payload mnemonic is not UTF-8');
  }
  return { schemeId: b.slice(5, 5 + SCHEME_ID_LEN), memberIndex, mnemonic };
}
