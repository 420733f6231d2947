/**
 * `lifeboat vault put|get|list|rm|info`: named secrets in the primary's encrypted vault.
 * Values come only from stdin or a hidden prompt, never from argv, and go only to a terminal, a
 * 0600 file (--out) or a stdout the user asked for (--stdout). The master key is the unsealed one
 * of the data directory, checked against the vault's fingerprint before anything is decrypted.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { ConflictError, InvalidInputError, LifeboatError, UsageError } from '../../errors.js';
import { loadMasterKey, primaryPaths, resolveDataDir, type MasterKey } from '../../primary/datadir.js';
import { ctEqual, toHex, utf8, wipe } from '../../util/bytes.js';
import { writeFileAtomic } from '../../util/files.js';
import { assertEntryName, describeEntries, wipeContents } from '../../vault/contents.js';
import { masterFingerprint, readVaultHeader } from '../../vault/format.js';
import { getEntry, openVaultFile, putEntry, readVaultFile, removeEntry, type VaultWriteGuard, type VaultWriteListener } from '../../vault/vault.js';
import { promptSecret, readStdin } from '../input.js';
import { createOutput } from '../io.js';

export interface VaultCommandDeps {
  /** Called after every successful write (put, rm) with the new vault, e.g. to push it to share holders. */
  onWrite?: VaultWriteListener;
  /** Called under the lock before every write of the vault at this path; throws to refuse it. */
  guard?: (vaultPath: string) => VaultWriteGuard;
}

interface DirOpts {
  dataDir?: string;
}

const DATA_DIR_HELP = 'data directory (default: $LIFEBOAT_DATA_DIR or ./lifeboat-data)';

/** The vault path and master key of a data directory; a missing vault is named before a sealed primary. */
function unlock(opts: DirOpts): { path: string; mk: MasterKey } {
  const paths = primaryPaths(resolveDataDir(opts.dataDir));
  readVaultHeader(readVaultFile(paths.vault));
  return { path: paths.vault, mk: loadMasterKey(paths) };
}

async function readValue(name: string): Promise<Uint8Array> {
  if (!process.stdin.isTTY) return readStdin();
  const first = await promptSecret(`value for ${name}`);
  const again = await promptSecret('again, to confirm');
  if (first !== again) throw new InvalidInputError('the two values differ', { code: 'input_mismatch', hint: 'run the command again' });
  return utf8.encode(first);
}

function writeStdout(bytes: Uint8Array): Promise<void> {
  return new Promise((res, rej) => process.stdout.write(bytes, (err) => (err ? rej(err) : res())));
}

const needsTerminal = (): LifeboatError =>
  new LifeboatError('secret_needs_terminal', 'refusing to write a secret to a non-terminal stdout', {
    hint: 'pass --stdout to pipe it on purpose, or --out FILE to write a 0600 file',
  });

function registerPut(vault: Command, deps: VaultCommandDeps): void {
  vault
    .command('put')
    .description('store a secret under NAME, read from stdin or a hidden prompt')
    .argument('<name>', 'entry name: 1 to 128 of a-z 0-9 . _ / -, starting with a letter or digit')
    .option('--data-dir <dir>', DATA_DIR_HELP)
    .option('--force', 'replace an existing entry (its old value is lost)')
    .addHelpText(
      'after',
      '\nThe value is never taken from the command line. When stdin is not a terminal, all of it is the\n' +
        "value, stored byte for byte (a trailing newline included: use `printf '%s' \"$TOKEN\"` or `< file`);\n" +
        'on a terminal a hidden prompt asks twice. ' +
        'Values are at most 1 MiB.',
    )
    .action(async (name: string, opts: DirOpts & { force?: boolean }) => {
      const out = createOutput();
      assertEntryName(name);
      const { path, mk } = unlock(opts);
      const { contents } = openVaultFile(path, mk); // fail before asking for a value that cannot be stored
      const exists = contents.entries.has(name);
      wipeContents(contents);
      if (exists && !opts.force) {
        throw new ConflictError(`an entry named ${name} already exists`, 'entry_exists', 'pass --force to replace it (the old value is lost)');
      }
      const value = await readValue(name);
      try {
        if (value.length === 0) {
          throw new InvalidInputError('refusing to store an empty value', { code: 'empty_value', hint: 'pipe the value on stdin, e.g. `lifeboat vault put NAME < file`' });
        }
        const header = await putEntry(path, mk, name, value, { replace: opts.force === true, listener: deps.onWrite, guard: deps.guard?.(path) });
        out.info(`${exists ? 'replaced' : 'stored'} ${name} (${value.length} bytes, vault generation ${header.generation})`);
      } finally {
        wipe(value);
      }
    });
}

