/**
 * `lifeboat node config get|set|running` and `lifeboat node whitelist add|list|remove`: a node's
 * settings in node.json, changed by command and validated (src/keynode/settings.ts), written atomically
 * and 0600. A running `node serve` applies the reloadable ones on SIGHUP (src/keynode/reload.ts), the
 * others when it is restarted; `config running` asks the running node what it holds.
 */
import { readApiKey } from '../api-key.js';
import type { Command } from 'commander';
import { InvalidInputError, UsageError } from '../../errors.js';
import { KeyNodeClient } from '../../keynode/client.js';
import { loadNodeConfig, nodePaths, type NodeConfig, resolveNodeDir, saveNodeConfig } from '../../keynode/config.js';
import { parseWrappingKey } from '../../keynode/export.js';
import { RELOADABLE_FIELDS } from '../../keynode/reload.js';
import { applySetting, getSetting, listSettings, SETTABLE_NAMES } from '../../keynode/settings.js';
import { createOutput } from '../io.js';

const DIR_HELP = 'node data directory (default: $LIFEBOAT_NODE_DIR or ./lifeboat-node)';
const RESTART = 'restart `lifeboat node serve` to apply (node.json is read at start)';
const RELOAD = 'send SIGHUP to the running `lifeboat node serve` to apply (or restart it)';

/** Whether a setting (`export.plaintext`) is applied by a SIGHUP reload or needs a restart. */
const reloadable = (name: string): boolean => (RELOADABLE_FIELDS as readonly string[]).includes(name.split('.')[0]!);

/** The API key: --api-key-file (0600) or $LIFEBOAT_API_KEY. Throws InvalidInputError `api_key_required`. */
function apiToken(file: string | undefined): string {
  return readApiKey(file, 'an operator key of the node');
}

interface DirOpts {
  dataDir?: string;
  json?: boolean;
}

/** Reads node.json, lets `change` return the new configuration (or undefined: nothing to write), writes it. */
function updateConfig<T>(o: DirOpts, change: (c: NodeConfig) => { config?: NodeConfig; result: T }): T {
  const paths = nodePaths(resolveNodeDir(o.dataDir));
  const { config, result } = change(loadNodeConfig(paths));
  if (config) saveNodeConfig(paths, config);
  return result;
}

const show = (v: unknown): string => (typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v));

