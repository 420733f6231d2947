/**
 * `lifeboat log audit --keys` (issue 11 point 5): key-share backup coverage from public data alone, on
 * logs written by test/helpers/log-fixture.ts holding records sealed by src/keyshare from several nodes
 * and keys: all recoverable; a log that drops a member's record (flagged at risk, listed first,
 * keys_at_risk exit 1); stale epochs not counted; a record of another key under the same key id not
 * counted; a record that does not verify is a bad entry; --json shape; complete coverage across an
 * incremental audit from the state file and under --follow.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encodePublicIdentity, type Identity, identityFingerprint } from '../src/identity.js';
import type { KeyShare } from '../src/keynode/frost/index.js';
import { deriveAgeRecipient, mnemonicCheck } from '../src/keyshare/age.js';
import { generateOperatorMnemonic } from '../src/keyshare/mnemonic.js';
import { atRisk, keyCoverage } from '../src/keyshare/coverage.js';
import { KEYSHARE_RECORD_TYPE, verifyRecord } from '../src/keyshare/record.js';
import { sealBackup } from '../src/keyshare/seal.js';
import { createEntry } from '../src/log/entry.js';
import { type CliResult, REPO_ROOT, runCli, cliArgs, tracked } from './helpers/cli.js';
import { dealtKey, nodeIdentity } from './helpers/keyshare.js';
import { fixtureEntry, fixtureKeys, LogFixture } from './helpers/log-fixture.js';
import { trackedTempDir } from './helpers/tmp.js';

interface Member {
  node: string;
  fingerprint: string;
  identifier: string;
  epoch: number;
  index: number;
  status: string;
}
interface Key {
  key_id: string;
  group_key: string;
  curve: string;
  threshold: number;
  max_signers: number;
  epoch: number;
  members: Member[];
  current_members: number;
  recoverable: boolean;
  replaced: boolean;
}
interface Report {
  ok: boolean;
  err_type?: string;
  message?: string;
  tree_size: number;
  checked: { entries: number; entries_from: number };
  bad_entry_count: number;
  bad_entries: { index: number; err_type: string }[];
  state_advanced: boolean;
  key_count: number;
  keys_at_risk: number;
  keys: Key[];
}

const tmp = trackedTempDir('lifeboat-log-audit-keys-');
let n = 0;
const fresh = (name: string): string => join(tmp, `${name}-${n++}`);

// three nodes, each with its own operator words (passphrase mode) or recipient (recipient mode)
const nodes = [nodeIdentity(), nodeIdentity(), nodeIdentity()];
const words = nodes.map(() => generateOperatorMnemonic());
const keyA = dealtKey('ed25519', 'key_a'); // 2 of 3
const keyB = dealtKey('secp256k1', 'key_b'); // 2 of 3
const keyC1 = dealtKey('bip340', 'key_c', { min: 2, max: 3 }); // epoch 1 of key_c ...
const keyC2 = keyC1; // ... and epoch 2 (a reshare keeps the group key; the fixture keeps the shares too)
const keyD = dealtKey('ed25519', 'key_d', { min: 3, max: 3 }); // 3 of 3
const otherB = dealtKey('secp256k1', 'key_b'); // another dealing that reuses the id key_b

/** An LBLE entry, submitted by `node`, holding its sealed record of `share` at `epoch`. */
async function record(node: number, share: KeyShare, epoch: number, how: 'passphrase' | 'recipient' = 'passphrase', by: Identity = nodes[node]!): Promise<Uint8Array> {
  const id = nodes[node]!;
  const m = words[node]!;
  const mode = how === 'passphrase' ? ({ mode: 'passphrase', mnemonic: m } as const) : ({ mode: 'recipient', recipient: await deriveAgeRecipient(m), mnemonicCheck: mnemonicCheck(m, id) } as const);
  const payload = await sealBackup({ key: share, tenant: 'acme', epoch, node: id }, mode);
  return createEntry({ recordType: KEYSHARE_RECORD_TYPE, payload }, by);
}

/** Entries of another record type, from another submitter (the log carries more than backups). */
function notes(count: number, by: Identity): Uint8Array[] {
  return Array.from({ length: count }, () => createEntry({ recordType: 'test-note/v1', payload: randomBytes(120) }, by));
}

