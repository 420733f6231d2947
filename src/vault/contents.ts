/**
 * The vault's plaintext (docs/format.md, "Vault file"): UTF-8 JSON
 *
 *   {"entries": {"<name>": {"value": "<b64>", "updated_at": "<RFC 3339>"}, ...}}
 *
 * written with names in ascending byte order and no whitespace. `encodeVaultPlaintext` and
 * `parseVaultPlaintext` are a pair; both enforce the limits below, so a vault that one accepts the
 * other accepts too. Pure: no I/O. Error messages name entries but never contain a value.
 */
import { FormatError, InvalidInputError } from '../errors.js';
import { fromB64, toB64, utf8 } from '../util/bytes.js';

/** Entry names: lowercase, digits and `._/-`, starting with a letter or digit, 1..128 characters. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9._/-]{0,127}$/;
export const MAX_VALUE_BYTES = 1024 * 1024;
export const MAX_ENTRIES = 10_000;
/**
 * The sum of all values. With base64 (4/3) and 10,000 entries of names and times, the whole vault file
 * stays under MAX_VAULT_FILE_BYTES (24 MiB), which in base64 fits a 32 MiB push to a share holder.
 */
export const MAX_TOTAL_VALUE_BYTES = 16 * 1024 * 1024;
/** No vault within the limits above is larger (checked by a test with the worst case). */
export const MAX_VAULT_FILE_BYTES = 24 * 1024 * 1024;

/** One named secret. `updatedAt` is an RFC 3339 timestamp (what `Date#toISOString` writes). */
export interface VaultEntry {
  value: Uint8Array;
  updatedAt: string;
}

/** The decrypted vault: named secrets. A Map, so no name can collide with an Object property. */
export interface VaultContents {
  entries: Map<string, VaultEntry>;
}

/** What `vault list` shows about an entry: never its value. */
export interface VaultEntryInfo {
  name: string;
  size: number;
  updatedAt: string;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

function isTimestamp(s: unknown): s is string {
  return typeof s === 'string' && RFC3339.test(s) && !Number.isNaN(Date.parse(s));
}

/** Why `name` is not a valid entry name, or undefined when it is. Never repeats the name: it may be a misplaced secret. */
function nameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string') return 'not a string';
  if (name.length === 0) return 'empty';
  if (name.length > 128) return `${name.length} characters, more than 128`;
  if (!/^[a-z0-9]/.test(name)) return 'does not start with a lowercase letter or a digit';
  if (!NAME_PATTERN.test(name)) return 'has a character other than lowercase a-z, 0-9 and . _ / -';
  return undefined;
}

/** Throws InvalidInputError `invalid_name` unless `name` matches NAME_PATTERN. */
export function assertEntryName(name: string): void {
  const problem = nameProblem(name);
  if (problem !== undefined) {
    throw new InvalidInputError(`invalid entry name: ${problem}`, {
      code: 'invalid_name',
      hint: 'names are 1 to 128 characters of a-z 0-9 . _ / - and start with a letter or digit',
    });
  }
}

/** Throws InvalidInputError `value_too_large` when `value` is over MAX_VALUE_BYTES. */
export function assertEntryValue(name: string, value: Uint8Array): void {
  if (!(value instanceof Uint8Array)) throw new InvalidInputError(`value of ${name} must be bytes`);
  if (value.length > MAX_VALUE_BYTES) {
    throw new InvalidInputError(`value of ${name} is ${value.length} bytes, more than the limit of ${MAX_VALUE_BYTES}`, {
      code: 'value_too_large',
      hint: 'store large data encrypted elsewhere and keep only its key in the vault',
    });
  }
}

/**
 * Checks every limit of a vault's contents. Throws InvalidInputError: `invalid_name`,
 * `value_too_large`, `too_many_entries`, `vault_too_large`, or `invalid_input` for a bad timestamp.
 */
