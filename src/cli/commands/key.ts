/**
 * `lifeboat key create | info | list | export | import | delete` and `lifeboat sign`: the client side of key nodes. API keys
 * come from $LIFEBOAT_API_KEY or --api-key-file, never from argv.
 */
import { existsSync } from 'node:fs';
import { type Command, Option } from 'commander';
import { InvalidInputError, LifeboatError } from '../../errors.js';
import type { KeyNodeClient } from '../../keynode/client.js';
import { keyShareExportSchema, type KeyShareExport, parseWrappingKey } from '../../keynode/export.js';
import { describeKey, keyRefMismatch, nodeIndexOf, readKeyRefFile, writeKeyRefFile } from '../../keynode/keyref.js';
import { createKey, type KeyRef } from '../../keynode/sdk.js';
import type { KeyInfo } from '../../keynode/service.js';
import { ERS_POLICIES, type ErsPolicy } from '../../keynode/store/types.js';
import { frostPublicFromJson, groupPublicKey } from '../../keynode/frost/index.js';
import { toHex, utf8 } from '../../util/bytes.js';
import { readFileOrThrow, writeFileAtomic } from '../../util/files.js';
import { text, isCancel } from '@clack/prompts';
import { createOutput, type Output } from '../io.js';
import { intIn } from '../options.js';
import { type ApiOpts, clients, withApi } from './key-common.js';
import { registerSignCommand } from './sign.js';

/** `held log#12,backup; needs ers` from a key's channels (keyChannelView); `no channels` when none is set up or held. */
function channelsText(channels: Record<string, unknown> | undefined): string {
  const entries = Object.entries(channels ?? {});
  if (entries.length === 0) return 'no channels';
  const held = entries.filter(([, v]) => v !== false).map(([c, v]) => (c === 'log' && v !== null && typeof v === 'object' && 'index' in v ? `log#${String(v.index)}` : c));
  const missing = entries.filter(([, v]) => v === false).map(([c]) => c);
  return [held.length > 0 ? `held ${held.join(',')}` : '', missing.length > 0 ? `needs ${missing.join(',')}` : ''].filter(Boolean).join('; ');
}

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

/**
 * Before `key import --key-file`: the reference names the node, the node is the pinned one, and the
 * export is a share of the reference's key. Throws `node_not_in_key_ref`, `peer_identity_mismatch`,
 * `key_ref_mismatch`, and readKeyRefFile's errors; nothing is imported then.
 */
async function checkImportAgainstRef(path: string, client: KeyNodeClient, exp: KeyShareExport): Promise<void> {
  const ref = readKeyRefFile(path);
  const entry = ref.nodes[nodeIndexOf(ref, client.url)]!;
  const { curve, public: pub } = frostPublicFromJson(exp.public, { check: 'structure' });
  const groupKey = toHex(groupPublicKey(curve, pub.commitments[0]!));
  if (curve !== ref.curve || groupKey !== ref.groupPublicKey) throw keyRefMismatch(`the export is a share of the ${curve} key ${groupKey}, not of the key reference's ${ref.curve} key ${ref.groupPublicKey}; nothing was imported`);
  if (entry.fingerprint !== undefined) {
    const id = await client.identity();
    if (id.fingerprint !== entry.fingerprint) throw new LifeboatError('peer_identity_mismatch', `key node at ${client.url} has fingerprint ${id.fingerprint}, not the pinned ${entry.fingerprint}; nothing was imported`, { hint: 'another node answers at that URL: check it first' });
  }
}

/** After the import: the node's entry in the reference gets its new key id (read again, written atomically). */
function recordImport(path: string, url: string, imported: KeyInfo): void {
  const ref = readKeyRefFile(path);
  if (imported.group_public_key !== ref.groupPublicKey) throw keyRefMismatch(`${url} imported the share as ${imported.key_id} under group key ${imported.group_public_key}, not the key reference's; ${path} was left as it was`);
  const i = nodeIndexOf(ref, url);
  ref.nodes[i] = { ...ref.nodes[i]!, keyId: imported.key_id };
  writeKeyRefFile(path, ref);
}

