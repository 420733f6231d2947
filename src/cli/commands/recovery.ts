/**
 * `lifeboat recovery init | verify | request | reconstruct | rotate | sync`: split the vault's master
 * key among share holders and offline shares, check the split, and rebuild a primary from it.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { InvalidInputError } from '../../errors.js';
import { encodePublicIdentity, identityFingerprint, loadIdentity } from '../../identity.js';
import { loadMasterKey, primaryPaths, resolveDataDir } from '../../primary/datadir.js';
import { parseHolderSpec } from '../../recovery/holders.js';
import { checkSplitPlan, recoveryInit } from '../../recovery/init.js';
import { rotate } from '../../recovery/rotate.js';
import { syncVault } from '../../recovery/sync.js';
import { readManifestFile } from '../../recovery/sources.js';
import type { AgeDelivery } from '../../recovery/age-delivery.js';
import type { Manifest } from '../../recovery/manifest.js';
import { verifyRecovery } from '../../recovery/verify.js';
import { recordLastVerify } from '../../recovery/last-verify.js';
import { readFileOrThrow } from '../../util/files.js';
import { toHex } from '../../util/bytes.js';
import { createOutput, EXIT, writeSecret } from '../io.js';
import { promptSecret, promptsHelp } from '../input.js';
import { asUsage, collect, DATA_DIR_HELP, intIn } from '../options.js';
import { readTypedShares } from './primary.js';
import { registerReconstructCommands } from './reconstruct.js';
import { addOperatorPassphraseOption, loadOperatorKey, OPERATOR_PASSPHRASE_PROMPT } from './operator-key.js';
import { addAgeOptions, AGE_HELP, type AgeOpts, deliverSharesToAge, prepareAgeDelivery } from './recovery-age.js';
import { addShareOutputOptions, checkShareOutputs, readShareQrFiles, SHEET_HELP, type ShareOutputOpts, writeShareOutputs } from './recovery-sheet.js';

/**
 * Shows offline shares once: words numbered for copying by hand, or plain lines to a chosen fd. The
 * terminal copy ends with the primary's fingerprint, to be written on the same paper: on the worst day
 * `recovery reconstruct --primary-fingerprint` refuses a manifest signed by anyone else.
 */
export function showOfflineShares(mnemonics: string[], fd: number | undefined, threshold: number, primaryFingerprint: string): void {
  if (fd !== undefined) {
    writeSecret(mnemonics.join('\n'), fd);
    return;
  }
  const blocks = mnemonics.map((m, i) => {
    const words = m.split(' ');
    const rows: string[] = [];
    for (let r = 0; r < words.length; r += 4) {
      rows.push(words.slice(r, r + 4).map((w, j) => `${String(r + j + 1).padStart(2)}. ${w.padEnd(10)}`).join(' '));
    }
    return `offline share ${i + 1} of ${mnemonics.length} (${threshold} shares open the vault):\n${rows.join('\n')}`;
  });
  writeSecret(
    `\n${blocks.join('\n\n')}\n\nprimary fingerprint (write it on the same paper): ${primaryFingerprint}\n\nwrite it down now, on paper or in a password manager: it is shown only this once, is not stored anywhere, and no command can show it again\n`,
    undefined,
  );
}

/** Shows the offline shares (terminal, --secret-fd, sheet, QR) or writes them encrypted to their age recipients. */
async function showOrDeliver(mnemonics: string[], o: ShareOutputOpts, age: AgeDelivery[] | undefined, manifest: Manifest, fp: string, info: (line: string) => void): Promise<void> {
  if (age) {
    await deliverSharesToAge(mnemonics, age);
    for (const [i, d] of age.entries()) info(`offline share ${i + 1} of ${age.length} encrypted to ${d.recipient.slice(0, 16)}… in ${d.file} (open it with \`age -d\`); primary fingerprint: ${fp}`);
    return;
  }
  showOfflineShares(mnemonics, o.secretFd, manifest.threshold, fp);
  await writeShareOutputs(o, { mnemonics, manifest, primaryFingerprint: fp }, info);
}

function parsePlan(o: { threshold: number; shares?: number }, holders: number): { threshold: number; shareCount: number } {
  return { threshold: o.threshold, shareCount: o.shares ?? holders + 1 };
}

/** The `recovery` group, without its commands. */
export function recoveryGroup(program: Command): Command {
  return program.command('recovery').description("split, check and rebuild the vault's master key");
}