/** The log's records, in order; `drop` leaves one out (a log that lost or withheld it). */
async function buildLog(dir: string, opts: { drop?: 'b2' } = {}): Promise<LogFixture> {
  const log = new LogFixture(dir, fixtureKeys({ witnesses: 1, submitters: 1 }));
  const other = log.keys.submitters[0]!.id;
  await log.append(notes(40, other));
  await log.append([await record(0, keyA[0]!, 1), await record(1, keyA[1]!, 1, 'recipient'), await record(2, keyA[2]!, 1)]);
  await log.append([await record(0, keyB[0]!, 1, 'recipient'), ...(opts.drop === 'b2' ? [] : [await record(1, keyB[1]!, 1)])]);
  await log.append(notes(300, other)); // a full tile in between
  // key_c: nodes 0 and 1 at epoch 2, node 2 only at epoch 1 (stale); node 0's epoch-1 record comes later and must not win
  await log.append([await record(0, keyC2[0]!, 2), await record(1, keyC1[1]!, 1), await record(1, keyC2[1]!, 2), await record(2, keyC1[2]!, 1)]);
  await log.append([await record(0, keyC1[0]!, 1)]);
  // key_d: 3 of 3, all current
  await log.append([await record(0, keyD[0]!, 1), await record(1, keyD[1]!, 1), await record(2, keyD[2]!, 1, 'recipient')]);
  return log;
}

const audit = (log: LogFixture, args: string[]): Promise<CliResult> =>
  runCli(['log', 'audit', '--quiet', '--from-dir', log.dir, '--log-key', log.keys.logKey, '--witness', log.keys.witnesses[0]!.vkey, '--state', join(log.dir, '..', `${n++}-state.json`), ...args], { timeoutMs: 120_000 });
const json = (r: CliResult): Report => JSON.parse(r.stdout) as Report;
const summary = (k: Key) => ({ key_id: k.key_id, current: k.current_members, threshold: k.threshold, recoverable: k.recoverable });
const token = (i: number): string => encodePublicIdentity(nodes[i]!);

