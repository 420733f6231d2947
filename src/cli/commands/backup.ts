/**
 * The client side of continuous backups (docs/backup.md):
 *   lifeboat node backup-setup   register this node's account on a backup service and start streaming
 *   lifeboat node backup-now     seal, upload and compact now (what the running node does by itself)
 *   lifeboat backup passwd       change the account's password (the backup key is re-wrapped)
 *   lifeboat backup snapshots | check   in ./backup-inspect.ts
 * `lifeboat node restore --backup-server` is in ./node.ts, next to the other restores.
 */
import type { Command } from 'commander';
import { InvalidInputError, UsageError } from '../../errors.js';
import { changeBackupPassword, renewRestoreToken, restartBackupStream, setBackupTotp, setupNodeBackup } from '../../backup/node-link.js';
import { accountSecretOf, addWalletOptions, checkServer, assertSecretOutput, showTotpEnrolment, totpOf, WALLET_HELP, type WalletOpts, walletSignerOf } from './wallet-options.js';
import { intIn } from '../options.js';
import { resolveNodeDir } from '../../keynode/config.js';
import { checkName } from '../../backup/format.js';
import { closeNode, openNode } from '../../keynode/runtime.js';
import { promptSecret, promptsHelp } from '../input.js';
import { addPasswordOptions, PASSWORD_HELP, passwordGiven, type PasswordOpts, readPassword, waitOutLoginLimits } from '../password.js';
import { registerBackupInspectCommands } from './backup-inspect.js';
import { createOutput } from '../io.js';

const DIR_HELP = 'node data directory (default: $LIFEBOAT_NODE_DIR or ./lifeboat-node)';
const RESTORE_TOKEN_NOTE =
  'keep the restore token with the backup password (shown once): `node restore --restore-token` gets past anyone flooding the account’s logins; it opens nothing by itself';



/** Asks twice for a new password (once from --password-file or --password-command); refuses a short one or two that differ. */
export async function promptNewPassword(what = 'new backup password', o: PasswordOpts = {}): Promise<string> {
  const a = await readPassword(o, what);
  const b = passwordGiven(o) ? a : await promptSecret(`${what} (again)`);
  if (a !== b) throw new InvalidInputError('the two passwords differ');
  if (a.length < 8) throw new InvalidInputError('the password must have at least 8 characters', { hint: 'use a long passphrase: the password alone unwraps the backup key' });
  return a;
}

async function newStream(stream: string, o: { dataDir?: string; json?: boolean }): Promise<void> {
  checkName(stream, '--new-stream');
  const out = createOutput({ quiet: o.json });
  const n = await openNode(resolveNodeDir(o.dataDir));
  let r;
  try {
    r = await restartBackupStream(n, stream);
  } finally {
    await closeNode(n);
  }
  if (o.json) out.json({ ok: true, ...r });
  else out.out(`node now streams to ${r.account}/${r.stream} from its whole state (${r.queued} changes queued, ${r.dropped} unacknowledged entries of the old stream dropped); restart \`node serve\``);
}

