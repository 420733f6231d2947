/**
 * Asking every part of a fleet, in parallel and read-only, for what `lifeboat coverage` reports
 * (docs/coverage.md, "How it asks"). Each request has the fleet's timeout; a part that does not
 * answer in time, answers an error or cannot be authenticated is `unknown`, with why, never ok.
 * Key nodes and the backup service are read in pages (GET /v1/coverage, GET /v1/monitor/streams).
 */
import type { CoverageKey } from '../keynode/coverage.js';
import { type LastVerify, readLastVerify } from '../recovery/last-verify.js';
import { coveragePage, streamPage } from './answers.js';
import { type Fleet, resolveCredential } from './fleet.js';
import { LifeboatError } from '../errors.js';
import { tlsFetch } from '../util/tls-fetch.js';

export interface PartState {
  name: string;
  kind: 'node' | 'backup_service' | 'holder' | 'log' | 'vault';
  url: string | null;
  state: 'ok' | 'unknown';
  /** Why it is unknown: an err_type (`timeout`, `unreachable`, `unauthorized`, …). */
  error: string | null;
  ms: number;
}

export interface NodeFacts {
  fingerprint?: string;
  required_channels?: string[];
  backup?: { stream: string; account?: string | null; sealed_seq: number; acked_seq: number; unsealed: number; unacked: number; compacted_seq: number; compacted_at: string | null; last_error: string | null; rollback_detected: boolean } | null;
  failover?: { url: string; fingerprint: string; lag: number; last_error: string | null; last_synced_at: string | null } | null;
}

export interface Collected {
  at: number;
  parts: PartState[];
  nodes: Map<string, { facts: NodeFacts; keys: CoverageKey[] }>;
  /** Per backup service that answered: `account/stream` → head seq. */
  streams: Map<string, Map<string, number>>;
  /** Per log that answered: its tree size. */
  logs: Map<string, number>;
  holders: Map<string, boolean>;
  vault: { lastVerify: LastVerify | undefined } | undefined;
}

export class PartError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/** The most one answer of a part may hold: a page of 5,000 keys is a few MB; past this it is `answer_too_large`. */
export const MAX_ANSWER_BYTES = 32 * 1024 * 1024;

/**
 * GET `url` as text (with a bearer token). The whole answer, headers and body, must arrive within
 * `timeoutMs` and hold at most `maxBytes`: reading stops at either. Throws PartError `timeout`,
 * `unreachable`, `unauthorized`, `http_NNN`, `answer_too_large`.
 */
async function getText(url: string, token: string | undefined, timeoutMs: number, caFile?: string, maxBytes = MAX_ANSWER_BYTES): Promise<string> {
  const ac = new AbortController();
  const t = setTimeout(() => ac.abort(), timeoutMs);
  try {
    const res = await tlsFetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: ac.signal, redirect: 'error' }, { caFile });
    if (res.status === 401 || res.status === 403) throw new PartError('unauthorized', `${res.status}: the credential was refused`);
    if (!res.ok) throw new PartError(`http_${res.status}`, `answered ${res.status}`);
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (declared > maxBytes) throw new PartError('answer_too_large', `the answer is over ${maxBytes} bytes`);
    const chunks: Uint8Array[] = [];
    let size = 0;
    const reader = res.body?.getReader();
    if (reader) {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > maxBytes) throw new PartError('answer_too_large', `the answer is over ${maxBytes} bytes`);
        chunks.push(value);
      }
    }
    return Buffer.concat(chunks, size).toString('utf8');
  } catch (err) {
    if (err instanceof PartError) throw err;
    if (err instanceof LifeboatError) throw new PartError(err.code, err.message); // tls_untrusted and its kin
    if (ac.signal.aborted) throw new PartError('timeout', `no whole answer within ${timeoutMs} ms`);
    throw new PartError('unreachable', 'the connection failed');
  } finally {
    clearTimeout(t);
    // Whatever is left of the body is not read: the connection goes.
    if (!ac.signal.aborted) ac.abort();
  }
}

/** GET `url` as JSON with a bearer token, within `timeoutMs`. Throws what getText throws, and PartError `bad_answer`. */
export async function getJson(url: string, token: string | undefined, timeoutMs: number, caFile?: string): Promise<unknown> {
  const text = await getText(url, token, timeoutMs, caFile);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new PartError('bad_answer', 'the answer is not JSON');
  }
}

const base = (u: string) => u.replace(/\/+$/, '');

async function part<T>(parts: PartState[], p: Omit<PartState, 'state' | 'error' | 'ms'>, fn: () => Promise<T>): Promise<T | undefined> {
  const t0 = performance.now();
  try {
    const r = await fn();
    parts.push({ ...p, state: 'ok', error: null, ms: Math.round(performance.now() - t0) });
    return r;
  } catch (err) {
    const code = err instanceof PartError ? err.code : ((err as { code?: string }).code ?? 'internal_error');
    parts.push({ ...p, state: 'unknown', error: code, ms: Math.round(performance.now() - t0) });
    return undefined;
  }
}

