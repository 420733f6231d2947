/**
 * Identities and unsealing: `lifeboat primary init|show`, `lifeboat operator keygen|show`,
 * `lifeboat unseal`, `lifeboat seal`.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { ConflictError, InvalidInputError, UsageError } from '../../errors.js';
import { encodePublicIdentity, generateIdentity, identityFingerprint, loadIdentity, saveIdentity } from '../../identity.js';
import { dropMasterKey, primaryPaths, type PrimaryPaths, resolveDataDir } from '../../primary/datadir.js';
import { confirmReachable, unseal } from '../../recovery/reconstruct.js';
import { manifestHolders } from '../../recovery/rotate.js';
import { readManifestFile } from '../../recovery/sources.js';
import { ctEqual, utf8 } from '../../util/bytes.js';
import { ensurePrivateDir, readFileOrThrow } from '../../util/files.js';
import { createOutput } from '../io.js';
import { promptSecret, promptsHelp } from '../input.js';
import { DATA_DIR_HELP, intIn } from '../options.js';
import { loadOperatorKey, readPassphraseFd } from './operator-key.js';
import { addCeremonyOptions, CEREMONY_HELP, type CeremonyOpts, runCeremony } from './unseal-ceremony.js';

/** Reads `n` shares from a hidden prompt (terminal) or stdin lines (scripts). */
export async function readTypedShares(n: number, what = 'offline share'): Promise<string[]> {
  const out: string[] = [];
  for (let i = 1; i <= n; i++) out.push(await promptSecret(`${what} ${i} of ${n} (words)`));
  return out;
}

export interface UnsealOpts {
  dataDir?: string;
  typedShares: number;
  holders: boolean;
  passphrase?: boolean;
  json?: boolean;
}

/**
 * `lifeboat unseal` on a data directory laid out as a primary's (a primary's, or a key node's whose vault
 * key is split, `node unseal`): holders release to the directory's identity, typed shares fill in.
 */
export async function unsealDataDir(paths: PrimaryPaths, o: UnsealOpts, done: string): Promise<void> {
  const out = createOutput({ quiet: o.json });
  const id = loadIdentity(paths.identity, 'primary');
  const manifest = readManifestFile(paths.manifest);
  const vault = readFileOrThrow(paths.vault, 'vault', 'run `lifeboat recovery init` or `recovery reconstruct` first');
  const typed = await readTypedShares(o.typedShares, 'share');
  const passphrase = o.passphrase ? await promptSecret('SLIP-0039 passphrase') : undefined;
  const holders = o.holders ? await confirmReachable(manifestHolders(manifest), id, out.warn) : [];
  if (!o.holders && typed.length === 0) throw new UsageError('no share source: --no-holders needs --typed-shares N');
  const r = await unseal({ paths, primary: id, manifest, vault, holders, typed, passphrase, progress: out.info });
  if (o.json) out.json({ ok: true, scheme_id: manifest.scheme_id, entries: r.entries, shares_from: r.sharesFrom });
  else out.out(`${done}: vault of scheme ${manifest.scheme_id} opens (${r.entries} entries); shares from ${r.sharesFrom.join(', ')}`);
}

