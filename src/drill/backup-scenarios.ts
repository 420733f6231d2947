/**
 * The worst day for a node that streams its changes to a backup service (docs/backup.md), with real
 * processes on loopback: `lifeboat backup-server serve` and three `lifeboat node serve`, each set up
 * with `node backup-setup` under its own account. Keys are created while the agents stream, two of
 * them while the service is down (they are `pending_backup` until it is back); then a node is
 * destroyed mid-stream, disk and all, and rebuilt from the service with the password alone. Every key
 * the node ever reported `active` must sign again (RPO = 0, docs/DESIGN.md "The worst day", 2).
 *
 * The helpers are exported for test/backup-process.test.ts. Node directories are created in this
 * process (what `node init` does), and so are accounts (what `backup-server account add` does); backup
 * set-up and restore go through the CLI, with the invite and the password on stdin.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { backupStoreUrl } from '../backup/serve.js';
import { newInvite } from '../backup/bearer-codes.js';
import { openBackupStore } from '../backup/store/index.js';
import { randomBytes } from '../crypto/random.js';
import { LifeboatError } from '../errors.js';
import { newApiKey } from '../keynode/apikeys.js';
import { KeyNodeClient } from '../keynode/client.js';
import { type BackupConfig, loadNodeConfig, nodePaths, saveNodeConfig } from '../keynode/config.js';
import type { FrostCurve } from '../keynode/frost/index.js';
import { createKey, type KeyRef } from '../keynode/sdk.js';
import type { KeyInfo } from '../keynode/service.js';
import { openKeyNodeStore } from '../keynode/store/index.js';
import { toB64u } from '../util/bytes.js';
import { clientsOf, createFleetNode, type KeyNodeFleet, serveNode, signAndCheck, stopNode } from './keynode-scenarios.js';
import { type RunningServer, runCli, startServer } from './proc.js';
import { expectOk, type Scenario } from './runner.js';
import { tlsFetch } from '../util/tls-fetch.js';

/** A backup service process: its data directory, its URL (kept across restarts) and its server while it runs. */
export interface BackupServiceProc {
  dir: string;
  url: string;
  server: RunningServer | undefined;
}

/** What `lifeboat node status --json` prints (the fields these scenarios read). */
export interface NodeStatusJson {
  keys: number;
  unused_nonces: number;
  backup: { server: string; account: string; stream: string; sealed_seq: number; acked_seq: number; compacted_seq: number; unsealed: number; unacked: number; pending_keys: number; rollback_detected: boolean; last_error: string | null } | null;
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new LifeboatError('drill_check_failed', what);
}

/** Starts `lifeboat backup-server serve` on `svc.dir`: on its former port when it served before, else on a free one. */
export async function serveBackupService(servers: RunningServer[], svc: BackupServiceProc): Promise<BackupServiceProc> {
  const listen = svc.url ? `127.0.0.1:${new URL(svc.url).port}` : '127.0.0.1:0';
  const server = await startServer(['backup-server', 'serve', '--data-dir', svc.dir, '--listen', listen, '--log-level', 'silent', '--json']);
  servers.push(server);
  svc.server = server;
  svc.url = server.url;
  return svc;
}

/** Stops the service: SIGKILL is a crash (the machine or the process is gone mid-request). */
export async function stopBackupService(svc: BackupServiceProc, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  await svc.server?.stop(signal);
  svc.server = undefined;
}

/**
 * Creates accounts as `backup-server account add NAME` does, in this process (the service may be
 * serving: SQLite's WAL takes both), and returns their one-time invites in order. One store for all
 * of them: two connections of one process to the same SQLite file would wait on each other. Throws
 * the store's `account_exists`.
 */
export async function addBackupAccounts(svc: BackupServiceProc, accounts: string[]): Promise<string[]> {
  const store = await openBackupStore(backupStoreUrl(svc.dir));
  try {
    const invites: string[] = [];
    for (const account of accounts) {
      const { invite, hash } = newInvite();
      await store.createAccount(account, hash, Date.now());
      invites.push(invite);
    }
    return invites;
  } finally {
    await store.close();
  }
}

