/**
 * `lifeboat node config get|set` and `lifeboat node whitelist add|list|remove`: a node's settings in
 * node.json, changed by command and validated (src/keynode/settings.ts), written atomically and 0600.
 * The node reads node.json when it starts: a change applies after `node serve` is restarted.
 */
import type { Command } from 'commander';
import { InvalidInputError, UsageError } from '../../errors.js';
import { loadNodeConfig, nodePaths, type NodeConfig, resolveNodeDir, saveNodeConfig } from '../../keynode/config.js';
import { parseWrappingKey } from '../../keynode/export.js';
import { applySetting, getSetting, listSettings, SETTABLE_NAMES } from '../../keynode/settings.js';
import { createOutput } from '../io.js';

const DIR_HELP = 'node data directory (default: $LIFEBOAT_NODE_DIR or ./lifeboat-node)';
const RESTART = 'restart `lifeboat node serve` to apply (node.json is read at start)';

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
    .description('read and change the node’s settings (node.json) by name, validated; a change applies after a restart')
    .addHelpText('after', `\nSettings: ${SETTABLE_NAMES.join(', ')} (backup.* once \`node backup-setup\` ran).\n\`node config get\` lists each with its value and the values it takes.`);

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
    .addHelpText('after', `\nnode.json is written atomically, mode 0600. The node reads it when it starts: after a change,\n${RESTART.replace(' (node.json is read at start)', '')} (the command says so; --json: restart_required).`)
    .action((name: string, value: string, o: DirOpts) => {
      const r = updateConfig(o, (c) => {
        const next = applySetting(c, name, value);
        const changed = next.previous !== next.value;
        return { config: changed ? next.config : undefined, result: { name, value: next.value, previous: next.previous ?? null, changed, restart_required: changed } };
      });
      const out = createOutput();
      if (o.json) out.json({ ok: true, ...r });
      else if (!r.changed) out.out(`${name} is already ${show(r.value)}; nothing changed`);
      else out.out(`${name}: ${show(r.previous)} -> ${show(r.value)}; ${RESTART}`);
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
      if (o.json) out.json({ ok: true, wrapping_key: key, added, restart_required: added });
      else out.out(added ? `whitelisted ${key}; ${RESTART}` : `${key} is already whitelisted; nothing changed`);
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
      if (o.json) out.json({ ok: true, wrapping_key: key, removed: true, restart_required: true });
      else out.out(`removed ${key} from the whitelist; ${RESTART}`);
    });
}
