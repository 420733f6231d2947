/** `lifeboat log audit | prove | verify-proof: checking a log from its public read API (docs/log.md, "Auditing"). */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { LifeboatError, UsageError } from '../../errors.js';
import { type AuditReport, auditLog } from '../../log/audit/audit.js';
import { checkProof, proveEntry } from '../../log/audit/prove.js';
import { badEntriesHint, badEntriesMessage, followLine, reportJson, reportLines } from '../../log/audit/report.js';
import { type LogSource, dirLogSource, httpLogSource } from '../../log/audit/source.js';
import { type AuditState, defaultStatePath, loadState, saveState } from '../../log/audit/state.js';
import { isoTime } from '../../log/audit/summary.js';
import { parseWitnessVerifierKey } from '../../log/cosignature.js';
import { AT_RISK_HINT, CoverageCollector, type KeyCoverage, atRisk, atRiskMessage, coverageJson, coverageLines } from '../../keyshare/coverage.js';
import { encodeInclusionDoc, parseInclusionDoc } from '../../log/inclusion.js';
import { type NoteVerifier, parseVerifierKey } from '../../log/note.js';
import { ensurePrivateDir, writeFileAtomic } from '../../util/files.js';
import { toB64 } from '../../util/bytes.js';
import { readStdin } from '../input.js';
import { EXIT, createOutput, describeFailure, snakeCaseKeys } from '../io.js';
import { collect, intIn } from '../options.js';
import { progressLine } from '../progress.js';

interface SourceOpts {
  log?: string;
  fromDir?: string;
  logKey: string;
  witness: string[];
  quorum?: number;
  timeout: number;
  json?: boolean;
}

/** `--every 10s`: a duration of 100 ms to 24 h, as <n>ms, <n>s, <n>m, <n>h or bare seconds. */
export function parseDuration(value: string): number {
  const m = /^(\d{1,9})(ms|s|m|h)?$/.exec(value.trim());
  const ms = m ? Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'] : NaN;
  if (!(ms >= 100 && ms <= 86_400_000)) throw new InvalidArgumentError('expected a duration from 100ms to 24h, e.g. 10s, 500ms, 5m');
  return ms;
}

/** The source, the log's key and the witness rule from the shared options; refuses a bad combination. */
function setup(o: SourceOpts): { source: LogSource; logVerifier: NoteVerifier; witnesses: NoteVerifier[]; quorum: number } {
  if ((o.log === undefined) === (o.fromDir === undefined)) {
    throw new UsageError('pass exactly one of --log URL and --from-dir DIR', { hint: '--log reads the read API over http, --from-dir a mirrored copy of its files' });
  }
  const logVerifier = parseVerifierKey(o.logKey);
  const witnesses = o.witness.map(parseWitnessVerifierKey);
  const quorum = o.quorum ?? witnesses.length;
  if (quorum > witnesses.length) throw new UsageError(`--quorum ${quorum} is more than the ${witnesses.length} --witness keys given`);
  const source = o.log !== undefined ? httpLogSource(o.log, { timeoutMs: o.timeout * 1000 }) : dirLogSource(o.fromDir!);
  return { source, logVerifier, witnesses, quorum };
}

function addSourceOptions(cmd: Command): Command {
  return cmd
    .option('--log <url>', "the log's read API: GET <url>/checkpoint, <url>/tile/…")
    .option('--from-dir <dir>', 'a mirrored copy of the read API: <dir>/checkpoint, <dir>/tile/… (a log’s public/ directory, or a recursive download of it)')
    .requiredOption('--log-key <vkey>', "the log's verifier key (<name>+<key id>+<base64>, printed by `lifeboat log init`)")
    .option('--timeout <seconds>', 'per request over http', intIn(1, 3600), 30);
}

function addWitnessOptions(cmd: Command): Command {
  return cmd
    .option('--witness <vkey>', 'a witness verifier key whose co-signature counts (repeatable)', collect, [])
    .option('--quorum <k>', 'co-signatures of --witness keys required (default: all of them)', intIn(0, 100));
}

