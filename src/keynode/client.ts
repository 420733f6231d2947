/**
 * HTTP client of one key node (the SDK's transport). Errors come back typed: a node's JSON error
 * becomes a LifeboatError with its err_type as code and its status; a down node is PeerError
 * `peer_unreachable` naming the URL.
 */
import { LifeboatError, PeerError } from '../errors.js';
import type { Identity } from '../identity.js';
import { signRequest } from '../util/request-auth.js';
import { toHex, utf8 } from '../util/bytes.js';
import { fetchWithCa, warnIfPlainBearer } from '../util/tls-fetch.js';
import { keepAliveRequest } from '../util/http-agent.js';
import type { KeyShareExport } from './export.js';
import type { RunningConfig } from './reload.js';
import type { KeyInfo } from './service.js';

export interface KeyNodeClientOptions {
  url: string;
  /** `lbk_…` API key (client or operator role). */
  apiKey?: string;
  /** Sign requests with this node identity instead (a primary's fail-over pushes). */
  signer?: Identity;
  timeoutMs?: number;
  /**
   * The fetch to use (tests pass one over fastify inject, as HolderClient's do); default: keep-alive
   * requests over node:http(s) (src/util/http-agent.ts), one kept connection per node.
   */
  fetch?: typeof fetch;
}

export class KeyNodeClient {
  readonly url: string;

  constructor(private readonly opts: KeyNodeClientOptions) {
    this.url = opts.url.replace(/\/+$/, '');
  }

