/**
 * BackupClient: the backup service (docs/backup.md) from a key node's side: OPAQUE registration and
 * login, the password change, the auth-key session, streams and compactions. The password and the
 * backup key never leave this process; the service gets OPAQUE messages, the backup key wrapped under
 * a key derived from the OPAQUE export key, the auth public key, and ciphertext.
 *
 * Failures are typed so callers branch on codes:
 *   - the service refused: a LifeboatError with the service's err_type as `code` and its HTTP status
 *     (a wrong password or unknown account is `login_failed` 401, the same either way);
 *   - the service is down or did not answer in time: PeerError `peer_unreachable`;
 *   - the answer is not this protocol (or a compaction does not hash to what was listed): PeerError
 *     `peer_bad_answer`;
 *   - a stream call before session(): LifeboatError `no_session`.
 */
import * as opaque from '@serenity-kit/opaque';
import type { z } from 'zod';
import { sha256 } from '@noble/hashes/sha2.js';
import { InvalidInputError, LifeboatError, UnauthorizedError } from '../errors.js';
import { signWithContext, type SigningKeyPair } from '../crypto/sign.js';
import { ctEqual, fromB64u, wipe } from '../util/bytes.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { fetchWithCa } from '../util/tls-fetch.js';
import type { finishLoginApart, finishRegistrationApart } from './opaque-worker.js';
import {
  encodeEntryFrames,
  OCTETS,
  challengeAnswer,
  chunkAnswer,
  compactionAnswer,
  compactionListAnswer,
  encodeBase64,
  headAnswer,
  loginFinishAnswer,
  loginStartAnswer,
  MAX_CHUNK_BYTES,
  okAnswer,
  registrationResponseAnswer,
  RESTORE_TOKEN_RE,
  restoreTokenAnswer,
  sessionAnswer,
  streamAnswer,
  streamListAnswer,
} from './api.js';
import { accountPath, BackupHttp, type CallOpts, compactionPath, fromOpaque, type RateLimitedAnswer, streamPath, toOpaque } from './client-http.js';
import { backupAuthKey, checkName, SESSION_CONTEXT, sessionProofMessage, unwrapBackupKey, wrapBackupKey } from './format.js';
import { type BackupClientOptions, type CompactionInfo, DEFAULT_CHUNK_BYTES, DEFAULT_TIMEOUT_MS, type EntryInfo, type KeyStretching, type StreamHead, type StreamInfo, type StreamSummary, TRANSFER_TIMEOUT_MS } from './client-types.js';

export * from './client-types.js';

/** The longest Retry-After a login waits out by itself (with onRateLimited). */
const MAX_LOGIN_WAIT_S = 60;

interface Session {
  account: string;
  auth: SigningKeyPair;
  token?: string;
  expiresAt: number;
  renewing?: Promise<string>;
}

/** The backup service's client; see the file comment for its error contract. */
export class BackupClient {
  readonly url: string;
  /** The transport (also used by ./client-wallet.ts). */
  readonly http: BackupHttp;
  private readonly keyStretching: KeyStretching;
  private readonly stretchApart: boolean;
  private readonly renewBeforeMs: number;
  private current: Session | undefined;

  private readonly onRateLimited: ((waitSeconds: number) => void) | undefined;

  constructor(opts: BackupClientOptions) {
    this.onRateLimited = opts.onRateLimited;
    this.url = opts.url.replace(/\/+$/, '');
    this.http = new BackupHttp(this.url, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, opts.fetch ?? fetchWithCa());
    this.keyStretching = opts.keyStretching ?? 'memory-constrained';
    this.stretchApart = opts.stretchApart ?? false;
    this.renewBeforeMs = opts.renewBeforeMs ?? 60_000;
  }

  // ---- accounts ----

