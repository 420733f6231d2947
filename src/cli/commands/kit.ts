/**
 * `lifeboat kit keygen | sign | verify`: the recovery kit's release signature (docs/kit.md). The release
 * key is a vault secret of the primary; `sign` writes the hash file and its signature beside the kit
 * (`npm run build:kit` made it); `verify` checks them, here and in the kit itself (src/kit).
 */
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import type { Command } from 'commander';
import { InvalidInputError, NotFoundError } from '../../errors.js';
import { generateSigningKeyPair } from '../../crypto/sign.js';
import { finishPendingCommit } from '../../primary/commit.js';
import { loadMasterKey, primaryPaths, resolveDataDir } from '../../primary/datadir.js';
import { readFileOrThrow, writeFileAtomic } from '../../util/files.js';
import { wipe } from '../../util/bytes.js';
import { getEntry, putEntry, readVaultFile } from '../../vault/vault.js';
import { readVaultHeader } from '../../vault/format.js';
import { encodeHashFile, encodeKitPublicKey, encodeKitSignature, HASH_FILE, KIT_FILES, kitKeyFingerprint, parseKitPublicKey, RELEASE_KEY_ENTRY, SIGNATURE_FILE, signHashFile, verifyKitRelease } from '../../kit/release.js';
import { createOutput } from '../io.js';
import { DATA_DIR_HELP } from '../options.js';
import type { VaultCommandDeps } from './vault.js';

/** The `kit` group, without its commands. */
export function kitGroup(program: Command): Command {
  return program.command('kit').description('the recovery kit\'s release signature: a release key in the vault signs the kit\'s hashes (docs/kit.md)');
}

/** Registers `lifeboat kit keygen | sign | verify`; `deps` as the vault's (a new key is pushed to the holders). */
export function registerKitCommands(program: Command, deps: VaultCommandDeps = {}): void {
  const kit = kitGroup(program);
  registerKeygen(kit, deps);
  registerSign(kit);
  registerKitVerify(kit);
}

const ENTRY_HELP = `vault entry of the release key (default: ${RELEASE_KEY_ENTRY})`;

/** The vault of the data directory and its master key; an interrupted commit is finished first. */
function unlock(dataDir: string | undefined) {
  const paths = primaryPaths(resolveDataDir(dataDir));
  finishPendingCommit(paths);
  readVaultHeader(readVaultFile(paths.vault));
  return { path: paths.vault, mk: loadMasterKey(paths) };
}

function registerKeygen(kit: Command, deps: VaultCommandDeps): void {
  kit
    .command('keygen')
    .description('make the kit release key (Ed25519), keep it as a vault secret, and print its public key')
    .option('--name <entry>', ENTRY_HELP, RELEASE_KEY_ENTRY)
    .option('--data-dir <dir>', DATA_DIR_HELP)
    .option('--json', 'print JSON')
    .addHelpText('after', '\nAn existing release key is never replaced (entry_exists): every kit signed with it would stop\nverifying. Publish the public key where the people who carry the kit can compare it.')
    .action(async (o: { name: string; dataDir?: string; json?: boolean }) => {
      const { path, mk } = unlock(o.dataDir);
      const kp = generateSigningKeyPair();
      try {
        await putEntry(path, mk, o.name, kp.secretKey, { replace: false, listener: deps.onWrite, guard: deps.guard?.(path) });
      } finally {
        wipe(kp.secretKey);
      }
      const out = createOutput();
      const key = encodeKitPublicKey(kp.publicKey);
      if (o.json) out.json({ ok: true, public_key: key, fingerprint: kitKeyFingerprint(kp.publicKey), entry: o.name });
      else {
        out.out(`kit release key: ${key}`);
        out.out(`fingerprint:     ${kitKeyFingerprint(kp.publicKey)} (vault entry ${o.name})`);
      }
    });
}