export function registerNodeBackupCommands(node: Command): void {
  const setup = node
    .command('backup-setup')
    .description('register this node on a backup service (invite code and password prompted) and stream every change to it; or --new-stream')
    .option('--backup-server <url>', 'the backup service, e.g. https://backup.example.net')
    .option('--account <name>', 'the account the service operator created (`lifeboat backup-server account add`)')
    .option('--stream <name>', 'stream name (default: node-<fingerprint>)')
    .option('--new-stream <name>', 'the node already streams: start over on this new stream of the same account from its whole state (after backup_rollback_detected)')
    .option('--usable-before-ack', 'new keys sign at once, before their backup is acknowledged (default: pending_backup until it is)')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--json', 'print JSON');
  addPasswordOptions(addWalletOptions(setup))
    .addHelpText('after', promptsHelp(['the invite code', 'the backup password (8 characters or more; with --wallet, --password-file or --password-command: no prompt)', 'the backup password again (with --new-stream, --password-file or --password-command: no prompt)']) + PASSWORD_HELP + WALLET_HELP)
    .action(async (o: WalletOpts & PasswordOpts & { backupServer?: string; account?: string; stream?: string; newStream?: string; usableBeforeAck?: boolean; dataDir?: string; json?: boolean }) => {
      if (o.newStream !== undefined) return newStream(o.newStream, o);
      if (!o.backupServer || !o.account) throw new UsageError('give --backup-server URL and --account NAME (or --new-stream NAME on a node that streams already)');
      const server = checkServer(o.backupServer);
      const account = checkName(o.account, '--account');
      if (o.stream !== undefined) checkName(o.stream, '--stream');
      const out = createOutput({ quiet: o.json });
      const wallet = await walletSignerOf(o, (t) => process.stderr.write(`lifeboat: ${t}\n`));
      const invite = await promptSecret('invite code');
      if (wallet && passwordGiven(o)) throw new UsageError('a wallet account has no password: leave out --password-file and --password-command');
      const secret = wallet ? { wallet } : { password: await promptNewPassword('backup password', o) };
      out.info(wallet ? `registering wallet ${wallet.address} (it signs the backup key message twice, then a login; the signature never leaves this machine)...` : 'registering (the password never leaves this machine: OPAQUE)...');
      const n = await openNode(resolveNodeDir(o.dataDir));
      let r;
      try {
        r = await setupNodeBackup(n, { server, account, invite, ...secret, stream: o.stream, usableBeforeAck: o.usableBeforeAck === true, progress: out.info });
      } finally {
        await closeNode(n);
      }
      const { restoreToken, ...rest } = r;
      if (o.json) out.json({ ok: true, ...rest, restore_token: restoreToken });
      else {
        out.out(`node streams to ${server} as ${account}/${r.stream} (changes queued: ${r.queued}); restart \`node serve\` to start the agent`);
        if (restoreToken) out.out(`restore token  ${restoreToken}`);
      }
      if (restoreToken) out.info(RESTORE_TOKEN_NOTE);
      else out.warn(`the account is set up, but its restore token could not be made (${r.restoreTokenError ?? 'error'}): run \`lifeboat node backup-restore-token\` once the service answers`);
    });

  node
    .command('backup-restore-token')
    .description('make a new restore token for this node’s backup account (proof of the backup key, no password), replacing the old one')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--json', 'print JSON')
    .action(async (o: { dataDir?: string; json?: boolean }) => {
      const out = createOutput({ quiet: o.json });
      const n = await openNode(resolveNodeDir(o.dataDir));
      let r;
      try {
        r = await renewRestoreToken(n);
      } finally {
        await closeNode(n);
      }
      if (o.json) out.json({ ok: true, server: r.server, account: r.account, restore_token: r.restoreToken });
      else out.out(`restore token  ${r.restoreToken}`);
      out.info(`${RESTORE_TOKEN_NOTE}; the earlier token of ${r.account} no longer counts`);
    });

  node
    .command('backup-now')
    .description('seal and upload every queued change now and upload a compaction (the serving node does this by itself); with nothing new, says so and exits 0')
    .option('--no-compact', 'upload queued entries only')
    .option('--data-dir <dir>', DIR_HELP)
    .option('--json', 'print JSON')
    .action(async (o: { compact: boolean; dataDir?: string; json?: boolean }) => {
      const out = createOutput({ quiet: o.json });
      const n = await openNode(resolveNodeDir(o.dataDir));
      try {
        if (!n.backup) throw new InvalidInputError('this node has no backup service', { hint: 'run `lifeboat node backup-setup` first' });
        const worked = await n.backup.step();
        // A compaction covering every acknowledged entry is already there: nothing new is no failure.
        const uploaded = await n.backup.status();
        const compaction = o.compact && uploaded.ackedSeq > uploaded.compactedSeq ? await n.backup.compact() : undefined;
        const status = await n.backup.status();
        const nothingNew = !worked && !compaction;
        if (o.json) out.json({ ok: true, nothingNew, compaction: compaction ?? null, ...status });
        else if (nothingNew) out.out(`nothing new: the service holds every change up to entry ${status.ackedSeq}${status.compactedSeq ? `, with a compaction up to entry ${status.compactedSeq}` : ''}`);
        else out.out(`acknowledged up to entry ${status.ackedSeq}${compaction ? `; compaction of ${compaction.keys} keys up to entry ${compaction.seq} uploaded` : ''}`);
      } finally {
        await closeNode(n);
      }
    });
}

