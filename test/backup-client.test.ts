/**
 * The backup client (docs/backup.md, "The backup client"), with real processes on loopback: one
 * `lifeboat backup-server serve` (SQLite), node A streaming to it (`node backup-setup
 * --password-file`) and node B
 * without backups (the key's second signer). The history the cases share, made in `before`:
 *   K1 created, compaction c1 (`node backup-now`), K3 created: the point P (entry, time T);
 *   K2 created, K3 deleted on A, compaction c2.
 * Then, in order: `backup snapshots` and `backup check` (password from a file, from a command);
 * `node restore --to-seq P --dry-run`, `--to-time T` (K1 and K3 there and signing, K2 absent, a new
 * stream, the backup channel recorded), a restore to the head (the channel too), points out of range
 * and both flags; password sources that fail; and last a row of the service's SQLite file altered
 * between two runs: `backup check` names it.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { addBackupAccounts, type BackupServiceProc, createKeyReporting, nodeStatus, serveBackupService, setUpNodeBackupWith, waitForActive } from '../src/drill/backup-scenarios.js';
import type { RunningServer } from '../src/drill/proc.js';
import { newApiKey } from '../src/keynode/apikeys.js';
import { KeyNodeClient } from '../src/keynode/client.js';
import { verifySignature } from '../src/keynode/frost/index.js';
import { initNode } from '../src/keynode/runtime.js';
import { type KeyRef, sign } from '../src/keynode/sdk.js';
import { openKeyNodeStore } from '../src/keynode/store/index.js';
import { fromHex, utf8 } from '../src/util/bytes.js';
import { type CliResult, expectFailure, expectOk, runCli } from './helpers/cli.js';
import { type NodeProcess, registerTokenInDir, serveNode, storeKeyIds } from './helpers/keynode.js';
import { trackedTempDir } from './helpers/tmp.js';

const PASSWORD = 'a long backup passphrase for the client tests';
const ACCOUNT = 'acct-a';

interface Fixture {
  root: string;
  service: BackupServiceProc;
  servers: RunningServer[];
  a: NodeProcess;
  b: NodeProcess;
  client: string;
  operator: string;
  passwordFile: string;
  restoreToken: string;
  /** A's stream (the account gets a second one when a point-in-time restore forks it). */
  stream: string;
  k1: KeyRef;
  k2: KeyRef;
  k3: KeyRef;
  /** The point: the entry after K3, and a time after its commit and before K2's. */
  p: number;
  t: string;
  c1: number;
  c2: number;
  head: number;
}

let f: Fixture;

const access = () => ['--backup-server', f.service.url, '--account', ACCOUNT, '--stream', f.stream];
const withFile = () => ['--password-file', f.passwordFile];
/**
 * The service allows 3 anonymous logins a minute per address and account: the runs past the first three
 * log in with the restore token (its own lane, 10 a minute), as an operator would on a busy day.
 */
const tokenLane = () => ({ args: ['--restore-token'], input: `${f.restoreToken}\n` });