/** Every key of a node, page by page. */
async function nodeKeys(url: string, token: string, timeoutMs: number, pageSize: number, caFile?: string): Promise<{ facts: NodeFacts; keys: CoverageKey[] }> {
  let after: string | null = null;
  let facts: NodeFacts = {};
  const keys: CoverageKey[] = [];
  for (;;) {
    const q: string = after === null ? `?limit=${pageSize}` : `?limit=${pageSize}&after=${encodeURIComponent(after)}`;
    const got = coveragePage.safeParse(await getJson(`${base(url)}/v1/coverage${q}`, token, timeoutMs, caFile));
    if (!got.success) throw new PartError('bad_answer', `the coverage page is not one: ${got.error.issues[0]?.path.join('.') || 'body'}`);
    const page = got.data as { node?: NodeFacts; keys: CoverageKey[]; next?: string | null };
    if (page.node) facts = page.node;
    for (const k of page.keys) keys.push(k);
    if (!page.next) return { facts, keys };
    after = page.next;
  }
}

async function serviceStreams(url: string, token: string, timeoutMs: number, caFile?: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let after: string | null = null;
  for (;;) {
    const q: string = after === null ? '?limit=10000' : `?limit=10000&after=${encodeURIComponent(after)}`;
    const got = streamPage.safeParse(await getJson(`${base(url)}/v1/monitor/streams${q}`, token, timeoutMs, caFile));
    if (!got.success) throw new PartError('bad_answer', `the stream listing is not one: ${got.error.issues[0]?.path.join('.') || 'body'}`);
    const page = got.data;
    for (const s of page.streams) out.set(`${s.account}/${s.stream}`, s.head_seq);
    if (!page.next) return out;
    after = page.next;
  }
}

/** The tree size of a tlog-tiles checkpoint (its second line). */
function checkpointSize(text: string): number {
  const line = text.split('\n')[1] ?? '';
  if (!/^\d{1,15}$/.test(line)) throw new PartError('bad_answer', 'the checkpoint does not parse');
  return Number(line);
}

/**
 * Asks every part of `fleet` at once. `readVault` reads a credential held in the primary's vault.
 * Never throws for a part: its state says what happened.
 */
export async function collectFleet(fleet: Fleet, opts: { readVault?: (entry: string) => string; pageSize?: number } = {}): Promise<Collected> {
  const parts: PartState[] = [];
  const c: Collected = { at: Date.now(), parts, nodes: new Map(), streams: new Map(), logs: new Map(), holders: new Map(), vault: undefined };
  const ms = fleet.timeout_ms;
  const cred = (ref: Parameters<typeof resolveCredential>[0]) => {
    try {
      return resolveCredential(ref, opts.readVault);
    } catch (err) {
      throw new PartError((err as { code?: string }).code ?? 'credential_unreadable', 'the credential could not be read');
    }
  };
  await Promise.all([
    ...fleet.nodes.map((n) =>
      part(parts, { name: n.name, kind: 'node', url: n.url }, async () => {
        const r = await nodeKeys(n.url, cred(n.credential), ms, opts.pageSize ?? 5000, n.ca_file);
        if (n.fingerprint && r.facts.fingerprint !== n.fingerprint) throw new PartError('fingerprint_mismatch', 'the node is not the one the fleet file pins');
        c.nodes.set(n.name, r);
      }),
    ),
    ...fleet.backup_services.map((s) => part(parts, { name: s.name, kind: 'backup_service', url: s.url }, async () => void c.streams.set(s.name, await serviceStreams(s.url, cred(s.credential), ms, s.ca_file)))),
    ...fleet.logs.map((l) => part(parts, { name: l.name, kind: 'log', url: l.url }, async () => void c.logs.set(l.name, checkpointSize(await getText(`${base(l.url)}/checkpoint`, undefined, ms, l.ca_file))))),
    ...fleet.holders.map((h) =>
      part(parts, { name: h.name, kind: 'holder', url: h.url }, async () => {
        const id = (await getJson(`${base(h.url)}/v1/identity`, undefined, ms, h.ca_file)) as { fingerprint?: string };
        if (h.fingerprint && id.fingerprint !== h.fingerprint) throw new PartError('fingerprint_mismatch', 'the holder is not the one the fleet file pins');
        c.holders.set(h.name, true);
      }),
    ),
    ...(fleet.vault ? [part(parts, { name: 'vault', kind: 'vault', url: null }, async () => void (c.vault = { lastVerify: readLastVerify(fleet.vault!.data_dir) }))] : []),
  ]);
  const order = ['node', 'backup_service', 'log', 'holder', 'vault'];
  parts.sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind) || a.name.localeCompare(b.name));
  return c;
}
