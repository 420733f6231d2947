/**
 * HolderClient: the share holder's HTTP API from the caller's side (primary, operator, recovery
 * commands), over global fetch with a timeout on every call. Requests are signed with `signer` when
 * given. Failures are typed so callers branch on codes:
 *   - the holder refused: a LifeboatError with the holder's err_type as `code` and its HTTP status;
 *   - the holder is down, or did not answer in time: PeerError `peer_unreachable`;
 *   - the answer is not this protocol: PeerError `peer_bad_answer`;
 *   - identity() found another key than `expectedFingerprint`: PeerError `peer_identity_mismatch`.
 * The transport is not what protects shares: a released share is sealed to the requester's one-time
 * key and a possession proof is checked against the manifest, so a man in the middle learns no secret.
 */
import type { z } from 'zod';
import { LifeboatError, PeerError } from '../errors.js';
import type { Identity } from '../identity.js';
import { parseReleaseResponse, type ReleaseRequest, type ReleaseResponse } from '../recovery/release.js';
import { toHex, utf8 } from '../util/bytes.js';
import { signRequest } from '../util/request-auth.js';
import { fetchWithCa } from '../util/tls-fetch.js';
import {
  API_PREFIX,
  challengeAnswer,
  type ChallengeAnswer,
  decodeBase64,
  deleteAnswer,
  encodeBase64,
  enrolAnswer,
  type EnrolAnswer,
  errorAnswer,
  healthAnswer,
  identityAnswer,
  type IdentityAnswer,
  listSchemesAnswer,
  putShareAnswer,
  type PutShareAnswer,
  putVaultAnswer,
  type PutVaultAnswer,
  type SchemeInfo,
  vaultAnswer,
} from './api.js';

export const DEFAULT_TIMEOUT_MS = 10_000;
/** Vault transfers are up to 32 MiB: they get longer. */
export const VAULT_TIMEOUT_MS = 120_000;

export interface HolderClientOptions {
  /** The holder's base URL, e.g. `http://10.0.0.5:7301` (a path prefix is kept). */
  url: string;
  /** Signs requests (the primary or an operator); without it only health, identity and release work. */
  signer?: Identity;
  /** identity() throws `peer_identity_mismatch` when the holder's fingerprint differs. */
  expectedFingerprint?: string;
  timeoutMs?: number;
  /** For tests: a fetch implementation (defaults to the global fetch). */
  fetch?: typeof fetch;
}

/** A share upload as the API takes it; `sealed_share` as bytes or base64. */
export interface PutShareInput {
  member_index: number;
  sealed_share: Uint8Array | string;
  /** The signed manifest (src/recovery/manifest.ts). */
  manifest: unknown;
}

type SchemeRef = string | Uint8Array;

function schemeHex(id: SchemeRef): string {
  return typeof id === 'string' ? id.toLowerCase() : toHex(id);
}

export class HolderClient {
  readonly url: string;
  private readonly signer: Identity | undefined;
  private readonly expectedFingerprint: string | undefined;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(opts: HolderClientOptions) {
    this.url = opts.url.replace(/\/+$/, '');
    this.signer = opts.signer;
    this.expectedFingerprint = opts.expectedFingerprint?.toLowerCase();
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.fetchImpl = opts.fetch ?? fetchWithCa();
  }

  /** GET /v1/health. */
  async health(): Promise<{ ok: true }> {
    return this.call('GET', '/health', undefined, healthAnswer, { signed: false });
  }

  /** GET /v1/identity; checks the fingerprint when `expectedFingerprint` was given. */
  async identity(): Promise<IdentityAnswer> {
    const id = await this.call('GET', '/identity', undefined, identityAnswer, { signed: false });
    if (this.expectedFingerprint && id.fingerprint !== this.expectedFingerprint) {
      throw new PeerError(
        'peer_identity_mismatch',
        `holder at ${this.url} has fingerprint ${id.fingerprint}, expected ${this.expectedFingerprint}`,
        'check the URL; if the holder was rebuilt, its shares are gone: rotate to a new scheme',
      );
    }
    return id;
  }

  /** PUT /v1/schemes/:id/share (primary). Answers created false for an idempotent retry. */
  async putShare(schemeId: SchemeRef, input: PutShareInput): Promise<PutShareAnswer> {
    const sealed = typeof input.sealed_share === 'string' ? input.sealed_share : encodeBase64(input.sealed_share);
    return this.call('PUT', `/schemes/${schemeHex(schemeId)}/share`, { member_index: input.member_index, sealed_share: sealed, manifest: input.manifest }, putShareAnswer);
  }

  /** PUT /v1/schemes/:id/vault (primary). Answers stored false when this generation was there already. */
  async putVault(schemeId: SchemeRef, vault: Uint8Array): Promise<PutVaultAnswer> {
    return this.call('PUT', `/schemes/${schemeHex(schemeId)}/vault`, { vault: encodeBase64(vault) }, putVaultAnswer, { timeoutMs: VAULT_TIMEOUT_MS });
  }

