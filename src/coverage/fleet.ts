/**
 * The fleet file (docs/coverage.md, "The fleet file"; bytes in docs/format.md, "Fleet file"): the parts
 * `lifeboat coverage` and `lifeboat console serve` ask, as one JSON document. Credentials appear by
 * reference only (a 0600 file, a file descriptor, a vault entry): a token written into the file itself
 * is refused. parseFleet/encodeFleet are a pair; resolveCredential reads a reference.
 */
import { closeSync, readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import { InvalidInputError, LifeboatError } from '../errors.js';
import { assertPrivateFile } from '../util/files.js';
import { readGivenFd } from '../util/fd.js';

export const FLEET_VERSION = 1;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const FINGERPRINT = /^[0-9a-f]{4}(?::[0-9a-f]{4}){7}$/;

/** Where a token is read from: a 0600 file, an inherited file descriptor, or an entry of the primary's vault. */
export type CredentialRef = { file: string } | { fd: number } | { vault: string };

export interface FleetNode {
  name: string;
  url: string;
  fingerprint?: string;
  /** A CA file (PEM) to trust for this part's https:// URL (else --ca-file, $LIFEBOAT_CA_FILE). */
  ca_file?: string;
  /** This node's monitor token (lbm_…, `lifeboat node monitor-token`), or an operator API key (lbk_…). */
  credential: CredentialRef;
  /** The name of this node's fail-over node, itself a node of the fleet. */
  failover?: string;
}
export interface FleetBackupService {
  name: string;
  url: string;
  /** The service's monitor token (lbm_…, `lifeboat backup-server monitor-token`). */
  credential: CredentialRef;
  /** A CA file (PEM) to trust for this part's https:// URL (else --ca-file, $LIFEBOAT_CA_FILE). */
  ca_file?: string;
}
export interface FleetHolder {
  name: string;
  url: string;
  fingerprint?: string;
  /** A CA file (PEM) to trust for this part's https:// URL (else --ca-file, $LIFEBOAT_CA_FILE). */
  ca_file?: string;
}
export interface FleetLog {
  name: string;
  url: string;
  /** A CA file (PEM) to trust for this part's https:// URL (else --ca-file, $LIFEBOAT_CA_FILE). */
  ca_file?: string;
}
export interface CoveragePolicy {
  /** Backup entries a node may hold unacknowledged before its backup path is stale. */
  max_backup_lag: number;
  /** Keys a primary may hold not yet copied to its fail-over before that path is stale. */
  max_failover_lag: number;
  /** Age of the node's last compaction (snapshot on the backup service) before it is stale, seconds. */
  max_snapshot_age_s: number;
  /** Age of the last `recovery verify` before the vault is at risk, seconds. */
  max_verify_age_s: number;
}
export interface Fleet {
  lifeboat_fleet: 1;
  /** How long each part may take to answer one request, ms. */
  timeout_ms: number;
  policy: CoveragePolicy;
  nodes: FleetNode[];
  backup_services: FleetBackupService[];
  holders: FleetHolder[];
  logs: FleetLog[];
  /** The primary's data directory, whose vault `recovery verify` checks (its last result is read there). */
  vault: { data_dir: string } | null;
}

export const DEFAULT_POLICY: CoveragePolicy = { max_backup_lag: 100, max_failover_lag: 100, max_snapshot_age_s: 86_400, max_verify_age_s: 30 * 86_400 };
export const DEFAULT_TIMEOUT_MS = 5000;
export const PART_KINDS = ['nodes', 'backup_services', 'holders', 'logs', 'vault'] as const;

/** A fleet file's errors: `fleet_invalid`, `fleet_unknown_part`, `fleet_inline_secret`. */
export class FleetError extends LifeboatError {
  constructor(code: 'fleet_invalid' | 'fleet_unknown_part' | 'fleet_inline_secret' | 'fleet_name_taken' | 'fleet_name_unknown', message: string, hint?: string) {
    super(code, message, { hint, status: 400 });
  }
}

const name = z.string().regex(NAME, '1..64 of A-Z a-z 0-9 _ . -, starting with a letter or digit');
const url = z.string().max(2000).regex(/^https?:\/\/[^\s#]+$/, 'an http(s) URL without #');
const ca_file = z.string().min(1).max(4096).optional();
const credential = z.union([
  z.object({ file: z.string().min(1).max(4096) }).strict(),
  z.object({ fd: z.number().int().min(3).max(1023) }).strict(),
  z.object({ vault: z.string().min(1).max(128) }).strict(),
]);
const schema = z
  .object({
    lifeboat_fleet: z.literal(FLEET_VERSION),
    timeout_ms: z.number().int().min(100).max(600_000).default(DEFAULT_TIMEOUT_MS),
    policy: z
      .object({
        max_backup_lag: z.number().int().min(0).default(DEFAULT_POLICY.max_backup_lag),
        max_failover_lag: z.number().int().min(0).default(DEFAULT_POLICY.max_failover_lag),
        max_snapshot_age_s: z.number().int().min(1).default(DEFAULT_POLICY.max_snapshot_age_s),
        max_verify_age_s: z.number().int().min(1).default(DEFAULT_POLICY.max_verify_age_s),
      })
      .strict()
      .default(DEFAULT_POLICY),
    nodes: z.array(z.object({ name, url, fingerprint: z.string().regex(FINGERPRINT).optional(), ca_file, credential, failover: name.optional() }).strict()).max(256).default([]),
    backup_services: z.array(z.object({ name, url, ca_file, credential }).strict()).max(16).default([]),
    holders: z.array(z.object({ name, url, fingerprint: z.string().regex(FINGERPRINT).optional(), ca_file }).strict()).max(64).default([]),
    logs: z.array(z.object({ name, url, ca_file }).strict()).max(16).default([]),
    vault: z.object({ data_dir: z.string().min(1).max(4096) }).strict().nullable().default(null),
  })
  .strict();

const SECRET_FIELD = /token|secret|password|api_key|apikey|key$/i;

/** Names a field that looks like an inline secret anywhere in the document, or undefined. */
function inlineSecret(v: unknown, path: string): string | undefined {
  if (Array.isArray(v)) return v.map((x, i) => inlineSecret(x, `${path}[${i}]`)).find(Boolean);
  if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      if (SECRET_FIELD.test(k) || (typeof x === 'string' && /^lb[kmt]_/.test(x))) return `${path}.${k}`;
      const inner = inlineSecret(x, `${path}.${k}`);
      if (inner) return inner;
    }
  }
  return undefined;
}

/**
 * Parses a fleet file. Throws FleetError `fleet_invalid` (not JSON, a wrong field, a wrong version),
 * `fleet_unknown_part` (a part kind or a field it does not know), `fleet_inline_secret` (a token in the
 * file), `fleet_name_taken` (two parts with one name), `fleet_name_unknown` (a fail-over naming no node).
 */
export function parseFleet(text: string): Fleet {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new FleetError('fleet_invalid', 'the fleet file is not JSON', 'start one with `lifeboat fleet init --out FILE`');
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new FleetError('fleet_invalid', 'the fleet file is not a JSON object');
  const secret = inlineSecret(raw, '$');
  if (secret) throw new FleetError('fleet_inline_secret', `the fleet file holds a secret inline at ${secret}`, 'name it by reference instead: "credential": {"file": PATH} (mode 0600), {"fd": N} or {"vault": ENTRY}');
  const unknown = Object.keys(raw).find((k) => k !== 'lifeboat_fleet' && k !== 'timeout_ms' && k !== 'policy' && !(PART_KINDS as readonly string[]).includes(k));
  if (unknown) throw new FleetError('fleet_unknown_part', `the fleet file names an unknown part ${JSON.stringify(unknown.slice(0, 40))}`, `parts: ${PART_KINDS.join(', ')}`);
  const r = schema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const where = issue.path.join('.') || '(top)';
    if (issue.code === 'unrecognized_keys') throw new FleetError('fleet_unknown_part', `the fleet file has an unknown field ${issue.keys.map((k) => JSON.stringify(k.slice(0, 40))).join(', ')} at ${where}`, 'docs/coverage.md lists the fields of each part');
    throw new FleetError('fleet_invalid', `the fleet file is invalid at ${where}: ${issue.message.toLowerCase()}`);
  }
  const fleet = r.data as Fleet;
  const seen = new Set<string>();
  for (const kind of ['nodes', 'backup_services', 'holders', 'logs'] as const) {
    for (const p of fleet[kind]) {
      if (seen.has(p.name)) throw new FleetError('fleet_name_taken', `two parts of the fleet are named ${p.name}`);
      seen.add(p.name);
    }
  }
  const nodeNames = new Set(fleet.nodes.map((n) => n.name));
  for (const n of fleet.nodes) {
    if (n.failover && (!nodeNames.has(n.failover) || n.failover === n.name)) throw new FleetError('fleet_name_unknown', `node ${n.name} names fail-over ${n.failover}, which is not another node of the fleet`, 'add the fail-over node first: `lifeboat fleet add node NAME …`');
  }
  return fleet;
}