export function assertVaultContents(contents: VaultContents): void {
  if (!(contents?.entries instanceof Map)) throw new InvalidInputError('vault contents must hold a Map of entries');
  if (contents.entries.size > MAX_ENTRIES) {
    throw new InvalidInputError(`the vault would hold ${contents.entries.size} entries, more than the limit of ${MAX_ENTRIES}`, {
      code: 'too_many_entries',
      hint: 'remove entries you no longer need with `lifeboat vault rm NAME`',
    });
  }
  let total = 0;
  for (const [name, entry] of contents.entries) {
    assertEntryName(name);
    assertEntryValue(name, entry.value);
    if (!isTimestamp(entry.updatedAt)) throw new InvalidInputError(`updated_at of ${name} is not an RFC 3339 timestamp`);
    total += entry.value.length;
  }
  if (total > MAX_TOTAL_VALUE_BYTES) {
    throw new InvalidInputError(`the vault's values would total ${total} bytes, more than the limit of ${MAX_TOTAL_VALUE_BYTES}`, {
      code: 'vault_too_large',
      hint: 'store large data encrypted elsewhere and keep only its key in the vault',
    });
  }
}

/** Encodes contents as the plaintext JSON (sorted names). Throws InvalidInputError as assertVaultContents. */
export function encodeVaultPlaintext(contents: VaultContents): Uint8Array {
  assertVaultContents(contents);
  const names = [...contents.entries.keys()].sort();
  const parts = names.map((name) => {
    const e = contents.entries.get(name)!;
    return `${JSON.stringify(name)}:{"value":${JSON.stringify(toB64(e.value))},"updated_at":${JSON.stringify(e.updatedAt)}}`;
  });
  return utf8.encode(`{"entries":{${parts.join(',')}}}`);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function hasExactKeys(o: Record<string, unknown>, keys: readonly string[]): boolean {
  const own = Object.keys(o);
  return own.length === keys.length && keys.every((k) => Object.hasOwn(o, k));
}

const malformed = (why: string): FormatError => new FormatError('malformed', `vault contents are malformed: ${why}`);

/**
 * Parses the plaintext JSON. Throws FormatError `malformed` when it is not UTF-8 JSON of exactly the
 * documented shape (no other fields), a name or timestamp is invalid, a value is not base64, or a
 * limit is exceeded.
 */
export function parseVaultPlaintext(bytes: Uint8Array): VaultContents {
  let doc: unknown;
  try {
    doc = JSON.parse(utf8.decode(bytes));
  } catch {
    throw malformed('not UTF-8 JSON');
  }
  if (!isPlainObject(doc) || !hasExactKeys(doc, ['entries']) || !isPlainObject(doc.entries)) {
    throw malformed('expected {"entries": {...}} and nothing else');
  }
  const raw = Object.entries(doc.entries);
  if (raw.length > MAX_ENTRIES) throw malformed(`more than ${MAX_ENTRIES} entries`);
  const entries = new Map<string, VaultEntry>();
  let total = 0;
  for (const [name, e] of raw) {
    const problem = nameProblem(name);
    if (problem !== undefined) throw malformed(`an entry name is invalid (${problem})`);
    if (!isPlainObject(e) || !hasExactKeys(e, ['value', 'updated_at'])) throw malformed(`entry ${name} must have exactly "value" and "updated_at"`);
    if (typeof e.value !== 'string') throw malformed(`value of ${name} is not a string`);
    let value: Uint8Array;
    try {
      value = fromB64(e.value, 'value');
    } catch {
      throw malformed(`value of ${name} is not base64`);
    }
    if (value.length > MAX_VALUE_BYTES) throw malformed(`value of ${name} is larger than ${MAX_VALUE_BYTES} bytes`);
    if (!isTimestamp(e.updated_at)) throw malformed(`updated_at of ${name} is not an RFC 3339 timestamp`);
    total += value.length;
    entries.set(name, { value, updatedAt: e.updated_at });
  }
  if (total > MAX_TOTAL_VALUE_BYTES) throw malformed(`values total more than ${MAX_TOTAL_VALUE_BYTES} bytes`);
  return { entries };
}

/** Names, sizes and times of the entries, sorted by name: everything an operator may see without a value. */
export function describeEntries(contents: VaultContents): VaultEntryInfo[] {
  return [...contents.entries.keys()].sort().map((name) => {
    const e = contents.entries.get(name)!;
    return { name, size: e.value.length, updatedAt: e.updatedAt };
  });
}

/** Overwrites every value in `contents` (call when done with a decrypted vault). */
export function wipeContents(contents: VaultContents): void {
  for (const e of contents.entries.values()) e.value.fill(0);
}