export function registerPrimaryCommands(program: Command): void {
  const primary = program.command('primary').description('the primary server identity');
  primary
    .command('init')
    .description('create the primary identity (holders enrol its public key)')
    .option('--data-dir <dir>', DATA_DIR_HELP)
    .option('--json', 'print JSON')
    .action((o: { dataDir?: string; json?: boolean }) => {
      const paths = primaryPaths(resolveDataDir(o.dataDir));
      if (existsSync(paths.identity)) throw new ConflictError(`a primary identity already exists at ${paths.identity}`, 'identity_exists', 'use `lifeboat primary show`');
      ensurePrivateDir(paths.dir);
      const id = generateIdentity('primary');
      saveIdentity(paths.identity, id);
      printIdentity(o.json, encodePublicIdentity(id), identityFingerprint(id), paths.identity);
    });
  primary
    .command('show')
    .description('print the primary public identity and fingerprint')
    .option('--data-dir <dir>', DATA_DIR_HELP)
    .option('--json', 'print JSON')
    .action((o: { dataDir?: string; json?: boolean }) => {
      const paths = primaryPaths(resolveDataDir(o.dataDir));
      const id = loadIdentity(paths.identity, 'primary');
      printIdentity(o.json, encodePublicIdentity(id), identityFingerprint(id), paths.identity);
    });

  const operator = program.command('operator').description("an operator's signing identity (authorises share releases)");
  operator
    .command('keygen')
    .description('create an operator identity file (0600); keep it off the primary')
    .requiredOption('--out <file>', 'where to write the identity file')
    .option('--passphrase', 'encrypt the file under a passphrase (age scrypt; prompted, twice on a terminal)')
    .option('--passphrase-fd <fd>', 'encrypt the file under the passphrase read from this file descriptor', intIn(0, 1023))
    .option('--json', 'print JSON')
    .addHelpText('after', `\nWith --passphrase or --passphrase-fd the file is an armored age file (scrypt, work factor 2^18): \`age -d\`\nopens it, and every command that reads it (--operator-key) asks for the passphrase, or reads it\nfrom --operator-passphrase-fd N. At least 8 characters.${promptsHelp(['with --passphrase: the passphrase; on a terminal, asked twice'])}`)
    .action(async (o: { out: string; passphrase?: boolean; passphraseFd?: number; json?: boolean }) => {
      if (o.passphrase && o.passphraseFd !== undefined) throw new UsageError('give --passphrase or --passphrase-fd N, not both');
      if (existsSync(o.out)) throw new ConflictError(`${o.out} already exists`, 'identity_exists');
      const id = generateIdentity('operator');
      const passphrase = o.passphraseFd !== undefined ? readPassphraseFd(o.passphraseFd) : o.passphrase ? await newPassphrase() : undefined;
      if (passphrase === undefined) saveIdentity(o.out, id);
      else await (await import('../../identity-age.js')).saveIdentityEncrypted(o.out, id, passphrase);
      printIdentity(o.json, encodePublicIdentity(id), identityFingerprint(id), o.out, passphrase !== undefined);
    });
  operator
    .command('show')
    .description('print an operator public identity and fingerprint')
    .requiredOption('--key <file>', 'operator identity file')
    .option('--passphrase-fd <fd>', 'read the passphrase of an encrypted key file from this file descriptor', intIn(0, 1023))
    .option('--json', 'print JSON')
    .addHelpText('after', promptsHelp(['for a key encrypted under a passphrase, without --passphrase-fd: its passphrase']))
    .action(async (o: { key: string; passphraseFd?: number; json?: boolean }) => {
      const id = await loadOperatorKey(o.key, o.passphraseFd);
      printIdentity(o.json, encodePublicIdentity(id), identityFingerprint(id), o.key);
    });

  const unsealCmd = program
    .command('unseal')
    .description('load the master key: holders release to this primary, typed shares fill in; or a ceremony, one keyholder at a time (--begin, --step, --add, --reset)')
    .option('--data-dir <dir>', DATA_DIR_HELP)
    .option('--typed-shares <n>', 'number of shares to type (hidden prompt, or stdin lines)', intIn(0, 16), 0)
    .option('--no-holders', 'do not ask holders; use typed shares only')
    .option('--passphrase', 'the shares were made with a SLIP-0039 passphrase (prompted)')
    .option('--json', 'print JSON');
  addCeremonyOptions(unsealCmd)
    .addHelpText('after', promptsHelp(['with --typed-shares N: share 1 (its words), then share 2, … up to N; with --step: your share', 'with --passphrase: the SLIP-0039 passphrase']) + CEREMONY_HELP)
    .action(async (o: UnsealOpts & CeremonyOpts) => {
      if (!(await runCeremony(o))) await unsealDataDir(primaryPaths(resolveDataDir(o.dataDir)), o, 'unsealed');
    });

  program
    .command('seal')
    .description('forget the master key on this primary (overwrite and remove the unsealed key file)')
    .option('--data-dir <dir>', DATA_DIR_HELP)
    .option('--json', 'print JSON')
    .action((o: { dataDir?: string; json?: boolean }) => {
      const removed = dropMasterKey(primaryPaths(resolveDataDir(o.dataDir)));
      const out = createOutput();
      if (o.json) out.json({ ok: true, was_unsealed: removed });
      else out.out(removed ? 'sealed: the master key was removed' : 'already sealed');
    });
}

/** A new passphrase: asked twice on a terminal, once from stdin. Throws `passphrase_mismatch`. */
async function newPassphrase(): Promise<string> {
  const first = await promptSecret('passphrase for the operator key');
  if (!process.stdin.isTTY) return first;
  const again = await promptSecret('the same passphrase again');
  if (!ctEqual(utf8.encode(first), utf8.encode(again))) throw new InvalidInputError('the two passphrases differ; nothing was written', { code: 'passphrase_mismatch' });
  return first;
}

function printIdentity(json: boolean | undefined, token: string, fp: string, file: string, encrypted?: boolean): void {
  const out = createOutput();
  if (json) out.json(encrypted === undefined ? { identity: token, fingerprint: fp, file } : { identity: token, fingerprint: fp, file, encrypted });
  else {
    out.out(`identity:    ${token}`);
    out.out(`fingerprint: ${fp}`);
  }
}
