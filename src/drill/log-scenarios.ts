/**
 * The public backup log on its worst days (docs/log.md), with real processes on loopback: a log with
 * two witnesses, entries from three submitters, the log SIGKILLed and restarted, an audit from another
 * directory with the log's verifier key alone, and then a forked log (a copy of the log's directory
 * taken earlier, grown with other entries under the same key to the same size) that the witnesses and
 * the audit both refuse by name (`log_forked`), each witness keeping the two signed checkpoints as
 * evidence. Every step goes through the CLI, except the attacker's offer of its forked checkpoint to
 * the witnesses (the library's cosigner): an honest `log serve` on the copy stops by itself once a
 * witness says it holds a larger tree (docs/log.md, store_behind).
 */
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LifeboatError } from '../errors.js';
import { loadIdentity } from '../identity.js';
import { type Checkpoint, checkpointLabel, peekCheckpoint } from '../log/checkpoint.js';
import { createEntry } from '../log/entry.js';
import { proveConsistency } from '../log/proof.js';
import { blobTileReader, directoryBlobs } from '../log/server/blobs.js';
import { addEntry } from '../log/server/client.js';
import { loadLogConfig, logPaths, saveLogConfig } from '../log/server/config.js';
import { tileHashReader } from '../log/tile-reader.js';
import { collectCosignatures } from '../log/witness/cosigner.js';
import { utf8 } from '../util/bytes.js';
import { type RunningServer, runCli, startServer } from './proc.js';
import { expectOk, type Scenario } from './runner.js';
import { tlsFetch } from '../util/tls-fetch.js';

/** What the log scenarios share. */
export interface LogDrillContext {
  dir: string;
  servers: RunningServer[];
  logDir?: string;
  logUrl?: string;
  logKey?: string;
  log?: RunningServer;
  witnessKeys?: string[];
  submitters?: { name: string; file: string }[];
  /** Entries acknowledged per submitter name. */
  added?: Map<string, number>;
  /** A copy of the log's directory taken while it was down, and the size it held then. */
  snapshot?: { dir: string; size: number };
  auditState?: string;
  auditedSize?: number;
}

const ORIGIN = 'drill.lifeboat.invalid/log';

function check(ok: boolean, what: string): void {
  if (!ok) throw new LifeboatError('drill_check_failed', what);
}

function need<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new LifeboatError('drill_check_failed', `${what} is missing: an earlier step did not run`);
  return v;
}

async function json<T>(args: string[], what: string): Promise<T> {
  return JSON.parse(expectOk(await runCli([...args, '--json']), what).stdout) as T;
}

