/**
 * `lifeboat ers recover | sign`: the day of an emergency recovery (docs/ers.md), offline: the key from a
 * package with the RSA private key or an external decryptor; `recover --reshare-to` deals it into new
 * key nodes.
 */
import { spawnSync } from 'node:child_process';
import { fchmodSync, fstatSync } from 'node:fs';
import type { Command } from 'commander';
import { InvalidInputError, LifeboatError, UsageError, isLifeboatError } from '../../errors.js';
import { checkReshareTargets, reshareTo } from '../../ers/reshare.js';
import type { ErsPackage } from '../../ers/format.js';
import { type Decrypt, keyForms, recoverKey, type RecoveredKey, signWithRecovered } from '../../ers/recover.js';
import { frostGroupPublicKey, parseFrostPublic } from '../../keynode/frost/index.js';
import { describeFingerprint, oaepDecrypt, parseErsPrivateKey } from '../../ers/rsa.js';
import { KeyNodeClient } from '../../keynode/client.js';
import { ctEqual, fromHex, toB64, toHex, utf8, wipe } from '../../util/bytes.js';
import { randomBytes } from '../../crypto/random.js';
import { assertPrivateFile, readFileOrThrow } from '../../util/files.js';
import { promptSecret, promptsHelp } from '../input.js';
import { createOutput, writeSecret } from '../io.js';
import { asUsage, intIn } from '../options.js';
import { apiToken, checkOutputPath, readFd, readPackage, writeOutput } from './ers-io.js';

const PASS_PROMPT = promptsHelp(['for a passphrase-encrypted --ers-private without --passphrase-fd: its passphrase']);
const OPENSSL_EXAMPLE = 'openssl pkeyutl -decrypt -inkey ers.key -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256';

/**
 * Each decryption by an external command: ciphertext on its stdin, plaintext on its stdout; its stderr
 * goes to ours. A command that exits non-zero, or prints other than 32 bytes, decrypted nothing (the
 * row is skipped; none at all is `decryption_failed`). One that does not read its stdin is not an error
 * in itself (EPIPE). Throws LifeboatError `decrypt_cmd_failed` only when the shell cannot be started.
 */
function commandDecrypt(cmd: string): Decrypt {
  return async (c) => {
    const r = spawnSync('/bin/sh', ['-c', cmd], { input: c, maxBuffer: 1 << 16, stdio: ['pipe', 'pipe', 'inherit'] });
    const code = (r.error as NodeJS.ErrnoException | undefined)?.code;
    if (r.error && code !== 'EPIPE' && code !== 'ENOBUFS') throw new LifeboatError('decrypt_cmd_failed', `--decrypt-cmd could not be run: ${r.error.message}`);
    if (r.status !== 0 || code === 'ENOBUFS') return undefined;
    return new Uint8Array(r.stdout);
  };
}

interface RecoverOpts {
  groupKey?: string;
  ersPrivate?: string;
  decryptCmd?: string;
  passphraseFd?: number;
  json?: boolean;
}

async function recoverFrom(path: string, o: RecoverOpts): Promise<RecoveredKey> {
  if ((o.ersPrivate === undefined) === (o.decryptCmd === undefined)) throw new UsageError('give exactly one of --ers-private FILE or --decrypt-cmd "COMMAND"');
  const pkg = readPackage(path);
  if (o.groupKey !== undefined) pinGroupKey(pkg, o.groupKey);
  let decrypt: Decrypt;
  if (o.ersPrivate !== undefined) {
    assertPrivateFile(o.ersPrivate, 'ERS private key');
    const pem = readFileOrThrow(o.ersPrivate, 'ERS private key');
    const encrypted = utf8.decode(pem).includes('ENCRYPTED PRIVATE KEY');
    const passphrase = encrypted ? (o.passphraseFd !== undefined ? readFd(o.passphraseFd) : await askPassphrase(o.ersPrivate)) : undefined;
    const { key, public: pub } = parseErsPrivateKey(pem, passphrase, `--ers-private ${o.ersPrivate}`);
    if (toB64(pub.spki) !== toB64(pkg.spki)) {
      throw new LifeboatError('ers_key_mismatch', `the package is encrypted to another RSA key than ${describeFingerprint(pub.fingerprint)}`, { hint: 'use the private key whose fingerprint `lifeboat ers verify` prints for this package' });
    }
    decrypt = async (c) => oaepDecrypt(key, c);
  } else decrypt = commandDecrypt(o.decryptCmd!);
  return recoverKey(pkg, decrypt);
}

/** The passphrase of an encrypted --ers-private; none on stdin is `passphrase_required` (docs/ers.md). */
async function askPassphrase(file: string): Promise<string> {
  try {
    return await promptSecret('passphrase of the ERS private key');
  } catch (err) {
    if (!isLifeboatError(err, 'input_missing')) throw err;
    throw new InvalidInputError(`--ers-private ${file} is encrypted under a passphrase and none was given`, { code: 'passphrase_required', hint: 'pass --passphrase-fd N, a line on stdin, or type it on a terminal' });
  }
}