/** The head of every stream on the service, by account and stream (read from its store in this process). */
export async function streamHeads(svc: BackupServiceProc): Promise<Map<string, number>> {
  const store = await openBackupStore(backupStoreUrl(svc.dir));
  try {
    const heads = new Map<string, number>();
    for (const a of await store.listAccounts()) for (const s of await store.listStreams(a.name)) heads.set(`${a.name}/${s.stream}`, s.headSeq);
    return heads;
  } finally {
    await store.close();
  }
}

/** Unused signing nonces in the store of the stopped node in `dir`. */
export async function unusedNonces(dir: string): Promise<number> {
  const store = await openKeyNodeStore(nodePaths(dir).defaultStore);
  try {
    return await store.countNonces();
  } finally {
    await store.close();
  }
}

/** The last entry the backup service acknowledged to the node in `dir` (read from its store; it may be serving). */
export async function ackedSeq(dir: string): Promise<number> {
  const store = await openKeyNodeStore(nodePaths(dir).defaultStore);
  try {
    const raw = await store.getMeta('backup_acked');
    return raw ? (JSON.parse(raw) as { seq: number }).seq : 0;
  } finally {
    await store.close();
  }
}

/** Sets fields of the backup section of a node's node.json (read when the node starts). */
export function tuneBackup(dir: string, tune: Partial<BackupConfig>): void {
  const paths = nodePaths(dir);
  const cfg = loadNodeConfig(paths);
  if (!cfg.backup) throw new LifeboatError('drill_check_failed', `${dir} has no backup section`);
  saveNodeConfig(paths, { ...cfg, backup: { ...cfg.backup, ...tune } });
}

/**
 * `lifeboat node backup-setup` on the node in `dir` (not serving: its agent starts with `node serve`),
 * invite and password twice on stdin; then `tune` goes into node.json. Returns the restore token it printed.
 */
export async function setUpNodeBackup(dir: string, server: string, account: string, invite: string, password: string, tune: Partial<BackupConfig> = {}): Promise<string> {
  return setUpNodeBackupWith(dir, ['--backup-server', server, '--account', account], `${invite}\n${password}\n${password}\n`, tune);
}

/** `lifeboat node backup-setup ARGS` on the node in `dir` with `input` on stdin (a wallet's options instead of a password), then `tune`. */
export async function setUpNodeBackupWith(dir: string, args: string[], input: string, tune: Partial<BackupConfig> = {}): Promise<string> {
  const r = expectOk(await runCli(['node', 'backup-setup', ...args, '--data-dir', dir, '--json'], { input }), `node backup-setup (${args.join(' ')})`);
  tuneBackup(dir, tune);
  return (JSON.parse(r.stdout) as { restore_token: string }).restore_token;
}

/** `lifeboat node status --json` of the node in `dir` (read from its store; it may be serving). */
export async function nodeStatus(dir: string): Promise<NodeStatusJson> {
  return JSON.parse(expectOk(await runCli(['node', 'status', '--data-dir', dir, '--json']), 'node status').stdout) as NodeStatusJson;
}

/**
 * Creates a key by DKG like the SDK's createKey, and records what each node's finish answered:
 * `active`, or `pending_backup` when its backup entry was not acknowledged within `backup.wait_ms`.
 * `statuses[i]` stays `unanswered` for a node that never answered. Throws what createKey throws.
 */
export async function createKeyReporting(nodes: { url: string }[], token: string, opts: { threshold: number; curve: FrostCurve }, statuses: string[] = []): Promise<{ key: KeyRef; statuses: string[] }> {
  nodes.forEach((_, i) => (statuses[i] = 'unanswered'));
  const clients = nodes.map((n, i) => new KeyNodeClient({ url: n.url, apiKey: token, fetch: recordFinish((status) => (statuses[i] = status)) }));
  const key = await createKey(clients, opts);
  return { key, statuses };
}

function recordFinish(onStatus: (status: string) => void): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const res = await tlsFetch(input instanceof Request ? input.url : input, init);
    if (res.ok && /\/v1\/dkg\/[^/]+\/finish$/.test(new URL(String(input)).pathname)) onStatus(((await res.clone().json()) as KeyInfo).status);
    return res;
  }) as typeof fetch;
}