export function registerRecoveryCommands(program: Command): void {
  const recovery = recoveryGroup(program);

  const init = recovery
    .command('init')
    .description('create the vault and split its master key: one sealed share per holder, the rest printed once')
    .requiredOption('--holder <url#fingerprint>', 'a share holder, confirmed by its fingerprint (repeat)', collect)
    .option('--operator <identity>', 'an operator identity (lb1.…) recorded in the manifest (repeat)', collect, [])
    .option('--threshold <t>', 'shares needed to recover', intIn(2, 16), 2)
    .option('--shares <n>', 'total shares (default: holders + 1 offline share)', intIn(2, 16))
    .option('--passphrase', 'protect the shares with a SLIP-0039 passphrase (prompted)')
    .option('--secret-fd <fd>', 'write the offline shares to this file descriptor instead of the terminal', intIn(3, 1023));
  addAgeOptions(addShareOutputOptions(init))
    .option('--data-dir <dir>', DATA_DIR_HELP)
    .option('--json', 'print the manifest summary as JSON (offline shares still go to the terminal, --secret-fd or --offline-out)')
    .addHelpText('after', promptsHelp(['with --passphrase: the SLIP-0039 passphrase for the shares']) + SHEET_HELP + AGE_HELP)
    .action(async (o: ShareOutputOpts & AgeOpts & { holder: string[]; operator: string[]; threshold: number; shares?: number; passphrase?: boolean; dataDir?: string; json?: boolean }) => {
      const out = createOutput({ quiet: o.json });
      const holders = o.holder.map(parseHolderSpec);
      const plan = parsePlan(o, holders.length);
      asUsage(() => checkSplitPlan(plan, holders.length));
      const age = prepareAgeDelivery(o, plan.shareCount - holders.length);
      if (!age && o.secretFd === undefined && !process.stdout.isTTY) {
        throw new InvalidInputError('the offline share must go to a terminal', { code: 'secret_needs_terminal', hint: 'run in a terminal, or pass --secret-fd N' });
      }
      const paths = primaryPaths(resolveDataDir(o.dataDir));
      const primary = loadIdentity(paths.identity, 'primary');
      checkShareOutputs(o, plan.shareCount - holders.length);
      const passphrase = o.passphrase ? await promptSecret('SLIP-0039 passphrase for the shares') : undefined;
      const r = await recoveryInit({ paths, primary, holders, operators: o.operator, plan, passphrase, progress: out.info });
      const fp = identityFingerprint(primary);
      await showOrDeliver(r.offlineMnemonics, o, age, r.manifest, fp, out.info);
      if (o.json) out.json({ ok: true, scheme_id: r.manifest.scheme_id, threshold: r.manifest.threshold, share_count: r.manifest.share_count, manifest: paths.manifest, primary_fingerprint: fp, offline_shares_to: age ?? [] });
      else {
        out.out(`recovery scheme ${r.manifest.scheme_id}: ${r.manifest.threshold} of ${r.manifest.share_count}; manifest at ${paths.manifest}`);
        out.out(`primary fingerprint: ${fp} (keep it with the offline share, for \`recovery reconstruct --primary-fingerprint\`)`);
      }
    });

  registerRecoveryVerify(recovery);
  registerRecoveryRotateSync(recovery);
  registerReconstructCommands(recovery);
}