/** Waits until the node in `dir` has every change acknowledged; returns the acknowledged seq (read from its store in this process). */
async function settled(dir: string): Promise<number> {
  const store = await openKeyNodeStore(`sqlite:${join(dir, 'store.sqlite')}`);
  try {
    for (;;) {
      const [counts, acked, pending] = await Promise.all([store.countOutbox(), store.getMeta('backup_acked'), store.getMeta('backup_pending')]);
      if (counts.unsealed === 0 && counts.sealed === 0 && acked && (pending ?? '{}') === '{}') return (JSON.parse(acked) as { seq: number }).seq;
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await store.close();
  }
}

async function backupNow(dir: string): Promise<number> {
  const r = JSON.parse(expectOk(await runCli(['node', 'backup-now', '--data-dir', dir, '--json'])).stdout) as { compaction: { seq: number } | null };
  assert.ok(r.compaction, 'backup-now uploaded a compaction');
  return r.compaction.seq;
}

async function newKey(): Promise<KeyRef> {
  const { key } = await createKeyReporting([f.a, f.b], f.client, { threshold: 2, curve: 'ed25519' });
  await waitForActive(key, f.client);
  return key;
}

function json<T>(r: CliResult): T {
  return JSON.parse(expectOk(r).stdout) as T;
}

/** `key`'s share on A replaced by the one on the node at `url`, signed there with B's. */
async function signsWith(key: KeyRef, url: string, message: string): Promise<void> {
  const ref: KeyRef = { ...key, nodes: [{ url, keyId: key.nodes[0]!.keyId }, key.nodes[1]!] };
  const clients = ref.nodes.map((n) => new KeyNodeClient({ url: n.url, apiKey: f.client }));
  const sig = await sign(ref, clients, utf8.encode(message));
  assert.ok(verifySignature('ed25519', sig, utf8.encode(message), fromHex(key.groupPublicKey, 'group key')), `${key.nodes[0]!.keyId} signs`);
}

/** The format version of each complete compaction the service holds (its first chunk's fifth byte), by seq. */
function storedCompactionVersions(): [number, number][] {
  const db = new Database(join(f.service.dir, 'backup.sqlite'), { readonly: true });
  try {
    const rows = db
      .prepare("select c.seq, k.bytes from compactions c join compaction_chunks k on k.compaction_id = c.id and k.n = 0 where c.account = ? and c.stream = ? and c.state = 'complete' order by c.seq")
      .all(ACCOUNT, f.stream) as { seq: number; bytes: Buffer }[];
    return rows.map((r) => [r.seq, r.bytes[4]!]);
  } finally {
    db.close();
  }
}

before(async () => {
  const root = trackedTempDir('lifeboat-backup-client-');
  const servers: RunningServer[] = [];
  const service: BackupServiceProc = { dir: join(root, 'service'), url: '', server: undefined };
  await serveBackupService(servers, service);
  const [invite] = await addBackupAccounts(service, [ACCOUNT]);
  const client = newApiKey('client', 'c').token;
  const operator = newApiKey('operator', 'o').token;
  const dirs = [join(root, 'node-a'), join(root, 'node-b')];
  for (const dir of dirs) {
    await initNode(dir);
    await registerTokenInDir(dir, client, 'client');
  }
  await registerTokenInDir(dirs[0]!, operator, 'operator');
  const passwordFile = join(root, 'password');
  writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
  // The set-up reads the new password from the file (once), the invite from stdin.
  const restoreToken = await setUpNodeBackupWith(dirs[0]!, ['--backup-server', service.url, '--account', ACCOUNT, '--password-file', passwordFile], `${invite}\n`, { wait_ms: 500 });
  const [a, b] = await Promise.all(dirs.map((d) => serveNode(d)));
  servers.push(a!.server, b!.server);
  f = { root, service, servers, a: a!, b: b!, client, operator, passwordFile, restoreToken } as Fixture;

  f.k1 = await newKey();
  f.c1 = await backupNow(f.a.dir);
  f.k3 = await newKey();
  f.p = await settled(f.a.dir);
  f.t = new Date().toISOString();
  // Whatever commits from now on carries a later time than T.
  while (Date.now() <= Date.parse(f.t)) await new Promise((r) => setTimeout(r, 2));
  f.k2 = await newKey();
  await new KeyNodeClient({ url: f.a.url, apiKey: operator }).deleteKey(f.k3.nodes[0]!.keyId);
  f.head = await settled(f.a.dir);
  f.c2 = await backupNow(f.a.dir);
  f.stream = (await nodeStatus(f.a.dir)).backup!.stream;
});

after(async () => {
  await Promise.all(f.servers.map((s) => s.stop('SIGKILL')));
});

describe('the backup client', () => {
  it('backup snapshots lists the compactions and the entry range with commit times; backup check verifies everything (password from a file, from a command)', async () => {
    assert.ok(f.c1 < f.p && f.p < f.head && f.c2 === f.head, `c1 ${f.c1} < P ${f.p} < head ${f.head} = c2 ${f.c2}`);
    // Both compactions the agent wrote are streamed ones (LBBC version 2): what the cases below read.
    assert.deepEqual(storedCompactionVersions(), [[f.c1, 2], [f.c2, 2]]);
    type Snap = { head_seq: number; first_seq: number; compactions: { seq: number; size: number; keys: number | null; exact: boolean | null; created_at: string | null; completed_at: string }[]; log: { first: { seq: number; committed_at: string }; last: { seq: number; committed_at: string } } };
    const s = json<Snap>(await runCli(['backup', 'snapshots', ...access(), ...withFile(), '--keys', '--json']));
    assert.equal(s.head_seq, f.head);
    assert.deepEqual(s.compactions.map((c) => [c.seq, c.keys, c.exact]), [[f.c1, 1, true], [f.c2, 2, true]], 'the previous and the current compaction, each opened');
    assert.ok(s.compactions.every((c) => c.size > 0 && !Number.isNaN(Date.parse(c.completed_at))));
    // Each one's own time, from its header: when the agent began it, before the service completed it, c1 before T.
    assert.ok(s.compactions.every((c) => c.created_at !== null && Date.parse(c.created_at) <= Date.parse(c.completed_at)), JSON.stringify(s.compactions));
    assert.ok(Date.parse(s.compactions[0]!.created_at!) < Date.parse(f.t) && Date.parse(s.compactions[1]!.created_at!) > Date.parse(f.t));
    assert.equal(s.first_seq, f.c1 + 1, 'the entries up to the previous compaction were pruned');
    assert.equal(s.log.first.seq, f.c1 + 1);
    assert.equal(s.log.last.seq, f.head);
    assert.ok(Date.parse(s.log.first.committed_at) <= Date.parse(f.t) && Date.parse(s.log.last.committed_at) > Date.parse(f.t), 'commit times from the entries');
    const table = expectOk(await runCli(['backup', 'snapshots', ...access(), ...withFile()]));
    assert.match(table.stdout, new RegExp(`entries held  ${f.c1 + 1} \\(.+\\) \\.\\. ${f.head} \\(`));
    assert.match(table.stdout, new RegExp(`^@${f.c2} +\\S+ +\\d+ +\\? +\\?$`, 'm'));

    const check = await runCli(['backup', 'check', ...access(), '--password-command', `cat '${f.passwordFile}'`, '--json']);
    const r = json<{ ok: boolean; head_seq: number; entries: number; compactions: { seq: number; keys: number; exact: boolean }[]; keys: number }>(check);
    assert.equal(r.head_seq, f.head);
    assert.equal(r.entries, f.head - f.c1, 'every held entry read');
    assert.deepEqual(r.compactions.map((c) => [c.seq, c.keys, c.exact]), [[f.c1, 1, true], [f.c2, 2, true]]);
    assert.equal(r.keys, 2);
    assert.match(check.stderr, /entries: \d+\/\d+ \(100%\)/, 'progress on stderr');
  });

  it('node restore --to-seq --dry-run writes nothing; --to-time T restores the keys as they were: K1 and K3 sign, K2 is absent, the node streams to a new stream with the backup channel recorded', async () => {
    const dry = join(f.root, 'dry');
    const d = json<{ dry_run: boolean; head_seq: number; keys: number; compaction_seq: number }>(
      await runCli(['node', 'restore', ...access(), ...withFile(), ...tokenLane().args, '--to-seq', String(f.p), '--dry-run', '--data-dir', dry, '--json'], { input: tokenLane().input }),
    );
    assert.deepEqual([d.dry_run, d.head_seq, d.keys, d.compaction_seq], [true, f.p, 2, f.c1], 'from compaction c1 and the entries after it up to P');
    assert.ok(!existsSync(dry), 'the dry run created nothing');

    const dir = join(f.root, 'pitr');
    const r = json<{ head_seq: number; stream_head_seq: number; keys: number; stream: string; streams_to: string; committed_at: string; epoch: number }>(
      await runCli(['node', 'restore', ...access(), ...tokenLane().args, '--to-time', f.t, '--data-dir', dir, '--json'], { input: `${PASSWORD}\n${tokenLane().input}` }),
    );
    assert.equal(r.head_seq, f.p, 'the last entry committed at or before T');
    assert.equal(r.stream_head_seq, f.head);
    assert.ok(Date.parse(r.committed_at) <= Date.parse(f.t));
    assert.deepEqual(await storeKeyIds(dir), [f.k1, f.k3].map((k) => k.nodes[0]!.keyId).sort(), 'K1 and K3 (deleted later) are there; K2 (created later) is not');
    assert.notEqual(r.streams_to, r.stream);
    assert.ok(r.streams_to.startsWith(`${r.stream}.at-${f.p}-`));
    assert.ok(r.epoch >= 1);

    const restored = await serveNode(dir);
    f.servers.push(restored.server);
    await signsWith(f.k1, restored.url, 'k1 after the point-in-time restore');
    await signsWith(f.k3, restored.url, 'k3, deleted after the point, is back');
    // The fork streams its whole state to its own stream, never on top of the newer history.
    const acked = await settled(dir);
    const st = await nodeStatus(dir);
    assert.equal(st.backup!.stream, r.streams_to);
    assert.ok(acked >= 3 && !st.backup!.rollback_detected && st.backup!.last_error === null, JSON.stringify(st.backup));
    assert.equal(st.unused_nonces, 0, 'the signatures spent their nonces; none from before the restore');
    const keys = json<{ key_channels: { key_id: string; channels: { backup?: unknown } }[] }>(await runCli(['node', 'status', '--keys', '--data-dir', dir, '--json']));
    assert.deepEqual(keys.key_channels.map((k) => k.channels.backup), [true, true], 'every restored key is held by the backup channel');
  });

  it('a restore to the head records the backup channel too; points out of range and both flags are refused', async () => {
    const dir = join(f.root, 'head');
    const r = json<{ head_seq: number; streams_to: string; stream: string; keys: number }>(await runCli(['node', 'restore', ...access(), ...withFile(), ...tokenLane().args, '--data-dir', dir, '--json'], { input: tokenLane().input }));
    assert.deepEqual([r.head_seq, r.keys, r.streams_to], [f.head, 2, r.stream]);
    const keys = json<{ key_channels: { channels: { backup?: unknown } }[] }>(await runCli(['node', 'status', '--keys', '--data-dir', dir, '--json']));
    assert.deepEqual(keys.key_channels.map((k) => k.channels.backup), [true, true]);

    const out = join(f.root, 'refused');
    const after = await runCli(['node', 'restore', ...access(), ...withFile(), ...tokenLane().args, '--to-seq', String(f.head + 1), '--data-dir', out], { input: tokenLane().input });
    expectFailure(after, 'backup_point_after_end');
    assert.match(after.stderr, new RegExp(`after the stream's last entry \\(${f.head}\\)`));
    expectFailure(await runCli(['node', 'restore', ...access(), ...withFile(), ...tokenLane().args, '--to-time', '2001-01-01T00:00:00Z', '--data-dir', out], { input: tokenLane().input }), 'backup_point_before_start');
    expectFailure(await runCli(['node', 'restore', ...access(), ...withFile(), ...tokenLane().args, '--to-time', new Date(Date.now() + 3_600_000).toISOString(), '--data-dir', out], { input: tokenLane().input }), 'backup_point_after_end');
    expectFailure(await runCli(['node', 'restore', ...access(), ...withFile(), '--to-time', 'yesterday', '--data-dir', out]), 'invalid_time');
    const both = await runCli(['node', 'restore', ...access(), ...withFile(), '--to-seq', '3', '--to-time', f.t, '--data-dir', out]);
    expectFailure(both, 'usage', 2);
    assert.ok(!existsSync(out), 'nothing written');
  });

  it('password sources: a failing command is password_command_failed without its output; both sources, or a file others can read, are refused', async () => {
    const failed = await runCli(['backup', 'snapshots', ...access(), '--password-command', 'echo not-for-your-eyes; echo on-stderr-too >&2; exit 3']);
    expectFailure(failed, 'password_command_failed');
    assert.match(failed.stderr, /the password command exited with status 3/);
    assert.ok(!failed.stdout.includes('not-for-your-eyes') && !failed.stderr.includes('not-for-your-eyes'), 'the command’s stdout is never shown');
    expectFailure(await runCli(['backup', 'check', ...access(), ...withFile(), '--password-command', 'true']), 'usage', 2);
    const open = join(f.root, 'password-644');
    writeFileSync(open, PASSWORD);
    chmodSync(open, 0o644);
    expectFailure(await runCli(['backup', 'check', ...access(), '--password-file', open]), 'insecure_permissions');
    expectFailure(await runCli(['backup', 'check', ...access(), '--password-command', 'printf "\\n"']), 'password_empty');
  });

  it('an entry row altered in the service’s SQLite file between two runs: backup check fails naming its seq', async () => {
    const db = new Database(join(f.service.dir, 'backup.sqlite'));
    const seq = f.p;
    try {
      const row = db.prepare('select bytes from entries where account = ? and seq = ?').get(ACCOUNT, seq) as { bytes: Buffer };
      const bytes = Buffer.from(row.bytes);
      bytes[bytes.length - 5]! ^= 0x01;
      // The hash column follows, so only the encryption can tell.
      db.prepare('update entries set bytes = ?, hash = ? where account = ? and seq = ?').run(bytes, createHash('sha256').update(bytes).digest(), ACCOUNT, seq);
    } finally {
      db.close();
    }
    const r = await runCli(['backup', 'check', ...access(), ...withFile(), ...tokenLane().args, '--json'], { input: tokenLane().input });
    expectFailure(r, 'backup_check_failed', 3);
    assert.match(r.stderr, new RegExp(`lifeboat: error: entry ${seq} failed its check: .*\\(decryption_failed\\)`));
    const doc = JSON.parse(r.stdout) as { ok: boolean; item: string; seq: number; cause: string };
    assert.deepEqual([doc.ok, doc.item, doc.seq, doc.cause], [false, 'entry', seq, 'decryption_failed']);
  });
});
