/**
 * The node settings `lifeboat node config get|set` reads and changes (node.json, docs/keynode.md
 * "Settings"), so nobody edits the file by hand: each has a name, the values it takes, and a parser
 * that refuses anything else with `invalid_input` naming both. Settings that other commands own
 * (pairing, whitelist, backup service) are shown here read-only, with the command that sets them.
 */
import { InvalidInputError } from '../errors.js';
import { backupConfigSchema, MESSAGE_LIMIT_MAX, type NodeConfig } from './config.js';
import { parseDurableChannels } from './durable.js';
import { redactStoreUrl } from './store/index.js';

type Value = boolean | number | string | string[] | null;

interface Settable {
  name: string;
  /** What it does, for `config get` and the docs. */
  about: string;
  /** The values it takes, as errors name them. */
  allowed: string;
  /** The parsed value, or undefined when `raw` is not one of the allowed values. */
  parse(raw: string, c: NodeConfig): Value | undefined;
  get(c: NodeConfig): Value | undefined;
  set(c: NodeConfig, v: Value): NodeConfig;
  /** Only with a backup service set up (`node backup-setup`). */
  needsBackup?: boolean;
}

interface ReadOnly {
  name: string;
  about: string;
  get(c: NodeConfig): unknown;
  /** The command that sets it. */
  setBy: string;
}

const bool = (raw: string): boolean | undefined => (raw === 'true' ? true : raw === 'false' ? false : undefined);

function int(min: number, max: number): (raw: string) => number | undefined {
  return (raw) => {
    if (!/^\d{1,16}$/.test(raw)) return undefined;
    const n = Number(raw);
    return n >= min && n <= max ? n : undefined;
  };
}

/** Bytes, with an optional KiB or MiB suffix (`4MiB`, `64 KiB`). */
function bytes(min: number, max: number): (raw: string) => number | undefined {
  return (raw) => {
    const m = /^(\d{1,16})\s*(KiB|MiB)?$/.exec(raw);
    if (!m) return undefined;
    const n = Number(m[1]) * (m[2] === 'MiB' ? 1024 * 1024 : m[2] === 'KiB' ? 1024 : 1);
    return n >= min && n <= max ? n : undefined;
  };
}

function backupField(name: keyof NonNullable<NodeConfig['backup']>, about: string, allowed: string, parse: (raw: string) => Value | undefined): Settable {
  return {
    name: `backup.${name}`,
    about,
    allowed,
    parse,
    needsBackup: true,
    get: (c) => c.backup?.[name] as Value | undefined,
    set: (c, v) => ({ ...c, backup: backupConfigSchema.parse({ ...c.backup!, [name]: v }) }),
  };
}

