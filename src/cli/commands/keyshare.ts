/**
 * `lifeboat keyshare identity | recover`: the operator's words on the worst day (docs/keyshare.md).
 * The mnemonic comes from --mnemonic-fd N, else $LIFEBOAT_MNEMONIC, else a hidden prompt (a stdin line
 * when stdin is not a terminal); it is never an argument.
 */
import type { Command } from 'commander';
import { InvalidInputError, UsageError } from '../../errors.js';
import { parsePublicIdentity } from '../../identity.js';
import { type LogTarget, logTargetSchema, resolveNodeDir } from '../../keynode/config.js';
import { deriveAgeIdentity, deriveAgeRecipient } from '../../keyshare/age.js';
import { checkMnemonic, type Mnemonic } from '../../keyshare/mnemonic.js';
import { recoverNode } from '../../keyshare/recover.js';
import type { RecoveredNodeWriter } from '../../keyshare/recover-write.js';
import { parseWitnessVerifierKey } from '../../log/cosignature.js';
import { dirLogSource, httpLogSource } from '../../log/audit/source.js';
import { parseVerifierKey } from '../../log/note.js';
import { wipe } from '../../util/bytes.js';
import { promptSecret, promptsHelp } from '../input.js';
import { createOutput, writeSecret } from '../io.js';
import { collect, intIn } from '../options.js';
import { progressLine } from '../progress.js';
import { readGivenFd } from '../../util/fd.js';

const MNEMONIC_HELP = '\nThe 24 words: --mnemonic-fd N, else $LIFEBOAT_MNEMONIC, else prompted (hidden).';

/** Reads and checks the words. Throws what checkMnemonic throws (each check by name). */
async function readMnemonic(fd: number | undefined): Promise<Mnemonic> {
  let text: string;
  if (fd !== undefined) {
    text = readGivenFd(fd, 'the mnemonic');
  } else if (process.env.LIFEBOAT_MNEMONIC !== undefined) text = process.env.LIFEBOAT_MNEMONIC;
  else text = await promptSecret('the 24 words of the node operator\'s mnemonic');
  return checkMnemonic(text);
}

/** The `keyshare` group, without its commands. */
export function keyshareGroup(program: Command): Command {
  return program.command('keyshare').description('key-share backups under the operator\'s 24-word mnemonic (docs/keyshare.md)');
}

/** Registers `lifeboat keyshare identity | recover`; `writer` fills the recovered node's store (recover-store.ts). */
export function registerKeyshareCommands(program: Command, writer: RecoveredNodeWriter): void {
  const ks = keyshareGroup(program);
  registerKeyshareIdentity(ks);
  registerKeyshareRecover(ks, writer);
}

function registerKeyshareIdentity(ks: Command): void {
  ks.command('identity')
    .description('derive the age identity (and its hybrid post-quantum recipient) of the words, for recipient-mode backups')
    .option('--mnemonic-fd <fd>', 'read the 24 words from this file descriptor', intIn(0, 1023))
    .option('--secret-fd <fd>', 'write the identity to this file descriptor instead of the terminal', intIn(3, 1023))
    .option('--recipient-only', 'print only the recipient (public), not the identity')
    .option('--json', 'print {"recipient"} as JSON (the identity still goes to the terminal or --secret-fd)')
    .addHelpText('after', `${MNEMONIC_HELP}${promptsHelp(['the 24 words'])}\nThe identity (AGE-SECRET-KEY-PQ-1…) opens every recipient-mode backup: it goes only to a terminal or --secret-fd.`)
    .action(async (o: { mnemonicFd?: number; secretFd?: number; recipientOnly?: boolean; json?: boolean }) => {
      const m = await readMnemonic(o.mnemonicFd);
      try {
        const recipient = await deriveAgeRecipient(m);
        if (!o.recipientOnly) writeSecret(deriveAgeIdentity(m), o.secretFd);
        const out = createOutput();
        if (o.json) out.json({ ok: true, recipient });
        else out.out(`recipient: ${recipient}`);
      } finally {
        wipe(m.entropy);
      }
    });
}

/**
 * `keyshare recover`: `writer` fills the node's storage: its store in the CLI, a snapshot file for
 * `node restore --in` in the recovery kit (src/keyshare/recover-write.ts).
 */