  /** GET /v1/schemes (primary or operator). */
  async listSchemes(): Promise<SchemeInfo[]> {
    return this.call('GET', '/schemes', undefined, listSchemesAnswer);
  }

  /** GET /v1/schemes/:id/manifest: the JSON as uploaded, unverified; check it with parseManifest. */
  async getManifest(schemeId: SchemeRef): Promise<unknown> {
    return this.call('GET', `/schemes/${schemeHex(schemeId)}/manifest`, undefined, null);
  }

  /** GET /v1/schemes/:id/vault: the encrypted vault copy and its generation. */
  async getVault(schemeId: SchemeRef): Promise<{ vault: Uint8Array; generation: number }> {
    const a = await this.call('GET', `/schemes/${schemeHex(schemeId)}/vault`, undefined, vaultAnswer, { timeoutMs: VAULT_TIMEOUT_MS });
    try {
      return { vault: decodeBase64(a.vault, 'vault'), generation: a.generation };
    } catch {
      throw this.badAnswer('the vault is not base64');
    }
  }

  /** POST /v1/schemes/:id/challenge with 32 fresh random bytes; verify the answer with verifyPossession. */
  async challenge(schemeId: SchemeRef, challenge: Uint8Array): Promise<ChallengeAnswer> {
    return this.call('POST', `/schemes/${schemeHex(schemeId)}/challenge`, { challenge: encodeBase64(challenge) }, challengeAnswer);
  }

  /** POST /v1/schemes/:id/release (unsigned: the request document is the authorisation). */
  async release(schemeId: SchemeRef, request: ReleaseRequest): Promise<ReleaseResponse> {
    const value = await this.call('POST', `/schemes/${schemeHex(schemeId)}/release`, { request }, null, { signed: false });
    try {
      return parseReleaseResponse(value);
    } catch {
      throw this.badAnswer('the release response is malformed');
    }
  }

  /** POST /v1/enrol (operator): makes `primary` (an `lb1.…` token) the enrolled primary. */
  async enrol(primary: string): Promise<EnrolAnswer> {
    return this.call('POST', '/enrol', { primary }, enrolAnswer);
  }

  /** DELETE /v1/schemes/:id (primary). */
  async deleteScheme(schemeId: SchemeRef): Promise<{ scheme_id: string; deleted: true }> {
    return this.call('DELETE', `/schemes/${schemeHex(schemeId)}`, undefined, deleteAnswer);
  }

  private badAnswer(what: string): PeerError {
    return new PeerError('peer_bad_answer', `holder at ${this.url} answered outside the protocol: ${what}`, 'is that URL a lifeboat holder, of a compatible version?');
  }

  private async call<T>(method: string, path: string, body: unknown, schema: z.ZodType<T> | null, opts: { signed?: boolean; timeoutMs?: number } = {}): Promise<T> {
    const url = `${this.url}${API_PREFIX}${path}`;
    const bytes = body === undefined ? new Uint8Array(0) : utf8.encode(JSON.stringify(body));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (opts.signed !== false && this.signer) {
      headers.authorization = signRequest(this.signer, method, new URL(url).pathname, bytes);
    }
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    let res: Response;
    let text: string;
    try {
      res = await this.fetchImpl(url, { method, headers, body: body === undefined ? undefined : bytes, signal: AbortSignal.timeout(timeoutMs) });
      text = await res.text();
    } catch (err) {
      if (err instanceof LifeboatError) throw err; // tls_untrusted and its kin (src/util/tls-fetch.ts)
      const e = err as Error & { cause?: { code?: string } };
      const why = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.message);
      throw new PeerError('peer_unreachable', `holder at ${this.url} is unreachable: ${why}`, 'check that `lifeboat holder serve` runs there and that the address and port are right');
    }
    let value: unknown;
    try {
      value = text === '' ? undefined : JSON.parse(text);
    } catch {
      throw this.badAnswer(`HTTP ${res.status} with a body that is not json`);
    }
    if (!res.ok) {
      const e = errorAnswer.safeParse(value);
      if (!e.success) throw this.badAnswer(`HTTP ${res.status} without an error document`);
      throw new LifeboatError(e.data.err_type, `holder at ${this.url}: ${e.data.message}`, { status: res.status, hint: e.data.hint });
    }
    if (schema === null) {
      if (value === undefined) throw this.badAnswer(`empty answer to ${method} ${API_PREFIX}${path}`);
      return value as T;
    }
    const r = schema.safeParse(value);
    if (!r.success) throw this.badAnswer(`unexpected answer to ${method} ${API_PREFIX}${path}`);
    return r.data;
  }
}