/** `vault get` (also in the recovery kit, src/kit). */
export function registerGet(vault: Command): void {
  vault
    .command('get')
    .description('print the secret stored under NAME')
    .argument('<name>', 'entry name')
    .option('--data-dir <dir>', DATA_DIR_HELP)
    .option('--out <file>', 'write the value to FILE (mode 0600, atomically) instead of the terminal')
    .option('--stdout', 'write the value to stdout even when it is not a terminal (for scripts that pipe it on purpose)')
    .addHelpText(
      'after',
      '\nBy default the value is printed only when stdout is a terminal, so it never lands in a pipe or a\n' +
        'log by accident. --stdout and --out write the exact bytes, without an added newline.',
    )
    .action(async (name: string, opts: DirOpts & { out?: string; stdout?: boolean }) => {
      const out = createOutput();
      if (opts.out !== undefined && opts.stdout) throw new UsageError('--out and --stdout cannot be used together');
      if (opts.out === undefined && !opts.stdout && !process.stdout.isTTY) throw needsTerminal();
      const { path, mk } = unlock(opts);
      const value = getEntry(path, mk, name);
      try {
        if (opts.out !== undefined) {
          const file = resolve(opts.out);
          writeFileAtomic(file, value);
          out.info(`wrote ${name} to ${file} (${value.length} bytes, mode 0600)`);
        } else if (opts.stdout) {
          await writeStdout(value);
        } else {
          let text: string;
          try {
            text = utf8.decode(value);
          } catch {
            throw new LifeboatError('binary_value', `${name} holds binary data, which is not printed to a terminal`, { hint: 'use --out FILE' });
          }
          await writeStdout(utf8.encode(text.endsWith('\n') ? text : `${text}\n`));
        }
      } finally {
        wipe(value);
      }
    });
}

/** `vault list` (also in the recovery kit, src/kit). */
export function registerList(vault: Command): void {
  vault
    .command('list')
    .description('list entry names, sizes and update times (never values)')
    .option('--data-dir <dir>', DATA_DIR_HELP)
    .option('--json', 'print JSON: {"generation", "entries": [{"name", "size", "updated_at"}]}')
    .action((opts: DirOpts & { json?: boolean }) => {
      const out = createOutput();
      const { path, mk } = unlock(opts);
      const { header, contents } = openVaultFile(path, mk);
      const entries = describeEntries(contents);
      wipeContents(contents);
      const { generation } = header;
      if (opts.json) {
        out.json({ generation, entries: entries.map((e) => ({ name: e.name, size: e.size, updated_at: e.updatedAt })) });
        return;
      }
      if (entries.length === 0) {
        out.info('the vault is empty');
        return;
      }
      const width = Math.max(4, ...entries.map((e) => e.name.length));
      const sizeWidth = Math.max(4, ...entries.map((e) => String(e.size).length));
      out.out(`${'NAME'.padEnd(width)}  ${'SIZE'.padStart(sizeWidth)}  UPDATED`);
      for (const e of entries) out.out(`${e.name.padEnd(width)}  ${String(e.size).padStart(sizeWidth)}  ${e.updatedAt}`);
    });
}

function registerRm(vault: Command, deps: VaultCommandDeps): void {
  vault
    .command('rm')
    .description('remove the entry NAME')
    .argument('<name>', 'entry name')
    .option('--data-dir <dir>', DATA_DIR_HELP)
    .action(async (name: string, opts: DirOpts) => {
      const out = createOutput();
      assertEntryName(name);
      const { path, mk } = unlock(opts);
      const header = await removeEntry(path, mk, name, { listener: deps.onWrite, guard: deps.guard?.(path) });
      out.info(`removed ${name} (vault generation ${header.generation})`);
    });
}

function registerInfo(vault: Command): void {
  vault
    .command('info')
    .description('show the vault header (scheme, generation, time); needs no key')
    .option('--data-dir <dir>', DATA_DIR_HELP)
    .option('--json', 'print JSON')
    .action((opts: DirOpts & { json?: boolean }) => {
      const out = createOutput();
      const paths = primaryPaths(resolveDataDir(opts.dataDir));
      const h = readVaultHeader(readVaultFile(paths.vault));
      let masterKey: 'matches' | 'does_not_match' | 'not_loaded' = 'not_loaded';
      try {
        const mk = loadMasterKey(paths);
        const fp = masterFingerprint(mk.key, h.schemeId);
        masterKey = ctEqual(fp, h.fingerprint) && ctEqual(mk.schemeId, h.schemeId) ? 'matches' : 'does_not_match';
        wipe(fp, mk.key);
      } catch (err) {
        if (!(err instanceof LifeboatError && err.code === 'sealed')) throw err;
      }
      const info = {
        path: paths.vault,
        scheme_id: toHex(h.schemeId),
        generation: h.generation,
        created_at: new Date(h.createdAt).toISOString(),
        master_fingerprint: toHex(h.fingerprint),
        master_key: masterKey,
      };
      if (opts.json) out.json(info);
      else for (const [k, v] of Object.entries(info)) out.out(`${k.padEnd(18)} ${v}`);
    });
}

/** The `vault` group, without its commands. */
export function vaultGroup(program: Command): Command {
  return program.command('vault').description('named secrets in the encrypted vault (backup key, storage key, API tokens)');
}

/** Registers `lifeboat vault ...`. `deps.onWrite` is called after every successful write. */
export function registerVaultCommands(program: Command, deps: VaultCommandDeps = {}): void {
  const vault = vaultGroup(program);
  registerPut(vault, deps);
  registerGet(vault);
  registerList(vault);
  registerRm(vault, deps);
  registerInfo(vault);
}