/** Starts `log serve` on `dataDir`, on `port` when given (a restart keeps its URL). */
async function serveLog(ctx: LogDrillContext, dataDir: string, port = 0): Promise<RunningServer> {
  const server = await startServer(['log', 'serve', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`, '--interval', '200ms', '--log-level', 'silent', '--json']);
  ctx.servers.push(server);
  return server;
}

/** Adds `count` entries from one submitter through `lifeboat log add`, checking each proof. */
async function addEntries(logUrl: string, logKey: string, sub: { name: string; file: string }, count: number, dir: string, tag: string): Promise<number[]> {
  const indexes: number[] = [];
  for (let i = 0; i < count; i++) {
    const payload = join(dir, `${sub.name}-${tag}-${i}.bin`);
    writeFileSync(payload, `${tag} backup ${i} from ${sub.name}`);
    const doc = await json<{ index: number }>(
      ['log', 'add', '--log', logUrl, '--log-key', logKey, '--identity', sub.file, '--type', 'drill/v1', '--payload-file', payload],
      `log add (${sub.name})`,
    );
    indexes.push(doc.index);
  }
  return indexes;
}

const setUp: Scenario<LogDrillContext> = {
  name: 'public log: a log with two witnesses and three enrolled submitters',
  async run(ctx) {
    mkdirSync(ctx.dir, { recursive: true });
    const logDir = join(ctx.dir, 'log');
    const init = await json<{ verifier_key: string }>(['log', 'init', '--origin', ORIGIN, '--data-dir', logDir, '--interval', '200ms'], 'log init');
    ctx.logDir = logDir;
    ctx.logKey = init.verifier_key;
    // Two witnesses, each a process of its own, set up side by side.
    const witnesses = await Promise.all(
      [1, 2].map(async (n) => {
        const wdir = join(ctx.dir, `witness${n}`);
        const w = await json<{ vkey: string }>(['log', 'witness', 'init', '--name', `witness${n}.drill.invalid`, '--data-dir', wdir], `witness ${n} init`);
        expectOk(await runCli(['log', 'witness', 'add-log', '--vkey', init.verifier_key, '--data-dir', wdir]), `witness ${n} add-log`);
        const server = await startServer(['log', 'witness', 'serve', '--data-dir', wdir, '--listen', '127.0.0.1:0', '--log-level', 'silent', '--json']);
        ctx.servers.push(server);
        return { vkey: w.vkey, url: server.url };
      }),
    );
    for (const [i, w] of witnesses.entries()) {
      expectOk(await runCli(['log', 'witnesses', 'add', '--vkey', w.vkey, '--url', w.url, '--data-dir', logDir]), `log witnesses add ${i + 1}`);
    }
    ctx.witnessKeys = witnesses.map((w) => w.vkey);
    const ids = await Promise.all(
      ['node-a', 'node-b', 'node-c'].map(async (name) => {
        const file = join(ctx.dir, `${name}.identity`);
        const id = await json<{ identity: string }>(['log', 'identity', 'new', '--out', file], `identity for ${name}`);
        return { name, file, identity: id.identity };
      }),
    );
    for (const s of ids) expectOk(await runCli(['log', 'enrol', '--name', s.name, '--identity', s.identity, '--data-dir', logDir]), `enrol ${s.name}`);
    ctx.submitters = ids.map(({ name, file }) => ({ name, file }));
    ctx.log = await serveLog(ctx, logDir);
    ctx.logUrl = ctx.log.url;
    ctx.added = new Map();
  },
};

const appendAndCrash: Scenario<LogDrillContext> = {
  name: 'public log: entries from three submitters; the log is SIGKILLed and restarts with all of them',
  async run(ctx) {
    const [logUrl, logKey, subs, added] = [need(ctx.logUrl, 'the log'), need(ctx.logKey, 'the log key'), need(ctx.submitters, 'submitters'), need(ctx.added, 'counts')];
    const acked = await Promise.all(subs.map((s) => addEntries(logUrl, logKey, s, 2, ctx.dir, 'first')));
    subs.forEach((s, i) => added.set(s.name, acked[i]!.length));
    const all = acked.flat();
    check(new Set(all).size === all.length, `the log gave ${all.length} entries ${new Set(all).size} distinct indexes`);
    // The crash: no clean shutdown. Keep a copy of the directory as it is now, for the fork later.
    await need(ctx.log, 'the log').stop('SIGKILL');
    const snapDir = join(ctx.dir, 'log-copy');
    cpSync(need(ctx.logDir, 'the log dir'), snapDir, { recursive: true });
    ctx.snapshot = { dir: snapDir, size: all.length };
    ctx.log = await serveLog(ctx, need(ctx.logDir, 'the log dir'), Number(new URL(logUrl).port));
    const more = await Promise.all(subs.map((s) => addEntries(logUrl, logKey, s, 1, ctx.dir, 'second')));
    subs.forEach((s, i) => added.set(s.name, (added.get(s.name) ?? 0) + more[i]!.length));
    const indexes = [...all, ...more.flat()];
    check(Math.max(...indexes) === indexes.length - 1 && new Set(indexes).size === indexes.length, 'the entries after the restart do not follow the acknowledged ones');
  },
};

interface AuditJson {
  ok: boolean;
  tree_size: number;
  witnesses: { name: string }[];
  submitters: { entries: number }[];
}

const audit: Scenario<LogDrillContext> = {
  name: 'public log: an audit from another directory, with the verifier keys alone, passes',
  async run(ctx) {
    const auditDir = join(ctx.dir, 'auditor');
    mkdirSync(auditDir, { recursive: true });
    ctx.auditState = join(auditDir, 'state.json');
    const witnesses = need(ctx.witnessKeys, 'witness keys').flatMap((k) => ['--witness', k]);
    const report = await json<AuditJson>(
      ['log', 'audit', '--log', need(ctx.logUrl, 'the log'), '--log-key', need(ctx.logKey, 'the log key'), ...witnesses, '--quorum', '2', '--state', ctx.auditState, '--quiet'],
      'log audit',
    );
    const total = [...need(ctx.added, 'counts').values()].reduce((a, b) => a + b, 0);
    check(report.ok && report.tree_size === total, `the audit saw ${report.tree_size} entries, ${total} were acknowledged`);
    check(report.witnesses.length === 2, `the checkpoint carries ${report.witnesses.length} of 2 co-signatures`);
    check(report.submitters.length === 3 && report.submitters.every((s) => s.entries === 3), 'the audit does not count 3 entries for each of the 3 submitters');
    ctx.auditedSize = report.tree_size;
  },
};

/** The checkpoint a log serves, parsed (its label names it in messages). */
async function servedCheckpoint(url: string): Promise<Checkpoint> {
  const res = await tlsFetch(`${url}/checkpoint`);
  check(res.ok, `${url}/checkpoint answered ${res.status}`);
  return peekCheckpoint(await res.text());
}

const fork: Scenario<LogDrillContext> = {
  name: 'public log: a forked log (same key, other entries, the same size) is refused by both witnesses, which keep the evidence, and by the audit',
  async run(ctx) {
    const snap = need(ctx.snapshot, 'the copy of the log');
    const size = need(ctx.auditedSize, 'the audited size');
    const subs = need(ctx.submitters, 'submitters');
    const logKey = need(ctx.logKey, 'the log key');
    const real = await servedCheckpoint(need(ctx.logUrl, 'the log'));
    check(real.size === size, `the log serves size ${real.size}, the audit saw ${size}`);
    // An honest `log serve` on the copy stops at its first batch (the witnesses hold a larger tree:
    // store_behind), so the attacker runs it without its witnesses, grows it to the real log's size
    // with other entries, then offers the forked checkpoint to the witnesses itself.
    const paths = logPaths(snap.dir);
    const config = loadLogConfig(paths);
    saveLogConfig(paths, { ...config, witnesses: [], quorum: null });
    const forked = await serveLog(ctx, snap.dir);
    // The attacker's entries go in straight through the client: the fork is what is being drilled.
    const alice = loadIdentity(subs[0]!.file);
    for (let i = snap.size; i < size; i++) {
      await addEntry(forked.url, createEntry({ recordType: 'drill/v1', payload: utf8.encode(`forked entry ${i}`) }, alice));
    }
    const note = await (await tlsFetch(`${forked.url}/checkpoint`)).text();
    const other = peekCheckpoint(note);
    check(other.size === size && checkpointLabel(other) !== checkpointLabel(real), `the forked copy serves ${checkpointLabel(other)}, not another root of size ${size}`);
    const reader = tileHashReader({ size: other.size, root: other.rootHash }, blobTileReader(directoryBlobs(paths.public)));
    const offered = await collectCosignatures({
      checkpoint: note,
      witnesses: config.witnesses,
      prove: (a, b) => proveConsistency(a, b, reader),
      sizes: { listWitnessStates: async () => [], setWitnessSize: async () => {} },
    });
    check(offered.cosigned === 0, `${offered.cosigned} witness(es) co-signed the forked checkpoint`);
    const witnesses = need(ctx.witnessKeys, 'witness keys').flatMap((k) => ['--witness', k]);
    // Without co-signatures the forked checkpoint fails any quorum; the fork itself is what the
    // auditor must name, so it audits against the log key alone here.
    const r = await runCli(['log', 'audit', '--log', forked.url, '--log-key', logKey, '--state', need(ctx.auditState, 'the audit state'), '--quiet', '--json']);
    check(r.code === 3, `the audit of the forked log exited ${r.code}, not 3 (a refusal for safety)`);
    const failure = JSON.parse(r.stdout) as { err_type?: string; message?: string };
    check(failure.err_type === 'log_forked', `the audit of the forked log failed with ${failure.err_type}, not log_forked`);
    for (const cp of [real, other]) check((failure.message ?? '').includes(checkpointLabel(cp)), `the audit's refusal does not name ${checkpointLabel(cp)}: ${failure.message}`);
    const q = await runCli(['log', 'audit', '--log', forked.url, '--log-key', logKey, ...witnesses, '--quorum', '1', '--state', join(ctx.dir, 'fresh-state.json'), '--quiet']);
    check(q.code !== 0, 'a fresh auditor requiring a witness accepted the forked log');
    // The log waits for its quorum only, so a witness's answer may come after the copy's start returned.
    for (const n of [1, 2]) {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const forks = await json<{ kind: string; held: string; offered: string }[]>(['log', 'witness', 'forks', '--data-dir', join(ctx.dir, `witness${n}`)], `witness ${n} forks`);
        const proof = forks.find((f) => f.kind === 'same_size_different_root' && f.held === checkpointLabel(real) && f.offered === checkpointLabel(other));
        if (proof) break;
        check(Date.now() < deadline, `witness ${n} kept no same_size_different_root evidence of ${checkpointLabel(other)} against ${checkpointLabel(real)} (it kept: ${JSON.stringify(forks)})`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    await forked.stop();
  },
};

export const logScenarios: Scenario<LogDrillContext>[] = [setUp, appendAndCrash, audit, fork];
