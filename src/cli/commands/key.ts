/**
 * `lifeboat key create | export | import` and `lifeboat sign`: the client side of key nodes. API keys
 * come from $LIFEBOAT_API_KEY or --api-key-file, never from argv.
 */
import type { Command } from 'commander';
import { InvalidInputError } from '../../errors.js';
import { KeyNodeClient } from '../../keynode/client.js';
import { keyShareExportSchema, type KeyShareExport } from '../../keynode/export.js';
import { createKey, type KeyRef, sign } from '../../keynode/sdk.js';
import { fromHex, toHex, utf8 } from '../../util/bytes.js';
import { assertPrivateFile, readFileOrThrow, writeFileAtomic } from '../../util/files.js';
import { createOutput } from '../io.js';
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

function messageBytes(o: { message?: string; messageText?: string }): Uint8Array {
  if ((o.message === undefined) === (o.messageText === undefined)) throw new InvalidInputError('give exactly one of --message HEX or --message-text TEXT');
  return o.message !== undefined ? fromHex(o.message, '--message') : utf8.encode(o.messageText!);
}

export function registerKeyCommands(program: Command): void {
  const key = program.command('key').description('threshold keys on key nodes');

  withApi(
    key
      .command('create')
      .description('create a key by FROST DKG among the nodes (the coordinator only relays; it cannot read round-2 packages)')
      .requiredOption('--nodes <urls>', 'comma-separated key node URLs')
      .option('--threshold <t>', 'signers needed', intIn(2, 32), 2)
      .option('--curve <curve>', 'ed25519, secp256k1 or bip340', 'ed25519')
      .option('--out <file>', 'also write the key reference (public) to this file'),
  ).action(async (o: ApiOpts & { nodes: string; threshold: number; curve: string; out?: string }) => {
    if (!['ed25519', 'secp256k1', 'bip340'].includes(o.curve)) throw new InvalidInputError('--curve must be ed25519, secp256k1 or bip340');
    const ref = await createKey(clients(o.nodes, o), { threshold: o.threshold, curve: o.curve as KeyRef['curve'] });
    if (o.out) writeFileAtomic(o.out, `${JSON.stringify(ref, null, 2)}\n`, 0o644);
    const out = createOutput();
    if (o.json) out.json({ key_id: ref.nodes[0]!.keyId, curve: ref.curve, threshold: ref.threshold, group_public_key: ref.groupPublicKey });
    else out.out(`key ${ref.nodes[0]!.keyId}: ${ref.curve} ${ref.threshold}-of-${ref.nodes.length}, group public key ${ref.groupPublicKey}`);
  });

  withApi(
    program
      .command('sign')
      .description('sign a message with t of the key’s nodes (two FROST rounds); prints the signature hex')
      .requiredOption('--key <id>', 'key id')
      .requiredOption('--nodes <urls>', 'comma-separated URLs of the nodes to sign with (the first t are used); URL#KEY_ID for a node that holds the key under another id (after an import)')
      .option('--message <hex>', 'message bytes, hex')
      .option('--message-text <text>', 'message as UTF-8 text'),
  ).action(async (o: ApiOpts & { key: string; nodes: string; message?: string; messageText?: string }) => {
    const message = messageBytes(o);
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
      .command('export')
      .description('export one node’s share: encrypted (node-bound), plaintext (where enabled) or wrapped (to a whitelisted key)')
      .requiredOption('--node <url>', 'key node URL')
      .requiredOption('--key <id>', 'key id on that node')
      .requiredOption('--out <file>', 'where to write the export (0600)')
      .option('--type <type>', 'encrypted, plaintext or wrapped', 'encrypted')
      .option('--wrapping-key <b64>', 'for wrapped: the recipient’s wrapping public key'),
  ).action(async (o: ApiOpts & { node: string; key: string; out: string; type: string; wrappingKey?: string }) => {
    if (!['encrypted', 'plaintext', 'wrapped'].includes(o.type)) throw new InvalidInputError('--type must be encrypted, plaintext or wrapped');
    const [client] = clients(o.node, o);
    const exp = await client!.exportShare(o.key, o.type as KeyShareExport['export_type'], o.wrappingKey);
    writeFileAtomic(o.out, `${JSON.stringify(exp)}\n`);
    const out = createOutput();
    if (o.json) out.json({ key_id: exp.key_id, export_type: exp.export_type, file: o.out });
    else out.out(`exported ${exp.export_type} share of ${exp.key_id} to ${o.out}`);
  });

  withApi(
    key
      .command('import')
      .description('import an export into a node (the share is checked against its verifying share first)')
      .requiredOption('--node <url>', 'key node URL')
      .requiredOption('--in <file>', 'export file')
      .option('--threshold <t>', 'the key’s threshold', intIn(2, 32))
      .option('--tenant <name>', 'with an operator key: the tenant that will own the key (default: default); a client’s import goes to its own'),
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
    if (o.json) out.json({ key_id: imported.key_id, imported_from: imported.imported_from, group_public_key: imported.group_public_key });
    else out.out(`imported as ${imported.key_id} (from ${imported.imported_from}), group public key ${imported.group_public_key}`);
  });
}
