/**
 * Key-share backups on the worst day (docs/keyshare.md), with the public log the log scenarios left
 * running: three key nodes made with 24 words each (`node init --secret-fd`), publishing to that log
 * and trusting one of its witnesses, make a 2-of-3 key that is active only once the log holds every
 * share. Then one node is destroyed, data directory and all (it streams to no backup service, so there
 * is no account to lose either), and comes back from the log with its 24 words alone (`keyshare
 * recover`); the key signs with it. Every step goes through the CLI.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { LifeboatError } from '../errors.js';
import { fromHex, utf8 } from '../util/bytes.js';
import { apiKeyRecordFromToken, newApiKey } from '../keynode/apikeys.js';
import { verifySignature } from '../keynode/frost/index.js';
import { openKeyNodeStore } from '../keynode/store/index.js';
import type { LogDrillContext } from './log-scenarios.js';
import { type RunningServer, runCli, startServer } from './proc.js';
import { expectOk, type Scenario } from './runner.js';

interface WordsNode {
  name: string;
  dir: string;
  /** The 24 words, as `node init --secret-fd` wrote them: they live only in this process. */
  words: string;
  identity: string;
  server?: RunningServer;
  url?: string;
}

/** What the key-share scenarios share: the log context of the log scenarios (its log and witnesses). */
export interface KeyshareDrillContext {
  dir: string;
  servers: RunningServer[];
  log: LogDrillContext;
  nodes?: WordsNode[];
  token?: string;
  key?: { keyId: string; groupPublicKey: string };
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new LifeboatError('drill_check_failed', what);
}

function need<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new LifeboatError('drill_check_failed', `${what} is missing: an earlier step did not run`);
  return v;
}

async function json<T>(args: string[], what: string, opts: Parameters<typeof runCli>[1] = {}): Promise<T> {
  return JSON.parse(expectOk(await runCli([...args, '--json'], opts), what).stdout) as T;
}

/** The log as a node's target: its URL and key, trusting the first witness (quorum 1). */
function logArgs(c: KeyshareDrillContext, flag: '--witness-key' | '--witness'): string[] {
  const url = need(c.log.logUrl, 'the log');
  return ['--log', url, '--log-key', need(c.log.logKey, 'the log key'), flag, need(c.log.witnessKeys?.[0], 'a witness key'), '--quorum', '1'];
}

async function serve(c: KeyshareDrillContext, n: WordsNode): Promise<void> {
  const port = n.url ? new URL(n.url).port : '0';
  n.server = await startServer(['node', 'serve', '--data-dir', n.dir, '--listen', `127.0.0.1:${port}`, '--json']);
  c.servers.push(n.server);
  n.url = n.server.url;
}

async function signAndCheck(c: KeyshareDrillContext, signers: WordsNode[], text: string): Promise<void> {
  const key = need(c.key, 'the key');
  const r = await json<{ signature: string }>(['sign', '--key', key.keyId, '--nodes', signers.map((n) => n.url).join(','), '--message-text', text], 'sign', { env: { LIFEBOAT_API_KEY: need(c.token, 'the client token') } });
  check(verifySignature('ed25519', fromHex(r.signature, 'signature'), utf8.encode(text), fromHex(key.groupPublicKey, 'group key')), `the signature of "${text}" does not verify under the group key`);
}

