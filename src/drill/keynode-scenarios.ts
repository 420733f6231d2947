/**
 * The worst day for key nodes (issue 3, item 8), with real `lifeboat node serve` processes on
 * loopback: three nodes of a 2-of-3 key, each paired with its own fail-over node. A signing node is
 * lost and restored from its backup; a node's store is wiped and the client recovers by itself from
 * its saved export; the primaries are killed and the fail-over nodes sign. Every scenario signs before
 * and after, under the same group public key.
 *
 * The fleet helpers are exported for the tests and bench/keynode.ts. Node directories are created
 * in this process (vault, node.json, store: what `node init` does) to keep the drill short; pairing,
 * serving, backup, restore and API key registration on a wiped node go through the CLI.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { LifeboatError } from '../errors.js';
import { apiKeyRecordFromToken, newApiKey } from '../keynode/apikeys.js';
import { KeyNodeClient } from '../keynode/client.js';
import { nodePaths } from '../keynode/config.js';
import type { KeyShareExport } from '../keynode/export.js';
import { verifySignature, type FrostCurve } from '../keynode/frost/index.js';
import { initNode } from '../keynode/runtime.js';
import { createKey, type KeyRef, saveExports, sign, signWithRecovery } from '../keynode/sdk.js';
import { openKeyNodeStore, parseStoreUrl } from '../keynode/store/index.js';
import type { ApiKeyRole } from '../keynode/store/types.js';
import { fromHex, utf8 } from '../util/bytes.js';
import { type RunningServer, runCli, startServer } from './proc.js';
import { expectOk, type Scenario } from './runner.js';

/** One key node of a fleet: its directory and public identity, and its server while it runs. */
export interface FleetNode {
  name: string;
  dir: string;
  identity: string;
  fingerprint: string;
  wrappingKey: string;
  /** Where it serves (kept across restarts: a restarted node listens on the same port). */
  url: string;
  server: RunningServer | undefined;
}

export interface KeyNodeFleet {
  dir: string;
  /** Every process started, stopped at the end by whoever owns the fleet. */
  servers: RunningServer[];
  /** One client and one operator API key, registered on every node. */
  tokens: Record<ApiKeyRole, string>;
  primaries: FleetNode[];
  /** failovers[i] is the fail-over of primaries[i] (empty when started without). */
  failovers: FleetNode[];
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new LifeboatError('drill_check_failed', what);
}

/** The SQLite files of a node's default store (the database and its WAL and shared-memory files). */
export function storeFiles(node: FleetNode): string[] {
  const parsed = parseStoreUrl(nodePaths(node.dir).defaultStore);
  const path = parsed.kind === 'sqlite' ? parsed.path : '';
  return [path, `${path}-wal`, `${path}-shm`];
}

/** Deletes a stopped node's store: the disk of its database is gone. */
export function wipeStore(node: FleetNode): void {
  for (const f of storeFiles(node)) rmSync(f, { force: true });
}

/** Registers API keys in a node's store, in this process. The node must not be serving. */
export async function registerTokens(node: FleetNode, tokens: Partial<Record<ApiKeyRole, string>>): Promise<void> {
  const store = await openKeyNodeStore(nodePaths(node.dir).defaultStore);
  try {
    for (const [role, token] of Object.entries(tokens) as [ApiKeyRole, string][]) await store.insertApiKey(apiKeyRecordFromToken(token, role, `drill ${role}`));
  } finally {
    await store.close();
  }
}

/** Creates a node directory (what `lifeboat node init` does) with the fleet's API keys. */
export async function createFleetNode(root: string, name: string, tokens: Record<ApiKeyRole, string>): Promise<FleetNode> {
  const dir = join(root, name);
  const id = await initNode(dir);
  const node: FleetNode = { name, dir, identity: id.identity, fingerprint: id.fingerprint, wrappingKey: id.wrapping_public_key, url: '', server: undefined };
  await registerTokens(node, tokens);
  return node;
}

/** Starts `lifeboat node serve` for `node`: on its former port when it served before, else on a free one. */
export async function serveNode(fleet: Pick<KeyNodeFleet, 'servers'>, node: FleetNode): Promise<FleetNode> {
  const listen = node.url ? `127.0.0.1:${new URL(node.url).port}` : '127.0.0.1:0';
  const server = await startServer(['node', 'serve', '--data-dir', node.dir, '--listen', listen, '--json']);
  fleet.servers.push(server);
  node.server = server;
  node.url = server.url;
  return node;
}

