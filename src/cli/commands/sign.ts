/**
 * `lifeboat sign`: a message signed by any t of a key's nodes (src/keynode/sign-any.ts), named by
 * `--key-file FILE` (a key reference, docs/format.md) or by `--key ID --nodes URL[#KEY_ID],…`.
 */
import { statSync } from 'node:fs';
import { type Command, Option } from 'commander';
import { InvalidInputError, isLifeboatError, LifeboatError } from '../../errors.js';
import { describeByteLimit } from '../../keynode/api.js';
import { KeyNodeClient } from '../../keynode/client.js';
import { MESSAGE_LIMIT_DEFAULT, MESSAGE_LIMIT_MAX } from '../../keynode/config.js';
import { normalizeNodeUrl, readKeyRefFile } from '../../keynode/keyref.js';
import { type ExpectedKey, type SignerNode, signWithAny } from '../../keynode/sign-any.js';
import { fromHex, toHex, utf8 } from '../../util/bytes.js';
import { readFileOrThrow } from '../../util/files.js';
import { readStdin } from '../input.js';
import { createOutput } from '../io.js';
import { type ApiOpts, apiKey, withApi } from './key-common.js';

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
    throw new InvalidInputError('give exactly one of --message HEX, --message-text TEXT or --message-file PATH (- for stdin)');
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


const NODES_HELP = `
Which nodes: --key-file FILE (a key reference from \`key create --out\`, kept up to date by \`key import
--key-file\`), or --key ID with --nodes URL,… (URL#KEY_ID for a node that holds the key under another
id, after an import). The first t nodes in that order are asked. A node that lacks the key
(key_id_not_exists), is down (peer_unreachable), or refuses (key_pending_backup, ers_package_required,
message_too_large, …) is set aside with a warning, and the next node takes its place; a round that
failed after round two starts again with fresh nonces. It fails only when fewer than t nodes can sign,
naming each node's error: err_type is the nodes' own when they all failed alike, else
insufficient_signers; with --json the failure document lists them in "failures" ({url, err_type,
message, hint}). With --key-file, a node that reports another curve, threshold or group key than the
file (key_ref_mismatch) or another fingerprint than the pinned one (peer_identity_mismatch) is set aside
too; both are refusals for safety (exit 3) when the signing fails.`;

/** `URL` or `URL#KEY_ID`, comma-separated: after an import a node holds the key under a new id. */
function nodeSpecs(list: string, keyId: string): { url: string; keyId: string }[] {
  const specs = list.split(',').map((spec) => {
    const s = spec.trim();
    const i = s.lastIndexOf('#');
    return i < 0 ? { url: normalizeNodeUrl(s, '--nodes URL'), keyId } : { url: normalizeNodeUrl(s.slice(0, i), '--nodes URL'), keyId: s.slice(i + 1) };
  });
  const dup = specs.find((s, i) => specs.findIndex((o) => o.url === s.url) !== i);
  if (dup) throw new InvalidInputError(`--nodes names ${dup.url} twice`);
  return specs;
}

export function registerSignCommand(program: Command): void {
  withApi(
    program
      .command('sign')
      .description('sign a message (up to the nodes’ message limit, 1 MiB by default) with any t of the key’s nodes (two FROST rounds; a node that cannot sign is replaced by the next); prints the signature hex')
      .option('--key <id>', 'key id (with --nodes)')
      .option('--nodes <urls>', 'comma-separated URLs of the key\'s nodes, in the order to ask them; URL#KEY_ID for a node that holds the key under another id (after an import)')
      .addOption(new Option('--key-file <file>', 'the key reference `key create --out` wrote: key id, group key and every node with its own key id (instead of --key and --nodes)').conflicts(['key', 'nodes']))
      .option('--message <hex>', 'message bytes, hex')
      .option('--message-text <text>', 'message as UTF-8 text')
      .option('--message-file <path>', 'message bytes from a file, or - for stdin')
      .addHelpText('after', `${NODES_HELP}\n${SIGN_HELP}`),
  ).action(async (o: ApiOpts & MessageOpts & { key?: string; nodes?: string; keyFile?: string }) => {
    if (o.keyFile === undefined && (o.key === undefined || o.nodes === undefined)) {
      throw new LifeboatError('usage', 'sign needs --key-file FILE, or --key ID and --nodes URLS', { hint: 'run `lifeboat sign --help` for usage' });
    }
    const ref = o.keyFile === undefined ? undefined : readKeyRefFile(o.keyFile);
    const specs: { url: string; keyId: string; fingerprint?: string }[] = ref ? ref.nodes : nodeSpecs(o.nodes!, o.key!);
    const expect: ExpectedKey | undefined = ref && { curve: ref.curve, threshold: ref.threshold, groupPublicKey: ref.groupPublicKey };
    const message = await messageBytes(o);
    const token = apiKey(o);
    const nodes: SignerNode[] = specs.map((s) => ({ client: new KeyNodeClient({ url: s.url, apiKey: token }), keyId: s.keyId, ...(s.fingerprint ? { fingerprint: s.fingerprint } : {}) }));
    const out = createOutput();
    const signed = await signWithAny(nodes, message, { expect, onFailure: (f) => out.warn(`${f.message} (${f.err_type}); asking another node`) });
    if (o.json) {
      const failures = signed.failures.map(({ url, err_type, message: m, hint }) => ({ url, err_type, message: m, hint }));
      out.json({ key_id: ref?.keyId ?? o.key, curve: signed.curve, group_public_key: signed.groupPublicKey, signature: toHex(signed.signature), signers: signed.signers, failures });
    } else out.out(toHex(signed.signature));
  });
}