  /**
   * Registers `account` with the operator's one-time `invite`: an OPAQUE registration under `password`,
   * uploading the record, `backupKey` wrapped under the export key, and the auth public key.
   * Throws LifeboatError `invalid_invite` (403) for a wrong, used or unknown invite.
   */
  async register(account: string, invite: string, password: string, backupKey: Uint8Array): Promise<void> {
    checkName(account, 'account');
    await opaque.ready;
    const start = opaque.client.startRegistration({ password });
    const a = await this.http.call('POST', `${accountPath(account)}/register/start`, { invite, registration_request: fromOpaque(start.registrationRequest) }, registrationResponseAnswer);
    const { record, wrappedKey } = await this.finishRegistration(account, password, start.clientRegistrationState, a.registration_response, backupKey);
    const auth = backupAuthKey(backupKey);
    wipe(auth.secretKey);
    await this.http.call('POST', `${accountPath(account)}/register/finish`, { invite, record, wrapped_key: wrappedKey, auth_public_key: encodeBase64(auth.publicKey) }, okAnswer);
  }

  /**
   * OPAQUE login: returns the unwrapped backup key (the caller wipes it when done) and a login token,
   * good only for a password change. With the account's `restoreToken` the login counts under the
   * token's own limit, which a flood of anonymous logins does not use up. Throws LifeboatError
   * `login_failed` (401) for an unknown account and a wrong password alike, `restore_token_invalid`
   * (401), `rate_limited` (429); with a second factor on the account, `totp` is its code or a recovery
   * code (`totp_required`, `totp_invalid`, `totp_reused`, `recovery_code_used`, 401).
   */
  async login(account: string, password: string, opts: { restoreToken?: string; totp?: string } = {}): Promise<{ backupKey: Uint8Array; loginToken: string }> {
    checkName(account, 'account');
    if (opts.restoreToken !== undefined && !RESTORE_TOKEN_RE.test(opts.restoreToken)) {
      throw new InvalidInputError('a restore token is lbr_ and 43 base64url characters', { code: 'restore_token_invalid', hint: 'copy it as `node backup-setup` printed it' });
    }
    await opaque.ready;
    const start = opaque.client.startLogin({ password });
    const body = { start_login_request: fromOpaque(start.startLoginRequest), ...(opts.restoreToken !== undefined ? { restore_token: opts.restoreToken } : {}) };
    const a = await this.waitingOutLimits(() => this.http.call('POST', `${accountPath(account)}/login/start`, body, loginStartAnswer));
    let loginResponse: string;
    try {
      loginResponse = toOpaque(a.login_response);
    } catch {
      throw this.http.badAnswer('the login response is not opaque');
    }
    const o = await this.opaqueFinish();
    const finished = await o.finishLogin({ clientLoginState: start.clientLoginState, loginResponse, password, keyStretching: this.keyStretching }, o.apart);
    if (!finished.ok) throw this.http.badAnswer('the login response is not opaque');
    const done = finished.value;
    // A wrong password and an unknown account (a dummy record on the service) both end here.
    if (!done) throw new UnauthorizedError(`backup service at ${this.url}: wrong account name or password`, 'login_failed');
    const f = await this.http.call('POST', `${accountPath(account)}/login/finish`, { login_id: a.login_id, finish_login_request: fromOpaque(done.finishLoginRequest), ...(opts.totp ? { totp: opts.totp } : {}) }, loginFinishAnswer);
    const exportKey = fromB64u(done.exportKey, 'export key');
    try {
      return { backupKey: unwrapBackupKey(exportKey, account, this.http.bytes(f.wrapped_key, 'wrapped_key')), loginToken: f.login_token };
    } finally {
      wipe(exportKey);
    }
  }

