/**
 * Fixtures for key node tests: n nodes in this process (real data directories and vaults, a real
 * SQLite or PostgreSQL store each, the real fastify app reached through inject, no port), or n
 * `lifeboat node serve` processes on loopback; API keys registered on every node; SDK clients; and
 * the store counts a refused request must leave unchanged.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { type RunningServer, runCli, type RunResult, startServer } from '../../src/drill/proc.js';
import { apiKeyRecordFromToken, newApiKey } from '../../src/keynode/apikeys.js';
import { KeyNodeClient } from '../../src/keynode/client.js';
import { initNode, openNode, type OpenedNode } from '../../src/keynode/runtime.js';
import { createKeyNodeApp } from '../../src/keynode/server.js';
import { openKeyNodeStore } from '../../src/keynode/store/index.js';
import type { ApiKeyRole } from '../../src/keynode/store/types.js';
import { ownTenant } from '../../src/keynode/tenants.js';
import { injectFetch } from './holder.js';
import { trackedTempDir } from './tmp.js';

/** The tenant a client token registered without --tenant belongs to: its own (docs/keynode.md, "Tenants"). */
export function ownTenantOf(token: string): string {
  return ownTenant(token.slice(4, 20));
}

/** A fresh temp directory, removed after the test file (test/helpers/tmp.ts). */
export function tempDir(prefix = 'lifeboat-keynode-'): string {
  return trackedTempDir(prefix);
}

/** One in-process node. `config` is the object the service reads on every call: tests may change it. */
export interface TestNode extends OpenedNode {
  name: string;
  dir: string;
  /** A made-up URL: requests to it go through `app.inject`. */
  url: string;
  app: FastifyInstance;
  identity: { identity: string; fingerprint: string; wrapping_public_key: string };
}

export interface JsonAnswer<T = Record<string, unknown>> {
  status: number;
  body: T;
}

/** A request through inject: `token` goes in `Authorization: Bearer`, `body` as JSON (or raw when a string). */
export interface InjectRequest {
  method?: 'GET' | 'POST';
  url: string;
  token?: string;
  body?: unknown;
  headers?: Record<string, string>;
}

export class NodeSet {
  constructor(
    readonly root: string,
    readonly nodes: TestNode[],
    /** One token per role, registered on every node (the same key on all of them, as `apikey import` does), and a revoked one. */
    readonly tokens: Record<ApiKeyRole, string> & { revoked: string },
  ) {}

  /** An SDK client of node i over inject; `wrap` may rewrite requests and answers in transit. */
  client(i: number, token: string = this.tokens.client, wrap?: (inner: typeof fetch) => typeof fetch): KeyNodeClient {
    const n = this.nodes[i]!;
    const base = injectFetch(n.app);
    return new KeyNodeClient({ url: n.url, apiKey: token, fetch: wrap ? wrap(base) : base });
  }

  clients(token: string = this.tokens.client): KeyNodeClient[] {
    return this.nodes.map((_, i) => this.client(i, token));
  }

  async inject<T = Record<string, unknown>>(i: number, req: InjectRequest): Promise<JsonAnswer<T>> {
    const headers: Record<string, string> = { ...req.headers };
    if (req.token) headers.authorization = `Bearer ${req.token}`;
    let payload: string | undefined;
    if (req.body !== undefined) {
      headers['content-type'] ??= 'application/json';
      payload = typeof req.body === 'string' ? req.body : JSON.stringify(req.body);
    }
    const res = await this.nodes[i]!.app.inject({ method: req.method ?? (payload === undefined ? 'GET' : 'POST'), url: req.url, headers, payload });
    return { status: res.statusCode, body: JSON.parse(res.body) as T };
  }

  /** Keys and unused nonces per node: what a refused request must leave as it was. */
  async counts(): Promise<{ keys: number; nonces: number }[]> {
    return Promise.all(this.nodes.map(async (n) => ({ keys: await n.store.countKeys(), nonces: await n.store.countNonces() })));
  }

  /**
   * Node i loses its database: the store is closed and replaced by an empty one (`emptyStore` makes
   * it: a fresh file, a fresh database). The vault stays, so its export key does too. API keys are
   * registered again, as an operator would.
   */
  async replaceStore(i: number, emptyStoreUrl: string): Promise<TestNode> {
    const old = this.nodes[i]!;
    void old.failover.stop();
    await old.app.close();
    await old.store.close();
    const fresh = await openTestNode(old.name, old.dir, emptyStoreUrl);
    for (const [role, token] of Object.entries(this.tokens)) await registerToken(fresh, token, role === 'operator' ? 'operator' : 'client', role === 'revoked');
    this.nodes[i] = fresh;
    return fresh;
  }

  async close(): Promise<void> {
    for (const n of this.nodes) {
      void n.failover.stop();
      await n.backup?.stop();
      await n.app.close();
      await n.store.close();
    }
    rmSync(this.root, { recursive: true, force: true });
  }
}

async function openTestNode(name: string, dir: string, store?: string): Promise<TestNode> {
  const opened = await openNode(dir, { store });
  const app = createKeyNodeApp({ service: opened.service, store: opened.store, status: () => opened.failover.status() });
  await app.ready();
  return { ...opened, name, dir, url: `http://${name}.test`, app, identity: opened.service.identity() };
}

async function registerToken(node: OpenedNode, token: string, role: ApiKeyRole, revoked = false): Promise<void> {
  const record = apiKeyRecordFromToken(token, role, `test ${role}`);
  await node.store.insertApiKey(record);
  if (revoked) await node.store.revokeApiKey(record.id, Date.now());
}

