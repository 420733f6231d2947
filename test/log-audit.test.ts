/**
 * `lifeboat log audit` against logs written by test/helpers/log-fixture.ts (the pure functions of
 * src/log), read from a directory and over HTTP: the report, incremental audits from the state file,
 * altered tiles, bundles, entries and checkpoints, witness quorums, forks (both checkpoints named,
 * exit 3, state kept), --follow, and bad arguments.
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type CliResult, runCli, cliArgs, tracked } from './helpers/cli.js';
import { LogFixture, RECORD_TYPES, fixtureEntry, fixtureKeys, serveDir } from './helpers/log-fixture.js';
import { trackedTempDir } from './helpers/tmp.js';
import { encodePublicIdentity } from '../src/identity.js';
import { peekCheckpoint, checkpointLabel } from '../src/log/checkpoint.js';

const tmp = trackedTempDir('lifeboat-log-audit-');
let n = 0;
const fresh = (name: string): string => join(tmp, `${name}-${n++}`);

interface Report {
  ok: boolean;
  err_type?: string;
  tree_size: number;
  root_hash: string;
  checkpoint: string;
  witnesses: { name: string }[];
  previous: { tree_size: number; root_hash: string } | null;
  checked: { tiles: number; bundles: number; entries: number; entries_from: number };
  entries: number;
  first_timestamp: string;
  last_timestamp: string;
  submitters: { submitter: string; fingerprint: string; entries: number }[];
  record_types: { record_type: string; entries: number }[];
  bad_entry_count: number;
  bad_entries: { index: number; err_type: string }[];
  state_advanced: boolean;
}

const audit = (args: string[]): Promise<CliResult> => runCli(['log', 'audit', '--quiet', ...args], { timeoutMs: 60_000 });
const json = <T = Report>(r: CliResult): T => JSON.parse(r.stdout) as T;
function failed(r: CliResult, code: number, errType: string): { message: string; hint: string } {
  assert.equal(r.code, code, `exit ${r.code}, stderr: ${r.stderr}`);
  assert.match(r.stderr, new RegExp(`\\(${errType}\\)`), r.stderr);
  return { message: /error: (.*) \(/.exec(r.stderr)?.[1] ?? '', hint: /hint: (.*)/.exec(r.stderr)?.[1] ?? '' };
}

/** Expected counts for fixture entries [0, size). */
function expectedCounts(f: LogFixture, size: number) {
  const perSubmitter = f.keys.submitters.map((s, k) => ({ submitter: encodePublicIdentity(s.id), entries: Math.ceil((size - k) / f.keys.submitters.length) }));
  const perType = RECORD_TYPES.map((t, k) => ({ record_type: t, entries: Math.ceil((size - k) / RECORD_TYPES.length) }));
  return { perSubmitter, perType };
}
const bySubmitter = (r: Report) => r.submitters.map((s) => ({ submitter: s.submitter, entries: s.entries })).sort((a, b) => a.submitter.localeCompare(b.submitter));
const sortSub = (x: { submitter: string; entries: number }[]) => [...x].sort((a, b) => a.submitter.localeCompare(b.submitter));

/** Starts `log audit --follow`, collecting its output. */
async function followHelpers() {
  const { spawn } = await import('node:child_process');
  const { REPO_ROOT } = await import('./helpers/cli.js');
  return {
    startFollow: async (args: string[]) => {
      const child = tracked(spawn(process.execPath, [...cliArgs(), 'log', 'audit', '--quiet', '--follow', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] }));
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      const waitFor = async (pred: () => boolean, what: string): Promise<void> => {
        for (let i = 0; i < 600 && !pred(); i++) await new Promise((r) => setTimeout(r, 100));
        assert.ok(pred(), `${what}; stdout: ${stdout} stderr: ${stderr}`);
      };
      after(() => void child.kill('SIGKILL'));
      return { child, exited, waitFor, stdout: () => stdout, stderr: () => stderr };
    },
  };
}

