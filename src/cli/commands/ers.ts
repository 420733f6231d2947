/**
 * `lifeboat ers keygen | whitelist | backup | verify | recover | sign`: emergency recovery packages
 * (docs/ers.md). verify, recover and sign run offline; backup asks each key node for its own part.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { InvalidInputError, isLifeboatError, LifeboatError } from '../../errors.js';
import { gatherPackage, registerWithNodes } from '../../ers/backup.js';
import { checkReshareTargets, reshareTo } from '../../ers/reshare.js';
import { encodePackage, parsePackage, type ErsPackage } from '../../ers/format.js';
import { verifyPackage, reportError } from '../../ers/package.js';
import { type Decrypt, keyForms, recoverKey, type RecoveredKey, signWithRecovered } from '../../ers/recover.js';
import { frostGroupPublicKey, parseFrostPublic } from '../../keynode/frost/index.js';
import { describeFingerprint, generateErsKeyPair, oaepDecrypt, parseErsPrivateKey, parseErsPublicKey, spkiPem } from '../../ers/rsa.js';
import { KeyNodeClient } from '../../keynode/client.js';
import { loadNodeConfig, nodePaths, resolveNodeDir, saveNodeConfig } from '../../keynode/config.js';
import { ctEqual, fromHex, toB64, toHex, utf8, wipe } from '../../util/bytes.js';
import { randomBytes } from '../../crypto/random.js';
import { assertPrivateFile, readFileOrThrow, writeFileAtomic } from '../../util/files.js';
import { promptSecret, promptsHelp } from '../input.js';
import { createOutput, writeSecret } from '../io.js';
import { intIn } from '../options.js';

const KEEP_APART = 'keep the package and the RSA private key in different places until the day you recover';
const DIR_HELP = 'node data directory (default: $LIFEBOAT_NODE_DIR or ./lifeboat-node)';
const PASS_PROMPT = promptsHelp(['for a passphrase-encrypted --ers-private without --passphrase-fd: its passphrase']);
const OPENSSL_EXAMPLE = 'openssl pkeyutl -decrypt -inkey ers.key -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256';

function readPublic(path: string) {
  return parseErsPublicKey(readFileOrThrow(path, 'ERS public key'), `--ers-public ${path}`);
}

function readPackage(path: string): ErsPackage {
  return parsePackage(readFileOrThrow(path, 'emergency recovery package'), path);
}

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
  if ((o.ersPrivate === undefined) === (o.decryptCmd === undefined)) throw new InvalidInputError('give exactly one of --ers-private FILE or --decrypt-cmd "COMMAND"');
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

/** Refuses an --out whose directory is missing or that is a directory, before any work. */
function checkOutputPath(path: string): void {
  let problem: string | undefined;
  if (existsSync(path) && statSync(path).isDirectory()) problem = 'is a directory';
  else if (!existsSync(dirname(resolve(path)))) problem = `is in a directory that does not exist (${dirname(resolve(path))})`;
  if (problem) throw new LifeboatError('output_unwritable', `cannot write ${path}: it ${problem}`, { hint: 'give --out a path in an existing, writable directory' });
}