/** Keeps both checkpoint notes of a fork next to the state file; returns the path. */
function keepForkEvidence(statePath: string): (seen: string, now: string) => string | undefined {
  return (seen, now) => {
    try {
      ensurePrivateDir(dirname(statePath));
      const path = `${statePath.replace(/\.json$/, '')}.fork-${new Date().toISOString().replace(/[:.]/g, '-')}.txt`;
      writeFileAtomic(path, `checkpoint seen before:\n${seen}\ncheckpoint served now:\n${now}`);
      return path;
    } catch {
      return undefined;
    }
  };
}

interface AuditOpts extends SourceOpts {
  state?: string;
  full?: boolean;
  follow?: boolean;
  every?: number;
  quiet?: boolean;
  keys?: boolean;
}

/** Errors that --follow rides out (a log or mirror briefly away, witnesses still co-signing). */
const TRANSIENT = new Set(['log_unreachable', 'log_file_missing', 'log_bad_answer', 'witness_quorum_not_met']);

function failBadEntries(r: AuditReport): number {
  process.stderr.write(`lifeboat: error: ${badEntriesMessage(r)} (log_entry_invalid)\nlifeboat: hint: ${badEntriesHint(r)}\n`);
  return r.tampered ? EXIT.safety : EXIT.failed;
}

function failKeysAtRisk(keys: readonly KeyCoverage[]): number {
  process.stderr.write(`lifeboat: error: ${atRiskMessage(keys)} (keys_at_risk)\nlifeboat: hint: ${AT_RISK_HINT}\n`);
  return EXIT.failed;
}

/** The report with the key coverage (--keys): a bad entry stays the failure; keys at risk are one otherwise. */
function withKeys(j: ReturnType<typeof reportJson>, keys: readonly KeyCoverage[]) {
  const risky = keys.filter(atRisk).length;
  const { ok, ...rest } = j;
  const fail = ok && risky > 0 ? { errType: 'keys_at_risk', message: atRiskMessage(keys), hint: AT_RISK_HINT } : {};
  return { ok: ok && risky === 0, ...fail, ...rest, keyCount: keys.length, keysAtRisk: risky, keys: coverageJson(keys) };
}