/**
 * Initialises n nodes in a temp directory (`lifeboat node init`'s code path) and opens them. Stores:
 * `storeUrls[i]` when given (PostgreSQL), else each node's default SQLite file. Registers one client,
 * one operator and one revoked client token on every node.
 */
export async function startInProcessNodes(n = 3, opts: { storeUrls?: string[] } = {}): Promise<NodeSet> {
  const root = tempDir();
  const nodes: TestNode[] = [];
  const tokens = { client: newApiKey('client', 'c').token, operator: newApiKey('operator', 'o').token, revoked: newApiKey('client', 'r').token };
  try {
    for (let i = 0; i < n; i++) {
      const dir = join(root, `node-${i + 1}`);
      await initNode(dir, { store: opts.storeUrls?.[i] });
      const node = await openTestNode(`node-${i + 1}`, dir);
      await registerToken(node, tokens.client, 'client');
      await registerToken(node, tokens.operator, 'operator');
      await registerToken(node, tokens.revoked, 'client', true);
      nodes.push(node);
    }
  } catch (err) {
    await new NodeSet(root, nodes, tokens).close();
    throw err;
  }
  return new NodeSet(root, nodes, tokens);
}

/**
 * A fetch wrapper that hands each request and answer to `edit`: return a replacement answer body
 * (JSON) to rewrite what the client sees, or undefined to pass it on. `path` excludes the host.
 */
export function tamperAnswers(edit: (path: string, body: unknown) => unknown): (inner: typeof fetch) => typeof fetch {
  return (inner) =>
    (async (input: string | URL | Request, init?: RequestInit) => {
      const res = await inner(input, init);
      const path = new URL(String(input)).pathname;
      const text = await res.text();
      let replaced: unknown;
      try {
        replaced = edit(path, JSON.parse(text));
      } catch (err) {
        if (err instanceof SyntaxError) replaced = undefined;
        else throw err;
      }
      return new Response(replaced === undefined ? text : JSON.stringify(replaced), { status: res.status, headers: res.headers });
    }) as typeof fetch;
}

// --- real processes --------------------------------------------------------------------------------

/** Returns the result of a command that exited 0; throws with its stderr otherwise. */
export function ok(r: RunResult, what = 'command'): RunResult {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}: ${r.stderr.trim()}`);
  return r;
}

export interface NodeProcess {
  dir: string;
  server: RunningServer;
  url: string;
  fingerprint: string;
}

/** Starts `lifeboat node serve --json` on `listen` (default a free loopback port). */
export async function serveNode(dir: string, listen = '127.0.0.1:0', fingerprint = ''): Promise<NodeProcess> {
  const server = await startServer(['node', 'serve', '--data-dir', dir, '--listen', listen, '--json'], { timeoutMs: 30_000 });
  return { dir, server, url: server.url, fingerprint };
}

/**
 * Registers `token` with `role` on the stopped or serving node at `dir` without a CLI process (the
 * store is opened directly; SQLite's WAL lets a serving node go on meanwhile).
 */
export async function registerTokenInDir(dir: string, token: string, role: ApiKeyRole): Promise<void> {
  const store = await openKeyNodeStore(`sqlite:${join(dir, 'store.sqlite')}`);
  try {
    await store.insertApiKey(apiKeyRecordFromToken(token, role, `test ${role}`));
  } finally {
    await store.close();
  }
}

/**
 * n node directories made by the CLI: `node init` on each, `node apikey create --role client
 * --secret-fd 3` on the first and `node apikey import` of that token on the others; an operator token
 * registered directly. Then `node serve` on each. Returns the nodes and tokens.
 */
export async function startNodeProcesses(root: string, n = 3): Promise<{ nodes: NodeProcess[]; clientToken: string; operatorToken: string }> {
  const dirs = [...Array(n).keys()].map((i) => join(root, `node-${i + 1}`));
  const inits = await Promise.all(dirs.map((d) => runCli(['node', 'init', '--data-dir', d, '--no-mnemonic', '--json'])));
  const fingerprints = inits.map((r, i) => (JSON.parse(ok(r, `node init ${i + 1}`).stdout) as { fingerprint: string }).fingerprint);
  const created = ok(await runCli(['node', 'apikey', 'create', '--role', 'client', '--data-dir', dirs[0]!, '--secret-fd', '3'], { secretFd: true }), 'apikey create');
  const clientToken = created.secret.trim();
  const imports = await Promise.all(dirs.slice(1).map((d) => runCli(['node', 'apikey', 'import', '--role', 'client', '--data-dir', d], { input: `${clientToken}\n` })));
  imports.forEach((r, i) => ok(r, `apikey import ${i + 2}`));
  const operatorToken = newApiKey('operator', 'o').token;
  for (const d of dirs) await registerTokenInDir(d, operatorToken, 'operator');
  const started = await Promise.allSettled(dirs.map((d, i) => serveNode(d, undefined, fingerprints[i])));
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) {
    // Stop the ones that did start: a child left running would keep the test process alive.
    await Promise.all(started.map((r) => (r.status === 'fulfilled' ? r.value.server.stop() : undefined)));
    throw failed.reason;
  }
  const nodes = started.map((r) => (r as PromiseFulfilledResult<NodeProcess>).value);
  return { nodes, clientToken, operatorToken };
}

/** Key ids in the SQLite store of the node in `dir`, sorted (read directly; the node may be serving). */
export async function storeKeyIds(dir: string): Promise<string[]> {
  const store = await openKeyNodeStore(`sqlite:${join(dir, 'store.sqlite')}`);
  try {
    return (await store.listKeys({ limit: 10_000 })).map((k) => k.keyId).sort();
  } finally {
    await store.close();
  }
}
