/**
 * `lifeboat key create | info | list | export | import | delete` and `lifeboat sign`: the client side of key nodes. API keys
 * come from $LIFEBOAT_API_KEY or --api-key-file, never from argv.
 */
import { statSync } from 'node:fs';
import type { Command } from 'commander';
import { InvalidInputError, LifeboatError, UsageError, isLifeboatError } from '../../errors.js';
import { describeByteLimit } from '../../keynode/api.js';
import { KeyNodeClient } from '../../keynode/client.js';
import { MESSAGE_LIMIT_DEFAULT, MESSAGE_LIMIT_MAX } from '../../keynode/config.js';
import { keyShareExportSchema, type KeyShareExport, parseWrappingKey } from '../../keynode/export.js';
import { createKey, type KeyRef, sign } from '../../keynode/sdk.js';
import type { KeyInfo } from '../../keynode/service.js';
import { ERS_POLICIES, type ErsPolicy } from '../../keynode/store/types.js';
import { fromHex, toHex, utf8 } from '../../util/bytes.js';
import { assertPrivateFile, readFileOrThrow, writeFileAtomic } from '../../util/files.js';
import { text, isCancel } from '@clack/prompts';
import { readStdin } from '../input.js';
import { createOutput, type Output } from '../io.js';
import { intIn } from '../options.js';

interface ApiOpts {
  apiKeyFile?: string;
  json?: boolean;
}

function apiKey(o: ApiOpts): string {
  if (o.apiKeyFile) {
    assertPrivateFile(o.apiKeyFile, 'api key file');
    return utf8.decode(readFileOrThrow(o.apiKeyFile, 'api key file')).trim();
  }
  const k = process.env.LIFEBOAT_API_KEY;
  if (!k) throw new InvalidInputError('no API key', { code: 'api_key_required', hint: 'set LIFEBOAT_API_KEY or pass --api-key-file FILE (0600)' });
  return k;
}

function clients(urls: string, o: ApiOpts): KeyNodeClient[] {
  const key = apiKey(o);
  return urls.split(',').map((u) => new KeyNodeClient({ url: u.trim(), apiKey: key }));
}

/** `URL` or `URL#KEY_ID`: after an import a node holds the key under a new id (the key's own elsewhere). */
/** `held log#12,backup; needs ers` from a key's channels (keyChannelView); `no channels` when none is set up or held. */
function channelsText(channels: Record<string, unknown> | undefined): string {
  const entries = Object.entries(channels ?? {});
  if (entries.length === 0) return 'no channels';
  const held = entries.filter(([, v]) => v !== false).map(([c, v]) => (c === 'log' && v !== null && typeof v === 'object' && 'index' in v ? `log#${String(v.index)}` : c));
  const missing = entries.filter(([, v]) => v === false).map(([c]) => c);
  return [held.length > 0 ? `held ${held.join(',')}` : '', missing.length > 0 ? `needs ${missing.join(',')}` : ''].filter(Boolean).join('; ');
}

function nodeSpecs(list: string, keyId: string): { url: string; keyId: string }[] {
  return list.split(',').map((spec) => {
    const s = spec.trim();
    const i = s.lastIndexOf('#');
    return i < 0 ? { url: s, keyId } : { url: s.slice(0, i), keyId: s.slice(i + 1) };
  });
}

function withApi(cmd: Command): Command {
  return cmd.option('--api-key-file <file>', 'file holding the API key (0600); default $LIFEBOAT_API_KEY').option('--json', 'print JSON');
}

interface MessageOpts {
  message?: string;
  messageText?: string;
  messageFile?: string;
}

function tooLargeForAnyNode(what: string): LifeboatError {
  return new LifeboatError('message_too_large', `${what} is over the largest message limit a node can have, ${describeByteLimit(MESSAGE_LIMIT_MAX)}`, { hint: 'sign a digest of it' });
}