async function audit(o: AuditOpts): Promise<void> {
  if (o.every !== undefined && !o.follow) throw new UsageError('--every needs --follow');
  const { source, logVerifier, witnesses, quorum } = setup(o);
  const out = createOutput({ quiet: o.quiet });
  const statePath = o.state ?? defaultStatePath(logVerifier.name);
  let previous: AuditState | null = loadState(statePath, logVerifier);
  const required = { witnesses: witnesses.length, quorum };
  // --keys reads every entry on the first run (not only those after the state's checkpoint), so the
  // coverage never rests on the state file; --follow then adds each new entry to the same collector
  const collector = o.keys ? new CoverageCollector() : null;
  const run = async (first: boolean): Promise<AuditReport> => {
    collector?.discard();
    const r = await auditLog({
      source,
      logVerifier,
      witnesses,
      quorum,
      previous,
      tiles: first ? 'all' : 'new',
      allEntries: first && (o.full === true || collector !== null),
      onEntry: collector ? (index, entry) => collector.add(index, entry) : undefined,
      onProgress: first && !o.quiet ? progressLine(out.info) : undefined,
      onFork: keepForkEvidence(statePath),
    });
    collector?.commit();
    return r;
  };
  const keep = (r: AuditReport): boolean => {
    if (!r.nextState) return false;
    saveState(statePath, r.nextState);
    previous = r.nextState;
    return true;
  };

  if (!o.follow) {
    const r = await run(true);
    const state = { path: statePath, advanced: keep(r) };
    const keys = collector?.coverage();
    if (o.json) out.json(keys ? withKeys(reportJson(r, state, required), keys) : reportJson(r, state, required));
    else [...reportLines(r, state, required), ...(keys ? coverageLines(keys) : [])].forEach((l) => out.out(l));
    if (r.badEntryCount > 0) process.exitCode = failBadEntries(r);
    else if (keys?.some(atRisk)) process.exitCode = failKeysAtRisk(keys);
    return;
  }

  let stop = false;
  let wake: (() => void) | undefined;
  const onSignal = (): void => {
    stop = true;
    wake?.();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    let printed = '';
    let first = true;
    while (!stop) {
      try {
        const r = await run(first);
        first = false;
        const advanced = keep(r);
        const id = `${r.checkpoint.size} ${toB64(r.checkpoint.rootHash)}`;
        if (id !== printed || r.badEntryCount > 0) {
          printed = id;
          const keys = collector?.coverage();
          const keyCounts = keys ? { keyCount: keys.length, keysAtRisk: keys.filter(atRisk).length } : {};
          if (o.json) {
            const j = reportJson(r, { path: statePath, advanced }, required);
            const line = { time: new Date().toISOString(), ok: j.ok, origin: j.origin, treeSize: j.treeSize, rootHash: j.rootHash, witnesses: j.witnesses.map((w) => w.name), newEntries: r.entriesChecked, entries: j.entries, badEntryCount: j.badEntryCount, ...keyCounts, stateAdvanced: advanced };
            process.stdout.write(`${JSON.stringify(snakeCaseKeys(line))}\n`);
          } else out.out(followLine(r) + (keys ? ` keys ${keys.length} at risk ${keyCounts.keysAtRisk}` : ''));
        }
        if (r.badEntryCount > 0) {
          process.exitCode = failBadEntries(r);
          return;
        }
      } catch (err) {
        if (err instanceof LifeboatError && TRANSIENT.has(err.code)) {
          out.warn(`${err.message} (${err.code}); trying again`);
        } else {
          if (!o.json) throw err;
          // one JSON object per line to the end: the failure too
          const f = describeFailure(err);
          process.stderr.write(`lifeboat: error: ${f.message} (${f.err_type})\n${f.hint ? `lifeboat: hint: ${f.hint}\n` : ''}`);
          process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ok: false, err_type: f.err_type, message: f.message, hint: f.hint })}\n`);
          process.exitCode = f.exitCode;
          return;
        }
      }
      if (stop) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, o.every ?? 10_000);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}

interface ProveOpts extends SourceOpts {
  index: number;
  size?: number;
  out?: string;
  state?: string;
}

async function prove(o: ProveOpts): Promise<void> {
  const { source, logVerifier, witnesses, quorum } = setup(o);
  const out = createOutput({ quiet: o.json });
  let saved: string | undefined;
  if (o.size !== undefined) saved = loadState(o.state ?? defaultStatePath(logVerifier.name), logVerifier)?.note;
  const doc = await proveEntry({ source, logVerifier, witnesses, quorum, index: o.index, size: o.size, saved });
  const text = `${JSON.stringify(encodeInclusionDoc(doc), null, 2)}\n`;
  if (o.out) {
    mkdirSync(dirname(o.out), { recursive: true });
    writeFileAtomic(o.out, text, 0o644);
    out.info(`inclusion proof of entry ${doc.index} written to ${o.out}`);
  } else process.stdout.write(text);
}

interface VerifyOpts {
  logKey: string;
  witness: string[];
  quorum?: number;
  json?: boolean;
}

async function verifyProof(file: string, o: VerifyOpts): Promise<void> {
  const logVerifier = parseVerifierKey(o.logKey);
  const witnesses = o.witness.map(parseWitnessVerifierKey);
  const quorum = o.quorum ?? witnesses.length;
  if (quorum > witnesses.length) throw new UsageError(`--quorum ${quorum} is more than the ${witnesses.length} --witness keys given`);
  let text: string;
  if (file === '-') text = Buffer.from(await readStdin()).toString('utf8');
  else {
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new LifeboatError('file_not_found', `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { hint: 'pass the file `lifeboat log prove --out` wrote, or - for stdin' });
    }
  }
  const facts = checkProof(parseInclusionDoc(text), { logVerifier, witnesses, quorum });
  const e = facts.entry;
  const j = {
    ok: true,
    origin: facts.checkpoint.origin,
    index: facts.index,
    treeSize: facts.checkpoint.size,
    rootHash: toB64(facts.checkpoint.rootHash),
    leafHash: toB64(facts.leafHash),
    submitter: facts.submitter,
    fingerprint: facts.fingerprint,
    recordType: e?.recordType ?? null,
    timestamp: e ? isoTime(e.timestamp) : null,
  };
  const out = createOutput();
  if (o.json) return out.json(j);
  out.out(`entry ${j.index} is in ${j.origin} at tree size ${j.treeSize}`);
  out.out(`root         ${j.rootHash}`);
  out.out(`leaf hash    ${j.leafHash}`);
  if (e) {
    out.out(`submitter    ${j.submitter} (${j.fingerprint})`);
    out.out(`record type  ${j.recordType}`);
    out.out(`timestamp    ${j.timestamp}`);
  } else out.out('the document carries no entry: only its leaf hash is proven');
}