/** Writes the recovered key: --out FILE (0600), --secret-fd N, or a terminal. Throws `output_unwritable`, `secret_needs_terminal`. */
function writeRecovered(text: string, o: { out?: string; secretFd?: number }): void {
  if (o.out) return writeOutput(o.out, `${text}\n`, 0o600);
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

function apiToken(apiKeyFile: string | undefined): string {
  let token = process.env.LIFEBOAT_API_KEY;
  if (apiKeyFile) {
    assertPrivateFile(apiKeyFile, 'api key file');
    token = utf8.decode(readFileOrThrow(apiKeyFile, 'api key file')).trim();
  }
  if (!token) throw new InvalidInputError('no API key', { code: 'api_key_required', hint: 'set LIFEBOAT_API_KEY or pass --api-key-file FILE (0600)' });
  return token;
}

function readFd(fd: number): string {
  return utf8.decode(readFileOrThrow(`/dev/fd/${fd}`, 'passphrase')).replace(/\r?\n$/, '');
}

/** keygen never replaces a key: an overwritten offline key is a lost one. Throws `file_exists`. */
function refuseExisting(paths: string[]): void {
  for (const p of paths) {
    if (existsSync(p)) throw new LifeboatError('file_exists', `${p} exists; nothing was written`, { hint: 'choose another --out, or move the old key away first (never destroy an offline key)' });
  }
}

/** A new passphrase: on a terminal asked twice and compared; else one line of stdin. */
async function newPassphrase(): Promise<string> {
  const first = await promptSecret('passphrase for the ERS private key');
  if (!process.stdin.isTTY) return first;
  const again = await promptSecret('the same passphrase again');
  if (!ctEqual(utf8.encode(first), utf8.encode(again))) throw new InvalidInputError('the two passphrases differ; nothing was written', { code: 'passphrase_mismatch' });
  return first;
}

/**
 * Writes an output file (atomically, `mode`). Throws LifeboatError `output_unwritable` naming the path
 * when its directory is missing or not writable, or the path is a directory.
 */
function writeOutput(path: string, data: string, mode: number): void {
  try {
    writeFileAtomic(path, data, mode);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new LifeboatError('output_unwritable', `cannot write ${path} (${code})`, { hint: 'give a path in an existing, writable directory that is not itself a directory' });
  }
}

export function registerErsCommands(program: Command): void {
  const ers = program.command('ers').description('emergency recovery packages: every share verifiably encrypted to an offline RSA key (docs/ers.md)');

  ers
    .command('keygen')
    .description('make an RSA key pair for emergency recovery (PREFIX.key PKCS#8 PEM 0600, PREFIX.pub SPKI PEM), or take an existing public key with --import-public')
    .requiredOption('--out <prefix>', 'write PREFIX.key and PREFIX.pub')
    .option('--bits <n>', '3072 (default) or 4096', intIn(1024, 16384), 3072)
    .option('--passphrase', 'encrypt the private key under a passphrase (prompted twice on a terminal; from stdin when it is not a terminal)')
    .option('--passphrase-fd <fd>', 'encrypt the private key under the passphrase read from this file descriptor', intIn(0, 1023))
    .option('--import-public <file>', 'an existing RSA public key (SPKI PEM, e.g. exported from an HSM): checked and copied to PREFIX.pub; no private key is made')
    .option('--json', 'print JSON')
    .addHelpText('after', `\nKeys under 3072 bits are refused (rsa_key_too_small). The fingerprint is SHA-256 of the SPKI DER.\nAn existing PREFIX.key or PREFIX.pub is never overwritten (file_exists). The passphrase-encrypted key is\nPKCS#8 under PBES2 with scrypt (N=2^14, r=8, p=1) and AES-256-CBC; \`openssl pkey\` opens it.\n${KEEP_APART}.\n${promptsHelp(['with --passphrase: the passphrase (at least 8 characters); on a terminal, asked twice'])}`)
    .action(async (o: { out: string; bits: number; passphrase?: boolean; passphraseFd?: number; importPublic?: string; json?: boolean }) => {
      const out = createOutput();
      checkOutputPath(`${o.out}.pub`);
      if (o.importPublic !== undefined) {
        if (o.passphrase || o.passphraseFd !== undefined) throw new InvalidInputError('--passphrase and --passphrase-fd go with a new key pair, not --import-public');
        refuseExisting([`${o.out}.pub`]);
        const pub = parseErsPublicKey(readFileOrThrow(o.importPublic, 'RSA public key to import'), `--import-public ${o.importPublic}`);
        writeOutput(`${o.out}.pub`, spkiPem(pub), 0o644);
        if (o.json) out.json({ public_key: `${o.out}.pub`, fingerprint: describeFingerprint(pub.fingerprint), bits: pub.bits, private_key: null });
        else out.out(`ERS public key ${o.out}.pub (${pub.bits} bits), fingerprint ${describeFingerprint(pub.fingerprint)}`);
        return;
      }
      if (o.passphrase && o.passphraseFd !== undefined) throw new InvalidInputError('give --passphrase or --passphrase-fd N, not both');
      refuseExisting([`${o.out}.key`, `${o.out}.pub`]);
      const passphrase = o.passphraseFd !== undefined ? readFd(o.passphraseFd) : o.passphrase ? await newPassphrase() : undefined;
      if (passphrase !== undefined && passphrase.length < 8) throw new InvalidInputError('the passphrase must be at least 8 characters');
      const kp = generateErsKeyPair(o.bits, passphrase);
      writeOutput(`${o.out}.key`, kp.privatePem, 0o600);
      writeOutput(`${o.out}.pub`, kp.publicPem, 0o644);
      if (o.json) out.json({ private_key: `${o.out}.key`, public_key: `${o.out}.pub`, fingerprint: describeFingerprint(kp.public.fingerprint), bits: o.bits, encrypted: passphrase !== undefined });
      else {
        out.out(`ERS key pair: ${o.out}.key (private, 0600${passphrase !== undefined ? ', passphrase-encrypted' : ''}), ${o.out}.pub (public)`);
        out.out(`fingerprint ${describeFingerprint(kp.public.fingerprint)} (${o.bits} bits)`);
        out.info(`move ${o.out}.key offline; ${KEEP_APART}`);
      }
    });

  const wl = ers.command('whitelist').description('the RSA keys this key node may encrypt emergency recovery parts to (node.json; restart the node to apply)');
  wl.command('add')
    .description('allow parts encrypted to this RSA public key')
    .requiredOption('--ers-public <file>', 'the RSA public key (SPKI PEM)')
    .option('--label <text>', 'whose key it is', '')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--json', 'print JSON')
    .action((o: { ersPublic: string; label: string; dataDir?: string; json?: boolean }) => {
      if (o.label.length > 128) throw new InvalidInputError('--label must be at most 128 characters');
      const pub = readPublic(o.ersPublic);
      const paths = nodePaths(resolveNodeDir(o.dataDir));
      const c = loadNodeConfig(paths);
      const fp = toHex(pub.fingerprint);
      const added = !c.ers.whitelist.some((w) => w.fingerprint === fp);
      if (added) saveNodeConfig(paths, { ...c, ers: { ...c.ers, whitelist: [...c.ers.whitelist, { label: o.label, fingerprint: fp, spki: toB64(pub.spki) }] } });
      const out = createOutput();
      if (o.json) out.json({ ok: true, fingerprint: describeFingerprint(pub.fingerprint), added, ers_enabled: c.ers.enabled, restart_required: added });
      else out.out(added ? `whitelisted ${describeFingerprint(pub.fingerprint)}; restart \`lifeboat node serve\` to apply` : `${describeFingerprint(pub.fingerprint)} is already whitelisted; nothing changed`);
      if (!c.ers.enabled) out.warn('ERS is disabled on this node: `lifeboat node config set ers.enabled true`');
    });
  wl.command('list')
    .description('the whitelisted RSA keys')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--json', 'print JSON')
    .action((o: { dataDir?: string; json?: boolean }) => {
      const c = loadNodeConfig(nodePaths(resolveNodeDir(o.dataDir)));
      const out = createOutput();
      const rows = c.ers.whitelist.map((w) => ({ fingerprint: `SHA256:${w.fingerprint}`, label: w.label }));
      if (o.json) out.json({ enabled: c.ers.enabled, whitelist: rows });
      else for (const w of rows) out.out(`${w.fingerprint}  ${w.label}`);
    });
  wl.command('remove')
    .description('stop allowing parts encrypted to this RSA key')
    .requiredOption('--ers-public <file>', 'the RSA public key (SPKI PEM)')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--json', 'print JSON')
    .action((o: { ersPublic: string; dataDir?: string; json?: boolean }) => {
      const pub = readPublic(o.ersPublic);
      const paths = nodePaths(resolveNodeDir(o.dataDir));
      const c = loadNodeConfig(paths);
      const fp = toHex(pub.fingerprint);
      if (!c.ers.whitelist.some((w) => w.fingerprint === fp)) throw new InvalidInputError(`${describeFingerprint(pub.fingerprint)} is not on the ERS whitelist`, { code: 'not_whitelisted' });
      saveNodeConfig(paths, { ...c, ers: { ...c.ers, whitelist: c.ers.whitelist.filter((w) => w.fingerprint !== fp) } });
      const out = createOutput();
      if (o.json) out.json({ ok: true, fingerprint: describeFingerprint(pub.fingerprint), removed: true, restart_required: true });
      else out.out(`removed ${describeFingerprint(pub.fingerprint)}; restart \`lifeboat node serve\` to apply`);
    });

  ers
    .command('backup')
    .description('make the emergency recovery package of a key: each node encrypts its own share with a proof; this command only gathers and checks the parts, writes the package and registers it with every node (each verifies it; see ers.require)')
    .requiredOption('--key <id>', 'key id')
    .requiredOption('--nodes <urls>', 'comma-separated key node URLs (URL#KEY_ID for a node that holds the key under another id)')
    .requiredOption('--ers-public <file>', 'the RSA public key (SPKI PEM)')
    .requiredOption('--out <file>', 'where to write the package (0600)')
    .option('--label <text>', 'bound into every proof (default: the key id)')
    .option('--api-key-file <file>', 'file holding the API key (0600); default $LIFEBOAT_API_KEY')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nEvery node named must make its part (name t or more that are up and allow it); a refusal or a part\nwhose proof fails stops the backup and nothing is written. The package is written 0600.\nA node refuses with ers_disabled (its ers.enabled is off), ers_disabled_for_key (the key was created\nwith --ers off) or ers_key_not_whitelisted. A key created with --ers require, or on a node with\ners.require, signs there only once this command registered its package with that node.')
    .action(async (o: { key: string; nodes: string; ersPublic: string; out: string; label?: string; apiKeyFile?: string; json?: boolean }) => {
      const rsa = readPublic(o.ersPublic);
      const token = apiToken(o.apiKeyFile);
      const nodes = o.nodes.split(',').map((spec) => {
        const s = spec.trim();
        const i = s.lastIndexOf('#');
        return { client: new KeyNodeClient({ url: i < 0 ? s : s.slice(0, i), apiKey: token, timeoutMs: 120_000 }), keyId: i < 0 ? o.key : s.slice(i + 1) };
      });
      const { pkg, report } = await gatherPackage(nodes, rsa, o.label ?? o.key);
      const bytes = encodePackage(pkg);
      writeFileAtomic(o.out, bytes, 0o600);
      const registered = await registerWithNodes(nodes, bytes);
      const out = createOutput();
      if (o.json) out.json({ file: o.out, bytes: bytes.length, ...report, registered });
      else {
        out.out(`package ${o.out}: ${report.parts.length} part(s) of a ${report.threshold}-of-${report.max_signers} ${report.curve} key, group key ${report.group_key}`);
        out.out(`label ${JSON.stringify(report.label)}, RSA key ${report.rsa_fingerprint}; verified, registered with ${registered.filter((r) => r.ok).length} of ${registered.length} node(s)`);
        out.info(KEEP_APART);
      }
      for (const r of registered.filter((x) => !x.ok)) out.warn(`${r.url} did not register the package (${r.err_type}): ${r.message}; on a node with ers.require, or for a key created with --ers require, the key cannot sign there until it does`);
    });

  ers
    .command('verify <package>')
    .description('check a package offline from public data: every proof, at least t participants, verifying shares that interpolate to the group key, label and RSA key; exit 0 only when it will recover the key')
    .requiredOption('--group-key <hex>', 'the key’s group public key as `key create` printed it')
    .requiredOption('--ers-public <file>', 'the RSA public key (SPKI PEM)')
    .option('--label <text>', 'the label the package must carry')
    .option('--json', 'print the report as JSON')
    .action((path: string, o: { groupKey: string; ersPublic: string; label?: string; json?: boolean }) => {
      const rsa = readPublic(o.ersPublic);
      const groupKey = fromHex(o.groupKey.trim().toLowerCase(), '--group-key');
      const report = verifyPackage(readPackage(path), { groupKey, rsa, label: o.label });
      const out = createOutput();
      if (o.json) out.json(report);
      else {
        out.out(`${report.curve} ${report.threshold}-of-${report.max_signers}, group key ${report.group_key}, label ${JSON.stringify(report.label)}, RSA key ${report.rsa_fingerprint}`);
        for (const p of report.parts) out.out(`  ${p.participant}: proof ${p.proof_ok ? 'ok' : 'FAILED'}`);
        out.out(report.ok ? 'ok: this package recovers the key' : `FAILED: ${report.problems.length} problem(s)`);
        for (const p of report.problems) out.out(`  ${p.code}: ${p.message}`);
      }
      if (!report.ok) {
        const err = reportError(report);
        process.stderr.write(`lifeboat: error: ${err.message} (${err.code})\n`);
        process.exitCode = err.safety ? 3 : 1;
      }
    });

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
    .addHelpText('after', `${recoverHelp}\n--reshare-to imports one share into each node, wrapped to the wrapping key the node answers (use https,\nand compare the printed fingerprints with the new provider's; an operator API key of the new nodes), and\nchecks that every node holds it under the original group key. Every node is checked first (reachable, an\noperator key, each node once: duplicate_nodes); an import failing midway is reshare_incomplete, naming each\nnode that holds a share. The key belongs to --tenant (default: default): sign with a client key of it (URL#KEY_ID).\n${PASS_PROMPT}`)
    .action(async (path: string, o: RecoverOpts & { out?: string; secretFd?: number; reshareTo?: string; threshold?: number; tenant?: string; apiKeyFile?: string }) => {
      if (o.reshareTo === undefined && (o.threshold !== undefined || o.tenant !== undefined)) throw new InvalidInputError('--threshold and --tenant go with --reshare-to');
      if (o.out !== undefined && o.secretFd !== undefined) throw new InvalidInputError('give --out FILE or --secret-fd N, not both');
      if (o.out !== undefined) checkOutputPath(o.out);
      if (o.reshareTo === undefined && o.out === undefined && o.secretFd === undefined && !process.stdout.isTTY) {
        throw new LifeboatError('secret_needs_terminal', 'refusing to write the recovered key to a non-terminal stdout; nothing was decrypted', { hint: 'run it in a terminal, or pass --out FILE (written 0600) or --secret-fd N' });
      }
      let reshare: { urls: string[]; threshold: number; token: string } | undefined;
      if (o.reshareTo !== undefined) {
        // Before anything is decrypted: the node list and threshold, and an API key.
        const urls = o.reshareTo.split(',').map((u) => u.trim()).filter((u) => u !== '');
        const threshold = o.threshold ?? parseFrostPublic(readPackage(path).publicPackage).public.signers.min;
        checkReshareTargets(urls, threshold);
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
      if ((o.message === undefined) === (o.messageText === undefined)) throw new InvalidInputError('give exactly one of --message HEX or --message-text TEXT');
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