/** Stops a node's server: SIGTERM (a clean stop) or SIGKILL (the machine is gone). */
export async function stopNode(node: FleetNode, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  await node.server?.stop(signal);
  node.server = undefined;
}

/** SDK clients of `nodes` with `token`. */
export function clientsOf(nodes: FleetNode[], token: string): KeyNodeClient[] {
  return nodes.map((n) => new KeyNodeClient({ url: n.url, apiKey: token }));
}

/**
 * Starts three nodes, and with `failovers` a fail-over node for each: `pair --primary` on the
 * fail-over before it serves, `pair --failover URL#FINGERPRINT --wrapping-key KEY` on the primary once
 * the fail-over serves, then the primaries.
 */
export async function startFleet(root: string, opts: { failovers: boolean; count?: number }): Promise<KeyNodeFleet> {
  const tokens = { client: newApiKey('client', 'drill client').token, operator: newApiKey('operator', 'drill operator').token };
  const names = Array.from({ length: opts.count ?? 3 }, (_, i) => `node-${String.fromCharCode(97 + i)}`);
  const fleet: KeyNodeFleet = { dir: root, servers: [], tokens, primaries: [], failovers: [] };
  fleet.primaries = await Promise.all(names.map((n) => createFleetNode(root, n, tokens)));
  if (opts.failovers) {
    fleet.failovers = await Promise.all(names.map((n) => createFleetNode(root, `${n}-failover`, tokens)));
    await Promise.all(fleet.failovers.map(async (f, i) => expectOk(await runCli(['node', 'pair', '--primary', fleet.primaries[i]!.identity, '--data-dir', f.dir, '--json']), `node pair --primary (${f.name})`)));
    await Promise.all(fleet.failovers.map((f) => serveNode(fleet, f)));
    await Promise.all(
      fleet.primaries.map(async (p, i) => {
        const f = fleet.failovers[i]!;
        const args = ['node', 'pair', '--failover', `${f.url}#${f.fingerprint}`, '--wrapping-key', f.wrappingKey, '--data-dir', p.dir, '--json'];
        expectOk(await runCli(args), `node pair --failover (${p.name})`);
      }),
    );
  }
  await Promise.all(fleet.primaries.map((p) => serveNode(fleet, p)));
  return fleet;
}

/** A primary's fail-over lag, from GET /v1/status with the operator key. */
export async function failoverLag(node: FleetNode, operatorToken: string): Promise<number> {
  const s = (await new KeyNodeClient({ url: node.url, apiKey: operatorToken }).status()) as { failover?: { lag?: unknown } | null };
  if (typeof s.failover?.lag !== 'number') throw new LifeboatError('drill_check_failed', `${node.name} reports no fail-over`);
  return s.failover.lag;
}