export function registerLogAuditCommands(log: Command): void {
  const auditCmd = log
    .command('audit')
    .description("audit a log from its read API and its verifier key alone: checkpoint signature and witnesses, consistency with the last audit, every tile against the root, every entry's format and submitter signature; a report per submitter and record type")
    .option('--state <file>', 'the audit state: the last audited checkpoint (default: $XDG_STATE_HOME or ~/.local/state, lifeboat/audit/<hash of origin>.json)')
    .option('--full', 'check every entry again, not only those added since the state’s checkpoint')
    .option('--follow', 'keep auditing each new checkpoint (only its new tiles and entries) until stopped; one line per checkpoint')
    .option('--every <duration>', 'with --follow: how often to read the checkpoint (default 10s)', parseDuration)
    .option('--keys', 'also report key-share backup coverage: per key, the members with a current-epoch record, the threshold, and whether the log alone can recover it (reads every entry, keys at risk first)')
    .option('--quiet', 'no progress on stderr')
    .option('--json', 'print the report as JSON (with --follow: one JSON object per line)');
  addWitnessOptions(addSourceOptions(auditCmd))
    .addHelpText('after', '\nExit codes: 0 the audit passed (the state file advanced), 1 it could not run or an entry is of an unknown\nversion, 3 refused for safety: a fork (log_forked, both checkpoints named), an altered tile or bundle\n(tile_invalid, entry_bundle_invalid), a bad checkpoint signature, or an entry no submitter signed\n(log_entry_invalid).\nWith --keys, exit 1 (keys_at_risk) when the audit passed but a key is not recoverable from the log alone.\nSee docs/log.md, "Auditing".')
    .action(audit);

  const proveCmd = log
    .command('prove')
    .description('print the inclusion proof document of entry N (with the entry) against the log’s current verified checkpoint')
    .requiredOption('--index <n>', 'the entry’s index', intIn(0, Number.MAX_SAFE_INTEGER))
    .option('--size <s>', 'prove against the tree of this size: the current checkpoint, or the one the audit state kept', intIn(0, Number.MAX_SAFE_INTEGER))
    .option('--state <file>', 'with --size: the audit state file holding the checkpoint of that size (default as for audit)')
    .option('--out <file>', 'write the document to this file instead of stdout')
    .option('--json', 'failures as JSON on stdout too (the document itself is JSON)');
  addWitnessOptions(addSourceOptions(proveCmd)).action(prove);

  addWitnessOptions(
    log
      .command('verify-proof')
      .description('check an inclusion proof document with the log’s key: checkpoint signature (and witnesses), the path to its root, and the entry’s submitter signature; prints index, size, root, submitter and record type')
      .argument('<file>', 'the document, or - for stdin')
      .requiredOption('--log-key <vkey>', "the log's verifier key"),
  )
    .option('--json', 'print JSON')
    .action(verifyProof);
}