export function registerKeyshareRecover(ks: Command, writer: RecoveredNodeWriter): void {
  ks.command('recover')
    .description('rebuild a key node from the public log and its operator\'s 24 words alone')
    .option('--log <url>', "the log's read API: GET <url>/checkpoint, <url>/tile/…")
    .option('--from-dir <dir>', 'a mirrored copy of the read API (works offline)')
    .requiredOption('--log-key <vkey>', "the log's verifier key")
    .option('--witness <vkey>', 'a witness verifier key whose co-signature counts (repeatable)', collect, [])
    .option('--quorum <k>', 'co-signatures of --witness keys required (default: all of them)', intIn(0, 100))
    .requiredOption('--node-identity <lb1>', 'the lost node\'s identity (lb1.…, printed by `node init`)')
    .option('--data-dir <dir>', 'where to write the node: absent or empty (default: $LIFEBOAT_NODE_DIR or ./lifeboat-node)')
    .option('--store <url>', 'an empty store for the node (default: sqlite in --data-dir)')
    .option('--mnemonic-fd <fd>', 'read the 24 words from this file descriptor', intIn(0, 1023))
    .option('--timeout <seconds>', 'per request over http', intIn(1, 3600), 30)
    .option('--json', 'print the result as JSON')
    .addHelpText('after', `${MNEMONIC_HELP}${promptsHelp(['the 24 words'])}\nThen: node apikey import (client keys are not in the log), and node serve.`)
    .action(async (o: { log?: string; fromDir?: string; logKey: string; witness: string[]; quorum?: number; nodeIdentity: string; dataDir?: string; store?: string; mnemonicFd?: number; timeout: number; json?: boolean }) => {
      if ((o.log === undefined) === (o.fromDir === undefined)) throw new UsageError('pass exactly one of --log URL and --from-dir DIR');
      const node = parsePublicIdentity(o.nodeIdentity, '--node-identity');
      const logVerifier = parseVerifierKey(o.logKey);
      const witnesses = o.witness.map(parseWitnessVerifierKey);
      const quorum = o.quorum ?? witnesses.length;
      if (quorum > witnesses.length) throw new UsageError(`--quorum ${quorum} is more than the ${witnesses.length} --witness keys given`);
      const source = o.log !== undefined ? httpLogSource(o.log, { timeoutMs: o.timeout * 1000 }) : dirLogSource(o.fromDir!);
      // Read over http, the log becomes the recovered node's log target, with the same keys and quorum.
      let logTarget: LogTarget | undefined;
      if (o.log !== undefined) {
        const t = logTargetSchema.safeParse({ url: o.log.replace(/\/+$/, ''), log_key: o.logKey, witness_keys: o.witness, quorum });
        if (!t.success) throw new InvalidInputError(`--log ${o.log.slice(0, 64)} is not a URL a node can publish to`);
        logTarget = t.data;
      }
      const dir = resolveNodeDir(o.dataDir);
      const m = await readMnemonic(o.mnemonicFd);
      const out = createOutput({ quiet: o.json });
      try {
        const r = await recoverNode({ source, rule: { logVerifier, witnesses, quorum }, node, mnemonic: m, dir, store: o.store, logTarget, writer, onProgress: o.json ? undefined : progressLine(out.info) });
        if (o.json) {
          out.json({ ok: true, dataDir: dir, ...r });
          return;
        }
        out.out(`recovered node ${r.identity}`);
        out.out(`fingerprint: ${r.fingerprint}`);
        out.out(`keys: ${r.keys.length} (from a log of ${r.checkpointSize} entries; ${r.superseded} older epochs skipped)`);
        for (const k of r.keys) out.out(`  ${k.keyId} ${k.curve} epoch ${k.epoch} tenant ${k.tenant} (entry ${k.index})`);
        if (r.skipped.length > 0) out.warn(`${r.skipped.length} entries submitted by this node did not verify and were skipped (first: entry ${r.skipped[0]!.index}, ${r.skipped[0]!.errType})`);
        if (r.snapshot === null) out.out(`data dir: ${dir} (nonce epoch ${r.nonceEpoch}, no nonce)`);
        else out.out(`data dir: ${dir}, its keys in ${r.snapshot}: load them with the full CLI, \`lifeboat node restore --in ${r.snapshot} --data-dir ${dir}\` (no database driver here)`);
        out.out(
          r.configured.keyshareMode === 'passphrase'
            ? 'key-share backups: passphrase mode, the words are back in the vault (node/mnemonic)'
            : 'key-share backups: recipient mode, the recipient and mnemonic check are back in node.json (no secret that opens a backup)',
        );
        out.out(
          r.configured.logs.length > 0
            ? `publishing to ${r.configured.logs[0]} (same log key, witness keys and quorum); the log's enrolment of this identity still holds: it is the same identity`
            : 'no log configured (read from a directory): name one with `lifeboat node log-setup`',
        );
        out.out('still to do: `lifeboat node apikey import` (client API keys are not in the log), settings (`node config`), a paired primary (`node pair`), a backup service (`node backup-setup`); then `lifeboat node serve`');
      } finally {
        wipe(m.entropy);
      }
    });
}