describe('log audit', () => {
  const keys = fixtureKeys({ witnesses: 2, submitters: 3 });
  const wargs = keys.witnesses.flatMap((w) => ['--witness', w.vkey]);
  let log: LogFixture;
  let server: Awaited<ReturnType<typeof serveDir>>;

  before(async () => {
    log = new LogFixture(fresh('log'), keys);
    await log.append(700);
    server = await serveDir(log.dir);
  });
  after(() => server.close());

  it('a clean log: the report counts per submitter and record type, names the witnesses, and the state file keeps the checkpoint', async () => {
    const state = join(fresh('state'), 'audit.json');
    const r = await audit(['--from-dir', log.dir, '--log-key', keys.logKey, ...wargs, '--state', state, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const rep = json(r);
    const cp = peekCheckpoint(log.note);
    assert.equal(rep.ok, true);
    assert.equal(rep.tree_size, 700);
    assert.equal(rep.root_hash, Buffer.from(cp.rootHash).toString('base64'));
    assert.deepEqual(rep.witnesses.map((w) => w.name).sort(), keys.witnesses.map((w) => w.signer.name).sort());
    const want = expectedCounts(log, 700);
    assert.deepEqual(bySubmitter(rep), sortSub(want.perSubmitter));
    assert.deepEqual(rep.record_types.map((t) => ({ record_type: t.record_type, entries: t.entries })).sort((a, b) => a.record_type.localeCompare(b.record_type)), want.perType);
    assert.equal(rep.first_timestamp, new Date(1_700_000_000_000).toISOString());
    assert.equal(rep.last_timestamp, new Date(1_700_000_000_000 + 699_000).toISOString());
    assert.deepEqual(rep.checked, { tiles: 4, bundles: 3, entries: 700, entries_from: 0 });
    assert.deepEqual([rep.bad_entry_count, rep.previous, rep.state_advanced], [0, null, true]);
    const saved = JSON.parse(readFileSync(state, 'utf8')) as { tree_size: number; checkpoint: string; entries: number };
    assert.deepEqual([saved.tree_size, saved.checkpoint, saved.entries], [700, log.note, 700]);
    assert.equal(statSync(state).mode & 0o777, 0o600);
  });

  it('over HTTP it reads the same files and gives the same report (text form too)', async () => {
    const [viaHttp, text] = await Promise.all([
      audit(['--log', `${server.url}/`, '--log-key', keys.logKey, ...wargs, '--state', join(fresh('state'), 'a.json'), '--json']),
      audit(['--log', server.url, '--log-key', keys.logKey, '--state', join(fresh('state'), 'b.json')]),
    ]);
    assert.equal(viaHttp.code, 0, viaHttp.stderr);
    const rep = json(viaHttp);
    assert.deepEqual([rep.tree_size, rep.root_hash, bySubmitter(rep)], [700, Buffer.from(peekCheckpoint(log.note).rootHash).toString('base64'), sortSub(expectedCounts(log, 700).perSubmitter)]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^tree size {4}700$/m);
    assert.match(text.stdout, /^ {2}keyshare-backup\/v1 +350$/m);
    assert.match(text.stdout, /\(advanced\)/);
  });

  it('a grown log is audited from the saved state: only the new entries are read and checked, and the counts cover the whole tree', async () => {
    const g = new LogFixture(fresh('grow'), keys);
    await g.append(600);
    const state = join(fresh('state'), 's.json');
    const first = await audit(['--from-dir', g.dir, '--log-key', keys.logKey, '--state', state, '--json']);
    assert.equal(first.code, 0, first.stderr);
    await g.append(400);
    const second = await audit(['--from-dir', g.dir, '--log-key', keys.logKey, '--state', state, '--json']);
    assert.equal(second.code, 0, second.stderr);
    const rep = json(second);
    assert.deepEqual(rep.previous, { tree_size: 600, root_hash: json(first).root_hash });
    // every hash tile of the 1000-entry tree (3 full + 1 partial at level 0, 1 partial at level 1), bundles 2 and 3 only
    assert.deepEqual(rep.checked, { tiles: 5, bundles: 2, entries: 400, entries_from: 600 });
    assert.deepEqual(bySubmitter(rep), sortSub(expectedCounts(g, 1000).perSubmitter));
    assert.equal(JSON.parse(readFileSync(state, 'utf8')).tree_size, 1000);
    // --full checks every entry again, with the same counts
    const full = json(await audit(['--from-dir', g.dir, '--log-key', keys.logKey, '--state', state, '--full', '--json']));
    assert.deepEqual([full.checked.entries, full.checked.entries_from, bySubmitter(full)], [1000, 0, bySubmitter(rep)]);
  });

  it('a mirror whose partial tiles are gone is read from the full tiles of the same index', async () => {
    const m = new LogFixture(fresh('mirror'), keys);
    await m.append(300);
    const old = m.note;
    await m.append(300);
    // serve the 300-entry checkpoint from a copy where tile/0/001.p/44 and its bundle were removed
    const dir = fresh('mirror-copy');
    cpSync(m.dir, dir, { recursive: true });
    m.publish(old, dir);
    rmSync(join(dir, 'tile', '0', '001.p'), { recursive: true });
    rmSync(join(dir, 'tile', 'entries', '001.p'), { recursive: true });
    const r = await audit(['--from-dir', dir, '--log-key', keys.logKey, '--state', join(fresh('state'), 'm.json'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([json(r).tree_size, json(r).checked.entries], [300, 300]);
    // without the full tile either, the missing file is named
    rmSync(join(dir, 'tile', '0', '001'));
    const gone = await audit(['--from-dir', dir, '--log-key', keys.logKey, '--state', join(fresh('state'), 'm.json')]);
    assert.match(failed(gone, 1, 'log_file_missing').message, /tile\/0\/001\.p\/44 is missing/);
  });

  describe('altered data is refused for safety (exit 3) and the state file is not advanced', () => {
    let state: string;
    let kept: string;
    before(async () => {
      state = join(fresh('state'), 't.json');
      const r = await audit(['--from-dir', log.dir, '--log-key', keys.logKey, '--state', state]);
      assert.equal(r.code, 0, r.stderr);
      kept = readFileSync(state, 'utf8');
    });
    const copy = (): string => {
      const dir = fresh('copy');
      cpSync(log.dir, dir, { recursive: true });
      return dir;
    };
    const flip = (dir: string, path: string, at: number): void => {
      const file = join(dir, ...path.split('/'));
      const b = readFileSync(file);
      b[at]! ^= 1;
      writeFileSync(file, b);
    };

    it('a tampered tile (tile_invalid), a tampered bundle (entry_bundle_invalid)', async () => {
      const t = copy();
      flip(t, 'tile/0/001', 100);
      const b = copy();
      flip(b, 'tile/entries/001', 300);
      const [rt, rb] = await Promise.all([
        audit(['--from-dir', t, '--log-key', keys.logKey, '--state', state]),
        audit(['--from-dir', b, '--log-key', keys.logKey, '--state', state, '--full']),
      ]);
      assert.match(failed(rt, 3, 'tile_invalid').message, /tile\/0\/001/);
      assert.match(failed(rb, 3, 'entry_bundle_invalid').message, /tile\/entries\/001/);
      assert.equal(readFileSync(state, 'utf8'), kept);
    });

    it('a tile made longer than any tile can be is altered data too (tile_invalid, exit 3), not a bad answer', async () => {
      const t = copy();
      const file = join(t, 'tile', '0', '001');
      writeFileSync(file, Buffer.concat([readFileSync(file), Buffer.from('x')]));
      const r = await audit(['--from-dir', t, '--log-key', keys.logKey, '--state', state]);
      assert.match(failed(r, 3, 'tile_invalid').message, /tile\/0\/001/);
      assert.equal(readFileSync(state, 'utf8'), kept);
    });

    it('a wrong log signature (note_signature_invalid, exit 3); a missing one or another key (note_unverified, exit 1)', async () => {
      const sig = copy();
      const lines = log.note.split('\n');
      const logLine = lines.findIndex((l) => l.startsWith(`— ${keys.origin} `));
      const altered = [...lines];
      const b64 = altered[logLine]!.split(' ')[2]!;
      altered[logLine] = `— ${keys.origin} ${b64.slice(0, 10)}${b64[10] === 'A' ? 'B' : 'A'}${b64.slice(11)}`;
      log.publish(altered.join('\n'), sig);
      const missing = copy();
      log.publish(lines.filter((_, i) => i !== logLine).join('\n'), missing);
      const other = fixtureKeys({ origin: keys.origin });
      const [rs, rm, ro] = await Promise.all([
        audit(['--from-dir', sig, '--log-key', keys.logKey, '--state', state]),
        audit(['--from-dir', missing, '--log-key', keys.logKey, '--state', state]),
        audit(['--from-dir', log.dir, '--log-key', other.logKey, '--state', join(fresh('state'), 'o.json')]),
      ]);
      failed(rs, 3, 'note_signature_invalid');
      failed(rm, 1, 'note_unverified');
      failed(ro, 1, 'note_unverified');
      assert.equal(readFileSync(state, 'utf8'), kept);
    });

    it('an entry in the tree that its submitter did not sign: the report lists it by index and reason, exit 3', async () => {
      const f = new LogFixture(fresh('badentry'), keys);
      const entries = Array.from({ length: 20 }, (_, i) => fixtureEntry(keys, i));
      entries[7]![entries[7]!.length - 70]! ^= 1; // a payload byte, signature left as it was
      entries[12] = entries[12]!.slice(0, 40); // cut short
      await f.append(entries);
      const s = join(fresh('state'), 'bad.json');
      const r = await audit(['--from-dir', f.dir, '--log-key', keys.logKey, '--state', s, '--json']);
      failed(r, 3, 'log_entry_invalid');
      const rep = json(r);
      assert.equal(rep.ok, false);
      assert.equal(rep.err_type, 'log_entry_invalid');
      assert.deepEqual(rep.bad_entries.map((b) => [b.index, b.err_type]), [[7, 'entry_signature_invalid'], [12, 'truncated']]);
      assert.equal(rep.bad_entry_count, 2);
      assert.equal(existsSync(s), false);
    });
  });

  it('witnesses: too few co-signatures is witness_quorum_not_met naming the missing one; a smaller --quorum passes', async () => {
    const f = new LogFixture(fresh('quorum'), keys, 1);
    await f.append(10);
    const [two, one] = await Promise.all([
      audit(['--from-dir', f.dir, '--log-key', keys.logKey, ...wargs, '--state', join(fresh('state'), 'q.json')]),
      audit(['--from-dir', f.dir, '--log-key', keys.logKey, ...wargs, '--quorum', '1', '--state', join(fresh('state'), 'q.json'), '--json']),
    ]);
    assert.match(failed(two, 1, 'witness_quorum_not_met').message, new RegExp(`missing: ${keys.witnesses[1]!.signer.name.replace(/\./g, '\\.')}`));
    assert.equal(one.code, 0, one.stderr);
    assert.deepEqual(json(one).witnesses.map((w) => w.name), [keys.witnesses[0]!.signer.name]);
  });

  describe('forks: log_forked names both checkpoints, exits 3, keeps evidence, and leaves the state as it was', () => {
    const seen = new LogFixture(fresh('seen'), keys);
    let state: string;
    let kept: string;
    before(async () => {
      await seen.append(700);
      state = join(fresh('fork-state'), 'f.json');
      assert.equal((await audit(['--from-dir', seen.dir, '--log-key', keys.logKey, '--state', state])).code, 0);
      kept = readFileSync(state, 'utf8');
    });
    const forkOf = async (size: number, variant: string): Promise<LogFixture> => {
      const f = new LogFixture(fresh('fork'), keys);
      await f.append(size, variant);
      return f;
    };
    const cases: [string, number, string, RegExp][] = [
      ['the same size with another root', 700, 'b', /has the same size and another root than/],
      ['a smaller tree', 600, 'a', /is a smaller tree than/],
      ['a grown tree that does not extend the one seen', 900, 'b', /is not consistent with/],
    ];
    for (const [name, size, variant, why] of cases) {
      it(name, async () => {
        const f = await forkOf(size, variant);
        const r = await audit(['--from-dir', f.dir, '--log-key', keys.logKey, '--state', state, '--json']);
        const { message, hint } = failed(r, 3, 'log_forked');
        assert.match(message, why);
        assert.ok(message.includes(checkpointLabel(peekCheckpoint(f.note))), message);
        assert.ok(message.includes(checkpointLabel(peekCheckpoint(seen.note))), message);
        assert.equal(json<{ ok: boolean; err_type: string }>(r).err_type, 'log_forked');
        assert.equal(readFileSync(state, 'utf8'), kept);
        const evidence = /kept in (\S+);/.exec(hint)?.[1];
        assert.ok(evidence && readFileSync(evidence, 'utf8').includes(seen.note) && readFileSync(evidence, 'utf8').includes(f.note), hint);
      });
    }
  });

  it('--follow prints one line per new checkpoint, audits only what is new, and stops with exit 3 on a fork', async () => {
    const f = new LogFixture(fresh('follow'), keys);
    await f.append(700);
    const state = join(fresh('state'), 'follow.json');
    const { startFollow } = await followHelpers();
    const run = await startFollow(['--from-dir', f.dir, '--log-key', keys.logKey, '--state', state, '--every', '200ms', '--json']);
    const { waitFor, exited, child } = run;
    const lines = () => run.stdout().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { tree_size: number; new_entries: number; ok: boolean; err_type?: string });
    try {
      await waitFor(() => lines().some((l) => l.tree_size === 700), 'first checkpoint');
      await f.append(300);
      await waitFor(() => lines().some((l) => l.tree_size === 1000), 'grown checkpoint');
      assert.deepEqual(lines().map((l) => [l.tree_size, l.new_entries, l.ok]), [[700, 700, true], [1000, 300, true]]);
      await waitFor(() => JSON.parse(readFileSync(state, 'utf8')).tree_size === 1000, 'state advanced');
      // the log now serves a smaller tree (a consistent prefix: only the checkpoint is new)
      const fork = new LogFixture(fresh('follow-fork'), keys);
      await fork.append(800);
      fork.publishInto(f.dir);
      assert.equal(await exited, 3, run.stderr());
      assert.match(run.stderr(), /is a smaller tree than/);
      assert.equal(JSON.parse(readFileSync(state, 'utf8')).tree_size, 1000);
      assert.deepEqual(lines().map((l) => [l.ok, l.err_type]), [[true, undefined], [true, undefined], [false, 'log_forked']]);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('a state file that was altered or is of another key is audit_state_invalid, and is left as it was', async () => {
    const state = join(fresh('state'), 'x.json');
    assert.equal((await audit(['--from-dir', log.dir, '--log-key', keys.logKey, '--state', state])).code, 0);
    const good = JSON.parse(readFileSync(state, 'utf8')) as Record<string, unknown>;
    const variant = (change: (d: Record<string, unknown>) => void): string => {
      const d = structuredClone(good);
      change(d);
      const file = `${fresh('state-bad')}.json`;
      writeFileSync(file, JSON.stringify(d));
      return file;
    };
    const files = [
      variant((d) => (d.checkpoint = (d.checkpoint as string).replace('\n700\n', '\n600\n'))),
      variant((d) => (d.tree_size = 600)),
      variant((d) => ((d.submitters as { entries: number }[])[0]!.entries += 1)),
      variant((d) => (d.extra = true)),
    ];
    const other = fixtureKeys({ origin: keys.origin });
    const rs = await Promise.all([
      ...files.map((f) => audit(['--from-dir', log.dir, '--log-key', keys.logKey, '--state', f])),
      audit(['--from-dir', log.dir, '--log-key', other.logKey, '--state', state]),
    ]);
    for (const r of rs) failed(r, 1, 'audit_state_invalid');
    assert.deepEqual(JSON.parse(readFileSync(state, 'utf8')), good);
  });

  it('--follow stops cleanly on SIGTERM (exit 0), printing text lines over http', async () => {
    const { startFollow } = await followHelpers();
    const f = await startFollow(['--log', server.url, '--log-key', keys.logKey, '--state', join(fresh('state'), 'sig.json'), '--every', '100ms']);
    await f.waitFor(() => /size 700 root \S+ new entries 700$/m.test(f.stdout()), 'a text line');
    f.child.kill('SIGTERM');
    assert.equal(await f.exited, 0, f.stderr());
  });

  it('bad arguments and unreachable logs are clear errors', async () => {
    const nowhere = fresh('nowhere');
    const rs = await Promise.all([
      audit(['--log', server.url, '--from-dir', log.dir, '--log-key', keys.logKey]),
      audit(['--log-key', keys.logKey]),
      audit(['--from-dir', log.dir]),
      audit(['--from-dir', log.dir, '--log-key', 'not-a-key']),
      audit(['--from-dir', log.dir, '--log-key', keys.witnesses[0]!.vkey]),
      audit(['--from-dir', log.dir, '--log-key', keys.logKey, ...wargs, '--quorum', '3']),
      audit(['--from-dir', log.dir, '--log-key', keys.logKey, '--every', '5s']),
      audit(['--from-dir', log.dir, '--log-key', keys.logKey, '--follow', '--every', '1ms']),
      audit(['--log', 'ftp://example.test/log', '--log-key', keys.logKey]),
      audit(['--log', 'http://127.0.0.1:1', '--log-key', keys.logKey, '--state', join(nowhere, 's.json')]),
      audit(['--from-dir', nowhere, '--log-key', keys.logKey, '--state', join(nowhere, 's.json')]),
      audit(['--from-dir', log.dir, '--log-key', keys.logKey, '--witness', keys.logKey]),
    ]);
    const got = rs.map((r) => [r.code, /\((\w+)\)\n/.exec(r.stderr)?.[1]]);
    assert.deepEqual(got, [
      [2, 'usage'],
      [2, 'usage'],
      [2, 'usage'],
      [1, 'verifier_key_invalid'],
      [1, 'verifier_key_invalid'],
      [2, 'usage'],
      [2, 'usage'],
      [2, 'usage'],
      [1, 'invalid_input'],
      [1, 'log_unreachable'],
      [1, 'log_file_missing'],
      [1, 'verifier_key_invalid'],
    ]);
    assert.equal(existsSync(nowhere), false, 'a failed audit creates no state');
  });
});
