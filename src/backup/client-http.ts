/**
 * The backup service's HTTP transport for BackupClient (./client.ts): JSON and octet-stream calls with
 * a timeout, typed errors from the service's err_type, answers checked against the API's zod schemas,
 * and the path and encoding helpers both share.
 */
import type { z } from 'zod';
import { InvalidInputError, LifeboatError, PeerError } from '../errors.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { ctEqual, fromB64u, toB64u, utf8 } from '../util/bytes.js';
import { API_PREFIX, decodeBase64, encodeBase64, entriesAnswer, errorAnswer, parseEntryListFrames } from './api.js';
import { checkName } from './format.js';

export type CallOpts = {
  /** A bearer token (login or backup). */
  token?: string;
  timeoutMs?: number;
  /** Send these bytes as application/octet-stream instead of a JSON body. */
  bytes?: Uint8Array;
  /** Return the answer's bytes as they are (a chunk) instead of parsing JSON. */
  raw?: boolean;
  /** The Accept header (default application/json; errors come as JSON whatever it is). */
  accept?: string;
};

/** One service's transport; see the file comment. */
export class BackupHttp {
  constructor(
    readonly url: string,
    private readonly timeoutMs: number,
    private readonly fetchImpl: typeof fetch,
  ) {}

  /** Decodes a base64 field of an answer. Throws PeerError `peer_bad_answer`. */
  bytes(s: string, what: string, len?: number): Uint8Array {
    try {
      return decodeBase64(s, what, len);
    } catch {
      throw this.badAnswer(`${what} is not base64${len ? ` of ${len} bytes` : ''}`);
    }
  }

  /**
   * A `GET …/entries` answer: binary frames (parseEntryListFrames), or the JSON of a service before
   * them (it starts with `{`; a frame listing starts with a zero byte below head 2^56). Each entry's
   * hash is its SHA-256, checked against the listed one in JSON. Throws PeerError `peer_bad_answer`.
   */
  entryListing(raw: Uint8Array, after: number, limit: number): { seq: number; hash: Uint8Array; bytes: Uint8Array }[] {
    if (raw[0] !== 0x7b) {
      try {
        return parseEntryListFrames(raw, { after, limit }).entries.map((e) => ({ seq: e.seq, hash: sha256(e.bytes), bytes: e.bytes }));
      } catch (err) {
        throw this.badAnswer(`the entry listing: ${(err as Error).message}`);
      }
    }
    let json: unknown;
    try {
      json = JSON.parse(utf8.decode(raw));
    } catch {
      throw this.badAnswer('the entry listing is not json');
    }
    const a = entriesAnswer.safeParse(json);
    if (!a.success) throw this.badAnswer('unexpected answer to GET entries');
    let prev = after;
    return a.data.entries.map((e) => {
      const bytes = this.bytes(e.entry, 'entry');
      const hash = this.bytes(e.hash, 'hash', 32);
      if (e.seq <= prev) throw this.badAnswer(`entry ${e.seq} is out of order (after ${prev})`);
      if (!ctEqual(sha256(bytes), hash)) throw this.badAnswer(`entry ${e.seq} does not hash to its listed hash`);
      prev = e.seq;
      return { seq: e.seq, hash, bytes };
    });
  }

  /** The error for an answer outside the protocol. */
  badAnswer(what: string): PeerError {
    return new PeerError('peer_bad_answer', `backup service at ${this.url} answered outside the protocol: ${what}`, 'is that URL a lifeboat backup service, of a compatible version?');
  }

  /**
   * One request. Throws LifeboatError with the service's err_type and status when it refuses, PeerError
   * `peer_unreachable` (down, timed out) and `peer_bad_answer` (not this protocol, or `schema` fails).
   */
  async call<T>(method: string, path: string, body: unknown, schema: z.ZodType<T> | null, opts: CallOpts = {}): Promise<T> {
    const url = `${this.url}${path}`;
    const headers: Record<string, string> = { accept: opts.accept ?? 'application/json' };
    let payload: Uint8Array | undefined;
    if (opts.bytes) {
      headers['content-type'] = 'application/octet-stream';
      payload = opts.bytes;
    } else if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = utf8.encode(JSON.stringify(body));
    }
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    let res: Response;
    let raw: Uint8Array;
    try {
      res = await this.fetchImpl(url, { method, headers, body: payload, signal: AbortSignal.timeout(timeoutMs) });
      raw = new Uint8Array(await res.arrayBuffer());
    } catch (err) {
      if (err instanceof LifeboatError) throw err; // tls_untrusted and its kin (src/util/tls-fetch.ts)
      const e = err as Error & { cause?: { code?: string } };
      const why = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.message);
      throw new PeerError('peer_unreachable', `backup service at ${this.url} is unreachable: ${why}`, 'check the URL and that `lifeboat backup-server serve` runs there');
    }
    if (res.ok && opts.raw) return raw as T;
    let value: unknown;
    try {
      value = raw.length === 0 ? undefined : JSON.parse(utf8.decode(raw));
    } catch {
      throw this.badAnswer(`HTTP ${res.status} with a body that is not json`);
    }
    if (!res.ok) {
      const e = errorAnswer.safeParse(value);
      if (!e.success) throw this.badAnswer(`HTTP ${res.status} without an error document`);
      const err = new LifeboatError(e.data.err_type, `backup service at ${this.url}: ${e.data.message}`, { status: res.status, hint: e.data.hint });
      throw res.status === 429 ? withRetryAfter(err, res.headers.get('retry-after'), res.headers.get('lifeboat-rate-limit')) : err;
    }
    if (schema === null) return value as T;
    const r = schema.safeParse(value);
    if (!r.success) throw this.badAnswer(`unexpected answer to ${method} ${path.replace(/\?.*$/, '')}`);
    return r.data;
  }
}


/**
 * A 429 answer's error, with the seconds its `Retry-After` names (when it names a whole number) and
 * whether the limit is one anyone can fill (`Lifeboat-Rate-Limit: shared`), which waiting cannot beat.
 */
export type RateLimitedAnswer = LifeboatError & { retryAfterSeconds?: number; sharedLimit?: boolean };

function withRetryAfter(err: LifeboatError, header: string | null, scope: string | null): RateLimitedAnswer {
  const seconds = header !== null && /^\d{1,6}$/.test(header.trim()) ? Number(header.trim()) : undefined;
  return Object.assign(err, { sharedLimit: scope === 'shared' }, seconds === undefined ? {} : { retryAfterSeconds: seconds });
}

/** `/v1/accounts/NAME`. Throws InvalidInputError for a malformed name (nothing odd reaches a URL). */
export function accountPath(account: string): string {
  return `${API_PREFIX}/accounts/${checkName(account, 'account')}`;
}

/** `/v1/accounts/NAME/streams/STREAM`. Throws InvalidInputError. */
export function streamPath(account: string, stream: string): string {
  return `${accountPath(account)}/streams/${checkName(stream, 'stream')}`;
}

/** `…/compactions/ID`. Throws InvalidInputError. */
export function compactionPath(account: string, stream: string, id: string): string {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) throw new InvalidInputError('a compaction id is 1 to 64 of A-Z a-z 0-9 _ -');
  return `${streamPath(account, stream)}/compactions/${id}`;
}

/** OPAQUE's base64url to the API's base64, and back. */
export function fromOpaque(s: string): string {
  return encodeBase64(fromB64u(s, 'opaque message'));
}

export function toOpaque(s: string): string {
  return toB64u(decodeBase64(s, 'opaque message'));
}