/** `key info --key-file`: each node of the reference, asked in parallel, checked against the file; exit 1 when one fails. */
async function infoFromRef(path: string, o: ApiOpts): Promise<void> {
  const ref = readKeyRefFile(path);
  const cs = clients(ref.nodes.map((n) => n.url).join(','), o);
  const rows = await Promise.all(
    ref.nodes.map(async (n, i) => {
      try {
        const info = await cs[i]!.key(n.keyId);
        if (info.curve !== ref.curve || info.threshold !== ref.threshold || info.group_public_key !== ref.groupPublicKey) {
          throw keyRefMismatch(`key node at ${n.url} holds ${n.keyId} as ${describeKey(info.curve, info.threshold, info.group_public_key)}, the key reference says ${describeKey(ref.curve, ref.threshold, ref.groupPublicKey)}`);
        }
        return { url: n.url, key_id: n.keyId, status: info.status, epoch: info.epoch, channels: info.channels ?? {} };
      } catch (err) {
        if (!(err instanceof LifeboatError)) throw err;
        return { url: n.url, key_id: n.keyId, err_type: err.code, message: err.message };
      }
    }),
  );
  const ok = rows.every((r) => !('err_type' in r));
  const out = createOutput();
  if (o.json) out.json({ key_id: ref.keyId, curve: ref.curve, threshold: ref.threshold, group_public_key: ref.groupPublicKey, ok, nodes: rows });
  else {
    out.out(`key ${ref.keyId}: ${ref.curve} ${ref.threshold}-of-${ref.nodes.length}, group public key ${ref.groupPublicKey}`);
    for (const r of rows) out.out(`${r.url}  ${r.key_id}  ${'err_type' in r ? `error: ${r.message} (${r.err_type})` : `${r.status}  epoch ${r.epoch}  ${channelsText(r.channels)}`}`);
  }
  if (!ok) process.exitCode = 1;
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
      .option('--out <file>', 'also write the key reference to this new file (0600; docs/format.md, "Key reference file"): key id, group key, each node with its fingerprint and key id; `sign --key-file` reads it, `key import --key-file` updates it')
      .option('--ers <policy>', 'the key\'s own emergency recovery policy, kept by every node: off (no ERS part, ever), allow, or require (it signs only once a verified `ers backup` package is registered); default: each node\'s ers settings decide')
      .addHelpText('after', `${ERS_HELP}\nExits 0 whether the key is active or pending_backup, and says which (status, and per node with --json).\nA node answers after waiting up to its durable_wait_ms, else backup.wait_ms (default 10 s), for its channels.`),
  ).action(async (o: ApiOpts & { nodes: string; threshold: number; curve: string; wait?: boolean; waitTimeout: number; out?: string; ers?: string }) => {
    if (!['ed25519', 'secp256k1', 'bip340'].includes(o.curve)) throw new InvalidInputError('--curve must be ed25519, secp256k1 or bip340');
    if (o.ers !== undefined && !(ERS_POLICIES as readonly string[]).includes(o.ers)) throw new InvalidInputError('--ers must be off, allow or require');
    if (o.out !== undefined && existsSync(o.out)) throw new InvalidInputError(`${o.out} already exists; no key was made`, { code: 'file_exists', hint: 'a key reference is never overwritten: choose another --out file' });
    const nodes = clients(o.nodes, o);
    let infos: KeyInfo[] = [];
    const ref = await createKey(nodes, { threshold: o.threshold, curve: o.curve as KeyRef['curve'], ...(o.ers ? { ersPolicy: o.ers as ErsPolicy } : {}), onFinished: (f) => (infos = f) });
    const keyId = ref.nodes[0]!.keyId;
    const out = createOutput({ quiet: o.json });
    let statuses = infos.map((i) => i.status);
    if (o.wait && statuses.some((st) => st !== 'active')) statuses = await waitUntilActive(nodes, keyId, statuses, o.waitTimeout * 1000, out);
    const pending = ref.nodes.filter((_, i) => statuses[i] !== 'active').map((n) => n.url);
    const status = pending.length === 0 ? 'active' : 'pending_backup';
    if (o.out) writeKeyRefFile(o.out, { keyId, curve: ref.curve, threshold: ref.threshold, groupPublicKey: ref.groupPublicKey, nodes: ref.nodes });
    if (o.json) {
      out.json({ key_id: keyId, curve: ref.curve, threshold: ref.threshold, group_public_key: ref.groupPublicKey, ers_policy: o.ers ?? null, status, nodes: ref.nodes.map((n, i) => ({ url: n.url, status: statuses[i] })), key_file: o.out ?? null });
    } else {
      out.out(`key ${keyId}: ${ref.curve} ${ref.threshold}-of-${ref.nodes.length}, group public key ${ref.groupPublicKey}, ERS policy ${o.ers ?? 'the nodes\' settings'}`);
      out.out(`status: ${status}${pending.length ? ` on ${pending.join(', ')}` : ''}`);
      if (o.out) out.out(`key reference written to ${o.out}`);
    }
    if (pending.length) {
      const waited = o.wait ? `still, after waiting ${o.waitTimeout} s` : 'its backup is not acknowledged yet';
      out.warn(`key ${keyId} is pending_backup on ${pending.length} node(s) (${waited}): it cannot sign there until the backup service acknowledges it${o.wait ? '' : '; --wait waits for that'}`);
    }
  });

  registerSignCommand(program);

  withApi(
    key
      .command('info')
      .description('one node\'s public facts about a key: curve, threshold, group key, status, tenant, its ERS policy (ers_policy; null: the node\'s settings decide), whether it needs a package to sign there (ers_required), its registered package (ers), its share epoch and the durable channels that hold it (channels: the log with its entry index; false: a channel new keys need that does not hold it yet)')
      .option('--node <url>', 'key node URL (with --key)')
      .option('--key <id>', 'key id on that node')
      .addOption(new Option('--key-file <file>', 'instead: every node of a key reference (`key create --out`), each asked for its own key id and checked against the file; one line per node').conflicts(['node', 'key']))
      .addHelpText('after', `\nWith --key-file: one line per node (URL, its key id, status, share epoch, channels, or its error);\nwith --json {key_id, curve, threshold, group_public_key, ok, nodes: [{url, key_id, status, epoch,\nchannels} or {url, key_id, err_type, message}]}. A node that does not answer, lacks the key, or\nreports another curve, threshold or group key (key_ref_mismatch) makes it exit 1, "ok": false.`),
  ).action(async (o: ApiOpts & { node?: string; key?: string; keyFile?: string }) => {
    if (o.keyFile !== undefined) return infoFromRef(o.keyFile, o);
    if (o.node === undefined || o.key === undefined) throw new LifeboatError('usage', 'key info needs --node URL and --key ID, or --key-file FILE', { hint: 'run `lifeboat key info --help` for usage' });
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
    if (!['encrypted', 'plaintext', 'wrapped'].includes(o.type)) throw new InvalidInputError('--type must be encrypted, plaintext or wrapped');
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
      .option('--tenant <name>', 'with an operator key: the tenant that will own the key (default: an encrypted export’s own tenant, else default); a client’s import goes to its own')
      .option('--key-file <file>', 'the key\'s reference (`key create --out`): checked first (it names --node, the export is its key), then its --node entry gets the new key id, atomically'),
  ).action(async (o: ApiOpts & { node: string; in: string; threshold?: number; tenant?: string; keyFile?: string }) => {
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
    if (o.keyFile !== undefined) await checkImportAgainstRef(o.keyFile, client!, r.data as KeyShareExport);
    const imported = await client!.importShare({ ...(r.data as KeyShareExport), ...(o.threshold ? { threshold: o.threshold } : {}), ...(o.tenant ? { tenant: o.tenant } : {}) });
    if (o.keyFile !== undefined) recordImport(o.keyFile, client!.url, imported);
    const out = createOutput();
    if (o.json) out.json({ key_id: imported.key_id, imported_from: imported.imported_from, tenant: imported.tenant, group_public_key: imported.group_public_key, status: imported.status, key_file: o.keyFile ?? null });
    else out.out(`imported as ${imported.key_id} (from ${imported.imported_from}) into tenant ${imported.tenant}, group public key ${imported.group_public_key}, status ${imported.status}`);
    if (o.keyFile !== undefined && !o.json) out.out(`key reference ${o.keyFile}: ${client!.url} now holds the key as ${imported.key_id}`);
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