/** Encodes a fleet as the file holds it (two-space JSON, a final newline); parseFleet(encodeFleet(f)) equals f. */
export function encodeFleet(f: Fleet): string {
  return `${JSON.stringify(f, null, 2)}\n`;
}

/** An empty fleet with the defaults. */
export function emptyFleet(): Fleet {
  return { lifeboat_fleet: 1, timeout_ms: DEFAULT_TIMEOUT_MS, policy: { ...DEFAULT_POLICY }, nodes: [], backup_services: [], holders: [], logs: [], vault: null };
}

/** Reads and parses a fleet file. Throws NotFound-like InvalidInputError `fleet_not_found` and what parseFleet throws. */
export function loadFleet(path: string): Fleet {
  let text: string;
  try {
    if (statSync(path).size > 4 * 1024 * 1024) throw new FleetError('fleet_invalid', `the fleet file ${path} is over 4 MiB`);
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new InvalidInputError(`no fleet file at ${path}`, { code: 'fleet_not_found', hint: 'make one with `lifeboat fleet init --out FILE`, or pass --fleet FILE' });
    throw err;
  }
  return parseFleet(text);
}

const fdCache = new Map<number, string>();

/**
 * Reads a credential reference: the file (refused unless 0600: `insecure_permissions`), the descriptor
 * (read to its end once; later reads get the same value), or the vault entry through `readVault`.
 * Trailing whitespace is dropped. Throws InvalidInputError `credential_unreadable` / `credential_empty`.
 */
