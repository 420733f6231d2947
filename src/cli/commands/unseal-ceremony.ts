/**
 * `lifeboat unseal --begin | --step | --add | --reset`: the unseal ceremony, one keyholder at a time at
 * their own machine (src/recovery/ceremony.ts, docs/unseal.md "The ceremony").
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { UsageError } from '../../errors.js';
import { loadIdentity } from '../../identity.js';
import { primaryPaths, resolveDataDir } from '../../primary/datadir.js';
import { addStep, beginSession, makeStep, openAllSteps, parseSessionToken, parseStep, resetSession } from '../../recovery/ceremony.js';
import { unseal } from '../../recovery/reconstruct.js';
import { readManifestFile } from '../../recovery/sources.js';
import { readFileOrThrow, writeFileAtomic } from '../../util/files.js';
import { createOutput } from '../io.js';
import { promptSecret } from '../input.js';
import { intIn } from '../options.js';

export interface CeremonyOpts {
  dataDir?: string;
  begin?: boolean;
  ttlMinutes: number;
  step?: boolean;
  session?: string;
  manifest?: string;
  out?: string;
  add?: string;
  reset?: boolean;
  passphrase?: boolean;
  json?: boolean;
}

export const CEREMONY_HELP =
  '\n\nThe ceremony, one keyholder at a time (docs/unseal.md, "The ceremony"):\n' +
  '  on the primary:     lifeboat unseal --begin [--ttl-minutes M]      prints the session (lbus1.…) and its expiry\n' +
  '  on each keyholder:  lifeboat unseal --step --session lbus1.… --manifest recovery-manifest.json --out step.json\n' +
  '                      (types the share; it is checked against the manifest and sealed to the session key)\n' +
  '  on the primary:     lifeboat unseal --add step.json                prints "k of t"; at t it unseals\n' +
  '                      lifeboat unseal --reset                        aborts the session';

export function addCeremonyOptions(cmd: Command): Command {
  return cmd
    .option('--begin', 'open an unseal ceremony: a one-time session key; prints the session for the keyholders')
    .option('--ttl-minutes <m>', 'with --begin: how long the session is open (1 to 1440)', intIn(1, 1440), 60)
    .option('--step', "on a keyholder's machine: type your share and seal it to --session, written to --out")
    .option('--session <lbus1>', 'with --step: the session the primary printed')
    .option('--manifest <file>', 'with --step: the recovery manifest the share is checked against (default: the data dir)')
    .option('--out <file>', 'with --step: where to write the step (sealed; carry it to the primary)')
    .option('--add <file>', 'on the primary: add a keyholder’s step to the open session; unseals at the threshold')
    .option('--reset', 'on the primary: abort the open session (its key is deleted)');
}

/** Runs the ceremony action asked for; false when none was (a plain `unseal`). */
export async function runCeremony(o: CeremonyOpts): Promise<boolean> {
  const modes = [o.begin, o.step, o.add !== undefined, o.reset].filter(Boolean).length;
  if (modes === 0) {
    if (o.session || o.out) throw new UsageError('--session and --out go with --step');
    return false;
  }
  if (modes > 1) throw new UsageError('give one of --begin, --step, --add FILE, --reset');
  const out = createOutput({ quiet: o.json });
  const paths = primaryPaths(resolveDataDir(o.dataDir));
  if (o.reset) {
    const removed = resetSession(paths.dir);
    if (o.json) out.json({ ok: true, was_open: removed });
    else out.out(removed ? 'unseal session aborted; its key is deleted' : 'no unseal session was open');
    return true;
  }
  if (o.step) {
    if (!o.session || !o.out) throw new UsageError('--step needs --session lbus1.… and --out FILE');
    const token = parseSessionToken(o.session);
    const manifest = readManifestFile(o.manifest ?? paths.manifest);
    if (existsSync(o.out)) throw new UsageError(`--out ${o.out} already exists`);
    const words = await promptSecret('your share (its words)');
    const step = makeStep(token, manifest, words);
    writeFileAtomic(o.out, `${JSON.stringify(step, null, 2)}\n`);
    if (o.json) out.json({ ok: true, session_id: step.session_id, member_index: step.member_index, file: o.out });
    else out.out(`step of member ${step.member_index + 1} sealed to session ${step.session_id} in ${o.out}; carry it to the primary (\`lifeboat unseal --add ${o.out}\`)`);
    return true;
  }
  const manifest = readManifestFile(paths.manifest);
  if (o.begin) {
    const r = beginSession(paths.dir, manifest, o.ttlMinutes * 60_000);
    if (o.json) out.json({ ok: true, session: r.token, expires_at: new Date(r.expiresAt).toISOString(), threshold: manifest.threshold });
    else {
      out.out(`unseal session: ${r.token}`);
      out.out(`open until ${new Date(r.expiresAt).toISOString()}; ${manifest.threshold} of ${manifest.share_count} steps needed. Give each keyholder the session and the manifest (${paths.manifest}).`);
    }
    return true;
  }
  const vault = readFileOrThrow(paths.vault, 'vault', 'run `lifeboat recovery init` or `recovery reconstruct` first');
  const step = parseStep(readFileOrThrow(o.add!, 'unseal step'), o.add!);
  const { count, session } = addStep(paths.dir, manifest, step, `step ${o.add}`);
  if (count < manifest.threshold) {
    if (o.json) out.json({ ok: true, steps: count, threshold: manifest.threshold, unsealed: false });
    else out.out(`${count} of ${manifest.threshold}: step of member ${step.member_index + 1} added`);
    return true;
  }
  const passphrase = o.passphrase ? await promptSecret('SLIP-0039 passphrase') : undefined;
  const typed = openAllSteps(session, manifest);
  const r = await unseal({ paths, primary: loadIdentity(paths.identity, 'primary'), manifest, vault, holders: [], typed, passphrase, progress: out.info });
  resetSession(paths.dir);
  if (o.json) out.json({ ok: true, steps: count, threshold: manifest.threshold, unsealed: true, entries: r.entries });
  else out.out(`${count} of ${manifest.threshold}: unsealed, vault of scheme ${manifest.scheme_id} opens (${r.entries} entries); the session key is deleted`);
  return true;
}

