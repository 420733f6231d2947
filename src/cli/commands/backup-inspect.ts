/**
 * `lifeboat backup snapshots` and `lifeboat backup check` (docs/backup.md, "Snapshots and the log
 * range", "Checking a stream"): what a stream on the backup service offers a restore, and whether all
 * of it still verifies, from any machine with the account's password (or wallet). Nothing is written.
 */
import type { Command } from 'commander';
import { checkBackupStream } from '../../backup/check.js';
import { checkName } from '../../backup/format.js';
import { clientSource, withStreamSession } from '../../backup/node-link.js';
import { listSnapshots, type StreamSnapshots } from '../../backup/snapshots.js';
import { promptSecret, promptsHelp } from '../input.js';
import { createOutput } from '../io.js';
import { addPasswordOptions, PASSWORD_HELP, type PasswordOpts, waitOutLoginLimits } from '../password.js';
import { progressLine } from '../progress.js';
import { accountSecretOf, addWalletOptions, checkServer, totpOf, WALLET_HELP, type WalletOpts } from './wallet-options.js';

interface AccessOpts extends WalletOpts, PasswordOpts {
  backupServer: string;
  account: string;
  stream?: string;
  restoreToken?: boolean;
  totp?: boolean;
  json?: boolean;
}

function accessCommand(cmd: Command): Command {
  cmd
    .requiredOption('--backup-server <url>', 'the backup service')
    .requiredOption('--account <name>', 'the account')
    .option('--stream <name>', 'the stream (default: the account’s only one)')
    .option('--restore-token', 'also prompt for the account’s restore token (after the password): the login gets past a flood of others’ logins')
    .option('--totp', 'the account has a second factor: prompt for its code (or a recovery code)')
    .option('--json', 'print JSON');
  return addPasswordOptions(addWalletOptions(cmd)).addHelpText(
    'after',
    promptsHelp(['the backup password (with --wallet, --password-file or --password-command: no prompt)', 'with --restore-token: the restore token', 'with --totp: the code of the authenticator app (or a recovery code)']) +
      PASSWORD_HELP +
      WALLET_HELP,
  );
}

async function accessOf(o: AccessOpts) {
  const server = checkServer(o.backupServer);
  const account = checkName(o.account, '--account');
  const stream = o.stream === undefined ? undefined : checkName(o.stream, '--stream');
  const secret = await accountSecretOf(o, (t) => process.stderr.write(`lifeboat: ${t}\n`));
  const restoreToken = o.restoreToken ? await promptSecret('restore token') : undefined;
  const totp = await totpOf(o.totp);
  return { server, account, stream, ...secret, restoreToken, totp, tuning: waitOutLoginLimits((line) => process.stderr.write(`lifeboat: ${line}\n`)) };
}

function printSnapshots(out: ReturnType<typeof createOutput>, s: StreamSnapshots): void {
  out.out(`stream ${s.stream}: head entry ${s.headSeq}, updated ${s.updatedAt || '-'}`);
  if (s.log) out.out(`entries held  ${s.log.first.seq} (${s.log.first.committedAt ?? 'time unknown'}) .. ${s.log.last.seq} (${s.log.last.committedAt ?? 'time unknown'})`);
  else out.out('entries held  none (all in the compaction)');
  if (s.compactions.length === 0) return out.out('compactions   none');
  out.out(`${'compaction'.padEnd(12)}${'completed'.padEnd(26)}${'bytes'.padStart(12)}  ${'keys'.padStart(7)}  exact`);
  for (const c of s.compactions) {
    out.out(`${`@${c.seq}`.padEnd(12)}${(c.completedAt ?? '-').padEnd(26)}${String(c.size).padStart(12)}  ${(c.keys === null ? '?' : String(c.keys)).padStart(7)}  ${c.exact === null ? '?' : c.exact ? 'yes' : 'no'}`);
  }
  const oldest = s.compactions[0]!.seq;
  out.info(`point-in-time restores reach entries ${s.firstSeq <= 1 ? 1 : oldest} to ${s.headSeq} (\`node restore --to-seq N | --to-time T\`)${s.compactions.some((c) => c.keys === null) ? '; --keys opens each compaction for its key count' : ''}`);
}

export function registerBackupInspectCommands(backup: Command): void {
  accessCommand(
    backup
      .command('snapshots')
      .description('list a stream’s compactions (seq, time, size; key count with --keys) and the range of entries the service holds, with their commit times')
      .option('--keys', 'download and open each compaction for its key count, its own time and whether it is exact'),
  ).action(async (o: AccessOpts & { keys?: boolean }) => {
    const access = await accessOf(o);
    const out = createOutput({ quiet: o.json });
    const s = await withStreamSession(access, ({ client, backupKey, stream }) => listSnapshots(client, backupKey, stream, { keys: o.keys }));
    if (o.json) out.json({ ok: true, ...s });
    else printSnapshots(out, s);
  });

  accessCommand(
    backup
      .command('check')
      .description('download and verify a whole stream without restoring: every compaction, every entry and the chain, the head, every share against its verifying share (progress on stderr)'),
  )
    .addHelpText('after', '\nExit status: 0 when everything verifies; otherwise backup_check_failed (exit 3) naming the item (a compaction, an entry or the head, by seq; or the shares of the state at the head, seq = the head, the key named in the cause)\nand the cause, also in the --json failure document (item, seq, cause).')
    .action(async (o: AccessOpts) => {
      const access = await accessOf(o);
      const out = createOutput({ quiet: o.json });
      // Progress goes to stderr with --json too: a check can take minutes, and stdout holds only the summary.
      const bar = progressLine(createOutput().info);
      const r = await withStreamSession(access, ({ client, backupKey, stream }) => checkBackupStream(clientSource(client), backupKey, stream, bar));
      if (o.json) return out.json({ ok: true, ...r });
      out.out(`stream ${r.stream} verifies: entries ${r.firstSeq}..${r.headSeq} (${r.entries} read) chain to the head; ${r.compactions.length} compaction${r.compactions.length === 1 ? '' : 's'}${r.compactions.length ? ` (${r.compactions.map((c) => `@${c.seq}: ${c.keys} keys`).join(', ')})` : ''}`);
      out.out(`${r.keys} keys and ${r.apiKeys} API keys at the head; every share matches its verifying share`);
    });
}