export function resolveCredential(ref: CredentialRef, readVault?: (entry: string) => string): string {
  let value: string;
  if ('file' in ref) {
    try {
      assertPrivateFile(ref.file, 'credential file');
      value = readFileSync(ref.file, 'utf8');
    } catch (err) {
      if ((err as { code?: string }).code === 'insecure_permissions') throw err;
      throw new InvalidInputError(`cannot read the credential file ${ref.file}`, { code: 'credential_unreadable', hint: 'the fleet file names it; check the path and that it is yours, mode 0600' });
    }
  } else if ('fd' in ref) {
    const cached = fdCache.get(ref.fd);
    if (cached !== undefined) value = cached;
    else {
      value = readFd(ref.fd);
      fdCache.set(ref.fd, value);
    }
  } else {
    if (!readVault) throw new InvalidInputError(`the credential is the vault entry ${ref.vault}, and the fleet names no vault`, { code: 'credential_unreadable', hint: 'add "vault": {"data_dir": DIR} (the primary’s, unsealed)' });
    value = readVault(ref.vault);
  }
  value = value.trim();
  if (!value) throw new InvalidInputError('a credential the fleet file names is empty', { code: 'credential_empty' });
  return value;
}

function readFd(fd: number): string {
  const text = readGivenFd(fd, 'the credential', { code: 'credential_unreadable', maxBytes: 65536 });
  try {
    closeSync(fd);
  } catch {
    // read to its end already
  }
  return text;
}