  /** Runs `call`; with onRateLimited, a short `rate_limited` is waited out and `call` run again (twice at most). */
  private async waitingOutLimits<T>(call: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await call();
      } catch (err) {
        const { retryAfterSeconds: wait, sharedLimit } = err as RateLimitedAnswer;
        // A limit anyone can fill (the account's anonymous lane, flooded) is not waited out: the hint names the restore token.
        if (!this.onRateLimited || attempt >= 2 || (err as LifeboatError).code !== 'rate_limited' || sharedLimit || wait === undefined || wait > MAX_LOGIN_WAIT_S) throw err;
        this.onRateLimited(wait);
        await sleep(wait * 1000 + 250);
      }
    }
  }

  /**
   * Logs in with `oldPassword`, runs a new OPAQUE registration under `newPassword` and re-wraps the
   * backup key under its export key; the service replaces both at once and revokes the account's login
   * tokens. Backup tokens and the backup key stay. Throws what login throws.
   */
  async changePassword(account: string, oldPassword: string, newPassword: string, totp?: string): Promise<void> {
    const { backupKey, loginToken } = await this.login(account, oldPassword, { totp });
    try {
      const start = opaque.client.startRegistration({ password: newPassword });
      const a = await this.http.call('POST', `${accountPath(account)}/password/start`, { registration_request: fromOpaque(start.registrationRequest) }, registrationResponseAnswer, {
        token: loginToken,
      });
      const { record, wrappedKey } = await this.finishRegistration(account, newPassword, start.clientRegistrationState, a.registration_response, backupKey);
      await this.http.call('POST', `${accountPath(account)}/password/finish`, { record, wrapped_key: wrappedKey }, okAnswer, { token: loginToken });
    } finally {
      wipe(backupKey);
    }
  }

  private async finishRegistration(account: string, password: string, state: string, response: string, backupKey: Uint8Array): Promise<{ record: string; wrappedKey: string }> {
    let registrationResponse: string;
    try {
      registrationResponse = toOpaque(response);
    } catch {
      throw this.http.badAnswer('the registration response is not opaque');
    }
    const o = await this.opaqueFinish();
    const finished = await o.finishRegistration({ clientRegistrationState: state, registrationResponse, password, keyStretching: this.keyStretching }, o.apart);
    if (!finished.ok) throw this.http.badAnswer('the registration response is not opaque');
    const done = finished.value;
    const exportKey = fromB64u(done.exportKey, 'export key');
    try {
      return { record: fromOpaque(done.registrationRecord), wrappedKey: encodeBase64(wrapBackupKey(exportKey, account, backupKey)) };
    } finally {
      wipe(exportKey);
    }
  }

  /**
   * OPAQUE's finish (./opaque-worker.ts, loaded when first needed) and where it stretches the
   * password: with `stretchApart`, a preset (the production 'memory-constrained', or stronger) on a
   * short-lived worker thread whose WebAssembly memory goes with it; otherwise, and for a custom
   * stretching (tests' fast one), on this thread.
   */
  private async opaqueFinish(): Promise<{ apart: boolean; finishLogin: typeof finishLoginApart; finishRegistration: typeof finishRegistrationApart }> {
    const m = await import('./opaque-worker.js');
    return { apart: this.stretchApart && typeof this.keyStretching === 'string', finishLogin: m.finishLoginApart, finishRegistration: m.finishRegistrationApart };
  }

  // ---- session ----

  /**
   * Proves possession of `backupKey` for `account` (a signed single-use challenge) and returns the
   * backup token. Later stream calls use this session, renewing the token before it expires (and once
   * more if the service says it has). Throws LifeboatError `auth_failed` (401) when the account's auth
   * key is not this backup key's.
   */
  async session(account: string, backupKey: Uint8Array): Promise<string> {
    checkName(account, 'account');
    this.endSession();
    this.current = { account, auth: backupAuthKey(backupKey), expiresAt: 0 };
    return this.renew(this.current);
  }

  /**
   * A new restore token for the session's account (replacing any earlier one), shown once: the owner
   * keeps it with the password for `login(…, { restoreToken })`. Throws LifeboatError `no_session`.
   */
  async createRestoreToken(): Promise<string> {
    const a = await this.streamCall('POST', (acc) => `${accountPath(acc)}/restore-token`, undefined, restoreTokenAnswer);
    return a.restore_token;
  }

  /** Forgets the session and wipes its auth key. */
  endSession(): void {
    if (this.current) wipe(this.current.auth.secretKey);
    this.current = undefined;
  }

  private renew(s: Session): Promise<string> {
    s.renewing ??= (async () => {
      try {
        const c = await this.http.call('POST', `${accountPath(s.account)}/challenge`, {}, challengeAnswer);
        const challenge = this.http.bytes(c.challenge, 'challenge', 32);
        const signature = signWithContext(SESSION_CONTEXT, sessionProofMessage(s.account, challenge), s.auth.secretKey);
        const a = await this.http.call('POST', `${accountPath(s.account)}/session`, { challenge: c.challenge, signature: encodeBase64(signature) }, sessionAnswer);
        s.token = a.backup_token;
        s.expiresAt = Date.parse(a.expires_at);
        return a.backup_token;
      } finally {
        s.renewing = undefined;
      }
    })();
    return s.renewing;
  }

  private async token(s: Session): Promise<string> {
    if (s.token && Date.now() < s.expiresAt - this.renewBeforeMs) return s.token;
    return this.renew(s);
  }

  /** A stream call under the session's token, renewing it once if the service finds it expired or unknown. */
  /** A call on the session's account, renewing the token once on a 401 (for ./client-compaction.ts). */
  async streamCall<T>(method: string, path: (account: string) => string, body: unknown, schema: z.ZodType<T> | null, opts: CallOpts = {}): Promise<T> {
    const s = this.current;
    if (!s) throw new LifeboatError('no_session', 'no backup session', { hint: 'call session(account, backupKey) first' });
    const url = path(s.account);
    try {
      return await this.http.call(method, url, body, schema, { ...opts, token: await this.token(s) });
    } catch (err) {
      if (!(err instanceof LifeboatError) || err.status !== 401 || this.current !== s) throw err;
      s.token = undefined;
      return this.http.call(method, url, body, schema, { ...opts, token: await this.renew(s) });
    }
  }

  // ---- streams ----

  /** The session account's streams, by name. */
  async listStreams(): Promise<StreamSummary[]> {
    const a = await this.streamCall('GET', (acc) => `${accountPath(acc)}/streams`, undefined, streamListAnswer);
    return a.streams.map((s) => this.summary(s));
  }

  /** The stream's head and current compaction, or undefined when it has no entries yet. */
  async getStream(stream: string): Promise<StreamInfo | undefined> {
    try {
      const a = await this.streamCall('GET', (acc) => streamPath(acc, stream), undefined, streamAnswer);
      return { ...this.summary(a), compaction: a.compaction ? this.compaction(a.compaction) : null };
    } catch (err) {
      if (err instanceof LifeboatError && err.code === 'stream_not_found') return undefined;
      throw err;
    }
  }

  /**
   * Appends a batch of sealed entries (1 to 10,000, consecutive seqs; idempotent for entries the service
   * holds already) and returns the head after it. Throws LifeboatError `sequence_gap`, `chain_mismatch`,
   * `entry_conflict`, `entry_pruned` (409), `entry_misplaced` or a format code (400).
   */
  async appendEntries(stream: string, entries: Uint8Array[]): Promise<StreamHead> {
    const a = await this.streamCall('POST', (acc) => `${streamPath(acc, stream)}/entries`, undefined, headAnswer, { bytes: encodeEntryFrames(entries), timeoutMs: TRANSFER_TIMEOUT_MS });
    return { headSeq: a.head_seq, headHash: this.http.bytes(a.head_hash, 'head_hash', 32) };
  }

  /**
   * Up to `limit` (1 to 10,000) entries after `afterSeq`, in seq order; the service may answer fewer
   * (it caps an answer at about 8 MiB), and an empty list means there is nothing after `afterSeq`.
   * Throws LifeboatError `stream_not_found` (404).
   */
  async listEntries(stream: string, afterSeq: number, limit = 1000): Promise<EntryInfo[]> {
    const q = new URLSearchParams({ after: String(afterSeq), limit: String(limit) });
    // Binary frames (docs/format.md, "Entry batches over HTTP"); a service before them answers JSON ('{').
    const raw = (await this.streamCall('GET', (acc) => `${streamPath(acc, stream)}/entries?${q}`, undefined, null, { raw: true, accept: OCTETS, timeoutMs: TRANSFER_TIMEOUT_MS })) as Uint8Array;
    return this.http.entryListing(raw, afterSeq, limit);
  }

  // ---- compactions ----

  /**
   * Uploads a compaction covering entries up to `seq` (`hash` = SHA-256 of `bytes`) in chunks of
   * `chunkSize` (1 byte to 8 MiB) and completes it; returns it as the service now holds it (current).
   * Throws LifeboatError `compaction_beyond_head`, `compaction_stale`, `compaction_head_mismatch`,
   * `compaction_misplaced`, `compaction_hash_mismatch` (409), a format code (400).
   */
  async uploadCompaction(stream: string, seq: number, hash: Uint8Array, bytes: Uint8Array, chunkSize = DEFAULT_CHUNK_BYTES): Promise<CompactionInfo> {
    if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_BYTES) throw new InvalidInputError(`chunkSize must be 1 to ${MAX_CHUNK_BYTES} bytes`);
    if (bytes.length < 1) throw new InvalidInputError('a compaction is at least 1 byte');
    const chunkCount = Math.ceil(bytes.length / chunkSize);
    const begin = { seq, hash: encodeBase64(hash), size: bytes.length, chunk_count: chunkCount };
    const c = await this.streamCall('POST', (acc) => `${streamPath(acc, stream)}/compactions`, begin, compactionAnswer);
    for (let n = 0; n < chunkCount; n++) {
      const chunk = bytes.subarray(n * chunkSize, Math.min(bytes.length, (n + 1) * chunkSize));
      await this.streamCall('PUT', (acc) => `${compactionPath(acc, stream, c.id)}/chunks/${n}`, undefined, chunkAnswer, { bytes: chunk, timeoutMs: TRANSFER_TIMEOUT_MS });
    }
    const done = await this.streamCall('POST', (acc) => `${compactionPath(acc, stream, c.id)}/complete`, undefined, compactionAnswer, { timeoutMs: TRANSFER_TIMEOUT_MS });
    return this.compaction(done);
  }

  /** The stream's current compaction, or undefined when it has none. */
  async currentCompaction(stream: string): Promise<CompactionInfo | undefined> {
    try {
      return this.compaction(await this.streamCall('GET', (acc) => `${streamPath(acc, stream)}/compactions/current`, undefined, compactionAnswer));
    } catch (err) {
      if (err instanceof LifeboatError && err.code === 'compaction_not_found') return undefined;
      throw err;
    }
  }

  /** The stream's complete compactions (the current and the previous one), by seq. Throws LifeboatError `stream_not_found` (404). */
  async listCompactions(stream: string): Promise<CompactionInfo[]> {
    const a = await this.streamCall('GET', (acc) => `${streamPath(acc, stream)}/compactions`, undefined, compactionListAnswer);
    return a.compactions.map((c) => this.compaction(c)).sort((x, y) => x.seq - y.seq);
  }

  /**
   * Downloads a compaction chunk by chunk and checks its size and SHA-256 against `meta` (from
   * getStream or currentCompaction). Throws PeerError `peer_bad_answer` when they differ,
   * LifeboatError `compaction_not_found` (404) when it was pruned meanwhile.
   */
  async downloadCompaction(stream: string, meta: CompactionInfo, onBytes?: (done: number, total: number) => void): Promise<Uint8Array> {
    const out = new Uint8Array(meta.size);
    let off = 0;
    for (let n = 0; n < meta.chunkCount; n++) {
      const chunk = await this.streamCall('GET', (acc) => `${compactionPath(acc, stream, meta.id)}/chunks/${n}`, undefined, null, { raw: true, timeoutMs: TRANSFER_TIMEOUT_MS });
      const b = chunk as Uint8Array;
      if (off + b.length > meta.size) throw this.http.badAnswer('the compaction is larger than listed');
      out.set(b, off);
      off += b.length;
      onBytes?.(off, meta.size);
    }
    if (off !== meta.size || !ctEqual(sha256(out), meta.hash)) throw this.http.badAnswer('the compaction does not match its listed size and sha-256');
    return out;
  }

  // ---- transport ----

  private summary(s: z.infer<typeof streamAnswer> | z.infer<typeof streamListAnswer>['streams'][number]): StreamSummary {
    return { stream: s.stream, headSeq: s.head_seq, headHash: this.http.bytes(s.head_hash, 'head_hash', 32), firstSeq: s.first_seq, updatedAt: s.updated_at };
  }

  /** A compaction answer as CompactionInfo (for ./client-compaction.ts). */
  compaction(c: z.infer<typeof compactionAnswer>): CompactionInfo {
    return {
      id: c.id,
      seq: c.seq,
      hash: this.http.bytes(c.hash, 'hash', 32),
      size: c.size,
      chunkCount: c.chunk_count,
      state: c.state,
      createdAt: c.created_at,
      completedAt: c.completed_at,
    };
  }
}
