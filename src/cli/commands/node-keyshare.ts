/**
 * The operator mnemonic and the public log on a key node (docs/keyshare.md, "Operating a node"):
 * the words `node init` shows or takes, `node mnemonic setup` for a node made without them,
 * `node log-setup` naming the log(s) to publish to, and what `node status` shows per channel.
 */
import type { Command } from 'commander';
import { InvalidInputError, UsageError } from '../../errors.js';
import { encodePublicIdentity, type Identity } from '../../identity.js';
import { type LogTarget, loadNodeConfig, nodePaths, resolveNodeDir, saveNodeConfig } from '../../keynode/config.js';
import { keyChannelView, requiredChannels } from '../../keynode/durable.js';
import { addKeyshareToNode, closeNode, type KeyshareSetup, openNode, type OpenedNode } from '../../keynode/runtime.js';
import { keyEpoch } from '../../keynode/store/index.js';
import { deriveAgeRecipient, mnemonicCheck } from '../../keyshare/age.js';
import { checkMnemonic, generateOperatorMnemonic, type Mnemonic } from '../../keyshare/mnemonic.js';
import { META_LAST_ERROR, parseLogTarget } from '../../keyshare/publisher.js';
import { toB64, utf8, wipe } from '../../util/bytes.js';
import { createOutput, writeSecret } from '../io.js';
import { collect, intIn } from '../options.js';
import { readGivenFd } from '../../util/fd.js';

const DIR_HELP = 'node data directory (default: $LIFEBOAT_NODE_DIR or ./lifeboat-node)';
export const KEYSHARE_MODES = ['passphrase', 'recipient'] as const;

/** The words' options of `node init` and `node mnemonic setup`. */
export interface MnemonicOpts {
  mnemonic?: boolean;
  mnemonicFd?: number;
  secretFd?: number;
  keyshareMode: string;
}

export function addMnemonicOptions(cmd: Command, withOptOut: boolean): Command {
  cmd
    .option('--keyshare-mode <mode>', 'passphrase (the node keeps the words in its vault) or recipient (it keeps only the age1pq1… recipient they derive); docs/keyshare.md, "Two modes"', 'passphrase')
    .option('--mnemonic-fd <fd>', 'take the 24 words from this file descriptor instead of generating them (checked first, each check by name)', intIn(0, 1023))
    .option('--secret-fd <fd>', 'write the generated words to this file descriptor instead of the terminal', intIn(3, 1023));
  if (withOptOut) cmd.option('--no-mnemonic', 'make the node without an operator mnemonic (no key-share backups to the public log; `node mnemonic setup` adds one later)');
  return cmd;
}

/**
 * The words for a new setup, checked before anything is written: read from --mnemonic-fd and checked
 * (checkMnemonic's errors by name), or generated, which needs a terminal or --secret-fd
 * (`secret_needs_terminal`). `generated` says whether they must be shown.
 */
export function mnemonicForSetup(o: MnemonicOpts): { m: Mnemonic; generated: boolean; mode: KeyshareSetup['mode'] } {
  if (!(KEYSHARE_MODES as readonly string[]).includes(o.keyshareMode)) throw new UsageError(`--keyshare-mode must be passphrase or recipient, not ${JSON.stringify(o.keyshareMode.slice(0, 32))}`);
  const mode = o.keyshareMode as KeyshareSetup['mode'];
  if (o.mnemonicFd !== undefined) {
    if (o.secretFd !== undefined) throw new UsageError('--secret-fd shows generated words: with --mnemonic-fd nothing is generated');
    const text = readGivenFd(o.mnemonicFd, 'the mnemonic');
    return { m: checkMnemonic(text), generated: false, mode };
  }
  if (o.secretFd === undefined && !process.stdout.isTTY) {
    throw new InvalidInputError('the operator mnemonic must go to a terminal', { code: 'secret_needs_terminal', hint: 'run in a terminal, or pass --secret-fd N (or --mnemonic-fd N with words of your own, or --no-mnemonic for a node without key-share backups)' });
  }
  return { m: generateOperatorMnemonic(), generated: true, mode };
}