const SETTABLE: Settable[] = [
  {
    name: 'export.enabled',
    about: 'share export as a whole; false refuses every export (export_disabled), fail-over pushes included',
    allowed: 'true or false',
    parse: bool,
    get: (c) => c.export.enabled,
    set: (c, v) => ({ ...c, export: { ...c.export, enabled: v as boolean } }),
  },
  {
    name: 'export.plaintext',
    about: 'plaintext exports of a share (operator only)',
    allowed: 'true or false',
    parse: bool,
    get: (c) => c.export.plaintext,
    set: (c, v) => ({ ...c, export: { ...c.export, plaintext: v as boolean } }),
  },
  {
    name: 'message_limit_bytes',
    about: 'the largest message the node signs; a larger one is refused with message_too_large (413)',
    allowed: `a whole number of bytes from 1 to ${MESSAGE_LIMIT_MAX} (16 MiB), or N KiB / N MiB (e.g. 4MiB)`,
    parse: bytes(1, MESSAGE_LIMIT_MAX),
    get: (c) => c.message_limit_bytes,
    set: (c, v) => ({ ...c, message_limit_bytes: v as number }),
  },
  {
    name: 'nonce_ttl_seconds',
    about: 'unused signing nonces older than this are refused and deleted',
    allowed: 'a whole number of seconds from 10 to 86400',
    parse: int(10, 86_400),
    get: (c) => c.nonce_ttl_seconds,
    set: (c, v) => ({ ...c, nonce_ttl_seconds: v as number }),
  },
  {
    name: 'ers.enabled',
    about: 'emergency recovery parts (docs/ers.md): false refuses every one (ers_disabled); true makes them for RSA keys on the ERS whitelist',
    allowed: 'true or false',
    parse: bool,
    get: (c) => c.ers.enabled,
    set: (c, v) => ({ ...c, ers: { ...c.ers, enabled: v as boolean } }),
  },
  {
    name: 'ers.require',
    about: 'true: every key signs only once a verified emergency recovery package is registered for it on this node (ers_package_required; a key created with --ers require needs one anyway); `ers backup` registers it',
    allowed: 'true or false',
    parse: bool,
    get: (c) => c.ers.require,
    set: (c, v) => ({ ...c, ers: { ...c.ers, require: v as boolean } }),
  },
  {
    name: 'durable_channels',
    about: 'the channels that must hold a new key before it signs (it stays pending_backup until then): backup (the backup service), log (the public log), ers (a verified emergency recovery package); default: the configured ones among backup (unless backup.usable_before_ack) and log',
    allowed: 'default, none, or channels among backup, log, ers separated by commas, each set up on this node',
    parse: (raw, c) => parseDurableChannels(raw, c),
    get: (c) => c.durable_channels,
    set: (c, v) => ({ ...c, durable_channels: v as NodeConfig['durable_channels'] }),
  },
  {
    name: 'durable_wait_ms',
    about: 'how long a DKG or import answer waits for the new key’s durable channels before reporting pending_backup; unset (null): backup.wait_ms, else 10000',
    allowed: 'a whole number of milliseconds from 0 to 120000',
    parse: int(0, 120_000),
    get: (c) => c.durable_wait_ms,
    set: (c, v) => ({ ...c, durable_wait_ms: v as number }),
  },
  {
    name: 'ca_file',
    about: 'the CA file (PEM) the node trusts for https:// fail-over, backup service and log URLs, besides the system roots; none: only those (`node serve --ca-file` and $LIFEBOAT_CA_FILE override it)',
    allowed: 'the path of a PEM file of CA certificates, or none',
    parse: (raw) => (raw === 'none' ? null : /^[^\0\n]{1,4096}$/.test(raw) ? raw : undefined),
    get: (c) => c.ca_file ?? null,
    set: (c, v) => ({ ...c, ca_file: v as string | null }),
  },
  backupField('usable_before_ack', 'true: a new key signs at once and its backup follows; false: it is pending_backup until acknowledged', 'true or false', bool),
  backupField('wait_ms', 'how long a DKG or import answer waits for the backup acknowledgement before reporting pending_backup', 'a whole number of milliseconds from 0 to 120000', int(0, 120_000)),
  backupField('batch_entries', 'entries per upload to the backup service', 'a whole number from 1 to 10000', int(1, 10_000)),
  backupField('compact_entries', 'compact after this many acknowledged entries since the last compaction', 'a whole number from 1 to 10000000', int(1, 10_000_000)),
  backupField('compact_seconds', 'or after this many seconds if anything changed', 'a whole number of seconds from 10 to 2592000', int(10, 30 * 86_400)),
];

