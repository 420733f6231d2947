/**
 * `lifeboat ers keygen | whitelist | backup | verify | recover | sign`: emergency recovery packages
 * (docs/ers.md). verify, recover and sign run offline; backup asks each key node for its own part.
 * recover and sign: ers-recover.ts; files and secrets: ers-io.ts.
 */
import { existsSync } from 'node:fs';
import { type Command, Option } from 'commander';
import { InvalidInputError, LifeboatError, UsageError } from '../../errors.js';
import { gatherPackage, registerWithNodes } from '../../ers/backup.js';
import { encodePackage } from '../../ers/format.js';
import { verifyPackage, reportError } from '../../ers/package.js';
import { describeFingerprint, generateErsKeyPair, parseErsPublicKey, spkiPem } from '../../ers/rsa.js';
import { KeyNodeClient } from '../../keynode/client.js';
import { keyRefMismatch, readKeyRefFile } from '../../keynode/keyref.js';
import { loadNodeConfig, nodePaths, resolveNodeDir, saveNodeConfig } from '../../keynode/config.js';
import { ctEqual, fromHex, toB64, toHex, utf8 } from '../../util/bytes.js';
import { readFileOrThrow, writeFileAtomic } from '../../util/files.js';
import { promptSecret, promptsHelp } from '../input.js';
import { createOutput } from '../io.js';
import { intIn } from '../options.js';
import { apiToken, checkOutputPath, KEEP_APART, readFd, readPackage, readPublic, writeOutput } from './ers-io.js';
import { registerErsRecoverCommands } from './ers-recover.js';

const DIR_HELP = 'node data directory (default: $LIFEBOAT_NODE_DIR or ./lifeboat-node)';

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

/** The `ers` group, without its commands. */
export function ersGroup(program: Command): Command {
  return program.command('ers').description('emergency recovery packages: every share verifiably encrypted to an offline RSA key (docs/ers.md)');
}

export function registerErsCommands(program: Command): void {
  const ers = ersGroup(program);

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
        if (o.passphrase || o.passphraseFd !== undefined) throw new UsageError('--passphrase and --passphrase-fd go with a new key pair, not --import-public');
        refuseExisting([`${o.out}.pub`]);
        const pub = parseErsPublicKey(readFileOrThrow(o.importPublic, 'RSA public key to import'), `--import-public ${o.importPublic}`);
        writeOutput(`${o.out}.pub`, spkiPem(pub), 0o644);
        if (o.json) out.json({ public_key: `${o.out}.pub`, fingerprint: describeFingerprint(pub.fingerprint), bits: pub.bits, private_key: null });
        else out.out(`ERS public key ${o.out}.pub (${pub.bits} bits), fingerprint ${describeFingerprint(pub.fingerprint)}`);
        return;
      }
      if (o.passphrase && o.passphraseFd !== undefined) throw new UsageError('give --passphrase or --passphrase-fd N, not both');
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
      if (o.label.length > 128) throw new UsageError('--label must be at most 128 characters');
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
    .option('--key <id>', 'key id (or --key-file)')
    .option('--nodes <urls>', 'comma-separated key node URLs (URL#KEY_ID for a node that holds the key under another id)')
    .addOption(new Option('--key-file <file>', 'the key reference `key create --out` wrote (instead of --key and --nodes): every node with its own key id and pinned fingerprint; the package must be of its group key').conflicts(['key', 'nodes']))
    .requiredOption('--ers-public <file>', 'the RSA public key (SPKI PEM)')
    .requiredOption('--out <file>', 'where to write the package (0600)')
    .option('--label <text>', 'bound into every proof (default: the key id)')
    .option('--api-key-file <file>', 'file holding the API key (0600); default $LIFEBOAT_API_KEY')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nEvery node named must make its part (name t or more that are up and allow it); a refusal or a part\nwhose proof fails stops the backup and nothing is written. The package is written 0600.\nA node refuses with ers_disabled (its ers.enabled is off), ers_disabled_for_key (the key was created\nwith --ers off) or ers_key_not_whitelisted. A key created with --ers require, or on a node with\ners.require, signs there only once this command registered its package with that node.')
    .action(async (o: { key?: string; nodes?: string; keyFile?: string; ersPublic: string; out: string; label?: string; apiKeyFile?: string; json?: boolean }) => {
      if (o.keyFile === undefined && (o.key === undefined || o.nodes === undefined)) {
        throw new UsageError('ers backup needs --key-file FILE, or --key ID and --nodes URLS', { hint: 'run `lifeboat ers backup --help` for usage' });
      }
      const ref = o.keyFile === undefined ? undefined : readKeyRefFile(o.keyFile);
      const rsa = readPublic(o.ersPublic);
      const token = apiToken(o.apiKeyFile);
      const specs = ref
        ? ref.nodes
        : o.nodes!.split(',').map((spec) => {
            const s = spec.trim();
            const i = s.lastIndexOf('#');
            return { url: i < 0 ? s : s.slice(0, i), keyId: i < 0 ? o.key! : s.slice(i + 1), fingerprint: undefined };
          });
      const nodes = specs.map((s) => ({ client: new KeyNodeClient({ url: s.url, apiKey: token, timeoutMs: 120_000 }), keyId: s.keyId }));
      // a pinned node must be the one the reference names before it is asked for a part
      await Promise.all(
        specs.map(async (s, i) => {
          if (!s.fingerprint) return;
          const id = await nodes[i]!.client.identity();
          if (id.fingerprint !== s.fingerprint) throw new LifeboatError('peer_identity_mismatch', `key node at ${s.url} has fingerprint ${id.fingerprint}, not the pinned ${s.fingerprint}; nothing was written`, { hint: 'another node answers at that URL: check it first' });
        }),
      );
      const keyId = ref?.keyId ?? o.key!;
      const { pkg, report } = await gatherPackage(nodes, rsa, o.label ?? keyId);
      if (ref && report.group_key !== ref.groupPublicKey) throw keyRefMismatch(`the nodes made a package of group key ${report.group_key}, not the reference's ${ref.groupPublicKey}; nothing was written`);
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

  registerErsVerify(ers);
  registerErsRecoverCommands(ers);
}

/** `ers verify` (also in the recovery kit, src/kit). */
export function registerErsVerify(ers: Command): void {
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
        for (const p of report.parts) out.out(`  ${p.participant}: proof ${p.proof_ok === null ? 'not checked (another RSA key)' : p.proof_ok ? 'ok' : 'FAILED'}`);
        out.out(report.ok ? 'ok: this package recovers the key' : `FAILED: ${report.problems.length} problem(s)`);
        for (const p of report.problems) out.out(`  ${p.code}: ${p.message}`);
      }
      if (!report.ok) {
        const err = reportError(report);
        process.stderr.write(`lifeboat: error: ${err.message} (${err.code})\n`);
        process.exitCode = err.safety ? 3 : 1;
      }
    });
}