/** What the node keeps of the words: the words themselves, or the recipient and the mnemonic check. */
export function keyshareSetupOf(m: Mnemonic, mode: KeyshareSetup['mode']): (identity: Identity) => Promise<KeyshareSetup> {
  return async (identity) => {
    if (mode === 'passphrase') return { mode, phrase: utf8.encode(m.phrase) };
    return { mode, recipient: await deriveAgeRecipient(m), mnemonicCheck: toB64(mnemonicCheck(m, identity)) };
  };
}

/**
 * Shows generated words once: numbered for copying by hand on a terminal, with the node's identity to
 * write beside them (`keyshare recover --node-identity`), or the plain phrase to the fd.
 */
export function showMnemonic(m: Mnemonic, fd: number | undefined, identity: string): void {
  if (fd !== undefined) {
    writeSecret(m.phrase, fd);
    return;
  }
  const words = m.phrase.split(' ');
  const rows: string[] = [];
  for (let r = 0; r < words.length; r += 4) rows.push(words.slice(r, r + 4).map((w, j) => `${String(r + j + 1).padStart(2)}. ${w.padEnd(10)}`).join(' '));
  writeSecret(
    `\noperator mnemonic (24 words; every key share this node holds is published encrypted under them):\n${rows.join('\n')}\n\nnode identity (write it on the same paper): ${identity}\n\nwrite it down now, on paper: it is shown only this once, and with the log it alone brings this node's keys back\n`,
    undefined,
  );
}

async function withNode<T>(dataDir: string | undefined, fn: (n: OpenedNode) => Promise<T>): Promise<T> {
  const n = await openNode(resolveNodeDir(dataDir));
  try {
    return await fn(n);
  } finally {
    await closeNode(n);
  }
}

/** `node status`'s channel block: what new keys need, how many keys each channel holds, the publisher's queue. */
export async function channelStatus(n: OpenedNode): Promise<{ required: string[]; held: Record<string, number>; pending_keys: number; keyshare: unknown }> {
  const held = await n.store.countKeyChannels();
  let pending = 0;
  let after: string | undefined;
  for (;;) {
    const page = await n.store.listKeys({ afterKeyId: after, limit: 1000 });
    pending += page.filter((k) => k.status === 'pending_backup').length;
    if (page.length < 1000) break;
    after = page[page.length - 1]!.keyId;
  }
  const ks = n.config.keyshare;
  const keyshare = ks
    ? { mode: ks.mode, logs: n.config.logs.map((l) => l.url), queued: await n.store.countKeyshareOutbox(), last_error: (await n.store.getMeta(META_LAST_ERROR)) || null }
    : null;
  return { required: requiredChannels(n.config), held, pending_keys: pending, keyshare };
}

/** `node status --keys`: per key, its status, epoch and which channels hold it (the log with its index and checkpoint). */
export async function keyChannelRows(n: OpenedNode): Promise<{ key_id: string; status: string; epoch: number; channels: Record<string, unknown> }[]> {
  const rows = [];
  const required = requiredChannels(n.config);
  let after: string | undefined;
  for (;;) {
    const page = await n.store.listKeys({ afterKeyId: after, limit: 1000 });
    for (const k of page) {
      const epoch = keyEpoch(k);
      const channels = await keyChannelView(n.store, k, required);
      rows.push({ key_id: k.keyId, status: k.status, epoch, channels });
    }
    if (page.length < 1000) break;
    after = page[page.length - 1]!.keyId;
  }
  return rows;
}