const READ_ONLY: ReadOnly[] = [
  { name: 'store', about: 'the store URL (password hidden)', get: (c) => redactStoreUrl(c.store), setBy: '`node init --store`; at start, --store or $LIFEBOAT_NODE_STORE override it' },
  { name: 'export.whitelist', about: 'wrapping keys a share may be exported to', get: (c) => c.export.whitelist, setBy: '`lifeboat node whitelist add|remove`' },
  { name: 'ers.whitelist', about: 'RSA keys emergency recovery parts may be encrypted to', get: (c) => c.ers.whitelist.map((w) => ({ label: w.label, fingerprint: w.fingerprint })), setBy: '`lifeboat ers whitelist add|remove`' },
  { name: 'failover', about: 'the fail-over this node pushes to', get: (c) => (c.failover ? { url: c.failover.url, wrapping_key: c.failover.wrapping_key } : null), setBy: '`lifeboat node pair --failover`' },
  { name: 'paired_primary', about: 'the primary this node is the fail-over of', get: (c) => c.paired_primary, setBy: '`lifeboat node pair --primary`' },
  { name: 'backup.server', about: 'the backup service', get: (c) => c.backup?.server ?? null, setBy: '`lifeboat node backup-setup`' },
  { name: 'backup.account', about: 'the backup account', get: (c) => c.backup?.account ?? null, setBy: '`lifeboat node backup-setup`' },
  { name: 'backup.stream', about: 'the backup stream', get: (c) => c.backup?.stream ?? null, setBy: '`lifeboat node backup-setup`' },
  { name: 'keyshare.mode', about: 'the operator mnemonic’s mode (passphrase or recipient), null without one', get: (c) => c.keyshare?.mode ?? null, setBy: '`lifeboat node init` or `lifeboat node mnemonic setup`' },
  { name: 'logs', about: 'the public logs key-share backups are published to', get: (c) => c.logs.map((l) => ({ url: l.url, witness_keys: l.witness_keys.length, quorum: l.quorum })), setBy: '`lifeboat node log-setup`' },
];

/** The names `config set` takes, in order. */
export const SETTABLE_NAMES: readonly string[] = SETTABLE.map((s) => s.name);

/** One row of `config get`: a setting, its value, and what it takes (or what sets it). */
export interface SettingRow {
  name: string;
  value: unknown;
  settable: boolean;
  /** Settable ones: the values it takes. */
  allowed?: string;
  /** Read-only ones: the command that sets it. */
  set_by?: string;
  about: string;
}

function unknownSetting(name: string): InvalidInputError {
  const readOnly = READ_ONLY.find((r) => r.name === name);
  if (readOnly) return new InvalidInputError(`${name} is not set by \`node config set\``, { hint: `use ${readOnly.setBy}` });
  return new InvalidInputError(`unknown setting ${JSON.stringify(name.slice(0, 64))}`, { hint: `settings: ${SETTABLE_NAMES.join(', ')}` });
}

/** Every setting with its value (backup.* tuning only when a backup service is set up). */
export function listSettings(c: NodeConfig): SettingRow[] {
  return [
    ...SETTABLE.filter((s) => !s.needsBackup || c.backup).map((s) => ({ name: s.name, value: s.get(c), settable: true, allowed: s.allowed, about: s.about })),
    ...READ_ONLY.map((r) => ({ name: r.name, value: r.get(c), settable: false, set_by: r.setBy, about: r.about })),
  ];
}

/** One setting's value. Throws InvalidInputError for an unknown name (hint: the names). */
export function getSetting(c: NodeConfig, name: string): unknown {
  const row = listSettings(c).find((r) => r.name === name);
  if (row) return row.value;
  if (SETTABLE.some((s) => s.name === name)) throw new InvalidInputError(`${name}: this node streams to no backup service`, { hint: 'set one up with `lifeboat node backup-setup`' });
  throw unknownSetting(name);
}

/**
 * The configuration with `name` set to `raw`, and the value before. Pure: the caller writes it.
 * Throws InvalidInputError (`invalid_input`) naming the setting and the values it takes, for an
 * unknown or read-only name, and for backup.* without a backup service.
 */
export function applySetting(c: NodeConfig, name: string, raw: string): { config: NodeConfig; previous: Value | undefined; value: Value } {
  const s = SETTABLE.find((x) => x.name === name);
  if (!s) throw unknownSetting(name);
  if (s.needsBackup && !c.backup) throw new InvalidInputError(`${name}: this node streams to no backup service`, { hint: 'set one up with `lifeboat node backup-setup` first' });
  const value = s.parse(raw.trim(), c);
  if (value === undefined) throw new InvalidInputError(`${name} must be ${s.allowed}, not ${JSON.stringify(raw.slice(0, 64))}`);
  return { config: s.set(c, value), previous: s.get(c), value };
}