/** `recovery verify` (also in the recovery kit, src/kit). */
export function registerRecoveryVerify(recovery: Command): void {
  const cmd = recovery
    .command('verify')
    .description('challenge every holder to prove it still holds its share; optionally check typed offline shares')
    .option('--offline-shares <n>', 'also check this many typed offline shares (not combined)', intIn(0, 16), 0)
    .option('--share-qr <file>', 'also check the offline share in this QR code image (PNG), e.g. a scan of the recovery sheet (repeat)', collect, [])
    .option('--manifest <file>', 'manifest to check against (default: the data dir)')
    .option('--operator-key <file>', 'sign the challenges as this operator (default: the primary identity)')
    .option('--no-holders', 'ask no holder: only check the offline shares (typed or --share-qr) against the manifest (offline, e.g. with the recovery kit)')
    .option('--data-dir <dir>', DATA_DIR_HELP)
    .option('--json', 'print JSON');
  addOperatorPassphraseOption(cmd)
    .addHelpText('after', promptsHelp([OPERATOR_PASSPHRASE_PROMPT, 'with --offline-shares N: offline share 1 (its words), then share 2, … up to N']))
    .action(async (o: { operatorPassphraseFd?: number; offlineShares: number; shareQr: string[]; manifest?: string; operatorKey?: string; holders: boolean; dataDir?: string; json?: boolean }) => {
      const out = createOutput({ quiet: o.json });
      const paths = primaryPaths(resolveDataDir(o.dataDir));
      if (!o.holders && o.offlineShares === 0 && o.shareQr.length === 0) throw new InvalidInputError('--no-holders checks offline shares only: give --offline-shares N or --share-qr FILE');
      const manifest = readManifestFile(o.manifest ?? paths.manifest);
      const signer = !o.holders ? undefined : o.operatorKey ? await loadOperatorKey(o.operatorKey, o.operatorPassphraseFd) : loadIdentity(paths.identity, 'primary');
      const offline = [...(await readShareQrFiles(o.shareQr)), ...(await readTypedShares(o.offlineShares))];
      const localVault = existsSync(paths.vault) ? readFileOrThrow(paths.vault, 'vault') : undefined;
      // Unsealed, the holders' copies are authenticated too (a copy that does not open is reported).
      const mk = existsSync(paths.masterKey) ? loadMasterKey(paths) : undefined;
      const master = mk && toHex(mk.schemeId) === manifest.scheme_id ? mk.key : undefined;
      const report = await verifyRecovery({ manifest, signer, offlineShares: offline, localVault, master });
      if (existsSync(paths.dir)) recordLastVerify(paths.dir, report); // read by `lifeboat coverage` (docs/coverage.md)
      if (o.json) out.json(report);
      else {
        for (const c of report.checks) {
          const where = c.kind === 'holder' ? `holder ${c.url}` : 'typed offline share';
          out.out(`${c.ok ? 'ok  ' : 'FAIL'} member ${c.member || '?'} ${where}${c.ok ? '' : `: ${c.code}: ${c.message}`} (${c.ms} ms)`);
        }
        out.out(report.ok ? `scheme ${report.schemeId}: every check passed` : `scheme ${report.schemeId}: some checks failed`);
      }
      if (!report.ok) process.exitCode = report.checks.some((c) => !c.ok && c.safety) ? EXIT.safety : EXIT.failed;
    });
}