export function registerBackupCommands(program: Command): void {
  const backup = program.command('backup').description('backup service accounts and streams, from the client side: snapshots, check, passwd, totp');
  registerBackupInspectCommands(backup);
  const passwd = backup
    .command('passwd')
    .description('change the password of a backup account (old and new prompted); the backup key is re-wrapped, streams are untouched')
    .requiredOption('--backup-server <url>', 'the backup service')
    .requiredOption('--account <name>', 'the account')
    .option('--totp', 'the account has a second factor: prompt for its code (after the current password)')
    .option('--json', 'print JSON');
  addPasswordOptions(passwd, 'the current password')
    .addHelpText('after', promptsHelp(['the current password (with --password-file or --password-command: no prompt)', 'with --totp: the code of the authenticator app (or a recovery code)', 'the new password (8 characters or more)', 'the new password again']) + PASSWORD_HELP)
    .action(async (o: PasswordOpts & { backupServer: string; account: string; totp?: boolean; json?: boolean }) => {
      const server = checkServer(o.backupServer);
      const account = checkName(o.account, '--account');
      const out = createOutput({ quiet: o.json });
      const oldPassword = await readPassword(o, 'current backup password');
      const totp = await totpOf(o.totp);
      const newPassword = await promptNewPassword('new backup password');
      await changeBackupPassword({ server, account, oldPassword, newPassword, totp, tuning: waitOutLoginLimits(out.info) });
      if (o.json) out.json({ ok: true, account });
      else out.out(`password of ${account} changed; the old one no longer logs in`);
    });
  registerTotpCommands(backup);
}

/** `lifeboat backup totp enable|disable`: the account's second factor, from the owner's side. */
function registerTotpCommands(backup: Command): void {
  const totp = backup.command('totp').description('a second factor (TOTP, RFC 6238) on a backup account: a login then needs a code too');
  const enable = totp
    .command('enable')
    .description('enrol a TOTP secret (replacing any earlier one): shown once as an otpauth:// URI and a QR code, with 10 single-use recovery codes')
    .requiredOption('--backup-server <url>', 'the backup service')
    .requiredOption('--account <name>', 'the account')
    .option('--totp', 'the account has a second factor already: prompt for its current code (to replace it)')
    .option('--secret-fd <n>', 'write the URI and the recovery codes to this file descriptor instead of the terminal', intIn(3, 1 << 20))
    .option('--json', 'print JSON (the secret still goes to the terminal or --secret-fd)');
  addPasswordOptions(addWalletOptions(enable))
    .addHelpText('after', promptsHelp(['the backup password (with --wallet, --password-file or --password-command: no prompt)', 'with --totp: the current code (or a recovery code)']) + PASSWORD_HELP + WALLET_HELP)
    .action(async (o: WalletOpts & PasswordOpts & { backupServer: string; account: string; totp?: boolean; secretFd?: number; json?: boolean }) => {
      const server = checkServer(o.backupServer);
      const account = checkName(o.account, '--account');
      assertSecretOutput(o.secretFd);
      const out = createOutput({ quiet: o.json });
      const secret = await accountSecretOf(o, (t) => process.stderr.write(`lifeboat: ${t}\n`));
      const code = await totpOf(o.totp);
      const e = await setBackupTotp({ server, account, ...secret, totp: code, tuning: waitOutLoginLimits(out.info) });
      showTotpEnrolment(e!, o.secretFd);
      if (o.json) out.json({ ok: true, account, totp: true, recovery_codes: e!.recoveryCodes.length });
      else out.out(`second factor enabled on ${account}: every login now needs a code of the authenticator app (or a recovery code)`);
      out.info('scan the QR code (or add the otpauth:// URI) in an authenticator app now and keep the recovery codes apart: they are shown only once');
    });
  const disable = totp
    .command('disable')
    .description('remove the account’s second factor (a login with its current code)')
    .requiredOption('--backup-server <url>', 'the backup service')
    .requiredOption('--account <name>', 'the account')
    .option('--json', 'print JSON');
  addPasswordOptions(addWalletOptions(disable))
    .addHelpText('after', promptsHelp(['the backup password (with --wallet, --password-file or --password-command: no prompt)', 'the current code (or a recovery code)']) + PASSWORD_HELP + WALLET_HELP)
    .action(async (o: WalletOpts & PasswordOpts & { backupServer: string; account: string; json?: boolean }) => {
      const server = checkServer(o.backupServer);
      const account = checkName(o.account, '--account');
      const out = createOutput({ quiet: o.json });
      const secret = await accountSecretOf(o, (t) => process.stderr.write(`lifeboat: ${t}\n`));
      const code = await totpOf(true);
      await setBackupTotp({ server, account, ...secret, totp: code, disable: true, tuning: waitOutLoginLimits(out.info) });
      if (o.json) out.json({ ok: true, account, totp: false });
      else out.out(`second factor removed from ${account}`);
    });
}