export function registerNodeConfigCommands(node: Command): void {
  const config = node
    .command('config')
    .description('read and change the node’s settings (node.json) by name, validated; a running node applies export.* and nonce_ttl_seconds on SIGHUP, the rest after a restart')
    .addHelpText('after', `\nSettings: ${SETTABLE_NAMES.join(', ')} (backup.* once \`node backup-setup\` ran).\n\`node config get\` lists each with its value and the values it takes; \`node config running\` what a running node holds.`);

  config
    .command('get [name]')
    .description('print one setting’s value, or every setting with its value and the values it takes')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--json', 'print JSON')
    .action((name: string | undefined, o: DirOpts) => {
      const c = loadNodeConfig(nodePaths(resolveNodeDir(o.dataDir)));
      const out = createOutput();
      if (name !== undefined) {
        const value = getSetting(c, name);
        if (o.json) out.json({ name, value });
        else out.out(show(value));
        return;
      }
      const rows = listSettings(c);
      if (o.json) out.json(rows);
      else for (const r of rows) out.out(`${r.name.padEnd(24)} ${show(r.value).padEnd(12)} ${r.settable ? `(${r.allowed})` : `(set by ${r.set_by})`}`);
    });

  config
    .command('set <name> <value>')
    .description('change one setting; a value it does not take is refused (invalid_input, naming the values) and nothing is written')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--json', 'print JSON')
    .addHelpText('after', `\nnode.json is written atomically, mode 0600. A running node applies export.* and nonce_ttl_seconds\nwhen it gets SIGHUP (--json: apply "sighup"); the other settings when it restarts (apply "restart",\nrestart_required true). docs/keynode.md, "Reloading the configuration".`)
    .action((name: string, value: string, o: DirOpts) => {
      const r = updateConfig(o, (c) => {
        const next = applySetting(c, name, value);
        const changed = next.previous !== next.value;
        const apply = reloadable(name) ? 'sighup' : 'restart';
        return { config: changed ? next.config : undefined, result: { name, value: next.value, previous: next.previous ?? null, changed, restart_required: changed && apply === 'restart', ...(changed ? { apply } : {}) } };
      });
      const out = createOutput();
      if (o.json) out.json({ ok: true, ...r });
      else if (!r.changed) out.out(`${name} is already ${show(r.value)}; nothing changed`);
      else out.out(`${name}: ${show(r.previous)} -> ${show(r.value)}; ${r.apply === 'sighup' ? RELOAD : RESTART}`);
    });

  config
    .command('running')
    .description('what the running node holds (GET /v1/config, an operator API key): pairs, whitelist, export policy, nonce lifetime, and fields waiting for a restart')
    .requiredOption('--url <url>', 'the node, e.g. http://127.0.0.1:7401')
    .option('--api-key-file <file>', 'file holding an operator API key (0600); default $LIFEBOAT_API_KEY')
    .option('--json', 'print JSON')
    .action(async (o: { url: string; apiKeyFile?: string; json?: boolean }) => {
      const c = await new KeyNodeClient({ url: o.url.replace(/\/+$/, ''), apiKey: apiToken(o.apiKeyFile) }).runningConfig();
      const out = createOutput();
      if (o.json) return out.json(c);
      out.out(`loaded at        ${c.loaded_at}`);
      out.out(`fail-over        ${c.failover ? `${c.failover.url} (${c.failover.fingerprint})` : 'none'}`);
      out.out(`paired primary   ${c.paired_primary ? c.paired_primary.fingerprint : 'none'}`);
      out.out(`export           ${c.export.enabled ? 'enabled' : 'disabled'}, plaintext ${c.export.plaintext ? 'on' : 'off'}`);
      out.out(`nonce ttl        ${c.nonce_ttl_seconds} s`);
      out.out(`whitelist        ${c.whitelist.length}`);
      for (const w of c.whitelist) out.out(`  ${w.wrapping_key}  ${w.label}`);
      if (c.restart_required.length) out.out(`waiting for a restart: ${c.restart_required.join(', ')}`);
    });

  const wl = node.command('whitelist').description('wrapping keys shares may be exported to (wrapped)');
  const keyHelp = 'the recipient node’s wrapping public key: base64 (as `node init` prints it), hex, or the JSON GET /v1/wrapping-key answers';
  wl.command('add')
    .description('allow wrapped exports to this X25519 wrapping key')
    .requiredOption('--wrapping-key <key>', keyHelp)
    .option('--label <text>', 'whose key it is', '')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--json', 'print JSON')
    .action((o: DirOpts & { wrappingKey: string; label: string }) => {
      const key = parseWrappingKey(o.wrappingKey);
      if (o.label.length > 128) throw new UsageError('--label must be at most 128 characters');
      const added = updateConfig(o, (c) => {
        if (c.export.whitelist.some((w) => w.wrapping_key === key)) return { result: false };
        return { config: { ...c, export: { ...c.export, whitelist: [...c.export.whitelist, { label: o.label, wrapping_key: key }] } }, result: true };
      });
      const out = createOutput();
      if (o.json) out.json({ ok: true, wrapping_key: key, added, restart_required: false, ...(added ? { apply: 'sighup' } : {}) });
      else out.out(added ? `whitelisted ${key}; ${RELOAD}` : `${key} is already whitelisted; nothing changed`);
    });
  wl.command('list')
    .description('the whitelisted wrapping keys and their labels')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--json', 'print JSON')
    .action((o: DirOpts) => {
      const list = loadNodeConfig(nodePaths(resolveNodeDir(o.dataDir))).export.whitelist;
      const out = createOutput();
      if (o.json) out.json(list);
      else for (const w of list) out.out(`${w.wrapping_key}  ${w.label}`);
    });
  wl.command('remove')
    .alias('rm')
    .description('stop allowing wrapped exports to this wrapping key (a paired fail-over’s key is refused: unpair it first)')
    .requiredOption('--wrapping-key <key>', keyHelp)
    .option('--data-dir <dir>', DIR_HELP)
    .option('--json', 'print JSON')
    .action((o: DirOpts & { wrappingKey: string }) => {
      const key = parseWrappingKey(o.wrappingKey);
      updateConfig(o, (c) => {
        if (!c.export.whitelist.some((w) => w.wrapping_key === key)) throw new InvalidInputError(`${key} is not on the whitelist`, { code: 'not_whitelisted', hint: 'see `lifeboat node whitelist list`' });
        if (c.failover?.wrapping_key === key) throw new InvalidInputError(`${key} is the wrapping key of this node’s fail-over`, { hint: 'its pushes need it; a fail-over is unpaired by pairing another' });
        return { config: { ...c, export: { ...c.export, whitelist: c.export.whitelist.filter((w) => w.wrapping_key !== key) } }, result: undefined };
      });
      const out = createOutput();
      if (o.json) out.json({ ok: true, wrapping_key: key, removed: true, restart_required: false, apply: 'sighup' });
      else out.out(`removed ${key} from the whitelist; ${RELOAD}`);
    });
}