describe('log audit --keys', () => {
  let full: LogFixture;
  let dropped: LogFixture;
  before(async () => {
    full = await buildLog(fresh('full'));
    dropped = await buildLog(fresh('dropped'), { drop: 'b2' });
  });

  it('every key recoverable: members at the current epoch, stale ones not counted, exit 0', async () => {
    const r = await audit(full, ['--keys', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const doc = json(r);
    assert.equal(doc.ok, true);
    assert.equal(doc.err_type, undefined);
    assert.equal(doc.bad_entry_count, 0);
    assert.equal(doc.keys_at_risk, 0);
    assert.equal(doc.key_count, 4);
    assert.deepEqual(doc.keys.map(summary), [
      { key_id: 'key_a', current: 3, threshold: 2, recoverable: true },
      { key_id: 'key_b', current: 2, threshold: 2, recoverable: true },
      { key_id: 'key_c', current: 2, threshold: 2, recoverable: true },
      { key_id: 'key_d', current: 3, threshold: 3, recoverable: true },
    ]);
    const c = doc.keys.find((k) => k.key_id === 'key_c')!;
    assert.equal(c.epoch, 2);
    assert.deepEqual(
      c.members.map((m) => [m.node, m.status, m.epoch]),
      [
        [token(0), 'current', 2],
        [token(1), 'current', 2],
        [token(2), 'stale', 1],
      ],
    );
    // node 0's current record is its epoch-2 one, not the epoch-1 record the log carries after it
    assert.equal(c.members[0]!.index, 345);

    const text = await audit(full, ['--keys']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^keys +4 keys with backups in the log, 0 at risk$/m);
    assert.match(text.stdout, /^ {2}recoverable +key_c {2}bip340 {2}epoch 2 {2}2 current, 2 needed \(2 of 3\)/m);
    assert.ok(text.stdout.includes(`stale      ${identityFingerprint(nodes[2]!)}  participant 3  epoch 1  #348`), text.stdout);
  });

  it('a log that drops a member’s record: the key is at risk, listed first, keys_at_risk exit 1; the audit itself passed', async () => {
    const r = await audit(dropped, ['--keys', '--json']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /lifeboat: error: 1 of 4 keys in the log cannot be recovered from the log alone: key_b \(1 of 2\) \(keys_at_risk\)/);
    assert.match(r.stderr, /lifeboat: hint: .*publish/);
    const doc = json(r);
    assert.equal(doc.ok, false);
    assert.equal(doc.err_type, 'keys_at_risk');
    assert.equal(doc.bad_entry_count, 0);
    assert.equal(doc.state_advanced, true, 'the log is consistent and intact: the state advances');
    assert.equal(doc.keys_at_risk, 1);
    assert.deepEqual(doc.keys.map(summary)[0], { key_id: 'key_b', current: 1, threshold: 2, recoverable: false });
    assert.deepEqual(doc.keys[0]!.members.map((m) => [m.node, m.status]), [[token(0), 'current']]);
    assert.deepEqual(doc.keys.slice(1).map((k) => k.recoverable), [true, true, true]);

    const text = await audit(dropped, ['--keys']);
    assert.equal(text.code, 1);
    const lines = text.stdout.split('\n');
    const first = lines.findIndex((l) => l.startsWith('  ') && /key_[a-d]/.test(l) && !l.startsWith('    '));
    assert.match(lines[first]!, /^ {2}AT RISK +key_b {2}secp256k1 {2}epoch 1 {2}1 current, 2 needed/);

    // without --keys the same log passes: coverage is what --keys adds
    const plain = await audit(dropped, ['--json']);
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal((JSON.parse(plain.stdout) as { keys?: unknown }).keys, undefined);
  });

  it('stale epochs are not counted: three records of a 3-of-3 key, two of them stale, leave it at risk', async () => {
    const log = new LogFixture(fresh('stale'), fixtureKeys({ witnesses: 1, submitters: 1 }));
    await log.append([await record(0, keyD[0]!, 1), await record(1, keyD[1]!, 1), await record(2, keyD[2]!, 1)]);
    const all = await audit(log, ['--keys', '--json']);
    assert.equal(all.code, 0, all.stderr);
    assert.equal(json(all).keys[0]!.current_members, 3);
    await log.append([await record(2, keyD[2]!, 2)]); // node 2 reshared to epoch 2; nodes 0 and 1 have not published theirs
    const r = await audit(log, ['--keys', '--json']);
    assert.equal(r.code, 1, r.stderr);
    const k = json(r).keys[0]!;
    assert.deepEqual([k.epoch, k.current_members, k.recoverable], [2, 1, false]);
    assert.deepEqual(k.members.map((m) => [m.node, m.status, m.epoch]), [
      [token(2), 'current', 2],
      [token(0), 'stale', 1],
      [token(1), 'stale', 1],
    ]);
  });

  it('a record from a member of another key is not counted, even under the same key id', async () => {
    const log = new LogFixture(fresh('other'), fixtureKeys({ witnesses: 1, submitters: 1 }));
    // key_b: only node 0's record; node 1 publishes a share of another dealing that reuses the id
    // key_b (participant 2, as the missing member would be), and node 2 one of key_a
    await log.append([await record(0, keyB[0]!, 1), await record(1, otherB[1]!, 1), await record(2, keyA[2]!, 1)]);
    const r = await audit(log, ['--keys', '--json']);
    assert.equal(r.code, 1, r.stderr);
    const doc = json(r);
    assert.equal(doc.keys_at_risk, 3);
    const b = doc.keys.filter((k) => k.key_id === 'key_b');
    assert.equal(b.length, 2, 'two keys named key_b, told apart by their group keys');
    assert.notEqual(b[0]!.group_key, b[1]!.group_key);
    for (const k of b) assert.deepEqual([k.current_members, k.members.length, k.recoverable], [1, 1, false]);
    const mine = b.find((k) => k.members[0]!.node === token(0))!;
    assert.equal(mine.group_key, Buffer.from(keyB[0]!.public.commitments[0]!).toString('hex'));
  });

  it('a keyshare-backup/v1 entry whose record does not verify, or does not parse, is a bad entry (exit 3, state kept)', async () => {
    const log = new LogFixture(fresh('bad'), fixtureKeys({ witnesses: 1, submitters: 1 }));
    const good = await record(0, keyA[0]!, 1);
    const sealed = await sealBackup({ key: keyA[1]!, tenant: 'acme', epoch: 1, node: nodes[1]! }, { mode: 'passphrase', mnemonic: words[1]! });
    sealed[sealed.length - 64 - 10]! ^= 1; // a ciphertext byte after the node signed the record
    const altered = createEntry({ recordType: KEYSHARE_RECORD_TYPE, payload: sealed }, nodes[1]!);
    const junk = fixtureEntry(log.keys, 0); // keyshare-backup/v1 by its type, not a record by its bytes
    await log.append([good, altered, junk]);
    const state = join(log.dir, '..', 'bad-state.json');
    const r = await runCli(['log', 'audit', '--quiet', '--keys', '--json', '--from-dir', log.dir, '--log-key', log.keys.logKey, '--witness', log.keys.witnesses[0]!.vkey, '--state', state]);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /\(log_entry_invalid\)/);
    const doc = json(r);
    assert.equal(doc.err_type, 'log_entry_invalid', 'a bad entry is the failure, ahead of keys at risk');
    assert.deepEqual(doc.bad_entries.map((b) => [b.index, b.err_type]), [[1, 'keyshare_signature_invalid'], [2, 'bad_magic']]);
    assert.equal(doc.state_advanced, false);
    assert.deepEqual(doc.keys.map(summary), [{ key_id: 'key_a', current: 1, threshold: 2, recoverable: false }], 'the coverage counts only records that verify');
    // the same log audited without --keys reads entries as LBLE only: it passes
    const plain = await runCli(['log', 'audit', '--quiet', '--from-dir', log.dir, '--log-key', log.keys.logKey, '--witness', log.keys.witnesses[0]!.vkey, '--state', state]);
    assert.equal(plain.code, 0, plain.stderr);
  });

  it('--json: the keys and their members, snake_case, keys at risk first', async () => {
    const r = await audit(dropped, ['--keys', '--json']);
    const doc = json(r);
    assert.deepEqual(Object.keys(doc).slice(0, 4), ['ok', 'err_type', 'message', 'hint']);
    assert.deepEqual(Object.keys(doc).slice(-3), ['key_count', 'keys_at_risk', 'keys']);
    for (const k of doc.keys) {
      assert.deepEqual(Object.keys(k), ['key_id', 'group_key', 'curve', 'threshold', 'max_signers', 'epoch', 'members', 'current_members', 'recoverable', 'replaced']);
      assert.match(k.group_key, /^[0-9a-f]{64,66}$/);
      for (const m of k.members) {
        assert.deepEqual(Object.keys(m), ['node', 'fingerprint', 'identifier', 'epoch', 'index', 'status']);
        assert.match(m.identifier, /^[0-9a-f]{64}$/);
        assert.equal(m.fingerprint, identityFingerprint(nodes[nodes.findIndex((_, i) => token(i) === m.node)]!));
      }
    }
    const a = doc.keys.find((k) => k.key_id === 'key_a')!;
    assert.deepEqual([a.curve, a.threshold, a.max_signers, a.epoch, a.replaced], ['ed25519', 2, 3, 1, false]);
    assert.deepEqual(a.members.map((m) => m.identifier), keyA.map((s) => s.identifier).sort());
    assert.deepEqual(a.members.map((m) => m.index), [40, 41, 42]);
  });

  it('an audit from the state file keeps complete coverage: --keys reads the entries before the saved checkpoint too', async () => {
    const log = new LogFixture(fresh('incremental'), fixtureKeys({ witnesses: 1, submitters: 1 }));
    await log.append([await record(0, keyB[0]!, 1), ...notes(5, log.keys.submitters[0]!.id)]);
    const state = join(log.dir, '..', 'incremental-state.json');
    const args = ['log', 'audit', '--quiet', '--from-dir', log.dir, '--log-key', log.keys.logKey, '--witness', log.keys.witnesses[0]!.vkey, '--state', state];
    const first = await runCli([...args, '--json']);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(json(first).tree_size, 6);
    await log.append([await record(1, keyB[1]!, 1)]); // the second member, after the saved checkpoint
    const r = await runCli([...args, '--keys', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const doc = json(r);
    assert.deepEqual([doc.checked.entries_from, doc.checked.entries], [0, 7], 'every entry read again');
    assert.deepEqual(doc.keys.map(summary), [{ key_id: 'key_b', current: 2, threshold: 2, recoverable: true }]);
    assert.deepEqual(doc.keys[0]!.members.map((m) => m.index), [0, 6]);
    assert.equal(doc.state_advanced, true);
  });

  it('--follow --keys keeps complete coverage as it audits only the new entries', async () => {
    const log = new LogFixture(fresh('follow'), fixtureKeys({ witnesses: 1, submitters: 1 }));
    await log.append([await record(0, keyB[0]!, 1)]);
    const state = join(log.dir, '..', 'follow-state.json');
    const base = ['--from-dir', log.dir, '--log-key', log.keys.logKey, '--witness', log.keys.witnesses[0]!.vkey, '--state', state];
    assert.equal((await runCli(['log', 'audit', '--quiet', ...base])).code, 0, 'a state file to start from');
    const child = tracked(spawn(process.execPath, [...cliArgs(), 'log', 'audit', '--quiet', '--follow', '--every', '200ms', '--keys', '--json', ...base], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] }));
    after(() => void child.kill('SIGKILL'));
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const lines = () => stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { tree_size: number; new_entries: number; key_count: number; keys_at_risk: number });
    const waitFor = async (pred: () => boolean, what: string): Promise<void> => {
      for (let i = 0; i < 600 && !pred(); i++) await new Promise((res) => setTimeout(res, 100));
      assert.ok(pred(), `${what}; stdout: ${stdout} stderr: ${stderr}`);
    };
    await waitFor(() => lines().some((l) => l.tree_size === 1), 'the first line');
    const l0 = lines()[0]!;
    assert.deepEqual([l0.new_entries, l0.key_count, l0.keys_at_risk], [1, 1, 1]);
    await log.append([await record(1, keyB[1]!, 1)]);
    await waitFor(() => lines().some((l) => l.tree_size === 2), 'a line for the grown log');
    const last = lines().find((l) => l.tree_size === 2)!;
    assert.deepEqual([last.new_entries, last.key_count, last.keys_at_risk], [1, 1, 0], 'only the new entry read, the first record still counted');
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
  });

  it('a node whose records of a key disagree is not counted (conflict); a key every node moved on from is replaced, not at risk', async () => {
    const sealed = async (node: number, share: KeyShare, epoch: number) => verifyRecord(await sealBackup({ key: share, tenant: 'acme', epoch, node: nodes[node]! }, { mode: 'passphrase', mnemonic: words[node]! }));
    // node 0 publishes participant 1's share and, at the same epoch, participant 2's: recovery would refuse both
    const conflict = keyCoverage([
      { index: 0, record: await sealed(0, keyA[0]!, 1) },
      { index: 1, record: await sealed(0, keyA[1]!, 1) },
      { index: 2, record: await sealed(1, keyA[1]!, 1) },
    ]);
    assert.equal(conflict.length, 1);
    assert.deepEqual(conflict[0]!.members.map((m) => [encodePublicIdentity(m.node), m.status]), [[token(1), 'current'], [token(0), 'conflict']]);
    assert.deepEqual([conflict[0]!.currentMembers, conflict[0]!.recoverable], [1, false]);
    // key_b moves to a new group key at epoch 2 on both nodes
    const moved = keyCoverage([
      { index: 0, record: await sealed(0, keyB[0]!, 1) },
      { index: 1, record: await sealed(1, keyB[1]!, 1) },
      { index: 2, record: await sealed(0, otherB[0]!, 2) },
      { index: 3, record: await sealed(1, otherB[1]!, 2) },
    ]);
    assert.deepEqual(moved.map((k) => [k.epoch, k.currentMembers, k.recoverable, k.replaced, atRisk(k)]), [
      [2, 2, true, false, false],
      [1, 0, false, true, false],
    ]);
    assert.deepEqual(moved[1]!.members.map((m) => m.status), ['superseded', 'superseded']);
  });

  it('--help names --keys and its exit status', async () => {
    const r = await runCli(['log', 'audit', '--help']);
    assert.match(r.stdout, /--keys/);
    assert.match(r.stdout, /keys_at_risk/);
  });
});