/** Waits until `key` is `active` on the nodes at `which` (default all). Throws `drill_check_failed` after `timeoutMs`. */
export async function waitForActive(key: Pick<KeyRef, 'nodes'>, token: string, timeoutMs = 20_000, which?: number[]): Promise<void> {
  const nodes = (which ?? key.nodes.map((_, i) => i)).map((i) => key.nodes[i]!);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const statuses = await Promise.all(nodes.map(async (n) => (await new KeyNodeClient({ url: n.url, apiKey: token }).key(n.keyId)).status));
    if (statuses.every((s) => s === 'active')) return;
    if (Date.now() > deadline) throw new LifeboatError('drill_check_failed', `key ${key.nodes[0]!.keyId} is still ${statuses.join(', ')} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// --- the drill -------------------------------------------------------------------------------------

export interface BackupDrillContext {
  dir: string;
  servers: RunningServer[];
  service?: BackupServiceProc;
  fleet?: KeyNodeFleet;
  /** The accounts' password (the same for the three); never printed, only piped to the CLI's stdin. */
  password?: string;
  /** Keys whose every node reported them active (at creation, or once the service was back). */
  active: KeyRef[];
  /** node-b's acknowledged entry once the first two keys were active: the point-in-time restore's point. */
  pointSeq?: number;
}

const CURVE: FrostCurve = 'ed25519';
/** Long enough for an acknowledgement on a busy machine, short enough for the outage. */
const WAIT_MS = 1500;

function backupFleetOf(c: BackupDrillContext): { fleet: KeyNodeFleet; service: BackupServiceProc; password: string } {
  if (!c.fleet || !c.service || !c.password) throw new LifeboatError('drill_check_failed', 'no backed-up nodes: an earlier scenario failed');
  return { fleet: c.fleet, service: c.service, password: c.password };
}

/** The backup account of a drill node: one each, named after it. */
export const accountOf = (nodeName: string): string => `acct-${nodeName}`;

export const backupScenarios: Scenario<BackupDrillContext>[] = [
  {
    name: 'backups: a backup service and three key nodes streaming to it, one account each',
    async run(c) {
      const service = await serveBackupService(c.servers, { dir: join(c.dir, 'service'), url: '', server: undefined });
      c.service = service;
      c.password = toB64u(randomBytes(18));
      const tokens = { client: newApiKey('client', 'drill client').token, operator: newApiKey('operator', 'drill operator').token };
      const fleet: KeyNodeFleet = { dir: c.dir, servers: c.servers, tokens, primaries: [], failovers: [] };
      const names = ['node-a', 'node-b', 'node-c'];
      const invites = await addBackupAccounts(service, names.map(accountOf));
      fleet.primaries = await Promise.all(
        names.map(async (name, i) => {
          const node = await createFleetNode(c.dir, name, tokens);
          await setUpNodeBackup(node.dir, service.url, accountOf(name), invites[i]!, c.password!, { wait_ms: WAIT_MS });
          return serveNode(fleet, node);
        }),
      );
      c.fleet = fleet;
    },
  },
  {
    name: 'backups: keys created while the nodes stream, two of them while the service is down (pending_backup until it is back)',
    async run(c) {
      const { fleet, service } = backupFleetOf(c);
      const token = fleet.tokens.client;
      for (let i = 0; i < 2; i++) {
        const { key } = await createKeyReporting(fleet.primaries, token, { threshold: 2, curve: CURVE });
        await waitForActive(key, token);
        c.active.push(key);
      }
      c.pointSeq = await ackedSeq(fleet.primaries[1]!.dir);
      await stopBackupService(service, 'SIGKILL');
      const outage: KeyRef[] = [];
      for (let i = 0; i < 2; i++) {
        const { key, statuses } = await createKeyReporting(fleet.primaries, token, { threshold: 2, curve: CURVE });
        check(statuses.every((s) => s === 'pending_backup'), `a key created with the service down was reported ${statuses.join(', ')}, not pending_backup`);
        outage.push(key);
      }
      const refused = await signAndCheck(outage[0]!, clientsOf(fleet.primaries, token), 'drill: before its backup').then(
        () => 'signed',
        (err: unknown) => (err as { code?: string }).code ?? String(err),
      );
      check(refused === 'key_pending_backup', `a key not yet backed up answered ${refused}, not key_pending_backup`);
      await serveBackupService(c.servers, service);
      for (const key of outage) {
        await waitForActive(key, token, 30_000);
        await signAndCheck(key, clientsOf(fleet.primaries, token), 'drill: backed up after the outage');
        c.active.push(key);
      }
    },
  },
  {
    name: 'backups: `backup check` verifies a stream end to end; a point-in-time restore brings back the keys as they were at an earlier entry',
    async run(c) {
      const { fleet, service, password } = backupFleetOf(c);
      const node = fleet.primaries[1]!;
      const access = ['--backup-server', service.url, '--account', accountOf(node.name), '--json'];
      const point = c.pointSeq ?? 0;
      const dir = join(c.dir, `${node.name}-at-${point}`);
      // The two at once (each its own login and process): the drill stays short.
      const [checkRun, restoreRun] = await Promise.all([
        runCli(['backup', 'check', ...access], { input: `${password}\n` }),
        runCli(['node', 'restore', ...access, '--to-seq', String(point), '--data-dir', dir], { input: `${password}\n` }),
      ]);
      const checked = JSON.parse(expectOk(checkRun, 'backup check').stdout) as { keys: number; head_seq: number };
      check(checked.keys === c.active.length, `backup check verified ${checked.keys} keys, not the ${c.active.length} the node holds`);
      check(point > 0 && point < checked.head_seq, `no earlier point to restore to (entry ${point} of ${checked.head_seq})`);
      const r = JSON.parse(expectOk(restoreRun, 'node restore --to-seq').stdout) as { keys: number; head_seq: number; streams_to: string; stream: string };
      const store = await openKeyNodeStore(nodePaths(dir).defaultStore);
      let ids: string[];
      try {
        ids = (await store.listKeys({ limit: 1000 })).map((k) => k.keyId).sort();
      } finally {
        await store.close();
      }
      const then = c.active.slice(0, 2).map((k) => k.nodes[1]!.keyId).sort();
      check(r.head_seq === point && JSON.stringify(ids) === JSON.stringify(then), `the restore to entry ${point} holds ${ids.join(', ')}, not the keys of then (${then.join(', ')})`);
      check(r.streams_to !== r.stream, 'a node restored to an earlier point must stream to a new stream');
    },
  },
  {
    name: 'backups: a node destroyed mid-stream and restored from the service with the password; every acknowledged key signs again',
    async run(c) {
      const { fleet, service, password } = backupFleetOf(c);
      const token = fleet.tokens.client;
      const node = fleet.primaries[0]!;
      // A signing abandoned after round one: its nonce is never backed up and must not come back.
      await clientsOf([node], token)[0]!.commitments(c.active[0]!.nodes[0]!.keyId);
      // Keys keep coming while the node dies: those it answered `active` for must all come back.
      const reported = [...c.active];
      let stop = false;
      const writer = (async () => {
        while (!stop) {
          const statuses: string[] = [];
          try {
            const { key } = await createKeyReporting(fleet.primaries, token, { threshold: 2, curve: CURVE }, statuses);
            if (statuses[0] === 'active') reported.push(key);
          } catch {
            return;
          }
        }
      })();
      const target = reported.length + 2;
      const deadline = Date.now() + 20_000;
      while (reported.length < target && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      check(reported.length >= target, 'no key was created while the agents streamed');
      await stopNode(node, 'SIGKILL');
      rmSync(node.dir, { recursive: true, force: true });
      stop = true;
      await writer;

      const args = ['node', 'restore', '--backup-server', service.url, '--account', accountOf(node.name), '--data-dir', node.dir, '--json'];
      const r = JSON.parse(expectOk(await runCli(args, { input: `${password}\n` }), 'node restore --backup-server').stdout) as { fingerprint: string; keys: number };
      check(r.fingerprint === node.fingerprint, `the restored node is ${r.fingerprint}, not ${node.fingerprint}`);
      check(r.keys >= reported.length, `the restore brought back ${r.keys} keys; the node had reported ${reported.length} active`);
      const nonces = await unusedNonces(node.dir);
      check(nonces === 0, `the restored node holds ${nonces} signing nonces from before the restore`);
      await serveNode(fleet, node);
      const clients = clientsOf(fleet.primaries, token);
      for (const key of reported) {
        await waitForActive(key, token, 20_000, [0, 1]);
        await signAndCheck(key, clients, 'drill: after the restore from the backup service', [0, 1]);
      }
    },
  },
];