function registerSign(kit: Command): void {
  kit
    .command('sign')
    .description(`write ${HASH_FILE} (SHA-256 of the kit files) and its signature ${SIGNATURE_FILE} in DIR, with the release key`)
    .requiredOption('--dir <dir>', 'the directory `npm run build:kit` wrote the kit to (dist)')
    .option('--name <entry>', ENTRY_HELP, RELEASE_KEY_ENTRY)
    .option('--data-dir <dir>', DATA_DIR_HELP)
    .option('--json', 'print JSON')
    .action((o: { dir: string; name: string; dataDir?: string; json?: boolean }) => {
      const present = KIT_FILES.filter((f) => existsSync(join(o.dir, f)));
      if (!present.includes('lifeboat-kit')) throw new NotFoundError(`${join(o.dir, 'lifeboat-kit')} does not exist`, 'file_not_found', 'run `npm run build:kit` first');
      const lines = present.map((name) => ({ name, sha256: sha256(readFileOrThrow(join(o.dir, name), 'kit file')) }));
      const hashFile = encodeHashFile(lines);
      const { path, mk } = unlock(o.dataDir);
      const seed = getEntry(path, mk, o.name);
      let signature;
      try {
        if (seed.length !== 32) throw new InvalidInputError(`vault entry ${o.name} is not a kit release key (32 bytes)`, { code: 'invalid_kit_key', hint: 'make one with `lifeboat kit keygen`' });
        signature = signHashFile(hashFile, seed);
      } finally {
        wipe(seed);
      }
      writeFileAtomic(join(o.dir, HASH_FILE), hashFile, 0o644);
      writeFileAtomic(join(o.dir, SIGNATURE_FILE), encodeKitSignature(signature), 0o644);
      const out = createOutput();
      const key = encodeKitPublicKey(signature.publicKey);
      if (o.json) out.json({ ok: true, files: present, hash_file: join(o.dir, HASH_FILE), signature_file: join(o.dir, SIGNATURE_FILE), public_key: key });
      else out.out(`signed ${present.join(', ')}: ${join(o.dir, HASH_FILE)} and ${join(o.dir, SIGNATURE_FILE)} (release key ${kitKeyFingerprint(signature.publicKey)})`);
    });
}

/**
 * `kit verify`. `self` is the running kit's own file (in the kit); without it, FILE is required.
 */
export function registerKitVerify(kit: Command, self?: string): void {
  kit
    .command('verify')
    .description(`check a kit file against ${HASH_FILE} and its signature beside it, under the release public key`)
    .argument(self ? '[file]' : '<file>', self ? 'the kit file (default: this kit itself)' : 'the kit file (lifeboat-kit or lifeboat-kit.mjs)')
    .requiredOption('--public-key <key>', 'the release public key (lbkit1.…) `lifeboat kit keygen` printed')
    .option('--sha256 <file>', `the hash file (default: ${HASH_FILE} beside the kit)`)
    .option('--signature <file>', `the signature file (default: ${SIGNATURE_FILE} beside the hash file)`)
    .option('--name <name>', 'the name the hash file lists the kit under (default: the file\'s own name)')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nRefusals for safety (exit 3): kit_key_mismatch (signed by another key), kit_signature_invalid (the hash\nfile or signature was altered), kit_not_listed, kit_hash_mismatch (the kit was altered). Do not run a kit\nthat fails: get another copy.')
    .action((fileArg: string | undefined, o: { publicKey: string; sha256?: string; signature?: string; name?: string; json?: boolean }) => {
      const file = resolve(fileArg ?? self!);
      const publicKey = parseKitPublicKey(o.publicKey);
      const hashPath = o.sha256 ?? join(dirname(file), HASH_FILE);
      const sigPath = o.signature ?? `${hashPath}.sig`;
      const name = o.name ?? basename(file);
      const r = verifyKitRelease({
        file: readFileOrThrow(file, 'kit file'),
        name,
        hashFile: readFileOrThrow(hashPath, 'kit hash file', 'it comes with the kit: carry lifeboat-kit.sha256 and its .sig beside it'),
        signatureFile: readFileOrThrow(sigPath, 'kit signature file', 'it comes with the kit: carry lifeboat-kit.sha256 and its .sig beside it'),
        publicKey,
      });
      const out = createOutput();
      if (o.json) out.json({ ok: true, file, name, sha256: r.sha256, release_key: r.fingerprint });
      else out.out(`ok: ${file} is the signed ${name} (sha256 ${r.sha256}, release key ${r.fingerprint})`);
    });
}