export const keyshareScenarios: Scenario<KeyshareDrillContext>[] = [
  {
    name: 'key shares: three key nodes made with 24 words publish to the public log (one witness trusted); a 2-of-3 key is active once the log holds every share',
    async run(c) {
      const logDir = need(c.log.logDir, 'the log directory');
      const token = newApiKey('client', 'drill').token;
      const nodes = await Promise.all(
        [1, 2, 3].map(async (i): Promise<WordsNode> => {
          const dir = join(c.dir, `node${i}`);
          const r = expectOk(await runCli(['node', 'init', '--data-dir', dir, '--secret-fd', '3', '--json'], { secretFd: true }), `node init ${i}`);
          const words = r.secret.trim();
          check(words.split(' ').length === 24, `node init ${i} wrote ${words.split(' ').length} words, not 24`);
          const identity = (JSON.parse(r.stdout) as { identity: string }).identity;
          expectOk(await runCli(['node', 'log-setup', ...logArgs(c, '--witness-key'), '--data-dir', dir]), `node log-setup ${i}`);
          // The client's API key, registered in the store as `node apikey import` does (saves a process per node).
          const store = await openKeyNodeStore(`sqlite:${join(dir, 'store.sqlite')}`);
          try {
            await store.insertApiKey(apiKeyRecordFromToken(token, 'client', 'drill client'));
          } finally {
            await store.close();
          }
          return { name: `keyshare-node${i}`, dir, words, identity };
        }),
      );
      c.token = token;
      // The log's operator enrols each node's identity (one at a time: they write the log's config) while the nodes start.
      const enrol = async () => {
        for (const n of nodes) expectOk(await runCli(['log', 'enrol', '--name', n.name, '--identity', n.identity, '--data-dir', logDir]), `log enrol ${n.name}`);
      };
      await Promise.all([enrol(), ...nodes.map((n) => serve(c, n))]);
      c.nodes = nodes;
      const k = await json<{ key_id: string; group_public_key: string; status: string }>(
        ['key', 'create', '--nodes', nodes.map((n) => n.url).join(','), '--threshold', '2', '--curve', 'ed25519', '--wait'],
        'key create',
        { env: { LIFEBOAT_API_KEY: c.token } },
      );
      check(k.status === 'active', `the key is ${k.status}, not active, after --wait`);
      c.key = { keyId: k.key_id, groupPublicKey: k.group_public_key };
      const st = await json<{ key_channels: { key_id: string; channels: { log?: { index?: number } } }[] }>(['node', 'status', '--keys', '--data-dir', nodes[0]!.dir], 'node status --keys');
      check(Number.isInteger(st.key_channels.find((r) => r.key_id === k.key_id)?.channels.log?.index), 'node 1 does not show the log entry holding its share');
      const cov = await json<{ keys: { key_id: string; recoverable: boolean; members: unknown[] }[] }>(
        ['log', 'audit', ...logArgs(c, '--witness'), '--keys', '--state', join(c.dir, 'audit-state.json')],
        'log audit --keys',
      );
      const row = cov.keys.find((r) => r.key_id === k.key_id);
      check(row?.recoverable === true && row.members.length === 3, 'the audit does not find the key recoverable from the log, with three members');
      await signAndCheck(c, nodes.slice(0, 2), 'drill: signed before the loss');
    },
  },
  {
    name: 'key shares: a node destroyed with its data directory comes back from the log with its 24 words alone (keyshare recover), and the key signs',
    async run(c) {
      const nodes = need(c.nodes, 'the nodes');
      const lost = nodes[0]!;
      await need(lost.server, 'node 1').stop('SIGKILL');
      rmSync(lost.dir, { recursive: true, force: true });
      const r = await json<{ identity: string; keys: { key_id: string }[]; configured: { keyshare_mode: string; logs: string[] } }>(
        ['keyshare', 'recover', ...logArgs(c, '--witness'), '--node-identity', lost.identity, '--data-dir', lost.dir, '--mnemonic-fd', '0'],
        'keyshare recover',
        { input: `${lost.words}\n` },
      );
      check(r.identity === lost.identity, 'the recovered node has another identity');
      check(r.keys.some((k) => k.key_id === need(c.key, 'the key').keyId), 'the recovered node does not hold the key');
      check(r.configured.keyshare_mode === 'passphrase' && r.configured.logs.length === 1, 'the recovered node did not get its words and its log back');
      expectOk(await runCli(['node', 'apikey', 'import', '--role', 'client', '--data-dir', lost.dir], { input: `${need(c.token, 'the client token')}\n` }), 'node apikey import (recovered)');
      await serve(c, lost);
      await signAndCheck(c, [lost, nodes[2]!], 'drill: signed by the node recovered from the log');
    },
  },
];