  identity(): Promise<{ identity: string; fingerprint: string; wrapping_public_key: string }> {
    return this.call('GET', '/v1/identity');
  }
  wrappingKey(): Promise<{ wrapping_public_key: string }> {
    return this.call('GET', '/v1/wrapping-key');
  }
  dkgStart(sessionId: string, body: { key_id: string; curve: string; threshold: number; participants: string[]; ers_policy?: string }): Promise<{ round1: unknown }> {
    return this.call('POST', `/v1/dkg/${sessionId}/start`, body);
  }
  dkgRound2(sessionId: string, round1: unknown[]): Promise<{ round2: { recipient: string }[] }> {
    return this.call('POST', `/v1/dkg/${sessionId}/round2`, { round1 });
  }
  dkgFinish(sessionId: string, round2: unknown[]): Promise<KeyInfo> {
    return this.call('POST', `/v1/dkg/${sessionId}/finish`, { round2 });
  }
  key(keyId: string): Promise<KeyInfo> {
    return this.call('GET', `/v1/keys/${encodeURIComponent(keyId)}`);
  }
  /** Round one; with `messageLength`, a node whose message limit is lower refuses before drawing a nonce. */
  commitments(keyId: string, opts: { messageLength?: number } = {}): Promise<{ nonce_id: string; commitments: unknown }> {
    return this.call('POST', `/v1/keys/${encodeURIComponent(keyId)}/commitments`, opts.messageLength === undefined ? {} : { message_length: opts.messageLength });
  }
  signatureShare(keyId: string, body: { nonce_id: string; message: Uint8Array; commitments: unknown[] }): Promise<{ signature_share: unknown }> {
    return this.call('POST', `/v1/keys/${encodeURIComponent(keyId)}/signature-shares`, { nonce_id: body.nonce_id, message: toHex(body.message), commitments: body.commitments });
  }
  exportShare(keyId: string, type: 'plaintext' | 'encrypted' | 'wrapped' = 'encrypted', wrappingKey?: string): Promise<KeyShareExport> {
    const q = new URLSearchParams({ export_type: type, ...(wrappingKey ? { wrapping_key: wrappingKey } : {}) });
    return this.call('GET', `/v1/backup/export-key-share/${encodeURIComponent(keyId)}?${q}`);
  }
  /** Lists one page of the keys this API key may see (docs/keynode.md, "Tenants"). */
  keys(opts: { after?: string; limit?: number; tenant?: string } = {}): Promise<{ keys: KeyInfo[]; next_after: string | null }> {
    const q = new URLSearchParams();
    if (opts.after !== undefined) q.set('after', opts.after);
    if (opts.limit !== undefined) q.set('limit', String(opts.limit));
    if (opts.tenant !== undefined) q.set('tenant', opts.tenant);
    const qs = q.toString();
    return this.call('GET', `/v1/keys${qs ? `?${qs}` : ''}`);
  }
  importShare(exp: KeyShareExport & { threshold?: number; tenant?: string; ers_policy?: string }): Promise<KeyInfo & { imported_from: string }> {
    return this.call('POST', '/v1/backup/import-key-share', exp);
  }
  /** This node's emergency recovery part for a key (docs/ers.md, "Node side"). */
  ersPart(keyId: string, body: { label: string; ers_public: string }): Promise<{ part: string; identifier: string; verifying_share: string; rsa_fingerprint: string }> {
    return this.call('POST', `/v1/keys/${encodeURIComponent(keyId)}/ers-part`, body);
  }
  /** Registers a key's emergency recovery package; the node verifies it before it records it. */
  ersPackage(keyId: string, body: { package: string }): Promise<{ ers: Record<string, unknown> }> {
    return this.call('POST', `/v1/keys/${encodeURIComponent(keyId)}/ers-package`, body);
  }
  /** Deletes one key share (an operator API key only; docs/keynode.md, "Deleting a key share"). */
  deleteKey(keyId: string): Promise<{ deleted: true; key_id: string; group_public_key: string; tenant: string; curve: string }> {
    return this.call('DELETE', `/v1/keys/${encodeURIComponent(keyId)}`);
  }
  status(): Promise<Record<string, unknown>> {
    return this.call('GET', '/v1/status');
  }
  /** The configuration the running node holds (an operator API key; docs/keynode.md, "Reloading the configuration"). */
  runningConfig(): Promise<RunningConfig> {
    return this.call('GET', '/v1/config');
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const bytes = body === undefined ? undefined : utf8.encode(JSON.stringify(body));
    const headers: Record<string, string> = {};
    if (bytes) headers['content-type'] = 'application/json';
    if (this.opts.signer) headers.authorization = signRequest(this.opts.signer, method, path, bytes ?? new Uint8Array(0));
    else if (this.opts.apiKey) headers.authorization = `Bearer ${this.opts.apiKey}`;
    const timeoutMs = this.opts.timeoutMs ?? 30_000;
    let res: { status: number; ok: boolean; text: string };
    try {
      // http://: a kept connection per node for the whole process (src/util/http-agent.ts); https:// through
      // tlsFetch, with the operator's CA (undici keeps its connections too); a given fetch as given.
      const url = this.url + path;
      // The AbortSignal (a timer of its own) only for fetch: keepAliveRequest keeps one deadline timer.
      const init = () => ({ method, headers, body: bytes, signal: AbortSignal.timeout(timeoutMs) });
      if (this.opts.fetch) res = await viaFetch(this.opts.fetch, url, init());
      else if (url.startsWith('https:')) res = await viaFetch(fetchWithCa(), url, init());
      else {
        warnIfPlainBearer(new URL(url), headers);
        res = await keepAliveRequest(url, { method, headers, body: bytes, timeoutMs });
      }
    } catch (err) {
      if (err instanceof LifeboatError) throw err; // tls_untrusted and its kin (src/util/tls-fetch.ts)
      throw new PeerError('peer_unreachable', `key node at ${this.url} is unreachable`, 'check that `lifeboat node serve` runs there');
    }
    let json: unknown;
    try {
      json = JSON.parse(res.text);
    } catch {
      throw new PeerError('peer_bad_answer', `key node at ${this.url} answered something that is not JSON (${res.status})`);
    }
    if (!res.ok) {
      const e = json as { err_type?: unknown; message?: unknown; hint?: unknown };
      if (typeof e?.err_type === 'string' && typeof e.message === 'string') {
        throw new LifeboatError(e.err_type, `key node at ${this.url}: ${e.message}`, { status: res.status, hint: typeof e.hint === 'string' ? e.hint : undefined });
      }
      throw new PeerError('peer_bad_answer', `key node at ${this.url} answered ${res.status}`);
    }
    return json as T;
  }
}

async function viaFetch(f: typeof fetch, url: string, init: RequestInit): Promise<{ status: number; ok: boolean; text: string }> {
  const res = await f(url, init);
  return { status: res.status, ok: res.ok, text: await res.text() };
}