/** The message to sign, from exactly one of --message HEX, --message-text TEXT, --message-file PATH (- for stdin). */
async function messageBytes(o: MessageOpts): Promise<Uint8Array> {
  if ([o.message, o.messageText, o.messageFile].filter((m) => m !== undefined).length !== 1) {
    throw new UsageError('give exactly one of --message HEX, --message-text TEXT or --message-file PATH (- for stdin)');
  }
  if (o.message !== undefined) return fromHex(o.message, '--message');
  if (o.messageText !== undefined) return utf8.encode(o.messageText);
  if (o.messageFile === '-') {
    try {
      return await readStdin();
    } catch (err) {
      throw isLifeboatError(err, 'input_too_large') ? tooLargeForAnyNode('the message on stdin') : err;
    }
  }
  const path = o.messageFile!;
  let size = 0;
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw new InvalidInputError(`--message-file ${path} is a directory`);
    size = st.size;
  } catch (err) {
    if (isLifeboatError(err)) throw err; // a missing file is named by readFileOrThrow below
  }
  if (size > MESSAGE_LIMIT_MAX) throw tooLargeForAnyNode(`${path} (${size} bytes)`);
  return readFileOrThrow(path, 'message file');
}

const SIGN_HELP = `
The message: exactly one of --message HEX, --message-text TEXT, or --message-file PATH (the file's
bytes as they are; --message-file - reads them from stdin).

Message limit: each node signs messages up to its message_limit_bytes setting (default
${describeByteLimit(MESSAGE_LIMIT_DEFAULT)}, at most ${describeByteLimit(MESSAGE_LIMIT_MAX)}); a longer one is refused with
message_too_large naming the node's limit. An operator changes it with
\`lifeboat node config set message_limit_bytes N\` and a restart of the node; give every node of a key
the same limit. Larger data: sign its digest.`;

const ERS_HELP = `
ERS policy (docs/ers.md, "Policy"): --ers off refuses the key's emergency recovery part on every node
(ers_disabled_for_key), even where ers.enabled is on; allow and require still need each node's
ers.enabled and an RSA key on its ERS whitelist, and a node with ers.enabled off refuses to make such a
key (ers_disabled); require makes each node refuse to sign (ers_package_required) until \`lifeboat ers
backup\` registered a verified package with it. A node with ers.require on requires a package of every
key and refuses to make one with --ers off (ers_required_by_node). Without --ers, each node's settings
decide, as for keys made before.
`;

/**
 * `key delete`'s confirmation: on a terminal the user types the key id; elsewhere only `--yes` goes on.
 * Throws LifeboatError `confirmation_required` (no terminal, no --yes), `confirmation_mismatch`,
 * `cancelled`; nothing is deleted then.
 */
async function confirmDelete(keyId: string, what: string, yes: boolean | undefined): Promise<void> {
  if (yes) return;
  if (!process.stdin.isTTY) throw new LifeboatError('confirmation_required', `deleting ${what} needs a confirmation; nothing was deleted`, { hint: 'run it on a terminal and type the key id, or pass --yes' });
  const typed = await text({ message: `this deletes ${what} for good; type the key id to confirm`, output: process.stderr });
  if (isCancel(typed)) throw new LifeboatError('cancelled', 'cancelled; nothing was deleted');
  if (typed.trim() !== keyId) throw new LifeboatError('confirmation_mismatch', `typed ${JSON.stringify(typed.trim().slice(0, 80))}, not the key id ${keyId}; nothing was deleted`);
}

/** Every node's status for the key, until all are active or `timeoutMs` passed; returns the last statuses. */
async function waitUntilActive(nodes: KeyNodeClient[], keyId: string, statuses: string[], timeoutMs: number, out: Output): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let current = statuses;
  out.info(`waiting up to ${Math.round(timeoutMs / 1000)} s for the backup of key ${keyId} to be acknowledged`);
  while (current.some((st) => st !== 'active') && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    current = await Promise.all(nodes.map(async (n, i) => (current[i] === 'active' ? 'active' : (await n.key(keyId)).status)));
  }
  return current;
}