/** recover --group-key: the package must be for this key before anything is decrypted. */
function pinGroupKey(pkg: ErsPackage, hex: string): void {
  const want = fromHex(hex.trim().toLowerCase(), '--group-key');
  const have = frostGroupPublicKey(pkg.curve, parseFrostPublic(pkg.publicPackage, { curve: pkg.curve }).public);
  if (!ctEqual(want, have)) {
    throw new LifeboatError('ers_group_key_mismatch', `the package is for group key ${toHex(have)}, not ${toHex(want)}; nothing was decrypted`, { safety: true, hint: 'check the group key `key create` printed, and that this is the package of that key' });
  }
}

/** Writes the recovered key: --out FILE (0600), --secret-fd N, or a terminal. Throws `output_unwritable`, `secret_needs_terminal`. */
function writeRecovered(text: string, o: { out?: string; secretFd?: number }): void {
  if (o.out) return writeOutput(o.out, `${text}\n`, 0o600);
  if (o.secretFd !== undefined) tightenFdFile(o.secretFd);
  try {
    writeSecret(text, o.secretFd);
  } catch (err) {
    if (isLifeboatError(err, 'secret_needs_terminal')) {
      throw new LifeboatError('secret_needs_terminal', 'refusing to write the recovered key to a non-terminal stdout; nothing was written', { hint: 'run it in a terminal, or pass --out FILE (written 0600) or --secret-fd N' });
    }
    if (isLifeboatError(err)) throw err;
    throw new LifeboatError('output_unwritable', `cannot write to file descriptor ${o.secretFd} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { hint: 'open it for writing in the shell, e.g. --secret-fd 3 3>key.txt, or use --out FILE' });
  }
}

/**
 * A --secret-fd that is a regular file others may read (the shell made `3>key.txt` under its umask,
 * often 0644) is set to 0600 before the key is written into it, and the user is told. A descriptor
 * that is not open is left to the write (output_unwritable).
 */
function tightenFdFile(fd: number): void {
  let st;
  try {
    st = fstatSync(fd);
  } catch {
    return;
  }
  if (!st.isFile() || (st.mode & 0o077) === 0) return;
  const was = (st.mode & 0o777).toString(8).padStart(4, '0');
  try {
    fchmodSync(fd, 0o600);
    createOutput().info(`--secret-fd ${fd} is a file others could read (mode ${was}); set it to 0600 before writing the key`);
  } catch {
    createOutput().warn(`--secret-fd ${fd} is a file others can read (mode ${was}) and it could not be set to 0600: chmod 600 it now`);
  }
}

/** Registers `ers recover` and `ers sign` under the `ers` command. */
export function registerErsRecoverCommands(ers: Command): void {
  const recoverHelp = `\nEach decryption is one standard RSA-OAEP-SHA256 decryption (empty label) of one ciphertext. With\n--decrypt-cmd, the ciphertext goes to the command's stdin and the plaintext is read from its stdout\n(exit 0), e.g. --decrypt-cmd "${OPENSSL_EXAMPLE}".\nThe key is printed only when it matches the group key (pin yours with --group-key); it goes to a terminal,\n--secret-fd N or --out FILE (0600): with stdout a pipe and neither, nothing is decrypted (secret_needs_terminal).\nForms: secp256k1/bip340 secret_key_hex (big-endian) and wif; ed25519 secret_scalar_hex (little-endian)\nand expanded_secret_key_hex (scalar then nonce prefix): see docs/ers.md.`;
  ers
    .command('recover <package>')
    .description('recover the private key offline from a package and the RSA private key (or an external decryptor)')
    .option('--ers-private <file>', 'the RSA private key (PKCS#8 PEM, 0600)')
    .option('--decrypt-cmd <command>', 'run this for each decryption instead (the RSA key stays in your HSM or tool)')
    .option('--group-key <hex>', 'refuse a package that is not for this group key (as `key create` printed it) before decrypting anything')
    .option('--passphrase-fd <fd>', 'read the private key’s passphrase from this file descriptor', intIn(0, 1023))
    .option('--out <file>', 'write the key to this file (0600) instead of the terminal')
    .option('--secret-fd <fd>', 'write the key to this file descriptor', intIn(3, 1023))
    .option('--json', 'the key as JSON')
    .option('--reshare-to <urls>', 'deal the recovered key into these key nodes (comma-separated) under the same group key; prints the new key reference, not the key (unless --out or --secret-fd)')
    .option('--threshold <t>', 'with --reshare-to: signers needed on the new nodes, 2..n (default: the package’s)', intIn(2, 32))
    .option('--tenant <name>', 'with --reshare-to: the tenant that will own the key on the new nodes')
    .option('--api-key-file <file>', 'with --reshare-to: an operator API key of the new nodes (0600); default $LIFEBOAT_API_KEY')
    .addHelpText('after', `${recoverHelp}\n--reshare-to imports one share into each node, wrapped to the wrapping key the node answers (use https,\nand compare the printed fingerprints with the new provider's; an operator API key of the new nodes), and\nchecks that every node holds it under the original group key. Every node is checked first (reachable, an\noperator key, each node once: duplicate_nodes). An import failing midway is rolled back: the shares this run\nimported are deleted (reshare_rolled_back); a share it could not delete is named with the command that\nremoves it (reshare_incomplete). The key belongs to --tenant (default: default): sign with a client key of it (URL#KEY_ID).\n${PASS_PROMPT}`)
    .action(async (path: string, o: RecoverOpts & { out?: string; secretFd?: number; reshareTo?: string; threshold?: number; tenant?: string; apiKeyFile?: string }) => {
      if (o.reshareTo === undefined && (o.threshold !== undefined || o.tenant !== undefined)) throw new UsageError('--threshold and --tenant go with --reshare-to');
      if (o.out !== undefined && o.secretFd !== undefined) throw new UsageError('give --out FILE or --secret-fd N, not both');
      if (o.out !== undefined) checkOutputPath(o.out);
      if (o.reshareTo === undefined && o.out === undefined && o.secretFd === undefined && !process.stdout.isTTY) {
        throw new LifeboatError('secret_needs_terminal', 'refusing to write the recovered key to a non-terminal stdout; nothing was decrypted', { hint: 'run it in a terminal, or pass --out FILE (written 0600) or --secret-fd N' });
      }
      let reshare: { urls: string[]; threshold: number; token: string } | undefined;
      if (o.reshareTo !== undefined) {
        // Before anything is decrypted: the node list and threshold, and an API key.
        const urls = o.reshareTo.split(',').map((u) => u.trim()).filter((u) => u !== '');
        const threshold = o.threshold ?? parseFrostPublic(readPackage(path).publicPackage).public.signers.min;
        asUsage(() => checkReshareTargets(urls, threshold));
        reshare = { urls, threshold, token: apiToken(o.apiKeyFile) };
      }
      const key = await recoverFrom(path, o);
      if (reshare !== undefined) {
        const token = reshare.token;
        const clients = reshare.urls.map((u) => new KeyNodeClient({ url: u, apiKey: token, timeoutMs: 120_000 }));
        let r;
        try {
          r = await reshareTo(key, clients, reshare.threshold, { keyId: `ers_${toHex(randomBytes(8))}`, tenant: o.tenant });
        } catch (err) {
          if (o.out === undefined && o.secretFd === undefined) wipe(key.secret);
          throw err;
        }
        const out = createOutput();
        if (o.json) out.json({ ok: true, ...r.ref, fingerprints: r.fingerprints });
        else {
          out.out(`dealt ${r.ref.threshold}-of-${r.ref.nodes.length} under group key ${r.ref.groupPublicKey}; every node checked its share and holds the key`);
          r.ref.nodes.forEach((n, i) => out.out(`  ${n.url}#${n.keyId}  (node ${r.fingerprints[i]})`));
        }
        if (o.out === undefined && o.secretFd === undefined) {
          wipe(key.secret);
          return;
        }
      }
      const forms = keyForms(key);
      const text = o.json ? JSON.stringify(forms, null, 2) : Object.entries(forms).map(([k, v]) => `${k}: ${v}`).join('\n');
      wipe(key.secret);
      const out = createOutput();
      writeRecovered(text, o);
      out.info(`recovered the ${key.curve} key of group key ${toHex(key.groupPublicKey)} from ${key.used.join(', ')}${o.out ? `; written to ${o.out}` : ''}`);
    });

  ers
    .command('sign <package>')
    .description('recover the key offline and sign a message with it, to prove control; prints the signature hex (plain Ed25519, BIP-340, or RFC 9591 secp256k1)')
    .option('--ers-private <file>', 'the RSA private key (PKCS#8 PEM, 0600)')
    .option('--decrypt-cmd <command>', 'run this for each decryption instead')
    .option('--group-key <hex>', 'refuse a package that is not for this group key before decrypting anything')
    .option('--passphrase-fd <fd>', 'read the private key’s passphrase from this file descriptor', intIn(0, 1023))
    .option('--message <hex>', 'message bytes, hex')
    .option('--message-text <text>', 'message as UTF-8 text')
    .option('--json', 'print JSON')
    .addHelpText('after', PASS_PROMPT)
    .action(async (path: string, o: RecoverOpts & { message?: string; messageText?: string }) => {
      if ((o.message === undefined) === (o.messageText === undefined)) throw new UsageError('give exactly one of --message HEX or --message-text TEXT');
      const msg = o.message !== undefined ? fromHex(o.message, '--message') : utf8.encode(o.messageText!);
      const key = await recoverFrom(path, o);
      let sig: Uint8Array;
      try {
        sig = signWithRecovered(key, msg);
      } finally {
        wipe(key.secret);
      }
      const out = createOutput();
      if (o.json) out.json({ curve: key.curve, group_public_key: toHex(key.groupPublicKey), signature: toHex(sig) });
      else out.out(toHex(sig));
    });
}