export function registerNodeKeyshareCommands(node: Command): void {
  const mnemonic = node.command('mnemonic').description('the operator’s 24-word mnemonic: key-share backups to the public log (docs/keyshare.md)');
  addMnemonicOptions(
    mnemonic
      .command('setup')
      .description('give a node made without one its operator mnemonic, and queue every key it holds for the public log')
      .option('--data-dir <dir>', DIR_HELP)
      .option('--json', 'print JSON (generated words still go to the terminal or --secret-fd)'),
    false,
  )
    .addHelpText('after', '\nThe words are generated and shown once (terminal or --secret-fd), or taken from --mnemonic-fd.\nThe node publishes once `node log-setup` names a log and `node serve` is restarted.')
    .action(async (o: MnemonicOpts & { dataDir?: string; json?: boolean }) => {
      const { m, generated, mode } = mnemonicForSetup(o);
      try {
        const r = await withNode(o.dataDir, async (n) => ({ ...(await addKeyshareToNode(n, keyshareSetupOf(m, mode))), identity: encodePublicIdentity(n.secrets.identity), logs: n.config.logs.length }));
        if (generated) showMnemonic(m, o.secretFd, r.identity);
        const out = createOutput();
        if (o.json) out.json({ ok: true, keyshare_mode: r.mode, queued: r.queued, identity: r.identity, restart_required: true });
        else {
          out.out(`operator mnemonic set up (${r.mode} mode); ${r.queued} keys queued for the public log`);
          out.out(r.logs > 0 ? 'restart `lifeboat node serve` to publish them' : 'name the log with `lifeboat node log-setup`, then restart `lifeboat node serve`');
        }
      } finally {
        wipe(m.entropy);
      }
    });

  node
    .command('log-setup')
    .description('name a public log this node publishes its key-share backups to (its entries are signed by the node identity, which the log operator enrols)')
    .requiredOption('--log <url>', 'the log’s base URL (POST <url>/add)')
    .option('--log-key <vkey>', 'the log’s verifier key (as `log init` printed it); required unless --remove')
    .option('--witness-key <vkey>', 'a witness verifier key whose co-signature counts (repeatable)', collect, [])
    .option('--quorum <k>', 'co-signatures of --witness-key keys every answer must carry (default: all of them)', intIn(0, 32))
    .option('--remove', 'stop publishing to --log (the other flags are not needed)')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--json', 'print JSON')
    .action(async (o: { log: string; logKey?: string; witnessKey: string[]; quorum?: number; remove?: boolean; dataDir?: string; json?: boolean }) => {
      if (!/^https?:\/\/\S+$/.test(o.log)) throw new InvalidInputError(`--log ${o.log.slice(0, 64)} is not an http(s) URL`);
      const url = o.log.replace(/\/+$/, '');
      const paths = nodePaths(resolveNodeDir(o.dataDir));
      const c = loadNodeConfig(paths);
      let logs: LogTarget[];
      if (o.remove) {
        if (!c.logs.some((l) => l.url === url)) throw new InvalidInputError(`this node does not publish to ${url}`, { hint: 'see `lifeboat node config get logs`' });
        logs = c.logs.filter((l) => l.url !== url);
        if (logs.length === 0 && c.durable_channels?.includes('log')) throw new InvalidInputError('durable_channels lists log: a node without a log would never make a key usable', { hint: 'change durable_channels first (`lifeboat node config set durable_channels …`)' });
      } else {
        if (o.logKey === undefined) throw new InvalidInputError('--log-key is required', { hint: 'the verifier key `lifeboat log init` printed' });
        const target: LogTarget = { url, log_key: o.logKey, witness_keys: o.witnessKey, quorum: o.quorum ?? o.witnessKey.length };
        parseLogTarget(target);
        logs = [...c.logs.filter((l) => l.url !== url), target];
      }
      const identity = await withNode(o.dataDir, async (n) => encodePublicIdentity(n.secrets.identity));
      saveNodeConfig(paths, { ...c, logs });
      const out = createOutput();
      if (o.json) out.json({ ok: true, logs: logs.map((l) => ({ url: l.url, witness_keys: l.witness_keys.length, quorum: l.quorum })), identity, keyshare_mode: c.keyshare?.mode ?? null, restart_required: true });
      else {
        out.out(o.remove ? `no longer publishing to ${url}` : `publishing key-share backups to ${url} (${o.witnessKey.length} witness keys, quorum ${o.quorum ?? o.witnessKey.length})`);
        if (!o.remove) out.out(`the log operator enrols this node: lifeboat log enrol --name NAME --identity ${identity}`);
        if (!c.keyshare) out.out('this node has no operator mnemonic yet: `lifeboat node mnemonic setup`');
        out.out('restart `lifeboat node serve` to apply');
      }
    });
}