/** Waits until every primary's fail-over lag is 0. Throws `drill_check_failed` after `timeoutMs`. */
export async function waitForSync(nodes: FleetNode[], operatorToken: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lags = await Promise.all(nodes.map((n) => failoverLag(n, operatorToken)));
    if (lags.every((l) => l === 0)) return;
    if (Date.now() > deadline) throw new LifeboatError('drill_check_failed', `fail-over lag still ${lags.join(', ')} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A key reference for the same key on other nodes (the fail-overs keep the key id). */
export function refOn(key: KeyRef, nodes: FleetNode[], keyIds: string[] = key.nodes.map((n) => n.keyId)): KeyRef {
  return { ...key, nodes: nodes.map((n, i) => ({ url: n.url, keyId: keyIds[i]! })) };
}

/** Signs `text` and checks the signature under the key's group public key with a plain verifier. */
export async function signAndCheck(key: KeyRef, clients: KeyNodeClient[], text: string, signers?: number[]): Promise<Uint8Array> {
  const message = utf8.encode(text);
  const sig = await sign(key, clients, message, { signers });
  check(verifySignature(key.curve, sig, message, fromHex(key.groupPublicKey, 'group public key')), `the signature of "${text}" does not verify under the group key`);
  return sig;
}

// --- the drill -------------------------------------------------------------------------------------

export interface KeyNodeDrillContext {
  dir: string;
  servers: RunningServer[];
  fleet?: KeyNodeFleet;
  key?: KeyRef;
  /** The key id every node had at creation (the fail-overs keep it). */
  keyId?: string;
  saved?: KeyShareExport[];
}

const CURVE: FrostCurve = 'ed25519';

function fleetOf(c: KeyNodeDrillContext): { fleet: KeyNodeFleet; key: KeyRef } {
  if (!c.fleet || !c.key) throw new LifeboatError('drill_check_failed', 'no key nodes: an earlier scenario failed');
  return { fleet: c.fleet, key: c.key };
}

export const keynodeScenarios: Scenario<KeyNodeDrillContext>[] = [
  {
    name: 'key nodes: three nodes, each paired with a fail-over node',
    async run(c) {
      c.fleet = await startFleet(c.dir, { failovers: true });
      c.servers.push(...c.fleet.servers);
      c.fleet.servers = c.servers;
    },
  },
  {
    name: 'key nodes: a 2-of-3 key by DKG, signed, copied to every fail-over',
    async run(c) {
      const fleet = c.fleet!;
      const clients = clientsOf(fleet.primaries, fleet.tokens.client);
      c.key = await createKey(clients, { threshold: 2, curve: CURVE });
      c.keyId = c.key.nodes[0]!.keyId;
      await signAndCheck(c.key, clients, 'drill: first signature');
      c.saved = await saveExports(c.key, clients);
      await waitForSync(fleet.primaries, fleet.tokens.operator);
    },
  },
  {
    name: 'the signing node lost and restored from its backup',
    async run(c) {
      const { fleet, key } = fleetOf(c);
      const node = fleet.primaries[0]!;
      await signAndCheck(key, clientsOf(fleet.primaries, fleet.tokens.client), 'drill: before the loss');
      const backup = join(c.dir, 'node-a.lbnb');
      expectOk(await runCli(['node', 'backup', '--out', backup, '--data-dir', node.dir, '--json']), 'node backup (while serving)');
      await stopNode(node, 'SIGKILL');
      wipeStore(node);
      const r = JSON.parse(expectOk(await runCli(['node', 'restore', '--in', backup, '--data-dir', node.dir, '--json']), 'node restore').stdout) as { keys: number };
      check(r.keys === 1, `the restore brought back ${r.keys} keys, expected 1`);
      await serveNode(fleet, node);
      await signAndCheck(key, clientsOf(fleet.primaries, fleet.tokens.client), 'drill: after the restore');
    },
  },
  {
    name: 'client self-recovery: a node’s store wiped, the SDK imports its saved export',
    async run(c) {
      const { fleet, key } = fleetOf(c);
      const node = fleet.primaries[1]!;
      await signAndCheck(key, clientsOf(fleet.primaries, fleet.tokens.client), 'drill: before the wipe', [1, 2]);
      await stopNode(node, 'SIGKILL');
      wipeStore(node);
      await serveNode(fleet, node);
      // The operator registers the client's API key (and their own) on the empty node again.
      await Promise.all(
        (['client', 'operator'] as const).map(async (role) =>
          expectOk(await runCli(['node', 'apikey', 'import', '--role', role, '--data-dir', node.dir], { input: fleet.tokens[role] }), `node apikey import --role ${role}`),
        ),
      );
      const message = utf8.encode('drill: after the wipe');
      let recovered = '';
      const sig = await signWithRecovery(key, clientsOf(fleet.primaries, fleet.tokens.client), message, c.saved!, { signers: [1, 2], onRecover: (_url, id) => (recovered = id) });
      check(recovered !== '' && recovered !== c.keyId, 'the SDK did not import the saved export under a new key id');
      check(verifySignature(key.curve, sig, message, fromHex(key.groupPublicKey, 'group public key')), 'the signature after self-recovery does not verify under the group key');
    },
  },
  {
    name: 'fail-over take-over: the primaries killed, the fail-over nodes sign',
    async run(c) {
      const { fleet, key } = fleetOf(c);
      await signAndCheck(key, clientsOf(fleet.primaries, fleet.tokens.client), 'drill: before the take-over');
      await waitForSync(fleet.primaries, fleet.tokens.operator);
      await Promise.all(fleet.primaries.map((p) => stopNode(p, 'SIGKILL')));
      const onFailovers = refOn(key, fleet.failovers, fleet.failovers.map(() => c.keyId!));
      await signAndCheck(onFailovers, clientsOf(fleet.failovers, fleet.tokens.client), 'drill: after the take-over');
      await signAndCheck(onFailovers, clientsOf(fleet.failovers, fleet.tokens.client), 'drill: after the take-over, other signers', [1, 2]);
    },
  },
];
