/**
 * Reloading node.json into a running node (SIGHUP to `node serve`; docs/keynode.md, "Reloading the
 * configuration"). Only the fields the node reads on every request, or whose one loop can be replaced,
 * are applied: the export policy and whitelist, the pairing both ways, the nonce lifetime. The rest
 * (the store, the message limit that sizes a route's body limit, emergency recovery, the backup stream,
 * the public logs and mnemonic, the durable channels) are wired into routes and agents at start: a
 * changed value there is kept at the running one and reported as waiting for a restart, so the running
 * node never sees half of a change. A file that does not validate changes nothing.
 */
import { FormatError } from '../errors.js';
import { encodePublicIdentity, identityFingerprint, parsePublicIdentity } from '../identity.js';
import { loadNodeConfig, type NodeConfig } from './config.js';
import { parseWrappingKey } from './export.js';
import type { OpenedNode } from './runtime.js';

/** The node.json fields a reload applies. */
export const RELOADABLE_FIELDS = ['export', 'failover', 'paired_primary', 'nonce_ttl_seconds'] as const;
/** The node.json fields read only at start (a change waits for a restart). */
export const RESTART_FIELDS = ['store', 'message_limit_bytes', 'ers', 'backup', 'keyshare', 'logs', 'durable_channels', 'durable_wait_ms', 'ca_file'] as const;

type Field = (typeof RELOADABLE_FIELDS)[number] | (typeof RESTART_FIELDS)[number];

export interface ReloadOutcome {
  /** Reloadable fields whose value changed and is now in force. */
  applied: string[];
  /** Fields that differ between node.json and the running node and wait for a restart. */
  restart_required: string[];
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/**
 * Checks what the schema cannot: identities parse, whitelisted keys are X25519 keys, the fail-over's
 * key is whitelisted (its pushes are wrapped exports) and the node is not its own fail-over. Throws
 * FormatError `malformed` naming the field.
 */
export function checkReloadable(config: NodeConfig, self: string): void {
  const bad = (field: string, why: string) => new FormatError('malformed', `node.json: ${field} ${why}`);
  const identity = (token: string, field: string): string => {
    try {
      return encodePublicIdentity(parsePublicIdentity(token, field));
    } catch {
      throw bad(field, 'is not an lb1 identity');
    }
  };
  for (const [i, w] of config.export.whitelist.entries()) {
    try {
      parseWrappingKey(w.wrapping_key, `export.whitelist.${i}`);
    } catch {
      throw bad(`export.whitelist.${i}.wrapping_key`, 'is not a 32-byte X25519 key');
    }
  }
  if (config.failover) {
    if (identity(config.failover.identity, 'failover.identity') === self) throw bad('failover.identity', 'is this node itself');
    if (!config.export.whitelist.some((w) => w.wrapping_key === config.failover!.wrapping_key)) throw bad('failover.wrapping_key', 'is not on export.whitelist');
  }
  if (config.paired_primary !== null) identity(config.paired_primary, 'paired_primary');
}

/** The running configuration with the reloadable fields of `file`, and what differs. Pure. */
export function mergeReload(running: NodeConfig, file: NodeConfig): { config: NodeConfig; outcome: ReloadOutcome } {
  const next: NodeConfig = { ...running };
  const applied: string[] = [];
  for (const f of RELOADABLE_FIELDS) {
    if (same(running[f], file[f])) continue;
    (next as Record<Field, unknown>)[f] = file[f];
    applied.push(f);
  }
  const restart = RESTART_FIELDS.filter((f) => !same(running[f], file[f]));
  return { config: next, outcome: { applied, restart_required: [...restart] } };
}

/**
 * Reads node.json and applies its reloadable fields to a serving node: the service's configuration is
 * swapped, and a changed `failover` replaces the fail-over sync (the old loop stops after its pass in
 * flight; the new one starts at once). Throws what loadNodeConfig and checkReloadable throw, with the
 * running configuration untouched.
 */
export async function reloadNodeConfig(n: OpenedNode): Promise<ReloadOutcome> {
  const file = loadNodeConfig(n.paths);
  checkReloadable(file, n.service.identity().identity);
  const { config, outcome } = mergeReload(n.config, file);
  if (outcome.applied.includes('failover')) {
    const next = n.failover.withConfig(config);
    await n.failover.stop();
    n.failover = next;
    next.start();
  }
  n.service.setConfig(config, outcome.restart_required);
  n.config = config;
  return outcome;
}

/**
 * Reloads node.json on every SIGHUP, one reload at a time, and logs each outcome through `log` (a
 * refused file with its error code: the running configuration stays). Returns the function that
 * removes the handler.
 */
export function reloadOnSighup(n: OpenedNode, log: { info(line: string): void; warn(line: string): void }): () => void {
  let tail: Promise<void> = Promise.resolve();
  const onHup = (): void => {
    tail = tail.then(() =>
      reloadNodeConfig(n).then(
        (r) => {
          const applied = r.applied.length ? `applied ${r.applied.join(', ')}` : 'nothing to apply';
          log.info(`node.json reloaded: ${applied}${r.restart_required.length ? `; waiting for a restart: ${r.restart_required.join(', ')}` : ''}`);
        },
        (err: unknown) => {
          const e = err as { code?: unknown; message?: unknown };
          log.warn(`node.json not reloaded, the running configuration is kept: ${String(e.message)} (${typeof e.code === 'string' ? e.code : 'internal_error'})`);
        },
      ),
    );
  };
  process.on('SIGHUP', onHup);
  return () => void process.off('SIGHUP', onHup);
}

/** `GET /v1/config`: what the running node holds. */
export interface RunningConfig {
  /** When the configuration in force was loaded (start or the last reload), ISO 8601. */
  loaded_at: string;
  failover: { url: string; identity: string; fingerprint: string; wrapping_key: string } | null;
  paired_primary: { identity: string; fingerprint: string } | null;
  export: { enabled: boolean; plaintext: boolean };
  whitelist: { label: string; wrapping_key: string }[];
  nonce_ttl_seconds: number;
  /** node.json fields that differed from the running node at the last reload and wait for a restart. */
  restart_required: string[];
}

/** What the running node holds, for `GET /v1/config` (operator): pairs, whitelist, export, nonce lifetime. */
export function runningConfigView(c: NodeConfig, meta: { loadedAt: string; restartRequired: string[] }): RunningConfig {
  return {
    loaded_at: meta.loadedAt,
    failover: c.failover ? { url: c.failover.url, identity: c.failover.identity, fingerprint: identityFingerprint(parsePublicIdentity(c.failover.identity)), wrapping_key: c.failover.wrapping_key } : null,
    paired_primary: c.paired_primary ? { identity: c.paired_primary, fingerprint: identityFingerprint(parsePublicIdentity(c.paired_primary)) } : null,
    export: { enabled: c.export.enabled, plaintext: c.export.plaintext },
    whitelist: c.export.whitelist.map((w) => ({ label: w.label, wrapping_key: w.wrapping_key })),
    nonce_ttl_seconds: c.nonce_ttl_seconds,
    restart_required: meta.restartRequired,
  };
}