function registerRecoveryRotateSync(recovery: Command): void {
  const rotateCmd = recovery
    .command('rotate')
    .description('new master key and shares; the vault is re-encrypted and the old shares open nothing any more')
    .option('--holder <url#fingerprint>', 'replace the holders (repeat); default: the current ones', collect)
    .option('--threshold <t>', 'new threshold (default: unchanged)', intIn(2, 16))
    .option('--shares <n>', 'new share count (default: unchanged)', intIn(2, 16))
    .option('--passphrase', 'protect the new shares with a SLIP-0039 passphrase (prompted)')
    .option('--secret-fd <fd>', 'write the new offline shares to this file descriptor instead of the terminal', intIn(3, 1023));
  addAgeOptions(addShareOutputOptions(rotateCmd))
    .option('--data-dir <dir>', DATA_DIR_HELP)
    .option('--json', 'print JSON (offline shares still go to the terminal, --secret-fd or --offline-out)')
    .addHelpText('after', promptsHelp(['with --passphrase: the SLIP-0039 passphrase for the new shares']) + SHEET_HELP + AGE_HELP)
    .action(async (o: ShareOutputOpts & AgeOpts & { holder?: string[]; threshold?: number; shares?: number; passphrase?: boolean; dataDir?: string; json?: boolean }) => {
      const out = createOutput({ quiet: o.json });
      if (o.offlineRecipient.length === 0 && o.secretFd === undefined && !process.stdout.isTTY) {
        throw new InvalidInputError('the offline share must go to a terminal', { code: 'secret_needs_terminal', hint: 'run in a terminal, or pass --secret-fd N or --offline-recipient age1…' });
      }
      const paths = primaryPaths(resolveDataDir(o.dataDir));
      const primary = loadIdentity(paths.identity, 'primary');
      const manifest = readManifestFile(paths.manifest);
      const vault = readFileOrThrow(paths.vault, 'vault');
      const master = loadMasterKey(paths);
      const holders = o.holder?.map(parseHolderSpec);
      const count = holders?.length ?? manifest.members.filter((m) => m.kind === 'holder').length;
      const plan = o.threshold || o.shares || holders ? { threshold: o.threshold ?? manifest.threshold, shareCount: o.shares ?? (holders ? count + 1 : manifest.share_count) } : undefined;
      if (plan) asUsage(() => checkSplitPlan(plan, count));
      const age = prepareAgeDelivery(o, (plan?.shareCount ?? manifest.share_count) - count);
      checkShareOutputs(o, (plan?.shareCount ?? manifest.share_count) - count);
      const passphrase = o.passphrase ? await promptSecret('SLIP-0039 passphrase for the new shares') : undefined;
      const r = await rotate({ paths, primary, current: { manifest, vault, master }, holders, plan, passphrase, progress: out.info });
      const fp = identityFingerprint(primary);
      await showOrDeliver(r.offlineMnemonics, o, age, r.manifest, fp, out.info);
      for (const f of r.oldSchemeLeftOn) out.warn(`old scheme ${r.oldSchemeId} not removed from ${f}; it opens nothing, remove it when the holder is back`);
      if (o.json) out.json({ ok: true, offline_shares_to: age ?? [], scheme_id: r.manifest.scheme_id, old_scheme_id: r.oldSchemeId, old_scheme_left_on: r.oldSchemeLeftOn, primary_fingerprint: fp });
      else {
        out.out(`rotated: scheme ${r.oldSchemeId} -> ${r.manifest.scheme_id}; the old shares open nothing any more`);
        out.out(`primary fingerprint: ${fp} (keep it with the new offline share, for \`recovery reconstruct --primary-fingerprint\`)`);
      }
    });

  recovery
    .command('sync')
    .description('bring the primary and every holder to one newest vault: pull a newer copy a holder has, merge a fork with --merge, then push')
    .addHelpText(
      'after',
      '\nRun it after a holder was down during `vault put`, after restoring the primary\'s vault file from a\n' +
        'backup, and when a holder that a reconstruct could not reach is back (enrol the new primary there\n' +
        'first: `lifeboat holder enrol --primary <new primary>` on that holder). A holder copy counts only if it\n' +
        'opens under the master (the primary must be unsealed):\n' +
        '  - a newer copy that holds every entry of the primary\'s vault replaces it (a rolled-back file);\n' +
        '  - a copy with entries the primary lacks while the primary has entries it lacks is a fork: refused\n' +
        '    (vault_forked, exit 3) unless --merge, which writes one vault with the newest entry of every name\n' +
        '    from every side as the next generation (an entry removed on one side comes back: check the list).',
    )
    .option('--merge', 'merge a forked vault: the newest entry of every name from the primary and every holder copy')
    .option('--data-dir <dir>', DATA_DIR_HELP)
    .option('--json', 'print JSON')
    .action(async (o: { merge?: boolean; dataDir?: string; json?: boolean }) => {
      const out = createOutput({ quiet: o.json });
      const paths = primaryPaths(resolveDataDir(o.dataDir));
      const r = await syncVault({ paths, primary: loadIdentity(paths.identity, 'primary'), manifest: readManifestFile(paths.manifest), loadMaster: () => loadMasterKey(paths), merge: o.merge, warn: out.warn });
      if (o.json) {
        out.json({ ok: r.failures.length === 0, generation: r.generation, pulled_from: r.pulled?.from ?? null, merged_from: r.merged?.from ?? [], merged_names: r.merged?.differed ?? [], failures: r.failures });
      } else {
        if (r.pulled) out.out(`pulled vault generation ${r.pulled.generation} from ${r.pulled.from}: the primary's copy was older`);
        if (r.merged) out.out(`merged the forked copies of ${r.merged.from.join(', ')} into generation ${r.generation}${r.merged.differed.length ? `; names that differed (newest kept): ${r.merged.differed.join(', ')}` : ''}`);
        out.out(r.failures.length ? `not pushed to: ${r.failures.join('; ')}` : `every holder has the current vault (generation ${r.generation})`);
      }
      if (r.failures.some((f) => f.includes(': not_enrolled'))) {
        out.warn(`a holder does not know this primary (after a reconstruct it could not reach): on that holder run \`lifeboat holder enrol --primary ${encodePublicIdentity(loadIdentity(paths.identity, 'primary'))}\``);
      }
      if (r.failures.length) process.exitCode = 1;
    });
}