export function registerKeyCommands(program: Command): void {
  const key = program.command('key').description('threshold keys on key nodes');

  withApi(
    key
      .command('create')
      .description('create a key by FROST DKG among the nodes (the coordinator only relays; it cannot read round-2 packages); prints its status: active, or pending_backup on a node whose durable channels (backup service, public log) do not hold it yet (it cannot sign until then)')
      .requiredOption('--nodes <urls>', 'comma-separated key node URLs')
      .option('--threshold <t>', 'signers needed', intIn(2, 32), 2)
      .option('--curve <curve>', 'ed25519, secp256k1 or bip340', 'ed25519')
      .option('--wait', 'when the key is pending_backup on a node, wait until every node reports it active (or --wait-timeout passes)')
      .option('--wait-timeout <seconds>', 'with --wait: how long to wait', intIn(1, 86_400), 120)
      .option('--out <file>', 'also write the key reference (public) to this file')
      .option('--ers <policy>', 'the key\'s own emergency recovery policy, kept by every node: off (no ERS part, ever), allow, or require (it signs only once a verified `ers backup` package is registered); default: each node\'s ers settings decide')
      .addHelpText('after', `${ERS_HELP}\nExits 0 whether the key is active or pending_backup, and says which (status, and per node with --json).\nA node answers after waiting up to its durable_wait_ms, else backup.wait_ms (default 10 s), for its channels.`),
  ).action(async (o: ApiOpts & { nodes: string; threshold: number; curve: string; wait?: boolean; waitTimeout: number; out?: string; ers?: string }) => {
    if (!['ed25519', 'secp256k1', 'bip340'].includes(o.curve)) throw new UsageError('--curve must be ed25519, secp256k1 or bip340');
    if (o.ers !== undefined && !(ERS_POLICIES as readonly string[]).includes(o.ers)) throw new UsageError('--ers must be off, allow or require');
    const count = o.nodes.split(',').length;
    if (o.threshold > count) throw new UsageError(`--threshold ${o.threshold} is more than the ${count} --nodes given`, { hint: 'a t-of-n key needs t <= n: name more nodes or lower --threshold' });
    const nodes = clients(o.nodes, o);
    let infos: KeyInfo[] = [];
    const ref = await createKey(nodes, { threshold: o.threshold, curve: o.curve as KeyRef['curve'], ...(o.ers ? { ersPolicy: o.ers as ErsPolicy } : {}), onFinished: (f) => (infos = f) });
    const keyId = ref.nodes[0]!.keyId;
    const out = createOutput({ quiet: o.json });
    let statuses = infos.map((i) => i.status);
    if (o.wait && statuses.some((st) => st !== 'active')) statuses = await waitUntilActive(nodes, keyId, statuses, o.waitTimeout * 1000, out);
    const pending = ref.nodes.filter((_, i) => statuses[i] !== 'active').map((n) => n.url);
    const status = pending.length === 0 ? 'active' : 'pending_backup';
    if (o.out) writeFileAtomic(o.out, `${JSON.stringify(ref, null, 2)}\n`, 0o644);
    if (o.json) {
      out.json({ key_id: keyId, curve: ref.curve, threshold: ref.threshold, group_public_key: ref.groupPublicKey, ers_policy: o.ers ?? null, status, nodes: ref.nodes.map((n, i) => ({ url: n.url, status: statuses[i] })) });
    } else {
      out.out(`key ${keyId}: ${ref.curve} ${ref.threshold}-of-${ref.nodes.length}, group public key ${ref.groupPublicKey}, ERS policy ${o.ers ?? 'the nodes\' settings'}`);
      out.out(`status: ${status}${pending.length ? ` on ${pending.join(', ')}` : ''}`);
    }
    if (pending.length) {
      const waited = o.wait ? `still, after waiting ${o.waitTimeout} s` : 'its backup is not acknowledged yet';
      out.warn(`key ${keyId} is pending_backup on ${pending.length} node(s) (${waited}): it cannot sign there until the backup service acknowledges it${o.wait ? '' : '; --wait waits for that'}`);
    }
  });

  withApi(
    program
      .command('sign')
      .description('sign a message (up to the nodes’ message limit, 1 MiB by default) with t of the key’s nodes (two FROST rounds); prints the signature hex')
      .requiredOption('--key <id>', 'key id')
      .requiredOption('--nodes <urls>', 'comma-separated URLs of the nodes to sign with (the first t are used); URL#KEY_ID for a node that holds the key under another id (after an import)')
      .option('--message <hex>', 'message bytes, hex')
      .option('--message-text <text>', 'message as UTF-8 text')
      .option('--message-file <path>', 'message bytes from a file, or - for stdin')
      .addHelpText('after', SIGN_HELP),
  ).action(async (o: ApiOpts & MessageOpts & { key: string; nodes: string }) => {
    const message = await messageBytes(o);
    const specs = nodeSpecs(o.nodes, o.key);
    const token = apiKey(o);
    const nodes = specs.map((n) => new KeyNodeClient({ url: n.url, apiKey: token }));
    const info = await nodes[0]!.key(specs[0]!.keyId);
    // sign() checks the aggregate against this group key: ids of another key on some node fail, never sign for it.
    const ref: KeyRef = { curve: info.curve, threshold: info.threshold, groupPublicKey: info.group_public_key, public: info.public, nodes: specs };
    const sig = await sign(ref, nodes, message);
    const out = createOutput();
    if (o.json) out.json({ key_id: o.key, curve: info.curve, group_public_key: info.group_public_key, signature: toHex(sig) });
    else out.out(toHex(sig));
  });

  withApi(
    key
      .command('info')
      .description('one node\'s public facts about a key: curve, threshold, group key, status, tenant, its ERS policy (ers_policy; null: the node\'s settings decide), whether it needs a package to sign there (ers_required), its registered package (ers), its share epoch and the durable channels that hold it (channels: the log with its entry index; false: a channel new keys need that does not hold it yet)')
      .requiredOption('--node <url>', 'key node URL')
      .requiredOption('--key <id>', 'key id on that node'),
  ).action(async (o: ApiOpts & { node: string; key: string }) => {
    const [client] = clients(o.node, o);
    const info = (await client!.key(o.key)) as KeyInfo & { ers?: { rsa_fingerprint: string } | null; ers_required?: boolean };
    const out = createOutput();
    if (o.json) return out.json(info);
    const { public: _pub, ...facts } = info;
    for (const [k, v] of Object.entries(facts)) out.out(`${k.padEnd(16)} ${v !== null && typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  });

  withApi(
    key
      .command('list')
      .description('the keys a node holds that this API key may see (a client: its tenant\'s; an operator: every tenant\'s, or --tenant\'s), one line each: id, curve, threshold, status, ERS policy, tenant, share epoch, the durable channels that hold it (log#INDEX) or that it still needs')
      .requiredOption('--node <url>', 'key node URL')
      .option('--tenant <name>', 'with an operator key: only this tenant\'s keys'),
  ).action(async (o: ApiOpts & { node: string; tenant?: string }) => {
    const [client] = clients(o.node, o);
    const keys: KeyInfo[] = [];
    for (let after: string | undefined; ; ) {
      const page = await client!.keys({ limit: 1000, ...(after ? { after } : {}), ...(o.tenant ? { tenant: o.tenant } : {}) });
      keys.push(...page.keys);
      if (!page.next_after) break;
      after = page.next_after;
    }
    const out = createOutput();
    if (o.json) return out.json(keys.map(({ public: _pub, ...k }) => k));
    for (const k of keys) out.out(`${k.key_id}  ${k.curve.padEnd(9)}  ${k.threshold}-of-${k.max_signers}  ${k.status.padEnd(14)}  ers ${(k.ers_policy ?? 'node').padEnd(7)}  ${k.tenant}  epoch ${k.epoch}  ${channelsText(k.channels)}`);
  });

  withApi(
    key
      .command('export')
      .description('export one node’s share: encrypted (node-bound), plaintext (where enabled) or wrapped (to a whitelisted key)')
      .requiredOption('--node <url>', 'key node URL')
      .requiredOption('--key <id>', 'key id on that node')
      .requiredOption('--out <file>', 'where to write the export (0600)')
      .option('--type <type>', 'encrypted, plaintext or wrapped', 'encrypted')
      .option('--wrapping-key <key>', 'for wrapped: the recipient’s wrapping public key: base64 (as `node init` prints it), hex, or the JSON GET /v1/wrapping-key answers'),
  ).action(async (o: ApiOpts & { node: string; key: string; out: string; type: string; wrappingKey?: string }) => {
    if (!['encrypted', 'plaintext', 'wrapped'].includes(o.type)) throw new UsageError('--type must be encrypted, plaintext or wrapped');
    const wrappingKey = o.wrappingKey === undefined ? undefined : parseWrappingKey(o.wrappingKey);
    const [client] = clients(o.node, o);
    const exp = await client!.exportShare(o.key, o.type as KeyShareExport['export_type'], wrappingKey);
    writeFileAtomic(o.out, `${JSON.stringify(exp)}\n`);
    const out = createOutput();
    if (o.json) out.json({ key_id: exp.key_id, export_type: exp.export_type, file: o.out });
    else out.out(`exported ${exp.export_type} share of ${exp.key_id} to ${o.out}`);
  });

  withApi(
    key
      .command('import')
      .description('import an export into a node (the share is checked against its verifying share first); prints the new key id and the tenant it landed in')
      .requiredOption('--node <url>', 'key node URL')
      .requiredOption('--in <file>', 'export file')
      .option('--threshold <t>', 'the key’s threshold', intIn(2, 32))
      .option('--tenant <name>', 'with an operator key: the tenant that will own the key (default: an encrypted export’s own tenant, else default); a client’s import goes to its own'),
  ).action(async (o: ApiOpts & { node: string; in: string; threshold?: number; tenant?: string }) => {
    let json: unknown;
    try {
      json = JSON.parse(utf8.decode(readFileOrThrow(o.in, 'export file')));
    } catch (err) {
      if ((err as { code?: string }).code === 'file_not_found') throw err;
      throw new InvalidInputError(`${o.in} is not JSON`, { code: 'malformed' });
    }
    const r = keyShareExportSchema.safeParse(json);
    if (!r.success) throw new InvalidInputError(`${o.in} is not a key share export`, { code: 'malformed' });
    const [client] = clients(o.node, o);
    const imported = await client!.importShare({ ...(r.data as KeyShareExport), ...(o.threshold ? { threshold: o.threshold } : {}), ...(o.tenant ? { tenant: o.tenant } : {}) });
    const out = createOutput();
    if (o.json) out.json({ key_id: imported.key_id, imported_from: imported.imported_from, tenant: imported.tenant, group_public_key: imported.group_public_key, status: imported.status });
    else out.out(`imported as ${imported.key_id} (from ${imported.imported_from}) into tenant ${imported.tenant}, group public key ${imported.group_public_key}, status ${imported.status}`);
    if (imported.status !== 'active') out.warn(`key ${imported.key_id} is ${imported.status}: it cannot sign on that node until its backup is acknowledged`);
  });

  withApi(
    key
      .command('delete')
      .description('delete one key share from one node, for good (an operator API key only; journaled to the node\'s backup stream): e.g. an orphan share left by a failed `ers recover --reshare-to`')
      .requiredOption('--node <url>', 'key node URL')
      .requiredOption('--key <id>', 'key id on that node')
      .option('--yes', 'do not ask (needed when stdin is not a terminal)')
      .addHelpText('after', `
Asks you to type the key id first (on a terminal; elsewhere pass --yes, or it refuses with
confirmation_required). A client API key is refused (wrong_role, 403); an unknown key id is
key_id_not_exists (404); nothing is deleted then. The other nodes of the key keep their shares: with
fewer than t left the key cannot sign. Delete a fail-over copy on the fail-over node too.`),
  ).action(async (o: ApiOpts & { node: string; key: string; yes?: boolean }) => {
    const [client] = clients(o.node, o);
    const info = await client!.key(o.key);
    await confirmDelete(o.key, `the ${info.curve} share ${o.key} (group key ${info.group_public_key}, tenant ${info.tenant}) on ${client!.url}`, o.yes);
    const d = await client!.deleteKey(o.key);
    const out = createOutput();
    if (o.json) out.json({ ...d, node: client!.url });
    else out.out(`deleted key ${d.key_id} from ${client!.url} (group key ${d.group_public_key}, tenant ${d.tenant})`);
  });
}
